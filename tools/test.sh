#!/usr/bin/env bash
# Installs what is missing, builds slr, and runs the whole test suite through
# CTest; then builds again with AddressSanitizer + UndefinedBehaviorSanitizer
# and runs the suite once more.
#
#   tools/test.sh [--no-sanitize] [ctest arguments, e.g. -R config]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sanitize=1
args=()
for a in "$@"; do
  if [ "$a" = "--no-sanitize" ]; then sanitize=0; else args+=("$a"); fi
done

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
jobs=$(( $(nproc) > 1 ? $(nproc) : 1 ))

"$here/tools/setup.sh"
# the PyTorch side's test (e2e_test_torch) runs Debian's reference Python;
# it is skipped when these are missing (SLR_TEST_NO_PYTHON=1: not installed)
if [ -z "${SLR_TEST_NO_PYTHON:-}" ]; then
  py=(python3-torch python3-torchvision python3-h5py python3-onnx python3-opencv)
  miss=()
  for p in "${py[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || miss+=("$p")
  done
  if [ ${#miss[@]} -gt 0 ]; then
    echo "== installing: ${miss[*]}"
    sudo_cmd=()
    [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${miss[@]}"
  fi
fi
echo "== tests"
(cd "$here/build" && ctest --output-on-failure -j "$jobs" ${args[@]+"${args[@]}"})

if [ "$sanitize" = 1 ]; then
  "$here/tools/setup.sh" --sanitize
  echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer"
  (cd "$here/build-sanitize" && ctest --output-on-failure -j "$jobs" -LE slow ${args[@]+"${args[@]}"})
fi
