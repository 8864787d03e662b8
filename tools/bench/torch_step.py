#!/usr/bin/python3
"""The PyTorch side of tools/bench/train_step.sh: images per second of a
ResNet training step (forward, cross-entropy with label smoothing on a
751-class classifier over a BNNeck, backward, Adam) or of an evaluation
forward, torchvision's model with last stride 1 and GeM pooling, and the
peak resident memory. WIDTH (default 64) is the channels of the first
stage; narrower networks are torchvision's blocks with fewer channels.

Usage: /usr/bin/python3 tools/bench/torch_step.py train|infer ARCH BATCH H W ITERS [THREADS] [WIDTH]
"""
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class GeM(nn.Module):
    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * 3)

    def forward(self, x):
        return F.avg_pool2d(x.clamp(min=1e-6).pow(self.p), x.shape[-2:]).pow(1.0 / self.p).flatten(1)


class NarrowResNet(torchvision.models.resnet.ResNet):
    """torchvision's ResNet with `width` channels in the first stage."""

    def __init__(self, arch, width):
        nn.Module.__init__(self)
        R = torchvision.models.resnet
        block, layers = {"resnet18": (R.BasicBlock, [2, 2, 2, 2]), "resnet34": (R.BasicBlock, [3, 4, 6, 3]),
                         "resnet50": (R.Bottleneck, [3, 4, 6, 3])}[arch]
        self._norm_layer, self.inplanes, self.dilation, self.groups, self.base_width = nn.BatchNorm2d, width, 1, 1, 64
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1, self.relu, self.maxpool = nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.fc = nn.Linear(8 * width * block.expansion, 1000)


class ReID(nn.Module):
    def __init__(self, arch, num_classes, width=64):
        super().__init__()
        r = getattr(torchvision.models, arch)() if width == 64 else NarrowResNet(arch, width)
        b0 = r.layer4[0]
        (b0.conv2 if hasattr(b0, "conv3") else b0.conv1).stride = (1, 1)
        if r.layer4[0].downsample is not None:
            r.layer4[0].downsample[0].stride = (1, 1)
        self.body = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3, r.layer4)
        D = r.fc.in_features
        self.pool = GeM()
        self.neck = nn.BatchNorm1d(D)
        self.neck.bias.requires_grad_(False)
        self.classifier = nn.Linear(D, num_classes, bias=False)

    def forward(self, x):
        f = self.neck(self.pool(self.body(x)))
        return self.classifier(f) if self.training else f


def main(a):
    mode, arch, B, H, W, iters = a[0], a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5])
    if len(a) > 6:
        torch.set_num_threads(int(a[6]))
    width = int(a[7]) if len(a) > 7 else 64
    model = ReID(arch, 751, width)
    x = torch.randn(B, 3, H, W)
    y = torch.arange(B) % 751
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3.5e-4, weight_decay=5e-4)
    model.train(mode == "train")
    t0 = None
    for it in range(-1, iters):
        if it == 0:
            t0 = time.perf_counter()
        if mode == "train":
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                model(x)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("torch %s %s/%d batch %d %dx%d threads %d: %.2f images/s, peak RSS %.0f MiB"
          % (mode, arch, width, B, H, W, torch.get_num_threads(), B * iters / dt, rss))


if __name__ == "__main__":
    main(sys.argv[1:])
