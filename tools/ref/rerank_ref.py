#!/usr/bin/python3
"""Reference for slr's test-time k-reciprocal re-ranking: a NumPy port of what
the evaluators of fast-reid (TEST.RERANK.ENABLED) and OpenUnReID
(TEST.rerank) compute, dense and on one process:

    jac   = compute_jaccard_distance(cat(query, gallery), k1, k2)[:nq, nq:]
    final = jac * (1 - lambda) + dist * lambda

where compute_jaccard_distance is the k-reciprocal Jaccard distance of
Cluster Contrast / SpCL / OpenUnReID (tools/ref/cluster_ref.py: faiss CPU
kNN with k1 neighbours, self included; softmax weights of -(2 - 2 cos);
query expansion over k2; clamped at 0) on the L2-normalised features, and
dist the evaluation distance of the metric (tools/ref/eval_reference.py:
squared Euclidean or 1 - cos of the normalised features). Then
eval_market1501 on `final`.

With --variant zhong: the re_ranking function the peers also ship (Zhong et
al.), ported in re_ranking() below, called with the Euclidean (or cosine)
distances of the normalised features.

Run: /usr/bin/python3 tools/ref/rerank_ref.py F.h5 [--metric cosine]
     [--variant jaccard|zhong] [--k1 20] [--k2 6] [--lambda 0.3] [--json out.json]
"""
import argparse
import json
import sys

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from cluster_ref import compute_jaccard_distance  # noqa: E402
from eval_reference import distances, eval_market1501  # noqa: E402


def unit_rows(x):
    """x / max(|x|, 1e-12), the norm in float64, rounded to float32."""
    x64 = x.astype(np.float64)
    n = np.sqrt(np.sum(x64 * x64, axis=1, keepdims=True))
    return (x64 / np.maximum(n, 1e-12)).astype(np.float32)


def jaccard_query_gallery(qf, gf, k1, k2):
    """The (nq, ng) block of the Jaccard distance over the joint set."""
    joint = unit_rows(np.concatenate([qf, gf], axis=0))
    jac = compute_jaccard_distance(joint, k1=k1, k2=k2)
    return jac[: len(qf), len(qf):]


def rerank_distances(qf, gf, metric, k1=20, k2=6, lam=0.3):
    """Re-ranked (nq, ng) distances in float64 (jac as the peers form it, float32)."""
    jac = jaccard_query_gallery(qf, gf, k1, k2).astype(np.float64)
    d = distances(qf.astype(np.float64), gf.astype(np.float64), metric)
    return jac * (1 - lam) + d * lam


def re_ranking(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3):
    """Port of the re_ranking function the peers ship (fast-reid
    fastreid/evaluation/rerank.py, OpenUnReID core/utils/rerank.py, after
    Zhong et al.): the distances are squared, each column divided by its
    maximum (then transposed: rows), k-reciprocal sets over k1 + 1 entries of
    a full argsort, V = exp(-d) / sum, query expansion over k2, Jaccard for
    the query rows, final = jac (1 - lambda) + d lambda; float32 as theirs."""
    nq = q_g_dist.shape[0]
    full = np.block([[q_q_dist, q_g_dist], [q_g_dist.T, g_g_dist]])
    orig = np.power(full, 2).astype(np.float32)
    orig = np.transpose(orig / np.max(orig, axis=0))
    n = orig.shape[0]
    V = np.zeros_like(orig, dtype=np.float32)
    rank = np.argsort(orig).astype(np.int32)
    kh = int(np.around(k1 / 2.0))

    def recip(i, k):
        fwd = rank[i, : k + 1]
        back = rank[fwd, : k + 1]
        return fwd[np.where(back == i)[0]]

    for i in range(n):
        rec = recip(i, k1)
        exp_idx = rec
        for c in rec:
            c_rec = recip(c, kh)
            if len(np.intersect1d(c_rec, rec)) > 2.0 / 3 * len(c_rec):
                exp_idx = np.append(exp_idx, c_rec)
        exp_idx = np.unique(exp_idx)
        w = np.exp(-orig[i, exp_idx])
        V[i, exp_idx] = w / np.sum(w)
    orig = orig[:nq]
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(n):
            V_qe[i, :] = np.mean(V[rank[i, :k2], :], axis=0)
        V = V_qe
    inv = [np.where(V[:, c] != 0)[0] for c in range(n)]
    jac = np.zeros_like(orig, dtype=np.float32)
    for i in range(nq):
        tmin = np.zeros((1, n), dtype=np.float32)
        nz = np.where(V[i, :] != 0)[0]
        for c in nz:
            tmin[0, inv[c]] = tmin[0, inv[c]] + np.minimum(V[i, c], V[inv[c], c])
        jac[i] = 1 - tmin / (2.0 - tmin)
    final = jac * (1 - lambda_value) + orig * lambda_value
    return final[:, nq:]


def rerank_distances_zhong(qf, gf, metric, k1=20, k2=6, lam=0.3):
    """re_ranking called with the Euclidean distances |q - g| of the
    normalised features (metric euclidean) or 1 - cos (metric cosine)."""
    q = unit_rows(qf).astype(np.float64)
    g = unit_rows(gf).astype(np.float64)

    def dist(a, b):
        s = a @ b.T
        return np.sqrt(np.maximum(2 - 2 * s, 0)) if metric == "euclidean" else 1 - s

    return re_ranking(dist(q, g), dist(q, q), dist(g, g), k1, k2, lam).astype(np.float64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("features")
    ap.add_argument("--metric", default="euclidean", choices=["euclidean", "cosine"])
    ap.add_argument("--k1", type=int, default=20)
    ap.add_argument("--k2", type=int, default=6)
    ap.add_argument("--lambda", dest="lam", type=float, default=0.3)
    ap.add_argument("--variant", default="jaccard", choices=["jaccard", "zhong"])
    ap.add_argument("--json")
    a = ap.parse_args()
    import h5py

    with h5py.File(a.features, "r") as f:
        qf = f["/query/features"][...].astype(np.float32)
        gf = f["/gallery/features"][...].astype(np.float32)
        qp, qc = f["/query/pids"][...], f["/query/camids"][...]
        gp, gc = f["/gallery/pids"][...], f["/gallery/camids"][...]
    fn = rerank_distances_zhong if a.variant == "zhong" else rerank_distances
    d = fn(qf, gf, a.metric, a.k1, a.k2, a.lam)
    m_ap, m_inp, cmc, nvalid = eval_market1501(d, qp, gp, qc, gc)
    print("mAP %.4f%%  mINP %.4f%%  Rank-1 %.4f%%  Rank-5 %.4f%%  Rank-10 %.4f%%  Rank-20 %.4f%%"
          % (100 * m_ap, 100 * m_inp, 100 * cmc[0], 100 * cmc[4], 100 * cmc[9], 100 * cmc[19]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"mAP": m_ap, "mINP": m_inp, "cmc": cmc.tolist(), "num_valid_query": nvalid}, f)


if __name__ == "__main__":
    main()
