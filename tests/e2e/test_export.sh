#!/bin/bash
# slr export: a tiny training run (2 ranks, a checkpoint after every step);
# its pretraining checkpoint exported equals pretrain.h5 (classifier kept),
# its last one final.h5, with the model description attributes; errors for a
# checkpoint without its run's configuration, a configuration of another
# model, a file that is not a checkpoint; no partial output.
set -u
SLR=$(readlink -f "$1")
. "$(readlink -f "$2")/tests/e2e/lib.sh"
MPIEXEC=${MPIEXEC:-mpiexec}
fail() { echo "FAIL: $*"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"

# ---- a tiny run: pretrain and adapt, a checkpoint after every step ----------
slr=$SLR tiny_adapt_run || exit 1

# ---- slr export ---------------------------------------------------------------
$MPIEXEC -n 2 "$SLR" export "${ck[1]}" --out pre.h5 > export.log 2>&1 || { cat export.log; fail "export pretrain checkpoint"; }
grep -q "with its classifier" export.log || fail "export of a pretrain checkpoint keeps the classifier: $(cat export.log)"
h5diff -q pre.h5 run/pretrain.h5 /model /model || fail "exported pretrain checkpoint differs from pretrain.h5"
"$SLR" export "${ck[3]}" --out fin.h5 > /dev/null || fail "export last checkpoint"
h5diff -q fin.h5 run/final.h5 /model /model || fail "exported last checkpoint differs from final.h5"
for a in arch width last_stride pool gem_p neck feat_dim num_classes; do
  h5dump -a "/$a" fin.h5 > /dev/null 2>&1 || fail "exported weights lack the attribute $a"
done
# a checkpoint describes its model: alone, without the run's config.yaml, it
# exports the same weights
mkdir -p lone/checkpoints && cp "${ck[3]}" lone/checkpoints/
"$SLR" export lone/checkpoints/$(basename "${ck[3]}") --out alone.h5 > alone.log 2>&1 || fail "export of a lone checkpoint: $(cat alone.log)"
grep -q "from the checkpoint's /model attributes" alone.log || fail "lone export did not use the checkpoint's description"
/usr/bin/python3 - alone.h5 fin.h5 <<'PY' || fail "lone checkpoint's export differs from the run's"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r")["model"], h5py.File(sys.argv[2], "r")["model"]
assert sorted(a) == sorted(b) and all(np.array_equal(a[k][()], b[k][()]) for k in a)
PY
out=$("$SLR" export lone/checkpoints/$(basename "${ck[3]}") --out bad.h5 --config tiny.yaml --set model.arch=resnet34 2>&1)
[ $? -eq 1 ] || fail "export with another model: exit code"
echo "$out" | grep -q "parameters.*resnet34.*is that the configuration of this run" || fail "export mismatch: $out"
out=$("$SLR" export run/final.h5 --out bad.h5 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q 'slr_format "weights", expected "checkpoint"' || fail "export of a weights file: $out"
[ ! -e bad.h5 ] && [ ! -e bad.h5.tmp ] || fail "export left a partial output"
out=$("$SLR" export 2>&1); [ $? -eq 2 ] || fail "export without arguments: exit code"

echo ok
