#!/usr/bin/python3
"""Generate the reference files the C tests compare against (into DIR).

  split.ref           random images, radii, and the paper's numpy low/high
  FAMILY.bin          a model with random weights and random BN statistics,
                      exported with tools/export_pytorch.py
  FAMILY.in / .out    random raw-pixel inputs and PyTorch's logits for them
  tiny.cifar          a small CIFAR-format file (random pixels and labels)
  tiny100/            CIFAR-100-format test.bin (120 images) and train.bin (60),
                      fine_label_names.txt (names "fine00" ... "fine99")
  vgg100.bin          a 100-class VGG (random weights) for them
  zoo-NAME.bin/.in/.out  every architecture of tools/zoo/models.py, as FAMILY
  NAME.onnx, NAME.onnx.bin  the zoo and a few others by the ONNX route:
                      torch.onnx.export, then tools/onnx_to_hfc.py (same .in/.out)

Binary layouts (little-endian):
  masks.ref: the same layout for every mask kind: f64 (kind, r, outer) per mask
      in place of radii (kind: 0 disc, 1 square, 2 gaussian, 3 band)
  split.ref: u32 n, u32 n_radii, f64 radii[n_radii], f32 images[n,3,32,32],
             then per radius f64 low[n,3,32,32], f64 high[n,3,32,32]
  .in:  u32 n, u32 3072, f32 pixels[n,3,32,32]
  .out: u32 n, u32 k,    f32 logits[n,k]
"""

import copy
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import export_pytorch  # noqa: E402
import hfc_models  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "..", "tools", "zoo"))
import models as zoo  # noqa: E402
import onnx_to_hfc  # noqa: E402
from reference import MASK_KINDS, GraphModel, paper_split, prototype_distances  # noqa: E402

SPLIT_RADII = [0, 1, 4, 8.5, 12, 16, 16.5, 22.5, 23, 30]


class Misc(nn.Module):
    """Covers the rest of the supported operations and spellings."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 5, stride=2, padding=2)           # 16x16
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)             # 8x8
        self.c2 = nn.Conv2d(8, 8, 1)
        self.bn = nn.BatchNorm2d(8, eps=1e-3)
        self.c3 = nn.Conv2d(8, 8, (3, 1), padding=(1, 0), bias=False)
        self.drop = nn.Dropout(0.5)
        self.id = nn.Identity()
        self.fc = nn.Linear(8 * 3 * 3, 10)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        y = self.pool(x)
        y = F.avg_pool2d(y, 2, 1, 1, count_include_pad=False)       # 9x9
        z = self.bn(self.c2(y))
        y = torch.add(y, z).relu()
        y = nn.functional.relu(self.c3(y))
        y = F.max_pool2d(y, 3, 3, 1)                                 # 3x3
        y = self.drop(self.id(y))
        return self.fc(y.flatten(1))


class Convs(nn.Module):
    """Every convolution algorithm the engine picks (src/engine/plan.c), with the
    awkward shapes: channel counts that are not multiples of 16, odd sizes,
    strides, kernels other than 3x3."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 5, stride=2, padding=2)   # 16x16, direct (3 inputs)
        self.c2 = nn.Conv2d(16, 48, 3, padding=1)            # Winograd, 48 outputs
        self.bn = nn.BatchNorm2d(48)
        self.c3 = nn.Conv2d(48, 24, 1)                       # im2col + SGEMM (24 outputs)
        self.c4 = nn.Conv2d(24, 80, 3, padding=1)            # Winograd, 24 inputs
        self.c5 = nn.Conv2d(80, 32, 3, stride=2, padding=1)  # 8x8, direct, stride 2
        self.c6 = nn.Conv2d(32, 32, 3, padding=1)            # 7x7: direct (odd size)
        self.c7 = nn.Conv2d(32, 16, 3, bias=False)           # 5x5, direct, no padding
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.bn(self.c2(x)))
        x = self.c4(self.c3(x))
        x = torch.relu(self.c5(x))
        x = F.max_pool2d(x, 2, 1)
        x = self.c7(torch.relu(self.c6(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Modern(nn.Module):
    """The layers torchvision's newer architectures brought (#26): ConvNeXt's
    channels-last LayerNorm (module and F.layer_norm with parameters), Linear
    per pixel, GELU and layer scale; GoogLeNet's ceil-mode max pool;
    DenseNet's long concat; adaptive pools to sizes above 1 (here dividing
    the map, as torch.onnx needs; Adaptive has the overlapping windows);
    LayerNorm of flat features."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 4, stride=4)                     # 8x8
        self.ln_w = nn.Parameter(torch.ones(16))
        self.ln_b = nn.Parameter(torch.zeros(16))
        self.dw = nn.Conv2d(16, 16, 7, padding=3, groups=16)
        self.ln = nn.LayerNorm(16, eps=1e-6)
        self.up = nn.Linear(16, 64)
        self.gelu = nn.GELU()
        self.down = nn.Linear(64, 16)
        self.scale = nn.Parameter(torch.full((16, 1, 1), 0.5))
        self.branches = nn.ModuleList(nn.Conv2d(16, 2, 1) for _ in range(12))
        self.ln_flat = nn.LayerNorm(24 * 4 + 24 * 4)
        self.fc = nn.Linear(24 * 4 + 24 * 4, 10)

    def forward(self, x):
        x = self.stem(x).permute(0, 2, 3, 1)
        x = F.layer_norm(x, (16,), self.ln_w, self.ln_b, 1e-6).permute(0, 3, 1, 2)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.down(self.gelu(self.up(self.ln(y)))).permute(0, 3, 1, 2)
        x = x + self.scale * y
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)                      # 4x4
        x = torch.cat([b(x) for b in self.branches], 1)                # 12 inputs
        a = F.adaptive_avg_pool2d(x, 2).flatten(1)
        m = F.adaptive_max_pool2d(x, 2).flatten(1)
        return self.fc(self.ln_flat(torch.cat([a, m], 1)))


class Adaptive(nn.Module):
    """Adaptive pools whose windows overlap or repeat (PyTorch route only:
    torch.onnx exports only sizes that divide the map); a linear layer large
    enough for the tiled product (src/engine/steps.c, tiled_linear), its
    ReLU fused."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)             # 16x16
        self.c2 = nn.Conv2d(8, 8, 3, stride=3)                        # 5x5
        self.hidden = nn.Linear(8 * 9 + 8 * 4 + 8 * 49, 200)
        self.fc = nn.Linear(200, 10)

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        a = F.adaptive_avg_pool2d(x, 3).flatten(1)                     # 5 -> 3: overlapping
        m = nn.functional.adaptive_max_pool2d(x, (2, 2)).flatten(1)    # 5 -> 2: overlapping
        r = F.adaptive_avg_pool2d(x, 7).flatten(1)                     # 5 -> 7: repeated
        return self.fc(torch.relu(self.hidden(torch.cat([a, m, r], 1))))


class SmallMaps(nn.Module):
    """3x3 convs on 2x2 and 1x1 maps with 128 channels, where most taps read
    the padding: their im2col product runs a pixel at a time over the taps
    inside (src/kernels/conv_simd.h, product_inside_taps; the backward's
    hfc_dcol_inside_taps), with a folded BatchNorm, a residual and a ReLU
    fused, a conv without bias, and a stride-2 conv from 2x2 to 1x1."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 128, 3, stride=2, padding=1)           # 16x16
        self.c2 = nn.Conv2d(128, 128, 3, padding=1, bias=False)       # 2x2 from here
        self.bn = nn.BatchNorm2d(128)
        self.c3 = nn.Conv2d(128, 128, 3, padding=1, bias=False)
        self.c4 = nn.Conv2d(128, 128, 3, stride=2, padding=1)         # 1x1
        self.c5 = nn.Conv2d(128, 128, 3, padding=1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        x = F.avg_pool2d(torch.relu(self.c1(x)), 8)                    # 2x2
        x = torch.relu(x + self.c3(torch.relu(self.bn(self.c2(x)))))
        x = torch.relu(self.c5(torch.relu(self.c4(x))))
        return self.fc(x.flatten(1))


def randomize(model, gen):
    """Random weights everywhere and random BN running statistics."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
            elif hasattr(m, "prototype_vectors"):  # ProtoPNet: its own generator, the others' unchanged
                m.prototype_vectors.copy_(torch.rand(m.prototype_vectors.shape,
                                                     generator=torch.Generator().manual_seed(7)))
            elif isinstance(m, Modern):  # LayerNorms and the layer scale
                for p in (m.ln_w, m.ln.weight, m.ln_flat.weight, m.scale):
                    p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
                for p in (m.ln_b, m.ln.bias, m.ln_flat.bias):
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
        for m in model.modules():
            if hasattr(m, "prototype_vectors"):  # a ProtoPNet's sigmoid inputs to about +-10, as
                # trained ones (at +-150 float32's gradients lose 4 digits, PyTorch's too)
                last = [c for c in m.add_on_layers.modules() if isinstance(c, nn.Conv2d)][-1]
                last.weight.mul_(0.05)
                if last.bias is not None:
                    last.bias.mul_(0.05)
    return model.eval()


class _int_pool_sizes:
    """torch 1.13's ONNX tracer hands F.avg_pool2d(x, x.size(2)) a tensor for
    the size, which the builtin rejects: give it the number while exporting."""

    def __enter__(self):
        self.orig = F.avg_pool2d

        def avg_pool2d(x, kernel_size, *a, **kw):
            if isinstance(kernel_size, torch.Tensor):
                kernel_size = int(kernel_size)
            return self.orig(x, kernel_size, *a, **kw)
        F.avg_pool2d = avg_pool2d

    def __exit__(self, *exc):
        F.avg_pool2d = self.orig


def onnx_route(model, stem, mean, std, opset=13):
    """STEM.onnx by torch.onnx.export, then STEM.onnx.bin by tools/onnx_to_hfc.py."""
    import warnings
    with warnings.catch_warnings(), _int_pool_sizes():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, 32, 32), stem + ".onnx", opset_version=opset)
    onnx_to_hfc.convert(stem + ".onnx", stem + ".onnx.bin", mean=mean, std=std,
                        classes=hfc_models.CIFAR10_CLASSES, metadata={"test": os.path.basename(stem)})


class _KinkWatch(GraphModel):
    """The model file in float64, noting per image how close (relative to the
    layer's largest value) any value comes to
    a kink of a piecewise-linear layer (ReLU at 0, ReLU6 at 0 and 6,
    hardsigmoid/hardswish at -3 and 3) or to a near-tie of a max-pool window:
    there, float32 rounding may take the other branch, and a gradient that
    differs there is no bug."""

    def __init__(self, path, batch_stats):
        super().__init__(path, batch_stats)
        self.t = {k: v.double() for k, v in self.t.items()}
        self.mean, self.std = self.mean.double(), self.std.double()

    def forward(self, pixels):
        n = pixels.shape[0]
        self.margin = torch.full((n,), float("inf"), dtype=torch.float64)
        kinks = {"relu": (0,), "relu6": (0, 6), "hardsigmoid": (-3, 3), "hardswish": (-3, 3)}
        v = {"input": (pixels.double() * self.scale - self.mean) / self.std}
        for node in self.header["nodes"]:
            x = v[node["inputs"][0]]
            size = x.abs().flatten(1).max(1).values  # margins relative to the layer's values
            for k in kinks.get(node["op"], ()):
                self.margin = torch.minimum(self.margin, (x - k).abs().flatten(1).min(1).values / size)
            if node["op"] == "prototype":  # the nearest position: two near-equal distances
                d = prototype_distances(x, self.t[node["prototypes"]]).flatten(2)
                top = (-d).topk(2, dim=2).values
                self.margin = torch.minimum(self.margin, (top[:, :, 0] - top[:, :, 1]).abs().min(1).values
                                            / d.flatten(1).max(1).values)
            if node["op"] == "maxpool2d":
                kh, kw = node["kernel"]
                p = F.unfold(F.pad(x, [node["padding"][1]] * 2 + [node["padding"][0]] * 2,
                                   value=-1e30), (kh, kw), stride=node.get("stride", [kh, kw]))
                top = p.view(n, x.shape[1], kh * kw, -1).topk(2, dim=2).values
                gap = top[:, :, 0] - top[:, :, 1]
                gap = torch.where((gap == 0) & (top[:, :, 0] == 0), torch.inf, gap)  # exact zeros tie alike
                self.margin = torch.minimum(self.margin, gap.flatten(1).min(1).values / size)
            v[node["name"]] = self.step(node, x, v)
        return v[self.header["output"]].flatten(1)


def write_grad(model, path, pixels, mean, std, gen, model_file, batch_stats=False):
    """u32 n, u32 k, f32 seed (n, k), f32 d sum(logits * seed) / d pixels (n, 3072),
    f32 near_kink (n): 1 where the image comes within 3e-6 (relative to the layer's largest
    value) of a kink (_KinkWatch)."""
    x = pixels.clone().requires_grad_(True)
    norm = (x / 255.0 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    logits = first(model(norm))
    seed = torch.randn(logits.shape, generator=gen)
    (logits * seed).sum().backward()
    watch = _KinkWatch(model_file, batch_stats)
    with torch.no_grad():
        watch(pixels)
    near = (watch.margin < 3e-6).numpy().astype("<f4")
    write(path, list(logits.shape), seed.numpy().astype("<f4"), x.grad.numpy().astype("<f4"), near)


def first(out):
    """The logits of a model that returns a tuple (ProtoPNet: (logits, min_distances))."""
    return out[0] if isinstance(out, tuple) else out


def write(path, header, *arrays):
    with open(path, "wb") as f:
        f.write(np.asarray(header, dtype="<u4").tobytes())
        for a in arrays:
            f.write(np.ascontiguousarray(a).tobytes())


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1)
    gen = torch.Generator().manual_seed(1)

    images = rng.integers(0, 256, size=(3, 3, 32, 32)).astype(np.float64)
    images[2] = rng.uniform(0, 255, size=(3, 32, 32))  # non-integer values too
    parts = [np.asarray(SPLIT_RADII, "<f8"), images.astype("<f4")]
    for r in SPLIT_RADII:
        low, high = paper_split(images, r)
        parts += [low.astype("<f8"), high.astype("<f8")]
    write(os.path.join(out, "split.ref"), [len(images), len(SPLIT_RADII)], *parts)

    # Every mask kind (disc, square, gaussian, band as codes 0..3) by numpy's FFT.
    masks = [(0, 4, 0), (1, 4, 0), (1, 8.5, 0), (1, 16, 0), (1, 17, 0), (2, 2, 0), (2, 6.5, 0),
             (3, 0, 4), (3, 4, 8), (3, 8, 12.5), (3, 16, 30)]
    parts = [np.asarray(masks, "<f8"), images.astype("<f4")]
    for kind, r, outer in masks:
        low, high = paper_split(images, (MASK_KINDS[kind], r, outer))
        parts += [low.astype("<f8"), high.astype("<f8")]
    write(os.path.join(out, "masks.ref"), [len(images), len(masks)], *parts)

    models = {
        "preact": hfc_models.PreActResNet(bn=True),
        "preact-nobn": hfc_models.PreActResNet(bn=False),
        "resnet20": hfc_models.ResNet20(),
        "resnet18": hfc_models.ResNet18(),
        "vgg": hfc_models.VGG(bn=True),
        "vgg-nobn": hfc_models.VGG(bn=False),
        "misc": Misc(),
        "misc-f16": Misc(),  # weights stored as f16
        "convs": Convs(),
    }
    models.update({"zoo-" + name: ctor() for name, (ctor, _) in zoo.ZOO.items()})
    if os.environ.get("HFC_FULL"):
        models.update({"zoo-" + name: ctor() for name, ctor in zoo.ZOO_FULL.items()})
    # last: the random weights of the models above stay what they were before these came
    models.update({"paper": hfc_models.PaperResNet(bn=True), "paper-nobn": hfc_models.PaperResNet(bn=False)})
    models.update({"modern": Modern(), "adaptive": Adaptive(), "small-maps": SmallMaps()})
    pixels = torch.from_numpy(rng.uniform(0, 255, size=(20, 3, 32, 32)).astype(np.float32))  # 3 engine groups
    mean, std = hfc_models.CIFAR10_MEAN, hfc_models.CIFAR10_STD
    norm = (pixels / 255.0 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    for name, model in models.items():
        randomize(model, gen)
        dtype = "f16" if name.endswith("-f16") else "f32"
        if dtype == "f16":  # the reference sees the rounded weights the file holds
            with torch.no_grad():
                for t in list(model.parameters()) + list(model.buffers()):
                    if t.is_floating_point():
                        t.copy_(t.half().float())
        export_pytorch.export(model, os.path.join(out, name + ".bin"), mean=mean, std=std,
                              classes=hfc_models.CIFAR10_CLASSES, metadata={"test": name},
                              dtype=dtype)
        with torch.no_grad():
            logits = first(model(norm)).numpy().astype("<f4")
        write(os.path.join(out, name + ".in"), [len(pixels), 3072], pixels.numpy().astype("<f4"))
        write(os.path.join(out, name + ".out"), list(logits.shape), logits)
        bin_path = os.path.join(out, name + ".bin")
        write_grad(model, os.path.join(out, name + ".grad"), pixels, mean, std, gen, bin_path)
        if name == "preact":  # batch statistics over the 20 images: training-mode BatchNorm
            write_grad(copy.deepcopy(model).train(), os.path.join(out, name + ".gradbn"), pixels,
                       mean, std, gen, bin_path, batch_stats=True)
        if name.startswith("zoo-") or name in ("preact", "resnet18", "vgg-nobn", "misc", "modern"):
            onnx_route(model, os.path.join(out, name), mean, std)
        if name == "modern":  # opset 17: LayerNormalization as one node
            onnx_route(model, os.path.join(out, "modern17"), mean, std, opset=17)
            for ext in (".in", ".out"):
                shutil.copyfile(os.path.join(out, name + ext), os.path.join(out, "modern17" + ext))

    n = 40
    labels = np.arange(n, dtype=np.uint8) % 10
    rec = np.concatenate([labels[:, None], rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)], 1)
    rec.astype(np.uint8).tofile(os.path.join(out, "tiny.cifar"))

    # CIFAR-100: coarse label, fine label, pixels; the coarse label is fine // 5.
    d100 = os.path.join(out, "tiny100")
    os.makedirs(d100, exist_ok=True)
    for name, n in (("test.bin", 120), ("train.bin", 60)):
        fine = (np.arange(n) * 7 % 100).astype(np.uint8)
        rec = np.concatenate([(fine // 5)[:, None], fine[:, None],
                              rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)], 1)
        rec.astype(np.uint8).tofile(os.path.join(d100, name))
    with open(os.path.join(d100, "fine_label_names.txt"), "w") as f:
        f.write("".join("fine%02d\n" % i for i in range(100)))
    model = hfc_models.VGG(bn=True, num_classes=100)
    randomize(model, gen)
    export_pytorch.export(model, os.path.join(out, "vgg100.bin"), mean=mean, std=std,
                          classes=["class%02d" % i for i in range(100)], metadata={"test": "vgg100"})


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/tests/ref")
