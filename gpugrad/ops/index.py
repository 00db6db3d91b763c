"""Indexing by tensors: gather, index_select, take, take_along_dim, masked_select, nonzero/argwhere,
one-argument where, scatter_reduce.

Selections are composites of the differentiable GetItem (backward: IndexAdd, whose backward is
GetItem again), so first and higher order gradients need no formulas here. Indices are checked
before NumPy/CuPy sees them: an out-of-range index raises PyTorch's error naming the index and the
size of the dimension, never a NumPy traceback.
"""
from __future__ import annotations

import math
import sys as _sys

import numpy as np

_tensor = __import__("sys").modules[__package__.rsplit(".", 1)[0] + ".tensor"]  # NOTE: the module (the package rebinds `tensor` to the function)
from .._dtypes import is_float as _isf
from ..autograd.primitive import Primitive, value_shaped
from ..backend import xp_of
from . import elementwise as _ew
from ._util import one_dim, quiet_family
from .shape import Expand, GetItem, Trusted, flat_index

Tensor = _tensor.Tensor

__all__ = ["gather", "index_select", "take", "take_along_dim", "masked_select", "nonzero", "argwhere", "where",
           "scatter_reduce", "along", "resample"]


def _need(fname, x, arg="input", pos=1):
    if not isinstance(x, Tensor):
        from .._errors import not_a_tensor  # noqa: PLC0415
        raise not_a_tensor(x, fname) if pos is None else TypeError(
            f"{fname}(): argument '{arg}' (position {pos}) must be Tensor, not {type(x).__name__}")


def _dim_arg(dim, axis, fname, required=True):
    """PyTorch accepts ``axis=`` for ``dim=`` (numpy compatibility)."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{fname}() got multiple values for argument 'dim'")
        return axis
    if dim is None and required:
        raise TypeError(f"{fname}() missing 1 required positional argument: \"dim\"")
    return dim


def _index_array(t, index, fname, arg="index", kinds=("int64",)):
    """The index Tensor's array (checked: a Tensor of an allowed integer dtype, on t's device)."""
    if not isinstance(index, Tensor):
        raise TypeError(f"{fname}(): argument '{arg}' must be Tensor, not {type(index).__name__}")
    a = index._data
    if a.dtype.name not in kinds:
        raise RuntimeError(f"{fname}(): Expected dtype {' or '.join(kinds)} for {arg}")
    if type(a) is not type(t._data):
        raise RuntimeError(f"{fname}(): {arg} is on {index.device} but input is on {t.device}; move it first")
    return a


def _check_range(a, n, fname, d, negative_ok=False):
    """Raise PyTorch's error for the first index outside [0, n) (or [-n, n)) along dimension d."""
    if not a.size:
        return
    lo, hi = int(a.min()), int(a.max())
    low = -n if negative_ok else 0
    if lo < low or hi >= n:
        bad = hi if hi >= n else lo
        raise RuntimeError(f"{fname}(): index {bad} is out of bounds for dimension {d} with size {n}")


def _grid(idx, d):
    """The advanced-index tuple reading x[..., idx[i,j,k], ...] at position d (numpy's take_along_axis)."""
    xp = xp_of(idx)
    nd = idx.ndim
    out = []
    for i in range(nd):
        if i == d:
            out.append(idx)
        else:
            shape = [1] * nd
            shape[i] = idx.shape[i]
            out.append(xp.arange(idx.shape[i]).reshape(shape))
    return Trusted(out)


def along(t, idx, d):
    """Differentiable x.gather(d, idx) for a trusted int array idx (same ndim as t; in range)."""
    if t.ndim == 0:
        return GetItem.apply(t, idx=())  # NOTE: a 0-d tensor has one element; idx is all zeros
    if t._data.flags.c_contiguous and idx.size:
        # NOTE: the linear index built once here (idx times the stride of d plus a small broadcast base) serves
        # the forward take and the backward add.at; the grid's general flat_index costs ~3x more, in both
        xp = xp_of(idx)
        st = [s // t._data.itemsize for s in t._data.strides]
        lin = idx.astype(np.intp) * st[d] if st[d] != 1 else idx.astype(np.intp)
        for i in range(idx.ndim):
            if i != d and idx.shape[i] > 1:
                lin += (xp.arange(idx.shape[i], dtype=np.intp) * st[i]).reshape((-1,) + (1,) * (idx.ndim - 1 - i))
        return GetItem.apply(t.reshape(-1), idx=Trusted((lin.reshape(-1),))).reshape(tuple(idx.shape))
    return GetItem.apply(t, idx=_grid(idx, d))


# -- gather / index_select / take / take_along_dim ---------------------------------------------------
def gather(input, dim=None, index=None, *, sparse_grad=False, axis=None):  # noqa: A002
    _need("gather", input)
    dim = _dim_arg(dim, axis, "gather")
    idx = _index_array(input, index, "gather", kinds=("int64", "int32"))
    nd = input.ndim
    if idx.ndim != nd and not (max(idx.ndim, 1) == max(nd, 1)):
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    d = one_dim(dim, nd)
    if nd == 0 or idx.ndim == 0:
        x = input.reshape(-1) if nd == 0 else input
        i1 = idx.reshape(-1) if idx.ndim == 0 else idx
        _check_range(i1, x.shape[0], "gather", d)
        out = along(x, i1.astype(np.int64, copy=False), 0)
        return out.reshape(tuple(index.shape))
    xs, ids = input.shape, idx.shape
    for i in range(nd):
        if i != d and ids[i] > xs[i]:
            raise RuntimeError(f"Size does not match at dimension {i} expected index {list(ids)} to be no larger than "
                               f"self {list(xs)} apart from dimension {d}")
    _check_range(idx, xs[d], "gather", d)
    return along(input, idx.astype(np.int64, copy=False), d)


def index_select(input, dim=None, index=None, *, axis=None):  # noqa: A002
    _need("index_select", input)
    dim = _dim_arg(dim, axis, "index_select")
    idx = _index_array(input, index, "index_select", kinds=("int64", "int32"))
    if idx.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    nd = input.ndim
    d = one_dim(dim, nd)
    n = input.shape[d] if nd else 1
    i1 = idx.reshape(-1).astype(np.int64, copy=False)
    _check_range(i1, n, "index_select", d)
    if nd == 0:
        return GetItem.apply(input.reshape(1), idx=i1).reshape(tuple(idx.shape))
    return GetItem.apply(input, idx=(slice(None),) * d + (i1,))


def take(input, index):  # noqa: A002
    _need("take", input)
    idx = _index_array(input, index, "take")
    n = input.numel()
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < -n or hi >= n:
            raise IndexError(f"out of range: tried to access index {hi if hi >= n else lo} on a tensor of {n} elements.")
    return GetItem.apply(input.reshape(-1), idx=idx)


def take_along_dim(input, indices, dim=None):  # noqa: A002
    _need("take_along_dim", input)
    idx = _index_array(input, indices, "take_along_dim", arg="indices")
    if dim is None:
        return gather(input.reshape(-1), 0, Tensor(idx.reshape(-1)))
    nd = input.ndim
    if idx.ndim != nd:
        raise RuntimeError(f"torch.take_along_dim(): input and indices should have the same number of dimensions, "
                           f"but got {nd} dimensions for input, and {idx.ndim} dimensions for indices")
    d = one_dim(dim, nd)
    xs, ids = list(input.shape), list(idx.shape)
    for i in range(nd):
        if i != d and xs[i] != ids[i] and 1 not in (xs[i], ids[i]):
            raise RuntimeError(f"The size of tensor a ({xs[i]}) must match the size of tensor b ({ids[i]}) at "
                               f"non-singleton dimension {i}")
    bx = tuple(xs[i] if i == d else max(xs[i], ids[i]) for i in range(nd))
    bi = tuple(ids[i] if i == d else max(xs[i], ids[i]) for i in range(nd))
    x = input if tuple(xs) == bx else Expand.apply(input, shape=bx)
    i2 = idx if tuple(ids) == bi else xp_of(idx).broadcast_to(idx, bi)
    _check_range(i2, bx[d] if nd else 1, "take_along_dim", d)
    return along(x, i2, d)


# -- masks ---------------------------------------------------------------------------------------------
def masked_select(input, mask):  # noqa: A002
    _need("masked_select", input)
    if not isinstance(mask, Tensor):
        raise TypeError(f"masked_select(): argument 'mask' (position 2) must be Tensor, not {type(mask).__name__}")
    m = mask._data
    if m.dtype != np.bool_:
        raise RuntimeError("masked_select: expected BoolTensor for mask")
    _tensor._check_broadcast(tuple(input.shape), tuple(mask.shape))
    xp = input.xp
    shape = tuple(np.broadcast_shapes(tuple(input.shape), tuple(mask.shape)))
    x = input if tuple(input.shape) == shape else Expand.apply(input, shape=shape)
    mb = m if m.shape == shape else xp.broadcast_to(m, shape)
    if not shape:
        return GetItem.apply(x.reshape(1), idx=mb.reshape(1))
    return GetItem.apply(x, idx=mb)


@value_shaped
def nonzero(input, *, as_tuple=False):  # noqa: A002
    _need("nonzero", input)
    a = input._data
    xp = input.xp
    if a.ndim == 0:
        nz = xp.nonzero(a.reshape(1))[0].astype(np.int64)
        if as_tuple:
            return (Tensor(nz),)
        return Tensor(xp.zeros((nz.size, 0), dtype=np.int64))
    nz = [i.astype(np.int64, copy=False) for i in xp.nonzero(a)]
    if as_tuple:
        return tuple(Tensor(i) for i in nz)
    return Tensor(xp.stack(nz, axis=1) if nz else xp.zeros((0, 0), np.int64))


def argwhere(input):  # noqa: A002
    return nonzero(input)


def where(condition, input=None, other=None):  # noqa: A002
    """torch.where(condition, input, other), and torch.where(condition) = nonzero(condition, as_tuple=True)."""
    if input is None and other is None:
        _need("where", condition, "condition")
        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError("where() takes 1 or 3 arguments: where(condition) or where(condition, input, other)")
    return _tensor.where(condition, input, other)


# -- weighted taps along one axis (interpolate's separable passes) --------------------------------------
class _Taps:
    """A linear map along ``axis`` from n_in to n_out positions: y[j] = sum_k w_k[j] * x[i_k[j]] (k in order;
    w_k None: weight 1, no multiply). Output rows are split into a periodic interior, where row j = m*P + p
    reads x[m*Q + off[p][k]] with the weight W[p][k] for every m in [a, b) (integer and rational scales: strided
    slices, no index arrays), and the loose rows (edges, clamping, irregular sizes: takes and add.at)."""

    def __init__(self, axis, n_in, n_out, taps, dtype, xp):
        self.axis, self.n_in, self.n_out, self.K = axis, n_in, n_out, len(taps)
        taps = [(np.asarray(i, np.int64), None if w is None else np.asarray(w).astype(dtype)) for i, w in taps]
        g = math.gcd(n_in, n_out)
        P, Q = n_out // g, n_in // g
        self.P, self.Q = P, Q
        a = b = 0
        if g >= 4:
            base = (np.arange(g, dtype=np.int64) * Q)[:, None]
            same = np.ones(g, bool)
            ref = g // 2
            for i, w in taps:
                off = i.reshape(g, P) - base
                same &= (off == off[ref]).all(axis=1)
                if w is not None:
                    # NOTE: compared as the dtype's values that multiply (bit patterns: -0.0 and NaN safe)
                    wv = w.reshape(g, P).view(np.dtype(f"u{w.itemsize}"))
                    same &= (wv == wv[ref]).all(axis=1)
            bad = np.flatnonzero(~same)
            a = int(bad[bad < ref].max()) + 1 if (bad < ref).any() else 0
            b = int(bad[bad > ref].min()) if (bad > ref).any() else g
            if b - a < 2:
                a = b = 0
        self.a, self.b = a, b
        # per phase p: [(offset, weight scalar or None)] for the interior slices
        self.phase = [[(int(i[ref * P + p] - ref * Q), None if w is None else w[ref * P + p])
                       for i, w in taps] for p in range(P)] if b > a else []
        rows = np.arange(n_out)
        loose = rows[(rows < a * P) | (rows >= b * P)]
        self.loose = xp.asarray(loose)
        self.ltaps = [(xp.asarray(i[loose]), None if w is None else xp.asarray(w[loose])) for i, w in taps]

    def _lead(self, *more):
        return (slice(None),) * self.axis + more

    def _src(self, off):
        """The strided source slice of the interior rows for one tap offset."""
        Q = self.Q
        return self._lead(slice(self.a * Q + off, (self.b - 1) * Q + off + 1, Q))

    def _bw(self, w, nd):
        return w if w is None else w.reshape(w.shape + (1,) * (nd - self.axis - 1))

    def apply(self, x):
        xp = xp_of(x)
        shape = x.shape[:self.axis] + (self.n_out,) + x.shape[self.axis + 1:]
        y = xp.empty(shape, dtype=x.dtype)
        if self.phase:
            yv = y.reshape(x.shape[:self.axis] + (self.n_out // self.P, self.P) + x.shape[self.axis + 1:])
            for p, taps in enumerate(self.phase):
                dst = yv[self._lead(slice(self.a, self.b), p)]
                for k, (off, w) in enumerate(taps):
                    src = x[self._src(off)]
                    if k == 0:
                        if w is None:
                            dst[...] = src
                        else:
                            xp.multiply(src, w, out=dst)
                    else:
                        # NOTE: left to right, (w0 x0 + w1 x1) + w2 x2 ..., as the take-based sum (same rounding)
                        dst += src if w is None else src * w
        if self.loose.size:
            acc = None
            for i, w in self.ltaps:
                t = xp.take(x, i, axis=self.axis)
                if w is not None:
                    t *= self._bw(w, x.ndim)
                acc = t if acc is None else acc + t
            y[self._lead(self.loose)] = acc
        return y

    def adjoint(self, g):
        """gx[i_k[j]] += w_k[j] * g[j] (the transpose of ``apply``)."""
        xp = xp_of(g)
        shape = g.shape[:self.axis] + (self.n_in,) + g.shape[self.axis + 1:]
        z = xp.zeros(shape, dtype=g.dtype)
        if self.phase:
            gv = g.reshape(g.shape[:self.axis] + (self.n_out // self.P, self.P) + g.shape[self.axis + 1:])
            for p, taps in enumerate(self.phase):
                src = gv[self._lead(slice(self.a, self.b), p)]
                for off, w in taps:
                    # NOTE: one phase and tap hit distinct rows (step Q >= 1): a plain += on the strided view
                    dst = z[self._src(off)]
                    dst += src if w is None else src * w
        if self.loose.size:
            gl = xp.take(g, self.loose, axis=self.axis)
            for i, w in self.ltaps:
                v = gl if w is None else gl * self._bw(w, g.ndim)
                idx = Trusted(self._lead(i))
                _add_at(z, idx, xp.ascontiguousarray(v), flat_index(idx, z.shape))
        return z


class Resample(Primitive):
    """y = taps.apply(x): a fixed linear map along one axis (interpolate); the backward is its adjoint."""
    saves = ()

    def forward(self, x, taps):
        self.taps = taps
        return taps.apply(x)

    def backward(self, g):
        return self.call(ResampleT, g, taps=self.taps)


class ResampleT(Primitive):
    """The adjoint of Resample (its backward is Resample again: both are linear)."""
    saves = ()

    def forward(self, g, taps):
        self.taps = taps
        return taps.adjoint(g)

    def backward(self, gz):
        return self.call(Resample, gz, taps=self.taps)


quiet_family(Resample, ResampleT, backward=False)  # NOTE: inf * 0 weights and inf - inf are NaN quietly, as PyTorch


def resample(x, axis, n_out, taps):
    """Differentiable y[..., j, ...] = sum_k w_k[j] * x[..., i_k[j], ...] along ``axis`` for taps = [(i_k, w_k)]
    (int index arrays in range, weights float or None), numpy arrays of length n_out."""
    return Resample.apply(x, taps=_Taps(axis, x.shape[axis], n_out, taps, x._data.dtype, x.xp))


# -- scatter_reduce -------------------------------------------------------------------------------------
_REDUCES = ("sum", "prod", "mean", "amax", "amin")


class ScatterReduce(Primitive):
    """self.scatter_reduce(dim, index, src, reduce, include_self) for reduce in sum/mean/amax/amin; its
    backward is linear in g with constant coefficients (counts, tie masks), so it is its own higher order."""
    saves = ()

    def forward(self, x, src, idx, reduce, include_self):
        xp = xp_of(x)
        # NOTE: idx (from _scatter_index) is in range: reads go through a flat take, writes through the 1-D
        # ufunc.at fast path on a raveled linear index (same per-target order as the tuple index: bit-identical)
        idx = Trusted(idx)
        self.idx, self.reduce, self.include_self = idx, reduce, include_self
        self.xs = x.shape
        lin = flat_index(idx, x.shape)
        touched = None
        if not include_self:  # the scattered-to positions, needed only without include_self
            touched = xp.zeros(x.shape, dtype=bool)
            if lin is not None:
                touched.reshape(-1)[lin] = True
            else:
                touched[idx] = True
        self.touched = touched
        if reduce in ("sum", "mean"):
            out = x.copy() if include_self else xp.where(touched, xp.zeros((), x.dtype), x)
            _add_at(out, idx, src, lin)
            if reduce == "mean":
                if lin is not None:
                    cnt = xp.bincount(lin, minlength=x.size).reshape(x.shape).astype(np.int64, copy=False)
                else:
                    cnt = xp.zeros(x.shape, dtype=np.int64)
                    _add_at(cnt, idx, xp.ones(src.shape, np.int64))
                cnt = cnt + (1 if include_self else 0)
                cnt = xp.maximum(cnt, 1)
                self.cnt = cnt
                if _isf(out.dtype):
                    out = out / cnt.astype(out.dtype)
                else:
                    out = xp.floor_divide(out, cnt).astype(out.dtype)
            return out.astype(x.dtype, copy=False)
        # amax / amin
        big = _extreme_value(x.dtype, reduce == "amin")
        out = x.copy() if include_self else xp.where(touched, xp.asarray(big, x.dtype), x)
        out = xp.ascontiguousarray(out)
        if lin is not None:
            of, tgt, sv = out.reshape(-1), lin, xp.ascontiguousarray(src).reshape(-1)
        else:
            of, tgt, sv = out, idx, src
        if xp is np:
            (np.maximum if reduce == "amax" else np.minimum).at(of, tgt, sv)
        else:  # pragma: no cover  (cupy)
            import cupyx  # noqa: PLC0415
            (cupyx.scatter_max if reduce == "amax" else cupyx.scatter_min)(of, tgt, sv)
        # NOTE: PyTorch shares the gradient evenly among the values equal to the result (ties); without
        # include_self, self's value survives (and gets the whole gradient) only where nothing was scattered
        val = of.take(lin).reshape(src.shape) if lin is not None else out[idx]
        self_hit = (x == out) if include_self else ~touched
        src_hit = src == val
        n = self_hit.astype(np.int64)
        if lin is not None:
            n += xp.bincount(lin[src_hit.reshape(-1)], minlength=x.size).reshape(x.shape).astype(np.int64, copy=False)
        else:
            _add_at(n, idx, src_hit.astype(np.int64))
        self.self_hit, self.src_hit, self.n = self_hit, src_hit, xp.maximum(n, 1)
        return out

    def backward(self, g):
        gd = g._data if self.graph else g
        dt = gd.dtype
        if self.reduce == "sum":
            gx = g if self.include_self else g * (~self.touched).astype(dt)
            return gx, self.call(GetItem, g, idx=self.idx)
        if self.reduce == "mean":
            gc = g / self.cnt.astype(dt)
            gx = gc if self.include_self else g * (~self.touched).astype(dt)
            return gx, self.call(GetItem, gc, idx=self.idx)
        gn = g / self.n.astype(dt)
        gx = gn * self.self_hit.astype(dt)
        return gx, self.call(GetItem, gn, idx=self.idx) * self.src_hit.astype(dt)


class ScatterProd(Primitive):
    """self.scatter_reduce(dim, index, src, "prod", include_self); backward: PyTorch's formula (exclusive products
    from the inputs with their zeros masked to 1), written with ``self.call`` so that it is differentiable again."""
    save_output = True

    def forward(self, x, src, idx, include_self):
        xp = xp_of(x)
        if xp is not np:  # pragma: no cover  (cupy)
            raise NotImplementedError("scatter_reduce(reduce='prod') is not supported on CUDA tensors yet (CuPy has "
                                      "no scatter multiply); use it on CPU tensors")
        self.idx, self.include_self = Trusted(idx), include_self
        self.lin = lin = flat_index(self.idx, x.shape)
        out = np.array(x, copy=True, order="C")
        if lin is None:  # empty index: nothing is scattered
            self.touched = np.zeros(x.shape, dtype=bool)
            return out
        of = out.reshape(-1)
        if not include_self:  # NOTE: the scattered-to positions start from 1 (the product of their src values)
            self.touched = np.zeros(x.shape, dtype=bool)
            self.touched.reshape(-1)[lin] = True
            of[lin] = 1
        np.multiply.at(of, lin, np.ascontiguousarray(src).reshape(-1))
        return out

    def backward(self, g):
        x, src = self.values()
        y = self.result()
        xd, sd = (x._data, src._data) if self.graph else (x, src)
        dt = xd.dtype
        one = xd.dtype.type(1)
        need_x, need_src = self.needs_input_grad
        gx = gs = None
        if need_x:
            # NOTE: d out / d self = the product of the src values: (result with self's zeros as 1) / masked self
            ms = self.call(_ew.Where, one, x, cond=xd == 0)
            gx = g * self.call(ScatterProd, ms, src, idx=self.idx, include_self=self.include_self) / ms
            if not self.include_self:
                gx = gx * (~self.touched).astype(dt)
        if need_src:
            sz = sd == 0
            if self.lin is not None and sz.any():
                nz = np.bincount(self.lin[sz.reshape(-1)], minlength=xd.size)[self.lin].reshape(sd.shape)
            else:
                nz = np.zeros(sd.shape, np.int64)
            single = sz & (nz == 1)
            if self.graph and bool((nz > 1).any()):
                # NOTE: PyTorch raises this when the double backward runs; here the graph is built now
                raise RuntimeError("scatter_reduce(): Double backward is unsupported for src when >1 zeros in src "
                                   "are scattered to the same position")
            # NOTE: the others' product is result / src, except for a src that is the only zero of its target:
            # there it is the scatter of src with that zero as 1 (result / src would give 0 / 1)
            gs = self.call(GetItem, g * y, idx=self.idx) / self.call(_ew.Where, one, src, cond=sz)
            if single.any():
                m = self.call(ScatterProd, x, self.call(_ew.Where, one, src, cond=single), idx=self.idx,
                              include_self=self.include_self)
                gs = self.call(_ew.Where, self.call(GetItem, g * m, idx=self.idx), gs, cond=single)
        return gx, gs


def _add_at(z, idx, v, lin=None):
    """z[idx] += v (repeats accumulate) in place; lin: flat_index(idx, z.shape) when known (1-D fast path)."""
    if lin is not None and z.flags.c_contiguous:
        z, idx, v = z.reshape(-1), lin, v.reshape(-1)
    if type(z) is np.ndarray:
        np.add.at(z, idx, v)
    else:  # pragma: no cover  (cupy)
        import cupyx  # noqa: PLC0415
        cupyx.scatter_add(z, idx, v)


def _extreme_value(dt, high):
    if _isf(dt):
        return np.inf if high else -np.inf
    if dt.kind == "b":
        return high
    info = np.iinfo(dt)
    return info.max if high else info.min


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):  # noqa: A002
    _need("scatter_reduce", input)
    if reduce not in _REDUCES:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_reduce(): argument 'src' (position 3) must be Tensor, not {type(src).__name__}")
    if src.dtype != input.dtype:
        raise RuntimeError("scatter_reduce(): Expected self.dtype to be equal to src.dtype")
    idx_arr = _index_array(input, index, "scatter_reduce")
    if idx_arr.ndim != input.ndim or src.ndim != input.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as self tensor")
    idx, part = _tensor._scatter_index(input, dim, index, "scatter_reduce")
    if any(index.shape[i] > src.shape[i] for i in range(src.ndim)):
        raise RuntimeError(f"scatter_reduce(): Expected index {list(index.shape)} to be no larger than src "
                           f"{list(src.shape)}")
    s = src[part] if tuple(src.shape) != tuple(index.shape) else src
    if reduce == "prod":
        return ScatterProd.apply(input, s, idx=idx, include_self=include_self)
    return ScatterReduce.apply(input, s, idx=idx, reduce=reduce, include_self=include_self)


_tensor._ix = _sys.modules[__name__]
