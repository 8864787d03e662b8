#!/usr/bin/python3
"""NumPy port of the Market-1501 evaluation of fast-reid / OpenUnReID
(eval_market1501), used to make slr's evaluation fixtures and as the
baseline of tools/bench/evaluate.sh.

Protocol: features L2-normalised (x / max(|x|, 1e-12)); distance
Euclidean squared (|q|^2 + |g|^2 - 2 q.g) or cosine (1 - q.g); per query the
gallery is sorted by distance (stable: equal distances by gallery index,
where the peers use NumPy's default, unstable quicksort), items with the
query's pid and camera are dropped, the query is skipped when nothing
matches; CMC clipped at 1, AP non-interpolated, mINP = hits / (position of
the last hit).

As a command: eval_reference.py F.h5 [--metric euclidean|cosine]
[--dtype float32|float64] [--json OUT]; F.h5 holds /query/{features,pids,camids}
and /gallery/{features,pids,camids}. The distance matrix is computed whole
(nq x ng, as the peers do); each query row is sorted in the loop.
"""
import argparse
import json
import time

import numpy as np


def normalize(x):
    n = np.sqrt(np.sum(x.astype(np.float64) ** 2, axis=1, keepdims=True))
    return (x / np.maximum(n, 1e-12)).astype(x.dtype)


def distances(qf, gf, metric):
    qf, gf = normalize(qf), normalize(gf)
    d = qf @ gf.T  # updated in place: one nq x ng matrix at a time
    if metric == "cosine":
        return np.subtract(1, d, out=d)
    d *= -2
    d += np.sum(qf * qf, axis=1)[:, None]
    d += np.sum(gf * gf, axis=1)[None, :]
    return d


def eval_market1501(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    num_q, num_g = distmat.shape
    all_cmc, all_ap, all_inp = [], [], []
    for q in range(num_q):
        order = np.argsort(distmat[q], kind="stable")
        same_pid = g_pids[order] == q_pids[q]
        junk = same_pid & (g_camids[order] == q_camids[q])
        raw = same_pid[~junk].astype(np.int32)
        if not raw.any():
            continue
        hits = raw.cumsum()
        last = np.flatnonzero(raw)[-1]
        all_inp.append(hits[last] / (last + 1.0))
        cmc = np.minimum(hits, 1)[:max_rank]
        if len(cmc) < max_rank:
            cmc = np.concatenate([cmc, np.full(max_rank - len(cmc), cmc[-1] if len(cmc) else 0)])
        all_cmc.append(cmc)
        precision = hits / (np.arange(len(raw)) + 1.0)
        all_ap.append((precision * raw).sum() / raw.sum())
    if not all_ap:
        raise ValueError("no query has a match in the gallery")
    cmc = np.asarray(all_cmc, dtype=np.float64).sum(0) / len(all_ap)
    return float(np.mean(all_ap)), float(np.mean(all_inp)), cmc, len(all_ap)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("features")
    ap.add_argument("--metric", default="euclidean", choices=["euclidean", "cosine"])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--json")
    a = ap.parse_args()
    import h5py

    t0 = time.time()
    with h5py.File(a.features, "r") as f:
        qf = f["/query/features"][...].astype(a.dtype)
        gf = f["/gallery/features"][...].astype(a.dtype)
        qp, qc = f["/query/pids"][...], f["/query/camids"][...]
        gp, gc = f["/gallery/pids"][...], f["/gallery/camids"][...]
    t1 = time.time()
    d = distances(qf, gf, a.metric)
    t2 = time.time()
    m_ap, m_inp, cmc, nvalid = eval_market1501(d, qp, gp, qc, gc)
    t3 = time.time()
    print("mAP %.4f%%  mINP %.4f%%  Rank-1 %.4f%%  Rank-5 %.4f%%  Rank-10 %.4f%%  Rank-20 %.4f%%"
          % (100 * m_ap, 100 * m_inp, 100 * cmc[0], 100 * cmc[4], 100 * cmc[9], 100 * cmc[19]))
    print("read %.1f s, distances %.1f s, ranking %.1f s, total %.1f s"
          % (t1 - t0, t2 - t1, t3 - t2, t3 - t0))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"mAP": m_ap, "mINP": m_inp, "cmc": cmc.tolist(), "num_valid_query": nvalid}, f)


if __name__ == "__main__":
    main()
