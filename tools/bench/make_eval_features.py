#!/usr/bin/python3
"""Random clustered query/gallery features at MSMT17's test size for
tools/bench/evaluate.sh: identity centres + a camera offset + noise, float32,
written in row chunks with h5py (/query/{features,pids,camids},
/gallery/{features,pids,camids}).

Usage: make_eval_features.py OUT.h5 [--nq 11659] [--ng 82161] [--dim 2048]
       [--ids 3060] [--cams 15] [--seed 0]
"""
import argparse

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--nq", type=int, default=11659)
    ap.add_argument("--ng", type=int, default=82161)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--ids", type=int, default=3060)
    ap.add_argument("--cams", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    centres = rng.standard_normal((a.ids, a.dim), dtype=np.float32) * 0.3
    camoff = rng.standard_normal((a.cams, a.dim), dtype=np.float32) * 0.15
    chunk = 8192
    with h5py.File(a.out, "w") as f:
        for part, n in (("query", a.nq), ("gallery", a.ng)):
            pids = rng.integers(0, a.ids, size=n)
            cams = rng.integers(0, a.cams, size=n)
            f[part + "/pids"] = pids.astype(np.int64)
            f[part + "/camids"] = (cams + 1).astype(np.int64)
            ds = f.create_dataset(part + "/features", (n, a.dim), dtype=np.float32)
            for r0 in range(0, n, chunk):
                r1 = min(n, r0 + chunk)
                x = rng.standard_normal((r1 - r0, a.dim), dtype=np.float32)
                x += centres[pids[r0:r1]]
                x += camoff[cams[r0:r1]]
                ds[r0:r1] = x


if __name__ == "__main__":
    main()
