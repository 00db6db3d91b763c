"""PyTorch's type promotion (``torch.result_type`` / ``promote_types`` / ``can_cast``) on numpy dtypes,
and the dtype names PyTorch prints in its error messages.

A leaf module (only gpugrad._dtypes, itself a leaf): a Tensor is recognised by its ``_data`` attribute, dtypes are numpy
dtype objects (gpugrad/__init__.py normalizes user spellings first) and the default float dtype is an
argument.

Rules (c10/core/ScalarType.h and ATen's ResultTypeState), for the dtypes gpugrad has:
- categories bool < integer < floating;
- operands are ranked: dimensioned tensors > zero-dim tensors > Python numbers (bool -> bool,
  int -> int64, float -> the default float dtype; numpy scalars count as Python numbers);
- dtypes are promoted within each rank; a lower rank changes the result only when its category is
  higher (then the dtypes of the two ranks are promoted: int32 tensor + 0-d float64 -> float64,
  int32 tensor + 2.5 -> float32, float32 tensor + 0-d float64 -> float32);
- promote_types: bool yields to anything, a float beats any integer (int64 + float16 -> float16),
  same-category pairs take the wider type (uint8 + int8 -> int16).
"""
from __future__ import annotations

import numbers

import numpy as np

from ._dtypes import is_float, on_bf16

__all__ = ["result_type", "promote_types", "can_cast", "short_name", "cpp_name", "tensor_type_name"]

_BOOL = np.dtype(bool)
_SUPPORTED = {np.dtype(d) for d in ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")}
on_bf16(_SUPPORTED.add)
_BAREBONES_UNSIGNED = frozenset(np.dtype(d) for d in ("uint16", "uint32", "uint64"))

# names as PyTorch prints them: ScalarType ("Float"), C++ type ("float"), legacy tensor type ("FloatTensor")
_SHORT = {"bool": "Bool", "uint8": "Byte", "int8": "Char", "int16": "Short", "int32": "Int", "int64": "Long",
          "float16": "Half", "bfloat16": "BFloat16", "float32": "Float", "float64": "Double", "uint16": "UInt16", "uint32": "UInt32",
          "uint64": "UInt64"}
_CPP = {"bool": "bool", "uint8": "unsigned char", "int8": "signed char", "int16": "short int", "int32": "int",
        "int64": "long int", "float16": "c10::Half", "bfloat16": "c10::BFloat16", "float32": "float", "float64": "double"}


def short_name(dt):
    """PyTorch's ScalarType name: Float, Double, Half, Long, Int, Short, Char, Byte, Bool."""
    return _SHORT.get(np.dtype(dt).name, str(dt))


def cpp_name(dt):
    """The C++ type name PyTorch prints in some checks: float, double, c10::Half, long int, ..."""
    return _CPP.get(np.dtype(dt).name, str(dt))


def tensor_type_name(dt, cuda=False):
    """The legacy tensor type name: torch.FloatTensor, torch.cuda.DoubleTensor, ..."""
    return f"torch.{'cuda.' if cuda else ''}{short_name(dt)}Tensor"


def _dtype(dt):
    if not (isinstance(dt, np.dtype) or (isinstance(dt, type) and issubclass(dt, np.generic))):
        raise TypeError(f"expected a dtype (gg.float32, gg.int64, ...), got {type(dt).__name__} {dt!r}")
    dt = np.dtype(dt)
    if dt not in _SUPPORTED and dt not in _BAREBONES_UNSIGNED:
        raise TypeError(f"gpugrad has no dtype {dt} (supported: bool, uint8, int8, int16, int32, int64, "
                        "float16, bfloat16, float32, float64)")
    return dt


def _cat(dt):
    return 0 if dt == _BOOL else (2 if is_float(dt) else 1)


def promote_types(type1, type2):
    """The smallest dtype both convert to without leaving their category (torch.promote_types)."""
    a, b = _dtype(type1), _dtype(type2)
    return _promote(a, b)


def _promote(a, b):
    if a == b:
        return a
    if a in _BAREBONES_UNSIGNED or b in _BAREBONES_UNSIGNED:
        if is_float(a):
            return a
        if is_float(b):
            return b
        raise RuntimeError(f"Promotion for uint16, uint32, uint64 types is not supported, attempted to promote "
                           f"{short_name(a)} and {short_name(b)}")
    ca, cb = _cat(a), _cat(b)
    if ca != cb:
        return a if ca > cb else b
    # NOTE: within one category numpy's table equals PyTorch's for these dtypes (uint8 + int8 -> int16;
    # with ml_dtypes bfloat16 + float16 -> float32, bfloat16 + float32 -> float32, as PyTorch)
    return np.promote_types(a, b)


def can_cast(from_, to):
    """torch.can_cast: False only when the cast lowers the category (float -> int, non-bool -> bool)."""
    a, b = _dtype(from_), _dtype(to)
    return _cat(a) <= _cat(b)


def _rank_and_dtype(o, default_float):
    """(rank, dtype): 2 for a dimensioned tensor, 1 for a zero-dim tensor, 0 for a Python number."""
    if isinstance(o, (bool, np.bool_)):
        return 0, _BOOL
    if isinstance(o, (numbers.Integral, np.integer)):
        return 0, np.dtype(np.int64)
    if isinstance(o, (float, np.floating)):
        return 0, default_float
    data = getattr(o, "_data", None)
    if data is not None and hasattr(data, "dtype"):
        dt = data.dtype
        if dt not in _SUPPORTED and dt not in _BAREBONES_UNSIGNED:
            raise TypeError(f"gpugrad has no dtype {dt}")
        return (2 if data.ndim else 1), dt
    if isinstance(o, (complex, np.complexfloating)):
        raise TypeError("complex numbers are not supported by gpugrad")
    raise TypeError(f"result_type() expects Tensors and numbers, got {type(o).__name__}")


def _combine(higher, lower):
    # c10's combine_categories: a lower rank only matters when its category is higher
    if higher is None:
        return lower
    if lower is None or is_float(higher):
        return higher
    if higher == _BOOL or is_float(lower):
        return _promote(higher, lower)
    return higher


def result_type(*operands, default_float):
    """The dtype PyTorch computes an elementwise op of ``operands`` in (Tensors and Python numbers);
    ``default_float`` is the dtype of a Python float (gg.get_default_dtype())."""
    if not operands:
        raise TypeError("result_type() needs at least one operand")
    best = [None, None, None]
    for o in operands:
        r, dt = _rank_and_dtype(o, default_float)
        best[r] = dt if best[r] is None else _promote(best[r], dt)
    return _combine(best[2], _combine(best[1], best[0]))
