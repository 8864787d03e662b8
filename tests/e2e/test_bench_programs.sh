#!/bin/bash
# The benchmark programs of tools/bench that CMake builds into build/bench/
# (knn_bench, pca_bench, refine_step, refine_bench, agglomerative_bench,
# cluster_step) each run once on a tiny input (a few hundred rows): exit
# code 0 and the fields their scripts read. A missing program or a crash
# fails the test, so that the benchmarks cannot rot unseen.
set -u
SLR=$1
SRC=$2
MPIEXEC=${MPIEXEC:-mpiexec}
BENCH=$(dirname "$SLR")/bench
FIX=$SRC/tests/fixtures/cluster
TMP=$(mktemp -d "${TMPDIR:-/tmp}/slr-e2e-bench-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail=0

# run NAME RANKS ARGS...: the program's output in $TMP/NAME.log; 1 if missing or failed
run() {
  local name=$1 np=$2
  shift 2
  if [ ! -x "$BENCH/$name" ]; then
    echo "FAIL: $BENCH/$name missing (SLR_BUILD_BENCH=ON builds it)"
    fail=1
    return 1
  fi
  local rc=0
  if [ "$np" = 0 ]; then
    "$BENCH/$name" "$@" > "$TMP/$name.log" 2>&1 || rc=$?
  else
    "$MPIEXEC" -n "$np" "$BENCH/$name" "$@" > "$TMP/$name.log" 2>&1 || rc=$?
  fi
  if [ "$rc" != 0 ]; then
    echo "FAIL: $name exited with $rc:"
    cat "$TMP/$name.log"
    fail=1
    return 1
  fi
}

# has NAME REGEX...: every pattern is in NAME's output
has() {
  local name=$1
  shift
  for re in "$@"; do
    grep -qE -- "$re" "$TMP/$name.log" || {
      echo "FAIL: $name: no line matching '$re' in:"
      cat "$TMP/$name.log"
      fail=1
      return 1
    }
  done
}

# 800 x 32 features with 36 clusters and 32 outliers (scikit-learn's labels)
if run knn_bench 2 "$FIX/e2e_raw.h5" 30 8; then
  has knn_bench 'n 800 d 32 k 30 ranks 2 ' 'full [0-9.]+ s' 'pruned [0-9.]+ s' \
    'different ids 0 values 0' 'bytes/rank max full [0-9.]+ MB'
fi
if run pca_bench 2 32 300 8; then
  has pca_bench 'D 32 N 300 p 8 ranks 2 +ssyevd' 'pssyevd +covariance [0-9.]+ s' \
    'ssyevr +covariance [0-9.]+ s'
  # the eigenvalues of the solvers agree
  awk '/vs ssyevd/ {if ($NF + 0 > 1e-4) bad = 1} END {exit bad}' "$TMP/pca_bench.log" ||
    { echo "FAIL: pca_bench: eigenvalues differ between the solvers"; cat "$TMP/pca_bench.log"; fail=1; }
fi
if run refine_bench 2 2000 40 0.05 0.15; then
  has refine_bench '^CPU avx512f (yes|no), OpenBLAS core' '^N=2000 K=40 .*refine.mode hierarchical linkage average' \
    '^pairs [0-9]+ \(clustered [0-9]+\)' '^refined: [0-9]+ clusters' 'slr_refine [0-9.]+ s .*peak RSS'
fi
if run agglomerative_bench 0 300 50 300 0.5; then
  has agglomerative_bench '^CPU .*OpenBLAS core' '^n=300 points, d=50' 'sparse average +[0-9.]+ s'
  [ "$(grep -c 'labels identical' "$TMP/agglomerative_bench.log")" = 4 ] ||
    { echo "FAIL: agglomerative_bench: sparse and dense cuts differ"; cat "$TMP/agglomerative_bench.log"; fail=1; }
fi
if "$MPIEXEC" -n 2 "$SLR" cluster --features "$FIX/e2e_raw.h5" --out "$TMP/labels.h5" > "$TMP/cluster.log" 2>&1; then
  if run refine_step 2 "$TMP/labels.h5"; then
    has refine_step 'refine: n 800 ranks 2 +K_prev [0-9]+ K_cur 36 +distinct pairs m [0-9]+' \
      'peak memory of the busiest rank [0-9.]+ MiB'
  fi
else
  echo "FAIL: slr cluster (input of refine_step):"
  cat "$TMP/cluster.log"
  fail=1
fi
if run cluster_step 2 "$FIX/e2e_raw.h5" "$TMP/step.jsonl"; then
  has cluster_step '^# CPU: .*avx512: .*OpenBLAS core' '^# N = 800, D = 32, k1 30' \
    'DBSCAN 36 clusters, 32 outliers' '^refine +[0-9.]+' 'peak memory summed over the ranks'
  # one line per rank and phase (5) plus one total per rank, with the fields
  lines=$(wc -l < "$TMP/step.jsonl")
  [ "$lines" = 12 ] || { echo "FAIL: cluster_step: $lines JSON lines, expected 12"; fail=1; }
  for key in '"rank": 1' '"phase": "knn"' '"phase": "total"' '"wall_s": ' '"cpu_s": ' \
    '"peak_rss_mib": ' '"bytes_sent": [1-9]' '"clusters": 36'; do
    grep -qE "$key" "$TMP/step.jsonl" || { echo "FAIL: cluster_step: no $key in the log"; fail=1; }
  done
fi
exit $fail
