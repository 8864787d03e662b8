#!/usr/bin/python3
"""Reference values of the SLR soft targets and the soft-target term of the
cluster-memory loss, for tests/unit/test_soft_loss.c.

Soft targets: s_i = alpha e_{y_cur(i)} + (1 - alpha) P[y_prev(i)] over the
current clusters (NumPy), carried to the memory's clusters by the share of
each current cluster that went to each memory cluster, normalised to sum 1.
Loss: weight / B * sum_i CE(t_i, softmax(f_i M^T / temp)) with its gradient
w.r.t. the features from PyTorch's autograd.

Writes tests/fixtures/nn/soft_loss.h5.
Run: /usr/bin/python3 tools/ref/soft_loss_ref.py [OUT.h5]
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../tests/fixtures/nn/soft_loss.h5")
rng = np.random.default_rng(77)

# labels of 40 samples: previous (5 clusters), current (6), memory (4)
n, kp, kc, km = 40, 5, 6, 4
y_prev = rng.integers(-1, kp, n).astype(np.int32)
y_cur = rng.integers(-1, kc, n).astype(np.int32)
y_mem = np.where(y_cur >= 0, (y_cur + rng.integers(0, 2, n)) % km, -1).astype(np.int32)
y_mem[rng.random(n) < 0.1] = -1
# a projection: a random nonnegative sparse K_prev x K_cur matrix, rows summing to 1
P = rng.random((kp, kc)) * (rng.random((kp, kc)) < 0.5)
P[2] = 0.0  # a previous cluster with no overlap
rs = P.sum(1, keepdims=True)
P = np.divide(P, rs, out=np.zeros_like(P), where=rs > 0)
alpha = 0.3

soft = np.zeros((n, kc))
for i in range(n):
    if y_cur[i] >= 0:
        soft[i, y_cur[i]] += alpha
    if y_prev[i] >= 0:
        soft[i] += (1 - alpha) * P[y_prev[i]]
carry = np.zeros((kc, km))
for b in range(kc):
    sel = (y_cur == b) & (y_mem >= 0)
    for r in range(km):
        carry[b, r] = np.sum(sel & (y_mem == r)) / max(np.sum(sel), 1)
targets = soft @ carry
tot = targets.sum(1, keepdims=True)
has = (tot[:, 0] > 0).astype(np.int32)
targets = np.divide(targets, tot, out=np.zeros_like(targets), where=tot > 0)

# the loss on a batch of 12 of those samples
B, D, temp, weight = 12, 16, 0.05, 0.7
idx = rng.choice(n, B, replace=False)
feat = F.normalize(torch.randn(B, D, dtype=torch.float64), dim=1).float().double()
mem = F.normalize(torch.randn(km, D, dtype=torch.float64), dim=1).float().double()
f = feat.clone().requires_grad_(True)
t = torch.from_numpy(targets[idx]).float().double()
logp = F.log_softmax(f @ mem.t() / temp, dim=1)
loss = weight * (-(t * logp).sum(1)).sum() / B
loss.backward()

with h5py.File(OUT, "w") as h:
    for k, v in dict(y_prev=y_prev, y_cur=y_cur, y_mem=y_mem, P=P, targets=targets, has=has,
                     idx=idx.astype(np.int64), feat=feat.numpy().astype(np.float32),
                     mem=mem.numpy().astype(np.float32),
                     probs=torch.softmax(feat @ mem.t() / temp, 1).numpy().astype(np.float32),
                     loss=np.array([loss.item()]), dfeat=f.grad.numpy()).items():
        h.create_dataset(k, data=v)
    h.attrs["alpha"], h.attrs["temp"], h.attrs["weight"] = alpha, temp, weight
print("wrote", OUT)
