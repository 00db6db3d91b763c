"""Differentiable primitives: the Primitive base class. See docs/contracts.md.

A Primitive instance is also the graph node: ``apply`` runs ``forward`` on arrays and, when grad
mode is on and some input requires grad, records the node on the output Tensor. ``backward`` gets
the output gradient as an array (first order) or as a Tensor (``create_graph=True``), so one
formula written with operators and :meth:`Primitive.call` serves both.
"""
from __future__ import annotations

import itertools
import traceback
import weakref

import numpy as np

from .. import _dtypes
from .._dtypes import F16 as _F16, F32 as _F32, LOWP as _LOWP
from .grad_mode import state

__all__ = ["Primitive"]

_Tensor = None  # set by gpugrad.tensor (avoids a circular import)
_BF16 = _dtypes.UNLOADED  # NOTE: bfloat16 once ml_dtypes is loaded (gpugrad._dtypes); tested by identity in apply


def _set_bf16(dt):
    global _BF16
    _BF16 = dt


_dtypes.on_bf16(_set_bf16)
_seq = itertools.count()  # creation order of graph nodes (the backward sweep runs it in reverse)
# NOTE: in-place writes also draw a number from _seq; last_write[0] is the latest, so the sweep
# checks saved versions only on nodes recorded before some write (all others cannot be stale).
last_write = [0]
# NOTE: gg.compile's recorder while it records a step (None otherwise): read only by calls that happen
# once per step (optimizer step, zero_grad) and by `recorded` functions; per-op hooks are swapped in instead.
tape = None


def recorded(fn, dynamic=None):
    """Mark ``fn``, a function of Tensors whose result needs no graph and is computed from their arrays outside any
    Primitive (isnan, argmax, logical ops, ...): gg.compile notes a call as one replayable call. ``dynamic``:
    a predicate of the arguments, true when the result's shape depends on the values (nonzero, unique), which
    gg.compile refuses. Outside a recording it costs one global read."""
    def w(*args, **kwargs):
        t = tape
        return fn(*args, **kwargs) if t is None else t.call(fn, args, kwargs, dynamic)
    w.__name__, w.__qualname__, w.__doc__, w.__wrapped__ = fn.__name__, fn.__qualname__, fn.__doc__, fn
    w.__module__ = fn.__module__
    return w


def value_shaped(fn):
    """``recorded`` for a function whose result's shape depends on the values (nonzero, unique, bincount)."""
    return recorded(fn, True)


def bump(t, _last=last_write, _next=_seq.__next__):
    """An in-place write happened to t's memory: bump the version its views share."""
    t._ver[0] += 1
    _last[0] = _next()


def _cross(rg):
    return tuple(i for i in (0, 1) if rg[1 - i])


cross = staticmethod(_cross)  # the ``saves`` of products (mul, matmul, linear)
_NO_SAVES = ()  # NOTE: compared by identity (CPython has one empty tuple); a miss only records versions needlessly


def _modified(node, t, what, now, then):
    hint = ("Hint: the backtrace further above shows the operation that failed to compute its gradient; "
            "enable anomaly detection (gg.autograd.detect_anomaly()) to see where it was called."
            if not getattr(node, "trace", None) else
            "The forward call was made at:\n" + "".join(traceback.format_list(node.trace)))
    from .._promotion import tensor_type_name  # noqa: PLC0415  (error path only)
    cuda = type(getattr(t, "_data", t)) is not np.ndarray
    desc = f"[{tensor_type_name(t.dtype, cuda)} {list(t.shape)}], which is " if hasattr(t, "dtype") else ""
    raise RuntimeError(f"one of the variables needed for gradient computation has been modified by an inplace "
                       f"operation: {desc}{what} of {node.name}Backward, is at "
                       f"version {now}; expected version {then} instead. {hint}")


def _not_a_tensor(obj, where):
    from .._errors import not_a_tensor  # noqa: PLC0415
    return not_a_tensor(obj, where)


def _refresh_views(inputs):
    """Regenerate the graph of views whose storage was rebased by an in-place op through another view."""
    for t in inputs:
        v = getattr(t, "_view", None)
        if v is not None and t._ver[1] > v[2]:
            _view_refresh(t)


_view_refresh = None  # set by gpugrad.tensor


def _check_devices(fn, datas):
    t0 = type(datas[0])
    if all(type(d) is t0 for d in datas) and (t0 is np.ndarray or len({d.device.id for d in datas}) == 1):
        return
    from ..backend import device_of  # noqa: PLC0415
    devs = [str(device_of(d)) for d in datas]
    raise RuntimeError(f"{fn.__name__}: expected all tensors on the same device, got {' and '.join(sorted(set(devs)))}"
                       f" (argument devices: {devs}); move them with .to(device) first — gpugrad never copies silently")


class Primitive:
    save_output = False   # set True to keep the forward output for backward (see result())
    # which inputs' VALUES backward reads (checked against in-place writes): None = all of them,
    # a tuple of indices, or a function of the inputs' requires_grad flags returning the indices
    # (``cross``: products, where input i is read iff the other one needs a gradient)
    saves = None
    outv = 0              # version of the saved output at record time (non-zero only for in-place results)
    vers = None           # versions of the inputs at record time (None: all were 0)
    composite = None      # fused ops: staticmethod(*tensors, **params) -> Tensor, used for higher order
    ycomposite = None     # and staticmethod(y, g, **params) -> the input's gradient from the output Tensor y
                          # (the create_graph route of nodes that read their output: their input may be gone)
    graph = False         # True while a differentiable (create_graph) backward runs
    hooks = None          # gradient hooks of the output tensor (Tensor.register_hook on a non-leaf)
    # float16/bfloat16 inputs (see _lowp_forward): "widen" computes forward and backward in float32; "forward"
    # runs the forward on the low-precision arrays as they are (views, copies, casts: exact) and widens the
    # backward; "native" runs both as they are (ops whose code and kernels widen themselves)
    lowp = "widen"

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the primitive on Tensors and return a Tensor (recording the graph when needed)."""
        if state.views_rebased:
            _refresh_views(inputs)
        ctx = cls.__new__(cls)
        try:
            if len(inputs) == 1:
                x = inputs[0]
                d = x._data
                dt = d.dtype
                y = ctx.forward(d, **params) if dt is not _F16 and dt is not _BF16 else _lowp_forward(ctx, (d,), params)
                rg = x._rg
            else:
                x = None
                datas = [t._data for t in inputs]
                if type(datas[0]) is not np.ndarray or any(type(d) is not np.ndarray for d in datas):
                    _check_devices(cls, datas)
                for d in datas:
                    dt = d.dtype
                    if dt is _F16 or dt is _BF16:
                        y = _lowp_forward(ctx, datas, params)
                        break
                else:
                    y = ctx.forward(*datas, **params)
                rg = False
                for t in inputs:
                    if t._rg:
                        rg = True
                        break
        except AttributeError:
            for t in inputs:
                if not isinstance(t, _Tensor):
                    raise _not_a_tensor(t, cls.__name__) from None
            raise
        out = _Tensor(y)
        if rg and state.grad_enabled:
            out._rg = True
            out._node = ctx
            ctx.inputs = inputs
            ctx.seq = next(_seq)
            # NOTE: versions of the inputs at record time, which backward checks for those it reads
            # (``saves``); left at the class default None (= all zero) when they are, the common case
            if x is not None:
                if x._ver[0]:
                    ctx.vers = (x._ver[0],)
            elif cls.saves is not _NO_SAVES:
                ctx.vers = (inputs[0]._ver[0], inputs[1]._ver[0]) if len(inputs) == 2 else \
                    tuple([t._ver[0] for t in inputs])
            ctx.yver = out._ver
            if cls.save_output:
                ctx.y = y
                ctx.out = weakref.ref(out)
            if cls.composite is not None:
                ctx.params = params
            if state.anomaly:
                ctx.trace = traceback.extract_stack()[:-2]
        return out

    # -- to be written by subclasses ---------------------------------------------------------
    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, g):
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    # -- helpers for backward formulas ---------------------------------------------------------
    def values(self):
        """The forward inputs: arrays in a first-order backward, Tensors in a create_graph one."""
        if self.graph:
            return self.inputs  # NOTE: only saved (version-checked) inputs may be used as Tensors
        return tuple([t._data for t in self.inputs])

    def result(self):
        """The forward output (requires ``save_output = True``), array or Tensor to match g."""
        if not self.graph:
            return self.y
        out = self.out()
        if out is None:
            # NOTE: the output tensor is always alive while its node is reachable in a retained graph;
            # falling back to a constant would silently drop second-order terms, so refuse instead.
            raise RuntimeError(f"{type(self).__name__}: forward output was freed before a create_graph backward")
        return out

    def call(self, fn, *args, **params):
        """Run primitive ``fn`` inside a backward: on arrays directly, or recorded on Tensors."""
        if self.graph:
            T = _Tensor
            return fn.apply(*[a if isinstance(a, T) else T(a) for a in args], **params)
        return fn.__new__(fn).forward(*args, **params)

    @property
    def needs_input_grad(self):
        return tuple([t._rg for t in self.inputs])  # NOTE: a list first: tuple(genexpr) over-allocates, then shrinks

    @property
    def name(self):
        return type(self).__name__

    def release(self):
        """Free what backward saved (called after a backward unless retain_graph=True)."""
        d = self.__dict__
        # NOTE: inputs=None marks the node freed; seq stays so the sweep can still order it, prev (the
        # identity of a tensor before an in-place op rebased it onto this node) for older nodes' edges
        seq, prev, hooks = d["seq"], d.get("prev"), d.get("hooks")
        d.clear()
        d["inputs"] = None
        d["seq"] = seq
        if prev is not None:
            d["prev"] = prev
        if hooks is not None:
            d["hooks"] = hooks  # NOTE: the output tensor's hooks stay registered (retains_grad stays True, PyTorch)

    def check_saved(self):
        """Raise PyTorch's error if a tensor this node's backward reads was changed in place since."""
        saves, ins, vers = self.saves, self.inputs, self.vers
        if saves is None:
            idx = range(len(ins))
        elif callable(saves):
            idx = saves(tuple(t._rg for t in ins))
        else:
            idx = saves
        for i in idx:
            t = ins[i]
            then = vers[i] if vers is not None else 0
            if t._ver[0] != then:
                _modified(self, t, f"input {i}", t._ver[0], then)
        if self.yver[0] != self.outv and self.reads_output():
            out = self.out() if "out" in self.__dict__ else None
            _modified(self, self.saved_output() if out is None else out, "output 0", self.yver[0], self.outv)

    def saved_output(self):
        """The saved output array (for error messages)."""
        return self.y

    def output_tensor(self):
        """The forward output as a Tensor of this node (create_graph; ``save_output`` nodes)."""
        return self.result()

    def reads_output(self):
        """Whether backward reads the forward output (so an in-place write to it must raise)."""
        return self.save_output

    cow = False           # True: own_output() must run before this node's output memory is written in place

    def own_output(self):
        """Take a private copy of the saved output before an in-place write to it (nodes with ``cow``)."""

    def keep_output(self, arr):
        """An in-place op wrote this node's output into ``arr`` (the target's storage): read it there."""
        if self.save_output:
            self.y = arr

    def __repr__(self):
        return f"<{type(self).__name__}Backward>"


def _widen(a):
    return a.astype(_F32) if a.dtype in _LOWP else a


class _Widened:
    """A Tensor seen with its float16/bfloat16 array widened to float32 (other attributes are the Tensor's)."""
    __slots__ = ("_t", "_data")

    def __init__(self, t):
        self._t, self._data = t, t._data.astype(_F32)

    def __getattr__(self, name):
        return getattr(self._t, name)


def _lowp_forward(ctx, datas, params):
    """float16/bfloat16 as PyTorch's kernels compute them: the op in float32 (its opmath type) on the widened
    inputs (exact), the float32 result rounded once to the low dtype when that is the result type (no other
    float dtype among the inputs). Its backward does the same (:func:`_lowp_backward`).
    NOTE: one rounding per Primitive, as one rounding per PyTorch kernel; NumPy's float16 and ml_dtypes'
    bfloat16 ufunc loops would round after every pass, ml_dtypes sums in bfloat16 (1000 x 0.01 sums to 4)
    and NumPy's float16 matmul is a scalar loop (no BLAS)."""
    mode = ctx.lowp
    if mode != "widen":
        y = ctx.forward(*datas, **params)
        if mode == "native":
            return y
    else:
        y = ctx.forward(*[_widen(d) for d in datas], **params)
        floats = {d.dtype for d in datas if d.dtype.kind == "f" or d.dtype == _BF16}
        if y.dtype == _F32 and len(floats) == 1 and not floats.isdisjoint(_LOWP):
            with np.errstate(over="ignore"):  # NOTE: beyond float16's range the result is inf, silently as PyTorch
                y = y.astype(floats.pop())  # NOTE: float16 + bfloat16 inputs promote to float32: no rounding
    ctx.backward = _lowp_backward.__get__(ctx)  # NOTE: an instance attribute: other nodes pay nothing
    return y


def _lowp_backward(ctx, g):
    cls = type(ctx)
    if ctx.graph:  # NOTE: a create_graph backward runs on Tensors, whose every op takes this path itself
        return cls.backward(ctx, g)
    if "y" in ctx.__dict__:
        ctx.y = _widen(ctx.y)
    ins = ctx.inputs
    # NOTE: for the call only, the inputs seen through float32 stand-ins (backward formulas read
    # self.inputs[i]._data as well as self.values())
    ctx.inputs = tuple([_Widened(t) if t._data.dtype in _LOWP else t for t in ins])
    try:
        gin = cls.backward(ctx, _widen(g))
    finally:
        ctx.inputs = ins
    one = type(gin) is not tuple
    with np.errstate(over="ignore"):
        gin = tuple(gi.astype(ins[i]._data.dtype) if gi is not None and ins[i]._data.dtype in _LOWP
                    and gi.dtype != ins[i]._data.dtype else gi for i, gi in enumerate((gin,) if one else gin))
    return gin[0] if one else gin


class Alias(Primitive):
    """Identity: a fresh graph node over the same array (the engine differentiates fused ops' composites
    with respect to these)."""
    saves = ()
    lowp = "forward"

    def forward(self, x):
        return x

    def backward(self, g):
        return g
