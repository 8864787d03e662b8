#!/usr/bin/env bash
# The built-in demo on synthetic data: installs what is missing, builds slr,
# and runs the parts of the pipeline on configs/demo.yaml on 2 ranks.
#
#   tools/demo.sh [--ranks N]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ranks=2
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks="$2"; shift ;;
    *) echo "demo.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

"$here/tools/setup.sh"
slr="$here/build/slr"
mpirun=(mpiexec -n "$ranks")
run_dir="$here/runs/demo"
mkdir -p "$run_dir"
cd "$here"

echo "== slr"
"$slr" --version
echo "== resolved configuration -> $run_dir/config.yaml"
"${mpirun[@]}" "$slr" config configs/demo.yaml > "$run_dir/config.yaml"
head -n 12 "$run_dir/config.yaml"
echo "   ..."
echo "== demo done: $run_dir"
