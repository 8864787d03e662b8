#!/usr/bin/env bash
# The module order: tools/deps.py finds no include upwards and no cycle in
# the tree, and does find one planted in a copy; a module library that calls
# a module above it does not link (-Wl,-z,defs against the modules below).
set -u
slr="$1"; src="$2"
. "$src/tests/e2e/lib.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

$py "$src/tools/deps.py" --root "$src" --check && ok "the tree keeps the module order" || bad "the tree keeps the module order"

mkdir -p "$tmp/tree"
cp -r "$src/src" "$src/include" "$src/CMakeLists.txt" "$tmp/tree/"
printf '#include "slr/train.h"\n' >> "$tmp/tree/src/cluster/dbscan.c"
out=$($py "$src/tools/deps.py" --root "$tmp/tree" --check 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "not allowed: cluster -> train"; then ok "an include upwards is found"; else bad "an include upwards is found: $out"; fi

# link check with the built libraries: cluster's library may not call train
build=$(dirname "$slr")
lib=$(ls "$build"/src/libslr_cluster.so "$build"/libslr_cluster.so 2>/dev/null | head -1)
if [ -z "$lib" ]; then
  bad "module libraries are shared (libslr_cluster.so not found in $build)"
else
  ldir=$(dirname "$lib")
  cat > "$tmp/up.c" <<'C'
int slr_train_run(const void *ctx, const void *cfg, const char *run, unsigned flags);
int probe(void) { return slr_train_run(0, 0, "", 0); }
C
  cat > "$tmp/down.c" <<'C'
double slr_now(void);
double probe(void) { return slr_now(); }
C
  if cc -shared -fPIC -Wl,-z,defs "$tmp/down.c" -L"$ldir" -lslr_core -o "$tmp/down.so" 2> "$tmp/down.log"; then
    ok "a call downwards links"
  else
    bad "a call downwards links"; cat "$tmp/down.log"
  fi
  if cc -shared -fPIC -Wl,-z,defs "$tmp/up.c" -L"$ldir" -lslr_cluster -lslr_dist -lslr_core -o "$tmp/up.so" 2> "$tmp/up.log"; then
    bad "a call upwards does not link"
  else
    grep -q "undefined reference to .slr_train_run" "$tmp/up.log" && ok "a call upwards does not link" || { bad "a call upwards does not link"; cat "$tmp/up.log"; }
  fi
fi
checked
