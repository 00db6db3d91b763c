"""NAdam (Adam with Nesterov momentum, Dozat 2016), PyTorch semantics."""
from __future__ import annotations

import numpy as np

from ._composite import check_betas, check_flags, stepped
from .optimizer import Optimizer, _check_nonneg

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """NAdam: ``mu_t = b1 (1 - 0.5 * 0.96^(t * momentum_decay))``, ``m = lerp(m, g, 1-b1)``,
    ``v = b2 v + (1-b2) g^2``, ``denom = sqrt(v / (1 - b2^t)) + eps``,
    ``p -= lr (1-mu_t) / (1 - prod mu) * g / denom + lr mu_{t+1} / (1 - prod mu * mu_{t+1}) * m / denom``.

    ``weight_decay`` is L2 (added to the gradient), or with ``decoupled_weight_decay=True`` multiplies
    ``p`` by ``1 - lr * weight_decay`` first (NAdamW).
    ``master_weights=True`` (a gpugrad extension) keeps a float32 master copy and float32 state for
    float16/bfloat16 parameters; see :mod:`gpugrad.optim.optimizer`.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, master_weights=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults, master_weights)

    def _check_group(self, group):
        super()._check_group(group)
        check_betas(group)
        _check_nonneg(group, "momentum_decay")
        check_flags(group)

    def step(self, closure=None):
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = (float(b) for b in group["betas"])
            lr, eps, wd, md = (float(group[k]) for k in ("lr", "eps", "weight_decay", "momentum_decay"))
            decoupled = bool(group["decoupled_weight_decay"])
            init = lambda p: dict(mu_product=1.0, exp_avg=self._zeros(p), exp_avg_sq=self._zeros(p))  # noqa: E731
            for p, state, w, g, o in stepped(self, group, init):
                t = state["step"]
                if decoupled and wd != 0:
                    w[...] = o.mul(w, 1 - lr * wd)
                g = o.grad(g, w, group["maximize"], 0.0 if decoupled else wd)
                mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * md))
                mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * md))
                # NOTE: PyTorch keeps mu_product in a float32 scalar tensor: rounded after each product
                state["mu_product"] = mu_product = float(np.float32(float(state["mu_product"])) * np.float32(mu))
                m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
                m[...] = o.lerp(m, g, 1 - beta1)
                v[...] = o.addcmul(o.mul(v, beta2), g, g, 1 - beta2)
                denom = o.add(o.sqrt(o.div(v, 1 - beta2 ** t)), eps)
                w[...] = o.addcdiv(w, g, denom, -lr * (1.0 - mu) / (1.0 - mu_product))
                w[...] = o.addcdiv(w, m, denom, (-lr * mu_next) / (1.0 - mu_product * mu_next))
        return loss
