"""Adamax (Adam with the infinity norm), PyTorch semantics."""
from __future__ import annotations

from ._composite import begin, check_betas, check_flags, commit, stepped
from .optimizer import Optimizer

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Adamax: ``m = lerp(m, g, 1-b1)``, ``u = max(b2 u, |g| + eps)``, ``p -= lr / (1 - b1^t) * m / u``;
    ``weight_decay`` adds ``weight_decay * p`` to the gradient."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        check_betas(group)
        check_flags(group)

    def step(self, closure=None):
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = (float(b) for b in group["betas"])
            lr, eps, wd = (float(group[k]) for k in ("lr", "eps", "weight_decay"))
            for p, state in stepped(self, group, lambda p: dict(exp_avg=self._zeros(p), exp_inf=self._zeros(p))):
                g, w = begin(p, group["maximize"], wd)
                m, u = state["exp_avg"]._data, state["exp_inf"]._data
                xp = p.device.xp
                m += (1 - beta1) * (g - m)
                u *= beta2
                xp.maximum(u, xp.abs(g) + eps, out=u)
                w -= (lr / (1 - beta1 ** state["step"])) * m / u
                commit(p, w)
        return loss
