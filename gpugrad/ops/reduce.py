"""Reduction primitives: sum, max/min (values routed to the chosen index)."""
from __future__ import annotations

import numpy as np

from ..autograd.primitive import Primitive
from ..backend import xp_of
from .shape import Expand


def _acc_dtype(dt):
    # NOTE: float16 reductions accumulate in float32 (numpy would otherwise add in float16).
    return np.float32 if dt == np.float16 else None


class Sum(Primitive):
    saves = ()

    def forward(self, x, axes, keepdim):
        self.src, self.axes, self.keepdim = x.shape, axes, keepdim
        y = x.sum(axis=axes, keepdims=keepdim, dtype=_acc_dtype(x.dtype))
        return xp_of(x).asarray(y, dtype=x.dtype)

    def backward(self, g):
        if not self.keepdim:
            g = g.reshape(tuple(1 if i in self.axes else s for i, s in enumerate(self.src)))
        return self.call(Expand, g, shape=self.src)


class MaxMin(Primitive):
    """max/min over ``axis`` with precomputed indices ``idx`` (keepdims shape), or over all elements
    (``axis=None``: the gradient is shared evenly among tied maxima, as PyTorch's max())."""
    saves = ()  # NOTE: backward reads the mask/indices kept at forward, not x

    def forward(self, x, axis, idx, keepdim, mode):
        xp = xp_of(x)
        self.axis, self.keepdim, self.src = axis, keepdim, x.shape
        if axis is None:
            y = xp.asarray(x.max() if mode == "max" else x.min())
            self.mask = (x == y)
            self.mask = self.mask / self.mask.sum(dtype=np.float32 if x.dtype == np.float16 else x.dtype)
            return y
        self.idx = idx
        y = xp.take_along_axis(x, idx, axis)
        return y if keepdim else y.squeeze(axis)

    def backward(self, g):
        if self.axis is None:
            return g * self.mask.astype(g.dtype, copy=False)
        if not self.keepdim:
            g = g.reshape(tuple(1 if i == self.axis else s for i, s in enumerate(self.src)))
        xp = xp_of(self.idx)
        n = self.src[self.axis]
        shape = [1] * len(self.src)
        shape[self.axis] = n
        onehot = xp.arange(n).reshape(shape) == self.idx
        return g * onehot


from ._util import quiet_family  # noqa: E402

quiet_family(Sum, backward=False)  # NOTE: sums of inf and -inf (or float16 overflow) are nan/inf silently, as in PyTorch


class AMax(Primitive):
    """amax/amin over ``axes``; the gradient is shared evenly among the tied extremes (PyTorch's amax)."""
    saves = ()

    def forward(self, x, axes, keepdim, mode):
        xp = xp_of(x)
        y = (xp.amax if mode == "max" else xp.amin)(x, axis=axes, keepdims=True)
        mask = x == y
        n = mask.sum(axis=axes, keepdims=True)
        # NOTE: a NaN extreme matches nothing (n == 0); its gradient is 0 instead of 0/0
        self.w = (mask / xp.maximum(n, 1)).astype(x.dtype, copy=False)
        self.keep = y.shape
        return y if keepdim else y.reshape(tuple(s for i, s in enumerate(x.shape) if i not in axes))

    def backward(self, g):
        return g.reshape(self.keep) * self.w
