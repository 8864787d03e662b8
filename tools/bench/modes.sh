#!/usr/bin/env bash
# The SLR ablation on the synthetic task (the demo's domains and model):
# one pretraining, then adaptation with refine none / argmax / hierarchical
# over several seeds, every run from the same pretrained weights, on R ranks.
# Prints mean +- std over seeds of mAP, Rank-1 and label ARI per mode
# (tools/runs.py sweep) and writes ROOT/report/.
#
#   tools/bench/modes.sh [--ranks 2] [--seeds "1 2 3"] [--root runs/modes] [--set k=v ...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ranks=2; seeds="1 2 3"; root=runs/modes; modes="none argmax hierarchical"; extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks="$2"; shift ;;
    --seeds) seeds="$2"; shift ;;
    --root) root="$2"; shift ;;
    --modes) modes="$2"; shift ;;
    --set) extra+=(--set "$2"); shift ;;
    *) echo "modes.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
cd "$here"
slr=build/slr
run=(mpiexec -n "$ranks" "$slr")
data=data/demo
if [ ! -d "$data/source/bounding_box_train" ] || [ ! -d "$data/target/bounding_box_train" ]; then
  "${run[@]}" synth "$data/source" --style synthetic --ids 160 --cams 4 --per-cam 4 --height 64 --width 32 --seed 11 --difficulty 0.3
  "${run[@]}" synth "$data/target" --style realistic --ids 160 --cams 4 --per-cam 4 --height 64 --width 32 --seed 12 --difficulty 0.3
fi
mkdir -p "$root"
if [ ! -f "$root/pretrain/pretrain.h5" ]; then
  "${run[@]}" train --config configs/demo.yaml --out "$root/pretrain" --set "train.stages=[pretrain]" ${extra[@]+"${extra[@]}"}
fi
mkdir -p "$root/adapt"
for seed in $seeds; do
  for mode in $modes; do
    out="$root/adapt/$mode-seed$seed"
    [ -f "$out/summary.json" ] && continue
    start=$(date +%s)
    "${run[@]}" train --config configs/demo.yaml --out "$out" --set "train.stages=[adapt]" \
      --set "model.pretrained=$root/pretrain/pretrain.h5" --set "refine.mode=$mode" --set "run.seed=$seed" \
      ${extra[@]+"${extra[@]}"} > "$out.log" 2>&1
    echo "$mode seed $seed: $(( $(date +%s) - start )) s"
  done
done
/usr/bin/python3 tools/runs.py sweep "$root/adapt" --out "$root/report"
