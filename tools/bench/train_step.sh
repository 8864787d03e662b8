#!/bin/bash
# CNN engine benchmark: slr vs PyTorch images/s for a ResNet at 256x128
# (training step at batch 32: forward, cross-entropy, backward, Adam;
# inference at batch 64), with the ratio and the peak memory of each.
# Not a test. Builds tools/bench/nn_step.c against the libraries of BUILD.
#
# Usage: tools/bench/train_step.sh [BUILD_DIR] [ARCH] [ITERS] [THREADS]
#   defaults: build resnet50 3 (all cores)
# Set OPENBLAS_CORETYPE (e.g. SkylakeX) in the environment to choose the
# OpenBLAS kernels; the script prints the core it ran with.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
ARCH=${2:-resnet50}
ITERS=${3:-3}
THREADS=${4:-$(nproc)}
BIN=$BUILD/nn_step
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

mpicc -O3 -march=native -fopenmp -std=c11 -D_POSIX_C_SOURCE=200809L \
  -I"$SRC/include" -I"$BUILD/include" $(pkg-config --cflags hdf5-openmpi openblas) \
  "$HERE/nn_step.c" -o "$BIN" \
  "$BUILD/libslr_nn.a" "$BUILD/libslr_io.a" "$BUILD/libslr_dist.a" "$BUILD/libslr_core.a" \
  $(pkg-config --libs hdf5-openmpi openblas scalapack-openmpi yaml-0.1 libjpeg libpng) -lm

core=$(/usr/bin/python3 -c "import ctypes,ctypes.util; l=ctypes.CDLL('libopenblas.so.0'); l.openblas_get_corename.restype=ctypes.c_char_p; print(l.openblas_get_corename().decode())" 2>/dev/null || echo "?")
echo "# $(date -u +%F) $(nproc) cores, OpenBLAS core $core (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}), threads $THREADS"

run() { # mode batch
  s=$("$BIN" "$1" "$ARCH" "$2" 256 128 "$ITERS" 1 "$THREADS" | tail -1)
  t=$(/usr/bin/python3 "$HERE/torch_step.py" "$1" "$ARCH" "$2" 256 128 "$ITERS" "$THREADS" | tail -1)
  echo "$s"
  echo "$t"
  a=$(echo "$s" | sed -E 's/.*: ([0-9.]+) images\/s.*/\1/')
  b=$(echo "$t" | sed -E 's/.*: ([0-9.]+) images\/s.*/\1/')
  awk -v a="$a" -v b="$b" -v m="$1" 'BEGIN {printf "ratio slr/torch %s: %.2f\n", m, a / b}'
}
run train 32
run infer 64
