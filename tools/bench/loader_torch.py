"""The peers' input pipeline, for tools/bench/loader.sh: a torchvision
DataLoader (PIL decoding, 2 worker processes) with the train transform of
Cluster Contrast / SpCL (Resize 256x128 bicubic, flip, pad 10 + random crop,
ToTensor, Normalize, RandomErasing filled with the mean).  Prints
`images_per_second X` for N batches after a first one.

    /usr/bin/python3 tools/bench/loader_torch.py ROOT [batches] [batch_size] [workers]
"""
import math
import os
import random
import sys
import time

import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader, Dataset

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


class RandomErasing:
    """Random erasing as the peers apply it: after Normalize, mean-filled."""

    def __init__(self, p=0.5, sl=0.02, sh=0.4, r1=0.3, mean=MEAN):
        self.p, self.sl, self.sh, self.r1, self.mean = p, sl, sh, r1, mean

    def __call__(self, img):
        if random.uniform(0, 1) >= self.p:
            return img
        for _ in range(100):
            area = img.size()[1] * img.size()[2]
            target = random.uniform(self.sl, self.sh) * area
            ar = random.uniform(self.r1, 1 / self.r1)
            h = int(round(math.sqrt(target * ar)))
            w = int(round(math.sqrt(target / ar)))
            if w < img.size()[2] and h < img.size()[1]:
                x1 = random.randint(0, img.size()[1] - h)
                y1 = random.randint(0, img.size()[2] - w)
                for c in range(3):
                    img[c, x1:x1 + h, y1:y1 + w] = self.mean[c]
                return img
        return img


class Folder(Dataset):
    def __init__(self, root, transform):
        d = os.path.join(root, "bounding_box_train")
        self.paths = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".jpg"))
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.transform(Image.open(self.paths[i]).convert("RGB"))


def main():
    root = sys.argv[1]
    batches = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    bs = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    tf = T.Compose([
        T.Resize((256, 128), interpolation=T.InterpolationMode.BICUBIC),
        T.RandomHorizontalFlip(p=0.5), T.Pad(10), T.RandomCrop((256, 128)),
        T.ToTensor(), T.Normalize(MEAN, STD), RandomErasing(p=0.5)])
    ds = Folder(root, tf)
    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=bs * (batches + 1))
    loader = DataLoader(ds, batch_size=bs, sampler=sampler, num_workers=workers, drop_last=True)
    it = iter(loader)
    next(it)  # worker start-up and the first batch are timed apart
    t0 = time.time()
    n = 0
    for x in it:
        n += x.shape[0]
    dt = time.time() - t0
    print("torchvision DataLoader: %d images in %.2f s (%d workers)" % (n, dt, workers))
    print("images_per_second %.1f" % (n / dt))


if __name__ == "__main__":
    main()
