#!/usr/bin/python3
"""Write CIFAR-10-C's noise and photometric corruptions from the CIFAR-10
test set, in CIFAR-10-C's own layout, with NumPy alone:

  tools/corrupt.py --data ../shared/cifar-10-batches-bin OUT [--limit N]
      [--corruption gaussian_noise,...] [--seed 0]

OUT/NAME.npy: uint8 (5 N, 32, 32, 3), severity s is rows (s-1) N .. s N - 1;
OUT/labels.npy: the N labels, five times. hfc-eval reads OUT with
--dataset cifar10-c (README, "CIFAR-10-C").

The corruptions and their severity parameters are those Hendrycks &
Dietterich published (ICLR 2019, make_cifar_c.py), on x = pixels / 255:
  gaussian_noise  sigma 0.04 0.06 0.08 0.09 0.10   x + N(0, sigma)
  shot_noise      rate 500 250 100 75 50           Poisson(x * rate) / rate
  impulse_noise   amount .01 .02 .03 .05 .07       salt and pepper, each value
  speckle_noise   sigma .06 .1 .12 .16 .2          x + x * N(0, sigma)
  contrast        c .75 .5 .4 .3 .15               (x - mean) * c + mean, mean per image
  brightness      c .05 .1 .15 .2 .3               HSV value + c (clipped to 1)
each clipped to [0, 1], times 255, then truncated to uint8 as theirs is. The
noise draws come from NumPy's PCG64 seeded with (seed, corruption, severity),
so the files are reproducible but not CIFAR-10-C's own draws."""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import read_cifar  # noqa: E402

PARAMS = {
    "gaussian_noise": [0.04, 0.06, 0.08, 0.09, 0.10],
    "shot_noise": [500, 250, 100, 75, 50],
    "impulse_noise": [0.01, 0.02, 0.03, 0.05, 0.07],
    "speckle_noise": [0.06, 0.1, 0.12, 0.16, 0.2],
    "contrast": [0.75, 0.5, 0.4, 0.3, 0.15],
    "brightness": [0.05, 0.1, 0.15, 0.2, 0.3],
}


def brightness(x, c):
    """HSV value + c: hue and saturation stay, so RGB scales by the new V over
    the old (a black pixel, V = 0, becomes grey at the new V)."""
    v = x.max(axis=-1, keepdims=True)
    nv = np.minimum(v + c, 1.0)
    scaled = x * np.divide(nv, v, out=np.zeros_like(v), where=v > 0)
    return np.where(v > 0, scaled, nv)


def corrupt(name, x, c, rng):
    """x: (N, 32, 32, 3) in [0, 1] -> the corruption at parameter c, in [0, 1]."""
    if name == "gaussian_noise":
        y = x + rng.normal(size=x.shape, scale=c)
    elif name == "shot_noise":
        y = rng.poisson(x * c) / c
    elif name == "impulse_noise":
        y = x.copy()
        flipped = rng.random(x.shape) < c
        salted = rng.random(x.shape) < 0.5
        y[flipped & salted] = 1.0
        y[flipped & ~salted] = 0.0
    elif name == "speckle_noise":
        y = x + x * rng.normal(size=x.shape, scale=c)
    elif name == "contrast":
        means = x.mean(axis=(1, 2, 3), keepdims=True)
        y = (x - means) * c + means
    elif name == "brightness":
        y = brightness(x, c)
    else:
        raise ValueError(name)
    return np.clip(y, 0, 1) * 255


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--data", default=os.environ.get("HFC_DATA", "data/cifar-10-batches-bin"))
    ap.add_argument("--limit", type=int, default=0, help="first N test images (default: all 10,000)")
    ap.add_argument("--corruption", default=",".join(PARAMS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    names = args.corruption.split(",")
    for n in names:
        if n not in PARAMS:
            sys.exit(f"corrupt.py: unknown corruption {n!r} (one of {', '.join(PARAMS)})")
    images, labels, _ = read_cifar(args.data, args.limit)
    x = images.transpose(0, 2, 3, 1).astype(np.float64) / 255.0
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "labels.npy"), np.tile(labels.astype(np.uint8), 5))
    for k, name in enumerate(names):
        out = np.empty((5 * len(x),) + x.shape[1:], dtype=np.uint8)
        for s, c in enumerate(PARAMS[name]):
            rng = np.random.default_rng([args.seed, list(PARAMS).index(name), s + 1])
            out[s * len(x):(s + 1) * len(x)] = corrupt(name, x, c, rng).astype(np.uint8)
        np.save(os.path.join(args.out, name + ".npy"), out)
        print(f"{args.out}/{name}.npy: {len(x)} images x 5 severities", file=sys.stderr)


if __name__ == "__main__":
    main()
