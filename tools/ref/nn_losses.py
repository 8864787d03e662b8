#!/usr/bin/python3
"""Reference values of the losses, optimizers and learning-rate schedules
from PyTorch, for tests/unit/test_nn_losses.c.

Writes tests/fixtures/nn/losses.h5 (one group per case; integer settings in
`cfg`, float settings in `fcfg`). The triplet loss follows fast-reid's
batch-hard mining on Euclidean distances; the cluster memory follows Cluster
Contrast's ClusterMemory (CM and CM_Hard update rules).

Run: /usr/bin/python3 tools/ref/nn_losses.py [OUT.h5]
"""
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(4321)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../tests/fixtures/nn/losses.h5")


def store(f, case, cfg, fcfg, tensors):
    g = f.create_group(case)
    g.create_dataset("cfg", data=np.asarray(cfg, dtype=np.int64))
    g.create_dataset("fcfg", data=np.asarray(fcfg, dtype=np.float64))
    for k, v in tensors.items():
        a = v.detach().numpy() if torch.is_tensor(v) else np.asarray(v)
        g.create_dataset(k, data=a)


def f32(*shape):
    return torch.randn(*shape).float().double()


def euclidean_dist(x, y):
    m, n = x.size(0), y.size(0)
    xx = torch.pow(x, 2).sum(1, keepdim=True).expand(m, n)
    yy = torch.pow(y, 2).sum(1, keepdim=True).expand(n, m).t()
    dist = xx + yy - 2 * x @ y.t()
    return dist.clamp(min=1e-12).sqrt()


def triplet(emb, targets, margin):
    dist = euclidean_dist(emb, emb)
    n = dist.size(0)
    is_pos = targets.view(n, 1).expand(n, n).eq(targets.view(n, 1).expand(n, n).t()).double()
    is_neg = 1 - is_pos
    dist_ap, _ = torch.max(dist * is_pos - is_neg * 1e9, dim=1)
    dist_an, _ = torch.min(dist * is_neg + is_pos * 1e9, dim=1)
    y = torch.ones_like(dist_an)
    if margin > 0:
        return F.margin_ranking_loss(dist_an, dist_ap, y, margin=margin)
    return F.soft_margin_loss(dist_an - dist_ap, y)


def cm_update(mem, feats, targets, mom, hard):
    mem = mem.clone()
    if not hard:
        for x, y in zip(feats, targets):
            mem[y] = mom * mem[y] + (1.0 - mom) * x
            mem[y] /= mem[y].norm()
        return mem
    groups = {}
    for i, y in enumerate(targets.tolist()):
        groups.setdefault(y, []).append(feats[i])
    for y, fs in groups.items():
        sims = [float(fv @ mem[y]) for fv in fs]
        j = int(np.argmin(np.array(sims)))
        mem[y] = mem[y] * mom + (1 - mom) * fs[j]
        mem[y] /= mem[y].norm()
    return mem


def main():
    torch.manual_seed(4321)
    with h5py.File(OUT, "w") as f:
        # cross-entropy: labels with smoothing 0 and 0.1, soft targets
        N, K = 6, 5
        for i, eps in enumerate([0.0, 0.1]):
            z = f32(N, K).mul(2).requires_grad_(True)
            lab = torch.randint(0, K, (N,))
            loss = F.cross_entropy(z, lab, label_smoothing=eps)
            (gz,) = torch.autograd.grad(loss, z)
            store(f, "xent%d" % i, [N, K], [eps], dict(z=z.float(), labels=lab.int(), loss=loss, dz=gz))
        z = f32(N, K).mul(2).requires_grad_(True)
        t = torch.softmax(f32(N, K) * 3, 1).float().double()
        loss = -(t * F.log_softmax(z, 1)).sum(1).mean()
        (gz,) = torch.autograd.grad(loss, z)
        store(f, "xent2", [N, K], [0.0], dict(z=z.float(), soft=t.float(), loss=loss, dz=gz))

        # batch-hard triplet: 4 identities x 3 images
        N, D = 12, 6
        lab = torch.arange(4).repeat_interleave(3)[torch.randperm(12)]
        for i, m in enumerate([0.3, 0.0]):
            x = f32(N, D).requires_grad_(True)
            loss = triplet(x, lab, m)
            (gx,) = torch.autograd.grad(loss, x)
            store(f, "triplet%d" % i, [N, D], [m], dict(x=x.float(), labels=lab.int(), loss=loss, dx=gx))

        # cluster memory: loss, gradient, memory update (plain and hard)
        N, D, K = 8, 10, 5
        temp, mom = 0.05, 0.2
        x = F.normalize(f32(N, D), dim=1).float().double().requires_grad_(True)
        mem = F.normalize(f32(K, D), dim=1).float().double()
        lab = torch.tensor([0, 2, 2, 4, 1, 2, 0, 4])
        loss = F.cross_entropy(x @ mem.t() / temp, lab)
        (gx,) = torch.autograd.grad(loss, x)
        store(f, "cm0", [N, D, K], [temp, mom], dict(x=x.float(), mem=mem.float(), labels=lab.int(), loss=loss,
                                                   dx=gx, mem_after=cm_update(mem, x.detach(), lab, mom, False),
                                                   mem_after_hard=cm_update(mem, x.detach(), lab, mom, True)))

        # optimizers: three steps on two tensors (the second with lr_mult 2 via a param group)
        P1, P2 = 7, 5
        p0 = torch.randn(P1 + P2).float()
        grads = torch.randn(3, P1 + P2).float()
        for i, (kind, kw) in enumerate([("adam", dict(lr=3.5e-4, weight_decay=5e-4)),
                                        ("sgd", dict(lr=0.01, momentum=0.9, weight_decay=5e-4)),
                                        ("sgd", dict(lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)),
                                        ("adam", dict(lr=1e-3, weight_decay=0.0))]):
            a = p0[:P1].clone().requires_grad_(True)
            b = p0[P1:].clone().requires_grad_(True)
            groups = [dict(params=[a]), dict(params=[b], lr=kw["lr"] * 2)]
            opt = torch.optim.Adam(groups, **kw) if kind == "adam" else torch.optim.SGD(groups, **kw)
            after = []
            for s in range(3):
                a.grad = grads[s, :P1].clone()
                b.grad = grads[s, P1:].clone()
                opt.step()
                after.append(torch.cat([a.detach(), b.detach()]).clone())
            store(f, "opt%d" % i, [0 if kind == "adam" else 1, int(kw.get("nesterov", False)), P1, P2],
                  [kw["lr"], kw["weight_decay"]], dict(p0=p0, grads=grads, after=torch.stack(after)))

        # schedules over 60 epochs, from torch.optim.lr_scheduler
        def run(make, T=60):
            o = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
            s = make(o)
            out = []
            for _ in range(T):
                out.append(o.param_groups[0]["lr"])
                o.step()
                s.step()
            return np.array(out)

        sch = torch.optim.lr_scheduler
        store(f, "sched_step", [20], [0.1, 0.1], dict(lr=run(lambda o: sch.StepLR(o, 20, 0.1))))
        store(f, "sched_multistep", [20, 40], [0.1, 0.1], dict(lr=run(lambda o: sch.MultiStepLR(o, [20, 40], 0.1))))
        store(f, "sched_cosine", [50], [0.1, 1e-4], dict(lr=run(lambda o: sch.CosineAnnealingLR(o, 50, 1e-4))))
        # warm-up as fast-reid / Cluster Contrast WarmupMultiStepLR (linear, factor 0.01, 10 epochs)
        def warm(e):
            f_ = 1.0 if e >= 10 else 0.01 * (1 - e / 10) + e / 10
            return 3.5e-4 * f_ * 0.1 ** sum(1 for m in [20, 40] if m <= e)
        store(f, "sched_warmup", [20, 40, 10], [3.5e-4, 0.1, 0.01], dict(lr=np.array([warm(e) for e in range(60)])))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
