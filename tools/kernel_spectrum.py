#!/usr/bin/python3
"""How smooth a model's first-layer kernels are, as one number per model.

Each kernel of the first convolution (one per output and input channel pair,
k x k) is taken through a 2-D DFT. Along an axis of length k the DFT's
frequencies are 0, ±1/k, ..., and the highest is the one of largest
magnitude (±1/3 cycles per pixel for a 3 x 3 kernel). For every model this
prints, pooled over all its kernels (energy = squared magnitude, so by
Parseval the sum of squared weights):

  highest_share  energy at the bins whose frequency is the highest along
                 both axes (the 4 corners' worth for 3 x 3), over all energy;
                 4/9 = 0.444 for white-noise 3 x 3 kernels, 0 for constant ones
  dc_share       energy at frequency (0, 0) over all energy (1 for constant
                 kernels, 1/9 expected for white noise)
  centre_share   the centre tap's squared weight over all (odd k only): 1 for
                 a kernel that passes one pixel through, whose spectrum is flat

Smoother kernels (the paper's Figure 7: adversarially trained models) have a
smaller highest_share and a larger dc_share. The weights are read as stored
in the file, before any BatchNorm.

  tools/kernel_spectrum.py data/models/preact20-bn.bin data/models/preact20-bn-adv.bin

One JSON object per model. Exit 1 with one line when a file is not a model or
has no convolution.
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_pytorch  # noqa: E402


def first_conv_weight(header, tensors):
    """The weight (cout, cin/groups, kh, kw) of the first conv node."""
    for node in header["nodes"]:
        if node.get("op") == "conv2d":
            return tensors[node["weight"]]
    raise ValueError("the model has no convolution")


def highest_bins(k):
    """Indices of the DFT bins along an axis of length k at the highest |frequency|."""
    f = np.abs(np.fft.fftfreq(k))
    return np.flatnonzero(f == f.max())


def spectrum(w):
    w = np.asarray(w, dtype=np.float64)
    e = np.abs(np.fft.fft2(w, axes=(-2, -1))) ** 2
    total = e.sum()
    if total == 0:
        raise ValueError("the first convolution's kernels are all zero")
    hy, hx = highest_bins(w.shape[-2]), highest_bins(w.shape[-1])
    high = e[..., hy[:, None], hx[None, :]].sum()
    return {"kernels": int(np.prod(w.shape[:2])), "size": [int(w.shape[-2]), int(w.shape[-1])],
            "highest_share": round(float(high / total), 6),
            "dc_share": round(float(e[..., 0, 0].sum() / total), 6),
            "centre_share": None if w.shape[-2] % 2 == 0 or w.shape[-1] % 2 == 0 else
            round(float((w[..., w.shape[-2] // 2, w.shape[-1] // 2] ** 2).sum() / (w ** 2).sum()), 6)}


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 1
    for path in argv:
        try:
            header, tensors = export_pytorch.read(path)
            out = {"model": os.path.basename(path), **spectrum(first_conv_weight(header, tensors))}
        except (OSError, ValueError, KeyError) as e:
            msg = str(e) if str(e).startswith(path) else f"{path}: {e}"
            print(f"kernel_spectrum.py: {msg}", file=sys.stderr)
            return 1
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
