"""Fused row reductions: softmax, log_softmax, logsumexp; one Primitive, one subclass per row of
:data:`gpugrad.fused.softmax.ROWS`.

Forward and first-order backward are the row's kernels; the node keeps the output (softmax,
log_softmax read y; logsumexp reads x, which the node holds anyway, and its output). Under
``create_graph=True`` the engine differentiates the row's composite, the max-shifted form written
with core Tensor ops.
"""
from __future__ import annotations

import sys as _sys

from .. import tensor as _tensor
from ..autograd.primitive import Primitive
from ..fused import softmax as _K
from ._util import norm_dim, one_dim

__all__ = ["softmax", "log_softmax", "logsumexp"]


class RowReduce(Primitive):
    """Row ``op`` over ``axis``: softmax / log_softmax (same shape), logsumexp (reduced, ``keepdim``)."""
    lowp = "native"  # NOTE: the fused kernels and fallbacks read float16/bfloat16 storage, compute in float32
    op = None  # the row of gpugrad.fused.softmax.ROWS (set on the per-row subclasses)
    save_output = True

    @property
    def saves(self):
        return (0,) if self.op.name == "logsumexp" else ()

    def forward(self, x, axis, keepdim=False):
        self.y = y = self.op.fwd(x, axis, keepdim) if keepdim else self.op.fwd(x, axis)
        return y

    def backward(self, g):
        p = self.params
        if self.op.name == "logsumexp":
            return self.op.bwd(g, self.inputs[0]._data, self.y, p["axis"], p.get("keepdim", False))
        return self.op.bwd(g, self.y, p["axis"])


_NODES = {name: type("".join(w.capitalize() for w in name.split("_")), (RowReduce,),
                     {"op": op, "composite": staticmethod(op.composite)}) for name, op in _K.ROWS.items()}
_SOFTMAX, _LOG_SOFTMAX, _LOGSUMEXP = _NODES["softmax"], _NODES["log_softmax"], _NODES["logsumexp"]


def _implicit_dim(ndim):
    # NOTE: PyTorch's legacy rule for dim=None (it warns; we follow it silently), as nn.Softmax
    return 0 if ndim in (0, 1, 3) else 1


def _rows(node, input, dim, dtype):  # noqa: A002
    x = _tensor._floatify(input) if dtype is None else input.type(dtype)
    d = one_dim(_implicit_dim(x.ndim) if dim is None else dim, x.ndim)
    return node.apply(x, axis=d)


def softmax(input, dim=None, _stacklevel=3, dtype=None):  # noqa: A002
    """exp(x) / sum(exp(x)) along ``dim`` (max-subtracted; a row with +inf or only -inf is NaN, as PyTorch)."""
    return _rows(_SOFTMAX, input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):  # noqa: A002
    """x - logsumexp(x) along ``dim``."""
    return _rows(_LOG_SOFTMAX, input, dim, dtype)


def logsumexp(input, dim, keepdim=False):  # noqa: A002
    """log(sum(exp(x))) over ``dim`` (an int or a tuple of ints; required, as PyTorch), with the limits at +-inf."""
    if dim is None:
        raise TypeError("logsumexp(): argument 'dim' must be tuple of ints, not NoneType")
    x = _tensor._floatify(input)
    axes = norm_dim(dim, x.ndim)
    if x.ndim == 0:
        return _LOGSUMEXP.apply(x, axis=0).reshape(())
    if len(axes) == 1:
        return _LOGSUMEXP.apply(x, axis=axes[0], keepdim=keepdim)
    if not axes:
        axes = tuple(range(x.ndim))
    # NOTE: several dims: move them last and merge them, so the kernel still sees one reduced axis
    rest = [i for i in range(x.ndim) if i not in axes]
    n = 1
    for a in axes:
        n *= x.shape[a]
    xm = x.permute(rest + list(axes)).reshape(tuple(x.shape[i] for i in rest) + (n,))
    y = _LOGSUMEXP.apply(xm, axis=len(rest))
    if keepdim:
        y = y.reshape(tuple(1 if i in axes else s for i, s in enumerate(x.shape)))
    return y


_tensor._sm = _sys.modules[__name__]  # the Tensor methods reach this family through it (see tensor.py)
