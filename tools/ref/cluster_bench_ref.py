"""The reference pseudo-label pipeline, timed: faiss CPU kNN, the NumPy port
of the peers' compute_jaccard_distance (dense N x N), scikit-learn DBSCAN.

/usr/bin/python3 tools/ref/cluster_bench_ref.py F.h5 LABELS.npy [k1 k2 eps min_samples]
Prints one line: "ref knn S jaccard S dbscan S total S clusters K outliers O".
"""
import os
import sys
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_ref as ref  # noqa: E402


def main():
    path, out = sys.argv[1], sys.argv[2]
    k1, k2 = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (30, 6)
    eps, ms = (float(sys.argv[5]), int(sys.argv[6])) if len(sys.argv) > 6 else (0.6, 4)
    with h5py.File(path, "r") as f:
        x = f["features"][:]
    x = ref.l2_normalize(x)
    t0 = time.time()
    rank = ref.knn_faiss(x, k1)
    t1 = time.time()
    jac = ref.compute_jaccard_distance(x, k1=k1, k2=k2, initial_rank=rank)
    t2 = time.time()
    lab = ref.dbscan_labels(jac, eps, ms)
    t3 = time.time()
    np.save(out, lab.astype(np.int32))
    print("ref knn %.2f jaccard %.2f dbscan %.2f total %.2f clusters %d outliers %d"
          % (t1 - t0, t2 - t1, t3 - t2, t3 - t0, lab.max() + 1, (lab < 0).sum()))


if __name__ == "__main__":
    main()
