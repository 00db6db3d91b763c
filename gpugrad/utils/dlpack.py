"""Zero-copy exchange with other array libraries through DLPack (``torch.utils.dlpack``'s names).

- ``Tensor.__dlpack__`` / ``Tensor.__dlpack_device__``: the exporting side (the protocol any
  ``from_dlpack`` calls: ``numpy.from_dlpack``, ``torch.from_dlpack``, ``jax.dlpack.from_dlpack``,
  ``cupy.from_dlpack``). The tensor's array (NumPy or CuPy) does the export, so the capsule views
  the tensor's memory, with its strides.
- :func:`from_dlpack` (also ``gg.from_dlpack``): the importing side, for any object with
  ``__dlpack__`` (NumPy, CuPy, PyTorch, JAX arrays, gpugrad Tensors) or a capsule from a legacy
  ``to_dlpack``. CPU memory becomes a NumPy array, CUDA memory a CuPy array; nothing is copied.
- :func:`to_dlpack`: a legacy ``"dltensor"`` capsule (what ``torch.utils.dlpack.to_dlpack`` returns).

Semantics (the DLPack / array-API standard):
- Memory is shared both ways: a write on one side is seen on the other.
- Strided (non-contiguous) tensors are exported with their strides (in elements); a layout whose
  strides are not whole elements cannot be described and raises ``BufferError``.
- Read-only memory: exported with the read-only flag when the consumer asks for a DLPack >= 1.0
  capsule (``max_version``); a legacy capsule cannot carry the flag, so NumPy raises
  ``BufferError`` rather than hand out writable access. An import flagged read-only becomes a
  read-only array, and an in-place write into the tensor raises. NOTE: PyTorch ignores the flag
  (its import is writable): the one place where gpugrad refuses what PyTorch allows.
- Gradients do not cross frameworks: an imported tensor is a leaf with ``requires_grad=False``
  and no history, and a tensor that requires grad is not exported (``BufferError``, as PyTorch:
  export ``t.detach()``).
- Streams (CUDA): the consumer passes its stream to ``__dlpack__``; CuPy's export makes that
  stream wait for the work queued on the current stream (``stream=None`` means the legacy default
  stream, ``-1`` no synchronisation), and ``cupy.from_dlpack`` passes CuPy's current stream when
  importing. On the CPU ``stream`` must be None. NOTE: this CUDA path has not run on a GPU yet.
- bfloat16: NumPy has no DLPack bfloat16, so on the CPU a bfloat16 tensor (an ml_dtypes array) is
  exported as NumPy's capsule of its uint16 bits with the dtype field set to kDLBfloat 16, and a
  bfloat16 capsule is imported by the reverse (``gpugrad._dtypes.dlpack_retag``): still zero-copy.
"""
from __future__ import annotations

import ctypes

import numpy as np

from .. import _dtypes as _dt
from .._dtypes import is_float as _isf
from ..tensor import Tensor, _dlpack_export

__all__ = ["from_dlpack", "to_dlpack"]

# DLDeviceType values (dlpack.h)
_CPU_TYPES = {1: "kDLCPU", 3: "kDLCUDAHost", 11: "kDLROCMHost"}  # memory the CPU can address
_CUDA_TYPES = {2: "kDLCUDA", 13: "kDLCUDAManaged"}


class _Capsule:
    """A legacy capsule dressed as a DLPack producer, so one import path serves both forms."""

    def __init__(self, capsule):
        self.capsule, self.device = capsule, _capsule_device(capsule)

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        # NOTE: the capsule is what it is: the versioned/legacy form, device and memory are fixed;
        #       a request for another device or a copy is left to the consumer to refuse.
        return self.capsule

    def __dlpack_device__(self):
        return self.device


class _DLTensor(ctypes.Structure):  # the leading fields of DLTensor (dlpack.h)
    _fields_ = [("data", ctypes.c_void_p), ("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


def _capsule_device(capsule):
    """(device_type, device_id) of a DLPack capsule, read from its DLTensor."""
    api = ctypes.pythonapi
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    name = _name(capsule)
    if name not in (b"dltensor", b"dltensor_versioned"):
        raise ValueError(f"from_dlpack: expected an unused DLPack capsule ('dltensor' or 'dltensor_versioned'), "
                         f"got a capsule named {name!r} (a capsule can be consumed only once)")
    ptr = api.PyCapsule_GetPointer(capsule, name)
    # NOTE: DLManagedTensorVersioned starts with version (2 x uint32), manager_ctx, deleter and a uint64
    #       flags word before its DLTensor; DLManagedTensor starts with the DLTensor itself.
    off = 8 + 3 * ctypes.sizeof(ctypes.c_void_p) if name == b"dltensor_versioned" else 0
    t = _DLTensor.from_address(ptr + off)
    return int(t.device_type), int(t.device_id)


def _name(capsule):
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype, api.PyCapsule_GetName.argtypes = ctypes.c_char_p, [ctypes.py_object]
    return api.PyCapsule_GetName(capsule)


def _cpu_capsule(obj):
    """``obj.__dlpack__()`` as a CPU consumer asks for it: a versioned capsule where the producer can
    make one (it carries the read-only flag), else the legacy one (a producer before DLPack 1.0 does
    not know ``max_version``: the protocol's fallback)."""
    try:
        return obj.__dlpack__(max_version=(1, 0))
    except TypeError:
        return obj.__dlpack__()


class _Alias:
    def __init__(self, arr):
        self.arr = arr  # NOTE: holds the imported array, whose deleter frees the producer's memory
        self.__array_interface__ = dict(arr.__array_interface__, data=(arr.__array_interface__["data"][0], False))


def _writable_alias(arr):
    return np.asarray(_Alias(arr))


def _is_capsule(obj):
    return type(obj).__name__ == "PyCapsule"


def import_array(obj):
    """The NumPy or CuPy array over the memory of a DLPack producer or capsule (no copy)."""
    if _is_capsule(obj):
        obj = _Capsule(obj)
    elif not hasattr(obj, "__dlpack__"):
        raise TypeError(f"from_dlpack expects an object with __dlpack__ (a NumPy, CuPy, PyTorch or JAX array, a "
                        f"gpugrad Tensor) or a DLPack capsule, got {type(obj).__name__}")
    dev_type, dev_id = (int(v) for v in obj.__dlpack_device__())
    if dev_type in _CPU_TYPES:
        cap = obj.capsule if isinstance(obj, _Capsule) else _cpu_capsule(obj)
        legacy = _name(cap) == b"dltensor"
        bf16 = bool(_dt.BF16) and _dt.dlpack_retag(cap, _dt._BF, _dt._U16)
        try:
            arr = np.from_dlpack(_Capsule(cap))
        except RuntimeError as e:  # NOTE: NumPy reports an unsupported dtype (bfloat16, ...) as RuntimeError
            raise BufferError(f"from_dlpack: NumPy cannot import this array ({e}); gpugrad's CPU tensors are "
                              "NumPy arrays, so convert it on the producer's side first") from e
        # NOTE: a legacy (DLPack < 1.0) capsule has no read-only flag, and its memory is writable by that
        #       version's contract (PyTorch imports it writable); NumPy marks such imports read-only to be
        #       safe, so gpugrad takes a writable alias of the same memory (which keeps the import alive).
        arr = _writable_alias(arr) if legacy and not arr.flags.writeable else arr
        return arr.view(_dt.BF16) if bf16 else arr
    if dev_type in _CUDA_TYPES:
        from ..backend import cupy_module  # noqa: PLC0415  (CuPy only when CUDA memory arrives)
        cp = cupy_module()
        with cp.cuda.Device(dev_id):
            # NOTE: CuPy passes its current stream to __dlpack__, so the producer's pending work is
            #       ordered before ours (the protocol's synchronisation); untested on a GPU so far.
            return cp.from_dlpack(obj)
    raise BufferError(f"from_dlpack: gpugrad tensors live in CPU or CUDA memory; this array is on DLPack device "
                      f"type {dev_type} (id {dev_id})")


def from_dlpack(ext_tensor):
    """A Tensor sharing memory with ``ext_tensor`` (an object with ``__dlpack__``, or a DLPack capsule).

    The result is a leaf that does not require grad (no gradient history crosses frameworks);
    writes to it are seen by the producer and vice versa."""
    arr = import_array(ext_tensor)
    if not (_isf(np.dtype(arr.dtype)) or np.dtype(arr.dtype).kind in "biu") and np.dtype(arr.dtype).name != "bfloat16":
        raise TypeError(f"from_dlpack: gpugrad has no dtype {arr.dtype}")
    return Tensor(arr)


def to_dlpack(tensor):
    """A legacy DLPack capsule (``"dltensor"``) over ``tensor``'s memory, as ``torch.utils.dlpack.to_dlpack``.

    NOTE: as PyTorch's, it also exports a tensor that requires grad (``__dlpack__`` refuses one); the
    capsule carries the values only."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dlpack expects a Tensor, got {type(tensor).__name__}")
    return _dlpack_export(tensor._data, False)
