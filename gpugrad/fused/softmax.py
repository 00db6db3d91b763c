"""Row reductions on arrays: softmax, log_softmax, logsumexp (``kernels/softmax.cu`` on CuPy).

API (``axis`` any dim; it is moved last and made contiguous, then the kernels see (rows, n))::

    softmax_fwd(x, axis=-1) -> y               softmax_bwd(g, y, axis=-1) -> gx
    log_softmax_fwd(x, axis=-1) -> y           log_softmax_bwd(g, y, axis=-1) -> gx
    logsumexp_fwd(x, axis=-1, keepdims=False) -> lse
    logsumexp_bwd(g, x, lse, axis=-1, keepdims=False) -> gx

Backwards read the forward's output (softmax, log_softmax) or input and output (logsumexp):
    softmax: gx = y * (g - sum(g * y));  log_softmax: gx = g - exp(y) * sum(g);
    logsumexp: gx = g * exp(x - lse).
Numerics: max-subtracted, accumulated in float32 (float64 for float64); a row containing +inf or
only -inf gives NaN for softmax/log_softmax (as PyTorch), and +inf / -inf for logsumexp (its
limit, as PyTorch). An empty reduced dim gives an empty result (logsumexp: -inf).
"""
from __future__ import annotations

import math

import numpy as np

from .. import tensor as _tensor
from ..backend import xp_of
from . import cuda
from ._common import FusedOp, as_compute, check_float, same_device, table

__all__ = ["ROWS", "softmax_fwd", "softmax_bwd", "log_softmax_fwd", "log_softmax_bwd", "logsumexp_fwd",
           "logsumexp_bwd"]

_SOURCE = "softmax.cu"


# -- layout helpers -----------------------------------------------------------------------------

def _axis(a, axis):
    nd = max(a.ndim, 1)
    if not -nd <= axis < nd:
        raise ValueError(f"axis {axis} is out of range for an array of {a.ndim} dimensions")
    return axis % nd


def _to_rows(xp, a, axis):
    """(rows, n) contiguous view/copy of ``a`` with ``axis`` last, and the moved shape."""
    if a.ndim == 0:
        a = a.reshape(1)
    if axis != a.ndim - 1:
        a = xp.moveaxis(a, axis, -1)
    moved = a.shape
    return xp.ascontiguousarray(a).reshape(math.prod(moved[:-1]), moved[-1]), moved


def _from_rows(xp, r, moved, axis, shape):
    out = r.reshape(moved)
    if axis != len(moved) - 1:
        out = xp.moveaxis(out, -1, axis)
    return out.reshape(shape)


def _row_vector(xp, v, shape, axis, keepdims, what):
    """A per-row array (shape of the reduction result) as a flat (rows,) contiguous array."""
    rshape = tuple(1 if i == axis else d for i, d in enumerate(shape)) if keepdims else \
        tuple(d for i, d in enumerate(shape) if i != axis)
    if shape == ():
        rshape = (1,) if keepdims else ()
    if tuple(v.shape) != rshape:
        raise ValueError(f"{what} shape {tuple(v.shape)} does not match the reduced shape {rshape}")
    return xp.ascontiguousarray(v).reshape(-1), rshape


def _check_pair(what, a, ref, ref_name):
    if a.shape != ref.shape:
        raise ValueError(f"{what} shape {tuple(a.shape)} does not match {ref_name} shape {tuple(ref.shape)}")
    if a.dtype != ref.dtype:
        raise TypeError(f"{what} dtype {a.dtype} does not match {ref_name} dtype {ref.dtype}")


# -- NumPy fallbacks on (rows, n) in the compute dtype ------------------------------------------
# NOTE: blocks of rows (about _BLOCK elements) so that the max, shift, exp, sum and scale passes
# of one block run on data in cache and no (rows, n) temporary is made: the output is the only
# full-size array. The arithmetic is unchanged, per element and per row.
_BLOCK = 1 << 16


def _blocks(rows, n):
    step = max(1, _BLOCK // max(n, 1))
    return [(r, min(rows, r + step)) for r in range(0, rows, step)]


def _np_softmax(x):
    y = np.empty_like(x)
    for r0, r1 in _blocks(*x.shape):
        m = x[r0:r1].max(axis=1, keepdims=True)
        b = np.subtract(x[r0:r1], m, out=y[r0:r1])
        np.exp(b, out=b)
        inv = b.sum(axis=1, keepdims=True)
        np.reciprocal(inv, out=inv)
        inv[np.isinf(m)] = np.nan  # NOTE: a +inf or all -inf row is NaN (the kernel's softmax_inv)
        b *= inv
    return y


def _np_log_softmax(x):
    y = np.empty_like(x)
    blocks = _blocks(*x.shape)
    buf = np.empty((blocks[0][1], x.shape[1]), x.dtype)
    for r0, r1 in blocks:
        m = x[r0:r1].max(axis=1, keepdims=True)
        b = np.subtract(x[r0:r1], m, out=y[r0:r1])
        e = np.exp(b, out=buf[:r1 - r0])
        logs = e.sum(axis=1, keepdims=True)
        np.log(logs, out=logs)
        logs[np.isinf(m)] = np.nan
        b -= logs  # NOTE: (x - m) - log(s), as the kernel
    return y


def _np_softmax_bwd(g, y):
    gx = np.empty_like(g)
    for r0, r1 in _blocks(*g.shape):
        gb, yb = g[r0:r1], y[r0:r1]
        dot = np.einsum("ij,ij->i", gb, yb)[:, None]  # NOTE: sum(g * y) without a g * y array
        b = np.subtract(gb, dot, out=gx[r0:r1])
        b *= yb
    return gx


def _np_log_softmax_bwd(g, y):
    gx = np.empty_like(g)
    for r0, r1 in _blocks(*g.shape):
        gb = g[r0:r1]
        gsum = gb.sum(axis=1, keepdims=True)
        b = np.exp(y[r0:r1], out=gx[r0:r1])
        b *= gsum
        np.subtract(gb, b, out=b)
    return gx


def _np_logsumexp(x):
    rows = x.shape[0]
    out = np.empty(rows, x.dtype)
    blocks = _blocks(*x.shape)
    buf = np.empty((blocks[0][1], x.shape[1]), x.dtype)
    for r0, r1 in blocks:
        m = x[r0:r1].max(axis=1, keepdims=True)
        m[np.isinf(m)] = 0  # NOTE: an infinite max gives the limit (+inf, or -inf for all -inf)
        e = np.subtract(x[r0:r1], m, out=buf[:r1 - r0])
        np.exp(e, out=e)
        s = np.sum(e, axis=1, out=out[r0:r1])
        np.log(s, out=s)
        s += m[:, 0]
    return out


def _np_logsumexp_bwd(x, lse, g):
    gx = np.empty_like(x)
    for r0, r1 in _blocks(*x.shape):
        b = np.subtract(x[r0:r1], lse[r0:r1, None], out=gx[r0:r1])
        np.exp(b, out=b)
        b *= g[r0:r1, None]
    return gx


# -- public API ---------------------------------------------------------------------------------

def _fwd(kind, x, axis):
    dt = check_float("input", x)
    xp = xp_of(x)
    ax = _axis(x, axis)
    r, moved = _to_rows(xp, x, ax)
    if r.size == 0:
        return xp.empty(x.shape, dt)
    if xp is np:
        with np.errstate(all="ignore"):
            y = (_np_softmax if kind == "softmax" else _np_log_softmax)(as_compute(r)).astype(dt, copy=False)
    else:
        y = _gpu_rows(xp, f"gpugrad_{kind}_fwd", r, (r,), r.shape)
    return _from_rows(xp, y, moved, ax, x.shape)


def softmax_fwd(x, axis: int = -1):
    """Softmax of x along ``axis``."""
    return _fwd("softmax", x, axis)


def log_softmax_fwd(x, axis: int = -1):
    """Log-softmax of x along ``axis``."""
    return _fwd("log_softmax", x, axis)


def _bwd(kind, g, y, axis):
    dt = check_float("grad", g)
    _check_pair("grad", g, y, "output")
    xp = xp_of(g)
    same_device(xp, output=y)
    ax = _axis(g, axis)
    gr, moved = _to_rows(xp, g, ax)
    yr, _ = _to_rows(xp, y, ax)
    if gr.size == 0:
        return xp.empty(g.shape, dt)
    if xp is np:
        with np.errstate(all="ignore"):
            gx = (_np_softmax_bwd if kind == "softmax" else _np_log_softmax_bwd)(as_compute(gr), as_compute(yr))
        gx = gx.astype(dt, copy=False)
    else:
        gx = _gpu_rows(xp, f"gpugrad_{kind}_bwd", gr, (gr, yr), gr.shape)
    return _from_rows(xp, gx, moved, ax, g.shape)


def softmax_bwd(g, y, axis: int = -1):
    """Gradient of softmax: y * (g - sum(g * y)) along ``axis``, from the saved output y."""
    return _bwd("softmax", g, y, axis)


def log_softmax_bwd(g, y, axis: int = -1):
    """Gradient of log_softmax: g - exp(y) * sum(g) along ``axis``, from the saved output y."""
    return _bwd("log_softmax", g, y, axis)


def logsumexp_fwd(x, axis: int = -1, keepdims: bool = False):
    """log(sum(exp(x))) along ``axis`` (dtype of x)."""
    dt = check_float("input", x)
    xp = xp_of(x)
    ax = _axis(x, axis)
    r, _ = _to_rows(xp, x, ax)
    rshape = tuple(1 if i == ax else d for i, d in enumerate(x.shape)) if keepdims else \
        tuple(d for i, d in enumerate(x.shape) if i != ax)
    if x.ndim == 0:
        rshape = (1,) if keepdims else ()
    if r.shape[0] == 0:
        return xp.empty(rshape, dt)
    if r.shape[1] == 0:
        return xp.full(rshape, -np.inf, dt)
    if xp is np:
        with np.errstate(all="ignore"):
            out = _np_logsumexp(as_compute(r)).astype(dt, copy=False)
    else:
        out = _gpu_rows(xp, "gpugrad_logsumexp_fwd", r, (r,), (r.shape[0],))
    return out.reshape(rshape)


def logsumexp_bwd(g, x, lse, axis: int = -1, keepdims: bool = False):
    """Gradient of logsumexp: g * exp(x - lse), broadcast back along ``axis``."""
    dt = check_float("grad", g)
    xp = xp_of(x)
    same_device(xp, grad=g, lse=lse)
    if g.dtype != x.dtype or lse.dtype != x.dtype:
        raise TypeError(f"grad/lse dtypes {g.dtype}/{lse.dtype} do not match input dtype {x.dtype}")
    ax = _axis(x, axis)
    gv, _ = _row_vector(xp, g, x.shape, ax, keepdims, "grad")
    lv, _ = _row_vector(xp, lse, x.shape, ax, keepdims, "lse")
    r, moved = _to_rows(xp, x, ax)
    if r.size == 0:
        return xp.empty(x.shape, dt)
    if xp is np:
        with np.errstate(all="ignore"):
            gx = _np_logsumexp_bwd(as_compute(r), as_compute(lv), as_compute(gv))
        gx = gx.astype(dt, copy=False)
    else:
        gx = _gpu_rows(xp, "gpugrad_logsumexp_bwd", r, (gv, r, lv), r.shape)
    return _from_rows(xp, gx, moved, ax, x.shape)


# -- GPU launch ---------------------------------------------------------------------------------

def _gpu_rows(cp, kernel, r, inputs, out_shape):
    """kernel(*inputs, out, rows, n) on the (rows, n) layout of ``r``; out is new, of r's dtype."""
    with cuda.on(r):
        out = cp.empty(out_shape, r.dtype)
        cuda.rows_launch(_SOURCE, kernel, r.dtype, *r.shape, (*inputs, out))
    return out


# -- composites (core Tensor ops, max-shifted; what create_graph differentiates) ----------------------

def _shifted(x, axis):
    """(x - m, m) with m the max along ``axis`` as a constant (it cancels in every gradient); an infinite
    max shifts by 0."""
    xp = x.xp
    m = x._data.max(axis=axis, keepdims=True) if x._data.size else xp.zeros((1,) * x.ndim, x.dtype)
    m = _tensor.Tensor(xp.where(xp.isfinite(m), m, 0).astype(x.dtype, copy=False))
    return x - m, m


def _lifted(f):
    """f on a 0-d x as on its 1-d reshape (a 0-d tensor has one "row" of one element)."""
    def g(x, axis, keepdim=False):
        if x.ndim == 0:
            return f(x.reshape(1), 0).reshape(())
        return f(x, axis, keepdim) if keepdim else f(x, axis)
    return g


@_lifted
def c_softmax(x, axis):
    e = _shifted(x, axis)[0].exp()
    return e / e.sum(axis, keepdim=True)


@_lifted
def c_log_softmax(x, axis):
    z, _ = _shifted(x, axis)
    return z - z.exp().sum(axis, keepdim=True).log()


@_lifted
def c_logsumexp(x, axis, keepdim=False):
    z, m = _shifted(x, axis)
    out = z.exp().sum(axis, keepdim=True).log() + m
    return out if keepdim else out.squeeze(axis)


# -- the table ------------------------------------------------------------------------------------------
ROWS = table([
    FusedOp("softmax", _SOURCE, "rows", "output", softmax_fwd, softmax_bwd, c_softmax),
    FusedOp("log_softmax", _SOURCE, "rows", "output", log_softmax_fwd, log_softmax_bwd, c_log_softmax),
    FusedOp("logsumexp", _SOURCE, "rows", "input and output", logsumexp_fwd, logsumexp_bwd, c_logsumexp),
])

