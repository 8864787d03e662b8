#!/usr/bin/python3
"""Reference for slr_refine_diagnostics_compute and slr_label_transition_compute
(tests/fixtures/eval/refine_diagnostics.h5), by brute force over samples and
sample pairs with NumPy, and scikit-learn's normalized_mutual_info_score.

Definitions (include/slr/eval.h): a refined cluster's DBSCAN cluster gives it
most samples (lowest id on ties, none when all its samples were DBSCAN
outliers); moved = reclaimed (DBSCAN outlier, refined into a cluster) +
dropped (DBSCAN cluster, refined outlier) + reassigned (refined cluster's
DBSCAN cluster is not the sample's own); a reclaimed sample is right when its
identity is the most frequent (lowest on ties) among its refined cluster's
DBSCAN-clustered samples; joined pairs: same refined cluster, not the same
DBSCAN cluster (right: same identity); separated pairs: the reverse (right:
different identities); a previous cluster is split when >= 2 current
clusters each hold >= share of its members, a current cluster is a merge
when >= 2 previous clusters each give >= share of its members; NMI with
every outlier a singleton.

Run with Debian's interpreter: /usr/bin/python3 tools/ref/refine_diagnostics_ref.py
"""
import os

import h5py
import numpy as np
from sklearn.metrics import normalized_mutual_info_score


def singletons(y):
    y = y.astype(np.int64).copy()
    o = np.flatnonzero(y < 0)
    y[o] = y.max() + 1 + np.arange(len(o))
    return y


def spread(keys, other, share):
    count = 0
    for a in np.unique(keys[keys >= 0]):
        members = other[keys == a]
        size = len(members)
        big = sum(1 for b in np.unique(members[members >= 0])
                  if np.sum(members == b) >= share * size)
        count += big >= 2
    return count


def diagnostics(y_dbscan, y_refined, y_prev, truth, share):
    d = {}
    n = len(truth)
    reclaimed = dropped = reassigned = right = 0
    for r in np.unique(y_refined):
        members = np.flatnonzero(y_refined == r)
        if r < 0:
            dropped += np.sum(y_dbscan[members] >= 0)
            continue
        b = y_dbscan[members]
        clustered = b[b >= 0]
        best_b = np.bincount(clustered).argmax() if len(clustered) else -1
        ids = truth[members][b >= 0]
        best_t = np.bincount(ids).argmax() if len(ids) else -1
        for i in members:
            if y_dbscan[i] < 0:
                reclaimed += 1
                right += truth[i] == best_t
            elif y_dbscan[i] != best_b:
                reassigned += 1
    d.update(samples=n, reclaimed=reclaimed, dropped=dropped, reassigned=reassigned,
             moved=reclaimed + dropped + reassigned, reclaimed_right=right)
    iu = np.triu_indices(n, 1)
    same_r = ((y_refined[:, None] == y_refined[None, :]) & (y_refined[:, None] >= 0))[iu]
    same_b = ((y_dbscan[:, None] == y_dbscan[None, :]) & (y_dbscan[:, None] >= 0))[iu]
    same_t = (truth[:, None] == truth[None, :])[iu]
    joined, separated = same_r & ~same_b, same_b & ~same_r
    d.update(pairs_joined=joined.sum(), pairs_joined_right=(joined & same_t).sum(),
             pairs_separated=separated.sum(), pairs_separated_right=(separated & ~same_t).sum())
    if y_prev is not None:
        d.update(splits=spread(y_prev, y_refined, share), merges=spread(y_refined, y_prev, share),
                 clusters_prev=len(np.unique(y_prev[y_prev >= 0])),
                 clusters_cur=len(np.unique(y_refined[y_refined >= 0])),
                 nmi=normalized_mutual_info_score(singletons(y_prev), singletons(y_refined)))
    return d


def relabel(y, rng):
    """Random cluster ids (outliers kept), so that ids carry no order."""
    ids = np.unique(y[y >= 0])
    perm = rng.permutation(len(ids))
    out = y.copy()
    for i, v in enumerate(ids):
        out[y == v] = perm[i]
    return out.astype(np.int32)


def main():
    rng = np.random.default_rng(11)
    out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "eval",
                       "refine_diagnostics.h5")
    # n, identities, DBSCAN noise, outlier rate, refinement changes, share, previous labels
    cases = [(300, 25, 0.15, 0.15, 0.1, 0.2, True), (250, 10, 0.3, 0.3, 0.3, 0.1, True),
             (200, 40, 0.05, 0.05, 0.02, 0.25, False), (60, 3, 0.5, 0.5, 0.5, 0.5, True),
             (40, 40, 0.0, 0.0, 0.0, 0.2, True)]
    with h5py.File(out, "w") as f:
        f.attrs["count"] = len(cases)
        for ci, (n, k, noise, drop, change, share, prev) in enumerate(cases):
            truth = rng.integers(0, k, size=n).astype(np.int32)
            y = truth.copy()
            m = rng.random(n) < noise
            y[m] = rng.integers(0, k + 2, size=m.sum())
            y[rng.random(n) < drop] = -1
            y_dbscan = relabel(y, rng)
            # refinement: reclaim some outliers (to their identity or anywhere), drop some,
            # merge two clusters, split one
            r = y_dbscan.copy()
            o = np.flatnonzero(r < 0)
            take = o[rng.random(len(o)) < 0.6]
            home = {t: (np.bincount(r[(truth == t) & (r >= 0)]).argmax()
                        if np.any((truth == t) & (r >= 0)) else 0) for t in range(k)}
            to_home = np.array([home[t] for t in truth[take]], dtype=np.int32)
            r[take] = np.where(rng.random(len(take)) < 0.6, to_home,
                               rng.integers(0, r.max() + 1, size=len(take)))
            r[rng.random(n) < change * 0.3] = -1
            if r.max() >= 2:
                r[r == 1] = 0
                half = (r == 2) & (rng.random(n) < 0.5)
                r[half] = r.max() + 1
            mv = rng.random(n) < change
            r[mv] = rng.integers(-1, r.max() + 1, size=mv.sum())
            y_refined = relabel(r, rng)
            y_prev = relabel(np.where(rng.random(n) < 0.2, -1, np.where(
                rng.random(n) < 0.2, rng.integers(0, k, size=n), truth)), rng) if prev else None
            d = diagnostics(y_dbscan, y_refined, y_prev, truth, share)
            g = f.create_group(f"case{ci}")
            g["truth"], g["y_dbscan"], g["y_refined"] = truth, y_dbscan, y_refined
            if prev:
                g["y_prev"] = y_prev
            g.attrs["share"] = share
            for key, v in d.items():
                g.attrs[key] = v
            print(f"case{ci}: {d}")
    print("wrote", out)


if __name__ == "__main__":
    main()
