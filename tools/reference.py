#!/usr/bin/python3
"""The hfc-eval experiment in PyTorch + numpy: the reference for fidelity
tests and the peer for benchmarks.

The split is the paper's numpy code (fftshift, centred disc mask, ifftshift,
real part); the model is the hfc-eval model file run with torch.nn.functional
ops, node by node, so the same file is judged by an independent engine.

  tools/reference.py --data ../shared/cifar-10-batches-bin --radius 4,8 model.bin
  tools/reference.py attack --method pgd --eps 0.03 [--radius 4] model.bin
  tools/reference.py protos [--top 5] [--images 0,3] [--radius 4] [--push] model.bin

prints one JSON object per radius (per eps and radius for attack): images,
correct counts (and accuracy).
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_pytorch  # noqa: E402


MASK_KINDS = ("disc", "square", "gaussian", "band")  # hfc_mask_kind's order


def mask_weights(kind="disc", r=4.0, outer=0.0, side=32, width=None):
    """hfc-eval's masks (README, "Masks"), written from their definitions:
    cell (i, j) of the fftshift-ed H x W spectrum is frequency
    (i - H // 2, j - W // 2) ((i - 16, j - 16) at 32 x 32),
    d = sqrt(fy^2 + fx^2); disc [d < r], square [max(|fy|, |fx|) < r],
    gaussian exp(-d^2 / (2 r^2)), band [r <= d < outer]."""
    width = side if width is None else width
    fy = np.arange(side, dtype=np.float64) - side // 2
    fx = np.arange(width, dtype=np.float64) - width // 2
    fy, fx = np.meshgrid(fy, fx, indexing="ij")
    d = np.sqrt(fy ** 2 + fx ** 2)
    if kind == "disc":
        return (d < r).astype(np.float64)
    if kind == "square":
        return (np.maximum(np.abs(fy), np.abs(fx)) < r).astype(np.float64)
    if kind == "gaussian":
        return np.exp(-(fy ** 2 + fx ** 2) / (2 * r * r))
    if kind == "band":
        return ((r <= d) & (d < outer)).astype(np.float64)
    raise ValueError(f"unknown mask {kind!r}")


def paper_mask(radius, side=32, width=None):
    """M(i, j) = 1 where sqrt((i - 16)^2 + (j - 16)^2) < r, as in the paper's code."""
    return mask_weights("disc", radius, side=side, width=width)


def parse_masks(radius, kind="disc"):
    """--radius "4,8" or "0:4,4:8" with --mask KIND -> [(kind, r, outer)]."""
    out = []
    for entry in radius.split(","):
        if ":" in entry:
            a, b = (float(v) for v in entry.split(":"))
            out.append(("band", a, b))
        else:
            out.append((kind, float(entry), 0.0))
    return out


def mask_json(mask):
    """The "radius" and "mask" fields hfc-eval writes for a mask."""
    kind, r, outer = mask
    if kind == "band":
        return {"radius": f"{r:g}:{outer:g}", "mask": {"kind": kind, "inner": r, "outer": outer}}
    return {"radius": r, "mask": {"kind": kind, "radius": r}}


def paper_split(images, mask):
    """images: (n, C, H, W) float64 raw pixels -> (low, high), the paper's
    definition; mask: a disc radius or a (kind, r, outer) triple."""
    f = np.fft.fftshift(np.fft.fft2(images, axes=(-2, -1)), axes=(-2, -1))
    h, w = images.shape[-2:]
    m = mask_weights(*mask, side=h, width=w) if isinstance(mask, tuple) \
        else paper_mask(mask, h, w)
    low = np.real(np.fft.ifft2(np.fft.ifftshift(f * m, axes=(-2, -1)), axes=(-2, -1)))
    high = np.real(np.fft.ifft2(np.fft.ifftshift(f * (1 - m), axes=(-2, -1)), axes=(-2, -1)))
    return low, high


def torch_split(images, radius):
    """The same split with torch.fft (used by the benchmark as the PyTorch peer)."""
    f = torch.fft.fftshift(torch.fft.fft2(images), dim=(-2, -1))
    m = torch.from_numpy(paper_mask(radius, *images.shape[-2:])).to(images.dtype)
    low = torch.fft.ifft2(torch.fft.ifftshift(f * m, dim=(-2, -1))).real
    high = torch.fft.ifft2(torch.fft.ifftshift(f * (1 - m), dim=(-2, -1))).real
    return low, high


UNARY = {"relu": F.relu, "relu6": F.relu6, "sigmoid": torch.sigmoid, "silu": F.silu, "gelu": F.gelu,
         "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid}


def prototype_distances(z, prototypes):
    """Squared L2 distances, in float64, of every position of maps z (n, D,
    H, W) to prototypes (m, D): (n, m, H, W), written as sum((z - p)^2)."""
    z = z.double()[:, None]                                   # n, 1, D, H, W
    p = prototypes.double()[None, :, :, None, None]           # 1, m, D, 1, 1
    return ((z - p) ** 2).sum(2)


def similarity(node, d):
    """The prototype layer's similarity of distances d (docs/model-format.md)."""
    kind = node.get("similarity", "log")
    if kind == "log":
        return torch.log((d + 1) / (d + node.get("epsilon", 1e-4)))
    return -d if kind == "linear" else d


class GraphModel(torch.nn.Module):
    """Runs an hfc-eval model file's node list with torch.nn.functional."""

    def __init__(self, path, bn_batch_stats=False, smooth=0.0):
        """bn_batch_stats: BatchNorm by each forward call's own batch statistics
        (biased variance), as the paper's TF code did at test time. smooth: rho
        of the paper's first-layer kernel smoothing (smooth_kernels)."""
        super().__init__()
        self.header, tensors = export_pytorch.read(path)
        self.t = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
        self.bn_batch_stats = bn_batch_stats
        if smooth:
            first = next(n for n in self.header["nodes"] if n["inputs"][0] == "input")
            if first["op"] != "conv2d":
                raise ValueError("--smooth: the first layer is not a conv")
            w = self.t[first["weight"]]
            self.t[first["weight"]] = torch.from_numpy(smooth_kernels(w.numpy().astype(np.float64), smooth)).float()
        inp = self.header["input"]
        self.scale = inp["scale"]
        self.mean = torch.tensor(inp["mean"]).view(1, -1, 1, 1)
        self.std = torch.tensor(inp["std"]).view(1, -1, 1, 1)

    def w(self, node, key):
        name = node.get(key)
        return self.t[name] if name else None

    def step(self, n, x, v):
        """One node: n its header entry, x its first input, v the values so far."""
        op = n["op"]
        if op == "conv2d":
            y = F.conv2d(x, self.w(n, "weight"), self.w(n, "bias"), n.get("stride", [1, 1]),
                         n.get("padding", [0, 0]), n.get("dilation", [1, 1]), n.get("groups", 1))
        elif op == "batchnorm":
            if self.bn_batch_stats:  # tf.nn.moments over (N, H, W): biased variance
                mean = x.double().mean((0, 2, 3), keepdim=True)
                var = ((x.double() - mean) ** 2).mean((0, 2, 3), keepdim=True)
                g, b = self.w(n, "weight"), self.w(n, "bias")
                y = (x.double() - mean) / torch.sqrt(var + n["eps"])
                y = y * (g.view(1, -1, 1, 1).double() if g is not None else 1)
                y = (y + (b.view(1, -1, 1, 1).double() if b is not None else 0)).to(x.dtype)
            else:
                y = F.batch_norm(x, self.w(n, "mean"), self.w(n, "var"), self.w(n, "weight"),
                                 self.w(n, "bias"), False, 0.0, n["eps"])
        elif op == "layernorm":
            c = x.shape[1]
            y = F.layer_norm(x.permute(0, 2, 3, 1), (c,), self.w(n, "weight"), self.w(n, "bias"),
                             n["eps"]).permute(0, 3, 1, 2)
        elif op in UNARY:
            y = UNARY[op](x)
        elif op == "affine":
            y = x * n.get("scale", 1.0) + n.get("shift", 0.0)
        elif op == "mul":
            y = x * v[n["inputs"][1]]
        elif op == "concat":
            y = torch.cat([v[k] for k in n["inputs"]], 1)
        elif op == "slice_channels":
            y = x[:, n["start"]:n["stop"]]
        elif op == "channel_shuffle":
            b, c, h, w_ = x.shape
            g = n["groups"]
            y = x.view(b, g, c // g, h, w_).transpose(1, 2).reshape(b, c, h, w_)
        elif op == "maxpool2d":
            y = F.max_pool2d(x, n["kernel"], n.get("stride"), n.get("padding", [0, 0]),
                             ceil_mode=n.get("ceil_mode", False))
        elif op == "avgpool2d":
            y = F.avg_pool2d(x, n["kernel"], n.get("stride"), n.get("padding", [0, 0]),
                             ceil_mode=n.get("ceil_mode", False),
                             count_include_pad=n.get("count_include_pad", True))
        elif op == "adaptive_avgpool2d":
            y = F.adaptive_avg_pool2d(x, n["output"])
        elif op == "adaptive_maxpool2d":
            y = F.adaptive_max_pool2d(x, n["output"])
        elif op == "global_avgpool":
            y = x.mean((2, 3), keepdim=True)
        elif op == "flatten":
            y = x.reshape(x.shape[0], -1, 1, 1)
        elif op == "linear":
            y = F.linear(x.flatten(1), self.w(n, "weight"), self.w(n, "bias"))[:, :, None, None]
        elif op == "add":
            y = x + v[n["inputs"][1]]
        elif op == "subsample":
            sh, sw = n["stride"]
            y = x[:, :, ::sh, ::sw]
        elif op == "pad_channels":
            y = F.pad(x, (0, 0, 0, 0, n["before"], n["after"]))
        elif op == "prototype":
            d = prototype_distances(x, self.w(n, "prototypes")).flatten(2).min(2).values
            y = similarity(n, d).to(x.dtype)[:, :, None, None]
        else:
            raise ValueError(f"unknown op {op}")
        return y

    def values(self, pixels):
        """Every node's output by name ("input": after preprocessing)."""
        v = {"input": (pixels * self.scale - self.mean) / self.std}
        for n in self.header["nodes"]:
            v[n["name"]] = self.step(n, v[n["inputs"][0]], v)
        return v

    def forward(self, pixels):
        return self.values(pixels)[self.header["output"]].flatten(1)


CIFAR_FILES = {  # dataset -> set -> files in the official directory
    "cifar10": {"test": ["test_batch.bin"], "train": [f"data_batch_{i}.bin" for i in range(1, 6)]},
    "cifar100": {"test": ["test.bin"], "train": ["train.bin"]},
}


def read_cifar(path, limit=0, dataset="cifar10", which="test"):
    """-> images (n, 3, 32, 32) uint8, labels (CIFAR-100: fine), the path(s) read.
    CIFAR-10 records: label, 3072 pixels; CIFAR-100: coarse, fine, 3072 pixels."""
    label_bytes = 1 if dataset == "cifar10" else 2
    files = [os.path.join(path, f) for f in CIFAR_FILES[dataset][which]] if os.path.isdir(path) else [path]
    raw = np.concatenate([np.fromfile(f, dtype=np.uint8).reshape(-1, 3072 + label_bytes) for f in files])
    if limit:
        raw = raw[:limit]
    return (raw[:, label_bytes:].reshape(-1, 3, 32, 32), raw[:, label_bytes - 1].astype(np.int64),
            files[0] if len(files) == 1 else files)


def read_npy_images(path, layout):
    """(N, H, W, C) / (N, C, H, W) / (N, H, W) uint8 or float32 -> (N, C, H, W)."""
    x = np.load(path, mmap_mode="r") if isinstance(path, str) else path
    if x.ndim == 3:
        return x[:, None]
    return np.asarray(x) if layout == "nchw" else np.asarray(x).transpose(0, 3, 1, 2)


def read_idx(path):
    """LeCun's idx format (MNIST), gzip or not: 00 00 08 ndim, big-endian sizes, bytes."""
    import gzip
    raw = (gzip.open if path.endswith(".gz") else open)(path, "rb").read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * d:8 + 4 * d], "big") for d in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def torchvision_resize(img, size):
    """torchvision 0.14's Resize(size) on a PIL image: the shorter side to
    size, the longer to int(size * long / short), PIL bilinear."""
    from PIL import Image
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    new_w, new_h = (size, new_long) if w <= h else (new_long, size)
    return img if (new_w, new_h) == (w, h) else img.resize((new_w, new_h), Image.BILINEAR)


def torchvision_center_crop(img, size):
    """torchvision 0.14's CenterCrop(size) on a PIL image (zero padding when larger)."""
    from PIL import Image
    w, h = img.size
    if size > w or size > h:
        pad_l, pad_t = (size - w) // 2 if size > w else 0, (size - h) // 2 if size > h else 0
        canvas = Image.new(img.mode, (max(w, size), max(h, size)))
        canvas.paste(img, (pad_l, pad_t))
        img, (w, h) = canvas, canvas.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def read_folder(root, channels=3, resize=0, crop=0, limit=0):
    """torchvision's ImageFolder + PIL loading: classes = sorted subdirectories,
    files by sorted(os.walk), convert("RGB") (or "L"), Resize, CenterCrop."""
    from PIL import Image
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    files = []
    for label, c in enumerate(classes):
        for d, _, names in sorted(os.walk(os.path.join(root, c), followlinks=True)):
            files += [(os.path.join(d, n), label) for n in sorted(names)
                      if n.lower().endswith((".png", ".jpg", ".jpeg"))]
    files = files[:limit] if limit else files
    images = []
    for f, _ in files:
        with open(f, "rb") as fh:
            img = Image.open(fh).convert("RGB" if channels == 3 else "L")
        if resize:
            img = torchvision_resize(img, resize)
        if crop:
            img = torchvision_center_crop(img, crop)
        a = np.asarray(img)
        images.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    return np.stack(images), np.array([label for _, label in files], dtype=np.int64)


def read_data(args, channels=3):
    """-> images (n, C, H, W), labels, the path: what --data names, as hfc-eval reads it."""
    d, limit = args.data, args.limit
    if d.endswith(".npz"):
        z = np.load(d)
        x, y = read_npy_images(z["images"], args.layout), z["labels"]
    elif d.endswith(".npy"):
        x, y = read_npy_images(d, args.layout), np.load(args.labels)
    elif args.dataset == "mnist":
        img = os.path.join(d, "t10k-images-idx3-ubyte.gz") if os.path.isdir(d) else d
        if os.path.isdir(d) and not os.path.exists(img):
            img = img[:-3]
        x = read_idx(img)[:, None]
        y = read_idx(args.labels or img.replace("images-idx3", "labels-idx1"))
    elif args.dataset == "cifar10-c":
        x = np.load(os.path.join(d, args.corruption + ".npy"), mmap_mode="r")
        per = len(x) // 5
        first = (args.severity - 1) * per
        x = np.asarray(x[first:first + per]).transpose(0, 3, 1, 2)
        y = np.load(os.path.join(d, "labels.npy"))[first:first + per]
    elif args.dataset == "folder":
        x, y = read_folder(d, channels, args.resize, args.crop, limit)
    else:
        return read_cifar(d, limit, args.dataset, args.set)
    if limit:
        x, y = x[:limit], y[:limit]
    return np.asarray(x), np.asarray(y).astype(np.int64), d


def smooth_kernels(w, rho):
    """The paper's Eq. 3 (generateSmoothKernel): each (out, in) kernel of w
    (cout, cin, kh, kw) convolved with [[rho]*3, [rho, 1, rho], [rho]*3],
    mode 'same', boundary symmetric (scipy's 'symm' = numpy's 'symmetric')."""
    s = np.full((3, 3), rho)
    s[1, 1] = 1.0
    kh, kw = w.shape[2:]
    p = np.pad(w, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="symmetric")
    out = np.zeros_like(w)
    for a in range(3):  # s is symmetric, so correlation = convolution
        for b in range(3):
            out += s[a, b] * p[:, :, a:a + kh, b:b + kw]
    return out


def rescale_max(images):
    """The paper's td[i] = td[i] / np.max(td[i]) * 255 per image; images whose
    max is <= 0 are left as they are. -> (images, how many were left)."""
    out = images.copy()
    mx = images.reshape(len(images), -1).max(1)
    ok = mx > 0
    out[ok] = images[ok] / mx[ok, None, None, None] * 255
    return out, int((~ok).sum())


def evaluate(model, images, labels, radii, batch=500, split=paper_split, rescale=False):
    """-> {radius: [correct original, low, high]}; batch is also the batch of
    statistics when the model uses them."""
    counts = {r: [0, 0, 0] for r in radii}
    with torch.no_grad():
        for s in range(0, len(labels), batch):
            x = images[s:s + batch].astype(np.float64)
            y = torch.from_numpy(labels[s:s + batch])
            orig = (model(torch.from_numpy(x).float()).argmax(1) == y).sum().item()
            for r in radii:
                low, high = split(x, r)
                if rescale:
                    low, high = rescale_max(low)[0], rescale_max(high)[0]
                counts[r][0] += orig
                counts[r][1] += (model(torch.from_numpy(np.ascontiguousarray(low)).float()).argmax(1) == y).sum().item()
                counts[r][2] += (model(torch.from_numpy(np.ascontiguousarray(high)).float()).argmax(1) == y).sum().item()
    return counts


MASK64 = (1 << 64) - 1


def subcommand_parser(name, limit, description=None):
    """A subcommand's parser with what they all take: MODEL, --data, --limit."""
    ap = argparse.ArgumentParser(prog="reference.py " + name, description=description)
    ap.add_argument("model")
    ap.add_argument("--data", default=os.environ.get("HFC_DATA", "data/cifar-10-batches-bin"))
    ap.add_argument("--limit", type=int, default=limit)
    return ap


def splitmix64(z):
    """Steele et al.'s splitmix64 on numpy uint64 arrays (or ints)."""
    z = np.asarray(z, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform(seed, images, values):
    """hfc.h's hfc_uniform for every (image, value): (len(images), len(values)) in [0, 1)."""
    with np.errstate(over="ignore"):
        h = splitmix64(splitmix64(np.uint64(seed)) ^ np.asarray(images, np.uint64)[:, None])
        h = splitmix64(h ^ np.asarray(values, np.uint64)[None, :])
    return (h >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def attack(model, raw, labels, eps, pgd, steps, step, random_start, seed, first):
    """FGSM/PGD in [0, 1] pixels as hfc-eval attack does: -> (clean, adversarial) correct."""
    y = torch.from_numpy(labels)
    raw = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float32))
    with torch.no_grad():
        clean = (model(raw).argmax(1) == y).sum().item()
    x0 = raw / 255.0
    x = x0.clone()
    feps = torch.tensor(eps, dtype=torch.float32)
    if random_start:
        u = torch.from_numpy(uniform(seed, np.arange(first, first + len(labels)), np.arange(3072))
                             .astype(np.float32)).view(x.shape)
        x = torch.clamp(x0 + feps * (2.0 * u - 1.0), 0, 1)
    fstep = torch.tensor(step, dtype=torch.float32)
    for _ in range(steps):
        x.requires_grad_(True)
        loss = F.cross_entropy(model(x * 255.0), y, reduction="sum")
        g, = torch.autograd.grad(loss, x)
        with torch.no_grad():
            x = x + fstep * torch.sign(g)
            x = torch.max(torch.min(x, x0 + feps), x0 - feps).clamp(0, 1)
    with torch.no_grad():
        adv = (model(x * 255.0).argmax(1) == y).sum().item()
    return clean, adv


def main_attack(argv):
    ap = subcommand_parser("attack", 0, "FGSM/PGD as hfc-eval attack")
    ap.add_argument("--method", choices=["fgsm", "pgd"], default="pgd")
    ap.add_argument("--eps", default="0.03,0.06,0.09")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--step-size", type=float, default=0)
    ap.add_argument("--random-start", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--radius", default="")
    ap.add_argument("--mask", default="disc", choices=MASK_KINDS)
    ap.add_argument("--bn-stats", choices=["running", "batch"], default="running")
    ap.add_argument("--bn-batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    images, labels, path = read_cifar(args.data, args.limit)
    model = GraphModel(args.model, args.bn_stats == "batch").eval()
    pgd = args.method == "pgd"
    steps = args.steps if pgd else 1
    batch = args.bn_batch if args.bn_stats == "batch" else 200
    radii = parse_masks(args.radius, args.mask) if args.radius else [None]
    for eps in (float(e) for e in args.eps.split(",")):
        step = args.step_size or (eps / 4 if pgd else eps)
        for r in radii:
            names = ["clean", "adversarial"] + ([] if r is None else
                                                ["low_clean", "low_adversarial", "high_clean", "high_adversarial"])
            counts = [0] * len(names)
            for s in range(0, len(labels), batch):
                x = images[s:s + batch].astype(np.float64)
                versions = [x] if r is None else [x, *paper_split(x, r)]
                for v, raw in enumerate(versions):
                    c = attack(model, raw, labels[s:s + batch], eps, pgd, steps, step,
                               args.random_start, args.seed, s)
                    counts[2 * v] += c[0]
                    counts[2 * v + 1] += c[1]
            out = {"attack": args.method, "eps": eps, "steps": steps, "step_size": step,
                   "random_start": args.random_start, "images": len(labels)}
            if r is not None:
                out.update(mask_json(r))
            out["correct"] = dict(zip(names, counts))
            print(json.dumps(out))


def dct_matrix(n=32):
    """The orthonormal DCT-II: D[u, i] = c(u) cos(pi (2i + 1) u / 2n)."""
    u, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    d = np.cos(np.pi * (2 * i + 1) * u / (2 * n)) * np.sqrt(2.0 / n)
    d[0] *= np.sqrt(0.5)
    return d


def margins(model, raw, offset, block, max_iter=100, overshoot=0.02):
    """Subspace-constrained DeepFool ("Hold me tight!") for a batch of images
    (raw pixels): -> margins, NaN where not fooled within max_iter."""
    d = dct_matrix()[offset:offset + block]                # (K, 32)
    def project(w):                                        # S S' w and ||S' w||, per image
        coef = np.einsum("ui,bcij,vj->bcuv", d, w.astype(np.float64), d)
        return np.einsum("ui,bcuv,vj->bcij", d, coef, d), np.sqrt((coef ** 2).sum((1, 2, 3)))
    x0 = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float32)) / 255.0
    n = x0.shape[0]
    with torch.no_grad():
        label = model(x0 * 255.0).argmax(1)
    r = torch.zeros_like(x0)
    xi = x0.clone()
    done = np.zeros(n, dtype=int)
    for _ in range(max_iter):
        if (done != 0).all():
            break
        x = xi.clone().requires_grad_(True)
        f = model(x * 255.0)
        k_all = f.shape[1]
        grads = [torch.autograd.grad(f[:, k].sum(), x, retain_graph=True)[0].numpy() for k in range(k_all)]
        f = f.detach().numpy()
        step = np.zeros(x0.shape, dtype=np.float32)
        for b in range(n):
            if done[b]:
                continue
            k0 = int(label[b])
            best, pert, pnorm = None, np.inf, 0
            for k in range(k_all):
                if k == k0:
                    continue
                proj, norm = project((grads[k][b] - grads[k0][b])[None])
                pk = abs(float(f[b, k]) - float(f[b, k0])) / norm[0]
                if norm[0] > 0 and pk < pert:
                    best, pert, pnorm = proj[0], pk, norm[0]
            if not np.isfinite(pert):
                done[b] = 2
                continue
            step[b] = (max(pert, 1e-4) / pnorm * best).astype(np.float32)
        r = r + torch.from_numpy(step)
        xi = xi + torch.from_numpy(step)
        with torch.no_grad():
            pred = model((x0 + (1 + overshoot) * r) * 255.0).argmax(1).numpy()
        done[(done == 0) & (pred != label.numpy())] = 1
    out = ((1 + overshoot) * r.double()).flatten(1).norm(dim=1).numpy()
    out[done != 1] = np.nan
    return out


def main_margin(argv):
    ap = subcommand_parser("margin", 100, "DCT-subspace margins")
    ap.add_argument("--block", type=int, default=8)
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--overshoot", type=float, default=0.02)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    images, labels, path = read_cifar(args.data, args.limit)
    model = GraphModel(args.model).eval()
    subs = []
    for o in range(0, 32 - args.block + 1, args.stride):
        m = margins(model, images.astype(np.float64), o, args.block, args.max_iter, args.overshoot)
        ok = m[~np.isnan(m)]
        subs.append({"offset": o, "median": float(np.median(ok)) if len(ok) else None,
                     "q1": float(np.percentile(ok, 25)) if len(ok) else None,
                     "q3": float(np.percentile(ok, 75)) if len(ok) else None,
                     "not_fooled": int(np.isnan(m).sum()),
                     "margins": [None if np.isnan(v) else float(v) for v in m]})
    print(json.dumps({"experiment": "margin", "images": len(labels), "subspaces": subs}))


def fourier_basis(i, j, side=32):
    """The heat map's U for cell (i, j) (fftshift order), from the statement:
    Z = 0.5+0.5i at the pair's lexicographically smaller cell, 0.5-0.5i at its
    mirror (1 at a cell that is its own mirror), U = Re(ifft2(ifftshift(Z)))
    over its L2 norm."""
    m = ((side - i) % side, (side - j) % side)
    a = min((i, j), m)
    b = max((i, j), m)
    z = np.zeros((side, side), dtype=np.complex128)
    if a == b:
        z[a] = 1
    else:
        z[a] = 0.5 + 0.5j
        z[b] = 0.5 - 0.5j
    u = np.real(np.fft.ifft2(np.fft.ifftshift(z)))
    return u / np.linalg.norm(u), a


def heatmap_sign(seed, a, image, channel):
    """h = splitmix64(seed), then h = splitmix64(h ^ v) for v = i', j', image,
    channel; -1 if h is odd, else +1 (uint64 arithmetic wraps on purpose)."""
    with np.errstate(over="ignore"):
        h = splitmix64(np.uint64(seed))
        for v in (a[0], a[1], image, channel):
            h = splitmix64(h ^ np.uint64(v))
    return -1.0 if int(h) & 1 else 1.0


def main_heatmap(argv):
    ap = subcommand_parser("heatmap", 1000)
    ap.add_argument("--eps", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    images, labels, path = read_cifar(args.data, args.limit)
    model = GraphModel(args.model).eval()
    x = images.astype(np.float64) / 255.0
    y = torch.from_numpy(labels.astype(np.int64))
    with torch.no_grad():
        clean = (model(torch.from_numpy(x * 255).float()).argmax(1) != y).sum().item()
        err = np.zeros((32, 32))
        done = {}
        for i in range(32):
            for j in range(32):
                u, a = fourier_basis(i, j)
                if a not in done:
                    s = np.array([[heatmap_sign(args.seed, a, k, c) for c in range(3)]
                                  for k in range(len(labels))])
                    xp = np.clip(x + args.eps * s[:, :, None, None] * u[None, None], 0, 1)
                    done[a] = (model(torch.from_numpy(xp * 255).float()).argmax(1) != y).sum().item()
                err[i, j] = done[a] / len(labels)
    print(json.dumps({"experiment": "heatmap", "eps": args.eps, "seed": args.seed,
                      "images": len(labels), "clean_error": clean / len(labels),
                      "error": err.tolist(), "data": path}))


def twonn(x, resamples=5, seed=0):
    """TwoNN as README's "Intrinsic dimension" states it, in float64 with
    exact distances: -> (id, sd, points)."""
    x = np.asarray(x, dtype=np.float64)

    def estimate(points):
        sq = (points ** 2).sum(1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * points @ points.T, 0)
        np.fill_diagonal(d2, np.inf)
        near = np.argsort(d2, axis=1)[:, :2]
        r = np.sqrt(((points[:, None, :] - points[near]) ** 2).sum(2))  # exact, (n, 2)
        r = np.sort(r, axis=1)
        keep = (r[:, 0] > 0) & (r[:, 0] != r[:, 1])
        mu = np.sort(r[keep, 1] / r[keep, 0])
        n = len(mu)
        fit = int(np.floor(0.9 * n))
        xs = np.log(mu[:fit])
        ys = -np.log(1 - np.arange(fit) / n)
        return float((xs * ys).sum() / (xs * xs).sum()), n

    value, points = estimate(x)
    m = int(np.floor(0.9 * len(x)))
    subs = []
    with np.errstate(over="ignore"):
        for t in range(resamples):
            h = splitmix64(np.uint64(seed) ^ np.uint64(t))
            keys = splitmix64(h ^ np.arange(len(x), dtype=np.uint64))
            subs.append(estimate(x[np.lexsort((np.arange(len(x)), keys))[:m]])[0])
    return value, float(np.std(subs)) if subs else 0.0, points


def main_id(argv):
    ap = subcommand_parser("id", 2000)
    ap.add_argument("--layers", required=True, help="comma-separated node names ('input' too)")
    ap.add_argument("--version", default="original", choices=["original", "low", "high"])
    ap.add_argument("--radius", type=float, default=4.0)
    ap.add_argument("--resamples", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    images, labels, path = read_cifar(args.data, args.limit)
    x = images.astype(np.float64)
    if args.version != "original":
        x = paper_split(x, args.radius)[0 if args.version == "low" else 1]
    model = GraphModel(args.model).eval()
    with torch.no_grad():
        v = model.values(torch.from_numpy(x).float())
    for name in args.layers.split(","):
        a = v[name].flatten(1).numpy()
        value, sd, points = twonn(a, args.resamples, args.seed)
        print(json.dumps({"experiment": "id", "layer": name, "dim": a.shape[1], "id": value,
                          "sd": sd, "points": points, "images": len(labels),
                          "version": args.version}))


class Float64Model(GraphModel):
    """The model file run in float64 throughout."""

    def __init__(self, path):
        super().__init__(path)
        self.t = {k: v.double() for k, v in self.t.items()}
        self.mean, self.std = self.mean.double(), self.std.double()


def upsample_box(sim_map, h, w, slack=0.0):
    """A similarity map (mh, mw) to the image (h x w, bilinear, half-pixel
    centres), and the bounding box [top, left, bottom, right) of the pixels
    at or above its 95th percentile (numpy's linear one); slack lowers
    (> 0) or raises (< 0) that threshold by slack times the map's range."""
    up = F.interpolate(sim_map[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
    t = min(np.percentile(up, 95) - slack * (up.max() - up.min()), up.max())
    rows, cols = np.nonzero(up >= t)
    return up, [int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1]


def prototype_parts(model, pixels):
    """(the prototype node, its distance maps (n, m, H, W) in float64, logits)."""
    node = next(n for n in model.header["nodes"] if n["op"] == "prototype")
    with torch.no_grad():
        v = model.values(torch.from_numpy(pixels).double())
    d = prototype_distances(v[node["inputs"][0]], model.t[node["prototypes"]])
    return node, d, v[model.header["output"]].flatten(1)


def prototype_classes(model, node):
    """Each prototype's class: the row of the last layer's largest weight on it."""
    last = next((n for n in model.header["nodes"] if n["op"] == "linear" and n["inputs"][0] == node["name"]), None)
    if last is None:
        return None
    return model.t[last["weight"]].argmax(0).numpy()


def main_protos(argv):
    """hfc-eval protos in float64: per version the top K, accuracy and per
    prototype statistics; --push: each prototype's nearest patch."""
    ap = subcommand_parser("protos", 0)
    ap.add_argument("--radius", type=float, default=4.0)
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--images", default="")
    ap.add_argument("--push", action="store_true")
    args = ap.parse_args(argv)
    images, labels, _ = read_cifar(args.data, args.limit)
    model = Float64Model(args.model).eval()
    x = images.astype(np.float64)
    if args.push:
        return print(json.dumps(push(model, x, labels)))
    low, high = paper_split(x, args.radius)
    out = {"images": len(labels), "versions": {}}
    listed = [int(i) for i in args.images.split(",") if i]
    for name, pixels in (("original", x), ("low", low), ("high", high)):
        node, d, logits = prototype_parts(model, pixels)
        mind = d.flatten(2).min(2).values
        sim = similarity(node, mind).numpy()
        order = np.lexsort((np.arange(sim.shape[1])[None].repeat(len(sim), 0), -sim), axis=1)[:, :args.top]
        rate = np.zeros(sim.shape[1])
        for row in order:
            rate[row] += 1
        version = {"correct": int((logits.argmax(1).numpy() == labels).sum()),
                   "mean_similarity": sim.mean(0).tolist(), "top_rate": (rate / len(labels)).tolist(),
                   "explained": {}}
        for i in listed:
            hits = []
            for j in order[i]:
                flat = d[i, j].flatten()
                q = int(flat.argmin())
                mh, mw = d.shape[2:]
                smap = similarity(node, d[i, j])
                _, box = upsample_box(smap, *x.shape[2:])
                # pixels within 1e-5 of the map's range from the threshold may fall either way
                _, loose = upsample_box(smap, *x.shape[2:], 1e-5)
                _, tight = upsample_box(smap, *x.shape[2:], -1e-5)
                hits.append({"prototype": int(j), "similarity": float(sim[i, j]),
                             "distance": float(flat[q]), "position": [q // mw, q % mw], "box": box,
                             "box_loose": loose, "box_tight": tight})
            version["explained"][str(i)] = {"pred": int(logits[i].argmax()), "top": hits,
                                            "similarities": sim[i].tolist()}
        out["versions"][name] = version
    print(json.dumps(out))


def push(model, x, labels, batch=200):
    """Per prototype, the image (of its class, when the last layer tells it)
    and position nearest to it: the first of equals in data order, positions
    row-major; with the runner-up's distance (near-ties may round either way)."""
    ds, node = [], None
    for start in range(0, len(x), batch):
        node, d, _ = prototype_parts(model, x[start:start + batch])
        ds.append(d)
    d = torch.cat(ds).numpy()                                 # n, m, H, W
    classes = prototype_classes(model, node)
    n, m, mh, mw = d.shape
    out = []
    for j in range(m):
        eligible = np.arange(n) if classes is None else np.nonzero(labels == classes[j])[0]
        if not len(eligible):
            out.append({"prototype": j, "image": None})
            continue
        flat = d[eligible, j].reshape(-1)
        k = int(flat.argmin())
        two = np.partition(flat, 1)[:2] if flat.size > 1 else [flat[0], np.inf]
        out.append({"prototype": j, "image": int(eligible[k // (mh * mw)]),
                    "position": [k % (mh * mw) // mw, k % mw], "distance": float(flat[k]),
                    "runner_up": float(two[1])})
    return {"prototypes": out}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "protos":
        return main_protos(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "id":
        return main_id(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "heatmap":
        return main_heatmap(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "attack":
        return main_attack(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "margin":
        return main_margin(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--data", default=os.environ.get("HFC_DATA", "data/cifar-10-batches-bin"))
    ap.add_argument("--radius", default="4,8,12,16")
    ap.add_argument("--mask", default="disc", choices=MASK_KINDS)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--dataset", default="cifar10",
                    choices=sorted(CIFAR_FILES) + ["mnist", "folder", "cifar10-c"])
    ap.add_argument("--labels", default="")
    ap.add_argument("--layout", default="nhwc", choices=["nhwc", "nchw"])
    ap.add_argument("--resize", type=int, default=0)
    ap.add_argument("--crop", type=int, default=0)
    ap.add_argument("--corruption", default="")
    ap.add_argument("--severity", type=int, default=1)
    ap.add_argument("--set", default="test", choices=["test", "train"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--bn-stats", choices=["running", "batch"], default="running")
    ap.add_argument("--bn-batch", type=int, default=100)
    ap.add_argument("--rescale", choices=["none", "max"], default="none")
    ap.add_argument("--smooth", type=float, default=0.0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    radii = parse_masks(args.radius, args.mask)
    t0 = time.time()
    model = GraphModel(args.model, args.bn_stats == "batch", args.smooth).eval()
    images, labels, path = read_data(args, model.header["input"]["channels"])
    counts = evaluate(model, images, labels, radii, rescale=args.rescale == "max",
                      batch=args.bn_batch if args.bn_stats == "batch" else 500)
    for r in radii:
        c = counts[r]
        print(json.dumps({**mask_json(r), "images": len(labels),
                          "accuracy": {"original": c[0] / len(labels), "low": c[1] / len(labels),
                                       "high": c[2] / len(labels)},
                          "correct": {"original": c[0], "low": c[1], "high": c[2]},
                          "data": path, "seconds": round(time.time() - t0, 3)}))


if __name__ == "__main__":
    main()
