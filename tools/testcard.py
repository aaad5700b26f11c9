#!/usr/bin/python3
"""Write a CIFAR-10-format file of ten generated 32x32 "test card" images,
one per label 0..9, for pictures that must not carry CIFAR-10 pixels (the
examples under docs/pictures/). Each mixes smooth shapes (low frequencies)
with stripes, checks or noise (high frequencies), so the low | high split is
easy to see.  usage: tools/testcard.py OUT.cifar"""
import sys

import numpy as np


def card(k, rng):
    y, x = np.mgrid[0:32, 0:32].astype(np.float64)
    r = np.hypot(y - 15.5, x - 15.5)
    smooth = [
        np.stack([x * 8, y * 8, 255 - x * 8]),                      # colour ramp
        np.stack([255 * (r < 10)] * 3) * np.array([[[1]], [[0.6]], [[0.2]]]),  # disc
        np.stack([128 + 100 * np.sin(x / 5), 128 + 100 * np.cos(y / 5), 128 + 0 * x]),
    ][k % 3]
    detail = [
        60 * np.sign(np.sin(x * np.pi / 2)),                         # 4-pixel stripes
        60 * ((x.astype(int) // 2 + y.astype(int) // 2) % 2 * 2 - 1),  # 2-pixel checks
        60 * np.sin(r * 1.6),                                        # rings
        rng.normal(0, 40, (32, 32)),                                 # noise
        60 * np.sign(np.sin((x + y) * np.pi / 3)),                   # diagonal stripes
    ][k % 5]
    img = smooth * 0.7 + detail[None]
    return np.clip(np.round(img + 40), 0, 255).astype(np.uint8)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rng = np.random.default_rng(0)
    with open(sys.argv[1], "wb") as f:
        for k in range(10):
            f.write(bytes([k]) + card(k, rng).tobytes())


if __name__ == "__main__":
    main()
