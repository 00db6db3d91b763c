"""Adagrad, PyTorch semantics (dense gradients)."""
from __future__ import annotations

from ..fused import optim as K
from .optimizer import Optimizer, _check_flags_unsupported, _check_nonneg
from ..tensor import _bump

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad: ``sum += g^2``; ``p -= lr / (1 + (t-1) lr_decay) * g / (sqrt(sum) + eps)``; ``sum`` starts
    at ``initial_accumulator_value``."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        # NOTE: state is created eagerly (as PyTorch does), so state_dict() is complete before step 1
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = 0
        state["sum"] = self._zeros(p, float(group["initial_accumulator_value"]))
        return state

    def _check_group(self, group):
        super()._check_group(group)
        _check_nonneg(group, "lr_decay")
        _check_nonneg(group, "weight_decay")
        _check_nonneg(group, "initial_accumulator_value")
        _check_nonneg(group, "eps", "epsilon")
        _check_flags_unsupported(group, differentiable="optimizer steps are not part of the autograd graph")

    def step(self, closure=None):
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(p) or self._init_state(p, group)  # groups added after __init__
                state["step"] += 1
                K.adagrad_step(p._data, p.grad._data, state["sum"]._data, step=state["step"], lr=group["lr"],
                               eps=group["eps"], lr_decay=group["lr_decay"], weight_decay=group["weight_decay"],
                               maximize=bool(group["maximize"]))
                _bump(p)  # NOTE: an in-place write: tensors saved by a graph see it, as in PyTorch
        return loss
