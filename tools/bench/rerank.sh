#!/usr/bin/env bash
# slr evaluate with and without test-time re-ranking at Market-1501's test
# size (3,368 queries x 15,913 gallery, D = 2048, random clustered features
# from tools/bench/make_eval_features.py, 750 identities, 6 cameras): wall
# time and peak resident memory (largest process) of each run, the metrics,
# and whether 1 and 2 ranks give the same JSON.
#
# Usage: tools/bench/rerank.sh [BUILD] [WORKDIR]   (env NQ, NG, DIM change the size)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
work=${2:-$(mktemp -d)}
nq=${NQ:-3368}
ng=${NG:-15913}
dim=${DIM:-2048}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$work"
feat=$work/rerank_${nq}x${ng}x${dim}.h5
[ -f "$feat" ] || /usr/bin/python3 "$src/tools/bench/make_eval_features.py" "$feat" \
  --nq "$nq" --ng "$ng" --dim "$dim" --ids 750 --cams 6 --seed 1
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# run NAME NP ARGS...: one slr evaluate run, its time, peak RSS and metrics
run() {
  local name=$1 np=$2
  shift 2
  local cmd=("$build/slr")
  [ "$np" = 1 ] || cmd=(mpiexec -n "$np" "$build/slr")
  local log=$work/$name.log
  /usr/bin/time -v "${cmd[@]}" evaluate --features "$feat" --json "$work/$name.json" "$@" > "$log" 2>&1
  printf '%-22s %s ranks  wall %s  peak RSS %s MB  %s\n' "$name" "$np" \
    "$(grep 'Elapsed' "$log" | awk '{print $NF}')" \
    "$(grep 'Maximum resident' "$log" | awk '{printf "%.0f", $NF / 1024}')" \
    "$(grep -E '^(mAP|Rank-1 )' "$log" | tr -s ' ' | tr '\n' ' ')"
  grep 'evaluate: read' "$log" | sed 's/^/    /'
}
run plain 1
run rerank_jaccard 1 --rerank
run rerank_zhong 1 --rerank --rerank-variant zhong
run rerank_jaccard_2 2 --rerank
cmp -s "$work/rerank_jaccard.json" "$work/rerank_jaccard_2.json" && echo "1 and 2 ranks: same JSON" ||
  echo "1 and 2 ranks: JSON differs"
