"""A NumPy-backed stand-in for the part of CuPy that gpugrad's kernel bridge uses.

``install()`` puts it in ``sys.modules["cupy"]`` (inside the emulator's worker process only;
gpugrad imports CuPy lazily, see gpugrad/backend.py). What it provides:

- ``ndarray``: a NumPy view of emulated device memory. Memory comes from ``posix_memalign``
  (256-byte aligned, like CuPy's pool; under the worker's ``LD_PRELOAD`` of libasan it is ASan's,
  so every allocation has exact bounds), and ``empty`` fills it with garbage. Like CuPy's, the
  array refuses implicit conversion to NumPy (``__array__`` raises: use ``.get()``) and refuses
  NumPy arrays as operands; NumPy ufuncs and functions on it dispatch back here.
- array functions by the CuPy names the bridge calls (empty, zeros, asarray, ascontiguousarray,
  moveaxis, broadcast_to, where, ...), ``cuda.Device``, ``cuda.runtime``, streams.
- ``RawModule(code=, options=, name_expressions=)``: builds the source with tests/cudaemu/build.py;
  ``get_function(expr)`` gives a ``RawKernel`` whose ``__call__(grid, block, args, shared_mem=)``
  packs the arguments by CuPy's rules and checks them against the kernel's C++ parameter types
  before the emulator runs it (see :meth:`RawKernel._pack`).
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import sys
import types
import weakref

import numpy as np

from . import build

_libc = ctypes.CDLL(None)
_libc.posix_memalign.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t, ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]
_asan_poison = getattr(_libc, "__asan_poison_memory_region", None)  # present under LD_PRELOAD=libasan
_garbage = np.random.default_rng(20240601)

SCHEDULES = {"inorder": 0, "lifo": 1, "random": 2}
_schedule = ["inorder", 0]
launches: list = []  # (expression, grid, block, shared_mem, schedule) of every launch, for coverage


class EmulatorError(RuntimeError):
    """A launch failed in the emulator: invalid configuration, or a collective misused."""


class ArgumentError(TypeError):
    """A kernel argument does not match the kernel's C++ parameter (or breaks __restrict__)."""


@contextlib.contextmanager
def schedule(policy: str, seed: int = 0):
    """Run the launches inside under thread schedule ``policy`` (inorder | lifo | random)."""
    if policy not in SCHEDULES:
        raise ValueError(f"unknown schedule {policy!r}")
    old = list(_schedule)
    _schedule[:] = [policy, int(seed)]
    try:
        yield
    finally:
        _schedule[:] = old


# -- device memory -------------------------------------------------------------------------------

class _Mem:
    """One device allocation (exact size, 256-byte aligned), freed when the last view goes."""

    def __init__(self, nbytes, misalign=0):
        p = ctypes.c_void_p()
        if _libc.posix_memalign(ctypes.byref(p), 256, max(nbytes + misalign, 0)) or p.value is None:
            raise MemoryError(f"cudaemu: cannot allocate {nbytes} bytes")
        self.base, self.ptr, self.nbytes = p.value, p.value + misalign, nbytes
        if misalign >= 8 and _asan_poison is not None:  # NOTE: ASan poisons whole 8-byte granules only
            _asan_poison(ctypes.c_void_p(self.base), ctypes.c_size_t(misalign // 8 * 8))
        weakref.finalize(self, _libc.free, ctypes.c_void_p(self.base))
        self.__array_interface__ = {"shape": (nbytes,), "typestr": "|u1", "data": (self.ptr, False), "version": 3}


def _device_view(nbytes, dtype, shape, garbage=False):
    raw = np.asarray(_Mem(nbytes))
    if garbage and nbytes:
        raw[...] = _garbage.integers(0, 256, nbytes, dtype=np.uint8)  # CUDA memory is uninitialised
    return raw.view(dtype).reshape(shape)


def _on_device(a: np.ndarray) -> bool:
    while isinstance(a, np.ndarray):
        a = a.base
    return isinstance(a, _Mem)


def _to_device(h) -> "ndarray":
    h = np.asarray(h)
    d = _device_view(h.nbytes, h.dtype, h.shape)
    d[...] = h
    return ndarray(d)


def _unwrap(x, what="argument"):
    """Stand-in arrays -> their NumPy views; NumPy arrays are refused (as CuPy refuses them)."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray):
        raise TypeError(f"Unsupported type {type(x)} as {what}: a NumPy array where a CuPy array is expected")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, what) for v in x)
    return x


def _wrap(r, inputs=()):
    if isinstance(r, tuple):
        return tuple(_wrap(v, inputs) for v in r)
    if isinstance(r, np.ndarray):
        for w in inputs:
            if isinstance(w, ndarray) and r is w._a:
                return w  # NOTE: CuPy too returns the input itself (astype(copy=False), ascontiguousarray)
        return ndarray(r) if _on_device(r) else _to_device(r)
    if isinstance(r, np.generic):
        return _to_device(r)  # NOTE: CuPy reductions and indexing give 0-d arrays, not scalars
    return r


def _lift(fn, name=None):
    def f(*args, **kwargs):
        ins = [a for a in args if isinstance(a, ndarray)]
        return _wrap(fn(*_unwrap(args), **{k: _unwrap(v, k) for k, v in kwargs.items()}), ins)
    f.__name__ = name or fn.__name__
    return f


class _Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)

    def __enter__(self):
        if not 0 <= self.id < 1:
            raise RuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {self.id}")
        return self

    def __exit__(self, *exc):
        return False

    def use(self):
        return self.__enter__()

    def synchronize(self):
        pass

    def __eq__(self, other):
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self):
        return self.id

    def __repr__(self):
        return f"<CUDA Device {self.id} (emulated)>"


_DEVICE0 = _Device(0)


class ndarray:
    """Emulated device array (see the module docstring)."""

    __module__ = "cupy"  # NOTE: as CuPy's; gpugrad.backend.xp_of recognises CuPy arrays by it
    __slots__ = ("_a", "__weakref__")
    __array_priority__ = 100

    def __init__(self, a):
        if not isinstance(a, np.ndarray):
            raise TypeError("cudaemu: construct arrays with cupy.empty/zeros/asarray")
        self._a = a

    shape = property(lambda s: s._a.shape)
    dtype = property(lambda s: s._a.dtype)
    size = property(lambda s: s._a.size)
    ndim = property(lambda s: s._a.ndim)
    itemsize = property(lambda s: s._a.itemsize)
    nbytes = property(lambda s: s._a.nbytes)
    strides = property(lambda s: s._a.strides)
    flags = property(lambda s: s._a.flags)
    device = property(lambda s: _DEVICE0)
    T = property(lambda s: ndarray(s._a.T))
    data = property(lambda s: types.SimpleNamespace(ptr=s._a.__array_interface__["data"][0]))

    def get(self, stream=None, order="C", out=None):
        """A NumPy copy (the one explicit way to the host)."""
        return np.array(self._a, order=order)

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        ins = [a for a in inputs if isinstance(a, ndarray)]
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"], "out")
        return _wrap(getattr(ufunc, method)(*_unwrap(inputs, "ufunc operand"), **kwargs), ins)

    def __array_function__(self, func, types_, args, kwargs):
        impl = _FUNCTIONS.get(func.__name__)
        if impl is None:
            return NotImplemented  # NumPy then raises TypeError, as for a CuPy function it lacks
        return impl(*args, **kwargs)

    def __getitem__(self, idx):
        return _wrap(self._a[_unwrap(idx, "index")], [self])

    def __setitem__(self, idx, value):
        self._a[_unwrap(idx, "index")] = _unwrap(value, "value")

    def _scalar(self, conv):
        if self._a.size != 1:
            raise TypeError(f"only size-1 arrays can be converted to Python scalars (shape {self.shape})")
        return conv(self._a.reshape(()))

    def __int__(self):
        return self._scalar(int)

    def __float__(self):
        return self._scalar(float)

    def __complex__(self):
        return self._scalar(complex)

    def __bool__(self):
        return self._scalar(bool)

    def __index__(self):
        if self._a.ndim or not np.issubdtype(self.dtype, np.integer):
            raise TypeError("only integer scalar arrays can be converted to a scalar index")
        return int(self._a)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        return f"array({np.array2string(self._a, separator=', ')}, dtype={self.dtype}) [emulated device]"

    __hash__ = None

    def fill(self, v):
        self._a.fill(v)

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        return _wrap(self._a.astype(dtype, order=order, copy=copy), [self])

    def __reduce__(self):
        raise TypeError("cudaemu arrays are not picklable")


def _method(name):
    def m(self, *args, **kwargs):
        return _wrap(getattr(self._a, name)(*_unwrap(args), **{k: _unwrap(v, k) for k, v in kwargs.items()}), [self])
    m.__name__ = name
    return m


for _n in ("reshape", "sum", "prod", "max", "min", "mean", "var", "std", "any", "all", "argmax", "argmin", "ravel",
           "flatten", "copy", "transpose", "swapaxes", "squeeze", "view", "cumsum", "clip", "dot", "nonzero", "take",
           "repeat", "round", "conj", "item", "tolist"):
    setattr(ndarray, _n, _method(_n))


def _binop(fn, reflected=False):
    def op(self, other):
        if isinstance(other, np.ndarray) and not isinstance(other, ndarray):
            raise TypeError(f"Unsupported type {type(other)}: a NumPy array as operand of a CuPy array")
        a, b = (_unwrap(other), self._a) if reflected else (self._a, _unwrap(other))
        return _wrap(fn(a, b), [self])
    return op


def _inplace(fn):
    def op(self, other):
        if isinstance(other, np.ndarray) and not isinstance(other, ndarray):
            raise TypeError(f"Unsupported type {type(other)}: a NumPy array as operand of a CuPy array")
        fn(self._a, _unwrap(other), out=self._a)
        return self
    return op


for _n, _f in (("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("truediv", np.true_divide),
               ("floordiv", np.floor_divide), ("mod", np.remainder), ("pow", np.power), ("and", np.bitwise_and),
               ("or", np.bitwise_or), ("xor", np.bitwise_xor), ("matmul", np.matmul), ("lshift", np.left_shift),
               ("rshift", np.right_shift)):
    setattr(ndarray, f"__{_n}__", _binop(_f))
    setattr(ndarray, f"__r{_n}__", _binop(_f, reflected=True))
    if _n != "matmul":
        setattr(ndarray, f"__i{_n}__", _inplace(_f))
for _n, _f in (("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
               ("ge", np.greater_equal)):
    setattr(ndarray, f"__{_n}__", _binop(_f))
ndarray.__neg__ = lambda s: _wrap(-s._a)
ndarray.__pos__ = lambda s: _wrap(+s._a, [s])
ndarray.__abs__ = lambda s: _wrap(np.abs(s._a))
ndarray.__invert__ = lambda s: _wrap(~s._a)


# -- module-level array functions ----------------------------------------------------------------

def empty(shape, dtype=float, order="C"):
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    dt = np.dtype(dtype)
    return ndarray(_device_view(int(np.prod(shape, dtype=np.int64)) * dt.itemsize, dt, shape, garbage=True))


def empty_like(a, dtype=None, order="K", subok=None, shape=None):
    return empty(a.shape if shape is None else shape, a.dtype if dtype is None else dtype)


def asarray(a, dtype=None, order=None, *, blocking=False):
    """Host data (NumPy arrays, scalars, lists) is copied to the device; device arrays are kept."""
    if isinstance(a, ndarray):
        return a if dtype is None else a.astype(dtype, copy=False)
    return _to_device(np.asarray(a, dtype=dtype))


def array(a, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(a, ndarray):
        return _to_device(np.array(a._a, dtype=dtype, copy=True, order=order, ndmin=ndmin))
    return _to_device(np.array(a, dtype=dtype, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None):
    return a.get() if isinstance(a, ndarray) else np.asarray(a)


def get_array_module(*args):
    return sys.modules[__name__ + "_module"] if any(isinstance(a, ndarray) for a in args) else np


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):  # NOTE: CuPy's takes cupy.ndarray only (a typed Cython argument)
        raise TypeError(f"Argument 'a' has incorrect type (expected cupy.ndarray, got {type(a).__name__})")
    return _wrap(np.ascontiguousarray(a._a, dtype=dtype), [a])


_FUNCTIONS = {f.__name__: f for f in (empty, empty_like, asarray, array, asnumpy, ascontiguousarray)}
for _n in ("zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange", "linspace", "eye", "moveaxis",
           "swapaxes", "transpose", "reshape", "broadcast_to", "where", "concatenate", "stack", "expand_dims", "squeeze",
           "sum", "prod", "max", "min", "amax", "amin", "mean", "abs", "exp", "log", "log1p", "expm1", "sqrt", "maximum",
           "minimum", "isnan", "isinf", "isfinite", "isneginf", "isposinf", "clip", "logical_and", "logical_or",
           "logical_not", "sign", "negative", "add", "subtract", "multiply", "divide", "true_divide", "any", "all",
           "argmax", "argmin", "count_nonzero", "nonzero", "take", "ravel", "copy", "allclose", "array_equal",
           "tanh", "cumsum", "sort", "unique", "copyto", "atleast_1d", "result_type", "can_cast"):
    _FUNCTIONS[_n] = _lift(getattr(np, _n), _n)


# -- kernels -------------------------------------------------------------------------------------

class CompileException(Exception):
    """As cupy.cuda.compiler.CompileException: the (emulator) build of a RawModule failed."""


_modules = {}  # build dir -> loaded library (one dlopen per build)
_ENV = None


def _load(path):
    lib = _modules.get(path)
    if lib is None:
        lib = ctypes.CDLL(str(path / "module.so"))
        lib.cudaemu_name.restype = lib.cudaemu_signature.restype = ctypes.c_char_p
        lib.cudaemu_base.restype = ctypes.c_void_p
        lib.cudaemu_launch.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint),
                                       ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                                       ctypes.c_ulonglong, ctypes.c_char_p, ctypes.c_size_t]
        meta = json.loads((path / "meta.json").read_text())
        base = lib.cudaemu_base()
        regions = meta["shared"]
        ptrs = (ctypes.c_void_p * max(len(regions), 1))(*[base + off for off, _, _ in regions])
        sizes = (ctypes.c_size_t * max(len(regions), 1))(*[n for _, n, _ in regions])
        lib.cudaemu_set_shared(ptrs, sizes, len(regions))
        lib.meta = meta
        _modules[path] = lib
    return lib


class RawModule:
    """``cupy.RawModule(code=..., options=..., name_expressions=...)`` built for the emulator.

    As in CuPy, the source is compiled on the first ``get_function`` (errors then raise
    :class:`CompileException`); ``get_function`` takes one of the name expressions (or the plain
    name of an ``extern "C"`` kernel)."""

    def __init__(self, code=None, path=None, options=(), backend="nvrtc", translate_cucomplex=False, *,
                 enable_cooperative_groups=False, name_expressions=None, jitify=False):
        if code is None or path is not None:
            raise TypeError("cudaemu: RawModule needs code= (loading a cubin/ptx path is not emulated)")
        if backend != "nvrtc" or jitify or enable_cooperative_groups:
            raise TypeError("cudaemu: only the nvrtc backend without jitify/cooperative groups is emulated")
        self.code, self.options = code, tuple(options)
        self.name_expressions = list(name_expressions or ())
        self._lib = None

    def _library(self):
        if self._lib is None:
            try:
                self._lib = _load(build.build_module(self.code, self.options, self.name_expressions))
            except build.CompileError as e:
                raise CompileException(str(e)) from None
        return self._lib

    def get_function(self, name):
        lib = self._library()
        names = [lib.cudaemu_name(i).decode() for i in range(lib.cudaemu_count())]
        if name not in names:
            raise RuntimeError(f"CUDA_ERROR_NOT_FOUND: named symbol not found: {name!r} "
                               f"(not among the module's name expressions)")
        return RawKernel._from_module(lib, names.index(name), name)


class RawKernel:
    """A kernel of an emulator module; ``RawKernel(code, name)`` also works (extern "C" kernels)."""

    def __init__(self, code, name, options=(), backend="nvrtc", translate_cucomplex=False, *,
                 enable_cooperative_groups=False, jitify=False):
        k = RawModule(code=code, options=options, name_expressions=[name]).get_function(name)
        self.__dict__.update(k.__dict__)

    @classmethod
    def _from_module(cls, lib, index, name):
        self = cls.__new__(cls)
        self.lib, self.index, self.name = lib, index, name
        self.params = _parse_signature(lib.cudaemu_signature(index).decode())
        base = name.split("<", 1)[0].split("::")[-1]
        scanned = lib.meta["kernels"].get(base)
        if scanned is not None and len(scanned) == len(self.params):
            for p, (pname, restrict) in zip(self.params, scanned):
                p.update(name=pname, restrict=restrict)
        return self

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None, enable_cooperative_groups=False):
        g, b = _dims(grid, "grid"), _dims(block, "block")
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"kernel arguments must be a tuple or list, got {type(args).__name__}")
        bufs, ptrs, bounce = self._pack(args)
        err = ctypes.create_string_buffer(4096)
        policy, seed = _schedule
        launches.append((self.name, g, b, int(shared_mem), policy))
        rc = self.lib.cudaemu_launch(self.index, (ctypes.c_uint * 3)(*g), (ctypes.c_uint * 3)(*b), int(shared_mem),
                                     ptrs, SCHEDULES[policy], seed, err, len(err))
        for dev, tmp, written in bounce:
            if written:
                dev[...] = tmp
            elif not np.array_equal(dev.reshape(-1).view(np.uint8), tmp.reshape(-1).view(np.uint8)):
                raise ArgumentError(f"{self.name}: the kernel wrote through a pointer to const")
        if rc:
            raise EmulatorError(err.value.decode(errors="replace"))

    # NOTE: CuPy's packing rules (cupy/_core/_carray / cuda/function.pyx): a cupy.ndarray is passed
    # as its data pointer; a NumPy scalar of one of the types '?bhilqBHILQefdFD' (or a size-1
    # NumPy array) by value with its own itemsize; a Python int as int64, float as float64,
    # (bool is an int, so int64 too), complex as complex128; anything else is a TypeError. CuPy
    # never looks at the kernel's parameter types: a np.int32 for a `long long` parameter, a
    # Python float for a `float` one, or a float64 array for a `float*` silently pass the wrong
    # bytes. The checks below make each of those an error naming the argument.
    def _pack(self, args):
        if len(args) != len(self.params):
            raise ArgumentError(f"{self.name} takes {len(self.params)} arguments, got {len(args)}")
        bufs, bounce, ranges = [], [], []
        for i, (a, p) in enumerate(zip(args, self.params)):
            what = f"{self.name} argument {i} ({p['name']}: {p['decl']})"
            if isinstance(a, ndarray):
                if p["kind"] == "val":
                    raise ArgumentError(f"{what}: got an array; the kernel takes a value")
                if p["type"] != "?" and np.dtype(_NP_TYPES[p["type"]]) != a.dtype:
                    raise ArgumentError(f"{what}: got a {a.dtype} array")
                if not a.flags.c_contiguous:
                    raise ArgumentError(f"{what}: the array is not C-contiguous (the kernels index flat memory)")
                ptr = a._a.__array_interface__["data"][0]
                # NOTE: a copy of exactly the view's bytes at the same address modulo 16 (so the
                # kernels' alignment tests take the same path): ASan then catches any access
                # outside the view, not only outside the whole allocation.
                mem = _Mem(a.nbytes, ptr % 16)
                tmp = np.asarray(mem).view(a.dtype).reshape(a.shape)
                tmp[...] = a._a
                bounce.append((a._a, tmp, p["kind"] == "ptr"))
                ranges.append((ptr, ptr + a.nbytes, p, i))
                bufs.append(ctypes.c_void_p(mem.ptr))
                continue
            if a is None:
                raise ArgumentError(f"{what}: None (CuPy versions differ on what None means; pass loader.NULL)")
            v = _by_value(a, what)
            if p["kind"] != "val":
                if v.dtype.kind in "iu" and v.itemsize == 8 and int(v) == 0:
                    bufs.append(ctypes.c_void_p(0))  # a null pointer (loader.NULL)
                    continue
                raise ArgumentError(f"{what}: got {_desc(a, v)}; the kernel takes a pointer")
            want = np.dtype(_NP_TYPES.get(p["type"], "V%d" % p["size"]))
            if v.dtype != want:
                raise ArgumentError(f"{what}: got {_desc(a, v)}; CuPy passes {v.itemsize} bytes of "
                                    f"{v.dtype}, the kernel reads {p['size']} bytes of {want}")
            bufs.append(np.ascontiguousarray(v).copy())
        for x, (lo, hi, p, i) in enumerate(ranges):
            for lo2, hi2, p2, j in ranges[x + 1:]:
                if lo < hi2 and lo2 < hi and "ptr" in (p["kind"], p2["kind"]):
                    why = ("one is written and one is __restrict__" if p["restrict"] or p2["restrict"] else
                           "one is written (the emulator copies each argument, so it cannot run this)")
                    raise ArgumentError(f"{self.name}: arguments {i} ({p['name']}) and {j} ({p2['name']}) overlap, {why}")
        ptrs = (ctypes.c_void_p * max(len(bufs), 1))()
        for i, b in enumerate(bufs):
            ptrs[i] = ctypes.addressof(b) if isinstance(b, ctypes.c_void_p) else b.ctypes.data
        return bufs, ptrs, bounce


_NP_TYPES = {"f16": np.float16, "f32": np.float32, "f64": np.float64, "i8": np.int8, "i16": np.int16,
             "i32": np.int32, "i64": np.int64, "u8": np.uint8, "u16": np.uint16, "u32": np.uint32,
             "u64": np.uint64, "b8": np.bool_}
_C_NAMES = {"f16": "__half", "f32": "float", "f64": "double", "i8": "signed char", "i16": "short", "i32": "int",
            "i64": "long long", "u8": "unsigned char", "u16": "unsigned short", "u32": "unsigned int",
            "u64": "unsigned long long", "b8": "bool"}
_BY_VALUE = {np.dtype(c).type for c in "?bhilqBHILQefdFD"}
_C_NAMES["bf16"] = "__nv_bfloat16"
try:  # NOTE: CuPy's bfloat16 arrays have ml_dtypes' dtype, as NumPy's
    import ml_dtypes as _ml
    _NP_TYPES["bf16"] = _ml.bfloat16
except ImportError:
    pass


def _parse_signature(sig):
    out = []
    for s in filter(None, sig.split(";")):
        kind, t, size = s.split(":")
        c = _C_NAMES.get(t, f"<{size}-byte type>")
        decl = {"val": c, "ptr": c + "*", "cptr": f"const {c}*"}[kind]
        out.append({"kind": kind, "type": t, "size": int(size), "decl": decl, "name": "?", "restrict": False})
    return out


def _by_value(a, what):
    if type(a) in _BY_VALUE:
        return np.asarray(a)
    if isinstance(a, np.ndarray):
        if a.size == 1:
            return a.reshape(())
        raise ArgumentError(f"{what}: a NumPy array of shape {a.shape} (only size-1 NumPy arrays pass, by value)")
    if isinstance(a, int):
        return np.asarray(np.int64(a))      # NOTE: bool too (isinstance(True, int))
    if isinstance(a, float):
        return np.asarray(np.float64(a))
    if isinstance(a, complex):
        return np.asarray(np.complex128(a))
    raise ArgumentError(f"{what}: unsupported type {type(a).__name__}")


def _desc(a, v):
    return f"a Python {type(a).__name__}" if type(a) in (int, float, bool, complex) else f"a {v.dtype} value"


def _dims(d, what):
    if not isinstance(d, tuple):
        raise TypeError(f"{what} must be a tuple of 1 to 3 ints, got {type(d).__name__}")  # CuPy: typed tuple
    if not 1 <= len(d) <= 3 or any(not isinstance(v, (int, np.integer)) or v < 0 for v in d):
        raise ValueError(f"{what} must be 1 to 3 non-negative ints, got {d!r}")
    return tuple(int(v) for v in d) + (1,) * (3 - len(d))


class _Stream:
    """Streams: launches run synchronously, so every stream is the null stream."""

    ptr = 0

    def __init__(self, non_blocking=False, null=False):
        pass

    def synchronize(self):
        pass

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_Stream.null = _Stream(null=True)


# -- the module object ---------------------------------------------------------------------------

def _make_module():
    m = types.ModuleType("cupy", "cudaemu's NumPy-backed stand-in for CuPy (tests/cudaemu/standin.py)")
    for k, v in _FUNCTIONS.items():
        setattr(m, k, v)
    for k in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
              "uint64", "bool_", "complex64", "complex128", "dtype", "newaxis", "inf", "nan", "pi", "e", "intp",
              "integer", "floating", "issubdtype"):
        setattr(m, k, getattr(np, k))
    m.ndarray, m.RawModule, m.RawKernel, m.get_array_module = ndarray, RawModule, RawKernel, get_array_module
    m.__version__ = "0.0-cudaemu"
    cuda = types.ModuleType("cupy.cuda")
    cuda.Device = _Device
    cuda.runtime = types.ModuleType("cupy.cuda.runtime")
    cuda.runtime.getDeviceCount = lambda: 1
    cuda.runtime.getDeviceProperties = lambda i: {"name": b"cudaemu (CPU emulation)", "totalGlobalMem": 1 << 34,
                                                  "major": 8, "minor": 0, "multiProcessorCount": 1}
    cuda.runtime.runtimeGetVersion = lambda: 12000
    cuda.runtime.driverGetVersion = lambda: 12000
    cuda.compiler = types.ModuleType("cupy.cuda.compiler")
    cuda.compiler.CompileException = CompileException
    cuda.Stream = _Stream
    cuda.get_current_stream = lambda: _Stream.null
    m.cuda = cuda
    m.asnumpy = asnumpy
    m.cudaemu = sys.modules[__name__]
    return m


def install():
    """Make ``import cupy`` give the stand-in (call before gpugrad first asks for CuPy)."""
    m = sys.modules.get("cupy")
    if m is None or getattr(m, "cudaemu", None) is not sys.modules[__name__]:
        m = _make_module()
        sys.modules.update({"cupy": m, "cupy.cuda": m.cuda, "cupy.cuda.runtime": m.cuda.runtime,
                            "cupy.cuda.compiler": m.cuda.compiler})
        sys.modules[__name__ + "_module"] = m
    return m
