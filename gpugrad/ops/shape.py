"""Shape and indexing primitives: reshape, permute, expand/sum_to, getitem/index_add, cat, pad."""
from __future__ import annotations

import numpy as np

from ..autograd.primitive import Primitive
from ..backend import xp_of
from ._util import sum_to


class Alias(Primitive):
    """Identity (a fresh graph node over the same array)."""
    def forward(self, x):
        return x

    def backward(self, g):
        return g


def alias(t):
    """A fresh graph node over ``t``'s array (the engine differentiates fused ops' composites w.r.t. these)."""
    return Alias.apply(t)


class Reshape(Primitive):
    def forward(self, x, shape):
        self.src = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.src)


class Permute(Primitive):
    def forward(self, x, dims):
        self.inv = tuple(np.argsort(dims).tolist())
        return x.transpose(dims)

    def backward(self, g):
        return self.call(Permute, g, dims=self.inv)


class Expand(Primitive):
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
    def forward(self, x, shape):
        self.src = x.shape
        return reduce_to(x, shape)

    def backward(self, g):
        return self.call(Expand, g, shape=self.src)


def _is_basic(idx):
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice, np.integer)) for i in idx)


class GetItem(Primitive):
    def forward(self, x, idx):
        self.src, self.idx = x.shape, idx
        return xp_of(x).asarray(x[idx])

    def backward(self, g):
        return self.call(IndexAdd, g, shape=self.src, idx=self.idx)


class IndexAdd(Primitive):
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


class Cat(Primitive):
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
    """Constant padding; ``widths`` is numpy's ((before, after), ...) per dimension."""
    def forward(self, x, widths, value):
        self.idx = tuple(slice(b, b + n) for (b, _), n in zip(widths, x.shape))
        return xp_of(x).pad(x, widths, mode="constant", constant_values=value)

    def backward(self, g):
        return self.call(GetItem, g, idx=self.idx)
