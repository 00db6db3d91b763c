"""Fused optimizer updates on arrays: one function per optimizer, one signature for CPU and GPU.

Each ``<opt>_step`` updates ``param`` and the state arrays IN PLACE for one step:
CuPy arrays launch ``gpugrad_<opt>_step<T>`` from ``kernels/optim.cu`` (one pass that reads and
writes parameter, gradient and state once); NumPy arrays run the fallback below, which follows the
same per-element formulas (see the comments in ``kernels/optim.cu``) with at most two temporaries.

Dtypes: float32 and float64 parameters keep state in their own dtype; float16 parameters keep
float32 state (:func:`state_dtype`) and are updated in float32, rounded once when stored. (The optimizers
call these for float32/float64 parameters and float32 master copies; float16/bfloat16 parameters without
master weights take PyTorch's per-op sequence in :mod:`gpugrad.optim`.)
Scalars derived from the step count (bias corrections, decayed lr) and ``1 - x`` coefficients are
computed here in double and handed to both paths identically (:func:`_adam_scalars`, ...).
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import xp_of
from ._common import FLOATS, FusedOp, compute_dtype, table
from . import cuda

__all__ = ["ROWS", "adagrad_clr", "adagrad_step", "adam_step", "rmsprop_step", "sgd_step", "state_dtype"]

_SOURCE = "optim.cu"


def state_dtype(param_dtype):
    """dtype of optimizer state for a parameter of ``param_dtype`` (float32 for float16)."""
    r = _STATE_DT.get(param_dtype)
    if r is not None:
        return r
    dt = np.dtype(param_dtype)
    if dt not in FLOATS:
        raise TypeError(f"optimizers update floating-point parameters (float16/32/64), got dtype {dt}")
    return compute_dtype(dt)


_STATE_DT = {d: compute_dtype(d) for d in FLOATS}  # NOTE: the common answers without np.dtype() parsing


# -- argument checks shared by both paths ----------------------------------------------------------

def _check(param, grad, states):
    """Validate shapes/dtypes/devices; return the array module."""
    sdt = state_dtype(param.dtype)
    xp = xp_of(param)
    if grad.shape != param.shape:
        raise ValueError(f"gradient shape {tuple(grad.shape)} does not match parameter shape {tuple(param.shape)}")
    if xp_of(grad) is not xp:
        raise ValueError("parameter and gradient are on different devices")
    for name, s in states:
        if s is None:
            continue
        if s.shape != param.shape:
            raise ValueError(f"state '{name}' has shape {tuple(s.shape)} but the parameter has shape {tuple(param.shape)}")
        if s.dtype != sdt:
            raise TypeError(f"state '{name}' has dtype {s.dtype}, expected {sdt} for a {param.dtype} parameter")
        if xp_of(s) is not xp:
            raise ValueError(f"state '{name}' is on a different device than the parameter")
    return xp


def _require(name, arr, flag):
    if flag and arr is None:
        raise ValueError(f"'{name}' array is required for this configuration")


# -- NumPy helpers ---------------------------------------------------------------------------------

def _np_work(param, grad):
    """(p, g) in the math dtype: p is param itself, or a float32 working copy for float16."""
    sdt = state_dtype(param.dtype)
    p = param if param.dtype == sdt else param.astype(sdt)
    if grad.dtype != param.dtype:
        grad = grad.astype(param.dtype)  # NOTE: as the CUDA kernels, which read the gradient in the parameter's dtype
    g = grad if grad.dtype == sdt else grad.astype(sdt)
    return p, g


def _new(p):
    # NOTE: temporaries are allocated explicitly and filled with out=: ufuncs on 0-d inputs return
    #       NumPy scalars otherwise, which cannot be updated in place.
    return np.empty(p.shape, p.dtype)


def _np_effective_grad(p, g, weight_decay, maximize):
    """(maximize ? -g : g) + weight_decay * p, as one new array, or g itself when nothing applies."""
    if weight_decay != 0.0:
        t = np.multiply(p, weight_decay, out=_new(p))
        (np.subtract if maximize else np.add)(t, g, out=t)
        return t
    return np.negative(g, out=_new(p)) if maximize else g


def _np_finish(param, p):
    if p is not param:
        param[...] = p  # NOTE: float16 parameters: one rounding of the float32 result


# -- SGD -------------------------------------------------------------------------------------------

def sgd_step(param, grad, momentum_buffer=None, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, maximize=False, first_step=False):
    """One SGD step (PyTorch semantics) in place.

    ``momentum_buffer`` is required when ``momentum != 0``; pass ``first_step=True`` on the step that
    initializes it (the buffer is then set to the gradient, without dampening).
    """
    xp = _check(param, grad, [("momentum_buffer", momentum_buffer)])
    has_mom = momentum != 0.0
    _require("momentum_buffer", momentum_buffer, has_mom)
    lr, momentum, weight_decay = float(lr), float(momentum), float(weight_decay)
    omd = 1.0 - float(dampening)
    if xp is not np:
        cuda.update_launch(_SOURCE, "gpugrad_sgd_step", param, grad, [momentum_buffer if has_mom else None],
                (lr, momentum, omd, weight_decay), (has_mom, first_step, nesterov, maximize))
        return
    p, g = _np_work(param, grad)
    d = _np_effective_grad(p, g, weight_decay, maximize)
    t = None  # the one scratch buffer
    if has_mom:
        b = momentum_buffer
        if first_step:
            b[...] = d
        else:
            b *= momentum
            if omd == 1.0:
                b += d
            else:
                t = np.multiply(d, omd, out=_new(p))
                b += t
        if nesterov:
            t = np.multiply(b, momentum, out=_new(p) if t is None else t)
            t += d
            d = t
        else:
            d = b
    if d is grad or d is momentum_buffer:
        d = np.multiply(d, lr, out=_new(p) if t is None else t)
    else:
        d *= lr  # d is ours (a temporary, or the float32 copy of a float16 gradient)
    p -= d
    _np_finish(param, p)


# -- Adam / AdamW ----------------------------------------------------------------------------------

def _adam_scalars(step, lr, beta1, beta2, weight_decay, decoupled):
    """Host-side (double) per-step scalars shared by kernel and fallback."""
    if step < 1:
        raise ValueError(f"Adam step count starts at 1, got {step}")
    bc1 = 1.0 - beta1 ** step
    bc2 = 1.0 - beta2 ** step
    param_scale = 1.0 - lr * weight_decay if decoupled else 1.0
    l2 = 0.0 if decoupled else weight_decay
    return dict(param_scale=param_scale, l2=l2, beta1=beta1, omb1=1.0 - beta1, beta2=beta2, omb2=1.0 - beta2,
                step_size=lr / bc1, bc2_sqrt=math.sqrt(bc2))


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr, beta1, beta2, eps,
              weight_decay=0.0, decoupled_weight_decay=False, amsgrad=False, maximize=False):
    """One Adam step (AdamW with ``decoupled_weight_decay=True``), PyTorch semantics, in place.

    ``step`` is the 1-based step count of this update (used for the bias corrections).
    ``max_exp_avg_sq`` is required when ``amsgrad``.
    """
    xp = _check(param, grad, [("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq), ("max_exp_avg_sq", max_exp_avg_sq)])
    _require("max_exp_avg_sq", max_exp_avg_sq, amsgrad)
    c = _adam_scalars(int(step), float(lr), float(beta1), float(beta2), float(weight_decay), decoupled_weight_decay)
    eps = float(eps)
    if xp is not np:
        cuda.update_launch(_SOURCE, "gpugrad_adam_step", param, grad, [exp_avg, exp_avg_sq, max_exp_avg_sq if amsgrad else None],
                (c["param_scale"], c["l2"], c["beta1"], c["omb1"], c["beta2"], c["omb2"], c["step_size"],
                 c["bc2_sqrt"], eps), (amsgrad, maximize))
        return
    p, g = _np_work(param, grad)
    g = _np_effective_grad(p, g, c["l2"], maximize)
    if c["param_scale"] != 1.0:
        p *= c["param_scale"]
    t = np.multiply(g, c["omb1"], out=_new(p))
    exp_avg *= c["beta1"]
    exp_avg += t
    np.multiply(g, g, out=t)
    t *= c["omb2"]
    exp_avg_sq *= c["beta2"]
    exp_avg_sq += t
    vhat = exp_avg_sq
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        vhat = max_exp_avg_sq
    np.sqrt(vhat, out=t)
    t /= c["bc2_sqrt"]
    t += eps                       # t = denom
    np.divide(exp_avg, t, out=t)
    t *= c["step_size"]
    p -= t
    _np_finish(param, p)


# -- RMSprop ---------------------------------------------------------------------------------------

def rmsprop_step(param, grad, square_avg, grad_avg=None, momentum_buffer=None, *, lr, alpha, eps,
                 weight_decay=0.0, momentum=0.0, centered=False, maximize=False):
    """One RMSprop step (PyTorch semantics) in place.

    ``grad_avg`` is required when ``centered``; ``momentum_buffer`` when ``momentum > 0``.
    """
    xp = _check(param, grad, [("square_avg", square_avg), ("grad_avg", grad_avg),
                              ("momentum_buffer", momentum_buffer)])
    has_mom = momentum > 0.0
    _require("grad_avg", grad_avg, centered)
    _require("momentum_buffer", momentum_buffer, has_mom)
    lr, alpha, eps, weight_decay, momentum = float(lr), float(alpha), float(eps), float(weight_decay), float(momentum)
    oma = 1.0 - alpha
    if xp is not np:
        cuda.update_launch(_SOURCE, "gpugrad_rmsprop_step", param, grad,
                [square_avg, grad_avg if centered else None, momentum_buffer if has_mom else None],
                (lr, alpha, oma, eps, weight_decay, momentum), (centered, has_mom, maximize))
        return
    p, g = _np_work(param, grad)
    g = _np_effective_grad(p, g, weight_decay, maximize)
    t = np.multiply(g, g, out=_new(p))
    t *= oma
    square_avg *= alpha
    square_avg += t
    if centered:
        np.multiply(g, oma, out=t)
        grad_avg *= alpha
        grad_avg += t
        np.multiply(grad_avg, grad_avg, out=t)
        np.subtract(square_avg, t, out=t)
        np.maximum(t, 0.0, out=t)  # NOTE: clamp rounding negatives, as the kernel does (NaN propagates)
        np.sqrt(t, out=t)
    else:
        np.sqrt(square_avg, out=t)
    t += eps                       # t = avg
    np.divide(g, t, out=t)
    if has_mom:
        momentum_buffer *= momentum
        momentum_buffer += t
        np.multiply(momentum_buffer, lr, out=t)
    else:
        t *= lr
    p -= t
    _np_finish(param, p)


# -- Adagrad ---------------------------------------------------------------------------------------

def adagrad_clr(step, lr, lr_decay):
    """Adagrad's decayed learning rate lr / (1 + (step - 1) * lr_decay), in double."""
    if step < 1:
        raise ValueError(f"Adagrad step count starts at 1, got {step}")
    return lr / (1.0 + (step - 1) * lr_decay)


def adagrad_step(param, grad, state_sum, *, step, lr, eps, lr_decay=0.0, weight_decay=0.0, maximize=False):
    """One Adagrad step (PyTorch semantics) in place; ``step`` is the 1-based step count."""
    xp = _check(param, grad, [("sum", state_sum)])
    clr = adagrad_clr(int(step), float(lr), float(lr_decay))
    eps, weight_decay = float(eps), float(weight_decay)
    if xp is not np:
        cuda.update_launch(_SOURCE, "gpugrad_adagrad_step", param, grad, [state_sum], (clr, eps, weight_decay), (maximize,))
        return
    p, g = _np_work(param, grad)
    g = _np_effective_grad(p, g, weight_decay, maximize)
    t = np.multiply(g, g, out=_new(p))
    state_sum += t
    np.sqrt(state_sum, out=t)
    t += eps
    np.divide(g, t, out=t)
    t *= clr
    p -= t
    _np_finish(param, p)


# -- the table: one in-place update kernel per optimizer (no backward, no composite) ---------------------
ROWS = table([FusedOp(n, _SOURCE, "update", "state", f, None, None, kernels=[f"gpugrad_{n}_step"])
              for n, f in (("sgd", sgd_step), ("adam", adam_step), ("rmsprop", rmsprop_step), ("adagrad", adagrad_step))])

