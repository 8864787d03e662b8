#!/usr/bin/env bash
# The flat cut of agglomerative clustering at the SLR step's size: n distinct
# weighted sparse points of dimension d, all four linkages, the sparse cut and
# (n <= DENSE_MAX) the dense tree side by side.
# Usage: tools/bench/agglomerative.sh [BUILD] [N] [D] [DENSE_MAX] [THRESHOLD]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
n=${2:-5000}
d=${3:-2000}
exe=$(mktemp -d)/agglomerative_bench
libs=$(for m in cluster io dist core; do echo "$build/libslr_$m.a"; done)
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$src/include" -I"$build/include" \
  $(pkg-config --cflags ompi-c hdf5-openmpi openblas) "$src/tools/bench/agglomerative_bench.c" \
  $libs $(pkg-config --libs ompi-c hdf5-openmpi openblas yaml-0.1) -lm -fopenmp -o "$exe"
"$exe" "$n" "$d" "${4:-5000}" "${5:-0.5}"
