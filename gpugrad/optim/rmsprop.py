"""RMSprop (optionally centered, with momentum), PyTorch semantics."""
from __future__ import annotations

from ..fused import optim as K
from .optimizer import Optimizer, _check_flags_unsupported, _check_nonneg, _check_unit
from ..tensor import _bump

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop: ``v = alpha v + (1-alpha) g^2``; centered subtracts ``gavg^2`` (``gavg`` an EMA of g);
    ``p -= lr * g / (sqrt(v) + eps)``, or through a momentum buffer ``b = momentum b + g / (...)``."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, capturable=capturable, foreach=foreach, maximize=maximize,
                        differentiable=differentiable)
        super().__init__(params, defaults)

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
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["square_avg"] = self._zeros(p)
                if has_mom and "momentum_buffer" not in state:
                    state["momentum_buffer"] = self._zeros(p)
                if centered and "grad_avg" not in state:
                    state["grad_avg"] = self._zeros(p)
                state["step"] += 1
                K.rmsprop_step(p._data, p.grad._data, state["square_avg"]._data,
                               state["grad_avg"]._data if centered else None,
                               state["momentum_buffer"]._data if has_mom else None,
                               lr=group["lr"], alpha=group["alpha"], eps=group["eps"],
                               weight_decay=group["weight_decay"], momentum=group["momentum"], centered=centered,
                               maximize=bool(group["maximize"]))
                _bump(p)  # NOTE: an in-place write: tensors saved by a graph see it, as in PyTorch
        return loss
