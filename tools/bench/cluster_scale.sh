#!/bin/bash
# Clustering at scale (not a test): bytes sent per rank by the kNN ring and
# the Jaccard step at 2, 4, 8 and 16 ranks beside the formulas of
# docs/cluster.md, then one large run on many ranks (oversubscribed when the
# machine has fewer cores: say so) through kNN, Jaccard, DBSCAN and one SLR
# step against synthetic previous labels, with wall time, processor time,
# peak memory and bytes sent per rank and phase (tools/bench/cluster_1m.sh,
# build/bench/cluster_step).
#
#   tools/bench/cluster_scale.sh [SLR] [WORKDIR]
# Environment: COMM_N (24000), COMM_D (256), COMM_RANKS ("2 4 8 16"),
#   BIG ("200000x256"; "" = none), BIG_RANKS (16)
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SLR=${1:-$SRC/build/slr}
WORK=${2:-${TMPDIR:-/tmp}/slr-bench-cluster}
COMM_N=${COMM_N:-24000}
COMM_D=${COMM_D:-256}
COMM_RANKS=${COMM_RANKS:-"2 4 8 16"}
BIG=${BIG-200000x256}
BIG_RANKS=${BIG_RANKS:-16}
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$WORK"
[ -x "$SLR" ] || { echo "cluster_scale.sh: $SLR is missing: build slr first with tools/setup.sh" >&2; exit 1; }
echo "# slr cluster at scale  $(date -u +%Y-%m-%dT%H:%MZ)  $(nproc --all) cores  load $(cut -d' ' -f1-3 /proc/loadavg)"
avx=$(grep -o 'avx512[a-z0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')
echo "# CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')  avx512: ${avx:-none}"
"$SLR" --version | grep '^ *OpenBLAS ' | sed "s/^ */# /"

f=$WORK/features_${COMM_N}x${COMM_D}.h5
[ -s "$f" ] || $PY "$SRC/tools/bench/make_cluster_features.py" "$f" "$COMM_N" "$COMM_D" 1
echo
echo "## bytes sent per rank (busiest rank), N = $COMM_N, D = $COMM_D, k1 = 30"
printf "%6s %12s %14s %12s %14s %9s\n" ranks kNN_MB kNN_formula_MB Jaccard_MB Jac_lists_MB wall_s
for np in $COMM_RANKS; do
  log=$WORK/comm_$np.log
  mpiexec -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS -n "$np" "$SLR" cluster --features "$f" \
    --out "$WORK/comm_labels_$np.h5" --threads 1 --knn full > "$log" 2>&1
  knn=$(grep -oE 'kNN [0-9.]+ MB' "$log" | awk '{print $2}')
  jac=$(grep -oE 'Jaccard [0-9.]+ MB' "$log" | awk '{print $2}')
  wall=$(grep -oE 'total [0-9.]+' "$log" | awk '{print $2}')
  # kNN ring: floor(P/2) steps of one block (N/P rows x D floats) and its
  # lists back (N/P x k x 8 bytes); Jaccard: the kNN lists to P - 1 ranks,
  # plus what depends on the data: the V and expanded rows (their entries)
  # and the feature rows fetched from their owners (at most P - 1 blocks)
  fk=$(awk -v n="$COMM_N" -v d="$COMM_D" -v p="$np" 'BEGIN{b=int(n/p+0.999); printf "%.1f", int(p/2)*b*(4*d+8*30)/1e6}')
  fj=$(awk -v n="$COMM_N" -v p="$np" 'BEGIN{b=int(n/p+0.999); printf "%.1f", (p-1)*b*4*30/1e6}')
  fr=$(awk -v n="$COMM_N" -v d="$COMM_D" -v p="$np" 'BEGIN{b=int(n/p+0.999); printf "%.1f", (p-1)*b*4*d/1e6}')
  printf "%6s %12s %14s %12s %14s %9s\n" "$np" "$knn" "$fk" "$jac" "$fj (+V, Q, rows <= $fr)" "$wall"
done

[ -n "$BIG" ] || exit 0
echo
BUILD=$(dirname "$SLR") "$SRC/tools/bench/cluster_1m.sh" "${BIG%x*}" "${BIG#*x}" "$BIG_RANKS" "$WORK"
