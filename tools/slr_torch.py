#!/usr/bin/python3
"""slr's Re-ID model in PyTorch, under slr's state_dict names.

A ResNet backbone in torchvision's names (resnet18, resnet34, resnet50,
resnet50_ibn_a), global pooling (average, or GeM with the key `pool.p`), a
BatchNorm1d neck with a frozen bias (`neck.*`) and an optional bias-free
classifier (`classifier.weight`). It loads the state_dict that
tools/h52torch.py writes with strict=True, and in eval mode gives the
features `slr infer` and `slr extract` give:

    import sys; sys.path.insert(0, "tools")
    import slr_torch
    model = slr_torch.load("final.h5")               # an slr weights file
    model = slr_torch.ReIDModel(**slr_torch.describe("final.h5"))
    model.load_state_dict(torch.load("final.pth"), strict=True)
    feats = model(images)   # (N, D), L2-normalised neck features (slr's default)
    pooled, neck, logits = model.forward_all(images)

Images are (N, 3, H, W) float32, normalised as slr does (ImageNet mean and
standard deviation on RGB in [0, 1]).

Run as a script to print what a weights file describes:
    /usr/bin/python3 tools/slr_torch.py W.h5
"""
import argparse
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    """torchvision's BasicBlock structure and names (conv1, bn1, conv2, bn2, downsample)."""
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (stride on the 3x3 convolution, as torchvision >= 0.3 and slr)."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (self.downsample(x) if self.downsample is not None else x))

# block, blocks per layer
ARCHS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet50_ibn_a": (Bottleneck, (3, 4, 6, 3)),
}

# the description attributes of an slr weights file and their types
DESC_KEYS = ("arch", "width", "last_stride", "pool", "gem_p", "neck", "num_classes")


class IBN(nn.Module):
    """IBN-a: instance norm (affine) on the first half of the channels, batch norm on the rest."""

    def __init__(self, channels):
        super().__init__()
        self.half, self.rest = channels // 2, channels - channels // 2
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(self.rest)

    def forward(self, x):
        a, b = torch.split(x, [self.half, self.rest], 1)
        return torch.cat((self.IN(a.contiguous()), self.BN(b.contiguous())), 1)


class GeM(nn.Module):
    """Generalised-mean pooling (mean over H, W of clamp(x, eps)^p)^(1/p); p is learnt."""

    def __init__(self, p=3.0, eps=1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.full((1,), float(p)))
        self.eps = eps

    def forward(self, x):
        return x.clamp(min=self.eps).pow(self.p).mean((2, 3)).pow(1.0 / self.p)


class AvgPool(nn.Module):
    def forward(self, x):
        return x.mean((2, 3))


class ReIDModel(nn.Module):
    """slr's model: see the module's text. Arguments are the weights file's attributes."""

    def __init__(self, arch="resnet50", width=64, last_stride=1, pool="gem", gem_p=3.0, neck=True,
                 num_classes=0):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError("arch %r: not one of %s" % (arch, ", ".join(ARCHS)))
        if last_stride not in (1, 2):
            raise ValueError("last_stride %r: not 1 or 2" % (last_stride,))
        if pool not in ("avg", "gem"):
            raise ValueError("pool %r: not avg or gem" % (pool,))
        block, depth = ARCHS[arch]
        self.arch, self.width, self.last_stride = arch, int(width), int(last_stride)
        self.pool_kind, self.gem_p, self.has_neck = pool, float(gem_p), bool(neck)
        self.num_classes = int(num_classes)
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = width
        for i in range(4):
            planes = width << i
            stride = 1 if i == 0 else (last_stride if i == 3 else 2)
            blocks = []
            for j in range(depth[i]):
                s = stride if j == 0 else 1
                down = None
                if j == 0 and (s != 1 or inplanes != planes * block.expansion):
                    down = nn.Sequential(nn.Conv2d(inplanes, planes * block.expansion, 1, s, bias=False),
                                         nn.BatchNorm2d(planes * block.expansion))
                blk = block(inplanes, planes, s, down)
                if arch == "resnet50_ibn_a" and i < 3:
                    blk.bn1 = IBN(planes)
                blocks.append(blk)
                inplanes = planes * block.expansion
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*blocks))
        self.feat_dim = inplanes
        self.pool = GeM(gem_p) if pool == "gem" else AvgPool()
        if self.has_neck:
            self.neck = nn.BatchNorm1d(inplanes)
            self.neck.bias.requires_grad_(False)
        if self.num_classes:
            self.classifier = nn.Linear(inplanes, self.num_classes, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if self.num_classes:
            nn.init.normal_(self.classifier.weight, std=0.001)

    def description(self):
        """The weights file's attributes for this model (tools/torch2h5.py writes them)."""
        return {"arch": self.arch, "width": self.width, "last_stride": self.last_stride,
                "pool": self.pool_kind, "gem_p": self.gem_p, "neck": int(self.has_neck),
                "num_classes": self.num_classes, "feat_dim": self.feat_dim}

    def forward_all(self, x):
        """(pooled (N, D), neck (N, D), logits (N, K) or None); neck = pooled without a neck."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        pooled = self.pool(x)
        nk = self.neck(pooled) if self.has_neck else pooled
        logits = self.classifier(nk) if self.num_classes else None
        return pooled, nk, logits

    def forward(self, x, output="normalized"):
        """Features as `slr infer --output`: pooled, neck, or normalized (default)."""
        pooled, nk, _ = self.forward_all(x)
        if output == "pooled":
            return pooled
        if output == "neck":
            return nk
        if output == "normalized":
            return F.normalize(nk, dim=1, eps=1e-12)
        raise ValueError("output %r: not pooled, neck or normalized" % (output,))


def describe_state_dict(sd, last_stride=None):
    """The model a state_dict in slr's names holds, from its keys; last_stride cannot be seen
    in the keys and must be given."""
    if "conv1.weight" not in sd:
        raise ValueError("no conv1.weight: not a ResNet state_dict in torchvision's names")
    if "layer3.6.conv1.weight" in sd:
        raise ValueError("a ResNet deeper than 50 layers (layer3.6 exists): slr has %s" % ", ".join(ARCHS))
    if "layer1.0.bn1.IN.weight" in sd:
        arch = "resnet50_ibn_a"
    elif "layer1.0.conv3.weight" in sd:
        arch = "resnet50"
    elif "layer3.2.conv1.weight" in sd:
        arch = "resnet34"
    else:
        arch = "resnet18"
    d = {"arch": arch, "width": int(sd["conv1.weight"].shape[0]), "pool": "gem" if "pool.p" in sd else "avg",
         "neck": "neck.weight" in sd,
         "num_classes": int(sd["classifier.weight"].shape[0]) if "classifier.weight" in sd else 0}
    if "pool.p" in sd:
        d["gem_p"] = float(sd["pool.p"].reshape(-1)[0])
    if last_stride is not None:
        d["last_stride"] = int(last_stride)
    return d


def _attr(v):
    if isinstance(v, bytes):
        return v.decode()
    if hasattr(v, "item"):
        return v.item()
    return v


def describe(path, last_stride=None):
    """The model an slr weights file (HDF5) describes: ReIDModel's keyword arguments. A file
    without the attributes (another tool's) is described by its keys; its last stride cannot be
    seen there: give last_stride, or ValueError is raised."""
    import h5py
    with h5py.File(path, "r") as f:
        fmt = _attr(f.attrs.get("slr_format", b"weights"))
        if fmt != "weights":
            raise ValueError("%s: slr_format is %r, not 'weights'%s" % (
                path, fmt, " (a training checkpoint: `slr export CKPT.h5 --out W.h5` writes its "
                "weights)" if fmt == "checkpoint" else ""))
        if "model" not in f or not isinstance(f["model"], h5py.Group):
            raise ValueError("%s has no /model group" % path)
        attrs = {k: _attr(f.attrs[k]) for k in DESC_KEYS if k in f.attrs}
        g = f["model"]
        keys = []
        g.visit(keys.append)
        sd = {k: None for k in keys}
        for k in ("conv1.weight", "classifier.weight", "pool.p"):
            if k in g:
                sd[k] = torch.as_tensor(g[k][()])
    d = describe_state_dict(sd) if "conv1.weight" in sd else {}
    d.update(attrs)
    if "neck" in d:
        d["neck"] = bool(d["neck"])
    if "last_stride" not in d:
        if last_stride is None:
            raise ValueError("%s does not record last_stride: give it (2 for torchvision's ImageNet "
                             "models, 1 for Re-ID models)" % path)
        d["last_stride"] = int(last_stride)
    return {k: d[k] for k in DESC_KEYS if k in d}


def read_state_dict(path):
    """The state_dict of an slr weights file (HDF5), as tools/h52torch.py writes it."""
    import collections
    import h5py
    sd = collections.OrderedDict()
    with h5py.File(path, "r") as f:
        g = f["model"]
        keys = []
        g.visit(lambda k: keys.append(k) if isinstance(g[k], h5py.Dataset) else None)
        for k in keys:
            sd[k] = torch.as_tensor(g[k][()]).clone()
    return sd


def load(path, **confirm):
    """An eval-mode ReIDModel with the weights of an slr weights file. Keyword arguments confirm
    the description (a value that differs raises ValueError naming both) or give what the file
    does not record (last_stride of another tool's file)."""
    d = describe(path, confirm.get("last_stride"))
    for k, v in confirm.items():
        if k not in DESC_KEYS:
            raise TypeError("load(): unknown argument %r (%s)" % (k, ", ".join(DESC_KEYS)))
        if k in d and d[k] != v:
            raise ValueError("%s=%r, but %s holds %s=%r" % (k, v, path, k, d[k]))
        d[k] = v
    model = ReIDModel(**d)
    model.load_state_dict(read_state_dict(path), strict=True)
    return model.eval()


def main(argv):
    ap = argparse.ArgumentParser(
        prog="slr_torch.py",
        description="Print the model an slr weights file describes (the arguments of "
                    "slr_torch.ReIDModel) and check that its weights load with strict=True.")
    ap.add_argument("weights", metavar="W.h5", help="slr weights file (HDF5, /model/<state_dict key>)")
    a = ap.parse_args(argv)
    try:
        model = load(a.weights)
    except (ValueError, OSError, RuntimeError) as e:
        print("slr_torch.py: error: %s" % e, file=sys.stderr)
        return 1
    for k, v in model.description().items():
        print("%-12s %s" % (k, v))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
