#!/usr/bin/python3
"""Bad input files for the e2e test of `slr evaluate` (tests/e2e/test_evaluate.sh),
written with h5py: each differs from a small valid file by one fault.

Run: /usr/bin/python3 tools/ref/eval_bad_inputs.py tests/fixtures/eval
"""
import os
import sys

import h5py
import numpy as np


def valid(rng):
    d = {}
    for part, n in (("query", 6), ("gallery", 20)):
        d[part + "/features"] = rng.normal(size=(n, 8)).astype(np.float32)
        d[part + "/pids"] = np.arange(n, dtype=np.int64) % 4
        d[part + "/camids"] = (np.arange(n, dtype=np.int64) % 3) + (1 if part == "gallery" else 0)
    return d


def write(path, d):
    with h5py.File(path, "w") as f:
        for k, v in d.items():
            f[k] = v


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(7)
    cases = {}
    d = valid(rng); del d["gallery/camids"]; cases["missing"] = d
    d = valid(rng); d["query/features"] = d["query/features"].reshape(6, 2, 4); cases["rank"] = d
    d = valid(rng); d["gallery/pids"] = d["gallery/pids"].astype(np.float64); cases["type"] = d
    d = valid(rng); d["gallery/pids"] = d["gallery/pids"][:-1]; cases["count"] = d
    d = valid(rng); d["gallery/features"][13, 5] = np.nan; cases["nan"] = d
    d = valid(rng)
    for k in ("features", "pids", "camids"):
        d["query/" + k] = d["query/" + k][:0]
    cases["empty"] = d
    d = valid(rng); d["gallery/pids"] = d["gallery/pids"] + 100; cases["nomatch"] = d
    d = valid(rng); d["gallery/features"] = rng.normal(size=(20, 9)).astype(np.float32)
    cases["dim"] = d
    for name, d in cases.items():
        write(os.path.join(out, "bad_%s.h5" % name), d)


if __name__ == "__main__":
    main()
