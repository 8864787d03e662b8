#!/usr/bin/python3
"""Fixture for slr's evaluation tests: a small Market-like query/gallery set
(clustered random features, 6 cameras, distractors with pid 0, junk items with
the query's pid and camera, queries without any match) written with h5py,
and the expected metrics from the NumPy port of eval_market1501
(tools/ref/eval_reference.py), with distances in float64.

The set is made tie-free: a gallery item whose distance to some query lies
within 2e-6 of the distance of one of that query's matches is dropped, so
that float32 rounding cannot change any match's position.

Run: /usr/bin/python3 tools/ref/eval_fixture.py tests/fixtures/eval/market_small.h5
"""
import sys

import h5py
import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from eval_reference import distances, eval_market1501  # noqa: E402


def make(rng, ids=40, dim=32, ncam=6):
    centers = rng.normal(size=(ids + 1, dim))
    camoff = rng.normal(scale=0.6, size=(ncam, dim))
    qf, qp, qc, gf, gp, gc = [], [], [], [], [], []
    for pid in range(1, ids + 1):
        cams = rng.choice(ncam, size=rng.integers(1, 5), replace=False)
        for c in cams:
            for _ in range(rng.integers(1, 5)):
                x = centers[pid] + camoff[c] + rng.normal(scale=0.9, size=dim)
                gf.append(x), gp.append(pid), gc.append(c + 1)
        for _ in range(rng.integers(1, 3)):
            c = cams[rng.integers(len(cams))] if rng.random() < 0.8 else rng.integers(ncam)
            x = centers[pid] + camoff[c] + rng.normal(scale=0.9, size=dim)
            qf.append(x), qp.append(pid), qc.append(c + 1)
    for _ in range(150):  # distractors
        c = rng.integers(ncam)
        gf.append(rng.normal(scale=1.3, size=dim) + camoff[c]), gp.append(0), gc.append(c + 1)
    perm = rng.permutation(len(gf))
    g = [np.asarray(v)[perm] for v in (gf, gp, gc)]
    q = [np.asarray(v) for v in (qf, qp, qc)]
    return (q[0].astype(np.float32), q[1], q[2], g[0].astype(np.float32), g[1], g[2])


def drop_near_ties(qf, qp, qc, gf, gp, gc, tol=2e-6):
    while True:
        bad = set()
        for metric in ("euclidean", "cosine"):
            d = distances(qf.astype(np.float64), gf.astype(np.float64), metric)
            for q in range(len(qf)):
                pos = np.flatnonzero((gp == qp[q]) & (gc != qc[q]))
                keep = ~((gp == qp[q]) & (gc == qc[q]))
                for p in pos:
                    close = np.flatnonzero(keep & (np.abs(d[q] - d[q, p]) < tol))
                    bad.update(int(j) for j in close if j != p)
        if not bad:
            return gf, gp, gc
        m = np.ones(len(gf), bool)
        m[sorted(bad)] = False
        gf, gp, gc = gf[m], gp[m], gc[m]


def main():
    rng = np.random.default_rng(1501)
    qf, qp, qc, gf, gp, gc = make(rng)
    gf, gp, gc = drop_near_ties(qf, qp, qc, gf, gp, gc)
    with h5py.File(sys.argv[1], "w") as f:
        f["/query/features"] = qf
        f["/query/pids"] = qp.astype(np.int64)
        f["/query/camids"] = qc.astype(np.int32)
        f["/gallery/features"] = gf
        f["/gallery/pids"] = gp.astype(np.int64)
        f["/gallery/camids"] = gc.astype(np.int32)
        for metric in ("euclidean", "cosine"):
            d = distances(qf.astype(np.float64), gf.astype(np.float64), metric)
            m_ap, m_inp, cmc, nvalid = eval_market1501(d, qp, gp, qc, gc)
            f["/expected/%s/mAP" % metric] = m_ap
            f["/expected/%s/mINP" % metric] = m_inp
            f["/expected/%s/cmc" % metric] = cmc
            f["/expected/%s/num_valid" % metric] = nvalid
            print(metric, "mAP %.4f mINP %.4f R1 %.4f valid %d/%d, gallery %d"
                  % (m_ap, m_inp, cmc[0], nvalid, len(qf), len(gf)))


if __name__ == "__main__":
    main()
