"""Elementwise math (trigonometric, hyperbolic, special functions, logical/bitwise) and shape composites.

Primitives here follow ops/elementwise.py: forward on arrays, backward written once with operators and
``self.call`` (so create_graph works). The functions at the end are what the Tensor methods of issue 11
(tensor.py) and the ``gg.X`` names call; they apply PyTorch's dtype rules (integer inputs of a
transcendental function compute in the default float) and raise PyTorch's errors.
"""
from __future__ import annotations

import math
import numbers
import sys as _sys
import warnings

import numpy as np

from .._dtypes import is_float as _isf
from .. import tensor as _tensor
from ..autograd.primitive import Primitive, recorded
from ..backend import xp_of
from . import elementwise as _ew
from . import shape as _sh
from ._util import one_dim, quiet, quiet_family
from .shape import sum_to

Tensor = _tensor.Tensor
_SQRT_PI = math.sqrt(math.pi)
_LN2, _LN10 = math.log(2.0), math.log(10.0)


# -- special functions on arrays (SciPy / cupyx when present, else pure NumPy fallbacks) ----------------
_SCIPY = [None]


def _scipy():
    if _SCIPY[0] is None:
        try:
            import scipy.special as sp  # noqa: PLC0415
        except ImportError:  # pragma: no cover
            sp = False
        _SCIPY[0] = sp
    return _SCIPY[0]


def _special(name, x, fallback, *args):
    """scipy.special.<name>(*args, x) (cupyx on CuPy arrays); float16 computes in float32."""
    if xp_of(x) is not np:
        import cupyx.scipy.special as cs  # noqa: PLC0415
        y = getattr(cs, name)(*args, x.astype(np.float32) if x.dtype == np.float16 else x)
        return y.astype(x.dtype, copy=False)
    y = x.astype(np.float32) if x.dtype == np.float16 else x
    sp = _scipy()
    out = getattr(sp, name)(*args, y) if sp else fallback(*args, y)
    return np.asarray(out).astype(x.dtype, copy=False)


@quiet
def np_erf(x):
    """erf in pure NumPy: a Taylor series for |x| < 0.5 (keeps the relative accuracy near 0), else 1 - erfc."""
    x = np.asarray(x)
    s = np.zeros_like(x)
    term = x * (2 / _SQRT_PI)
    x2 = x * x
    for n in range(14):
        s = s + term / (2 * n + 1)
        term = -term * x2 / (n + 1)
    big = np.sign(x) * (1 - _ew._erfc(np.abs(x)))
    return np.where(np.abs(x) < 0.5, s, big)


@quiet
def np_erfinv(x):
    """erfinv in pure NumPy: Giles' approximation refined by two Newton steps on erf."""
    x = np.asarray(x, dtype=np.float64)
    w = -np.log((1 - x) * (1 + x))
    w1, w2 = w - 2.5, np.sqrt(np.maximum(w, 0)) - 3
    p1 = 2.81022636e-08
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503, -0.00417768164,
              0.246640727, 1.50140941):
        p1 = c + p1 * w1
    p2 = -0.000200214257
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047,
              1.00167406, 2.83297682):
        p2 = c + p2 * w2
    y = np.where(w < 5, p1, p2) * x
    for _ in range(2):
        fin = np.isfinite(y)
        ys = np.where(fin, y, 0)
        step = (np_erf(ys) - x) / (2 / _SQRT_PI * np.exp(-ys * ys))
        y = np.where(fin, ys - step, y)
    y = np.where(x == 1, np.inf, np.where(x == -1, -np.inf, y))
    return np.where(np.abs(x) > 1, np.nan, y)


@quiet
def np_gammaln(x):
    f = np.frompyfunc(lambda v: math.inf if (math.isfinite(v) and v <= 0 and v == math.floor(v))
                      else (math.inf if v == -math.inf else math.lgamma(v)), 1, 1)
    return np.asarray(f(np.asarray(x, np.float64)), dtype=np.float64)  # NOTE: frompyfunc gives a scalar for 0-d


@quiet
def np_digamma(x):
    """digamma in pure NumPy: reflection below 0.5, recurrence up to 6, then the asymptotic series."""
    x = np.asarray(x, np.float64)
    refl = x < 0.5
    z = np.where(refl, 1 - x, x)
    acc = np.zeros_like(z)
    for _ in range(6):
        small = z < 6
        acc = acc - np.where(small, 1 / np.where(small, z, 1), 0)
        z = np.where(small, z + 1, z)
    r = 1 / (z * z)
    psi = np.log(z) - 0.5 / z - r * (1 / 12 - r * (1 / 120 - r * (1 / 252 - r * (1 / 240 - r / 132))))
    psi = psi + acc
    psi = np.where(refl, psi - np.pi / np.tan(np.pi * x), psi)
    pole = (x <= 0) & (x == np.floor(x))
    return np.where(x == 0, np.copysign(np.inf, -np.where(x == 0, np.copysign(1.0, x), 1.0)),
                    np.where(pole, np.nan, psi))


@quiet
def np_polygamma(n, x):
    """polygamma(n >= 1) in pure NumPy: (-1)^(n+1) n! zeta(n+1, x), Hurwitz zeta by Euler-Maclaurin."""
    x = np.asarray(x, np.float64)
    s = n + 1.0
    N = 10
    z = sum((x + k) ** -s for k in range(N))
    a = x + N
    z = z + a ** (1 - s) / (s - 1) + 0.5 * a ** -s
    fact, term = 1.0, s * a ** (-s - 1)
    for j, b in enumerate((1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6)):
        fact *= (2 * j + 1) * (2 * j + 2) if j else 2
        z = z + b / fact * term
        term = term * (s + 2 * j + 1) * (s + 2 * j + 2) / (a * a)
    out = (-1) ** (n + 1) * math.factorial(n) * z
    return np.where((x <= 0) & (x == np.floor(x)), np.inf, out)


# -- unary primitives ----------------------------------------------------------------------------------
class _Unary(Primitive):
    fn = None  # the xp function's name

    def forward(self, x):
        return getattr(xp_of(x), self.fn)(x)


class _UnaryOut(_Unary):
    saves = ()
    save_output = True


class Expm1(_UnaryOut):
    fn = "expm1"

    def backward(self, g):
        return g * (self.result() + 1)


class Log2(_Unary):
    fn = "log2"

    def backward(self, g):
        return g / (self.values()[0] * _LN2)


class Log10(_Unary):
    fn = "log10"

    def backward(self, g):
        return g / (self.values()[0] * _LN10)


class Tan(_UnaryOut):
    fn = "tan"

    def backward(self, g):
        y = self.result()
        return g * (y * y + 1)


class Asin(_Unary):
    fn = "arcsin"

    def backward(self, g):
        x = self.values()[0]
        return g / self.call(_ew.Sqrt, 1 - x * x)


class Acos(_Unary):
    fn = "arccos"

    def backward(self, g):
        x = self.values()[0]
        return -(g / self.call(_ew.Sqrt, 1 - x * x))


class Atan(_Unary):
    fn = "arctan"

    def backward(self, g):
        x = self.values()[0]
        return g / (x * x + 1)


class Sinh(_Unary):
    fn = "sinh"

    def backward(self, g):
        return g * self.call(Cosh, self.values()[0])


class Cosh(_Unary):
    fn = "cosh"

    def backward(self, g):
        return g * self.call(Sinh, self.values()[0])


class Asinh(_Unary):
    fn = "arcsinh"

    def backward(self, g):
        x = self.values()[0]
        return g / self.call(_ew.Sqrt, x * x + 1)


class Acosh(_Unary):
    fn = "arccosh"

    def backward(self, g):
        x = self.values()[0]
        return g / self.call(_ew.Sqrt, x * x - 1)


class Atanh(_Unary):
    fn = "arctanh"

    def backward(self, g):
        x = self.values()[0]
        return g / (1 - x * x)


# erf(x) = x P(x^2) / Q(x^2) on [-4, 4] (Eigen's float32 rational approximation; erf(+-4) rounds to +-1 in
# float32). Evaluated in float32 NumPy passes: max 7.5 float32 ulp from the exact erf (3.5 for |x| < 2), ~6x
# faster than SciPy's scalar double loop.
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)


def _np_erf32(x):
    """erf of a float32 NumPy array (nan stays nan, +-inf gives +-1, -0 gives -0)."""
    x = np.clip(x, -4, 4, dtype=np.float32)
    x2 = x * x
    p = np.multiply(x2, np.float32(_ERF_P[0]))
    p += np.float32(_ERF_P[1])
    for c in _ERF_P[2:]:
        p *= x2
        p += np.float32(c)
    p *= x
    q = np.multiply(x2, np.float32(_ERF_Q[0]))
    q += np.float32(_ERF_Q[1])
    for c in _ERF_Q[2:]:
        q *= x2
        q += np.float32(c)
    p /= q
    return np.clip(p, -1, 1, out=p)  # NOTE: the rational form overshoots 1 by an ulp near |x| = 4


_CHUNK = 1 << 16  # NOTE: multi-pass formulas run on chunks: their temporaries stay in cache


def _np_chunked(fn, x, compute):
    """fn over chunks of NumPy ``x`` cast to ``compute`` (float16 computes in float32), cast back to x's dtype."""
    out = np.empty(x.shape, x.dtype)
    xf, of = x.reshape(-1), out.reshape(-1)
    for i in range(0, xf.size, _CHUNK):
        of[i:i + _CHUNK] = fn(xf[i:i + _CHUNK].astype(compute))
    return out


def _fast32(x):
    """The float32 NumPy formulas below apply (float16 computes in float32, float64 keeps SciPy's)."""
    return type(x) is np.ndarray and x.ndim and x.dtype in (np.float32, np.float16)


# Giles' single-precision erfinv ("Approximating the erfinv function", GPU Computing Gems, 2010): a polynomial
# in w = -log(1 - x^2) - 2.5 for w < 5, else in sqrt(w) - 3; max 3.6 float32 ulp from the exact erfinv on
# [-1, 1] (PyTorch's two Newton steps: 0.5), ~7x faster than SciPy's scalar loop.
_ERFINV_P1 = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
              -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_P2 = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
              0.00943887047, 1.00167406, 2.83297682)


def _horner32(w, cs):
    p = np.multiply(w, np.float32(cs[0]))
    p += np.float32(cs[1])
    for c in cs[2:]:
        p *= w
        p += np.float32(c)
    return p


@quiet
def _np_erfinv32(x):
    """erfinv of a float32 NumPy chunk: +-inf at +-1, NaN outside [-1, 1] (w is NaN there), -0 gives -0."""
    w = np.multiply(1 - x, 1 + x)  # NOTE: 1 - x is exact near 1 (Sterbenz), so w keeps its relative accuracy
    np.log(w, out=w)
    np.negative(w, out=w)
    y = _horner32(w - np.float32(2.5), _ERFINV_P1)
    tail = ~(w < 5)  # NOTE: also NaN (|x| > 1) and inf (|x| = 1): they take the tail formula
    if tail.any():
        wt = w[tail]
        yt = _horner32(np.sqrt(wt) - np.float32(3), _ERFINV_P2)
        yt[wt == np.inf] = np.inf  # NOTE: the polynomial of inf is -inf; erfinv(+-1) = +-inf after * x
        y[tail] = yt
    y *= x
    return y


# lgamma for float32: lgamma(x) = lgamma(x + 8) - log(x (x+1) ... (x+7)), Stirling's series at x + 8 >= 8, in
# float64: < 1 float32 ulp from the exact value, also next to the zeros at 1 and 2 (absolute error ~3e-15 there
# against |lgamma| >= 3.5e-8 at the float32 neighbours); reflection below 0. ~3x faster than SciPy's gammaln.
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360)  # B_2k / (2k (2k - 1))


@quiet
def _np_lgamma64(z):
    """lgamma of a float64 NumPy chunk (PyTorch's values at the poles, 0 and +-inf: +inf)."""
    neg = z < 0
    anyneg = bool(neg.any())
    a = np.where(neg, 1 - z, z) if anyneg else z
    s = a * (a + 7)  # NOTE: x (x+7), (x+1)(x+6) = s + 6, (x+2)(x+5) = s + 10, (x+3)(x+4) = s + 12
    w = a + 8
    r = 1 / w
    r2 = r * r
    ser = np.multiply(r2, _STIRLING[-1])
    for c in _STIRLING[-2:0:-1]:
        ser += c
        ser *= r2
    ser += _STIRLING[0]
    ser *= r
    y = np.log(w)
    y *= w - 0.5
    y -= w
    y += ser + _HALF_LOG_2PI
    y -= np.log(s)  # NOTE: two logs: the product of all eight factors overflows float64 near float32's max
    y -= np.log((s + 6) * (s + 10) * (s + 12))
    if anyneg:  # lgamma(x) = log(pi / |sin(pi x)|) - lgamma(1 - x); sin(pi (x - round(x))) is exact in reduction
        zn = z[neg]
        y[neg] = np.log(np.pi / np.abs(np.sin(np.pi * (zn - np.round(zn))))) - y[neg]
    y[(z == 1) | (z == 2)] = 0  # NOTE: exact zeros, as PyTorch
    inf = np.isinf(z)
    if inf.any():
        y[inf] = np.inf  # NOTE: PyTorch's lgamma(+-inf) is inf (the formulas give NaN)
    return y


@quiet
def _trigamma32(z):
    """PyTorch's float32 trigamma (polygamma(1, x)): reflection below 0.5, 6 recurrence steps, the asymptotic
    series; on a float32 array of any xp (modified in place). The poles (x <= 0 integer) give +inf (scipy's
    value; PyTorch's float formula gives ~1e15 there, sin(pi x) not being 0 in float32)."""
    xp = xp_of(z)
    out = xp.zeros_like(z)
    refl = z < 0.5
    anyr = bool(refl.any())
    if anyr:
        zr = z[refl]
        sr = xp.sin(np.float32(np.pi) * (zr - xp.round(zr)))  # NOTE: exact reduction: sin(pi n) is exactly 0
        out[refl] = np.float32(-np.pi ** 2) / (sr * sr)
        z[refl] = 1 - zr
    for _ in range(6):
        out += 1 / (z * z)
        z += 1
    ixx = 1 / (z * z)
    t = ixx * np.float32(1 / 42)
    t = ixx * (np.float32(1 / 30) - t)
    t = ixx * (np.float32(1 / 6) - t)
    out += (1 + 1 / (2 * z) + t) / z
    if anyr:
        out[refl] = -out[refl]
    return out


def _trigamma(x):
    if xp_of(x) is np:
        return _np_chunked(_trigamma32, x, np.float32)
    return _trigamma32(x.astype(np.float32)).astype(x.dtype, copy=False)  # pragma: no cover  (cupy)


class Erf(Primitive):
    def forward(self, x):
        if type(x) is np.ndarray and x.ndim and x.dtype in (np.float32, np.float16):
            return _np_erf32(x).astype(x.dtype, copy=False)
        return _special("erf", x, np_erf)

    def backward(self, g):
        (x,) = self.values()
        return g * self.call(_ew.Exp, -(x * x)) * (2 / _SQRT_PI)


class Erfinv(Primitive):
    saves = ()
    save_output = True

    def forward(self, x):
        if _fast32(x):
            return _np_chunked(_np_erfinv32, x, np.float32)
        return _special("erfinv", x, np_erfinv)

    def backward(self, g):
        y = self.result()
        return g * self.call(_ew.Exp, y * y) * (_SQRT_PI / 2)


class Lgamma(Primitive):
    def forward(self, x):
        if _fast32(x):
            return _np_chunked(_np_lgamma64, x, np.float64)
        y = _special("gammaln", x, np_gammaln)
        return xp_of(x).where(x == -np.inf, np.inf, y)  # NOTE: PyTorch's lgamma(-inf) is inf (SciPy's -inf)

    def backward(self, g):
        return g * self.call(Digamma, self.values()[0])


class Digamma(Primitive):
    def forward(self, x):
        return _special("digamma", x, np_digamma)

    def backward(self, g):
        return g * self.call(Polygamma, self.values()[0], n=1)


class Polygamma(Primitive):
    def forward(self, x, n):
        self.n = n
        if n == 0:
            return _special("digamma", x, np_digamma)
        if n == 1 and x.dtype in (np.float32, np.float16):
            return _trigamma(x)  # NOTE: PyTorch's float trigamma formula (SciPy's polygamma is ~50x slower)
        y = _special("polygamma", x, np_polygamma, n)
        return xp_of(x).where(x == -np.inf, np.nan, y)  # NOTE: PyTorch's polygamma(n, -inf) is nan (SciPy's inf)

    def backward(self, g):
        return g * self.call(Polygamma, self.values()[0], n=self.n + 1)


class Sinc(Primitive):
    """sin(pi x) / (pi x), 1 at 0; gradient 0 at 0 (PyTorch's masked formula)."""
    def forward(self, x):
        xp = xp_of(x)
        y = _ew._opmath(x)  # NOTE: float16 computes in float32 (PyTorch's opmath), else sinc(1) is 3e-4
        px = y * np.pi
        return xp.where(y == 0, 1, xp.sin(px) / xp.where(y == 0, 1, px)).astype(x.dtype, copy=False)

    def backward(self, g):
        x = self.values()[0]
        d = self.inputs[0]._data
        zero = d == 0
        xs = x + zero.astype(d.dtype)  # NOTE: a safe denominator; the zeros are masked out below
        px = xs * np.pi
        dy = (px * self.call(_ew.Cos, px) - self.call(_ew.Sin, px)) / (px * xs)
        return g * dy * (~zero).astype(d.dtype)


class Logit(Primitive):
    def forward(self, x, eps=None):
        self.eps = eps
        xp = xp_of(x)
        if eps is not None:
            x = xp.clip(x, eps, 1 - eps)
        return xp.log(x / (1 - x))

    def backward(self, g):
        x = self.values()[0]
        out = g / (x * (1 - x) + 0.0)  # NOTE: + 0.0 turns -0 into +0: gradient +inf at -0, as PyTorch
        d = self.inputs[0]._data
        if self.eps is None:  # NOTE: PyTorch: nan outside [0, 1]
            return out * xp_of(d).where((d < 0) | (d > 1), np.nan, 1).astype(d.dtype, copy=False)
        keep = (d >= self.eps) & (d <= 1 - self.eps)  # NOTE: PyTorch: zero outside [eps, 1 - eps]
        return out * keep.astype(d.dtype)


class NanToNum(Primitive):
    # NOTE: backward reads the input (its isfinite mask, built only then, as PyTorch's formula saves self)

    def forward(self, x, nan, posinf, neginf):
        xp = xp_of(x)
        if xp is np and x.ndim and posinf == float(np.finfo(x.dtype).max) and neginf == float(np.finfo(x.dtype).min):
            # NOTE: the default bounds are the finite extremes: clip maps +-inf onto them and leaves every finite
            # value (and NaN) as is, one pass; the NaN fix-up only when there is one
            y = np.clip(x, neginf, posinf)
            keep = np.equal(y, y)  # NOTE: False exactly at NaN
            if not keep.all():
                u = y.view(np.dtype(f"i{y.itemsize}"))
                # NOTE: NaN -> +0.0 as integer bits times the mask, one branch-free pass; copyto/putmask/boolean
                # assignment with a scattered mask run per mask run (~3x slower at 1.6% NaN)
                np.multiply(u, keep, out=u)
                if nan != 0.0 or math.copysign(1.0, nan) < 0:  # other fill values (and -0.0): a masked copy
                    np.copyto(y, nan, where=~keep)
            return y
        return xp.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    def backward(self, g):
        d = self.inputs[0]._data
        return g * xp_of(d).isfinite(d).astype(g.dtype)


class ZeroGrad(Primitive):
    """A value whose gradient is zero (sgn of real numbers); PyTorch's ``zeros_like(grad)``."""
    saves = ()

    def forward(self, x, fn):
        return fn(x)

    def backward(self, g):
        return _ew._zeros_grad(g)


class NoGrad(Primitive):
    """A differentiable-looking op whose backward PyTorch does not implement (heaviside)."""
    saves = ()

    def forward(self, *xs, fn, opname):
        self.opname = opname
        return fn(*xs)

    def backward(self, g):
        raise RuntimeError(f"derivative for aten::{self.opname} is not implemented")


# -- binary primitives ---------------------------------------------------------------------------------
class Atan2(Primitive):
    def forward(self, a, b):
        return xp_of(a).arctan2(a, b)

    def backward(self, g):
        a, b = self.values()
        da, db = self.inputs[0]._data, self.inputs[1]._data
        zero = (da * da + db * db) == 0
        # NOTE: PyTorch's atan2_backward zeroes the reciprocal where it is infinite (the origin): gradient 0
        r = g / (a * a + b * b + zero.astype(da.dtype)) * (~zero).astype(da.dtype)
        return sum_to(self, r * b, a.shape), sum_to(self, -(r * a), b.shape)


class Hypot(Primitive):
    save_output = True

    def forward(self, a, b):
        # NOTE: np.hypot is a scalar loop; sqrt(a*a + b*b) (within 1 ulp) where the sum of squares can neither
        # overflow nor lose precision to underflow (checked on its min/max, nan included), np.hypot on the
        # elements outside that range. CuPy's hypot is one fused kernel: used as is.
        xp = xp_of(a)
        if xp is not np or a.ndim == 0 and b.ndim == 0:
            return xp.hypot(a, b)
        dt = a.dtype
        a, b = _ew._opmath(a), _ew._opmath(b)
        s = a * a
        t = b * b
        s = np.add(s, t, out=s) if s.shape == np.broadcast_shapes(s.shape, t.shape) else s + t
        lo, hi = (2.0 ** -100 if s.dtype == np.float32 else 2.0 ** -1000), float(np.finfo(s.dtype).max)
        if s.size and not (float(s.min()) >= lo and float(s.max()) <= hi):
            bad = ~((s >= lo) & (s <= hi))
            aa, bb = np.broadcast_arrays(a, b)
            np.sqrt(s, out=s)
            s[bad] = np.hypot(aa[bad], bb[bad])
        else:
            np.sqrt(s, out=s)
        return s.astype(dt, copy=False)

    def backward(self, g):
        a, b = self.values()
        r = g / self.result()
        return sum_to(self, r * a, a.shape), sum_to(self, r * b, b.shape)


class LogAddExp(Primitive):
    base2 = False

    def forward(self, a, b):
        # NOTE: max(a, b) + log1p(exp(-|a - b|)) in place (np.logaddexp is a scalar loop, ~13x slower). Equal
        # infinities make a - b nan: fmin(nan, 0) = 0 gives max + log(2) = that infinity; a nan input stays nan
        # through maximum. float16 computes in float32 and rounds once.
        # CuPy's logaddexp is one fused kernel already: used as is.
        xp = xp_of(a)
        if xp is not np or a.ndim == 0 and b.ndim == 0:
            return xp.logaddexp2(a, b) if self.base2 else xp.logaddexp(a, b)
        dt = a.dtype
        a, b = _ew._opmath(a), _ew._opmath(b)
        m = xp.maximum(a, b)
        d = xp.subtract(a, b)
        xp.abs(d, out=d)
        xp.negative(d, out=d)
        xp.fmin(d, 0, out=d)
        if self.base2:
            xp.exp2(d, out=d)
            xp.log1p(d, out=d)
            xp.multiply(d, 1 / _LN2, out=d)
        else:
            xp.exp(d, out=d)
            xp.log1p(d, out=d)
        xp.add(m, d, out=m)
        return m.astype(dt, copy=False)

    def backward(self, g):
        # NOTE: PyTorch's formulas: grad / (1 + exp(other - self)) (2 ** (...) for logaddexp2)
        a, b = self.values()
        e = (lambda v: self.call(_ew.RPowScalar, v, c=2)) if self.base2 else (lambda v: self.call(_ew.Exp, v))
        return sum_to(self, g / (e(b - a) + 1), a.shape), sum_to(self, g / (e(a - b) + 1), b.shape)


class LogAddExp2(LogAddExp):
    base2 = True


class Xlogy(Primitive):
    def forward(self, a, b):
        xp = xp_of(a)
        return xp.where((a == 0) & ~xp.isnan(b), xp.zeros_like(a), a * xp.log(b))

    def backward(self, g):
        a, b = self.values()
        na, nb = self.needs_input_grad
        ga = gb = None
        if na:
            da, db = self.inputs[0]._data, self.inputs[1]._data
            # NOTE: PyTorch masks the gradient of x where x == 0 and y <= 0 (y read as 1 there)
            mask = (da == 0) & (db <= 0)
            one = xp_of(da).ones(mask.shape, da.dtype)
            b1 = self.call(_ew.Where, one, b, cond=mask) if mask.any() else b
            ga = sum_to(self, self.call(Xlogy, g, b1) * (~mask).astype(da.dtype), a.shape)
        if nb:
            gb = sum_to(self, g * a / b, b.shape)
        return ga, gb


class Copysign(Primitive):
    def forward(self, a, b):
        return xp_of(a).copysign(a, b)

    def backward(self, g):
        # NOTE: PyTorch: grad * result / self, 0 where self == 0; no gradient for the sign source
        da, db = self.inputs[0]._data, self.inputs[1]._data
        xp = xp_of(da)
        ratio = xp.where(da == 0, 0, xp.copysign(xp.ones_like(da), db) * xp.sign(da)).astype(da.dtype, copy=False)
        return sum_to(self, g * ratio, da.shape), _ew._zeros_grad(g, db.shape)


quiet_family(_Unary, Expm1, Log2, Log10, Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh, Erf, Erfinv, Lgamma, Digamma,
             Polygamma, Sinc, Logit, Atan2, Hypot, LogAddExp, LogAddExp2, Xlogy, Copysign)


# -- the functions (Tensor methods and gg.X) -------------------------------------------------------------
def _need(fname, x, pos=1, arg="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fname}(): argument '{arg}' (position {pos}) must be Tensor, not {type(x).__name__}")


def _fl(t):
    return t if _isf(t._data.dtype) else t.type(_tensor.get_default_dtype())


def _unary(cls):
    def f(input):  # noqa: A002
        _need(cls.__name__.lower(), input)
        return cls.apply(_fl(input))
    f.__name__ = cls.__name__.lower()
    return f


expm1, log2, log10, tan, asin, acos, atan = map(_unary, (Expm1, Log2, Log10, Tan, Asin, Acos, Atan))
sinh, cosh, asinh, acosh, atanh = map(_unary, (Sinh, Cosh, Asinh, Acosh, Atanh))
erf, erfinv, lgamma, digamma, sinc = map(_unary, (Erf, Erfinv, Lgamma, Digamma, Sinc))


def erfc(input):  # noqa: A002
    _need("erfc", input)
    return _ew.Erfc.apply(_fl(input))


def exp2(input):  # noqa: A002
    _need("exp2", input)
    return 2 ** _fl(input)


def reciprocal(input):  # noqa: A002
    _need("reciprocal", input)
    return 1 / _fl(input)


def polygamma(n, input):  # noqa: A002
    _need("polygamma", input, 2)
    if not isinstance(n, numbers.Integral) or n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    return Polygamma.apply(_fl(input), n=int(n))


def sgn(input):  # noqa: A002
    _need("sgn", input)
    if input.dtype == _tensor.bool_:
        return Tensor(input._data.copy())
    # NOTE: PyTorch's sign of nan is 0 ((0 < x) - (x < 0)); NumPy's is nan
    return ZeroGrad.apply(input, fn=lambda a: ((a > 0).astype(a.dtype) - (a < 0)).astype(a.dtype, copy=False)
                          if _isf(a.dtype) else xp_of(a).sign(a))


def logit(input, eps=None):  # noqa: A002
    _need("logit", input)
    return Logit.apply(_fl(input), eps=None if eps is None else float(eps))


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):  # noqa: A002
    _need("nan_to_num", input)
    if not _isf(input.dtype):
        return Tensor(input._data.copy())
    fi = np.finfo(input.dtype)
    return NanToNum.apply(input, nan=nan, posinf=float(fi.max) if posinf is None else posinf,
                          neginf=float(fi.min) if neginf is None else neginf)


@recorded
def isinf(input):  # noqa: A002
    _need("isinf", input)
    return Tensor(input.xp.isinf(input._data))


@recorded
def isposinf(input):  # noqa: A002
    _need("isposinf", input)
    return Tensor(input.xp.isposinf(input._data) if _isf(input.dtype) else input.xp.zeros(input.shape, bool))


@recorded
def isneginf(input):  # noqa: A002
    _need("isneginf", input)
    return Tensor(input.xp.isneginf(input._data) if _isf(input.dtype) else input.xp.zeros(input.shape, bool))


def _pair(fname, a, b, tensor_other=True):
    """Promote a pair as PyTorch does; ``b`` must be a Tensor when ``tensor_other``."""
    _need(fname, a)
    if tensor_other:
        _need(fname, b, 2, "other")
    b = b if isinstance(b, Tensor) else _tensor._wrap(b, a)
    _tensor._check_same_device(a, b, fname)
    _tensor._check_broadcast(a.shape, b.shape)
    dt = _tensor._result_type(a, b)
    return a.type(dt), b.type(dt)


def _float_pair(fname, a, b, cls, tensor_other=True):
    a, b = _pair(fname, a, b, tensor_other)
    return cls.apply(_fl(a), _fl(b))


def atan2(input, other):  # noqa: A002
    return _float_pair("atan2", input, other, Atan2)


def hypot(input, other):  # noqa: A002
    a, b = _pair("hypot", input, other)
    if not _isf(a.dtype):
        raise NotImplementedError(f"\"hypot_cpu\" not implemented for '{_tensor._tname(a.dtype)}'")
    return Hypot.apply(a, b)


def logaddexp(input, other):  # noqa: A002
    a, b = _pair("logaddexp", input, other)
    if not _isf(a.dtype):
        raise NotImplementedError(f"\"logaddexp_cpu\" not implemented for '{_tensor._tname(a.dtype)}'")
    return LogAddExp.apply(a, b)


def logaddexp2(input, other):  # noqa: A002
    a, b = _pair("logaddexp2", input, other)
    if not _isf(a.dtype):
        raise NotImplementedError(f"\"logaddexp2_cpu\" not implemented for '{_tensor._tname(a.dtype)}'")
    return LogAddExp2.apply(a, b)


def xlogy(input, other):  # noqa: A002
    if not isinstance(input, Tensor):
        _need("xlogy", other, 2, "other")
        input = _tensor._wrap(input, other)  # noqa: A001
    return _float_pair("xlogy", input, other, Xlogy, tensor_other=False)


def copysign(input, other):  # noqa: A002
    return _float_pair("copysign", input, other, Copysign, tensor_other=False)


def heaviside(input, values):  # noqa: A002
    _need("heaviside", input)
    _need("heaviside", values, 2, "values")
    if input.dtype != values.dtype:
        raise RuntimeError("heaviside is not yet implemented for tensors with different dtypes")
    _tensor._check_broadcast(input.shape, values.shape)

    def fn(x, v):
        xp = xp_of(x)
        return xp.where(x == 0, v, (x > 0).astype(x.dtype)).astype(x.dtype, copy=False)
    return NoGrad.apply(input, values, fn=fn, opname="heaviside")


def float_power(input, exponent):  # noqa: A002
    if not isinstance(input, Tensor):
        _need("float_power", exponent, 2, "exponent")
        return float(input) ** exponent.type(_tensor.float64)
    if isinstance(exponent, Tensor):
        return input.type(_tensor.float64) ** exponent.type(_tensor.float64)
    return input.type(_tensor.float64) ** float(exponent)


# -- add / sub / mul with alpha ---------------------------------------------------------------------------
def _alpha_check(a, b, alpha):
    res = _tensor._result_type(a, b)
    if isinstance(alpha, (bool, np.bool_)) and res.kind != "b":
        raise RuntimeError("Boolean alpha only supported for Boolean results.")
    if res.kind in "iub" and isinstance(alpha, (float, np.floating)):
        raise RuntimeError("For integral input tensors, argument alpha must not be a floating point number.")
    return res


def add(input, other, *, alpha=1):  # noqa: A002
    """input + alpha * other (PyTorch's dtype: result_type(input, other); alpha must fit it)."""
    if not isinstance(input, Tensor):
        _need("add", other, 2, "other")
    if alpha is not True and not isinstance(alpha, (bool, np.bool_)) and alpha == 1:
        return input + other
    if _alpha_check(input, other, alpha) == _tensor.bool_:
        a, b = _pair("add", input, other, tensor_other=False) if isinstance(input, Tensor) else \
            _pair("add", other, input, tensor_other=False)[::-1]
        return Tensor(a._data | (b._data & bool(alpha)))  # NOTE: bool arithmetic is or / and, as PyTorch
    return input + other * alpha


def sub(input, other, *, alpha=1):  # noqa: A002
    """input - alpha * other."""
    if not isinstance(input, Tensor):
        _need("sub", other, 2, "other")
    _tensor._check_sub_bool(input, other, _alpha_check(input, other, alpha))  # NOTE: before other * alpha
    if alpha == 1:
        return input - other
    return input - other * alpha


def mul(input, other):  # noqa: A002
    if not isinstance(input, Tensor):
        _need("mul", other, 2, "other")
    return input * other


# -- logical and bitwise -----------------------------------------------------------------------------------
@recorded
def logical_not(input):  # noqa: A002
    _need("logical_not", input)
    return Tensor(input._data == 0)


def _logical(name, op):
    def f(input, other):  # noqa: A002
        _need(name, input)
        _need(name, other, 2, "other")
        _tensor._check_same_device(input, other, name)
        _tensor._check_broadcast(input.shape, other.shape)
        return Tensor(op(input._data != 0, other._data != 0))
    f.__name__ = name
    return recorded(f)


logical_and = _logical("logical_and", np.logical_and)
logical_or = _logical("logical_or", np.logical_or)
logical_xor = _logical("logical_xor", np.logical_xor)


def _int_pair(name, kernel, a, b, allow_bool=True):
    if not isinstance(a, Tensor):
        _need(name, b, 2, "other")
        a = _tensor._wrap(a, b)
    _need(name, a)
    b = b if isinstance(b, Tensor) else _tensor._wrap(b, a)
    _tensor._check_same_device(a, b, name)
    _tensor._check_broadcast(a.shape, b.shape)
    dt = _tensor._result_type(a, b)
    if _isf(dt) or (dt.kind == "b" and not allow_bool):
        raise NotImplementedError(f"\"{kernel}_cpu\" not implemented for '{_tensor._tname(dt)}'")
    return a._data.astype(dt, copy=False), b._data.astype(dt, copy=False)


@recorded
def bitwise_not(input):  # noqa: A002
    _need("bitwise_not", input)
    if _isf(input.dtype):
        raise NotImplementedError(f"\"bitwise_not_cpu\" not implemented for '{_tensor._tname(input.dtype)}'")
    return Tensor(~input._data)


def _bitwise(name, op):
    def f(input, other):  # noqa: A002
        a, b = _int_pair(name, name, input, other)
        return Tensor(op(a, b))
    f.__name__ = name
    return recorded(f)


bitwise_and = _bitwise("bitwise_and", np.bitwise_and)
bitwise_or = _bitwise("bitwise_or", np.bitwise_or)
bitwise_xor = _bitwise("bitwise_xor", np.bitwise_xor)


@recorded
def bitwise_left_shift(input, other):  # noqa: A002
    a, b = _int_pair("bitwise_left_shift", "lshift", input, other, allow_bool=False)
    xp = xp_of(a)
    bits = a.dtype.itemsize * 8
    ok = (b >= 0) & (b < bits)
    # NOTE: as PyTorch: a shift by a negative amount or by >= the bit width gives 0
    return Tensor(xp.where(ok, xp.left_shift(a, xp.where(ok, b, 0)), 0).astype(a.dtype, copy=False))


@recorded
def bitwise_right_shift(input, other):  # noqa: A002
    a, b = _int_pair("bitwise_right_shift", "rshift", input, other, allow_bool=False)
    xp = xp_of(a)
    bits = a.dtype.itemsize * 8
    ok = (b >= 0) & (b < bits)
    # NOTE: as PyTorch: a shift by a negative amount or by >= the bit width fills with the sign bit
    return Tensor(xp.right_shift(a, xp.where(ok, b, bits - 1)).astype(a.dtype, copy=False))


# -- shape composites ----------------------------------------------------------------------------------
def _sizes(args, fname):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    try:
        return tuple(int(s) for s in args)
    except TypeError:
        raise TypeError(f"{fname}(): argument 'repeats' must be tuple of ints") from None


def repeat(t, *sizes):
    sizes = _sizes(sizes, "repeat")
    if len(sizes) < t.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(sizes)}: {list(sizes)}")
    shape = (1,) * (len(sizes) - t.ndim) + tuple(t.shape)
    inter = tuple(v for s in shape for v in (1, s))
    big = tuple(v for r, s in zip(sizes, shape) for v in (r, s))
    out = t.reshape(inter).expand(big).reshape(tuple(r * s for r, s in zip(sizes, shape)))
    if out._data.base is not None or out._view is not None:
        out = out.contiguous() if not out._data.flags.c_contiguous else _sh.Alias.apply(out)
        out._data = _tensor._engine._copy(out._data)  # NOTE: repeat returns new memory, as PyTorch
    return out


def tile(t, dims):
    dims = _sizes((dims,) if isinstance(dims, int) else dims, "tile")
    return repeat(t, (1,) * (t.ndim - len(dims)) + dims)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):  # noqa: A002
    if repeats is None:  # NOTE: torch.repeat_interleave(repeats): each index i repeated repeats[i] times
        r = input
        if r.ndim > 1 or r.dtype.kind not in "iu":
            raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
        return repeat_interleave(_tensor.arange(r.numel(), device=r.device), r, 0)
    t = input if dim is not None else input.reshape(-1)
    d = 0 if dim is None else one_dim(dim, t.ndim)
    if t.ndim == 0:
        t = t.reshape(1)
    n = t.shape[d]
    if isinstance(repeats, Tensor):
        if repeats.ndim > 1:
            raise RuntimeError("repeats must be 0-dim or 1-dim tensor")
        if repeats.dtype.kind not in "iu":
            raise NotImplementedError(f"\"repeat_interleave_cpu\" not implemented for '{_tensor._tname(repeats.dtype)}'")
        rep = repeats._data.reshape(-1)
        if rep.size == 1 and n != 1:
            rep = t.xp.repeat(rep, n)
        if rep.size != n:
            raise RuntimeError(f"repeats must have the same size as input along dim, but got repeats.size(0) = "
                               f"{rep.size} and input.size({d}) = {n}")
    else:
        rep = t.xp.full((n,), int(repeats), dtype=np.int64)
    if rep.size and int(rep.min()) < 0:
        raise RuntimeError("Repeats must be non-negative" if not isinstance(repeats, Tensor) else
                           "repeats can not be negative")
    total = int(rep.sum())
    if output_size is not None and int(output_size) != total:
        raise RuntimeError("allocated size does not match required size")
    if not isinstance(repeats, Tensor) and output_size is None:
        # NOTE: a scalar count: unsqueeze, expand, merge (the backward is a reshape-sum, not an index scatter)
        k = int(repeats)
        shp = t.shape
        out = t.unsqueeze(d + 1).expand(shp[:d + 1] + (k,) + shp[d + 1:])
        out = out.reshape(shp[:d] + (n * k,) + shp[d + 1:])
        return out.clone() if out._view is not None or out is t else out  # NOTE: never a view (k == 1), as PyTorch
    idx = t.xp.repeat(t.xp.arange(n), rep)
    return t[(slice(None),) * d + (Tensor(idx),)]


def roll(t, shifts, dims=None):
    sh = (shifts,) if isinstance(shifts, numbers.Integral) else tuple(shifts)
    if dims is None:
        if len(sh) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(sh)}, dims:0")
        return roll(t.reshape(-1), sh[0], 0).reshape(t.shape)
    ds = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    if len(sh) != len(ds):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(sh)}, dims:{len(ds)}")
    out = t
    for s, d in zip(sh, ds):
        d = one_dim(d, t.ndim)
        n = t.shape[d] if t.ndim else 1
        if n == 0 or int(s) % n == 0:
            continue
        k = int(s) % n
        pre = (slice(None),) * d
        out = _tensor.cat([out[pre + (slice(n - k, n),)], out[pre + (slice(0, n - k),)]], d)
    return out if out is not t else t.clone()


def rot90(t, k=1, dims=(0, 1)):
    dims = list(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if t.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {t.ndim}")
    a, b = one_dim(dims[0], t.ndim), one_dim(dims[1], t.ndim)
    if a == b:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {a} and dim1 = {b}")
    k = int(k) % 4
    if k == 1:
        return t.flip(b).transpose(a, b)
    if k == 2:
        return t.flip(a, b)
    if k == 3:
        return t.flip(a).transpose(a, b)
    return t.clone()


def unfold(t, dimension, size, step):
    """Tensor.unfold: a view (as PyTorch's), sharing t's memory and version counter; see shape.Unfold."""
    nd = max(t.ndim, 1)
    if not -nd <= dimension < nd:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dimension})")
    d = int(dimension) % nd
    n = t.shape[d] if t.ndim else 1
    if size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is {size}")
    if size < 0:
        raise RuntimeError(f"size is {size} but must be >= 0")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    arg = (d, int(size), int(step))
    return _tensor._mkview(_sh.Unfold.apply(t, arg=arg), t, "unfold", arg)


def tensor_split(t, indices_or_sections, dim=0):
    _need("tensor_split", t)
    d = one_dim(dim, t.ndim)
    if t.ndim == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims")
    n = t.shape[d]
    ios = indices_or_sections
    if isinstance(ios, Tensor):
        if ios.ndim > 1 or ios.dtype.kind not in "iu":
            raise RuntimeError("tensor_split expected tensor_indices_or_sections to be a zero-dimensional or "
                               "one-dimensional tensor, but got a tensor with " + f"{ios.ndim} dims")
        ios = int(ios.item()) if ios.ndim == 0 else [int(v) for v in ios.tolist()]
    pre = (slice(None),) * d
    if isinstance(ios, numbers.Integral):
        s = int(ios)
        if s <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {s}")
        q, r = divmod(n, s)
        bounds, start = [], 0
        for i in range(s):
            end = start + q + (1 if i < r else 0)
            bounds.append((start, end))
            start = end
    else:
        cuts = [int(v) for v in ios]
        edges = [0] + cuts + [n]
        bounds = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            lo = min(lo + n if lo < 0 else lo, n)
            hi = min(hi + n if hi < 0 else hi, n)
            bounds.append((lo, max(lo, hi)))
    return tuple(t[pre + (slice(lo, hi),)] for lo, hi in bounds)


def _dir_split(name, t, ios, d, need):
    _need(name, t)
    if t.ndim < need:
        raise RuntimeError(f"torch.{name} requires a tensor with at least {need} dimension, but got a tensor with "
                           f"{t.ndim} dimensions!")
    if isinstance(ios, numbers.Integral):
        n = t.shape[d]
        if ios == 0 or n % ios:
            raise RuntimeError(f"torch.{name} attempted to split along dimension {d}, but the size of the dimension "
                               f"{n} is not divisible by the split_size {ios}!")
    return tensor_split(t, ios, d)


def hsplit(t, indices_or_sections):
    return _dir_split("hsplit", t, indices_or_sections, 1 if t.ndim > 1 else 0, 1)


def vsplit(t, indices_or_sections):
    return _dir_split("vsplit", t, indices_or_sections, 0, 2)


def dsplit(t, indices_or_sections):
    return _dir_split("dsplit", t, indices_or_sections, 2, 3)


def _atleast(n, tensors):
    single = len(tensors) == 1 and isinstance(tensors[0], Tensor)
    ts = tensors if not (len(tensors) == 1 and isinstance(tensors[0], (list, tuple))) else tuple(tensors[0])
    out = []
    for t in ts:
        _need(f"atleast_{n}d", t)
        if t.ndim >= n:
            out.append(t)
        elif n == 1 or t.ndim == 0 and n == 2:
            out.append(t.reshape((1,) * n))
        elif n == 2:
            out.append(t.unsqueeze(0))
        else:
            out.append(t.reshape((1, 1, 1)) if t.ndim == 0 else t.reshape(1, t.shape[0], 1) if t.ndim == 1
                       else t.unsqueeze(-1))
    return out[0] if single else tuple(out)


def atleast_1d(*tensors):
    return _atleast(1, tensors)


def atleast_2d(*tensors):
    return _atleast(2, tensors)


def atleast_3d(*tensors):
    return _atleast(3, tensors)


def _seq(name, tensors):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{name}(): argument 'tensors' (position 1) must be tuple of Tensors, not "
                        f"{type(tensors).__name__}")
    if not tensors:
        raise RuntimeError(f"{name} expects a non-empty TensorList")
    return list(tensors)


def hstack(tensors):
    ts = list(atleast_1d(_seq("hstack", tensors)))
    return _tensor.cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors):
    return _tensor.cat(list(atleast_2d(_seq("vstack", tensors))), 0)


row_stack = vstack


def dstack(tensors):
    return _tensor.cat(list(atleast_3d(_seq("dstack", tensors))), 2)


def column_stack(tensors):
    ts = _seq("column_stack", tensors)
    return _tensor.cat([t.reshape(t.numel(), 1) if t.ndim <= 1 else t for t in ts], 1)


def meshgrid(*tensors, indexing=None):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the indexing argument.",
                      UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but received: {indexing}")
    if not tensors:
        raise RuntimeError("meshgrid expects a non-empty TensorList")
    for t in tensors:
        _need("meshgrid", t)
        if t.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got a tensor of "
                               f"shape {tuple(t.shape)}")
        if t.dtype != tensors[0].dtype:
            raise RuntimeError("meshgrid expects all tensors to have the same dtype")
    k = len(tensors)
    shape = tuple(t.numel() for t in tensors)
    out = [t.reshape(tuple(-1 if i == j else 1 for j in range(k))).expand(shape) for i, t in enumerate(tensors)]
    if indexing == "xy" and k >= 2:
        out = [o.transpose(0, 1) for o in out]  # NOTE: 'xy' is 'ij' with the first two dims swapped
    return tuple(out)


def broadcast_shapes(*shapes):
    norm = []
    for s in shapes:
        norm.append((int(s),) if isinstance(s, numbers.Integral) else tuple(int(v) for v in s))
    out = []
    for i in range(1, max((len(s) for s in norm), default=0) + 1):
        size = 1
        for j, s in enumerate(norm):
            if i > len(s):
                continue
            v = s[-i]
            if v < 0:
                raise RuntimeError(f"Trying to create tensor with negative dimension {v}: {list(s)}")
            if v != 1:
                if size != 1 and v != size:
                    raise RuntimeError(f"Attempting to broadcast a dimension of length {v} at {-i}! Mismatching "
                                       f"argument at index {j} had {tuple(s)}; but expected shape should be "
                                       f"broadcastable to {list(_partial(norm[:j], i))}")
                size = v
        out.append(size)
    return tuple(reversed(out))


def _partial(shapes, _i):
    return broadcast_shapes(*shapes) if shapes else ()


def broadcast_tensors(*tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    for t in tensors:
        _need("broadcast_tensors", t)
    shapes = [t.shape for t in tensors]
    try:
        target = np.broadcast_shapes(*shapes)
    except ValueError:
        for i in range(1, len(shapes)):
            _tensor._check_broadcast(np.broadcast_shapes(*shapes[:i]), shapes[i])
        raise
    return tuple(t.expand(target) for t in tensors)


# -- new_* and friends ----------------------------------------------------------------------------------
def _new(t, fill, size, dtype, device, requires_grad):
    shape = _tensor._shape_arg(size)
    dt = _tensor.as_dtype(dtype) or t.dtype
    dev = t.device if device is None else device
    return _tensor._make(lambda xp, s, d: fill(xp, s, d), shape, dt, dev, requires_grad)


def new_zeros(t, *size, dtype=None, device=None, requires_grad=False):
    return _new(t, lambda xp, s, d: xp.zeros(s, d), size, dtype, device, requires_grad)


def new_ones(t, *size, dtype=None, device=None, requires_grad=False):
    return _new(t, lambda xp, s, d: xp.ones(s, d), size, dtype, device, requires_grad)


def new_empty(t, *size, dtype=None, device=None, requires_grad=False):
    return _new(t, lambda xp, s, d: xp.empty(s, d), size, dtype, device, requires_grad)


def new_full(t, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    return _new(t, lambda xp, s, d: xp.full(s, fill_value, d), (size,), dtype, device, requires_grad)


def new_tensor(t, data, *, dtype=None, device=None, requires_grad=False):
    if isinstance(data, Tensor):
        warnings.warn("To copy construct from a tensor, it is recommended to use sourceTensor.clone().detach() or "
                      "sourceTensor.clone().detach().requires_grad_(True), rather than tensor.new_tensor(sourceTensor).",
                      UserWarning, stacklevel=3)
    dt = _tensor.as_dtype(dtype)
    if dt is None:
        dt = data.dtype if isinstance(data, (Tensor, np.ndarray)) else t.dtype
        # NOTE: as PyTorch, Python data takes self's dtype (not the inferred one)
    return _tensor.tensor(data.detach() if isinstance(data, Tensor) else data, dtype=dt,
                          device=t.device if device is None else device, requires_grad=requires_grad)


def data_ptr(t):
    d = t._data
    if type(d) is np.ndarray:
        return int(d.__array_interface__["data"][0]) if d.size else 0
    return int(d.data.ptr) if d.size else 0


# -- in-place shape changes (metadata only) ----------------------------------------------------------------
def reshape_inplace(t, fn, name):
    """squeeze_/unsqueeze_/t_/transpose_/swapdims_: t takes the shape of ``fn(t)`` over the same memory, as PyTorch:
    the version is bumped (a no-op too); under autograd t's grad_fn becomes fn's node (a view of t's old value), with
    PyTorch's refusals (a leaf that requires grad, a view of one); a view stays a view of its base, its recipe
    extended by fn's step.

    NOTE: a base that has (or had) views is refused: gpugrad regenerates a view's graph and routes in-place writes
    through it by replaying its recipe from the base, which assumes the base's old shape."""
    T = _tensor
    v = t._view
    if v is None and t._ver[2]:
        raise RuntimeError(f"{name}: gpugrad cannot change the shape of a tensor in place once views of it were made "
                           f"(PyTorch can); use the out-of-place {name[:-1]}() instead")
    grad = T._state.grad_enabled and (t._rg or v is not None and v[0]._rg)
    if grad:
        T._inplace_checks(t)
        if v is not None and t._ver[1] != v[2]:
            T._refresh_view(t)  # NOTE: a stale view first takes its base's current graph
            v = t._view
    old = T._snapshot(t, False)  # NOTE: fn's node reads t's old identity (t itself would make a cycle)
    prev, T._state.grad_enabled = T._state.grad_enabled, grad
    try:
        r = fn(old)
    finally:
        T._state.grad_enabled = prev
        if v is None:
            t._ver[2] = 0  # NOTE: the view made on the way is t itself now (nothing else shares the memory)
    if r is not old:
        t._data = r._data
        if v is not None:
            t._view = (v[0], v[1] + r._view[1], v[2])
        if r._node is not None:
            T._rebase(t, r._node, old)
    T._bump(t)
    return t


def resize_inplace(t, shape):
    """Tensor.resize_ as PyTorch: the same memory (its first elements, C order) when the new size fits, else a larger
    allocation that starts with the old values (the rest uninitialised); the version bumps when the shape changes. A
    resized view keeps sharing its base's memory but is no longer a view of it (PyTorch drops its ``_base`` too).

    NOTE: where gpugrad's arrays cannot share memory as PyTorch's storage does, a clear error instead: a base that
    views were made of (their recipes assume its old shape), a non-contiguous tensor (PyTorch reinterprets its storage
    in memory order), growing a view or an array that is part of a larger buffer (PyTorch grows the storage its
    base shares, or reuses storage left by an earlier shrink), and growing a non-empty tensor (other tensors sharing
    its memory would keep the old memory)."""
    T = _tensor
    if t._rg:
        raise RuntimeError("cannot resize variables that require grad")
    if any(s < 0 for s in shape):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(shape)}: {list(shape)}")
    if shape == t.shape:
        return t
    a = t._data
    if t._view is None and t._ver[2]:
        raise RuntimeError("resize_: gpugrad cannot resize a tensor once views of its memory were made (or that was "
                           "a view and was resized; PyTorch can); clone() it first")
    if not a.flags.c_contiguous:
        raise RuntimeError("resize_: gpugrad cannot resize a non-contiguous tensor (PyTorch reinterprets its storage "
                           "in memory order); call .contiguous() first")
    n, flat = int(np.prod(shape)), a.reshape(-1)
    if n <= a.size:
        new = flat[:n].reshape(shape)
    else:
        base = a.base
        if t._view is not None or base is not None and base.nbytes > a.nbytes:
            raise RuntimeError("resize_: gpugrad cannot grow a view, or a tensor whose memory is part of a larger "
                               "buffer (an earlier resize_ to fewer elements, an array from outside); clone() it "
                               "first")
        if a.size:  # NOTE: growing moves the memory; what shares it (detach(), .data, numpy()) would not follow
            raise RuntimeError("resize_: gpugrad grows only an empty tensor (the larger memory is new, and tensors "
                               "or arrays sharing the old one, from detach(), .data or numpy(), would not follow as "
                               "PyTorch's shared storage does); build the larger tensor with new_empty or cat")
        new = xp_of(a).empty(n, dtype=a.dtype)
        new[:a.size] = flat
        new = new.reshape(shape)
    t._data, t._view = new, None
    T._bump(t)
    return t


_tensor._math = _sys.modules[__name__]  # the Tensor methods reach this module through it (see tensor.py)
