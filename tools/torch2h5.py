#!/usr/bin/python3
"""Convert a PyTorch weight file (.pth) into an slr weight file (HDF5).

The input may be a state_dict, or a checkpoint dict holding one under
'state_dict' or 'model' (a `module.` prefix from DataParallel is removed).
The output has one dataset per state_dict key under /model with PyTorch's
shape: floating tensors as float32, integer tensors (num_batches_tracked)
as int64; root attributes slr_format = "weights", slr_format_version = 1.

Usage: /usr/bin/python3 tools/torch2h5.py IN.pth OUT.h5 [--drop PREFIX ...]
  --drop PREFIX   leave out keys starting with PREFIX (e.g. fc. of ImageNet models)
"""
import argparse
import sys

import h5py
import numpy as np
import torch


def find_state_dict(obj):
    if isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict", "net"):
            if key in obj and isinstance(obj[key], dict):
                return find_state_dict(obj[key])
    raise SystemExit("torch2h5: no state_dict found (expected a dict of tensors, or a checkpoint "
                     "holding one under 'state_dict' or 'model')")


def convert(state, out, drop=()):
    n = 0
    with h5py.File(out, "w") as f:
        # a fixed-length ASCII string, as slr writes its own tags
        f.attrs["slr_format"] = np.bytes_("weights")
        f.attrs["slr_format_version"] = np.int64(1)
        g = f.create_group("model")
        for key, t in state.items():
            if key.startswith("module."):
                key = key[len("module."):]
            if any(key.startswith(p) for p in drop):
                continue
            a = t.detach().cpu().numpy()
            if a.dtype.kind == "f":
                a = a.astype(np.float32)
            elif a.dtype.kind in "iub":
                a = a.astype(np.int64)
            g.create_dataset(key, data=a)
            n += 1
    return n


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--drop", action="append", default=[])
    a = ap.parse_args(argv)
    state = find_state_dict(torch.load(a.input, map_location="cpu"))
    n = convert(state, a.output, a.drop)
    print("torch2h5: wrote %d tensors to %s" % (n, a.output))


if __name__ == "__main__":
    main(sys.argv[1:])
