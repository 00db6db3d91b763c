"""Fused activations on arrays: one signature for NumPy (fallback) and CuPy (``kernels/activation.cu``).

API (``name`` is one of :data:`ACTIVATIONS`; params are PyTorch's, with PyTorch's defaults)::

    activation_saves(name, **params) -> "input" | "output"     what the backward needs
    activation_fwd(name, x, **params) -> y
    activation_bwd(name, g, x=None, y=None, **params) -> gx    pass the saved one (x or y)
    bias_act_fwd(name, x, b, **params) -> y                    y = act(x + b), b: (x.shape[-1],)
    bias_act_bwd(name, g, b, x=None, y=None, **params) -> (gx, gb)

    relu  leaky_relu(negative_slope=0.01)  elu(alpha=1.0)  selu  gelu(approximate='none'|'tanh')
    silu  mish  sigmoid  tanh  softplus(beta=1.0, threshold=20.0)  log_sigmoid

Saved tensor: the output for relu, leaky_relu (slope >= 0), elu (alpha >= 0), selu, sigmoid,
tanh, log_sigmoid; the input otherwise (for bias_act the *input x*, the pre-activation x + b
is rebuilt). A wrapper stores exactly what :func:`activation_saves` names and hands it back.

Semantics follow PyTorch (kinks: relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha; NaN in
gives NaN out); at +-inf the results are the limits (gelu(-inf) = 0, silu'(inf) = 1, ...).
float16 computes in float32 and is rounded once. Outputs have the input's dtype and shape; gb
is summed in the compute dtype from the unrounded per-element gradients.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..backend import xp_of
from ._common import F32, F64, as_compute, check_float, compute_dtype, erfc, np_sigmoid
from .loader import bias_launch, elementwise_grid, get_kernel, register_kernels

__all__ = ["ACTIVATIONS", "activation_saves", "activation_fwd", "activation_bwd", "bias_act_fwd",
           "bias_act_bwd"]

ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "silu", "mish", "sigmoid", "tanh",
               "softplus", "log_sigmoid")
_KERNEL_OPS = ("relu", "leaky_relu", "elu", "selu", "gelu", "gelu_tanh", "silu", "mish", "sigmoid",
               "tanh", "softplus", "log_sigmoid")
_SOURCE = "activation.cu"
register_kernels(_SOURCE, [f"gpugrad_{p}{op}_{d}" for op in _KERNEL_OPS for p in ("", "bias_")
                           for d in ("fwd", "bwd")] + ["gpugrad_bias_grad_reduce"])

_DEFAULTS = {"leaky_relu": {"negative_slope": 0.01}, "elu": {"alpha": 1.0},
             "gelu": {"approximate": "none"}, "softplus": {"beta": 1.0, "threshold": 20.0}}
_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717
_SQRT1_2 = 0.70710678118654752440
_INV_SQRT_2PI = 0.39894228040143267794
_K0 = math.sqrt(2.0 / math.pi)
_K1 = 0.044715


# -- NumPy fallbacks: fwd(x, p0, p1, out) -> y, bwd(g, s, p0, p1, from_y, out) -> gx ----------
# x, g, s are in the compute dtype (float32/float64) and are never written; `out` is None (a new
# array is made) or an array of their shape and dtype that aliases none of them. They mirror the
# functors in kernels/activation.cu formula by formula, with NumPy's cheap passes only:
# NOTE: no np.where / copyto(where=) / masked ufuncs on the hot paths: with a data-dependent mask
# they branch per element (~7-10 ns/element here, 5-10x a plain pass). Selections are written as
# clip (the fast SIMD min/max with a scalar; np.maximum(x, 0) is ~3x slower), bit masks on an
# integer view, or a multiply by a 0/1 mask where that is exact (checked, see _fix_nle).
# NOTE: mul0(a, b) (0 where b == 0, even for infinite a) becomes "clip a to the finite range, then
# multiply": b == 0 there only when a is huge or infinite, and +-max * 0 is 0.

try:  # NOTE: the clip ufunc itself: np.clip's Python wrapper costs ~3 us a call on small arrays
    from numpy._core.umath import clip as _clip
except ImportError:  # NumPy < 2
    try:
        from numpy.core.umath import clip as _clip
    except ImportError:
        _clip = np.clip

_IVIEW = {F32: np.int32, F64: np.int64}
_FMAX = {F32: float(np.finfo(F32).max), F64: float(np.finfo(F64).max)}


def _new(a, out):
    return np.empty_like(a) if out is None else out


def _finite(a, out=None, hi=True):
    """a clipped to [-max, max] (NaN kept; hi=False leaves +inf alone)."""
    m = _FMAX[a.dtype]
    return _clip(a, -m, m if hi else np.inf, out=out)


def _neg_part(s, out):
    """(u, nle): u = s where s <= 0 else +0 (NaN gives 0), and the bool mask not(s <= 0)."""
    le = np.less_equal(s, 0)
    keep = np.negative(le.view(np.int8))          # -1 (all bits) where s <= 0, else 0
    iv = _IVIEW[s.dtype]
    np.bitwise_and(s.view(iv), keep, out=out.view(iv))
    return out, np.logical_not(le, out=le)


def _fix_nle(f, nle, have, want):
    """Where nle (not s <= 0), f holds `have`: make it `want`, exactly."""
    ct = f.dtype.type
    if ct(have) == ct(want):
        return f
    d = ct(want) - ct(have)
    if ct(have) + d == ct(want):  # NOTE: then have + (want - have) rounds to want itself
        f += np.multiply(nle, d, dtype=f.dtype)    # + 0 elsewhere: exact
    else:
        np.copyto(f, want, where=nle)
    return f


def _select(mask, a, out):
    """out = a where mask else out, exactly (bitwise: out ^= (out ^ a) & -mask)."""
    iv = _IVIEW[out.dtype]
    o = out.view(iv)
    t = np.bitwise_xor(o, a.view(iv))
    np.bitwise_and(t, np.negative(mask.view(np.int8)), out=t)
    np.bitwise_xor(o, t, out=o)
    return out


def _relu_f(x, p0, p1, out):
    return _clip(x, 0, np.inf, out=out)  # NaN passes through


def _relu_b(g, s, p0, p1, from_y, out):
    keep = np.less_equal(s, 0).view(np.int8)
    np.subtract(keep, 1, out=keep)                # 0 where s <= 0, else -1 (all bits set)
    out = _new(g, out)
    iv = _IVIEW[g.dtype]
    np.bitwise_and(g.view(iv), keep, out=out.view(iv))  # NOTE: exactly +0 or g, as the kernel
    return out


def _leaky_f(x, slope, p1, out):
    # NOTE: max(x, slope*x) for slope <= 1 (min for slope > 1): two passes, NaN propagates
    t = np.multiply(x, slope, out=out)
    return (np.maximum if slope <= 1 else np.minimum)(x, t, out=t)


def _leaky_b(g, s, slope, p1, from_y, out):
    ct = g.dtype.type
    pos = np.greater(s, 0)                        # NaN s takes the slope branch, as the kernel
    d = ct(1) - ct(slope)
    if ct(slope) + d == ct(1):                    # NOTE: then slope + 1*(1 - slope) is exactly 1
        f = np.multiply(pos, d, out=_new(g, out))
        f += ct(slope)
    else:
        f = np.full_like(g, slope) if out is None else (out.fill(slope) or out)
        np.copyto(f, 1, where=pos)
    f *= g
    return f


def _elu_f(x, alpha, p1, out):
    t = _clip(x, -np.inf, 0, out=out)           # NOTE: expm1 on the negative part only
    np.expm1(t, out=t)
    if alpha != 1:
        t *= alpha
    if alpha <= 1:
        # NOTE: for x <= 0, alpha*expm1(x) >= x when alpha <= 1 (e^x >= 1 + x), so the max picks
        # it; for x > 0 the first term is 0 and the max picks x. One pass, NaN propagates.
        return np.maximum(t, x, out=t)
    t += _clip(x, 0, np.inf)
    return t


def _elu_b(g, s, alpha, p1, from_y, out):
    f, nle = _neg_part(s, _new(g, out))           # s where s <= 0, else 0 (and NaN -> 0)
    if from_y:
        f += alpha                                # s + alpha (alpha where not s <= 0)
    else:
        np.exp(f, out=f)
        f *= alpha                                # alpha exp(s) (alpha where not s <= 0)
    _fix_nle(f, nle, alpha, 1)
    f *= g
    return f


def _selu_f(x, p0, p1, out):
    t = _clip(x, -np.inf, 0, out=out)
    np.expm1(t, out=t)
    t *= _SELU_SCALE * _SELU_ALPHA
    p = _clip(x, 0, np.inf)
    p *= _SELU_SCALE
    t += p                                        # exactly one of the two terms is nonzero
    return t


def _selu_b(g, s, p0, p1, from_y, out):
    f, nle = _neg_part(s, _new(g, out))
    f += _SELU_SCALE * _SELU_ALPHA
    _fix_nle(f, nle, _SELU_SCALE * _SELU_ALPHA, _SELU_SCALE)
    f *= g
    return f


def _gelu_cdf(x):
    """Phi(x) = erfc(-x/sqrt2)/2, from h = erfc(|x|/sqrt2)/2 <= 1/2: h for x <= -0, 1 - h for
    x >= +0 (the sign bit decides, so +-0 both give 1/2), written (x >= +0) - copysign(h, x).
    NOTE: SciPy's erfc branches on the sign of its argument (2 - erfc(-z)): on mixed-sign data
    that costs ~8 ns/element in mispredictions, more than the 4 cheap passes of the fix-up."""
    h = np.multiply(x, _SQRT1_2)
    np.abs(h, out=h)
    h = erfc(h)
    h *= 0.5
    np.copysign(h, x, out=h)
    pos = np.signbit(x)
    np.logical_not(pos, out=pos)
    return np.subtract(pos, h, out=h)


def _gelu_f(x, p0, p1, out):
    c = _gelu_cdf(x)
    y = _finite(x, out, hi=False)                 # mul0: cdf(-inf) = 0
    y *= c
    return y


def _gelu_b(g, x, p0, p1, from_y, out):
    pdf = np.multiply(x, x)
    pdf *= -0.5
    np.exp(pdf, out=pdf)
    pdf *= _INV_SQRT_2PI
    pdf *= _finite(x, out)                        # mul0(x, pdf)
    pdf += _gelu_cdf(x)
    return np.multiply(pdf, g, out=out)


def _gelu_tanh_nu2(x):
    """-2u = -2 k0 x (1 + k1 x^2), the exponent of sigmoid(2u) = 1 / (1 + exp(-2u))."""
    u = np.multiply(x, x)
    u *= _K1
    u += 1
    u *= x
    u *= -2 * _K0
    return u


def _gelu_tanh_f(x, p0, p1, out):
    e = _gelu_tanh_nu2(x)
    np.exp(e, out=e)
    e += 1
    return _zero_at_neginf(np.divide(x, e, out=_new(x, out)), x)  # x sigmoid(2u)


def _sig_pair(e):
    """From e = exp(-z) (overwritten): (sp, q) = (sigmoid(z), sigmoid(z) sigmoid(-z)).
    NOTE: sigmoid(-z) = e sp keeps the right tail; where e overflowed (sp = 0) inf * 0 is NaN and
    fmin makes it 1, its limit (and NaN z still gives NaN through sp)."""
    sp = np.add(e, 1)
    np.reciprocal(sp, out=sp)
    e *= sp
    np.fmin(e, 1, out=e)
    e *= sp
    return sp, e


def _gelu_tanh_b(g, x, p0, p1, from_y, out):
    e = _gelu_tanh_nu2(x)
    np.exp(e, out=e)
    sp, q = _sig_pair(e)
    du = np.multiply(x, x)
    du *= 3 * _K1
    du += 1
    du *= x
    du *= 2 * _K0                                 # 2 x du/dx
    _finite(du, du)                               # mul0(2x du, sp sn)
    du *= q
    du += sp
    return np.multiply(du, g, out=out)


def _zero_at_neginf(y, x):
    """mul0 for forms x * gate(x) with gate(-inf) = 0, computed as x / (1 + inf) = NaN at x = -inf:
    0 there. NOTE: one min-reduction (a read, ~1/3 of a clip pass) finds out whether any -inf
    (or NaN) is present; only then the masked fix-up runs."""
    if not np.minimum.reduce(x, axis=None, initial=np.inf) > -np.inf:
        np.copyto(y, 0, where=np.isneginf(x))
    return y


def _silu_f(x, p0, p1, out):
    e = np.negative(x, out=out)
    np.exp(e, out=e)
    e += 1
    return _zero_at_neginf(np.divide(x, e, out=e), x)  # x / (1 + exp(-x))


def _silu_b(g, x, p0, p1, from_y, out):
    e = np.negative(x)
    np.exp(e, out=e)
    sp, q = _sig_pair(e)
    q *= _finite(x, out)                          # mul0(x, sp sn)
    q += sp
    return np.multiply(q, g, out=out)


def _mish_t(x, scratch):
    """tanh(softplus(x)), softplus = max(x, 0) + log1p(exp(-|x|)) (the sign-split form)."""
    t = np.abs(x)
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    t += _clip(x, 0, np.inf, out=scratch)
    return np.tanh(t, out=t)


def _mish_f(x, p0, p1, out):
    out = _new(x, out)
    t = _mish_t(x, out)
    y = _finite(x, out, hi=False)                 # mul0: tanh(softplus(-inf)) = 0
    y *= t
    return y


def _mish_b(g, x, p0, p1, from_y, out):
    out = _new(g, out)
    t = _mish_t(x, out)
    q = np.multiply(t, t)
    np.subtract(1, q, out=q)
    e = np.negative(x, out=out)
    np.exp(e, out=e)
    e += 1
    q /= e                                        # (1 - t^2) sigmoid(x)
    q *= _finite(x, out)                          # mul0
    q += t
    return np.multiply(q, g, out=out)


def _sigmoid_f(x, p0, p1, out):
    return np_sigmoid(x, out=out)


def _sigmoid_b(g, y, p0, p1, from_y, out):
    d = np.subtract(1, y, out=out)
    d *= y
    d *= g
    return d


def _tanh_f(x, p0, p1, out):
    return np.tanh(x, out=out)


def _tanh_b(g, y, p0, p1, from_y, out):
    d = np.multiply(y, y, out=out)
    np.subtract(1, d, out=d)
    d *= g
    return d


@functools.lru_cache(maxsize=64)
def _softplus_linear_is_noop(ct, beta, threshold, grad):
    """True when, for beta == 1, every z > threshold already rounds to the linear branch (y = x,
    slope 1) in the compute dtype, so the threshold select can be skipped (float32 with the
    default threshold 20: log1p(exp(-20)) = 2e-9 is below half an ulp of 20)."""
    if beta != 1 or not threshold > 0:
        return False
    z = np.nextafter(ct(threshold), ct(np.inf))   # the smallest z > threshold
    if grad:
        return bool(ct(1) + np.exp(-z) == ct(1))
    return bool(z + np.log1p(np.exp(-z)) == z)    # NOTE: the correction decreases, ulp(z) grows


def _softplus_f(x, beta, threshold, out):
    z = x if beta == 1 else np.multiply(x, beta)
    t = np.abs(z)
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    y = _clip(z, 0, np.inf, out=out)
    y += t
    if beta != 1:
        y /= beta
    if not _softplus_linear_is_noop(x.dtype.type, beta, threshold, False):
        _select(np.greater(z, threshold), x, y)   # NOTE: linear above the threshold, as PyTorch
    return y


def _softplus_b(g, x, beta, threshold, from_y, out):
    e = np.multiply(x, -beta)
    np.exp(e, out=e)
    e += 1
    d = np.divide(g, e, out=out)                  # g sigmoid(beta x)
    if not _softplus_linear_is_noop(x.dtype.type, beta, threshold, True):
        _select(np.greater(np.multiply(x, beta, out=e), threshold), g, d)
    return d


def _log_sigmoid_f(x, p0, p1, out):
    t = np.abs(x)                                 # min(x, 0) - log1p(exp(-|x|))
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    y = _clip(x, -np.inf, 0, out=out)
    y -= t
    return y


def _log_sigmoid_b(g, y, p0, p1, from_y, out):
    d = np.expm1(y, out=out)  # NOTE: d/dx = 1 - exp(y) = -expm1(y)
    d *= g
    return np.negative(d, out=d)


_NP = {"relu": (_relu_f, _relu_b), "leaky_relu": (_leaky_f, _leaky_b), "elu": (_elu_f, _elu_b),
       "selu": (_selu_f, _selu_b), "gelu": (_gelu_f, _gelu_b), "gelu_tanh": (_gelu_tanh_f, _gelu_tanh_b),
       "silu": (_silu_f, _silu_b), "mish": (_mish_f, _mish_b), "sigmoid": (_sigmoid_f, _sigmoid_b),
       "tanh": (_tanh_f, _tanh_b), "softplus": (_softplus_f, _softplus_b),
       "log_sigmoid": (_log_sigmoid_f, _log_sigmoid_b)}
# NOTE: large arrays run in chunks of _CHUNK elements: every pass of a multi-pass formula then
# works on data still in cache, and the temporaries are small and reused instead of fresh
# multi-megabyte arrays (each costs page faults on first touch, ~1 ms per 4 MiB here); only the
# output is allocated whole. Small arrays (the autograd loop's) take a single call, and so do the
# formulas that make no temporary and few passes (_UNCHUNKED): for them chunking only adds calls.
# 2^16 elements measured best of 2^14..2^18 (2^20 and 2^22 float32, see benchmarks/NOTES.md).
_CHUNK = 1 << 16


def _run_fwd(f, x, p0, p1):
    n = x.size
    if n <= 2 * _CHUNK or f in _UNCHUNKED or not x.flags.c_contiguous:
        return f(x, p0, p1, None)
    out = np.empty_like(x)
    xf, of = x.reshape(-1), out.reshape(-1)
    for i in range(0, n, _CHUNK):
        f(xf[i:i + _CHUNK], p0, p1, of[i:i + _CHUNK])
    return out


def _run_bwd(f, g, s, p0, p1, from_y):
    n = g.size
    if n <= 2 * _CHUNK or f in _UNCHUNKED or not (g.flags.c_contiguous and s.flags.c_contiguous):
        return f(g, s, p0, p1, from_y, None)
    out = np.empty_like(g)
    gf, sf, of = g.reshape(-1), s.reshape(-1), out.reshape(-1)
    for i in range(0, n, _CHUNK):
        j = i + _CHUNK
        f(gf[i:j], sf[i:j], p0, p1, from_y, of[i:j])
    return out


# NOTE: ops whose fallbacks raise no floating-point exception for any input skip np.errstate
# (~1-4 us a call) on the fast path. tanh's backward can meet inf * 0 (an infinite upstream
# gradient at |y| = 1): NumPy then warns, and the value is NaN, as the kernel's.
_QUIET = frozenset(("relu", "tanh"))
_UNCHUNKED = frozenset((_relu_f, _relu_b, _tanh_f, _tanh_b, _sigmoid_f))


# -- op resolution ------------------------------------------------------------------------------

def _resolve(name, params):
    """(kernel op, p0, p1, from_y) for an activation and its keyword params."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    defaults = _DEFAULTS.get(name, {})
    extra = set(params) - set(defaults)
    if extra:
        allowed = ", ".join(defaults) or "none"
        raise TypeError(f"{name} got unexpected parameter(s) {', '.join(sorted(extra))} (allowed: {allowed})")
    p = {**defaults, **params}
    if name == "leaky_relu":
        s = float(p["negative_slope"])
        return "leaky_relu", s, 0.0, s >= 0
    if name == "elu":
        a = float(p["alpha"])
        return "elu", a, 0.0, a >= 0
    if name == "gelu":
        if p["approximate"] not in ("none", "tanh"):
            raise ValueError(f"gelu approximate must be 'none' or 'tanh', got {p['approximate']!r}")
        return ("gelu_tanh" if p["approximate"] == "tanh" else "gelu"), 0.0, 0.0, False
    if name == "softplus":
        return "softplus", float(p["beta"]), float(p["threshold"]), False
    return name, 0.0, 0.0, name in ("relu", "selu", "sigmoid", "tanh", "log_sigmoid")


def activation_saves(name: str, **params) -> str:
    """``"output"`` if the backward of ``name`` reads the forward output y, else ``"input"``."""
    return "output" if _resolve(name, params)[3] else "input"


def _saved(name, from_y, x, y):
    s = y if from_y else x
    if s is None:
        raise ValueError(f"{name} backward needs the saved {'output y' if from_y else 'input x'} "
                         f"(see activation_saves)")
    return s


def _same_shape(what, a, ref, ref_name):
    if a.shape != ref.shape:
        raise ValueError(f"{what} shape {tuple(a.shape)} does not match {ref_name} shape {tuple(ref.shape)}")


def _nd1(a):
    """0-d arrays as 1-d: NumPy ufuncs return scalars for 0-d inputs, which cannot take out=."""
    return a.reshape(1) if a.ndim == 0 else a


def _check_bias(x, b):
    if x.ndim == 0 or b.shape != (x.shape[-1],):
        raise ValueError(f"bias shape {tuple(b.shape)} must be (x.shape[-1],) for x of shape {tuple(x.shape)}")
    if b.dtype != x.dtype:
        raise TypeError(f"bias dtype {b.dtype} does not match input dtype {x.dtype}")


# -- public API ---------------------------------------------------------------------------------

_RESOLVED = {}  # name -> _resolve(name, {}): the common call without params skips the parsing


def _resolve0(name):
    r = _RESOLVED.get(name)
    if r is None:
        r = _RESOLVED[name] = _resolve(name, {})
    return r


def _np_fwd(op, x, p0, p1):
    """The fallback on a NumPy array of any float dtype and shape (float16 computes in float32)."""
    with np.errstate(all="ignore"):  # NOTE: +-inf/NaN inputs and exp overflows give the limits
        y = _run_fwd(_NP[op][0], as_compute(_nd1(x)), p0, p1)
        return y.astype(x.dtype, copy=False).reshape(x.shape)  # NOTE: float16 may overflow to inf here


def _tanh_bwd_y(g, y):
    d = np.multiply(y, y)
    np.subtract(1, d, out=d)
    d *= g
    return d


# NOTE: the autograd loop's hottest calls (no params, float32/float64 arrays of ndim >= 1) go
# straight to the ufuncs: ~0.3 us over the bare expression instead of ~10 us of resolving and
# converting. Only ops that are _QUIET and _UNCHUNKED qualify (no errstate, no size test).
_ND = np.ndarray
_FAST_FWD = {"tanh": np.tanh, "relu": lambda x: _clip(x, 0, np.inf)}
_FAST_BWD = {"tanh": _tanh_bwd_y, "relu": lambda g, y: _relu_b(g, y, 0.0, 0.0, True, None)}


def activation_fwd(name: str, x, **params):
    """y = act(x), same shape and dtype as x."""
    fast = _FAST_FWD.get(name)
    if fast is not None and not params and type(x) is _ND:
        dt = x.dtype
        if (dt is F32 or dt is F64) and x.ndim:
            return fast(x)
    op, p0, p1, _ = _resolve(name, params) if params else _resolve0(name)
    if type(x) is np.ndarray:
        dt = x.dtype
        # NOTE: fast path (float32/float64, ndim >= 1): nothing to convert or check; the small
        # arrays of an autograd loop pay little more than the ufunc calls themselves.
        if (dt is F32 or dt is F64) and x.ndim:
            if op in _QUIET:
                return _run_fwd(_NP[op][0], x, p0, p1)
            with np.errstate(all="ignore"):
                return _run_fwd(_NP[op][0], x, p0, p1)
        check_float("input", x)
        return _np_fwd(op, x, p0, p1)
    check_float("input", x)
    xp = xp_of(x)
    if xp is np:
        return _np_fwd(op, x, p0, p1)
    return _gpu_unary(xp, "fwd", op, x, None, p0, p1, 0)


def activation_bwd(name: str, g, x=None, y=None, **params):
    """gx = g * act'(x), computed from the saved input x or output y (see :func:`activation_saves`)."""
    fast = _FAST_BWD.get(name)
    if fast is not None and x is None and not params and type(g) is _ND and type(y) is _ND:
        dt = g.dtype
        if y.dtype is dt and (dt is F32 or dt is F64) and g.shape == y.shape and g.ndim:
            return fast(g, y)
    op, p0, p1, from_y = _resolve(name, params) if params else _resolve0(name)
    s = y if from_y else x
    if type(g) is np.ndarray and type(s) is np.ndarray:
        dt = g.dtype
        if (dt is F32 or dt is F64) and s.dtype is dt and g.ndim and g.shape == s.shape:  # fast path
            if op in _QUIET:
                return _run_bwd(_NP[op][1], g, s, p0, p1, from_y)
            with np.errstate(all="ignore"):
                return _run_bwd(_NP[op][1], g, s, p0, p1, from_y)
    s = _saved(name, from_y, x, y)
    dt = check_float("grad", g)
    _same_shape("grad", g, s, "saved")
    if s.dtype != dt:
        raise TypeError(f"grad dtype {dt} does not match saved dtype {s.dtype}")
    xp = xp_of(g)
    if xp is np:
        with np.errstate(all="ignore"):
            gx = _run_bwd(_NP[op][1], as_compute(_nd1(g)), as_compute(_nd1(s)), p0, p1, from_y)
            return gx.astype(dt, copy=False).reshape(g.shape)
    return _gpu_unary(xp, "bwd", op, g, s, p0, p1, int(from_y))


def bias_act_fwd(name: str, x, b, **params):
    """y = act(x + b) with b broadcast along the last dim (a linear layer's epilogue)."""
    op, p0, p1, _ = _resolve(name, params)
    dt = check_float("input", x)
    _check_bias(x, b)
    xp = xp_of(x)
    if xp is np:
        with np.errstate(all="ignore"):
            z = np.add(as_compute(x), as_compute(b))
            y = _run_fwd(_NP[op][0], z, p0, p1)
            return y.astype(dt, copy=False)
    return _gpu_bias(xp, "fwd", op, x, None, b, p0, p1, 0)


def bias_act_bwd(name: str, g, b, x=None, y=None, **params):
    """(gx, gb) of y = act(x + b): gx = g * act'(x + b), gb = gx summed over all but the last dim."""
    op, p0, p1, from_y = _resolve(name, params)
    s = _saved(name, from_y, x, y)
    dt = check_float("grad", g)
    _same_shape("grad", g, s, "saved")
    _check_bias(g, b)
    xp = xp_of(g)
    if xp is np:
        with np.errstate(all="ignore"):
            sc = as_compute(s) if from_y else np.add(as_compute(s), as_compute(b))
            gxc = _run_bwd(_NP[op][1], as_compute(g), sc, p0, p1, from_y)
            gb = gxc.reshape(-1, b.shape[0]).sum(axis=0) if b.shape[0] else np.zeros(0, gxc.dtype)
            return gxc.astype(dt, copy=False), gb.astype(dt, copy=False)
    return _gpu_bias(xp, "bwd", op, g, s, b, p0, p1, int(from_y))


# -- GPU launches -------------------------------------------------------------------------------

def _gpu_unary(cp, direction, op, a, s, p0, p1, from_y):
    with cp.cuda.Device(a.device.id):
        shape = a.shape
        # NOTE: cupy.ascontiguousarray turns a 0-d array into shape (1,); the result takes a's shape back
        a = cp.ascontiguousarray(a).reshape(shape)
        out = cp.empty_like(a)
        n = a.size
        if n == 0:
            return out
        k = get_kernel(_SOURCE, f"gpugrad_{op}_{direction}", a.dtype, a.device.id)
        grid = (elementwise_grid(n, a.itemsize),)
        if direction == "fwd":
            k(grid, (256,), (a, out, np.int64(n), np.float64(p0), np.float64(p1)))
        else:
            s = cp.ascontiguousarray(s).reshape(shape)
            k(grid, (256,), (a, s, out, np.int64(n), np.float64(p0), np.float64(p1), np.int32(from_y)))
        return out


def _gpu_bias(cp, direction, op, a, s, b, p0, p1, from_y):
    with cp.cuda.Device(a.device.id):
        a = cp.ascontiguousarray(a)
        b = cp.ascontiguousarray(b)
        cols = b.shape[0]
        rows = a.size // cols if cols else 0
        out = cp.empty_like(a)
        if direction == "bwd":
            gb = cp.empty_like(b)
        if a.size == 0:
            if direction == "bwd":
                gb.fill(0)
                return out, gb
            return out
        vec = 16 // a.itemsize
        grid, block = bias_launch(rows, cols, vec if cols % vec == 0 else 1)
        k = get_kernel(_SOURCE, f"gpugrad_bias_{op}_{direction}", a.dtype, a.device.id)
        if direction == "fwd":
            k(grid, block, (a, b, out, np.int64(rows), np.int64(cols), np.float64(p0), np.float64(p1)))
            return out
        s = cp.ascontiguousarray(s)
        part = cp.empty((grid[1], cols), dtype=compute_dtype(a.dtype))
        k(grid, block, (a, s, b, out, part, np.int64(rows), np.int64(cols), np.float64(p0), np.float64(p1),
                        np.int32(from_y)))
        red = get_kernel(_SOURCE, "gpugrad_bias_grad_reduce", a.dtype, a.device.id)
        red((elementwise_grid(cols, 16),), (256,), (part, gb, np.int64(grid[1]), np.int64(cols)))
        return out, gb
