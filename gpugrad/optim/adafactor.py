"""Adafactor (Shazeer & Stern 2018) as PyTorch 2.13's ``torch.optim.Adafactor``."""
from __future__ import annotations

import math

import numpy as np

from ..backend import to_device
from ..tensor import Tensor
from ._composite import stepped
from .optimizer import Optimizer
from .rprop import no_lowp

__all__ = ["Adafactor"]


def _norm(xp, a, axis=None):
    """torch.norm(a, 2, dim): sqrt of the sum of squares (in a's dtype)."""
    return xp.sqrt((a * a).sum(axis=axis, keepdims=axis is not None))


class Adafactor(Optimizer):
    """Adafactor: second moments factored into row and column means over the last two dimensions of
    >= 2-D parameters (a full ``variance`` for 0-D/1-D ones), mixed with weight ``step ** beta2_decay``;
    the update ``g / sqrt(v)`` is scaled down to RMS <= ``d`` and applied with step
    ``max(eps[1], RMS(p)) * min(lr, 1/sqrt(step))``; ``weight_decay`` multiplies p by ``1 - lr * weight_decay``.
    ``eps[0]=None`` is the parameter dtype's machine epsilon. float16/bfloat16 parameters need
    ``master_weights=True`` (a gpugrad extension, see :mod:`gpugrad.optim.optimizer`)."""

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, *,
                 foreach=None, maximize=False, master_weights=False):
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize)
        super().__init__(params, defaults, master_weights)

    def _init(self, p):
        if p.ndim < 2:
            return dict(variance=self._zeros(p))
        xp, dt = p.device.xp, self._state_dtype(p)
        return dict(row_var=Tensor(xp.zeros(p.shape[:-1] + (1,), dt)),
                    col_var=Tensor(xp.zeros(p.shape[:-2] + (1,) + p.shape[-1:], dt)))

    def _load_value(self, p, idx, key, v):
        if key not in ("row_var", "col_var"):
            return super()._load_value(p, idx, key, v)
        # NOTE: factored: not p's shape; a CuPy array goes to to_device as it is (np.asarray would refuse it)
        arr = v._data if isinstance(v, Tensor) else v if type(v).__module__.startswith("cupy") else np.asarray(v)
        return Tensor(to_device(arr, p.device).astype(self._state_dtype(p), copy=True))

    def step(self, closure=None):
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            no_lowp(self, group)
            lr, b2d, d, wd = (float(group[k]) for k in ("lr", "beta2_decay", "d", "weight_decay"))
            e1, eps2 = group["eps"]
            for p, state, w, g, o in stepped(self, group, self._init):
                xp, dt = p.device.xp, w.dtype
                g = -g if group["maximize"] else g
                # NOTE: eps1=None is the machine epsilon of the group's first array updated (a float32 master's with
                #       master weights): PyTorch sets it once per group, from the first parameter with a gradient
                e1 = float(np.finfo(dt).eps) if e1 is None else float(e1)
                t = float(state["step"])
                beta = t ** b2d
                rho = min(lr, 1 / (t ** 0.5))
                # NOTE: PyTorch takes the norms as Python floats (.item()) and does this scalar math in float64
                alpha = max(float(eps2), float(_norm(xp, w)) / (w.size ** 0.5)) * rho
                if wd != 0:
                    w *= dt.type(1 - lr * wd)
                if g.ndim > 1:
                    rv, cv = state["row_var"]._data, state["col_var"]._data
                    # NOTE: torch.norm(g, dim).square_() / n, as PyTorch (not the mean of g*g: the sqrt rounds)
                    rv[...] = o.lerp(rv, xp.square(_norm(xp, g, -1)) / dt.type(g.shape[-1]), beta)
                    cv[...] = o.lerp(cv, xp.square(_norm(xp, g, -2)) / dt.type(g.shape[-2]), beta)
                    var = rv @ cv
                    var /= xp.maximum(rv.mean(axis=-2, keepdims=True), dt.type(e1))
                else:
                    v = state["variance"]._data
                    v[...] = o.lerp(v, g * g, beta)
                    var = v.copy()
                u = xp.asarray(dt.type(1) / xp.sqrt(xp.maximum(var, dt.type(e1 * e1))))  # NOTE: an array, also 0-D
                u *= g
                denom = max(1.0, float(_norm(xp, u)) / (math.sqrt(u.size) * d))
                w[...] = o.add(w, u, -alpha / denom)
        return loss
