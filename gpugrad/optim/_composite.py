"""Shared pieces of the optimizers: PyTorch's tensor ops as array ops (:class:`Ops`), the per-parameter
loop (:func:`stepped`) and the group checks.

An update is written once as PyTorch's op sequence (``torch.optim``'s single-tensor functions) over
:class:`Ops`: for float32/float64 arrays each op is plain array arithmetic; for float16/bfloat16 arrays
(parameters updated the PyTorch way, state in their dtype) each op widens its operands to float32,
computes as PyTorch's CPU kernels do and rounds the result to the storage dtype, one rounding per op.
SGD, Adam/AdamW, RMSprop and Adagrad run their fused kernel (:mod:`gpugrad.fused.optim`) instead on
float32/float64 arrays and on float32 master copies.
"""
from __future__ import annotations

import functools
import os
import pathlib

import numpy as np

from .._dtypes import LOWP
from ..backend import xp_of
from ..tensor import Tensor, _bump
from .optimizer import _check_flags_unsupported, _check_nonneg, _is_number

__all__ = ["Ops", "ops_for", "master", "commit", "stepped", "check_betas", "check_flags"]

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
_LANES = []


def _lanes():
    """How many elements PyTorch's CPU vector loop takes at a time for float16/bfloat16 (32 under its AVX2 and
    AVX512 builds; without AVX2, the "default" build, every element takes the scalar loop).

    NOTE: the last ``size % lanes`` elements of a tensor take the scalar loop, which rounds differently in one
    op (add with alpha). PyTorch picks its build from ATEN_CPU_CAPABILITY or the CPU; elsewhere than x86
    (no "avx2"/"flags" line in /proc/cpuinfo) 32 is assumed, unverified."""
    if not _LANES:
        cap = os.environ.get("ATEN_CPU_CAPABILITY", "").lower()
        if not cap and os.path.exists("/proc/cpuinfo"):
            info = pathlib.Path("/proc/cpuinfo").read_text()
            cap = "default" if "flags" in info and " avx2" not in info else "avx2"
        _LANES.append(1 << 62 if cap == "default" else 32)
    return _LANES[0]


def _py(x):
    return isinstance(x, (int, float))


class Ops:
    """PyTorch's tensor ops (names and arguments as in ``torch``) on arrays of one storage dtype.

    Operands are arrays or Python numbers; every op returns a new array. Low precision (``lowp``):
    operands are widened to float32 (PyTorch's "opmath"), Python scalars become float32 except an
    added scalar or ``alpha``, which PyTorch first casts to the tensor's dtype, and the result is rounded
    to the storage dtype. The rules were read off PyTorch 2.13's CPU kernels and checked against them
    bit for bit (tests/test_optim_lowp.py).
    """

    def __init__(self, dt):
        self.dt = np.dtype(dt)
        self.lowp = self.dt in LOWP

    def w(self, a):  # widen an array to the compute dtype
        return a.astype(F32) if self.lowp else a

    def r(self, a):  # round a result to the storage dtype
        return a.astype(self.dt) if self.lowp else a

    def s(self, v):  # a Python scalar as PyTorch's kernel sees it (float32 opmath)
        return np.float32(v) if self.lowp else v

    def h(self, v):  # a Python scalar cast to the tensor's dtype, then computed in float32
        return np.float32(np.float32(v).astype(self.dt)) if self.lowp else v

    def fma(self, x, y, z):
        """x * y + z rounded once: PyTorch's AVX2/AVX512 CPU kernels contract these (FMA); its build without
        AVX2 ("default") does not.

        NOTE: emulated in float64 (the float32 product is exact there); the sum's double rounding through
        float64 differs from a true FMA only in ~2^-29 of the cases."""
        if self.lowp and _lanes() <= 32:
            return (x.astype(F64) * y.astype(F64) + z.astype(F64)).astype(F32)
        t = x * y
        t += z  # NOTE: in place on the fresh product: one temporary less for large float32 arrays
        return t

    def sqrt(self, a):
        return self.r(xp_of(a).sqrt(self.w(a)))

    def add(self, a, b, alpha=1):
        """a + alpha * b (torch.add); b an array or a Python scalar."""
        if _py(b):
            return self.r(self.w(a) + self.h(b))  # NOTE: the scalar operand is cast to the tensor's dtype first
        al = self.h(alpha)
        if alpha == 1:
            return self.r(self.w(a) + self.w(b))
        if not self.lowp or abs(alpha) == 1:
            t = al * self.w(b)
            t += self.w(a)
            return self.r(t)
        # NOTE: PyTorch's scalar tail loop (the last size % lanes elements) computes alpha * b in the storage
        #       dtype (c10::Half arithmetic), rounding it before the sum; its vector loop does not
        tail = lambda a, b: self.r(self.w(a) + self.w(self.r(al * self.w(b))))  # noqa: E731
        k = a.size % _lanes()
        if k == a.size:
            return tail(a, b)
        out = self.r(self.w(a) + al * self.w(b))
        if k:
            out.reshape(-1)[-k:] = tail(a.reshape(-1)[-k:], b.reshape(-1)[-k:])
        return out

    def sub(self, a, b):
        return self.r(self.w(a) - self.w(b))

    def mul(self, a, b):
        return self.r(self.w(a) * (self.s(b) if _py(b) else self.w(b)))

    def div(self, a, b):
        return self.r(self.w(a) / (self.s(b) if _py(b) else self.w(b)))

    def rdiv(self, v, a):
        """v / a for a Python number v: PyTorch's Tensor.__rtruediv__ is reciprocal(a) * v."""
        return self.mul(self.r(1 / self.w(a)), v)

    def maximum(self, a, b):
        return self.r(xp_of(a).maximum(self.w(a), self.w(b)))

    def lerp(self, a, b, weight):
        a, b, wt = self.w(a), self.w(b), self.s(weight)
        return self.r(self.fma(wt, b - a, a) if abs(wt) < 0.5 else self.fma(wt - 1, b - a, b))

    def addcmul(self, a, b, c, value=1):
        """a + value * b * c (torch.addcmul): (value * b) * c + a with one rounding (FMA)."""
        return self.r(self.fma(self.w(b) * self.s(value), self.w(c), self.w(a)))

    def addcdiv(self, a, b, c, value=1):
        """a + value * b / c (torch.addcdiv): (value * b) / c, then + a."""
        t = self.w(b) * self.s(value)
        t /= self.w(c)
        t += self.w(a)
        return self.r(t)

    def grad(self, g, p, maximize, weight_decay):
        """The gradient the optimizers step with: negated when maximizing, plus ``weight_decay * p`` (L2)."""
        g = -g if maximize else g
        return self.add(g, p, weight_decay) if weight_decay != 0 else g


ops_for = functools.lru_cache(maxsize=None)(Ops)  # the (cached) Ops of a storage dtype


def check_betas(group):
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        if not (_is_number(b) and 0.0 <= float(b) < 1.0):
            raise ValueError(f"Invalid beta parameter at index {i}: {b!r} (must be in [0, 1))")
    _check_nonneg(group, "eps", "epsilon")
    _check_nonneg(group, "weight_decay")


def master(opt, p, state):
    """p's float32 master copy (``state["master_param"]``): made from p on first use, and made again when p
    was written outside the optimizer (its version moved) and no longer equals the rounded master."""
    m, ver = state.get("master_param"), p._ver[0]
    if m is None or (opt._synced.get(id(p)) != ver and not bool((m._data.astype(p._data.dtype) == p._data).all())):
        m = state["master_param"] = Tensor(p._data.astype(F32))
    opt._synced[id(p)] = ver
    return m._data


def commit(opt, p, w):
    """The update of p is done: round a master copy ``w`` into p, and bump p's version."""
    if w is p._data:
        return _bump(p)  # NOTE: an in-place write: tensors saved by a graph see it, as in PyTorch
    p._data[...] = w  # NOTE: the one rounding of the float32 master into the parameter
    _bump(p)
    opt._synced[id(p)] = p._ver[0]


def stepped(opt, group, init=None, keep=True):
    """(p, state, w, g, o) for each parameter of ``group`` that has a gradient: ``w`` the array the update
    writes (p's own, or its float32 master copy with master weights), ``g`` the gradient (float32 for a
    master), ``o`` the :class:`Ops` of w's dtype. With ``init``, the state is made by ``init(p)`` (a dict,
    ``step`` added) on the first step and ``state["step"]`` advanced by one. After the caller's update of w
    the parameter is committed (:func:`commit`). ``keep=False``: no state entry is made for a parameter that
    needs none (SGD without momentum, as in PyTorch)."""
    flag = next((k for k in ("foreach", "fused") if group.get(k)), None)
    for p in group["params"]:
        if p.grad is None:
            continue
        mw = opt.master_weights and p._data.dtype in LOWP
        state = opt.state[p] if keep or mw else opt.state.get(p, {})
        if init is not None:
            if not state:
                state["step"] = 0
                state.update(init(p))
            state["step"] += 1
        w, g = (master(opt, p, state), p.grad._data.astype(F32)) if mw else (p._data, p.grad._data)
        o = ops_for(w.dtype)
        if flag and o.lowp:
            raise NotImplementedError(f"{flag}=True with {p.dtype} parameters: PyTorch's {flag} implementation "
                                      "rounds differently from its single-tensor one (its CPU default), which gpugrad "
                                      f"follows; use {flag}=None, master_weights=True or float32 parameters")
        # NOTE: low precision overflows and makes NaN where PyTorch does, silently as PyTorch (the caller's
        #       update runs inside this context while the generator is suspended)
        if o.lowp:
            with np.errstate(all="ignore"):
                yield p, state, w, g, o
        else:
            yield p, state, w, g, o
        commit(opt, p, w)


def check_flags(group):
    """The flags these optimizers refuse, with PyTorch's names (as Adam does)."""
    _check_flags_unsupported(group, differentiable="optimizer steps are not part of the autograd graph",
                             capturable="CUDA-graph capture of optimizer steps is not implemented")
