"""Helpers shared by the fused-kernel families: dtype rules, argument checks, NumPy math.

Dtype rules (the same on both paths):
- storage dtypes float16/bfloat16/float32/float64 (bfloat16 with ml_dtypes only, ``gpugrad._dtypes``);
  arithmetic in the compute dtype (float32 for the low-precision ``LOWP`` float16/bfloat16), rounded
  once (to nearest even) on store;
- per-row log-sum-exp values kept for a backward are in the wide dtype (float32 for float16/bfloat16,
  float64 for float32/float64), see ``Wide<T>`` in ``kernels/common.cuh``.
"""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS, LOWP

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)


def check_float(what: str, a) -> np.dtype:
    dt = np.dtype(a.dtype)
    if dt not in FLOATS:
        names = ("bfloat16, " if len(FLOATS) == 4 else "") + "float16, float32 or float64"
        raise TypeError(f"{what} must be {names}, got {dt}")
    return dt


def compute_dtype(dt) -> np.dtype:
    return F32 if np.dtype(dt) in LOWP else np.dtype(dt)


def wide_dtype(dt) -> np.dtype:
    return F32 if np.dtype(dt) in LOWP else F64


def as_compute(a):
    """An array in its compute dtype: float16/bfloat16 are widened (a new array), others as they are."""
    return a.astype(F32) if a.dtype in LOWP else a


def check_reduction(reduction: str) -> str:
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    return reduction


def same_device(xp, **arrays):
    from ..backend import xp_of  # noqa: PLC0415
    for k, v in arrays.items():
        if v is not None and xp_of(v) is not xp:
            raise ValueError(f"'{k}' is on a different device than the input")


# -- NumPy math mirroring kernels/common.cuh ------------------------------------------------------

def np_sigmoid(x, out=None):
    """1 / (1 + exp(-x)). NOTE: exp(-x) may overflow to inf for very negative x, which yields
    the correct limit 0 (the overflow warning is silenced by the callers' errstate)."""
    out = np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


# erfc(z) for z >= 0 is t * exp(-z^2 + P(2t - 1)) with t = 2 / (2 + z) and P a Chebyshev series.
# The coefficients are the Chebyshev interpolant of log(erfc(z) / t) + z^2 on t in [0, 1]
# (80 nodes, evaluated with mpmath at 40 digits; P(-1) is the z -> inf limit -log(2 sqrt(pi))).
# Truncated after 30 terms the series error is < 1e-18; measured relative error of the float64
# evaluation below is < 2e-13 for |z| < 26 (dominated by rounding of z^2), float32 (15 terms) 2e-5
# in the far tail and ~1e-7 for |z| < 4.
_ERFC_CHEB = np.array([
    -0.6513268598908547, 0.6419697923564902, 0.019476473204185836, -0.009561514786808632,
    -0.0009465953444820369, 0.00036683949785276145, 4.252332480690777e-05, -2.0278578112534242e-05,
    -1.6242900046470256e-06, 1.3036558355805232e-06, 1.5626441722066142e-08, -8.523809591492654e-08,
    6.5290544390988515e-09, 5.059343495551469e-09, -9.91364156493033e-10, -2.273651222931836e-10,
    9.646791102015527e-11, 2.3940380830391146e-12, -6.886027526497553e-12, 8.944879273090725e-13,
    3.130921399342958e-13, -1.1270822361367252e-13, 3.810905255189232e-16, 7.106097613609237e-15,
    -1.5230282014571043e-15, -9.457494571291233e-17, 1.210237189224279e-16, -2.816663087747177e-17,
    5.003005559445909e-20, 2.3281042579529253e-18])


# erfcx(z) = exp(z^2) erfc(z) for z >= 0 in float32: Q(t) = q1 t + ... + q9 t^9 with t = c / (c + z), c = 2.5 (Horner:
# two in-place passes per coefficient, one fewer degree than a fit of log(erfcx(z) / t), and the exponential stays
# outside, so that gelu's backward shares it with phi). Q / t is the minimax fit (Lawson-weighted least squares,
# relative error 1.3e-7; c = 2.5 minimises it at this degree) of erfcx(z) / t on 6000 Chebyshev nodes of t in
# [0, 1] (float64, SciPy's erfcx as the reference), in powers of t, rounded to float32, q1 nudged so that
# Q(1) = erfcx(0) is exactly 1.
# Measured relative error of erfc_nonneg32 against float64 erfc: < 1.4e-6 for z < 4 (the rounding of the exponent
# -z^2 / ln 2 dominates), 7e-6 in the far tail (z > 9: erfc is a float32 subnormal there).
ERFCX32_C = 2.5
_ERFCX32_Q = np.array([0.2256757616996765, 0.22566960752010345, 0.20784251391887665, 0.16854380071163177,
                       0.14142295718193054, -0.005586502607911825, 0.1690569967031479, -0.18288172781467438,
                       0.050256624817848206], dtype=np.float32)
LOG2E = 1.4426950408889634


def erfcx32(a, s=1.0, f=1.0):
    """f erfcx(s a) for a float32 NumPy array of a >= 0 (NaN gives NaN, +inf gives 0); a is not written. ``s`` is
    folded into c, ``f`` into the coefficients (exactly for a power of two)."""
    c = np.float32(ERFCX32_C / s)
    t = np.add(a, c)
    np.divide(c, t, out=t)
    q = _ERFCX32_Q * np.float32(f)
    p = np.multiply(t, q[-1])
    for k in q[-2::-1]:
        p += k
        p *= t
    return p


def erfc_nonneg32(z):
    """erfc of a float32 NumPy array of z >= 0 (NaN gives NaN, +inf gives 0); z is not written."""
    with np.errstate(over="ignore", invalid="ignore"):
        p = erfcx32(z)
        e = np.multiply(z, z)
        e *= np.float32(-LOG2E)  # NOTE: exp2 (< 1 ulp here, ~0.21 ns/element) instead of exp (~0.46)
        p *= np.exp2(e, out=e)
        return p


_scipy_erfc = None


def erfc(z):
    """erfc of a float32/float64 NumPy array: ``scipy.special.erfc`` when SciPy is installed (about 1 ulp),
    else float32 by :func:`erfc_nonneg32` (with 2 - erfc(-z) below 0) and float64 by :func:`np_erfc`."""
    global _scipy_erfc
    if _scipy_erfc is None:
        try:
            from scipy.special import erfc as impl  # noqa: PLC0415
        except ImportError:
            impl = False
        _scipy_erfc = impl
    if _scipy_erfc:
        return _scipy_erfc(z)
    if z.dtype == F32:
        r = erfc_nonneg32(np.abs(z))
        np.subtract(np.float32(2), r, out=r, where=np.signbit(z))  # NOTE: erfc(-a) = 2 - erfc(a); NaN stays
        return r
    return np_erfc(z)


def np_erfc(z):
    """Complementary error function of a float32/float64 NumPy array, in pure NumPy.

    NOTE: a Chebyshev series (Clenshaw recurrence, 3 in-place passes per term): 15 terms in
    float32, 30 in float64; exact limits at +-inf, NaN in gives NaN out.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return _np_erfc(z)


def _np_erfc(z):
    dt = z.dtype
    coef = _ERFC_CHEB[:15 if dt == F32 else 30].astype(dt)
    a = np.abs(z)
    t = np.add(a, 2)
    np.divide(2, t, out=t)                        # t = 2 / (2 + |z|)
    s2 = np.multiply(t, 4)
    s2 -= 2                                       # 2s, s = 2t - 1
    b1 = np.zeros_like(a)
    b2 = np.zeros_like(a)
    tmp = np.empty_like(a)
    for c in coef[:0:-1]:                         # b_k = 2s b_{k+1} - b_{k+2} + c_k
        np.multiply(s2, b1, out=tmp)
        np.subtract(tmp, b2, out=b2)
        b2 += c
        b1, b2 = b2, b1
    np.multiply(s2, b1, out=tmp)                  # P = s b_1 - b_2 + c_0
    tmp *= 0.5
    tmp -= b2
    tmp += coef[0]
    np.multiply(a, a, out=a)
    np.subtract(tmp, a, out=tmp)                  # -z^2 + P
    np.exp(tmp, out=tmp)
    tmp *= t
    neg = z < 0
    np.subtract(2, tmp, out=tmp, where=neg)       # erfc(-a) = 2 - erfc(a)
    return tmp


# -- the rows of the family tables ----------------------------------------------------------------

class FusedOp:
    """One fused op: a row of its family's table (``ACTIVATIONS``, ``softmax.ROWS``, ``loss.ROWS``,
    ``optim.ROWS``), the one place that names it.

    name       the op's name: its node's name (``<Name>Backward``) and its kernels' stem
    source     its CUDA file in kernels/, and ``kernels``: the kernel names registered there
               (default gpugrad_<name>_fwd / gpugrad_<name>_bwd)
    launch     how its kernels are launched: "map" (elementwise), "rows" (row reductions) or
               "update" (optimizer steps), the launchers of :mod:`gpugrad.fused.cuda`
    saves      what its backward reads besides the upstream gradient
    fwd, bwd   the array-level functions (CuPy arrays launch the kernels, NumPy arrays run the fallback)
    composite  the same function in core Tensor ops (what create_graph differentiates); None for updates
    """
    __slots__ = ("name", "source", "launch", "saves", "fwd", "bwd", "composite", "kernels")

    def __init__(self, name, source, launch, saves, fwd, bwd, composite, kernels=None):
        self.name, self.source, self.launch, self.saves = name, source, launch, saves
        self.fwd, self.bwd, self.composite = fwd, bwd, composite
        self.kernels = tuple(kernels) if kernels is not None else (f"gpugrad_{name}_fwd", f"gpugrad_{name}_bwd")

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"


def table(rows):
    """{name: row} of a family's rows, with their kernels registered for compilation."""
    from .cuda import register_kernels  # noqa: PLC0415  (cuda imports this module)
    for r in rows:
        register_kernels(r.source, r.kernels)
    return {r.name: r for r in rows}
