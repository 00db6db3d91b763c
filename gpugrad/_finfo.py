"""``gg.finfo`` / ``gg.iinfo``: PyTorch's machine limits of a dtype (attributes as torch.finfo/iinfo)."""
from __future__ import annotations

import numpy as np

from . import _dtypes

__all__ = ["finfo", "iinfo"]


class finfo:  # noqa: N801  (PyTorch's name)
    """bits, eps, max, min, tiny (= smallest_normal), resolution and dtype (its name) of a float dtype
    (default: the default dtype)."""

    def __init__(self, type=None):  # noqa: A002  (PyTorch's argument name)
        from .tensor import as_dtype, get_default_dtype  # noqa: PLC0415
        dt = get_default_dtype() if type is None else as_dtype(type)
        if not _dtypes.is_float(dt):
            raise TypeError("torch.finfo() requires a floating point input type. Use torch.iinfo to handle "
                            "'torch.finfo'")
        f = _dtypes.finfo_of(dt)
        self.bits, self.dtype = int(f.bits), dt.name
        # NOTE: Python floats, as PyTorch's (float32 max is 3.4028234663852886e+38, not a numpy scalar)
        self.eps, self.max, self.min = float(f.eps), float(f.max), float(f.min)
        self.tiny = self.smallest_normal = float(f.smallest_normal)
        self.resolution = 10.0 ** -int(f.precision)  # NOTE: as PyTorch (numpy rounds it to the dtype)

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:  # noqa: N801
    """bits, max, min and dtype (its name) of an integer dtype."""

    def __init__(self, type):  # noqa: A002
        from .tensor import as_dtype  # noqa: PLC0415
        dt = as_dtype(type)
        if dt.kind == "b":
            raise TypeError("torch.bool is not supported by torch.iinfo")
        if dt.kind not in "iu":
            raise TypeError("torch.iinfo() requires an integer input type. Use torch.finfo to handle 'torch.iinfo'")
        i = np.iinfo(dt)
        self.bits, self.dtype, self.max, self.min = int(i.bits), dt.name, int(i.max), int(i.min)

    def __repr__(self):
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"
