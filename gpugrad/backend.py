"""Devices and the one CPU/GPU dispatch point.

Arrays are ``numpy.ndarray`` on the CPU and ``cupy.ndarray`` on CUDA devices.
Everything that must choose between the two asks :func:`xp_of` for the array
module of its inputs. ``import gpugrad`` never imports CuPy: it is imported
lazily the first time a CUDA device is asked for (or a CuPy array is seen).
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["Device", "device", "xp_of", "device_of", "to_device", "get_default_device",
           "set_default_device", "cuda", "CudaUnavailableError"]

_INSTALL_HINT = 'install the CUDA extra: pip install "gpugrad[cuda12]" (or "gpugrad[cuda13]")'


class CudaUnavailableError(RuntimeError):
    """Raised when a CUDA device is asked for but cannot be used."""


_cupy = None          # the cupy module once imported
_cupy_error = None    # why CuPy cannot be used, once known


def _import_cupy():
    """Import CuPy on first use; return the module or None (reason in _cupy_error)."""
    global _cupy, _cupy_error
    if _cupy is not None or _cupy_error is not None:
        return _cupy
    try:
        import cupy  # noqa: PLC0415
    except Exception as e:  # ImportError, or a broken CUDA install raising at import
        _cupy_error = f"CuPy is not installed ({type(e).__name__}: {e}); {_INSTALL_HINT}"
        return None
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        _cupy_error = (f"CuPy is installed but no usable CUDA GPU was found ({type(e).__name__}: {e}); "
                       "check the NVIDIA driver with `nvidia-smi`, or use device='cpu'")
        return None
    if n == 0:
        _cupy_error = "CuPy is installed but no CUDA GPU is visible; use device='cpu'"
        return None
    _cupy = cupy
    return _cupy


def cupy_module():
    """The CuPy module; raises CudaUnavailableError saying why it cannot be used."""
    cp = _import_cupy()
    if cp is None:
        raise CudaUnavailableError(_cupy_error)
    return cp


class Device:
    """A device: ``Device("cpu")``, ``Device("cuda")`` (= ``cuda:0``) or ``Device("cuda:1")``."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string like 'cpu', 'cuda' or 'cuda:1', got {spec!r}")
        s = spec.strip().lower()
        if s == "auto":
            s = "cuda" if cuda.is_available() else "cpu"
        kind, _, idx = s.partition(":")
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {spec!r}: expected 'cpu', 'cuda', 'cuda:N' or 'auto'")
        if kind == "cpu":
            if idx or index not in (None, 0):
                raise ValueError(f"device {spec!r}: the CPU has no index")
            self.type, self.index = "cpu", None
            return
        if idx:
            if not idx.isdigit():
                raise ValueError(f"device {spec!r}: the CUDA index must be a non-negative integer")
            index = int(idx)
        self.type, self.index = "cuda", 0 if index is None else int(index)

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = Device(other)
            except (ValueError, TypeError):
                return False
        return isinstance(other, Device) and self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return "cpu" if self.type == "cpu" else f"cuda:{self.index}"

    def __repr__(self):
        return f"device('{self}')"

    @property
    def xp(self):
        """The array module of this device (numpy or cupy); raises if CUDA is unusable."""
        if self.type == "cpu":
            return np
        cp = cupy_module()
        if self.index >= cp.cuda.runtime.getDeviceCount():
            raise CudaUnavailableError(f"{self} does not exist: only {cp.cuda.runtime.getDeviceCount()} CUDA device(s) visible")
        return cp


def device(spec=None) -> Device:
    """Make a Device; ``None`` means the default device."""
    if spec is None:
        return get_default_device()
    return spec if isinstance(spec, Device) else Device(spec)


CPU = Device("cpu")


def xp_of(a):
    """Array module (numpy or cupy) of an array. The single CPU/GPU dispatch point."""
    # NOTE: the exact-type test is the fast path (tens of ns); CuPy is only consulted for non-numpy arrays.
    if type(a) is np.ndarray or isinstance(a, (np.ndarray, np.generic)):
        return np
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return _cupy
    mod = type(a).__module__
    if mod.startswith("cupy"):
        return cupy_module()
    raise TypeError(f"expected a numpy or cupy array, got {type(a).__name__}")


def device_of(a) -> Device:
    """Device holding an array."""
    if type(a) is np.ndarray or isinstance(a, (np.ndarray, np.generic)):
        return CPU
    xp_of(a)  # raises for unknown array types
    return Device("cuda", a.device.id)


def to_device(a, dev) -> object:
    """Copy an array to device ``dev`` (no copy if it is already there)."""
    dev = device(dev)
    src = device_of(a)
    if src == dev:
        return a
    if dev.type == "cpu":
        return a.get()
    cp = dev.xp
    with cp.cuda.Device(dev.index):
        return cp.asarray(a)


_default_device = None


def get_default_device() -> Device:
    """The default device: set_default_device(), else $GPUGRAD_DEVICE, else 'cpu'."""
    global _default_device
    if _default_device is None:
        env = os.environ.get("GPUGRAD_DEVICE", "cpu")
        try:
            _default_device = Device(env)
        except ValueError as e:
            raise ValueError(f"GPUGRAD_DEVICE={env!r} is not a device: {e}") from None
        if _default_device.type == "cuda":
            _default_device.xp  # fail early and clearly if CUDA is not usable
    return _default_device


def set_default_device(dev) -> None:
    """Set the device new tensors go to ('cpu', 'cuda', 'cuda:N' or 'auto')."""
    global _default_device
    d = Device(dev)
    if d.type == "cuda":
        d.xp  # raises CudaUnavailableError with the reason
    _default_device = d


class _Cuda:
    """``gg.cuda``: availability and device count, without importing CuPy at gpugrad import."""

    @staticmethod
    def is_available() -> bool:
        return _import_cupy() is not None

    @staticmethod
    def device_count() -> int:
        cp = _import_cupy()
        return 0 if cp is None else cp.cuda.runtime.getDeviceCount()

    @staticmethod
    def why_unavailable():
        """A sentence saying why CUDA cannot be used, or None when it can."""
        _import_cupy()
        return _cupy_error

    @staticmethod
    def synchronize():
        cp = _import_cupy()
        if cp is not None:
            cp.cuda.Device().synchronize()

    # NOTE: the random-state functions of gg.cuda (torch.cuda's names) are attached by gpugrad/random.py,
    # where the generators live: this module stays below random in the import order.


def _cuda_dev(device):
    return f"cuda:{device}" if isinstance(device, int) else device


cuda = _Cuda()


# -- NumPy floating-point warnings off (see ops/_util.quiet) -----------------------------------------------
# NOTE: the context variable behind np.errstate (private NumPy 2 API, with an np.errstate fallback): used
# by ops/_util.quiet per forward and by autograd.engine once per backward sweep.
try:
    from numpy._core._ufunc_config import _extobj_contextvar as _errvar  # NumPy >= 2

    with np.errstate(all="ignore"):
        _IGNORE = _errvar.get()
except (ImportError, AttributeError):  # pragma: no cover - NumPy 1.x
    _errvar = _IGNORE = None


def quiet_begin():
    """Turn NumPy's floating-point warnings off; returns the token for :func:`quiet_end`."""
    if _errvar is None:  # pragma: no cover
        e = np.errstate(all="ignore")
        e.__enter__()
        return e
    return _errvar.set(_IGNORE)


def quiet_end(token):
    if _errvar is None:  # pragma: no cover
        token.__exit__(None, None, None)
    else:
        _errvar.reset(token)
