"""Scans and order statistics: prod, cumsum/cumprod/cummax/cummin/logcumsumexp, sort/argsort/topk,
kthvalue/median/nanmedian/mode/quantile, and the small reductions (var_mean, std_mean, aminmax, nansum,
nanmean, count_nonzero, any/all over dims, unique, bincount, histc).

Selections (sort, topk, kthvalue, median(dim), mode, cummax/cummin) compute their indices on arrays
and read the values through the differentiable ``along`` (GetItem), so gradients go to the selected
elements at every order. Primitives here (Prod, CumSum, CumProd, LogCumSumExp) write their backward
once with operators and ``self.call`` (double backward through create_graph).
"""
from __future__ import annotations

import collections
import math
import sys as _sys

import numpy as np

_tensor = __import__("sys").modules[__package__.rsplit(".", 1)[0] + ".tensor"]  # NOTE: the module (the package rebinds `tensor` to the function)
from .._dtypes import is_float as _isf
from ..autograd.primitive import Primitive, recorded, value_shaped
from ..backend import xp_of
from ._util import norm_dim, one_dim, quiet_family
from .elementwise import Exp, Log, Where
from .index import _dim_arg, _need, along
from .shape import Cat, GetItem

Tensor = _tensor.Tensor


def _rt(name, fields):
    """A namedtuple like torch.return_types.<name>."""
    cls = collections.namedtuple(name, fields)
    cls.__module__ = "gpugrad.return_types"
    return cls


sort_t, topk_t, kthvalue_t = _rt("sort", "values indices"), _rt("topk", "values indices"), _rt("kthvalue", "values indices")
median_t, nanmedian_t, mode_t = (_rt("median", "values indices"), _rt("nanmedian", "values indices"),
                                 _rt("mode", "values indices"))
cummax_t, cummin_t, aminmax_t = _rt("cummax", "values indices"), _rt("cummin", "values indices"), _rt("aminmax", "min max")


def _keep(dim, keepdim, axis, keepdims):
    return (dim if axis is None else axis), (keepdim if keepdims is None else keepdims)


def _sl(nd, axis, s):
    return (slice(None),) * axis + (s,)


def _int64_if_integral(t, dtype):
    return _tensor._reduction_input(t, dtype)


def _acc(dt):
    return np.float32 if dt == np.float16 else dt


# -- generic scan on arrays (numpy ufunc.accumulate; a log-step doubling scan elsewhere) ------------------
def _scan(name, x, axis):
    xp = xp_of(x)
    op = getattr(xp, name)
    if xp is np:
        return op.accumulate(x, axis=axis)
    n, s, y = x.shape[axis], 1, x.copy()  # pragma: no cover  (cupy)
    while s < n:  # pragma: no cover
        hi, lo = _sl(x.ndim, axis, slice(s, None)), _sl(x.ndim, axis, slice(None, n - s))
        z = y.copy()
        z[hi] = op(y[hi], y[lo])
        y, s = z, s * 2
    return y


def _flip(a, axis):
    return a[_sl(a.ndim, axis, slice(None, None, -1))]


# -- NumPy fast paths along a contiguous last axis -----------------------------------------------------
# NOTE: numpy's add/multiply.accumulate and multiply.reduce along the innermost axis are one scalar
# dependency chain per row (~3.5 ns per element); the paths below recast them as long vectorised passes.
# They reassociate float sums/products (a block order, as PyTorch's vectorised kernels do); special values
# come out as in the sequential scan (a product holding a NaN, or an inf and a zero, is NaN in any order).
_BLK = 32  # scan block: the in-block pass is a (rows, 32) x (32, 32) product / 31 strided multiplies
_PROD_W = 128  # prod: partial products of 128 lanes, then one short row reduction


def _fast_last(a, axis):
    """The blocked NumPy paths apply: a float NumPy array reduced/scanned along its last axis, large enough
    that the pass count matters more than the per-call overhead."""
    return (type(a) is np.ndarray and _isf(a.dtype) and a.ndim and axis in (-1, a.ndim - 1)
            and a.shape[-1] >= 2 * _BLK and a.size >= 1 << 14)


def _blocks(a, fill, copy):
    """a (..., n) as (rows, k, _BLK) (padded at the end with ``fill``: sums/products unchanged) and n."""
    n = a.shape[-1]
    m = -n % _BLK
    rows = a.reshape(-1, n)
    if m:
        rows = np.concatenate([rows, np.full((rows.shape[0], m), fill, a.dtype)], axis=1)
    elif copy:
        rows = rows.copy()
    return rows.reshape(rows.shape[0], -1, _BLK), n


def _cumsum_last(a, reverse):
    """cumsum (reverse: suffix sums) of float NumPy ``a`` along its last axis, or None if ``a`` holds a
    non-finite value. In-block sums are ONE matrix product with a triangular matrix of ones; the block totals
    are carried by a cumsum 32x shorter."""
    y, n = _blocks(a, 0, False)
    tri = np.ones((_BLK, _BLK), a.dtype)
    tri = np.tril(tri) if reverse else np.triu(tri)
    y = (y.reshape(-1, _BLK) @ tri).reshape(y.shape)
    tot = y[:, :, 0] if reverse else y[:, :, -1]  # NOTE: the all-ones column: the exact block totals
    if not np.isfinite(tot).all():
        return None  # NOTE: inf * 0 (the zeros of the triangle) would give NaN before an inf
    if reverse:
        y[:, :-1] += np.cumsum(tot[:, :0:-1], axis=1)[:, ::-1, None]
    else:
        y[:, 1:] += np.cumsum(tot[:, :-1], axis=1)[:, :, None]
    return y.reshape(y.shape[0], -1)[:, :n].reshape(a.shape)


def _cumprod_last(a):
    """cumprod of float NumPy ``a`` along its last axis: 31 strided multiplies scan every block of 32 at once,
    then the (recursive) cumprod of the block totals scales the blocks."""
    if not _fast_last(a, -1):
        return np.cumprod(a, axis=-1)
    y, n = _blocks(a, 1, True)
    for j in range(1, _BLK):
        np.multiply(y[:, :, j], y[:, :, j - 1], out=y[:, :, j])
    y[:, 1:] *= _cumprod_last(y[:, :-1, -1])[:, :, None]
    return y.reshape(y.shape[0], -1)[:, :n].reshape(a.shape)


def _prod_last(a, keepdims):
    """prod of float NumPy ``a`` over its last axis: products over the middle axis of (rows, k, 128) run as
    vector multiplies of 128 lanes; the lanes are then halved to 32 (compact halves) and the transposed
    (32, rows) partials reduced along axis 0 (vector multiplies again, not a scalar chain per row)."""
    n, w = a.shape[-1], _PROD_W
    k = n // w
    rows = a.reshape(-1, n)
    p = rows[:, :k * w].reshape(rows.shape[0], k, w).prod(axis=1)
    p[:, :n - k * w] *= rows[:, k * w:]
    while w > 32:  # NOTE: pairwise order (not sequential; PyTorch's vectorised order is neither): 0.12 -> 0.07 ms
        w //= 2
        p = np.multiply(p[:, :w], p[:, w:])
    return np.multiply.reduce(np.ascontiguousarray(p.T), axis=0).reshape(a.shape[:-1] + ((1,) if keepdims else ()))


# -- cumsum / cumprod / logcumsumexp -------------------------------------------------------------------
class CumSum(Primitive):
    saves = ()

    def forward(self, x, axis, reverse=False):
        self.axis, self.reverse = axis, reverse
        xp = xp_of(x)
        if _fast_last(x, axis):
            y = _cumsum_last(x.astype(_acc(x.dtype), copy=False), reverse)
            if y is not None:
                return y.astype(x.dtype, copy=False)
        a = _flip(x, axis) if reverse else x
        y = xp.cumsum(a, axis=axis, dtype=_acc(x.dtype)).astype(x.dtype, copy=False)
        return _flip(y, axis).copy() if reverse else y

    def backward(self, g):
        return self.call(CumSum, g, axis=self.axis, reverse=not self.reverse)


class CumProd(Primitive):
    save_output = True

    def forward(self, x, axis):
        self.axis = axis
        if _fast_last(x, axis):
            return _cumprod_last(x.astype(_acc(x.dtype), copy=False)).astype(x.dtype, copy=False)
        return xp_of(x).cumprod(x, axis=axis, dtype=_acc(x.dtype)).astype(x.dtype, copy=False)

    def backward(self, g):
        (x,) = self.values()
        y, ax = self.result(), self.axis
        xd = x._data if self.graph else x
        if not (xd == 0).any():
            # NOTE: as PyTorch's cumprod_backward without zeros: reversed cumsum of g * y, divided by x
            return self.call(CumSum, g * y, axis=ax, reverse=True) / x
        # with zeros: grad_i = y_{i-1} * S_i, S_i = g_i + x_{i+1} S_{i+1} (exact, differentiable)
        n = xd.shape[ax]
        gi = [self.call(GetItem, g, idx=_sl(xd.ndim, ax, slice(i, i + 1))) for i in range(n)]
        xi = [self.call(GetItem, x, idx=_sl(xd.ndim, ax, slice(i, i + 1))) for i in range(n)]
        S = [None] * n
        S[n - 1] = gi[n - 1]
        for i in range(n - 2, -1, -1):
            S[i] = gi[i] + xi[i + 1] * S[i + 1]
        out = [S[0]] + [self.call(GetItem, y, idx=_sl(xd.ndim, ax, slice(i - 1, i))) * S[i] for i in range(1, n)]
        return self.call(Cat, *out, dim=ax) if n > 1 else out[0]


class LogCumSumExp(Primitive):
    save_output = True

    def forward(self, x, axis, reverse=False):
        self.axis, self.reverse = axis, reverse
        a = _flip(x, axis) if reverse else x
        y = _scan("logaddexp", a.astype(_acc(x.dtype), copy=False), axis).astype(x.dtype, copy=False)
        return _flip(y, axis).copy() if reverse else y

    def backward(self, g):
        # NOTE: PyTorch's logcumsumexp_backward: the positive and negative parts of g in log space
        (x,) = self.values()
        y = self.result()
        gd = g._data if self.graph else g
        xp = xp_of(gd)
        low = xp.asarray(np.finfo(gd.dtype).min, dtype=gd.dtype)
        lg = self.call(Log, abs(g))
        out = None
        for mask in (gd > 0, gd < 0):
            lp = self.call(Where, lg, low, cond=mask) - y
            part = self.call(Exp, self.call(LogCumSumExp, lp, axis=self.axis, reverse=not self.reverse) + x)
            out = part if out is None else out - part
        return out


class Prod(Primitive):
    """Product over one axis (``axis=None``: over all elements of a 1-D input)."""
    save_output = True

    def forward(self, x, axis, keepdim):
        self.axis, self.keepdim, self.src = axis, keepdim, x.shape
        if _fast_last(x, axis) and x.shape[-1] >= _PROD_W:
            return _prod_last(x.astype(_acc(x.dtype), copy=False), keepdim).astype(x.dtype, copy=False)
        return xp_of(x).asarray(x.prod(axis=axis, keepdims=keepdim, dtype=_acc(x.dtype))).astype(x.dtype, copy=False)

    def backward(self, g):
        (x,) = self.values()
        y, ax = self.result(), self.axis
        xd = x._data if self.graph else x
        if not self.keepdim:
            ks = tuple(1 if i == ax else s for i, s in enumerate(self.src))
            g, y = g.reshape(ks), y.reshape(ks)
        if not (xd == 0).any():
            return g * y / x  # NOTE: PyTorch's prod_backward when there is no zero
        # NOTE: with zeros, PyTorch's prod_safe_zeros_backward: the product of the others as exclusive cumprods
        return g * _exclusive(self, x, ax, False) * _exclusive(self, x, ax, True)


def _exclusive(fn, x, ax, reverse):
    xd = x._data if fn.graph else x
    n = xd.shape[ax]
    xp = xp_of(xd)
    one = xp.ones(tuple(1 if i == ax else s for i, s in enumerate(xd.shape)), dtype=xd.dtype)
    if reverse:
        x = fn.call(GetItem, x, idx=_sl(xd.ndim, ax, slice(None, None, -1)))
    if n == 1:
        r = one if not fn.graph else _tensor.Tensor(one)
    else:
        head = fn.call(GetItem, x, idx=_sl(xd.ndim, ax, slice(0, n - 1)))
        r = fn.call(CumProd, fn.call(Cat, one, head, dim=ax), axis=ax)
    return fn.call(GetItem, r, idx=_sl(xd.ndim, ax, slice(None, None, -1))) if reverse else r


quiet_family(CumProd, LogCumSumExp, Prod)


def _float_only(t, fname):
    if not _isf(t.dtype):
        raise NotImplementedError(f"\"{fname}\" not implemented for '{_promo_name(t.dtype)}'")


def _promo_name(dt):
    from .._promotion import short_name  # noqa: PLC0415
    return short_name(dt)


def prod(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):  # noqa: A002
    _need("prod", input)
    dim, keepdim = _keep(dim, keepdim, axis, keepdims)
    if dim is None and keepdim:
        raise TypeError("prod() received an invalid combination of arguments - got (keepdim=bool), but expected one "
                        "of: (*, torch.dtype dtype = None) or (int dim, bool keepdim = False, *, torch.dtype dtype = "
                        "None): pass dim with keepdim")
    x = _int64_if_integral(input, dtype)
    if dim is None:
        if not _isf(x.dtype) or not x.requires_grad:
            return Tensor(x.xp.asarray(x._data.prod(dtype=_acc(x.dtype))).astype(x.dtype, copy=False))
        return Prod.apply(x.reshape(-1), axis=0, keepdim=False)
    d = one_dim(dim, x.ndim)
    if x.ndim == 0:
        return x.reshape(()) if not keepdim else x
    if not _isf(x.dtype):
        return Tensor(x._data.prod(axis=d, keepdims=keepdim, dtype=x.dtype))
    return Prod.apply(x, axis=d, keepdim=keepdim)


def _scan_op(input, dim, axis, dtype, fname, cls):
    _need(fname, input)
    dim = _dim_arg(dim, axis, fname)
    x = _int64_if_integral(input, dtype)
    d = one_dim(dim, x.ndim)
    if x.ndim == 0:
        return x.reshape(()) if x is not input else x.clone() if hasattr(x, "clone") else x * 1
    if not _isf(x.dtype):
        return Tensor(CumSum().forward(x._data, d) if cls is CumSum else x.xp.cumprod(x._data, axis=d, dtype=x.dtype))
    return cls.apply(x, axis=d)


def cumsum(input, dim=None, *, dtype=None, axis=None):  # noqa: A002
    return _scan_op(input, dim, axis, dtype, "cumsum", CumSum)


def cumprod(input, dim=None, *, dtype=None, axis=None):  # noqa: A002
    return _scan_op(input, dim, axis, dtype, "cumprod", CumProd)


def logcumsumexp(input, dim=None, *, axis=None):  # noqa: A002
    _need("logcumsumexp", input)
    dim = _dim_arg(dim, axis, "logcumsumexp")
    _float_only(input, "logcumsumexp_out_cpu")
    d = one_dim(dim, input.ndim)
    if input.ndim == 0:
        return input * 1
    return LogCumSumExp.apply(input, axis=d)


def _cumext(input, dim, axis, mode):
    fname = "cum" + mode
    _need(fname, input)
    dim = _dim_arg(dim, axis, fname)
    d = one_dim(dim, input.ndim)
    xp, a = input.xp, input._data
    if input.ndim == 0 or a.size == 0:
        return (cummax_t if mode == "max" else cummin_t)(input * 1 if _isf(input.dtype) else
                                                         Tensor(a.copy()), Tensor(xp.zeros(a.shape, np.int64)))
    v = _scan("maximum" if mode == "max" else "minimum", a, d)
    hit = a == v
    if _isf(a.dtype):
        hit |= xp.isnan(a)
    pos = xp.arange(a.shape[d], dtype=np.int64).reshape(tuple(-1 if i == d else 1 for i in range(a.ndim)))
    idx = _scan("maximum", xp.where(hit, pos, 0), d)
    vals = along(input, idx, d) if input.requires_grad else Tensor(v)
    return (cummax_t if mode == "max" else cummin_t)(vals, Tensor(idx))


def cummax(input, dim=None, *, axis=None):  # noqa: A002
    return _cumext(input, dim, axis, "max")


def cummin(input, dim=None, *, axis=None):  # noqa: A002
    return _cumext(input, dim, axis, "min")


# -- sorting -----------------------------------------------------------------------------------------------
def _argsort(a, d, descending):
    """Stable argsort along d (ties keep their order; NaN counts as the largest value, as PyTorch)."""
    xp = xp_of(a)
    if not descending:
        return xp.argsort(a, axis=d, kind="stable").astype(np.int64, copy=False)
    n = a.shape[d]
    r = xp.argsort(_flip(a, d), axis=d, kind="stable")
    return (n - 1 - _flip(r, d)).astype(np.int64)


def _take(t, idx, d):
    return along(t, idx, d) if t.requires_grad else Tensor(xp_of(idx).take_along_axis(t._data, idx, d)
                                                           if t.ndim else t._data.copy())


def sort(input, dim=-1, descending=False, *, stable=False, axis=None):  # noqa: A002
    _need("sort", input)
    dim = _dim_arg(None if axis is not None else dim, axis, "sort")
    d = one_dim(dim, input.ndim)
    if input.ndim == 0:
        return sort_t(_take(input, None, 0), Tensor(input.xp.zeros((), np.int64)))
    idx = _argsort(input._data, d, descending)
    return sort_t(_take(input, idx, d), Tensor(idx))


def argsort(input, dim=-1, descending=False, *, stable=False, axis=None):  # noqa: A002
    _need("argsort", input)
    dim = _dim_arg(None if axis is not None else dim, axis, "argsort")
    d = one_dim(dim, input.ndim)
    if input.ndim == 0:
        return Tensor(input.xp.zeros((), np.int64))
    return Tensor(_argsort(input._data, d, descending))


def topk(input, k, dim=-1, largest=True, sorted=True, *, axis=None):  # noqa: A002
    _need("topk", input)
    dim = _dim_arg(None if axis is not None else dim, axis, "topk")
    d = one_dim(dim, input.ndim)
    n = input.shape[d] if input.ndim else 1
    k = int(k)
    if not 0 <= k <= n:
        raise RuntimeError("selected index k out of range")
    if input.ndim == 0:
        return topk_t(_take(input, None, 0) if k else input.reshape(1)[:0].reshape(()), Tensor(input.xp.zeros((), np.int64)))
    idx = _topk_idx(input._data, d, k, largest)
    return topk_t(_take(input, idx, d), Tensor(idx))


def _eq_nan(a, t):
    """a == t with NaN equal to NaN (NaN is one value, the largest, in the orderings here)."""
    return (a == t) | (np.isnan(a) & np.isnan(t)) if _isf(a.dtype) else a == t


def _topk_idx(a, d, k, largest):
    """The first k of the stable (descending if largest) argsort along d: on the CPU via argpartition, then a stable
    sort of the k picked (in index order); rows where a value tied with the k-th one was left out take the full sort."""
    n, nd = a.shape[d], a.ndim
    if type(a) is not np.ndarray or not 0 < k < n or not (_isf(a.dtype) or a.dtype.kind in "biu"):
        return _argsort(a, d, largest)[_sl(nd, d, slice(0, k))]
    kth = n - k if largest else k - 1
    p = np.argpartition(a, kth, axis=d)
    sel = np.sort(p[_sl(nd, d, slice(n - k, None) if largest else slice(0, k))], axis=d)
    t = np.take_along_axis(a, p[_sl(nd, d, slice(kth, kth + 1))], d)
    v = np.take_along_axis(a, sel, d)
    idx = np.take_along_axis(sel, _argsort(v, d, largest), d)
    bad = _eq_nan(a, t).sum(axis=d) != _eq_nan(v, t).sum(axis=d)
    if bad.any():  # a tie at the boundary: argpartition may have picked other equal values than the stable sort
        im = np.moveaxis(idx, d, -1).copy()
        im[bad] = _argsort(np.moveaxis(a, d, -1)[bad], 1, largest)[:, :k]
        idx = np.moveaxis(im, -1, d)
    return idx


def _select_k(input, d, k_of_row, keepdim, rt, nan_first=False):
    """Values/indices at sorted position k (an int array broadcast over the other dims) along d."""
    a = input._data
    xp = input.xp
    if type(a) is np.ndarray and (_isf(a.dtype) or a.dtype.kind in "biu") and a.size and int(k_of_row.min()) == int(k_of_row.max()) \
            and not (_isf(a.dtype) and np.isnan(a).any()):
        # NOTE: one k for all rows and no NaN: argpartition at k, then, in rows where the k-th value is tied,
        # the index the stable sort puts at k (the (k - #smaller)-th of the equal values in index order)
        k = int(k_of_row.max())
        idx = np.argpartition(a, k, axis=d)[_sl(a.ndim, d, slice(k, k + 1))]
        t = np.take_along_axis(a, idx, d)
        eq = a == t
        tied = eq.sum(axis=d, keepdims=True) > 1
        if tied.any():
            j = k - (a < t).sum(axis=d, keepdims=True)
            it = np.argmax(eq & (np.cumsum(eq, axis=d) == j + 1), axis=d, keepdims=True)
            idx = np.where(tied, it, idx)
        idx = idx.astype(np.int64, copy=False)
        vals = _take(input, idx, d)
        if not keepdim:
            vals, idx = vals.squeeze(d), idx.squeeze(d)
        return rt(vals, Tensor(idx))
    srt = _argsort(a, d, False)
    kk = xp.broadcast_to(k_of_row, tuple(1 if i == d else s for i, s in enumerate(a.shape)))
    idx = xp.take_along_axis(srt, kk.astype(np.int64), d)
    vals = _take(input, idx, d)
    if not keepdim:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    return rt(vals, Tensor(idx))


def kthvalue(input, k, dim=-1, keepdim=False, *, axis=None):  # noqa: A002
    _need("kthvalue", input)
    dim = _dim_arg(None if axis is not None else dim, axis, "kthvalue")
    d = one_dim(dim, input.ndim)
    n = input.shape[d] if input.ndim else 1
    if not 1 <= int(k) <= n:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")
    if input.ndim == 0:
        return kthvalue_t(input * 1, Tensor(input.xp.zeros((), np.int64)))
    a, xp = input._data, input.xp
    kk = xp.full(tuple(1 if i == d else s for i, s in enumerate(a.shape)), int(k) - 1, dtype=np.int64)
    idx = xp.take_along_axis(_argsort(a, d, False), kk, d)
    if type(a) is np.ndarray:
        idx = _quickselect_ties(a, idx, d, int(k) - 1)
    vals = _take(input, idx, d)
    if not keepdim:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    return kthvalue_t(vals, Tensor(idx))


def _quickselect_ties(a, idx, d, k):
    """Where the k-th value is tied in its row, the index PyTorch's CPU quickselect picks (values are equal)."""
    v = np.take_along_axis(a, idx, d)
    eq = (a == v) | (np.isnan(a) & np.isnan(v))
    tied = np.moveaxis(eq.sum(axis=d, keepdims=True) > 1, d, -1).reshape(-1)
    if not tied.any():
        return idx
    rows = np.moveaxis(a, d, -1).reshape(-1, a.shape[d])
    out = np.moveaxis(idx, d, -1).reshape(-1).copy()
    for r in np.nonzero(tied)[0]:
        out[r] = _quickselect(rows[r].tolist(), k)
    return np.moveaxis(out.reshape(np.moveaxis(idx, d, -1).shape), -1, d)


def _quickselect(arr, k):
    """PyTorch's quick_select_template (aten/src/ATen/native/SortingUtils.h), on a Python list; NaN is largest."""
    isnan = math.isnan
    idx = list(range(len(arr)))

    def gt(x, y):
        return x > y or (isnan(x) and not isnan(y))

    def sw(i, j):
        arr[i], arr[j] = arr[j], arr[i]
        idx[i], idx[j] = idx[j], idx[i]
    lo, hi = 0, len(arr) - 1
    while hi > lo:
        if hi == lo + 1:
            if gt(arr[lo], arr[hi]):
                sw(lo, hi)
            break
        sw(lo + (hi - lo) // 2, lo + 1)  # NOTE: median of three for the pivot
        if gt(arr[lo + 1], arr[hi]):
            sw(lo + 1, hi)
        if gt(arr[lo], arr[hi]):
            sw(lo, hi)
        if gt(arr[lo + 1], arr[lo]):
            sw(lo + 1, lo)
        i, j, piv = lo + 1, hi, arr[lo]
        while True:
            i += 1
            while gt(piv, arr[i]):
                i += 1
            j -= 1
            while gt(arr[j], piv):
                j -= 1
            if j < i:
                break
            sw(i, j)
        sw(lo, j)
        if j <= k:
            lo = i
        if j >= k:
            hi = j - 1
    return idx[k]


class EvenPick(Primitive):
    """A 0-d value picked from x (median(), nanmedian()): the gradient is shared evenly among the elements
    equal to it (NaN: among the NaNs), as PyTorch's evenly_distribute_backward."""
    saves = ()

    def forward(self, x, value):
        xp = xp_of(x)
        m = xp.isnan(x) if _isf(value.dtype) and bool(xp.isnan(value)) else (x == value)
        self.w = (m / max(int(m.sum()), 1)).astype(x.dtype)
        return value.copy()

    def backward(self, g):
        return g * self.w


def _median(input, dim, keepdim, axis, keepdims, nan):
    fname = "nanmedian" if nan else "median"
    _need(fname, input)
    dim, keepdim = _keep(dim, keepdim, axis, keepdims)
    xp, a = input.xp, input._data
    if dim is None:
        if a.size == 0:
            return Tensor(xp.asarray(np.nan, dtype=a.dtype if _isf(a.dtype) else np.float32))
        flat = a.reshape(-1)
        isn = xp.isnan(flat) if _isf(a.dtype) else None
        m = flat.size - int(isn.sum()) if isn is not None else flat.size
        if nan:
            pos = max((m - 1) // 2, 0)
        else:
            pos = (flat.size - 1) // 2 if m == flat.size else m
        # NOTE: the value at sorted position pos (NaN last); a partition on the CPU (6x less than a sort)
        v = np.partition(flat, pos)[pos] if type(flat) is np.ndarray and (_isf(a.dtype) or a.dtype.kind in "biu") else xp.sort(flat)[pos]
        v = xp.asarray(v)
        if input.requires_grad:
            return EvenPick.apply(input, value=v)
        return Tensor(v)
    d = one_dim(dim, input.ndim)
    rt = nanmedian_t if nan else median_t
    if input.ndim == 0:
        return rt(input * 1 if _isf(input.dtype) else Tensor(a.copy()), Tensor(xp.zeros((), np.int64)))
    n = a.shape[d]
    if n == 0:
        raise IndexError(f"{fname}(): Expected reduction dim {d} to have non-zero size.")
    if _isf(a.dtype):
        nn_ = (~xp.isnan(a)).sum(axis=d, keepdims=True)
        k = xp.maximum((nn_ - 1) // 2, 0) if nan else xp.where(nn_ == n, (n - 1) // 2, nn_)
    else:
        k = xp.asarray((n - 1) // 2)
    return _select_k(input, d, k, keepdim, rt)


def median(input, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A002
    return _median(input, dim, keepdim, axis, keepdims, False)


def nanmedian(input, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A002
    return _median(input, dim, keepdim, axis, keepdims, True)


def mode(input, dim=-1, keepdim=False, *, axis=None, keepdims=None):  # noqa: A002
    _need("mode", input)
    dim, keepdim = _keep(dim, keepdim, axis, keepdims)
    d = one_dim(dim, input.ndim)
    xp, a = input.xp, input._data
    if input.ndim == 0:
        return mode_t(input * 1 if _isf(input.dtype) else Tensor(a.copy()), Tensor(xp.zeros((), np.int64)))
    n = a.shape[d]
    if n == 0:
        raise IndexError(f"mode(): Expected reduction dim {d} to have non-zero size.")
    srt = _argsort(a, d, False)
    s = xp.take_along_axis(a, srt, d)
    pos = xp.arange(n, dtype=np.int64).reshape(tuple(-1 if i == d else 1 for i in range(a.ndim)))
    first = xp.ones(s.shape, bool)
    last = xp.ones(s.shape, bool)
    neq = s[_sl(a.ndim, d, slice(1, None))] != s[_sl(a.ndim, d, slice(None, -1))]
    first[_sl(a.ndim, d, slice(1, None))] = neq
    last[_sl(a.ndim, d, slice(None, -1))] = neq
    start = _scan("maximum", xp.where(first, pos, 0), d)
    end = _flip(_scan("minimum", _flip(xp.where(last, pos, n), d), d), d)
    best = xp.argmax(end - start, axis=d)  # NOTE: the first maximum is the smallest of the most frequent values
    best = xp.expand_dims(best, d)
    idx = xp.take_along_axis(srt, xp.take_along_axis(end, best, d), d)
    vals = _take(input, idx, d)
    if not keepdim:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    return mode_t(vals, Tensor(idx))


_INTERP = ("linear", "lower", "higher", "midpoint", "nearest")


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear", axis=None, keepdims=None):  # noqa: A002
    _need("quantile", input)
    dim, keepdim = _keep(dim, keepdim, axis, keepdims)
    if input.dtype not in (np.float32, np.float64):
        raise RuntimeError("quantile() input tensor must be either float or double dtype")
    if interpolation not in _INTERP:
        raise ValueError(f"quantile() interpolation must be one of linear, lower, higher, midpoint or nearest. "
                         f"Got '{interpolation}'")
    xp = input.xp
    if isinstance(q, Tensor):
        if q.dtype != input.dtype:
            raise RuntimeError("quantile() q tensor must be same dtype as the input tensor")
        if q.ndim > 1:
            raise RuntimeError("quantile() q must be a scalar or 1D tensor")
        qa, scalar = q._data.reshape(-1), q.ndim == 0
    else:
        qa, scalar = xp.asarray([float(q)], dtype=input.dtype), True
    if qa.size and (bool((qa < 0).any()) or bool((qa > 1).any())):
        raise RuntimeError("quantile() q values must be in the range [0, 1]")
    if input.numel() == 0:
        raise RuntimeError("quantile() input tensor must be non-empty")
    if dim is None:
        x, d = input.reshape(-1), 0
        out_shape = [1] * input.ndim if keepdim else []
    else:
        d = one_dim(dim, input.ndim)
        x = input if input.ndim else input.reshape(1)
        out_shape = [1 if i == d else s for i, s in enumerate(input.shape)] if keepdim else \
            [s for i, s in enumerate(input.shape) if i != d]
    x = x.movedim(d, -1)
    srt = sort(x, -1).values
    sa = srt._data
    n = sa.shape[-1]
    ranks = qa * (n - 1)  # (Q,) in the input's dtype, as PyTorch
    ranks = xp.broadcast_to(ranks, sa.shape[:-1] + (qa.size,))
    hasnan = xp.isnan(sa).any(axis=-1, keepdims=True)
    ranks = xp.where(hasnan, xp.asarray(n - 1, dtype=sa.dtype), ranks)
    if interpolation == "lower":
        ranks = xp.floor(ranks)
    elif interpolation == "higher":
        ranks = xp.ceil(ranks)
    elif interpolation == "nearest":
        ranks = xp.round(ranks)
    below = ranks.astype(np.int64)
    vb = along(srt, below, sa.ndim - 1) if srt.requires_grad else Tensor(xp.take_along_axis(sa, below, -1))
    if interpolation in ("lower", "higher", "nearest"):
        r = vb
    else:
        above = xp.ceil(ranks).astype(np.int64)
        va = along(srt, above, sa.ndim - 1) if srt.requires_grad else Tensor(xp.take_along_axis(sa, above, -1))
        w = (xp.full(ranks.shape, 0.5, dtype=sa.dtype) if interpolation == "midpoint" else
             (ranks - below).astype(sa.dtype))
        # NOTE: PyTorch's lerp: start + w (end - start) for w < 0.5, else end - (end - start)(1 - w)
        diff = va - vb
        r = _tensor.where(Tensor(w < 0.5), vb + diff * Tensor(w), va - diff * Tensor(1 - w))
    # r: (*rest, Q) -> (Q, *out_shape)
    r = r.movedim(-1, 0).reshape(tuple([qa.size] + out_shape))
    return r.reshape(tuple(out_shape)) if scalar else r


# -- small reductions --------------------------------------------------------------------------------------
def _var_args(dim, unbiased, correction, fname):
    if isinstance(dim, bool):  # var_mean(x, False): the unbiased flag in the dim position
        dim, unbiased = None, dim
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    elif unbiased is not None:
        raise RuntimeError(f"{fname}(): can't specify both unbiased and correction")
    return dim, correction


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):  # noqa: A002
    _need("var_mean", input)
    dim, keepdim = _keep(dim, keepdim, axis, keepdims)
    dim, c = _var_args(dim, unbiased, correction, "var_mean")
    return input.var(dim, keepdim=keepdim, correction=c), input.mean(dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):  # noqa: A002
    _need("std_mean", input)
    dim, keepdim = _keep(dim, keepdim, axis, keepdims)
    dim, c = _var_args(dim, unbiased, correction, "std_mean")
    return input.std(dim, keepdim=keepdim, correction=c), input.mean(dim, keepdim)


def aminmax(input, *, dim=None, keepdim=False):  # noqa: A002
    _need("aminmax", input)
    if dim is not None and not isinstance(dim, (int, np.integer)):
        raise TypeError(f"aminmax(): argument 'dim' must be int, not {type(dim).__name__}")
    _tensor._empty_reduction(input, dim, "aminmax", RuntimeError(
        "aminmax(): cannot compute aminmax over an empty dimension as the operation has no identity."), sep=": ")
    return aminmax_t(input.amin(dim, keepdim), input.amax(dim, keepdim))


def nansum(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):  # noqa: A002
    _need("nansum", input)
    dim, keepdim = _keep(dim, keepdim, axis, keepdims)
    x = input
    if _isf(x.dtype):
        x = x.masked_fill(Tensor(x.xp.isnan(x._data)), 0)
    return x.sum(dim, keepdim, dtype=dtype)


def nanmean(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):  # noqa: A002
    _need("nanmean", input)
    dim, keepdim = _keep(dim, keepdim, axis, keepdims)
    x = input if dtype is None else input.type(dtype)
    if not _isf(x.dtype):
        raise RuntimeError(f"nanmean(): expected input to have floating point or complex dtype but got "
                           f"{_promo_name(x.dtype)}")
    cnt = Tensor((~x.xp.isnan(x._data)).sum(axis=_tensor._rd.norm(dim, x.ndim), keepdims=keepdim).astype(x.dtype))
    return nansum(x, dim, keepdim) / cnt


def count_nonzero(input, dim=None, *, axis=None):  # noqa: A002
    _need("count_nonzero", input)
    dim = dim if axis is None else axis
    a = input._data
    return Tensor(input.xp.asarray((a != 0).sum(axis=_tensor._rd.norm(dim, input.ndim))).astype(np.int64))


@recorded
def any_all(input, dim, keepdim, axis, keepdims, fname):
    dim, keepdim = _keep(dim, keepdim, axis, keepdims)
    a = input._data
    axes = norm_dim(dim, input.ndim)
    r = getattr(a, fname)(axis=axes, keepdims=keepdim) if dim is not None else getattr(a, fname)()
    if dim is None and keepdim:
        r = input.xp.asarray(r).reshape((1,) * a.ndim)
    r = input.xp.asarray(r)
    # NOTE: PyTorch keeps uint8 for uint8 inputs (bool otherwise)
    return Tensor(r.astype(np.uint8) if a.dtype == np.uint8 else r)


# -- unique / bincount / histc -----------------------------------------------------------------------------
@value_shaped
def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
    _need("unique", input)
    xp, a = input.xp, input._data
    if dim is None:
        rows, d = a.reshape(-1, 1), None
    else:
        d = one_dim(dim, a.ndim)
        if a.ndim == 0:
            raise IndexError(f"unique(): dim {dim} is out of range for a 0-d tensor")
        rows = xp.moveaxis(a, d, 0).reshape(a.shape[d], -1)
    m = rows.shape[0]
    if d is None and m and type(a) is np.ndarray and (_isf(a.dtype) or a.dtype.kind in "biu"):
        # NOTE: 1-D: a plain sort (a stable argsort for floats or when the inverse is asked: the same order as
        # the lexsort below), inverse and counts only when asked
        flat = a.reshape(-1)
        if return_inverse or _isf(a.dtype):
            order = np.argsort(flat, kind="stable")
            sr = flat[order]
        else:
            order, sr = None, np.sort(flat)
        new = np.empty(m, bool)
        new[0] = True
        np.not_equal(sr[1:], sr[:-1], out=new[1:])
        res = [Tensor(sr[new])]
        if return_inverse:
            inv = np.empty(m, np.int64)
            inv[order] = np.cumsum(new) - 1
            res.append(Tensor(inv.reshape(a.shape)))
        if return_counts:
            starts = np.flatnonzero(new)
            res.append(Tensor(np.diff(np.append(starts, m)).astype(np.int64)))
        return res[0] if len(res) == 1 else tuple(res)
    if m == 0:
        uniq = rows
        inv = xp.zeros((0,), np.int64)
        cnt = xp.zeros((0,), np.int64)
    else:
        order = (xp.lexsort(rows.T[::-1]) if rows.shape[1] else xp.arange(m)).astype(np.int64)
        sr = rows[order]
        new = xp.ones(m, bool)
        if rows.shape[1]:
            new[1:] = (sr[1:] != sr[:-1]).any(axis=1)
        else:
            new[1:] = False
        run = xp.cumsum(new) - 1
        uniq = sr[new]
        inv = xp.empty(m, np.int64)
        inv[order] = run
        starts = xp.nonzero(new)[0]
        cnt = xp.diff(xp.concatenate([starts, xp.asarray([m])])).astype(np.int64)
    if d is None:
        out = uniq.reshape(-1)
        inv = inv.reshape(a.shape)
    else:
        rest = a.shape[:d] + a.shape[d + 1:]
        out = xp.moveaxis(uniq.reshape((uniq.shape[0],) + rest), 0, d)
    res = [Tensor(xp.ascontiguousarray(out))]
    if return_inverse:
        res.append(Tensor(inv))
    if return_counts:
        res.append(Tensor(cnt))
    return res[0] if len(res) == 1 else tuple(res)


@value_shaped
def bincount(input, weights=None, minlength=0):  # noqa: A002
    _need("bincount", input)
    a = input._data
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    if a.dtype.kind not in "iub":
        raise NotImplementedError(f"\"bincount_cpu\" not implemented for '{_promo_name(a.dtype)}'")
    if a.ndim != 1 or (a.size and int(a.min()) < 0):
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    xp = input.xp
    if weights is None:
        return Tensor(xp.bincount(a, minlength=minlength).astype(np.int64))
    w = weights._data
    if w.ndim != 1 or w.shape[0] != a.shape[0]:
        raise RuntimeError("weights should be 1-d and have the same length as input")
    dt = np.float32 if w.dtype == np.float32 else np.float64
    return Tensor(xp.bincount(a, weights=w.astype(np.float64), minlength=minlength).astype(dt))


def histc(input, bins=100, min=0, max=0):  # noqa: A002
    _need("histc", input)
    a = input._data
    if not _isf(a.dtype):
        raise NotImplementedError(f"\"histogram_cpu\" not implemented for '{_promo_name(a.dtype)}'")
    if bins <= 0:
        raise RuntimeError("torch.histc: bins must be > 0")
    xp = input.xp
    lo, hi = float(min), float(max)
    if lo == hi and a.size:
        lo, hi = float(a.min()), float(a.max())
    if lo == hi:
        # NOTE: PyTorch widens a constant range by 1 each side in the input's dtype: 1e9 in float32 stays 1e9, and
        # its bin formula then divides by zero; refused here
        lo, hi = (float(a.dtype.type(v)) for v in (lo - 1, hi + 1))
    if lo > hi:
        raise RuntimeError("torch.histc: max must be larger than min")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise RuntimeError(f"torch.histc: range of [{lo}, {hi}] is not finite")
    if lo == hi:
        raise RuntimeError(f"torch.histc: every value is {lo} and the range widened by 1 each side rounds back to it "
                           f"in {_promo_name(a.dtype)}: no bins can be formed; pass min= and max= further apart, or "
                           "a float64 input")
    v = a.reshape(-1)
    v = v[(v >= lo) & (v <= hi)]
    pos = ((v - lo) * bins / (hi - lo)).astype(np.int64)
    pos = xp.minimum(pos, bins - 1)
    return Tensor(xp.bincount(pos, minlength=bins).astype(a.dtype))


_tensor._sc = _sys.modules[__name__]
