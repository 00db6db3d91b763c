"""RMSprop (optionally centered, with momentum), PyTorch semantics."""
from __future__ import annotations

from ..fused import optim as K
from ._composite import stepped
from .optimizer import Optimizer, _check_flags_unsupported, _check_nonneg, _check_unit

__all__ = ["RMSprop"]


def _torch_rmsprop(o, w, g, v, gavg, buf, *, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    """PyTorch's op sequence (``_single_tensor_rmsprop``), for float16/bfloat16 parameters."""
    g = o.grad(g, w, maximize, weight_decay)
    v[...] = o.addcmul(o.mul(v, alpha), g, g, 1 - alpha)
    if centered:
        gavg[...] = o.lerp(gavg, g, 1 - alpha)
        avg = o.add(o.sqrt(o.addcmul(v, gavg, gavg, -1)), eps)  # NOTE: no clamp: a negative difference is NaN
    else:
        avg = o.add(o.sqrt(v), eps)
    if momentum > 0:
        buf[...] = o.addcdiv(o.mul(buf, momentum), g, avg)
        w[...] = o.add(w, buf, -lr)
    else:
        w[...] = o.addcdiv(w, g, avg, -lr)


class RMSprop(Optimizer):
    """RMSprop: ``v = alpha v + (1-alpha) g^2``; centered subtracts ``gavg^2`` (``gavg`` an EMA of g);
    ``p -= lr * g / (sqrt(v) + eps)``, or through a momentum buffer ``b = momentum b + g / (...)``.
    ``master_weights=True`` (a gpugrad extension) keeps a float32 master copy and float32 state for
    float16/bfloat16 parameters; see :mod:`gpugrad.optim.optimizer`."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False, *, master_weights=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, capturable=capturable, foreach=foreach, maximize=maximize,
                        differentiable=differentiable)
        super().__init__(params, defaults, master_weights)

    def _check_group(self, group):
        super()._check_group(group)
        _check_nonneg(group, "eps", "epsilon")
        _check_nonneg(group, "momentum")
        _check_nonneg(group, "weight_decay")
        _check_unit(group, "alpha", closed=True)
        _check_flags_unsupported(group, differentiable="optimizer steps are not part of the autograd graph",
                                 capturable="CUDA-graph capture of optimizer steps is not implemented")

    def step(self, closure=None):
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            centered = bool(group["centered"])
            has_mom = float(group["momentum"]) > 0
            kw = dict(lr=float(group["lr"]), alpha=float(group["alpha"]), eps=float(group["eps"]),
                      weight_decay=float(group["weight_decay"]), momentum=float(group["momentum"]),
                      centered=centered, maximize=bool(group["maximize"]))
            for p, state, w, g, o in stepped(self, group, lambda p: dict(square_avg=self._zeros(p))):
                if has_mom and "momentum_buffer" not in state:
                    state["momentum_buffer"] = self._zeros(p)
                if centered and "grad_avg" not in state:
                    state["grad_avg"] = self._zeros(p)
                args = (w, g, state["square_avg"]._data, state["grad_avg"]._data if centered else None,
                        state["momentum_buffer"]._data if has_mom else None)
                _torch_rmsprop(o, *args, **kw) if o.lowp else K.rmsprop_step(*args, **kw)
        return loss
