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

import math

import numpy as np

from ..backend import xp_of
from ._common import as_compute, check_float, compute_dtype, erfc, np_mul0, np_sigmoid
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


# -- NumPy fallbacks: fwd(x, p0, p1, out) -> y, bwd(g, s, p0, p1, from_y) -> gx ----------------
# x, g, s are in the compute dtype. `out` is None or x itself (then x may be overwritten).
# They mirror the functors in kernels/activation.cu formula by formula.

def _relu_f(x, p0, p1, out):
    return np.maximum(x, 0, out=out)


def _relu_b(g, s, p0, p1, from_y):
    return np.where(s <= 0, 0, g)


def _leaky_f(x, slope, p1, out):
    # NOTE: max(x, slope*x) for slope <= 1 (min for slope > 1): two passes, NaN propagates
    return (np.maximum if slope <= 1 else np.minimum)(x, x * slope, out=out)


def _leaky_b(g, s, slope, p1, from_y):
    gx = g * slope
    np.copyto(gx, g, where=s > 0)
    return gx


def _elu_f(x, alpha, p1, out):
    t = np.minimum(x, 0)  # NOTE: expm1 only on the negative part: no overflow warnings
    np.expm1(t, out=t)
    t *= alpha
    np.copyto(t, x, where=x > 0)
    return t


def _elu_b(g, s, alpha, p1, from_y):
    if from_y:
        d = s + alpha
    else:
        d = np.minimum(s, 0)
        np.exp(d, out=d)
        d *= alpha
    d *= g
    np.copyto(d, g, where=~(s <= 0))
    return d


def _selu_f(x, p0, p1, out):
    t = np.minimum(x, 0)
    np.expm1(t, out=t)
    t *= _SELU_SCALE * _SELU_ALPHA
    np.copyto(t, x * _SELU_SCALE, where=x > 0)
    return t


def _selu_b(g, s, p0, p1, from_y):
    d = s + _SELU_SCALE * _SELU_ALPHA
    d *= g
    np.copyto(d, g * _SELU_SCALE, where=~(s <= 0))
    return d


def _gelu_cdf(x):
    t = erfc(x * -_SQRT1_2)
    t *= 0.5
    return t


def _gelu_f(x, p0, p1, out):
    return np_mul0(x, _gelu_cdf(x))


def _gelu_b(g, x, p0, p1, from_y):
    pdf = np.multiply(x, x)
    pdf *= -0.5
    np.exp(pdf, out=pdf)
    pdf *= _INV_SQRT_2PI
    d = np_mul0(x, pdf)
    d += _gelu_cdf(x)
    d *= g
    return d


def _gelu_tanh_u2(x):
    u = np.multiply(x, x)      # 2u = 2 k0 x (1 + k1 x^2)
    u *= _K1
    u += 1
    u *= x
    u *= 2 * _K0
    return u


def _gelu_tanh_f(x, p0, p1, out):
    return np_mul0(x, np_sigmoid(_gelu_tanh_u2(x)))


def _sigmoid2(z):
    sp = np_sigmoid(z)
    sn = np_sigmoid(np.negative(z))  # NOTE: sigmoid(-z), not 1 - sigmoid(z): keeps the tail
    return sp, sn


def _gelu_tanh_b(g, x, p0, p1, from_y):
    sp, sn = _sigmoid2(_gelu_tanh_u2(x))
    du = np.multiply(x, x)
    du *= 3 * _K1
    du += 1
    du *= x
    du *= 2 * _K0             # 2 x du/dx
    sn *= sp
    d = np_mul0(du, sn)
    d += sp
    d *= g
    return d


def _silu_f(x, p0, p1, out):
    return np_mul0(x, np_sigmoid(x))


def _silu_b(g, x, p0, p1, from_y):
    sp, sn = _sigmoid2(x)
    sn *= sp
    d = np_mul0(x, sn)
    d += sp
    d *= g
    return d


def _mish_t(x):
    t = np.logaddexp(0, x)  # NOTE: numpy's logaddexp is the stable softplus in one pass
    return np.tanh(t, out=t)


def _mish_f(x, p0, p1, out):
    return np_mul0(x, _mish_t(x))


def _mish_b(g, x, p0, p1, from_y):
    t = _mish_t(x)
    q = np.multiply(t, t)
    np.subtract(1, q, out=q)
    q *= np_sigmoid(x)
    d = np_mul0(x, q)
    d += t
    d *= g
    return d


def _sigmoid_f(x, p0, p1, out):
    return np_sigmoid(x, out=out)


def _sigmoid_b(g, y, p0, p1, from_y):
    d = np.subtract(1, y)
    d *= y
    d *= g
    return d


def _tanh_f(x, p0, p1, out):
    return np.tanh(x, out=out)


def _tanh_b(g, y, p0, p1, from_y):
    d = np.multiply(y, y)
    np.subtract(1, d, out=d)
    d *= g
    return d


def _softplus_f(x, beta, threshold, out):
    z = x * beta
    y = np.logaddexp(0, z)
    y /= beta
    np.copyto(y, x, where=z > threshold)  # NOTE: linear above the threshold, as PyTorch
    return y


def _softplus_b(g, x, beta, threshold, from_y):
    z = x * beta
    d = np_sigmoid(z)
    np.copyto(d, 1, where=z > threshold)
    d *= g
    return d


def _log_sigmoid_f(x, p0, p1, out):
    y = np.negative(x, out=out)
    np.logaddexp(0, y, out=y)
    return np.negative(y, out=y)


def _log_sigmoid_b(g, y, p0, p1, from_y):
    d = np.expm1(y)  # NOTE: d/dx = 1 - exp(y) = -expm1(y)
    np.negative(d, out=d)
    d *= g
    return d


_NP = {"relu": (_relu_f, _relu_b), "leaky_relu": (_leaky_f, _leaky_b), "elu": (_elu_f, _elu_b),
       "selu": (_selu_f, _selu_b), "gelu": (_gelu_f, _gelu_b), "gelu_tanh": (_gelu_tanh_f, _gelu_tanh_b),
       "silu": (_silu_f, _silu_b), "mish": (_mish_f, _mish_b), "sigmoid": (_sigmoid_f, _sigmoid_b),
       "tanh": (_tanh_f, _tanh_b), "softplus": (_softplus_f, _softplus_b),
       "log_sigmoid": (_log_sigmoid_f, _log_sigmoid_b)}


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

def activation_fwd(name: str, x, **params):
    """y = act(x), same shape and dtype as x."""
    op, p0, p1, _ = _resolve(name, params)
    dt = check_float("input", x)
    xp = xp_of(x)
    if xp is np:
        with np.errstate(all="ignore"):  # NOTE: +-inf/NaN inputs and exp overflows give the limits
            xc = as_compute(_nd1(x))
            # NOTE: only the widened float16 copy may be overwritten (a 0-d x reshaped is a view)
            y = _NP[op][0](xc, p0, p1, xc if x.dtype != xc.dtype else None)
            return y.astype(dt, copy=False).reshape(x.shape)  # NOTE: float16 may overflow to inf here
    return _gpu_unary(xp, "fwd", op, x, None, p0, p1, 0)


def activation_bwd(name: str, g, x=None, y=None, **params):
    """gx = g * act'(x), computed from the saved input x or output y (see :func:`activation_saves`)."""
    op, p0, p1, from_y = _resolve(name, params)
    s = _saved(name, from_y, x, y)
    dt = check_float("grad", g)
    _same_shape("grad", g, s, "saved")
    if s.dtype != dt:
        raise TypeError(f"grad dtype {dt} does not match saved dtype {s.dtype}")
    xp = xp_of(g)
    if xp is np:
        with np.errstate(all="ignore"):
            gx = _NP[op][1](as_compute(_nd1(g)), as_compute(_nd1(s)), p0, p1, from_y)
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
            y = _NP[op][0](z, p0, p1, z)
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
            gxc = _NP[op][1](as_compute(g), sc, p0, p1, from_y)
            gb = gxc.reshape(-1, b.shape[0]).sum(axis=0)
            return gxc.astype(dt, copy=False), gb.astype(dt, copy=False)
    return _gpu_bias(xp, "bwd", op, g, s, b, p0, p1, int(from_y))


# -- GPU launches -------------------------------------------------------------------------------

def _gpu_unary(cp, direction, op, a, s, p0, p1, from_y):
    with cp.cuda.Device(a.device.id):
        a = cp.ascontiguousarray(a)
        out = cp.empty_like(a)
        n = a.size
        if n == 0:
            return out
        k = get_kernel(_SOURCE, f"gpugrad_{op}_{direction}", a.dtype, a.device.id)
        grid = (elementwise_grid(n, a.itemsize),)
        if direction == "fwd":
            k(grid, (256,), (a, out, np.int64(n), np.float64(p0), np.float64(p1)))
        else:
            s = cp.ascontiguousarray(s)
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
