"""Activation modules: thin wrappers that call the fused ops of gg.nn.functional at forward time."""
from __future__ import annotations

from . import functional as F
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "ELU", "SELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh", "Softplus", "LogSigmoid",
           "Softmax", "LogSoftmax"]


class _Act(Module):
    """An activation with keyword options ``_opts`` passed through to ``F.<_fn>``."""
    _fn = ""
    _opts = ()

    def __init__(self, **opts):
        super().__init__()
        for k, v in opts.items():
            setattr(self, k, v)

    def forward(self, input):  # noqa: A002
        opts = {k: getattr(self, k) for k in self._opts}
        if getattr(self, "inplace", False):
            opts["inplace"] = True
        return getattr(F, self._fn)(input, **opts)

    def extra_repr(self):
        parts = [f"{k}={getattr(self, k)!r}" if isinstance(getattr(self, k), str) else f"{k}={getattr(self, k)}"
                 for k in self._opts]
        if getattr(self, "inplace", False):
            parts.append("inplace=True")
        return ", ".join(parts)


class ReLU(_Act):
    _fn = "relu"

    def __init__(self, inplace=False):
        super().__init__(inplace=inplace)


class LeakyReLU(_Act):
    _fn, _opts = "leaky_relu", ("negative_slope",)

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__(negative_slope=negative_slope, inplace=inplace)


class ELU(_Act):
    _fn, _opts = "elu", ("alpha",)

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__(alpha=alpha, inplace=inplace)


class SELU(_Act):
    _fn = "selu"

    def __init__(self, inplace=False):
        super().__init__(inplace=inplace)


class GELU(_Act):
    _fn, _opts = "gelu", ("approximate",)

    def __init__(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        super().__init__(approximate=approximate)


class SiLU(_Act):
    _fn = "silu"

    def __init__(self, inplace=False):
        super().__init__(inplace=inplace)


class Mish(_Act):
    _fn = "mish"

    def __init__(self, inplace=False):
        super().__init__(inplace=inplace)


class Sigmoid(_Act):
    _fn = "sigmoid"


class Tanh(_Act):
    _fn = "tanh"


class Softplus(_Act):
    _fn, _opts = "softplus", ("beta", "threshold")

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__(beta=beta, threshold=threshold)


class LogSigmoid(_Act):
    _fn = "logsigmoid"


def _implicit_dim(ndim):
    # NOTE: PyTorch's legacy rule for dim=None (it warns; we follow it silently)
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(_Act):
    _fn, _opts = "softmax", ("dim",)

    def __init__(self, dim=None):
        super().__init__(dim=dim)

    def forward(self, input):  # noqa: A002
        return getattr(F, self._fn)(input, dim=_implicit_dim(input.ndim) if self.dim is None else self.dim)


class LogSoftmax(Softmax):
    _fn = "log_softmax"
