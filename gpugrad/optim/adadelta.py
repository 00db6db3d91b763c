"""Adadelta (Zeiler 2012), PyTorch semantics."""
from __future__ import annotations

from ._composite import check_flags, stepped
from .optimizer import Optimizer, _check_nonneg, _check_unit

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta: ``v = rho v + (1-rho) g^2``, ``d = sqrt(u + eps) / sqrt(v + eps) * g``,
    ``u = rho u + (1-rho) d^2``, ``p -= lr * d``; ``weight_decay`` adds ``weight_decay * p`` to g.
    ``master_weights=True`` (a gpugrad extension) keeps a float32 master copy and float32 state for
    float16/bfloat16 parameters; see :mod:`gpugrad.optim.optimizer`."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False, master_weights=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, foreach=foreach, capturable=capturable,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults, master_weights)

    def _check_group(self, group):
        super()._check_group(group)
        _check_unit(group, "rho", closed=True)
        _check_nonneg(group, "eps", "epsilon")
        _check_nonneg(group, "weight_decay")
        check_flags(group)

    def step(self, closure=None):
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, rho, eps, wd = (float(group[k]) for k in ("lr", "rho", "eps", "weight_decay"))
            for p, state, w, g, o in stepped(self, group, lambda p: dict(square_avg=self._zeros(p), acc_delta=self._zeros(p))):
                g = o.grad(g, w, group["maximize"], wd)
                v, u = state["square_avg"]._data, state["acc_delta"]._data
                v[...] = o.addcmul(o.mul(v, rho), g, g, 1 - rho)
                delta = o.mul(o.div(o.sqrt(o.add(u, eps)), o.sqrt(o.add(v, eps))), g)
                u[...] = o.addcmul(o.mul(u, rho), delta, delta, 1 - rho)
                w[...] = o.add(w, delta, -lr)
        return loss
