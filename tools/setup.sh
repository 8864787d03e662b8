#!/usr/bin/env bash
# Installs the Debian packages slr needs (when missing), then configures and
# builds slr. Used by tools/demo.sh and tools/test.sh; safe to run again.
#
#   tools/setup.sh [--sanitize] [--build-dir DIR]
#
# Environment: SLR_CMAKE_ARGS (extra CMake arguments), CI=true (warnings are
# errors).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$here/build"
sanitize=OFF
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize=ON; build_dir="$here/build-sanitize" ;;
    --build-dir) build_dir="$2"; shift ;;
    *) echo "setup.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

packages=(build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin libscalapack-openmpi-dev
  libhdf5-openmpi-dev hdf5-tools libopenblas-dev
  libjpeg-dev libpng-dev libyaml-dev libjson-c-dev libcmocka-dev libdnnl-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
echo "== configuring $build_dir (sanitizers $sanitize, warnings as errors $werror)"
mkdir -p "$build_dir"
cmake -S "$here" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DSLR_SANITIZE="$sanitize" \
  -DSLR_WERROR="$werror" ${SLR_CMAKE_ARGS:-} > "$build_dir/configure.log" 2>&1 ||
  { cat "$build_dir/configure.log"; exit 1; }
echo "== building"
cmake --build "$build_dir" -j "$(nproc)"
