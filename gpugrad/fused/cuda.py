"""Find, compile (lazily) and cache the fused CUDA kernels.

``get_kernel(source, name, dtype, device_index)`` returns a ``cupy.RawKernel`` for kernel ``name``
of ``kernels/<source>`` instantiated for the storage ``dtype`` (float16 -> ``__half``, bfloat16 ->
``__nv_bfloat16``, float32 -> ``float``, float64 -> ``double``); ``name`` is a bare kernel name
(``"gpugrad_relu_fwd"``) or a full name expression (``"gpugrad_adam_step<float>"``). One ``cupy.RawModule`` is built per
(source, device, dtype) with the name expressions that the family modules registered for that
source (:func:`register_kernels`), so a family compiles once per dtype; CuPy also caches the
compiled binary on disk. Nothing here imports CuPy at import time: ``import gpugrad`` never touches
CUDA, and the first ``get_kernel`` call is where compilation happens.

Also here: the three generic launchers every fused family uses (:func:`map_launch` for
elementwise kernels, :func:`rows_launch` for row reductions, :func:`update_launch` for optimizer
updates), their launch shapes, :func:`on` (the device context of an array) and ``NULL`` for
optional pointer arguments.
"""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

from .._dtypes import on_bf16
from ..backend import cupy_module

__all__ = ["kernels_dir", "get_kernel", "register_kernels", "registered_kernels", "name_expression",
           "ctype", "KernelCompileError", "NULL", "on", "map_launch", "rows_launch", "update_launch",
           "elementwise_grid", "row_launch"]

_CTYPES = {np.dtype(np.float16): "__half", np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
on_bf16(lambda bf: _CTYPES.__setitem__(bf, "__nv_bfloat16"))  # NOTE: ml_dtypes' dtype (CuPy arrays have it too)

# A null pointer argument: CuPy packs a numpy scalar by value, and a pointer is 8 bytes.
# NOTE: not None: CuPy turns None into a missing argument slot, not a null pointer value.
NULL = np.uint64(0)


class KernelCompileError(RuntimeError):
    """A fused kernel failed to compile (the message names the kernel, the file and the log)."""


def kernels_dir() -> Path:
    """Folder holding the ``.cu``/``.cuh`` sources.

    An installed wheel ships them as ``gpugrad/_kernels/`` (looked at first); an editable
    checkout has them in ``<repo>/kernels/``.
    """
    pkg = Path(__file__).resolve().parent.parent          # .../gpugrad
    candidates = (pkg / "_kernels", pkg.parent / "kernels")
    for d in candidates:
        if (d / "common.cuh").is_file():
            return d
    raise FileNotFoundError("gpugrad's CUDA kernel sources were not found; looked in "
                            + " and ".join(str(d) for d in candidates))


def ctype(dtype) -> str:
    """C++ storage type of a numpy dtype (float16, bfloat16, float32, float64 only)."""
    dt = np.dtype(dtype)
    try:
        return _CTYPES[dt]
    except KeyError:
        raise TypeError(f"fused kernels support {', '.join(map(str, _CTYPES))}, got {dt}") from None


def name_expression(name: str, dtype) -> str:
    """``name<ctype>``, or ``name`` itself when it already has template arguments."""
    return name if "<" in name else f"{name}<{ctype(dtype)}>"


_lock = threading.Lock()
_registry: dict[str, tuple[str, ...]] = {}            # source -> bare kernel names
_modules: dict[tuple, tuple[object, frozenset]] = {}  # (source, device, dtype) -> (RawModule, exprs)
_kernels: dict[tuple, object] = {}                    # (source, expr, device) -> RawKernel


def register_kernels(source: str, names) -> None:
    """Declare the kernels of ``source`` (bare names, templated on the storage type only), so that
    one module per dtype compiles them all; also the list the nvcc compile check instantiates."""
    with _lock:
        old = _registry.get(source, ())
        _registry[source] = old + tuple(n for n in names if n not in old)


def registered_kernels(source: str) -> tuple[str, ...]:
    """Bare kernel names registered for ``source``."""
    return _registry.get(source, ())


def get_kernel(source: str, name: str, dtype, device_index: int):
    """The compiled kernel ``name`` of ``kernels/<source>`` for ``dtype`` on CUDA device ``device_index``.

    Compiled on first use and memoized per (source, device, dtype); raises
    :class:`KernelCompileError` naming the kernel and file when NVRTC rejects the source.
    """
    dt = np.dtype(dtype)
    expr = name_expression(name, dt)
    key = (source, expr, int(device_index))
    k = _kernels.get(key)
    if k is not None:
        return k
    with _lock:
        k = _kernels.get(key)
        if k is None:
            k = _kernels[key] = _build(source, expr, dt, int(device_index))
    return k


_opts = None


def _options(kdir):
    """NVRTC options: C++17, the include path, and a digest of the headers.

    NOTE: CuPy's on-disk kernel cache is keyed on the source text and the options only, not on
    included files; the digest define makes an edited common.cuh invalidate cached binaries.
    """
    global _opts
    if _opts is None:
        h = hashlib.sha1()
        for p in sorted(kdir.glob("*.cuh")):
            h.update(p.name.encode() + b"\0" + p.read_bytes())
        _opts = ("--std=c++17", f"-I{kdir}", f"-DGPUGRAD_HEADERS_SHA1={h.hexdigest()[:16]}")
    return _opts


def _build(source, expr, dt, dev):
    cp = cupy_module()
    path = kernels_dir() / source
    try:
        code = path.read_text()
    except OSError as e:
        raise FileNotFoundError(f"kernel source {path} cannot be read ({e})") from None
    mkey = (source, dev, dt)
    entry = _modules.get(mkey)
    if entry is None or expr not in entry[1]:
        exprs = {name_expression(n, dt) for n in _registry.get(source, ())} | {expr}
        if entry is not None:
            exprs |= entry[1]  # NOTE: a name nobody registered: rebuild with the union (rare)
        exprs = frozenset(exprs)
        with cp.cuda.Device(dev):
            mod = cp.RawModule(code=code, options=_options(path.parent), name_expressions=sorted(exprs))
        entry = _modules[mkey] = (mod, exprs)
    try:
        with cp.cuda.Device(dev):
            return entry[0].get_function(expr)  # NOTE: CuPy compiles here, on first access
    except Exception as e:  # cupy.cuda.compiler.CompileException, or a driver load error
        _modules.pop(mkey, None)
        raise KernelCompileError(f"failed to compile kernel {expr} from {path}: {type(e).__name__}: {e}") from e


# -- launch shapes -------------------------------------------------------------------------------

_BLOCK = 256
_MAX_GRID = 65535 * 8  # NOTE: every kernel grid-strides, so capping the grid only bounds launch size


def elementwise_grid(n: int, itemsize: int) -> int:
    """Blocks of 256 threads for an elementwise kernel that moves 16 bytes per thread per step."""
    per_block = _BLOCK * max(1, 16 // itemsize)
    return max(1, min(-(-n // per_block), _MAX_GRID))


def row_launch(rows: int, n: int):
    """(grid, block) for the row kernels: blockDim.x threads per row, blockDim.y rows per block.

    Short rows get a warp each (4 rows per block); long rows a whole block (128..1024 threads),
    so each thread handles roughly 8+ elements.
    """
    if n <= 1024:
        block = (32, 4, 1)
    else:
        bx = 128
        while bx < 1024 and bx * 8 < n:
            bx *= 2
        block = (bx, 1, 1)
    grid = max(1, min(-(-rows // block[1]), 65535 * 4))
    return (grid, 1, 1), block


# -- the generic launchers ------------------------------------------------------------------------
# Arguments: ``lead`` (pointers, and scalars already typed: np.int64 / np.float64 / np.int32 / NULL),
# then the counts as long long, then ``tail``. CuPy arrays among them are made contiguous first
# (a no-op for the usual contiguous ones). NOTE: outputs are always fresh contiguous arrays, so a
# contiguous copy is only ever made of an input; a strided output would be written into a copy and lost.

def on(a):
    """The CUDA device context of CuPy array ``a``: allocations and launches inside it go to a's device."""
    return cupy_module().cuda.Device(a.device.id)


flag_reads = None  # NOTE: a list while gg.compile captures a CUDA graph (a host read is not allowed inside one)


def check_flag(err, fail):
    """Call ``fail()`` when the device-side error flag ``err`` is set: now (a 4-byte device->host copy, i.e. a sync),
    or, while gg.compile captures a CUDA graph, after each launch of that graph (gpugrad/compile.py)."""
    if flag_reads is not None:
        flag_reads.append((err, fail))
    elif int(err):
        fail()


def _call(source, kernel, dtype, grid, block, args):
    cp = cupy_module()
    # NOTE: 0-d arrays (device-side flags, scalar upstream gradients) are passed as they are: they are
    # contiguous, and a copy of a flag would take the kernel's write away from the caller
    args = tuple(cp.ascontiguousarray(a) if isinstance(a, cp.ndarray) and not a.flags.c_contiguous else a
                 for a in args)
    get_kernel(source, kernel, dtype, cp.cuda.Device().id)(grid, block, args)  # NOTE: Device(): the current one


def map_launch(source: str, kernel: str, dtype, n: int, lead, tail=()):
    """``kernel(*lead, n, *tail)`` over n elements (grid-stride, 256 threads a block); nothing for n == 0.
    Call it inside :func:`on` of the arrays' device."""
    if n:
        _call(source, kernel, dtype, (elementwise_grid(n, np.dtype(dtype).itemsize),), (_BLOCK,),
              (*lead, np.int64(n), *tail))


def rows_launch(source: str, kernel: str, dtype, rows: int, n: int, lead, tail=()):
    """``kernel(*lead, rows, n, *tail)`` over ``rows`` rows of ``n`` (the :func:`row_launch` layout);
    nothing for rows == 0. Call it inside :func:`on` of the arrays' device."""
    if rows:
        grid, block = row_launch(rows, n)
        _call(source, kernel, dtype, grid, block, (*lead, np.int64(rows), np.int64(n), *tail))


def update_launch(source: str, kernel: str, param, grad, states, scalars, flags):
    """``kernel(param, grad, *states, *scalars (double), *flags (int), n)``: an in-place update of
    ``param`` and ``states`` (None entries are NULL). Strided arrays go through contiguous copies that
    are written back, so the update is in place for the caller."""
    n = param.size
    if n == 0:
        return
    cp = cupy_module()
    with on(param):
        work = param if param.flags.c_contiguous else cp.ascontiguousarray(param)
        g = grad if (grad.flags.c_contiguous and grad.dtype == param.dtype) else \
            cp.ascontiguousarray(grad, dtype=param.dtype)
        st = [s if (s is None or s.flags.c_contiguous) else cp.ascontiguousarray(s) for s in states]
        map_launch(source, kernel, param.dtype, n,
                   (work, g, *(NULL if s is None else s for s in st), *(np.float64(x) for x in scalars),
                    *(np.int32(bool(f)) for f in flags)))
        if work is not param:
            param[...] = work
        for s, c in zip(states, st):
            if c is not s:
                s[...] = c
