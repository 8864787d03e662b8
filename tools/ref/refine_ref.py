#!/usr/bin/python3
"""Reference for the SLR step with NumPy and SciPy, and the fixtures of
tests/mpi/test_refine.c (tests/fixtures/refine/cases.h5 for threshold 0.5
with outliers reclaimed, variants.h5 for every variant of include/slr/refine.h,
the defaults among them).

Per sample, densely: IoU matrix C between previous and current clusters, the
projection P (C row-normalised; C; or |A_a & B_b| / |A_a|),
s_i = alpha onehot(y_cur) + (1 - alpha) P[y_prev]; hard labels: argmax s_i
(lowest column on ties), or scipy.cluster.hierarchy.linkage(method) on the
pdist distances between soft labels (euclidean, cosine, jensenshannon with
base 2 on the labels normalised to sum 1, or Hellinger as the Euclidean
distance of sqrt(p) / sqrt(2)) + fcluster(t, 'distance') on the soft labels
of every sample that takes part (not zero; current outliers only when
outliers may be reclaimed). t is the threshold, or threshold * alpha; alpha
comes from the schedule at (epoch, epochs). Refined clusters are numbered in
the order of their lowest sample index. A chain case refines twice, the
second time projecting the first step's refined labels.

Run with Debian's interpreter: /usr/bin/python3 tools/ref/refine_ref.py
(SLR_REF_OUT=DIR writes the fixtures there instead).
"""
import os

import h5py
import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import jensenshannon, pdist


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


def projection(y_prev, y_cur, c, mode):
    """row: C row-normalised; iou: C; transition: |A_a & B_b| / |A_a|."""
    if mode == "iou":
        return c.copy()
    if mode == "transition":
        kp, kc = c.shape
        t = np.zeros((kp, kc))
        for a in range(kp):
            size = np.sum(y_prev == a)
            for b in range(kc):
                t[a, b] = np.sum((y_prev == a) & (y_cur == b)) / size if size else 0.0
        return t
    rows = c.sum(axis=1, keepdims=True)
    return np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)


def soft_labels(y_prev, y_cur, alpha, proj="row"):
    kp, kc = y_prev.max() + 1, y_cur.max() + 1
    c = iou_matrix(y_prev, y_cur, kp, kc)
    p = projection(y_prev, y_cur, c, proj)
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


def soft_distances(x, distance):
    """Condensed distances between soft labels (rows of x)."""
    if distance == "euclidean":
        return pdist(x, "euclidean")
    if distance == "cosine":
        return pdist(x, "cosine")
    p = x / x.sum(axis=1, keepdims=True)
    if distance == "hellinger":
        return pdist(np.sqrt(p) / np.sqrt(2), "euclidean")
    if distance == "jensen_shannon":
        return pdist(p, lambda u, v: jensenshannon(u, v, base=2))
    raise ValueError(distance)


def alpha_at(alpha, alpha_end, schedule, epoch, epochs):
    if schedule != "linear" or epochs <= 1 or epoch <= 0:
        return alpha
    if epoch >= epochs - 1:
        return alpha_end
    return alpha + (alpha_end - alpha) * (epoch / (epochs - 1))


def refine(y_prev, y_cur, mode, alpha, method, threshold, reclaim, distance="euclidean",
           proj="row"):
    c, s = soft_labels(y_prev, y_cur, alpha, proj)
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
            z = linkage(soft_distances(s[idx], distance), method=method)
            lab[idx] = fcluster(z, threshold, criterion="distance")
    return c, s, renumber(lab)


def perturb(rng, truth, k, noise):
    n = len(truth)
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


def write_variants(out):
    """Every refinement variant: distances, projections, threshold modes, the
    alpha schedule, and a chain of two steps that projects refined labels."""
    rng = np.random.default_rng(2025)
    base = dict(mode="hierarchical", alpha=0.5, linkage="average", threshold=0.5, reclaim=1,
                distance="euclidean", projection="row", threshold_mode="absolute",
                alpha_schedule="constant", alpha_end=0.5, epoch=0, epochs=1, chain=0)
    variants = [
        dict(distance="cosine", threshold=0.3),
        dict(distance="cosine", linkage="complete", threshold=0.5),
        dict(distance="cosine", threshold=0.3, reclaim=0),
        dict(distance="cosine", linkage="single", threshold=1.5),
        dict(distance="jensen_shannon", threshold=0.4),
        dict(distance="jensen_shannon", linkage="single", threshold=0.3),
        dict(distance="jensen_shannon", linkage="complete", threshold=0.6, projection="iou"),
        dict(distance="hellinger", threshold=0.4),
        dict(distance="hellinger", linkage="ward", threshold=0.8),
        dict(threshold_mode="alpha", threshold=1.2),
        dict(threshold_mode="alpha", threshold=1.6, linkage="single"),
        dict(projection="iou", linkage="complete"),
        dict(projection="transition"),
        dict(projection="transition", linkage="ward", threshold=1.0),
        dict(mode="argmax", projection="transition"),
        dict(mode="argmax", projection="iou", alpha=0.3),
        dict(alpha=0.7, alpha_schedule="linear", alpha_end=0.3, epoch=2, epochs=5,
             threshold_mode="alpha", threshold=1.0),
        dict(alpha=0.3, alpha_schedule="linear", alpha_end=0.6, epoch=7, epochs=5),
        dict(linkage="single", threshold=0.75),
        dict(threshold=2.0),
        dict(linkage="ward", threshold=1.5),
        dict(chain=1),
        dict(chain=1, distance="cosine", threshold=0.3, projection="transition"),
        # the defaults chosen by the study: just above alpha*sqrt(2), no reclaim
        dict(threshold=0.72, reclaim=0),
        dict(threshold=0.72, reclaim=0, chain=1),
    ]
    with h5py.File(out, "w") as f:
        f.attrs["count"] = len(variants)
        for ci, v in enumerate(variants):
            c_ = dict(base, **v)
            n, k, noise = (250, 20, 0.2) if ci % 2 == 0 else (220, 16, 0.25)
            truth = rng.integers(0, k, size=n)
            y_prev, y_cur, y_next = (perturb(rng, truth, k, noise) for _ in range(3))
            a = alpha_at(c_["alpha"], c_["alpha_end"], c_["alpha_schedule"], c_["epoch"],
                         c_["epochs"])
            t = c_["threshold"] * (a if c_["threshold_mode"] == "alpha" else 1.0)
            args = (c_["mode"], a, c_["linkage"], t, c_["reclaim"], c_["distance"],
                    c_["projection"])
            c, s, lab = refine(y_prev, y_cur, *args)
            g = f.create_group(f"case{ci}")
            g["y_prev"], g["y_cur"], g["soft"], g["iou"], g["labels"] = y_prev, y_cur, s, c, lab
            if c_["chain"]:
                _, _, lab2 = refine(lab, y_next, *args)
                g["y_next"], g["labels_next"] = y_next, lab2
            for key, val in c_.items():
                g.attrs[key] = val
            print(f"variant case{ci}: {v}: {lab.max() + 1} clusters, {(lab < 0).sum()} outliers "
                  f"(current {y_cur.max() + 1}, {(y_cur < 0).sum()})")
    print("wrote", out)


def main():
    rng = np.random.default_rng(2024)
    here = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "refine")
    out = os.path.join(os.environ.get("SLR_REF_OUT", here), "cases.h5")
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
    write_variants(os.path.join(os.environ.get("SLR_REF_OUT", here), "variants.h5"))


if __name__ == "__main__":
    main()
