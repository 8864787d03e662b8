#!/usr/bin/python3
"""Reference label diagnostics with scikit-learn (tests/fixtures/eval/label_quality.h5).

Outliers (-1) are singleton clusters: each is given a label of its own before
normalized_mutual_info_score and adjusted_rand_score. Pairwise precision and
recall are counted over all sample pairs directly.

Run with Debian's interpreter: /usr/bin/python3 tools/ref/label_quality_ref.py
"""
import os

import h5py
import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def pairwise(labels, truth):
    same_l = (labels[:, None] == labels[None, :]) & (labels[:, None] >= 0)
    same_t = truth[:, None] == truth[None, :]
    iu = np.triu_indices(len(labels), 1)
    tp = np.sum(same_l[iu] & same_t[iu])
    pp, tt = np.sum(same_l[iu]), np.sum(same_t[iu])
    return (tp / pp if pp else 0.0), (tp / tt if tt else 0.0)


def main():
    rng = np.random.default_rng(7)
    out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "eval", "label_quality.h5")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cases = [(400, 30, 0.2, 0.1), (300, 10, 0.5, 0.3), (200, 50, 0.05, 0.0), (50, 5, 0.0, 0.9), (120, 1, 0.3, 0.2)]
    with h5py.File(out, "w") as f:
        f.attrs["count"] = len(cases)
        for ci, (n, k, move, drop) in enumerate(cases):
            truth = rng.integers(0, k, size=n).astype(np.int32)
            lab = truth.copy()
            m = rng.random(n) < move
            lab[m] = rng.integers(0, k + 3, size=m.sum())
            lab[rng.random(n) < drop] = -1
            single = lab.copy()
            o = np.flatnonzero(single < 0)
            single[o] = 1000 + np.arange(len(o))
            p, r = pairwise(lab, truth)
            g = f.create_group(f"case{ci}")
            g["labels"] = lab.astype(np.int32)
            g["truth"] = truth
            g.attrs["nmi"] = normalized_mutual_info_score(truth, single)
            g.attrs["ari"] = adjusted_rand_score(truth, single)
            g.attrs["precision"] = p
            g.attrs["recall"] = r
            g.attrs["outliers"] = int((lab < 0).sum())
            g.attrs["clusters"] = int(len(np.unique(lab[lab >= 0])))
            print(ci, dict(g.attrs))
    print("wrote", out)


if __name__ == "__main__":
    main()
