#!/usr/bin/env bash
# The slr command as a user meets it: help, version, exit codes, and config
# errors that name the key and value, on 1 and 2 ranks.
set -u
slr="$1"; src="$2"
fails=0; n=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

check() { # name expected_status expected_text... -- command...
  local name="$1" want="$2"; shift 2
  local texts=()
  while [ "$1" != "--" ]; do texts+=("$1"); shift; done
  shift
  "$@" > "$tmp/out" 2>&1
  local got=$?
  n=$((n+1))
  local ok=1
  if [ "$want" = "nonzero" ]; then [ "$got" -ne 0 ] || ok=0; else [ "$got" -eq "$want" ] || ok=0; fi
  for t in "${texts[@]}"; do grep -qF -- "$t" "$tmp/out" || ok=0; done
  if [ $ok = 1 ]; then echo "ok   $name"; else
    fails=$((fails+1)); echo "FAIL $name (exit $got, wanted $want; texts: ${texts[*]})"; sed 's/^/     | /' "$tmp/out"; fi
}

check help 0 "usage: slr <command>" "config" -- "$slr" --help
check no-args 2 "usage: slr <command>" -- "$slr"
check version 0 "slr 0." "MPI" "HDF5" "OpenBLAS" "ScaLAPACK" -- "$slr" --version
check unknown-command 2 'unknown command "frobnicate"' "usage:" -- "$slr" frobnicate
check unknown-global-option 2 'unknown option "--frob"' -- "$slr" --frob
check unknown-option 2 "unknown option --bogus" "usage: slr config" -- "$slr" config --bogus
check missing-value 2 "option --set needs a value" -- "$slr" config --set
check command-help 0 "usage: slr config" "--set" -- "$slr" config --help
check config-demo 0 "k1: 6" "root: data/demo/source" -- "$slr" config "$src/configs/demo.yaml"
check set-bad-type 1 "solver.adapt.lr" '"abc"' -- "$slr" config "$src/configs/demo.yaml" --set solver.adapt.lr=abc
check set-unknown 1 '"no.such"' -- "$slr" config "$src/configs/demo.yaml" --set no.such=1
check set-range 1 'refine.alpha: "7"' "out of range" -- "$slr" config --set refine.alpha=7
check missing-file 1 "nope.yaml: cannot open configuration" -- "$slr" config "$tmp/nope.yaml"
printf 'cluster:\n  k1: 20\n  eps: wide\n' > "$tmp/bad.yaml"
check file-bad-type 1 'bad.yaml:3: cluster.eps: "wide" is not a number' -- "$slr" config "$tmp/bad.yaml"
printf 'cluster:\n  k1: [20\n' > "$tmp/syntax.yaml"
check yaml-syntax 1 "syntax.yaml:" "YAML syntax error" -- "$slr" config "$tmp/syntax.yaml"
check keys 0 "refine.alpha" "cluster.min_samples" -- "$slr" config --keys
# the same on 2 ranks: one message, same exit code, no hang
mpi=("${MPIEXEC:-mpiexec}" -n 2)
check mpi-set-bad-type 1 'solver.adapt.lr: "abc"' -- "${mpi[@]}" "$slr" config --set solver.adapt.lr=abc
check mpi-ok 0 "seed: 1" -- "${mpi[@]}" "$slr" config "$src/configs/demo.yaml"
if [ "$(grep -c 'solver.adapt.lr: "abc"' <("${mpi[@]}" "$slr" config --set solver.adapt.lr=abc 2>&1))" != 1 ]; then
  fails=$((fails+1)); echo "FAIL mpi-one-message (the error should be printed once, by rank 0)"
else echo "ok   mpi-one-message"; fi
n=$((n+1))

echo "$((n-fails)) passed, $fails failed"
[ $fails -eq 0 ]
