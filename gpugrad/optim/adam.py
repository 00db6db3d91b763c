"""Adam and AdamW (decoupled weight decay), with AMSGrad, PyTorch semantics."""
from __future__ import annotations

from ..fused import optim as K
from .optimizer import Optimizer, _check_flags_unsupported, _check_nonneg, _is_number
from ..tensor import _bump

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam: ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2`` (``vmax = max(vmax, v)`` with amsgrad),
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.

    ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2), or, with
    ``decoupled_weight_decay=True`` (= :class:`AdamW`), multiplies ``p`` by ``1 - lr * weight_decay``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        _check_nonneg(group, "eps", "epsilon")
        _check_nonneg(group, "weight_decay")
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for i, b in enumerate(betas):
            if not (_is_number(b) and 0.0 <= float(b) < 1.0):
                raise ValueError(f"Invalid beta parameter at index {i}: {b!r} (must be in [0, 1))")
        _check_flags_unsupported(group, differentiable="optimizer steps are not part of the autograd graph",
                                 capturable="CUDA-graph capture of optimizer steps is not implemented")

    def step(self, closure=None):
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            amsgrad = bool(group["amsgrad"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = self._zeros(p)
                    state["exp_avg_sq"] = self._zeros(p)
                if amsgrad and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = self._zeros(p)
                state["step"] += 1
                K.adam_step(p._data, p.grad._data, state["exp_avg"]._data, state["exp_avg_sq"]._data,
                            state["max_exp_avg_sq"]._data if amsgrad else None, step=state["step"], lr=group["lr"],
                            beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                            decoupled_weight_decay=bool(group["decoupled_weight_decay"]), amsgrad=amsgrad,
                            maximize=bool(group["maximize"]))
                _bump(p)  # NOTE: an in-place write: tensors saved by a graph see it, as in PyTorch
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr * weight_decay`` before the Adam update."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)
