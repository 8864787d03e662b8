#!/usr/bin/env bash
# The built-in demo: two synthetic domains drawn by slr (a flat "synthetic"
# source, a textured "realistic" target), one pretraining on the source, then
# two adaptations from the same pretrained model and seed: the baseline
# (refine: none, DBSCAN labels as they are) and SLR (refine: hierarchical).
# Prints a table (source-only, baseline, SLR: mAP, Rank-1, label ARI) and
# writes a plot of mAP and label quality per epoch. Images are 64x32 and the
# model a narrow ResNet-18 trained from scratch, so that all of it runs in
# minutes on 2 cores.
#
#   tools/demo.sh [--ranks N] [--modes "none hierarchical argmax"]
#
# Installs what it needs (the build's Debian packages; python3-matplotlib and
# python3-yaml for the table and the plot). Results: runs/demo/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ranks=2
modes="none hierarchical"
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks="$2"; shift ;;
    --modes) modes="$2"; shift ;;
    *) echo "demo.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

"$here/tools/setup.sh"
missing=()
for p in python3 python3-matplotlib python3-yaml; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

slr="$here/build/slr"
mpirun=(mpiexec -n "$ranks")
cd "$here"
data=data/demo
out=runs/demo
t0=$(date +%s)

echo "== synthetic domains ($data)"
rm -rf "$data" "$out"
mkdir -p "$data" "$out"
"${mpirun[@]}" "$slr" synth "$data/source" --style synthetic --ids 160 --cams 4 --per-cam 4 --height 64 --width 32 \
  --seed 11 --difficulty 0.3 --preview "$out/source_preview.png" --preview-rows 6
"${mpirun[@]}" "$slr" synth "$data/target" --style realistic --ids 160 --cams 4 --per-cam 4 --height 64 --width 32 \
  --seed 12 --difficulty 0.3 --preview "$out/target_preview.png" --preview-rows 6

echo "== pretrain on the source domain ($ranks ranks)"
"${mpirun[@]}" "$slr" train --config configs/demo.yaml --out "$out/pretrain" --set "train.stages=[pretrain]"

names=(source-only)
runs=("$out/pretrain")
for mode in $modes; do
  echo "== adapt to the target domain, refine: $mode ($ranks ranks)"
  "${mpirun[@]}" "$slr" train --config configs/demo.yaml --out "$out/$mode" \
    --set "train.stages=[adapt]" --set "model.pretrained=$out/pretrain/pretrain.h5" --set "refine.mode=$mode"
  case "$mode" in
    none) names+=(baseline) ;;
    hierarchical) names+=(SLR) ;;
    *) names+=("$mode") ;;
  esac
  runs+=("$out/$mode")
done

echo "== results (target domain)"
name_list=$(IFS=,; echo "${names[*]}")
/usr/bin/python3 tools/runs.py table "${runs[@]}" --names "$name_list" | tee "$out/table.md"
/usr/bin/python3 tools/runs.py plot "${runs[@]:1}" --names "$(IFS=,; echo "${names[*]:1}")" \
  --out "$out/demo.png" --title "slr demo: synthetic -> realistic"
echo "== demo done in $(( $(date +%s) - t0 )) s: $out (table.md, demo.png, one folder per run)"
