#!/usr/bin/python3
"""Convert an ONNX CNN into an hfc-eval model file (docs/model-format.md).

  tools/onnx_to_hfc.py model.onnx model.bin --mean 0.4914,0.4822,0.4465 \\
      --std 0.2470,0.2435,0.2616 [--scale 0.00392156862745098] [--classes a,b,...]

The graph must take one image tensor (N, C, H, W), N fixed or symbolic
(dynamic_axes), and return the logits. Operations, in
their ONNX form:

  Conv (group, dilations, symmetric pads)   BatchNormalization
  Relu, Clip(0, 6), Sigmoid, HardSigmoid(1/6, 1/2), HardSwish
  Add, Mul (two tensors, one may be (1, C, 1, 1)); Add, Sub, Mul, Div by a number
  Concat (axis 1), Split and Slice along channels, Slice [::s, ::s] spatially
  GlobalAveragePool, ReduceMean over (2, 3), AveragePool, MaxPool, Pad
  (zeros: on channels, or spatial before an AveragePool)
  Flatten, Reshape to (N, -1), Gemm, MatMul (+ Add of a bias)
  Reshape (N, g, C/g, H, W) + Transpose (0, 2, 1, 3, 4) + Reshape: channel shuffle
  Transpose (0, 2, 3, 1) ... (0, 3, 1, 2) around per-pixel work: LayerNormalization
      or its opset-13 chain (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul,
      Add), GELU (Gelu, or Div by sqrt 2, Erf, Add 1, Mul, Mul 0.5), MatMul (a 1x1
      conv), activations and arithmetic; Mul by a (1, C, 1, 1) constant after a Conv
  Gather + Unsqueeze of one channel (transform_input); Squeeze of (N, C, 1, 1)
  Identity, Dropout; Constant, Shape, Gather, Unsqueeze, Squeeze, Concat,
  Cast, Slice, Transpose, Reshape, ConstantOfShape, Pow, ReduceSum and
  arithmetic on constants are computed here (folded).
  ProtoPNet's head: Pow(x, 2), Conv with the ones and the prototypes, Mul,
  Add, Relu, Neg, MaxPool over the whole map, Neg, Reshape, Add, Div, Log
  (or Neg): one prototype layer (tools/prototype_pattern.py). A graph with
  several outputs gives the first as the logits, or the one --output-index
  names.

Anything else stops the conversion with an error naming the operation and
the node. The model's preprocessing is given on the command line:
x = (pixel * scale - mean[c]) / std[c].
"""

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_pytorch  # noqa: E402  (the file writer)
from prototype_pattern import Pattern, live_nodes  # noqa: E402

INT_MAX = 2 ** 62


class ConvertError(Exception):
    """The ONNX graph uses something the hfc-eval engine cannot run."""


def _np_dtype(onnx_type):
    """numpy's dtype for an ONNX TensorProto data type (onnx 1.12 and later)."""
    if hasattr(onnx.helper, "tensor_dtype_to_np_dtype"):
        return onnx.helper.tensor_dtype_to_np_dtype(onnx_type)
    from onnx import mapping
    return mapping.TENSOR_TYPE_TO_NP_TYPE[onnx_type]


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class _Converter:
    def __init__(self, model):
        self.graph = model.graph
        self.consts = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        self.shapes = {}
        for vi in list(self.graph.value_info) + list(self.graph.input) + list(self.graph.output):
            if not vi.type.tensor_type.HasField("shape"):
                continue  # rank unknown (shape inference gave up): not a scalar
            dims = vi.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                self.shapes[vi.name] = tuple(d.dim_value for d in dims)
        self.alias = {}        # ONNX value -> hfc node name
        self.nodes = []        # hfc nodes
        self.tensors = []      # (name, array)
        self.by_name = {}      # hfc node name -> node dict
        self.padded = {}       # ONNX value -> (source hfc node, ph, pw): a spatial zero Pad
        self.shuffle = {}      # ONNX value -> (source hfc node, groups, transposed)
        self.nhwc = set()      # ONNX values transposed to (n, h, w, c) (the hfc node's own layout)
        self.skip = set()      # nodes already converted as part of a pattern (LayerNorm, GELU)
        self.squeezed = set()  # ONNX values of one gathered channel, its axis dropped (x[:, k])
        self.users = {}        # ONNX value -> the nodes reading it
        for node in self.graph.node:
            for v in node.input:
                self.users.setdefault(v, []).append(node)
        self.count = 0
        self.pattern = Pattern() # ProtoPNet's head, step by step
        self.deferred = {}       # ONNX value -> why it has no hfc node (a pattern's step)

    # -- helpers -------------------------------------------------------------
    def where(self, node):
        return f"{node.op_type} node {node.name or node.output[0]!r}"

    def src(self, value, node):
        if value in self.padded:
            raise ConvertError(f"{self.where(node)}: reads a spatially padded tensor "
                               "(only an AveragePool may follow a spatial Pad)")
        if value not in self.alias:
            raise ConvertError(self.deferred.get(
                value, f"{self.where(node)}: input {value!r} is not a tensor this converter made"))
        return self.alias[value]

    def shape(self, value):
        if value not in self.shapes:
            raise ConvertError(f"no static shape for {value!r} (export with a fixed input size)")
        return self.shapes[value]

    def const(self, value):
        return self.consts.get(value) if value else None

    def tensor(self, array):
        name = f"t{len(self.tensors)}"
        arr = np.asarray(array, dtype=np.float32)
        if not np.all(np.isfinite(arr)):
            raise ConvertError(f"a weight tensor holds NaN or Inf")
        self.tensors.append((name, arr))
        return name

    def emit(self, node, op, inputs, out=None, **attrs):
        self.count += 1
        name = f"n{self.count}_{op}"
        nd = {"name": name, "op": op, "inputs": inputs}
        nd.update({k: v for k, v in attrs.items() if v is not None})
        self.nodes.append(nd)
        self.by_name[name] = nd
        self.alias[out if out is not None else node.output[0]] = name
        return nd

    # -- constants ---------------------------------------------------------------
    def fold(self, node, a):
        """Compute node when every input is known here; True if it was."""
        op, ins = node.op_type, list(node.input)
        if op == "Constant":
            self.consts[node.output[0]] = numpy_helper.to_array(a["value"])
            return True
        if op == "Shape":
            if ins[0] in self.shapes:
                self.consts[node.output[0]] = np.array(self.shape(ins[0]), dtype=np.int64)
                return True
            return False
        if any(i and i not in self.consts for i in ins):
            return False
        v = [self.consts.get(i) for i in ins]
        if op in ("Identity", "Cast"):
            r = v[0] if op == "Identity" else v[0].astype(_np_dtype(a["to"]))
        elif op == "Gather":
            r = np.take(v[0], v[1], axis=a.get("axis", 0))
        elif op == "Unsqueeze":
            axes = a.get("axes", v[1] if len(v) > 1 else None)
            r = v[0]
            for ax in sorted(int(x) for x in axes):
                r = np.expand_dims(r, ax)
        elif op == "Squeeze":
            axes = a.get("axes", v[1] if len(v) > 1 and v[1] is not None else None)
            r = np.squeeze(v[0], tuple(int(x) for x in axes) if axes is not None else None)
        elif op == "Concat":
            r = np.concatenate(v, axis=a["axis"])
        elif op in ("Add", "Sub", "Mul", "Div"):
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}.get(op)
            if op == "Div":
                f = np.floor_divide if np.issubdtype(v[0].dtype, np.integer) else np.divide
            r = f(v[0], v[1])
        elif op == "Transpose":
            r = np.transpose(v[0], a.get("perm"))
        elif op == "Floor":
            r = np.floor(v[0])
        elif op == "Pow":
            r = np.power(v[0], v[1])
        elif op == "ReduceSum":
            axes = a.get("axes", v[1] if len(v) > 1 and v[1] is not None else None)
            r = np.sum(v[0], axis=None if axes is None else tuple(int(x) for x in axes),
                       keepdims=bool(a.get("keepdims", 1)))
        elif op == "Reshape":
            r = v[0].reshape([int(d) for d in v[1]])
        elif op == "ConstantOfShape":
            fill = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
            r = np.full([int(d) for d in v[0]], fill.reshape(-1)[0], dtype=fill.dtype)
        elif op == "Slice":
            r = v[0][self.slices(v[0].ndim, v[1:], a)]
        else:
            return False
        self.consts[node.output[0]] = np.asarray(r)
        return True

    def slices(self, ndim, v, a):
        starts, ends = (v[0], v[1]) if v else (a["starts"], a["ends"])
        axes = v[2] if len(v) > 2 and v[2] is not None else a.get("axes", range(len(starts)))
        steps = v[3] if len(v) > 3 and v[3] is not None else [1] * len(starts)
        idx = [slice(None)] * ndim
        for s, e, ax, st in zip(starts, ends, axes, steps):
            idx[int(ax)] = slice(int(s), None if int(e) >= INT_MAX else int(e), int(st))
        return tuple(idx)

    # -- one node ------------------------------------------------------------------
    # ops that work per pixel on channels: they take channels-last values
    PER_PIXEL = {"Relu", "Sigmoid", "Clip", "HardSwish", "HardSigmoid", "Add", "Sub", "Mul", "Div",
                 "MatMul", "Transpose", "Identity", "Dropout", "LayerNormalization", "ReduceMean", "Gelu"}

    def convert(self, node):
        if id(node) in self.skip:
            return
        try:
            a = _attrs(node)
            if self.fold(node, a):
                return
            op, ins, out = node.op_type, list(node.input), node.output[0]
            handler = getattr(self, "op_" + op, None)
            if handler is None and op not in ("Pow", "Neg", "Log"):
                raise ConvertError(f"{self.where(node)}: unsupported operation {op}")
            if any(v in self.squeezed for v in ins) and op != "Unsqueeze":
                raise ConvertError(f"{self.where(node)}: uses one gathered channel (x[:, k]) without Unsqueeze(1)")
            if self.proto_step(node, a, ins, out, handler):
                return
            last = [v in self.nhwc for v in ins if v and v not in self.consts]
            if any(last) and (op not in self.PER_PIXEL or not all(last)):
                raise ConvertError(f"{self.where(node)}: {op} of a channels-last (transposed) tensor; "
                                   "only activations, LayerNorm, MatMul and arithmetic are supported there")
            handler(node, a, ins, out)
            if any(last) and not (op == "Transpose" and list(a.get("perm", [])) == [0, 3, 1, 2]):
                self.nhwc.add(out)
        except ConvertError:
            raise
        except Exception as e:  # a form of the op this converter does not expect: one line, no traceback
            raise ConvertError(f"{self.where(node)}: cannot convert this {node.op_type} "
                               f"({type(e).__name__}: {e})") from e

    def proto_step(self, node, a, ins, out, handler):
        """Tells the pattern what node did (ProtoPNet's head,
        tools/prototype_pattern.py). True when node was one of its steps:
        it has no hfc node of its own then (unless the layer closed there),
        and what the usual conversion said of it is kept for other readers."""
        P, op, layer = self.pattern, node.op_type, None
        known = lambda v: v and v not in self.consts  # noqa: E731
        if op == "Pow" and known(ins[0]) and self.number(ins[1]) == 2:
            P.square(out, ins[0])
        elif op == "Conv" and known(ins[0]) and self.const(ins[1]) is not None:
            plain = (list(a.get("strides", [1, 1])) == [1, 1] and not any(a.get("pads", [0] * 4))
                     and a.get("group", 1) == 1 and list(a.get("dilations", [1, 1])) == [1, 1])
            b = self.const(ins[2]) if len(ins) > 2 and ins[2] else None
            P.conv(out, ins[0], self.const(ins[1]), b, plain)
        elif op == "Mul" and (self.number(ins[0]) is None) != (self.number(ins[1]) is None):
            x, k = (ins[0], self.number(ins[1])) if self.number(ins[0]) is None else (ins[1], self.number(ins[0]))
            P.scale(out, x, k)
        elif op in ("Add", "Sub") and known(ins[0]) and known(ins[1]) and op == "Add":
            P.add(out, ins[0], ins[1])
        elif op in ("Add", "Sub") and known(ins[0]) and self.const(ins[1]) is not None:
            P.shift(out, ins[0], self.const(ins[1]) * (-1.0 if op == "Sub" else 1.0))
        elif op == "Add" and known(ins[1]) and self.const(ins[0]) is not None:
            P.shift(out, ins[1], self.const(ins[0]))
        elif op == "Relu":
            P.relu(out, ins[0])
        elif op == "Neg":
            layer = P.neg(out, ins[0])
        elif op == "MaxPool" and ins[0] in self.shapes:
            k = [int(v) for v in a["kernel_shape"]]
            whole = (list(self.shape(ins[0])[2:]) == k and not any(a.get("pads", [0] * 4))
                     and [int(v) for v in a.get("strides", k)] == k)
            P.max_over_map(out, ins[0], whole)
        elif op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
            P.reshape(out, ins[0])
        elif op == "Div":
            P.div(out, ins[0], ins[1])
        elif op == "Log":
            layer = P.log(out, ins[0])
        if layer:
            self.prototype(node, layer, out)
            return True
        if out not in P.sym and out not in P.squares:
            return False
        try:  # the usual conversion, for a reader outside the pattern
            if handler is None:
                raise ConvertError(f"{self.where(node)}: unsupported operation {op}")
            handler(node, a, ins, out)
        except ConvertError as e:
            self.deferred[out] = str(e)
        return True

    def prototype(self, node, layer, out):
        x = self.alias.get(layer["x"])
        if x is None:
            raise ConvertError(self.deferred.get(layer["x"], f"{self.where(node)}: the prototypes' "
                                                              "feature map has no value"))
        self.emit(node, "prototype", [x], out=out, prototypes=self.tensor(layer["P"]),
                  similarity=layer["similarity"], epsilon=layer.get("epsilon"))

    def op_Identity(self, node, a, ins, out):
        self.forward_value(ins[0], out, node)

    op_Dropout = op_Identity

    def forward_value(self, src, out, node):
        for table in (self.padded, self.shuffle):
            if src in table:
                table[out] = table[src]
                return
        self.alias[out] = self.src(src, node)

    def op_Conv(self, node, a, ins, out):
        w = self.const(ins[1])
        if w is None or w.ndim != 4:
            raise ConvertError(f"{self.where(node)}: the weight must be a constant 4-D tensor")
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or pads[:2] != pads[2:]:
            raise ConvertError(f"{self.where(node)}: only explicit symmetric padding is supported")
        groups, dil = int(a.get("group", 1)), [int(d) for d in a.get("dilations", [1, 1])]
        b = self.const(ins[2]) if len(ins) > 2 and ins[2] else None
        self.emit(node, "conv2d", [self.src(ins[0], node)], weight=self.tensor(w),
                  bias=self.tensor(b) if b is not None else None,
                  stride=[int(s) for s in a.get("strides", [1, 1])], padding=[int(p) for p in pads[:2]],
                  groups=groups if groups != 1 else None, dilation=dil if dil != [1, 1] else None)

    def op_BatchNormalization(self, node, a, ins, out):
        scale, bias, mean, var = (self.const(i) for i in ins[1:5])
        if any(t is None for t in (scale, bias, mean, var)):
            raise ConvertError(f"{self.where(node)}: statistics and parameters must be constants")
        self.emit(node, "batchnorm", [self.src(ins[0], node)], weight=self.tensor(scale),
                  bias=self.tensor(bias), mean=self.tensor(mean), var=self.tensor(var),
                  eps=float(a.get("epsilon", 1e-5)))

    def unary(self, op):
        def handler(node, a, ins, out):
            self.emit(node, op, [self.src(ins[0], node)])
        return handler

    def op_Relu(self, node, a, ins, out):
        self.unary("relu")(node, a, ins, out)

    def op_Sigmoid(self, node, a, ins, out):
        self.unary("sigmoid")(node, a, ins, out)

    def op_HardSwish(self, node, a, ins, out):
        self.unary("hardswish")(node, a, ins, out)

    def op_HardSigmoid(self, node, a, ins, out):
        if abs(a.get("alpha", 0.2) - 1 / 6) > 1e-6 or abs(a.get("beta", 0.5) - 0.5) > 1e-6:
            raise ConvertError(f"{self.where(node)}: only HardSigmoid(alpha=1/6, beta=0.5) is supported")
        self.unary("hardsigmoid")(node, a, ins, out)

    def op_Clip(self, node, a, ins, out):
        lo = self.const(ins[1]) if len(ins) > 1 and ins[1] else a.get("min")
        hi = self.const(ins[2]) if len(ins) > 2 and ins[2] else a.get("max")
        lo = None if lo is None else float(np.asarray(lo).reshape(-1)[0])
        hi = None if hi is None else float(np.asarray(hi).reshape(-1)[0])
        if lo == 0 and hi == 6:
            self.unary("relu6")(node, a, ins, out)
        elif lo == 0 and (hi is None or hi > 3e38):
            self.unary("relu")(node, a, ins, out)
        else:
            raise ConvertError(f"{self.where(node)}: only Clip(0, 6) and Clip(0) are supported")

    def arith(self, node, ins, out, op):
        ka, kb = self.const(ins[0]), self.const(ins[1])
        if ka is None and kb is None:  # two tensors
            if op not in ("Add", "Mul"):
                raise ConvertError(f"{self.where(node)}: {op} of two tensors is unsupported")
            x, y = self.src(ins[0], node), self.src(ins[1], node)
            # a bias added after a MatMul made a linear without one
            self.emit(node, "add" if op == "Add" else "mul", [x, y])
            return
        k, x = (kb, ins[0]) if kb is not None else (ka, ins[1])
        if k.size != 1:
            prev = self.by_name.get(self.alias.get(x))
            if op == "Add" and prev is not None and prev["op"] in ("linear", "conv2d") and "bias" not in prev \
                    and (prev["op"] == "linear" or x in self.nhwc) and k.size == self.shape(x)[-1]:
                prev["bias"] = self.tensor(k.reshape(-1))
                self.alias[out] = prev["name"]
                return
            if op == "Mul" and self.fold_scale(node, x, k, out):
                return
            raise ConvertError(f"{self.where(node)}: {op} with a constant that is not a number")
        k = float(k.reshape(-1)[0])
        src = self.src(x, node)
        scale, shift = 1.0, 0.0
        if op == "Add":
            shift = k
        elif op == "Mul":
            scale = k
        elif op == "Sub":
            scale, shift = (1.0, -k) if kb is not None else (-1.0, k)
        elif op == "Div":
            if kb is None or k == 0:
                raise ConvertError(f"{self.where(node)}: only division by a nonzero number is supported")
            scale = 1.0 / k
        if scale == 1.0 and shift == 0.0:
            self.alias[out] = src
        else:
            self.emit(node, "affine", [src], scale=scale if scale != 1.0 else None,
                      shift=shift if shift != 0.0 else None)

    def op_Add(self, node, a, ins, out):
        self.arith(node, ins, out, "Add")

    def op_Sub(self, node, a, ins, out):
        self.arith(node, ins, out, "Sub")

    def op_Mul(self, node, a, ins, out):
        if not self.gelu(node, ins):
            self.arith(node, ins, out, "Mul")

    def op_Div(self, node, a, ins, out):
        if not self.gelu(node, ins):
            self.arith(node, ins, out, "Div")

    def op_Concat(self, node, a, ins, out):
        if a.get("axis") not in (1, -3):
            raise ConvertError(f"{self.where(node)}: only Concat along channels (axis 1) is supported")
        if not 1 <= len(ins) <= export_pytorch.MAX_CONCAT:
            raise ConvertError(f"{self.where(node)}: Concat of {len(ins)} tensors (hfc-eval takes 1 to "
                               f"{export_pytorch.MAX_CONCAT})")
        self.emit(node, "concat", [self.src(i, node) for i in ins])

    def op_Split(self, node, a, ins, out):
        if a.get("axis", 0) not in (1, -3):
            raise ConvertError(f"{self.where(node)}: only Split along channels (axis 1) is supported")
        c = self.shape(ins[0])[1]
        sizes = a.get("split")
        if sizes is None and len(ins) > 1 and ins[1]:
            sizes = self.const(ins[1])
        if sizes is None:
            sizes = [c // len(node.output)] * len(node.output)
        start, src = 0, self.src(ins[0], node)
        for value, size in zip(node.output, sizes):
            self.emit(node, "slice_channels", [src], out=value, start=start, stop=start + int(size))
            start += int(size)

    def op_Slice(self, node, a, ins, out):
        shape = self.shape(ins[0])
        v = [self.const(i) if i else None for i in ins[1:]]
        if any(x is None for x in v[:2]) or (len(v) > 2 and v[2] is None and ins[3]):
            raise ConvertError(f"{self.where(node)}: slice bounds must be constants")
        idx = self.slices(len(shape), v, a)
        ch, sp = idx[1], idx[2:]
        full = lambda s: s == slice(None) or (s.start in (0, None) and s.stop is None and s.step in (1, None))
        if all(full(s) for s in sp) and idx[0] == slice(None):
            start, stop, _ = ch.indices(shape[1])
            if ch.step not in (None, 1):
                raise ConvertError(f"{self.where(node)}: a channel slice with a step")
            self.emit(node, "slice_channels", [self.src(ins[0], node)], start=start, stop=stop)
        elif full(ch) and all(s.start in (0, None) and s.stop is None for s in sp):
            self.emit(node, "subsample", [self.src(ins[0], node)],
                      stride=[int(sp[0].step or 1), int(sp[1].step or 1)])
        else:
            raise ConvertError(f"{self.where(node)}: only channel ranges and [::s, ::s] slices are supported")

    def op_Pad(self, node, a, ins, out):
        pads = self.const(ins[1]) if len(ins) > 1 else np.array(a.get("pads"))
        value = self.const(ins[2]) if len(ins) > 2 and ins[2] else None
        mode = a.get("mode", b"constant")
        if pads is None or mode not in (b"constant", "constant") or (value is not None and float(value) != 0):
            raise ConvertError(f"{self.where(node)}: only zero padding with constant pads is supported")
        p = [int(x) for x in pads]  # begins of (n, c, h, w), then ends
        if not any(p):
            self.alias[out] = self.src(ins[0], node)
        elif p[0] == p[4] == 0 and p[2] == p[3] == p[6] == p[7] == 0:
            self.emit(node, "pad_channels", [self.src(ins[0], node)], before=p[1], after=p[5])
        elif p[0] == p[4] == p[1] == p[5] == 0 and p[2] == p[6] and p[3] == p[7]:
            self.padded[out] = (self.src(ins[0], node), p[2], p[3])
        else:
            raise ConvertError(f"{self.where(node)}: padding {p} is unsupported")

    def pool(self, node, a, ins, op):
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise ConvertError(f"{self.where(node)}: pooling with dilation is unsupported")
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if pads[:2] != pads[2:]:
            raise ConvertError(f"{self.where(node)}: only symmetric pooling pads are supported")
        k = [int(x) for x in a["kernel_shape"]]
        attrs = {"kernel": k, "stride": [int(s) for s in a.get("strides", k)], "padding": pads[:2]}
        if a.get("ceil_mode", 0):
            attrs["ceil_mode"] = True
        if ins[0] in self.padded:  # Pad + AveragePool: padding counted in the mean
            src, ph, pw = self.padded[ins[0]]
            if op != "avgpool2d" or pads != [0, 0, 0, 0]:
                raise ConvertError(f"{self.where(node)}: a spatial Pad before {node.op_type}")
            attrs["padding"] = [ph, pw]
            attrs["count_include_pad"] = True
        else:
            src = self.src(ins[0], node)
            if op == "avgpool2d":
                attrs["count_include_pad"] = bool(a.get("count_include_pad", 0))
        self.emit(node, op, [src], **attrs)

    def op_MaxPool(self, node, a, ins, out):
        self.pool(node, a, ins, "maxpool2d")

    def op_AveragePool(self, node, a, ins, out):
        self.pool(node, a, ins, "avgpool2d")

    def op_GlobalMaxPool(self, node, a, ins, out):
        self.emit(node, "adaptive_maxpool2d", [self.src(ins[0], node)], output=[1, 1])

    def op_GlobalAveragePool(self, node, a, ins, out):
        self.emit(node, "global_avgpool", [self.src(ins[0], node)])

    def op_ReduceMean(self, node, a, ins, out):
        if self.layer_norm(node, a, ins):
            return
        axes = a.get("axes", self.const(ins[1]) if len(ins) > 1 else None)
        if axes is None or sorted(int(x) % 4 for x in axes) != [2, 3]:
            raise ConvertError(f"{self.where(node)}: only ReduceMean over axes (2, 3) is supported")
        self.emit(node, "global_avgpool", [self.src(ins[0], node)])

    # -- patterns: several ONNX nodes that are one hfc layer -------------------
    def only_user(self, value, op):
        """The node reading value if it is the only one and an `op`, else None."""
        users = self.users.get(value, [])
        return users[0] if len(users) == 1 and users[0].op_type == op else None

    def number(self, value):
        k = self.const(value)
        return float(k.reshape(-1)[0]) if k is not None and k.size == 1 else None

    def other(self, node, value):
        """A two-input node's input that is not value."""
        ins = list(node.input)
        return ins[1] if ins[0] == value else ins[0] if ins[1] == value else None

    def channel_axes(self, x):
        """The axis of channels of x, as ReduceMean's axes: [-1] or [3] channels-last,
        [1] channels-first, [-1] or [1] of flat features."""
        rank = len(self.shape(x))
        return ([[-1], [3]] if x in self.nhwc else [[1]] if rank == 4 else [[-1], [1]])

    def layer_norm(self, node, a, ins):
        """torch.onnx's LayerNorm below opset 17, or a LayerNorm2d written out:
        m = ReduceMean(x); d = x - m; v = ReduceMean(d ** 2); y = d / Sqrt(v + eps);
        then optionally y * weight + bias, all over the channels of each pixel."""
        x, axes = ins[0], [int(v) for v in a.get("axes", [])]
        if axes not in self.channel_axes(x) or a.get("keepdims", 1) != 1:
            return False
        sub = self.only_user(node.output[0], "Sub")
        if sub is None or list(sub.input) != [x, node.output[0]]:
            return False
        d = sub.output[0]
        users = self.users.get(d, [])
        pw = next((u for u in users if u.op_type == "Pow" and self.number(u.input[1]) == 2.0), None)
        r2 = pw and self.only_user(pw.output[0], "ReduceMean")
        ad = r2 and self.only_user(r2.output[0], "Add")
        eps = ad and self.number(self.other(ad, r2.output[0]))
        sq = ad and self.only_user(ad.output[0], "Sqrt")
        dv = sq and self.only_user(sq.output[0], "Div")
        if not (dv and len(users) == 2 and list(dv.input) == [d, sq.output[0]] and eps and eps > 0
                and [int(v) for v in _attrs(r2).get("axes", [])] == axes):
            return False
        done, y, tensors = [sub, pw, r2, ad, sq, dv], dv.output[0], {}
        c = self.shape(x)[-1 if x in self.nhwc or len(self.shape(x)) == 2 else 1]
        for op, key in (("Mul", "weight"), ("Add", "bias")):
            nxt = self.only_user(y, op)
            k = nxt and self.const(self.other(nxt, y))
            if k is None or k.size != c or (x not in self.nhwc and k.ndim == 3 and k.shape[1:] != (1, 1)):
                break
            done.append(nxt)
            tensors[key], y = self.tensor(k.reshape(-1)), nxt.output[0]
        self.emit(node, "layernorm", [self.src(x, node)], out=y, eps=eps, **tensors)
        self.skip.update(id(n) for n in done)
        if x in self.nhwc:
            self.nhwc.add(y)
        return True

    def op_LayerNormalization(self, node, a, ins, out):
        x = ins[0]
        if [int(a.get("axis", -1))] not in self.channel_axes(x) or len(node.output) > 1 and any(node.output[1:]):
            raise ConvertError(f"{self.where(node)}: only LayerNormalization over the channels of each pixel "
                               "(axis -1 of a channels-last or flat tensor)")
        w, b = self.const(ins[1]), self.const(ins[2]) if len(ins) > 2 and ins[2] else None
        if w is None:
            raise ConvertError(f"{self.where(node)}: the scale must be a constant")
        self.emit(node, "layernorm", [self.src(x, node)], eps=float(a.get("epsilon", 1e-5)),
                  weight=self.tensor(w.reshape(-1)), bias=self.tensor(b.reshape(-1)) if b is not None else None)

    def gelu(self, node, ins):
        """torch.onnx's GELU: x * (Erf(x / sqrt 2) + 1) * 0.5, from its Div
        (or a Mul by 1 / sqrt 2)."""
        k = self.number(ins[1]) if len(ins) > 1 else None
        want = 2 ** 0.5 if node.op_type == "Div" else 2 ** -0.5
        if k is None or abs(k - want) > 1e-6 * want:
            return False
        x = ins[0]
        erf = self.only_user(node.output[0], "Erf")
        add = erf and self.only_user(erf.output[0], "Add")
        mul = add and self.only_user(add.output[0], "Mul")
        half = mul and self.only_user(mul.output[0], "Mul")
        if not (half and self.number(self.other(add, erf.output[0])) == 1.0
                and self.other(mul, add.output[0]) == x and self.number(self.other(half, mul.output[0])) == 0.5):
            return False
        self.emit(node, "gelu", [self.src(x, node)], out=half.output[0])
        self.skip.update(id(n) for n in (erf, add, mul, half))
        if x in self.nhwc:
            self.nhwc.add(half.output[0])
        return True

    def op_Gelu(self, node, a, ins, out):
        if a.get("approximate", b"none") not in (b"none", "none"):
            raise ConvertError(f"{self.where(node)}: Gelu(approximate=tanh); only the exact (erf) form")
        self.unary("gelu")(node, a, ins, out)

    def fold_scale(self, node, x, k, out):
        """x * k for k of shape (c, 1, 1) (ConvNeXt's layer scale): folded into
        the conv that made x when nothing else reads that conv."""
        shape = self.shape(x)
        prev = self.by_name.get(self.alias.get(x))
        if x in self.nhwc or len(shape) != 4 or k.size != shape[1] or k.shape[-2:] != (1, 1) \
                or prev is None or prev["op"] != "conv2d":
            return False
        same = {v for v, n in self.alias.items() if n == prev["name"]}
        readers = [u for v in same for u in self.users.get(v, []) if u.output[0] not in same]
        if readers != [node]:
            return False
        weights = dict(self.tensors)
        s = k.reshape(-1).astype(np.float32)
        prev["weight"] = self.tensor(weights[prev["weight"]] * s[:, None, None, None])
        if "bias" in prev:
            prev["bias"] = self.tensor(weights[prev["bias"]] * s)
        self.alias[out] = prev["name"]
        return True

    def op_Gather(self, node, a, ins, out):
        """x[:, k] of an image tensor (GoogLeNet's transform_input), until Unsqueeze(1)."""
        k = self.const(ins[1])
        shape = self.shape(ins[0])
        if k is None or k.ndim != 0 or int(a.get("axis", 0)) != 1 or len(shape) != 4:
            raise ConvertError(f"{self.where(node)}: only Gather of one channel (x[:, k]) is supported")
        k = int(k) % shape[1]
        self.emit(node, "slice_channels", [self.src(ins[0], node)], start=k, stop=k + 1)
        self.squeezed.add(out)

    def op_Unsqueeze(self, node, a, ins, out):
        axes = a.get("axes", self.const(ins[1]) if len(ins) > 1 else None)
        if ins[0] not in self.squeezed or axes is None or [int(v) for v in np.reshape(axes, -1)] != [1]:
            raise ConvertError(f"{self.where(node)}: only Unsqueeze(1) of one gathered channel is supported")
        self.alias[out] = self.src(ins[0], node)

    def op_Squeeze(self, node, a, ins, out):
        src, shape = self.shape(ins[0]), self.shape(out)
        if len(src) != 4 or src[2:] != (1, 1) or len(shape) != 2 or shape[0] != src[0]:
            raise ConvertError(f"{self.where(node)}: only Squeeze of (n, c, 1, 1) features to (n, c)")
        self.flatten(node, ins[0], out)

    def op_Flatten(self, node, a, ins, out):
        if a.get("axis", 1) % len(self.shape(ins[0])) != 1:
            raise ConvertError(f"{self.where(node)}: only Flatten(axis=1) is supported")
        self.flatten(node, ins[0], out)

    def flatten(self, node, value, out):
        if value in self.shuffle:
            self.shuffle_end(node, value, out)
            return
        src = self.src(value, node)
        shape = self.shape(value)
        if len(shape) == 2 or shape[2:] == (1, 1):
            self.alias[out] = src  # already a vector
        else:
            self.emit(node, "flatten", [src])

    def op_Reshape(self, node, a, ins, out):
        target = self.const(ins[1])
        src_shape, out_shape = self.shape(ins[0]), self.shape(out)
        if target is None:
            raise ConvertError(f"{self.where(node)}: the target shape must be a constant")
        if len(out_shape) == 5 and len(src_shape) == 4 and ins[0] not in self.shuffle \
                and out_shape[1] * out_shape[2] == src_shape[1] and out_shape[3:] == src_shape[2:]:
            self.shuffle[out] = (self.src(ins[0], node), out_shape[1], False)
        elif ins[0] in self.shuffle:
            self.shuffle_end(node, ins[0], out)
        elif len(out_shape) == 2 and out_shape[0] == src_shape[0]:
            self.flatten(node, ins[0], out)
        elif out_shape == src_shape:
            self.alias[out] = self.src(ins[0], node)
        else:
            raise ConvertError(f"{self.where(node)}: reshape {src_shape} -> {out_shape} is unsupported")

    def op_Transpose(self, node, a, ins, out):
        perm = list(a.get("perm", []))
        if ins[0] not in self.shuffle and len(self.shape(ins[0])) == 4 and (
                (perm == [0, 2, 3, 1] and ins[0] not in self.nhwc) or (perm == [0, 3, 1, 2] and ins[0] in self.nhwc)):
            self.alias[out] = self.src(ins[0], node)  # hfc-eval's tensors are (h, w, c) per image anyway
            if perm == [0, 2, 3, 1]:
                self.nhwc.add(out)
            return
        if ins[0] not in self.shuffle or list(a.get("perm", [])) != [0, 2, 1, 3, 4] \
                or self.shuffle[ins[0]][2]:
            raise ConvertError(f"{self.where(node)}: Transpose {tuple(perm)} is supported only to channels-last "
                               "(0, 2, 3, 1) and back, or in a channel shuffle")
        src, g, _ = self.shuffle[ins[0]]
        self.shuffle[out] = (src, g, True)

    def shuffle_end(self, node, value, out):
        src, g, swapped = self.shuffle[value]
        if not swapped or len(self.shape(out)) != 4:
            raise ConvertError(f"{self.where(node)}: grouped channels reshaped without a shuffle")
        self.emit(node, "channel_shuffle", [src], groups=int(g))

    def op_Gemm(self, node, a, ins, out):
        w, b = self.const(ins[1]), self.const(ins[2]) if len(ins) > 2 and ins[2] else None
        if w is None or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise ConvertError(f"{self.where(node)}: only Gemm(x, W, b) with constant W, alpha = beta = 1")
        w = w if a.get("transB", 0) else w.T
        self.emit(node, "linear", [self.src(ins[0], node)], weight=self.tensor(w),
                  bias=self.tensor(b.reshape(-1)) if b is not None else None)

    def op_MatMul(self, node, a, ins, out):
        w = self.const(ins[1])
        if w is None or w.ndim != 2:
            raise ConvertError(f"{self.where(node)}: only MatMul(x, W) with a constant 2-D W")
        if ins[0] in self.nhwc:  # per pixel (nn.Linear on channels-last): a 1x1 conv
            self.emit(node, "conv2d", [self.src(ins[0], node)], weight=self.tensor(w.T[:, :, None, None]))
        else:
            self.emit(node, "linear", [self.src(ins[0], node)], weight=self.tensor(w.T))


def _fold_constants(model):
    """Replace every node computable here (constants, shapes of tensors whose
    shape is known, arithmetic on them) by an initializer, and infer shapes
    again, until nothing changes: a slice bound computed from x.size(1)
    becomes a number and the shapes after it static."""
    for _ in range(1000):  # until nothing folds (each pass may free the next shapes)
        model = onnx.shape_inference.infer_shapes(model)
        conv, keep, folded = _Converter(model), [], []
        for node in model.graph.node:
            try:
                done = conv.fold(node, _attrs(node))
            except Exception as e:  # arithmetic on sizes this converter cannot do
                raise ConvertError(f"{conv.where(node)}: cannot compute this {node.op_type} at "
                                   f"conversion ({type(e).__name__}: {e})") from e
            if done:
                folded.append(node.output[0])
            else:
                keep.append(node)
        if not folded:
            return model
        graph = model.graph
        new_inits = [numpy_helper.from_array(np.asarray(conv.consts[v]), v) for v in folded]
        del graph.node[:]
        graph.node.extend(keep)
        graph.initializer.extend(new_inits)
    return model


def _fix_input(model, input_size):
    """The graph input's batch dimension becomes 1 (an export's symbolic batch
    axis, dynamic_axes={"x": {0: "n"}}, included), and with input_size its C,
    H, W those given; shapes are then inferred afresh from it."""
    consts = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in consts]
    if len(inputs) != 1:
        return model
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        return model
    want = [1] + list(input_size) if input_size else [1] + [None] * 3
    for d, v in zip(dims, want):
        if v is not None or not d.HasField("dim_value"):
            if v is None:
                continue  # a symbolic C, H or W: --input-size must give it
            d.ClearField("dim_param")
            d.dim_value = v
    if input_size:
        del model.graph.value_info[:]
        for o in model.graph.output:  # their shapes follow from the new input
            o.type.tensor_type.ClearField("shape")
    return model


def convert(onnx_path, out_path, *, mean, std, scale=1 / 255, classes=None, metadata=None,
            dtype="f32", input_size=None, output_index=0):
    """Convert onnx_path to an hfc-eval model file; returns its header.
    input_size: (C, H, W) for the graph's input (default: the file's).
    output_index: which of the graph's outputs is the model's (0: the first;
    ProtoPNet's are the logits and the minimum distances)."""
    try:
        model = onnx.load(onnx_path)
    except OSError:
        raise
    except Exception as e:  # protobuf's DecodeError and the like
        raise ConvertError(f"not an ONNX model ({type(e).__name__})")
    model = _fold_constants(_fix_input(model, input_size))
    conv = _Converter(model)
    inputs = [i for i in model.graph.input if i.name not in conv.consts]
    if len(inputs) != 1:
        raise ConvertError(f"the graph must take one input tensor, not {len(inputs)}")
    shape = conv.shape(inputs[0].name)
    if len(shape) != 4 or shape[0] != 1:
        raise ConvertError(f"the input must be (1, C, H, W), not {shape}")
    conv.alias[inputs[0].name] = "input"
    for node in model.graph.node:
        conv.convert(node)
    if not 0 <= output_index < len(model.graph.output):
        raise ConvertError(f"output index {output_index}: the graph has {len(model.graph.output)} output(s)")
    out = model.graph.output[output_index].name
    layer = conv.pattern.minimum(out)
    if layer:  # the minimum distances themselves
        conv.prototype(model.graph.node[-1], layer, out)
    k = int(np.prod(conv.shape(out)[1:]))
    if classes is None and k == 10:
        import hfc_models
        classes = hfc_models.CIFAR10_CLASSES
    meta = dict(metadata or {})
    meta.setdefault("converted_from", os.path.basename(onnx_path))
    output = conv.src(out, model.graph.node[-1])
    return export_pytorch.write(out_path, live_nodes(conv.nodes, output), conv.tensors, output,
                                k, mean=mean, std=std, scale=scale, classes=classes, metadata=meta,
                                input_shape=shape[1:], dtype=dtype)


def _floats(text):
    return [float(v) for v in text.split(",")]


def _ints(text):
    v = [int(x) for x in text.split(",")]
    if len(v) != 3 or min(v) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not C,H,W")
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("onnx")
    ap.add_argument("output")
    ap.add_argument("--mean", type=_floats, required=True, help="per channel, comma-separated")
    ap.add_argument("--std", type=_floats, required=True, help="per channel, comma-separated")
    ap.add_argument("--scale", type=float, default=1 / 255, help="pixel scale before mean/std (1/255)")
    ap.add_argument("--classes", help="comma-separated class names (default: CIFAR-10's for 10 "
                                      "outputs, else 0, 1, ...)")
    ap.add_argument("--dtype", choices=("f32", "f16"), default="f32")
    ap.add_argument("--input-size", type=_ints, metavar="C,H,W",
                    help="the input's channels, height and width (default: the file's)")
    ap.add_argument("--output-index", type=int, default=0,
                    help="which of the graph's outputs is the model's (default 0: the first)")
    args = ap.parse_args()
    classes = args.classes.split(",") if args.classes else None
    try:
        convert(args.onnx, args.output, mean=args.mean, std=args.std, scale=args.scale,
                classes=classes, dtype=args.dtype, input_size=args.input_size,
                output_index=args.output_index)
    except (ConvertError, ValueError) as e:
        sys.exit(f"onnx_to_hfc.py: {args.onnx}: {e}")
    except OSError as e:
        sys.exit(f"onnx_to_hfc.py: {e.filename or args.onnx}: {e.strerror or e}")


if __name__ == "__main__":
    main()
