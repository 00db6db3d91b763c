"""Grad mode: whether ops record the graph. A module-level flag (read on every op)."""
from __future__ import annotations

import functools
import weakref

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
           "is_inference_mode_enabled"]


class _State:
    # NOTE: a plain module-level object, not thread-local: reading it costs one attribute load per op.
    grad_enabled = True
    anomaly = False
    inference = False  # inside gg.inference_mode() (tensors made then report is_inference())
    rebased = False        # set once an in-place op rebased a tensor onto a new node (see autograd.engine)
    views_rebased = False  # set once an in-place op through a view rebased a graph (see primitive.apply)


state = _State()


def is_grad_enabled() -> bool:
    return state.grad_enabled


class _Mode:
    """Base of the grad-mode contexts: ``with`` block, or decorator (with or without parentheses)."""
    mode = True

    def __new__(cls, orig_func=None):
        # NOTE: `@gg.no_grad` without parentheses works too, as in PyTorch 2
        self = super().__new__(cls)
        return self if orig_func is None else self(orig_func)

    def __enter__(self):
        self.prev = state.grad_enabled
        state.grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        state.grad_enabled = self.prev
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = state.grad_enabled
            state.grad_enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                state.grad_enabled = prev
        return wrapper


class set_grad_enabled(_Mode):
    """Set grad mode on or off: at once (like PyTorch, it works as a plain call), as a ``with``
    block that restores the previous mode, or as a decorator."""

    def __new__(cls, mode):
        return object.__new__(cls)

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = state.grad_enabled
        state.grad_enabled = self.mode

    def __enter__(self):
        return self

    def __call__(self, fn):
        state.grad_enabled = self.prev  # the decorator form must not change the mode now
        return super().__call__(fn)


class no_grad(_Mode):
    """``with gg.no_grad():`` ops inside record no graph (also a decorator)."""
    mode = False


class enable_grad(_Mode):
    """``with gg.enable_grad():`` turn recording back on inside a no_grad region (also a decorator)."""
    mode = True


# -- inference mode ---------------------------------------------------------------------------------
def is_inference_mode_enabled() -> bool:
    return state.inference


_inference_refs = {}  # id(tensor) -> weakref, for the tensors made while inference mode was on
_plain_init = []      # Tensor.__init__ as defined, while the recording one is installed
Tensor = None         # the Tensor class (set by gpugrad.tensor: this module is imported before it)


def is_inference_tensor(t) -> bool:
    r = _inference_refs.get(id(t))
    return r is not None and r() is t


def _set_inference(on):
    # NOTE: Tensor.__init__ records new tensors only while inference mode is on: outside it, creating a
    # tensor costs nothing extra (the plain __init__ is put back when the outermost block exits).
    state.inference = on
    if on and not _plain_init:
        init = Tensor.__dict__["__init__"]
        _plain_init.append(init)

        def recording_init(self, *args, **kwargs):
            init(self, *args, **kwargs)
            if state.inference:
                k = id(self)
                _inference_refs[k] = weakref.ref(self, lambda _r, k=k: _inference_refs.pop(k, None))
        Tensor.__init__ = functools.wraps(init)(recording_init)
    elif not on and _plain_init:
        Tensor.__init__ = _plain_init.pop()


class inference_mode:
    """``with gg.inference_mode():`` like ``no_grad`` (no graph is recorded), and every tensor made
    inside reports ``t.is_inference()``; ``inference_mode(False)`` turns it off again inside (and grad
    mode on, as in PyTorch). Also a decorator, with or without parentheses."""

    def __new__(cls, mode=True):
        self = super().__new__(cls)
        if isinstance(mode, bool):
            return self
        self.mode = True
        return self(mode)  # NOTE: `@gg.inference_mode` without parentheses

    def __init__(self, mode=True):
        self.mode = bool(mode)

    def __enter__(self):
        self.prev = (state.grad_enabled, state.inference)
        state.grad_enabled = not self.mode
        _set_inference(self.mode)
        return self

    def __exit__(self, *exc):
        state.grad_enabled, inf = self.prev
        _set_inference(inf)
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)
        return wrapper

    def clone(self):
        return type(self)(self.mode)
