"""The low-precision float dtypes (float16, bfloat16) in one leaf module (no gpugrad imports).

bfloat16 is ``ml_dtypes.bfloat16`` (an optional dependency: ``pip install gpugrad[bf16]``): a NumPy dtype
whose ``kind`` is ``'V'``, not ``'f'``, so "is this a float dtype" is :func:`is_float`, never
``dt.kind == "f"``. Without ml_dtypes ``BF16`` is None and :func:`bfloat16` raises how to get it.
"""
from __future__ import annotations

import numpy as np

try:
    import ml_dtypes as _ml
    BF16 = np.dtype(_ml.bfloat16)
except ImportError:  # NOTE: optional: everything but bfloat16 works without it
    _ml, BF16 = None, None

F16, F32 = np.dtype(np.float16), np.dtype(np.float32)
LOWP = frozenset(d for d in (F16, BF16) if d is not None)  # stored narrow, computed in float32
FLOATS = frozenset(d for d in (F16, BF16, F32, np.dtype(np.float64)) if d is not None)


def is_float(dt):
    """True for float16/bfloat16/float32/float64 (PyTorch's is_floating_point)."""
    return dt.kind == "f" or dt == BF16


def bfloat16():
    """The bfloat16 dtype, or a clear error when ml_dtypes is missing."""
    if BF16 is None:
        raise TypeError("bfloat16 needs the ml_dtypes package on the CPU: pip install 'gpugrad[bf16]' "
                        "(or pip install ml_dtypes)")
    return BF16


def finfo_of(dt):
    """numpy-style finfo of a float dtype (ml_dtypes' for bfloat16)."""
    return _ml.finfo(dt) if dt == BF16 else np.finfo(dt)
