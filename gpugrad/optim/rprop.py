"""Rprop (resilient backpropagation, Riedmiller & Braun 1993), PyTorch semantics."""
from __future__ import annotations

from .._dtypes import LOWP
from ._composite import check_flags, stepped
from .optimizer import Optimizer

__all__ = ["Rprop"]


def no_lowp(opt, group):
    """Refuse float16/bfloat16 parameters updated the PyTorch way (without master weights): the optimizers
    that call this do not reproduce PyTorch's per-op low-precision rounding."""
    for p in group["params"]:
        if p.grad is not None and p._data.dtype in LOWP and not opt.master_weights:
            raise NotImplementedError(f"{type(opt).__name__} with {p.dtype} parameters: gpugrad does not reproduce "
                                      "PyTorch's low-precision rounding of this optimizer; use master_weights=True "
                                      "or float32 parameters")


class Rprop(Optimizer):
    """Rprop: each element's step size is multiplied by ``etas[1]`` while its gradient keeps its sign and by
    ``etas[0]`` when the sign flips (then that gradient counts as 0), clamped to ``step_sizes``;
    ``p -= sign(g) * step_size``. float16/bfloat16 parameters need ``master_weights=True`` (a gpugrad
    extension: float32 master copy and state, see :mod:`gpugrad.optim.optimizer`)."""

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False, foreach=None,
                 maximize=False, differentiable=False, master_weights=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults, master_weights)

    def _check_group(self, group):
        super()._check_group(group)
        check_flags(group)

    def step(self, closure=None):
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            no_lowp(self, group)
            etaminus, etaplus = (float(e) for e in group["etas"])
            lo, hi = (float(s) for s in group["step_sizes"])
            init = lambda p: dict(prev=self._zeros(p), step_size=self._zeros(p, float(group["lr"])))  # noqa: E731
            for p, state, w, g, o in stepped(self, group, init):
                xp, dt = p.device.xp, w.dtype
                g = -g if group["maximize"] else g
                prev, size = state["prev"]._data, state["step_size"]._data
                s = xp.sign(g * prev)
                # NOTE: the factors live in the parameter's dtype, as PyTorch's sign tensor it overwrites
                s = xp.where(s > 0, dt.type(etaplus), xp.where(s < 0, dt.type(etaminus), dt.type(1)))
                xp.clip(size * s, dt.type(lo), dt.type(hi), out=size)
                g = xp.where(s == dt.type(etaminus), dt.type(0), g)
                w -= xp.sign(g) * size
                prev[...] = g
        return loss
