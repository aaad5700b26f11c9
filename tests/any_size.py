#!/usr/bin/python3
"""Any data at any size (make check): write the data sources hfc-eval reads
from CIFAR-format images, and models whose input is another size, for
tests/run.sh to compare hfc-eval's counts with tools/reference.py's.

  tests/any_size.py data CIFAR_FILE OUT   # OUT/png, jpeg (class folders),
      # nhwc.npy, nchw.npy, labels.npy, up64.npy, up96.npy, odd.npy (31 x 33),
      # mnist/ (28 x 28 grey idx, gz and raw), cifar10c/ (tools/corrupt.py)
  tests/any_size.py model OUT.bin C H W IMAGES.npy   # a small CNN for C x H x W

Models: conv-BN-ReLU, a strided conv, conv-BN-ReLU, global average pool,
linear; weights random, BatchNorm statistics measured on the images given
then perturbed, the last layer fitted to spread them over the classes, so
that outputs depend on the input."""
import gzip
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))


def cifar(path, n):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)[:n]
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


def idx(path, a, gz):
    head = bytes([0, 0, 8, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    (gzip.open if gz else open)(path, "wb").write(head + a.astype(np.uint8).tobytes())


def folders(root, images, labels, ext, names=("airplane", "automobile", "bird", "cat", "deer",
                                             "dog", "frog", "horse", "ship", "truck")):
    from PIL import Image
    for k, (x, y) in enumerate(zip(images, labels)):
        d = os.path.join(root, names[y])
        os.makedirs(d, exist_ok=True)
        img = Image.fromarray(x.transpose(1, 2, 0))
        if ext == "jpg":
            img.save(os.path.join(d, f"{k:05d}.jpg"), quality=90)
        else:
            img.save(os.path.join(d, f"{k:05d}.png"))


def upsample(images, h, w):
    from PIL import Image
    return np.stack([np.asarray(Image.fromarray(x.transpose(1, 2, 0)).resize((w, h), Image.BILINEAR))
                     for x in images])  # (N, h, w, 3)


def data(src, out):
    images, labels = cifar(src, 60)
    os.makedirs(out, exist_ok=True)
    # folders: every class present in 60 images of the real set; a tiny file may lack some
    folders(os.path.join(out, "png"), images, labels, "png")
    folders(os.path.join(out, "jpeg"), images, labels, "jpg")
    np.save(os.path.join(out, "labels.npy"), labels)
    np.save(os.path.join(out, "up64.npy"), upsample(images, 64, 64))
    np.save(os.path.join(out, "up96.npy"), upsample(images, 96, 96).transpose(0, 3, 1, 2).copy())
    np.save(os.path.join(out, "odd.npy"), upsample(images, 31, 33))
    grey = (images[:, 0] * 0.299 + images[:, 1] * 0.587 + images[:, 2] * 0.114)[:, 2:30, 2:30]
    os.makedirs(os.path.join(out, "mnist"), exist_ok=True)
    idx(os.path.join(out, "mnist", "t10k-images-idx3-ubyte.gz"), grey, True)
    idx(os.path.join(out, "mnist", "t10k-labels-idx1-ubyte.gz"), labels, True)
    idx(os.path.join(out, "raw-images-idx3-ubyte"), grey, False)
    idx(os.path.join(out, "raw-labels-idx1-ubyte"), labels, False)
    np.save(os.path.join(out, "grey.npy"), grey.astype(np.uint8))
    np.save(os.path.join(out, "cifar.npy"), images.transpose(0, 2, 3, 1).copy())


def model(out, c, h, w, calibration, seed=0, act=None):
    import torch
    import torch.nn as nn
    import export_pytorch
    torch.manual_seed(seed)
    act = act or nn.ReLU
    m = nn.Sequential(nn.Conv2d(c, 8, 3, padding=1), nn.BatchNorm2d(8), act(),
                      nn.Conv2d(8, 16, 3, stride=2, padding=1), act(),
                      nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), act(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    x = np.load(calibration)
    x = x[:, None] if x.ndim == 3 else x if x.shape[1] == c and x.shape[3] != c else x.transpose(0, 3, 1, 2)
    x = (torch.from_numpy(x.astype(np.float32)) / 255 - 0.45) / 0.25
    m.train()
    with torch.no_grad():
        m(x)  # BatchNorm statistics of these images, then perturbed
        for bn in (m[1], m[6]):
            bn.running_mean += 0.1 * torch.randn_like(bn.running_mean)
            bn.running_var *= 1 + 0.2 * torch.rand_like(bn.running_var)
        m.eval()
        # the last layer sees features centred and scaled over these images, so
        # that predictions spread over the classes and move with the input
        f = m[:-1](x)
        mu, sd = f.mean(0), f.std(0) + 1e-6
        m[-1].weight.div_(sd[None, :]).mul_(4)
        m[-1].bias.copy_(-(m[-1].weight @ mu))
    export_pytorch.export(m, out, mean=[0.45] * c, std=[0.25] * c, input_shape=(c, h, w),
                          metadata={"test": "any_size", "input": [c, h, w]})


def ceil_model(out, onnx_out, calibration):
    """Pools in ceil mode (squeezenet's, googlenet's) at 31 x 33, by both
    routes: the PyTorch exporter (out) and ONNX (onnx_out, for onnx_to_hfc.py)."""
    import torch
    import torch.nn as nn
    import export_pytorch
    torch.manual_seed(2)
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
                      nn.AvgPool2d(3, 2, padding=1, ceil_mode=True),
                      nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False),
                      nn.Flatten(), nn.Linear(8 * 4 * 4, 10)).eval()
    x = np.load(calibration).transpose(0, 3, 1, 2)
    x = (torch.from_numpy(x.astype(np.float32)) / 255 - 0.45) / 0.25
    with torch.no_grad():  # spread the predictions over the classes
        f = m[:-1](x)
        mu, sd = f.mean(0), f.std(0) + 1e-6
        m[-1].weight.div_(sd[None, :]).mul_(4)
        m[-1].bias.copy_(-(m[-1].weight @ mu))
    export_pytorch.export(m, out, mean=[0.45] * 3, std=[0.25] * 3, input_shape=(3, 31, 33))
    torch.onnx.export(m, torch.zeros(1, 3, 31, 33), onnx_out, input_names=["x"],
                      dynamic_axes={"x": {0: "n"}}, opset_version=13)


if __name__ == "__main__":
    if sys.argv[1] == "data":
        data(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "gelu":  # the same model with GELU activations
        import torch.nn as nn
        model(sys.argv[2], *(int(v) for v in sys.argv[3:6]), sys.argv[6], act=nn.GELU)
    elif sys.argv[1] == "ceil":
        ceil_model(*sys.argv[2:5])
    else:
        model(sys.argv[2], *(int(v) for v in sys.argv[3:6]), sys.argv[6])
