"""Stochastic gradient descent (optionally with momentum / Nesterov), PyTorch semantics."""
from __future__ import annotations

from ..fused import optim as K
from .optimizer import Optimizer, _check_flags_unsupported, _check_nonneg, _num
from ..tensor import _bump

__all__ = ["SGD"]


class SGD(Optimizer):
    """SGD: ``g = grad (+ weight_decay * p)``; with momentum ``b = momentum * b + (1 - dampening) * g``
    (``b = g`` on the first step), ``g = g + momentum * b`` (nesterov) or ``g = b``; ``p -= lr * g``.
    ``maximize=True`` ascends the objective (the gradient is negated before weight decay)."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=differentiable,
                        fused=fused)
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        momentum = _check_nonneg(group, "momentum")
        _check_nonneg(group, "weight_decay")
        dampening = _num(group, "dampening")
        if group["nesterov"] and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening "
                             f"(got momentum={group['momentum']}, dampening={group['dampening']})")
        _check_flags_unsupported(group, differentiable="optimizer steps are not part of the autograd graph")

    def step(self, closure=None):
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            momentum = float(group["momentum"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf, first = None, False
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = self._zeros(p)
                        first = True
                K.sgd_step(p._data, p.grad._data, None if buf is None else buf._data, lr=group["lr"],
                           momentum=momentum, dampening=group["dampening"], weight_decay=group["weight_decay"],
                           nesterov=group["nesterov"], maximize=group["maximize"], first_step=first)
                _bump(p)  # NOTE: an in-place write: tensors saved by a graph see it, as in PyTorch
        return loss
