"""Grad mode: whether ops record the graph. A module-level flag (read on every op)."""
from __future__ import annotations

import functools

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]


class _State:
    # NOTE: a plain module-level object, not thread-local: reading it costs one attribute load per op.
    grad_enabled = True
    anomaly = False


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
