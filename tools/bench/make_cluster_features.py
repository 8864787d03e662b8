"""Clustered unit-norm features for the clustering benchmark.

/usr/bin/python3 tools/bench/make_cluster_features.py OUT.h5 N D [SEED]
About N/30 identities of varied size (like a Re-ID training set), each a
Gaussian around its centre, plus 5 % of noise rows; float32, L2-normalised.
"""
import sys

import h5py
import numpy as np


def main():
    out, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    rng = np.random.default_rng(seed)
    ids = max(1, n // 30)
    sizes = rng.integers(5, 56, size=ids)
    owner = np.repeat(np.arange(ids), sizes)[: int(n * 0.95)]
    owner = np.concatenate([owner, rng.integers(0, ids, size=int(n * 0.95) - len(owner))])
    with h5py.File(out, "w") as f:
        ds = f.create_dataset("features", shape=(n, d), dtype=np.float32)
        step = 8192
        perm = rng.permutation(n)
        centres = rng.standard_normal((ids, d), dtype=np.float32)
        spread = rng.uniform(0.5, 1.1, size=ids).astype(np.float32)
        rows = np.empty((n, d), dtype=np.float32) if n * d <= 2 ** 31 else None
        for s in range(0, n, step):
            e = min(n, s + step)
            x = rng.standard_normal((e - s, d), dtype=np.float32)
            for r in range(s, e):
                p = perm[r]
                if p < len(owner):
                    x[r - s] = centres[owner[p]] + spread[owner[p]] * x[r - s]
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            if rows is not None:
                rows[s:e] = x
            else:
                ds[s:e] = x
        if rows is not None:
            ds[...] = rows


if __name__ == "__main__":
    main()
