"""RAdam (rectified Adam, Liu et al. 2019), PyTorch semantics."""
from __future__ import annotations

import math

from ._composite import check_betas, check_flags, stepped
from .optimizer import Optimizer

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """RAdam: Adam's moments; while the variance's degrees of freedom ``rho_t <= 5`` the step is
    ``p -= lr * m / (1 - b1^t)`` (SGD with momentum), after that Adam's step scaled by the rectification
    ``sqrt((rho_t-4)(rho_t-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho_t))``.

    ``weight_decay`` is L2, or with ``decoupled_weight_decay=True`` multiplies ``p`` by ``1 - lr * wd``.
    ``master_weights=True`` (a gpugrad extension) keeps a float32 master copy and float32 state for
    float16/bfloat16 parameters; see :mod:`gpugrad.optim.optimizer`.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False, master_weights=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
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
            decoupled = bool(group["decoupled_weight_decay"])
            for p, state, w, g, o in stepped(self, group, lambda p: dict(exp_avg=self._zeros(p), exp_avg_sq=self._zeros(p))):
                t = state["step"]
                if decoupled and wd != 0:
                    w[...] = o.mul(w, 1 - lr * wd)
                g = o.grad(g, w, group["maximize"], 0.0 if decoupled else wd)
                m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
                m[...] = o.lerp(m, g, 1 - beta1)
                v[...] = o.addcmul(o.mul(v, beta2), g, g, 1 - beta2)
                bc2 = 1 - beta2 ** t
                upd = o.mul(o.div(m, 1 - beta1 ** t), lr)
                rho_inf = 2 / (1 - beta2) - 1
                rho_t = rho_inf - 2 * t * (beta2 ** t) / bc2
                if rho_t > 5.0:
                    rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                    upd = o.mul(o.mul(upd, o.rdiv(bc2 ** 0.5, o.add(o.sqrt(v), eps))), rect)
                w[...] = o.add(w, upd, -1.0)
        return loss
