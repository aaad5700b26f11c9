#!/usr/bin/python3
"""Convert a PyTorch CNN into an hfc-eval model file (format: docs/model-format.md).

The model is traced with torch.fx, so any nn.Module built from the supported
operations converts without per-architecture code:

  nn.Conv2d (groups=1, dilation=1)   nn.BatchNorm2d (running statistics)
  nn.ReLU / F.relu / torch.relu / x.relu()
  nn.MaxPool2d / F.max_pool2d        nn.AvgPool2d / F.avg_pool2d
  nn.AdaptiveAvgPool2d(1) / F.adaptive_avg_pool2d(x, 1) / x.mean((2, 3))
  nn.Flatten / torch.flatten(x, 1) / x.flatten(1) / x.view(x.size(0), -1)
  nn.Linear                          x + y / torch.add(x, y)
  nn.Identity / nn.Dropout (no-ops in eval mode)
  x[:, :, ::s, ::s]  (spatial subsampling)
  F.pad(x, (0, 0, 0, 0, a, b))  (zero padding of the channel dimension)

Anything else is an error naming the operation and the node.

Python:   sys.path.insert(0, "tools"); from export_pytorch import export
          export(model, "model.bin", mean=(...), std=(...), scale=1/255, classes=[...])
Command:  tools/export_pytorch.py --family preact --no-bn --checkpoint ckpt.pt model.bin
"""

import argparse
import json
import operator
import os
import struct
import sys

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

MAGIC = b"HFCMODEL"
VERSION = 1
ALIGN = 64


class ExportError(Exception):
    """The model uses something the hfc-eval engine cannot run."""


def _pair(v):
    return [int(v), int(v)] if isinstance(v, int) else [int(v[0]), int(v[1])]


def _is_full_slice(s):
    return isinstance(s, slice) and s.start in (None, 0) and s.stop is None and s.step in (None, 1)


class _Converter:
    def __init__(self, model, dtype):
        self.model = model
        self.modules = dict(model.named_modules())
        self.dtype = dtype
        self.nodes = []       # hfc-eval nodes (dicts)
        self.tensors = []     # (name, np.ndarray)
        self.tensor_names = set()
        self.alias = {}       # fx node name -> hfc node name
        self.shape_values = set()  # fx nodes holding sizes, not tensors

    # -- helpers -------------------------------------------------------
    def src(self, arg, fx_node):
        if not isinstance(arg, torch.fx.Node):
            raise ExportError(f"{fx_node.name}: expected a tensor input, got {arg!r}")
        if arg.name in self.shape_values:
            raise ExportError(f"{fx_node.name}: uses a tensor size as a tensor")
        return self.alias[arg.name]

    def tensor(self, name, value):
        if value is None:
            return None
        arr = value.detach().cpu().float().numpy()
        if not np.all(np.isfinite(arr)):
            raise ExportError(f"tensor {name} holds NaN or Inf")
        if name not in self.tensor_names:
            self.tensor_names.add(name)
            self.tensors.append((name, arr))
        return name

    def emit(self, fx_node, op, inputs, **attrs):
        node = {"name": fx_node.name, "op": op, "inputs": inputs}
        node.update({k: v for k, v in attrs.items() if v is not None})
        self.nodes.append(node)
        self.alias[fx_node.name] = fx_node.name

    # -- one fx node -----------------------------------------------------
    def convert(self, n):
        if n.op == "placeholder":
            if "input" in self.alias.values():
                raise ExportError("the model must take exactly one input tensor")
            self.alias[n.name] = "input"
        elif n.op == "output":
            out = n.args[0]
            if not isinstance(out, torch.fx.Node):
                raise ExportError("the model must return one tensor (the logits)")
            self.output = self.src(out, n)
        elif n.op == "call_module":
            self.module(n, self.modules[n.target])
        elif n.op == "call_function":
            self.function(n, n.target)
        elif n.op == "call_method":
            self.method(n, n.target)
        elif n.op == "get_attr":
            raise ExportError(f"{n.name}: reads parameter {n.target} directly; unsupported")
        else:
            raise ExportError(f"{n.name}: unsupported fx node kind {n.op}")

    def module(self, n, m):
        x = self.src(n.args[0], n) if n.args else None
        prefix = n.target
        if isinstance(m, (nn.Identity, nn.Dropout)):
            self.alias[n.name] = x
        elif isinstance(m, nn.Conv2d):
            if m.groups != 1 or tuple(m.dilation) != (1, 1):
                raise ExportError(f"{prefix}: Conv2d with groups or dilation is unsupported")
            if m.padding_mode != "zeros" or isinstance(m.padding, str):
                raise ExportError(f"{prefix}: Conv2d padding must be explicit zero padding")
            self.emit(n, "conv2d", [x], weight=self.tensor(prefix + ".weight", m.weight),
                      bias=self.tensor(prefix + ".bias", m.bias),
                      stride=_pair(m.stride), padding=_pair(m.padding))
        elif isinstance(m, nn.BatchNorm2d):
            if m.running_mean is None:
                raise ExportError(f"{prefix}: BatchNorm2d without running statistics")
            self.emit(n, "batchnorm", [x],
                      weight=self.tensor(prefix + ".weight", m.weight) if m.affine else None,
                      bias=self.tensor(prefix + ".bias", m.bias) if m.affine else None,
                      mean=self.tensor(prefix + ".running_mean", m.running_mean),
                      var=self.tensor(prefix + ".running_var", m.running_var), eps=float(m.eps))
        elif isinstance(m, nn.ReLU):
            self.emit(n, "relu", [x])
        elif isinstance(m, nn.MaxPool2d):
            self.maxpool(n, x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
        elif isinstance(m, nn.AvgPool2d):
            self.avgpool(n, x, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                         m.count_include_pad, m.divisor_override)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            self.adaptive(n, x, m.output_size)
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise ExportError(f"{prefix}: only Flatten(1, -1) is supported")
            self.emit(n, "flatten", [x])
        elif isinstance(m, nn.Linear):
            self.emit(n, "linear", [x], weight=self.tensor(prefix + ".weight", m.weight),
                      bias=self.tensor(prefix + ".bias", m.bias))
        else:
            raise ExportError(f"{prefix}: unsupported module {type(m).__name__}")

    def function(self, n, f):
        a, kw = n.args, n.kwargs
        if f in (F.relu, torch.relu):
            self.emit(n, "relu", [self.src(a[0], n)])
        elif f in (operator.add, torch.add):
            if len(a) != 2 or kw.get("alpha", 1) != 1:
                raise ExportError(f"{n.name}: add must have two tensor operands")
            self.emit(n, "add", [self.src(a[0], n), self.src(a[1], n)])
        elif f is torch.flatten:
            start = a[1] if len(a) > 1 else kw.get("start_dim", 0)
            end = a[2] if len(a) > 2 else kw.get("end_dim", -1)
            if start != 1 or end != -1:
                raise ExportError(f"{n.name}: only torch.flatten(x, 1) is supported")
            self.emit(n, "flatten", [self.src(a[0], n)])
        elif f is F.adaptive_avg_pool2d:
            self.adaptive(n, self.src(a[0], n), a[1] if len(a) > 1 else kw["output_size"])
        elif f is F.max_pool2d:
            k = a[1] if len(a) > 1 else kw["kernel_size"]
            s = a[2] if len(a) > 2 else kw.get("stride")
            p = a[3] if len(a) > 3 else kw.get("padding", 0)
            self.maxpool(n, self.src(a[0], n), k, s or k, p, kw.get("dilation", 1),
                         kw.get("ceil_mode", False))
        elif f is F.avg_pool2d:
            k = a[1] if len(a) > 1 else kw["kernel_size"]
            s = a[2] if len(a) > 2 else kw.get("stride")
            p = a[3] if len(a) > 3 else kw.get("padding", 0)
            self.avgpool(n, self.src(a[0], n), k, s or k, p, kw.get("ceil_mode", False),
                         kw.get("count_include_pad", True), kw.get("divisor_override"))
        elif f is F.pad:
            self.pad(n, a, kw)
        elif f is operator.getitem:
            self.getitem(n, a)
        elif f is getattr and len(a) == 2 and a[1] == "shape":
            self.shape_values.add(n.name)
        else:
            name = getattr(f, "__name__", repr(f))
            raise ExportError(f"{n.name}: unsupported operation {name}")

    def method(self, n, name):
        a, kw = n.args, n.kwargs
        if name == "size":
            self.shape_values.add(n.name)
        elif name in ("relu", "relu_"):
            self.emit(n, "relu", [self.src(a[0], n)])
        elif name in ("view", "reshape"):
            dims = list(a[1:]) if len(a) > 2 or not isinstance(a[1], (tuple, list)) else list(a[1])
            first_ok = isinstance(dims[0], torch.fx.Node) and dims[0].name in self.shape_values
            if len(dims) != 2 or dims[1] != -1 or not first_ok:
                raise ExportError(f"{n.name}: only x.{name}(x.size(0), -1) is supported")
            self.emit(n, "flatten", [self.src(a[0], n)])
        elif name == "flatten":
            start = a[1] if len(a) > 1 else kw.get("start_dim", 0)
            if start != 1 or (a[2] if len(a) > 2 else kw.get("end_dim", -1)) != -1:
                raise ExportError(f"{n.name}: only x.flatten(1) is supported")
            self.emit(n, "flatten", [self.src(a[0], n)])
        elif name == "mean":
            dims = a[1] if len(a) > 1 else kw.get("dim")
            dims = sorted(d % 4 for d in (dims if isinstance(dims, (tuple, list)) else [dims]))
            if dims != [2, 3]:
                raise ExportError(f"{n.name}: only x.mean((2, 3)) is supported")
            self.emit(n, "global_avgpool", [self.src(a[0], n)])
        elif name == "contiguous":
            self.alias[n.name] = self.src(a[0], n)
        elif name == "add" and len(a) == 2:
            self.emit(n, "add", [self.src(a[0], n), self.src(a[1], n)])
        else:
            raise ExportError(f"{n.name}: unsupported method .{name}()")

    # -- shared shapes of ops ---------------------------------------------
    def maxpool(self, n, x, k, s, p, dilation, ceil_mode):
        if ceil_mode or _pair(dilation) != [1, 1]:
            raise ExportError(f"{n.name}: max pool with ceil_mode or dilation is unsupported")
        self.emit(n, "maxpool2d", [x], kernel=_pair(k), stride=_pair(s if s else k), padding=_pair(p))

    def avgpool(self, n, x, k, s, p, ceil_mode, include_pad, divisor):
        if ceil_mode or divisor is not None:
            raise ExportError(f"{n.name}: avg pool with ceil_mode or divisor_override is unsupported")
        self.emit(n, "avgpool2d", [x], kernel=_pair(k), stride=_pair(s if s else k),
                  padding=_pair(p), count_include_pad=bool(include_pad))

    def adaptive(self, n, x, size):
        if _pair(size) != [1, 1]:
            raise ExportError(f"{n.name}: only adaptive average pooling to 1x1 is supported")
        self.emit(n, "global_avgpool", [x])

    def pad(self, n, a, kw):
        pads = list(a[1] if len(a) > 1 else kw["pad"])
        mode = a[2] if len(a) > 2 else kw.get("mode", "constant")
        value = a[3] if len(a) > 3 else kw.get("value", 0)
        if (mode != "constant" or value not in (0, 0.0, None) or len(pads) != 6
                or any(pads[:4]) or min(pads) < 0):
            raise ExportError(f"{n.name}: only F.pad(x, (0, 0, 0, 0, a, b)) with zeros is supported")
        self.emit(n, "pad_channels", [self.src(a[0], n)], before=int(pads[4]), after=int(pads[5]))

    def getitem(self, n, a):
        base, idx = a
        if isinstance(base, torch.fx.Node) and base.name in self.shape_values:
            self.shape_values.add(n.name)
            return
        if not (isinstance(idx, tuple) and len(idx) == 4 and _is_full_slice(idx[0])
                and _is_full_slice(idx[1]) and all(isinstance(s, slice) and s.start in (None, 0)
                                                  and s.stop is None for s in idx[2:])):
            raise ExportError(f"{n.name}: only x[:, :, ::s, ::s] indexing is supported")
        self.emit(n, "subsample", [self.src(base, n)],
                  stride=[idx[2].step or 1, idx[3].step or 1])


def _json_safe(value):
    return json.loads(json.dumps(value, default=str))


def export(model, path, *, mean, std, scale=1 / 255, classes=None, metadata=None,
           input_shape=(3, 32, 32), dtype="f32"):
    """Trace `model` and write it to `path` in hfc-eval's model format.

    mean, std: per-channel preprocessing applied after `scale`:
               x_model = (x_pixel * scale - mean[c]) / std[c].
    classes:   class names (default: "0".."K-1").
    dtype:     "f32" (default) or "f16" storage for the weights.
    """
    if dtype not in ("f32", "f16"):
        raise ValueError("dtype must be 'f32' or 'f16'")
    model = model.eval()
    graph = torch.fx.symbolic_trace(model)
    conv = _Converter(graph, dtype)
    conv.modules = dict(graph.named_modules())
    for n in graph.graph.nodes:
        conv.convert(n)
    if not hasattr(conv, "output"):
        raise ExportError("the traced graph has no output")

    c = input_shape[0]
    if len(mean) != c or len(std) != c:
        raise ValueError(f"mean and std need {c} values")
    with torch.no_grad():
        k = int(model(torch.zeros(1, *input_shape)).shape[1])
    classes = list(classes) if classes is not None else [str(i) for i in range(k)]
    if len(classes) != k:
        raise ValueError(f"model has {k} outputs but {len(classes)} class names were given")

    np_dtype = np.dtype("<f4") if dtype == "f32" else np.dtype("<f2")
    entries, blobs, offset = [], [], 0
    for name, arr in conv.tensors:
        data = np.ascontiguousarray(arr.astype(np_dtype)).tobytes()
        entries.append({"name": name, "dtype": dtype, "shape": list(arr.shape),
                        "offset": offset, "nbytes": len(data)})
        pad = (-len(data)) % ALIGN
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad

    header = {
        "input": {"channels": c, "height": input_shape[1], "width": input_shape[2],
                  "scale": float(scale), "mean": [float(v) for v in mean],
                  "std": [float(v) for v in std]},
        "classes": classes,
        "tensors": entries,
        "nodes": conv.nodes,
        "output": conv.output,
        "metadata": _json_safe(metadata or {}),
    }
    text = json.dumps(header, separators=(",", ":")).encode()
    head = MAGIC + struct.pack("<IIQ", VERSION, 0, len(text)) + text
    head += b"\0" * ((-len(head)) % ALIGN)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
    return header


def read(path):
    """Read an hfc-eval model file: (header dict, {tensor name: float32 array})."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:8] != MAGIC:
        raise ValueError(f"{path}: not an hfc-eval model (bad magic)")
    version, _, hlen = struct.unpack_from("<IIQ", raw, 8)
    if version != VERSION:
        raise ValueError(f"{path}: format version {version}, expected {VERSION}")
    header = json.loads(raw[24:24 + hlen])
    base = 24 + hlen + (-(24 + hlen)) % ALIGN
    tensors = {}
    for t in header["tensors"]:
        dt = np.dtype("<f4") if t["dtype"] == "f32" else np.dtype("<f2")
        start = base + t["offset"]
        arr = np.frombuffer(raw[start:start + t["nbytes"]], dtype=dt)
        tensors[t["name"]] = arr.astype(np.float32).reshape(t["shape"])
    return header, tensors


def load_into(model, path):
    """Load the weights of an hfc-eval model file back into a PyTorch module."""
    _, tensors = read(path)
    state = model.state_dict()
    for name, arr in tensors.items():
        if name not in state:
            raise KeyError(f"{path}: tensor {name} is not in {type(model).__name__}")
        state[name] = torch.from_numpy(arr.copy())
    model.load_state_dict(state)
    return model


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import hfc_models
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output", help="model file to write")
    ap.add_argument("--family", required=True, choices=sorted(hfc_models.FAMILIES))
    ap.add_argument("--no-bn", dest="bn", action="store_false", default=True)
    ap.add_argument("--depth", type=int, help="ResNet depth (6n+2) for preact and resnet20")
    ap.add_argument("--checkpoint", help="state_dict saved with torch.save (default: random weights)")
    ap.add_argument("--metadata", help="JSON file to embed as metadata")
    ap.add_argument("--dtype", choices=("f32", "f16"), default="f32")
    ap.add_argument("--seed", type=int, default=0, help="seed for random weights")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    kwargs = {"depth": args.depth} if args.depth else {}
    model = hfc_models.build(args.family, bn=args.bn, **kwargs)
    if args.checkpoint:
        model.load_state_dict(torch.load(args.checkpoint, map_location="cpu"))
    meta = {}
    if args.metadata:
        with open(args.metadata) as f:
            meta = json.load(f)
    meta.setdefault("family", args.family)
    meta.setdefault("bn", args.bn)
    try:
        export(model, args.output, mean=hfc_models.CIFAR10_MEAN, std=hfc_models.CIFAR10_STD,
               classes=hfc_models.CIFAR10_CLASSES, metadata=meta, dtype=args.dtype)
    except ExportError as e:
        sys.exit(f"export_pytorch.py: {e}")


if __name__ == "__main__":
    main()
