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
echo "== tests"
(cd "$here/build" && ctest --output-on-failure -j "$jobs" ${args[@]+"${args[@]}"})

if [ "$sanitize" = 1 ]; then
  "$here/tools/setup.sh" --sanitize
  echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer"
  (cd "$here/build-sanitize" && ctest --output-on-failure -j "$jobs" -LE slow ${args[@]+"${args[@]}"})
fi
