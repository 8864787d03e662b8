#!/bin/bash
# One clustering epoch at scale (not a test): N x D clustered unit-norm
# features (tools/bench/make_cluster_features.py, seed 1) on P ranks, one
# thread each, through kNN, Jaccard, DBSCAN and one SLR step against
# synthetic previous labels (build/bench/cluster_step, tools/bench/
# cluster_step.c). Logs per rank and phase the wall time, processor time,
# peak resident memory and bytes sent into a JSON-lines file and prints the
# tables. With more ranks than cores the ranks are oversubscribed (said in
# the output): wall times are then those of shared cores.
#
#   tools/bench/cluster_1m.sh [N] [D] [RANKS] [WORKDIR]
#   (defaults 1000000 256 16 ${TMPDIR:-/tmp}/slr-bench-cluster)
# Environment: BUILD (the build folder, default ./build).
# The log: WORKDIR/cluster_step_NxD_P.jsonl (and .txt, the printed output).
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-1000000}
D=${2:-256}
P=${3:-16}
WORK=${4:-${TMPDIR:-/tmp}/slr-bench-cluster}
BUILD=${BUILD:-$SRC/build}
EXE=$BUILD/bench/cluster_step
PY=/usr/bin/python3
if [ ! -x "$EXE" ]; then
  echo "cluster_1m.sh: $EXE is missing: build slr first with tools/setup.sh" \
    "(or cmake --build $BUILD --target cluster_step; SLR_BUILD_BENCH=ON, the default)" >&2
  exit 1
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$WORK"
cores=$(nproc --all)
echo "# slr clustering epoch at scale  $(date -u +%Y-%m-%dT%H:%MZ)  $cores cores  load $(cut -d' ' -f1-3 /proc/loadavg)"
avx=$(grep -o 'avx512[a-z0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')
echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')  avx512: ${avx:-none}"
echo "# memory: $(awk '/MemTotal/ {printf "%.1f GiB total", $2 / 1048576} /MemAvailable/ {printf ", %.1f GiB available", $2 / 1048576}' /proc/meminfo)"
if [ "$P" -gt "$cores" ]; then
  echo "# $P ranks on $cores cores: OVERSUBSCRIBED ($(( (P + cores - 1) / cores )) ranks per core)"
fi
f=$WORK/features_${N}x${D}.h5
if [ ! -s "$f" ]; then
  echo "# making $f"
  $PY "$SRC/tools/bench/make_cluster_features.py" "$f" "$N" "$D" 1 || exit 1
fi
log=$WORK/cluster_step_${N}x${D}_${P}.jsonl
/usr/bin/time -f "# mpiexec: %e s wall" -o "$WORK/cluster_step.time" \
  mpiexec -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS -n "$P" "$EXE" "$f" "$log" |
  tee "${log%.jsonl}.txt"
rc=${PIPESTATUS[0]}
cat "$WORK/cluster_step.time"
echo "# per rank and phase: $log"
exit "$rc"
