"""Elementwise primitives: arithmetic, unary math, where/maximum/minimum/clamp, dtype casts.

tanh, sigmoid and relu are fused activations (gpugrad/ops/activation.py), not primitives here.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd.primitive import Primitive, cross
from ..backend import xp_of
from ._util import quiet_family
from .shape import sum_to


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
    saves = cross

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.values()
        na, nb = self.needs_input_grad
        return (sum_to(self, g * b, a.shape) if na else None,
                sum_to(self, g * a, b.shape) if nb else None)


class Div(Primitive):
    saves = staticmethod(lambda rg: (0, 1) if rg[1] else (1,))  # b always; a only when b needs a gradient

    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.values()
        ga = g / b
        return (sum_to(self, ga, a.shape) if self.needs_input_grad[0] else None,
                sum_to(self, -ga * a / b, b.shape) if self.needs_input_grad[1] else None)


def _int_pow(a, b):
    """a ** b of integer arrays (one may be a 0-d array) as PyTorch: a negative exponent gives 1 for a base of 1,
    +-1 for -1 (by the exponent's parity) and 0 otherwise (0 too), where NumPy refuses."""
    xp = xp_of(b)
    neg = b < 0
    if not bool(neg.any()):
        return a ** b
    r = a ** xp.where(neg, 0, b).astype(b.dtype, copy=False)
    # NOTE: the base is compared in its own dtype; an unsigned base is never -1
    alt = xp.where(a == 1, 1, xp.where((a == -1) & ((b & 1) != 0), -1, xp.where(a == -1, 1, 0)))
    return xp.where(neg, alt.astype(r.dtype, copy=False), r)


class Pow(Primitive):
    """a ** b for two tensors."""
    save_output = True

    def forward(self, a, b):
        if a.dtype == np.bool_:
            raise NotImplementedError("\"pow\" not implemented for 'Bool'")
        return _int_pow(a, b) if a.dtype.kind in "iu" else a ** b

    def backward(self, g):
        a, b = self.values()
        ad, bd = self.inputs[0]._data, self.inputs[1]._data
        na, nb = self.needs_input_grad
        ga = gb = None
        zero = xp_of(ad).zeros((), dtype=ad.dtype)
        if na:
            # NOTE: as PyTorch, 0 where the exponent is 0 (not 0 * 0**-1 = nan)
            ga = sum_to(self, self.call(Where, g * b * a ** (b - 1), zero, cond=bd != 0), a.shape)
        if nb:
            # NOTE: d/db a**b = a**b log a: 0 where a == 0 and b >= 0 (PyTorch's choice), nan for a < 0
            a0 = ad == 0
            a_safe = self.call(Where, a, xp_of(ad).ones((), dtype=ad.dtype), cond=~a0)
            gb = sum_to(self, self.call(Where, g * self.result() * self.call(Log, a_safe), zero,
                                        cond=~(a0 & (bd >= 0))), b.shape)
        return ga, gb


class PowScalar(Primitive):
    def forward(self, x, p):
        self.p = p
        if x.dtype.kind in "iub" and isinstance(p, int) and p < 0:
            raise RuntimeError("Integers to negative integer powers are not allowed.")
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
    """c ** x for a Python number c."""
    saves = ()
    save_output = True

    def forward(self, x, c):
        # NOTE: PyTorch's d/dx c**x = c**x log c, and 0 where c == 0 and x >= 0 (log 0 = -inf elsewhere; NaN for c < 0)
        self.logc = math.log(c) if c > 0 else -math.inf if c == 0 else math.nan
        self.zero = (x >= 0) if c == 0 else None
        base = xp_of(x).asarray(c, dtype=x.dtype)
        return _int_pow(base, x) if x.dtype.kind in "iu" else base ** x

    def backward(self, g):
        gx = g * self.result() * self.logc
        if self.zero is None:
            return gx
        gd = g._data if self.graph else g
        return self.call(Where, xp_of(gd).zeros((), dtype=gd.dtype), gx, cond=self.zero)


class Neg(Primitive):
    saves = ()

    def forward(self, x):
        if x.dtype == np.bool_:
            raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. If you are trying to "
                               "invert a mask, use the `~` or `logical_not()` operator instead.")
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
        from ..fused._common import erfc  # noqa: PLC0415
        flat = x.reshape(-1)  # NOTE: 1-d (the pure-NumPy series writes with out=, which 0-d results refuse)
        y = erfc(flat.astype(np.float32) if x.dtype == np.float16 else flat)
        return y.astype(x.dtype, copy=False).reshape(x.shape)
    import cupyx.scipy.special  # noqa: PLC0415
    return cupyx.scipy.special.erfc(x)


class Abs(Primitive):
    def forward(self, x):
        xp = xp_of(x)
        if x.dtype == np.bool_:
            raise NotImplementedError(f"\"abs_{'cpu' if xp is np else 'cuda'}\" not implemented for 'Bool'")
        return xp.abs(x)

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
        tie = a == b
        lose_a, lose_b = (a < b, a > b) if self.sign > 0 else (a > b, a < b)
        # NOTE: PyTorch's formula: g, halved at ties, zeroed (masked_fill) where the input loses. A NaN compares
        # false both ways, so at a NaN both inputs get the whole gradient; a zeroed NaN/inf g stays 0
        if self.graph:
            w = 1 - 0.5 * tie
            return (sum_to(self, g * (w - lose_a).astype(g.dtype), a.shape),
                    sum_to(self, g * (w - lose_b).astype(g.dtype), b.shape))
        xp = xp_of(a)
        h = xp.where(tie, g * 0.5, g)
        return sum_to(self, xp.where(lose_a, 0, h), a.shape), sum_to(self, xp.where(lose_b, 0, h), b.shape)


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
        # NOTE: zeros selected, not g * mask: a NaN/inf in g stays out of the branch not taken (PyTorch's 0)
        z = xp_of(c).zeros((), getattr(g, "_data", g).dtype)
        return (sum_to(self, self.call(Where, g, z, cond=c), a.shape),
                sum_to(self, self.call(Where, z, g, cond=c), b.shape))


class Cast(Primitive):
    saves = ()
    lowp = "forward"

    def forward(self, x, dtype):
        self.src = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return self.call(Cast, g, dtype=self.src)


# -- rounding, floor/trunc division, remainder/fmod (PyTorch's formulas and gradients) -------------
def _opmath(x):
    # NOTE: float16 computes in float32 and rounds once at the end, as PyTorch's CPU kernels (opmath type)
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _zeros_grad(g, shape=None, dtype=None):
    """PyTorch's ``zeros_like(grad)``: exact zeros (also where grad is inf/nan), array or Tensor like g."""
    d = getattr(g, "_data", None)
    if d is None:
        return xp_of(g).zeros(g.shape if shape is None else shape, g.dtype if dtype is None else dtype)
    return type(g)(xp_of(d).zeros(d.shape if shape is None else shape, d.dtype if dtype is None else dtype))


class Round(Primitive):
    """round (half to even; ``decimals`` as NumPy's around), floor, ceil, trunc. Gradient zero."""
    saves = ()

    def forward(self, x, op, decimals=0):
        xp = xp_of(x)
        if op != "round":
            return getattr(xp, op)(x)
        if decimals == 0:
            return xp.rint(x)
        y = _opmath(x)
        f = 10.0 ** abs(decimals)
        y = xp.rint(y * f) / f if decimals > 0 else xp.rint(y / f) * f
        return y.astype(x.dtype, copy=False)

    def backward(self, g):
        return _zeros_grad(g)


def _check_int_divisor(a, b):
    # NOTE: PyTorch's CPU message for integer division by zero; an empty result (a empty) divides nothing
    if b.dtype.kind in "iub" and a.size and bool((b == 0).any()):
        raise RuntimeError("ZeroDivisionError")


def _floor_div(a, b):
    """Floating floor division, as PyTorch's div_floor (and Python's //): floor((a - fmod(a, b)) / b), fixed up."""
    xp = xp_of(a)
    if xp is np:
        return np.floor_divide(a, b)  # NOTE: NumPy's npy_divmod is the same algorithm
    mod = xp.fmod(a, b)
    div = (a - mod) / b
    div = xp.where((mod != 0) & ((b < 0) != (mod < 0)), div - 1, div)
    fl = xp.floor(div)
    fl = xp.where(div - fl > 0.5, fl + 1, fl)
    out = xp.where(div != 0, fl, xp.copysign(xp.zeros_like(div), a / b))
    return xp.where(b == 0, a / b, out)


class DivRound(Primitive):
    """a / b rounded toward -inf (``mode='floor'``) or 0 (``'trunc'``). The gradient is zero (PyTorch's
    div with a rounding_mode); with ``name`` set (``//``, floor_divide) backward refuses, as PyTorch."""
    saves = ()

    def forward(self, a, b, mode, name=None):
        self.sa, self.sb, self.opname = a.shape, b.shape, name
        xp = xp_of(a)
        if a.dtype == np.bool_:
            raise NotImplementedError(f"\"div_{mode}\": not implemented for 'Bool' tensors")
        if a.dtype.kind in "iu":
            _check_int_divisor(a, b)
            return xp.floor_divide(a if mode == "floor" else a - xp.fmod(a, b), b)  # NOTE: exact truncation
        if mode == "trunc":
            return xp.trunc(a / b)  # NOTE: float16 too: PyTorch rounds the quotient to half, then truncates
        return _floor_div(_opmath(a), _opmath(b)).astype(a.dtype, copy=False)

    def backward(self, g):
        if self.opname is not None:
            raise RuntimeError(f"derivative for aten::{self.opname} is not implemented")
        return _zeros_grad(g, self.sa), _zeros_grad(g, self.sb)


class Remainder(Primitive):
    """``remainder`` (sign of the divisor, as Python's %) or ``fmod`` (sign of the dividend).

    Gradients as PyTorch: 1 for a; -floor(a / b) (remainder) or -trunc(a / b) (fmod) for b. With
    ``rscalar`` (``5 % t``: a number on the left) PyTorch has no derivative, and backward refuses.
    """

    def forward(self, a, b, mode, rscalar=False):
        self.mode, self.rscalar = mode, rscalar
        xp = xp_of(a)
        if a.dtype == np.bool_:
            raise NotImplementedError(f"\"{mode}\": not implemented for 'Bool' tensors")
        if a.dtype.kind in "iu":
            _check_int_divisor(a, b)
            return xp.fmod(a, b) if mode == "fmod" else xp.remainder(a, b)
        x, y = _opmath(a), _opmath(b)
        m = xp.fmod(x, y)
        if mode == "remainder":
            # NOTE: PyTorch's formula: a zero result keeps fmod's sign (NumPy's remainder copies b's sign)
            m = xp.where((m != 0) & ((y < 0) != (m < 0)), m + y, m)
        return m.astype(a.dtype, copy=False)

    def backward(self, g):
        if self.rscalar:
            raise RuntimeError("derivative for aten::remainder is not implemented")
        a, b = self.values()
        na, nb = self.needs_input_grad
        gb = None
        if nb:
            q = self.call(DivRound, a, b, mode="floor" if self.mode == "remainder" else "trunc")
            gb = sum_to(self, -(g * q), b.shape)
        return (sum_to(self, g, a.shape) if na else None), gb




class Sampled(Primitive):
    """A value drawn from a distribution with Tensor parameters (gg.normal(mean, std)), or the result of an op that
    PyTorch differentiates as a constant (an in-place comparison with an operand that requires grad): gradient zero
    for each parameter (in its dtype), as PyTorch."""
    saves = ()

    def forward(self, *params, value):
        self.shapes = [(p.shape, p.dtype) for p in params]
        return value

    def backward(self, g):
        zs = tuple(_zeros_grad(g, s, dt) for s, dt in self.shapes)
        return zs[0] if len(zs) == 1 else zs

class Bind:
    """``Bind(Prim, **params).apply(a, b)`` is ``Prim.apply(a, b, **params)``: a primitive with fixed
    parameters, for tensor.py's ``_binary`` (which promotes the operands, then calls ``fn.apply(a, b)``)."""
    __slots__ = ("cls", "params", "__name__")

    def __init__(self, cls, label, **params):
        self.cls, self.params, self.__name__ = cls, params, label

    def apply(self, a, b):
        return self.cls.apply(a, b, **self.params)

# NOTE: these families compute IEEE special values PyTorch returns silently (1/0, log(0), sqrt(-1), 0*inf,
# inf-inf, exp overflow, x % 0): NumPy's warnings are turned off inside their forward and backward.
quiet_family(Add, Sub, Round, DivRound, backward=False)  # NOTE: their backward only sums or returns zeros
quiet_family(Mul, Div, Pow, PowScalar, RPowScalar, Exp, Log, Log1p, Sqrt, Sin, Cos, Erfc, Cast, Remainder,
             backward=False)  # NOTE: backward formulas run inside engine.run's errstate
