"""Error messages shared across the package (gpugrad is imported lazily only: any module may import this one)."""
from __future__ import annotations

__all__ = ["not_a_tensor", "NotATensorError", "foreign_arg"]


class NotATensorError(TypeError):
    """A NumPy array, torch.Tensor, list, ... passed where a gpugrad Tensor is required."""


def _kind(obj):
    t = type(obj)
    mod = t.__module__.split(".")[0]
    if mod == "builtins":
        return t.__name__
    if mod == "torch" and t.__name__ in ("Tensor", "Parameter"):
        return "torch.Tensor" if t.__name__ == "Tensor" else "torch.nn.Parameter"
    return f"{mod}.{t.__name__}"


def not_a_tensor(obj, where: str, what: str | None = None) -> TypeError:
    """The TypeError for ``obj`` given where a gpugrad Tensor is required, saying how to convert it.

    ``where`` names the call site: a bare name (``"relu"``) is shown as ``relu()``, anything else as
    written; ``what`` names the argument (``"target"``: "cross_entropy(): target must be a Tensor, ...").
    """
    where = f"{where}()" if where.isidentifier() else where
    kind = _kind(obj)
    mod = _mod(obj)
    if mod == "numpy":
        hint = "convert it with gg.from_numpy(x) (shares memory) or gg.tensor(x)"
    elif mod == "torch":
        hint = ("convert it with gg.tensor(t.detach().cpu().numpy()) (a copy) or "
                "gg.from_numpy(t.detach().cpu().numpy()) (shares the CPU memory)")
    elif mod == "cupy":
        hint = "convert it with gg.tensor(x) or gg.as_tensor(x)"
    elif isinstance(obj, (list, tuple, int, float, bool, complex)):
        hint = "convert it with gg.tensor(x)"
    else:
        hint = None
    msg = f"{where}: {what} must be a Tensor, got {kind}" if what else \
        f"{where}: expected a gpugrad Tensor, got {kind}"
    err = NotATensorError(f"{msg}; {hint}" if hint else msg)
    err.specific = what is not None  # NOTE: names the argument: callers up the stack keep this message
    return err


def _mod(obj):
    return type(obj).__module__.split(".")[0]


def foreign_arg(exc, args, kwargs, where):
    """After ``exc`` escaped a call that requires Tensors: the not-a-tensor TypeError to raise instead, or
    None when no argument is a foreign array (a NumPy / CuPy array, a torch.Tensor; or a list / tuple as
    the first argument) or ``exc`` is not the kind of error such an argument causes."""
    if not isinstance(exc, (AttributeError, TypeError)) or getattr(exc, "specific", False):
        return None
    vals = list(args) + list(kwargs.values()) if kwargs else args
    for i, a in enumerate(vals):
        if _mod(a) in ("numpy", "torch", "cupy") or (i == 0 and args and isinstance(a, (list, tuple))):
            return not_a_tensor(a, where)
    return None
