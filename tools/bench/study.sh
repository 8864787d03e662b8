#!/usr/bin/env bash
# The SLR study: one pretrained model per task, then adaptation runs of the
# modes none, argmax and hierarchical (and any variant named with --variant)
# over several seeds (run.seed varies the adaptation only), all from the same
# pretrained weights. Prints mean +- std per variant, the paired differences
# of every SLR variant against none and argmax (95 % t interval, seeds where
# the difference is positive), and writes ROOT/report/ (study.md,
# study.json, study.png: mAP and label ARI per epoch, mean with a band).
#
#   tools/bench/study.sh --config configs/study-val.yaml [--root DIR]
#       [--seeds "1 2 3 4 5"] [--ranks 2] [--modes "none argmax hierarchical"]
#       [--variant "NAME key=value key=value ..."]... [--set key=value]...
#       [--prepare | --count | --describe I | --report]
#
# The task (data and pretraining) is described by the config's header:
#   #@synth source ARGS     `slr synth` arguments of the source domain
#   #@synth target ARGS     ... and of the target domain
#   #@pretrain key=value... overrides of a pretraining step; several lines are
#                           steps in order, each from the previous step's
#                           weights (ROOT/pretrain-K; the last: ROOT/pretrain)
# data.source.root / data.target.root say where the domains are drawn.
#
# Resumable: a run is done when RUN/summary.json exists; an unfinished run is
# started again with the same command and resumes from its newest checkpoint
# (checkpoint.resume: auto). A killed study picks up where it stopped.
# Several study processes may share a ROOT: a run another one is running
# (RUN.lock held) is skipped. Runs
# go to ROOT/runs/NAME-seedS (log: NAME-seedS.log); ROOT/plan.tsv lists this
# invocation's runs (jobs/study.sbatch runs line I of it as array task I).
#   --prepare     draw the domains and pretrain (under a lock), write the plan
#   --count       print the number of runs of the plan
#   --describe I  print run I's folder, then its --set overrides, one a line
#   --report      only the report (from the runs that are done)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
config=""; root=""; ranks=2; seeds="1 2 3 4 5"; modes="none argmax hierarchical"
variants=(); extra=(); action=all; index=""
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift ;;
    --root) root="$2"; shift ;;
    --ranks) ranks="$2"; shift ;;
    --seeds) seeds="$2"; shift ;;
    --modes) modes="$2"; shift ;;
    --variant) variants+=("$2"); shift ;;
    --set) extra+=("$2"); shift ;;
    --prepare) action=prepare ;;
    --count) action=count ;;
    --describe) action=describe; index="$2"; shift ;;
    --report) action=report ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "study.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$config" ] || { echo "study.sh: --config is required" >&2; exit 2; }
[ -f "$config" ] || { echo "study.sh: config $config does not exist" >&2; exit 2; }
[ -n "$root" ] || root="runs/$(basename "${config%.yaml}")"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# ranks that wait yield the core (on a shared machine, busy polling wastes it)
export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
slr="${SLR:-$here/build/slr}"
mpirun=(${MPIEXEC:-mpiexec} -n "$ranks")
py=/usr/bin/python3

# ---- the plan: NAME, seed, overrides ------------------------------------------
names=(); sets=()
for m in $modes; do
  case "$m" in
    none|argmax|hierarchical) ;;
    *) echo "study.sh: --modes takes none, argmax, hierarchical (got $m)" >&2; exit 2 ;;
  esac
  # argmax takes the maximum of every soft label, a current outlier's too
  # (its soft label is its previous cluster's projection): outliers are
  # reclaimed whatever the configuration says
  case "$m" in
    argmax) names+=("$m"); sets+=("refine.mode=argmax refine.reclaim_outliers=true") ;;
    *) names+=("$m"); sets+=("refine.mode=$m") ;;
  esac
done
for v in ${variants[@]+"${variants[@]}"}; do
  read -r vname vsets <<< "$v"
  case "$vname" in
    ""|*[!A-Za-z0-9._+-]*) echo "study.sh: variant name \"$vname\" must be [A-Za-z0-9._+-]" >&2; exit 2 ;;
    none|argmax|hierarchical) echo "study.sh: variant name $vname is a mode's name" >&2; exit 2 ;;
  esac
  for kv in $vsets; do
    case "$kv" in *=*) ;; *) echo "study.sh: variant $vname: \"$kv\" is not key=value" >&2; exit 2 ;; esac
  done
  # a variant is SLR unless it says otherwise
  case " $vsets " in *" refine.mode="*) ;; *) vsets="refine.mode=hierarchical $vsets" ;; esac
  names+=("$vname"); sets+=("$vsets")
done
for s in $seeds; do
  case "$s" in ""|*[!0-9]*) echo "study.sh: seed \"$s\" is not a number" >&2; exit 2 ;; esac
done
plan_lines() {
  local i
  for s in $seeds; do
    for i in "${!names[@]}"; do
      printf '%s\t%s\t%s\n' "${names[$i]}" "$s" "${sets[$i]}"
    done
  done
}
nruns=$(plan_lines | wc -l)
if [ "$action" = count ]; then echo "$nruns"; exit 0; fi

# ---- the task: data and pretraining -------------------------------------------
yaml_get() { # the value of data.SIDE.root (flow or block style)
  "$py" - "$config" "$1" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1])) or {}
print(((c.get("data") or {}).get(sys.argv[2]) or {}).get("root", ""))
PY
}
pre="$root/pretrain"
prepare() {
  mkdir -p "$root/runs"
  local side dir args
  for side in source target; do
    dir=$(yaml_get "$side")
    args=$(sed -n "s/^#@synth $side //p" "$config")
    if [ ! -d "$dir/bounding_box_train" ]; then
      [ -n "$args" ] || { echo "study.sh: $config has no '#@synth $side' line and $dir is missing" >&2; exit 2; }
      rm -rf "$dir.partial"
      echo "== draw the $side domain: slr synth $dir $args"
      # shellcheck disable=SC2086
      "${mpirun[@]}" "$slr" synth "$dir" $args > "$root/synth-$side.log" 2>&1 ||
        { tail -20 "$root/synth-$side.log"; exit 1; }
    fi
  done
  # pretraining: one step per '#@pretrain' line, each from the previous one's weights
  local steps=() k dir prev="" t0 kv
  mapfile -t steps < <(sed -n 's/^#@pretrain\( \|$\)//p' "$config")
  [ ${#steps[@]} -gt 0 ] || steps=("")
  for k in "${!steps[@]}"; do
    if [ "$k" -eq $(( ${#steps[@]} - 1 )) ]; then dir=$pre; else dir="$pre-$((k + 1))"; fi
    if [ ! -f "$dir/summary.json" ]; then
      local pset=(--set "train.stages=[pretrain]")
      [ -n "$prev" ] && pset+=(--set "model.pretrained=$prev/pretrain.h5")
      for kv in ${steps[$k]}; do pset+=(--set "$kv"); done
      for kv in ${extra[@]+"${extra[@]}"}; do pset+=(--set "$kv"); done
      echo "== pretrain step $((k + 1))/${#steps[@]} ($ranks ranks): $dir ${steps[$k]}"
      t0=$(date +%s)
      "${mpirun[@]}" "$slr" train --config "$config" --out "$dir" "${pset[@]}" >> "$dir.log" 2>&1 ||
        { tail -20 "$dir.log"; echo "study.sh: pretraining failed ($dir.log)" >&2; exit 1; }
      echo "pretraining step $((k + 1)): $(( $(date +%s) - t0 )) s" | tee -a "$root/times.txt"
    fi
    prev=$dir
  done
  plan_lines > "$root/plan.tsv.tmp" && mv "$root/plan.tsv.tmp" "$root/plan.tsv"
}
locked_prepare() {
  mkdir -p "$root"
  exec 9> "$root/.prepare.lock"
  flock 9
  prepare
  flock -u 9
}

run_dir() { echo "$root/runs/$1-seed$2"; }
run_sets() { # NAME SEED SETS -> the --set arguments of the run
  local kv
  printf '%s\n' "train.stages=[adapt]" "model.pretrained=$pre/pretrain.h5" "run.seed=$2"
  for kv in $3; do printf '%s\n' "$kv"; done
  for kv in ${extra[@]+"${extra[@]}"}; do printf '%s\n' "$kv"; done
}

if [ "$action" = describe ]; then
  line=$(plan_lines | sed -n "$((index + 1))p")
  [ -n "$line" ] || { echo "study.sh: the plan has no run $index (0..$((nruns - 1)))" >&2; exit 2; }
  IFS=$'\t' read -r n s st <<< "$line"
  run_dir "$n" "$s"
  run_sets "$n" "$s" "$st"
  exit 0
fi

report() {
  local names_csv
  names_csv=$(IFS=,; echo "${names[*]}")
  "$py" "$here/tools/study.py" report "$root" --variants "$names_csv" --seeds "$(echo $seeds | tr ' ' ,)" \
    --out "$root/report" --title "slr study: $(basename "$config") ($root)"
}
if [ "$action" = report ]; then report; exit 0; fi

locked_prepare
[ "$action" = prepare ] && exit 0

# ---- the runs --------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
avx=$( (grep -o 'avx512[a-z]*' /proc/cpuinfo || true) | sort -u | tr '\n' ' ')
blas=$("$slr" --version 2>/dev/null | sed -n 's/^ *OpenBLAS *//p')
echo "== CPU: $cpu; ${avx:-no avx512}; $(nproc) cores (shared with other jobs); $blas; $nruns runs of $ranks ranks"
i=0
while IFS=$'\t' read -r n s st; do
  i=$((i + 1))
  out=$(run_dir "$n" "$s")
  [ -f "$out/summary.json" ] && continue
  # another study process on the same ROOT may be running this run: skip it
  exec 8> "$out.lock"
  if ! flock -n 8; then echo "$n seed $s: running elsewhere, skipped"; exec 8>&-; continue; fi
  args=()
  while IFS= read -r kv; do args+=(--set "$kv"); done < <(run_sets "$n" "$s" "$st")
  t0=$(date +%s)
  state="new"; [ -d "$out/checkpoints" ] && state="resumed"
  if ! "${mpirun[@]}" "$slr" train --config "$config" --out "$out" "${args[@]}" < /dev/null >> "$out.log" 2>&1; then
    tail -20 "$out.log"; echo "study.sh: run $out failed ($out.log)" >&2; exit 1
  fi
  dt=$(( $(date +%s) - t0 ))
  echo "$n seed $s: $dt s ($state)" | tee -a "$root/times.txt"
  exec 8>&-
done < <(plan_lines)
report
