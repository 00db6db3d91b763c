"""Issue 11 (breadth): the everyday PyTorch names gpugrad lacked, composed from its differentiable ops wherever a
gradient exists (so create_graph=True works through them), with PyTorch's signatures, dtypes and errors.

Tensor properties and in-place forms of existing ops are in gpugrad/tensor.py (``_inplace_form``); the Tensor
methods of the ops here are installed at the end of this module; gpugrad/__init__.py exports the torch.* forms.
"""
from __future__ import annotations

import collections
import itertools
import math
import sys as _sys
import warnings

import numpy as np

from .._dtypes import is_float as _isf
from .. import tensor as _tensor
from ..autograd.primitive import Primitive, recorded, value_shaped
from ..backend import xp_of
from . import elementwise as _ew, index as _ix, linalg2 as _la2, math as _m, shape as _sh

Tensor = _tensor.Tensor
_need, _tname = _m._need, _tensor._tname
frexp_result = collections.namedtuple("frexp", ["mantissa", "exponent"])
histogram_result = collections.namedtuple("histogram", ["hist", "bin_edges"])


def _t(x, like):
    return x if isinstance(x, Tensor) else _tensor._wrap(x, like)


def _dim(d, n):
    return _tensor._one(d, n)


# -- Tensor metadata ----------------------------------------------------------------------------------------
def stride(self, dim=None):
    """PyTorch's element strides (a tuple, or one dim's)."""
    s = tuple(b // self._data.itemsize for b in self._data.strides)
    return s if dim is None else s[_dim(dim, self.ndim)] if self.ndim else 1


def storage_offset(self):
    """Elements between the start of the memory this tensor views and its first element."""
    a, root = self._data, self._data
    while getattr(root, "base", None) is not None and hasattr(root.base, "dtype"):
        root = root.base
    ptr = (lambda x: x.__array_interface__["data"][0]) if type(a) is np.ndarray else (lambda x: x.data.ptr)
    return (ptr(a) - ptr(root)) // a.itemsize if a.size and root.size else 0


def is_nonzero(self):
    if self.numel() != 1:
        raise RuntimeError("Boolean value of Tensor with " + ("no values" if self.numel() == 0 else
                                                              "more than one value") + " is ambiguous")
    return bool(self._data.reshape(()) != 0)


def _matrix_t(self, what, batched):
    if self.ndim == 0:
        return self  # NOTE: PyTorch returns the 0-d tensor itself (with a deprecation warning)
    if self.ndim == 2 or (batched and self.ndim > 2):
        return self.mT
    got = f"Got {self.ndim}-D tensor."
    if batched:
        raise RuntimeError(f"tensor.{what} is only supported on matrices or batches of matrices. {got}")
    raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). {got}" +
                       (" For batches of matrices, consider using tensor.mH" if self.ndim > 2 else ""))


def adjoint(self):
    return _matrix_t(self, "adjoint()", True)


def positive(self):
    if self.dtype == _tensor.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return self


def new_empty_strided(self, size, stride, *, dtype=None, device=None, requires_grad=False, **_):
    """An uninitialised tensor with the given element strides (over a buffer just large enough)."""
    t = self.new_empty((max(1 + sum((n - 1) * s for n, s in zip(size, stride)), 1) if all(size) else 0,),
                       dtype=dtype, device=device)
    a = t._data
    lib = np.lib.stride_tricks if type(a) is np.ndarray else __import__("cupy").lib.stride_tricks
    out = Tensor(lib.as_strided(a, tuple(size), tuple(s * a.itemsize for s in stride)))
    return out.requires_grad_() if requires_grad else out


def float_power_(self, exponent):
    if self.dtype != np.float64:
        raise RuntimeError(f"the base given to float_power_ has dtype {_tname(self.dtype)} but the operation's "
                           "result requires dtype Double")
    return self._inplace(Tensor.float_power, exponent)


_CTYPE = {"float32": "float", "float64": "double", "int64": "long int", "int32": "int", "int16": "short int",
          "int8": "signed char", "uint8": "unsigned char", "bool": "bool", "float16": "c10::Half"}


def _scan_(name):
    base = getattr(Tensor, name + "_")

    def f(self, dim, dtype=None):
        dt = _tensor.as_dtype(dtype)
        if dt is not None and dt != self.dtype:
            raise RuntimeError(f"Bad in-place call: input tensor dtype {_CTYPE.get(str(self.dtype))} and output "
                               f"tensor dtype {_CTYPE.get(str(dt))} should match")
        return base(self, dim)
    f.__name__ = name + "_"
    return f


# -- elementwise --------------------------------------------------------------------------------------------
def _fmaxmin(name, ge):
    def f(input, other):  # noqa: A002
        a, b = _m._pair(name, input, other)
        keep = ge(a._data, b._data) | b.xp.isnan(b._data)  # NOTE: ties and a nan `other` take input, as PyTorch
        return _tensor.where(Tensor(keep), a, b)
    f.__name__ = name
    return f


fmax = _fmaxmin("fmax", np.greater_equal)
fmin = _fmaxmin("fmin", np.less_equal)


def _gcdlcm(name, op):
    def f(input, other):  # noqa: A002
        return Tensor(op(*_m._int_pair(name, name, input, other, allow_bool=False)))
    f.__name__ = name
    return recorded(f)


gcd, lcm = _gcdlcm("gcd", np.gcd), _gcdlcm("lcm", np.lcm)


def frexp(input):  # noqa: A002
    _need("frexp", input)
    if not _isf(input.dtype):
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    e = input.xp.frexp(input._data.astype(np.float32) if input.dtype.itemsize < 4 else input._data)[1]
    a = -e // 2
    # NOTE: the mantissa as input * 2**-e (exact power-of-two scalings, so its gradient is PyTorch's grad / 2**e),
    # in two halves: 2**-e alone overflows the dtype for subnormal input
    s1, s2 = (Tensor(input.xp.exp2(k.astype(np.float64)).astype(input.dtype)) for k in (a, -e - a))
    return frexp_result(input * s1 * s2, Tensor(e.astype(np.int32)))


def ldexp(input, other):  # noqa: A002
    _need("ldexp", input)
    _need("ldexp", other, 2, "other")
    return input * _m.exp2(other)


@recorded
def signbit(input):  # noqa: A002
    _need("signbit", input)
    d = input._data
    return Tensor(input.xp.signbit(d) if _isf(d.dtype) else d < 0)


def deg2rad(input):  # noqa: A002
    _need("deg2rad", input)
    return _m._fl(input) * (math.pi / 180)


def rad2deg(input):  # noqa: A002
    _need("rad2deg", input)
    return _m._fl(input) * (180 / math.pi)


def rsub(input, other, *, alpha=1):  # noqa: A002
    """other - alpha * input."""
    _need("rsub", input)
    return _m.sub(other, input, alpha=alpha)


# -- searching, sets ----------------------------------------------------------------------------------------
@recorded
def isin(elements, test_elements, *, assume_unique=False, invert=False):
    if not isinstance(elements, Tensor):
        _need("isin", test_elements, 2, "test_elements")
        elements = _tensor._wrap(elements, test_elements)
    # NOTE: a scalar test_elements as an array (cupy.isin ravels it; np.isin converts it the same way)
    t = test_elements._data if isinstance(test_elements, Tensor) else elements.xp.asarray(test_elements)
    if _tensor.bool_ in (elements.dtype, t.dtype):  # NOTE: PyTorch's isin has no bool kernel (it refuses)
        raise RuntimeError("Unsupported input type encountered for isin(): Bool")
    return Tensor(elements.xp.isin(elements._data, t, invert=invert))


@recorded
def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None):  # noqa: A002
    _need("searchsorted", sorted_sequence, 1, "sorted_sequence")
    if side is not None and side not in ("left", "right"):
        raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but got {side}")
    if side is not None and (side == "right") != right and right:
        raise RuntimeError(f"torch.searchsorted(): side and right can't be set to opposites, got side of {side} "
                           "while right was True")
    side = side or ("right" if right else "left")
    seq, xp = sorted_sequence._data, sorted_sequence.xp
    v = input._data if isinstance(input, Tensor) else xp.asarray(input)
    if sorter is not None:
        seq = xp.take_along_axis(seq, sorter._data, -1)
    if seq.ndim > 1 and seq.shape[:-1] != v.shape[:-1]:
        raise RuntimeError("torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 "
                           "dimensions of boundaries tensor and input value tensor must match, but we got boundaries "
                           f"tensor {list(seq.shape)} and input value tensor {list(v.shape)}")
    if seq.ndim <= 1:
        out = xp.searchsorted(seq, v, side)
    else:
        # NOTE: explicit row counts (reshape(-1, 0) of an empty one fails)
        rows = int(np.prod(seq.shape[:-1]))
        s2, v2 = seq.reshape(rows, seq.shape[-1]), v.reshape(rows, v.shape[-1])
        out = xp.stack([xp.searchsorted(a, b, side) for a, b in zip(s2, v2)]).reshape(v.shape) if rows else \
            xp.zeros(v.shape, np.int64)
    return Tensor(xp.asarray(out).astype(np.int32 if out_int32 else np.int64))


def bucketize(input, boundaries, *, out_int32=False, right=False):  # noqa: A002
    """The bucket of each value: boundaries[i-1] < x <= boundaries[i] (right=False), as torch.bucketize."""
    _need("bucketize", boundaries, 2, "boundaries")
    if boundaries.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries.ndim})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


@value_shaped
def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
    _need("unique_consecutive", input)
    xp, x = input.xp, input._data
    if dim is not None and input.ndim == 0:
        raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    d = 0 if dim is None else _dim(dim, input.ndim)
    if dim is not None and any(n_ == 0 for j, n_ in enumerate(x.shape) if j != d):
        # NOTE: PyTorch refuses (rows of no elements); here they all compared equal and one row was kept
        raise RuntimeError("There are 0 sized dimensions, and they aren't selected, so unique cannot be applied")
    # NOTE: an explicit row length (reshape(0, -1) of an empty input fails)
    rows = (x.reshape(-1) if dim is None else
            xp.moveaxis(x, d, 0).reshape(x.shape[d], int(np.prod(x.shape)) // max(x.shape[d], 1)))
    n = rows.shape[0]
    keep = xp.ones(n, bool)
    if n > 1:
        diff = rows[1:] != rows[:-1]
        keep[1:] = diff if diff.ndim == 1 else diff.any(axis=1)
    at = xp.flatnonzero(keep)
    out = [Tensor(rows[at] if dim is None else xp.take(x, at, axis=d))]
    if return_inverse:
        out.append(Tensor((xp.cumsum(keep) - 1).reshape(x.shape if dim is None else (n,)).astype(np.int64)))
    if return_counts:
        out.append(Tensor(xp.diff(xp.append(at, n)).astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


@recorded
def unravel_index(indices, shape):
    _need("unravel_index", indices, 1, "indices")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"expected 'indices' to be integer dtype, but got torch.{indices.dtype}")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    # NOTE: PyTorch's checks (a negative or, with indices, a zero size was unravelled by floor division here)
    if any(s < 0 for s in shape):
        raise ValueError(f"'shape' cannot have negative values, but got {shape}")
    if 0 in shape and indices.numel():
        raise RuntimeError("ZeroDivisionError")
    i, out = indices._data.astype(np.int64), []
    for s in reversed(shape):  # NOTE: floor division and modulus, as PyTorch (no bounds check there either)
        out.append(Tensor(i % s))
        i = i // s
    return tuple(reversed(out))


@recorded
def histogram(input, bins=100, *, range=None, weight=None, density=False):  # noqa: A002
    _need("histogram", input)
    if not _isf(input.dtype):
        raise NotImplementedError(f"\"histogramdd\" not implemented for '{_tname(input.dtype)}'")
    xp, dt = input.xp, input.dtype
    b = bins._data if isinstance(bins, Tensor) else bins
    nb = b.size - 1 if isinstance(bins, Tensor) else int(bins)
    if isinstance(bins, Tensor) and b.size == 0:
        raise RuntimeError("torch.histogramdd: bins tensor should have at least 1 element, but got 0 elements in the "
                           "bins tensor for dimension 0")
    if nb <= 0:  # NOTE: one bin edge is no bin: PyTorch refuses (NumPy returned an empty histogram)
        raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {nb} for dimension 0")
    narrow = RuntimeError(
        f"torch.histogram(): the range of this {_tname(dt)} input is too narrow for {nb} bins: neighbouring bin "
        "edges round to the same value (a constant input's range is widened by only 0.5 each side); pass fewer "
        "bins, a wider range=(min, max), or a float64 input")
    try:
        h, e = xp.histogram(input._data.reshape(-1), b, range=range, density=density,
                            weights=None if weight is None else weight._data.reshape(-1))
    except ValueError as err:
        if "Too many bins" in str(err):
            raise narrow from None
        raise
    # NOTE: PyTorch computes something for edges that collapse (its bin search divides by a zero width); here
    # that is refused, on CuPy too (which does not check)
    if not isinstance(bins, Tensor) and bool((e[1:] <= e[:-1]).any()):
        raise narrow
    return histogram_result(Tensor(h.astype(dt)), Tensor(xp.asarray(e).astype(dt)))


# -- construction -------------------------------------------------------------------------------------------
def _tri_indices(name):
    @recorded
    def f(row, col, offset=0, *, dtype=None, device=None, layout=None):
        fn = np.tril_indices if name == "tril_indices" else np.triu_indices
        r = np.stack(fn(row, offset, col)).astype(_tensor.as_dtype(dtype) or np.int64)
        return _tensor.tensor(r, device=device)
    f.__name__ = name
    return f


tril_indices, triu_indices = _tri_indices("tril_indices"), _tri_indices("triu_indices")


@recorded
def logspace(start, end, steps, base=10.0, *, dtype=None, layout=None, device=None, requires_grad=False):
    dt = _tensor.as_dtype(dtype) or _tensor.get_default_dtype()
    if np.dtype(dt).kind in "iub" and steps > 1:
        # NOTE: PyTorch's integral logspace truncates start and end to the dtype first, steps in double from the
        # two ends (pow(base, start + step*i) up to halfway, pow(base, end - step*(steps-1-i)) after) and truncates
        # each power: logspace(0, 2.5, 2, dtype=int64) is [1, 100] (was [1, 316] here)
        s0, s1, i = math.trunc(float(start)), math.trunc(float(end)), np.arange(steps)
        st = (s1 - s0) / (steps - 1)
        e = np.where(i < steps // 2, s0 + st * i, s1 - st * (steps - i - 1))
        return _tensor.tensor(np.power(float(base), e).astype(dt), device=device, requires_grad=requires_grad)
    return _tensor.tensor((base ** np.linspace(float(start), float(end), steps)).astype(dt), device=device,
                          requires_grad=requires_grad)


def scalar_tensor(s, *, dtype=None, layout=None, device=None, pin_memory=False, requires_grad=False):
    return _tensor.tensor(float(s), dtype=dtype or _tensor.get_default_dtype(), device=device,
                          requires_grad=requires_grad)


def _window(name, fn):
    @recorded
    def f(window_length, periodic=True, *args, dtype=None, layout=None, device=None, requires_grad=False, **kw):
        dt = _tensor.as_dtype(dtype) or _tensor.get_default_dtype()
        if not _isf(dt):
            raise RuntimeError(f"{name} expects floating point dtypes, got: {_tname(dt)}")
        if window_length < 0:
            raise RuntimeError(f"{name} requires non-negative window_length, got window_length={window_length}")
        n = window_length + 1 if periodic and window_length > 1 else window_length
        w = fn(n, *args, **kw)[:window_length] if n > 1 else np.ones(n)
        return _tensor.tensor(w.astype(dt), device=device, requires_grad=requires_grad)
    f.__name__ = name
    return f


def _cos_sum(*a):
    return lambda n: sum(c * np.cos(2 * math.pi * k * np.arange(n) / (n - 1)) for k, c in enumerate(a))


hann_window = _window("hann_window", _cos_sum(0.5, -0.5))
hamming_window = _window("hamming_window", lambda n, alpha=0.54, beta=0.46: _cos_sum(alpha, -beta)(n))
blackman_window = _window("blackman_window", _cos_sum(0.42, -0.5, 0.08))
bartlett_window = _window("bartlett_window", lambda n: 1 - np.abs(2 * np.arange(n) / (n - 1) - 1))
kaiser_window = _window("kaiser_window", lambda n, beta=12.0: np.kaiser(n, beta))


def cartesian_prod(*tensors):
    for t in tensors:  # NOTE: PyTorch takes 1-D tensors only (a 0-d or 2-D one was meshed and flattened here)
        if isinstance(t, Tensor) and t.ndim != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    return _tensor.stack([g.reshape(-1) for g in _m.meshgrid(*tensors, indexing="ij")], 1)


def combinations(input, r=2, with_replacement=False):  # noqa: A002
    _need("combinations", input)
    if input.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return input[:0].detach()  # NOTE: PyTorch returns a new empty tensor (not recorded)
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = np.array(list(pick(range(input.shape[0]), r)), np.int64).reshape(-1, r)
    return input[Tensor(input.xp.asarray(idx))]


def block_diag(*tensors):
    for k, t in enumerate(tensors):
        if t.ndim > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer dimensions. Input {k} has "
                               f"{t.ndim} dimensions")
    if not tensors:
        return _tensor.zeros((1, 0))
    dt = _tensor._result_type(*tensors)
    ms = [t.type(dt).reshape((1, -1) if t.ndim < 2 else t.shape) for t in tensors]
    cols, at, rows = sum(t.shape[1] for t in ms), 0, []
    for t in ms:
        rows.append(_tensor.pad(t, (at, cols - at - t.shape[1])))
        at += t.shape[1]
    return _tensor.cat(rows, 0)


# -- differences, integration, statistics ------------------------------------------------------------------------
def diff(input, n=1, dim=-1, prepend=None, append=None):  # noqa: A002
    _need("diff", input)
    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    d = _dim(dim, input.ndim)
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    for t in (prepend, append):
        if isinstance(t, Tensor) and t.ndim != input.ndim:
            raise RuntimeError("diff expects prepend or append to be the same dimension as input")
        for j in range(input.ndim) if isinstance(t, Tensor) else ():
            if j != d and t.shape[j] != input.shape[j]:
                raise RuntimeError("diff expects the shape of tensor to prepend or append to match that of input "
                                   f"except along the differencing dimension; input.size({j}) = {input.shape[j]}, "
                                   f"but got tensor.size({j}) = {t.shape[j]}")
    if n == 0:  # NOTE: as PyTorch: a copy of the input, prepend/append unused (they were concatenated here)
        return input.clone()
    x = input if prepend is None and append is None else \
        _tensor.cat([t for t in (prepend, input, append) if t is not None], d)
    for _ in range(n):
        k = x.shape[d] - 1
        if k <= 0:
            return x.narrow(d, 0, 0)
        a, b = x.narrow(d, 1, k), x.narrow(d, 0, k)
        x = a.logical_xor(b) if x.dtype == _tensor.bool_ else a - b
    return x


def _trap(y, x, dx, dim, cumulative):
    _need("cumulative_trapezoid" if cumulative else "trapezoid", y, 1, "y")
    d = _dim(dim, y.ndim)
    n = y.shape[d]
    if x is not None:
        sp = diff(x, dim=-1 if x.ndim == 1 else d)
        dxs = sp.reshape((-1,) + (1,) * (y.ndim - 1 - d)) if x.ndim == 1 else sp
    if n == 0 and not cumulative:
        # NOTE: PyTorch's zeros_like_except(y, dim): y's dtype, not recorded. One sample (and the cumulative form of
        # none) run the formulas below as PyTorch does: zeros that are recorded (they were unrecorded constants)
        return _tensor.zeros(tuple(s for k, s in enumerate(y.shape) if k != d), dtype=y.dtype, device=y.device)
    if x is not None and x.ndim == 1 and x.shape[0] != n:  # NOTE: PyTorch's check (a short x was broadcast here)
        raise RuntimeError(f"{'cumulative_trapezoid' if cumulative else 'trapezoid'}: There must be one `x` value "
                           "for each sample point")
    left, right = y.narrow(d, min(n, 1), max(n - 1, 0)), y.narrow(d, 0, max(n - 1, 0))
    if cumulative:  # NOTE: PyTorch's formulas, term for term (their rounding)
        return ((dxs if x is not None else (1 if dx is None else dx)) / 2.0 * (left + right)).cumsum(d)
    if x is not None:
        return ((left + right) * dxs).sum(d) / 2.0
    return (y.sum(d) - (y.select(d, 0) + y.select(d, -1)) * 0.5) * (1 if dx is None else dx)


def trapezoid(y, x=None, *, dx=None, dim=-1):
    if x is not None and dx is not None:
        raise TypeError("trapezoid() received an invalid combination of arguments: x and dx both given")
    return _trap(y, x, dx, dim, False)


def trapz(y, x=None, *, dx=None, dim=-1):
    return _trap(y, x, dx, dim, False)


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    return _trap(y, x, dx, dim, True)


def cov(input, *, correction=1, fweights=None, aweights=None):  # noqa: A002
    """PyTorch's algorithm (rows are variables, columns observations; fweights/aweights weigh the columns)."""
    _need("cov", input)
    if input.ndim > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an input with "
                           f"{input.ndim} dimensions")
    x = _m._fl(input).reshape((1, -1) if input.ndim < 2 else input.shape)
    w = fweights
    if aweights is not None:
        w = aweights if w is None else w * aweights
    if w is None:
        avg, w_sum = x.mean(1), x.shape[1]
        norm = w_sum - correction
    else:
        # NOTE: float weights promote with the input as PyTorch's (float32 data, float64 aweights: a float64 result);
        # only integer (fweights) are cast
        w = w if _isf(w.dtype) else w.type(x.dtype)
        w_sum = w.sum()
        avg = (x * w).sum(1) / w_sum
        norm = w_sum if correction == 0 else w_sum - correction if aweights is None else \
            w_sum - correction * (w * aweights).sum() / w_sum
    if float(norm) <= 0:
        warnings.warn("cov(): degrees of freedom is <= 0. Correction should be strictly less than the number of "
                      "observations.", UserWarning, stacklevel=2)
        norm = 0.0 * norm  # NOTE: as PyTorch: divide by zero (inf / nan), not an error
    xm = x - avg.reshape(-1, 1)
    c = _tensor.matmul(xm, (xm if w is None else xm * w).mT)
    return (c / norm).squeeze()


def corrcoef(input):  # noqa: A002
    c = cov(input)
    if c.ndim == 0:
        return c / c
    sd = c.diagonal().sqrt()
    return (c / sd.reshape(-1, 1) / sd.reshape(1, -1)).clamp(-1, 1)


def cross(input, other, dim=None):  # noqa: A002
    """torch.cross: along ``dim``; without it (deprecated, as PyTorch warns) the first of input's dims of size 3."""
    _need("cross", input)
    if dim is None:
        warnings.warn("Using torch.cross without specifying the dim arg is deprecated.\nPlease either pass the dim "
                      "explicitly or simply use torch.linalg.cross.\nThe default value of dim will change to agree "
                      "with that of linalg.cross in a future release.", UserWarning, stacklevel=2)
        dim = next((k for k, s in enumerate(input.shape) if s == 3), None)
        if dim is None:
            raise RuntimeError("no dimension of size 3 in input")
    return _la2.cross(input, other, dim=dim)


def dist(input, other, p=2):  # noqa: A002
    _need("dist", input)
    _need("dist", other, 2, "other")
    return (input - other).norm(p)


# -- matrix products ----------------------------------------------------------------------------------------
def mv(input, vec):  # noqa: A002
    _need("mv", input)
    _need("mv", vec, 2, "vec")
    out = _tensor.zeros((input.shape[0] if input.ndim == 2 else 1,), dtype=vec.dtype, device=vec.device)
    return _la2.addmv(out, input, vec, beta=0)


def addr(input, vec1, vec2, *, beta=1, alpha=1):  # noqa: A002
    _need("addr", input)
    for k, (v, n) in enumerate(((vec1, "vec1"), (vec2, "vec2"))):
        _need("addr", v, k + 2, n)
        if v.ndim != 1:
            raise RuntimeError(f"addr: Expected 1-D argument {n}, but got {v.ndim}-D")
    prod = vec1.reshape(-1, 1) * vec2
    return _la2._add_scaled(input.type(_tensor._result_type(input, prod)), prod, beta, alpha)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):  # noqa: A002
    _need("addbmm", input)
    if batch1.ndim != 3 or batch2.ndim != 3:
        raise RuntimeError(f"batch{1 if batch1.ndim != 3 else 2} must be a 3D tensor")
    return _la2._add_scaled(input, _tensor.matmul(batch1, batch2).sum(0), beta, alpha)


def chain_matmul(*matrices):
    warnings.warn("torch.chain_matmul is deprecated and will be removed in a future PyTorch release. Use "
                  "torch.linalg.multi_dot instead, which accepts a list of two or more tensors rather than multiple "
                  "parameters.", UserWarning, stacklevel=2)
    return matrices[0].clone() if len(matrices) == 1 else _la2.multi_dot(list(matrices))


def logdet(input):  # noqa: A002
    """log(det(input)): nan for a negative determinant, -inf for a singular matrix (as PyTorch)."""
    s, lad = _la2.slogdet(input)
    # NOTE: a where, as PyTorch's: a negative determinant's nan gets no gradient (adding a nan constant passed
    # the logabsdet gradient through)
    return _tensor.where(Tensor(s._data < 0), Tensor(input.xp.full((), np.nan, lad.dtype)), lad)


# -- indexed writes (out of place; the _ forms write into self) ------------------------------------------------
def _index_arrays(input, indices):
    out = []
    for i in indices:
        a = i._data if isinstance(i, Tensor) else input.xp.asarray(i)
        out.append(a if a.dtype == bool or a.dtype.kind in "iu" else a.astype(np.int64))
    return tuple(out)


def _same_dtype(input, values):
    if values.dtype != input.dtype:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{_tname(input.dtype)} for the destination and {_tname(values.dtype)} for the source.")


def index_put(input, indices, values, accumulate=False):  # noqa: A002
    _need("index_put", input)
    values = _t(values, input)
    _same_dtype(input, values)
    idx = _index_arrays(input, indices)
    if not accumulate:
        return _sh.IndexPut.apply(input, values, idx=idx)
    xp = input.xp
    bi = xp.broadcast_arrays(*sum((tuple(xp.nonzero(a)) if a.dtype == bool else (a,) for a in idx), ()))
    lead, rest = input.shape[:len(bi)], input.shape[len(bi):]
    for j, (a, n) in enumerate(zip(bi, lead)):
        bad = a[(a >= n) | (a < -n)]
        if bad.size:
            raise IndexError(f"index {int(bad.reshape(-1)[0])} is out of bounds for dimension {j} with size {n}")
    flat = xp.ravel_multi_index(tuple(xp.where(a < 0, a + n, a) for a, n in zip(bi, lead)), lead).reshape(-1)
    # NOTE: accumulation as index_add over the indexed dims flattened (duplicates add up; both get gradients)
    # NOTE: explicit leading sizes (a -1 with an empty trailing part is ambiguous)
    src = values.expand(tuple(bi[0].shape) + rest).reshape((int(flat.size),) + rest)
    return input.reshape((int(np.prod(lead)),) + rest).index_add(0, Tensor(flat.astype(np.int64)), src).reshape(
        input.shape)


def index_put_(input, indices, values, accumulate=False):  # noqa: A002
    values = _t(values, input)
    _same_dtype(input, values)
    return input._inplace(lambda t, v: index_put(t, indices, v, accumulate), values, keep=False, cast=False)


def _put_check(input, index, source):
    _need("put", input)
    if source.dtype != input.dtype:
        raise RuntimeError(f"put_(): self and source expected to have the same dtype, but got self.dtype = "
                           f"{_tname(input.dtype)} and source.dtype = {_tname(source.dtype)}")
    n, i = input.numel(), index._data.reshape(-1)
    bad = i[(i >= n) | (i < -n)]
    if bad.size:
        raise IndexError(f"out of range: tried to access index {int(bad[0])} on a tensor of {n} elements.")
    return (Tensor(input.xp.where(i < 0, i + n, i)),)


def put(input, index, source, accumulate=False):  # noqa: A002
    idx = _put_check(input, index, source)
    return index_put(input.reshape(-1), idx, source.reshape(-1), accumulate).reshape(input.shape)


def put_(input, index, source, accumulate=False):  # noqa: A002
    idx = _put_check(input, index, source)
    return input._inplace(lambda t, s: index_put(t.reshape(-1), idx, s.reshape(-1), accumulate).reshape(t.shape),
                          source, keep=False, cast=False)


def _scatter_into(input, src, view):
    _need(view.__name__, input)
    _need(view.__name__, src, 2, "src")
    out = input.clone()
    v = view(out)
    if tuple(v.shape) != tuple(src.shape):
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = {list(src.shape)}, "
                           f"slice size = {list(v.shape)}")
    v.copy_(src)  # NOTE: a copy into a view of the clone: the in-place machinery routes both gradients
    return out


def select_scatter(input, src, dim, index):  # noqa: A002
    def select_scatter(t):
        return t.select(dim, index)
    return _scatter_into(input, src, select_scatter)


def slice_scatter(input, src, dim=0, start=None, end=None, step=1):  # noqa: A002
    def slice_scatter(t):
        return t[(slice(None),) * _dim(dim, t.ndim) + (slice(start, end, step),)]
    return _scatter_into(input, src, slice_scatter)


def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):  # noqa: A002
    def diagonal_scatter(t):
        return t.diagonal(offset, dim1, dim2)
    return _scatter_into(input, src, diagonal_scatter)


# -- global switches ----------------------------------------------------------------------------------------
_DETERMINISTIC = {"mode": False, "warn_only": False}


def use_deterministic_algorithms(mode, *, warn_only=False):
    """Stores the flag, as torch's. NOTE: gpugrad's CPU (NumPy) paths are deterministic whatever the flag; its
    CUDA kernels are not checked against it (no op raises or warns for nondeterminism)."""
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms(): argument 'mode' (position 1) must be bool, not "
                        f"{type(mode).__name__}")
    _DETERMINISTIC.update(mode=mode, warn_only=bool(warn_only))


def are_deterministic_algorithms_enabled():
    return _DETERMINISTIC["mode"]


def is_deterministic_algorithms_warn_only_enabled():
    return _DETERMINISTIC["warn_only"]


_PROFILES = {"default": {"precision": 4}, "short": {"precision": 2, "edgeitems": 2, "max_line_width": 80},
             "full": {"precision": 4, "threshold": _sys.maxsize, "max_line_width": 80}}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """torch.set_printoptions for Tensor.__repr__ (NumPy's array2string renders it: the layout is NumPy's)."""
    p = _tensor._PRINT
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: unknown profile {profile!r} (use 'default', 'short' or 'full')")
        p.clear()
        p.update(_PROFILES[profile])
    for k, v in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                 ("max_line_width", linewidth)):
        if v is not None:
            p[k] = _sys.maxsize if k == "threshold" and v == math.inf else int(v)
    if sci_mode is not None:
        p.pop("formatter", None)
        p.pop("suppress_small", None)
        if sci_mode:
            p["formatter"] = {"float_kind": lambda v, d=p["precision"]: f"{v:.{d}e}"}
        else:
            p["suppress_small"] = True


# -- issue 11 leftovers: diagflat, fill_diagonal_, renorm, i0, nextafter, index_reduce ------------------------------
def diagflat(input, offset=0):  # noqa: A002
    _need("diagflat", input)
    return input.reshape(-1).diag(offset)


def fill_diagonal_(self, fill_value, wrap=False):
    if self.ndim < 2:
        raise RuntimeError("dimensions must larger than 1")
    n, m = self.shape[0], self.shape[-1]
    if self.ndim > 2 and len(set(self.shape)) != 1:
        raise RuntimeError("all dimensions of input must be of equal length")
    # NOTE: flat positions of the C-order diagonal; a tall matrix with wrap continues every m + 1 (NumPy's and
    # PyTorch's wrap: a gap row after each square block)
    step = (m + 1) if self.ndim == 2 else sum(n ** k for k in range(self.ndim))
    stop = n * m if self.ndim == 2 and wrap else min(n, m) * step
    mask = self.xp.zeros(self.numel(), bool)  # NOTE: on self's device (no numel-sized host array to copy over)
    mask[0:stop:step] = True
    mk = Tensor(mask.reshape(self.shape))
    return self._inplace(lambda t: t.masked_fill(mk, fill_value), keep=False)


def renorm(input, p, dim, maxnorm):  # noqa: A002
    """Each slice input.select(dim, i) with p-norm above maxnorm scaled to norm maxnorm (PyTorch's factor
    maxnorm / (norm + 1e-7)); composed, so its gradient runs through the norm as PyTorch's renorm_backward."""
    _need("renorm", input)
    if p <= 0:
        raise RuntimeError("renorm: non-positive-norm not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm:g}")
    if input.ndim <= 1:
        raise RuntimeError(f"renorm: input needs at least 2 dimensions, got {input.ndim} dimensions")
    if not -input.ndim <= dim < input.ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-input.ndim}, {input.ndim - 1}], but "
                         f"got {dim})")
    d = dim % input.ndim
    norm = _la2.vector_norm(input, p, tuple(i for i in range(input.ndim) if i != d), keepdim=True)
    big = norm._data > maxnorm
    one = Tensor(input.xp.ones((), norm.dtype))
    factor = _tensor.where(Tensor(big), maxnorm / (norm + 1e-7), one)
    return input * factor.type(input.dtype)


def _np_i1(x):
    """Modified Bessel I1 in pure NumPy (no SciPy): the power series for |x| <= 30, the asymptotic series above
    (both to ~1e-16 relative); odd in x."""
    a = np.abs(x).astype(np.float64)
    s, small = np.zeros_like(a), np.minimum(a, 30.0)
    term = small / 2
    for k in range(90):
        s += term
        term = term * (small * small / 4) / ((k + 1) * (k + 2))
    big = np.maximum(a, 30.0)
    t, c = np.ones_like(a), np.ones_like(a)
    for k in range(1, 25):
        t = t * -(4 - (2 * k - 1) ** 2) / (8 * k * big)
        c += t
    with np.errstate(over="ignore"):
        large = np.exp(big - 0.5 * np.log(2 * np.pi * big)) * c
    return np.sign(x) * np.where(a <= 30, s, large)


class I0(Primitive):
    # NOTE: SciPy's (Cephes) i0 in the input's dtype: in float32 it can differ from PyTorch's own kernel by an ulp
    def forward(self, x):
        return _m._special("i0", x, np.i0)

    def backward(self, g):
        return g * self.call(I1, self.values()[0])


class I1(Primitive):
    """torch.special.i1; its derivative i0(x) - i1(x) / x (1/2 at 0) keeps i0's gradient differentiable."""
    save_output = True

    def forward(self, x):
        return _m._special("i1", x, _np_i1)

    def backward(self, g):
        x, y = self.values()[0], self.result()
        xd = x._data if self.graph else x
        zero, t = xd == 0, xd.dtype.type
        xs = self.call(_ew.Where, t(1), x, cond=zero)
        return g * self.call(_ew.Where, t(0.5), self.call(I0, x) - y / xs, cond=zero)


def i0(input):  # noqa: A002
    """The modified Bessel function of the first kind, order 0 (torch.i0 = torch.special.i0); gradient i1."""
    _need("i0", input)
    return I0.apply(_m._fl(input))


class NextAfter(Primitive):
    """PyTorch 2.13's nextafter gradient: grad for self where self != other (where they are equal the result is
    other), zeros for other. NOTE: "native" low precision: the next float16/bfloat16 value is found in that dtype
    (ml_dtypes has the bfloat16 loop), not in float32."""
    saves = ()
    lowp = "native"

    def forward(self, x, o):
        self.moved = x != o
        return xp_of(x).nextafter(x, o)

    def backward(self, g):
        # NOTE: zeros where self == other even for an inf/NaN g, as PyTorch's (a select, not a product)
        gx = g * self.moved if self.graph else xp_of(g).where(self.moved, g, 0)
        return gx, _ew._zeros_grad(g)


def nextafter(input, other):  # noqa: A002
    a, b = _m._pair("nextafter", input, other)
    if not _isf(a.dtype):
        raise NotImplementedError(f"\"nextafter_{'cuda' if a.xp is not np else 'cpu'}\" not implemented for "
                                  f"'{_tensor._promo.short_name(a.dtype)}'")
    shp = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    return NextAfter.apply(a.expand(shp) if tuple(a.shape) != shp else a, b.expand(shp) if tuple(b.shape) != shp else b)


_IR_WARNED = []


def index_reduce(input, dim, index, source, reduce, *, include_self=True):  # noqa: A002
    """self.index_reduce(dim, index, source, reduce): scatter_reduce with index spread along dim over source's
    shape (the same gradients, ties shared evenly for amax/amin)."""
    return _index_reduce(input, dim, index, source, reduce, include_self, "index_reduce")


def _index_reduce(input, dim, index, source, reduce, include_self, name):  # noqa: A002
    _need(name, input)
    if not _IR_WARNED:
        _IR_WARNED.append(1)
        warnings.warn("index_reduce() is in beta and the API may change at any time.", UserWarning, stacklevel=3)
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got {reduce}.")
    nd = max(input.ndim, 1)
    if not -nd <= dim < nd:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim})")
    d, sn = dim % nd, _tensor._promo.short_name
    if index.ndim > 1:
        raise IndexError(f"index_reduce_(): Index is supposed to be a vector, but got dim: {index.ndim} with type: "
                         f"{sn(index.dtype)} and size: {list(index.shape)}")
    if index.dtype not in (np.int32, np.int64):
        raise RuntimeError(f"index_reduce_(): Expected dtype int32/int64 for index but got: {sn(index.dtype)}")
    if source.dtype != input.dtype:
        raise RuntimeError(f"index_reduce_(): self ({sn(input.dtype)}) and source ({sn(source.dtype)}) must have the "
                           "same scalar type")
    ss = tuple(source.shape) if source.ndim else (1,)
    if index.numel() != ss[d] and source.ndim == input.ndim:
        raise RuntimeError(f"index_reduce_(): Number of indices ({index.numel()}) should be equal to source.size(dim):"
                           f" ({ss[d]}), for dim: {dim}")
    xs = tuple(input.shape) if input.ndim else (1,)
    if source.ndim != input.ndim or any(a != b for i, (a, b) in enumerate(zip(xs, ss)) if i != d):
        raise RuntimeError("source tensor shape must match self tensor shape, excluding the specified dimension. Got "
                           f"self.shape = {list(input.shape)} source.shape = {list(source.shape)}")
    ix = index._data.astype(np.int64).reshape(-1)
    if ix.size and (int(ix.min()) < 0 or int(ix.max()) >= xs[d]):  # NOTE: PyTorch refuses negative indices here
        raise IndexError("index out of range in self")
    full = Tensor(input.xp.broadcast_to(ix.reshape([-1 if i == d else 1 for i in range(len(ss))]), ss).copy())
    x, s = input.reshape(xs), source.reshape(ss)
    if not include_self and reduce in ("amax", "amin"):
        # NOTE: PyTorch's index_reduce_backward counts self among the ties wherever self equals the result, even
        # without include_self (then zeroes self's share): reduce over self replaced by a constant (that value where
        # it ties, else the identity) to get the same shares and no gradient for the touched rows of self
        ex = x.detach().scatter_reduce(d, full, s.detach(), reduce, include_self=False)._data
        xp = input.xp  # NOTE: ix is on input's device: the mask and the constant are made there (CuPy too)
        hit = xp.zeros(xs[d], bool)
        hit[ix] = True
        hit = xp.broadcast_to(hit.reshape([-1 if i == d else 1 for i in range(len(xs))]), xs)
        big = xp.asarray(_ix._extreme_value(x.dtype, reduce == "amin"), x.dtype)
        x = _tensor.where(Tensor(hit), Tensor(xp.where(x._data == ex, x._data, big)), x)
        include_self = True
    return x.scatter_reduce(d, full, s, reduce, include_self=include_self).reshape(input.shape)


# -- Tensor methods of the ops above --------------------------------------------------------------------------
Tensor.H = property(lambda self: _matrix_t(self, "H", False))
Tensor.mH = property(lambda self: _matrix_t(self, "mH", True))
Tensor.float_power_, Tensor.cumsum_, Tensor.cumprod_ = float_power_, _scan_("cumsum"), _scan_("cumprod")
for _f in (stride, storage_offset, is_nonzero, adjoint, positive, new_empty_strided, fmax, fmin, gcd, lcm, frexp,
           ldexp, signbit, deg2rad, rad2deg, unique_consecutive, histogram, diff, cov, corrcoef, cross, dist, mv, addr,
           addbmm, logdet, index_put, index_put_, put, put_, select_scatter, slice_scatter, diagonal_scatter):
    setattr(Tensor, _f.__name__, _f)
for _n in ("gcd", "lcm", "ldexp", "deg2rad", "rad2deg", "addr", "addbmm"):
    setattr(Tensor, _n + "_", _tensor._inplace_form(_n))
del _f, _n
_tensor._xo = _sys.modules[__name__]
Tensor.fill_diagonal_ = fill_diagonal_
for _f in (diagflat, renorm, i0, nextafter, index_reduce):
    setattr(Tensor, _f.__name__, _f)
for _n in ("renorm", "i0", "nextafter", "addmv", "addmm", "baddbmm", "scatter_reduce"):
    setattr(Tensor, _n + "_", _tensor._inplace_form(_n))
Tensor.index_reduce_ = lambda self, dim, index, source, reduce, *, include_self=True: self._inplace(  # noqa: E731
    lambda t, s: _index_reduce(t, dim, index, s, reduce, include_self, "index_reduce_"), source)
del _f, _n


def i0_(input):  # noqa: A002
    return input.i0_()


def addmv_(input, mat, vec, *, beta=1, alpha=1):  # noqa: A002
    return input.addmv_(mat, vec, beta=beta, alpha=alpha)


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False):
    """torch.asarray: shares memory with a Tensor or an array when no copy is asked for or needed."""
    if copy:
        t = _tensor.tensor(obj.detach() if isinstance(obj, Tensor) else obj, dtype=dtype, device=device)
    elif isinstance(obj, Tensor):
        t = obj if device is None else obj.to(device)
        t = t if dtype is None else t.type(_tensor.as_dtype(dtype))
        if copy is False and t is not obj:
            raise ValueError("asarray(): can't alias the tensor with a different dtype or device (copy=False)")
    else:
        t = _tensor.as_tensor(obj, dtype=dtype, device=device)
    return t.requires_grad_() if requires_grad else t
