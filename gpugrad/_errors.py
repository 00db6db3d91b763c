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


def not_a_tensor(obj, where: str) -> TypeError:
    """The TypeError for ``obj`` given where a gpugrad Tensor is required, saying how to convert it.

    ``where`` names the call site: a bare name (``"relu"``) is shown as ``relu()``; anything else
    (``"cross_entropy(): argument 'target'"``) as written.
    """
    where = f"{where}()" if where.isidentifier() else where
    kind = _kind(obj)
    mod = type(obj).__module__.split(".")[0]
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
    msg = f"{where}: expected a gpugrad Tensor, got {kind}"
    return NotATensorError(f"{msg}; {hint}" if hint else msg)


def foreign_arg(exc, args, kwargs, where):
    """After ``exc`` escaped a call with ``args``/``kwargs``: the not-a-tensor TypeError to raise instead,
    or None when ``exc`` has nothing to do with a non-Tensor argument.

    Converts an AttributeError raised on one of the arguments themselves (an ndarray has no ``_data``,
    ``unsqueeze``, ...), and relabels a :class:`NotATensorError` raised deeper down with ``where``.
    """
    from .tensor import Tensor  # noqa: PLC0415
    vals = list(args) + list(kwargs.values()) if kwargs else args
    if isinstance(exc, NotATensorError):
        bad = [a for a in vals if not isinstance(a, Tensor) and _is_array_like(a)]
        return not_a_tensor(bad[0], where) if bad else None
    if isinstance(exc, AttributeError):
        obj = getattr(exc, "obj", None)
        for a in vals:
            if obj is not None and (a is obj or _owns(a, obj)) and not isinstance(a, Tensor):
                return not_a_tensor(a, where)
    return None


def _is_array_like(a):
    return type(a).__module__.split(".")[0] in ("numpy", "torch", "cupy") or isinstance(a, (list, tuple))


def _owns(a, obj):
    # NOTE: torch.Tensor.dtype is a torch.dtype: `x.dtype.kind` fails on the dtype, not on x
    return type(a).__module__.split(".")[0] == "torch" and type(obj).__module__.split(".")[0] == "torch"
