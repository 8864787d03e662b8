#!/usr/bin/python3
"""Makes tests/fixtures/io/foreign.h5: a file as h5py writes it by default
(no slr_format tag, variable-length UTF-8 strings, float64 and int16 arrays),
for the test that slr reads files written by other tools.

Run with Debian's interpreter: /usr/bin/python3 tools/ref/io_fixtures.py
"""
import os

import h5py
import numpy as np

out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "io", "foreign.h5")
os.makedirs(os.path.dirname(out), exist_ok=True)
with h5py.File(out, "w") as f:
    f["query/features"] = np.arange(12, dtype=np.float64).reshape(4, 3) / 8.0
    f["query/pids"] = np.array([3, -1, 0, 7], dtype=np.int16)
    f["query/paths"] = ["q/0001_c1.jpg", "q/é.jpg", "", "q/a-much-longer-name_0007.jpg"]
    f.attrs["note"] = "written by h5py"
print("wrote", out)
