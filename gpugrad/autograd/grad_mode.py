"""Grad mode: whether ops record the graph. A module-level flag (read on every op)."""
from __future__ import annotations

import functools
import inspect
import weakref

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
           "is_inference_mode_enabled"]


class _State:
    # NOTE: a plain module-level object, not thread-local: reading it costs one attribute load per op.
    grad_enabled = True
    anomaly = False
    inference = False  # inside gg.inference_mode() (tensors made then report is_inference())
    # NOTE: grad mode turned on (enable_grad, set_grad_enabled(True)) inside inference mode: is_grad_enabled() says
    # True, as PyTorch's, but nothing is recorded (grad_enabled, the flag every op reads, stays False)
    inference_grad = False
    rebased = False        # set once an in-place op rebased a tensor onto a new node (see autograd.engine)
    views_rebased = False  # set once an in-place op through a view rebased a graph (see primitive.apply)


state = _State()


def is_grad_enabled() -> bool:
    return state.grad_enabled or state.inference_grad


def _set_mode(mode):
    """Turn grad mode on or off; returns what to give _restore to undo it."""
    prev = (state.grad_enabled, state.inference_grad)
    if mode and state.inference:
        state.grad_enabled, state.inference_grad = False, True
    else:
        state.grad_enabled, state.inference_grad = mode, False
    return prev


def _restore(prev):
    state.grad_enabled, state.inference_grad = prev


def _wrap(fn, enter, leave):
    """``fn`` running between ``enter()`` and ``leave(enter())``. A generator function gets a generator that
    runs each of its resumes under the mode (and the caller's code between them under the caller's), as
    PyTorch's decorators do; a plain function, one call."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            def step(method, *arg):
                prev = enter()
                try:
                    return method(*arg)
                finally:
                    leave(prev)
            gen = step(fn, *args, **kwargs) if not kwargs else step(lambda: fn(*args, **kwargs))
            # NOTE: send/throw/close are passed on, so coroutine-style generators keep working
            try:
                value = step(gen.send, None)
                while True:
                    try:
                        sent = yield value
                    except GeneratorExit:
                        step(gen.close)
                        raise
                    except BaseException as e:  # noqa: BLE001  (handed to the generator, as `yield from` does)
                        value = step(gen.throw, e)
                    else:
                        value = step(gen.send, sent)
            except StopIteration as stop:
                return stop.value
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        prev = enter()
        try:
            return fn(*args, **kwargs)
        finally:
            leave(prev)
    return wrapper


class _Mode:
    """Base of the grad-mode contexts: ``with`` block, or decorator (with or without parentheses)."""
    mode = True

    def __new__(cls, orig_func=None):
        # NOTE: `@gg.no_grad` without parentheses works too, as in PyTorch 2
        self = super().__new__(cls)
        return self if orig_func is None else self(orig_func)

    def __enter__(self):
        self.prev = _set_mode(self.mode)
        return self

    def __exit__(self, *exc):
        _restore(self.prev)
        return False

    def __call__(self, fn):
        mode = self.mode
        return _wrap(fn, lambda: _set_mode(mode), _restore)


class set_grad_enabled(_Mode):
    """Set grad mode on or off: at once (like PyTorch, it works as a plain call), as a ``with``
    block that restores the previous mode, or as a decorator."""

    def __new__(cls, mode):
        return object.__new__(cls)

    def __init__(self, mode: bool):
        if not isinstance(mode, bool):
            raise TypeError(f"set_grad_enabled(): argument 'enabled' (position 1) must be bool, not {type(mode).__name__}")
        self.mode = mode
        self.prev = _set_mode(mode)

    def __enter__(self):
        return self

    def __call__(self, fn):
        _restore(self.prev)  # the decorator form must not change the mode now
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


def _inference_enter(mode):
    prev = (state.grad_enabled, state.inference_grad, state.inference)
    state.grad_enabled, state.inference_grad = not mode, False
    _set_inference(mode)
    return prev


def _inference_leave(prev):
    state.grad_enabled, state.inference_grad, inf = prev
    _set_inference(inf)


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
        self.prev = _inference_enter(self.mode)
        return self

    def __exit__(self, *exc):
        _inference_leave(self.prev)
        return False

    def __call__(self, fn):
        mode = self.mode
        return _wrap(fn, lambda: _inference_enter(mode), _inference_leave)

    def clone(self):
        return type(self)(self.mode)
