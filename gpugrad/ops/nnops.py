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
# NOTE: on these sizes a fresh multi-megabyte array costs more than the arithmetic written into it (page faults on
# first touch), so the code below makes as few as it can: the centered input becomes the output in place, and
# sums of products are einsums (no product array).
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _dot(a, b, shape):
    """sum(a * b) (sum(a) for b None) down to ``shape`` (broadcastable against a: leading dims and size-1 dims
    summed)."""
    lead = a.ndim - len(shape)
    keep = "".join(_LETTERS[lead + i] for i, m in enumerate(shape) if m != 1 or a.shape[lead + i] == 1)
    lhs = _LETTERS[:a.ndim]
    xp = xp_of(a)
    r = xp.einsum(f"{lhs}->{keep}", a) if b is None else xp.einsum(f"{lhs},{lhs}->{keep}", a, b)
    return r.reshape(shape)


def moments(x, axes):
    """(x - mean, mean, biased variance) of array ``x`` over ``axes`` (kept as size-1 dims), in the compute
    dtype (float32 for float16, as PyTorch's norms); the first is a new array that :class:`Standardize` turns
    into its output."""
    xc = x.astype(np.float32) if x.dtype == np.float16 else x
    mean = xc.mean(axis=axes, keepdims=True)
    d = xc - mean
    n = max(int(np.prod([x.shape[a] for a in axes])), 1)
    # NOTE: the two-pass variance (mean of squared deviations): no cancellation, unlike E[x^2] - E[x]^2
    return d, mean, _dot(d, d, mean.shape) / d.dtype.type(n)


def _c_standardize(x, *wb, axes, eps, mean=None, var=None, work=None, affine=""):
    """The composite (create_graph): the same two-pass formula in core Tensor ops."""
    xc = x - x.mean(axes, keepdim=True)
    y = xc * ((xc * xc).mean(axes, keepdim=True) + eps).rsqrt()
    if "w" in affine:
        y = y * wb[0]
    return y + wb[-1] if "b" in affine else y


def _c32(a):
    return a.astype(np.float32) if a.dtype == np.float16 else a


class Standardize(Primitive):
    """y = (x - mean) * rstd [* w] [+ b] over ``axes``, rstd = 1 / sqrt(var + eps), from x's batch ``mean`` and
    biased ``var`` and ``work = [x - mean]`` (:func:`moments`, called by the caller, which also updates running
    statistics from them; the forward takes the work array out of the list and writes y into it); ``affine``
    ("", "w", "b", "wb") says which of w, b follow x as inputs (Tensors broadcastable against x).

    One node instead of a dozen: the forward is two passes given the moments, the backward PyTorch's
    gx = rstd (gh - mean(gh) - xhat mean(gh xhat)) with gh = g w, plus the affine sums. Like PyTorch's norms it
    saves the input (and w) and the per-group mean and rstd (xhat is recomputed), so an in-place write to the
    output does not fail its backward while one to the input does. float16 computes in float32, rounded once.
    """
    composite = staticmethod(_c_standardize)

    @property
    def saves(self):
        return (0, 1) if "w" in self.params["affine"] else (0,)

    def forward(self, x, *wb, axes, eps, mean, var, work, affine=""):
        xp = xp_of(x)
        self.mean, self.rstd = mean, 1 / xp.sqrt(var + eps)
        # NOTE: (x - mean) * (rstd w) + b, not x * scale + (b - mean * scale): no cancellation when |mean| >> std
        y = work.pop()
        y *= self.rstd * _c32(wb[0]) if "w" in affine else self.rstd
        if "b" in affine:
            y += _c32(wb[-1])
        return y.astype(x.dtype, copy=False)

    def backward(self, g):
        x = self.inputs[0]._data
        p = self.params
        axes, affine = p["axes"], p["affine"]
        need = self.needs_input_grad
        xhat = _c32(x) - self.mean
        xhat *= self.rstd
        gc = _c32(g)
        gw = gb = None
        if "b" in affine and need[-1]:
            b = self.inputs[-1]._data
            gb = _dot(gc, None, b.shape).astype(b.dtype, copy=False)
        if "w" in affine:
            w = self.inputs[1]._data
            if need[1]:
                gw = _dot(gc, xhat, w.shape).astype(w.dtype, copy=False)
            gc = gc * _c32(w)
        gx = None
        if need[0]:
            n = gc.dtype.type(max(int(np.prod([x.shape[a] for a in axes])), 1))
            m2 = _dot(gc, xhat, self.mean.shape) / n
            gx = gc - gc.mean(axis=axes, keepdims=True)
            xhat *= m2
            gx -= xhat
            gx *= self.rstd
            gx = gx.astype(x.dtype, copy=False)
        return (gx, *([gw] if "w" in affine else []), *([gb] if "b" in affine else []))
