"""Compare slr's /labels with the reference labels (.npy): identical or not."""
import sys

import h5py
import numpy as np

with h5py.File(sys.argv[1], "r") as f:
    a = f["labels"][:]
b = np.load(sys.argv[2])
diff = int((a != b).sum())
print("identical" if diff == 0 else "%d of %d labels differ" % (diff, len(a)))
