"""Small helpers shared by the op families."""
from __future__ import annotations

import numpy as np


def norm_dim(dim, ndim, name="dim"):
    """Normalize a dim (int, tuple/list or None) to a sorted tuple of non-negative axes (None -> all)."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        d = int(d)
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"{name} {d} is out of range for a tensor with {ndim} dimension(s) "
                             f"(expected a value in [{-max(ndim, 1)}, {max(ndim, 1) - 1}])")
        out.append(d % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} {dim!r} names a dimension twice")
    # NOTE: a 0-d tensor accepts dim 0 / -1 (as PyTorch) but has no axis to reduce over
    return tuple(sorted(out)) if ndim else ()


def one_dim(dim, ndim, name="dim"):
    (d,) = norm_dim(int(dim), ndim, name) if ndim else (0,)
    return d


def sum_to(fn, g, shape):
    """Inside a backward: reduce a broadcast gradient ``g`` back to ``shape``."""
    if tuple(g.shape) == tuple(shape):
        return g
    from .shape import SumTo  # noqa: PLC0415
    return fn.call(SumTo, g, shape=tuple(shape))
