"""gpugrad: a GPU-accelerated gradient engine (reverse-mode autodiff on NumPy or CuPy).

``import gpugrad as gg`` — the public names follow PyTorch's.
"""
from __future__ import annotations

from . import backend as _backend
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import CudaUnavailableError, Device, cuda, get_default_device, set_default_device
from .backend import device as device  # noqa: PLC0414
from .random import initial_seed, manual_seed
from .tensor import (Tensor, arange, as_tensor, bool_, cat, chunk, concat, empty, empty_like, eye, float16,
                     float32, float64, from_numpy, full, full_like, get_default_dtype, int8, int16, int32, int64,
                     linspace, matmul, maximum, minimum, one_hot, ones, ones_like, pad, set_default_dtype, split,
                     stack, tensor, uint8, where, zeros, zeros_like)
from . import autograd, func  # noqa: E402

__version__ = "0.1.0"

# PyTorch's dtype aliases
half, float, double = float16, float32, float64  # noqa: A001
short, int, long = int16, int32, int64  # noqa: A001
bool = bool_  # noqa: A001


def _rand(fn_name):
    def make(*size, dtype=None, device=None, requires_grad=False, generator=None):
        from . import random as _r  # noqa: PLC0415
        from .tensor import _shape_arg, as_dtype  # noqa: PLC0415
        dev = _backend.device(device)
        dt = as_dtype(dtype) or get_default_dtype()
        g = generator or _r.generator(dev)
        shape = _shape_arg(size)
        if fn_name == "randn":
            arr = g.standard_normal(shape, dtype=dt if dt in (float32, float64) else float32).astype(dt, copy=False)
        else:
            arr = g.random(shape, dtype=dt if dt in (float32, float64) else float32).astype(dt, copy=False)
        t = Tensor(arr)
        if requires_grad:
            t.requires_grad_(True)
        return t
    make.__name__ = fn_name
    make.__doc__ = f"Tensor of the given size filled from {'N(0, 1)' if fn_name == 'randn' else 'U[0, 1)'} (seed with gg.manual_seed)."
    return make


randn = _rand("randn")
rand = _rand("rand")


def randn_like(t, dtype=None, device=None, requires_grad=False):
    return randn(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def rand_like(t, dtype=None, device=None, requires_grad=False):
    return rand(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None, generator=None):
    from . import random as _r  # noqa: PLC0415
    if high is None:
        low, high = 0, low
    dev = _backend.device(device)
    g = generator or _r.generator(dev)
    return Tensor(g.integers(low, high, size=tuple(size)).astype(dtype or int64, copy=False))


def randperm(n, device=None, generator=None):
    from . import random as _r  # noqa: PLC0415
    dev = _backend.device(device)
    g = generator or _r.generator(dev)
    return Tensor(g.permutation(n).astype(int64, copy=False))


# functional forms of Tensor methods, as in the torch namespace
def _method(name):
    def f(input, *args, **kwargs):  # noqa: A002
        return getattr(input, name)(*args, **kwargs)
    f.__name__ = name
    f.__doc__ = f"``gg.{name}(x, ...)`` is ``x.{name}(...)``."
    return f


for _n in ("exp", "log", "log1p", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "abs", "clamp", "clip",
           "sum", "mean", "max", "min", "amax", "amin", "var", "std", "logsumexp", "softmax", "log_softmax", "reshape",
           "flatten", "transpose", "permute", "squeeze", "unsqueeze", "argmax", "argmin", "square", "pow", "neg",
           "norm", "isnan", "isfinite", "sign", "swapaxes", "t", "masked_fill", "all", "any"):
    globals()[_n] = _method(_n)
del _n


def is_tensor(x):
    return isinstance(x, Tensor)


def numel(x):
    return x.numel()


def allclose(a, b, rtol=1e-5, atol=1e-8):
    return bool(a.xp.allclose(a._data, b._data, rtol=rtol, atol=atol))


def _lazy(name):
    import importlib  # noqa: PLC0415
    return importlib.import_module(f".{name}", __name__)


def __getattr__(name):
    # nn, optim, data, explain and the kernels are imported on first use (keeps `import gpugrad` light)
    if name in ("nn", "optim", "data", "explain", "kernels"):
        return _lazy(name)
    if name in ("save", "load"):
        return getattr(_lazy("serialization"), name)
    raise AttributeError(f"module 'gpugrad' has no attribute {name!r}")
