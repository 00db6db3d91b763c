"""Shape and indexing primitives: reshape, permute, expand/sum_to, getitem/index_add, cat, pad."""
from __future__ import annotations

import numpy as np

from ..autograd import primitive as _prim
from ..autograd.primitive import Primitive
from ..backend import xp_of
from ._util import sum_to


class Alias(Primitive):
    """Identity (a fresh graph node over the same array)."""
    saves = ()

    def forward(self, x):
        return x

    def backward(self, g):
        return g


def alias(t):
    """A fresh graph node over ``t``'s array (the engine differentiates fused ops' composites w.r.t. these)."""
    return Alias.apply(t)


class Reshape(Primitive):
    saves = ()

    def forward(self, x, shape):
        self.src = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.src)


class Permute(Primitive):
    saves = ()

    def forward(self, x, dims):
        self.inv = tuple(np.argsort(dims).tolist())
        return x.transpose(dims)

    def backward(self, g):
        return self.call(Permute, g, dims=self.inv)


class Expand(Primitive):
    saves = ()
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


class GetItem(Primitive):
    saves = ()

    def forward(self, x, idx):
        self.src, self.idx = x.shape, idx
        if type(x) is np.ndarray and _is_basic(idx if isinstance(idx, tuple) else (idx,)):
            # NOTE: an Ellipsis makes numpy return a 0-d VIEW for a full integer index (not a scalar copy),
            # so x[0] shares memory with x as in PyTorch
            return x[_with_ellipsis(idx)]
        return xp_of(x).asarray(x[idx])

    def backward(self, g):
        return self.call(IndexAdd, g, shape=self.src, idx=self.idx)


class IndexAdd(Primitive):
    saves = ()
    """zeros(shape)[idx] += g, with repeated indices accumulating (the adjoint of GetItem)."""
    def forward(self, g, shape, idx):
        self.idx = idx
        xp = xp_of(g)
        z = xp.zeros(shape, dtype=g.dtype)
        if _is_basic(idx if isinstance(idx, tuple) else (idx,)):
            z[idx] = g
        elif xp is np:
            np.add.at(z, idx, g)
        else:
            import cupyx  # noqa: PLC0415
            cupyx.scatter_add(z, idx, g)
        return z

    def backward(self, gz):
        return self.call(GetItem, gz, idx=self.idx)


def _diagonal(x, arg):
    d = xp_of(x).diagonal(x, *arg)
    if type(d) is np.ndarray and x.flags.writeable:
        d.flags.writeable = True  # NOTE: numpy marks diagonals read-only by policy; PyTorch's are writable views
    return d


class Diagonal(Primitive):
    """x.diagonal(offset, dim1, dim2): a view; the gradient is g on that diagonal of zeros."""
    saves = ()

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

    def forward(self, g, shape, arg):
        self.arg = arg
        z = xp_of(g).zeros(shape, dtype=g.dtype)
        _diagonal(z, arg)[...] = g
        return z

    def backward(self, gz):
        return self.call(Diagonal, gz, arg=self.arg)


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
        else:
            arr = xp.broadcast_to(arr, arg)
    return arr


_CHAIN = {"getitem": (GetItem, "idx"), "reshape": (Reshape, "shape"), "permute": (Permute, "dims"),
          "expand": (Expand, "shape"), "diagonal": (Diagonal, "arg")}


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
    """Constant padding; ``widths`` is numpy's ((before, after), ...) per dimension."""
    def forward(self, x, widths, value):
        self.idx = tuple(slice(b, b + n) for (b, _), n in zip(widths, x.shape))
        return xp_of(x).pad(x, widths, mode="constant", constant_values=value)

    def backward(self, g):
        return self.call(GetItem, g, idx=self.idx)


from ._util import quiet_family  # noqa: E402

quiet_family(SumTo, backward=False)  # NOTE: a broadcast gradient summed back may meet inf + -inf: nan silently, as in PyTorch
