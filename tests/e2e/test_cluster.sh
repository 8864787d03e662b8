#!/bin/bash
# slr cluster end to end: features written by h5py (rows not normalised)
# give scikit-learn's labels on 1, 2 and 3 ranks; every bad input stops with
# exit code 1 (2 for usage), a message naming the dataset and the problem,
# and no output file.
set -u
SLR=$1
SRC=$2
MPIEXEC=${MPIEXEC:-mpiexec}
FIX=$SRC/tests/fixtures/cluster
TMP=$(mktemp -d "${TMPDIR:-/tmp}/slr-e2e-cluster-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail=0


labels_plain() {
  h5dump -A 0 -d "$2" -y -w 0 -m '%d' "$1" | awk '/DATA \{/{on=1;next} /\}/{on=0} on' |
    tr ',' '\n' | tr -d ' ' | grep -E '^-?[0-9]+$'
}

for np in 1 2 3; do
  out=$TMP/labels_$np.h5
  if ! "$MPIEXEC" -n $np "$SLR" cluster --features "$FIX/e2e_raw.h5" --out "$out" \
      --k1 30 --k2 6 --eps 0.6 --min-samples 4 > "$TMP/log_$np" 2>&1; then
    echo "FAIL: slr cluster on $np ranks exited non-zero"; cat "$TMP/log_$np"; fail=1; continue
  fi
  grep -q "clusters 36  outliers 32" "$TMP/log_$np" ||
    { echo "FAIL: summary on $np ranks:"; cat "$TMP/log_$np"; fail=1; }
  if ! diff <(labels_plain "$out" /labels) <(labels_plain "$FIX/e2e_raw.h5" /expected_labels) > /dev/null; then
    echo "FAIL: labels on $np ranks differ from scikit-learn's"; fail=1
  fi
  n=$(labels_plain "$out" /labels | wc -l)
  [ "$n" = 800 ] || { echo "FAIL: $n labels, expected 800"; fail=1; }
  h5dump -a /n_clusters "$out" | grep -q "(0): 36" || { echo "FAIL: n_clusters attribute"; fail=1; }
  h5dump -a /n_outliers "$out" | grep -q "(0): 32" || { echo "FAIL: n_outliers attribute"; fail=1; }
  h5dump -a /slr_format "$out" | grep -q '"labels"' || { echo "FAIL: slr_format attribute"; fail=1; }
  # a progress line at every tile (interval 1 ns): the last one counts all of
  # rank 0's pairs of rows (on 1 rank: the 800 x 801 / 2 of the triangle)
  SLR_PROGRESS_INTERVAL=1e-9 "$MPIEXEC" -x SLR_PROGRESS_INTERVAL -n $np "$SLR" cluster \
    --features "$FIX/e2e_raw.h5" --out "$TMP/prog_$np.h5" --k1 30 --k2 6 --eps 0.6 \
    --min-samples 4 > "$TMP/prog_$np" 2>&1
  last=$(grep "kNN (rank 0's pairs):" "$TMP/prog_$np" | tail -1)
  if ! echo "$last" | grep -qE "100\.0% ([0-9]+)/\1 pairs, .* took"; then
    echo "FAIL: kNN progress on $np ranks: last line '$last'"; cat "$TMP/prog_$np"; fail=1
  fi
  if [ $np = 1 ] && ! echo "$last" | grep -q " 320400/320400 pairs"; then
    echo "FAIL: kNN progress on 1 rank counts other than 320400 pairs: '$last'"; fail=1
  fi
done
# at the default interval (10 s) a short product prints no progress line
grep -q "kNN (rank 0's pairs)" "$TMP/log_2" && { echo "FAIL: progress line in a short run"; fail=1; }

# expect CODE PATTERN args...: exit code, message, no output left behind
expect() {
  local code=$1 pattern=$2; shift 2
  rm -f "$TMP/bad.h5" "$TMP/bad.h5.tmp"
  # bad inputs on 2 ranks (the ranks must agree and stop), usage errors on 1
  local np=2
  [ "$code" = 2 ] && np=1
  "$MPIEXEC" -n $np "$SLR" cluster "$@" > "$TMP/out" 2>&1
  local rc=$?
  if [ $rc -ne "$code" ]; then
    echo "FAIL: exit $rc (expected $code) for: $*"; cat "$TMP/out"; fail=1
  elif ! grep -qE -- "$pattern" "$TMP/out"; then
    echo "FAIL: message for: $* does not match /$pattern/:"; cat "$TMP/out"; fail=1
  fi
  if [ -e "$TMP/bad.h5" ] || [ -e "$TMP/bad.h5.tmp" ]; then
    echo "FAIL: output left behind for: $*"; fail=1
  fi
}

expect 1 "e2e_bad_missing.h5: dataset /features not found" --features "$FIX/e2e_bad_missing.h5" --out "$TMP/bad.h5"
expect 1 "e2e_bad_rank.h5: dataset /features has 1 dimension, expected 2" --features "$FIX/e2e_bad_rank.h5" --out "$TMP/bad.h5"
expect 1 "e2e_bad_nan.h5: dataset /features: row 17 has a non-finite value \(nan\) in column 3" --features "$FIX/e2e_bad_nan.h5" --out "$TMP/bad.h5"
expect 1 "e2e_bad_zero.h5: dataset /features: row 5 is all zeros" --features "$FIX/e2e_bad_zero.h5" --out "$TMP/bad.h5"
expect 1 "e2e_small.h5: dataset /features has 20 rows, too few for k1 = 30" --features "$FIX/e2e_small.h5" --out "$TMP/bad.h5"
expect 1 "no_such_file.h5" --features "$TMP/no_such_file.h5" --out "$TMP/bad.h5"
expect 2 "--features and --out are required" --features "$FIX/e2e_raw.h5"
expect 2 "cluster.k2 7 is larger than cluster.k1 5" --features "$FIX/e2e_raw.h5" --out "$TMP/bad.h5" --k1 5 --k2 7
expect 2 "--eps -1: cluster.eps: \"-1\" is out of range" --features "$FIX/e2e_raw.h5" --out "$TMP/bad.h5" --eps -1
expect 2 "--min-samples 0: cluster.min_samples: \"0\" is out of range" --features "$FIX/e2e_raw.h5" --out "$TMP/bad.h5" --min-samples 0

[ $fail = 0 ] && echo "test_cluster.sh: passed"
exit $fail
