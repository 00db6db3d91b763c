"""Fused losses: one Primitive for the family, parametrised by the loss's name.

Forward and the gradient w.r.t. the input are the kernels of :mod:`gpugrad.fused.loss`.
cross_entropy keeps only the per-sample log-sum-exp between forward and backward (no
batch x classes intermediate). Targets get gradients where PyTorch gives them (float targets of
the pointwise losses, binary_cross_entropy_with_logits and probability targets of cross_entropy),
from closed forms here; weights are constants. Under ``create_graph=True`` the engine
differentiates the composite of each loss, written with core Tensor ops (max-shifted
log_softmax, log1p(exp(-|x|)) softplus).
"""
from __future__ import annotations

import warnings

import numpy as np

from .._dtypes import is_float as _isf
from .. import _promotion as _promo
from .. import tensor as _tensor
from ..autograd.primitive import Primitive
from ..autograd.grad_mode import state as _grad_state
from ..fused import loss as _K

__all__ = ["cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "mse_loss", "l1_loss", "huber_loss",
           "smooth_l1_loss"]

class Loss(Primitive):
    """Loss ``op`` (a row of :data:`gpugrad.fused.loss.ROWS`, set on the per-row subclasses) of input x against
    target t; keyword params are the kernels' (weight, reduction, ...)."""
    lowp = "native"  # NOTE: the fused kernels and fallbacks read float16/bfloat16 storage, compute in float32
    op = None

    def forward(self, x, t, **params):
        self.kp = params
        out = self.op.fwd(x, t, **params)
        if isinstance(out, tuple):  # NOTE: cross_entropy also returns what its backward reads (the lse)
            out, *self.extra = out
        else:
            self.extra = ()
        return out

    def backward(self, g):
        op, kp = self.op, self.kp
        x, t = self.inputs[0]._data, self.inputs[1]._data
        nx, nt = self.needs_input_grad
        gx = op.bwd(g, x, t, *self.extra, **kp) if nx or (nt and op.target_from_gx) else None
        gt = op.target_grad(g, x, t, gx, *self.extra, **kp) if nt and op.target_grad else None
        return gx if nx else None, gt


_NODES = {name: type("".join(w.capitalize() for w in name.split("_")), (Loss,),
                     {"op": op, "composite": staticmethod(op.composite)}) for name, op in _K.ROWS.items()}


# -- public functions (torch.nn.functional names, arguments, defaults) ---------------------------------------
def _reduction(size_average, reduce, reduction):
    """PyTorch's legacy size_average/reduce arguments mapped onto ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    warnings.warn("size_average and reduce args will be deprecated, please use reduction= instead.", stacklevel=3)
    if reduce is not None and not reduce:
        return "none"
    return "sum" if size_average is not None and not size_average else "mean"


def _check_tensor(what, fname, a):
    if not isinstance(a, _tensor.Tensor):
        from .._errors import not_a_tensor  # noqa: PLC0415
        raise not_a_tensor(a, f"{fname}()", what)


def _const(fname, what, w):
    """An optional weight Tensor as a constant array (PyTorch has no gradient for loss weights either)."""
    if w is None:
        return None
    _check_tensor(what, fname, w)
    if w.requires_grad and _grad_state.grad_enabled:
        raise NotImplementedError(f"{fname}: gradients with respect to {what} are not supported; pass "
                                  f"{what}.detach()")
    return w._data


def _pair(fname, input, target, broadcast, stacklevel=3):  # noqa: A002
    _check_tensor("input", fname, input)
    _check_tensor("target", fname, target)
    if input.shape != target.shape:
        try:
            shape = np.broadcast_shapes(input.shape, target.shape)
        except ValueError:
            shape = None
        if not broadcast or shape is None:
            raise ValueError(f"{fname}: target shape {tuple(target.shape)} does not match input shape "
                             f"{tuple(input.shape)}" + ("" if not broadcast else " and cannot be broadcast to it"))
        # NOTE: PyTorch broadcasts the pointwise losses, with this warning
        warnings.warn(f"{fname}: using a target size {tuple(target.shape)} that is different to the input size "
                      f"{tuple(input.shape)}; this will likely lead to incorrect results due to broadcasting",
                      stacklevel=stacklevel)
        input, target = input.expand(shape), target.expand(shape)
    return input, target


# -- dtypes, as PyTorch: pointwise losses promote input and target (huber keeps the input's dtype,
# binary_cross_entropy_with_logits the target's); class-index losses take Long/Byte targets and a weight of
# the input's dtype; probability targets promote with the input and the weight.
def _promoted(fname, *operands):
    dt = _tensor._result_type(*operands)
    if not _isf(dt):
        raise NotImplementedError(f"{fname}: not implemented for '{_promo.short_name(dt)}' tensors (as PyTorch); "
                                  "convert them with .float()")
    return dt


def _cast_out(fname, dt, out_dtype):
    if not _promo.can_cast(dt, out_dtype):
        raise RuntimeError(f"result type {_promo.short_name(dt)} can't be cast to the desired output type "
                           f"{_promo.short_name(out_dtype)}")


def _check_index_target(fname, input, target, weight):  # noqa: A002
    n = _promo.short_name
    if target.dtype not in (np.int64, np.uint8):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {n(target.dtype)}")
    if weight is not None and weight.dtype != input.dtype:
        raise RuntimeError(f"expected scalar type {n(input.dtype)} but found {n(weight.dtype)}")


class _FailsInBackward(Primitive):
    """Identity whose backward raises ``msg``: PyTorch computes these forwards but refuses their gradients."""
    saves = ()

    def forward(self, x, msg):
        self.msg = msg
        return x

    def backward(self, g):
        raise RuntimeError(self.msg)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,  # noqa: A002
                  reduction="mean", label_smoothing=0.0):
    """Cross entropy of logits ``input`` against class indices or class probabilities ``target``.

    Layouts as PyTorch: logits (C,) with a 0-d target, (N, C) with (N,), (N, C, d1, ...) with
    (N, d1, ...); a floating target of the logits' shape holds class probabilities.
    """
    _check_tensor("input", "cross_entropy", input)
    _check_tensor("target", "cross_entropy", target)
    if _isf(target.dtype) and target.shape != input.shape and input.ndim >= 1:
        cdim = 1 if input.ndim >= 2 else 0
        if target.shape == input.shape[:cdim] + input.shape[cdim + 1:]:
            raise RuntimeError(f"expected target dtype to be Long or Byte, but got {_promo.short_name(target.dtype)}"
                               f" (cross_entropy: a target of shape {tuple(target.shape)} looks like class indices; "
                               f"use target.long(); class probabilities must have the input's shape "
                               f"{tuple(input.shape)})")
    if _isf(target.dtype):
        if ignore_index != -100:  # NOTE: PyTorch refuses it (it would otherwise be silently unused)
            raise RuntimeError("ignore_index is not supported for floating point target")
        dt = _promoted("cross_entropy", input, target, *([] if weight is None else [weight]))
        input, target = input.type(dt), target.type(dt)  # noqa: A001
    elif target.shape == input.shape:
        raise RuntimeError(f"Expected floating point type for target with class probabilities, got "
                           f"{_promo.short_name(target.dtype)}")
    else:
        _check_index_target("cross_entropy", input, target, weight)
    return _NODES["cross_entropy"].apply(input, target, weight=_const("cross_entropy", "weight", weight),
                      ignore_index=int(ignore_index), label_smoothing=float(label_smoothing),
                      reduction=_reduction(size_average, reduce, reduction))


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,  # noqa: A002
             reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C, ...) at class indices ``target``."""
    _check_tensor("input", "nll_loss", input)
    _check_tensor("target", "nll_loss", target)
    _check_index_target("nll_loss", input, target, weight)
    return _NODES["nll_loss"].apply(input, target, weight=_const("nll_loss", "weight", weight),
                      ignore_index=int(ignore_index), reduction=_reduction(size_average, reduce, reduction))


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,  # noqa: A002
                                     reduction="mean", pos_weight=None):
    """Sigmoid + binary cross entropy in one stable pass: w ((1 - t) x + (1 + (pw - 1) t) softplus(-x))."""
    fname = "binary_cross_entropy_with_logits"
    input, target = _pair(fname, input, target, broadcast=False)  # noqa: A001
    if not _isf(input.dtype):
        raise NotImplementedError(f"{fname}: not implemented for '{_promo.short_name(input.dtype)}' input (as "
                                  "PyTorch's log_sigmoid); convert it with .float()")
    if target.dtype == np.bool_:
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
                           "`logical_xor()` operator instead.")
    # NOTE: PyTorch's loss is (1 - target).mul_(input)...: computed in the promoted dtype, stored in the target's
    dt = _promoted(fname, input, target)
    _cast_out(fname, dt, target.dtype)
    out = _NODES["bce_with_logits"].apply(input.type(dt), target.type(dt),
                     weight=_const(fname, "weight", weight), pos_weight=_const(fname, "pos_weight", pos_weight),
                     reduction=_reduction(size_average, reduce, reduction))
    return out.type(target.dtype)


def _pointwise(fname, input, target):  # noqa: A002
    """Broadcast (with PyTorch's warning) and promote to result_type(input, target)."""
    input, target = _pair(fname, input, target, broadcast=True, stacklevel=4)  # noqa: A001
    dt = _promoted(fname, input, target)
    return input.type(dt), target.type(dt)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):  # noqa: A002
    input, target = _pointwise("mse_loss", input, target)  # noqa: A001
    return _NODES["mse_loss"].apply(input, target, reduction=_reduction(size_average, reduce, reduction))


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):  # noqa: A002
    input, target = _pointwise("l1_loss", input, target)  # noqa: A001
    return _NODES["l1_loss"].apply(input, target, reduction=_reduction(size_average, reduce, reduction))


def huber_loss(input, target, reduction="mean", delta=1.0):  # noqa: A002
    in_dtype = input.dtype if isinstance(input, _tensor.Tensor) else None
    x, t = _pointwise("huber_loss", input, target)
    _cast_out("huber_loss", x.dtype, in_dtype)
    out = _NODES["huber_loss"].apply(x, t, reduction=reduction, delta=float(delta))
    if x.dtype == in_dtype and t.dtype == target.dtype:
        return out
    # NOTE: PyTorch returns the input's dtype for mixed dtypes, and its backward then fails with this error
    out = out.type(in_dtype)
    msg = f"Found dtype {_promo.short_name(target.dtype)} but expected {_promo.short_name(in_dtype)}"
    return _FailsInBackward.apply(out, msg=msg) if out.requires_grad else out


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):  # noqa: A002
    input, target = _pointwise("smooth_l1_loss", input, target)  # noqa: A001
    return _NODES["smooth_l1_loss"].apply(input, target, reduction=_reduction(size_average, reduce, reduction),
                      beta=float(beta))
