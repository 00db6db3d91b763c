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


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs`` (leaves or intermediate tensors).

    Returns a tuple with one gradient per input. An input the outputs do not depend on raises,
    naming it, unless ``allow_unused=True`` (then its entry is None, or zeros with
    ``materialize_grads=True``). Leaf ``.grad`` fields are left untouched. ``is_grads_batched=True``:
    the first dimension of every grad_output is a batch of cotangents, and each result gets it too.
    NOTE: gpugrad runs the batch as a loop of backward sweeps (PyTorch vmaps one), so hooks run once per row.
    """
    from . import engine  # noqa: PLC0415
    if not only_inputs:
        import warnings  # noqa: PLC0415
        warnings.warn("only_inputs argument is deprecated and is ignored now (defaults to True). To accumulate "
                      "gradient for other parts of the graph, please use gg.autograd.backward.", FutureWarning,
                      stacklevel=2)
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, "
                         "but got: allow_unused=False.")
    allow_unused = bool(allow_unused or materialize_grads)  # NOTE: None (not passed) is False, as PyTorch
    outs, _ = _seq(outputs)
    ins, _ = _seq(inputs)
    if grad_outputs is None:
        gos = [None] * len(outs)
    else:
        gos, _ = _seq(grad_outputs) if not isinstance(grad_outputs, (list, tuple)) else (list(grad_outputs), False)
    if len(gos) < len(outs):
        raise RuntimeError(f"got {len(outs)} tensors and {len(gos)} gradients")
    gos = gos[:len(outs)]  # NOTE: PyTorch ignores grad_outputs beyond the outputs
    if is_grads_batched:
        return _batched_grad(outs, ins, gos, retain_graph, create_graph, allow_unused, materialize_grads)
    gs = [engine._as_grad(g, o, create_graph, f"output {i}") for i, (o, g) in enumerate(zip(outs, gos))]
    res = engine.run(outs, gs, inputs=ins, retain_graph=retain_graph, create_graph=create_graph,
                     allow_unused=allow_unused)
    if materialize_grads:
        from ..tensor import zeros_like  # noqa: PLC0415
        res = [zeros_like(t) if r is None else r for t, r in zip(ins, res)]
    return tuple(res)


def _batched_grad(outs, ins, gos, retain_graph, create_graph, allow_unused, materialize_grads):
    """grad(is_grads_batched=True): one sweep per row of the grad_outputs, results stacked along a new dim 0."""
    from ..tensor import Tensor, stack, zeros  # noqa: PLC0415
    sizes = {g.shape[0] for g in gos if isinstance(g, Tensor) and g.ndim}
    if len(sizes) != 1 or any(not isinstance(g, Tensor) or not g.ndim for g in gos):
        raise RuntimeError("is_grads_batched=True: every grad_output must be a Tensor with the same size of "
                           f"dimension 0 (the batch), got sizes {sorted(sizes)}")
    n = sizes.pop()
    rows = []
    for b in range(n):
        last = b == n - 1
        rows.append(grad(outs, ins, [g[b] for g in gos], retain_graph=retain_graph if last else True,
                         create_graph=create_graph, allow_unused=allow_unused))
    res = []
    for i, t in enumerate(ins):
        col = [r[i] for r in rows]
        if all(c is None for c in col):
            # NOTE: as PyTorch, materialize_grads gives an unused input zeros of its own shape (no batch dim)
            res.append(zeros(tuple(t.shape), dtype=t.dtype, device=t.device) if materialize_grads else None)
            continue
        col = [zeros(tuple(t.shape), dtype=t.dtype, device=t.device) if c is None else c for c in col]
        res.append(stack(col) if col else zeros((0,) + tuple(t.shape), dtype=t.dtype, device=t.device))
    return tuple(res)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None, inputs=None):
    """Accumulate gradients of several outputs into the leaves in one sweep (only into ``inputs`` if given)."""
    from . import engine  # noqa: PLC0415
    if grad_variables is not None:  # NOTE: PyTorch's deprecated name of grad_tensors
        grad_tensors = grad_variables
    outs, _ = _seq(tensors)
    gos = [None] * len(outs) if grad_tensors is None else _seq(grad_tensors)[0]
    if len(gos) < len(outs):
        raise RuntimeError(f"got {len(outs)} tensors and {len(gos)} gradients")
    gs = [engine._as_grad(g, o, create_graph, f"output {i}") for i, (o, g) in enumerate(zip(outs, gos))]
    if inputs is not None:
        engine.backward_inputs(outs, gs, inputs, retain_graph, create_graph)
        return
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
