"""Vector p-norms: one primitive whose gradient is finite everywhere, as PyTorch's ``norm_backward``.

p = 1 and p = 0 are composites in Tensor.norm (``abs().sum()``, a count); this covers p = 2, +-inf and
every other real p.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd.primitive import Primitive
from ..backend import xp_of
from .elementwise import Abs

__all__ = ["Norm"]


class Norm(Primitive):
    """||x||_p over ``axes`` (sorted, non-negative), ``keepdim`` as PyTorch's vector_norm."""
    save_output = True

    def forward(self, x, p, axes, keepdim):
        self.p, self.axes, self.keepdim = p, axes, keepdim
        self.kshape = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
        if math.isinf(p) and any(x.shape[a] == 0 for a in axes):
            raise RuntimeError("linalg.vector_norm cannot compute the inf norm on an empty tensor because the "
                               "operation does not have an identity")
        xp = xp_of(x)
        xc = x.astype(np.float32) if x.dtype == np.float16 else x  # NOTE: float16 accumulates in float32
        # NOTE: overflow to inf and |0| ** p = inf for p < 0 are results here, as in PyTorch, not warnings
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            if p == 2:
                y = xp.sqrt((xc * xc).sum(axis=axes, keepdims=keepdim))
            elif math.isinf(p):
                a = xp.abs(xc)
                y = a.max(axis=axes, keepdims=keepdim) if p > 0 else a.min(axis=axes, keepdims=keepdim)
            else:
                y = (xp.abs(xc) ** p).sum(axis=axes, keepdims=keepdim) ** (1.0 / p)
        return xp.asarray(y).astype(x.dtype, copy=False)

    def backward(self, g):
        # One formula for arrays (first order) and Tensors (create_graph): x and y enter differentiably,
        # the masks and signs are constants.
        (x,) = self.values()
        y = self.result()
        xd = self.inputs[0]._data
        yd = y._data if self.graph else y
        if not self.keepdim:
            g, y, yd = g.reshape(self.kshape), y.reshape(self.kshape), yd.reshape(self.kshape)
        p, xp = self.p, xp_of(xd)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            if math.isinf(p):
                # the gradient is shared evenly by the entries at the extreme |x| (NaNs count as extreme)
                ax = xp.abs(xd)
                hit = (ax == yd) | xp.isnan(ax)
                w = xp.sign(xd) * hit / hit.sum(axis=self.axes, keepdims=True)
                return g * w.astype(xd.dtype, copy=False)
            # NOTE: where the norm is 0 the gradient is 0 (PyTorch's subgradient), written with the constant
            # masks ``nz`` / ``zero`` so that no 0/0 is ever formed. Its derivative there (double backward)
            # is 0 too, where PyTorch's masked_fill formula gives NaN.
            zero = yd == 0
            nz = ~zero
            if p == 2:
                return x * (g / (y + zero)) * nz
            sgn = xp.sign(xd)
            ax = self.call(Abs, x)
            if p < 1:
                # |x| ** (p - 1) is infinite at x == 0: those entries get 0 (as PyTorch), via the mask xnz
                xnz = xd != 0
                return sgn * ((ax + ~xnz) ** (p - 1)) * xnz * (g * y ** (1 - p))
            return sgn * ax ** (p - 1) * (g / (y + zero) ** (p - 1)) * nz
