#!/usr/bin/python3
"""Train one CIFAR-10 checkpoint for hfc-eval.

Reads the official CIFAR-10 binaries (data_batch_1..5.bin, test_batch.bin)
directly, augments on the training device (random crop with 4-pixel zero
padding, horizontal flip), trains with SGD + Nesterov momentum and a
warm-up + cosine learning-rate schedule, and writes

  OUT.pt     the state_dict
  OUT.json   metadata: family, bn, seed, epochs, hyper-parameters,
             training time, final clean test accuracy
  OUT.bin    the converted hfc-eval model (tools/export_pytorch.py)

The paper's other experiments (Wang et al. 2020, Sections 3-5):
  --adversarial pgd --eps 8/255 --steps 7 --step-size 2/255
             Madry et al.'s adversarial training: every batch replaced by its
             PGD adversary on [0, 1] pixels (random start in the eps ball, the
             model in training mode as it is trained), then the step on it
  --mixup ALPHA        mixup (Zhang et al.): pairs of the batch mixed by
                       lambda ~ Beta(ALPHA, ALPHA), the loss mixed alike
  --dropout P          dropout on the input of the last linear layer
  --no-augment         no random crop or flip (memorisation runs)
  --shuffle-labels F   a seeded random fraction F of the training labels
                       permuted among themselves (1: all of them, Section 3);
                       OUT.labels.npy keeps the labels trained on
  --save-every 1       a checkpoint per epoch (the accuracy-vs-epoch pictures)
OUT.json records the exact command line.

Examples:
  train/train.py --family preact --bn --epochs 160 --out data/models/preact20-bn
  train/train.py --family preact --no-bn --lr 0.05 --warmup 5 --out ...
  train/train.py --family vgg --bn --epochs 1 --limit 512 --device cpu --out /tmp/smoke
"""

import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import hfc_models  # noqa: E402

RECORD = 1 + 3 * 32 * 32


def read_cifar(path):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        raise SystemExit(f"train.py: {path}: size {raw.size} is not a multiple of {RECORD}")
    raw = raw.reshape(-1, RECORD)
    labels = raw[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise SystemExit(f"train.py: {path}: label byte > 9")
    return raw[:, 1:].reshape(-1, 3, 32, 32), labels


def load_split(data_dir, names):
    xs, ys = zip(*(read_cifar(os.path.join(data_dir, n)) for n in names))
    return np.concatenate(xs), np.concatenate(ys)


def augment(x):
    """Random crop (4-pixel zero padding) and horizontal flip of a uint8 NCHW batch."""
    n = x.shape[0]
    padded = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), device=x.device)
    dx = torch.randint(0, 9, (n,), device=x.device)
    rows = (dy[:, None] + torch.arange(32, device=x.device)[None, :])  # n x 32
    cols = (dx[:, None] + torch.arange(32, device=x.device)[None, :])
    flip = torch.rand(n, device=x.device) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    idx_n = torch.arange(n, device=x.device)[:, None, None, None]
    idx_c = torch.arange(3, device=x.device)[None, :, None, None]
    return padded[idx_n, idx_c, rows[:, None, :, None], cols[:, None, None, :]]


def fraction(text):
    """A number or a fraction such as 8/255."""
    num, _, den = text.partition("/")
    try:
        v = float(num) / (float(den) if den else 1.0)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or a fraction like 8/255")
    if not np.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return v


def pgd(model, x01, y, normalize01, eps, step_size, steps, start=None):
    """Madry et al.'s PGD on [0, 1] pixels: from x01 + start (uniform in the
    eps ball when None), `steps` times delta <- clip(delta + step_size *
    sign(grad), -eps, eps), x01 + delta kept in [0, 1]. Returns the
    adversarial images (no gradient attached)."""
    if start is None:
        start = torch.empty_like(x01).uniform_(-eps, eps)
    delta = ((x01 + start).clamp(0, 1) - x01).detach()
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model(normalize01(x01 + delta)), y)
        grad, = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + step_size * grad.sign()).clamp(-eps, eps)
        delta = ((x01 + delta).clamp(0, 1) - x01).detach()
    return (x01 + delta).detach()


def shuffled_labels(y, frac, seed):
    """A seeded random fraction frac of the labels permuted among
    themselves (the rest kept)."""
    g = np.random.default_rng(seed + 1_000_003)
    y = y.copy()
    pick = g.choice(len(y), size=int(round(frac * len(y))), replace=False)
    y[pick] = y[g.permutation(pick)]
    return y


def evaluate(model, x, y, normalize, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            logits = model(normalize(x[i:i + batch]))
            correct += (logits.argmax(1) == y[i:i + batch]).sum().item()
    return correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", required=True, choices=sorted(hfc_models.FAMILIES))
    ap.add_argument("--bn", dest="bn", action="store_true", default=True)
    ap.add_argument("--no-bn", dest="bn", action="store_false")
    ap.add_argument("--depth", type=int, default=None, help="ResNet depth (6n+2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=160)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--warmup", type=float, default=0, help="linear warm-up epochs")
    ap.add_argument("--clip", type=float, default=0, help="gradient-norm clip (0: none)")
    ap.add_argument("--data", default=os.environ.get("HFC_DATA", "../shared/cifar-10-batches-bin"))
    ap.add_argument("--budget-seconds", type=float, default=0,
                    help="after the second epoch (the first also pays for start-up and cuDNN's "
                         "autotuning), cut --epochs so that training fits this many seconds")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images (smoke runs)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", required=True, help="output prefix: OUT.pt, OUT.json, OUT.bin")
    ap.add_argument("--adversarial", choices=["none", "pgd"], default="none")
    ap.add_argument("--eps", type=fraction, default=8 / 255, help="PGD radius on [0, 1] pixels")
    ap.add_argument("--steps", type=int, default=7, help="PGD steps")
    ap.add_argument("--step-size", type=fraction, default=2 / 255)
    ap.add_argument("--no-augment", dest="augment", action="store_false", default=True,
                    help="train on the images as they are (no crop, no flip)")
    ap.add_argument("--mixup", type=float, default=0, metavar="ALPHA")
    ap.add_argument("--dropout", type=float, default=0, metavar="P")
    ap.add_argument("--shuffle-labels", type=float, default=0, metavar="FRACTION")
    ap.add_argument("--save-every", type=int, default=0, metavar="K",
                    help="also write OUT-epochE.bin every K epochs (metadata 'epoch': E), a "
                         "checkpoint series for hfc-eval --png's accuracy-vs-epoch.png")
    args = ap.parse_args()
    for name, v, hi in (("--dropout", args.dropout, 1), ("--shuffle-labels", args.shuffle_labels, 1)):
        if not 0 <= v <= hi or (name == "--dropout" and v == 1):
            ap.error(f"{name} {v}: must be in [0, 1{')' if name == '--dropout' else ']'}")
    if args.mixup < 0 or args.steps < 1:
        ap.error("--mixup must be >= 0 and --steps >= 1")

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    dev = torch.device(args.device)
    kwargs = {"depth": args.depth} if args.depth and args.family in ("preact", "resnet20") else {}
    model = hfc_models.build(args.family, bn=args.bn, **kwargs).to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True

    xtr, ytr = load_split(args.data, [f"data_batch_{i}.bin" for i in range(1, 6)])
    xte, yte = load_split(args.data, ["test_batch.bin"])
    if args.limit:
        xtr, ytr = xtr[:args.limit], ytr[:args.limit]
        xte, yte = xte[:args.limit], yte[:args.limit]
    if args.shuffle_labels:
        ytr = shuffled_labels(ytr, args.shuffle_labels, args.seed)
    xtr, ytr = torch.from_numpy(xtr).to(dev), torch.from_numpy(ytr).to(dev)
    xte, yte = torch.from_numpy(xte).to(dev), torch.from_numpy(yte).to(dev)

    mean = torch.tensor(hfc_models.CIFAR10_MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(hfc_models.CIFAR10_STD, device=dev).view(1, 3, 1, 1)

    def normalize01(x01):
        x = (x01 - mean) / std
        return x.contiguous(memory_format=torch.channels_last) if dev.type == "cuda" else x

    def normalize(x_uint8):
        return normalize01(x_uint8.float() / 255.0)

    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    hook = last.register_forward_pre_hook(
        lambda m, inp: (F.dropout(inp[0], args.dropout, m.training),)) if args.dropout else None

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": args.wd},
                           {"params": no_decay, "weight_decay": 0}],
                          lr=args.lr, momentum=args.momentum, nesterov=True)
    n = xtr.shape[0]
    steps_per_epoch = max(1, n // args.batch_size)
    epochs = args.epochs
    total = steps_per_epoch * epochs
    warm = int(args.warmup * steps_per_epoch)

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return args.lr * 0.5 * (1 + np.cos(np.pi * t))

    amp = dev.type == "cuda"
    t0 = time.time()
    step = 0
    epoch = 0
    while epoch < epochs:
        t_epoch = time.time()
        model.train()
        perm = torch.randperm(n, device=dev)
        loss_sum = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * args.batch_size:(i + 1) * args.batch_size]
            x01, y = (augment(xtr[idx]) if args.augment else xtr[idx]).float() / 255.0, ytr[idx]
            if args.adversarial == "pgd":
                x01 = pgd(model, x01, y, normalize01, args.eps, args.step_size, args.steps)
            x = normalize01(x01)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            lam, mate = 1.0, None
            if args.mixup:
                lam = float(np.random.beta(args.mixup, args.mixup))
                mate = torch.randperm(x.shape[0], device=dev)
                x = lam * x + (1 - lam) * x[mate]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                out = model(x)
                loss = F.cross_entropy(out, y)
                if mate is not None:
                    loss = lam * loss + (1 - lam) * F.cross_entropy(out, y[mate])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.clip:
                nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            step += 1
            if i % 50 == 0:
                loss_sum = loss.item()
                if not np.isfinite(loss_sum):
                    raise SystemExit(f"train.py: loss diverged at epoch {epoch} step {i}")
        if epoch == 1 and args.budget_seconds:
            left = args.budget_seconds - (time.time() - t0)
            epochs = max(2, min(args.epochs, 2 + int(left / (time.time() - t_epoch))))
            total = steps_per_epoch * epochs
        if args.save_every and (epoch + 1) % args.save_every == 0 and epoch + 1 < epochs:
            snapshot = copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format).float()
            save_bin(snapshot.eval(), f"{args.out}-epoch{epoch + 1}.bin",
                     {"family": args.family, "bn": args.bn, "seed": args.seed,
                      "epoch": epoch + 1, "epochs": epochs,
                      "command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])})
        if epoch % 10 == 9 or epoch == epochs - 1:
            acc = evaluate(model, xte, yte, normalize)
            print(f"epoch {epoch + 1}/{epochs} loss {loss_sum:.3f} test {acc:.4f} "
                  f"({time.time() - t0:.0f}s)", flush=True)
        epoch += 1
    seconds = time.time() - t0
    if hook:
        hook.remove()
    model = model.to(memory_format=torch.contiguous_format).float()
    acc = evaluate(model, xte, yte, lambda x: (x.float() / 255.0 - mean) / std)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    meta = {
        "family": args.family, "architecture": type(model).__name__, "bn": args.bn,
        "depth": args.depth, "seed": args.seed, "epochs": epochs, "epoch": epochs,
        "batch_size": args.batch_size, "lr": args.lr, "momentum": args.momentum,
        "weight_decay": args.wd, "warmup_epochs": args.warmup, "grad_clip": args.clip,
        "schedule": "linear warm-up then cosine",
        "augmentation": "random crop (pad 4) + horizontal flip" if args.augment else None,
        "train_images": int(n), "device": torch.cuda.get_device_name(dev) if amp else "cpu",
        "train_seconds": round(seconds, 1), "test_accuracy": acc, "test_images": int(xte.shape[0]),
        "adversarial": None if args.adversarial == "none" else {
            "attack": "pgd", "eps": args.eps, "steps": args.steps, "step_size": args.step_size,
            "space": "[0, 1] pixels", "random_start": True},
        "mixup_alpha": args.mixup or None, "dropout": args.dropout or None,
        "shuffled_labels": args.shuffle_labels or None,
        "command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
    }
    torch.save(model.cpu().state_dict(), args.out + ".pt")
    if args.shuffle_labels:
        np.save(args.out + ".labels.npy", ytr.cpu().numpy().astype(np.uint8))
    with open(args.out + ".json", "w") as f:
        json.dump(meta, f, indent=2)
    save_bin(model.cpu().eval(), args.out + ".bin", meta)
    print(json.dumps(meta))


def save_bin(model, path, meta):
    try:
        import export_pytorch
    except ImportError:
        print(f"train.py: tools/export_pytorch.py not found; skipped {path}", file=sys.stderr)
        return
    export_pytorch.export(model, path, mean=hfc_models.CIFAR10_MEAN, std=hfc_models.CIFAR10_STD,
                          classes=hfc_models.CIFAR10_CLASSES, metadata=meta)


if __name__ == "__main__":
    main()
