#!/usr/bin/env bash
# slr evaluate: the metrics of the fixture agree on 1 and 2 ranks and with
# the NumPy reference values stored in the fixture (checked to 4 decimals in
# percent here; exactly in tests/mpi/test_eval.c), also with --rerank
# (tests/mpi/test_rerank.c checks it in full); each bad input stops with
# its message, exit code 1 (2 for usage errors), and leaves no JSON behind.
set -u
slr=$1
src=$2
fx=$src/tests/fixtures/eval
mpiexec=${MPIEXEC:-mpiexec}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# ---- good input ------------------------------------------------------------
out1=$("$slr" evaluate --features "$fx/market_small.h5" --json "$tmp/m1.json" 2>&1) || {
  echo "FAIL: evaluate on 1 rank: $out1"; exit 1; }
out2=$("$mpiexec" -n 2 "$slr" evaluate --features "$fx/market_small.h5" --json "$tmp/m2.json" 2>&1) || {
  echo "FAIL: evaluate on 2 ranks: $out2"; exit 1; }
# the reference (tools/ref/eval_fixture.py): mAP 57.757463%, mINP 41.161592%, rank-1 61.818182%
for want in "mAP       57.76%" "mINP      41.16%" "Rank-1    61.82%" "Rank-20   98.18%" \
            "63 queries (55 with a match), 396 gallery"; do
  grep -qF "$want" <<<"$out1" || { echo "FAIL: 1 rank output lacks '$want':"; echo "$out1"; fail=1; }
done
grep -q '"mAP": 0.57757463' "$tmp/m1.json" || { echo "FAIL: JSON mAP"; cat "$tmp/m1.json"; fail=1; }
grep -q '"mINP": 0.41161591' "$tmp/m1.json" || { echo "FAIL: JSON mINP"; fail=1; }
ncmc=$(grep '"cmc"' "$tmp/m1.json" | tr ',' '\n' | wc -l)
[ "$ncmc" = 50 ] || { echo "FAIL: JSON cmc has $ncmc entries, expected 50"; fail=1; }
cmp -s "$tmp/m1.json" "$tmp/m2.json" || { echo "FAIL: 1 and 2 ranks differ"; diff "$tmp/m1.json" "$tmp/m2.json"; fail=1; }

# ---- re-ranking ----------------------------------------------------------------
# the reference (tools/ref/rerank_fixture.py, k1 20, k2 6, lambda 0.3, variant
# jaccard): euclidean mAP 63.494468%, mINP 53.849463%, rank-1 60.465116%;
# cosine mAP 64.857904%; k1 10, k2 1, lambda 0.6: mAP 56.504148%; variant
# zhong: euclidean mAP 65.705712%
rr=$fx/rerank_small.h5
out1=$("$slr" evaluate --features "$rr" --rerank --json "$tmp/r1.json" 2>&1) || {
  echo "FAIL: evaluate --rerank on 1 rank: $out1"; exit 1; }
out2=$("$mpiexec" -n 2 "$slr" evaluate --features "$rr" --rerank --json "$tmp/r2.json" 2>&1) || {
  echo "FAIL: evaluate --rerank on 2 ranks: $out2"; exit 1; }
for want in "mAP       63.49%" "mINP      53.85%" "Rank-1    60.47%" \
            "59 queries (43 with a match), 363 gallery, metric euclidean, re-ranked (jaccard, k1 20, k2 6, lambda 0.3)"; do
  grep -qF "$want" <<<"$out1" || { echo "FAIL: --rerank output lacks '$want':"; echo "$out1"; fail=1; }
done
grep -q '"mAP": 0.63494467' "$tmp/r1.json" || { echo "FAIL: --rerank JSON mAP"; cat "$tmp/r1.json"; fail=1; }
grep -q '"rerank": {"variant": "jaccard", "k1": 20, "k2": 6, "lambda": 0.3}' "$tmp/r1.json" || { echo "FAIL: --rerank JSON parameters"; fail=1; }
cmp -s "$tmp/r1.json" "$tmp/r2.json" || { echo "FAIL: --rerank: 1 and 2 ranks differ"; diff "$tmp/r1.json" "$tmp/r2.json"; fail=1; }
out=$("$slr" evaluate --features "$rr" --rerank --metric cosine 2>&1)
grep -qF "mAP       64.86%" <<<"$out" || { echo "FAIL: --rerank --metric cosine: $out"; fail=1; }
out=$("$slr" evaluate --features "$rr" --rerank --rerank-k1 10 --rerank-k2 1 --rerank-lambda 0.6 2>&1)
grep -qF "mAP       56.50%" <<<"$out" || { echo "FAIL: --rerank k1 10 k2 1 lambda 0.6: $out"; fail=1; }
out=$("$slr" evaluate --features "$rr" --rerank --rerank-variant zhong 2>&1)
grep -qF "mAP       65.71%" <<<"$out" || { echo "FAIL: --rerank --rerank-variant zhong: $out"; fail=1; }
grep -q '"rerank": false' "$tmp/m1.json" || { echo "FAIL: JSON without re-ranking lacks \"rerank\": false"; fail=1; }

# ---- bad input: message, exit code, no output --------------------------------
# (on 2 ranks the NaN of bad_nan.h5, gallery row 13, is seen by rank 1 only)
# check NP CODE MESSAGE ARGS...: NP ranks (1 = without mpiexec, faster)
check() {
  local np=$1 code=$2 msg=$3
  shift 3
  local run=("$slr")
  [ "$np" = 1 ] || run=("$mpiexec" -n "$np" "$slr")
  rm -f "$tmp/bad.json" "$tmp/bad.json.tmp"
  local out rc
  out=$("${run[@]}" evaluate "$@" --json "$tmp/bad.json" 2>&1)
  rc=$?
  if [ "$rc" != "$code" ]; then echo "FAIL: $* exited $rc, expected $code: $out"; fail=1; fi
  if ! grep -qF -- "$msg" <<<"$out"; then echo "FAIL: $* message lacks '$msg': $out"; fail=1; fi
  if [ -e "$tmp/bad.json" ] || [ -e "$tmp/bad.json.tmp" ]; then echo "FAIL: $* left a JSON file"; fail=1; fi
}
check 2 1 "bad_missing.h5: dataset /gallery/camids is missing" --features "$fx/bad_missing.h5"
check 1 1 "bad_rank.h5: /query/features has 3 dimensions, expected 2" --features "$fx/bad_rank.h5"
check 1 1 "bad_type.h5: /gallery/pids has type float64, expected an integer type" --features "$fx/bad_type.h5"
check 1 1 "bad_count.h5: /gallery/pids has 19 entries but /gallery/features has 20 rows" --features "$fx/bad_count.h5"
check 1 1 "bad_dim.h5: /query/features has dimension 8 but /gallery/features has 9" --features "$fx/bad_dim.h5"
check 2 1 "bad_nan.h5: /gallery/features row 13 has a non-finite value (nan)" --features "$fx/bad_nan.h5"
check 1 1 "bad_empty.h5: /query/features has 0 rows: the query set is empty" --features "$fx/bad_empty.h5"
check 2 1 "bad_nomatch.h5: no query of /query/pids has a match in /gallery/pids" --features "$fx/bad_nomatch.h5"
check 1 1 "no_such.h5" --features "$tmp/no_such.h5"
check 1 2 "--features F.h5 is required"
check 1 2 "--metric manhattan: eval.metric: \"manhattan\" is not one of euclidean|cosine" --features "$fx/market_small.h5" --metric manhattan
check 1 2 "--rerank-lambda 1.5: eval.rerank_lambda: \"1.5\" is out of range (0 to 1)" --features "$rr" --rerank --rerank-lambda 1.5
check 1 2 "eval.rerank_k2 6 is larger than eval.rerank_k1 5" --features "$rr" --rerank --rerank-k1 5
check 1 1 "re-ranking: k1 = 9999 must be in 1..422" --features "$rr" --rerank --rerank-k1 9999
check 1 2 "--rerank-variant bogus: eval.rerank_variant: \"bogus\" is not one of jaccard|zhong" --features "$rr" --rerank --rerank-variant bogus
exit $fail
