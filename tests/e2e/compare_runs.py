#!/usr/bin/python3
"""Compare two slr training runs (used by the e2e tests).

  compare_runs.py weights A.h5 B.h5 TOL      every float tensor's relative L2
                                             difference <= TOL
  compare_runs.py labels A/labels B/labels   every labels file's DBSCAN and
                                             refined labels equal
  compare_runs.py checkpoint A.h5 B.h5       every dataset and root attribute
                                             equal (metrics_offset aside: it
                                             counts bytes of timings)
Exit 0 when they agree, 1 otherwise, with the differences printed.
"""
import glob
import os
import sys

import h5py
import numpy as np


def weights(a, b, tol):
    fa, fb = h5py.File(a, "r"), h5py.File(b, "r")
    worst, bad = 0.0, []

    def visit(name, obj):
        nonlocal worst
        if not isinstance(obj, h5py.Dataset) or obj.dtype.kind != "f":
            return
        x, y = obj[()].astype(np.float64), fb[name][()].astype(np.float64)
        d = float(np.linalg.norm(x - y) / (np.linalg.norm(x) + 1e-12)) if x.size else 0.0
        worst = max(worst, d)
        if d > tol:
            bad.append(f"{name}: {d:.3g}")

    fa.visititems(visit)
    print(f"largest relative L2 difference of a tensor: {worst:.3g} (tolerance {tol:g})")
    for line in bad[:10]:
        print("  over:", line)
    return not bad


def labels(da, db):
    files = sorted(glob.glob(os.path.join(da, "epoch-*.h5")))
    ok = bool(files)
    for fa in files:
        fb = os.path.join(db, os.path.basename(fa))
        x, y = h5py.File(fa, "r"), h5py.File(fb, "r")
        for k in ("labels/dbscan", "labels/refined"):
            same = np.array_equal(x[k][()], y[k][()])
            print(f"{os.path.basename(fa)} {k}: {'equal' if same else 'DIFFERENT'}")
            ok &= same
    return ok


def checkpoint(a, b):
    fa, fb = h5py.File(a, "r"), h5py.File(b, "r")
    bad = []
    for k in sorted(set(fa.attrs) | set(fb.attrs)):
        if k == "metrics_offset":
            continue
        va, vb = fa.attrs.get(k), fb.attrs.get(k)
        if va is None or vb is None or not np.array_equal(np.asarray(va), np.asarray(vb)):
            bad.append(f"attribute {k}: {va!r} != {vb!r}")
    names = []
    fa.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    other = []
    fb.visititems(lambda n, o: other.append(n) if isinstance(o, h5py.Dataset) else None)
    if sorted(names) != sorted(other):
        bad.append(f"datasets {sorted(set(names) ^ set(other))} in one file only")
    for n in names:
        if n in fb and not np.array_equal(fa[n][()], fb[n][()]):
            bad.append(f"dataset {n} differs")
    for line in bad:
        print(line)
    print(f"{a} vs {b}: {len(names)} datasets, {len(fa.attrs)} attributes, "
          f"{'equal' if not bad else 'DIFFERENT'}")
    return not bad


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] not in ("weights", "labels", "checkpoint"):
        print(__doc__)
        sys.exit(2)
    what = sys.argv[1]
    if what == "weights":
        ok = weights(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    elif what == "labels":
        ok = labels(sys.argv[2], sys.argv[3])
    else:
        ok = checkpoint(sys.argv[2], sys.argv[3])
    sys.exit(0 if ok else 1)
