"""ASGD (averaged SGD, Polyak & Juditsky 1992), PyTorch semantics."""
from __future__ import annotations

import numpy as np

from ._composite import check_flags, stepped
from .optimizer import Optimizer, _check_nonneg

__all__ = ["ASGD"]


class ASGD(Optimizer):
    """ASGD: ``p *= 1 - lambd * eta``, ``p -= eta * g``; the average ``ax`` follows ``p`` (``ax = p`` while
    ``mu == 1``, else ``ax += mu (p - ax)``); then ``eta = lr / (1 + lambd lr t)^alpha`` and
    ``mu = 1 / max(1, t - t0)``. ``weight_decay`` adds ``weight_decay * p`` to the gradient.
    ``master_weights=True`` (a gpugrad extension) keeps a float32 master copy and float32 state for
    float16/bfloat16 parameters; see :mod:`gpugrad.optim.optimizer`."""

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False, *, master_weights=False):
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults, master_weights)

    def _check_group(self, group):
        super()._check_group(group)
        _check_nonneg(group, "weight_decay")
        check_flags(group)

    def step(self, closure=None):
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, lambd, alpha, t0, wd = (float(group[k]) for k in ("lr", "lambd", "alpha", "t0", "weight_decay"))
            for p, state, w, g, o in stepped(self, group, lambda p: dict(eta=lr, mu=1.0, ax=self._zeros(p))):
                g = o.grad(g, w, group["maximize"], wd)
                # NOTE: PyTorch keeps eta and mu in float32 scalar tensors; round them the same way
                eta, mu = float(np.float32(state["eta"])), float(np.float32(state["mu"]))
                w[...] = o.mul(w, 1 - lambd * eta)
                w[...] = o.add(w, g, -eta)
                ax = state["ax"]._data
                ax[...] = o.add(ax, o.mul(o.sub(w, ax), mu)) if mu != 1 else w
                t = state["step"]
                state["eta"] = lr / ((1 + lambd * lr * t) ** alpha)
                state["mu"] = 1 / max(1, t - t0)
        return loss
