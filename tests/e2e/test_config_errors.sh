#!/usr/bin/env bash
# Configuration mistakes as a user makes them, through slr config and slr
# train: duplicate keys and sections (named with both lines), a YAML alias
# (a message that says aliases are not supported), a folder given as the
# configuration, an unknown enum value, an empty train.stages; each exits 1
# with the file, line, key or value named, no source location shown, and no
# run folder left behind.
set -u
slr="$1"; src="$2"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fails=0; n=0
check() { # name expected_status text -- command...
  local name="$1" want="$2" text="$3"; shift 4
  "$@" > out.txt 2>&1
  local got=$?
  n=$((n+1))
  if [ "$got" = "$want" ] && grep -qF -- "$text" out.txt && ! grep -qE "src/[a-z]+/[a-z_0-9]+\.c:[0-9]" out.txt; then
    echo "ok   $name"; return
  fi
  fails=$((fails+1)); echo "FAIL $name (exit $got, wanted $want, text: $text)"; tail -3 out.txt | sed 's/^/     | /'
}
printf 'cluster:\n  k1: 20\n  eps: 0.5\n  k1: 25\n' > dup.yaml
check "duplicate key" 1 'dup.yaml:4: duplicate key "cluster.k1" (first at line 2)' -- "$slr" config dup.yaml
printf 'cluster:\n  k1: 20\nrun:\n  seed: 3\ncluster:\n  eps: 0.5\n' > dups.yaml
check "duplicate section" 1 'dups.yaml:5: duplicate section "cluster" (first at line 1)' -- "$slr" train --config dups.yaml --out run1
n=$((n+1)); [ ! -e run1 ] && echo "ok   no run folder" || { fails=$((fails+1)); echo "FAIL run folder left"; }
printf 'cluster:\n  k1: &k 20\neval:\n  rerank_k1: *k\n' > alias.yaml
check "alias" 1 'alias.yaml:4: eval.rerank_k1: YAML aliases (*k) are not supported' -- "$slr" config alias.yaml
mkdir adir
check "folder as config" 1 'adir is a folder, not a configuration file' -- "$slr" train --config adir --out run2
printf 'solver:\n  adapt:\n    schedule: exponential\n' > sched.yaml
check "unknown schedule" 1 'sched.yaml:3: solver.adapt.schedule: "exponential" is not one of constant|step|multistep|cosine' -- "$slr" config sched.yaml
check "empty stages" 1 'train.stages is empty' -- "$slr" config --set 'train.stages=[]'
check "per-stage rate" 0 'lr: 0.0002' -- "$slr" config --set solver.adapt.lr=2e-4
check "old solver.lr is gone" 1 'unknown key "solver.lr"' -- "$slr" config --set solver.lr=1e-3
echo "$((n - fails))/$n passed"
[ $fails -eq 0 ]
