"""Primitives of the nn ops that a composite cannot match (gpugrad.nn.functional uses them)."""
from __future__ import annotations

import numpy as np

from ..autograd.primitive import Primitive
from ..backend import xp_of

__all__ = ["BinaryCrossEntropy", "Standardize", "moments"]


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


# -- normalisation: (x - mean) / sqrt(var + eps) over some axes, the core of layer/group/batch/instance norm --
def moments(x, axes):
    """(mean, biased variance) of array ``x`` over ``axes`` (kept as size-1 dims), in the compute dtype
    (float32 for float16, as PyTorch's norms)."""
    xc = x.astype(np.float32) if x.dtype == np.float16 else x
    mean = xc.mean(axis=axes, keepdims=True)
    d = xc - mean
    # NOTE: the two-pass variance (mean of squared deviations): no cancellation, unlike E[x^2] - E[x]^2
    return mean, xp_of(x).mean(d * d, axis=axes, keepdims=True)


def _c_standardize(x, axes, eps, mean=None, var=None):
    """The composite (create_graph): the same two-pass formula in core Tensor ops."""
    xc = x - x.mean(axes, keepdim=True)
    return xc * ((xc * xc).mean(axes, keepdim=True) + eps).rsqrt()


class Standardize(Primitive):
    """(x - mean) * rstd over ``axes``, rstd = 1 / sqrt(var + eps), from the batch ``mean`` and biased ``var``
    of x (:func:`moments`, computed by the caller, which also updates running statistics from them).

    One node instead of a dozen: the forward is two passes given the moments, and the backward, PyTorch's
    gx = rstd (g - mean(g) - xhat mean(g xhat)), five. Like PyTorch's norms it saves the input and the per-group
    mean and rstd (xhat is recomputed), so an in-place write to the output does not fail its backward.
    float16 computes in float32 and rounds once.
    """
    saves = (0,)
    composite = staticmethod(_c_standardize)

    def forward(self, x, axes, eps, mean, var):
        xp = xp_of(x)
        self.mean, self.rstd = mean, 1 / xp.sqrt(var + eps)
        y = (x.astype(np.float32) if x.dtype == np.float16 else x) - mean
        y *= self.rstd
        return y.astype(x.dtype, copy=False)

    def backward(self, g):
        x = self.inputs[0]._data
        axes = self.params["axes"]
        xhat = (x.astype(np.float32) if x.dtype == np.float16 else x) - self.mean
        xhat *= self.rstd
        gc = g.astype(np.float32) if g.dtype == np.float16 else g
        m2 = (gc * xhat).mean(axis=axes, keepdims=True)
        xhat *= m2
        gx = gc - gc.mean(axis=axes, keepdims=True)
        gx -= xhat
        gx *= self.rstd
        return gx.astype(x.dtype, copy=False)

