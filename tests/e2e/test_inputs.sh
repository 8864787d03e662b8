#!/usr/bin/env bash
# Inputs checked at the door: slr cluster and slr evaluate refuse a file
# whose slr_format is not "features" (a checkpoint, labels) or whose
# slr_format_version is newer than they read (99), naming the file and the
# value, and accept files without the attributes (h5py); slr infer refuses a
# NaN pixel and a NaN weight (the engine would otherwise turn them into
# finite features); slr extract refuses NaN weights; negative --threads and
# --bench are refused. Input files are made with h5py (/usr/bin/python3).
set -u
slr="$1"; src="$2"
. "$src/tests/e2e/lib.sh"
in_tmp
needs_py h5py
F="$src/tests/fixtures/cluster/e2e_small.h5"
E="$src/tests/fixtures/eval/market_small.h5"
NX="$src/tests/fixtures/nn"

$py - "$F" "$E" "$NX" <<'PY'
import sys, shutil, h5py, numpy as np
F, E, NX = sys.argv[1:4]
for name, tag, ver in [("ckpt", "checkpoint", 1), ("v99", "features", 99), ("labels", "labels", 1)]:
    shutil.copy(F, name + "_c.h5"); shutil.copy(E, name + "_e.h5")
    for suffix in ("_c.h5", "_e.h5"):
        with h5py.File(name + suffix, "a") as f:
            f.attrs["slr_format"] = np.bytes_(tag)
            f.attrs["slr_format_version"] = np.int64(ver)
shutil.copy(NX + "/r50_eval.h5", "nan_img.h5")
with h5py.File("nan_img.h5", "a") as f:
    x = f["/images"][...]; x[1, 2, 10, 5] = np.nan; f["/images"][...] = x
shutil.copy(NX + "/r50_weights.h5", "nan_w.h5")
with h5py.File("nan_w.h5", "a") as f:
    w = f["/model/layer1.0.conv1.weight"][...]; w.flat[3] = np.nan
    f["/model/layer1.0.conv1.weight"][...] = w
PY

for cmd in cluster evaluate; do
  s=c; extra="--k1 8 --k2 3 --out out_$cmd.h5"; [ $cmd = evaluate ] && { s=e; extra=""; }
  check "$cmd refuses a checkpoint" 1 'has slr_format "checkpoint", expected "features"' -- "$slr" $cmd --features ckpt_$s.h5 $extra
  check "$cmd refuses labels" 1 'has slr_format "labels"' -- "$slr" $cmd --features labels_$s.h5 $extra
  check "$cmd refuses version 99" 1 "v99_$s.h5 has slr_format_version 99" -- "$slr" $cmd --features v99_$s.h5 $extra
done
check "cluster accepts h5py's file" 0 "labels written" -- "$slr" cluster --features "$F" --k1 8 --k2 3 --out ok.h5
check "evaluate accepts h5py's file" 0 "mAP" -- "$slr" evaluate --features "$E"

ARGS="--arch resnet50 --width 4 --last-stride 1 --pool gem"
check "infer refuses a NaN pixel" 1 "nan_img.h5: /images[1] has a non-finite value" -- "$mpiexec" -n 2 "$slr" infer $ARGS --weights "$NX/r50_weights.h5" --input nan_img.h5 --out f.h5
if [ ! -e f.h5 ] && [ ! -e f.h5.tmp ]; then ok "no output"; else bad "output left"; fi
check "infer refuses a NaN weight" 1 "key layer1.0.conv1.weight has a non-finite value" -- "$slr" infer $ARGS --weights nan_w.h5 --input "$NX/r50_eval.h5" --out f.h5
check "infer --threads -1" 2 "--threads -1" -- "$slr" infer $ARGS --weights "$NX/r50_weights.h5" --input "$NX/r50_eval.h5" --out f.h5 --threads -1
check "cluster --threads -2" 2 "--threads -2" -- "$slr" cluster --features "$F" --k1 8 --k2 3 --out ok.h5 --threads -2

# slr extract with a NaN in the weights of a tiny trained model
tiny_target
tiny_config tiny.yaml "epochs: 1, iters: 1, batch_size: 8, instances: 2"
"$mpiexec" -n 2 "$slr" train --config tiny.yaml --out run > train.log 2>&1 || { echo "FAIL tiny training run"; tail -5 train.log; exit 1; }
$py - run/pretrain.h5 <<'PY'
import sys, shutil, h5py, numpy as np
shutil.copy(sys.argv[1], "nan_tiny.h5")
with h5py.File("nan_tiny.h5", "a") as f:
    d = f["/model/conv1.weight"]; w = d[...]; w.flat[0] = np.nan; d[...] = w
PY
check "extract refuses a NaN weight" 1 "key conv1.weight has a non-finite value" -- "$mpiexec" -n 2 "$slr" extract --config tiny.yaml --weights nan_tiny.h5 --split train --out x.h5
check "data --bench -1" 2 "--bench -1" -- "$slr" data tiny.yaml --bench -1

checked
