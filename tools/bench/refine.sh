#!/usr/bin/env bash
# One SLR step at scale (tools/bench/refine_bench.c, built by CMake into
# build/bench/refine_bench; tools/setup.sh builds it) on RANKS ranks:
#   tools/bench/refine.sh [BUILD] [RANKS] [N] [K] [MOVED] [OUTLIERS] [key=value ...]
# e.g. tools/bench/refine.sh build 2 1000000 30000 0.05 0.15 refine.distance=cosine
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
ranks=${2:-2}
shift $(( $# >= 2 ? 2 : $# ))
exe=$build/bench/refine_bench
[ -x "$exe" ] || { echo "refine.sh: $exe is missing: build slr first with tools/setup.sh" \
  "(or cmake --build $build --target refine_bench; SLR_BUILD_BENCH=ON, the default)" >&2; exit 1; }
grep -m1 "model name" /proc/cpuinfo || true
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpiexec --oversubscribe -n "$ranks" "$exe" "$@"
