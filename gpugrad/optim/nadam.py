"""NAdam (Adam with Nesterov momentum, Dozat 2016), PyTorch semantics."""
from __future__ import annotations

from ._composite import begin, check_betas, check_flags, commit, stepped
from .optimizer import Optimizer, _check_nonneg

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """NAdam: ``mu_t = b1 (1 - 0.5 * 0.96^(t * momentum_decay))``, ``m = lerp(m, g, 1-b1)``,
    ``v = b2 v + (1-b2) g^2``, ``denom = sqrt(v / (1 - b2^t)) + eps``,
    ``p -= lr (1-mu_t) / (1 - prod mu) * g / denom + lr mu_{t+1} / (1 - prod mu * mu_{t+1}) * m / denom``.

    ``weight_decay`` is L2 (added to the gradient), or with ``decoupled_weight_decay=True`` multiplies
    ``p`` by ``1 - lr * weight_decay`` first (NAdamW).
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

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
            for p, state in stepped(self, group, lambda p: dict(mu_product=1.0, exp_avg=self._zeros(p), exp_avg_sq=self._zeros(p))):
                t = state["step"]
                g, w = begin(p, group["maximize"], 0.0 if decoupled else wd)
                if decoupled and wd != 0:
                    w *= 1 - lr * wd
                mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * md))
                mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * md))
                state["mu_product"] = mu_product = float(state["mu_product"]) * mu
                m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
                m += (1 - beta1) * (g - m)
                v *= beta2
                v += (1 - beta2) * g * g
                denom = p.device.xp.sqrt(v / (1 - beta2 ** t)) + eps
                w -= (lr * (1.0 - mu) / (1.0 - mu_product)) * g / denom
                w -= (lr * mu_next / (1.0 - mu_product * mu_next)) * m / denom
                commit(p, w)
        return loss
