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
    seen = set()
    for d in out:
        if d in seen:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
        seen.add(d)
    # NOTE: a 0-d tensor accepts dim 0 / -1 (as PyTorch) but has no axis to reduce over
    return tuple(sorted(out)) if ndim else ()


def one_dim(dim, ndim, name="dim"):
    if not ndim:
        norm_dim(int(dim), 0, name)  # NOTE: a 0-d tensor takes dim 0 or -1 only, as PyTorch (IndexError otherwise)
        return 0
    (d,) = norm_dim(int(dim), ndim, name)
    return d


# -- NumPy floating-point warnings --------------------------------------------------------------------
# NOTE: PyTorch never warns about inf/nan results (sqrt(-1), log(0), 1/0, 0*inf); NumPy does, unless its
# error state says "ignore". ``np.errstate(all="ignore")`` costs ~1 us per call on NumPy 2.x (~0.6 us as a
# decorator); setting the context variable behind it directly costs ~0.25 us, so ``quiet`` does that
# where it exists, and falls back to np.errstate elsewhere. CuPy never warns (nothing to silence).
from ..backend import _IGNORE, _errvar  # noqa: E402


def quiet(fn):
    """Decorate a forward/backward so NumPy's floating-point warnings are off while it runs."""
    import functools  # noqa: PLC0415
    if _errvar is None:  # pragma: no cover
        return functools.wraps(fn)(np.errstate(all="ignore")(fn))
    set_, reset = _errvar.set, _errvar.reset

    @functools.wraps(fn)
    def run(*args, **kwargs):
        tok = set_(_IGNORE)
        try:
            return fn(*args, **kwargs)
        finally:
            reset(tok)
    return run


def quiet_family(*classes, backward=True):
    """Apply :func:`quiet` to the forward (and the backward, unless ``backward=False``: formulas that cannot
    warn) of each Primitive class, once per op family."""
    for cls in classes:
        for name in ("forward", "backward") if backward else ("forward",):
            f = cls.__dict__.get(name)
            if f is not None and not getattr(f, "_quiet", False):
                q = quiet(f)
                q._quiet = True
                setattr(cls, name, q)
