#!/usr/bin/env bash
# A full disk while an HDF5 file is written (slr cluster, slr extract and the
# checkpoints and weights of slr train), on 1 and 2 ranks: the command must
# stop (never hang: a time limit fails the test) with exit 1, not crash, name
# the file in its error, and leave no .tmp behind. Needs a small tmpfs, which
# the test mounts itself as root; elsewhere it is skipped (exit 77).
set -u
slr="$1"; src="$2"
. "$src/tests/e2e/lib.sh"
tmp=$(mktemp -d)
mnt="$tmp/full"
mkdir -p "$mnt"
cleanup() { umount "$mnt" 2> /dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
if [ "$(id -u)" -ne 0 ] || ! mount -t tmpfs -o size=256k tmpfs "$mnt" 2> /dev/null; then
  echo "SKIP: mounting a small tmpfs needs root (mount -t tmpfs); test not run"
  exit 77
fi
cd "$tmp"
FX="$src/tests/fixtures/cluster"

# fill the file system, leaving `$1` KiB free
fill() {
  rm -f "$mnt"/filler* "$mnt"/*.h5 "$mnt"/*.tmp 2> /dev/null
  rm -rf "$mnt"/run
  dd if=/dev/zero of="$mnt/filler" bs=4k 2> /dev/null
  if [ "$1" -gt 0 ]; then truncate -s -"$1"K "$mnt/filler"; fi
  sync
}

# name: expect exit 1 within 30 s, the text "cannot write" and the file name
# in the output, no .tmp left on the file system
full_case() { # name file-basename -- command...
  local name="$1" file="$2"; shift 3
  timeout -k 5 30 "$@" > out.txt 2>&1
  local got=$?
  n=$((n+1))
  local why=""
  [ $got -eq 124 ] || [ $got -eq 137 ] && why="hung (killed after 30 s)"
  [ -z "$why" ] && [ $got -ne 1 ] && why="exit $got, wanted 1"
  [ -z "$why" ] && ! grep -q "$file" out.txt && why="error does not name $file"
  [ -z "$why" ] && [ -n "$(find "$mnt" -name '*.tmp' | head -1)" ] && why=".tmp left behind: $(find "$mnt" -name '*.tmp')"
  [ -z "$why" ] && grep -q "Segmentation\|signal 11\|core dumped" out.txt && why="crashed"
  [ -z "$why" ] && grep -qE "src/[a-z]+/[a-z_0-9]+\.c:[0-9]" out.txt && why="a source location in the message"
  if [ -z "$why" ]; then echo "ok   $name"; else fails=$((fails+1)); echo "FAIL $name: $why"; tail -6 out.txt | sed 's/^/     | /'; fi
}

for np in 1 2; do
  for free in 0 4; do
    fill $free
    full_case "cluster, $np rank(s), ${free} KiB free" x.h5 -- \
      "$mpiexec" -n $np "$slr" cluster --features "$FX/e2e_small.h5" --out "$mnt/x.h5" --k1 8 --k2 3
  done
done

# a tiny training run for weights (written outside the full file system)
tiny_target
tiny_config tiny.yaml "epochs: 1, iters: 1, batch_size: 8, instances: 2" 'checkpoint: {every_steps: 1}'
"$mpiexec" -n 2 "$slr" train --config tiny.yaml --out run > train.log 2>&1 || { echo "FAIL tiny training run"; tail -5 train.log; exit 1; }
weights=$(ls run/*.h5 | head -1)

for np in 1 2; do
  fill 0
  full_case "extract, $np rank(s)" q.h5 -- \
    "$mpiexec" -n $np "$slr" extract --config tiny.yaml --weights "$weights" --split train --out "$mnt/q.h5"
  # the checkpoint writer of the training job
  fill 40
  full_case "train checkpoints, $np rank(s)" "$mnt/run" -- \
    "$mpiexec" -n $np "$slr" train --config tiny.yaml --out "$mnt/run"
done

checked
