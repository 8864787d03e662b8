#!/usr/bin/python3
"""Reference outputs of the CNN layers from PyTorch, for tests/unit/test_nn_layers.c.

Writes tests/fixtures/nn/layers.h5: one group per case holding the float32
inputs, the upstream gradient `dy`, and the forward output and every
gradient computed by PyTorch in float64 from those same float32 inputs.
Integer settings of a case are in its dataset `cfg` (int64).

Run: /usr/bin/python3 tools/ref/nn_layers.py [OUT.h5]
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(1234)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../tests/fixtures/nn/layers.h5")


def f32(shape, scale=1.0, positive=False):
    t = torch.randn(*shape) * scale
    if positive:
        t = t.abs() + 0.1
    return t.float().double().requires_grad_(True)


def store(f, case, cfg, tensors):
    g = f.create_group(case)
    g.create_dataset("cfg", data=np.asarray(cfg, dtype=np.int64))
    for k, v in tensors.items():
        a = v.detach().numpy() if torch.is_tensor(v) else np.asarray(v)
        if a.dtype == np.float64:
            a = a.astype(np.float32) if k in ("x", "w", "b", "dy", "rm0", "rv0", "p0") else a
        g.create_dataset(k, data=a)


def grads(y, dy, *ins):
    gs = torch.autograd.grad(y, ins, dy, allow_unused=True)
    return [torch.zeros_like(i) if gg is None else gg for i, gg in zip(ins, gs)]


with h5py.File(OUT, "w") as f:
    # conv2d: N C H W OC KH KW stride pad bias
    convs = [
        (2, 3, 9, 7, 4, 3, 3, 1, 1, 1),
        (2, 4, 8, 6, 5, 3, 3, 2, 1, 0),
        (2, 6, 5, 5, 3, 1, 1, 1, 0, 1),
        (2, 6, 7, 6, 4, 1, 1, 2, 0, 0),
        (1, 3, 16, 12, 4, 7, 7, 2, 3, 0),
        (2, 2, 6, 5, 3, 2, 3, 1, 0, 1),
    ]
    for i, (N, C, H, W, OC, KH, KW, s, p, hb) in enumerate(convs):
        x = f32((N, C, H, W))
        w = f32((OC, C, KH, KW), 0.3)
        b = f32((OC,)) if hb else None
        y = F.conv2d(x, w, b, stride=s, padding=p)
        dy = f32(y.shape).detach()
        ins = (x, w, b) if hb else (x, w)
        gs = grads(y, dy, *ins)
        t = dict(x=x, w=w, y=y, dy=dy, dx=gs[0], dw=gs[1])
        if hb:
            t.update(b=b, db=gs[2])
        store(f, "conv%d" % i, [N, C, H, W, OC, KH, KW, s, p, hb], t)

    # batchnorm: N C H W training (H*W = 1 for 1d)
    for i, (N, C, H, W, tr) in enumerate([(4, 3, 5, 4, 1), (3, 4, 3, 2, 0), (6, 5, 1, 1, 1), (6, 5, 1, 1, 0)]):
        x = f32((N, C, H, W), 2.0)
        with torch.no_grad():
            x += torch.randn(1, C, 1, 1).double()
        w = f32((C,))
        b = f32((C,))
        rm0 = torch.randn(C).float().double()
        rv0 = (torch.rand(C) + 0.5).float().double()
        rm, rv = rm0.clone(), rv0.clone()
        y = F.batch_norm(x, rm, rv, w, b, training=bool(tr), momentum=0.1, eps=1e-5)
        dy = f32(y.shape).detach()
        gx, gw, gb = grads(y, dy, x, w, b)
        store(f, "bn%d" % i, [N, C, H, W, tr], dict(x=x, w=w, b=b, rm0=rm0, rv0=rv0, y=y, rm=rm, rv=rv,
                                                   dy=dy, dx=gx, dw=gw, db=gb))

    # instance norm (affine), as in IBN-a
    N, C, H, W = 3, 4, 5, 3
    x = f32((N, C, H, W), 1.5)
    w = f32((C,))
    b = f32((C,))
    y = F.instance_norm(x, weight=w, bias=b, eps=1e-5)
    dy = f32(y.shape).detach()
    gx, gw, gb = grads(y, dy, x, w, b)
    store(f, "in0", [N, C, H, W], dict(x=x, w=w, b=b, y=y, dy=dy, dx=gx, dw=gw, db=gb))

    # relu
    x = f32((2, 3, 4, 5))
    y = F.relu(x)
    dy = f32(y.shape).detach()
    (gx,) = grads(y, dy, x)
    store(f, "relu0", [2 * 3 * 4 * 5], dict(x=x, y=y, dy=dy, dx=gx))

    # max pool k stride pad: N C H W k s p
    for i, (N, C, H, W, k, s, p) in enumerate([(2, 3, 9, 7, 3, 2, 1), (1, 2, 8, 8, 3, 2, 1), (2, 2, 6, 5, 2, 2, 0)]):
        x = f32((N, C, H, W))
        y = F.max_pool2d(x, k, s, p)
        dy = f32(y.shape).detach()
        (gx,) = grads(y, dy, x)
        store(f, "maxpool%d" % i, [N, C, H, W, k, s, p], dict(x=x, y=y, dy=dy, dx=gx))

    # global average pooling
    N, C, H, W = 3, 5, 4, 3
    x = f32((N, C, H, W))
    y = F.adaptive_avg_pool2d(x, 1).flatten(1)
    dy = f32(y.shape).detach()
    (gx,) = grads(y, dy, x)
    store(f, "avgpool0", [N, C, H, W], dict(x=x, y=y, dy=dy, dx=gx))

    # GeM: relu'd input so that the clamp matters, p learnable
    for i, pv in enumerate([3.0, 2.3]):
        N, C, H, W = 3, 4, 5, 3
        x = F.relu(f32((N, C, H, W))).detach().float().double().requires_grad_(True)
        p = torch.tensor([pv]).float().double().requires_grad_(True)
        y = F.avg_pool2d(x.clamp(min=1e-6).pow(p), (H, W)).pow(1.0 / p).flatten(1)
        dy = f32(y.shape).detach()
        gx, gp = grads(y, dy, x, p)
        store(f, "gem%d" % i, [N, C, H, W], dict(x=x, p0=p, y=y, dy=dy, dx=gx, dp=gp))

    # linear: N IN OUT bias
    for i, (N, I, O, hb) in enumerate([(5, 7, 4, 1), (3, 6, 9, 0)]):
        x = f32((N, I))
        w = f32((O, I), 0.5)
        b = f32((O,)) if hb else None
        y = F.linear(x, w, b)
        dy = f32(y.shape).detach()
        ins = (x, w, b) if hb else (x, w)
        gs = grads(y, dy, *ins)
        t = dict(x=x, w=w, y=y, dy=dy, dx=gs[0], dw=gs[1])
        if hb:
            t.update(b=b, db=gs[2])
        store(f, "linear%d" % i, [N, I, O, hb], t)

    # L2 normalisation
    N, D = 5, 8
    x = f32((N, D))
    y = F.normalize(x, dim=1)
    dy = f32(y.shape).detach()
    (gx,) = grads(y, dy, x)
    store(f, "l2norm0", [N, D], dict(x=x, y=y, dy=dy, dx=gx))
print("wrote", OUT)
