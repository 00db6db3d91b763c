"""RAdam (rectified Adam, Liu et al. 2019), PyTorch semantics."""
from __future__ import annotations

import math

from ._composite import begin, check_betas, check_flags, commit, stepped
from .optimizer import Optimizer

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """RAdam: Adam's moments; while the variance's degrees of freedom ``rho_t <= 5`` the step is
    ``p -= lr * m / (1 - b1^t)`` (SGD with momentum), after that Adam's step scaled by the rectification
    ``sqrt((rho_t-4)(rho_t-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho_t))``.

    ``weight_decay`` is L2, or with ``decoupled_weight_decay=True`` multiplies ``p`` by ``1 - lr * wd``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
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
            decoupled = bool(group["decoupled_weight_decay"])
            for p, state in stepped(self, group, lambda p: dict(exp_avg=self._zeros(p), exp_avg_sq=self._zeros(p))):
                t = state["step"]
                g, w = begin(p, group["maximize"], 0.0 if decoupled else wd)
                if decoupled and wd != 0:
                    w *= 1 - lr * wd
                m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
                m += (1 - beta1) * (g - m)
                v *= beta2
                v += (1 - beta2) * g * g
                bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
                m_hat = m / bc1
                rho_inf = 2 / (1 - beta2) - 1
                rho_t = rho_inf - 2 * t * (beta2 ** t) / bc2
                if rho_t > 5.0:
                    rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                    w -= m_hat * lr * (math.sqrt(bc2) / (p.device.xp.sqrt(v) + eps)) * rect
                else:
                    w -= m_hat * lr
                commit(p, w)
        return loss
