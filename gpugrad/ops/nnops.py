"""Primitives of the nn ops that a composite cannot match (gpugrad.nn.functional uses them)."""
from __future__ import annotations

import numpy as np

from ..autograd.primitive import Primitive
from ..backend import xp_of

__all__ = ["BinaryCrossEntropy"]


def _c_bce(x, t, weight=None):
    """The composite (used for higher-order gradients): each log clamped to >= -100, no inf * 0 at 0 and 1."""
    from ..tensor import Tensor, where  # noqa: PLC0415

    def safe_log(v):
        pos = Tensor(v._data > 0)
        one, floor = Tensor(v.xp.ones((), v.dtype)), Tensor(v.xp.full((), -100.0, v.dtype))
        return where(pos, where(pos, v, one).log().clamp(min=-100.0), floor)
    v = -(t * safe_log(x) + (1.0 - t) * safe_log(1.0 - x))
    return v if weight is None else v * Tensor(weight)


class BinaryCrossEntropy(Primitive):
    """Elementwise -w (t log x + (1 - t) log(1 - x)) with logs clamped to >= -100 (PyTorch's forward);
    first-order gradients are PyTorch's: w (x - t) / max(x (1 - x), 1e-12) for x, -w logit(x) for t."""

    def forward(self, x, t, weight=None):
        xp = xp_of(x)
        self.w = weight
        with np.errstate(divide="ignore"):
            lx = xp.maximum(xp.log(x), -100.0)
            l1x = xp.maximum(xp.log1p(-x), -100.0)
        v = -(t * lx + (1 - t) * l1x)
        return v if weight is None else v * weight

    def backward(self, g):
        x, t = self.inputs[0]._data, self.inputs[1]._data
        w = self.w
        xp = xp_of(x)
        nx, nt = self.needs_input_grad
        gx = gt = None
        if nx:
            gx = g * (x - t) / xp.maximum(x * (1 - x), 1e-12)
            gx = gx if w is None else gx * w
        if nt:
            with np.errstate(divide="ignore"):
                gt = g * (xp.log1p(-x) - xp.log(x))
            gt = gt if w is None else gt * w
        return gx, gt

    composite = staticmethod(_c_bce)
