#!/bin/bash
# Clustering benchmark (not a test): slr cluster on 1 and 2 ranks (one
# thread per rank) beside the reference pipeline (faiss CPU kNN + the NumPy
# port of compute_jaccard_distance + scikit-learn DBSCAN), on clustered
# unit-norm features. Prints wall time, peak resident memory and ratios.
# cpu_s is the processor time (user + system) of the busiest slr rank, or
# of the whole reference process (which uses both cores in faiss): on a
# machine shared with other jobs the wall times grow, cpu_s much less.
#
#   tools/bench/cluster.sh [SLR_BINARY] [WORKDIR]
# Environment:
#   SIZES     "NxD ..." (default "12936x2048 32621x2048 200000x256")
#   REF_MAX_N largest N for the dense reference (default 40000; it needs
#             about 13 GB at N = 32,621 and N^2 * 12 bytes in general)
#   CORETYPES OpenBLAS core types to run slr with ("default" = none set;
#             default "default SkylakeX")
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SLR=${1:-$SRC/build/slr}
WORK=${2:-${TMPDIR:-/tmp}/slr-bench-cluster}
SIZES=${SIZES:-"12936x2048 32621x2048 200000x256"}
REF_MAX_N=${REF_MAX_N:-40000}
CORETYPES=${CORETYPES:-"default SkylakeX"}
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$WORK"

echo "# slr cluster benchmark  $(date -u +%Y-%m-%dT%H:%MZ)  $(nproc) cores  load $(cut -d' ' -f1-3 /proc/loadavg)"
"$SLR" --version | sed 's/^/# /'

field() { # log key -> the number after "key"
  grep -oE "$2 [0-9.]+" "$1" | head -1 | awk '{print $2}'
}

for size in $SIZES; do
  n=${size%x*}
  d=${size#*x}
  f=$WORK/features_${n}x${d}.h5
  [ -s "$f" ] || $PY "$SRC/tools/bench/make_cluster_features.py" "$f" "$n" "$d" 1
  echo
  echo "## N = $n, D = $d"
  floor=$(awk -v n="$n" -v d="$d" 'BEGIN{printf "%.2f", n*n*d/190e9}')
  echo "distance floor (N^2 D / 2 multiply-adds at 190 GFLOP/s): $floor s"
  printf "%-28s %9s %9s %9s %9s %9s %11s  %s\n" run wall_s cpu_s knn_s jaccard_s dbscan_s peak_MiB labels

  ref_wall=""
  ref_mem=""
  if [ "$n" -le "$REF_MAX_N" ]; then
    /usr/bin/time -f "%e %M %U %S" -o "$WORK/ref.time" $PY "$SRC/tools/ref/cluster_bench_ref.py" "$f" \
      "$WORK/ref_$n.npy" > "$WORK/ref.log" 2>&1
    ref_wall=$(cut -d' ' -f1 "$WORK/ref.time")
    ref_mem=$(awk '{printf "%.0f", $2/1024}' "$WORK/ref.time")
    ref_cpu=$(awk '{printf "%.1f", $3+$4}' "$WORK/ref.time")
    printf "%-28s %9s %9s %9s %9s %9s %11s  %s\n" "reference (faiss+numpy+sk)" "$ref_wall" "$ref_cpu" \
      "$(field "$WORK/ref.log" knn)" "$(field "$WORK/ref.log" jaccard)" \
      "$(field "$WORK/ref.log" dbscan)" "$ref_mem" "$(grep -oE 'clusters [0-9]+ outliers [0-9]+' "$WORK/ref.log")"
  else
    echo "reference: not run (dense N x N matrices: about $((n * n * 12 / 1000000000)) GB)"
  fi

  for ct in $CORETYPES; do
    declare -A wall=() cpus=()
    for np in 1 2; do
      log=$WORK/slr_${n}_${np}_$ct.log
      out=$WORK/labels_${n}_${np}.h5
      if [ "$ct" = default ]; then
        /usr/bin/time -f "%e" -o "$WORK/slr.time" mpiexec -n $np "$SLR" cluster --features "$f" \
          --out "$out" --threads 1 > "$log" 2>&1
      else
        OPENBLAS_CORETYPE=$ct /usr/bin/time -f "%e" -o "$WORK/slr.time" mpiexec -x OPENBLAS_CORETYPE \
          -n $np "$SLR" cluster --features "$f" --out "$out" --threads 1 > "$log" 2>&1
      fi
      w=$(tail -1 "$WORK/slr.time")
      wall[$np]=$w
      mem=$(grep -oE "peak memory: [0-9.]+" "$log" | awk '{printf "%.0f", $3}')
      same="-"
      [ -s "$WORK/ref_$n.npy" ] && same=$($PY "$SRC/tools/bench/compare_labels.py" "$out" "$WORK/ref_$n.npy")
      cpu=$(grep -oE "busiest rank: [0-9.]+" "$log" | awk '{print $3}')
      cpus[$np]=$cpu
      printf "%-28s %9s %9s %9s %9s %9s %11s  %s\n" "slr $np rank(s), core $ct" "$w" "$cpu" \
        "$(grep -oE 'kNN [0-9.]+' "$log" | awk '{print $2}')" \
        "$(grep -oE 'Jaccard [0-9.]+ s' "$log" | awk '{print $2}')" \
        "$(grep -oE 'DBSCAN [0-9.]+' "$log" | awk '{print $2}')" "$mem" "$same"
      if [ "$np" = 2 ]; then
        knn=$(grep -oE 'kNN [0-9.]+' "$log" | awk '{print $2}')
        echo "   kNN phase / floor: $(awk -v a="$knn" -v b="$floor" 'BEGIN{printf "%.2f", a/b}')" \
          "  2 ranks vs 1: $(awk -v a="${wall[1]}" -v b="${wall[2]}" 'BEGIN{printf "%.2fx", a/b}') wall," \
          "$(awk -v a="${cpus[1]}" -v b="${cpus[2]}" 'BEGIN{printf "%.2fx", a/b}') processor time of the busiest rank"
        if [ -n "$ref_wall" ]; then
          echo "   reference / slr (2 ranks): $(awk -v a="$ref_wall" -v b="$w" 'BEGIN{printf "%.1fx", a/b}')" \
            "  memory slr / reference: $(awk -v a="$mem" -v b="$ref_mem" 'BEGIN{printf "%.1f%%", 100*a/b}')"
        fi
      fi
    done
    unset wall cpus
  done
done
