#!/usr/bin/python3
"""torchvision's own architectures through both conversion routes (#26):
each built with num_classes=10 and random weights, BatchNorm statistics
measured on real images and then perturbed, the classifier centred on
those images' features (so that at least 5 classes are predicted and every
count depends on the input), converted by tools/export_pytorch.py and by
ONNX with a dynamic batch axis through tools/onnx_to_hfc.py, then hfc-eval's
correct counts at r = 0, 4, 8 compared with the same model's in PyTorch on
the same split (tools/reference.py's numpy route).

  tests/torchvision_zoo.py HFC_EVAL IMAGES.npy LABELS.npy OUTDIR [NAME...]

Prints PASS/FAIL per architecture and route; exit 1 on a failure."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import export_pytorch  # noqa: E402
import onnx_to_hfc  # noqa: E402
from reference import paper_split  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
ARCHS = ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "mobilenet_v2",
         "mobilenet_v3_small", "mobilenet_v3_large", "mnasnet0_5", "shufflenet_v2_x1_0",
         "regnet_x_400mf", "regnet_y_400mf", "squeezenet1_1", "googlenet", "densenet121",
         "vgg11_bn", "efficientnet_b0", "convnext_tiny", "convnext_slim",
         "googlenet+transform_input"]
RADII = [0, 4, 8]


def build(name):
    import torchvision
    kw = {"num_classes": 10}
    if name == "convnext_slim":  # torchvision's ConvNeXt class, a quarter of convnext_tiny's width
        from torchvision.models.convnext import CNBlockConfig, ConvNeXt
        widths, depths = (24, 48, 96, 192), (2, 2, 3, 2)
        return ConvNeXt([CNBlockConfig(w, nxt, d) for w, nxt, d in zip(widths, widths[1:] + (None,), depths)],
                        stochastic_depth_prob=0.1, **kw)
    name, _, option = name.partition("+")  # "googlenet+transform_input": that option set
    if name == "googlenet":
        kw.update(aux_logits=False, init_weights=True)
    if option:
        kw[option] = True
    return getattr(torchvision.models, name)(**kw)


def normalise(x):
    x = torch.from_numpy(np.ascontiguousarray(x)).float() / 255
    return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


def randomise(m, x):
    """BN statistics of these images, perturbed; LayerNorm and layer scale
    perturbed; the last Linear centred and scaled on their features."""
    g = torch.Generator().manual_seed(7)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.momentum = None  # a plain average over the calibration batch
    m.train()
    with torch.no_grad():
        m(x)
    m.eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean += 0.1 * torch.randn(mod.running_mean.shape, generator=g)
                mod.running_var *= 1 + 0.2 * torch.rand(mod.running_var.shape, generator=g)
                mod.weight.mul_(1 + 0.2 * torch.randn(mod.weight.shape, generator=g))
            if isinstance(mod, nn.LayerNorm) and mod.weight is not None:
                mod.weight.mul_(1 + 0.2 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.add_(0.1 * torch.randn(mod.bias.shape, generator=g))
        for name, p in m.named_parameters():
            if name.endswith("layer_scale"):  # ConvNeXt's, 1e-6 at init
                p.copy_(0.5 + 0.1 * torch.randn(p.shape, generator=g))
        # the classifier: the last Linear, or (SqueezeNet) the last 1x1 conv
        heads = [mod for mod in m.modules() if isinstance(mod, (nn.Linear, nn.Conv2d))]
        last, feats = heads[-1], []
        h = last.register_forward_hook(lambda mod, i, o: feats.append(i[0]))
        m(x)
        h.remove()
        f = feats[0] if feats[0].dim() == 2 else feats[0].transpose(0, 1).flatten(1).t()
        # features that barely vary (a saturated ReLU6) get no weight: dividing
        # by their spread would make logits a cancellation of huge terms
        mu, sd = f.mean(0), f.std(0)
        live = sd > 1e-2 * sd.max()
        w = last.weight.view(last.weight.shape[0], -1)
        w[:, ~live] = 0
        w[:, live] /= sd[live][None, :]
        w.mul_(4 / max(1, int(live.sum())) ** 0.5)
        last.bias.copy_(-(w @ mu))


def torch_counts(m, images, labels):
    out = {}
    y = torch.from_numpy(labels)
    with torch.no_grad():
        orig = (m(normalise(images)).argmax(1) == y).sum().item()
        for r in RADII:
            low, high = paper_split(images.astype(np.float64), r)
            out[str(r)] = {"original": orig,
                           "low": (m(normalise(low)).argmax(1) == y).sum().item(),
                           "high": (m(normalise(high)).argmax(1) == y).sum().item()}
        classes = len(set(m(normalise(images)).argmax(1).tolist()))
    return out, classes


def hfc_counts(hfc, model, npy, labels):
    r = subprocess.run([hfc, "--data", npy, "--labels", labels, "--layout", "nchw", "--radius",
                        ",".join(map(str, RADII)), model], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr.strip())
    return {str(json.loads(l)["radius"]): json.loads(l)["correct"] for l in r.stdout.splitlines()}


def main():
    hfc, npy, labels_path, out = sys.argv[1:5]
    names = sys.argv[5:] or ARCHS
    images, labels = np.load(npy), np.load(labels_path).astype(np.int64)
    os.makedirs(out, exist_ok=True)
    failed = 0
    for name in names:
        t0 = time.time()
        torch.manual_seed(0)
        m = build(name)
        randomise(m, normalise(images))
        want, classes = torch_counts(m, images, labels)
        routes = {}
        try:
            path = os.path.join(out, name + ".bin")
            export_pytorch.export(m, path, mean=MEAN, std=STD, classes=[str(i) for i in range(10)])
            routes["pytorch"] = path
        except Exception as e:  # an ExportError, or anything else: reported, not a traceback
            routes["pytorch"] = e
        onnx_path = os.path.join(out, name + ".onnx")
        try:
            torch.onnx.export(m, torch.zeros(1, 3, 32, 32), onnx_path, input_names=["x"],
                              dynamic_axes={"x": {0: "n"}}, opset_version=13)
        except Exception as e:  # torch.onnx's own limits: nothing for onnx_to_hfc.py to convert
            print(f"SKIP: torchvision {name} (onnx route): torch.onnx.export cannot write it: "
                  f"{str(e).splitlines()[0][:160]}")
            routes["onnx"] = None
        try:
            path = os.path.join(out, name + ".onnx.bin")
            if routes.get("onnx", 1) is None:
                raise LookupError("no ONNX file")
            onnx_to_hfc.convert(onnx_path, path, mean=MEAN, std=STD, scale=1 / 255)
            routes["onnx"] = path
        except LookupError:
            del routes["onnx"]
        except Exception as e:
            routes["onnx"] = e
        for route, path in routes.items():
            what = f"torchvision {name} ({route} route; {classes} classes predicted)"
            if isinstance(path, Exception):
                print(f"FAIL: {what}: {type(path).__name__}: {str(path)[:200]}")
                failed += 1
                continue
            try:
                got = hfc_counts(hfc, path, npy, labels_path)
            except RuntimeError as e:
                print(f"FAIL: {what}: {str(e)[:200]}")
                failed += 1
                continue
            ok = got == want and classes >= 5
            failed += not ok
            summary = " ".join(f"r={r} {c['original']}/{c['low']}/{c['high']}" for r, c in got.items())
            print(f"{'PASS' if ok else 'FAIL'}: {what}: counts {'equal' if got == want else 'differ from'} "
                  f"PyTorch's: {summary}" + ("" if got == want else f" vs {want}") +
                  f" ({time.time() - t0:.0f} s)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
