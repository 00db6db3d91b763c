"""``gg.nn.utils``: gradient clipping (``clip_grad_norm_``, ``clip_grad_value_``, ``get_total_norm``, ...), weight
reparametrizations, fusion and the parametrize/parametrizations/stateless submodules (PyTorch semantics).

The clipping functions work in place on ``p.grad._data`` of each parameter, on whichever device it lives, and
never build a graph. Norms accumulate in at least float32.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import device_of, to_device, xp_of
from ..tensor import Tensor
from . import parametrizations, parametrize, stateless  # noqa: F401  (PyTorch's submodules of nn.utils)
from .weight_hooks import (fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights,
                           remove_spectral_norm, remove_weight_norm, skip_init, spectral_norm, weight_norm)

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters", "get_total_norm",
           "clip_grads_with_norm_", "weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm",
           "fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights", "skip_init",
           "parametrize", "parametrizations", "stateless"]


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad._data for p in parameters if p.grad is not None]


def _vector_norm(a, p):
    """The p-norm of all elements of array ``a`` as a 0-d array (dtype >= float32) on its device."""
    xp = xp_of(a)
    acc = np.result_type(a.dtype, np.float32)
    a = a.astype(acc, copy=False).ravel()
    if a.size == 0:
        return xp.asarray(math.inf if p == -math.inf else 0.0, dtype=acc)
    if p == 2.0:
        return xp.sqrt(xp.dot(a, a))  # NOTE: BLAS dot: no |a| or a**2 temporaries
    if p == math.inf:
        return xp.abs(a).max()
    if p == -math.inf:
        return xp.abs(a).min()
    if p == 0.0:
        return xp.asarray(xp.count_nonzero(a), dtype=acc)
    if p == 1.0:
        return xp.abs(a).sum()
    return (xp.abs(a) ** p).sum() ** (1.0 / p)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale the gradients of ``parameters`` so that their joint ``norm_type``-norm is at most ``max_norm``.

    The norm is taken over all gradients together, as if concatenated into one vector (``inf`` for
    the max-abs norm). Every gradient is multiplied by ``min(max_norm / (total_norm + 1e-6), 1)``.
    Returns the total norm computed BEFORE clipping, as a 0-d Tensor on the first gradient's device.
    ``error_if_nonfinite=True`` raises RuntimeError when that norm is NaN or Inf (otherwise the
    gradients are scaled by the resulting NaN/0 coefficient, as in PyTorch). ``foreach`` is accepted
    for compatibility and ignored.
    """
    grads = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return Tensor(np.asarray(0.0, dtype=np.float32))
    first = grads[0]
    xp, dev = xp_of(first), device_of(first)
    norms = xp.stack([to_device(_vector_norm(g, norm_type), dev) for g in grads])
    # the norm of the per-gradient norms is the norm of the concatenation (L0: counts add up)
    total = norms.sum() if norm_type == 0.0 else _vector_norm(norms, norm_type)
    total = xp.asarray(total)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite "
                           f"({float(total)}), so it cannot be clipped. To disable this error and scale the gradients "
                           "by the non-finite norm anyway, set `error_if_nonfinite=False`")
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    if xp is np and float(coef) == 1.0:
        return Tensor(total)  # NOTE: CPU only: skipping a multiply by 1 is exact and needs no device sync
    with np.errstate(invalid="ignore"):  # NOTE: inf * 0 = NaN is the documented result with a non-finite norm
        for g in grads:
            g *= to_device(coef, device_of(g)).astype(g.dtype)
    return Tensor(total)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element of ``parameters`` into ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_value must be non-negative, got {clip_value}")
    for g in _grads(parameters):
        xp_of(g).clip(g, -clip_value, clip_value, out=g)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The ``norm_type``-norm of all ``tensors`` together (as if concatenated), a 0-d Tensor on the first one's
    device, outside any graph (as PyTorch's). ``foreach`` is accepted for compatibility and ignored."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return Tensor(np.asarray(0.0, dtype=np.float32))
    dev = device_of(tensors[0]._data)
    # NOTE: as PyTorch, each norm (accumulated in >= float32) is rounded to its tensor's dtype, and the norm of the
    #       stacked norms to their common dtype (float16 tensors give a float16 total)
    norms = [to_device(_vector_norm(t._data, norm_type).astype(t.dtype), dev) for t in tensors]
    dt = np.result_type(*norms)
    total = _vector_norm(xp_of(norms[0]).stack([n.astype(dt) for n in norms]), norm_type).astype(dt)
    if error_if_nonfinite and not bool(xp_of(total).isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it "
                           "cannot be clipped. To disable this error and scale the gradients by the non-finite norm "
                           "anyway, set `error_if_nonfinite=False`")
    return Tensor(xp_of(total).asarray(total))


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Multiply the gradients of ``parameters`` by ``min(max_norm / (total_norm + 1e-6), 1)`` in place
    (``total_norm`` e.g. from :func:`get_total_norm` of the gradients)."""
    grads = _grads(parameters)
    if not grads:
        return
    t = total_norm._data if isinstance(total_norm, Tensor) else np.asarray(total_norm)
    coef = xp_of(t).minimum(float(max_norm) / (t + 1e-6), 1.0)
    with np.errstate(invalid="ignore"):  # NOTE: inf * 0 = NaN with a non-finite norm, as PyTorch
        for g in grads:
            g *= to_device(coef, device_of(g)).astype(g.dtype)


def parameters_to_vector(parameters):
    """One 1-D Tensor of all parameters, flattened and concatenated (differentiable, as PyTorch)."""
    from ..tensor import cat  # noqa: PLC0415
    if isinstance(parameters, Tensor):
        raise TypeError(f"expected an iterable of Tensors, but got {type(parameters).__name__}")
    ps = list(parameters)
    dev = None
    for p in ps:
        if dev is None:
            dev = p.device
        elif p.device != dev:
            raise TypeError("Found two parameters on different devices, this is currently not supported.")
    return cat([p.reshape(-1) for p in ps])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-D ``vec`` into ``parameters`` (their ``.data``), in order."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    if isinstance(parameters, Tensor):
        raise TypeError(f"expected an iterable of Tensors, but got {type(parameters).__name__}")
    ps = list(parameters)
    total = sum(p.numel() for p in ps)
    if vec.ndim != 1 or vec.numel() != total:
        raise RuntimeError(f"vector_to_parameters: vec of shape {tuple(vec.shape)} does not hold the {total} "
                           "elements of the parameters")
    i = 0
    for p in ps:
        n = p.numel()
        p._data[...] = vec._data[i:i + n].reshape(p.shape)
        i += n


from . import rnn_utils as rnn  # noqa: E402,F401  (gg.nn.utils.rnn: PackedSequence, pack/pad helpers)
