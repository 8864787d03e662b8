#!/usr/bin/python3
"""Weights files with the model description attributes, for
tests/e2e/test_nn_infer.sh (which then needs no Python):

  r50_described.h5   r50_weights.h5 (from nn_resnet.py) with the attributes
                     tools/torch2h5.py writes plus last_stride 1
  r50_lying.h5       conv1.weight of r50_weights.h5 only, with attributes
                     that claim width 8: loading must name the key and both
                     shapes

Run: /usr/bin/python3 tools/ref/nn_described.py
"""
import os
import shutil

import h5py
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/fixtures/nn")
DESC = {"arch": "resnet50", "width": 4, "last_stride": 1, "pool": "gem", "gem_p": 3.0, "neck": 1,
        "num_classes": 0, "feat_dim": 128}


def describe(f, d):
    for k, v in d.items():
        f.attrs[k] = np.bytes_(v) if isinstance(v, str) else (np.float64(v) if isinstance(v, float) else np.int64(v))


src = os.path.join(OUT, "r50_weights.h5")
dst = os.path.join(OUT, "r50_described.h5")
shutil.copyfile(src, dst)
with h5py.File(dst, "a") as f:
    describe(f, DESC)
with h5py.File(src, "r") as s, h5py.File(os.path.join(OUT, "r50_lying.h5"), "w") as f:
    f.attrs["slr_format"] = np.bytes_("weights")
    f.attrs["slr_format_version"] = np.int64(1)
    describe(f, dict(DESC, width=8))
    f.create_group("model").create_dataset("conv1.weight", data=s["model/conv1.weight"][()])
print("wrote r50_described.h5, r50_lying.h5")
