"""Primitives of the nn ops that a composite cannot match (gpugrad.nn.functional uses them)."""
from __future__ import annotations

import math

import numpy as np

from .._dtypes import LOWP
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
# NOTE: NumPy arrays run in blocks of whole groups, about _CHUNK elements along the first axis not reduced: every
# pass over a block works in cache and the temporaries are block-sized, where whole-array temporaries are fresh
# multi-megabyte arrays (page faults on first touch cost more than the arithmetic written into them); only the
# outputs are whole, and the centered input becomes the output in place. CuPy arrays and small ones are one block.
_CHUNK = 1 << 18
_SHORT = 64


def _blocks(x, axes):
    """Index tuples of the blocks of ``x`` (``()``: the whole array)."""
    keep = [i for i in range(x.ndim) if i not in axes]
    if type(x) is not np.ndarray or x.size <= 2 * _CHUNK or not keep or keep[0]:
        return [()]  # NOTE: reduced leading dims (batch_norm) would make strided blocks: measured slower than one
    k = keep[0]
    step = max(1, x.shape[k] * _CHUNK // x.size)
    return [(slice(None),) * k + (slice(i, i + step),) for i in range(0, x.shape[k], step)]


def _part(a, sl, ndim):
    """Block ``sl`` of ``a`` (None, or broadcastable against ``ndim`` dims: its size-1 and missing dims whole)."""
    k = -1 if a is None else len(sl) - 1 + a.ndim - ndim
    return a[(slice(None),) * k + sl[-1:]] if sl and k >= 0 and a.shape[k] > 1 else a


def _wide(a, shape):
    """``a`` as an operand of elementwise passes over ``shape``: on NumPy, where broadcasting it leaves contiguous
    runs shorter than _SHORT it is expanded first (NOTE: NumPy then loops one run at a time, ~0.9 ns/element for
    rows of 32, where np.repeat / np.tile cost ~0.12 and the contiguous pass ~0.09)."""
    if type(a) is not np.ndarray or a.size == 1 or a.shape == shape:
        return a
    s = (1,) * (len(shape) - a.ndim) + a.shape
    one, j = s[-1] == 1, len(shape)
    while j and (s[j - 1] == 1 if one else s[j - 1] == shape[j - 1]):
        j -= 1
    k = math.prod(shape[j:])
    if k >= _SHORT:
        return a
    if one:
        a = np.repeat(a.reshape(*s[:j], 1), k, axis=-1).reshape(*s[:j], *shape[j:])
    return a if a.shape == shape else np.broadcast_to(a, shape).copy()


def _op(a, sl, shape, memo):
    """``_wide`` of block ``sl`` of ``a`` for a block of ``shape``; an operand that is not sliced is expanded once
    per call (``memo``)."""
    p = _part(a, sl, len(shape))
    if p is not a or (id(a), shape) not in memo:
        memo[id(a), shape] = _wide(p, shape)
    return memo[id(a), shape]


def _sum(a, shape, v=None):
    """sum(a * v) (v None: sum(a)) down to ``shape`` (its size-1 dims and the leading dims of ``a`` beyond it are
    summed; ``v`` broadcastable against ``a``). NOTE: on NumPy the summed leading and trailing dims are
    matrix-vector products (BLAS, one call each, no copy for a block; ``v`` is the vector where it spans exactly
    those dims, else ones): NumPy's reductions over rows of 32 cost ~1.7 ns/element, einsum 0.2-0.6, these 0.06-0.15."""
    full = (1,) * (a.ndim - len(shape)) + tuple(shape)
    if type(a) is np.ndarray and a.size > _SHORT * _SHORT:
        lo, hi = 0, a.ndim
        while lo < hi and full[lo] == 1 != a.shape[lo]:
            lo += 1
        while hi > lo and full[hi - 1] == 1:
            hi -= 1
        vs = None if v is None else (1,) * (a.ndim - v.ndim) + v.shape
        lv = v.reshape(-1) if vs and lo and vs == a.shape[:lo] + (1,) * (a.ndim - lo) else None
        tv = v.reshape(-1) if vs and lv is None and hi < a.ndim and vs == (1,) * hi + a.shape[hi:] else None
        if vs and lv is None and tv is None:
            a = a * _wide(v, a.shape)
        if lo:
            m = math.prod(a.shape[:lo])
            a = ((np.ones(m, a.dtype) if lv is None else lv) @ a.reshape(m, -1)).reshape(a.shape[lo:])
        if hi < len(full):
            k = math.prod(a.shape[hi - lo:])
            a = (a.reshape(-1, k) @ (np.ones(k, a.dtype) if tv is None else tv)).reshape(a.shape[:hi - lo])
        full = full[lo:hi]
    elif v is not None:
        a = a * v
    rest = tuple(i for i, m in enumerate(full) if m == 1 and a.shape[i] != 1)
    return (a.sum(axis=rest, keepdims=True) if rest else a).reshape(shape)


def moments(x, axes):
    """(x - mean, mean, biased variance) of array ``x`` over ``axes`` (kept as size-1 dims), in the compute
    dtype (float32 for float16, as PyTorch's norms), block by block; the first is a new array that
    :class:`Standardize` turns into its output."""
    xp = xp_of(x)
    mshape = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
    ct = np.dtype(np.float32) if x.dtype in LOWP else x.dtype
    d, mean, var = xp.empty(x.shape, ct), xp.empty(mshape, ct), xp.empty(mshape, ct)
    n = math.prod(x.shape[a] for a in axes)
    blocks, nd = _blocks(x, axes), x.ndim
    for sl in blocks:
        xb, mb = _c32(x[sl]), mean[sl]
        # NOTE: NumPy's pairwise sum where rows are long (BLAS sums them ~3x less accurately), else BLAS
        s = xb.sum(axis=axes, keepdims=True) if x.shape[-1] >= _SHORT and nd - 1 in axes else _sum(xb, mb.shape)
        mb[...] = s / ct.type(n) if n else np.nan  # NOTE: an empty group: NaN mean, as torch
        db = xp.subtract(xb, _wide(mb, xb.shape), out=d[sl])
        # NOTE: the two-pass variance (mean of squared deviations): no cancellation, unlike E[x^2] - E[x]^2
        # (one block: an einsum, no whole-array temporary)
        ss = _sum(db * db, mb.shape) if len(blocks) > 1 else \
            xp.einsum(db, range(nd), db, range(nd), [i for i in range(nd) if i not in axes]).reshape(mshape)
        var[sl] = ss / ct.type(max(n, 1))
    return d, mean, var


def _c_standardize(x, *wb, axes, eps, mean=None, var=None, work=None, affine=""):
    """The composite (create_graph): the same two-pass formula in core Tensor ops."""
    xc = x - x.mean(axes, keepdim=True)
    y = xc * ((xc * xc).mean(axes, keepdim=True) + eps).rsqrt()
    if "w" in affine:
        y = y * wb[0]
    return y + wb[-1] if "b" in affine else y


def _c32(a):
    return a.astype(np.float32) if a.dtype in LOWP else a


class Standardize(Primitive):
    """y = (x - mean) * rstd [* w] [+ b] over ``axes``, rstd = 1 / sqrt(var + eps), from x's batch ``mean`` and
    biased ``var`` and ``work = [x - mean]`` (:func:`moments`, called by the caller, which also updates running
    statistics from them; the forward takes the work array out of the list and writes y into it); ``affine``
    ("", "w", "b", "wb") says which of w, b follow x as inputs (Tensors broadcastable against x).

    One node instead of a dozen, block by block (see _blocks): the forward is two passes given the moments, the
    backward PyTorch's gx = rstd (gh - mean(gh) - xhat mean(gh xhat)) with gh = g w, written
    gx = (rstd w) g + d (-rstd^3 mean(gh d)) - rstd mean(gh), d = x - mean, from the sums of g and g d at the
    resolution of the groups and w (one pass each), plus the affine sums. Like PyTorch's norms it saves the input
    (and w) and the per-group mean and rstd (xhat is recomputed), so an in-place write to the output does not fail
    its backward while one to the input does. float16 computes in float32, rounded once.
    """
    composite = staticmethod(_c_standardize)
    lowp = "native"  # NOTE: widens itself (moments and _c32), so a bfloat16 input with float32 w/b stays bfloat16

    @property
    def saves(self):
        return (0, 1) if "w" in self.params["affine"] else (0,)

    def forward(self, x, *wb, axes, eps, mean, var, work, affine=""):
        xp = xp_of(x)
        self.mean, self.rstd = mean, 1 / xp.sqrt(var + eps)
        y, s = work.pop(), self.rstd
        w, b = (_c32(wb[0]) if "w" in affine else None), (_c32(wb[-1]) if "b" in affine else None)
        if w is not None and math.prod(np.broadcast_shapes(s.shape, w.shape)) * 8 <= x.size:
            s, w = s * w, None  # NOTE: one pass with rstd w where that product is small (not layer_norm's)
        # NOTE: (x - mean) * (rstd w) + b, not x * scale + (b - mean * scale): no cancellation when |mean| >> std
        memo = {}
        for sl in _blocks(x, axes):
            yb = y[sl]
            yb *= _op(s, sl, yb.shape, memo)
            if w is not None:
                yb *= _op(w, sl, yb.shape, memo)
            if b is not None:
                yb += _op(b, sl, yb.shape, memo)
        return y.astype(x.dtype, copy=False)

    def backward(self, g):
        x = self.inputs[0]._data
        p = self.params
        axes, affine = p["axes"], p["affine"]
        need = self.needs_input_grad
        xp, nd, mean, rstd = xp_of(x), x.ndim, self.mean, self.rstd
        w = _c32(self.inputs[1]._data) if "w" in affine else None
        b = self.inputs[-1]._data if "b" in affine else None
        n = rstd.dtype.type(max(math.prod(x.shape[a] for a in axes), 1))
        gx = xp.empty(x.shape, rstd.dtype) if need[0] else None
        gw = xp.zeros(w.shape, rstd.dtype) if w is not None and need[1] else None
        gb = xp.zeros(b.shape, rstd.dtype) if b is not None and need[-1] else None
        memo = {}
        for sl in _blocks(x, axes):
            gc, r, wp, bp = _c32(g[sl]), _part(rstd, sl, nd), _part(w, sl, nd), _part(b, sl, nd)
            sh = gc.shape
            # NOTE: g and g d summed first over the dims where neither the groups nor w, b vary (fs; one pass
            # each), the rest from those small arrays; where w spans the reduced dims (layer_norm) fs is the block
            fs = np.broadcast_shapes(r.shape, *[(1,) * (nd - a.ndim) + a.shape for a in (wp, bp) if a is not None])
            d = xp.subtract(_c32(x[sl]), _op(mean, sl, sh, memo))
            gxb = None if gx is None else gx[sl]
            sg, sgd = _sum(gc, fs), _sum(xp.multiply(gc, d, out=gxb), fs)  # NOTE: g d in gx's block, then gx
            if gb is not None:
                _part(gb, sl, nd)[...] += _sum(sg, bp.shape)
            if gw is not None:
                _part(gw, sl, nd)[...] += _sum(sgd, wp.shape, r)
            if gxb is not None:
                m3 = _sum(sgd, r.shape, wp) * r ** 3 / n  # rstd^3 mean(g w d)
                m1 = r * _sum(sg, r.shape, wp) / n  # rstd mean(g w)
                xp.multiply(gc, _wide(r, sh) if w is None else _wide(r, fs) * _op(w, sl, fs, memo), out=gxb)
                d *= _wide(m3, sh)
                gxb -= d
                gxb -= _wide(m1, sh)
        cast = lambda a, t: None if a is None else a.astype(t.dtype, copy=False)  # noqa: E731
        return (cast(gx, x), *([cast(gw, self.inputs[1]._data)] if "w" in affine else []),
                *([cast(gb, b)] if "b" in affine else []))
