#!/usr/bin/env bash
# slr evaluate against the NumPy port of eval_market1501 at MSMT17's test size
# (11,659 queries x 82,161 gallery, D = 2048, random clustered features), side
# by side in one run: wall time, peak resident memory per process, the ratio,
# and the largest difference of the metrics.
#
# Usage: tools/bench/evaluate.sh [BUILD] [WORKDIR]
#   env NQ, NG, DIM change the size; CORETYPES lists the OPENBLAS_CORETYPE
#   settings to run ("default" = what OpenBLAS detects), default "default SkylakeX".
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
work=${2:-$(mktemp -d)}
nq=${NQ:-11659}
ng=${NG:-82161}
dim=${DIM:-2048}
coretypes=${CORETYPES:-"default SkylakeX"}
py=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$work"
feat=$work/eval_${nq}x${ng}x${dim}.h5
if [ ! -f "$feat" ]; then
  echo "writing $feat"
  "$py" "$src/tools/bench/make_eval_features.py" "$feat" --nq "$nq" --ng "$ng" --dim "$dim"
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other processes on the machine disturb the times)"
results=()
# run NAME CORETYPE COMMAND...: time and peak RSS (largest process) of one run
run() {
  local name=$1 core=$2
  shift 2
  local envs=()
  [ "$core" = default ] || envs=(OPENBLAS_CORETYPE="$core")
  echo "== $name (OpenBLAS core: $core)"
  env "${envs[@]}" /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@"
  read -r secs kb <"$work/time.txt"
  results+=("$name|$core|$secs|$((kb / 1024))")
}
for core in $coretypes; do
  run "slr evaluate, 1 rank x 2 threads" "$core" \
    "$build/slr" evaluate --features "$feat" --json "$work/slr1_$core.json"
  run "slr evaluate, 2 ranks x 1 thread" "$core" \
    mpiexec -n 2 "$build/slr" evaluate --features "$feat" --json "$work/slr2_$core.json"
  run "NumPy eval_market1501 (2 threads)" "$core" \
    "$py" "$src/tools/ref/eval_reference.py" "$feat" --json "$work/numpy_$core.json"
done
echo
echo "| run | OpenBLAS core | wall s | peak RSS MB (per process) |"
echo "| --- | --- | ---: | ---: |"
for r in "${results[@]}"; do
  IFS='|' read -r name core secs mb <<<"$r"
  echo "| $name | $core | $secs | $mb |"
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$py" - "$work" $coretypes <<'PY'
import json, sys, glob, os
work, cores = sys.argv[1], sys.argv[2:]
for core in cores:
    ref = json.load(open(os.path.join(work, "numpy_%s.json" % core)))
    for n in (1, 2):
        s = json.load(open(os.path.join(work, "slr%d_%s.json" % (n, core))))
        diff = max([abs(s["mAP"] - ref["mAP"]), abs(s["mINP"] - ref["mINP"])] +
                   [abs(a - b) for a, b in zip(s["cmc"], ref["cmc"])])
        print("core %s, %d rank(s): mAP %.4f%% (NumPy %.4f%%), largest metric difference %.2e"
              % (core, n, 100 * s["mAP"], 100 * ref["mAP"], diff))
PY
