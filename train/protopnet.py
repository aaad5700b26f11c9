#!/usr/bin/python3
"""Train a CIFAR-10 prototype network (ProtoPNet, Chen et al. 2019) for hfc-eval.

Starts from a shipped VGG-style checkpoint's features (data/models/vgg-bn.bin
or vgg-nobn.bin, read back with tools/export_pytorch.py) and runs the
paper's four stages, with Adam as the paper does:

  1. warm-up: the add-on layers and the prototypes only, the backbone
     frozen (--warm-epochs; on features computed once, no augmentation)
  2. joint: everything but the last layer (--joint-epochs; backbone at
     --lr-features, random crop + flip; BatchNorm keeps its statistics)
  3. push: each prototype replaced by the nearest feature patch among the
     training images of its own class (the projection)
  4. last layer: only the last layer, with the wrong-class connections
     pushed to 0 by an L1 penalty (--last-epochs; on features computed once)

The loss of stages 1-2 is cross-entropy + 0.8 cluster cost - 0.08
separation cost (the paper's coefficients): the mean over the batch of the
smallest distance to a prototype of the image's class, and of the smallest
to one of another class. Stage 4: cross-entropy + 1e-4 * the L1 norm of the
wrong-class weights.

Writes OUT.pt (state_dict), OUT.json (metadata, the push's choices, test
accuracies after each stage) and OUT.bin (tools/export_pytorch.py).

Examples:
  train/protopnet.py --backbone data/models/vgg-bn.bin --bn --out data/models/protopnet-vgg-bn
  train/protopnet.py --backbone data/models/vgg-nobn.bin --no-bn --out ...
  train/protopnet.py --backbone data/models/vgg-bn.bin --bn --limit 500 --joint-epochs 0 --out /tmp/smoke
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
sys.path.insert(0, HERE)
import export_pytorch  # noqa: E402
import hfc_models  # noqa: E402
from train import augment, load_split  # noqa: E402

CLUSTER, SEPARATION, L1 = 0.8, -0.08, 1e-4


def normalizer(device):
    mean = torch.tensor(hfc_models.CIFAR10_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(hfc_models.CIFAR10_STD, device=device).view(1, 3, 1, 1)
    return lambda x: (x.float() / 255 - mean) / std


def backbone_features(model, x, norm, batch=500):
    """The frozen backbone's output for uint8 images x, in batches."""
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model.features(norm(x[i:i + batch])))
    return torch.cat(out)


def head(model, f):
    """(logits, min_distances, distances) from backbone features f."""
    d = model._l2_convolution(model.add_on_layers(f))
    mind = d.flatten(2).min(2).values
    return model.last_layer(model.distance_2_similarity(mind)), mind, d


def costs(model, logits, mind, y):
    own = model.prototype_class_identity[:, y].t()  # (n, m): 1 for the label's prototypes
    big = mind.max().detach() + 1
    cluster = (mind + big * (1 - own)).min(1).values.mean()
    separation = (mind + big * own).min(1).values.mean()
    return F.cross_entropy(logits, y) + CLUSTER * cluster + SEPARATION * separation


def epochs_on_features(model, params, feats, y, epochs, lr, batch, last=False):
    opt = torch.optim.Adam(params, lr=lr)
    wrong = 1 - model.prototype_class_identity.t()
    for _ in range(epochs):
        perm = torch.randperm(len(y))
        for i in range(0, len(y), batch):
            idx = perm[i:i + batch]
            logits, mind, _ = head(model, feats[idx])
            if last:
                loss = F.cross_entropy(logits, y[idx]) + L1 * (model.last_layer.weight * wrong).abs().sum()
            else:
                loss = costs(model, logits, mind, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def joint(model, xtr, ytr, norm, epochs, args):
    groups = [{"params": model.features.parameters(), "lr": args.lr_features},
              {"params": model.add_on_layers.parameters(), "lr": args.lr},
              {"params": [model.prototype_vectors], "lr": args.lr}]
    opt = torch.optim.Adam(groups)
    for _ in range(epochs):
        perm = torch.randperm(len(ytr))
        for i in range(0, len(ytr), args.batch_size):
            idx = perm[i:i + args.batch_size]
            f = model.features(norm(augment(xtr[idx])))
            logits, mind, _ = head(model, f)
            loss = costs(model, logits, mind, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def push(model, feats, y):
    """Each prototype onto its class's nearest training feature patch:
    [(image, row, col, distance)] in prototype order."""
    chosen = []
    with torch.no_grad():
        z_all = []
        for i in range(0, len(y), 1000):
            z_all.append(model.add_on_layers(feats[i:i + 1000]))
        z_all = torch.cat(z_all)
        classes = model.prototype_class_identity.argmax(1)
        for j in range(model.num_prototypes):
            imgs = torch.nonzero(y == classes[j]).flatten()
            z = z_all[imgs]                                         # (k, D, H, W)
            p = model.prototype_vectors[j].view(1, -1, 1, 1)
            d = ((z - p) ** 2).sum(1)                               # (k, H, W)
            flat = int(d.flatten().argmin())
            h, w = d.shape[1:]
            k, r, c = flat // (h * w), flat % (h * w) // w, flat % w
            model.prototype_vectors.data[j] = z[k, :, r, c].view(-1, 1, 1)
            chosen.append({"prototype": j, "image": int(imgs[k]), "row": r, "col": c,
                           "distance": float(d.flatten()[flat])})
    return chosen


def accuracy(model, x, y, norm, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            correct += (model(norm(x[i:i + batch]))[0].argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(y)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", required=True, help="a shipped VGG-style hfc-eval model (.bin)")
    ap.add_argument("--bn", dest="bn", action="store_true", default=True)
    ap.add_argument("--no-bn", dest="bn", action="store_false")
    ap.add_argument("--per-class", type=int, default=10, help="prototypes per class")
    ap.add_argument("--depth", type=int, default=128, help="prototype depth D")
    ap.add_argument("--warm-epochs", type=int, default=5)
    ap.add_argument("--joint-epochs", type=int, default=1)
    ap.add_argument("--last-epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=3e-3, help="add-on layers and prototypes")
    ap.add_argument("--lr-features", type=float, default=1e-4)
    ap.add_argument("--lr-last", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N training images (smoke runs)")
    ap.add_argument("--data", default=os.environ.get("HFC_DATA", "../shared/cifar-10-batches-bin"))
    ap.add_argument("--out", required=True, help="output prefix: OUT.pt, OUT.json, OUT.bin")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.time()
    norm = normalizer("cpu")
    xtr, ytr = load_split(args.data, [f"data_batch_{k}.bin" for k in range(1, 6)])
    xte, yte = load_split(args.data, ["test_batch.bin"])
    if args.limit:
        xtr, ytr = xtr[:args.limit], ytr[:args.limit]
    xtr, ytr = torch.from_numpy(xtr), torch.from_numpy(ytr)
    xte, yte = torch.from_numpy(xte), torch.from_numpy(yte)

    vgg = export_pytorch.load_into(hfc_models.VGG(bn=args.bn), args.backbone).eval()
    backbone_acc = (lambda x, y: sum((vgg(norm(x[i:i + 500])).argmax(1) == y[i:i + 500]).sum().item()
                                     for i in range(0, len(y), 500)) / len(y))
    with torch.no_grad():
        base = backbone_acc(xte, yte)
    model = hfc_models.vgg_protopnet(bn=args.bn, per_class=args.per_class, depth=args.depth)
    model.features.load_state_dict(torch.nn.Sequential(*list(vgg.features)[:-1]).state_dict())
    model.eval()  # BatchNorm keeps the backbone's statistics throughout
    log = {"backbone_test_accuracy": base}

    feats = backbone_features(model, xtr, norm)
    epochs_on_features(model, list(model.add_on_layers.parameters()) + [model.prototype_vectors],
                       feats, ytr, args.warm_epochs, args.lr, args.batch_size)
    log["after_warm_up"] = accuracy(model, xte, yte, norm)
    if args.joint_epochs:
        joint(model, xtr, ytr, norm, args.joint_epochs, args)
        model.eval()
        feats = backbone_features(model, xtr, norm)
        log["after_joint"] = accuracy(model, xte, yte, norm)
    chosen = push(model, feats, ytr)
    log["after_push"] = accuracy(model, xte, yte, norm)
    epochs_on_features(model, [model.last_layer.weight], feats, ytr, args.last_epochs, args.lr_last,
                       args.batch_size, last=True)
    log["test_accuracy"] = accuracy(model, xte, yte, norm)
    meta = {
        "architecture": "ProtoPNet", "backbone": os.path.basename(args.backbone), "bn": args.bn,
        "prototypes": model.num_prototypes, "per_class": args.per_class, "depth": args.depth,
        "similarity": "log", "epsilon": model.epsilon, "seed": args.seed,
        "stages": {"warm_epochs": args.warm_epochs, "joint_epochs": args.joint_epochs,
                   "last_epochs": args.last_epochs},
        "lr": {"add_on_and_prototypes": args.lr, "features": args.lr_features, "last": args.lr_last},
        "loss": {"cluster": CLUSTER, "separation": SEPARATION, "l1_wrong_class": L1},
        "optimizer": "Adam", "batch_size": args.batch_size, "train_images": len(ytr),
        "train_seconds": round(time.time() - start, 1), **log,
        "test_images": len(yte), "push": chosen,
        "command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
    }
    torch.save(model.state_dict(), args.out + ".pt")
    with open(args.out + ".json", "w") as f:
        json.dump(meta, f, indent=1)
    save_bin(model, args.out + ".bin", meta)
    print(json.dumps({k: v for k, v in meta.items() if k != "push"}))


def save_bin(model, path, meta):
    """OUT.bin with f16 weights (as the shipped backbones: under 5 MB)."""
    try:
        export_pytorch.export(model.eval(), path, mean=hfc_models.CIFAR10_MEAN, std=hfc_models.CIFAR10_STD,
                              classes=hfc_models.CIFAR10_CLASSES, dtype="f16",
                              metadata={**{k: v for k, v in meta.items() if k != "push"},
                                        "weights_dtype": "f16"})
    except export_pytorch.ExportError as e:
        print(f"protopnet.py: {path} not written: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
