#!/usr/bin/python3
"""Fixture for slr_pca_basis: float32 features with a decaying spectrum and
NumPy's (float64 eigh) leading principal axes of all rows and of every 3rd
row and every 13th row (the samples slr takes with max_rows = 100 and 20 of
257 rows; the second has fewer rows than dimensions, slr's dual form).

    /usr/bin/python3 tools/ref/pca_fixture.py tests/fixtures/dist/pca.h5
"""
import sys

import h5py
import numpy as np

N, D, P = 257, 40, 6


def axes(x):
    x = x.astype(np.float64)
    c = x - x.mean(axis=0)
    cov = c.T @ c / len(x)
    w, v = np.linalg.eigh(cov)
    w, v = w[::-1][:P], v[:, ::-1][:, :P].T
    return w, v


def main(path):
    rng = np.random.default_rng(14)
    q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    scale = 3.0 * 0.8 ** np.arange(D)
    x = (rng.standard_normal((N, D)) * scale) @ q.T + rng.standard_normal(D)
    x = x.astype(np.float32)
    with h5py.File(path, "w") as f:
        f["features"] = x
        w, v = axes(x)
        f["all/eigval"], f["all/eigvec"] = w, v
        w, v = axes(x[::3])
        f["every3/eigval"], f["every3/eigvec"] = w, v
        w, v = axes(x[::13])
        f["every13/eigval"], f["every13/eigvec"] = w, v
        f.attrs["p"] = P


if __name__ == "__main__":
    main(sys.argv[1])
