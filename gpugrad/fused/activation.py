"""Fused activations: the table of them, their NumPy fallbacks and composites, and the array-level
dispatch (CuPy arrays launch ``kernels/activation.cu``, NumPy arrays run the fallback).

Each activation is one row of :data:`ACTIVATIONS` (an :class:`Act`), and the row is all there is:
kernel registration, the Primitive of :mod:`gpugrad.ops.activation`, the host harness, the
emulated-CUDA tests, the fallback and composite tests and the kernel benchmarks read it. Adding an
activation is its functor in ``kernels/activation.cu`` (one ``X(...)`` line in ``GG_ACTIVATIONS``),
its row here with its fallback and composite, and the public function and module that call it.

Array API (``name`` a row name or ``"gelu"`` with ``approximate=``; params PyTorch's)::

    activation_saves(name, **params) -> "input" | "output"     what the backward needs
    activation_fwd(name, x, **params) -> y
    activation_bwd(name, g, x=None, y=None, **params) -> gx    pass the saved one (x or y)
    fwd(op, x, p) / bwd(op, g, s, p)                           the same for a resolved row and params

Semantics follow PyTorch (kinks: relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha; NaN in
gives NaN out); at +-inf the results are the limits (gelu(-inf) = 0, silu'(inf) = 1, ...).
float16/bfloat16 compute in float32 and are rounded once. Outputs have the input's dtype and shape.
NOTE: the output is saved where the backward can use it (it is usually kept alive anyway as the
next layer's input, so saving it costs no memory); otherwise the input.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import _threads, tensor as _tensor
from ..backend import xp_of
from ..ops.elementwise import Erfc
from . import cuda
from ._common import F32, F64, LOG2E, FusedOp, as_compute, check_float, erfc, erfcx32, np_sigmoid, same_device, table

_SOURCE = "activation.cu"
__all__ = ["Act", "ACTIVATIONS", "resolve", "activation_saves", "activation_fwd", "activation_bwd", "fwd", "bwd"]

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


def _relu_f(x, out):
    return _clip(x, 0, np.inf, out=out)  # NaN passes through


def _relu_b(g, s, out):
    keep = np.less_equal(s, 0).view(np.int8)
    np.subtract(keep, 1, out=keep)                # 0 where s <= 0, else -1 (all bits set)
    out = _new(g, out)
    iv = _IVIEW[g.dtype]
    np.bitwise_and(g.view(iv), keep, out=out.view(iv))  # NOTE: exactly +0 or g, as the kernel
    return out


def _leaky_f(x, out, slope):
    # NOTE: max(x, slope*x) for slope <= 1 (min for slope > 1): two passes, NaN propagates
    t = np.multiply(x, slope, out=out)
    return (np.maximum if slope <= 1 else np.minimum)(x, t, out=t)


def _leaky_b(g, s, out, slope):
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


def _elu_f(x, out, alpha):
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


def _elu_b(g, s, out, alpha):
    f, nle = _neg_part(s, _new(g, out))           # s where s <= 0, else 0 (and NaN -> 0)
    if _elu_saves(alpha) == "output":  # NOTE: the row's saves rule says which array s is
        f += alpha                                # s + alpha (alpha where not s <= 0)
    else:
        np.exp(f, out=f)
        f *= alpha                                # alpha exp(s) (alpha where not s <= 0)
    _fix_nle(f, nle, alpha, 1)
    f *= g
    return f


def _selu_f(x, out):
    t = _clip(x, -np.inf, 0, out=out)
    np.expm1(t, out=t)
    t *= _SELU_SCALE * _SELU_ALPHA
    p = _clip(x, 0, np.inf)
    p *= _SELU_SCALE
    t += p                                        # exactly one of the two terms is nonzero
    return t


def _selu_b(g, s, out):
    f, nle = _neg_part(s, _new(g, out))
    f += _SELU_SCALE * _SELU_ALPHA
    _fix_nle(f, nle, _SELU_SCALE * _SELU_ALPHA, _SELU_SCALE)
    f *= g
    return f


def _gelu_h(x):
    """(a, xc, h, e): xc = x clipped to the finite range, a = |xc|, h = erfc(a / sqrt2) / 2 <= 1/2, e = exp(-x^2 / 2).
    NOTE: gelu(x) = relu(x) - a h and gelu'(x) = Phi(x) + x phi(x) with Phi(x) = |[x >= 0] - h| (h exactly below 0):
    no sign fix-ups (copysign is an unvectorised ~0.6 ns/element pass here), no cancellation (h <= 1/2). float32:
    h = erfcx(z) exp(-z^2) / 2 by the polynomial of erfcx32 (SciPy's float32 erfc costs ~20 ns/element), the
    exponential by exp2 (< 1 ulp, half of exp's cost) and shared with phi; float64 by erfc (SciPy or np_erfc)."""
    xc = _finite(x)
    a = np.abs(xc)
    if x.dtype == F32:
        h = erfcx32(a, _SQRT1_2, 0.5)
        e = np.multiply(xc, xc)
        e *= np.float32(-0.5 * LOG2E)
        h *= np.exp2(e, out=e)
    else:
        e = np.multiply(xc, xc)
        e *= -0.5
        np.exp(e, out=e)
        h = erfc(np.multiply(a, _SQRT1_2))
        h *= 0.5
    return a, xc, h, e


def _gelu_f(x, out):
    a, _, h, _ = _gelu_h(x)
    h *= a                                        # finite a: 0 at +-inf
    y = _relu_f(x, out)
    return np.subtract(y, h, out=y)


def _gelu_b(g, x, out):
    _, xc, h, e = _gelu_h(x)
    f = _new(g, out)
    np.copyto(f, np.greater_equal(x, 0))          # NOTE: +-0 both give Phi = 1/2; NaN gives h = NaN
    f -= h
    np.abs(f, out=f)                              # Phi(x)
    e *= xc
    e *= _INV_SQRT_2PI                            # x phi(x), 0 at +-inf (xc finite)
    f += e
    return np.multiply(f, g, out=f)


def _gelu_tanh_nu2(x):
    """-2u = -2 k0 x (1 + k1 x^2), the exponent of sigmoid(2u) = 1 / (1 + exp(-2u))."""
    u = np.multiply(x, x)
    u *= _K1
    u += 1
    u *= x
    u *= -2 * _K0
    return u


def _gelu_tanh_f(x, out):
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


def _gelu_tanh_b(g, x, out):
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


def _silu_f(x, out):
    e = np.negative(x, out=out)
    np.exp(e, out=e)
    e += 1
    return _zero_at_neginf(np.divide(x, e, out=e), x)  # x / (1 + exp(-x))


def _silu_b(g, x, out):
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


def _mish_f(x, out):
    out = _new(x, out)
    t = _mish_t(x, out)
    y = _finite(x, out, hi=False)                 # mul0: tanh(softplus(-inf)) = 0
    y *= t
    return y


def _mish_b(g, x, out):
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




def _sigmoid_b(g, y, out):
    d = np.subtract(1, y, out=out)
    d *= y
    d *= g
    return d




def _tanh_b(g, y, out=None):
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


def _softplus_f(x, out, beta, threshold):
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


def _softplus_b(g, x, out, beta, threshold):
    e = np.multiply(x, -beta)
    np.exp(e, out=e)
    e += 1
    d = np.divide(g, e, out=out)                  # g sigmoid(beta x)
    if not _softplus_linear_is_noop(x.dtype.type, beta, threshold, True):
        _select(np.greater(np.multiply(x, beta, out=e), threshold), g, d)
    return d


def _log_sigmoid_f(x, out):
    t = np.abs(x)                                 # min(x, 0) - log1p(exp(-|x|))
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    y = _clip(x, -np.inf, 0, out=out)
    y -= t
    return y


def _log_sigmoid_b(g, y, out):
    d = np.expm1(y, out=out)  # NOTE: d/dx = 1 - exp(y) = -expm1(y)
    d *= g
    return np.negative(d, out=d)


def _celu_f(x, out, alpha):
    t = _clip(x, -np.inf, 0, out=out)             # NOTE: as elu, on the negative part only
    t *= x.dtype.type(1) / x.dtype.type(alpha)     # x * (1/alpha), PyTorch's input scale
    np.expm1(t, out=t)
    t *= alpha
    t += _clip(x, 0, np.inf)                      # exactly one of the two terms is nonzero
    return t


def _celu_b(g, x, out, alpha):
    f, _ = _neg_part(x, _new(g, out))             # x where x <= 0, else +0 (NaN -> +0: slope 1)
    f *= x.dtype.type(1) / x.dtype.type(alpha)
    np.exp(f, out=f)                              # exp(x / alpha) for x <= 0, exp(0) = 1 elsewhere
    f *= g
    return f


def _hardswish_f(x, out):
    t = np.add(x, 3, out=out)
    _clip(t, 0, 6, out=t)                         # NaN passes; -inf * 0 below is NaN, as PyTorch
    t *= x
    t /= 6
    return t


@functools.lru_cache(maxsize=None)
def _filled(v, dt):
    a = np.full(_CHUNK, v, dt)
    a.flags.writeable = False
    return a


def _hardswish_b(g, x, out):
    # NOTE: PyTorch's branches 0 (x <= -3), x/3 + 1/2 (-3 < x < 3), 1 (x >= 3 and NaN) without masked
    # ufuncs: xc = x capped at 3 with NaN -> 3 (fmin), d = xc/3 + 1/2 - (xc == 3)/2 is exactly 1 at the top;
    # at the bottom (no lower clamp needed) the result is set to +0 bitwise (not 0 * g: an infinite g stays
    # finite). The cap is an array: NumPy's fmin with a scalar operand runs unvectorised (~3x slower).
    three = _filled(3, x.dtype)[:x.size].reshape(x.shape) if x.size <= _CHUNK else np.full(x.shape, 3, x.dtype)
    xc = np.fmin(x, three, out=_new(g, out))
    lo = np.less_equal(xc, -3)
    hi = np.multiply(np.equal(xc, 3), 0.5, dtype=xc.dtype)
    xc /= 3
    xc += 0.5
    xc -= hi
    xc *= g
    iv = _IVIEW[xc.dtype]
    np.bitwise_and(xc.view(iv), np.subtract(lo.view(np.int8), 1), out=xc.view(iv))  # +0 where x <= -3
    return xc


def _elu_saves(alpha):
    """elu's backward reads its output when alpha >= 0 (then y <= 0 exactly where x <= 0)."""
    return "output" if alpha >= 0 else "input"


def _leaky_saves(slope):
    """leaky_relu's backward reads its output when the slope keeps the sign (y > 0 iff x > 0)."""
    return "output" if slope >= 0 else "input"


# -- composites: core Tensor ops in stable forms (create_graph, and the fallbacks' tests) ----------------
def _const(x, arr):
    return _tensor.Tensor(arr.astype(x.dtype, copy=False))


def _y_le0(y, neg, pos):
    """g's factor from the output y: ``neg`` (a Tensor function of y) where y <= 0, the constant ``pos`` elsewhere
    (NaN too, as the kernels' masks)."""
    return _tensor.where(_tensor.Tensor(y._data <= 0), neg(y), pos)


def _sign_abs(x):
    """(s, |x|) with s = +-1 a constant (+1 at 0), so that d|x|/dx = s is never 0 (kinks stay exact)."""
    s = _const(x, x.xp.where(x._data >= 0, 1, -1))
    return s, x * s


def _pos(x):
    return _tensor.Tensor(x._data > 0)


def _c_relu(x):
    # NOTE: NaN passes through (as the kernel); relu'(0) = 0
    return _tensor.where(_tensor.Tensor((x._data > 0) | x.xp.isnan(x._data)), x, 0.0)


def _expm1_neg(x):
    """exp(min(x, 0)) - 1: the clamp keeps exp finite in the branch where() discards (no 0 * inf)."""
    return x.clamp(max=0.0).exp() - 1


def c_softplus1(x):
    """log(1 + e^x) = max(x, 0) + log1p(exp(-|x|)); (x + |x|) / 2 is max(x, 0) exactly."""
    _, a = _sign_abs(x)
    return (x + a) * 0.5 + (-a).exp().log1p()


def _c_sigmoid(x):
    # NOTE: exp(-|x|) never overflows: 1 / (1 + e) for x >= 0, e / (1 + e) below
    _, a = _sign_abs(x)
    e = (-a).exp()
    return _tensor.where(_tensor.Tensor(x._data >= 0), 1.0, e) / (e + 1)


def _c_tanh(x):
    s, a = _sign_abs(x)
    e = (a * -2).exp()
    return s * (1 - e) / (1 + e)


def _c_gelu_tanh(x):
    # NOTE: 0.5 (1 + tanh(u)) = sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
    return x * _c_sigmoid((x + x * x * x * _K1) * (2 * _K0))


def _c_gelu(x):
    # NOTE: Phi(x) = erfc(-x / sqrt 2) / 2 keeps the relative precision of the negative tail
    return x * Erfc.apply(x * -_SQRT1_2) * 0.5


def _c_mish(x):
    e = (c_softplus1(x) * -2).exp()  # NOTE: softplus >= 0, so tanh = (1 - e) / (1 + e) with no sign
    return x * (1 - e) / (1 + e)


def _c_hardswish(x):
    d = x._data
    return _tensor.where(_tensor.Tensor(d <= -3), x * 0.0, _tensor.where(_tensor.Tensor(d < 3), x * (x + 3.0) / 6.0, x))


def _c_softplus(x, beta, threshold):
    z = x * beta
    return _tensor.where(_tensor.Tensor(z._data > threshold), x, c_softplus1(z) / beta)


# -- the table ------------------------------------------------------------------------------------------
class Act(FusedOp):
    """One fused activation: the row that kernels, dispatch, tests and benchmarks read (a FusedOp of
    launch kind "map" in activation.cu; ``fwd``/``bwd`` are :func:`fwd`/:func:`bwd` bound to the row).

    name       its functor in kernels/activation.cu (``GG_ACTIVATIONS``), kernels gpugrad_<name>_fwd/_bwd
    params     ((name, default), ...): PyTorch's keyword parameters, handed to the kernels as p0, p1
    saves      "output" | "input", or a function of the params giving one: what the backward reads
    np_fwd, np_bwd  NumPy fallbacks np_fwd(x, out, *p) -> y and np_bwd(g, s, out, *p) -> gx on arrays of the
               compute dtype (s: the saved x or y; out: None, or an array aliasing no input)
    composite  composite(x, *p): the same function in core Tensor ops (create_graph; tests)
    limits     (y(-inf), y(+inf), y'(-inf), y'(+inf)) at the default params (tests)
    cases      more param dicts for the tests and benchmarks (the defaults always run)
    torch      (name in torch.nn.functional, fixed keyword arguments): the PyTorch peer
    variant    (param, {value: row name}, default value): a param that selects another row (gelu)
    kinks      kinks(*p): points where the derivative jumps besides 0 (tests keep finite differences away)
    quiet      the fallbacks raise no floating-point exception for any input (np.errstate skipped)
    chunked    large inputs run in cache-sized chunks (multi-pass formulas with temporaries); "bwd": the
               backward only (a forward of few passes is faster whole)
    torch_saves_output  PyTorch's node saves the output too, so an in-place write to it may fail
               backward there as here; otherwise ours keeps a private copy (see ops.activation)
    dy         dy(y, g, *p): rows whose backward reads the output: the input's gradient as core Tensor ops of
               the output Tensor y (PyTorch's formula; the create_graph route, which works after an in-place
               activation has overwritten the input)
    """
    __slots__ = ("np_fwd", "np_bwd", "params", "limits", "cases", "torch", "variant", "kinks", "quiet", "chunked",
                 "torch_saves_output", "defaults", "names", "dy")

    def __init__(self, name, np_fwd, np_bwd, composite, limits, params=(), saves="input", cases=(), torch=None,
                 variant=None, kinks=None, quiet=False, chunked=True, torch_saves_output=False, dy=None):
        super().__init__(name, _SOURCE, "map", saves, None, None, composite)
        self.dy = dy
        self.np_fwd, self.np_bwd, self.limits = np_fwd, np_bwd, limits
        self.params, self.cases, self.variant = tuple(params), tuple(cases), variant
        self.torch = torch or (name, {})
        self.kinks = kinks or (lambda *p: ())
        self.quiet, self.torch_saves_output = quiet, torch_saves_output
        self.chunked = (chunked is True, bool(chunked))  # (forward, backward)
        self.names = tuple(k for k, _ in self.params)
        self.defaults = tuple(float(v) for _, v in self.params)
        assert len(self.params) <= 2, "the kernels take two parameters (p0, p1)"

    def values(self, kwargs):
        """The params tuple of keyword arguments (PyTorch's defaults for the missing ones)."""
        if not kwargs:
            return self.defaults
        extra = set(kwargs) - set(self.names)
        if extra:
            raise TypeError(f"{self.name} got unexpected parameter(s) {', '.join(sorted(extra))} "
                            f"(allowed: {', '.join(self.names) or 'none'})")
        return tuple(float(kwargs.get(k, d)) for k, d in self.params)

    def saves_output(self, p):
        s = self.saves(*p) if callable(self.saves) else self.saves
        return s == "output"

    def __repr__(self):
        return f"Act({self.name!r})"


_INF = math.inf
_ROWS = [
    Act("relu", _relu_f, _relu_b, _c_relu, (0, _INF, 0, 1), saves="output", quiet=True, chunked=False,
        torch_saves_output=True, dy=lambda y, g: g * _const(y, ~(y._data <= 0))),
    Act("leaky_relu", _leaky_f, _leaky_b, lambda x, s: _tensor.where(_pos(x), x, x * s), (-_INF, _INF, 0.01, 1),
        params=[("negative_slope", 0.01)], saves=_leaky_saves,
        cases=[{"negative_slope": -0.2}, {"negative_slope": 1.5}],
        dy=lambda y, g, s: g * _const(y, y.xp.where(y._data > 0, 1, s))),
    Act("elu", _elu_f, _elu_b, lambda x, a: _tensor.where(_pos(x), x, _expm1_neg(x) * a), (-1, _INF, 0, 1),
        params=[("alpha", 1.0)], saves=_elu_saves, cases=[{"alpha": -0.5}, {"alpha": 0.0}, {"alpha": 1.3}],
        dy=lambda y, g, a: g * _y_le0(y, lambda u: u + a, 1.0)),
    Act("selu", _selu_f, _selu_b,
        lambda x: _tensor.where(_pos(x), x, _expm1_neg(x) * _SELU_ALPHA) * _SELU_SCALE,
        (-_SELU_SCALE * _SELU_ALPHA, _INF, 0, _SELU_SCALE), saves="output",
        dy=lambda y, g: g * _y_le0(y, lambda u: u + _SELU_SCALE * _SELU_ALPHA, _SELU_SCALE)),
    Act("gelu", _gelu_f, _gelu_b, _c_gelu, (0, _INF, 0, 1), variant=("approximate", {"tanh": "gelu_tanh"}, "none")),
    Act("gelu_tanh", _gelu_tanh_f, _gelu_tanh_b, _c_gelu_tanh, (0, _INF, 0, 1), torch=("gelu", {"approximate": "tanh"})),
    Act("silu", _silu_f, _silu_b, lambda x: x * _c_sigmoid(x), (0, _INF, 0, 1), chunked="bwd"),
    Act("mish", _mish_f, _mish_b, _c_mish, (0, _INF, 0, 1)),
    Act("sigmoid", np_sigmoid, _sigmoid_b, _c_sigmoid, (0, 1, 0, 0), saves="output", chunked=False,
        torch_saves_output=True, dy=lambda y, g: g * (1 - y) * y),
    Act("tanh", np.tanh, _tanh_b, _c_tanh, (-1, 1, 0, 0), saves="output", quiet=True, chunked=False,
        torch_saves_output=True, dy=lambda y, g: g * (1 - y * y)),
    Act("softplus", _softplus_f, _softplus_b, _c_softplus, (0, _INF, 0, 1),
        params=[("beta", 1.0), ("threshold", 20.0)], cases=[{"beta": 2.0, "threshold": 5.0}],
        kinks=lambda beta, threshold: (threshold / beta,)),
    Act("log_sigmoid", _log_sigmoid_f, _log_sigmoid_b, lambda x: -c_softplus1(-x), (-_INF, 0, 1, 0),
        saves="output", torch=("logsigmoid", {}), dy=lambda y, g: g * -y.expm1()),
    Act("celu", _celu_f, _celu_b, lambda x, a: _tensor.where(_pos(x), x, ((x.clamp(max=0.0) * (1 / a)).exp() - 1) * a),
        (-1, _INF, 0, 1), params=[("alpha", 1.0)], cases=[{"alpha": 0.5}, {"alpha": 2.0}]),
    Act("hardswish", _hardswish_f, _hardswish_b, _c_hardswish, (math.nan, _INF, 0, 1), kinks=lambda: (-3.0, 3.0),
        chunked="bwd"),
]
ACTIVATIONS = table(_ROWS)


def table_cases():
    """(row, params dict) pairs the tests and benchmarks run: every row at its defaults, then its ``cases``."""
    return [(r, c) for r in _ROWS for c in ({}, *r.cases)]


def case_id(op, params):
    return op.name + "".join(f"-{k}={v}" for k, v in params.items())


def resolve(name, params):
    """(row, params tuple) of an activation name and its keyword params (``approximate`` picks gelu's row)."""
    op = ACTIVATIONS.get(name)
    if op is None:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    if op.variant is not None and op.variant[0] in params:
        key, rows, default = op.variant
        params = dict(params)
        v = params.pop(key)
        if v != default and v not in rows:
            raise ValueError(f"{name} {key} must be one of {', '.join(map(repr, (default, *rows)))}, got {v!r}")
        op = ACTIVATIONS[rows[v]] if v != default else op
    return op, op.values(params)


def activation_saves(name: str, **params) -> str:
    """``"output"`` if the backward of ``name`` reads the forward output y, else ``"input"``."""
    op, p = resolve(name, params)
    return "output" if op.saves_output(p) else "input"


def activation_fwd(name: str, x, **params):
    """y = act(x), same shape and dtype as x."""
    op, p = resolve(name, params)
    return fwd(op, x, p)


def activation_bwd(name: str, g, x=None, y=None, **params):
    """gx = g * act'(x), computed from the saved input x or output y (see :func:`activation_saves`)."""
    op, p = resolve(name, params)
    from_y = op.saves_output(p)
    s = y if from_y else x
    if s is None:
        raise ValueError(f"{name} backward needs the saved {'output y' if from_y else 'input x'} "
                         f"(see activation_saves)")
    return bwd(op, g, s, p)


# -- dispatch -------------------------------------------------------------------------------------------
# NOTE: large arrays run in chunks of _CHUNK elements: every pass of a multi-pass formula then
# works on data still in cache, and the temporaries are small and reused instead of fresh
# multi-megabyte arrays (each costs page faults on first touch, ~1 ms per 4 MiB here); only the
# output is allocated whole. Small arrays (the autograd loop's) take a single call, and so do the
# formulas that make no temporary and few passes (rows with chunked=False, or "bwd" for silu's and hardswish's
# forwards: whole 0.52 vs chunked 0.73 ms at 2^20, 3.8 vs 5.3 ms at 2^22): chunking only adds calls.
# 2^16 elements measured best of 2^14..2^18 (2^20 and 2^22 float32, see benchmarks/NOTES.md).
_CHUNK = 1 << 16
_ND = np.ndarray


def _run(f, chunked, arrays, p):
    """f(*arrays, out, *p) over contiguous NumPy arrays, in chunks when that pays."""
    a0 = arrays[0]
    n = a0.size
    if not chunked or n <= 2 * _CHUNK or not all(a.flags.c_contiguous for a in arrays):
        return f(*arrays, None, *p)
    out = np.empty_like(a0)
    flat, of = [a.reshape(-1) for a in arrays], out.reshape(-1)
    _threads.blocks(n, lambda i, j: f(*(a[i:j] for a in flat), of[i:j], *p), _CHUNK)
    return out


def _nd1(a):
    """0-d arrays as 1-d: NumPy ufuncs return scalars for 0-d inputs, which cannot take out=."""
    return a.reshape(1) if a.ndim == 0 else a


def _np(op, which, arrays, p, dt, shape):
    """The fallback on NumPy arrays of any float dtype and shape (float16 computes in float32)."""
    with np.errstate(all="ignore"):  # NOTE: +-inf/NaN inputs and exp overflows give the limits
        r = _run(which, op.chunked[which is op.np_bwd], [as_compute(_nd1(a)) for a in arrays], p)
        return r.astype(dt, copy=False).reshape(shape)  # NOTE: float16 may overflow to inf here


def _kernel_scalars(p):
    p0, p1 = (tuple(p) + (0.0, 0.0))[:2]
    return np.float64(p0), np.float64(p1)


def fwd(op, x, p=()):
    """y = op(x) with params ``p`` (a tuple from :meth:`Act.values`)."""
    if type(x) is _ND:
        dt = x.dtype
        # NOTE: fast path (float32/float64, ndim >= 1): nothing to convert or check, so the small
        # arrays of an autograd loop pay little more than the ufunc calls themselves.
        if (dt is F32 or dt is F64) and x.ndim:
            if op.quiet and not op.chunked[0]:  # NOTE: relu, tanh: the ufunc calls alone (the autograd loop's hot path)
                return op.np_fwd(x, None, *p)
            with np.errstate(all="ignore"):
                return _run(op.np_fwd, op.chunked[0], (x,), p)
    dt = check_float("input", x)
    xp = xp_of(x)
    if xp is np:
        return _np(op, op.np_fwd, (x,), p, dt, x.shape)
    with cuda.on(x):
        out = xp.empty(x.shape, dt)
        cuda.map_launch(_SOURCE, f"gpugrad_{op.name}_fwd", dt, x.size, (x, out), _kernel_scalars(p))
    return out


def bwd(op, g, s, p=()):
    """gx = g * op'(.) from the saved ``s`` (the output y or the input x, as ``op.saves`` says)."""
    if type(g) is _ND and type(s) is _ND:
        dt = g.dtype
        if (dt is F32 or dt is F64) and s.dtype is dt and g.ndim and g.shape == s.shape:  # fast path
            if op.quiet and not op.chunked[1]:
                return op.np_bwd(g, s, None, *p)
            with np.errstate(all="ignore"):
                return _run(op.np_bwd, op.chunked[1], (g, s), p)
    dt = check_float("grad", g)
    if g.shape != s.shape:
        raise ValueError(f"grad shape {tuple(g.shape)} does not match saved shape {tuple(s.shape)}")
    if s.dtype != dt:
        raise TypeError(f"grad dtype {dt} does not match saved dtype {s.dtype}")
    xp = xp_of(g)
    if xp is np:
        return _np(op, op.np_bwd, (g, s), p, dt, g.shape)
    same_device(xp, saved=s)
    with cuda.on(g):
        out = xp.empty(g.shape, dt)
        cuda.map_launch(_SOURCE, f"gpugrad_{op.name}_bwd", dt, g.size, (g, s, out),
                        (*_kernel_scalars(p), np.int32(op.saves_output(p))))
    return out


for _op in _ROWS:  # the FusedOp interface: the array-level functions of each row
    _op.fwd, _op.bwd = functools.partial(fwd, _op), functools.partial(bwd, _op)

