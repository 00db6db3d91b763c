"""gpugrad: a GPU-accelerated gradient engine (reverse-mode autodiff on NumPy or CuPy).

``import gpugrad as gg`` — the public names follow PyTorch's.
"""
from __future__ import annotations

import numpy as _np

from ._dtypes import is_float as _isf
from . import backend as _backend
# NOTE: before the names below: `from .tensor import tensor` rebinds gpugrad.tensor to the function, and the
# fused families (which import this module's submodule gpugrad.tensor) must see the module
from .ops import activation as _activation, loss as _loss, softmax as _softmax  # noqa: F401
from .ops import linalg2 as _linalg2  # noqa: F401,E402
from .ops import math as _math_ops  # noqa: E402  (issue 11: elementwise math, shape)
from .ops import extra_ops as _extra_ops  # noqa: E402,F401  (issue 11 breadth: see below)
from .autograd.primitive import recorded as _recorded
from .autograd import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                       set_grad_enabled)
from .backend import CudaUnavailableError, Device, cuda, get_default_device, set_default_device
from .backend import device as device  # noqa: PLC0414
from .random import (Generator, default_generator, get_rng_state, initial_seed, manual_seed, seed,
                     set_rng_state)
from .tensor import (Tensor, arange, as_tensor, bool_, cat, chunk, concat, empty, empty_like, eye, float16,
                     float32, float64, from_numpy, full, full_like, get_default_dtype, int8, int16, int32, int64,
                     linspace, matmul, maximum, minimum, one_hot, ones, ones_like, pad, set_default_dtype, split,
                     stack, tensor, uint8, where, zeros, zeros_like)
from . import _dtypes, _promotion
from ._promotion import can_cast, promote_types
from ._finfo import finfo, iinfo
from ._threads import get_num_threads, set_num_threads  # torch.get/set_num_threads: the CPU fallbacks' threads
from . import autograd, func  # noqa: E402
from .sampling import bernoulli, multinomial, poisson  # noqa: E402  (and the Tensor methods random_, exponential_, ...)

__version__ = "0.1.0"

# PyTorch's dtype aliases (gg.float, gg.int, gg.bool: see the end of this file)
half, double = float16, float64
short, long = int16, int64
_BUILTIN_NAMED = {"float": float32, "int": int32, "bool": bool_}


def _rand(fn_name):
    def make(*size, generator=None, dtype=None, device=None, requires_grad=False):
        from . import random as _r  # noqa: PLC0415
        from .tensor import _shape_arg, as_dtype  # noqa: PLC0415
        dev = _backend.device(device)
        dt = as_dtype(dtype) or get_default_dtype()
        g = _r.rng(generator, dev)
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
    make.__doc__ = (f"Tensor of the given size filled from {'N(0, 1)' if fn_name == 'randn' else 'U[0, 1)'}, drawn "
                    "from ``generator`` (a gg.Generator) or the device's default one (seed with gg.manual_seed).")
    return _recorded(make)  # NOTE: gg.compile draws anew on every replay, as eager


randn = _rand("randn")
rand = _rand("rand")


def randn_like(t, dtype=None, device=None, requires_grad=False, generator=None):
    return randn(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad,
                 generator=generator)


def rand_like(t, dtype=None, device=None, requires_grad=False, generator=None):
    return rand(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad,
                generator=generator)


_RANDINT_USAGE = "randint(high, size) or randint(low, high, size), size a tuple of ints"
_INT_NAMES = {"uint8": "unsigned char", "int8": "signed char", "int16": "short", "int32": "int", "int64": "long"}


def _int_arg(v, name, pos):
    import operator  # noqa: PLC0415
    if isinstance(v, Tensor) and v.ndim == 0 and v.dtype.kind in "iu":
        return int(v.item())
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"randint(): argument '{name}' (position {pos}) must be int, not {type(v).__name__}") from None


@_recorded
def _randint(low, high, size, generator, dtype, device, requires_grad, fname="randint"):
    from . import random as _r  # noqa: PLC0415
    from .tensor import as_dtype  # noqa: PLC0415
    dt = as_dtype(dtype) or int64
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    if dt.kind in "iub":
        lo, hi = (0, 1) if dt == bool_ else (int(_np.iinfo(dt).min), int(_np.iinfo(dt).max))
        name = "bool" if dt == bool_ else _INT_NAMES.get(dt.name, dt.name)
        if high - 1 > hi:
            raise RuntimeError(f"to - 1 is out of bounds for {name}")
        if low < lo:
            raise RuntimeError(f"from is out of bounds for {name}")
    dev = _backend.device(device)
    g = _r.rng(generator, dev)
    t = Tensor(g.integers(low, high, size=size).astype(dt, copy=False))
    if requires_grad:
        t.requires_grad_(True)  # NOTE: refused for integer dtypes, as PyTorch
    return t


def randint(*args, size=None, low=None, high=None, generator=None, dtype=None, device=None, requires_grad=False):
    """``randint(high, size)`` / ``randint(low=0, high, size)``: integers uniform in [low, high), as
    torch.randint (size is required; dtype int64 unless given)."""
    pos = list(args)
    if len(pos) > 3:
        raise TypeError(f"randint() takes at most 3 positional arguments ({len(pos)} given): {_RANDINT_USAGE}")
    if size is None:
        if not pos or (len(pos) == 1 and high is None):
            raise TypeError(f"randint() missing the required argument 'size': {_RANDINT_USAGE}")
        size = pos.pop()
        where = len(pos) + 1
    else:
        where = None
    if isinstance(size, int) or not isinstance(size, (tuple, list)) or not all(
            isinstance(s, (int, _np.integer)) and not isinstance(s, bool) for s in size):
        at = f" (position {where})" if where else ""
        raise TypeError(f"randint(): argument 'size'{at} must be tuple of ints, not {type(size).__name__}")
    if high is None:
        if not pos:
            raise TypeError(f"randint() missing the required argument 'high': {_RANDINT_USAGE}")
        high = _int_arg(pos.pop(), "high", len(pos) + 1)
    else:
        high = _int_arg(high, "high", 2)
    if pos:
        if low is not None:
            raise TypeError("randint() got multiple values for argument 'low'")
        low = pos.pop()
    if pos:
        raise TypeError(f"randint() got too many positional arguments: {_RANDINT_USAGE}")
    low = 0 if low is None else _int_arg(low, "low", 1)
    return _randint(low, high, tuple(int(s) for s in size), generator, dtype, device, requires_grad)


def randint_like(input, low=0, high=None, *, generator=None, dtype=None, device=None,  # noqa: A002
                 requires_grad=False):
    """``randint_like(x, high)`` / ``randint_like(x, low, high)``: x's shape, dtype and device unless given."""
    if high is None:
        low, high = 0, low
    return _randint(_int_arg(low, "low", 2), _int_arg(high, "high", 3), tuple(input.shape), generator,
                    dtype or input.dtype, device or input.device, requires_grad)


@_recorded
def randperm(n, *, generator=None, dtype=int64, device=None, requires_grad=False):
    """A random permutation of 0..n-1 (int64 unless ``dtype``), as torch.randperm."""
    from . import random as _r  # noqa: PLC0415
    from .tensor import as_dtype  # noqa: PLC0415
    g = _r.rng(generator, _backend.device(device))
    t = Tensor(g.permutation(n).astype(as_dtype(dtype), copy=False))
    if requires_grad:
        t.requires_grad_(True)
    return t


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """torch.normal: ``normal(mean_tensor, std_tensor)``, ``normal(mean_tensor, std=1.0)``,
    ``normal(mean, std_tensor)`` (the shapes broadcast), or ``normal(mean, std, size)`` with two numbers.
    Gradients with respect to mean and std are zero, as in PyTorch."""
    from . import random as _r  # noqa: PLC0415
    from .ops.elementwise import Sampled  # noqa: PLC0415
    tm, ts = isinstance(mean, Tensor), isinstance(std, Tensor)
    if not (tm or ts):
        if size is None:
            raise TypeError("normal(): with a number mean and std the size is required: normal(mean, std, size)")
        if std < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        z = randn(size, generator=generator, dtype=dtype, device=device)
        t = Tensor(z._data * std + mean if (mean, std) != (0.0, 1.0) else z._data)
        if requires_grad:
            t.requires_grad_(True)
        return t
    if size is not None or dtype is not None or device is not None or requires_grad:
        raise TypeError("normal(): size, dtype, device and requires_grad go with a number mean and std only; "
                        "with a Tensor mean or std the result takes its shape, dtype and device")
    ref = mean if tm else std
    if not _isf(ref.dtype) or (tm and ts and mean.dtype != std.dtype):
        raise NotImplementedError(f"normal: mean and std must be floating point tensors of one dtype, got "
                                  f"{mean.dtype if tm else type(mean).__name__} and "
                                  f"{std.dtype if ts else type(std).__name__}")
    if ts and bool((std._data < 0).any()):
        raise RuntimeError("normal expects all elements of std >= 0.0")
    if not ts and std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    m = mean._data if tm else mean
    s = std._data if ts else std
    shape = _np.broadcast_shapes(_np.shape(m), _np.shape(s))
    g = _r.rng(generator, ref.device)
    dt = ref.dtype
    z = g.standard_normal(shape, dtype=dt if dt in (float32, float64) else float32)
    value = (z * s + m).astype(dt, copy=False)
    return Sampled.apply(*[x for x in (mean, std) if isinstance(x, Tensor)], value=value)


# functional forms of Tensor methods, as in the torch namespace
def _method(name):
    def f(input, *args, **kwargs):  # noqa: A002
        if not isinstance(input, Tensor):
            _need_tensor(name, input)
        return getattr(input, name)(*args, **kwargs)
    f.__name__ = name
    f.__doc__ = f"``gg.{name}(x, ...)`` is ``x.{name}(...)``."
    return f


for _n in ("floor", "ceil", "trunc", "fix", "frac",
           "exp", "log", "log1p", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "abs", "clamp", "clip",
           "sum", "mean", "max", "min", "amax", "amin", "var", "std", "logsumexp", "softmax", "log_softmax", "reshape",
           "flatten", "transpose", "permute", "squeeze", "unsqueeze", "argmax", "argmin", "square", "neg",
           "norm", "isnan", "isfinite", "sign", "swapaxes", "t", "masked_fill", "all", "any"):
    globals()[_n] = _method(_n)
del _n


def pow(input, exponent):  # noqa: A001, A002
    """``input ** exponent``, as torch.pow: a Tensor base, or a Number base with a Tensor exponent."""
    if isinstance(exponent, Tensor) and not isinstance(input, Tensor) and isinstance(input, (int, float, bool)):
        return exponent.__rpow__(input)
    if not isinstance(input, Tensor):
        _need_tensor("pow", input)
    return input.pow(exponent)


def result_type(tensor, other):
    """torch.result_type: the dtype of an elementwise op of two Tensors / Python numbers (see gpugrad/_promotion.py)."""
    return _promotion.result_type(tensor, other, default_float=get_default_dtype())


def mm(input, mat2):  # noqa: A002
    """torch.mm: (n, m) @ (m, p); no broadcasting, no dtype promotion."""
    if input.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if mat2.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    if input.dtype == mat2.dtype and input.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({input.shape[0]}x{input.shape[1]} and "
                           f"{mat2.shape[0]}x{mat2.shape[1]})")
    return matmul(input, mat2)


def bmm(input, mat2):  # noqa: A002
    """torch.bmm: (b, n, m) @ (b, m, p); no broadcasting, no dtype promotion."""
    if input.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if mat2.ndim != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    if input.dtype == mat2.dtype and (mat2.shape[0], mat2.shape[1]) != (input.shape[0], input.shape[2]):
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: [{input.shape[0]}, "
                           f"{input.shape[2]}] but got: [{mat2.shape[0]}, {mat2.shape[1]}].")
    return matmul(input, mat2)


def is_tensor(x):
    return isinstance(x, Tensor)


def numel(x):
    return x.numel()


def _need_tensor(fname, x, pos=1, arg="input"):
    if not isinstance(x, Tensor):
        from ._errors import not_a_tensor  # noqa: PLC0415
        if type(x).__module__.split(".")[0] in ("numpy", "torch", "cupy"):
            raise not_a_tensor(x, fname)
        raise TypeError(f"{fname}(): argument '{arg}' (position {pos}) must be Tensor, not {type(x).__name__}")


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):  # noqa: A002
    """True iff ``isclose(input, other, rtol, atol, equal_nan)`` holds everywhere (a Python bool)."""
    _need_tensor("allclose", input)
    return input.allclose(other, rtol, atol, equal_nan)


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):  # noqa: A002
    """|input - other| <= atol + rtol * |other| elementwise, a bool Tensor (see Tensor.isclose)."""
    _need_tensor("isclose", input)
    return input.isclose(other, rtol, atol, equal_nan)


def equal(input, other):  # noqa: A002
    """True iff the two tensors have the same shape and values."""
    _need_tensor("equal", input)
    return input.equal(other)


def _rounded_div(input, other, mode, name):  # noqa: A002
    from .ops.elementwise import Bind, DivRound  # noqa: PLC0415
    from .tensor import _binary  # noqa: PLC0415
    return _binary(Bind(DivRound, name, mode=mode, name=None if name == "div" else name), input, other)


def div(input, other, *, rounding_mode=None):  # noqa: A002
    """torch.div: input / other, or rounded with ``rounding_mode`` 'trunc' / 'floor' (zero gradient)."""
    if isinstance(input, Tensor):
        return input.div(other, rounding_mode=rounding_mode)
    _need_tensor("div", other, 2, "other")
    if rounding_mode is None:
        return input / other
    if rounding_mode not in ("trunc", "floor"):
        raise RuntimeError("div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                           f"'{rounding_mode}'")
    return _rounded_div(input, other, rounding_mode, "div")


divide = div


def true_divide(input, other):  # noqa: A002
    return div(input, other)


def floor_divide(input, other):  # noqa: A002
    if not isinstance(input, Tensor):
        _need_tensor("floor_divide", other, 2, "other")
    return input // other


def remainder(input, other):  # noqa: A002
    """Python's modulus (the sign of ``other``); ``input`` may be a number (then other gets no gradient)."""
    if not isinstance(input, Tensor):
        _need_tensor("remainder", other, 2, "other")
    return input % other


def fmod(input, other):  # noqa: A002
    """C's fmod (the sign of ``input``)."""
    _need_tensor("fmod", input)
    return input.fmod(other)


def round(input, *, decimals=None):  # noqa: A001, A002
    """Round half to even (to ``decimals`` places); zero gradient."""
    _need_tensor("round", input)
    return input.round(decimals=decimals)


def _lazy(name):
    import importlib  # noqa: PLC0415
    return importlib.import_module(f".{name}", __name__)


def __getattr__(name):
    # nn, optim, data, explain and fused are imported on first use (keeps `import gpugrad` light)
    if name in ("nn", "optim", "data", "explain", "fused", "utils", "amp", "distributed"):
        return _lazy(name)
    if name in ("save", "load"):
        return getattr(_lazy("serialization"), name)
    if name in _BUILTIN_NAMED:
        return _BUILTIN_NAMED[name]
    if name == "bfloat16":  # NOTE: ml_dtypes (the bf16 extra) loads on first use: it costs ~0.6 s to import
        from . import _dtypes  # noqa: PLC0415
        try:
            return _dtypes.bfloat16()
        except TypeError as e:
            raise AttributeError(f"gpugrad.bfloat16: {e}") from None
    raise AttributeError(f"module 'gpugrad' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_BUILTIN_NAMED) | {"nn", "optim", "data", "explain", "kernels", "save", "load",
                                                          "utils", "amp", "distributed"})


def from_dlpack(ext_tensor):
    """A Tensor sharing memory with a NumPy/CuPy/PyTorch/JAX array (anything with ``__dlpack__``) or a
    DLPack capsule (torch.from_dlpack); a leaf without gradient history. See gpugrad/utils/dlpack.py."""
    from .utils.dlpack import from_dlpack as f  # noqa: PLC0415
    return f(ext_tensor)


# NOTE: the public names that are also Python builtins (the dtype aliases gg.float / gg.int / gg.bool and the
# functions gg.abs, gg.max, gg.min, gg.sum, gg.all, gg.any, gg.pow, gg.round) are served by __getattr__ and
# are not globals here: as globals they would shadow the builtins inside every function of this module.
import builtins as _builtins  # noqa: E402

_BUILTIN_NAMED.update({_k: globals().pop(_k) for _k in [k for k in globals() if not k.startswith("_")
                                                          and hasattr(_builtins, k)]})


# -- [issue 11: indexing, scatter, reductions, scans] --------------------------------------------------------
from .ops import index as _index, scan as _scan  # noqa: E402
from .ops.index import (argwhere, gather, index_select, masked_select, nonzero, scatter_reduce, take,  # noqa: E402
                        take_along_dim, where)
from .ops.scan import (aminmax, argsort, bincount, count_nonzero, cummax, cummin, cumprod, cumsum,  # noqa: E402
                       histc, kthvalue, logcumsumexp, median, mode, nanmean, nanmedian, nansum, prod, quantile,
                       sort, std_mean, topk, unique, var_mean)

# -- [issue 11: elementwise math, shape] ----------------------------------------------------------------------
from .ops.math import (acos, acosh, add, asin, asinh, atan, atan2, atanh, atleast_1d, atleast_2d,  # noqa: E402
                       atleast_3d, bitwise_and, bitwise_left_shift, bitwise_not, bitwise_or, bitwise_right_shift,
                       bitwise_xor, broadcast_shapes, broadcast_tensors, column_stack, copysign, cosh, digamma, dsplit,
                       dstack, erf, erfc, erfinv, exp2, expm1, float_power, heaviside, hsplit, hstack, hypot, isinf,
                       isneginf, isposinf, lgamma, log2, log10, logaddexp, logaddexp2, logical_and, logical_not,
                       logical_or, logical_xor, logit, meshgrid, mul, nan_to_num, polygamma, reciprocal,
                       repeat_interleave, roll, rot90, row_stack, sgn, sinc, sinh, sub, tan, tensor_split, tile,
                       vsplit, vstack, xlogy)

arcsin, arccos, arctan, arctan2, arcsinh, arccosh, arctanh = asin, acos, atan, atan2, asinh, acosh, atanh
subtract, multiply = sub, mul


def is_floating_point(input):  # noqa: A002
    _need_tensor("is_floating_point", input)
    return input.is_floating_point()


def lerp(input, end, weight):  # noqa: A002
    """input + weight * (end - input) (weight a number or a Tensor)."""
    _need_tensor("lerp", input)
    return input.lerp(end, weight)


def addcmul(input, tensor1, tensor2, *, value=1):  # noqa: A002
    """input + value * tensor1 * tensor2."""
    _need_tensor("addcmul", input)
    return input.addcmul(tensor1, tensor2, value=value)


def addcdiv(input, tensor1, tensor2, *, value=1):  # noqa: A002
    """input + value * tensor1 / tensor2."""
    _need_tensor("addcdiv", input)
    return input.addcdiv(tensor1, tensor2, value=value)


# -- [issue 11: linear algebra] -------------------------------------------------------------------------------
from . import linalg  # noqa: E402
from .ops.linalg2 import (addmm, addmv, baddbmm, diag, diag_embed, dot, einsum, ger, inner, kron,  # noqa: E402
                          outer, tensordot, trace, tril, triu, vdot)
det, inverse, slogdet = linalg.det, linalg.inv, linalg.slogdet
from .nn.functional import cdist  # noqa: E402,F401  (issue "The everyday PyTorch ops": torch.cdist)

# -- [issue 11: the torch.* forms of Tensor methods, nn.functional ops and the deprecated linalg functions] ---------
from .nn import functional as _nnf  # noqa: E402
from .nn.functional import (adaptive_avg_pool1d, avg_pool1d, conv1d, conv2d, conv3d, conv_transpose1d,  # noqa: E402
                            conv_transpose2d, cosine_similarity, pairwise_distance, pixel_shuffle, pixel_unshuffle,
                            prelu, rms_norm)

for _n in ("scatter", "scatter_add", "index_add", "index_copy", "index_fill", "masked_scatter", "fliplr", "flipud",
           "diagonal", "movedim", "moveaxis", "narrow", "unbind", "select", "swapdims", "unflatten", "broadcast_to",
           "clone", "detach", "detach_", "is_inference", "fill_", "zero_", "abs_", "clamp_", "clamp_max_",
           "clamp_min_", "clip_", "cos_", "exp_", "log_", "neg_", "relu_", "sigmoid_", "sin_", "sqrt_", "square_",
           "tanh_"):
    globals()[_n] = _method(_n)


def _compare(name):
    def f(input, other):  # noqa: A002
        _need_tensor(name, input)
        return getattr(input, name)(other)
    f.__name__ = name
    return f


for _n in ("eq", "ne", "lt", "le", "gt", "ge"):
    globals()[_n] = _compare(_n)
del _n


def flip(input, dims):  # noqa: A002
    _need_tensor("flip", input)
    if not isinstance(dims, (tuple, list)):  # NOTE: torch.flip(x, 0) is a TypeError (x.flip(0) is not)
        raise TypeError(f"flip(): argument 'dims' (position 2) must be tuple of ints, not {type(dims).__name__}")
    return input.flip(dims)


def threshold(input, threshold, value):  # noqa: A002
    return _nnf.threshold(input, threshold, value)


def celu(input, alpha=1.0):  # noqa: A002
    return _nnf.celu(input, alpha)


def alpha_dropout(input, p, train):  # noqa: A002
    return _nnf.alpha_dropout(input, p, train)


def selu(input):  # noqa: A002
    return _nnf.selu(input)


def dropout(input, p, train):  # noqa: A002
    return _nnf.dropout(input, p, train)


def max_pool1d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):  # noqa: A002
    """torch.max_pool1d (no return_indices: that is torch.max_pool1d_with_indices); stride () or None = kernel_size."""
    return _nnf.max_pool1d(input, kernel_size, stride if stride not in ((), []) else None, padding, dilation, ceil_mode)


def max_pool2d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):  # noqa: A002
    return _nnf.max_pool2d(input, kernel_size, stride if stride not in ((), []) else None, padding, dilation, ceil_mode)


def adaptive_max_pool1d(input, output_size):  # noqa: A002
    """torch.adaptive_max_pool1d: (values, indices), always."""
    return _nnf.adaptive_max_pool1d(input, output_size, return_indices=True)


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """torch.embedding: ATen's form (weight first; a negative padding_idx means none)."""
    return _nnf.embedding(indices, weight, padding_idx if padding_idx >= 0 else None,
                          scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


def hardshrink(input, lambd=0.5):  # noqa: A002
    """torch.hardshrink (and Tensor.hardshrink): F.hardshrink."""
    return _nnf.hardshrink(input, lambd)


Tensor.hardshrink = hardshrink


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05, cudnn_enable=True):  # noqa: A002
    return _nnf.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05, cudnn_enabled=True):  # noqa: A002
    return _nnf.group_norm(input, num_groups, weight, bias, eps)


def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled):  # noqa: A002
    """torch.batch_norm: ATen's argument order (F.batch_norm takes the running stats first)."""
    return _nnf.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps,  # noqa: A002
                  cudnn_enabled):
    """torch.instance_norm: ATen's argument order (F.instance_norm takes the running stats first)."""
    return _nnf.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def _reduction(fname, r, pos):
    """The torch.* losses take ATen's int reduction: 1 mean, 2 sum, any other int none (as ATen). NOTE: their
    default is none (0), as torch 2.13 really does, although ATen's schemas say 1 (mean)."""
    if isinstance(r, bool) or not isinstance(r, int):
        raise TypeError(f"{fname}(): argument 'reduction' (position {pos}) must be int, not {type(r).__name__}")
    return {1: "mean", 2: "sum"}.get(r, "none")


def kl_div(input, target, reduction=0, *, log_target=False):  # noqa: A002
    return _nnf.kl_div(input, target, reduction=_reduction("kl_div", reduction, 3), log_target=log_target)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=0):  # noqa: A002
    return _nnf.binary_cross_entropy_with_logits(input, target, weight, pos_weight=pos_weight, reduction=_reduction(
        "binary_cross_entropy_with_logits", reduction, 5))


def poisson_nll_loss(input, target, log_input, full, eps, reduction):  # noqa: A002
    return _nnf.poisson_nll_loss(input, target, log_input, full, eps=eps,
                                 reduction=_reduction("poisson_nll_loss", reduction, 6))


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=0):
    return _nnf.margin_ranking_loss(input1, input2, target, margin,
                                    reduction=_reduction("margin_ranking_loss", reduction, 5))


def hinge_embedding_loss(input, target, margin=1.0, reduction=0):  # noqa: A002
    return _nnf.hinge_embedding_loss(input, target, margin, reduction=_reduction("hinge_embedding_loss", reduction, 4))


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=0):
    return _nnf.cosine_embedding_loss(input1, input2, target, margin,
                                      reduction=_reduction("cosine_embedding_loss", reduction, 5))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-06, swap=False, reduction=0):
    return _nnf.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                    reduction=_reduction("triplet_margin_loss", reduction, 8))


def embedding_bag(weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False,
                  per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """torch.embedding_bag (ATen's form: weight first, int mode 0 sum / 1 mean / 2 max) -> (output, offset2bag,
    bag_size, max_indices). NOTE: the last three are the CPU kernel's: offset2bag is empty on its fast path (sum
    mode, no padding_idx, float32/float16/bfloat16 weight); bag_size counts the non-padding indices per bag (zeros in sum mode); max_indices is the argmax row
    of each bag and column in max mode (0 for an empty bag), else a copy of bag_size."""
    if isinstance(mode, bool) or not isinstance(mode, int):
        raise TypeError(f"embedding_bag(): argument 'mode' (position 5) must be int, not {type(mode).__name__}")
    name = {0: "sum", 1: "mean", 2: "max"}.get(mode, mode)
    out = _nnf.embedding_bag(indices, weight, offsets, scale_grad_by_freq=scale_grad_by_freq, mode=name, sparse=sparse,
                             per_sample_weights=per_sample_weights, include_last_offset=include_last_offset,
                             padding_idx=padding_idx)
    xp, idx, off = weight.xp, indices._data.reshape(-1), offsets._data.astype(_np.int64)
    nb, d = out.shape
    bag = xp.minimum(xp.searchsorted(off, xp.arange(idx.size), side="right") - 1, nb - 1)
    keep = idx != padding_idx % weight.shape[0] if padding_idx is not None else xp.ones(idx.size, bool)
    size = xp.bincount(bag[keep], minlength=nb)[:nb].astype(_np.int64) if mode else xp.zeros(nb, _np.int64)
    fast = mode == 0 and padding_idx is None and weight.dtype in _dtypes.LOWP | {float32}
    o2b = xp.zeros(0, _np.int64) if fast else bag
    mx = size.copy()
    if mode == 2:  # the first index (in order) holding each bag's maximum, per column
        hit = (weight._data[idx] == out._data[bag]) & keep[:, None]
        pos = Tensor(xp.where(hit, xp.arange(idx.size)[:, None], idx.size))
        first = zeros((nb, d), dtype=int64, device=weight.device).fill_(idx.size)
        first = first.scatter_reduce(0, Tensor(xp.broadcast_to(bag[:, None], (idx.size, d)).copy()), pos, "amin")._data
        mx = xp.where(first < idx.size, xp.concatenate([idx, xp.zeros(1, idx.dtype)])[first], 0).astype(_np.int64)
    return out, Tensor(o2b), Tensor(size), Tensor(mx)


def cholesky(input, upper=False):  # noqa: A002
    """Deprecated torch.cholesky: the lower factor L (A = L L^H), or U = L^H with upper=True."""
    return linalg.cholesky(input, upper=upper)


def qr(input, some=True):  # noqa: A002
    """Deprecated torch.qr: linalg.qr in mode 'reduced' (some=True) or 'complete'."""
    return linalg.qr(input, "reduced" if some else "complete")


_SVD = __import__("collections").namedtuple("svd", ["U", "S", "V"])


def svd(input, some=True, compute_uv=True):  # noqa: A002
    """Deprecated torch.svd: (U, S, V) with A = U diag(S) V^H (V, not Vh); compute_uv=False gives zero U (m x m)
    and V (n x n), as PyTorch."""
    if not compute_uv:
        m, n = input.shape[-2:]
        z = lambda k: zeros(tuple(input.shape[:-2]) + (k, k), dtype=input.dtype, device=input.device)  # noqa: E731
        return _SVD(z(m), linalg.svdvals(input), z(n))
    u, s, vh = linalg.svd(input, full_matrices=not some)
    return _SVD(u, s, vh.mT)  # NOTE: real dtypes only (gpugrad has no complex tensors): V = Vh^T


def _pinnable(fn):
    """fn with PyTorch's ``pin_memory=`` keyword: True gives the result in pinned host memory (raises without CUDA)."""
    def f(*args, pin_memory=False, **kwargs):
        t = fn(*args, **kwargs)
        if not pin_memory:
            return t
        p = t.detach().pin_memory()  # NOTE: a leaf stays a leaf (torch.tensor(..., requires_grad=True, pin_memory=True))
        return p.requires_grad_() if t.requires_grad else p
    f.__name__, f.__qualname__, f.__doc__, f.__wrapped__ = fn.__name__, fn.__qualname__, fn.__doc__, fn
    return f


for _n in ("tensor", "zeros", "ones", "empty", "full", "arange", "linspace", "eye", "rand", "randn", "randint",
           "randperm", "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like"):
    if _n in globals():
        globals()[_n] = _pinnable(globals()[_n])
del _n


# -- [issue 11 breadth: the everyday names gpugrad lacked; ops in gpugrad/ops/extra_ops.py] --------------------
from .ops.extra_ops import addmv_, diagflat, i0, i0_, index_reduce, nextafter, renorm  # noqa: E402  (leftovers)
from .ops.extra_ops import (addbmm, addr, are_deterministic_algorithms_enabled, asarray, bartlett_window,  # noqa: E402
                            blackman_window, block_diag, bucketize, cartesian_prod, chain_matmul, combinations,
                            corrcoef, cov, cross, cumulative_trapezoid, deg2rad, diagonal_scatter, diff, dist, fmax,
                            fmin, frexp, gcd, hamming_window, hann_window, histogram, index_put, index_put_, isin,
                            is_deterministic_algorithms_warn_only_enabled, kaiser_window, lcm, ldexp, logdet, logspace,
                            mv, put, rad2deg, rsub, scalar_tensor, searchsorted, select_scatter, set_printoptions,
                            signbit, slice_scatter, trapezoid, trapz, tril_indices, triu_indices, unique_consecutive,
                            unravel_index, use_deterministic_algorithms)
from .func import vmap  # noqa: E402,F401


def concatenate(tensors, dim=0):
    """torch.concatenate: gg.cat (looked up per call, so autocast's wrapper of cat applies)."""
    return cat(tensors, dim)


for _n in ("absolute negative positive greater greater_equal less less_equal not_equal ravel msort is_complex "
           "is_nonzero is_same_size is_signed get_device clamp_min clamp_max adjoint acos_ acosh_ arccos_ arccosh_ "
           "arcsin_ arcsinh_ arctan_ arctanh_ asin_ asinh_ atan_ atanh_ ceil_ cosh_ deg2rad_ erf_ erfc_ exp2_ expm1_ "
           "fix_ floor_ frac_ gcd_ lcm_ ldexp_ log10_ log1p_ log2_ logit_ nan_to_num_ negative_ rad2deg_ "
           "reciprocal_ round_ rsqrt_ sinc_ sinh_ tan_ trunc_ xlogy_").split():
    globals()[_n] = _method(_n)
del _n


# -- [issue 18: mixed precision] -------------------------------------------------------------------------------
from . import amp  # noqa: E402  (light: no CUDA)
from .amp import autocast  # noqa: E402
from .amp.autocast_mode import install as _autocast_install  # noqa: E402

for _ns, _prefix in ((Tensor, ""), (globals(), ""), (_BUILTIN_NAMED, ""), (vars(linalg), "linalg.")):
    _autocast_install(_ns, prefix=_prefix)  # NOTE: PyTorch's autocast op lists; outside autocast one check per call
del _ns, _prefix
from .compile import CompileError  # noqa: E402  (issue 13: record a step once, replay it)
from . import compile as _compile_mod  # noqa: E402
# NOTE: a builtin's name, served by __getattr__ as gg.abs is (the import bound the submodule under it: unbind)
_BUILTIN_NAMED["compile"] = _compile_mod.compile
del globals()["compile"]

