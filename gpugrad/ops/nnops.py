"""Primitives of the nn ops that a composite cannot match (gpugrad.nn.functional uses them)."""
from __future__ import annotations

import math
import warnings

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


def _blocks(x, axes, scale=1):
    """Index tuples of the blocks of ``x`` (``()``: the whole array); ``scale``: blocks of up to ``scale`` times
    _CHUNK elements, at least two (NOTE: group_norm's long runs, few passes per block: 2^19 measured ~5% faster
    than 2^18 on the benchmark, the per-block Python work halved; layer_norm's short rows: slower)."""
    keep = [i for i in range(x.ndim) if i not in axes]
    if type(x) is not np.ndarray or x.size <= 2 * _CHUNK or not keep or keep[0]:
        return [()]  # NOTE: reduced leading dims (batch_norm) would make strided blocks: measured slower than one
    k = keep[0]
    step = max(1, x.shape[k] * min(_CHUNK * scale, x.size // 2) // x.size)
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


_vecdot = getattr(np, "vecdot", None)  # NOTE: NumPy >= 2.0
_LONG = 256


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


def _c_standardize(x, *wb, axes, eps, mean=None, var=None, work=None, affine="", shape=None):
    """The composite (create_graph): the same two-pass formula in core Tensor ops."""
    xs = x if shape is None else x.reshape(shape)
    xc = xs - xs.mean(axes, keepdim=True)
    y = xc * ((xc * xc).mean(axes, keepdim=True) + eps).rsqrt()
    if "w" in affine:
        y = y * wb[0]
    y = y + wb[-1] if "b" in affine else y
    return y if shape is None else y.reshape(x.shape)


def _c32(a):
    return a.astype(np.float32) if a.dtype in LOWP else a


class _Buf:
    """One block-sized scratch array, handed out in each block's shape (the last block may be shorter)."""

    def __init__(self, blocks, x, dtype):
        self.a = np.empty(math.prod(x[blocks[0]].shape), dtype)

    def get(self, shape):
        return self.a[:math.prod(shape)].reshape(shape)


def _bufsize(shape, *ops):
    """The ufunc buffer size (a multiple of 16; 0: NumPy's default) for elementwise passes over ``shape`` with
    the broadcast operands ``ops`` (None skipped). NOTE: where an operand repeats each value along runs of
    _SHORT..8191 elements (group_norm's channels and groups), NumPy's default 8192-element buffer spans several
    runs and copies the operand into it: measured 2-3x slower than passes with the buffer no longer than a run."""
    run = math.prod(shape)
    for a in ops:
        if a is not None and a.size > 1:
            s = (1,) * (len(shape) - a.ndim) + a.shape
            one, j = s[-1] == 1, len(shape)
            while j and (s[j - 1] == 1 if one else s[j - 1] == shape[j - 1]):
                j -= 1
            run = min(run, math.prod(shape[j:]))
    return run // 16 * 16 if _SHORT <= run < np.getbufsize() else 0


def _dot128(x2, ones, out):
    """The sums of the 128-element chunks of the rows of ``x2`` (BLAS dot products with ones; NOTE: np.vecdot
    reads a cold block measured 1.4x faster than the matrix-vector product, with the same rounding class)."""
    c = x2.reshape(-1, 128)
    return np.matmul(c, ones, out=out) if _vecdot is None else _vecdot(c, ones, out=out)


def _fused_forward(x, axes, eps, w, b, y, blocks):
    """:func:`moments` and the output written into ``y`` (x's shape, the compute dtype) block by block on NumPy,
    for trailing ``axes`` (layer_norm, group_norm's view): each block's passes (sum, centre, square and sum, scale,
    shift) run while it is in cache, on rows of the reduced size k. The sums: as moments' (BLAS for rows shorter
    than _SHORT, NumPy's pairwise sum for longer ones), but rows that are multiples of 128 are summed in 128-element
    chunks by BLAS (:func:`_dot128`) and the chunk sums pairwise (NOTE: NumPy's own pairwise blocking, 2x faster,
    measured as accurate: max relative error 1.27e-7 against 1.26e-7 for 4096 values around 300), and the squares
    of long rows by np.vecdot (BLAS dots: no product array, 2x faster, relative error 1.2e-7 against 2.6e-7 for
    4096 squares). Short rows: per-row values expanded by :func:`_expand`, and y = d (rstd w) + b where w varies
    along the rows only (layer_norm). Returns (mean, rstd)."""
    nd, ct, j = x.ndim, y.dtype, x.ndim - len(axes)
    k, rows = math.prod(x.shape[j:]), math.prod(x.shape[1:j])
    mshape = x.shape[:j] + (1,) * len(axes)
    mean, var, rstd = np.empty(mshape, ct), np.empty(mshape, ct), np.empty(mshape, ct)
    mean1, var1, rstd1 = mean.reshape(-1), var.reshape(-1), rstd.reshape(-1)
    n, chunks, rowwise = ct.type(k), k >= _SHORT and k % 128 == 0, _rowwise(x, j, w, b)
    fold = w is not None and math.prod(np.broadcast_shapes(mshape, w.shape)) * 8 <= x.size
    buf, memo, ones = _Buf(blocks, x, ct), {}, np.ones(128 if chunks else k, ct)
    if k < _SHORT:
        p, q1, qw = _expanders(blocks, rows, k, ct, w if rowwise else None)
        bt = np.broadcast_to(b.reshape(-1), (len(p), k)).copy() if rowwise and b is not None else None
    old = np.getbufsize()
    # NOTE: the buffer size is set inside the errstate block (on NumPy 2 leaving one restores both)
    with np.errstate(invalid="ignore", divide="ignore"):  # NOTE: as moments (inf or nan input: nan, quietly)
        try:
            np.setbufsize(_bufsize(x.shape, mean, w, b) or old)
            for sl in blocks:
                rs = _rows(sl, rows, x.shape[0])
                xb, yb, mb, vb, rb = _c32(x[sl]), y[sl], mean1[rs], var1[rs], rstd1[rs]
                x2, y2 = xb.reshape(-1, k), yb.reshape(-1, k)
                if chunks:
                    np.sum(_dot128(x2, ones, buf.get((x2.size // 128,))).reshape(-1, k // 128), axis=1, out=mb)
                else:
                    np.sum(x2, axis=1, out=mb) if k >= _SHORT else np.matmul(x2, ones, out=mb)
                mb /= n
                e = buf.get(x2.shape)
                np.subtract(x2, mb[:, None] if k >= _SHORT else _expand(p[:len(mb)], mb, q1, e), out=y2)
                if k >= _LONG and _vecdot is not None:
                    _vecdot(y2, y2, out=vb)  # NOTE: the two-pass variance
                else:
                    np.matmul(np.multiply(y2, y2, out=e), ones, out=vb)
                vb /= n
                np.divide(1, np.sqrt(np.add(vb, eps, out=rb), out=rb), out=rb)
                if rowwise:
                    y2 *= _expand(p[:len(mb)], rb, qw, e)
                    if bt is not None:
                        y2 += bt[:len(mb)]
                    continue
                r = rstd[sl]
                if fold:  # NOTE: as the one-block forward: rstd w in one pass where that product is small
                    yb *= _wide(r * _part(w, sl, nd), yb.shape)
                else:
                    yb *= _wide(r, yb.shape)
                    if w is not None:
                        yb *= _op(w, sl, yb.shape, memo)
                if b is not None:
                    yb += _op(b, sl, yb.shape, memo)
        finally:
            np.setbufsize(old)
    return mean, rstd


def _rows(sl, rows, n):
    """The rows (of ``rows`` each per index of axis 0) of block ``sl``, a slice along axis 0 of ``n``."""
    return slice(sl[0].start * rows, min(sl[0].stop, n) * rows)


def _long_runs(x, mshape, *ops):
    """j where x.shape[j:] are runs of at least _LONG elements (one block: contiguous) along which the groups
    (``mshape``) and ``ops`` (None skipped) are constant (group_norm, instance_norm), else None."""
    fs = np.broadcast_shapes(mshape, *[a.shape for a in ops if a is not None])
    j = x.ndim
    while j and fs[j - 1] == 1:
        j -= 1
    return j if fs[:j] == x.shape[:j] and math.prod(x.shape[j:]) >= _LONG else None


def _backward_runs(x, g, gx, w, b, gw, gb, mean, rstd, n, blocks, j):
    """Standardize's backward on NumPy blocks where the groups and w, b are constant along long trailing runs
    (x.shape[j:], group_norm's channels, instance_norm's planes): the sums of g and g (x - mean) per run are
    two np.vecdot calls per block into whole arrays (gw, gb come from those once, after the blocks), x - mean goes
    into one reused buffer, and gx = (rstd w) g - (x - mean) rstd^3 mean(g w d)
    - rstd mean(g w) is written into gx's block in four in-place passes."""
    nd, ct = x.ndim, rstd.dtype
    k = math.prod(x.shape[j:])
    rows = math.prod(x.shape[1:j])  # NOTE: runs per index of axis 0 (the blocks slice axis 0)
    sg, sgd = np.empty(x.shape[:j] + (1,) * (nd - j), ct), np.empty(x.shape[:j] + (1,) * (nd - j), ct)
    sg2, sgd2, ones = sg.reshape(-1), sgd.reshape(-1), np.ones(k, ct)
    # NOTE: the per-group factors from whole small arrays where they do not depend on the block's sums
    red = tuple(i for i in range(nd) if rstd.shape[i] == 1 != sg.shape[i])  # the group's runs (w varies on them)
    c = rstd if w is None else rstd * w  # rstd w, per run
    r3 = rstd ** 3
    dbuf = _Buf(blocks, x, ct)
    old = np.getbufsize()
    try:
        np.setbufsize(_bufsize(x.shape, mean, w, b) or old)
        for sl in blocks:
            gc, rs = _c32(g[sl]), _rows(sl, rows, x.shape[0])
            d = np.subtract(_c32(x[sl]), mean[sl], out=dbuf.get(gc.shape))
            g2 = gc.reshape(-1, k)
            _vecdot(g2, ones, out=sg2[rs])  # NOTE: as _dot128: reads the cold block faster than np.matmul
            _vecdot(g2, d.reshape(-1, k), out=sgd2[rs])
            if gx is not None:
                gxb = gx[sl]
                t3, t1 = (sgd[sl], sg[sl]) if w is None else (sgd[sl] * w, sg[sl] * w)
                m3 = (t3.sum(axis=red, keepdims=True) if red else t3) * r3[sl] / n  # rstd^3 mean(g w d)
                m1 = rstd[sl] * (t1.sum(axis=red, keepdims=True) if red else t1) / n  # rstd mean(g w)
                np.multiply(gc, c[sl], out=gxb)
                d *= m3
                gxb -= d
                gxb -= m1
    finally:
        np.setbufsize(old)
    if gb is not None:
        gb[...] = _sum(sg, gb.shape)
    if gw is not None:
        gw[...] = _sum(sgd, gw.shape, rstd)


def _rowwise(x, j, *ops):
    """Whether the trailing runs x.shape[j:] are short rows (layer_norm's) and each of ``ops`` (None skipped)
    varies along them only: then per-row values are expanded by :func:`_expand`."""
    k = math.prod(x.shape[j:])
    row = (1,) * j + x.shape[j:]
    return k < _SHORT and all(a is None or a.size == k and (1,) * (x.ndim - a.ndim) + a.shape == row for a in ops)


def _expanders(blocks, rows, k, ct, w=None):
    """:func:`_expand`'s (block rows, 2) scratch and (2, k) right factors: ones, and w where given (else ones)."""
    p, q1 = np.zeros(((blocks[0][0].stop - blocks[0][0].start) * rows, 2), ct), np.zeros((2, k), ct)
    q1[0] = 1
    qw = q1 if w is None else np.zeros((2, k), ct)
    qw[0] = q1[0] if w is None else w.reshape(-1)
    return p, q1, qw


def _expand(p, col, q, out):
    """The outer product col (x) q[0] into ``out`` (rows x k): ``p[:, 0] = col`` and one BLAS product p @ q, with
    p's second column and q's second row zero, so each element is col_i q_j rounded once, as col * q[0] would give.
    NOTE: short rows' per-row values: the (rows, 2) @ (2, k) product measured 0.16 ms per 8 MB where np.repeat
    costs 0.25 and a broadcast ufunc pass over rows of 32 about 0.6 (a (rows, 1) @ (1, k) product: 2.5)."""
    p[:, 0] = col
    return np.matmul(p, q, out=out)


def _backward_rows(x, g, gx, w, b, gw, gb, mean, rstd, n, blocks, j):
    """Standardize's backward on NumPy blocks of short rows (layer_norm; see _rowwise): per block, d = x - mean, the
    row sums g d w and g w and the column sums g d rstd and g are matrix-vector products, and gx = g (rstd w)
    - d rstd^3 mean(g w d) - rstd mean(g w) takes three in-place passes, each per-row factor expanded by _expand."""
    ct, k, rows = rstd.dtype, math.prod(x.shape[j:]), math.prod(x.shape[1:j])
    p, q1, qw = _expanders(blocks, rows, k, ct, w)
    w1, ones = qw[0], np.ones(len(p), ct)
    dbuf, ebuf, tbuf = _Buf(blocks, x, ct), _Buf(blocks, x, ct), _Buf(blocks, x, ct) if gx is None else None
    for sl in blocks:
        rs = _rows(sl, rows, x.shape[0])
        x2, g2 = _c32(x[sl]).reshape(-1, k), _c32(g[sl]).reshape(-1, k)
        pb, e, r = p[:len(x2)], ebuf.get(x2.shape), rstd.reshape(-1)[rs]
        d = np.subtract(x2, _expand(pb, mean.reshape(-1)[rs], q1, e), out=dbuf.get(x2.shape))
        gx2 = None if gx is None else gx[sl].reshape(-1, k)
        gd = np.multiply(g2, d, out=tbuf.get(x2.shape) if gx2 is None else gx2)  # NOTE: in gx's block, then gx
        if gb is not None:
            gb.reshape(-1)[...] += np.matmul(ones[:len(x2)], g2)
        if gw is not None:
            gw.reshape(-1)[...] += np.matmul(r, gd)
        if gx2 is not None:
            m3 = np.matmul(gd, w1) * r ** 3 / n  # rstd^3 mean(g w d)
            m1 = r * np.matmul(g2, w1) / n  # rstd mean(g w)
            np.multiply(g2, _expand(pb, r, qw, e), out=gx2)
            d *= _expand(pb, m3, q1, e)
            gx2 -= d
            gx2 -= _expand(pb, m1, q1, e)


class Standardize(Primitive):
    """y = (x - mean) * rstd [* w] [+ b] over ``axes``, rstd = 1 / sqrt(var + eps), from x's batch ``mean`` and
    biased ``var`` and ``work = [x - mean]`` (:func:`moments`, called by the caller, which also updates running
    statistics from them; the forward takes the work array out of the list and writes y into it); ``affine``
    ("", "w", "b", "wb") says which of w, b follow x as inputs (Tensors broadcastable against x). With ``mean``
    None (layer_norm, group_norm: no running statistics) the node takes the moments itself, on NumPy's blocks
    together with the output (_fused_forward); ``shape``: the node works on that view of x (group_norm's
    (n, groups, channels per group, rest)), its output and x's gradient have x's shape.

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
        return (0, 1) if "w" in self.affine else (0,)

    def forward(self, x, *wb, axes, eps, mean=None, var=None, work=None, affine="", shape=None):
        xp = xp_of(x)
        # NOTE: what backward needs is kept on the node (a gg.compile replay reruns forward on a bare node)
        self.axes, self.affine, self.shape = axes, affine, shape
        xv = x if shape is None else x.reshape(shape)  # NOTE: group_norm's (n, groups, channels per group, -1)
        w, b = (_c32(wb[0]) if "w" in affine else None), (_c32(wb[-1]) if "b" in affine else None)
        if mean is None:  # NOTE: layer_norm, group_norm: the moments are taken here, block by block with the output
            trailing = axes == tuple(range(xv.ndim - len(axes), xv.ndim))
            mshape = tuple(1 if i in axes else s for i, s in enumerate(xv.shape))
            blocks = _blocks(xv, axes, 2 if _long_runs(xv, mshape, w, b) else 1)
            if len(blocks) > 1 and trailing:
                y = np.empty(x.shape, np.float32 if x.dtype in LOWP else x.dtype)
                self.mean, self.rstd = _fused_forward(xv, axes, eps, w, b, y.reshape(xv.shape), blocks)
                return y.astype(x.dtype, copy=False)
            # NOTE: an empty group: NaN statistics, quietly (numpy's "mean of empty slice" too), as _standardized
            with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
                if xv.size == 0:
                    warnings.simplefilter("ignore", RuntimeWarning)
                d, mean, var = moments(xv, axes)
            work = [d]
        self.mean, self.rstd = mean, 1 / xp.sqrt(var + eps)
        y, s = work.pop(), self.rstd
        if w is not None and math.prod(np.broadcast_shapes(s.shape, w.shape)) * 8 <= x.size:
            s, w = s * w, None  # NOTE: one pass with rstd w where that product is small (not layer_norm's)
        # NOTE: (x - mean) * (rstd w) + b, not x * scale + (b - mean * scale): no cancellation when |mean| >> std
        memo = {}
        for sl in _blocks(y, axes):
            yb = y[sl]
            yb *= _op(s, sl, yb.shape, memo)
            if w is not None:
                yb *= _op(w, sl, yb.shape, memo)
            if b is not None:
                yb += _op(b, sl, yb.shape, memo)
        if shape is not None:
            y = y.reshape(x.shape)
        return y.astype(x.dtype, copy=False)

    def backward(self, g):
        x = self.inputs[0]._data
        axes, affine, shape = self.axes, self.affine, self.shape
        need = self.needs_input_grad
        xp, mean, rstd = xp_of(x), self.mean, self.rstd
        cast = lambda a, t: None if a is None else a.astype(t.dtype, copy=False)  # noqa: E731
        w = _c32(self.inputs[1]._data) if "w" in affine else None
        b = self.inputs[-1]._data if "b" in affine else None
        # NOTE: gx is allocated in x's own shape and written through its view: an array with no base, which the
        # engine stores as .grad without a copy (a reshaped gradient would be copied, 8 MB for the benchmark's)
        gx = xp.empty(x.shape, rstd.dtype) if need[0] else None
        if shape is not None:
            x, g, gxv = x.reshape(shape), g.reshape(shape), None if gx is None else gx.reshape(shape)
        else:
            gxv = gx
        nd = x.ndim
        n = rstd.dtype.type(max(math.prod(x.shape[a] for a in axes), 1))
        gw = xp.zeros(w.shape, rstd.dtype) if w is not None and need[1] else None
        gb = xp.zeros(b.shape, rstd.dtype) if b is not None and need[-1] else None
        j = _long_runs(x, rstd.shape, w, b)
        blocks, fast = _blocks(x, axes, 1 if j is None else 2), None
        if len(blocks) > 1 and j is not None and _vecdot is not None:
            fast = _backward_runs
        elif len(blocks) > 1 and axes == tuple(range(nd - len(axes), nd)) and _rowwise(x, nd - len(axes), w, b):
            fast, j = _backward_rows, nd - len(axes)
        if fast is not None:
            fast(x, g, gxv, w, b, gw, gb, mean, rstd, n, blocks, j)
            blocks = ()  # NOTE: done: the generic loop below has no block to run
        memo = {}
        for sl in blocks:
            gc, r, wp, bp = _c32(g[sl]), _part(rstd, sl, nd), _part(w, sl, nd), _part(b, sl, nd)
            sh = gc.shape
            # NOTE: g and g d summed first over the dims where neither the groups nor w, b vary (fs; one pass
            # each), the rest from those small arrays; where w spans the reduced dims (layer_norm) fs is the block
            fs = np.broadcast_shapes(r.shape, *[(1,) * (nd - a.ndim) + a.shape for a in (wp, bp) if a is not None])
            d = xp.subtract(_c32(x[sl]), _op(mean, sl, sh, memo))
            gxb = None if gxv is None else gxv[sl]
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
        return (cast(gx, x), *([cast(gw, self.inputs[1]._data)] if "w" in affine else []),
                *([cast(gb, b)] if "b" in affine else []))
