"""Fused row reductions: softmax, log_softmax, logsumexp — one Primitive parametrised by ``kind``.

Forward and first-order backward are the kernels of :mod:`gpugrad.fused.softmax`; the node keeps
the output (softmax, log_softmax read y; logsumexp reads x, which the node holds anyway, and its
output). Under ``create_graph=True`` the engine differentiates ``RowReduce.composite``, the
max-shifted forms written with core Tensor ops.
"""
from __future__ import annotations

import sys as _sys

from .. import tensor as _tensor
from ..autograd.primitive import Primitive
from ..fused import softmax as _K
from ._util import norm_dim, one_dim

__all__ = ["softmax", "log_softmax", "logsumexp"]

_FWD = {"softmax": _K.softmax_fwd, "log_softmax": _K.log_softmax_fwd}
_BWD = {"softmax": _K.softmax_bwd, "log_softmax": _K.log_softmax_bwd}


class RowReduce(Primitive):
    """``kind`` over ``axis``: 'softmax' | 'log_softmax' (same shape) | 'logsumexp' (reduced, ``keepdim``)."""
    save_output = True

    @property
    def saves(self):
        return (0,) if self.params["kind"] == "logsumexp" else ()

    def forward(self, x, kind, axis, keepdim=False):
        if kind == "logsumexp":
            y = _K.logsumexp_fwd(x, axis, keepdim)
        else:
            y = _FWD[kind](x, axis)
        self.y = y
        return y

    def backward(self, g):
        p = self.params
        if p["kind"] == "logsumexp":
            return _K.logsumexp_bwd(g, self.inputs[0]._data, self.y, p["axis"], p.get("keepdim", False))
        return _BWD[p["kind"]](g, self.y, p["axis"])

    @staticmethod
    def composite(x, kind, axis, keepdim=False):
        if x.ndim == 0:
            return RowReduce.composite(x.reshape(1), kind, 0).reshape(())
        # NOTE: the shift m is a constant (it cancels in every gradient); an infinite max shifts by 0
        xp = x.xp
        m = x._data.max(axis=axis, keepdims=True) if x._data.size else xp.zeros((1,) * x.ndim, x.dtype)
        m = _tensor.Tensor(xp.where(xp.isfinite(m), m, 0).astype(x.dtype, copy=False))
        z = x - m
        e = z.exp()
        if kind == "softmax":
            return e / e.sum(axis, keepdim=True)
        logs = e.sum(axis, keepdim=True).log()
        if kind == "log_softmax":
            return z - logs
        out = logs + m
        return out if keepdim else out.squeeze(axis)


def _implicit_dim(ndim):
    # NOTE: PyTorch's legacy rule for dim=None (it warns; we follow it silently), as nn.Softmax
    return 0 if ndim in (0, 1, 3) else 1


def _rows(kind, input, dim, dtype):  # noqa: A002
    x = _tensor._floatify(input) if dtype is None else input.type(dtype)
    d = one_dim(_implicit_dim(x.ndim) if dim is None else dim, x.ndim)
    return RowReduce.apply(x, kind=kind, axis=d)


def softmax(input, dim=None, _stacklevel=3, dtype=None):  # noqa: A002
    """exp(x) / sum(exp(x)) along ``dim`` (max-subtracted; a row with +inf or only -inf is NaN, as PyTorch)."""
    return _rows("softmax", input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):  # noqa: A002
    """x - logsumexp(x) along ``dim``."""
    return _rows("log_softmax", input, dim, dtype)


def logsumexp(input, dim, keepdim=False):  # noqa: A002
    """log(sum(exp(x))) over ``dim`` (an int or a tuple of ints; None: all), with the limits at +-inf."""
    x = _tensor._floatify(input)
    axes = norm_dim(dim, x.ndim)
    if x.ndim == 0:
        return RowReduce.apply(x, kind="logsumexp", axis=0).reshape(())
    if len(axes) == 1:
        return RowReduce.apply(x, kind="logsumexp", axis=axes[0], keepdim=keepdim)
    if not axes:
        axes = tuple(range(x.ndim))
    # NOTE: several dims: move them last and merge them, so the kernel still sees one reduced axis
    rest = [i for i in range(x.ndim) if i not in axes]
    n = 1
    for a in axes:
        n *= x.shape[a]
    xm = x.permute(rest + list(axes)).reshape(tuple(x.shape[i] for i in rest) + (n,))
    y = RowReduce.apply(xm, kind="logsumexp", axis=len(rest))
    if keepdim:
        y = y.reshape(tuple(1 if i in axes else s for i, s in enumerate(x.shape)))
    return y


_tensor._sm = _sys.modules[__name__]  # the Tensor methods reach this family through it (see tensor.py)
