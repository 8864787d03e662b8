#!/bin/bash
# Input pipeline throughput: the slr loader (identity sampler, libjpeg-turbo
# decoding, PIL-exact bicubic resize to 256x128, the peers' augmentation,
# worker threads) against a torchvision DataLoader (PIL, worker processes)
# with the peers' train transform, on a synthetic Market-like domain of
# 128x64 JPEG images (the size of Market-1501 crops). Batches of 64.
#
#   tools/bench/loader.sh [path/to/slr] [batches] [workers]
set -euo pipefail
SLR=${1:-build/slr}
BATCHES=${2:-40}
WORKERS=${3:-2}
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$SLR" synth "$T/dom" --style realistic --ids 200 --cams 6 --per-cam 3 --height 128 --width 64 \
  --seed 5 >/dev/null
set_common="--side source --set data.source.format=market1501 --set data.source.root=$T/dom \
  --set train.pretrain.batch_size=64 --set train.pretrain.instances=4 --set data.workers=$WORKERS \
  --set data.height=256 --set data.width=128 --set data.interpolation=bicubic"
rate() { grep '^images_per_second' | awk '{print $2}'; }
slr_nocache=$("$SLR" data $set_common --set data.cache=false --bench "$BATCHES" 2>&1 | rate)
slr_cache=$("$SLR" data $set_common --set data.cache=true --bench "$BATCHES" 2>&1 | rate)
torch=$("$PY" "$HERE/loader_torch.py" "$T/dom" "$BATCHES" 64 "$WORKERS" 2>/dev/null | rate)
printf 'slr loader, no cache:      %8.1f images/s\n' "$slr_nocache"
printf 'slr loader, cache on:      %8.1f images/s\n' "$slr_cache"
printf 'torchvision DataLoader:    %8.1f images/s (%s workers)\n' "$torch" "$WORKERS"
awk -v a="$slr_nocache" -v b="$slr_cache" -v t="$torch" \
  'BEGIN { printf "ratio slr/torchvision: %.2f (no cache), %.2f (cache)\n", a / t, b / t }'
