#!/usr/bin/python3
"""Convert a PyTorch weight file (.pth) into an slr weights file (HDF5).

The input may be a state_dict, or a checkpoint dict holding one under
'state_dict', 'model', 'model_state_dict' or 'net' (a `module.` prefix from
DataParallel is removed). Keys are renamed (--preset, then each --rename in
order) and dropped (--drop); the output has one dataset per key under
/model with PyTorch's shape (floating tensors as float32, integer tensors
such as num_batches_tracked as int64), the root attributes
slr_format = "weights", slr_format_version = 1, and, when the keys form one
of slr's models, the model description (arch, width, pool, gem_p, neck,
num_classes, feat_dim, and last_stride when --last-stride is given): the
attributes `slr infer` and `slr extract` take the model from.

Examples:
  torchvision ImageNet weights (the model.pretrained of a run):
    /usr/bin/python3 tools/torch2h5.py resnet50-0676ba61.pth resnet50_imagenet.h5 --drop fc. --last-stride 2
  a fast-reid model (backbone.*, heads.*):
    /usr/bin/python3 tools/torch2h5.py model_final.pth w.h5 --preset fast-reid --last-stride 1
  a Cluster Contrast checkpoint (module.base.*, module.feat_bn.*):
    /usr/bin/python3 tools/torch2h5.py model_best.pth.tar w.h5 --preset cluster-contrast --last-stride 1
"""
import argparse
import os
import sys


def _imports():
    """The heavy modules, imported after the arguments are parsed (so that --help is quick)."""
    global h5py, np, torch, slr_torch
    import h5py
    import numpy as np
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import slr_torch


# key prefix renames, applied in order (after `module.` is removed)
PRESETS = {
    # fast-reid: Baseline(backbone=ResNet, heads=EmbeddingHead); pixel_mean/std are its input
    # normalisation, which slr does in its data pipeline
    "fast-reid": {
        "rename": [("backbone.", ""), ("heads.pool_layer.p", "pool.p"), ("heads.bottleneck.0.", "neck."),
                   ("heads.classifier.weight", "classifier.weight"), ("heads.weight", "classifier.weight")],
        "drop": ["pixel_mean", "pixel_std"],
    },
    # Cluster Contrast / SpCL: base = Sequential(conv1, bn1, relu, maxpool, layer1..4), gap, feat_bn
    "cluster-contrast": {
        "rename": [("base.0.", "conv1."), ("base.1.", "bn1."), ("base.4.", "layer1."), ("base.5.", "layer2."),
                   ("base.6.", "layer3."), ("base.7.", "layer4."), ("gap.p", "pool.p"), ("feat_bn.", "neck.")],
        "drop": [],
    },
}


def fail(msg):
    print("torch2h5.py: error: %s" % msg, file=sys.stderr)
    sys.exit(1)


def find_state_dict(obj):
    _imports()
    if isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict", "net"):
            if key in obj and isinstance(obj[key], dict):
                return find_state_dict(obj[key])
    fail("no state_dict found (expected a dict of tensors, or a checkpoint holding one under "
         "'state_dict', 'model', 'model_state_dict' or 'net')")


def parse_rename(text):
    if "=" not in text or text.startswith("="):
        raise argparse.ArgumentTypeError("%r is not OLD=NEW (NEW may be empty)" % text)
    old, new = text.split("=", 1)
    return old, new


def rename_keys(state, renames=(), drop=()):
    """The state with `module.` removed, renames applied in order (prefix OLD becomes NEW) and
    keys starting with a drop prefix left out. Two keys that end up equal are an error."""
    out = {}
    for key, t in state.items():
        k = key[len("module."):] if key.startswith("module.") else key
        for old, new in renames:
            if k.startswith(old):
                k = new + k[len(old):]
        if any(k.startswith(p) for p in drop):
            continue
        if k in out:
            fail("two keys become %r after renaming (one of them is %r)" % (k, key))
        out[k] = t
    return out


def convert(state, out, drop=(), renames=(), last_stride=None):
    """Write `state` (renamed) to `out`; returns (tensor count, description or None)."""
    _imports()
    state = rename_keys(state, renames, drop)
    desc = None
    try:
        desc = slr_torch.describe_state_dict(state, last_stride)
        model = slr_torch.ReIDModel(**dict(desc, last_stride=last_stride or 1))
        desc["feat_dim"] = model.feat_dim
    except (ValueError, KeyError):
        desc = None
    tmp = out + ".tmp"
    with h5py.File(tmp, "w") as f:
        # fixed-length ASCII strings, as slr writes its own
        f.attrs["slr_format"] = np.bytes_("weights")
        f.attrs["slr_format_version"] = np.int64(1)
        if desc:
            for k, v in desc.items():
                if isinstance(v, str):
                    f.attrs[k] = np.bytes_(v)
                elif isinstance(v, float):
                    f.attrs[k] = np.float64(v)
                else:
                    f.attrs[k] = np.int64(v)
        g = f.create_group("model")
        for key, t in state.items():
            a = t.detach().cpu().numpy()
            if a.dtype.kind == "f":
                a = a.astype(np.float32)
            elif a.dtype.kind in "iub":
                a = a.astype(np.int64)
            g.create_dataset(key, data=a)
    os.replace(tmp, out)
    return len(state), desc


def main(argv):
    ap = argparse.ArgumentParser(
        prog="torch2h5.py", description=__doc__.split("\n\n")[0].strip(),
        epilog="\n\n".join(__doc__.split("\n\n")[1:]), formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", metavar="IN.pth", help="PyTorch state_dict or checkpoint (torch.load)")
    ap.add_argument("output", metavar="OUT.h5", help="slr weights file to write (via OUT.h5.tmp)")
    ap.add_argument("--drop", action="append", default=[], metavar="PREFIX",
                    help="leave out keys starting with PREFIX, after renaming (repeatable; e.g. fc. "
                         "of ImageNet models)")
    ap.add_argument("--rename", action="append", default=[], type=parse_rename, metavar="OLD=NEW",
                    help="rename keys starting with OLD to start with NEW (repeatable, applied in order "
                         "after the preset's)")
    ap.add_argument("--preset", choices=sorted(PRESETS),
                    help="key renames of another Re-ID code base: fast-reid (backbone.*, heads.*) or "
                         "cluster-contrast (module.base.*, feat_bn.*; also SpCL)")
    ap.add_argument("--last-stride", type=int, choices=(1, 2),
                    help="record the stride of layer4 (2: torchvision's ImageNet models, 1: Re-ID "
                         "models); it cannot be seen in the keys")
    a = ap.parse_args(argv)
    _imports()
    renames = list(PRESETS[a.preset]["rename"]) if a.preset else []
    drop = list(PRESETS[a.preset]["drop"]) if a.preset else []
    renames += a.rename
    drop += a.drop
    try:
        obj = torch.load(a.input, map_location="cpu")
    except Exception as e:  # torch.load raises many kinds
        fail("%s: cannot read: %s" % (a.input, e))
    state = find_state_dict(obj)
    try:
        n, desc = convert(state, a.output, drop, renames, a.last_stride)
    except OSError as e:
        fail("%s: %s" % (a.output, e))
    print("torch2h5: wrote %d tensors to %s" % (n, a.output))
    if desc:
        print("torch2h5: model %s" % ", ".join("%s=%s" % kv for kv in desc.items()))
        if a.last_stride is None:
            print("torch2h5: no --last-stride: commands that read %s will ask for it" % a.output)
    else:
        print("torch2h5: the keys are not one of slr's models (no conv1.weight or an unknown structure): "
              "no model description written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
