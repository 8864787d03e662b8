#!/usr/bin/python3
"""Reference partitions for slr's agglomerative clustering of weighted points.

Each case draws distinct points x (n, d) and integer weights w, expands every
point i into w[i] identical rows, and runs scipy.cluster.hierarchy.linkage
(Euclidean) + fcluster on the expanded rows. The labels of the copies of a
point must agree; the label of its first copy is stored per distinct point,
renumbered 0..K-1 by first appearance.

Output (text, doubles in repr form so that strtod reads them back exactly):
  case METHOD N D WEIGHTED
  x  N*D values (row-major)
  w  N values
  h  N-1 values: scipy's merge heights above the copy merges, sorted
  cut distance T  labels...      (several)
  cut maxclust K  labels...      (several)
  end
Run: /usr/bin/python3 tools/ref/agglomerative_ref.py tests/fixtures/cluster/agglomerative.txt
"""
import sys

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage


def first_appearance(labels):
    m = {}
    return [m.setdefault(v, len(m)) for v in labels]


def make_case(rng, method, n, d, weighted, out):
    x = rng.normal(size=(n, d))
    # a few tight groups so that the cuts are interesting
    centers = rng.normal(scale=3.0, size=(max(2, n // 8), d))
    x += centers[rng.integers(0, len(centers), size=n)]
    w = rng.integers(1, 5, size=n) if weighted else np.ones(n, dtype=np.int64)
    xe = np.repeat(x, w, axis=0)
    owner = np.repeat(np.arange(n), w)
    nexp = len(xe)
    z = linkage(xe, method=method, metric="euclidean")
    z0 = nexp - n
    assert np.all(z[:z0, 2] == 0.0), "copies must merge first at height 0"
    h = z[z0:, 2]
    assert np.all(h > 0)
    # tie-free: distinct heights well apart
    gaps = np.diff(np.sort(h))
    assert gaps.min() > 1e-7 * h.max(), (method, gaps.min())

    cuts = []
    hs = np.sort(h)
    for frac in (0.2, 0.5, 0.7, 0.9, 0.97):
        i = int(frac * (n - 2))
        cuts.append(("distance", 0.5 * (hs[i] + hs[i + 1])))
    cuts.append(("distance", 0.0))
    cuts.append(("distance", float(hs[-1]) * 2))
    for k in sorted(set([1, 2, 3, 5, 8, n // 3, n - 2, n - 1, n, n + 2, nexp])):
        cuts.append(("maxclust", k))

    out.write("case %s %d %d %d\n" % (method, n, d, int(weighted)))
    out.write("x " + " ".join(repr(float(v)) for v in x.ravel()) + "\n")
    out.write("w " + " ".join(str(int(v)) for v in w) + "\n")
    out.write("h " + " ".join(repr(float(v)) for v in h) + "\n")
    for crit, t in cuts:
        lab = fcluster(z, t, criterion=crit)
        per_point = np.full(n, -1)
        for e in range(nexp):
            if per_point[owner[e]] < 0:
                per_point[owner[e]] = lab[e]
            assert per_point[owner[e]] == lab[e], "copies split by the cut"
        lab = first_appearance(per_point.tolist())
        if crit == "distance":
            tt = repr(float(t))
        else:
            tt = str(int(t))
        out.write("cut %s %s " % (crit, tt) + " ".join(map(str, lab)) + "\n")
    out.write("end\n")


def main():
    path = sys.argv[1]
    rng = np.random.default_rng(20261127)
    with open(path, "w") as out:
        for method in ("single", "complete", "average", "ward"):
            make_case(rng, method, 30, 4, False, out)
            make_case(rng, method, 40, 6, True, out)
            make_case(rng, method, 120, 20, True, out)


if __name__ == "__main__":
    main()
