#!/usr/bin/python3
"""Convert a PyTorch CNN into an hfc-eval model file (format: docs/model-format.md).

The model is traced with torch.fx, so any nn.Module built from the supported
operations converts without per-architecture code:

  nn.Conv2d (zero padding; groups, dilation)   nn.BatchNorm2d (running statistics)
  ReLU, ReLU6, Sigmoid, SiLU, Hardswish, Hardsigmoid: as modules, F.*, torch.*
      or methods (x.relu(), x.sigmoid()), F.hardtanh(x, 0, 6) as ReLU6
  nn.MaxPool2d / F.max_pool2d        nn.AvgPool2d / F.avg_pool2d
  nn.AdaptiveAvgPool2d(1) / F.adaptive_avg_pool2d(x, 1) / x.mean((2, 3)) /
      F.avg_pool2d(x, x.size(2)) (a window the size of the map)
  nn.Flatten / torch.flatten(x, 1) / x.flatten(1) / x.view(x.size(0), -1)
  nn.Linear
  x + y, x * y, torch.add, torch.mul (same shapes, or one of them (c, 1, 1))
  x + s, x - s, x * s, x / s for a number s (x + 0 and x * 1 vanish)
  torch.cat([...], 1)                x.chunk(k, 1), x.split(n, 1), torch.chunk/split
  channel shuffle: x.view(n, g, c // g, h, w).transpose(1, 2) (or .permute(0, 2,
      1, 3, 4)), then .contiguous() and .view/.reshape(n, c, h, w) or .flatten(1, 2)
  nn.Identity / nn.Dropout (no-ops in eval mode)
  x[:, :, ::s, ::s]  (spatial subsampling)
  F.pad(x, (0, 0, 0, 0, a, b))  (zero padding of the channel dimension)
  nn.GELU / F.gelu (erf form)        nn.AdaptiveAvgPool2d / AdaptiveMaxPool2d to any size
  x.permute(0, 2, 3, 1) ... .permute(0, 3, 1, 2) around per-pixel work:
      nn.LayerNorm(C) / F.layer_norm, nn.Linear (a 1x1 conv), activations, + and *
  p * x for a (c, 1, 1) parameter p after a conv (layer scale: folded into it)
  x[:, k].unsqueeze(1) (transform_input), x.squeeze() of (n, c, 1, 1) features
  ProtoPNet's head as its authors write it (x ** 2, F.conv2d with a parameter
      or constant as weight, arithmetic on parameters, negation, max-pool over
      the whole map, log, division): one prototype layer
      (tools/prototype_pattern.py); a model returning a tuple gives its
      first element as the logits, or the one output_index names

Shapes come from running the traced model once on a zero image, so
`n, c, h, w = x.size()` and sizes computed from it work (x[:, :c] too).
Anything else is an error naming the operation and the node.

Python:   sys.path.insert(0, "tools"); from export_pytorch import export
          export(model, "model.bin", mean=(...), std=(...), scale=1/255, classes=[...])
Command:  tools/export_pytorch.py --family preact --no-bn --checkpoint ckpt.pt model.bin
          tools/export_pytorch.py --upgrade OLD.bin [NEW.bin]   (a version 1-2 file as
          version 3, with its checksum: the same bytes otherwise; NEW defaults to OLD)
"""

import argparse
import hashlib
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prototype_pattern import Pattern, live_nodes  # noqa: E402

MAX_CONCAT = 64  # inputs of one concat node (HFC_MAX_INPUTS in src/layers/node.h)
MAGIC = b"HFCMODEL"
VERSION = 3          # written always: version 2's layers, and a SHA-256 of the file at its end
CHECKSUM = 32        # bytes of that SHA-256
V1_OPS = {"conv2d", "batchnorm", "relu", "maxpool2d", "avgpool2d", "global_avgpool", "flatten",
          "linear", "add", "subsample", "pad_channels"}
ALIGN = 64

UNARY_MODULES = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Sigmoid: "sigmoid", nn.SiLU: "silu",
                 nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid"}
UNARY_FUNCTIONS = {F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", torch.sigmoid: "sigmoid",
                   F.sigmoid: "sigmoid", F.silu: "silu", F.hardswish: "hardswish",
                   F.hardsigmoid: "hardsigmoid"}
UNARY_METHODS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid"}


def _patch_fx_unpacking():
    """torch 1.13's fx finds `a, b = proxy` by indexing dis's instructions with
    f_lasti // 2, which Python 3.11's inline caches break: look the
    instruction up by its offset instead."""
    import dis
    import inspect
    from torch.fx.proxy import Proxy
    if getattr(Proxy, "_hfc_patched", False):
        return

    def __iter__(self):
        frame = inspect.currentframe().f_back
        for inst in dis.get_instructions(frame.f_code):
            if inst.offset == frame.f_lasti and inst.opname == "UNPACK_SEQUENCE":
                return (self[i] for i in range(inst.argval))
        return self.tracer.iter(self)
    Proxy.__iter__ = __iter__
    Proxy._hfc_patched = True


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
        self.multi = {}       # fx node of chunk/split -> [(start, stop), ...] channel ranges
        self.shuffle = {}     # fx node name -> (source hfc node, groups, transposed?)
        self.consts = {}      # fx node name -> a parameter or buffer read by get_attr
        self.nhwc = set()     # fx node names whose value is an hfc node's, permuted to (n, h, w, c)
        self.layout_back = set()  # fx node names of the permutes back to (n, c, h, w)
        self.squeezed = set() # fx node names of x[:, k]: one channel, its axis dropped until unsqueeze(1)
        self.pattern = Pattern()  # ProtoPNet's head, step by step
        self.deferred = {}    # fx node name -> why it has no hfc node (a pattern's step)
        self.output_index = 0 # of a tuple the model returns

    # -- helpers -------------------------------------------------------
    def src(self, arg, fx_node):
        if not isinstance(arg, torch.fx.Node):
            raise ExportError(f"{fx_node.name}: expected a tensor input, got {arg!r}")
        if arg.name in self.shape_values:
            raise ExportError(f"{fx_node.name}: uses a tensor size as a tensor")
        if arg.name in self.consts:
            raise ExportError(f"{fx_node.name}: uses parameter {arg.target} as an input tensor; "
                              "only as a per-channel scale after a conv or linear")
        if arg.name not in self.alias:
            raise ExportError(self.deferred.get(arg.name, f"{fx_node.name}: reads {arg.name}, which has no value"))
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
        elif dict(self.tensors)[name].shape != arr.shape:
            raise ExportError(f"tensor {name} is used in two shapes")
        return name

    def shape(self, node):
        """The shape of an fx node's value when the model ran on a zero image."""
        value = self.values.get(node.name) if isinstance(node, torch.fx.Node) else None
        if not isinstance(value, torch.Tensor):
            raise ExportError(f"{getattr(node, 'name', node)}: not a tensor")
        return tuple(value.shape)

    def concrete(self, v):
        """A size: a number, or the value an fx node of sizes had on the zero image."""
        return self.values.get(v.name) if isinstance(v, torch.fx.Node) else v

    def number(self, v):
        """A Python number, or None for anything else (tensors, sizes)."""
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def emit(self, fx_node, op, inputs, **attrs):
        node = {"name": fx_node.name, "op": op, "inputs": inputs}
        node.update({k: v for k, v in attrs.items() if v is not None})
        self.nodes.append(node)
        self.alias[fx_node.name] = fx_node.name

    # -- one fx node -----------------------------------------------------
    def convert(self, n):
        """One fx node; values permuted channels-last (x.permute(0, 2, 3, 1))
        pass only through what works per pixel on channels: activations,
        LayerNorm, Linear (a 1x1 conv), + and *, and the permute back."""
        args = torch.fx.node.map_arg((n.args, n.kwargs), lambda v: v)
        ins = []
        torch.fx.node.map_arg(args, ins.append)
        last = [v.name in self.nhwc for v in ins if v.name not in self.consts]
        if any(v.name in self.squeezed for v in ins) and not (
                n.target in (torch.unsqueeze, "unsqueeze") and (n.args[1:] or [n.kwargs.get("dim")])[0] == 1):
            raise ExportError(f"{n.name}: uses x[:, k] without restoring its channel axis (.unsqueeze(1))")
        if any(last) and not self.per_pixel(n):
            raise ExportError(f"{n.name}: {getattr(n.target, '__name__', n.target)} on a channels-last "
                              "(permuted) tensor; only activations, LayerNorm, Linear, + and * are")
        if any(last) and not all(last[:2] if n.target in (operator.add, operator.mul, torch.add, torch.mul,
                                                          "add", "mul", "add_", "mul_") else last):
            raise ExportError(f"{n.name}: mixes channels-last and channels-first tensors")
        self.convert_node(n)
        if any(last) and n.name not in self.layout_back:
            self.nhwc.add(n.name)

    def per_pixel(self, n):
        if n.op == "call_module":
            m = self.modules[n.target]
            return (type(m) in UNARY_MODULES or isinstance(m, (nn.GELU, nn.Identity, nn.Dropout,
                                                               nn.LayerNorm, nn.Linear)))
        if n.op == "call_function":
            return n.target in UNARY_FUNCTIONS or n.target in (
                F.gelu, F.dropout, F.layer_norm, operator.add, operator.mul, torch.add, torch.mul,
                torch.permute) or getattr(n.target, "__name__", "") == "stochastic_depth"
        return n.op == "call_method" and (n.target in UNARY_METHODS or n.target in (
            "contiguous", "permute", "add", "add_", "mul", "mul_"))

    def convert_node(self, n):
        if n.op == "placeholder":
            if "input" in self.alias.values():
                raise ExportError("the model must take exactly one input tensor")
            self.alias[n.name] = "input"
        elif n.op == "output":
            out = n.args[0]
            if isinstance(out, (tuple, list)) and 0 <= self.output_index < len(out):
                out = out[self.output_index]
            elif self.output_index:
                raise ExportError(f"output index {self.output_index}: the model returns one tensor")
            if not isinstance(out, torch.fx.Node):
                raise ExportError("the model must return one tensor (the logits), or a tuple of them")
            self.output_value = out
            layer = self.pattern.minimum(out.name)
            if layer:
                self.prototype(n, layer)
                out = n
            self.output = self.src(out, n)
        elif n.op in ("call_function", "call_method") and self.constant(n):
            pass
        elif n.op in ("call_function", "call_method", "call_module") and self.proto_step(n):
            pass
        elif n.op == "call_module":
            self.module(n, self.modules[n.target])
        elif n.op == "call_function":
            self.function(n, n.target)
        elif n.op == "call_method":
            self.method(n, n.target)
        elif n.op == "get_attr":
            value = self.values.get(n.name)
            if not isinstance(value, torch.Tensor):
                raise ExportError(f"{n.name}: reads {n.target}, which is not a tensor")
            self.consts[n.name] = value
        else:
            raise ExportError(f"{n.name}: unsupported fx node kind {n.op}")

    # -- ProtoPNet's head (tools/prototype_pattern.py) ---------------------
    def constant(self, n):
        """Arithmetic on parameters and constants only (sum(P ** 2), views of
        them): its value, computed when the model ran."""
        ins = []
        torch.fx.node.map_arg((n.args, n.kwargs), ins.append)
        value = self.values.get(n.name)
        if not ins or not all(v.name in self.consts for v in ins) or not isinstance(value, torch.Tensor):
            return False
        self.consts[n.name] = value
        return True

    def proto_step(self, n):
        """Tells the pattern what n did. True when n was one of its steps:
        n then has no hfc node of its own (unless a layer closed there), and
        what the usual conversion said of n is kept for anything reading it."""
        P, a, kw, f = self.pattern, n.args, n.kwargs, n.target
        key = lambda v: v.name if isinstance(v, torch.fx.Node) else None  # noqa: E731
        name = f if n.op == "call_method" else getattr(f, "__name__", "")
        if n.op == "call_module":
            name = "relu" if isinstance(self.modules[n.target], nn.ReLU) else ""
        layer = None
        if name in ("pow", "pow_") or f in (operator.pow, torch.pow):
            if len(a) > 1 and a[1] == 2 and key(a[0]):
                P.square(n.name, a[0].name)
        elif f is F.conv2d:
            x, w = (a[0] if a else kw.get("input")), (a[1] if len(a) > 1 else kw.get("weight"))
            b = a[2] if len(a) > 2 else kw.get("bias")
            rest = [a[i] if len(a) > i else kw.get(k, d) for i, k, d in
                    ((3, "stride", 1), (4, "padding", 0), (5, "dilation", 1), (6, "groups", 1))]
            plain = _pair(rest[0]) == [1, 1] and _pair(rest[1]) == [0, 0] and _pair(rest[2]) == [1, 1] and rest[3] == 1
            if key(x) and key(w) in self.consts:
                P.conv(n.name, x.name, self.consts[w.name].detach().double().numpy(), b, plain)
        elif f in (operator.mul, torch.mul) or name == "mul":
            k = [self.number(v) for v in a[:2]]
            if len(a) == 2 and (k[0] is None) != (k[1] is None):
                P.scale(n.name, key(a[0] if k[0] is None else a[1]), k[0] if k[1] is None else k[1])
        elif f in (operator.add, torch.add) or name == "add" or f in (operator.sub, torch.sub):
            sign = -1.0 if f in (operator.sub, torch.sub) else 1.0
            x, y = a[0], a[1] if len(a) > 1 else kw.get("other")
            if key(x) and key(y) and x.name not in self.consts and y.name not in self.consts and sign > 0:
                P.add(n.name, x.name, y.name)
            elif key(x) and (self.number(y) is not None or key(y) in self.consts):
                c = self.number(y) if self.number(y) is not None else self.consts[y.name].double().numpy()
                P.shift(n.name, x.name, sign * c)
            elif key(y) and self.number(x) is not None and sign > 0:
                P.shift(n.name, y.name, self.number(x))
        elif name == "relu" or f in (F.relu, torch.relu):
            P.relu(n.name, key(a[0]))
        elif f in (operator.neg, torch.neg) or name == "neg":
            layer = P.neg(n.name, key(a[0]))
        elif f is F.max_pool2d and key(a[0]):
            k = a[1] if len(a) > 1 else kw.get("kernel_size")
            k = [self.concrete(v) for v in (k if isinstance(k, (tuple, list)) else (k, k))]
            s = a[2] if len(a) > 2 else kw.get("stride")
            p = a[3] if len(a) > 3 else kw.get("padding", 0)
            whole = list(self.shape(a[0])[2:]) == k and (s is None or s == [] or _pair(s) == k) and _pair(p) == [0, 0]
            P.max_over_map(n.name, a[0].name, whole)
        elif name in ("view", "reshape", "flatten", "squeeze") or f in (torch.flatten, torch.squeeze):
            P.reshape(n.name, key(a[0]))
        elif f in (operator.truediv, torch.div) or name == "div":
            P.div(n.name, key(a[0]), key(a[1]))
        elif f is torch.log or name == "log":
            layer = P.log(n.name, key(a[0]))
        if layer:
            self.prototype(n, layer)
            return True
        if n.name not in P.sym and n.name not in P.squares:
            return False
        try:  # the usual conversion, for a reader outside the pattern
            self.convert_usual(n)
        except (ExportError, KeyError) as e:
            self.deferred[n.name] = str(e) if isinstance(e, ExportError) else f"{n.name}: cannot be converted"
        return True

    def prototype(self, n, layer):
        P = layer["P"]
        name = next((v.target for v in self.graph.graph.nodes if v.op == "get_attr"
                     and v.name in self.consts and tuple(self.consts[v.name].shape) == (P.shape[0], P.shape[1], 1, 1)
                     and np.array_equal(self.consts[v.name].detach().double().numpy()[:, :, 0, 0], P)), n.name)
        x = self.alias.get(layer["x"])
        if x is None:
            raise ExportError(self.deferred.get(layer["x"], f"{n.name}: the prototypes' feature map has no value"))
        self.emit(n, "prototype", [x], prototypes=self.tensor(name, torch.from_numpy(P)),
                  similarity=layer["similarity"], epsilon=layer.get("epsilon"))

    def convert_usual(self, n):
        if n.op == "call_module":
            self.module(n, self.modules[n.target])
        elif n.op == "call_function":
            self.function(n, n.target)
        else:
            self.method(n, n.target)

    def module(self, n, m):
        x = self.src(n.args[0], n) if n.args else None
        prefix = n.target
        if isinstance(m, (nn.Identity, nn.Dropout)):
            self.alias[n.name] = x
        elif isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros" or isinstance(m.padding, str):
                raise ExportError(f"{prefix}: Conv2d padding must be explicit zero padding")
            dil = _pair(m.dilation)
            self.emit(n, "conv2d", [x], weight=self.tensor(prefix + ".weight", m.weight),
                      bias=self.tensor(prefix + ".bias", m.bias),
                      stride=_pair(m.stride), padding=_pair(m.padding),
                      groups=int(m.groups) if m.groups != 1 else None,
                      dilation=dil if dil != [1, 1] else None)
        elif isinstance(m, nn.BatchNorm2d):
            if m.running_mean is None:
                raise ExportError(f"{prefix}: BatchNorm2d without running statistics")
            self.emit(n, "batchnorm", [x],
                      weight=self.tensor(prefix + ".weight", m.weight) if m.affine else None,
                      bias=self.tensor(prefix + ".bias", m.bias) if m.affine else None,
                      mean=self.tensor(prefix + ".running_mean", m.running_mean),
                      var=self.tensor(prefix + ".running_var", m.running_var), eps=float(m.eps))
        elif isinstance(m, nn.GELU):
            if m.approximate != "none":
                raise ExportError(f"{prefix}: GELU(approximate={m.approximate!r}); only the exact (erf) form")
            self.emit(n, "gelu", [x])
        elif type(m) in UNARY_MODULES:
            self.emit(n, UNARY_MODULES[type(m)], [x])
        elif isinstance(m, nn.Hardtanh) and (m.min_val, m.max_val) == (0.0, 6.0):
            self.emit(n, "relu6", [x])
        elif isinstance(m, nn.MaxPool2d):
            self.maxpool(n, x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
        elif isinstance(m, nn.AvgPool2d):
            self.avgpool(n, x, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                         m.count_include_pad, m.divisor_override)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            self.adaptive(n, x, m.output_size)
        elif isinstance(m, nn.AdaptiveMaxPool2d):
            if m.return_indices:
                raise ExportError(f"{prefix}: AdaptiveMaxPool2d with return_indices is unsupported")
            self.adaptive(n, x, m.output_size, is_max=True)
        elif isinstance(m, nn.Flatten):
            if not self.flattens(n.args[0], m.start_dim, m.end_dim):
                raise ExportError(f"{prefix}: Flatten({m.start_dim}, {m.end_dim}); only from dimension 1 "
                                  "to the last")
            self.emit(n, "flatten", [x])
        elif isinstance(m, nn.Linear) and n.args[0].name in self.nhwc:  # per pixel: a 1x1 conv
            self.emit(n, "conv2d", [x], weight=self.tensor(prefix + ".weight", m.weight[:, :, None, None]),
                      bias=self.tensor(prefix + ".bias", m.bias))
        elif isinstance(m, nn.Linear):
            self.emit(n, "linear", [x], weight=self.tensor(prefix + ".weight", m.weight),
                      bias=self.tensor(prefix + ".bias", m.bias))
        elif isinstance(m, nn.LayerNorm):
            self.layer_norm(n, n.args[0], m.normalized_shape, m.weight, m.bias, m.eps, prefix)
        else:
            raise ExportError(f"{prefix}: unsupported module {type(m).__name__}")

    def function(self, n, f):
        a, kw = n.args, n.kwargs
        if f in (F.dropout, F.dropout2d, F.alpha_dropout):
            self.alias[n.name] = self.src(a[0], n)
        elif f is F.layer_norm:
            get = lambda i, k, d=None: a[i] if len(a) > i else kw.get(k, d)  # noqa: E731
            self.layer_norm(n, a[0], get(1, "normalized_shape"), get(2, "weight"), get(3, "bias"),
                            get(4, "eps", 1e-5), n.name)
        elif f is torch.unsqueeze or f is torch.squeeze:
            self.squeeze(n, f.__name__, a[0], list(a[1:]) + list(kw.values()))
        elif f is torch.permute:
            self.layout(n, a[0], list(a[1] if len(a) > 1 else kw["dims"]))
        elif f in (operator.mul, torch.mul) and any(isinstance(v, torch.fx.Node) and v.name in self.consts
                                                    for v in a[:2]):
            self.scale_channels(n, a[0], a[1])
        elif f is F.gelu:
            if kw.get("approximate", "none") != "none":
                raise ExportError(f"{n.name}: F.gelu(approximate={kw['approximate']!r}); only the exact (erf) form")
            self.emit(n, "gelu", [self.src(a[0], n)])
        elif f in UNARY_FUNCTIONS:
            self.emit(n, UNARY_FUNCTIONS[f], [self.src(a[0], n)])
        elif f is F.hardtanh and tuple(a[1:3]) + tuple(kw.get(k) for k in ("min_val", "max_val") if k in kw) == (0, 6):
            self.emit(n, "relu6", [self.src(a[0], n)])
        elif f in (operator.add, torch.add, operator.iadd) and kw.get("alpha", 1) == 1:
            self.arith(n, "add", a[0], a[1] if len(a) > 1 else kw["other"])
        elif f in (operator.mul, torch.mul, operator.imul):
            self.arith(n, "mul", a[0], a[1] if len(a) > 1 else kw["other"])
        elif f in (operator.sub, torch.sub) and self.number(a[1]) is not None:
            self.arith(n, "add", a[0], -self.number(a[1]))
        elif f in (operator.truediv, torch.div) and self.number(a[1]) not in (None, 0.0):
            self.arith(n, "mul", a[0], 1.0 / self.number(a[1]))
        elif f is torch.cat:
            self.cat(n, a[0], a[1] if len(a) > 1 else kw.get("dim", 0))
        elif f in (torch.chunk, torch.split):
            self.chunk_split(n, "chunk" if f is torch.chunk else "split", a[0],
                             a[1] if len(a) > 1 else kw.get("chunks", kw.get("split_size_or_sections")),
                             a[2] if len(a) > 2 else kw.get("dim", 0))
        elif f is torch.transpose:
            self.shuffle_step(n, "transpose", a[0], list(a[1:]))
        elif f is torch.flatten:
            start = a[1] if len(a) > 1 else kw.get("start_dim", 0)
            end = a[2] if len(a) > 2 else kw.get("end_dim", -1)
            if not self.flattens(a[0], start, end):
                raise ExportError(f"{n.name}: torch.flatten(x, {start}, {end}); only from dimension 1 to the last")
            self.emit(n, "flatten", [self.src(a[0], n)])
        elif f is F.adaptive_avg_pool2d:
            self.adaptive(n, self.src(a[0], n), a[1] if len(a) > 1 else kw["output_size"])
        elif f is F.adaptive_max_pool2d and not kw.get("return_indices", False):
            self.adaptive(n, self.src(a[0], n), a[1] if len(a) > 1 else kw["output_size"], True)
        elif getattr(f, "__name__", "") == "stochastic_depth" and "torchvision" in getattr(f, "__module__", ""):
            training = a[3] if len(a) > 3 else kw.get("training", True)
            if training:
                raise ExportError(f"{n.name}: stochastic_depth in training mode (call model.eval() first)")
            self.alias[n.name] = self.src(a[0], n)  # identity in eval mode
        elif f is F.max_pool2d:
            k = a[1] if len(a) > 1 else kw["kernel_size"]
            s = a[2] if len(a) > 2 else kw.get("stride")
            p = a[3] if len(a) > 3 else kw.get("padding", 0)
            self.maxpool(n, self.src(a[0], n), k, s or k, p, kw.get("dilation", 1),
                         kw.get("ceil_mode", False))
        elif f is F.avg_pool2d and self.map_sized(n, a, kw):
            self.emit(n, "global_avgpool", [self.src(a[0], n)])
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
        elif any(isinstance(v, torch.fx.Node) and v.name in self.shape_values for v in a):
            self.shape_values.add(n.name)  # arithmetic on sizes, e.g. c // g
        else:
            name = getattr(f, "__name__", repr(f))
            raise ExportError(f"{n.name}: unsupported operation {name}")

    def method(self, n, name):
        a, kw = n.args, n.kwargs
        if name == "size":
            self.shape_values.add(n.name)
        elif name in UNARY_METHODS:
            self.emit(n, UNARY_METHODS[name], [self.src(a[0], n)])
        elif name in ("add", "add_", "mul", "mul_") and len(a) == 2:
            self.arith(n, name.rstrip("_"), a[0], a[1])
        elif name in ("chunk", "split"):
            self.chunk_split(n, name, a[0], a[1] if len(a) > 1 else kw.get("chunks", kw.get("split_size")),
                             a[2] if len(a) > 2 else kw.get("dim", 0))
        elif name in ("squeeze", "unsqueeze"):
            self.squeeze(n, name, a[0], list(a[1:]) + list(kw.values()))
        elif name == "permute" and not (isinstance(a[0], torch.fx.Node) and a[0].name in self.shuffle):
            self.layout(n, a[0], list(a[1:]) if not isinstance(a[1], (tuple, list)) else list(a[1]))
        elif name in ("transpose", "permute"):
            self.shuffle_step(n, name, a[0], list(a[1:]) if name == "transpose" or not isinstance(a[1], (tuple, list)) else list(a[1]))
        elif name in ("view", "reshape") and self.shuffle_step(n, name, a[0], None):
            pass
        elif name in ("view", "reshape"):
            dims = list(a[1:]) if len(a) > 2 or not isinstance(a[1], (tuple, list)) else list(a[1])
            src, out = self.shape(a[0]), self.shape(n)
            if len(out) != 2 or out[1] != int(np.prod(src[1:])) or -1 not in dims[:1] + dims[1:] and not (
                    isinstance(dims[0], torch.fx.Node) and dims[0].name in self.shape_values):
                raise ExportError(f"{n.name}: only x.{name}(x.size(0), -1), x.{name}(-1, c*h*w) and the like "
                                  "(a flatten) are supported")
            self.emit(n, "flatten", [self.src(a[0], n)])
        elif name == "flatten" and self.shuffle_step(n, name, a[0], None):
            pass
        elif name == "flatten":
            start = a[1] if len(a) > 1 else kw.get("start_dim", 0)
            end = a[2] if len(a) > 2 else kw.get("end_dim", -1)
            if not self.flattens(a[0], start, end):
                raise ExportError(f"{n.name}: x.flatten({start}, {end}); only from dimension 1 to the last")
            self.emit(n, "flatten", [self.src(a[0], n)])
        elif name == "mean":
            dims = a[1] if len(a) > 1 else kw.get("dim")
            dims = sorted(d % 4 for d in (dims if isinstance(dims, (tuple, list)) else [dims]))
            if dims != [2, 3]:
                raise ExportError(f"{n.name}: only x.mean((2, 3)) is supported")
            self.emit(n, "global_avgpool", [self.src(a[0], n)])
        elif name == "contiguous" and a[0].name in self.shuffle:
            self.shuffle[n.name] = self.shuffle[a[0].name]
        elif name == "contiguous":
            self.alias[n.name] = self.src(a[0], n)
        else:
            raise ExportError(f"{n.name}: unsupported method .{name}()")

    # -- arithmetic, concat, chunks, shuffles -----------------------------
    def arith(self, n, op, a, b):
        """a (+|*) b: two tensors -> add/mul; a tensor and a number -> affine,
        or nothing for x + 0 and x * 1; sizes -> a size."""
        if any(isinstance(v, torch.fx.Node) and v.name in self.shape_values for v in (a, b)):
            self.shape_values.add(n.name)
            return
        if not isinstance(a, torch.fx.Node):
            a, b = b, a
        k = self.number(b)
        if k is None:
            self.emit(n, op, [self.src(a, n), self.src(b, n)])
        elif (op == "add" and k == 0) or (op == "mul" and k == 1):
            self.alias[n.name] = self.src(a, n)
        elif op == "add":
            self.emit(n, "affine", [self.src(a, n)], shift=k)
        else:
            self.emit(n, "affine", [self.src(a, n)], scale=k)

    def flattens(self, x, start, end):
        """Whether flatten(x, start, end) is (n, features) in PyTorch's order:
        from dimension 1 to the last, however spelt (1, -1), (1, 3)."""
        rank = len(self.shape(x))
        return start % rank == 1 and end % rank == rank - 1

    def squeeze(self, n, name, x, dims):
        """x[:, k].unsqueeze(1) (GoogLeNet's and Inception's transform_input)
        and x.squeeze() of (n, c, 1, 1) features."""
        if name == "unsqueeze" and x.name in self.squeezed and dims[:1] == [1]:
            self.alias[n.name] = self.src(x, n)
            return
        src, out = self.shape(x), self.shape(n)
        if name == "squeeze" and len(src) == 4 and src[2:] == (1, 1) and len(out) == 2 and out[0] == src[0]:
            self.emit(n, "flatten", [self.src(x, n)])
            return
        raise ExportError(f"{n.name}: {name}{tuple(dims)} of a {tuple(src)} tensor; only x[:, k].unsqueeze(1) "
                          "and the squeeze of (n, c, 1, 1) features to (n, c)")

    def layout(self, n, x, dims):
        """x.permute(0, 2, 3, 1) and back: hfc-eval's tensors are (h, w, c) per
        image already, so the permute changes only what later ops must be."""
        dims = [d % 4 for d in dims]
        if len(self.shape(x)) == 4 and dims == [0, 2, 3, 1] and x.name not in self.nhwc:
            self.alias[n.name] = self.src(x, n)
            self.nhwc.add(n.name)
        elif dims == [0, 3, 1, 2] and x.name in self.nhwc:
            self.alias[n.name] = self.src(x, n)
            self.layout_back.add(n.name)
        else:
            raise ExportError(f"{n.name}: permute{tuple(dims)}; only (0, 2, 3, 1) to channels-last and "
                              "(0, 3, 1, 2) back, or a channel shuffle")

    def layer_norm(self, n, x, shape, weight, bias, eps, prefix):
        """LayerNorm over the channels of each pixel: of a channels-last
        tensor, or of flat features (n, c)."""
        dims = self.shape(x)
        if tuple(shape) != dims[-1:] or not (x.name in self.nhwc or len(dims) == 2):
            raise ExportError(f"{n.name}: LayerNorm over {tuple(shape)} of a {tuple(dims)} tensor; only over "
                              "the channels of a channels-last (permuted) or (n, c) tensor")
        val = lambda v: self.consts[v.name] if isinstance(v, torch.fx.Node) else v  # noqa: E731
        self.emit(n, "layernorm", [self.src(x, n)], eps=float(eps),
                  weight=self.tensor(prefix + ".weight", val(weight)),
                  bias=self.tensor(prefix + ".bias", val(bias)))

    def scale_channels(self, n, a, b):
        """x * p for a parameter p of shape (c, 1, 1) (ConvNeXt's layer scale):
        folded into the conv or linear that made x, when nothing else reads it."""
        p, x = (a, b) if a.name in self.consts else (b, a)
        scale = self.consts[p.name]
        c = self.shape(x)[1] if len(self.shape(x)) > 1 else 0
        if not (isinstance(x, torch.fx.Node) and x.name not in self.consts and len(self.shape(x)) == 4
                and scale.numel() == c and tuple(scale.shape[-3:])[-2:] == (1, 1)):
            raise ExportError(f"{n.name}: multiplies by parameter {p.target} {tuple(scale.shape)}; only a "
                              "(c, 1, 1) scale of a conv's output is supported")
        v = x
        while self.alias.get(v.name) != v.name and len(v.users) == 1 and v.args:
            v = v.args[0]  # back through permutes, dropouts, identities
        node = next((d for d in self.nodes if d["name"] == self.alias.get(v.name)), None)
        if node is None or node["op"] != "conv2d" or len(v.users) != 1 or self.alias[v.name] != v.name:
            raise ExportError(f"{n.name}: the scale {p.target} follows no conv or linear it can be folded into")
        tensors = dict(self.tensors)
        s = scale.detach().float().reshape(-1)
        for key, shaped in (("weight", s[:, None, None, None]), ("bias", s)):
            if key in node:
                node[key] = self.tensor(f"{node[key]}*{p.target}", torch.from_numpy(tensors[node[key]]) * shaped)
        self.alias[n.name] = node["name"]

    def map_sized(self, n, a, kw):
        """F.avg_pool2d(x, x.size(2)) and the like: a window the size of the map."""
        k = a[1] if len(a) > 1 else kw.get("kernel_size")
        if not (isinstance(k, torch.fx.Node) and k.name in self.shape_values):
            return False
        if (a[2] if len(a) > 2 else kw.get("stride")) is not None:
            return False
        h, w = self.shape(a[0])[2:]
        if h != w:
            raise ExportError(f"{n.name}: a size-dependent pooling window on a {h}x{w} map")
        return True

    def cat(self, n, items, dim):
        if dim not in (1, -3) or not isinstance(items, (list, tuple)):
            raise ExportError(f"{n.name}: only torch.cat([...], 1) (channels) is supported")
        if not 1 <= len(items) <= MAX_CONCAT:
            raise ExportError(f"{n.name}: concat of {len(items)} tensors (hfc-eval takes 1 to {MAX_CONCAT})")
        self.emit(n, "concat", [self.src(v, n) for v in items])

    def chunk_split(self, n, kind, x, arg, dim):
        if dim not in (1, -3):
            raise ExportError(f"{n.name}: {kind} along dimension {dim}; only channels (1) are supported")
        c = self.shape(x)[1]
        if kind == "chunk":
            size = -(-c // int(arg))
            sizes = [min(size, c - s) for s in range(0, c, size)]
        elif isinstance(arg, int):
            sizes = [min(arg, c - s) for s in range(0, c, arg)]
        else:
            sizes = [int(v) for v in arg]
        bounds, start = [], 0
        for size in sizes:
            bounds.append((start, start + size))
            start += size
        self.multi[n.name] = (self.src(x, n), bounds)

    def shuffle_step(self, n, name, x, dims):
        """Channel shuffle, seen one step at a time: a view/reshape to
        (n, g, c/g, h, w), the swap of dimensions 1 and 2, and a view,
        reshape or flatten back to (n, c, h, w). Returns whether n was a step."""
        if not isinstance(x, torch.fx.Node):
            return False
        if name in ("view", "reshape") and x.name not in self.shuffle:
            shape, src = self.shape(n), self.shape(x)
            if len(shape) == 5 and len(src) == 4 and shape[1] * shape[2] == src[1] and shape[3:] == src[2:]:
                self.shuffle[n.name] = (self.src(x, n), shape[1], False)
                return True
            return False
        if x.name not in self.shuffle:
            if name in ("transpose", "permute"):
                raise ExportError(f"{n.name}: .{name}() is supported only in a channel shuffle")
            return False
        source, g, swapped = self.shuffle[x.name]
        if name in ("transpose", "permute"):
            d = sorted(v % 5 for v in dims) if name == "transpose" else [v % 5 for v in dims]
            if swapped or not (d == [1, 2] if name == "transpose" else d == [0, 2, 1, 3, 4]):
                raise ExportError(f"{n.name}: only the channel shuffle's swap of dimensions 1 and 2 is supported")
            self.shuffle[n.name] = (source, g, True)
            return True
        shape = self.shape(n)
        if not swapped or len(shape) != 4:
            raise ExportError(f"{n.name}: a reshape of grouped channels that is not a channel shuffle")
        self.emit(n, "channel_shuffle", [source], groups=int(g))
        return True

    # -- shared shapes of ops ---------------------------------------------
    def maxpool(self, n, x, k, s, p, dilation, ceil_mode):
        if _pair(dilation) != [1, 1]:
            raise ExportError(f"{n.name}: max pool with dilation is unsupported")
        extra = {"ceil_mode": True} if ceil_mode else {}
        self.emit(n, "maxpool2d", [x], kernel=_pair(k), stride=_pair(s if s else k), padding=_pair(p),
                  **extra)

    def avgpool(self, n, x, k, s, p, ceil_mode, include_pad, divisor):
        if divisor is not None:
            raise ExportError(f"{n.name}: avg pool with divisor_override is unsupported")
        extra = {"ceil_mode": True} if ceil_mode else {}
        self.emit(n, "avgpool2d", [x], kernel=_pair(k), stride=_pair(s if s else k),
                  padding=_pair(p), count_include_pad=bool(include_pad), **extra)

    def adaptive(self, n, x, size, is_max=False):
        """Adaptive pooling: PyTorch's windows (start floor(i*H/n), end
        ceil((i+1)*H/n)); None in size keeps that side."""
        out = self.shape(n)
        size = [out[2] if v is None else int(v) for v in _pair(size)]
        if size == [1, 1] and not is_max:
            self.emit(n, "global_avgpool", [x])
        else:
            self.emit(n, "adaptive_maxpool2d" if is_max else "adaptive_avgpool2d", [x], output=size)

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
        if (isinstance(idx, tuple) and len(idx) >= 2 and _is_full_slice(idx[0])
                and isinstance(idx[1], slice) and idx[1].step in (None, 1)
                and all(_is_full_slice(s) for s in idx[2:])):
            c = self.shape(base)[1]
            start = self.concrete(idx[1].start) or 0
            stop = self.concrete(idx[1].stop)
            stop = c if stop is None else min(stop if stop >= 0 else c + stop, c)
            start = start if start >= 0 else c + start
            if (start, stop) == (0, c):
                self.alias[n.name] = self.src(base, n)
            else:
                self.emit(n, "slice_channels", [self.src(base, n)], start=int(start), stop=int(stop))
            return
        if (isinstance(idx, tuple) and len(idx) >= 2 and _is_full_slice(idx[0]) and isinstance(idx[1], int)
                and all(_is_full_slice(s) for s in idx[2:]) and len(self.shape(base)) == 4):
            k = idx[1] % self.shape(base)[1]  # x[:, k]: one channel, squeezed until unsqueeze(1)
            self.emit(n, "slice_channels", [self.src(base, n)], start=int(k), stop=int(k) + 1)
            self.squeezed.add(n.name)
            return
        if isinstance(base, torch.fx.Node) and base.name in self.multi:
            src, bounds = self.multi[base.name]
            start, stop = bounds[idx]
            self.emit(n, "slice_channels", [src], start=start, stop=stop)
            return
        if not (isinstance(idx, tuple) and len(idx) == 4 and _is_full_slice(idx[0])
                and _is_full_slice(idx[1]) and all(isinstance(s, slice) and s.start in (None, 0)
                                                  and s.stop is None for s in idx[2:])):
            raise ExportError(f"{n.name}: only x[:, :, ::s, ::s] indexing is supported")
        self.emit(n, "subsample", [self.src(base, n)],
                  stride=[idx[2].step or 1, idx[3].step or 1])


class _pooling_takes_sizes:
    """While tracing, F's pooling functions record a call when an argument is
    a traced size (F.avg_pool2d(x, x.size(2))): the builtins would reject it."""
    NAMES = ("avg_pool2d", "max_pool2d", "adaptive_avg_pool2d")

    def __enter__(self):
        from torch.fx.proxy import Proxy
        self.saved = {name: getattr(F, name) for name in self.NAMES}
        for name, orig in self.saved.items():
            def wrapper(*a, _orig=orig, **kw):
                proxy = next((v for v in list(a) + list(kw.values()) if isinstance(v, Proxy)), None)
                if proxy is None:
                    return _orig(*a, **kw)
                return proxy.tracer.create_proxy("call_function", _orig, a, kw)
            setattr(F, name, wrapper)

    def __exit__(self, *exc):
        for name, orig in self.saved.items():
            setattr(F, name, orig)


def _json_safe(value):
    return json.loads(json.dumps(value, default=str))


def export(model, path, *, mean, std, scale=1 / 255, classes=None, metadata=None,
           input_shape=(3, 32, 32), dtype="f32", output_index=0):
    """Trace `model` and write it to `path` in hfc-eval's model format.

    mean, std: per-channel preprocessing applied after `scale`:
               x_model = (x_pixel * scale - mean[c]) / std[c].
    classes:   class names (default: "0".."K-1").
    dtype:     "f32" (default) or "f16" storage for the weights.
    output_index: which element of a tuple the model returns is the output
               (ProtoPNet's (logits, min_distances): 0, the default).
    """
    if dtype not in ("f32", "f16"):
        raise ValueError("dtype must be 'f32' or 'f16'")
    model = model.eval()
    _patch_fx_unpacking()
    try:
        with _pooling_takes_sizes():
            graph = torch.fx.symbolic_trace(model)
    except Exception as e:  # fx raises TraceError, TypeError, ...: name the cause
        raise ExportError(f"torch.fx cannot trace {type(model).__name__}: {type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''} (torch.fx records tensor operations; "
                          f"Python computations on traced values, like int(x.size(1) * r), stop it)")
    values = {}  # fx node name -> its value on a zero image: shapes and sizes

    class Recorder(torch.fx.Interpreter):
        def run_node(self, node):
            values[node.name] = result = super().run_node(node)
            return result
    with torch.no_grad():
        Recorder(graph).run(torch.zeros(1, *input_shape))
    conv = _Converter(graph, dtype)
    conv.values = values
    conv.graph = graph
    conv.output_index = output_index
    conv.modules = dict(graph.named_modules())
    for n in graph.graph.nodes:
        try:
            conv.convert(n)
        except ExportError:
            raise
        except Exception as e:  # a form of the op the exporter does not expect: one line
            raise ExportError(f"{n.name}: cannot export this {n.op} {getattr(n.target, '__name__', n.target)} "
                              f"({type(e).__name__}: {e})") from e
    if not hasattr(conv, "output"):
        raise ExportError("the traced graph has no output")

    k = int(np.prod(values[conv.output_value.name].shape[1:]))
    return write(path, live_nodes(conv.nodes, conv.output), conv.tensors, conv.output, k, mean=mean, std=std, scale=scale,
                 classes=classes, metadata=metadata, input_shape=input_shape, dtype=dtype)


def write(path, nodes, tensors, output, n_outputs, *, mean, std, scale=1 / 255, classes=None,
          metadata=None, input_shape=(3, 32, 32), dtype="f32", version=VERSION):
    """Write a model file: nodes (dicts as in docs/model-format.md), tensors
    [(name, float array)], the output node's name. Version 3 (checksummed);
    version=1 or 2 writes the older unchecked layouts, for tests. Returns the
    header."""
    if dtype not in ("f32", "f16"):
        raise ValueError("dtype must be 'f32' or 'f16'")
    c = input_shape[0]
    if len(mean) != c or len(std) != c:
        raise ValueError(f"mean and std need {c} values")
    k = n_outputs
    classes = list(classes) if classes is not None else [str(i) for i in range(k)]
    if len(classes) != k:
        raise ValueError(f"model has {k} outputs but {len(classes)} class names were given")

    np_dtype = np.dtype("<f4") if dtype == "f32" else np.dtype("<f2")
    entries, blobs, offset = [], [], 0
    used = {v for nd in nodes for v in nd.values() if isinstance(v, str)}
    for name, arr in tensors:
        if name not in used:  # replaced on the way (a layer scale folded into its conv)
            continue
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
        "nodes": nodes,
        "output": output,
        "metadata": _json_safe(metadata or {}),
    }
    text = json.dumps(header, separators=(",", ":")).encode()
    if version == 1 and not all(nd["op"] in V1_OPS and "groups" not in nd and "dilation" not in nd
                                for nd in nodes):
        raise ValueError("this model uses layers that need format version 2 or later")
    head = MAGIC + struct.pack("<IIQ", version, 0, len(text)) + text
    head += b"\0" * ((-len(head)) % ALIGN)
    raw = head + b"".join(blobs)
    _replace(path, raw + hashlib.sha256(raw).digest() if version >= 3 else raw)
    return header


def _replace(path, raw):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(raw)
    os.replace(tmp, path)


def upgrade(src, dst=None):
    """Rewrite a version 1-2 file as version 3: the same header and data, the
    version field 3 and the SHA-256 appended. A version-3 file is checked and
    copied. Returns the version it had."""
    with open(src, "rb") as f:
        raw = f.read()
    read_bytes(raw, src)  # refuses what hfc-eval would refuse of the layout
    version = struct.unpack_from("<I", raw, 8)[0]
    if version < 3:
        raw = raw[:8] + struct.pack("<I", 3) + raw[12:]
        raw += hashlib.sha256(raw).digest()
    _replace(dst or src, raw)
    return version


def read(path):
    """Read an hfc-eval model file: (header dict, {tensor name: float32 array})."""
    with open(path, "rb") as f:
        return read_bytes(f.read(), path)


def read_bytes(raw, path):
    if raw[:8] != MAGIC or len(raw) < 24:
        raise ValueError(f"{path}: not an hfc-eval model (bad magic)")
    version, _, hlen = struct.unpack_from("<IIQ", raw, 8)
    if not 1 <= version <= VERSION:
        raise ValueError(f"{path}: format version {version}, expected 1 to {VERSION}")
    if version >= 3:
        if len(raw) < 24 + CHECKSUM or hashlib.sha256(raw[:-CHECKSUM]).digest() != raw[-CHECKSUM:]:
            raise ValueError(f"{path}: checksum mismatch: the file is damaged or truncated")
        raw = raw[:-CHECKSUM]
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
    if len(sys.argv) > 1 and sys.argv[1] == "--upgrade":
        if len(sys.argv) not in (3, 4):
            sys.exit("usage: export_pytorch.py --upgrade OLD.bin [NEW.bin]")
        try:
            was = upgrade(*sys.argv[2:])
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
            sys.exit(f"export_pytorch.py: {e}")
        print(f"{sys.argv[-1]}: version {was} -> 3" if was < 3 else f"{sys.argv[2]}: already version 3")
        return
    ap.add_argument("output", help="model file to write")
    ap.add_argument("--family", required=True, choices=sorted(hfc_models.FAMILIES))
    ap.add_argument("--no-bn", dest="bn", action="store_false", default=True)
    ap.add_argument("--depth", type=int, help="ResNet depth (6n+2) for preact and resnet20")
    ap.add_argument("--checkpoint", help="state_dict saved with torch.save (default: random weights)")
    ap.add_argument("--metadata", help="JSON file to embed as metadata")
    ap.add_argument("--dtype", choices=("f32", "f16"), default="f32")
    ap.add_argument("--seed", type=int, default=0, help="seed for random weights")
    ap.add_argument("--input-size", default="3,32,32", metavar="C,H,W",
                    help="the input the model takes (default 3,32,32)")
    ap.add_argument("--output-index", type=int, default=0,
                    help="which element of a tuple the model returns (default 0: the logits)")
    args = ap.parse_args()
    try:
        input_shape = tuple(int(v) for v in args.input_size.split(","))
        assert len(input_shape) == 3 and min(input_shape) > 0
    except (ValueError, AssertionError):
        sys.exit(f"export_pytorch.py: --input-size {args.input_size!r} is not C,H,W")
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
               classes=hfc_models.CIFAR10_CLASSES, metadata=meta, dtype=args.dtype,
               input_shape=input_shape, output_index=args.output_index)
    except ExportError as e:
        sys.exit(f"export_pytorch.py: {e}")


if __name__ == "__main__":
    main()
