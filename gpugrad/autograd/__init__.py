"""``gg.autograd``: gradients of anything with respect to anything, checks and anomaly detection."""
from __future__ import annotations

from .primitive import Primitive  # the internal array-level layer (see docs/contracts.md)
from .function import Function, FunctionCtx, once_differentiable  # the public ctx-style layer
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                        set_grad_enabled, state as _state)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from . import functional  # noqa: E402  (torch.autograd.functional: jacobian, hessian, vjp, jvp, hvp, vhp)

__all__ = ["grad", "backward", "Function", "Primitive", "gradcheck", "gradgradcheck", "GradcheckError", "detect_anomaly",
           "set_detect_anomaly", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
           "is_inference_mode_enabled"]


def _seq(x):
    from ..tensor import Tensor  # noqa: PLC0415
    if isinstance(x, Tensor):
        return [x], True
    return list(x), False


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False,
         materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs`` (leaves or intermediate tensors).

    Returns a tuple with one gradient per input. An input the outputs do not depend on raises,
    naming it, unless ``allow_unused=True`` (then its entry is None, or zeros with
    ``materialize_grads=True``). Leaf ``.grad`` fields are left untouched.
    """
    from . import engine  # noqa: PLC0415
    outs, _ = _seq(outputs)
    ins, _ = _seq(inputs)
    if grad_outputs is None:
        gos = [None] * len(outs)
    else:
        gos, _ = _seq(grad_outputs) if not isinstance(grad_outputs, (list, tuple)) else (list(grad_outputs), False)
    if len(gos) != len(outs):
        raise ValueError(f"grad_outputs has {len(gos)} entries but there are {len(outs)} outputs")
    gs = [engine._as_grad(g, o, create_graph, f"output {i}") for i, (o, g) in enumerate(zip(outs, gos))]
    res = engine.run(outs, gs, inputs=ins, retain_graph=retain_graph, create_graph=create_graph,
                     allow_unused=allow_unused or materialize_grads)
    if materialize_grads:
        from ..tensor import zeros_like  # noqa: PLC0415
        res = [zeros_like(t) if r is None else r for t, r in zip(ins, res)]
    return tuple(res)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    """Accumulate gradients of several outputs into the leaves in one sweep."""
    from . import engine  # noqa: PLC0415
    outs, _ = _seq(tensors)
    gos = [None] * len(outs) if grad_tensors is None else _seq(grad_tensors)[0]
    gs = [engine._as_grad(g, o, create_graph, f"output {i}") for i, (o, g) in enumerate(zip(outs, gos))]
    engine.run(outs, gs, retain_graph=retain_graph, create_graph=create_graph)


class detect_anomaly:
    """Context: record where each op was called, and raise in backward at the first NaN/Inf gradient,
    naming the op and that line of user code. Slows everything down: use it for debugging only."""

    def __init__(self, check_nan=True):
        self.check = check_nan

    def __enter__(self):
        self.prev = _state.anomaly
        _state.anomaly = self.check
        return self

    def __exit__(self, *exc):
        _state.anomaly = self.prev
        return False


class set_detect_anomaly(detect_anomaly):
    def __init__(self, mode):
        super().__init__(mode)
        self.prev = _state.anomaly
        _state.anomaly = bool(mode)

    def __enter__(self):
        return self
