"""The low-precision float dtypes (float16, bfloat16) in one leaf module (no gpugrad imports).

bfloat16 is ``ml_dtypes.bfloat16`` (an optional dependency: ``pip install gpugrad[bf16]``): a NumPy dtype
whose ``kind`` is ``'V'``, not ``'f'``, so "is this a float dtype" is :func:`is_float`, never
``dt.kind == "f"``. ml_dtypes costs ~0.6 s to import, so it is loaded on first use (``gg.bfloat16``,
``dtype="bfloat16"``, CPU autocast's default) or as soon as anything else imports it (:class:`_Watch`):
bfloat16 arrays can only exist once it is imported, and from then on ``BF16`` is set, ``LOWP``/``FLOATS``
(mutable sets, shared by every importer) hold it and the :func:`on_bf16` callbacks have run.
"""
from __future__ import annotations

import importlib.util
import sys

import numpy as np

F16, F32 = np.dtype(np.float16), np.dtype(np.float32)


class _Unloaded:
    """bfloat16 before ml_dtypes is loaded: false, and equal to no dtype. NOTE: not None: NumPy compares
    ``np.dtype("float64") == None`` as True (None means the default dtype), which made float64 arrays look
    like bfloat16 (a checkpoint saved them as bfloat16 bits)."""
    __slots__ = ()

    def __bool__(self):
        return False

    def __repr__(self):
        return "<bfloat16: ml_dtypes not loaded>"


UNLOADED = _Unloaded()
BF16 = UNLOADED  # NOTE: set by _load (read it as _dtypes.BF16, or register on_bf16: a from-import copies UNLOADED)
LOWP = {F16}  # stored narrow, computed in float32
FLOATS = {F16, F32, np.dtype(np.float64)}
_hooks = []


def on_bf16(fn):
    """Call ``fn(BF16)`` once bfloat16 is loaded (now, if it is)."""
    _hooks.append(fn)
    if BF16:
        fn(BF16)


def _load(ml):
    global BF16
    if not BF16:
        BF16 = np.dtype(ml.bfloat16)
        LOWP.add(BF16)
        FLOATS.add(BF16)
        for fn in _hooks:
            fn(BF16)


class _Watch:
    """A meta-path finder that loads bfloat16 right after anyone imports ml_dtypes (then removes itself)."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "ml_dtypes":
            return None
        sys.meta_path.remove(cls)
        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        if loader is not None and hasattr(loader, "exec_module"):
            real = loader.exec_module

            def exec_module(module):
                real(module)
                _load(module)
            loader.exec_module = exec_module
        return spec


if "ml_dtypes" in sys.modules:
    _load(sys.modules["ml_dtypes"])
else:
    sys.meta_path.insert(0, _Watch)


def is_float(dt):
    """True for float16/bfloat16/float32/float64 (PyTorch's is_floating_point)."""
    return dt.kind == "f" or dt == BF16


def bfloat16():
    """The bfloat16 dtype (loading ml_dtypes), or a clear error when ml_dtypes is missing."""
    if not BF16:
        try:
            import ml_dtypes  # noqa: PLC0415
        except ImportError:
            raise TypeError("bfloat16 needs the ml_dtypes package on the CPU: pip install 'gpugrad[bf16]' "
                            "(or pip install ml_dtypes)") from None
        _load(ml_dtypes)
    return BF16


def finfo_of(dt):
    """numpy-style finfo of a float dtype (ml_dtypes' for bfloat16)."""
    return sys.modules["ml_dtypes"].finfo(dt) if dt == BF16 else np.finfo(dt)


# -- bfloat16 through DLPack on the CPU ---------------------------------------------------------------
# NOTE: NumPy's DLPack knows no bfloat16, but the bits are uint16: an export goes out as a uint16 view
# whose capsule is retagged kDLBfloat 16, an import is retagged kDLUInt 16 before NumPy reads it (then
# viewed as bfloat16). Memory stays shared; only the 4-byte DLDataType field of the DLTensor changes.
_U16, _BF = (1, 16, 1), (4, 16, 1)  # DLDataType (code, bits, lanes): kDLUInt, kDLBfloat


def _dldtype(capsule):
    """The DLDataType field (a ctypes array of code, bits, lanes-low, lanes-high bytes) of an unused capsule."""
    import ctypes  # noqa: PLC0415  (DLPack only)
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype, api.PyCapsule_GetName.argtypes = ctypes.c_char_p, [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    name = api.PyCapsule_GetName(capsule)
    # NOTE: DLManagedTensorVersioned = version (8 bytes), manager_ctx, deleter, flags (uint64), then the
    #       DLTensor; a legacy DLManagedTensor starts with it. In DLTensor: data (ptr), device (2 x int32),
    #       ndim (int32), then dtype.
    off = 8 + 3 * ctypes.sizeof(ctypes.c_void_p) if name == b"dltensor_versioned" else 0
    base = api.PyCapsule_GetPointer(capsule, name) + off + ctypes.sizeof(ctypes.c_void_p) + 12
    return (ctypes.c_uint8 * 4).from_address(base)


def dlpack_retag(capsule, frm, to):
    """Rewrite the capsule's dtype ``frm`` -> ``to`` ((code, bits, lanes)); True if it had ``frm``."""
    f = _dldtype(capsule)
    if (f[0], f[1], f[2] | f[3] << 8) != frm:
        return False
    f[0], f[1], f[2], f[3] = to[0], to[1], to[2] & 255, to[2] >> 8
    return True
