"""Adagrad, PyTorch semantics (dense gradients)."""
from __future__ import annotations

from ..fused import optim as K
from ._composite import stepped
from .optimizer import Optimizer, _check_flags_unsupported, _check_nonneg

__all__ = ["Adagrad"]


def _torch_adagrad(o, w, g, ssum, *, step, lr, eps, lr_decay, weight_decay, maximize):
    """PyTorch's op sequence (``_single_tensor_adagrad``), for float16/bfloat16 parameters."""
    g = o.grad(g, w, maximize, weight_decay)
    ssum[...] = o.addcmul(ssum, g, g, 1)
    w[...] = o.addcdiv(w, g, o.add(o.sqrt(ssum), eps), -K.adagrad_clr(step, lr, lr_decay))


class Adagrad(Optimizer):
    """Adagrad: ``sum += g^2``; ``p -= lr / (1 + (t-1) lr_decay) * g / (sqrt(sum) + eps)``; ``sum`` starts
    at ``initial_accumulator_value``. ``master_weights=True`` (a gpugrad extension) keeps a float32 master
    copy and float32 state for float16/bfloat16 parameters; see :mod:`gpugrad.optim.optimizer`."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None, master_weights=False):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults, master_weights)
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
                if p.grad is not None and not self.state.get(p):
                    self._init_state(p, group)  # groups added after __init__
            kw = dict(lr=float(group["lr"]), eps=float(group["eps"]), lr_decay=float(group["lr_decay"]),
                      weight_decay=float(group["weight_decay"]), maximize=bool(group["maximize"]))
            for p, state, w, g, o in stepped(self, group):
                state["step"] += 1
                args = (w, g, state["sum"]._data)
                kw["step"] = state["step"]
                _torch_adagrad(o, *args, **kw) if o.lowp else K.adagrad_step(*args, **kw)
        return loss
