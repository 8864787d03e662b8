"""Reference fixtures for the data module (tests/fixtures/data/).

Decoded pixels (PIL), PIL resizes with BILINEAR and BICUBIC (shrinking,
enlarging, one axis only, mixed), and the peers' test transform and the
deterministic parts of their train transform (torchvision), for
tests/unit/test_data_image.c.  Run with /usr/bin/python3 (PIL, torch,
torchvision, numpy):

    /usr/bin/python3 tools/ref/make_data_fixtures.py tests/fixtures/data

File format of *.slrf: b"SLRF", int32 dtype (0 uint8, 1 float32), int32 d0,
d1, d2 (HWC for images, CHW for tensors), then the data, little-endian.
"""
import os
import struct
import sys

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def save(path, arr):
    arr = np.ascontiguousarray(arr)
    dtype = {np.dtype(np.uint8): 0, np.dtype(np.float32): 1}[arr.dtype]
    shape = list(arr.shape) + [1] * (3 - arr.ndim)
    with open(path, "wb") as f:
        f.write(b"SLRF" + struct.pack("<4i", dtype, *shape) + arr.tobytes())


def source_image(h, w, seed):
    """Gradients, sharp edges, stripes and noise: every filter tap matters."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / (w - 1)
    g = 255 * (0.5 + 0.5 * np.sin(y / 3.0 + x / 5.0))
    b = np.where((x // 6 + y // 5) % 2 == 0, 230.0, 20.0)
    img = np.stack([r, g, b], -1) + rng.normal(0, 25, (h, w, 3))
    img[h // 3: h // 3 + 4, :, :] = [255, 0, 0]
    img[:, w // 2: w // 2 + 2, :] = [0, 0, 0]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def main(out):
    os.makedirs(out, exist_ok=True)
    src = source_image(64, 40, 1)
    pil = Image.fromarray(src, "RGB")
    pil.save(os.path.join(out, "src.png"))
    save(os.path.join(out, "src.slrf"), src)

    # decoders
    pil.save(os.path.join(out, "src_q90.jpg"), quality=90)
    save(os.path.join(out, "src_q90.slrf"),
         np.asarray(Image.open(os.path.join(out, "src_q90.jpg")).convert("RGB")))
    # odd sizes (partial MCUs, 4:2:0) and a progressive file
    odd = pil.crop((0, 0, 37, 23))
    odd.save(os.path.join(out, "odd_q75.jpg"), quality=75)
    save(os.path.join(out, "odd_q75.slrf"),
         np.asarray(Image.open(os.path.join(out, "odd_q75.jpg")).convert("RGB")))
    pil.save(os.path.join(out, "progressive.jpg"), quality=80, progressive=True)
    save(os.path.join(out, "progressive.slrf"),
         np.asarray(Image.open(os.path.join(out, "progressive.jpg")).convert("RGB")))
    pil.convert("L").save(os.path.join(out, "gray.jpg"), quality=85)
    save(os.path.join(out, "gray.slrf"),
         np.asarray(Image.open(os.path.join(out, "gray.jpg")).convert("RGB")))
    pil.convert("P", palette=Image.ADAPTIVE, colors=16).save(os.path.join(out, "pal.png"))
    save(os.path.join(out, "pal.slrf"),
         np.asarray(Image.open(os.path.join(out, "pal.png")).convert("RGB")))
    pal = pil.convert("P", palette=Image.ADAPTIVE, colors=16)
    pal.save(os.path.join(out, "pal_trns.png"), transparency=3)
    save(os.path.join(out, "pal_trns.slrf"),
         np.asarray(Image.open(os.path.join(out, "pal_trns.png")).convert("RGB")))
    la = Image.merge("LA", (pil.convert("L"), pil.convert("L").point(lambda v: 255 - v)))
    la.save(os.path.join(out, "gray_alpha.png"))
    save(os.path.join(out, "gray_alpha.slrf"),
         np.asarray(Image.open(os.path.join(out, "gray_alpha.png")).convert("RGB")))
    rgba = np.concatenate([src, (np.arange(64 * 40) % 256).reshape(64, 40, 1).astype(np.uint8)], -1)
    Image.fromarray(rgba, "RGBA").save(os.path.join(out, "rgba.png"))
    save(os.path.join(out, "rgba.slrf"),
         np.asarray(Image.open(os.path.join(out, "rgba.png")).convert("RGB")))

    # resizes of src (h, w): enlarge, shrink, mixed, one axis only
    sizes = [(128, 80), (256, 128), (24, 16), (37, 53), (64, 23), (29, 40), (7, 5)]
    for name, flt in (("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)):
        for (h, w) in sizes:
            r = np.asarray(pil.resize((w, h), flt))
            save(os.path.join(out, "resize_%s_%dx%d.slrf" % (name, h, w)), r)

    # the peers' test transform at 32x16
    test_tf = T.Compose([T.Resize((32, 16), interpolation=3), T.ToTensor(), T.Normalize(MEAN, STD)])
    save(os.path.join(out, "test_tf_32x16.slrf"), test_tf(pil).numpy().astype(np.float32))

    # the train transform with fixed draws: flip, pad 10, crop at (3, 17),
    # erase rows 5..14, cols 2..7 with the mean values
    img = F.resize(pil, (32, 16), interpolation=T.InterpolationMode.BICUBIC)
    img = F.hflip(img)
    img = F.pad(img, 10)
    img = F.crop(img, 3, 17, 32, 16)
    t = F.normalize(F.to_tensor(img), MEAN, STD)
    for c in range(3):
        t[c, 5:15, 2:8] = MEAN[c]
    save(os.path.join(out, "train_tf_32x16.slrf"), t.numpy().astype(np.float32))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/data")
