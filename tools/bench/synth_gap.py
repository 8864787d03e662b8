"""Domain gap of two `slr synth` domains: a small CNN trained with
identity cross-entropy on one domain's training identities, evaluated
(mAP, rank-1, Market protocol) on the query/gallery of both domains.

    /usr/bin/python3 tools/bench/synth_gap.py DOMAIN_A DOMAIN_B [epochs]
"""
import os
import re
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def load(root, sub):
    d = os.path.join(root, sub)
    xs, pids, cams = [], [], []
    for f in sorted(os.listdir(d)):
        m = re.match(r"(\d+)_c(\d+)", f)
        img = np.asarray(Image.open(os.path.join(d, f)).convert("RGB"), np.float32) / 255
        xs.append(((img - MEAN) / STD).transpose(2, 0, 1))
        pids.append(int(m.group(1)))
        cams.append(int(m.group(2)))
    return torch.tensor(np.stack(xs)), np.array(pids), np.array(cams)


class Net(nn.Module):
    def __init__(self, classes):
        super().__init__()
        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o),
                                 nn.ReLU(inplace=True), nn.Conv2d(o, o, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(o), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.body = nn.Sequential(block(3, 32), block(32, 64), block(64, 128))
        self.bn = nn.BatchNorm1d(128)
        self.fc = nn.Linear(128, classes, bias=False)

    def forward(self, x):
        f = self.bn(F.adaptive_avg_pool2d(self.body(x), 1).flatten(1))
        return f, self.fc(f)


def evaluate(model, q, g):
    model.eval()
    with torch.no_grad():
        fq = F.normalize(model(q[0])[0]).numpy()
        fg = F.normalize(model(g[0])[0]).numpy()
    dist = -fq @ fg.T
    aps, r1 = [], []
    for i in range(len(fq)):
        order = np.argsort(dist[i], kind="stable")
        keep = ~((g[1][order] == q[1][i]) & (g[2][order] == q[2][i]))
        match = (g[1][order] == q[1][i])[keep]
        if not match.any():
            continue
        hits = np.cumsum(match)
        aps.append(np.mean([hits[k] / (k + 1) for k in np.flatnonzero(match)]))
        r1.append(float(match[0]))
    return 100 * np.mean(aps), 100 * np.mean(r1)


def main():
    a, b = sys.argv[1], sys.argv[2]
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    torch.manual_seed(0)
    torch.set_num_threads(2)
    doms = {}
    for name, root in (("A", a), ("B", b)):
        doms[name] = {s: load(root, s) for s in ("bounding_box_train", "query", "bounding_box_test")}
    for src in ("A", "B"):
        x, pids, _ = doms[src]["bounding_box_train"]
        labels = torch.tensor(np.unique(pids, return_inverse=True)[1])
        model = Net(int(labels.max()) + 1)
        opt = torch.optim.Adam(model.parameters(), 1e-3, weight_decay=5e-4)
        for ep in range(epochs):
            model.train()
            perm = torch.randperm(len(x))
            for i in range(0, len(x), 64):
                j = perm[i:i + 64]
                xb = x[j]
                flip = torch.rand(len(j)) < 0.5
                xb[flip] = xb[flip].flip(3)
                loss = F.cross_entropy(model(xb)[1], labels[j], label_smoothing=0.1)
                opt.zero_grad()
                loss.backward()
                opt.step()
        for tgt in ("A", "B"):
            m, r = evaluate(model, doms[tgt]["query"], doms[tgt]["bounding_box_test"])
            print("train %s -> test %s: mAP %5.1f  rank-1 %5.1f" % (src, tgt, m, r), flush=True)


if __name__ == "__main__":
    main()
