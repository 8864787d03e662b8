#!/usr/bin/python3
"""Reference for the SLR step (docs/train.md) with NumPy and SciPy, and
the fixtures of tests/mpi/test_refine.c (tests/fixtures/refine/cases.h5).

Per sample, densely: IoU matrix C between previous and current clusters,
P = C row-normalised, s_i = alpha onehot(y_cur) + (1 - alpha) P[y_prev];
hard labels: argmax s_i (lowest column on ties), or
scipy.cluster.hierarchy.linkage(method) + fcluster(t, 'distance') on the
soft labels of every sample that takes part (not zero; current outliers only
when outliers may be reclaimed). Refined clusters are numbered in the order
of their lowest sample index.

Run with Debian's interpreter: /usr/bin/python3 tools/ref/refine_ref.py
"""
import os

import h5py
import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage


def iou_matrix(y_prev, y_cur, kp, kc):
    c = np.zeros((kp, kc))
    sa = np.array([(y_prev == a).sum() for a in range(kp)], dtype=float)
    sb = np.array([(y_cur == b).sum() for b in range(kc)], dtype=float)
    for a in range(kp):
        for b in range(kc):
            n = np.sum((y_prev == a) & (y_cur == b))
            if n:
                c[a, b] = n / (sa[a] + sb[b] - n)
    return c


def soft_labels(y_prev, y_cur, alpha):
    kp, kc = y_prev.max() + 1, y_cur.max() + 1
    c = iou_matrix(y_prev, y_cur, kp, kc)
    rows = c.sum(axis=1, keepdims=True)
    p = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)
    s = np.zeros((len(y_cur), kc))
    for i, (a, b) in enumerate(zip(y_prev, y_cur)):
        if b >= 0:
            s[i, b] += alpha
        if a >= 0:
            s[i] += (1 - alpha) * p[a]
    return c, s


def renumber(lab):
    out = np.full(len(lab), -1, dtype=np.int32)
    seen = {}
    for i, v in enumerate(lab):
        if v < 0:
            continue
        if v not in seen:
            seen[v] = len(seen)
        out[i] = seen[v]
    return out


def refine(y_prev, y_cur, mode, alpha, method, threshold, reclaim):
    c, s = soft_labels(y_prev, y_cur, alpha)
    if mode == "none":
        return c, s, y_cur.astype(np.int32)
    take = (np.abs(s).sum(axis=1) > 0) & ((y_cur >= 0) | bool(reclaim))
    lab = np.full(len(y_cur), -1)
    if mode == "argmax":
        lab[take] = np.argmax(s[take], axis=1)
    else:
        idx = np.flatnonzero(take)
        if len(idx) == 1:
            lab[idx] = 0
        elif len(idx) > 1:
            z = linkage(s[idx], method=method, metric="euclidean")
            lab[idx] = fcluster(z, threshold, criterion="distance")
    return c, s, renumber(lab)




def main():
    rng = np.random.default_rng(2024)
    out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "refine", "cases.h5")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cases = [
        # n, k, noise, mode, alpha, linkage, threshold, reclaim
        (300, 25, 0.15, "hierarchical", 0.5, "average", 0.5, 1),
        (300, 25, 0.15, "hierarchical", 0.5, "average", 0.5, 0),
        (250, 20, 0.25, "hierarchical", 0.3, "complete", 0.6, 1),
        (250, 20, 0.25, "hierarchical", 0.7, "single", 0.3, 1),
        (250, 20, 0.20, "hierarchical", 0.5, "ward", 0.8, 1),
        (300, 25, 0.15, "argmax", 0.5, "average", 0.5, 1),
        (300, 25, 0.15, "argmax", 0.4, "average", 0.5, 0),
        (200, 15, 0.10, "none", 0.5, "average", 0.5, 1),
        (7, 3, 0.30, "hierarchical", 0.5, "average", 0.5, 1),
    ]
    with h5py.File(out, "w") as f:
        f.attrs["count"] = len(cases)
        for ci, (n, k, noise, mode, alpha, method, thr, reclaim) in enumerate(cases):
            truth = rng.integers(0, k, size=n)

            def perturb():
                y = truth.copy()
                move = rng.random(n) < noise
                y[move] = rng.integers(0, k, size=move.sum())
                split = rng.integers(0, k)
                half = (y == split) & (rng.random(n) < 0.5)
                y[half] = k  # one cluster split in two
                y[rng.random(n) < noise] = -1
                used = np.unique(y[y >= 0])
                remap = {v: i for i, v in enumerate(used)}
                return np.array([remap[v] if v >= 0 else -1 for v in y], dtype=np.int32)

            y_prev, y_cur = perturb(), perturb()
            c, s, lab = refine(y_prev, y_cur, mode, alpha, method, thr, reclaim)
            g = f.create_group(f"case{ci}")
            g["y_prev"] = y_prev
            g["y_cur"] = y_cur
            g["soft"] = s
            g["iou"] = c
            g["labels"] = lab
            g.attrs["mode"] = mode
            g.attrs["alpha"] = alpha
            g.attrs["linkage"] = method
            g.attrs["threshold"] = thr
            g.attrs["reclaim"] = reclaim
            print(f"case{ci}: n={n} mode={mode} {method} t={thr} reclaim={reclaim}: "
                  f"{lab.max() + 1} clusters, {(lab < 0).sum()} outliers "
                  f"(current: {y_cur.max() + 1} clusters, {(y_cur < 0).sum()} outliers)")
    print("wrote", out)


if __name__ == "__main__":
    main()
