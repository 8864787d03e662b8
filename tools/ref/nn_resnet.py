#!/usr/bin/python3
"""Reference ResNets for tests/unit/test_nn_resnet.c, built from
torchvision's own blocks (so that the state_dict names are torchvision's),
narrow to keep the fixtures small, with the Re-ID head (GeM pool.p,
BatchNorm1d neck with frozen bias, bias-free classifier).

Writes to tests/fixtures/nn/:
  names.h5          full-width resnet18/34/50 and resnet50_ibn_a state_dict
                    keys and shapes (structure and names check)
  r50_weights.h5    narrow resnet50 (last stride 1, GeM, neck) weights,
                    converted from a .pth by tools/torch2h5.py
  r50_eval.h5       its input images and eval outputs (pooled, neck, normalized)
  ibn_weights.h5, ibn_eval.h5   the same for a narrow resnet50_ibn_a
  r18_weights.h5    narrow resnet18 (GeM, neck, classifier) initial weights
  r18_train.h5      images, labels, and after three Adam steps on
                    cross-entropy (smoothing 0.1) + triplet (margin 0.3):
                    the losses, the gradients of step 1 and all weights
Also checks the round trip .pth -> torch2h5 -> h52torch -> load_state_dict(strict=True).

Run: /usr/bin/python3 tools/ref/nn_resnet.py
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..")
OUT = os.path.join(HERE, "../../tests/fixtures/nn")
sys.path.insert(0, TOOLS)
import torch2h5  # noqa: E402
import h52torch  # noqa: E402


class IBN(nn.Module):
    """IBN-a normalisation: instance norm on half the channels, batch norm on the rest."""

    def __init__(self, planes):
        super().__init__()
        self.half = planes // 2
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(planes - self.half)

    def forward(self, x):
        a, b = torch.split(x, [self.half, x.size(1) - self.half], 1)
        return torch.cat((self.IN(a.contiguous()), self.BN(b.contiguous())), 1)


class BottleneckIBN(Bottleneck):
    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1, norm_layer=None, ibn=False):
        super().__init__(inplanes, planes, stride, downsample, groups, base_width, dilation, norm_layer)
        if ibn:
            self.bn1 = IBN(planes)


class GeM(nn.Module):
    def __init__(self, p=3.0, eps=1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * p)
        self.eps = eps

    def forward(self, x):
        return F.avg_pool2d(x.clamp(min=self.eps).pow(self.p), (x.size(-2), x.size(-1))).pow(1.0 / self.p).flatten(1)


class AvgPool(nn.Module):
    def forward(self, x):
        return x.mean((2, 3))


class ReIDResNet(ResNet):
    """torchvision's ResNet with a width multiplier, last stride and the Re-ID head."""

    def __init__(self, block, layers, width=64, last_stride=1, pool="gem", neck=True, num_classes=0, ibn=False):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=last_stride)
        if ibn:
            for layer in (self.layer1, self.layer2, self.layer3):
                for blk in layer:
                    blk.bn1 = IBN(blk.bn1.num_features)
        D = width * 8 * block.expansion
        self.pool = GeM() if pool == "gem" else AvgPool()
        self.has_neck = neck
        if neck:
            self.neck = nn.BatchNorm1d(D)
            self.neck.bias.requires_grad_(False)
        if num_classes:
            self.classifier = nn.Linear(D, num_classes, bias=False)
            nn.init.normal_(self.classifier.weight, std=0.001)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        pooled = self.pool(x)
        nk = self.neck(pooled) if self.has_neck else pooled
        logits = self.classifier(nk) if hasattr(self, "classifier") else None
        return pooled, nk, logits


def randomise_stats(model, gen):
    """non-trivial BN/IN affine parameters and running statistics for eval tests"""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.InstanceNorm2d)):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                if m.bias.requires_grad:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                if getattr(m, "running_mean", None) is not None:
                    m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                    m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
                    m.num_batches_tracked.fill_(7)


def save_weights(model, name):
    """model -> .pth -> tools/torch2h5.py -> fixture; and back through h52torch (strict load)"""
    with tempfile.TemporaryDirectory() as tmp:
        pth = os.path.join(tmp, "w.pth")
        # a checkpoint dict with DataParallel names, as the peers save them
        torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}, "epoch": 3}, pth)
        h5 = os.path.join(OUT, name)
        subprocess.check_call([sys.executable, os.path.join(TOOLS, "torch2h5.py"), pth, h5],
                              stdout=subprocess.DEVNULL)
        back = os.path.join(tmp, "back.pth")
        subprocess.check_call([sys.executable, os.path.join(TOOLS, "h52torch.py"), h5, back],
                              stdout=subprocess.DEVNULL)
        sd = torch.load(back)
        model.load_state_dict(sd, strict=True)
        for k, v in model.state_dict().items():
            assert torch.equal(v.float() if v.is_floating_point() else v, sd[k].to(v.dtype).float() if v.is_floating_point() else sd[k]), k


def names_group(f, name, model):
    g = f.create_group(name)
    keys = list(model.state_dict().keys())
    shapes = np.zeros((len(keys), 5), dtype=np.int64)
    for i, k in enumerate(keys):
        s = tuple(model.state_dict()[k].shape)
        shapes[i, 0] = len(s)
        shapes[i, 1:1 + len(s)] = s
    g.create_dataset("keys", data=np.array([k.encode() for k in keys]))
    g.create_dataset("shapes", data=shapes)


def main():
    torch.manual_seed(7)
    gen = torch.Generator().manual_seed(11)

    # full-width structure and names (resnet50 as torchvision builds it, plus the head)
    with h5py.File(os.path.join(OUT, "names.h5"), "w") as f:
        tv = torchvision.models.resnet50()
        mine = ReIDResNet(Bottleneck, [3, 4, 6, 3], 64, 1, "gem", True)
        tvk = [k for k in tv.state_dict() if not k.startswith("fc.")]
        assert tvk == [k for k in mine.state_dict() if not k.startswith(("pool.", "neck."))]
        names_group(f, "resnet50", mine)
        tv18 = torchvision.models.resnet18()
        mine18 = ReIDResNet(BasicBlock, [2, 2, 2, 2], 64, 2, "avg", False)
        assert [k for k in tv18.state_dict() if not k.startswith("fc.")] == list(mine18.state_dict().keys())
        names_group(f, "resnet18", mine18)
        names_group(f, "resnet50_ibn_a", ReIDResNet(Bottleneck, [3, 4, 6, 3], 64, 1, "avg", True, ibn=True))
        with torch.random.fork_rng():
            tv34 = torchvision.models.resnet34()
            mine34 = ReIDResNet(BasicBlock, [3, 4, 6, 3], 64, 2, "gem", True, num_classes=751)
            assert [k for k in tv34.state_dict() if not k.startswith("fc.")] == \
                [k for k in mine34.state_dict() if not k.startswith(("pool.", "neck.", "classifier."))]
            names_group(f, "resnet34", mine34)

    # narrow resnet50 / resnet50_ibn_a eval
    for tag, ibn in (("r50", False), ("ibn", True)):
        model = ReIDResNet(Bottleneck, [3, 4, 6, 3], 4, 1, "gem", True, ibn=ibn).double()
        randomise_stats(model, gen)
        with torch.no_grad():
            model.pool.p.fill_(3.25)
        model = model.float()
        save_weights(model, tag + "_weights.h5")
        model = model.double().eval()
        x = torch.randn(3, 3, 64, 32).float()
        with torch.no_grad():
            pooled, nk, _ = model(x.double())
        with h5py.File(os.path.join(OUT, tag + "_eval.h5"), "w") as f:
            f["images"] = x.numpy()
            f["pooled"] = pooled.numpy()
            f["neck"] = nk.numpy()
            f["normalized"] = F.normalize(nk, dim=1).numpy()

    # narrow resnet18 training: three Adam steps
    K, N = 5, 6
    model = ReIDResNet(BasicBlock, [2, 2, 2, 2], 4, 2, "gem", True, num_classes=K)
    model = model.float()
    save_weights(model, "r18_weights.h5")
    model = model.double().train()
    x = torch.randn(N, 3, 64, 32).float()
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    params = [p for p in model.parameters() if p.requires_grad]
    # eps 1e-2 bounds d(update)/d(grad) by lr/eps: float32 rounding of tiny
    # gradients is not amplified into full Adam steps (default eps: test_nn_losses)
    opt = torch.optim.Adam(params, lr=1e-3, weight_decay=5e-4, eps=1e-2)
    losses, grads0 = [], None
    sys.path.insert(0, HERE)
    from nn_losses import triplet  # noqa: E402
    for step in range(3):
        opt.zero_grad()
        pooled, nk, logits = model(x.double())
        loss = F.cross_entropy(logits, labels, label_smoothing=0.1) + triplet(pooled, labels, 0.3)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            grads0 = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        opt.step()
    with h5py.File(os.path.join(OUT, "r18_train.h5"), "w") as f:
        f["images"] = x.numpy()
        f["labels"] = labels.int().numpy()
        f["losses"] = np.array(losses)
        for n, g in grads0.items():
            f["grad0/" + n] = g.float().numpy()
        for n, v in model.state_dict().items():
            f["after/" + n] = v.float().numpy() if v.is_floating_point() else v.numpy()
    print("wrote fixtures to", OUT)


if __name__ == "__main__":
    main()
