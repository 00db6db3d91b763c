"""Adamax (Adam with the infinity norm), PyTorch semantics."""
from __future__ import annotations

from ._composite import check_betas, check_flags, stepped
from .optimizer import Optimizer

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Adamax: ``m = lerp(m, g, 1-b1)``, ``u = max(b2 u, |g| + eps)``, ``p -= lr / (1 - b1^t) * m / u``;
    ``weight_decay`` adds ``weight_decay * p`` to the gradient.
    ``master_weights=True`` (a gpugrad extension) keeps a float32 master copy and float32 state for
    float16/bfloat16 parameters; see :mod:`gpugrad.optim.optimizer`."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False, master_weights=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults, master_weights)

    def _check_group(self, group):
        super()._check_group(group)
        check_betas(group)
        check_flags(group)

    def step(self, closure=None):
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = (float(b) for b in group["betas"])
            lr, eps, wd = (float(group[k]) for k in ("lr", "eps", "weight_decay"))
            for p, state, w, g, o in stepped(self, group, lambda p: dict(exp_avg=self._zeros(p), exp_inf=self._zeros(p))):
                # NOTE: PyTorch's op sequence (_single_tensor_adamax), here and in the other composite optimizers
                g = o.grad(g, w, group["maximize"], wd)
                m, u = state["exp_avg"]._data, state["exp_inf"]._data
                m[...] = o.lerp(m, g, 1 - beta1)
                u[...] = o.maximum(o.mul(u, beta2), o.add(abs(g), eps))
                w[...] = o.addcdiv(w, m, u, -(lr / (1 - beta1 ** state["step"])))
        return loss
