"""ProtoPNet's head, recognised one operation at a time, for both converters
(export_pytorch.py's torch.fx route and onnx_to_hfc.py).

The authors' code computes squared L2 distances to m prototypes P (m, D)
as three products and some arithmetic:

    relu(conv2d(x ** 2, ones) + (-2 * conv2d(x, P) + sum(P ** 2).view(-1, 1, 1)))

then the minimum over the map as -max_pool2d(-d, (H, W)), a view to (n, m),
and log((d + 1) / (d + eps)) or -d. None of these steps is an hfc-eval
layer on its own; together they are one `prototype` layer.

A converter tells a Pattern what each operation did to the values it knows
(keys are the converter's own names for values); the Pattern keeps a
symbolic form of each value on the way (a linear combination of |x|^2 and
x.P plus a constant, then a distance map, its negation, its minimum, ...)
and returns the layer's description when the chain closes. Values it does
not know are ordinary tensors: every method returns None for them, and the
converter carries on as usual.
"""

import numpy as np


class Lin:
    """a2 * |x|^2 + axp * (x . P) + c, per position and prototype."""

    def __init__(self, x, a2=0.0, axp=0.0, P=None, c=0.0):
        self.x, self.a2, self.axp, self.P, self.c = x, a2, axp, P, c

    def m(self):
        return None if self.P is None else self.P.shape[0]


class Stage:
    """A later form: kind in dist, negdist, negmin, min, minplus, ratio."""

    def __init__(self, kind, x, P, k=None):
        self.kind, self.x, self.P, self.k = kind, x, P, k


class Pattern:
    def __init__(self):
        self.sym = {}
        self.squares = {}  # key of x ** 2 -> key of x

    def known(self, key):
        return key in self.sym or key in self.squares

    # -- the products ------------------------------------------------------
    def square(self, out, x):
        """out = x ** 2 of an ordinary tensor x."""
        if not self.known(x):
            self.squares[out] = x

    def conv(self, out, x, weight, bias=None, plain=True):
        """out = conv2d(x, weight) with a constant weight; plain: stride 1,
        no padding, groups and dilation 1. True when out is now symbolic."""
        w = np.asarray(weight, dtype=np.float64)
        if not plain or bias is not None or w.ndim != 4 or w.shape[2:] != (1, 1):
            return False
        if x in self.squares and np.all(w == 1):
            self.sym[out] = Lin(self.squares[x], a2=1.0, c=np.zeros(w.shape[0]))
            return True
        if not self.known(x):
            self.sym[out] = Lin(x, axp=1.0, P=w[:, :, 0, 0], c=np.zeros(w.shape[0]))
            return True
        return False

    # -- arithmetic -----------------------------------------------------------
    def scale(self, out, a, k):
        """out = a * k, k a number."""
        s = self.sym.get(a)
        if isinstance(s, Lin):
            self.sym[out] = Lin(s.x, s.a2 * k, s.axp * k, s.P, s.c * k)
        elif isinstance(s, Stage) and k == -1:
            self.neg(out, a)

    def shift(self, out, a, c):
        """out = a + c, c a number or a constant of m values ((m, 1, 1))."""
        s = self.sym.get(a)
        c = np.asarray(c, dtype=np.float64)
        if isinstance(s, Lin) and (c.size == 1 or (s.m() in (None, c.size) and c.size > 1)):
            self.sym[out] = Lin(s.x, s.a2, s.axp, s.P, s.c + c.reshape(-1))
        elif isinstance(s, Stage) and s.kind == "min" and c.size == 1:
            self.sym[out] = Stage("minplus", s.x, s.P, (a, float(c.reshape(-1)[0])))

    def add(self, out, a, b):
        """out = a + b, both symbolic combinations of the same x."""
        s, t = self.sym.get(a), self.sym.get(b)
        if not (isinstance(s, Lin) and isinstance(t, Lin) and s.x == t.x):
            return
        if s.P is not None and t.P is not None and not np.array_equal(s.P, t.P):
            return
        self.sym[out] = Lin(s.x, s.a2 + t.a2, s.axp + t.axp, s.P if s.P is not None else t.P, s.c + t.c)

    def relu(self, out, a):
        """relu of |x|^2 - 2 x.P + |P|^2: the distance map."""
        s = self.sym.get(a)
        if not (isinstance(s, Lin) and s.P is not None and s.a2 == 1 and s.axp == -2):
            return
        p2 = (s.P ** 2).sum(1)
        if np.asarray(s.c).shape == p2.shape and np.allclose(s.c, p2, rtol=1e-5, atol=1e-6 * max(1.0, p2.max())):
            self.sym[out] = Stage("dist", s.x, s.P)

    def neg(self, out, a):
        s = self.sym.get(a)
        flip = {"dist": "negdist", "negmin": "min"}
        if isinstance(s, Stage) and s.kind in flip:
            self.sym[out] = Stage(flip[s.kind], s.x, s.P)
        elif isinstance(s, Stage) and s.kind == "min":
            return {"x": s.x, "P": s.P, "similarity": "linear"}
        return None

    def max_over_map(self, out, a, whole_map):
        """out = max_pool2d(a, (H, W)) with (H, W) a's whole map."""
        s = self.sym.get(a)
        if isinstance(s, Stage) and s.kind == "negdist" and whole_map:
            self.sym[out] = Stage("negmin", s.x, s.P)

    def reshape(self, out, a):
        """A view of the (n, m, 1, 1) minimum as (n, m) or back."""
        s = self.sym.get(a)
        if isinstance(s, Stage) and s.kind in ("min", "negmin"):
            self.sym[out] = s

    def div(self, out, a, b):
        s, t = self.sym.get(a), self.sym.get(b)
        if (isinstance(s, Stage) and isinstance(t, Stage) and s.kind == t.kind == "minplus"
                and s.k[0] == t.k[0] and s.k[1] == 1.0 and 0 < t.k[1] < 1):
            self.sym[out] = Stage("ratio", s.x, s.P, t.k[1])

    def log(self, out, a):
        """The log similarity: the layer, as {x, P, similarity, epsilon}."""
        s = self.sym.get(a)
        if isinstance(s, Stage) and s.kind == "ratio":
            return {"x": s.x, "P": s.P, "similarity": "log", "epsilon": s.k}
        return None

    def minimum(self, key):
        """key's value is the minimum distances themselves: the layer that
        outputs them, or None."""
        s = self.sym.get(key)
        if isinstance(s, Stage) and s.kind == "min":
            return {"x": s.x, "P": s.P, "similarity": "distance"}
        return None


def live_nodes(nodes, output):
    """The nodes the output depends on, in their order (conversions leave
    behind nodes that a recognised pattern replaced)."""
    by_name = {nd["name"]: nd for nd in nodes}
    need, stack = set(), [output]
    while stack:
        v = stack.pop()
        if v in need or v not in by_name:
            continue
        need.add(v)
        stack.extend(by_name[v]["inputs"])
    return [nd for nd in nodes if nd["name"] in need]
