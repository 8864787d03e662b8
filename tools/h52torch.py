#!/usr/bin/python3
"""Convert an slr weight file (HDF5, /model/<state_dict key>) into a PyTorch
state_dict (.pth) that loads with model.load_state_dict(sd, strict=True)
into a model with the same names (torchvision ResNet backbone plus, for the
Re-ID head, `pool.p` (GeM), `neck.*` (BatchNorm1d), `classifier.weight`).

Usage: /usr/bin/python3 tools/h52torch.py IN.h5 OUT.pth
"""
import collections
import sys

import h5py
import torch


def read(path):
    sd = collections.OrderedDict()
    with h5py.File(path, "r") as f:
        if "model" not in f:
            raise SystemExit("h52torch: %s has no /model group" % path)
        g = f["model"]
        keys = []
        g.visit(lambda k: keys.append(k) if isinstance(g[k], h5py.Dataset) else None)
        # HDF5 lists the keys by name; load_state_dict does not depend on the order
        for k in keys:
            a = g[k][()]
            sd[k] = torch.as_tensor(a).clone() if hasattr(a, "shape") else torch.tensor(a)
    return sd


def main(argv):
    if len(argv) != 2:
        raise SystemExit(__doc__)
    sd = read(argv[0])
    torch.save(sd, argv[1])
    print("h52torch: wrote %d tensors to %s" % (len(sd), argv[1]))


if __name__ == "__main__":
    main(argv=sys.argv[1:])
