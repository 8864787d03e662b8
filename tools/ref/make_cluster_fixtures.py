"""Make the fixtures of the cluster module's tests (tests/fixtures/cluster/).

Run with /usr/bin/python3 tools/ref/make_cluster_fixtures.py [OUTDIR].
Each jaccard_*.h5 holds clustered unit-norm features with near-ties, the
faiss kNN lists, the peers' k-reciprocal Jaccard distance (CSR of the pairs
with shared support) and scikit-learn DBSCAN labels for several
(eps, min_samples); dbscan_graph.h5 holds a sparse symmetric distance graph
with many border points reachable from several clusters and the DBSCAN
labels on its dense form (missing = 1).
"""
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_ref as ref  # noqa: E402


def normalize_seq(x):
    """L2 rows exactly as slr_l2_normalize: sequential float64 sum of squares."""
    out = np.empty_like(x, dtype=np.float32)
    for i in range(x.shape[0]):
        s = 0.0
        for v in x[i].astype(np.float64):
            s += v * v
        out[i] = (x[i].astype(np.float64) / np.sqrt(s)).astype(np.float32)
    return out


def make_features(rng, n, d):
    """Clusters of varied size and spread, uniform noise, and near-tie fans."""
    rows = []
    while sum(len(r) for r in rows) < int(n * 0.8):
        c = rng.normal(size=d)
        c /= np.linalg.norm(c)
        m = int(rng.integers(3, 40))
        spread = rng.uniform(0.15, 0.6)
        rows.append(c + spread * rng.normal(size=(m, d)) / np.sqrt(d))
    # fans: neighbours of a centre at radii 1e-4 apart (near-ties)
    while sum(len(r) for r in rows) < int(n * 0.9):
        c = rng.normal(size=d)
        c /= np.linalg.norm(c)
        m = int(rng.integers(6, 14))
        q, _ = np.linalg.qr(rng.normal(size=(d, m)))
        q -= np.outer(c, c @ q)
        q /= np.linalg.norm(q, axis=0, keepdims=True)
        radii = 0.35 * (1 + 1e-4 * np.arange(m))
        rows.append(np.vstack([c, (c[:, None] + q * radii).T]))
    x = np.vstack(rows)
    noise = rng.normal(size=(n - len(x), d))
    x = np.vstack([x, noise])[:n]
    x = x[rng.permutation(n)]
    return normalize_seq(x.astype(np.float32))


def check_knn_unambiguous(x, rank, k1, k2):
    """faiss's lists must be the exact ones (ties by lower index), and where
    a slice of them ends (k2, round(k1/2) + 1, k1) the next candidate must be
    well apart, above float32 rounding, so that any correct kNN cuts there
    the same; the order inside a slice does not change the result."""
    s = x.astype(np.float64) @ x.astype(np.float64).T
    n = x.shape[0]
    cuts = sorted(set(c for c in (k2, min(int(np.around(k1 / 2)) + 1, k1), k1)))
    worst = np.inf
    for i in range(n):
        order = np.lexsort((np.arange(n), -s[i]))
        for c in cuts:
            if set(order[:c]) != set(rank[i, :c]):
                return False, 0.0
            worst = min(worst, s[i, order[c - 1]] - s[i, order[c]])
    return worst > 1e-6, worst


def write_csr(g, name, mat, support):
    indptr = np.zeros(mat.shape[0] + 1, dtype=np.int64)
    idx, val = [], []
    for i in range(mat.shape[0]):
        j = np.where(support[i])[0]
        idx.append(j.astype(np.int32))
        val.append(mat[i, j].astype(np.float32))
        indptr[i + 1] = indptr[i] + len(j)
    g.create_dataset(name + "/indptr", data=indptr)
    g.create_dataset(name + "/indices", data=np.concatenate(idx))
    g.create_dataset(name + "/values", data=np.concatenate(val))


def margin_ok(values, eps, tol=2e-5):
    return not np.any(np.abs(values.astype(np.float64) - eps) < tol)


def pick_eps(values, eps):
    """eps itself, or the nearest of eps +- 0.001 m with no distance within
    2e-5 of it (so that rounding cannot move a pair across eps)"""
    for m in range(200):
        for e in (eps + 0.001 * m, eps - 0.001 * m):
            if margin_ok(values, e):
                return round(e, 3)
    raise SystemExit("no eps near %g" % eps)


def jaccard_fixture(path, seed, n, d, k1, k2, settings):
    for attempt in range(50):
        rng = np.random.default_rng(seed + 1000 * attempt)
        x = make_features(rng, n, d)
        rank = ref.knn_faiss(x, k1)
        ok, gap = check_knn_unambiguous(x, rank, k1, k2)
        if ok:
            break
    else:
        raise SystemExit("no unambiguous kNN found for " + path)
    jac, support, _ = ref.compute_jaccard_distance(x, k1=k1, k2=k2, initial_rank=rank,
                                                   return_support=True)
    vals = jac[support]
    with h5py.File(path, "w") as f:
        f.attrs["k1"] = k1
        f.attrs["k2"] = k2
        f.attrs["seed"] = seed + 1000 * attempt
        f.create_dataset("features", data=x)
        f.create_dataset("knn", data=rank.astype(np.int32))
        write_csr(f, "jaccard", jac, support)
        eps_l, ms_l, labels = [], [], []
        for eps, ms in settings:
            eps = pick_eps(vals, eps)
            lab = ref.dbscan_labels(jac, eps, ms)
            eps_l.append(eps)
            ms_l.append(ms)
            labels.append(lab.astype(np.int32))
            print("  eps %.2f min_samples %d: %d clusters, %d outliers"
                  % (eps, ms, lab.max() + 1, (lab < 0).sum()))
        f.create_dataset("dbscan/eps", data=np.array(eps_l, dtype=np.float64))
        f.create_dataset("dbscan/min_samples", data=np.array(ms_l, dtype=np.int32))
        f.create_dataset("dbscan/labels", data=np.stack(labels))
    print("%s: n %d d %d k1 %d k2 %d, %d pairs with shared support, min gap at the slice ends %.2e"
          % (path, n, d, k1, k2, support.sum(), gap))


def border_count(dense, eps, ms, labels):
    """points that are not core and have core neighbours in >= 2 clusters"""
    nb = dense <= np.float32(eps)
    core = nb.sum(1) >= ms
    cnt = 0
    for i in np.where(~core)[0]:
        cl = set(labels[j] for j in np.where(nb[i] & core)[0])
        cnt += len(cl) >= 2
    return cnt


def graph_fixture(path, seed, n):
    rng = np.random.default_rng(seed)
    # points in the plane: chains of small clusters with bridging points
    centres = rng.uniform(0, 30, size=(n // 25, 2))
    pts = centres[rng.integers(0, len(centres), n)] + rng.normal(scale=0.7, size=(n, 2))
    pts[: n // 10] = rng.uniform(0, 30, size=(n // 10, 2))
    pts = pts[rng.permutation(n)]
    diff = pts[:, None, :] - pts[None, :, :]
    dist = np.sqrt((diff ** 2).sum(-1)) / 1.6
    dense = np.ones((n, n), dtype=np.float32)
    keep = dist < 1
    dense[keep] = dist[keep].astype(np.float32)
    # a few distances exactly equal to float32(eps) (NumPy compares in float32)
    iu = np.argwhere(np.triu(keep, 1))
    for eps in (0.3, 0.45, 0.6):
        for (i, j) in iu[rng.choice(len(iu), 40, replace=False)]:
            dense[i, j] = dense[j, i] = np.float32(eps)
    np.fill_diagonal(dense, 0.0)
    support = dense < 1
    settings = [(0.3, 3), (0.45, 4), (0.6, 4), (0.6, 8), (0.45, 1), (0.3, 12), (0.5, 7), (0.7, 12)]
    with h5py.File(path, "w") as f:
        write_csr(f, "dist", dense, support)
        eps_l, ms_l, labels = [], [], []
        for eps, ms in settings:
            lab = ref.dbscan_labels(dense, eps, ms)
            nb = border_count(dense, eps, ms, lab)
            print("  eps %.2f min_samples %d: %d clusters, %d outliers, %d border points "
                  "next to 2+ clusters" % (eps, ms, lab.max() + 1, (lab < 0).sum(), nb))
            eps_l.append(eps)
            ms_l.append(ms)
            labels.append(lab.astype(np.int32))
        f.create_dataset("dbscan/eps", data=np.array(eps_l, dtype=np.float64))
        f.create_dataset("dbscan/min_samples", data=np.array(ms_l, dtype=np.int32))
        f.create_dataset("dbscan/labels", data=np.stack(labels))
    print("%s: n %d, %d stored distances" % (path, n, support.sum()))


def e2e_fixtures(out):
    """Inputs of tests/e2e/test_cluster.sh: features not normalised (rows
    scaled) with the expected labels, and broken inputs."""
    with h5py.File(os.path.join(out, "jaccard_k30.h5"), "r") as f:
        x = f["features"][:]
        eps = f["dbscan/eps"][0]
        ms = f["dbscan/min_samples"][0]
        lab = f["dbscan/labels"][0]
    assert abs(eps - 0.6) < 1e-9 and ms == 4
    rng = np.random.default_rng(7)
    raw = (x * rng.uniform(0.5, 3.0, size=(x.shape[0], 1))).astype(np.float32)
    with h5py.File(os.path.join(out, "e2e_raw.h5"), "w") as f:
        f.create_dataset("features", data=raw)
        f.create_dataset("expected_labels", data=lab)
    small = raw[:40]
    with h5py.File(os.path.join(out, "e2e_bad_nan.h5"), "w") as f:
        bad = small.copy()
        bad[17, 3] = np.nan
        f.create_dataset("features", data=bad)
    with h5py.File(os.path.join(out, "e2e_bad_zero.h5"), "w") as f:
        bad = small.copy()
        bad[5] = 0
        f.create_dataset("features", data=bad)
    with h5py.File(os.path.join(out, "e2e_bad_rank.h5"), "w") as f:
        f.create_dataset("features", data=small.reshape(-1))
    with h5py.File(os.path.join(out, "e2e_bad_type.h5"), "w") as f:
        f.create_dataset("features", data=small.astype(np.float64))
    with h5py.File(os.path.join(out, "e2e_bad_missing.h5"), "w") as f:
        f.create_dataset("feats", data=small)
    with h5py.File(os.path.join(out, "e2e_small.h5"), "w") as f:
        f.create_dataset("features", data=small[:20])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "cluster")
    os.makedirs(out, exist_ok=True)
    jaccard_fixture(os.path.join(out, "jaccard_k30.h5"), 1, 800, 32, 30, 6,
                    [(0.6, 4), (0.5, 4), (0.7, 8), (0.35, 2)])
    jaccard_fixture(os.path.join(out, "jaccard_k5.h5"), 2, 500, 16, 5, 3,
                    [(0.6, 4), (0.45, 3)])
    jaccard_fixture(os.path.join(out, "jaccard_k7.h5"), 3, 400, 16, 7, 1,
                    [(0.6, 4), (0.5, 2)])
    graph_fixture(os.path.join(out, "dbscan_graph.h5"), 4, 2000)
    e2e_fixtures(out)


if __name__ == "__main__":
    main()
