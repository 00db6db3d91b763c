"""Elementwise primitives: arithmetic, unary math, where/maximum/minimum/clamp, dtype casts.

tanh, sigmoid and relu are fused activations (gpugrad/ops/activation.py), not primitives here.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd.primitive import Primitive
from ..backend import xp_of
from ._util import sum_to


# -- binary arithmetic (broadcasting; gradients reduced back to each input's shape) -------------
class Add(Primitive):
    saves = ()

    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        return a + b

    def backward(self, g):
        return sum_to(self, g, self.sa), sum_to(self, g, self.sb)


class Sub(Primitive):
    saves = ()

    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        return a - b

    def backward(self, g):
        return sum_to(self, g, self.sa), sum_to(self, -g, self.sb)


class Mul(Primitive):
    saves = "cross"

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.values()
        na, nb = self.needs_input_grad
        return (sum_to(self, g * b, a.shape) if na else None,
                sum_to(self, g * a, b.shape) if nb else None)


class Div(Primitive):
    saves = None

    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.values()
        ga = g / b
        return (sum_to(self, ga, a.shape) if self.needs_input_grad[0] else None,
                sum_to(self, -ga * a / b, b.shape) if self.needs_input_grad[1] else None)


class Pow(Primitive):
    """a ** b for two tensors."""
    save_output = True

    def forward(self, a, b):
        return a ** b

    def backward(self, g):
        a, b = self.values()
        na, nb = self.needs_input_grad
        ga = gb = None
        if na:
            ga = sum_to(self, g * b * a ** (b - 1), a.shape)
        if nb:
            # NOTE: d/db a**b = a**b log a; where a <= 0 the log is undefined and we use 0 (as PyTorch does at a == 0)
            pos = self.inputs[0]._data > 0
            a_safe = a * pos + (~pos)
            gb = sum_to(self, g * self.result() * self.call(Log, a_safe), b.shape)
        return ga, gb


class PowScalar(Primitive):
    def forward(self, x, p):
        self.p = p
        return x ** p

    def backward(self, g):
        (x,) = self.values()
        p = self.p
        if p == 0:
            return g * 0
        if p == 1:
            return g
        if p == 2:
            return g * x * 2
        return g * (x ** (p - 1)) * p


class RPowScalar(Primitive):
    saves = ()
    """c ** x for a Python number c > 0."""
    save_output = True

    def forward(self, x, c):
        self.logc = float(np.log(c)) if c > 0 else float("nan")
        return xp_of(x).asarray(c, dtype=x.dtype) ** x

    def backward(self, g):
        return g * self.result() * self.logc


class Neg(Primitive):
    saves = ()

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


# -- unary math ---------------------------------------------------------------------------------
class Exp(Primitive):
    saves = ()
    save_output = True

    def forward(self, x):
        return xp_of(x).exp(x)

    def backward(self, g):
        return g * self.result()


class Log(Primitive):
    def forward(self, x):
        return xp_of(x).log(x)

    def backward(self, g):
        return g / self.values()[0]


class Log1p(Primitive):
    def forward(self, x):
        return xp_of(x).log1p(x)

    def backward(self, g):
        return g / (self.values()[0] + 1)


class Sqrt(Primitive):
    saves = ()
    save_output = True

    def forward(self, x):
        return xp_of(x).sqrt(x)

    def backward(self, g):
        return g / (self.result() * 2)


class Sin(Primitive):
    def forward(self, x):
        return xp_of(x).sin(x)

    def backward(self, g):
        return g * self.call(Cos, self.values()[0])


class Cos(Primitive):
    def forward(self, x):
        return xp_of(x).cos(x)

    def backward(self, g):
        return -(g * self.call(Sin, self.values()[0]))


class Erfc(Primitive):
    """erfc(x) = 1 - erf(x); a primitive for the exact-GELU composite (NumPy has no erf)."""
    def forward(self, x):
        return _erfc(x)

    def backward(self, g):
        (x,) = self.values()
        return g * self.call(Exp, -(x * x)) * (-2 / math.sqrt(math.pi))


def _erfc(x):
    if xp_of(x) is np:
        # NOTE: the kernels' erfc (SciPy when installed, else a pure-NumPy series); float16 in float32
        from ..kernels._common import erfc  # noqa: PLC0415
        flat = x.reshape(-1)  # NOTE: 1-d (the pure-NumPy series writes with out=, which 0-d results refuse)
        y = erfc(flat.astype(np.float32) if x.dtype == np.float16 else flat)
        return y.astype(x.dtype, copy=False).reshape(x.shape)
    import cupyx.scipy.special  # noqa: PLC0415
    return cupyx.scipy.special.erfc(x)


class Abs(Primitive):
    def forward(self, x):
        return xp_of(x).abs(x)

    def backward(self, g):
        d = self.inputs[0]._data
        return g * xp_of(d).sign(d)


class Clamp(Primitive):
    def forward(self, x, min=None, max=None):
        self.lo, self.hi = min, max
        return xp_of(x).clip(x, min, max)

    def backward(self, g):
        # NOTE: the gradient passes where min <= x <= max (boundaries included), as in PyTorch.
        x = self.inputs[0]._data
        m = True
        if self.lo is not None:
            m = x >= self.lo
        if self.hi is not None:
            m = m & (x <= self.hi)
        return g * m


class Maximum(Primitive):
    """Elementwise max; at ties the gradient is split evenly between the two inputs (as PyTorch)."""
    sign = 1

    def forward(self, a, b):
        xp = xp_of(a)
        return xp.maximum(a, b) if self.sign > 0 else xp.minimum(a, b)

    def backward(self, g):
        a, b = (t._data for t in self.inputs)
        win = (a > b) if self.sign > 0 else (a < b)
        w = win + (a == b) * 0.5
        w = w.astype(g.dtype, copy=False)
        return sum_to(self, g * w, a.shape), sum_to(self, g * (1 - w), b.shape)


class Minimum(Maximum):
    sign = -1


class Where(Primitive):
    saves = ()

    def forward(self, a, b, cond):
        self.cond = cond
        return xp_of(a).where(cond, a, b)

    def backward(self, g):
        a, b = self.inputs
        c = self.cond
        return sum_to(self, g * c, a.shape), sum_to(self, g * ~c, b.shape)


class Cast(Primitive):
    saves = ()

    def forward(self, x, dtype):
        self.src = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return self.call(Cast, g, dtype=self.src)
