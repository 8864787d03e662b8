#!/bin/bash
# labels: slow
# The PyTorch side: slr's weights into PyTorch and back, with the reference
# PyTorch in /usr/bin/python3 (slow only by PyTorch's start-up, ~5 s per
# Python process on a loaded 2-core machine). A tiny run's final weights and
# a checkpoint (refused by h52torch.py, which names slr export); h52torch.py
# output loading into tools/slr_torch.py's model with strict=True and giving
# slr infer's features (no model flags) on the same weights and images, for
# every architecture, pooling and neck, and torchvision's own resnet18
# converted as ImageNet weights are; torch2h5.py's presets (fast-reid,
# Cluster Contrast) and --rename; the scripts' help and errors; the ONNX
# export checked with onnx.checker and OpenCV's dnn. Skipped (77) when the
# reference Python modules are missing.
set -u
SLR=$(readlink -f "$1")
SRC=$(readlink -f "$2")
. "$SRC/tests/e2e/lib.sh"
MPIEXEC=${MPIEXEC:-mpiexec}
PY=/usr/bin/python3
TOOLS=$SRC/tools
fail() { echo "FAIL: $*"; exit 1; }
[ -n "${SLR_TEST_TRACE:-}" ] && { PS4='+ $SECONDS '; set -x; }
$PY -c "import torch, torchvision, h5py, numpy" 2>/dev/null ||
  { echo "SKIP: /usr/bin/python3 lacks torch, torchvision, h5py or numpy (python3-torch python3-torchvision python3-h5py)"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"

# ---- a tiny run: pretrain and adapt, a checkpoint after every step ----------
slr=$SLR tiny_adapt_run || exit 1

# ---- the helper scripts' help and errors ----------------------------------------
for s in h52torch.py torch2h5.py slr_torch.py export_onnx.py; do
  $PY "$TOOLS/$s" --help > help.txt 2>&1 || fail "$s --help: exit $?"
  grep -q "usage:" help.txt || fail "$s --help: no usage"
  [ "$(grep -c '^  [A-Z]' help.txt)" -ge 1 ] || fail "$s --help: no argument descriptions: $(cat help.txt)"
  [ $s = slr_torch.py ] && continue # imports torch first: the rest as the others
  $PY "$TOOLS/$s" -h x > /dev/null 2>&1 || fail "$s -h x: exit $?"
  out=$($PY "$TOOLS/$s" 2>&1); rc=$?
  [ $rc -eq 2 ] || fail "$s without arguments: exit $rc"
  echo "$out" | grep -q Traceback && fail "$s without arguments: traceback: $out"
done
out=$($PY "$TOOLS/h52torch.py" "${ck[3]}" ck.pth 2>&1)
[ $? -eq 1 ] || fail "h52torch.py on a checkpoint: exit code: $out"
echo "$out" | grep -q "training checkpoint.*slr export" || fail "h52torch.py on a checkpoint: $out"
echo "$out" | grep -q Traceback && fail "h52torch.py on a checkpoint: traceback"
[ ! -e ck.pth ] || fail "h52torch.py wrote a file from a checkpoint"
out=$($PY "$TOOLS/h52torch.py" nothere.h5 x.pth 2>&1)
[ $? -eq 1 ] && ! echo "$out" | grep -q Traceback || fail "h52torch.py on a missing file: $out"
out=$($PY "$TOOLS/torch2h5.py" x.pth y.h5 --rename nonsense 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q "OLD=NEW" || fail "torch2h5.py --rename without =: $out"

# ---- slr infer against the PyTorch module on the same weights and images ---------
$PY "$TOOLS/h52torch.py" run/final.h5 final.pth > h52torch.log || fail "h52torch.py final.h5"
grep -q "strict=True" h52torch.log || fail "h52torch.py did not check the strict load"
# models of every kind, with non-trivial statistics, through torch2h5.py; and the
# run's own weights through h52torch.py; then the reference outputs
$PY - "$TOOLS" <<'PY' || fail "reference side"
import sys, h5py, numpy as np, torch, subprocess
sys.path.insert(0, sys.argv[1])
import slr_torch, torch2h5
g = torch.Generator().manual_seed(1)
imgs = torch.randn(5, 3, 64, 32, generator=g)
with h5py.File("images.h5", "w") as f:
    f["images"] = imgs.numpy()
kinds = {
    "r18": dict(arch="resnet18", width=8, last_stride=2, pool="avg", neck=False),
    "r34": dict(arch="resnet34", width=4, last_stride=1, pool="gem", gem_p=3.0, neck=True),
    "r50": dict(arch="resnet50", width=4, last_stride=1, pool="avg", neck=True, num_classes=7),
    "ibn": dict(arch="resnet50_ibn_a", width=4, last_stride=1, pool="gem", gem_p=4.0, neck=True),
}
for name, kw in kinds.items():
    m = slr_torch.ReIDModel(**kw)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d, torch.nn.InstanceNorm2d)):
                mod.weight.copy_(1 + 0.2 * torch.randn(mod.weight.shape, generator=g))
                if mod.bias.requires_grad:
                    mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
                if getattr(mod, "running_mean", None) is not None:
                    mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=g))
                    mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))
        if kw["pool"] == "gem":
            m.pool.p.fill_(3.3)
    # as torch2h5.py converts (its command line is tested below)
    sd = torch2h5.find_state_dict({"state_dict": {"module." + k: v for k, v in m.state_dict().items()}})
    torch2h5.convert(sd, name + ".h5", last_stride=kw["last_stride"])
# torchvision's own resnet18 (random weights, non-trivial statistics), its
# ImageNet classifier dropped, as the README converts ImageNet weights
import torchvision
tv = torchvision.models.resnet18()
with torch.no_grad():
    for mod in tv.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=g))
            mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))
torch2h5.convert(tv.state_dict(), "tv.h5", drop=["fc."], last_stride=2)
tv.fc = torch.nn.Identity()
tv.eval()
with torch.no_grad(), h5py.File("ref_tv.h5", "w") as f:
    p = tv(imgs)
    f["pooled"] = p.numpy(); f["neck"] = p.numpy()
    f["normalized"] = torch.nn.functional.normalize(p, dim=1).numpy()
# the run's final weights: the state_dict h52torch.py wrote, strict=True
d = slr_torch.describe("run/final.h5")
m = slr_torch.ReIDModel(**d)
m.load_state_dict(torch.load("final.pth"), strict=True)
torch.save(m.state_dict(), "run.pth")
for name in list(kinds) + ["run"]:
    path = "run/final.h5" if name == "run" else name + ".h5"
    m = slr_torch.load(path)
    if name == "run":  # the module from h52torch's state_dict, not from the file
        m = slr_torch.ReIDModel(**d); m.load_state_dict(torch.load("final.pth"), strict=True); m.eval()
    with torch.no_grad(), h5py.File("ref_%s.h5" % name, "w") as f:
        for kind in ("pooled", "neck", "normalized"):
            f[kind] = m(imgs, kind).numpy()
# renames apply in order, each to the result of the ones before
r = torch2h5.rename_keys({"module.encoder.conv1.weight": 0}, [("encoder.", "x."), ("x.", "")])
assert list(r) == ["conv1.weight"], r
# confirming arguments: a value that differs names both
try:
    slr_torch.load("r34.h5", pool="avg")
    raise SystemExit("slr_torch.load accepted pool=avg for a GeM file")
except ValueError as e:
    assert "pool='avg'" in str(e) and "'gem'" in str(e), e
PY
# pairs to compare: slr's output, reference file, dataset; all compared at the end
pairs=()
for name in r18 r34 r50 ibn tv run; do
  w=$name.h5; [ $name = run ] && w=run/final.h5
  for kind in pooled neck normalized; do
    # no model flags: the weights file describes its model
    run=("$SLR"); [ $name = run ] && run=($MPIEXEC -n 2 "$SLR")
    "${run[@]}" infer --weights "$w" --input images.h5 --out "f_${name}_$kind.h5" --output $kind --batch 2 > /dev/null ||
      fail "infer $name $kind"
    pairs+=("f_${name}_$kind.h5" "ref_$name.h5" "/$kind")
  done
done
# max |a - b| <= tol * max |b| for every pair
close_all() {
  $PY - "$@" <<'PY'
import sys, h5py, numpy as np
tol, args, bad = float(sys.argv[1]), sys.argv[2:], 0
for i in range(0, len(args), 3):
    a = h5py.File(args[i])["/features"][:]
    b = h5py.File(args[i + 1])[args[i + 2]][:]
    d = float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
    s = float(np.abs(b).max())
    ok = d <= tol * s
    bad += not ok
    print("%-4s %s vs %s %s: max diff %.3g, scale %.3g" % ("ok" if ok else "FAIL", args[i], args[i + 1], args[i + 2], d, s))
sys.exit(1 if bad else 0)
PY
}

# a checkpoint whose /model group carries the description (slr_model_desc_write)
# exports without the run's configuration
mkdir -p lone/checkpoints && cp "${ck[3]}" lone/checkpoints/c.h5
$PY - <<'PY' || fail "describing a checkpoint"
import h5py
with h5py.File("run/final.h5") as w, h5py.File("lone/checkpoints/c.h5", "a") as c:
    for k in ("arch", "width", "last_stride", "pool", "gem_p", "neck", "feat_dim", "num_classes"):
        c["model"].attrs[k] = w.attrs[k]
PY
out=$("$SLR" export lone/checkpoints/c.h5 --out desc.h5 2>&1) || fail "export of a described checkpoint: $out"
echo "$out" | grep -q "from the checkpoint's /model attributes" || fail "export did not use the checkpoint's description: $out"
h5diff -q desc.h5 run/final.h5 /model /model || fail "described checkpoint: exported weights differ from final.h5"

# an attribute with a value slr does not know: named with the value
cp run/final.h5 odd.h5
$PY -c "import h5py,sys; f=h5py.File(sys.argv[1],'a'); f.attrs['pool']=b'max'" odd.h5
out=$("$SLR" infer --weights odd.h5 --input images.h5 --out bad.h5 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q 'attribute pool = "max"' || fail "bad pool attribute: $out"

# ---- torch2h5.py presets and --rename: the same weights under other names -----------
$PY - <<'PY' || fail "renamed state_dicts"
import torch
sd = torch.load("run.pth")
fr = {}
for k, v in sd.items():
    if k.startswith("pool."): fr["heads.pool_layer." + k[5:]] = v
    elif k.startswith("neck."): fr["heads.bottleneck.0." + k[5:]] = v
    else: fr["backbone." + k] = v
fr["pixel_mean"] = torch.zeros(1, 3, 1, 1); fr["pixel_std"] = torch.ones(1, 3, 1, 1)
torch.save({"model": fr, "iteration": 10}, "fastreid.pth")
cc = {}
idx = {"conv1.": "base.0.", "bn1.": "base.1.", "layer1.": "base.4.", "layer2.": "base.5.",
       "layer3.": "base.6.", "layer4.": "base.7.", "pool.": "gap.", "neck.": "feat_bn."}
for k, v in sd.items():
    p = next(p for p in idx if k.startswith(p))
    cc["module." + idx[p] + k[len(p):]] = v
torch.save({"state_dict": cc, "epoch": 3, "best_mAP": 0.5}, "cc.pth.tar")
torch.save({"encoder." + k: v for k, v in sd.items()}, "other.pth")
PY
$PY "$TOOLS/torch2h5.py" fastreid.pth fr.h5 --preset fast-reid --last-stride 1 > /dev/null || fail "torch2h5 --preset fast-reid"
$PY "$TOOLS/torch2h5.py" cc.pth.tar cc.h5 --preset cluster-contrast --last-stride 1 > /dev/null || fail "torch2h5 --preset cluster-contrast"
$PY "$TOOLS/torch2h5.py" other.pth ot.h5 --rename encoder.= --last-stride 1 > /dev/null || fail "torch2h5 --rename"
# the same keys and values (slr's own files also carry per-dataset digests)
same_model() {
  $PY - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1])["model"], h5py.File(sys.argv[2])["model"]
ka, kb = [], []
a.visit(ka.append); b.visit(kb.append)
if sorted(ka) != sorted(kb):
    sys.exit("keys differ: %s" % sorted(set(ka) ^ set(kb))[:5])
for k in ka:
    if isinstance(a[k], h5py.Dataset) and not np.array_equal(a[k][()], b[k][()]):
        sys.exit("%s differs" % k)
PY
}
for w in fr cc ot; do
  same_model $w.h5 run/final.h5 || fail "$w.h5: the renamed weights differ from final.h5"
  "$SLR" infer --weights $w.h5 --input images.h5 --out f_$w.h5 > /dev/null || fail "infer $w.h5 without flags"
  pairs+=(f_$w.h5 ref_run.h5 /normalized)
done
close_all 3e-6 "${pairs[@]}" || fail "slr infer differs from slr_torch"
out=$($PY "$TOOLS/torch2h5.py" other.pth bad.h5 --rename encoder.= --rename layer1.=layer2. 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "two keys become" || fail "torch2h5 collision: $out"

# ---- ONNX: through the module, checked with onnx.checker and a runtime ---------------
if $PY -c "import onnx" 2>/dev/null; then
  for w in r50.h5; do
    $PY "$TOOLS/export_onnx.py" $w m.onnx --height 64 --width 32 > onnx.log 2>&1 || { cat onnx.log; fail "export_onnx $w"; }
    grep -q "onnx.checker .*valid" onnx.log || fail "export_onnx $w: no checker line: $(cat onnx.log)"
    if $PY -c "import cv2" 2>/dev/null; then
      grep -q "OpenCV .* dnn vs PyTorch" onnx.log || fail "export_onnx $w: outputs not checked: $(cat onnx.log)"
    fi
    [ -s m.onnx ] || fail "export_onnx $w wrote nothing"
  done
  $PY "$TOOLS/export_onnx.py" ibn.h5 m.onnx --height 64 --width 32 > onnx.log 2>&1 || { cat onnx.log; fail "export_onnx ibn.h5"; }
  grep -q "onnx.checker .*valid" onnx.log || fail "export_onnx ibn.h5: $(cat onnx.log)"
else
  echo "note: python3-onnx missing: the ONNX export is not tested"
fi
echo ok
