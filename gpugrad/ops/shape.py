"""Shape and indexing primitives: reshape, permute, expand/sum_to, getitem/index_add, cat, pad."""
from __future__ import annotations

import numpy as np

from ..autograd import primitive as _prim
from ..autograd.primitive import Primitive
from ..backend import xp_of

Alias = _prim.Alias


def sum_to(fn, g, shape):
    """Inside a backward: reduce a broadcast gradient ``g`` back to ``shape``."""
    if tuple(g.shape) == tuple(shape):
        return g
    return fn.call(SumTo, g, shape=tuple(shape))
class Reshape(Primitive):
    saves = ()
    lowp = "forward"

    def forward(self, x, shape):
        self.src = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.src)


class Permute(Primitive):
    saves = ()
    lowp = "forward"

    def forward(self, x, dims):
        self.inv = tuple(np.argsort(dims).tolist())
        return x.transpose(dims)

    def backward(self, g):
        return self.call(Permute, g, dims=self.inv)


class Expand(Primitive):
    saves = ()
    lowp = "forward"
    """Broadcast to ``shape`` (a read-only view on the CPU; never written in place)."""
    def forward(self, x, shape):
        self.src = x.shape
        return xp_of(x).broadcast_to(x, shape)

    def backward(self, g):
        return sum_to(self, g, self.src)


def reduce_to(x, shape):
    """Sum an array over the axes that broadcasting to its shape added or stretched."""
    nlead = x.ndim - len(shape)
    axes = tuple(range(nlead)) + tuple(i + nlead for i, s in enumerate(shape) if s == 1 and x.shape[i + nlead] != 1)
    y = x.sum(axis=axes, keepdims=True) if axes else x
    return xp_of(x).asarray(y).reshape(shape)


class SumTo(Primitive):
    saves = ()

    def forward(self, x, shape):
        self.src = x.shape
        return reduce_to(x, shape)

    def backward(self, g):
        return self.call(Expand, g, shape=self.src)


def _with_ellipsis(idx):
    idx = idx if isinstance(idx, tuple) else (idx,)
    return idx if any(i is Ellipsis for i in idx) else idx + (Ellipsis,)


def _is_basic(idx):
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice, np.integer)) for i in idx)


class Trusted(tuple):
    """An advanced-index tuple of integer arrays known to be in range (built by ops, e.g. ``index.along``):
    GetItem may read it with a flat ``take`` on the linear index, without numpy's per-axis bounds checks."""
    __slots__ = ()


def _adv_layout(idx, shape):
    """(m, arrays) for idx = full slices, then consecutive integer arrays ``arrays`` starting at axis m, then full
    slices (one Ellipsis allowed outside the arrays); None for any other index (bool masks, None, ints, steps)."""
    idx = idx if isinstance(idx, tuple) else (idx,)
    nd = len(shape)
    items, ell = [], False
    for i in idx:
        if i is Ellipsis:
            if ell:
                return None
            ell = True
        elif isinstance(i, slice):
            if not (i.start is None and i.stop is None and i.step is None):
                return None
        elif isinstance(i, np.generic) or getattr(getattr(i, "dtype", None), "kind", "") not in ("i", "u"):
            return None  # only numpy/cupy integer arrays (not bool masks, scalars, lists, None)
        items.append(i)
    count = len(items) - ell
    if count > nd:
        return None
    if ell:
        e = next(j for j, i in enumerate(items) if i is Ellipsis)
        items[e:e + 1] = [slice(None)] * (nd - count)
    items += [slice(None)] * (nd - len(items))
    pos = [j for j, i in enumerate(items) if not isinstance(i, slice) and i is not Ellipsis]
    if not pos or pos[-1] - pos[0] + 1 != len(pos):
        return None
    return pos[0], [items[j] for j in pos]


def lin_shape(idx, shape):
    """The shape of x[idx] for an index accepted by ``flat_index``."""
    m, arrs = _adv_layout(idx, shape)
    return tuple(shape[:m]) + np.broadcast_shapes(*[a.shape for a in arrs]) + tuple(shape[m + len(arrs):])


def flat_index(idx, shape):
    """A 1-D intp index L with z.reshape(-1)[L] == z[idx].reshape(-1) (C order) for an index of full slices and
    consecutive in-range integer arrays (negative ones wrap once), or None (any other index, or empty).
    NOTE: L may share memory with the caller's index array: read it, never write it."""
    lay = _adv_layout(idx, shape)
    if lay is None:
        return None
    m, arrs = lay
    k = len(arrs)
    b = np.broadcast_shapes(*[a.shape for a in arrs])
    P = int(np.prod(shape[:m], dtype=np.int64))
    R = int(np.prod(shape[m + k:], dtype=np.int64))
    nb = int(np.prod(b, dtype=np.int64))
    if P * R * nb == 0:
        return None
    xp = xp_of(arrs[0])
    lin = None
    for j, a in enumerate(arrs):
        n = shape[m + j]
        a = a.astype(np.intp, copy=False)
        if a.dtype.kind == "i" and a.size and bool(a.min() < 0):
            a = xp.where(a < 0, a + n, a)
        if lin is None:
            lin = a
        elif np.broadcast_shapes(lin.shape, a.shape) == lin.shape:
            lin = lin * n
            lin += a  # NOTE: in place on the new product: one pass and one fresh index-sized array less
        else:
            lin = lin * n + a
    # NOTE: broadcast only when needed: broadcast_to's view is read-only, and numpy's take / ufunc.at copy a
    # read-only index first (an 8 MB copy into fresh pages for 2^20 indices: ~3x the take itself here)
    lin = (lin if lin.shape == b else xp.broadcast_to(lin, b)).reshape(-1)
    if P > 1:
        q = int(np.prod(shape[m:m + k], dtype=np.int64))
        lin = (xp.arange(P, dtype=np.intp)[:, None] * q + lin[None, :]).reshape(-1)
    if R > 1:
        lin = (lin[:, None] * R + xp.arange(R, dtype=np.intp)[None, :]).reshape(-1)
    return lin


class GetItem(Primitive):
    saves = ()
    lowp = "forward"

    def forward(self, x, idx):
        self.src, self.idx = x.shape, idx
        try:  # NOTE: free unless it raises: PyTorch's words for NumPy's out-of-range message (axis -> dimension)
            if type(x) is np.ndarray and _is_basic(idx if isinstance(idx, tuple) else (idx,)):
                # NOTE: an Ellipsis makes numpy return a 0-d VIEW for a full integer index (not a scalar copy),
                # so x[0] shares memory with x as in PyTorch
                return x[_with_ellipsis(idx)]
            if type(idx) is Trusted:
                lin = flat_index(idx, x.shape)
                if lin is not None:  # a flat take on the linear index (2x faster than numpy's tuple fancy indexing)
                    return x.reshape(-1).take(lin).reshape(lin_shape(idx, x.shape))
            if type(x) is np.ndarray:
                lay = _adv_layout(idx, x.shape)
                if lay is not None and len(lay[1]) == 1:  # NOTE: one index array: np.take (~2.5x faster than
                    return np.take(x, lay[1][0], axis=lay[0])  # fancy indexing for rows; same values and errors)
            return xp_of(x).asarray(x[idx])
        except IndexError as e:
            raise IndexError(str(e).replace(" for axis ", " for dimension ")) from None

    def backward(self, g):
        return self.call(IndexAdd, g, shape=self.src, idx=self.idx)


class IndexAdd(Primitive):
    saves = ()
    """zeros(shape)[idx] += g, with repeated indices accumulating (the adjoint of GetItem)."""
    def forward(self, g, shape, idx):
        return self.accumulate(xp_of(g).zeros(shape, dtype=g.dtype), g, idx, True)

    def accumulate(self, z, g, idx, fresh):
        """z[idx] += g in place, repeats in g's C order (np.add.at's and PyTorch's CPU order); ``fresh``: z is
        zeros. Keeps the index the backward's take uses."""
        self.idx = idx
        xp = xp_of(g)
        shape = z.shape
        self.lin = None
        if _is_basic(idx if isinstance(idx, tuple) else (idx,)):
            if fresh:
                z[idx] = g  # NOTE: not 0 + g: -0.0 stays -0.0
            else:
                z[idx] += g
            return z
        if xp is np:
            rows = _row_index(idx, shape)
            if rows is not None:
                # NOTE: a scatter grid whose index is one row index broadcast along the other dims (scatter_add of
                # whole rows) is the same sum as z[..., rows, ...] += g, in the same order per element: the row
                # rounds below (bit-identical to add.at), and a backward np.take of rows instead of a 2-array
                # fancy index (~20x faster)
                self.idx = idx = rows
            if _add_rows(z, g, idx, fresh):
                return z
        lin = flat_index(idx, shape)
        if lin is not None:
            # NOTE: the 1-D ufunc.at fast path on the raveled zeros (~10x faster than a tuple index); each
            # target still sums its values in g's C order, so the result is bit-identical
            zf, gf, tgt = z.reshape(-1), xp.ascontiguousarray(g).reshape(-1), lin
            if len(_adv_layout(idx, shape)[1]) > 1:
                # NOTE: kept for backward's flat take (2-3x faster than numpy's tuple index of several arrays);
                # lin is in range wherever this add succeeds (the callers check their indices; add.at raises)
                self.lin, self.gshape = lin, g.shape
        else:
            zf, gf, tgt = z, g, idx
        if xp is np:
            np.add.at(zf, tgt, gf)
        else:
            import cupyx  # noqa: PLC0415
            cupyx.scatter_add(zf, tgt, gf)
        return z

    def backward(self, gz):
        if self.lin is not None:
            return self.call(GetItem, gz.reshape(-1), idx=Trusted((self.lin,))).reshape(self.gshape)
        return self.call(GetItem, gz, idx=self.idx)


class IndexAddTo(IndexAdd):
    """t.clone()[idx] += g (index_add, scatter_add): each target accumulates onto t's own value in index order,
    as PyTorch's CPU kernels do (t + IndexAdd(g) would round (t + (g1 + g2)) instead of ((t + g1) + g2))."""

    def forward(self, t, g, idx):
        return self.accumulate(xp_of(t).array(t, copy=True, order="C"), g, idx, False)

    def backward(self, gz):
        return gz, IndexAdd.backward(self, gz)


def _row_index(idx, shape):
    """``(slice(None),) * d + (rows,)`` for a NumPy scatter grid (``tensor._scatter_index``: one integer array a
    at axis d, of the full sizes on the other axes, which hold ``ix_`` aranges) whose a is constant along every
    axis but d (a row index broadcast); None otherwise. Costs one compare pass over a (~0.3 ms per 10^6)."""
    nd = len(shape)
    if not isinstance(idx, tuple) or len(idx) != nd or nd < 2:
        return None
    if not all(type(i) is np.ndarray and i.ndim == nd and i.dtype.kind in "iu" for i in idx):
        return None
    grid = [i.shape == tuple(shape[j] if k == j else 1 for k in range(nd)) for j, i in enumerate(idx)]
    d = next((j for j in range(nd) if all(grid[:j] + grid[j + 1:])), None)
    if d is None:
        return None
    a = idx[d]
    if a.size == 0 or any(a.shape[k] != shape[k] for k in range(nd) if k != d):
        return None
    if not all(np.array_equal(idx[j].reshape(-1), np.arange(shape[j])) for j in range(nd) if j != d):
        return None
    sel = tuple(slice(None) if k == d else 0 for k in range(nd))
    if not all(a.strides[k] == 0 or a.shape[k] == 1 for k in range(nd) if k != d):  # NOTE: a broadcast view: no pass
        if not a.flags.c_contiguous:
            return None
        n = a.shape[d]
        A = int(np.prod(a.shape[:d], dtype=np.int64))
        v = a.reshape(A, -1)
        if A > 1 and not (bool((v[-1] == v[0]).all()) and bool((v[1:] == v[:1]).all())):
            return None
        f = v[0]
        B = f.size // n
        if B > 1:
            if not bool((f[B - 1::B] == f[::B]).all()):  # NOTE: a cheap rejection first (each row's ends)
                return None
            # NOTE: neighbours equal within each row: one contiguous compare (a broadcast compare against the
            # row heads runs a short inner loop per row, 3x slower); the row boundaries are masked
            eq = np.equal(f[1:], f[:-1])
            eq[B - 1::B] = True
            if not bool(eq.all()):
                return None
    return (slice(None),) * d + (a[sel].astype(np.intp),)  # NOTE: a small copy: the caller's index is not kept


def _add_rows(z, g, idx, fresh=True):
    """z[idx] += g in place for NumPy z (of zeros when ``fresh``) and an index of one integer array (full slices around it) that
    picks rows of >= 32 elements; False (nothing done) for any other index, or when too few rows repeat per round.
    NOTE: round k adds the k-th occurrence (in g's order: a stable sort) of every target row. With the targets
    ordered by their count (descending), round k's targets are a prefix of that order: each round takes its rows
    of g into a buffer and adds it to a contiguous prefix of the accumulator. Each target sums its rows in g's order
    from z's value, as np.add.at does (bit-identical), ~2x faster than add.at on the flat index (embedding backward)"""
    lay = _adv_layout(idx, z.shape)
    if lay is None or len(lay[1]) != 1:
        return False
    m, (a,) = lay
    Q, t = z.shape[m], a.reshape(-1).astype(np.intp, copy=False)
    P = int(np.prod(z.shape[:m], dtype=np.int64))
    R = z.size // max(P * Q, 1)
    if P * R < 32 or t.size < 2 or g.shape != z.shape[:m] + a.shape + z.shape[m + 1:]:
        return False
    if bool(t.min() < 0):
        t = np.where(t < 0, t + Q, t)
    cnt = np.bincount(t, minlength=Q)
    K = int(cnt.max())
    if K * 2048 > t.size * P * R:  # NOTE: a few us of Python per round: rounds must move enough data each
        return False
    o = np.argsort(t.astype(np.uint16) if Q <= 65536 else t, kind="stable")
    rank = np.empty(t.size, np.intp)
    rank[o] = np.arange(t.size) - (np.cumsum(cnt) - cnt)[t[o]]
    perm = np.argsort(-cnt, kind="stable")
    pos = np.empty(Q, np.intp)
    pos[perm] = np.arange(Q)
    n = np.bincount(rank, minlength=K)
    start = np.concatenate(([0], np.cumsum(n)))
    order = np.empty(t.size, np.intp)
    order[start[rank] + pos[t]] = np.arange(t.size)
    g3 = g.reshape(P, t.size, R)
    z3 = z.reshape(P, Q, R)
    # NOTE: every target row is in round 0: its accumulator starts from z's row (0 when fresh)
    acc = np.zeros((P, int(n[0]), R), z.dtype) if fresh else z3[:, perm[:int(n[0])]]
    buf = np.empty_like(acc)
    for s0, nk in zip(start.tolist(), n.tolist()):
        # NOTE: mode="clip" (the indices are in range): with out=, mode="raise" would buffer a copy first
        acc[:, :nk] += g3.take(order[s0:s0 + nk], axis=1, out=buf[:, :nk], mode="clip")
    z3[:, perm[:int(n[0])]] = acc
    return True


def _diagonal(x, arg):
    d = xp_of(x).diagonal(x, *arg)
    if type(d) is np.ndarray and x.flags.writeable:
        d.flags.writeable = True  # NOTE: numpy marks diagonals read-only by policy; PyTorch's are writable views
    return d


class Diagonal(Primitive):
    """x.diagonal(offset, dim1, dim2): a view; the gradient is g on that diagonal of zeros."""
    saves = ()
    lowp = "forward"

    def forward(self, x, arg):
        self.src, self.arg = x.shape, arg
        return _diagonal(x, arg)

    def backward(self, g):
        if self.graph:
            return self.call(DiagonalScatter, g, shape=self.src, arg=self.arg)
        z = xp_of(g).zeros(self.src, dtype=g.dtype)
        _diagonal(z, self.arg)[...] = g
        return z


class DiagonalScatter(Primitive):
    """zeros(shape) with g on the diagonal ``arg`` (the adjoint of Diagonal)."""
    saves = ()
    lowp = "forward"

    def forward(self, g, shape, arg):
        self.arg = arg
        z = xp_of(g).zeros(shape, dtype=g.dtype)
        _diagonal(z, arg)[...] = g
        return z

    def backward(self, gz):
        return self.call(Diagonal, gz, arg=self.arg)


def _strided(x, shape, strides):
    """A view of x's memory with the given byte strides. NOTE: on NumPy it is built over x's memory owner, so
    its ``.base`` is that owner as for numpy's own views (Tensor views and storage_offset rely on it);
    ``as_strided``'s result has a helper object as base and is the fallback (owners that are not ndarrays or
    buffers, say another as_strided result)."""
    if type(x) is not np.ndarray:
        return xp_of(x).lib.stride_tricks.as_strided(x, shape, strides)
    owner = x if x.base is None else x.base
    try:
        buf = owner.ravel(order="K") if isinstance(owner, np.ndarray) else owner
        if buf is not owner and buf.base is not owner:
            raise ValueError  # NOTE: ravel copied (owner is not one dense block): a view of the copy would be wrong
        off = x.__array_interface__["data"][0] - np.frombuffer(buf, np.uint8).__array_interface__["data"][0]
        v = np.ndarray(shape, x.dtype, buffer=buf, offset=off, strides=strides)
    except (TypeError, ValueError, BufferError):
        return np.lib.stride_tricks.as_strided(x, shape, strides)
    if not x.flags.writeable:
        v.flags.writeable = False  # NOTE: as read-only as x (an expanded view)
    return v


def _unfold(x, arg):
    """x.unfold(d, size, step): dim d becomes the window count, a last dim of ``size`` runs along each window."""
    d, size, step = arg
    if x.ndim == 0:
        return _unfold(x.reshape(1), arg).reshape(size)  # NOTE: as PyTorch: a 0-d input gives shape (size,)
    n, st = x.shape[d], x.strides[d]
    return _strided(x, x.shape[:d] + ((n - size) // step + 1,) + x.shape[d + 1:] + (size,),
                    x.strides[:d] + (st * step,) + x.strides[d + 1:] + (st,))


def _fold(g, shape, arg):
    """The adjoint of _unfold: zeros(shape) with each window of g added where it came from (overlaps add)."""
    d, size, step = arg
    z = xp_of(g).zeros(shape, dtype=g.dtype)
    if not shape:
        z[...] = g.sum()
        return z
    # NOTE: windows j, j+r, j+2r, ... with r = ceil(size / step) never overlap: r strided adds cover every window
    r, pre = -(-size // step), (slice(None),) * d
    for j in range(min(r, g.shape[d])):
        w = _unfold(z[pre + (slice(j * step, None),)], (d, size, r * step))
        w += g[pre + (slice(j, None, r),)]
    return z


class Unfold(Primitive):
    """x.unfold(dim, size, step) (arg = (dim, size, step)): a strided view of the windows."""
    saves = ()
    lowp = "forward"

    def forward(self, x, arg):
        self.src, self.arg = x.shape, arg
        return _unfold(x, arg)

    def backward(self, g):
        return self.call(UnfoldBackward, g, shape=self.src, arg=self.arg)


class UnfoldBackward(Primitive):
    """zeros(shape) with the windows of g added back (the adjoint of Unfold)."""
    saves = ()
    lowp = "forward"

    def forward(self, g, shape, arg):
        self.arg = arg
        return _fold(g, shape, arg)

    def backward(self, gz):
        return self.call(Unfold, gz, arg=self.arg)


def view_of(arr, chain):
    """Apply a view recipe (see Tensor._view) to an array: a numpy/cupy view of it."""
    xp = xp_of(arr)
    for kind, arg in chain:
        if kind == "getitem":
            arr = arr[_with_ellipsis(arg)]
        elif kind == "reshape":
            arr = arr.reshape(arg)
        elif kind == "permute":
            arr = arr.transpose(arg)
        elif kind == "diagonal":
            arr = _diagonal(arr, arg)
        elif kind == "unfold":
            arr = _unfold(arr, arg)
        else:
            arr = xp.broadcast_to(arr, arg)
    return arr


_CHAIN = {"getitem": (GetItem, "idx"), "reshape": (Reshape, "shape"), "permute": (Permute, "dims"),
          "expand": (Expand, "shape"), "diagonal": (Diagonal, "arg"), "unfold": (Unfold, "arg")}


def view_of_tensor(t, chain):
    """Apply a view recipe to a Tensor, recording the graph (used to regenerate a view's grad_fn)."""
    for kind, arg in chain:
        cls, name = _CHAIN[kind]
        t = cls.apply(t, **{name: arg})
    return t


class CopySlices(Primitive):
    """A base tensor after an in-place write through one of its views (PyTorch's CopySlices).

    The caller writes ``src`` into the view's memory; the node only routes gradients: the base's
    old value gets ``g`` with the view's region zeroed, ``src`` gets that region of ``g``."""
    saves = ()
    lowp = "forward"

    def forward(self, base, src, chain):
        self.chain = chain
        return base

    def backward(self, g):
        chain = self.chain
        if self.graph:
            mask = xp_of(g._data).ones(g.shape, dtype=g.dtype)
            view_of(mask, chain)[...] = 0
            return g * mask, view_of_tensor(g, chain)
        gb = g.copy()
        view_of(gb, chain)[...] = 0
        return gb, view_of(g, chain).copy()


class IndexPut(Primitive):
    """x with x[idx] = v (advanced or basic index, v broadcast): out-of-place index_put."""
    saves = ()
    lowp = "forward"

    def forward(self, x, v, idx):
        self.idx, self.vs = idx, v.shape
        out = x.copy()
        out[idx] = v
        return out

    def backward(self, g):
        gd = g._data if self.graph else g
        mask = xp_of(gd).ones(gd.shape, dtype=gd.dtype)
        mask[self.idx] = 0
        return g * mask, sum_to(self, self.call(GetItem, g, idx=self.idx), self.vs)


class Overwrite(Primitive):
    """dst's new value is src, broadcast (copy_, fill_, random fills): dst's old value gets no gradient."""
    saves = ()
    lowp = "forward"

    def forward(self, dst, src):
        self.ss = src.shape
        return xp_of(dst).broadcast_to(src, dst.shape)

    def backward(self, g):
        # NOTE: dst's old value gets zeros (not None), as PyTorch: x.grad becomes 0, not missing
        gd = g._data if self.graph else g
        z = xp_of(gd).zeros_like(gd)
        return (_prim._Tensor(z) if self.graph else z), sum_to(self, g, self.ss)


class Cat(Primitive):
    saves = ()
    lowp = "forward"

    def forward(self, *xs, dim):
        self.dim = dim
        self.sizes = [x.shape[dim] for x in xs]
        return xp_of(xs[0]).concatenate(xs, axis=dim)

    def backward(self, g):
        out, start = [], 0
        pre = (slice(None),) * self.dim
        for s in self.sizes:
            out.append(self.call(GetItem, g, idx=pre + (slice(start, start + s),)))
            start += s
        return tuple(out)


class Pad(Primitive):
    saves = ()
    lowp = "forward"
    """Constant padding; ``widths`` is numpy's ((before, after), ...) per dimension."""
    def forward(self, x, widths, value):
        self.idx = tuple(slice(b, b + n) for (b, _), n in zip(widths, x.shape))
        return xp_of(x).pad(x, widths, mode="constant", constant_values=value)

    def backward(self, g):
        return self.call(GetItem, g, idx=self.idx)


from ._util import quiet_family  # noqa: E402

quiet_family(SumTo, backward=False)  # NOTE: a broadcast gradient summed back may meet inf + -inf: nan silently, as in PyTorch
