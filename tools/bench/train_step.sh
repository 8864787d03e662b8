#!/bin/bash
# CNN engine benchmark, slr against PyTorch side by side in one run:
#   - ResNet-50 at 256x128 (last stride 1, GeM, BNNeck, 751 classes) and the
#     demo's narrow ResNet-18 (16 channels in the first stage) at 64x32;
#   - a training step at batch 32 (forward, cross-entropy, backward, Adam)
#     and inference at batch 64;
#   - each pair (slr, then torch) REPEATS times, alternating, so both see
#     the same load; the best of each and the ratio of the bests;
#   - the fraction of the limit the node's sgemm rate sets (measured in
#     the same run), the peak memory;
#   - slr training on 1, 2 and 4 ranks (data parallel, SyncBN), threads per
#     rank = cores / ranks; more ranks than cores are oversubscribed, which
#     the output says.
# Not a test. nn_step is built by CMake (target nn_step, SLR_BUILD_BENCH=ON).
#
# Usage: tools/bench/train_step.sh [BUILD_DIR] [ITERS] [REPEATS] [CASES]
#   defaults: build 2 2 "r50 r18n"; CASES picks from r50 (ResNet-50 256x128)
#   and r18n (narrow ResNet-18 64x32). SCALING=0 skips the rank runs;
#   SCALING_CASES (default "r18n") chooses their networks.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
ITERS=${2:-2}
REPEATS=${3:-2}
CASES=${4:-"r50 r18n"}
SCALING=${SCALING:-1}
SCALING_CASES=${SCALING_CASES:-r18n}
BIN=$BUILD/nn_step
[ -x "$BIN" ] || { echo "train_step.sh: $BIN missing (cmake --build $BUILD --target nn_step)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
CORES=$(nproc)

model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
avx512=$(grep -o 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')
echo "# $(date -u '+%F %T UTC'), $CORES cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# CPU: $model; avx512: ${avx512:-none}"
echo "# $("$BUILD/slr" --version | grep -E 'OpenBLAS|CNN' | sed 's/^ *//' | tr '\n' ';')"
echo "# torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__, "oneDNN", torch.backends.mkldnn.is_available())')"

# case -> "arch batch_train batch_infer H W width"
params() {
  case "$1" in
    r50) echo "resnet50 32 64 256 128 64" ;;
    r18n) echo "resnet18 32 64 64 32 16" ;;
    *) echo "train_step.sh: unknown case $1 (r50, r18n)" >&2; exit 2 ;;
  esac
}
rate() { sed -E 's/.*: ([0-9.]+) images\/s.*/\1/'; }
best() { sort -g | tail -1; }

for c in $CASES; do
  read -r arch bt bi H W width <<< "$(params "$c")"
  for mode in train infer; do
    B=$bt; [ "$mode" = infer ] && B=$bi
    s_all=""; t_all=""
    for rep in $(seq "$REPEATS"); do
      s=$("$BIN" "$mode" "$arch" "$B" "$H" "$W" "$ITERS" 1 "$CORES" "$width" | grep '^slr')
      t=$(/usr/bin/python3 "$HERE/torch_step.py" "$mode" "$arch" "$B" "$H" "$W" "$ITERS" "$CORES" "$width" | tail -1)
      echo "$s"
      echo "$t"
      s_all="$s_all $(echo "$s" | rate)"; t_all="$t_all $(echo "$t" | rate)"
    done
    sb=$(echo $s_all | tr ' ' '\n' | best); tb=$(echo $t_all | tr ' ' '\n' | best)
    awk -v a="$sb" -v b="$tb" -v m="$mode" -v n="$arch/$width ${H}x$W" \
      'BEGIN {printf "== %s %s: slr %.2f, torch %.2f images/s (best of each), ratio %.2f\n", n, m, a, b, a / b}'
  done
done

[ "$SCALING" = 1 ] || exit 0
for c in $SCALING_CASES; do
  read -r arch bt bi H W width <<< "$(params "$c")"
  for R in 1 2 4; do
    T=$((CORES / R)); [ "$T" -lt 1 ] && T=1
    over=""; flag=""
    if [ "$R" -gt "$CORES" ]; then over=" (oversubscribed: $R ranks on $CORES cores)"; flag=--oversubscribe; fi
    s=$(mpiexec $flag --bind-to none -n "$R" "$BIN" train "$arch" "$bt" "$H" "$W" "$ITERS" 1 "$T" "$width" | grep '^slr')
    echo "== scaling $arch/$width ${H}x$W train, $R ranks x $T threads$over: $(echo "$s" | rate) images/s"
    echo "   $s"
  done
done
