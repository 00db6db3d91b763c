"""ASGD (averaged SGD, Polyak & Juditsky 1992), PyTorch semantics."""
from __future__ import annotations

import numpy as np

from ._composite import begin, check_flags, commit, stepped
from .optimizer import Optimizer, _check_nonneg

__all__ = ["ASGD"]


class ASGD(Optimizer):
    """ASGD: ``p *= 1 - lambd * eta``, ``p -= eta * g``; the average ``ax`` follows ``p`` (``ax = p`` while
    ``mu == 1``, else ``ax += mu (p - ax)``); then ``eta = lr / (1 + lambd lr t)^alpha`` and
    ``mu = 1 / max(1, t - t0)``. ``weight_decay`` adds ``weight_decay * p`` to the gradient."""

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False):
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        _check_nonneg(group, "weight_decay")
        check_flags(group)

    def step(self, closure=None):
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, lambd, alpha, t0, wd = (float(group[k]) for k in ("lr", "lambd", "alpha", "t0", "weight_decay"))
            for p, state in stepped(self, group, lambda p: dict(eta=lr, mu=1.0, ax=self._zeros(p))):
                g, w = begin(p, group["maximize"], wd)
                # NOTE: PyTorch keeps eta and mu in float32 scalar tensors; round them the same way
                eta = float(np.float32(state["eta"]))
                w *= 1 - lambd * eta
                w -= eta * g
                ax = state["ax"]._data
                if float(state["mu"]) != 1:
                    ax += (w - ax) * float(np.float32(state["mu"]))
                else:
                    ax[...] = w
                t = state["step"]
                state["eta"] = lr / ((1 + lambd * lr * t) ** alpha)
                state["mu"] = 1 / max(1, t - t0)
                commit(p, w)
        return loss
