#!/usr/bin/python3
"""hfc-eval against PyTorch CPU on the same machine, model, images and
thread count, in one run. Prints each ratio on its own line.

  bench/run [--model M] [--data DIR] [--images N] [--threads T] [--reps R]
            [--openblas-coretype NAME]

(a) end to end: hfc-eval (load, split, three forward passes, JSON) against the
    same job in PyTorch (torch.fft split, the equivalent nn.Module, no_grad,
    the best of a few batch sizes);
(b) the split alone: hfc's split against the paper's numpy code and
    against torch.fft;
(c) the engine's GFLOP/s (flops of a direct convolution, so an effective
    rate where Winograd does fewer) against the SGEMM peak of the same BLAS;
(d) peak RSS of a full run, and the split's share of an 8-radius sweep;
(e) FGSM and PGD-10 against PyTorch autograd, the backward's GFLOP/s against
    the forward's, the margin (block 8, stride 2, 100 images) against the same
    DeepFool in PyTorch autograd; (f) --bn-stats batch's cost,
(g) the Fourier heat map's forward passes per second, (h) id's time.
--zoo instead: per architecture of the zoo, hfc-eval end to end against
PyTorch CPU and ONNX Runtime (bench/ort_run.js), `zoo NAME: speedup ...`;
tv-NAME are torchvision's own definitions (ImageNet shapes, 10 classes);
--size S runs them on the test images upsampled to S x S (bilinear).
--gradients instead: only (e), also on ResNet-18 and VGG-16 of the zoo.
--protos instead: `hfc-eval protos` on a prototype network (default
data/models/protopnet-vgg-bn.bin, 1,000 images) against a plain evaluation
of the same model and images (radius 4 both), and the push over the 50,000
training images: its time and peak RSS against a plain evaluation's.
--sources instead: the split at 224 x 224 against numpy's np.fft route and
torch.fft, and reading a JPEG folder (decode, Resize, CenterCrop) against
PIL with torchvision's transforms' arithmetic in a DataLoader of 2 workers.
--isa avx2|generic runs hfc-eval on a lower instruction set (HFC_ISA) and
holds PyTorch to the same level (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY), as
a CPU without the higher one would; --peers-native leaves PyTorch on its own
choice. ONNX Runtime is held to AVX2 for --isa avx2 by build/avx2_only.so
(bench/avx2_only.c: CPUID without AVX-512); for generic it runs the CPU's best.
Medians over --reps repetitions; (a) alternates the two sides.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import export_pytorch  # noqa: E402
import hfc_models  # noqa: E402
from reference import paper_split, read_cifar, torch_split  # noqa: E402


def median_time(fn, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# What a CPU without AVX-512 (or without AVX2) would make the peers run.
# oneDNN (PyTorch's convolutions) reads ONEDNN_MAX_CPU_ISA at its first
# primitive, ATen's vectorised loops read ATEN_CPU_CAPABILITY at its first
# dispatch: both come after this. ONNX Runtime's MLAS has no such setting:
# for avx2 it runs with build/avx2_only.so preloaded, which hides AVX-512
# from CPUID (node without V8's WebAssembly trap handler, which would take
# the SIGSEGV the shim needs).
PEER_LIMITS = {"avx2": ("AVX2", "avx2"), "generic": ("SSE41", "default")}
ORT_HIDE_AVX512 = os.path.join(ROOT, "build", "avx2_only.so")
ORT_ENV = {}  # set by restrict_peers: what node runs ONNX Runtime with


def restrict_peers(isa, native):
    """Hold PyTorch (and for avx2 ONNX Runtime) to --isa's level (not for
    avx512 or --peers-native); return a line saying what each peer runs."""
    held = isa and isa != "avx512" and not native
    if held:
        os.environ["ONEDNN_MAX_CPU_ISA"], os.environ["ATEN_CPU_CAPABILITY"] = PEER_LIMITS[isa]
    aten = [line.split(":")[1].strip() for line in torch.__config__.show().splitlines()
            if "CPU capability usage" in line]  # fixes ATen's choice from here on
    line = (f"pytorch: oneDNN {'held to ' + os.environ['ONEDNN_MAX_CPU_ISA'] if held else 'its best'}, "
            f"ATen {aten[0] if aten else '?'}")
    if held and isa == "avx2":
        ORT_ENV["LD_PRELOAD"] = ORT_HIDE_AVX512
        return line + "; onnxruntime: held to AVX2 (CPUID without AVX-512, bench/avx2_only.c)"
    return line + "; onnxruntime: the CPU's best (MLAS has no setting to lower it)"


def torch_job(model, images, labels, radius, batch, mean, std):
    """The whole experiment in PyTorch: split with torch.fft, three forward passes."""
    correct = [0, 0, 0]
    with torch.no_grad():
        for s in range(0, len(labels), batch):
            x = torch.from_numpy(images[s:s + batch]).float()
            y = torch.from_numpy(labels[s:s + batch])
            low, high = torch_split(x, radius)
            for k, v in enumerate((x, low, high)):
                logits = model((v / 255.0 - mean) / std)
                correct[k] += (logits.argmax(1) == y).sum().item()
    return correct


def attack_torch(model, images, labels, eps, steps, step, mean, std, batch=250):
    """FGSM/PGD as hfc-eval attack does (no random start), by PyTorch autograd
    on the nn.Module, with the clean accuracy hfc-eval reports beside it:
    -> (clean, adversarial) correct counts."""
    correct = clean = 0
    for s in range(0, len(labels), batch):
        x0 = torch.from_numpy(images[s:s + batch].astype(np.float32)) / 255.0
        y = torch.from_numpy(labels[s:s + batch])
        with torch.no_grad():
            clean += (model((x0 - mean) / std).argmax(1) == y).sum().item()
        x = x0.clone()
        for _ in range(steps):
            x.requires_grad_(True)
            loss = F.cross_entropy(model((x - mean) / std), y, reduction="sum")
            g, = torch.autograd.grad(loss, x)
            with torch.no_grad():
                x = torch.max(torch.min(x + step * torch.sign(g), x0 + eps), x0 - eps).clamp(0, 1)
        with torch.no_grad():
            correct += (model((x - mean) / std).argmax(1) == y).sum().item()
    return clean, correct


def dct_matrix(n):
    """The orthonormal DCT-II matrix, D[u, i] = c(u) cos(pi (2i + 1) u / 2n)."""
    u, i = np.arange(n)[:, None], np.arange(n)[None, :]
    return np.sqrt(np.where(u == 0, 1.0, 2.0) / n) * np.cos(np.pi * (2 * i + 1) * u / (2 * n))


def margin_torch(model, images, block, stride, max_iter, overshoot, mean, std):
    """The margin peer: subspace-constrained DeepFool as the "Hold me tight!"
    code runs it, image by image: every logit's gradient by autograd, each
    difference projected onto the K x K DCT subspace (per channel, Do w Do'),
    the step to the nearest linearised boundary, fooled when the prediction
    at x0 + (1 + overshoot) r changes; -> (subspaces, images) margins, NaN
    where not fooled within max_iter."""
    side = images.shape[-1]
    D = torch.from_numpy(dct_matrix(side)).float()
    offsets = list(range(0, side - block + 1, stride))
    out = np.full((len(offsets), len(images)), np.nan)
    for si, o in enumerate(offsets):
        Do = D[o:o + block]
        for b in range(len(images)):
            x0 = torch.from_numpy(images[b:b + 1].astype(np.float32)) / 255.0
            with torch.no_grad():
                k0 = model((x0 - mean) / std).argmax(1).item()
            r, x = torch.zeros_like(x0), x0.clone()
            for _ in range(max_iter):
                x.requires_grad_(True)
                f = model((x - mean) / std)[0]
                g = [torch.autograd.grad(f[k], x, retain_graph=True)[0][0] for k in range(f.numel())]
                f = f.detach()
                best, pert, bnorm = None, float("inf"), 0.0
                for k in range(f.numel()):
                    if k == k0:
                        continue
                    coef = Do @ (g[k] - g[k0]) @ Do.T
                    norm = coef.norm().item()
                    pk = abs((f[k] - f[k0]).item()) / norm if norm > 0 else float("inf")
                    if pk < pert:
                        best, pert, bnorm = coef, pk, norm
                if best is None:
                    break
                step = (max(pert, 1e-4) / bnorm) * (Do.T @ best @ Do)[None]
                r, x = r + step, x.detach() + step
                with torch.no_grad():
                    if model((x0 + (1 + overshoot) * r - mean) / std).argmax(1).item() != k0:
                        out[si, b] = ((1 + overshoot) * r).norm().item()
                        break
    return out


ZOO_BENCH = ["resnet20", "resnet18-full", "resnet50-full", "preactresnet18-full", "resnet56-full",
             "vgg11-full", "vgg16-full", "vgg19-full", "repvgg-full", "repvgg-deploy-full",
             "regnetx-full", "densenet-full", "mobilenetv2", "shufflenetv2", "efficientnet",
             "tv-resnet50", "tv-mobilenet_v3_large", "tv-efficientnet_b0", "tv-regnet_y_400mf",
             "tv-densenet121", "tv-convnext_tiny"]
ZOO_BENCH_LARGE = [n for n in ZOO_BENCH if n.startswith("tv-")]  # --size above 32


def zoo_model(name, calibrate):
    """The zoo bench's architectures: tools/zoo/models.py's (full width where
    it has both), random weights and BatchNorm statistics; tv-NAME:
    torchvision's, randomised as tests/torchvision_zoo.py does on the
    (preprocessed) calibration images."""
    sys.path.insert(0, os.path.join(ROOT, "tools", "zoo"))
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    if name.startswith("tv-"):
        import torchvision_zoo
        torch.manual_seed(0)
        model = torchvision_zoo.build(name[3:])
        torchvision_zoo.randomise(model, calibrate)
        return model.eval()
    import models as zoo
    from gen_refs import randomize
    ctor = {"vgg19-full": lambda: zoo.VGG("VGG19", True), "resnet20": lambda: zoo.CifarResNet(20),
            **zoo.ZOO_FULL, **{k: v[0] for k, v in zoo.ZOO.items()}}[name]
    return randomize(ctor(), torch.Generator().manual_seed(1))


def macs_of(model, side=32):
    """Multiply-adds of one 3 x side x side forward pass (convs and linear layers)."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            total[0] += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, torch.nn.Linear):  # per row: per pixel on channels-last maps
            total[0] += out.numel() // m.out_features * m.in_features * m.out_features
    hs = [m.register_forward_hook(hook) for m in model.modules()
          if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, side, side))
    for h in hs:
        h.remove()
    return total[0]


def zoo_bench(args, hfc, child_env, images, labels, data_path, peak):
    """(z) per architecture: hfc-eval end to end against PyTorch CPU (end to
    end, best batch) and ONNX Runtime (inference only on the split and
    preprocessed images, best batch: the generous comparison)."""
    import warnings
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from gen_refs import _int_pool_sizes
    ort_dir = os.environ.get("ONNXRUNTIME_NODE", os.path.join(ROOT, "node_modules"))
    have_ort = os.path.isdir(os.path.join(ort_dir, "onnxruntime-node"))
    if not have_ort:
        print(f"onnxruntime: not found in {ort_dir} (npm install --ignore-scripts onnxruntime-node@1.30.0, "
              f"or set ONNXRUNTIME_NODE): its column is left out")
    tmp = tempfile.mkdtemp()
    n, side = len(labels), args.size
    names = args.zoo_models.split(",") if args.zoo_models else ZOO_BENCH if side == 32 else ZOO_BENCH_LARGE
    mean = torch.tensor(hfc_models.CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(hfc_models.CIFAR10_STD).view(1, 3, 1, 1)
    data_args = ["--data", data_path, "--limit", str(n)]
    if side != 32:  # the test images upsampled, as a .npy hfc-eval reads
        images = F.interpolate(torch.from_numpy(images).float(), size=(side, side), mode="bilinear",
                               align_corners=False).round().clamp(0, 255).to(torch.uint8).numpy()
        np.save(os.path.join(tmp, "x.npy"), images)
        np.save(os.path.join(tmp, "y.npy"), labels)
        data_args = ["--data", os.path.join(tmp, "x.npy"), "--labels", os.path.join(tmp, "y.npy"),
                     "--layout", "nchw"]
    calibrate = (torch.from_numpy(images[:64]).float() / 255.0 - mean) / std
    x64 = images.astype(np.float64)
    low, high = paper_split(x64, 4)
    pre = np.concatenate([((torch.from_numpy(v).float() / 255.0 - mean) / std).numpy()
                          for v in (x64, low, high)]).astype("<f4")
    inputs = os.path.join(tmp, "inputs.f32")
    pre.tofile(inputs)
    for name in names:
        model = zoo_model(name, calibrate)
        binf, onnxf = os.path.join(tmp, name + ".bin"), os.path.join(tmp, name + ".onnx")
        export_pytorch.export(model, binf, mean=hfc_models.CIFAR10_MEAN, std=hfc_models.CIFAR10_STD,
                              classes=hfc_models.CIFAR10_CLASSES, metadata={"bench": name},
                              input_shape=(3, side, side))
        with warnings.catch_warnings(), _int_pool_sizes():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, torch.zeros(1, 3, side, side), onnxf, opset_version=13,
                              input_names=["x"], output_names=["logits"],
                              dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})
        cmd = [hfc, "--radius", "4", "--threads", str(args.threads), *data_args, binf]
        best_batch, best_rate = 64, 0
        for b in ((64, 256) if side == 32 else (16, 64)):
            k = min(n, 256 if side == 32 else 32)
            t = median_time(lambda: torch_job(model, images[:k], labels[:k], 4, b, mean, std), 1)
            best_batch, best_rate = (b, k / t) if k / t > best_rate else (best_batch, best_rate)
        t_h, t_p, t_o, outs, torch_counts, ort_counts = [], [], [], [], [], []
        for _ in range(args.reps):  # alternate the sides
            t_h.append(median_time(lambda: outs.append(subprocess.run(
                cmd, check=True, capture_output=True, env=child_env).stdout), 1))
            t_p.append(median_time(lambda: torch_counts.append(
                torch_job(model, images, labels, 4, best_batch, mean, std)), 1))
            if have_ort:
                r = json.loads(subprocess.run(
                    ["node", "--disable-wasm-trap-handler", os.path.join(ROOT, "bench", "ort_run.js"),
                     onnxf, inputs, str(3 * n), str(args.threads),
                     "64,256,1000" if side == 32 else "16,64", str(side)],
                    check=True, capture_output=True, text=True,
                    env={**os.environ, **ORT_ENV, "ONNXRUNTIME_NODE": ort_dir}).stdout)
                t_o.append(r["seconds"])
                am = np.array(r["argmax"]).reshape(3, n)
                ort_counts.append([int((am[v] == labels).sum()) for v in range(3)])
        ours = json.loads(outs[0])["correct"]
        ours = [ours["original"], ours["low"], ours["high"]]
        th, tp = statistics.median(t_h), statistics.median(t_p)
        gflops = 2 * macs_of(model, side) * 3 * n / th / 1e9
        diff = max(abs(a - b) for a, b in zip(ours, torch_counts[0]))
        line = f"zoo {name}{'' if side == 32 else f' at {side}x{side}'}: speedup vs pytorch-cpu {tp / th:.2f}x"
        if have_ort:
            to = statistics.median(t_o)
            diff = max(diff, max(abs(a - b) for a, b in zip(ours, ort_counts[0])))
            line += f", vs onnxruntime {to / th:.2f}x"
        print(line)
        print(f"  {name}: hfc-eval {th:.2f} s, pytorch-cpu {tp:.2f} s (batch {best_batch})"
              + (f", onnxruntime {statistics.median(t_o):.2f} s (inference only)" if have_ort else "")
              + f"; correct original/low/high {ours} vs pytorch {torch_counts[0]}"
              + (f" vs onnxruntime {ort_counts[0]}" if have_ort else "")
              + f" (largest difference {diff}); engine {gflops:.1f} GFLOP/s effective of {peak:.1f} sgemm peak")


GRADIENT_BENCH = ["resnet18-full", "vgg16-full"]  # besides --model


def gradients_bench(args, hfc, parts_bin, child_env, images, labels, data_path, model, mean, std,
                    tmp):
    """(e) input gradients: FGSM and PGD-10 against PyTorch autograd on
    --model and (--gradients) on GRADIENT_BENCH's zoo models; the margin
    against the PyTorch peer (margin_torch); the backward's GFLOP/s against
    the forward's (bench_parts --backward)."""
    k = min(len(labels), 1000)
    models = [(os.path.basename(args.model), args.model, model, mean, std)]
    if args.gradients:
        zmean = torch.tensor(hfc_models.CIFAR10_MEAN).view(1, 3, 1, 1)
        zstd = torch.tensor(hfc_models.CIFAR10_STD).view(1, 3, 1, 1)
        for name in [n for n in args.gradient_models.split(",") if n]:
            zm = zoo_model(name, None).eval()
            binf = os.path.join(tmp, name + ".bin")
            export_pytorch.export(zm, binf, mean=hfc_models.CIFAR10_MEAN, std=hfc_models.CIFAR10_STD,
                                  classes=hfc_models.CIFAR10_CLASSES, metadata={"bench": name})
            models.append((name, binf, zm, zmean, zstd))
    for label, path, net, mu, sd in models:
        for name, steps, step in (("fgsm", 1, 0.03), ("pgd", 10, 0.0075)):
            acmd = [hfc, "attack", "--method", name, "--eps", "0.03", "--threads", str(args.threads),
                    "--data", data_path, "--limit", str(k), path]
            if name == "pgd":
                acmd[4:4] = ["--steps", str(steps)]
            outs, t_a, t_b, got = [], [], [], []
            for _ in range(args.reps):  # alternate the sides
                t_a.append(median_time(lambda: outs.append(subprocess.run(
                    acmd, check=True, capture_output=True, env=child_env).stdout), 1))
                t_b.append(median_time(lambda: got.append(attack_torch(
                    net, images[:k], labels[:k], 0.03, steps, step, mu, sd)), 1))
            ours = json.loads(outs[0])["correct"]
            adv = [ours["clean"], ours["adversarial"]]
            where = "" if label == os.path.basename(args.model) else f" ({label})"
            print(f"{name}{where} eps 0.03 on {k} images: hfc-eval {statistics.median(t_a):.2f} s, "
                  f"pytorch autograd {statistics.median(t_b):.2f} s; clean and adversarial correct "
                  f"{adv} vs {list(got[0])}")
            print(f"{name}{where} speedup vs pytorch-cpu autograd: "
                  f"{statistics.median([b / a for a, b in zip(t_a, t_b)]):.2f}x")
        back = json.loads(subprocess.run([parts_bin, "--backward", path, "256", str(args.threads)],
                                         check=True, capture_output=True, text=True,
                                         env=child_env).stdout)
        print(f"backward {label}: {back['backward_gflops']:.1f} GFLOP/s a pass vs the forward's "
              f"{back['forward_gflops']:.1f} (256 images, 10 passes after one forward): "
              f"{back['backward_gflops'] / back['forward_gflops'] * 100:.0f}% of the forward's")
    # the margin: 100 images, block 8 stride 2, at most 50 iterations (the peer's)
    mk = min(len(labels), args.margin_images)
    if mk < 1:
        return
    mcmd = [hfc, "margin", "--block", "8", "--stride", "2", "--max-iter", "50", "--threads",
            str(args.threads), "--data", data_path, "--limit", str(mk), args.model]
    outs, t_a, t_b, got = [], [], [], []
    for _ in range(args.reps if args.margin_reps is None else args.margin_reps):
        t_a.append(median_time(lambda: outs.append(subprocess.run(
            mcmd, check=True, capture_output=True, env=child_env).stdout), 1))
        t_b.append(median_time(lambda: got.append(margin_torch(
            model, images[:mk], 8, 2, 50, 0.02, mean, std)), 1))
    ours = json.loads(outs[0])["subspaces"]
    theirs = got[0]
    rel = max(abs(s["median"] - np.nanmedian(theirs[i])) / abs(np.nanmedian(theirs[i]))
              for i, s in enumerate(ours))
    print(f"margin block 8 stride 2 on {mk} images (13 subspaces, at most 50 steps): hfc-eval "
          f"{statistics.median(t_a):.2f} s, pytorch autograd {statistics.median(t_b):.2f} s; "
          f"subspace medians within {rel:.1e} relative of the peer's")
    print(f"margin speedup vs pytorch-cpu: {statistics.median([b / a for a, b in zip(t_a, t_b)]):.2f}x")


class JpegFolder(torch.utils.data.Dataset):
    """The peer of hfc-eval's image folders: ImageFolder's file order, PIL
    open + convert("RGB"), torchvision 0.14's Resize and CenterCrop on PIL
    (tools/reference.py writes them out: torchvision is not in Debian)."""

    def __init__(self, root, resize, crop):
        from reference import read_folder  # noqa: F401 (the same order and steps)
        self.files = []
        for label, c in enumerate(sorted(e.name for e in os.scandir(root) if e.is_dir())):
            for d, _, names in sorted(os.walk(os.path.join(root, c))):
                self.files += [(os.path.join(d, f), label) for f in sorted(names)]
        self.resize, self.crop = resize, crop

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image
        from reference import torchvision_center_crop, torchvision_resize
        path, label = self.files[i]
        with open(path, "rb") as f:
            img = Image.open(f).convert("RGB")
        img = torchvision_center_crop(torchvision_resize(img, self.resize), self.crop)
        return torch.from_numpy(np.asarray(img).transpose(2, 0, 1).copy()), label


def sources_bench(args, parts_bin, child_env, images):
    """The split at 224 x 224 and reading a JPEG folder, against the peers."""
    from PIL import Image
    tmp = tempfile.mkdtemp()
    k = min(64, len(images))
    big = np.stack([np.asarray(Image.fromarray(x.transpose(1, 2, 0)).resize((224, 224), Image.BILINEAR))
                    for x in images[:k]]).transpose(0, 3, 1, 2).copy()
    npy = os.path.join(tmp, "x224.npy")
    np.save(npy, big)
    np.save(npy + ".labels.npy", np.zeros(k, dtype=np.int64))
    x64, xt = big.astype(np.float64), torch.from_numpy(big).float()
    t_hfc, t_np, t_torch = [], [], []
    for _ in range(args.reps):
        out = subprocess.run([parts_bin, "--split", npy, "16", "3"], check=True, capture_output=True,
                             text=True, env=child_env).stdout
        t_hfc.append(json.loads(out)["split_s"])
        t_np.append(median_time(lambda: paper_split(x64, 16), 1))
        t_torch.append(median_time(lambda: torch_split(xt, 16), 1))
    th, tn, tt = (statistics.median(t) for t in (t_hfc, t_np, t_torch))
    print(f"split of {k} images at 3 x 224 x 224, r = 16: hfc {th * 1e3:.1f} ms, numpy (paper) "
          f"{tn * 1e3:.1f} ms, torch.fft {tt * 1e3:.1f} ms")
    print(f"split 224 speedup vs numpy reference: {tn / th:.1f}x")
    print(f"split 224 speedup vs torch.fft: {tt / th:.1f}x")
    root = os.path.join(tmp, "jpeg")
    n = len(images)
    for i, x in enumerate(images):
        d = os.path.join(root, f"class{i % 10}")
        os.makedirs(d, exist_ok=True)
        Image.fromarray(x.transpose(1, 2, 0)).resize((64, 64), Image.BILINEAR).save(
            os.path.join(d, f"{i:05d}.jpg"), quality=90)
    try:  # torchvision itself where installed (Debian's python3-torchvision)
        from torchvision import datasets, transforms
        peer_ds = datasets.ImageFolder(root, transform=transforms.Compose(
            [transforms.Resize(48), transforms.CenterCrop(40), transforms.PILToTensor()]))
        peer = "torchvision ImageFolder + Resize + CenterCrop"
    except ImportError:
        peer_ds, peer = JpegFolder(root, 48, 40), "PIL + torchvision's arithmetic"
    loader = torch.utils.data.DataLoader(peer_ds, batch_size=256, num_workers=2)
    t_hfc, t_pil = [], []
    for _ in range(args.reps):
        out = subprocess.run([parts_bin, "--folder", root, "48", "40", str(args.threads)], check=True,
                             capture_output=True, text=True, env=child_env).stdout
        t_hfc.append(json.loads(out)["load_s"])
        t = time.perf_counter()
        got = sum(len(b[1]) for b in loader)
        t_pil.append(time.perf_counter() - t)
        assert got == n
    th, tp = statistics.median(t_hfc), statistics.median(t_pil)
    print(f"JPEG folder of {n} images (64 x 64, --resize 48 --crop 40): hfc {th:.2f} s "
          f"({args.threads} threads), {peer}, DataLoader(num_workers=2) {tp:.2f} s")
    print(f"JPEG folder speedup vs {peer.split()[0]} + 2 workers: {tp / th:.2f}x")


def protos_bench(args, hfc, child_env, data_path, n):
    """protos against a plain evaluation (alternating, medians); the push."""
    model = args.model
    common = ["--threads", str(args.threads), "--data", data_path, "--limit", str(n), "--radius", "4"]
    jobs = {"plain": [hfc] + common + [model], "protos": [hfc, "protos"] + common + [model]}
    times = {k: [] for k in jobs}
    for _ in range(args.reps):
        for k, cmd in jobs.items():
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=child_env)
            times[k].append(time.perf_counter() - t)
    tp, tq = statistics.median(times["plain"]), statistics.median(times["protos"])
    print(f"protos on {n} images: {tq:.2f} s; plain evaluation {tp:.2f} s ({os.path.basename(model)})")
    print(f"protos / plain evaluation time: {tq / tp:.2f}x (target: at most 1.5x)")
    train = os.path.dirname(data_path) if os.path.isfile(data_path) else data_path
    if not os.path.exists(os.path.join(train, "data_batch_1.bin")):
        return print("push: skipped (no training batches beside the test set)")
    rss = {}
    for k, cmd in (("push", [hfc, "protos", "--push"]), ("plain", [hfc, "--radius", "4"])):
        t = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd + ["--set", "train", "--data", train,
                                                               "--threads", str(args.threads), model],
                           check=True, capture_output=True, env=child_env)
        rss[k] = (time.perf_counter() - t, int(p.stderr.split()[-1]) / 1024)
    print(f"push over 50000 training images, one pass: {rss['push'][0]:.1f} s, peak RSS "
          f"{rss['push'][1]:.0f} MB (a plain evaluation of them: {rss['plain'][0]:.1f} s, "
          f"{rss['plain'][1]:.0f} MB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "data/models/preact20-bn.bin"))
    ap.add_argument("--family", default="preact")
    ap.add_argument("--data", default=os.environ.get("HFC_DATA", os.path.join(ROOT, "../shared/cifar-10-batches-bin")))
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--openblas-coretype", metavar="NAME",
                    help="run hfc-eval's side with OPENBLAS_CORETYPE=NAME (e.g. SkylakeX: "
                         "AVX-512 kernels where OpenBLAS would pick Haswell's)")
    ap.add_argument("--zoo", action="store_true",
                    help="per architecture of the zoo (ZOO_BENCH): hfc-eval vs PyTorch CPU and ONNX "
                         "Runtime, one line each (default 1,000 images, 1 rep)")
    ap.add_argument("--zoo-models", default="", help="comma-separated subset of the zoo's names")
    ap.add_argument("--size", type=int, default=32,
                    help="--zoo: the image side; above 32 the test images are upsampled and only the "
                         "torchvision (tv-) architectures run by default")
    ap.add_argument("--isa", choices=["avx512", "avx2", "generic"],
                    help="run hfc-eval's side with HFC_ISA=ISA (a lower instruction set than the CPU's best)")
    ap.add_argument("--peers-native", action="store_true",
                    help="with --isa: leave PyTorch on its own best ISA (by default its oneDNN and ATen "
                         "kernels are held to the same level, as on a CPU that lacks the higher one)")
    ap.add_argument("--gradients", action="store_true",
                    help="only (e), on --model and on " + ", ".join(GRADIENT_BENCH) + " too (1,000 images)")
    ap.add_argument("--gradient-models", default=",".join(GRADIENT_BENCH),
                    help="--gradients: the zoo's models besides --model (comma-separated, may be empty)")
    ap.add_argument("--margin-images", type=int, default=100,
                    help="(e): images of the margin's run (0: no margin)")
    ap.add_argument("--margin-reps", type=int, help="(e): the margin's repetitions (default --reps)")
    ap.add_argument("--sources", action="store_true",
                    help="the split at 224 x 224 and reading a JPEG folder against their peers")
    ap.add_argument("--protos", action="store_true",
                    help="protos against a plain evaluation of a prototype network; the push")
    args = ap.parse_args()
    if args.protos and "--images" not in sys.argv:
        args.images = 1000
    if args.protos and "--model" not in sys.argv:
        args.model = os.path.join(ROOT, "data/models/protopnet-vgg-bn.bin")
    if args.gradients and "--images" not in sys.argv:
        args.images = 1000
    if args.zoo and "--images" not in sys.argv:
        args.images = 1000
    if args.zoo and "--reps" not in sys.argv:
        args.reps = 1
    # Only hfc-eval's side gets the setting: in this process it would reach
    # PyTorch's BLAS too (measured: PyTorch took 3.5x as long here).
    child_env = dict(os.environ)
    for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):  # bench/run's, for the peers
        child_env.pop(k, None)
    if args.openblas_coretype:
        child_env["OPENBLAS_CORETYPE"] = args.openblas_coretype
    if args.isa:
        child_env["HFC_ISA"] = args.isa
    peers = restrict_peers(args.isa, args.peers_native)
    torch.set_num_threads(args.threads)
    hfc = os.path.join(ROOT, "build/hfc-eval")
    parts_bin = os.path.join(ROOT, "build/bench_parts")

    tmp = tempfile.mkdtemp()
    if os.path.exists(os.path.join(args.data, "test_batch.bin")) or os.path.isfile(args.data):
        images, labels, data_path = read_cifar(args.data, args.images)
        source = "CIFAR-10 test set"
    else:  # generated data of the same shape
        rng = np.random.default_rng(0)
        n = args.images
        rec = np.concatenate([(np.arange(n) % 10).astype(np.uint8)[:, None],
                              rng.integers(0, 256, (n, 3072), dtype=np.uint8)], 1)
        data_path = os.path.join(tmp, "generated.bin")
        rec.tofile(data_path)
        images, labels = rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)
        source = "generated images"
    n = len(labels)
    cpu, flags = "?", ""
    for line in open("/proc/cpuinfo"):
        cpu = line.split(":", 1)[1].strip() if line.startswith("model name") and cpu == "?" else cpu
        flags = line.split(":", 1)[1] if line.startswith("flags") and not flags else flags
    best = "avx512" if " avx512f" in flags else "avx2" if " avx2" in flags and " fma" in flags else "generic"
    kernels = {"avx512": "AVX-512F kernels", "avx2": "AVX2 + FMA kernels", "generic": "im2col + SGEMM"}
    isa = (f"{args.isa} ({kernels[args.isa]}, forced by HFC_ISA; the CPU's best: {best})" if args.isa
           else f"{best} ({kernels[best]})")
    print(f"machine: {cpu}, {os.cpu_count()} CPUs, {args.threads} threads; ISA path {isa}; "
          f"torch {torch.__version__}; {n} images ({source}); model {os.path.basename(args.model)}; "
          f"{args.reps} reps, medians")
    print(f"peers' ISA: {peers}")

    if args.sources:
        return sources_bench(args, parts_bin, child_env, images)
    if args.protos:
        return protos_bench(args, hfc, child_env, data_path, n)
    if args.zoo:
        peak = json.loads(subprocess.run([parts_bin, "--sgemm", str(args.threads)], check=True,
                                         capture_output=True, text=True, env=child_env).stdout)
        return zoo_bench(args, hfc, child_env, images, labels, data_path, peak["sgemm_peak_gflops"])

    header, _ = export_pytorch.read(args.model)
    meta = header["metadata"]
    model = hfc_models.build(meta.get("family", args.family), bn=meta.get("bn", True)).eval()
    export_pytorch.load_into(model, args.model)
    mean = torch.tensor(header["input"]["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(header["input"]["std"]).view(1, 3, 1, 1)
    if args.gradients:
        return gradients_bench(args, hfc, parts_bin, child_env, images, labels, data_path, model,
                               mean, std, tmp)

    # (a) end to end
    cmd = [hfc, "--radius", "4", "--threads", str(args.threads), "--data", data_path,
           "--limit", str(n), args.model]
    ours_out, rss = [], []
    timer = "/usr/bin/time"  # GNU time reports the child's own peak RSS

    def run_ours():
        if os.path.exists(timer):
            p = subprocess.run([timer, "-f", "%M"] + cmd, check=True, capture_output=True, env=child_env)
            rss.append(int(p.stderr.split()[-1]))
        else:
            p = subprocess.run(cmd, check=True, capture_output=True, env=child_env)
        ours_out.append(p.stdout)

    best_batch, best_rate = None, 0
    for b in (64, 256, 1000):
        k = min(n, 2000)
        t = median_time(lambda: torch_job(model, images[:k], labels[:k], 4, b, mean, std), 1)
        if k / t > best_rate:
            best_batch, best_rate = b, k / t
    # Alternate the two, so that a machine whose speed drifts (shared
    # virtual CPUs) slows both alike; the ratio is the median of the pairs'.
    theirs, t_ours, t_torch = [], [], []
    for _ in range(args.reps):
        t_ours.append(median_time(run_ours, 1))
        t_torch.append(median_time(lambda: theirs.append(
            torch_job(model, images, labels, 4, best_batch, mean, std)), 1))
    rss_text = f"{max(rss) / 1024:.0f} MB" if rss else "n/a (install GNU time)"
    ours = json.loads(ours_out[0])["correct"]
    agree = [ours["original"], ours["low"], ours["high"]] == theirs[0]
    ratios = [b / a for a, b in zip(t_ours, t_torch)]
    print(f"hfc-eval end to end: {statistics.median(t_ours):.2f} s; pytorch-cpu (batch {best_batch}): "
          f"{statistics.median(t_torch):.2f} s; same correct counts: {agree} ({theirs[0]})")
    print("pairs (hfc-eval s, pytorch s): " + ", ".join(f"({a:.1f}, {b:.1f})" for a, b in zip(t_ours, t_torch)))
    print(f"end-to-end speedup vs pytorch-cpu: {statistics.median(ratios):.2f}x")

    # (b) split alone, (c) engine, (d) sweep share
    parts = json.loads(subprocess.run([parts_bin, args.model, data_path, str(n), str(args.threads)],
                                      check=True, capture_output=True, text=True, env=child_env).stdout)
    t_split = parts["split_forward_s"] + parts["split_inverse_per_radius_s"]
    x64 = images.astype(np.float64)
    t_numpy = median_time(lambda: paper_split(x64, 4), args.reps)
    xt = torch.from_numpy(images).float()
    t_tfft = median_time(lambda: torch_split(xt, 4), args.reps)
    print(f"split of {n} images: hfc {t_split * 1e3:.1f} ms, numpy (paper) {t_numpy * 1e3:.1f} ms, "
          f"torch.fft {t_tfft * 1e3:.1f} ms")
    print(f"split speedup vs numpy reference: {t_numpy / t_split:.1f}x")
    print(f"split speedup vs torch.fft: {t_tfft / t_split:.1f}x")
    # GFLOP/s count a direct convolution's multiply-adds; Winograd F(4x4, 3x3)
    # does 4x fewer in its 3x3 convs, so this is the effective rate.
    peak, peak_text = parts["sgemm_peak_gflops"], f"{parts['sgemm_peak_gflops']:.1f} GFLOP/s"
    if "OPENBLAS_CORETYPE" in child_env:
        # The environment picks OpenBLAS's kernels: also measure its own choice,
        # and hold the engine to the better of the two.
        own_env = {k: v for k, v in child_env.items() if k != "OPENBLAS_CORETYPE"}
        own = json.loads(subprocess.run([parts_bin, "--sgemm", str(args.threads)], check=True,
                                        capture_output=True, text=True, env=own_env).stdout)
        peak = max(peak, own["sgemm_peak_gflops"])
        peak_text += (f" as OPENBLAS_CORETYPE={child_env['OPENBLAS_CORETYPE']} says; "
                      f"{own['sgemm_peak_gflops']:.1f} GFLOP/s with its own choice ({own['blas_core']} kernels)")
    print(f"engine: {parts['engine_gflops']:.1f} GFLOP/s effective (direct-convolution flops); sgemm peak (OpenBLAS, "
          f"{parts['blas_core']} kernels, {args.threads} threads): {peak_text}")
    print(f"engine fraction of sgemm peak: {parts['engine_gflops'] / peak * 100:.0f}%")
    print(f"peak RSS of hfc-eval on {n} images: {rss_text}")
    # (e) input gradients: attacks, the backward's rate, margins; (f) batch statistics
    gradients_bench(args, hfc, parts_bin, child_env, images, labels, data_path, model, mean, std, tmp)
    t_run, t_bat = [], []
    for _ in range(args.reps):
        t_run.append(median_time(lambda: subprocess.run(cmd, check=True, capture_output=True,
                                                        env=child_env), 1))
        t_bat.append(median_time(lambda: subprocess.run(cmd[:1] + ["--bn-stats", "batch"] + cmd[1:],
                                                        check=True, capture_output=True, env=child_env), 1))
    print(f"--bn-stats batch (BatchNorm not folded, groups of 100): {statistics.median(t_bat):.2f} s "
          f"vs running statistics {statistics.median(t_run):.2f} s: "
          f"{statistics.median(t_bat) / statistics.median(t_run):.2f}x the time")
    # (g) the Fourier heat map: 514 pairs x images forward passes; (h) TwoNN per layer
    hk = min(n, 100)
    hcmd = [hfc, "heatmap", "--eps", "4", "--threads", str(args.threads), "--data", data_path,
            "--limit", str(hk), args.model]
    t_h = [median_time(lambda: subprocess.run(hcmd, check=True, capture_output=True, env=child_env), 1)
           for _ in range(args.reps)]
    th = statistics.median(t_h)
    print(f"heatmap on {hk} images (514 mirror pairs, {514 * hk + hk} forward passes): {th:.2f} s, "
          f"{(514 * hk + hk) / th:.0f} forward passes/s; a full map on 1,000 images: about "
          f"{th * 1000 / hk / 60:.1f} min")
    ik = min(n, 2000)
    icmd = [hfc, "id", "--threads", str(args.threads), "--data", data_path, "--limit", str(ik), args.model]
    t_i, layers = [], []
    for _ in range(args.reps):
        t_i.append(median_time(lambda: layers.append(subprocess.run(
            icmd, check=True, capture_output=True, env=child_env).stdout), 1))
    rows = [json.loads(l) for l in layers[0].splitlines()]
    dims = sum(r["dim"] for r in rows)
    print(f"id (TwoNN, 5 resamples) on {ik} images, {len(rows)} block outputs ({dims} dimensions in all): "
          f"{statistics.median(t_i):.2f} s")
    sweep_split = parts["sweep_split_s"]
    sweep_total = sweep_split + 17 * parts["engine_forward_s"]
    print(f"8-radius sweep (2, 4, ..., 16): split {sweep_split * 1e3:.0f} ms, "
          f"{sweep_split / sweep_total * 100:.1f}% of split+inference "
          f"(forward transform once, inverse per radius)")


if __name__ == "__main__":
    main()
