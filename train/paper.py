#!/usr/bin/python3
"""Train the paper's own network with the paper's own recipe, several seeds at once.

The network is tools/hfc_models.py's PaperResNet (ResNet-32, n = 5), with or
without BatchNorm. The recipe is the one of the paper's code
(HaohanWang/HFC, scripts/resnet.py, train()):

  - every training image divided by its own maximum (over all its values),
    so the net sees pixels in [0, 1]; no augmentation; no mean/std
  - Adam, learning rate 1e-4 (betas 0.9, 0.999, epsilon 1e-8), no weight decay
  - batches of 100, the training set reshuffled every epoch, 100 epochs
  - mean cross-entropy

All seeds of one run train together as a single network whose convolutions
have groups = number of seeds: group g holds seed g's model and only ever sees
seed g's batches (its own initialisation and its own shuffling, both from the
seed). Nothing crosses between groups: BatchNorm is per channel, the last
linear layer is per group, Adam is per parameter, and the loss is the sum of
the groups' losses, so each group's gradient is that seed's gradient alone.
`--check` verifies this on the CPU: the grouped net's logits and a few Adam
steps agree with separately trained models.

For each seed S it writes OUT-seedS.pt (state_dict), OUT-seedS.json
(metadata) and OUT-seedS.bin (hfc-eval's format, inputs x/255 with mean 0 and
std 1; the BatchNorm running statistics are PyTorch's usual momentum-0.1
averages, for hfc-eval's default --bn-stats running; the paper itself
normalised by each test batch's statistics: --bn-stats batch).

Examples:
  train/paper.py --bn --seeds 0,1,2 --out runs/paper32-bn        # GPU: the full recipe
  train/paper.py --no-bn --seeds 0,1 --epochs 1 --limit 500 --device cpu --out /tmp/p
  train/paper.py --check
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


def read_training_set(data_dir, limit):
    """The five training batches as uint8 NCHW and int64 labels (sizes checked)."""
    xs, ys = [], []
    for i in range(1, 6):
        path = os.path.join(data_dir, f"data_batch_{i}.bin")
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % RECORD:
            raise SystemExit(f"paper.py: {path}: size {raw.size} is not a multiple of {RECORD}")
        raw = raw.reshape(-1, RECORD)
        if raw[:, 0].max() > 9:
            raise SystemExit(f"paper.py: {path}: label byte > 9")
        xs.append(raw[:, 1:].reshape(-1, 3, 32, 32))
        ys.append(raw[:, 0].astype(np.int64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    return (x[:limit], y[:limit]) if limit else (x, y)


def max_rescale(x_uint8):
    """x / max(x) per image; an image whose maximum is 0 stays 0."""
    x = x_uint8.float()
    top = x.flatten(1).amax(1).clamp_min(1.0).view(-1, 1, 1, 1)
    return x / top


class GroupedPaperResNet(nn.Module):
    """G PaperResNets side by side: every conv has groups=G, every BatchNorm
    G times the channels, the linear layer one weight per group. Input
    (N, 3G, 32, 32), output (N, G, classes)."""

    def __init__(self, models):
        super().__init__()
        self.g = len(models)
        m0 = models[0]
        self.conv0 = self._conv([m.conv0 for m in models])
        self.bn0 = self._bn([m.bn0 for m in models])
        self.blocks = nn.ModuleList()
        for parts in zip(*(m.blocks for m in models)):
            b = nn.Module()
            b.first, b.down = parts[0].first, parts[0].down
            b.bn1 = self._bn([p.bn1 for p in parts])
            b.conv1 = self._conv([p.conv1 for p in parts])
            b.bn2 = self._bn([p.bn2 for p in parts])
            b.conv2 = self._conv([p.conv2 for p in parts])
            self.blocks.append(b)
        self.fc_w = nn.Parameter(torch.stack([m.fc.weight.detach().clone() for m in models]))
        self.fc_b = nn.Parameter(torch.stack([m.fc.bias.detach().clone() for m in models]))
        self.classes = m0.fc.out_features

    def _conv(self, convs):
        c = convs[0]
        g = nn.Conv2d(c.in_channels * self.g, c.out_channels * self.g, c.kernel_size,
                      stride=c.stride, padding=c.padding, groups=self.g, bias=False)
        with torch.no_grad():
            g.weight.copy_(torch.cat([m.weight for m in convs]))
        return g

    def _bn(self, bns):
        b = bns[0]
        if isinstance(b, nn.Identity):
            return nn.Identity()
        g = nn.BatchNorm2d(b.num_features * self.g, eps=b.eps, momentum=b.momentum)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(g, name).copy_(torch.cat([getattr(m, name) for m in bns]))
        return g

    def forward(self, x):
        x = F.relu(self.bn0(self.conv0(x)))
        for b in self.blocks:
            out = b.conv1(x if b.first else F.relu(b.bn1(x)))
            out = b.conv2(F.relu(b.bn2(out)))
            if b.down:
                n, c, h, w = x.shape
                c //= self.g
                short = F.avg_pool2d(x, 2).view(n, self.g, c, h // 2, w // 2)
                x = F.pad(short, (0, 0, 0, 0, c // 2, c // 2)).reshape(n, self.g * 2 * c, h // 2, w // 2)
            x = out + x
        h = F.relu(x).mean((2, 3)).view(x.shape[0], self.g, -1)
        return torch.einsum("ngc,gkc->ngk", h, self.fc_w) + self.fc_b

    def split(self, models):
        """Copy group g's weights and BN statistics back into models[g]."""
        def conv(dst, src, g):
            k = src.out_channels // self.g
            dst.weight.copy_(src.weight[g * k:(g + 1) * k])

        def bn(dst, src, g):
            if isinstance(src, nn.Identity):
                return
            k = src.num_features // self.g
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(dst, name).copy_(getattr(src, name)[g * k:(g + 1) * k])
            dst.num_batches_tracked.copy_(src.num_batches_tracked)

        with torch.no_grad():
            for g, m in enumerate(models):
                conv(m.conv0, self.conv0, g)
                bn(m.bn0, self.bn0, g)
                for dst, src in zip(m.blocks, self.blocks):
                    bn(dst.bn1, src.bn1, g)
                    conv(dst.conv1, src.conv1, g)
                    bn(dst.bn2, src.bn2, g)
                    conv(dst.conv2, src.conv2, g)
                m.fc.weight.copy_(self.fc_w[g])
                m.fc.bias.copy_(self.fc_b[g])
        return models


def grouped_loss(net, xs, ys):
    """xs: G batches (N, 3, 32, 32), ys: G label vectors; the sum of the G mean cross-entropies."""
    logits = net(torch.cat(xs, 1))
    return sum(F.cross_entropy(logits[:, g], ys[g]) for g in range(len(xs))), logits


class Stepper:
    """One training step: forward, backward, Adam. On a GPU the whole step is
    captured once as a CUDA graph and replayed (static input buffers), since a
    small net at batch 100 is otherwise bound by kernel launches. Returns the
    summed loss and each group's number of correct predictions."""

    def __init__(self, net, opt, batch, groups, dev, channels_last=False):
        self.net, self.opt, self.graph = net, opt, None
        self.x = torch.zeros(batch, 3 * groups, 32, 32, device=dev)
        if channels_last:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = torch.zeros(batch, groups, dtype=torch.long, device=dev)
        if dev.type == "cuda":
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            state = copy.deepcopy(net.state_dict())
            opt_state = copy.deepcopy(opt.state_dict())
            with torch.cuda.stream(side):
                for _ in range(3):  # warm-up (cudnn's choices, Adam's state) off the graph
                    self._eager()
            torch.cuda.current_stream().wait_stream(side)
            with torch.no_grad():  # the warm-up steps on zeros must not count
                for k, v in net.state_dict().items():
                    v.copy_(state[k])
                fresh = opt_state["state"]
                for i, p in enumerate(p for grp in opt.param_groups for p in grp["params"]):
                    for k, v in opt.state[p].items():
                        v.copy_(fresh[i][k]) if i in fresh else v.zero_()
            self.graph = torch.cuda.CUDAGraph()
            opt.zero_grad(set_to_none=True)
            with torch.cuda.graph(self.graph):
                self.out = self._eager()

    def _eager(self):
        loss, logits = grouped_loss(self.net, list(self.x.split(3, 1)), list(self.y.unbind(1)))
        self.opt.zero_grad(set_to_none=self.graph is None)
        loss.backward()
        self.opt.step()
        return loss.detach(), (logits.argmax(2) == self.y).sum(0)

    def __call__(self, x, y):
        self.x.copy_(x)
        self.y.copy_(y)
        if self.graph is None:
            return self._eager()
        self.graph.replay()
        return self.out


def check():
    """Grouped training equals separate training (CPU, float64, random data)."""
    torch.set_default_dtype(torch.float64)
    worst = 0.0
    for bn in (True, False):
        seeds = [3, 4]
        models = []
        for s in seeds:
            torch.manual_seed(s)
            models.append(hfc_models.PaperResNet(bn=bn))
        alone = [copy.deepcopy(m) for m in models]
        net = GroupedPaperResNet(models)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in alone]
        gen = torch.Generator().manual_seed(9)
        for _ in range(3):
            xs = [torch.rand(8, 3, 32, 32, generator=gen) for _ in seeds]
            ys = [torch.randint(0, 10, (8,), generator=gen) for _ in seeds]
            net.train()
            loss, logits = grouped_loss(net, xs, ys)
            opt.zero_grad()
            loss.backward()
            opt.step()
            for g, (m, o) in enumerate(zip(alone, opts)):
                m.train()
                out = m(xs[g])
                worst = max(worst, (out - logits[:, g]).abs().max().item())
                o.zero_grad()
                F.cross_entropy(out, ys[g]).backward()
                o.step()
        split = net.split([copy.deepcopy(m) for m in models])
        x = torch.rand(4, 3, 32, 32, generator=gen)
        for a, b in zip(split, alone):
            a.eval()
            b.eval()
            worst = max(worst, (a(x) - b(x)).abs().max().item())
        print(f"paper.py --check: bn={bn}: grouped vs separate, largest difference {worst:.2e}")
    if worst > 1e-9:
        raise SystemExit("paper.py --check: FAILED (> 1e-9)")
    print("paper.py --check: ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bn", dest="bn", action="store_true", default=True)
    ap.add_argument("--no-bn", dest="bn", action="store_false")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, one model each")
    ap.add_argument("--depth", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--budget-seconds", type=float, default=0,
                    help="after the first epoch, cut --epochs so that training fits this many seconds")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images (smoke runs)")
    ap.add_argument("--data", default=os.environ.get("HFC_DATA", "../shared/cifar-10-batches-bin"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", help="output prefix: OUT-seedS.pt, .json, .bin")
    ap.add_argument("--state", metavar="PATH",
                    help="resumable training: continue from PATH if it exists; with --pause-after, save there")
    ap.add_argument("--pause-after", type=float, default=0, metavar="SECONDS",
                    help="with --state: after the first epoch that ends past SECONDS, save and exit 0")
    ap.add_argument("--channels-last", action="store_true", help="NHWC memory layout on the GPU")
    ap.add_argument("--check", action="store_true", help="check grouped against separate training and exit")
    ap.add_argument("--export", nargs="+", metavar="PT",
                    help="only write PREFIX.bin for each PREFIX.pt given (metadata from PREFIX.json)")
    args = ap.parse_args()
    if args.check:
        return check()
    if args.export:
        for path in args.export:
            prefix = path[:-3] if path.endswith(".pt") else path
            with open(prefix + ".json") as f:
                meta = json.load(f)
            m = hfc_models.PaperResNet(depth=meta["depth"], bn=meta["bn"])
            m.load_state_dict(torch.load(prefix + ".pt", map_location="cpu"))
            write_bin(m, prefix + ".bin", meta)
        return
    if not args.out:
        ap.error("--out is required")
    seeds = [int(s) for s in args.seeds.split(",")]
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True

    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(hfc_models.PaperResNet(depth=args.depth, bn=args.bn))
    net = GroupedPaperResNet(models).to(dev)
    cuda = dev.type == "cuda"
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8,
                           **({"fused": True, "capturable": True} if cuda else {}))
    orders = [np.random.RandomState(s) for s in seeds]

    xtr, ytr = read_training_set(args.data, args.limit)
    x = max_rescale(torch.from_numpy(xtr)).to(dev)
    y = torch.from_numpy(ytr).to(dev)
    n, b, g = x.shape[0], args.batch_size, len(seeds)
    steps = n // b
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
    epochs, epoch, before = args.epochs, 0, 0.0
    if args.state and os.path.exists(args.state):
        saved = torch.load(args.state, map_location=dev, weights_only=False)
        net.load_state_dict(saved["net"])
        opt.load_state_dict(saved["opt"])
        for r, st in zip(orders, saved["orders"]):
            r.set_state(st)
        epochs, epoch, before = saved["epochs"], saved["epoch"], saved["seconds"]
        print(f"resumed at epoch {epoch}/{epochs} from {args.state}", flush=True)
    step = Stepper(net, opt, b, g, dev, args.channels_last)
    t0 = time.time() - before
    start = time.time()
    while epoch < epochs:
        net.train()
        perms = [torch.from_numpy(r.permutation(n)).to(dev) for r in orders]
        xs = torch.cat([x[p] for p in perms], 1)  # (n, 3G, 32, 32): seed g's order in group g
        ys = torch.stack([y[p] for p in perms], 1)  # (n, G)
        correct = torch.zeros(g, device=dev)
        loss_sum = torch.zeros((), device=dev)
        for i in range(steps):
            loss, right = step(xs[i * b:(i + 1) * b], ys[i * b:(i + 1) * b])
            loss_sum += loss
            correct += right
        if epoch == 0 and args.budget_seconds:
            epochs = max(1, min(args.epochs, int(args.budget_seconds / (time.time() - t0))))
        epoch += 1
        train_acc = (correct / (steps * b)).tolist()
        mean_loss = loss_sum.item() / steps / g
        if not np.isfinite(mean_loss):
            raise SystemExit(f"paper.py: loss diverged in epoch {epoch}")
        if epoch % 10 == 0 or epoch == epochs or epoch == 1:
            print(f"epoch {epoch}/{epochs} loss {mean_loss:.3f} train accuracy "
                  + " ".join(f"{a:.4f}" for a in train_acc) + f" ({time.time() - t0:.0f}s)", flush=True)
        if args.state and args.pause_after and time.time() - start > args.pause_after and epoch < epochs:
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "epochs": epochs,
                        "orders": [r.get_state() for r in orders], "seconds": time.time() - t0,
                        "train_acc": train_acc}, args.state)
            print(f"paused after epoch {epoch}/{epochs}: run the same command again to go on", flush=True)
            return
    seconds = time.time() - t0

    net = net.cpu()
    models = net.split(models)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)) or ".", exist_ok=True)
    for s, m, acc in zip(seeds, models, train_acc):
        meta = {
            "family": "paper", "architecture": "PaperResNet", "depth": args.depth, "bn": args.bn,
            "seed": s, "epochs": epochs, "epoch": epochs, "batch_size": b, "optimizer": "adam",
            "lr": args.lr, "weight_decay": 0, "augmentation": "none",
            "input": "each training image divided by its own maximum",
            "recipe": "HaohanWang/HFC scripts/resnet.py train()", "train_images": int(n),
            "train_accuracy_last_epoch": round(acc, 4), "trained_with_seeds": seeds,
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "train_seconds": round(seconds, 1),
        }
        prefix = f"{args.out}-seed{s}"
        m.eval()
        torch.save(m.state_dict(), prefix + ".pt")
        with open(prefix + ".json", "w") as f:
            json.dump(meta, f, indent=2)
        print(json.dumps(meta), flush=True)
        try:
            write_bin(m, prefix + ".bin", meta)
        except Exception as e:  # a newer PyTorch's fx, say: the .pt is what counts
            print(f"paper.py: {prefix}.bin not written ({type(e).__name__}: {e}); "
                  f"write it later with: train/paper.py --export {prefix}.pt", file=sys.stderr)


def write_bin(model, path, meta):
    import export_pytorch
    export_pytorch.export(model.eval(), path, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                          classes=hfc_models.CIFAR10_CLASSES, metadata=meta)


if __name__ == "__main__":
    main()
