#!/usr/bin/env bash
# The flat cut of agglomerative clustering at the SLR step's size: n distinct
# weighted sparse points of dimension d, all four linkages, the sparse cut and
# (n <= DENSE_MAX) the dense tree side by side. The program is built by CMake
# (build/bench/agglomerative_bench; tools/setup.sh builds it).
# Usage: tools/bench/agglomerative.sh [BUILD] [N] [D] [DENSE_MAX] [THRESHOLD]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
n=${2:-5000}
d=${3:-2000}
exe=$build/bench/agglomerative_bench
[ -x "$exe" ] || { echo "agglomerative.sh: $exe is missing: build slr first with tools/setup.sh" \
  "(or cmake --build $build --target agglomerative_bench; SLR_BUILD_BENCH=ON, the default)" >&2; exit 1; }
"$exe" "$n" "$d" "${4:-5000}" "${5:-0.5}"
