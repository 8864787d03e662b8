#!/bin/bash
# Build one benchmark program of tools/bench against the static libraries
# of a build folder:  tools/bench/build_bench.sh NAME [BUILD] -> BUILD/bench/NAME
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
name=$1
build=${2:-$src/build}
mkdir -p "$build/bench"
libs=$(for m in refine cluster io dist core; do echo "$build/libslr_$m.a"; done)
mpicc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$src/include" -I"$build/include" \
  $(pkg-config --cflags hdf5-openmpi openblas) "$src/tools/bench/$name.c" \
  $libs $(pkg-config --libs hdf5-openmpi openblas scalapack-openmpi yaml-0.1) -lm -fopenmp \
  -o "$build/bench/$name"
