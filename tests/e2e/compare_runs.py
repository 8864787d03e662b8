#!/usr/bin/python3
"""Compare two slr training runs (used by the e2e tests).

  compare_runs.py weights A.h5 B.h5 TOL      the relative L2 difference of all
                                             float tensors together <= TOL
  compare_runs.py labels A/labels B/labels [EPOCHS]
                                             the DBSCAN and refined labels of
                                             every labels file (or of the
                                             first EPOCHS) equal
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
    num, den, worst = 0.0, 0.0, []

    def visit(name, obj):
        nonlocal num, den
        if not isinstance(obj, h5py.Dataset) or obj.dtype.kind != "f":
            return
        x, y = obj[()].astype(np.float64), fb[name][()].astype(np.float64)
        d2 = float(np.sum((x - y) ** 2))
        num += d2
        den += float(np.sum(x ** 2))
        worst.append((d2, name))

    fa.visititems(visit)
    rel = (num / den) ** 0.5 if den > 0 else 0.0
    print(f"relative L2 difference of the model: {rel:.3g} (tolerance {tol:g}); "
          f"largest in {max(worst)[1] if worst else '-'}")
    return rel <= tol


def labels(da, db, epochs=None):
    files = sorted(glob.glob(os.path.join(da, "epoch-*.h5")))[:epochs]
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
        ok = labels(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else None)
    else:
        ok = checkpoint(sys.argv[2], sys.argv[3])
    sys.exit(0 if ok else 1)
