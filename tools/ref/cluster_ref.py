"""Reference implementations for the cluster module's fixtures.

A NumPy/PyTorch port of compute_jaccard_distance as Cluster Contrast and
SpCL define it (dense N x N, faiss CPU kNN), and scikit-learn's DBSCAN on
the dense matrix. Run with /usr/bin/python3 (numpy, torch, faiss, sklearn).
Only for small N (the matrices are dense) and for the benchmark's
reference timing.
"""
import numpy as np


def knn_faiss(features, k):
    """k nearest neighbours of every row (self included) by squared L2, faiss CPU."""
    import faiss
    index = faiss.IndexFlatL2(features.shape[1])
    index.add(features)
    _, rank = index.search(features, k)
    return rank


def k_reciprocal_neigh(initial_rank, i, k1):
    forward = initial_rank[i, :k1 + 1]
    backward = initial_rank[forward, :k1 + 1]
    fi = np.where(backward == i)[0]
    return forward[fi]


def compute_jaccard_distance(features, k1=30, k2=6, initial_rank=None, return_support=False):
    """The peers' k-reciprocal Jaccard distance; features float32 (N, D), unit rows."""
    import torch
    import torch.nn.functional as F
    feats = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    n = features.shape[0]
    if initial_rank is None:
        initial_rank = knn_faiss(features, k1)
    nn_k1 = [k_reciprocal_neigh(initial_rank, i, k1) for i in range(n)]
    nn_k1_half = [k_reciprocal_neigh(initial_rank, i, int(np.around(k1 / 2))) for i in range(n)]
    V = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        rec = nn_k1[i]
        exp_idx = rec
        for cand in rec:
            cand_rec = nn_k1_half[cand]
            if len(np.intersect1d(cand_rec, rec)) > 2 / 3 * len(cand_rec):
                exp_idx = np.append(exp_idx, cand_rec)
        exp_idx = np.unique(exp_idx)
        dist = 2 - 2 * torch.mm(feats[i].unsqueeze(0).contiguous(), feats[exp_idx].t())
        V[i, exp_idx] = F.softmax(-dist, dim=1).view(-1).cpu().numpy()
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(n):
            V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
    inv_index = [np.where(V[:, i] != 0)[0] for i in range(n)]
    jaccard = np.zeros((n, n), dtype=np.float32)
    support = np.zeros((n, n), dtype=bool) if return_support else None
    for i in range(n):
        temp_min = np.zeros((1, n), dtype=np.float32)
        nz = np.where(V[i, :] != 0)[0]
        imgs = [inv_index[c] for c in nz]
        for j in range(len(nz)):
            temp_min[0, imgs[j]] = temp_min[0, imgs[j]] + np.minimum(V[i, nz[j]], V[imgs[j], nz[j]])
        jaccard[i] = 1 - temp_min / (2 - temp_min)
        if return_support:
            support[i] = temp_min[0] > 0
    jaccard[jaccard < 0] = 0.0
    if return_support:
        return jaccard, support, initial_rank
    return jaccard


def dbscan_labels(dist, eps, min_samples):
    from sklearn.cluster import DBSCAN
    return DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed", n_jobs=1).fit_predict(dist)


def l2_normalize(x):
    """Rows divided by their norm computed in float64, rounded to float32."""
    x64 = x.astype(np.float64)
    return (x64 / np.linalg.norm(x64, axis=1, keepdims=True)).astype(np.float32)
