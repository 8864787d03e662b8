#!/usr/bin/env bash
# One SLR step at scale (tools/bench/refine_bench.c) on RANKS ranks:
#   tools/bench/refine.sh [BUILD] [RANKS] [N] [K] [MOVED] [OUTLIERS] [key=value ...]
# e.g. tools/bench/refine.sh build 2 1000000 30000 0.05 0.15 refine.distance=cosine
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
ranks=${2:-2}
shift $(( $# >= 2 ? 2 : $# ))
exe=$(mktemp -d)/refine_bench
libs=$(for m in refine cluster io dist core; do echo "$build/libslr_$m.a"; done)
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$src/include" -I"$build/include" \
  $(pkg-config --cflags ompi-c hdf5-openmpi openblas) "$src/tools/bench/refine_bench.c" \
  $libs $(pkg-config --libs ompi-c hdf5-openmpi openblas yaml-0.1) -lm -fopenmp -o "$exe"
grep -m1 "model name" /proc/cpuinfo || true
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpiexec --oversubscribe -n "$ranks" "$exe" "$@"
