#!/usr/bin/python3
"""Compare what hfc-eval reads with PIL and numpy (make check).

  tests/sources.py folder BIN ROOT   # decoding, Resize, CenterCrop vs PIL
  tests/sources.py split BIN DIR     # the split at odd and even sizes vs numpy

BIN is build/test_sources. Prints PASS/FAIL lines; exit 1 on a failure."""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import reference  # noqa: E402

failed = 0


def check(ok, what):
    global failed
    print(("PASS: " if ok else "FAIL: ") + what)
    failed += not ok


def read_out(path, dtype):
    head = np.fromfile(path, dtype=np.int32, count=4)
    return np.fromfile(path, dtype=dtype, offset=16).reshape(head)


def mixed(root):
    """Images of every PNG kind PIL writes and of mixed, non-square sizes
    (so --crop is needed), in two classes, one nested a level deeper."""
    from PIL import Image
    rng = np.random.default_rng(3)
    os.makedirs(os.path.join(root, "a", "deeper"), exist_ok=True)
    os.makedirs(os.path.join(root, "b"), exist_ok=True)
    smooth = lambda h, w, c: np.clip(np.cumsum(rng.integers(-9, 10, (h, w, c)), 1) + 128, 0, 255).astype(np.uint8)
    Image.fromarray(smooth(30, 40, 3)).save(os.path.join(root, "a", "rgb.png"))
    Image.fromarray(smooth(44, 30, 1)[..., 0]).save(os.path.join(root, "a", "grey.png"))
    Image.fromarray(smooth(37, 53, 4), "RGBA").save(os.path.join(root, "a", "deeper", "rgba.png"))
    Image.fromarray(smooth(36, 36, 3)).convert("P", palette=Image.ADAPTIVE).save(os.path.join(root, "b", "palette.png"))
    Image.fromarray(smooth(50, 29, 2), "LA").save(os.path.join(root, "b", "la.png"))
    Image.fromarray(smooth(61, 45, 3)).save(os.path.join(root, "b", "photo.JPG"), quality=85)
    Image.fromarray(smooth(33, 47, 1)[..., 0]).save(os.path.join(root, "b", "grey.jpeg"), quality=75)


def torchvision_folder(root, channels, resize, crop):
    """The same through torchvision itself (Debian's python3-torchvision):
    ImageFolder's order and loader, Grayscale, Resize, CenterCrop."""
    from torchvision import datasets, transforms
    steps = ([transforms.Grayscale(1)] if channels == 1 else []) + \
        ([transforms.Resize(resize)] if resize else []) + ([transforms.CenterCrop(crop)] if crop else [])
    ds = datasets.ImageFolder(root, transform=transforms.Compose(steps))
    images = [np.asarray(img) for img, _ in ds]
    return np.stack([a[None] if a.ndim == 2 else a.transpose(2, 0, 1) for a in images])


def folder(bin_, root):
    with tempfile.TemporaryDirectory() as tmp:
        cases = ((3, 0, 0), (1, 0, 0), (3, 48, 0), (3, 20, 0), (3, 27, 24), (1, 57, 56),
                 (3, 0, 40), (3, 0, 17))
        if root == "mixed":
            root = os.path.join(tmp, "mixed")
            mixed(root)
            cases = ((3, 24, 24), (1, 40, 32), (3, 0, 30), (3, 64, 64), (1, 0, 45))
        for channels, resize, crop in cases:
            out = os.path.join(tmp, "out")
            r = subprocess.run([bin_, "folder", root, str(channels), str(resize), str(crop), out],
                               capture_output=True, text=True)
            what = f"{os.path.basename(root)}: channels {channels}, --resize {resize}, --crop {crop}"
            if r.returncode:
                check(False, f"{what}: {r.stderr.strip()}")
                continue
            got = read_out(out, np.uint8).astype(int)
            try:
                want, peer = torchvision_folder(root, channels, resize, crop), "torchvision + PIL"
            except ImportError:
                want, peer = reference.read_folder(root, channels, resize, crop)[0], "PIL"
            if got.shape != want.shape:
                check(False, f"{what}: shape {got.shape}, PIL {want.shape}")
                continue
            diff = np.abs(got - want.astype(int))
            share = (diff <= 1).mean()
            check(share >= 0.999, f"{what}: {got.shape[0]} images of {got.shape[1:]}; "
                  f"{100 * share:.3f}% of values within 1 grey level of {peer}'s "
                  f"({100 * (diff == 0).mean():.3f}% equal, largest difference {diff.max()})")


def split(bin_, d):
    rng = np.random.default_rng(5)
    with tempfile.TemporaryDirectory() as tmp:
        # the projection (at most 32 basis vectors a side), and FFTW beyond it (r = 30)
        for c, h, w, r in ((3, 31, 33, 5), (1, 28, 28, 4), (3, 64, 64, 8), (2, 17, 24, 3.5),
                           (3, 224, 224, 16), (3, 32, 32, 4), (3, 96, 80, 30), (1, 9, 12, 20),
                           (3, 40, 36, 0)):
            x = rng.integers(0, 256, (3, h, w, c), dtype=np.uint8)
            np.save(os.path.join(tmp, "x.npy"), x)
            np.save(os.path.join(tmp, "y.npy"), np.zeros(3, dtype=np.int64))
            out = os.path.join(tmp, "out")
            r_ = subprocess.run([bin_, "split", os.path.join(tmp, "x.npy"),
                                 os.path.join(tmp, "y.npy"), str(r), out], capture_output=True, text=True)
            if r_.returncode:
                check(False, f"split {c}x{h}x{w}: {r_.stderr.strip()}")
                continue
            got = read_out(out, np.float32)
            want = reference.paper_split(x.transpose(0, 3, 1, 2).astype(np.float64), r)[0]
            err = np.abs(got - want).max()
            check(err < 2e-3, f"split at {c}x{h}x{w}, r = {r}: largest difference from numpy's "
                  f"fftshift/mask/ifft2 {err:.2e} (pixel units)")


if __name__ == "__main__":
    (folder if sys.argv[1] == "folder" else split)(sys.argv[2], sys.argv[3])
    sys.exit(1 if failed else 0)
