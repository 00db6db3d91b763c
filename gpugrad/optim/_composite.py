"""Shared pieces of the optimizers written as in-place array updates (no fused kernel of their own).

Each update runs on the parameter's arrays (NumPy or CuPy, whichever holds it) in the state dtype
(float32 for float16 parameters), writes the parameter in place and bumps its version, exactly as the
fused-kernel optimizers do, so autograd sees the write.
"""
from __future__ import annotations

from ..fused.optim import state_dtype
from ..tensor import _bump
from .optimizer import _check_flags_unsupported, _check_nonneg, _is_number

__all__ = ["begin", "commit", "check_betas", "stepped", "check_flags"]


def begin(p, maximize, weight_decay=0.0):
    """(g, w): the gradient (negated when maximizing, plus ``weight_decay * p`` for L2 decay), as a fresh
    array, and the parameter's array in the state dtype (``p._data`` itself unless p is float16)."""
    sdt = state_dtype(p.dtype)
    w = p._data if p._data.dtype == sdt else p._data.astype(sdt)
    g = p.grad._data.astype(sdt, copy=True)
    if maximize:
        g *= -1
    if weight_decay != 0:
        g += weight_decay * w
    return g, w


def commit(p, w):
    """Write ``w`` back (when it is a float32 copy of a float16 parameter) and bump p's version."""
    if w is not p._data:
        p._data[...] = w.astype(p._data.dtype)
    _bump(p)  # NOTE: an in-place write: tensors saved by a graph see it, as in PyTorch


def check_betas(group):
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        if not (_is_number(b) and 0.0 <= float(b) < 1.0):
            raise ValueError(f"Invalid beta parameter at index {i}: {b!r} (must be in [0, 1))")
    _check_nonneg(group, "eps", "epsilon")
    _check_nonneg(group, "weight_decay")


def stepped(opt, group, init):
    """(p, state) for each parameter of ``group`` that has a gradient, its state made by ``init(p)`` (a dict,
    ``step`` added) on the first step and ``state["step"]`` advanced by one."""
    for p in group["params"]:
        if p.grad is None:
            continue
        state = opt.state[p]
        if not state:
            state["step"] = 0
            state.update(init(p))
        state["step"] += 1
        yield p, state


def check_flags(group):
    """The flags these optimizers refuse, with PyTorch's names (as Adam does)."""
    _check_flags_unsupported(group, differentiable="optimizer steps are not part of the autograd graph",
                             capturable="CUDA-graph capture of optimizer steps is not implemented")
