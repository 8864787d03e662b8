#!/usr/bin/python3
"""Convert an slr weights file (HDF5, /model/<state_dict key>) into a PyTorch state_dict (.pth).

The state_dict loads with load_state_dict(sd, strict=True) into
tools/slr_torch.py's ReIDModel built from the file's description (the
torchvision ResNet backbone with the Re-ID head: `pool.p` for GeM, `neck.*`
for the BNNeck, `classifier.weight`); the script checks that before it
writes, when the file describes its model. A training checkpoint
(RUN/checkpoints/*.h5) holds its weights as one flat vector: `slr export
CKPT.h5 --out W.h5` writes a weights file from it first.

Example:
  /usr/bin/python3 tools/h52torch.py runs/d2m/final.h5 final.pth
  then, in Python (tools/ on sys.path):
    import slr_torch, torch
    model = slr_torch.ReIDModel(**slr_torch.describe("runs/d2m/final.h5"))
    model.load_state_dict(torch.load("final.pth"), strict=True)
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




def fail(msg):
    print("h52torch.py: error: %s" % msg, file=sys.stderr)
    sys.exit(1)


def read(path):
    """The state_dict of an slr weights file; exits with a message for anything else."""
    _imports()
    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("slr_format", b"weights")
            fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
            if fmt == "checkpoint":
                fail("%s is a training checkpoint, not a weights file: its model is one flat vector "
                     "(/model/params); write its weights with `slr export %s --out W.h5`, then convert "
                     "W.h5" % (path, path))
            if fmt != "weights":
                fail("%s has slr_format %r, not 'weights'" % (path, fmt))
            if "model" not in f or not isinstance(f["model"], h5py.Group):
                fail("%s has no /model group of state_dict keys" % path)
    except OSError as e:
        fail("%s: cannot read: %s" % (path, e))
    return slr_torch.read_state_dict(path)


def main(argv):
    ap = argparse.ArgumentParser(
        prog="h52torch.py", description=__doc__.split("\n\n")[0].strip(),
        epilog="\n\n".join(__doc__.split("\n\n")[1:]), formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", metavar="IN.h5", help="slr weights file (slr train's pretrain.h5, final.h5, "
                    "slr export's output, torch2h5.py's output)")
    ap.add_argument("output", metavar="OUT.pth", help="PyTorch state_dict to write (torch.save)")
    a = ap.parse_args(argv)
    _imports()
    sd = read(a.input)
    try:
        desc = slr_torch.describe(a.input)
    except ValueError as e:
        desc = None
        print("h52torch: %s; the strict-load check is skipped" % e)
    if desc:
        model = slr_torch.ReIDModel(**desc)
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            fail("%s does not load into the model it describes (%s): %s" % (
                a.input, ", ".join("%s=%s" % kv for kv in desc.items()), e))
    torch.save(sd, a.output)
    print("h52torch: wrote %d tensors to %s" % (len(sd), a.output))
    if desc:
        print("h52torch: loads with strict=True into slr_torch.ReIDModel(%s)" % ", ".join(
            "%s=%r" % kv for kv in desc.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
