#!/usr/bin/env bash
# Output paths: an empty --out is refused everywhere (slr train would write
# its run into /); an output naming a device node, a FIFO or a folder is
# refused and left as it was (the atomic rename would replace it with a
# regular file); paths longer than Open MPI 4.1's 256-character buffer of
# its shared-file-pointer component work (no file is opened through MPI-IO).
set -u
slr="$1"; src="$2"
. "$src/tests/e2e/lib.sh"
in_tmp
F="$src/tests/fixtures/cluster/e2e_small.h5"

tiny_target
tiny_config tiny.yaml "epochs: 1, iters: 1, batch_size: 8, instances: 2"

check "train --out ''" 2 "path is empty" -- "$slr" train --config tiny.yaml --out ''
check "cluster --out ''" 2 "path is empty" -- "$slr" cluster --features "$F" --out '' --k1 8 --k2 3
check "extract --out ''" 2 "path is empty" -- "$slr" extract --config tiny.yaml --weights x.h5 --split train --out ''

mkfifo fifo
check "cluster --out FIFO refused" 2 "is a FIFO" -- "$slr" cluster --features "$F" --out fifo --k1 8 --k2 3
if [ -p fifo ]; then ok "FIFO left a FIFO"; else bad "FIFO replaced"; fi
if [ "$(id -u)" -eq 0 ] && mknod nulldev c 1 3 2> /dev/null; then
  check "cluster --out device refused" 2 "is a character device" -- "$slr" cluster --features "$F" --out nulldev --k1 8 --k2 3
  if [ -c nulldev ]; then ok "device left a device"; else bad "device node replaced"; fi
else
  echo "skip device node case (mknod needs root)"
fi
mkdir adir
check "cluster --out folder refused" 2 "is a folder" -- "$slr" cluster --features "$F" --out adir --k1 8 --k2 3
check "train --out FIFO refused" 2 "is a FIFO" -- "$slr" train --config tiny.yaml --out fifo
if [ ! -e /pretrain.h5 ] || [ /pretrain.h5 -ot tiny.yaml ]; then ok "nothing written into /"; else bad "/pretrain.h5 written"; fi

# long paths: a folder of 300 characters
long="$tmp/$(printf 'd%.0s' $(seq 1 120))/$(printf 'e%.0s' $(seq 1 120))/$(printf 'f%.0s' $(seq 1 40))"
mkdir -p "$long"
check "cluster, 2 ranks, ${#long}-character path" 0 "labels written" -- "$mpiexec" -n 2 "$slr" cluster --features "$F" --out "$long/labels.h5" --k1 8 --k2 3
cp "$F" "$long/features.h5"
check "cluster reads a long path" 0 "labels written" -- "$mpiexec" -n 2 "$slr" cluster --features "$long/features.h5" --out "$long/l2.h5" --k1 8 --k2 3
check "train, 2 ranks, long run folder" 0 "done" -- "$mpiexec" -n 2 "$slr" train --config tiny.yaml --out "$long/run"

checked
