"""The Tensor: an array (numpy or cupy) plus the autograd bookkeeping, and the creation functions."""
from __future__ import annotations

import functools
import math
import numbers
import operator
import warnings as _warnings

import numpy as np

from ._dtypes import is_float as _isf
from . import _dtypes
from . import backend as _be
from .autograd import engine as _engine
from .autograd import primitive as _function
from .autograd import grad_mode as _grad_mode
from .autograd.grad_mode import state as _state

# -- dtypes (numpy dtype objects; PyTorch's names) ------------------------------------------------
# NOTE: the aliases float/int/bool/long/... are made in gpugrad/__init__.py, so that this module
# can use the builtins under their own names.
float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int8 = np.dtype("int8")
uint8 = np.dtype("uint8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")
bfloat16 = _dtypes.UNLOADED  # NOTE: ml_dtypes' dtype once loaded (gpugrad._dtypes: gg.bfloat16, or any import of ml_dtypes)
_DTYPES = {"float16": float16, "half": float16, "float32": float32, "float": float32, "float64": float64,
           "double": float64, "int8": int8, "uint8": uint8, "int16": int16, "int32": int32, "int64": int64,
           "long": int64, "bool": bool_}
_FLOATS = _dtypes.FLOATS


def _set_bf16(dt):
    global bfloat16
    bfloat16 = _DTYPES["bfloat16"] = dt


_dtypes.on_bf16(_set_bf16)
_default_dtype = float32


def as_dtype(dt):
    """Normalize a dtype given as gg/numpy dtype, string or Python type."""
    if dt is None:
        return None
    if isinstance(dt, str):
        try:
            name = dt.replace("torch.", "").replace("gpugrad.", "")
            return _DTYPES[name] if name != "bfloat16" else _dtypes.bfloat16()
        except KeyError:
            raise TypeError(f"unknown dtype {dt!r}; use one of {sorted(_DTYPES)}") from None
    if dt is float:
        return float64
    if dt is int:
        return int64
    if dt is bool:
        return bool_
    try:
        return np.dtype(dt)
    except TypeError:
        raise TypeError(f"unknown dtype {dt!r}") from None


is_floating = _dtypes.is_float


def get_default_dtype():
    return _default_dtype


def set_default_dtype(dt):
    global _default_dtype
    dt = as_dtype(dt)
    if not is_floating(dt):
        raise TypeError(f"the default dtype must be a floating point type, got {dt}")
    _default_dtype = dt


class Tensor:
    # NOTE: ``_data`` is the raw array (numpy or cupy); ``_ver`` is the storage's version counter, a
    # one-element list shared by every Tensor that views the same memory (bumped by in-place writes).
    # ``_ver`` = [version, graph rebases of views, has views]. ``_view`` = (root, recipe, rebases seen) for a
    # tensor made by a view op (its root owns the memory); None otherwise. ``_rg`` is requires_grad.
    __slots__ = ("_data", "_ver", "_rg", "_view", "_grad", "_node", "_hooks", "__weakref__")
    __array_priority__ = 1000
    __array_ufunc__ = None  # NOTE: makes `ndarray * Tensor` defer to Tensor.__rmul__ instead of object arrays

    def __init__(self, data, requires_grad=False):
        if type(data) is not np.ndarray and isinstance(data, np.generic):
            data = np.asarray(data)  # NOTE: numpy ufuncs return scalars for 0-d input; keep arrays
        self._data = data
        self._ver = [0, 0, 0]
        self._rg = requires_grad
        self._view = None
        self._grad = None
        self._node = None
        self._hooks = None

    # -- storage: .data, version counter --------------------------------------------------------------
    @property
    def data(self):
        """A Tensor over the same memory that does not require grad (PyTorch's ``.data``).

        NOTE: as in PyTorch it has a fresh version counter: writes through ``.data`` are invisible to
        autograd's checks (that is what ``.detach()`` is for)."""
        return Tensor(self._data)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"Tensor.data must be set to a Tensor, got {type(value).__name__}; "
                            "wrap arrays with gg.as_tensor(...) first")
        if type(value._data) is not type(self._data):
            raise RuntimeError(f"Tensor.data: cannot set a {self.device} tensor's data to a {value.device} tensor")
        self._data = value._data  # NOTE: the version counter stays (PyTorch's set_data keeps it too)

    @property
    def requires_grad(self):
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(bool(value))

    @property
    def grad(self):
        g = self._grad
        if g is None and self._node is not None and not self.retains_grad:
            _engine.warn_nonleaf_grad()
        return g

    @grad.setter
    def grad(self, value):
        if value is not None:
            _engine.check_grad_assign(self, value)
        self._grad = value

    @grad.deleter
    def grad(self):
        self._grad = None

    @property
    def _base(self):
        """The tensor whose memory this view shares (PyTorch's ``_base``), or None."""
        return None if self._view is None else self._view[0]

    def _is_view(self):
        return self._view is not None

    @property
    def _version(self):
        """How many in-place writes the storage has seen (shared by views), as PyTorch's ``_version``."""
        return self._ver[0]

    # -- attributes ---------------------------------------------------------------------------------
    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def device(self):
        return _be.device_of(self._data)

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    def size(self, dim=None):
        return self._data.shape if dim is None else self._data.shape[dim]

    def numel(self):
        return int(self._data.size)

    nelement = numel

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    @property
    def is_cuda(self):
        return type(self._data) is not np.ndarray

    @property
    def xp(self):
        return _be.xp_of(self._data)

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __hash__(self):
        return id(self)

    def __repr__(self):
        data = self._data if type(self._data) is np.ndarray else self._data.get()
        if data.dtype == bfloat16:
            data = data.astype(float32)  # NOTE: printed as its float32 values (ml_dtypes' repr shows 6 digits)
        body = np.array2string(data, separator=", ", prefix="tensor(", **_PRINT)
        extra = []
        if str(self.device) != "cpu":
            extra.append(f"device='{self.device}'")
        if self.dtype not in (float32, int64, bool_):
            extra.append(f"dtype={self.dtype}")
        if self._node is not None:
            extra.append(f"grad_fn={self._node!r}")
        elif self._rg:
            extra.append("requires_grad=True")
        return f"tensor({body}{', ' if extra else ''}{', '.join(extra)})"

    # -- conversion ---------------------------------------------------------------------------------
    def numpy(self):
        if self.requires_grad and _state.grad_enabled:
            raise RuntimeError("Can't call numpy() on a Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if type(self._data) is not np.ndarray:
            raise TypeError(f"can't convert a {self.device} tensor to numpy; use tensor.cpu() first")
        return self._data

    def __array__(self, dtype=None, copy=None):
        if type(self._data) is not np.ndarray:
            raise TypeError(f"can't convert a {self.device} tensor to numpy; use tensor.cpu() first")
        return self._data if dtype is None else self._data.astype(dtype)

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        """DLPack export (zero-copy; see gpugrad/utils/dlpack.py for read-only, strides and streams)."""
        return _dlpack_export(self._data, self._rg, stream, max_version, dl_device, copy)

    def __dlpack_device__(self):
        """(DLPack device type, device id): (1, 0) on the CPU, (2, N) on cuda:N."""
        return tuple(int(v) for v in self._data.__dlpack_device__())

    def item(self):
        if self._data.size != 1:
            # NOTE: PyTorch raises RuntimeError here, and ValueError from float()/int() (below)
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar "
                               f"(shape {tuple(self.shape)}); item() needs a one-element tensor")
        return self._data.reshape(()).item() if type(self._data) is np.ndarray else self._data.reshape(()).get().item()

    def _scalar(self):
        if self._data.size != 1:
            raise ValueError(f"only one element tensors can be converted to Python scalars (shape {tuple(self.shape)})")
        return self.item()

    def __float__(self):
        return float(self._scalar())

    def __int__(self):
        return int(self._scalar())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of a tensor with {self._data.size} elements is ambiguous")
        return bool(self.item())

    def __index__(self):
        if self.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def tolist(self):
        d = self._data if type(self._data) is np.ndarray else self._data.get()
        return d.tolist()

    def detach(self):
        t = Tensor(self._data)
        t._ver = self._ver  # NOTE: same memory, same version counter (in-place writes to either are seen)
        return t

    def detach_(self):
        if self._view is not None and self._rg:
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        self._node = None
        self._rg = False
        return self

    def requires_grad_(self, requires_grad=True):
        if requires_grad and not is_floating(self.dtype):
            raise RuntimeError(f"only floating point tensors can require gradients, got dtype {self.dtype}; "
                               "convert with .float() first")
        if self._node is not None:
            if not requires_grad:
                raise RuntimeError("you can only change requires_grad flags of leaf variables. If you want to use a "
                                   "computed variable in a subgraph that doesn't require differentiation use "
                                   "var_no_grad = var.detach().")
            return self
        self._rg = requires_grad
        return self

    def to(self, *args, dtype=None, device=None, copy=False):
        device, dtype = parse_to(args, device, dtype)
        out = self
        if device is not None:
            dev = _be.device(device)
            if dev != self.device:
                out = _function_apply_to(out, dev)
        if dtype is not None and as_dtype(dtype) != out.dtype:
            out = out.type(dtype)
        if copy and out is self:
            out = self.clone()
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else (f"cuda:{device}" if isinstance(device, int) else device))

    def type(self, dtype=None, non_blocking=False, **kwargs):
        """No argument: PyTorch's type string ('torch.FloatTensor', 'torch.cuda.LongTensor', ...). Else the
        tensor cast to ``dtype`` (itself if it has it already): a dtype, or a type string such as
        'torch.DoubleTensor' or 'torch.cuda.FloatTensor' (which also moves it to the CPU or to CUDA)."""
        if dtype is None:
            return f"torch.{'cuda.' if self.is_cuda else ''}{_tname(self.dtype)}Tensor"
        if isinstance(dtype, str) and dtype.startswith("torch.") and dtype.endswith("Tensor"):
            body = dtype[len("torch."):-len("Tensor")]
            on_cuda = body.startswith("cuda.")
            body = body[len("cuda."):] if on_cuda else body
            dts = [d for d in (float16, float32, float64, int8, uint8, int16, int32, int64, bool_) if _tname(d) == body]
            if not dts:
                raise ValueError(f"invalid type: {dtype!r}")
            out = self
            if on_cuda != self.is_cuda:
                out = self.to("cuda" if on_cuda else "cpu")
            return out.type(dts[0])
        dt = as_dtype(dtype)
        if dt == self.dtype:
            return self
        return _ew.Cast.apply(self, dtype=dt) if is_floating(dt) else _int_cast(self, dt)

    def float(self):
        return self.type(float32)

    def double(self):
        return self.type(float64)

    def half(self):
        return self.type(float16)

    def bfloat16(self):
        return self.type(_dtypes.bfloat16())

    def long(self):
        return self.type(int64)

    def int(self):
        return self.type(int32)

    def bool(self):
        return self.type(bool_)

    def clone(self):
        out = _sh.Alias.apply(self)
        out._data = self._data.copy()  # NOTE: a clone owns its memory (Alias alone would share it)
        return out

    # -- autograd -----------------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        engine = _engine
        g = engine._as_grad(gradient, self, create_graph, "the output")
        if inputs is not None:
            engine.backward_inputs([self], [g], inputs, retain_graph, create_graph)
            return
        engine.run([self], [g], retain_graph=retain_graph, create_graph=create_graph)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a replacement."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._node is not None:
            if self._node.hooks is None:
                self._node.hooks = []
            hooks = self._node.hooks
        else:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        # NOTE: before a retain_grad() hook: as in PyTorch, .grad is stored after all the tensor's other hooks ran
        at = len(hooks)
        while at and getattr(hooks[at - 1], "retains", None) is not None:
            at -= 1
        hooks.insert(at, hook)
        return _engine._Handle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(self)`` after backward() has accumulated this leaf's gradient into ``.grad``."""
        return _engine.register_post_accumulate_grad_hook(self, hook)

    def retain_grad(self):
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._node is None or self.retains_grad:
            return  # NOTE: a leaf keeps its .grad anyway; a second call adds nothing (PyTorch)

        def _keep(g, t=self):
            # NOTE: copied (the array g may also flow on to another tensor's .grad); accumulates like a leaf's
            g = Tensor(g._data.copy()) if not g.requires_grad else g
            t._grad = g if t._grad is None else t._grad + g
        _keep.retains = self
        self.register_hook(_keep)

    # -- indexed updates (out of place; the in-place forms below write them into self) ---------------
    def index_add(self, dim, index, source, *, alpha=1):
        _same_dtype(self, source, "index_add_(): self ({}) and source ({}) must have the same scalar type")
        src = source * alpha if alpha != 1 else source
        return _idx_add(self, src, _dim_index(self, dim, index, "index_add", negative=False))

    def index_fill(self, dim, index, value):
        mask = self.xp.zeros(self.shape, dtype=bool)
        mask[_dim_index(self, dim, index, "index_fill")] = True
        return self.masked_fill(Tensor(mask), value)

    def index_copy(self, dim, index, source):
        _same_dtype(self, source, "index_copy_(): self and source expected to have the same dtype, but got (self) {} "
                                  "and (source) {}")
        return _sh.IndexPut.apply(self, source, idx=_dim_index(self, dim, index, "index_copy", negative=False))

    def scatter_add(self, dim, index, src):
        _same_dtype(self, src, _SCATTER_DTYPE)
        idx, part = _scatter_index(self, dim, index, "scatter_add")
        return _idx_add(self, src[part], idx)

    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        if src is None and value is None:
            raise TypeError("scatter(): give src (a Tensor) or value (a number)")
        if not isinstance(src, Tensor):
            src, value = None, src if value is None else value
        _same_dtype(self, src, _SCATTER_DTYPE)
        idx, part = _scatter_index(self, dim, index, "scatter")
        if reduce == "add":
            return _idx_add(self, src[part] if src is not None else
                            full(index.shape, value, dtype=self.dtype, device=self.device), idx)
        if reduce is not None:
            raise NotImplementedError(f"scatter(reduce={reduce!r}) is not supported; use reduce='add' or "
                                      "scatter_reduce")
        v = src[part].type(self.dtype) if src is not None else Tensor(self.xp.asarray(value, dtype=self.dtype))
        return _sh.IndexPut.apply(self, v, idx=idx)

    def masked_scatter(self, mask, source):
        _same_dtype(self, source, "masked_scatter: expected self and source to have same dtypes but got {} and {}")
        m = mask._data if isinstance(mask, Tensor) else self.xp.asarray(mask)
        m = self.xp.broadcast_to(m, self.shape)
        k = int(m.sum())
        if k > source.numel():
            raise RuntimeError(f"masked_scatter: the mask selects {k} elements but source has only {source.numel()}")
        return _sh.IndexPut.apply(self, source.reshape(-1)[:k], idx=m)

    def contiguous(self, memory_format=None):
        if self._data.flags.c_contiguous:
            return self
        out = _sh.Alias.apply(self)
        out._data = _engine._copy(self._data)  # NOTE: a C-order copy, as PyTorch's (writes don't reach self)
        return out

    def is_contiguous(self, memory_format=None):
        return bool(self._data.flags.c_contiguous)


    def index_copy_(self, dim, index, source):
        return self._inplace(lambda t, s: t.index_copy(dim, index, s), source, keep=False, cast=False)

    def lerp(self, end, weight):
        return lerp(self, end, weight)

    def addcmul(self, tensor1, tensor2, *, value=1):
        return addcmul(self, tensor1, tensor2, value)

    def addcdiv(self, tensor1, tensor2, *, value=1):
        return addcdiv(self, tensor1, tensor2, value)

    # -- in-place ops (PyTorch's semantics: same Tensor and memory, version bumped, graph rebased) --------
    def _inplace(self, fn, *args, keep=True, cast=True, diff=True):
        """Store ``fn(self, *args)`` (an out-of-place Tensor function) into this tensor's memory.

        ``keep``: fn's backward reads self's old values, so under autograd they are copied first (as
        PyTorch saves ``original_self``); ``cast``: refuse what PyTorch's in-place ops refuse to cast
        (a float result into an integer tensor); ``diff=False``: an op autograd does not differentiate (the
        logical ops): as PyTorch, the memory is written and the version bumped but the graph is left as it was,
        so the gradient passes through as if the op had not happened, and a leaf may be written. Under no_grad
        (optimizers, init) nothing is recorded."""
        if diff and _state.grad_enabled and (self._rg or any(isinstance(a, Tensor) and a._rg for a in args) or
                                    self._view is not None and self._view[0]._rg):
            return self._inplace_graph(fn, args, keep, cast)
        _state.grad_enabled, prev = False, _state.grad_enabled
        try:
            r = fn(self, *args)
        finally:
            _state.grad_enabled = prev
        _check_result(self, r, cast)
        _write(self, Ellipsis, r._data)
        return self

    def _inplace_graph(self, fn, args, keep, cast):
        v = self._view
        _inplace_checks(self)
        if v is not None and self._ver[1] != v[2]:
            _refresh_view(self)  # NOTE: a stale view first takes its base's current graph
            v = self._view
        start = next(_function._seq)
        old = _snapshot(self, keep)
        if any(a is self for a in args):
            args = tuple(old if a is self else a for a in args)  # NOTE: x += x reads x's old identity
        r = fn(old, *args)
        _check_result(self, r, cast)
        if r.shape != self.shape:
            r = r.expand(self.shape)
        if r.dtype != self.dtype:
            r = r.type(self.dtype)
        if r._node is None and any(isinstance(a, Tensor) and a._rg for a in args):
            # NOTE: as PyTorch: an op that gives args no gradient (eq_, lt_, masked_fill_ of an int x, ...) still makes
            # the result require grad, with zero gradients
            r = _ew.Sampled.apply(*(a for a in (old, *args) if isinstance(a, Tensor) and a._rg), value=r._data)
        if r is old:
            r = _sh.Alias.apply(old)
        elif r._node is None or r._node.seq < start:
            r = _sh.Overwrite.apply(old, r)  # NOTE: a fresh node to rebase onto (copy_, fill_ of constants)
        if v is None:
            _write(self, Ellipsis, r._data)
            if r._node is not None:
                _rebase(self, r._node, old)
                node = r._node
                node.keep_output(self._data)  # NOTE: the node reads its output from our memory (r is freed)
                if node.save_output:  # NOTE: and a create_graph backward reads it as this Tensor (exp_, tan_)
                    node.out = __import__("weakref").ref(self)
                node.yver, node.outv = self._ver, self._ver[0]
            if self._ver[2]:
                _views_stale(self)
            return self
        root, chain = v[0], v[1]
        old_root = _snapshot(root, False)
        cs = _sh.CopySlices.apply(old_root, r, chain=chain)
        _write(self, Ellipsis, r._data)
        if cs._node is not None:
            _rebase(root, cs._node, old_root)
            _views_stale(root)
            fresh = _sh.view_of_tensor(root, chain)
            self._view = (root, chain, root._ver[1])
            _rebase(self, fresh._node, old)
        return self

    def __setitem__(self, idx, value):
        idx = _index(idx, self._data)
        val = value if isinstance(value, Tensor) else _wrap(value, self)
        if not (_state.grad_enabled and (self._rg or val._rg or self._view is not None and self._view[0]._rg)):
            if type(val._data) is not type(self._data):
                raise RuntimeError(f"index assignment: the value is on {val.device}, the tensor on {self.device}; "
                                   "move it with .to(device) first")
            _write(self, idx, val._data)
        elif _sh._is_basic(idx if isinstance(idx, tuple) else (idx,)):
            self[idx].copy_(val)  # NOTE: as PyTorch: a basic-index assignment is copy_ into the view
        else:
            self._inplace(lambda t, v: _sh.IndexPut.apply(t, v.type(t.dtype), idx=idx), val, keep=False, cast=False)

    def copy_(self, src, non_blocking=False):
        if not isinstance(src, Tensor):
            if not isinstance(src, (np.ndarray, list, tuple, numbers.Number)) and not type(src).__module__.startswith("cupy"):
                raise TypeError(f"copy_(): argument 'src' must be Tensor, not {type(src).__name__}")
            src = _wrap(src, self)  # NOTE: an extension: PyTorch takes only Tensors here
        if src.device != self.device:
            src = src.to(self.device)
        _broadcast_into(self, src.shape, "copy_")
        return self._inplace(lambda t, s: _sh.Overwrite.apply(t, s.type(t.dtype)), src, keep=False, cast=False)

    def fill_(self, value):
        if isinstance(value, Tensor):
            if value.ndim:
                raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                                   f"{value.ndim} dimensions.")
            return self.copy_(value)
        value = _int_scalar(value, self._data.dtype)
        if _state.grad_enabled and self._rg:
            return self.copy_(Tensor(self.xp.asarray(value, dtype=self.dtype)))
        _write(self, Ellipsis, value, overlap_ok=True)  # NOTE: PyTorch fills expanded tensors too
        return self

    def zero_(self):
        return self.fill_(0)

    def add_(self, other, *, alpha=1):
        if alpha != 1:
            return self._inplace(lambda t, o: t + o * alpha, other, keep=False)
        return self._inplace(_op_add, other, keep=False)

    def sub_(self, other, *, alpha=1):
        if not (type(alpha) is int and alpha == 1):  # NOTE: alpha=True too: torch.sub's checks (bool alpha, bool o)
            return self._inplace(lambda t, o: _math.sub(t, o, alpha=alpha), other, keep=False)
        return self._inplace(_op_sub, other, keep=False)

    def mul_(self, other):
        return self._inplace(_op_mul, other, keep=isinstance(other, Tensor) and other._rg)

    def div_(self, other, *, rounding_mode=None):
        if rounding_mode is not None:
            return self._inplace(lambda t, o: t.div(o, rounding_mode=rounding_mode), other)
        return self._inplace(_op_div, other, keep=isinstance(other, Tensor) and other._rg)

    def pow_(self, exponent):
        return self._inplace(_op_pow, exponent)

    def clamp_(self, min=None, max=None):  # noqa: A002
        return self._inplace(lambda t, lo, hi: t.clamp(lo, hi), min, max)

    clip_ = clamp_

    def clamp_min_(self, min):  # noqa: A002
        return self.clamp_(min=min)

    def clamp_max_(self, max):  # noqa: A002
        return self.clamp_(max=max)

    def masked_fill_(self, mask, value):
        if isinstance(value, Tensor) and value.ndim:
            raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.ndim} dimension(s).")
        if isinstance(mask, Tensor):
            _check_broadcast(self.shape, mask.shape)  # NOTE: PyTorch's in-place message names self first
        return self._inplace(lambda t, v: t.masked_fill(mask, v), value, keep=False)

    def lerp_(self, end, weight):
        return self._inplace(lerp, end, weight, keep=False)

    def addcmul_(self, tensor1, tensor2, *, value=1):
        return self._inplace(addcmul, tensor1, tensor2, value, keep=False)

    def addcdiv_(self, tensor1, tensor2, *, value=1):
        return self._inplace(addcdiv, tensor1, tensor2, value, keep=False)

    def index_add_(self, dim, index, source, *, alpha=1):
        return self._inplace(lambda t, s: t.index_add(dim, index, s, alpha=alpha), source, keep=False)

    def index_fill_(self, dim, index, value):
        return self._inplace(lambda t, v: t.index_fill(dim, index, v), value, keep=False)

    def scatter_(self, dim, index, src=None, *, value=None, reduce=None):
        return self._inplace(lambda t, s: t.scatter(dim, index, s, value=value, reduce=reduce), src,
                             keep=reduce == "multiply")

    def scatter_add_(self, dim, index, src):
        return self._inplace(lambda t, s: t.scatter_add(dim, index, s), src, keep=False)

    def masked_scatter_(self, mask, source):
        return self._inplace(lambda t, s: t.masked_scatter(mask, s), source, keep=False)

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        from . import randn  # noqa: PLC0415
        r = randn(self.shape, dtype=self.dtype, device=self.device, generator=generator)
        return self.copy_(r * std + mean if (std, mean) != (1.0, 0.0) else r)

    def uniform_(self, from_=0.0, to=1.0, *, generator=None, **kw):
        from . import rand  # noqa: PLC0415
        from_ = kw.pop("from", from_)
        if kw:
            raise TypeError(f"uniform_() got unexpected keyword arguments {sorted(kw)}")
        r = rand(self.shape, dtype=self.dtype, device=self.device, generator=generator)
        return self.copy_(r * (to - from_) + from_)

    def exp_(self):
        return self._inplace(Tensor.exp, keep=False)

    def log_(self):
        return self._inplace(Tensor.log)

    def sqrt_(self):
        return self._inplace(Tensor.sqrt, keep=False)

    def abs_(self):
        return self._inplace(Tensor.abs)

    def neg_(self):
        return self._inplace(Tensor.neg, keep=False)

    def relu_(self):
        return self._inplace(Tensor.relu, keep=False)

    def sigmoid_(self):
        return self._inplace(Tensor.sigmoid, keep=False)

    def tanh_(self):
        return self._inplace(Tensor.tanh, keep=False)

    def sin_(self):
        return self._inplace(Tensor.sin)

    def cos_(self):
        return self._inplace(Tensor.cos)

    def square_(self):
        return self._inplace(Tensor.square)

    # augmented assignment: in place, as in PyTorch (``y = x; x += 1`` changes y too)
    def __iadd__(self, o):
        return self.add_(o)

    def __isub__(self, o):
        return self.sub_(o)

    def __imul__(self, o):
        return self.mul_(o)

    def __itruediv__(self, o):
        return self.div_(o)

    def __ifloordiv__(self, o):
        return self._inplace(_op_floordiv, o)

    def __imod__(self, o):
        return self._inplace(_op_mod, o)

    def __ipow__(self, o):
        return self.pow_(o)

    def __iand__(self, o):
        return self._inplace(_op_and, o)

    def __ior__(self, o):
        return self._inplace(_op_or, o)

    def __ixor__(self, o):
        return self._inplace(_op_xor, o)

    def __ilshift__(self, o):
        return self._inplace(_op_lshift, o)

    def __irshift__(self, o):
        return self._inplace(_op_rshift, o)

    def __imatmul__(self, o):
        raise RuntimeError("In-place matmul is not supported. Use 'a = a @ b' instead of 'a @= b'.")

    # -- arithmetic ---------------------------------------------------------------------------------
    def __add__(self, o):
        return _binary(_ew.Add, self, o)

    def __radd__(self, o):
        return _binary(_ew.Add, o, self)

    def __sub__(self, o):
        return _binary(_ew.Sub, self, o)

    def __rsub__(self, o):
        return _binary(_ew.Sub, o, self)

    def __mul__(self, o):
        return _binary(_ew.Mul, self, o)

    def __rmul__(self, o):
        return _binary(_ew.Mul, o, self)

    def __truediv__(self, o):
        return _binary(_ew.Div, self, o, true_div=True)

    def __rtruediv__(self, o):
        return _binary(_ew.Div, o, self, true_div=True)

    def __pow__(self, o):
        if isinstance(o, np.generic) and not isinstance(o, np.bool_):
            o = o.item()  # NOTE: a NumPy scalar is a Python number (as in + - *): float32 ** np.int64(2) is float32
        if isinstance(o, numbers.Number) and not isinstance(o, bool):
            return _ew.PowScalar.apply(_pow_operand(self, o), p=o)
        return _binary(_ew.Pow, self, o)

    def __rpow__(self, o):
        if isinstance(o, np.generic) and not isinstance(o, np.bool_):
            o = o.item()
        if isinstance(o, numbers.Number) and not isinstance(o, bool):
            return _ew.RPowScalar.apply(_pow_operand(self, o), c=o)
        return _binary(_ew.Pow, o, self)

    def __matmul__(self, o):
        return matmul(self, o)

    def __rmatmul__(self, o):
        return matmul(_wrap(o, self), self)

    def __neg__(self):
        return _ew.Neg.apply(self)

    def __pos__(self):
        if self._data.dtype == bool_:
            raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
        return self

    def __abs__(self):
        return _ew.Abs.apply(self)

    # -- formatting, rounding, floor/trunc division, remainder, closeness, inference (PyTorch's rules) --
    def __format__(self, format_spec):
        # NOTE: as PyTorch: a 0-d Tensor formats as its Python number (f"{loss:.4f}"; "" too); any other
        # tensor only with an empty spec (str(t)), else TypeError
        if self._data.ndim == 0 and type(self) is Tensor:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

    def __round__(self, ndigits=None):
        raise TypeError("type Tensor doesn't define __round__ method (neither does PyTorch's): use "
                        "t.round(decimals=n) for a Tensor or round(t.item(), n) for a Python number")

    def _rounded(self, op, decimals=None):
        k = self._data.dtype.kind
        if k == "b":
            raise NotImplementedError(f"{op}: not implemented for {self.dtype} tensors")
        if k != "f":
            if decimals is not None:  # NOTE: as PyTorch: round(int) is a copy, round(int, decimals=0) refused
                raise NotImplementedError(f"\"round_vml_cpu\" not implemented for '{_promo.short_name(self.dtype)}'")
            return Tensor(self._data.copy())  # NOTE: integers: a copy, as PyTorch (array-API convention)
        return _ew.Round.apply(self, op=op, decimals=int(decimals or 0))

    def round(self, *, decimals=None):
        """Round half to even (``decimals`` places; negative: left of the point). Gradient zero."""
        return self._rounded("round", decimals)

    def floor(self):
        return self._rounded("floor")

    def ceil(self):
        return self._rounded("ceil")

    def trunc(self):
        return self._rounded("trunc")

    fix = trunc

    def frac(self):
        """x - trunc(x) (sign of x); gradient 1."""
        if not is_floating(self.dtype):
            raise NotImplementedError(f"frac: not implemented for {self.dtype} tensors")
        return self - self.trunc()

    def __floordiv__(self, o):
        return _binary(_ew.Bind(_ew.DivRound, "floor_divide", mode="floor", name="floor_divide"), self, o)

    def __rfloordiv__(self, o):
        return _binary(_ew.Bind(_ew.DivRound, "floor_divide", mode="floor", name="floor_divide"), o, self)

    def __mod__(self, o):
        return _binary(_ew.Bind(_ew.Remainder, "remainder", mode="remainder"), self, o)

    def __rmod__(self, o):
        return _binary(_ew.Bind(_ew.Remainder, "remainder", mode="remainder", rscalar=True), o, self)

    def div(self, other, *, rounding_mode=None):
        """True division, or rounded with ``rounding_mode`` 'trunc' / 'floor' (then the gradient is zero)."""
        if rounding_mode is None:
            return self / other
        if rounding_mode not in ("trunc", "floor"):
            raise RuntimeError("div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                               f"'{rounding_mode}'")
        return _binary(_ew.Bind(_ew.DivRound, "div", mode=rounding_mode), self, other)

    divide = div

    def true_divide(self, other):
        return self / other

    def floor_divide(self, other):
        return self // other

    def remainder(self, other):
        """Python's modulus (the sign of ``other``); gradient 1 for self, -floor(self / other) for other."""
        return self % other

    def fmod(self, other):
        """C's fmod (the sign of self); gradient 1 for self, -trunc(self / other) for other."""
        return _binary(_ew.Bind(_ew.Remainder, "fmod", mode="fmod"), self, other)

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """|self - other| <= atol + rtol * |other| elementwise (non-finite values: close iff equal), as a
        bool Tensor; PyTorch's algorithm and checks (same dtype, broadcastable shapes, tolerances >= 0)."""
        if not isinstance(other, Tensor):
            raise TypeError(f"isclose(): argument 'other' (position 2) must be Tensor, not {type(other).__name__}")
        if self.dtype != other.dtype:
            raise RuntimeError(f"{_tname(self.dtype)} did not match {_tname(other.dtype)}")
        if rtol < 0:
            raise RuntimeError(f"rtol must be greater than or equal to zero, but got {rtol}")
        if atol < 0:
            raise RuntimeError(f"atol must be greater than or equal to zero, but got {atol}")
        _check_same_device(self, other, "isclose")
        a, b = self._data, other._data
        sa, sb = a.shape, b.shape
        for i in range(1, min(len(sa), len(sb)) + 1):
            if sa[-i] != sb[-i] and 1 not in (sa[-i], sb[-i]):
                raise RuntimeError(f"The size of tensor a ({sa[-i]}) must match the size of tensor b ({sb[-i]}) "
                                   f"at non-singleton dimension {max(len(sa), len(sb)) - i}")
        xp = self.xp
        close = a == b
        if equal_nan and a.dtype in _FLOATS:
            close |= xp.isnan(a) & xp.isnan(b)
        if rtol == 0 and atol == 0:
            return Tensor(close)
        if a.dtype not in _FLOATS:
            a, b = a.astype(_default_dtype), b.astype(_default_dtype)  # NOTE: integers compare in the default float
        with np.errstate(all="ignore"):
            allowed = atol + xp.abs(rtol * b)
            actual = xp.abs(a - b)
            close |= xp.isfinite(actual) & (actual <= allowed)
        return Tensor(close)

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """``isclose(...).all()`` as a Python bool."""
        if not isinstance(other, Tensor):
            raise TypeError(f"allclose(): argument 'other' (position 2) must be Tensor, not {type(other).__name__}")
        return bool(self.isclose(other, rtol, atol, equal_nan)._data.all())

    def equal(self, other):
        """True iff both tensors have the same shape and the same values (dtypes may differ; nan != nan)."""
        if not isinstance(other, Tensor):
            raise TypeError(f"equal(): argument 'other' (position 2) must be Tensor, not {type(other).__name__}")
        _check_same_device(self, other, "equal")
        return self.shape == other.shape and bool(self.xp.array_equal(self._data, other._data))

    def is_inference(self):
        """Whether this tensor was made inside ``gg.inference_mode()``."""
        from .autograd.grad_mode import is_inference_tensor  # noqa: PLC0415
        return is_inference_tensor(self)

    # -- comparisons (no gradient) -------------------------------------------------------------------
    def _cmp(self, o, op):
        a, dt, both = self._data, None, False
        if isinstance(o, Tensor):
            _check_same_device(self, o, op.__name__)
            od, both = o._data, True
            if od.dtype != a.dtype:  # NOTE: compared in the promoted dtype, as PyTorch (float16 [0.1] == 0-d 0.1)
                dt = _result_type(self, o)
        else:
            od = o
            if a.dtype not in _FLOATS and isinstance(o, numbers.Number):
                dt = _result_type(self, o)  # NOTE: an int tensor against a float is compared in the default float
        return Tensor(_cmp_arrays(a, od, op, dt, both))

    def __lt__(self, o):
        return self._cmp(o, _op_lt)

    def __le__(self, o):
        return self._cmp(o, _op_le)

    def __gt__(self, o):
        return self._cmp(o, _op_gt)

    def __ge__(self, o):
        return self._cmp(o, _op_ge)

    def __eq__(self, o):
        return self._cmp(o, _op_eq)

    def __ne__(self, o):
        return self._cmp(o, _op_ne)

    def __invert__(self):
        if _dtypes.is_float(self._data.dtype):
            raise TypeError("~ (operator.invert) is only implemented on integer and Boolean-type tensors")
        return _math.bitwise_not(self)

    # NOTE: the bitwise operators are the bitwise_* functions (PyTorch's dtype checks, shift semantics, and
    # broadcast errors); the reflected forms put the Python number on the left (2 << t)
    def __and__(self, o):
        return _math.bitwise_and(self, o)

    def __or__(self, o):
        return _math.bitwise_or(self, o)

    def __xor__(self, o):
        return _math.bitwise_xor(self, o)

    def __lshift__(self, o):
        return _math.bitwise_left_shift(self, o)

    def __rshift__(self, o):
        return _math.bitwise_right_shift(self, o)

    def __rand__(self, o):
        return _math.bitwise_and(o, self)

    def __ror__(self, o):
        return _math.bitwise_or(o, self)

    def __rxor__(self, o):
        return _math.bitwise_xor(o, self)

    def __rlshift__(self, o):
        return _math.bitwise_left_shift(o, self)

    def __rrshift__(self, o):
        return _math.bitwise_right_shift(o, self)

    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    @_function.recorded
    def isnan(self):
        return Tensor(self.xp.isnan(self._data))

    @_function.recorded
    def isfinite(self):
        return Tensor(self.xp.isfinite(self._data))

    def all(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _sc.any_all(self, dim, keepdim, axis, keepdims, "all")

    def any(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _sc.any_all(self, dim, keepdim, axis, keepdims, "any")

    def argmax(self, dim=None, keepdim=False):
        return _argext(self, dim, keepdim, "argmax")

    def argmin(self, dim=None, keepdim=False):
        return _argext(self, dim, keepdim, "argmin")

    def sign(self):
        return self.sgn()  # NOTE: the same for real tensors: sign(nan) = 0 and a zero gradient, as PyTorch

    # -- unary math -----------------------------------------------------------------------------------
    def exp(self):
        return _ew.Exp.apply(_floatify(self))

    def log(self):
        return _ew.Log.apply(_floatify(self))

    def log1p(self):
        return _ew.Log1p.apply(_floatify(self))

    def sqrt(self):
        return _ew.Sqrt.apply(_floatify(self))

    def rsqrt(self):
        return 1 / self.sqrt()

    def sin(self):
        return _ew.Sin.apply(_floatify(self))

    def cos(self):
        return _ew.Cos.apply(_floatify(self))

    # NOTE: tanh/sigmoid/relu are the fused activations (gpugrad/ops/activation.py), called directly
    def tanh(self):
        return _act._TANH.apply(self if self._data.dtype in _FLOATS else _floatify(self))

    def sigmoid(self):
        return _act._SIGMOID.apply(self if self._data.dtype in _FLOATS else _floatify(self))

    def relu(self):
        return _act.relu(self)

    def abs(self):
        return _ew.Abs.apply(self)

    def square(self):
        return _ew.PowScalar.apply(self, p=2)

    def pow(self, exponent):
        return self ** exponent

    def neg(self):
        return -self

    def clamp(self, min=None, max=None):  # noqa: A002
        """torch.clamp: bounds are numbers or Tensors (broadcast); the dtype is result_type(self, min, max)
        (an int tensor clamped at a float bound becomes the default float)."""
        if min is None and max is None:
            raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
        tb = [b for b in (min, max) if isinstance(b, Tensor)]
        if len(tb) == 1 and min is not None and max is not None and (tb[0].ndim or tb[0]._rg):
            # NOTE: as PyTorch's overloads: both bounds Tensors or both Numbers (a 0-d Tensor that does not
            # require grad passes as a Number)
            raise TypeError("clamp() received an invalid combination of arguments - got (Tensor, min="
                            f"{type(min).__name__}, max={type(max).__name__}), but expected one of: (Tensor input, "
                            "Tensor min, Tensor max) or (Tensor input, Number min, Number max)")
        if tb:
            _check_broadcast_all(self.shape, *(b.shape for b in tb))
        dt = _result_type(self, *(b for b in (min, max) if b is not None))
        x = self.type(dt)
        if not (isinstance(min, Tensor) or isinstance(max, Tensor)):
            return _ew.Clamp.apply(x, min=min, max=max)
        # NOTE: as PyTorch's clamp_backward: x gets the gradient where min <= x <= max (ties included), a
        # bound where it is the result (max wins when min > max); a NaN bound gives NaN
        out = x
        for bound, pick in ((min, _op_lt), (max, _op_gt)):
            if bound is not None:
                bd = bound.type(dt) if isinstance(bound, Tensor) else bound
                out = where(_beyond(out, bd, pick), bd, out)
        if x.requires_grad and is_floating(dt):
            # NOTE: PyTorch's mask is min <= x <= max, false at a NaN x: no gradient there (the wheres passed it)
            nan = x.xp.isnan(x._data)
            if nan.any():
                out = where(Tensor(nan), x.detach(), out)
        return out

    clip = clamp

    def maximum(self, other):
        return maximum(self, other)

    def minimum(self, other):
        return minimum(self, other)

    def where(self, condition, other):
        return where(condition, self, other)

    def masked_fill(self, mask, value):
        if isinstance(value, Tensor) and value.ndim:
            raise RuntimeError(f"masked_fill only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.ndim} dimension(s).")
        v = _wrap(value, self)
        return where(mask, v if v.dtype == self.dtype else v.type(self.dtype), self)  # NOTE: keeps self's dtype

    # -- reductions -------------------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None):
        dim = axis if dim is None else dim
        keepdim = keepdims if keepdims is not None else keepdim
        x = _reduction_input(self, dtype)
        if not is_floating(x.dtype):  # NOTE: integers and bools: an int64 sum (or dtype=), no graph
            return _int_sum(x, _rd.norm(dim, x.ndim), keepdim)
        return _rd.Sum.apply(x, axes=_rd.norm(dim, x.ndim), keepdim=keepdim)

    def mean(self, dim=None, keepdim=False, dtype=None):
        if dtype is not None and not is_floating(as_dtype(dtype)):
            raise RuntimeError("mean(): could not infer output dtype. Optional dtype must be either a floating point "
                               f"or complex dtype. Got: {_promo.short_name(as_dtype(dtype))}")
        if dtype is None and not is_floating(self.dtype):
            raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a floating point or "
                               f"complex dtype. Got: {_promo.short_name(self.dtype)}")
        x = self if dtype is None else self.type(dtype)
        axes = _rd.norm(dim, x.ndim)
        n = 1
        for a in axes:
            n *= x.shape[a]
        # NOTE: the mean of an empty selection is nan, as in PyTorch
        return x.sum(axes, keepdim) / n if n else x.sum(axes, keepdim) * float("nan")

    def max(self, dim=None, keepdim=False, *, other=None):
        return _maxmin(self, other if other is not None else dim, keepdim, "max")

    def min(self, dim=None, keepdim=False, *, other=None):
        return _maxmin(self, other if other is not None else dim, keepdim, "min")

    def amax(self, dim=None, keepdim=False):
        return _extreme(self, dim, keepdim, "max")

    def amin(self, dim=None, keepdim=False):
        return _extreme(self, dim, keepdim, "min")

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return _variance(self, dim, unbiased, keepdim, correction, "var")

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        if isinstance(dim, bool):
            dim, unbiased = None, dim
        v = _variance(self, dim, unbiased, keepdim, correction, "std")
        if v._rg:
            z = v.xp.equal(v._data, 0)
            if bool(z.any()):
                # NOTE: PyTorch's std_backward is 0 where std == 0 (not sqrt'(0) * 0 = NaN): sqrt of 1 there, and the
                # where's backward gives the branch not taken zeros
                zt = Tensor(z)
                return where(zt, v.detach(), where(zt, 1.0, v).sqrt())
        return v.sqrt()

    def logsumexp(self, dim, keepdim=False):
        return _sm.logsumexp(self, dim, keepdim)

    def softmax(self, dim, dtype=None):
        return _sm.softmax(self, dim, dtype=dtype)

    def log_softmax(self, dim, dtype=None):
        return _sm.log_softmax(self, dim, dtype=dtype)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """Vector p-norm over ``dim`` (all elements by default), as torch.norm: p is 'fro' (the 2-norm), a
        real number, inf or -inf; 0 counts the non-zeros. The gradient is 0 where the norm is 0 (PyTorch's)."""
        from .ops import norm as _nm  # noqa: PLC0415
        if isinstance(p, str):
            if p != "fro":
                raise NotImplementedError(f"norm: p={p!r} (a matrix norm) is not supported; use 'fro' or a number")
            p = 2
        n = _promo.short_name
        if dtype is not None and not is_floating(as_dtype(dtype)):
            raise RuntimeError(f"linalg.vector_norm: dtype should be floating point or complex, but got "
                               f"{n(as_dtype(dtype))}")
        if not is_floating(self.dtype):
            raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. "
                               f"Got {n(self.dtype)}")
        x = self
        if dtype is not None:
            dt = as_dtype(dtype)
            if _promo.promote_types(self.dtype, dt) != dt:
                raise RuntimeError(f"linalg.vector_norm: the dtype of the input ({n(self.dtype)}) should be "
                                   f"convertible without narrowing to the specified dtype ({n(dt)})")
            x = self.type(dt)
        if p == 1:
            return x.abs().sum(dim, keepdim)
        if p == 0:
            # NOTE: the count of non-zeros has no useful gradient (zero almost everywhere), as in PyTorch
            return (x != 0).type(x.dtype).sum(dim, keepdim)
        return _nm.Norm.apply(x, p=float(p), axes=_rd.norm(dim, x.ndim), keepdim=bool(keepdim))

    # -- shape ------------------------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = _shape_arg(shape)
        if shape == self._data.shape:
            return self
        try:
            target = np.empty(self._data.shape, dtype=np.bool_).reshape(shape).shape if -1 in shape else shape
        except ValueError:
            target = None
        if target is None or int(np.prod(target)) != self._data.size:
            raise RuntimeError(f"shape {list(shape)} is invalid for input of size {self._data.size} (shape {tuple(self.shape)})")
        target = tuple(target)
        return _mkview(_sh.Reshape.apply(self, shape=target), self, "reshape", target)

    def view(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int, np.integer)):
            raise NotImplementedError(f"view(dtype) (reinterpreting the bits as {shape[0]}) is not supported; "
                                      "use .to(dtype) to convert the values")
        out = self.reshape(*shape)
        if out is not self and out._view is None and out._data.size > 1:
            raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one "
                               "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
        return out

    def view_as(self, other):
        return self.reshape(other.shape)

    reshape_as = view_as

    def flatten(self, start_dim=0, end_dim=-1):
        nd = self.ndim
        if nd == 0:
            return self.reshape(1)
        s, e = start_dim % nd, end_dim % nd
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shp = self.shape
        return self.reshape(shp[:s] + (int(np.prod(shp[s:e + 1])),) + shp[e + 1:])

    def unflatten(self, dim, sizes):
        d = dim % self.ndim
        return self.reshape(self.shape[:d] + tuple(sizes) + self.shape[d + 1:])

    def permute(self, *dims):
        dims = _shape_arg(dims)
        nd = self.ndim
        if sorted(d % nd for d in dims) != list(range(nd)) or len(dims) != nd:
            raise ValueError(f"permute: dims {list(dims)} are not a permutation of {nd} dimensions")
        dims = tuple(d % nd for d in dims)
        if dims == tuple(range(nd)):
            return self
        return _mkview(_sh.Permute.apply(self, dims=dims), self, "permute", dims)

    def transpose(self, dim0, dim1):
        nd = self.ndim
        if nd < 2 and dim0 in (0, -1) and dim1 in (0, -1):
            return self
        p = list(range(nd))
        a, b = _one(dim0, nd), _one(dim1, nd)
        p[a], p[b] = p[b], p[a]
        return self.permute(p)

    swapaxes = swapdims = transpose

    @property
    def T(self):  # noqa: N802
        return self.permute(tuple(range(self.ndim))[::-1]) if self.ndim >= 2 else self

    @property
    def mT(self):  # noqa: N802
        return self.transpose(-2, -1)

    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self.T

    def squeeze(self, dim=None):
        if dim is None:
            shp = tuple(s for s in self.shape if s != 1)
        else:
            dims = _norm_dim(dim, self.ndim)  # NOTE: squeeze(dim=()) squeezes nothing, as PyTorch
            shp = tuple(s for i, s in enumerate(self.shape) if not (i in dims and s == 1))
        return self.reshape(shp)

    def unsqueeze(self, dim):
        nd = self.ndim + 1
        if not -nd <= dim < nd:
            raise IndexError(f"unsqueeze: dim {dim} out of range for a result with {nd} dimensions")
        d = dim % nd
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def expand(self, *sizes):
        sizes = _shape_arg(sizes)
        shp = self.shape
        if len(sizes) < len(shp):
            raise RuntimeError(f"expand: the number of sizes ({len(sizes)}) must be >= the tensor's dims ({len(shp)})")
        lead = len(sizes) - len(shp)
        if any(s == -1 for s in sizes[:lead]):
            raise RuntimeError(f"expand: the size -1 is not allowed in a new leading dimension (sizes {sizes})")
        full = tuple(s if s != -1 else shp[i - lead] for i, s in enumerate(sizes))
        for i, s in enumerate(shp):
            if s != 1 and s != full[i + lead]:
                raise RuntimeError(f"expand: the size {s} of dim {i} must match {full[i + lead]} or be 1 "
                                   f"(tensor shape {tuple(shp)}, target {full})")
        if full == shp:
            return self
        return _mkview(_sh.Expand.apply(self, shape=full), self, "expand", full)

    def expand_as(self, other):
        return self.expand(other.shape)

    broadcast_to = expand

    def __getitem__(self, idx):
        idx = _index(idx, self._data)
        return _mkview(_sh.GetItem.apply(self, idx=idx), self, "getitem", idx)

    def diagonal(self, offset=0, dim1=0, dim2=1):
        nd = self.ndim
        a, b = _one(dim1, max(nd, 1)), _one(dim2, max(nd, 1))  # NOTE: as PyTorch: an out-of-range dim is an IndexError
        if a == b:
            raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
        arg = (int(offset), a, b)
        return _mkview(_sh.Diagonal.apply(self, arg=arg), self, "diagonal", arg)

    def flip(self, *dims):
        dims = _shape_arg(dims)
        nd = max(self.ndim, 1)
        axes = {_one(d, nd) for d in dims}
        if len(axes) != len(dims):
            raise RuntimeError(f"flip(): dims {list(dims)} has a repeated dimension")
        out = _sh.GetItem.apply(self, idx=tuple(slice(None, None, -1) if i in axes else slice(None)
                                                for i in range(self.ndim)))
        out._data = _engine._copy(out._data)  # NOTE: PyTorch's flip returns a copy, not a view
        return out

    def fliplr(self):
        return self.flip(1)

    def flipud(self):
        return self.flip(0)

    def narrow(self, dim, start, length):
        d = _one(dim, self.ndim)
        n = self.shape[d]
        start = start + n if start < 0 else start
        if not (0 <= start <= n and 0 <= length <= n - start):
            raise IndexError(f"narrow(): start ({start}) + length ({length}) exceeds dimension size ({n}).")
        return self[(slice(None),) * d + (slice(start, start + length),)]

    def select(self, dim, index):
        d = _one(dim, self.ndim)
        n = self.shape[d]
        if not -n <= index < n:
            raise IndexError(f"select(): index {index} out of range for tensor of size {tuple(self.shape)} at "
                             f"dimension {d}")
        return self[(slice(None),) * d + (index,)]

    def unbind(self, dim=0):
        return tuple(self.select(dim, i) for i in range(self.shape[_one(dim, self.ndim)]))

    def movedim(self, source, destination):
        src = [source] if isinstance(source, int) else list(source)
        dst = [destination] if isinstance(destination, int) else list(destination)
        nd = self.ndim
        src, dst = [_one(s, nd) for s in src], [_one(s, nd) for s in dst]
        if len(src) != len(dst) or len(set(src)) != len(src) or len(set(dst)) != len(dst):
            raise RuntimeError(f"movedim: invalid source {source} / destination {destination}")
        rest = iter(i for i in range(nd) if i not in src)
        where = dict(zip(dst, src))
        return self.permute([where[i] if i in where else next(rest) for i in range(nd)])

    moveaxis = movedim

    # -- [issue 11: indexing, scatter, reductions, scans] ----------------------------------------------------
    # NOTE: implemented in gpugrad/ops/index.py (_ix) and gpugrad/ops/scan.py (_sc); gpugrad/__init__.py loads them
    def gather(self, dim=None, index=None, *, sparse_grad=False, axis=None):
        return _ix.gather(self, dim, index, sparse_grad=sparse_grad, axis=axis)

    def index_select(self, dim=None, index=None, *, axis=None):
        return _ix.index_select(self, dim, index, axis=axis)

    def take(self, index):
        return _ix.take(self, index)

    def take_along_dim(self, indices, dim=None):
        return _ix.take_along_dim(self, indices, dim)

    def masked_select(self, mask):
        return _ix.masked_select(self, mask)

    def nonzero(self, *, as_tuple=False):
        return _ix.nonzero(self, as_tuple=as_tuple)

    def argwhere(self):
        return _ix.nonzero(self)

    def scatter_reduce(self, dim, index, src, reduce, *, include_self=True):
        return _ix.scatter_reduce(self, dim, index, src, reduce, include_self=include_self)

    def prod(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
        return _sc.prod(self, dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)

    def cumsum(self, dim=None, *, dtype=None, axis=None):
        return _sc.cumsum(self, dim, dtype=dtype, axis=axis)

    def cumprod(self, dim=None, *, dtype=None, axis=None):
        return _sc.cumprod(self, dim, dtype=dtype, axis=axis)

    def logcumsumexp(self, dim=None, *, axis=None):
        return _sc.logcumsumexp(self, dim, axis=axis)

    def cummax(self, dim=None, *, axis=None):
        return _sc.cummax(self, dim, axis=axis)

    def cummin(self, dim=None, *, axis=None):
        return _sc.cummin(self, dim, axis=axis)

    def sort(self, dim=-1, descending=False, *, stable=False, axis=None):
        return _sc.sort(self, dim, descending, stable=stable, axis=axis)

    def argsort(self, dim=-1, descending=False, *, stable=False, axis=None):
        return _sc.argsort(self, dim, descending, stable=stable, axis=axis)

    def topk(self, k, dim=-1, largest=True, sorted=True, *, axis=None):  # noqa: A002
        return _sc.topk(self, k, dim, largest, sorted, axis=axis)

    def kthvalue(self, k, dim=-1, keepdim=False, *, axis=None):
        return _sc.kthvalue(self, k, dim, keepdim, axis=axis)

    def median(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _sc.median(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def nanmedian(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _sc.nanmedian(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def mode(self, dim=-1, keepdim=False, *, axis=None, keepdims=None):
        return _sc.mode(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def quantile(self, q, dim=None, keepdim=False, *, interpolation="linear", axis=None, keepdims=None):
        return _sc.quantile(self, q, dim, keepdim, interpolation=interpolation, axis=axis, keepdims=keepdims)

    def aminmax(self, *, dim=None, keepdim=False):
        return _sc.aminmax(self, dim=dim, keepdim=keepdim)

    def nansum(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
        return _sc.nansum(self, dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)

    def nanmean(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
        return _sc.nanmean(self, dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)

    def count_nonzero(self, dim=None, *, axis=None):
        return _sc.count_nonzero(self, dim, axis=axis)

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
        return _sc.unique(self, sorted, return_inverse, return_counts, dim)

    def bincount(self, weights=None, minlength=0):
        return _sc.bincount(self, weights, minlength)

    def histc(self, bins=100, min=0, max=0):  # noqa: A002
        return _sc.histc(self, bins, min, max)


    # -- [issue 11: elementwise math, shape] ----------------------------------------------------------------
    def add(self, other, *, alpha=1):
        return _math.add(self, other, alpha=alpha)

    def sub(self, other, *, alpha=1):
        return _math.sub(self, other, alpha=alpha)

    subtract = sub

    def mul(self, other):
        return self * other

    multiply = mul

    def sgn(self):
        return _math.sgn(self)

    def reciprocal(self):
        return _math.reciprocal(self)

    def exp2(self):
        return _math.exp2(self)

    def expm1(self):
        return _math.expm1(self)

    def log2(self):
        return _math.log2(self)

    def log10(self):
        return _math.log10(self)

    def tan(self):
        return _math.tan(self)

    def asin(self):
        return _math.asin(self)

    arcsin = asin

    def acos(self):
        return _math.acos(self)

    arccos = acos

    def atan(self):
        return _math.atan(self)

    arctan = atan

    def atan2(self, other):
        return _math.atan2(self, other)

    arctan2 = atan2

    def sinh(self):
        return _math.sinh(self)

    def cosh(self):
        return _math.cosh(self)

    def asinh(self):
        return _math.asinh(self)

    arcsinh = asinh

    def acosh(self):
        return _math.acosh(self)

    arccosh = acosh

    def atanh(self):
        return _math.atanh(self)

    arctanh = atanh

    def erf(self):
        return _math.erf(self)

    def erfc(self):
        return _math.erfc(self)

    def erfinv(self):
        return _math.erfinv(self)

    def lgamma(self):
        return _math.lgamma(self)

    def digamma(self):
        return _math.digamma(self)

    def polygamma(self, n):
        return _math.polygamma(n, self)

    def sinc(self):
        return _math.sinc(self)

    def hypot(self, other):
        return _math.hypot(self, other)

    def logaddexp(self, other):
        return _math.logaddexp(self, other)

    def logaddexp2(self, other):
        return _math.logaddexp2(self, other)

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        return _math.nan_to_num(self, nan, posinf, neginf)

    def isinf(self):
        return _math.isinf(self)

    def isposinf(self):
        return _math.isposinf(self)

    def isneginf(self):
        return _math.isneginf(self)

    def logical_and(self, other):
        return _math.logical_and(self, other)

    def logical_or(self, other):
        return _math.logical_or(self, other)

    def logical_xor(self, other):
        return _math.logical_xor(self, other)

    def logical_not(self):
        return _math.logical_not(self)

    def bitwise_and(self, other):
        return _math.bitwise_and(self, other)

    def bitwise_or(self, other):
        return _math.bitwise_or(self, other)

    def bitwise_xor(self, other):
        return _math.bitwise_xor(self, other)

    def bitwise_not(self):
        return _math.bitwise_not(self)

    def bitwise_left_shift(self, other):
        return _math.bitwise_left_shift(self, other)

    def bitwise_right_shift(self, other):
        return _math.bitwise_right_shift(self, other)

    def heaviside(self, values):
        return _math.heaviside(self, values)

    def copysign(self, other):
        return _math.copysign(self, other)

    def xlogy(self, other):
        return _math.xlogy(self, other)

    def logit(self, eps=None):
        return _math.logit(self, eps)

    def float_power(self, exponent):
        return _math.float_power(self, exponent)

    def repeat(self, *sizes):
        return _math.repeat(self, *sizes)

    def repeat_interleave(self, repeats, dim=None, *, output_size=None):
        return _math.repeat_interleave(self, repeats, dim, output_size=output_size)

    def tile(self, *dims):
        return _math.tile(self, dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims)

    def roll(self, shifts, dims=None):
        return _math.roll(self, shifts, dims)

    def rot90(self, k=1, dims=(0, 1)):
        return _math.rot90(self, k, dims)

    def unfold(self, dimension, size, step):
        return _math.unfold(self, dimension, size, step)

    def tensor_split(self, indices_or_sections, dim=0):
        return _math.tensor_split(self, indices_or_sections, dim)

    def hsplit(self, indices_or_sections):
        return _math.hsplit(self, indices_or_sections)

    def vsplit(self, indices_or_sections):
        return _math.vsplit(self, indices_or_sections)

    def dsplit(self, indices_or_sections):
        return _math.dsplit(self, indices_or_sections)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        return _math.new_zeros(self, *size, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return _math.new_ones(self, *size, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return _math.new_empty(self, *size, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        return _math.new_full(self, size, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
        return _math.new_tensor(self, data, dtype=dtype, device=device, requires_grad=requires_grad)

    def type_as(self, other):
        return self.type(other.dtype)

    def is_floating_point(self):
        return self._data.dtype in _FLOATS

    def data_ptr(self):
        return _math.data_ptr(self)

    def pin_memory(self, device=None):
        """A copy in page-locked host memory (CuPy's pinned memory; in the graph, as PyTorch's), or self if pinned
        already. NOTE: as PyTorch, CPU tensors only and a RuntimeError without CUDA: never an unpinned copy."""
        if self.is_cuda:
            raise RuntimeError(f"cannot pin '{self.type()}' only dense CPU tensors can be pinned")
        if self.is_pinned(device):
            return self
        if device is not None and _be.device(device).type == "cpu":
            raise RuntimeError("CPU device type not an accelerator.")
        if _be._import_cupy() is None:
            raise RuntimeError(f"pin_memory(): Cannot access accelerator device when none is available: "
                               f"{_be.cuda.why_unavailable()}")
        out = _sh.Alias.apply(self)
        out._data = __import__("cupyx").empty_pinned(self._data.shape, self._data.dtype)
        np.copyto(out._data, self._data)
        return out

    def is_pinned(self, device=None):
        """Whether the memory is page-locked host memory, as the CUDA runtime reports; False without CUDA."""
        if device is not None:
            __import__("warnings").warn("The argument 'device' of Tensor.is_pinned() is deprecated. Please do not "
                                        "pass this argument.", DeprecationWarning, stacklevel=2)
        cp = None if self.is_cuda or self._data.size == 0 else _be._import_cupy()
        if cp is None:
            return False
        try:  # NOTE: type 1 = cudaMemoryTypeHost (0 unregistered, 2 device, 3 managed); a view of pinned memory counts
            return cp.cuda.runtime.pointerGetAttributes(self._data.ctypes.data).type == 1
        except cp.cuda.runtime.CUDARuntimeError:  # older CUDA: an error for memory it does not know
            return False

    def squeeze_(self, dim=None):
        return _math.reshape_inplace(self, lambda t: t.squeeze(dim), "squeeze_")

    def unsqueeze_(self, dim):
        return _math.reshape_inplace(self, lambda t: t.unsqueeze(dim), "unsqueeze_")

    def t_(self):
        if self.ndim > 2:
            raise RuntimeError(f"t_() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return _math.reshape_inplace(self, Tensor.t, "t_")

    def transpose_(self, dim0, dim1):
        return _math.reshape_inplace(self, lambda t: t.transpose(dim0, dim1), "transpose_")

    def resize_(self, *sizes, memory_format=None):
        """PyTorch's resize_ (see gpugrad/ops/math.py resize_inplace); only the contiguous memory format."""
        if not sizes:
            raise TypeError('resize_() missing 1 required positional arguments: "size"')
        if memory_format is not None:  # NOTE: gpugrad has no memory-format objects
            raise NotImplementedError(f"resize_: memory_format={memory_format!r} is not supported")
        return _math.resize_inplace(self, _shape_arg(sizes))

    def resize_as_(self, the_template, memory_format=None):
        return self.resize_(the_template.shape, memory_format=memory_format)


    # -- [issue 11: linear algebra] -------------------------------------------------------------------------
    def dot(self, other):
        return _la2.dot(self, other)

    def vdot(self, other):
        return _la2.vdot(self, other)

    def outer(self, vec2):
        return _la2.outer(self, vec2)

    ger = outer

    def inner(self, other):
        return _la2.inner(self, other)

    def kron(self, other):
        return _la2.kron(self, other)

    def addmm(self, mat1, mat2, *, beta=1, alpha=1):
        return _la2.addmm(self, mat1, mat2, beta=beta, alpha=alpha)

    def addmv(self, mat, vec, *, beta=1, alpha=1):
        return _la2.addmv(self, mat, vec, beta=beta, alpha=alpha)

    def baddbmm(self, batch1, batch2, *, beta=1, alpha=1):
        return _la2.baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def trace(self):
        return _la2.trace(self)

    def tril(self, diagonal=0):
        return _la2.tril(self, diagonal)

    def triu(self, diagonal=0):
        return _la2.triu(self, diagonal)

    def diag(self, diagonal=0):
        return _la2.diag(self, diagonal)

    def diag_embed(self, offset=0, dim1=-2, dim2=-1):
        return _la2.diag_embed(self, offset, dim1, dim2)

    def det(self):
        return _la2.det(self)

    def slogdet(self):
        return _la2.slogdet(self)

    def inverse(self):
        return _la2.inv(self)


    def split(self, split_size_or_sections, dim=0):
        return split(self, split_size_or_sections, dim)

    def chunk(self, chunks, dim=0):
        return chunk(self, chunks, dim)

    def matmul(self, other):
        return matmul(self, other)

    def mm(self, other):
        return matmul(self, other)

    # NOTE: these five are the torch.* functions of gpugrad/__init__.py (_gg: the package module)
    def bmm(self, mat2):
        return _gg.bmm(self, mat2)

    def prelu(self, weight):
        return _gg.prelu(self, weight)

    def cholesky(self, upper=False):
        return _gg.cholesky(self, upper)

    def qr(self, some=True):
        return _gg.qr(self, some)

    def svd(self, some=True, compute_uv=True):
        return _gg.svd(self, some, compute_uv)


def parse_to(args, device=None, dtype=None):
    """The positional arguments of ``to()`` (a device, a dtype or a Tensor, as PyTorch) -> (device, dtype)."""
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, _be.Device) or (isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda", "auto")):
            device = a
        else:
            dtype = a
    return device, dtype


def _function_apply_to(t, dev):
    """Move a tensor to ``dev`` (differentiable: the gradient flows back to the source device)."""
    return _ToDevice.apply(t, dev=dev)


class _ToDevice(_function.Primitive):
    def forward(self, x, dev):
        self.src = _be.device_of(x)
        return _be.to_device(x, dev)

    def backward(self, g):
        if isinstance(g, Tensor):
            return g.to(self.src)
        return _be.to_device(g, self.src)


_function._Tensor = Tensor
_grad_mode.Tensor = Tensor

from .ops import elementwise as _ew  # noqa: E402
from .ops import reduce as _rdmod  # noqa: E402
from .ops import shape as _sh  # noqa: E402
from .ops import linalg as _la  # noqa: E402
# NOTE: the fused families (ops/activation.py, ops/softmax.py) import this module for their composites; they
# register themselves here when they load (gpugrad/__init__.py loads them), so there is no import circle.
_act = _sm = None
_la2 = None  # set by ops/linalg2.py when it loads (the issue-11 linear-algebra methods)
_ix = _sc = None  # issue 11: set by gpugrad/ops/index.py and gpugrad/ops/scan.py when they load
_math = None  # set by gpugrad/ops/math.py (elementwise math and shape composites, issue 11)
_gg = __import__("sys").modules[__package__]  # NOTE: the package (Tensor.bmm/prelu/cholesky/qr/svd call into it)
from .ops._util import norm_dim as _norm_dim, one_dim as _one  # noqa: E402


# -- issue 11 breadth: more in-place forms, aliases and properties (the ops themselves: ops/extra_ops.py) -----
_PRINT = {"precision": 4}  # np.array2string options of Tensor.__repr__; gg.set_printoptions edits them


def _inplace_form(name, keep=True, diff=True):
    """``x.<name>_(...)``: ``x.<name>(...)`` written into x's memory by Tensor._inplace (version bump, graph
    rebase, PyTorch's cast refusal), with the out-of-place method's signature."""
    m = getattr(Tensor, name)
    sig = __import__("inspect").signature(m)

    def f(self, *args, **kwargs):
        if kwargs:  # NOTE: Tensor arguments travel positionally, so _inplace sees whether they require grad
            b = sig.bind(self, *args, **kwargs)
            args, kwargs = b.args[1:], b.kwargs
        return self._inplace(lambda t, *a: m(t, *a, **kwargs), *args, keep=keep, diff=diff)
    f.__name__, f.__qualname__, f.__signature__ = name + "_", f"Tensor.{name}_", sig
    f.__doc__ = f"In-place :meth:`{name}`: the result is written into this tensor (same memory, version bumped)."
    return f


for _n in ("acos asin atan acosh asinh atanh arccos arcsin arctan arccosh arcsinh arctanh atan2 arctan2 erf erfc "
           "erfinv exp2 expm1 log10 log1p log2 logit lgamma digamma reciprocal rsqrt sinc sinh cosh tan hypot fmod "
           "remainder copysign xlogy nan_to_num cumprod").split():
    setattr(Tensor, _n + "_", _inplace_form(_n))
# NOTE: these never read self's old values in backward (zero or constant gradients): no copy under autograd
for _n in ("ceil floor round trunc fix frac sgn sign heaviside cumsum tril triu bitwise_and bitwise_or bitwise_xor bitwise_not bitwise_left_shift bitwise_right_shift eq ne "
           "lt le gt ge").split():
    setattr(Tensor, _n + "_", _inplace_form(_n, keep=False))
# NOTE: PyTorch does not differentiate the logical ops: in place they keep the tensor's grad_fn (the gradient passes
# through unchanged) and a leaf that requires grad may be written
for _n in ("logical_and", "logical_or", "logical_xor", "logical_not"):
    setattr(Tensor, _n + "_", _inplace_form(_n, keep=False, diff=False))
Tensor.clamp_min = lambda self, min: self.clamp(min=min)  # noqa: A006,E731
Tensor.clamp_max = lambda self, max: self.clamp(max=max)  # noqa: A006,E731
Tensor.clamp_min_ = _inplace_form("clamp_min")  # NOTE: a Tensor bound travels to _inplace (its gradient)
Tensor.clamp_max_ = _inplace_form("clamp_max")
Tensor.absolute, Tensor.absolute_, Tensor.negative, Tensor.negative_ = Tensor.abs, Tensor.abs_, Tensor.neg, Tensor.neg_
Tensor.multiply_, Tensor.subtract_, Tensor.divide_ = Tensor.mul_, Tensor.sub_, Tensor.div_
Tensor.true_divide_ = lambda self, value: self.div_(value)  # noqa: E731
Tensor.floor_divide_ = lambda self, other: self._inplace(_op_floordiv, other)  # noqa: E731
for _a, _b in (("greater", "gt"), ("greater_equal", "ge"), ("less", "lt"), ("less_equal", "le"), ("not_equal", "ne")):
    setattr(Tensor, _a, lambda self, other, _f=getattr(Tensor, _b): _f(self, other))  # NOTE: torch's name `other`
    setattr(Tensor, _a + "_", getattr(Tensor, _b + "_"))
Tensor.ndimension = Tensor.dim
Tensor.swapaxes_ = lambda self, axis0, axis1: self.transpose_(axis0, axis1)  # noqa: E731
Tensor.swapdims_ = lambda self, dim0, dim1: self.transpose_(dim0, dim1)  # noqa: E731
Tensor.ravel = lambda self: self.reshape(-1)  # noqa: E731
Tensor.msort = lambda self: self.sort(0).values  # noqa: E731
Tensor.byte, Tensor.char, Tensor.short = (lambda self: self.type(uint8)), (lambda self: self.type(int8)), \
    (lambda self: self.type(int16))
Tensor.element_size = lambda self: self._data.itemsize  # noqa: E731
Tensor.itemsize = property(lambda self: self._data.itemsize)
Tensor.nbytes = property(lambda self: self._data.size * self._data.itemsize)  # NOTE: numel * itemsize, as PyTorch
Tensor.is_cpu = property(lambda self: type(self._data) is np.ndarray)
Tensor.is_complex = lambda self: False  # NOTE: gpugrad has no complex dtypes  # noqa: E731
Tensor.is_signed = lambda self: self.dtype not in (uint8, bool_)  # noqa: E731
Tensor.get_device = lambda self: -1 if type(self._data) is np.ndarray else self.device.index  # noqa: E731
Tensor.is_same_size = lambda self, other: tuple(self.shape) == tuple(other.shape)  # noqa: E731
Tensor.retains_grad = property(lambda self: self._node is not None and any(
    getattr(h, "retains", None) is self for h in self._node.hooks or ()))


class _rd:  # noqa: N801  (namespace for reductions)
    Sum = _rdmod.Sum
    MaxMin = _rdmod.MaxMin

    @staticmethod
    def norm(dim, ndim):
        # NOTE: a reduction over dim=() or [] reduces every dim, as PyTorch's sum/mean/var/norm/amax
        return _norm_dim(None if dim is not None and not isinstance(dim, (int, np.integer)) and len(dim) == 0
                         else dim, ndim)


def _op_lt(a, b): return a < b  # noqa: E704
def _op_le(a, b): return a <= b  # noqa: E704
def _op_gt(a, b): return a > b  # noqa: E704
def _op_ge(a, b): return a >= b  # noqa: E704
def _op_eq(a, b): return a == b  # noqa: E704
def _op_ne(a, b): return a != b  # noqa: E704
def _op_and(a, b): return a & b  # noqa: E704
def _op_or(a, b): return a | b  # noqa: E704


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _check_same_device(a, b, what):
    if type(a._data) is np.ndarray and type(b._data) is np.ndarray:
        return
    if a.device != b.device:
        raise RuntimeError(f"{what}: expected all tensors on the same device, got {a.device} and {b.device}; "
                           "move one with .to(device) first — gpugrad never copies silently")


from . import _promotion as _promo  # noqa: E402


def _dlpack_export(data, requires_grad, stream=None, max_version=None, dl_device=None, copy=None):
    """``Tensor.__dlpack__`` (gpugrad/utils/dlpack.py has the semantics) on the tensor's array ``data``: the array's own export, with only the
    arguments the caller gave (so a NumPy older than 2.1, whose ``__dlpack__`` takes only
    ``stream``, still serves legacy consumers, and a newer one reports the keywords it lacks)."""
    if requires_grad:
        raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
    kw = {k: v for k, v in (("max_version", max_version), ("dl_device", dl_device), ("copy", copy))
          if v is not None}
    if stream is not None:
        kw["stream"] = stream
    if isinstance(data, np.ndarray) and data.dtype == bfloat16:  # NOTE: NumPy exports the bits (see _dtypes)
        cap = data.view(np.uint16).__dlpack__(**kw)
        _dtypes.dlpack_retag(cap, _dtypes._U16, _dtypes._BF)
        return cap
    return data.__dlpack__(**kw)


def _cmp_arrays(a, b, op, dt, both):
    """op(a, b) of a comparison, a (and b when ``both``) cast to ``dt`` first (None: as they are). A module-level
    array function, so that gg.compile records it as one call."""
    if dt is not None:
        a = a.astype(dt, copy=False)
        if both:
            b = b.astype(dt, copy=False)
    return op(a, b)


def _wrap(o, like):
    """Turn a Python number / array into a constant Tensor on ``like``'s device; a number gets the dtype
    PyTorch's promotion gives ``like`` combined with it (gpugrad/_promotion.py)."""
    if isinstance(o, Tensor):
        return o
    ld = like._data
    if isinstance(o, (np.ndarray, list, tuple)) or type(o).__module__.startswith("cupy"):
        arr = _be.xp_of(ld).asarray(o)
        if type(arr) is not type(ld):
            raise RuntimeError(f"expected all tensors on the same device, got {like.device} and "
                               f"{_be.device_of(o) if not isinstance(o, (list, tuple)) else 'cpu'}")
        return Tensor(arr)
    if not isinstance(o, (numbers.Number, np.generic)) or isinstance(o, (complex, np.complexfloating)):
        raise TypeError(f"unsupported operand type {type(o).__name__} for a Tensor op")
    return _scalar_tensor(o, _promo.result_type(like, o, default_float=_default_dtype), ld)


def _scalar_tensor(o, dt, like_data):
    """A Python number as a 0-d constant of dtype ``dt`` on ``like_data``'s device.

    NOTE: integers wrap modulo the dtype's range (uint8 tensor - 1 -> 255, int8 + 1000 wraps) and floats
    overflow to inf, as PyTorch computes them; numpy would refuse or warn."""
    if dt.kind in "iu" and not isinstance(o, (bool, np.bool_)):
        arr = np.asarray(o).astype(dt)
    elif dt in _FLOATS and dt.itemsize < 8 and abs(o) > (65504.0 if dt == float16 else 3.4028234663852886e38):
        with np.errstate(over="ignore"):
            arr = np.asarray(o, dtype=dt)
    else:
        arr = np.asarray(o, dtype=dt)
    return Tensor(arr if type(like_data) is np.ndarray else _be.xp_of(like_data).asarray(arr))


def _binary(fn, a, b, true_div=False):
    """``fn`` of two operands (Tensors, Python numbers, arrays) after PyTorch's type promotion:
    both are cast to ``result_type(a, b)`` (differentiably, so each gradient keeps its input's dtype)."""
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if not (ta and tb):
        if not (ta or tb):
            raise TypeError(f"{fn.__name__.lower()}(): expected at least one Tensor, got {type(a).__name__} and "
                            f"{type(b).__name__}")
        ref = a if ta else b
        if not ta and not isinstance(a, (numbers.Number, np.generic)):
            a, ta = _wrap(a, ref), True
        if not tb and not isinstance(b, (numbers.Number, np.generic)):
            b, tb = _wrap(b, ref), True
    if ta and tb:
        da = a._data.dtype
        if da == b._data.dtype and da in _FLOATS:
            try:
                return fn.apply(a, b)  # NOTE: the common case, nothing to promote
            except ValueError:
                _check_broadcast(a.shape, b.shape)
                raise
        dt = _promo.result_type(a, b, default_float=_default_dtype)
    else:
        t, o = (a, b) if ta else (b, a)
        tk, ot = t._data.dtype.kind, type(o)
        if ot is float:  # NOTE: fast paths of result_type(tensor, number)
            dt = t._data.dtype if tk == "f" or t._data.dtype == bfloat16 else _default_dtype
        elif ot is int:
            dt = t._data.dtype if tk != "b" else int64
        else:
            dt = _promo.result_type(a, b, default_float=_default_dtype)
    if true_div and dt not in _FLOATS:
        dt = _default_dtype  # NOTE: int / int is the default float, as PyTorch's true division
    if fn is _ew.Sub:
        _check_sub_bool(a, b, dt)
    ref = a if ta else b
    a = (a if a._data.dtype == dt else a.type(dt)) if ta else _scalar_tensor(a, dt, ref._data)
    b = (b if b._data.dtype == dt else b.type(dt)) if tb else _scalar_tensor(b, dt, ref._data)
    try:
        return fn.apply(a, b)
    except ValueError:
        _check_broadcast(a.shape, b.shape)
        raise


def _check_sub_bool(a, b, dt):
    """PyTorch refuses subtraction with a bool operand (a bool tensor or a Python bool; a NumPy bool scalar passes,
    as in PyTorch)."""
    if dt == bool_:
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                           "Use the `^` or `logical_xor()` operator instead.")
    if any(type(o) is bool or isinstance(o, Tensor) and o._data.dtype == bool_ for o in (a, b)):
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying "
                           "to invert a mask, use the `~` or `logical_not()` operator instead.")


def _check_broadcast(sa, sb):
    """PyTorch's error for shapes that do not broadcast (NumPy's ValueError otherwise escapes)."""
    for i in range(1, min(len(sa), len(sb)) + 1):
        x, y = sa[-i], sb[-i]
        if x != y and x != 1 and y != 1:
            raise RuntimeError(f"The size of tensor a ({x}) must match the size of tensor b ({y}) at non-singleton "
                               f"dimension {max(len(sa), len(sb)) - i}")


def _check_broadcast_all(*shapes):
    """_check_broadcast over several shapes, left to right (PyTorch's TensorIterator order)."""
    s = shapes[0]
    for t in shapes[1:]:
        _check_broadcast(s, t)
        s = np.broadcast_shapes(s, t)


def _result_type(*operands):
    """PyTorch's result dtype of Tensors / Python numbers (torch.result_type; see gpugrad/_promotion.py)."""
    return _promo.result_type(*operands, default_float=_default_dtype)


def _pow_operand(t, scalar):
    """The base of ``t ** scalar`` / ``scalar ** t`` in PyTorch's result dtype (int ** float is the default float)."""
    if t._data.dtype in _FLOATS:
        return t
    if isinstance(scalar, float):
        return t.type(_default_dtype)
    return t.type(int64) if t.dtype == bool_ else t


def _floatify(t):
    return t if is_floating(t.dtype) else t.type(_default_dtype)


@_function.recorded
def _int_cast(t, dt):
    with np.errstate(invalid="ignore", over="ignore"):  # NOTE: nan/inf -> int gives garbage silently, as PyTorch
        return Tensor(t._data.astype(dt))


@_function.recorded
def _int_sum(x, axes, keepdim):
    return Tensor(x.xp.asarray(x._data.sum(axis=axes, keepdims=keepdim, dtype=x.dtype)))


def _reduction_input(t, dtype):
    """The tensor a sum/prod/scan works on, as PyTorch: ``dtype=`` casts the input first (an integral dtype on a
    tensor that requires grad raises PyTorch's "Autograd not support dtype"); integers and bools widen to int64
    (NOTE: NumPy would sum uint8 to uint64 and keep int32 products' platform width)."""
    if dtype is not None:
        dt = as_dtype(dtype)
        if not is_floating(dt) and t._rg and _state.grad_enabled:
            raise RuntimeError(f"Autograd not support dtype: {_promo.short_name(dt)}")
        return t.type(dt)
    return t.type(np.int64) if t.dtype.kind in "biu" else t


@_function.recorded
def _beyond(x, bound, pick):
    """Where clamp takes ``bound`` (a Tensor or a number): x beyond it, or the bound is NaN."""
    raw = bound._data if isinstance(bound, Tensor) else bound
    return Tensor(pick(x._data, raw) | x.xp.isnan(raw))


def _empty_reduction(t, dim, name, all_error=None, sep="(): "):
    """PyTorch's refusals for an extreme (max/min/amax/amin/argmax/argmin/aminmax) of an empty tensor: over all
    elements always; over dims only when a reduced dim has size 0 (``zeros(0, 3).amax(1)`` is an empty result)."""
    if t._data.size:
        return
    axes = () if dim is None or (not isinstance(dim, (int, np.integer)) and len(dim) == 0) else _norm_dim(dim, t.ndim)
    if not axes:  # NOTE: dim=() reduces over every dim, as in PyTorch
        raise all_error or RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                                        "Specify the reduction dim with the 'dim' argument.")
    for a in axes:
        if t.shape[a] == 0:
            raise IndexError(f"{name}{sep}Expected reduction dim {a} to have non-zero size.")


@_function.recorded
def _argext(t, dim, keepdim, fname):
    if dim is not None and not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{fname}(): argument 'dim' must be int, not {type(dim).__name__}")
    _empty_reduction(t, dim, fname, IndexError(f"{fname}(): Expected reduction dim to be specified for "
                                               "input.numel() == 0."))
    xp = t.xp
    if dim is None:  # NOTE: keepdim keeps every dim as 1, as PyTorch
        r = xp.asarray(getattr(xp, fname)(t._data.reshape(-1)), dtype=np.int64)
        return Tensor(r.reshape((1,) * t.ndim) if keepdim else r)
    d = _one(dim, t.ndim)
    r = getattr(xp, fname)(t._data, axis=d, keepdims=keepdim)
    return Tensor(r.astype(np.int64, copy=False))


class _MaxMinResult(tuple):
    """(values, indices) with attribute access, as torch.return_types.max."""
    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


def _extreme(t, dim, keepdim, mode):
    """amax/amin over one dim, several dims or all; the gradient is shared evenly among ties, as PyTorch's."""
    _empty_reduction(t, dim, "a" + mode)
    return _rdmod.AMax.apply(t, axes=_rd.norm(dim, t.ndim), keepdim=keepdim, mode=mode)


def _variance(self, dim, unbiased, keepdim, correction, name):
    if isinstance(dim, bool):  # NOTE: PyTorch's var(unbiased) overload: x.var(False) is the biased variance
        dim, unbiased = None, dim
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    axes = _rd.norm(dim, self.ndim)
    n = 1
    for a in axes:
        n *= self.shape[a]
    mu = self.mean(axes, keepdim=True)
    dof = n - correction
    if dof <= 0:
        _warnings.warn(f"{name}(): degrees of freedom is <= 0. Correction should be strictly less than the reduction "
                       "factor (input numel divided by output numel).", UserWarning, stacklevel=3)
    if dof > 0:
        d = self - mu
        return (d * d).sum(axes, keepdim) / dof
    # NOTE: correction >= N: the value is sum / 0 (inf, or NaN for a constant input) as PyTorch's, and the
    # gradient PyTorch's 2 g (x - mean) / (N - correction), unclamped (finite for N < correction, +-inf/NaN at
    # N == correction): the mean is held constant (its gradient term is 0 in exact arithmetic; here 0 * inf)
    d = self - mu.detach()
    s = (d * d).sum(axes, keepdim)
    return s / 0 if dof == 0 else s / dof + (s / 0 - s / dof).detach()


def _maxmin(t, dim, keepdim, mode):
    if isinstance(dim, Tensor):  # NOTE: torch.max(input, other): the elementwise overload
        return maximum(t, dim) if mode == "max" else minimum(t, dim)
    _empty_reduction(t, dim, mode)
    if dim is None:
        return _rd.MaxMin.apply(t, axis=None, idx=None, keepdim=False, mode=mode)
    d = _one(dim, t.ndim)
    xp = t.xp
    if t.ndim == 0:
        return _MaxMinResult((t, Tensor(xp.zeros((), np.int64))))
    idx = _argext(t, d, True, "arg" + mode)
    vals = _rd.MaxMin.apply(t, axis=d, idx=idx._data, keepdim=keepdim, mode=mode)
    return _MaxMinResult((vals, idx if keepdim else idx.squeeze(d)))


def _index(idx, data):
    """Normalize an index: Tensors -> arrays, lists -> arrays on the data's device."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    xp = None
    for i in idx:
        if isinstance(i, Tensor):
            i = i._data
            if type(i) is not type(data):
                raise RuntimeError(f"index tensor is on {_be.device_of(i)} but the indexed tensor is on "
                                   f"{_be.device_of(data)}")
        elif isinstance(i, (list, np.ndarray)) and type(data) is not np.ndarray:
            xp = xp or _be.xp_of(data)
            i = xp.asarray(i)
        elif isinstance(i, list):
            i = np.asarray(i)
        out.append(i)
    return tuple(out) if len(out) != 1 or isinstance(out[0], tuple) else out[0]


# -- functions on tensors ----------------------------------------------------------------------------
def matmul(a, b):
    """Matrix product with PyTorch's 1-D rules (dot, vector-matrix, matrix-vector) and batch broadcasting."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul expects two Tensors")
    na, nb = a.ndim, b.ndim
    if na == 0 or nb == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {na}D and {nb}D")
    da, db = a.dtype, b.dtype
    if da != db:
        # NOTE: no promotion (as PyTorch); the wording is that of the kernel torch.matmul picks for these dims
        n, c = _promo.short_name, _promo.cpp_name
        if na == 1 and nb == 1:
            raise RuntimeError(f"dot : expected both vectors to have same dtype, but found {n(da)} and {n(db)}")
        if nb == 1:
            raise RuntimeError(f"addmv input tensors must have the same dtype, but got {n(db)}, {n(da)}, and {n(db)}")
        if nb == 2:
            raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {c(da)} != {c(db)}")
        raise RuntimeError(f"expected scalar type {n(da)} but found {n(db)}")
    if da == bool_:
        raise NotImplementedError("matmul: not implemented for 'Bool' (as PyTorch); convert with .int() or .float()")
    ka, kb = a.shape[-1], b.shape[-2] if b.ndim >= 2 else b.shape[0]
    if ka != kb:
        raise RuntimeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied ({ka} != {kb})")
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    y = _la.MatMul.apply(a2, b2)
    if b.ndim == 1:
        y = y.squeeze(-1)
    if a.ndim == 1:
        y = y.squeeze(-2) if y.ndim >= 2 else y.squeeze(0)
    return y


def where(condition, input, other):  # noqa: A002
    """torch.where: ``input`` where ``condition`` else ``other``, both promoted to result_type(input, other)
    (either may be a Python number; with two numbers the result lives on the condition's device)."""
    ref = input if isinstance(input, Tensor) else (other if isinstance(other, Tensor) else condition)
    if not isinstance(ref, Tensor):
        raise TypeError("where: the condition must be a Tensor when input and other are both numbers")
    c = condition._data if isinstance(condition, Tensor) else _be.xp_of(ref._data).asarray(condition)
    if c.dtype == np.uint8:
        import warnings  # noqa: PLC0415
        warnings.warn("where received a uint8 condition tensor. This behavior is deprecated and will be removed in "
                      "a future version of PyTorch. Use a boolean condition instead.", UserWarning, stacklevel=2)
        c = c.astype(np.bool_)
    elif c.dtype != np.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype "
                           f"{_promo.short_name(c.dtype)}")
    a = input if isinstance(input, (Tensor, numbers.Number, np.generic)) else _wrap(input, ref)
    b = other if isinstance(other, (Tensor, numbers.Number, np.generic)) else _wrap(other, ref)
    dt = _result_type(a, b)
    a = a.type(dt) if isinstance(a, Tensor) else _scalar_tensor(a, dt, ref._data)
    b = b.type(dt) if isinstance(b, Tensor) else _scalar_tensor(b, dt, ref._data)
    _check_same_device(a, b, "where")
    if type(c) is not type(a._data):
        raise RuntimeError(f"where: condition is on {_be.device_of(c)} but the values are on {a.device}")
    try:
        return _ew.Where.apply(a, b, cond=c)
    except ValueError:
        _check_broadcast_all(c.shape, a.shape, b.shape)
        raise


def maximum(a, b):
    return _binary(_ew.Maximum, a, b)


def minimum(a, b):
    return _binary(_ew.Minimum, a, b)


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"cat(): expected a sequence of Tensors, but element {i} is {type(t).__name__}")
        if t.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    t0 = tensors[0]
    d = _one(dim, t0.ndim)
    for i, t in enumerate(tensors):
        if t.ndim != t0.ndim or any(s != s0 for j, (s, s0) in enumerate(zip(t.shape, t0.shape)) if j != d):
            raise RuntimeError(f"cat: sizes must match except in dim {d}: tensor 0 has shape {tuple(t0.shape)}, "
                               f"tensor {i} has shape {tuple(t.shape)}")
    dt = _result_type(*tensors)  # NOTE: as torch.cat: promoted across all inputs (int32 + float16 -> float16)
    tensors = [t.type(dt) for t in tensors]
    return _sh.Cat.apply(*tensors, dim=d)


concat = concatenate = cat


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of Tensors")
    s0 = tensors[0].shape
    for i, t in enumerate(tensors):
        if t.shape != s0:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(s0)} at entry 0 "
                               f"and {list(t.shape)} at entry {i}")
    nd = len(s0) + 1
    d = _one(dim, nd)  # NOTE: PyTorch's range check (dim % nd took any dim)
    return cat([t.unsqueeze(d) for t in tensors], d)


def split(t, split_size_or_sections, dim=0):
    d = _one(dim, t.ndim)
    n = t.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        s = int(split_size_or_sections)
        if s <= 0:
            raise ValueError(f"split: split_size must be positive, got {s}")
        sizes = [min(s, n - i) for i in range(0, n, s)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n:
            raise RuntimeError(f"split: sections {sizes} sum to {sum(sizes)}, but dim {d} has size {n}")
    out, start = [], 0
    pre = (slice(None),) * d
    for s in sizes:
        out.append(t[pre + (slice(start, start + s),)])
        start += s
    return tuple(out)


def chunk(t, chunks, dim=0):
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = t.shape[_one(dim, t.ndim)]
    size = -(-n // chunks)
    return split(t, max(size, 1), dim)


def pad(t, pad, mode="constant", value=0.0):  # noqa: A002
    """torch.nn.functional.pad: ``pad`` lists (left, right) pairs starting from the LAST dimension."""
    if mode != "constant":
        raise NotImplementedError(f"pad: only mode='constant' is supported, got {mode!r}")
    if len(pad) % 2 or len(pad) // 2 > t.ndim:
        raise ValueError(f"pad: expected an even number of values covering at most {t.ndim} dims, got {pad}")
    widths = [(0, 0)] * t.ndim
    crop = [slice(None)] * t.ndim
    for i in range(len(pad) // 2):
        d = t.ndim - 1 - i
        lo, hi = int(pad[2 * i]), int(pad[2 * i + 1])
        n = t.shape[d]
        if n + lo + hi < 0:
            raise RuntimeError("narrow(): length must be non-negative.")  # NOTE: PyTorch 2.13's text
        # NOTE: negative widths crop, as PyTorch's constant pad
        crop[d] = slice(max(-lo, 0), n - max(-hi, 0))
        widths[d] = (max(lo, 0), max(hi, 0))
    if any(c != slice(None) for c in crop):
        t = _sh.GetItem.apply(t, idx=tuple(crop))  # not a view: Pad below copies
    return _sh.Pad.apply(t, widths=tuple(widths), value=value)


@functools.partial(_function.recorded, dynamic=lambda t, num_classes=-1: num_classes == -1)
def one_hot(t, num_classes=-1):
    if t.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor of class indices, got {t.dtype}")
    xp = t.xp
    if t._data.size and int(t._data.min()) < 0:
        raise ValueError(f"one_hot: class values must be non-negative, got {int(t._data.min())}")
    n = int(t._data.max()) + 1 if num_classes == -1 else num_classes
    if t._data.size and int(t._data.max()) >= n:
        raise ValueError(f"one_hot: class value {int(t._data.max())} is out of range for num_classes={n}")
    return Tensor((t._data[..., None] == xp.arange(n)).astype(np.int64))


# -- creation -----------------------------------------------------------------------------------------
def _infer_dtype(data):
    """PyTorch's inference for Python data: floats -> default float, ints -> int64, bools -> bool."""
    flat = data
    while isinstance(flat, (list, tuple)) and flat:
        flat = flat[0]
    arr = np.asarray(data)
    if arr.dtype == np.bool_:
        return bool_
    if arr.dtype.kind in "iu":
        return int64
    if _isf(arr.dtype):
        return _default_dtype
    raise TypeError(f"cannot make a tensor from data of type {arr.dtype} ({type(flat).__name__})")


def _int_scalar(value, dtype, ctype=True):
    """A Python number into a dtype as PyTorch's Scalar conversion (full, fill_): an unsigned dtype takes integers
    down to -max, wrapped; a value out of range (a finite float beyond a float dtype's max, a negative float into
    an unsigned dtype) raises PyTorch's error rather than becoming inf or wrapping."""
    dt = np.dtype(dtype)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    if _isf(dt):
        if math.isfinite(value) and abs(value) > float(_dtypes.finfo_of(dt).max):
            raise RuntimeError(f"value cannot be converted to type {_CTYPE[dt.name]} without overflow")
        return value
    if dt.kind not in "iu":
        return value
    info = np.iinfo(dt)
    lo = -int(info.max) if dt.kind == "u" else int(info.min)
    if dt == np.int64 and isinstance(value, int) and not lo <= value <= info.max:
        raise OverflowError("int too big to convert")  # NOTE: PyTorch's, for a Python int beyond int64
    if not (lo <= value <= info.max) or (dt.kind == "u" and isinstance(value, float) and value < 0):
        raise RuntimeError(f"value cannot be converted to type {dt.name}{'_t' if ctype else ''} without overflow")
    return int(value) % (1 << (8 * dt.itemsize)) if dt.kind == "u" and value < 0 else value


def _narrow_ints(data, dtype):
    """Python numbers beyond a narrow integer dtype, as torch.tensor: an unsigned dtype takes integers down to -max,
    wrapped (uint8: -1 is 255, -255 is 1); anything else out of range is PyTorch's RuntimeError."""
    wide = np.asarray(data, dtype=np.float64 if _infer_dtype(data) == np.float32 else np.int64)
    info = np.iinfo(dtype)
    lo = -int(info.max) if dtype.kind == "u" else info.min
    if wide.size and (wide.min() < lo or wide.max() > info.max or (wide.dtype.kind == "f" and dtype.kind == "u"
                                                                  and wide.min() < 0)):
        raise RuntimeError(f"value cannot be converted to type {dtype.name} without overflow")
    return wide.astype(np.int64).astype(dtype)


@_function.recorded
def tensor(data, dtype=None, device=None, requires_grad=False):
    """Make a tensor from data (copying it). Float lists default to float32; arrays keep their dtype."""
    dtype = as_dtype(dtype)
    dev = _be.device(device)
    if isinstance(data, Tensor):
        arr = data._data
    elif isinstance(data, np.ndarray) or type(data).__module__.startswith("cupy"):
        arr = data
    elif isinstance(data, np.generic):
        arr = np.asarray(data)
    else:
        try:
            arr = np.asarray(data, dtype=dtype or _infer_dtype(data))
        except OverflowError:
            if dtype is None or dtype.kind not in "iu" or dtype == np.int64:
                raise
            arr = _narrow_ints(data, dtype)
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    xp = dev.xp
    if type(arr) is np.ndarray and xp is np:
        arr = arr.copy()
    elif device is None and type(arr) is not np.ndarray:
        arr = arr.copy()
    else:
        arr = _be.to_device(arr, dev) if _be.device_of(arr) != dev else arr.copy()
    t = Tensor(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data, dtype=None, device=None):
    """Like tensor(), but shares memory with ``data`` when it is already a Tensor or array of that dtype and device."""
    dtype = as_dtype(dtype)
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    if (isinstance(data, np.ndarray) or type(data).__module__.startswith("cupy")) and dtype in (None, data.dtype) \
            and (device is None or _be.device(device) == _be.device_of(data)) \
            and (data.dtype.kind in "biu" or data.dtype in _FLOATS):
        return Tensor(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(arr):
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(arr).__name__}")
    return Tensor(arr)


def _make(fill, shape, dtype, device, requires_grad):
    dtype = as_dtype(dtype) or _default_dtype
    dev = _be.device(device)
    t = Tensor(fill(dev.xp, _shape_arg(shape), dtype))
    if requires_grad:
        t.requires_grad_(True)
    return t


@_function.recorded
def zeros(*shape, dtype=None, device=None, requires_grad=False):
    return _make(lambda xp, s, dt: xp.zeros(s, dt), shape, dtype, device, requires_grad)


@_function.recorded
def ones(*shape, dtype=None, device=None, requires_grad=False):
    return _make(lambda xp, s, dt: xp.ones(s, dt), shape, dtype, device, requires_grad)


@_function.recorded
def empty(*shape, dtype=None, device=None, requires_grad=False):
    return _make(lambda xp, s, dt: xp.empty(s, dt), shape, dtype, device, requires_grad)


@_function.recorded
def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if dtype is None:
        dtype = bool_ if isinstance(fill_value, bool) else (
            int64 if isinstance(fill_value, int) else _default_dtype)
    return _make(lambda xp, s, dt: xp.full(s, _int_scalar(fill_value, dt), dt), (size,), dtype, device,
                 requires_grad)


@_function.recorded
def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = int64 if all(isinstance(v, (int, np.integer)) for v in (start, end, step)) else _default_dtype
    dev = _be.device(device)
    t = Tensor(dev.xp.arange(start, end, step, dtype=as_dtype(dtype)))
    if requires_grad:
        t.requires_grad_(True)
    return t


@_function.recorded
def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    dev = _be.device(device)
    t = Tensor(dev.xp.linspace(start, end, steps, dtype=as_dtype(dtype) or _default_dtype))
    if requires_grad:
        t.requires_grad_(True)
    return t


@_function.recorded
def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _make(lambda xp, s, dt: xp.eye(n, m, dtype=dt), (), dtype, device, requires_grad)


@_function.recorded
def zeros_like(t, dtype=None, device=None, requires_grad=False):
    return zeros(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


@_function.recorded
def ones_like(t, dtype=None, device=None, requires_grad=False):
    return ones(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


@_function.recorded
def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


@_function.recorded
def empty_like(t, dtype=None, device=None, requires_grad=False):
    return empty(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


# -- in-place machinery: version counters, views, rebasing (see Tensor._inplace) ----------------------
_op_add, _op_sub, _op_mul, _op_div, _op_pow = operator.add, operator.sub, operator.mul, operator.truediv, operator.pow
_op_floordiv, _op_mod, _op_xor = operator.floordiv, operator.mod, operator.xor
_op_lshift, _op_rshift = operator.lshift, operator.rshift
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "V": 2, "c": 3}


def _tname(dt):
    return _promo.short_name(dt)


_bump = _function.bump


def _overlaps(a):
    """Whether two elements of the strided array ``a`` may share memory: an expanded tensor (a zero stride) or
    overlapping ``unfold`` windows (step < size). NOTE: conservative, as PyTorch's overlap check: the strides sorted
    by size must each clear the span of the smaller ones; an exotic ``as_strided`` layout that interleaves without
    overlapping is refused too."""
    span = a.itemsize
    for st, n in sorted((abs(st), n) for st, n in zip(a.strides, a.shape) if n > 1):
        if st < span:
            return True
        span += st * (n - 1)
    return False


def _write(t, idx, value, overlap_ok=False):
    """``t._data[idx] = value``, then bump t's version. Refused when the written region has elements sharing memory,
    except for ``overlap_ok`` writes (fill_/zero_): as PyTorch for an expanded tensor; for overlapping unfold windows
    PyTorch applies an in-place op once per window covering an element (a thread-dependent result), so gpugrad
    refuses rather than compute something else."""
    arr = t._data
    if not overlap_ok and not (arr.flags.c_contiguous or arr.flags.f_contiguous):
        region = arr if idx is Ellipsis else arr[idx] if _sh._is_basic(idx if isinstance(idx, tuple) else (idx,)) \
            else None
        # NOTE: an empty region has no elements to share (NumPy gives empty results zero strides)
        if region is not None and region.size and _overlaps(region):
            raise RuntimeError("unsupported operation: more than one element of the written-to tensor refers to a "
                               "single memory location. Please clone() the tensor before performing the operation.")
    if type(arr) is np.ndarray and not arr.flags.writeable:
        arr = _writable(arr)
    n = t._node if t._view is None else t._view[0]._node  # the node whose output this memory is
    if n is not None and n.cow:
        n.own_output()
    arr[idx] = value
    _bump(t)


def _writable(arr):
    """A writable alias of a read-only numpy view (numpy marks broadcast and diagonal views read-only by
    policy; PyTorch's are writable), or an error when the memory itself is read-only."""
    owner = arr
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    if not owner.flags.writeable:
        raise RuntimeError("the tensor's memory is read-only (it was made from a read-only NumPy array): "
                           "clone() it before writing to it")
    off = arr.__array_interface__["data"][0] - owner.__array_interface__["data"][0]
    return np.ndarray(arr.shape, arr.dtype, buffer=owner, offset=off, strides=arr.strides)


def _check_result(t, r, cast):
    if r.shape != t.shape:
        try:
            b = np.broadcast_shapes(r.shape, t.shape)
        except ValueError:
            b = None
        if b != t.shape:
            raise RuntimeError(f"output with shape {list(t.shape)} doesn't match the broadcast shape "
                               f"{list(b or r.shape)}")
    if cast and _KIND_RANK[r.dtype.kind] > _KIND_RANK[t.dtype.kind]:
        raise RuntimeError(f"result type {_tname(r.dtype)} can't be cast to the desired output type {_tname(t.dtype)}")


def _broadcast_into(t, shape, what):
    try:
        ok = np.broadcast_shapes(shape, t.shape) == t.shape
    except ValueError:
        ok = False
    if not ok:
        raise RuntimeError(f"{what}: the source of shape {list(shape)} cannot be broadcast to the destination "
                           f"shape {list(t.shape)}")


def _inplace_checks(t):
    """PyTorch's refusals of an in-place op recorded by autograd on t (a leaf that requires grad, a view of one, a view
    made under no_grad)."""
    v = t._view
    if v is not None and not t._rg and v[0]._rg:
        raise RuntimeError("A view was created in no_grad mode and is being modified inplace with grad mode "
                           "enabled. Given that this use case is ambiguous and error-prone, it is forbidden. You "
                           "can clarify your code by moving both the view and the inplace either both inside the "
                           "no_grad block (if you don't want the inplace to be tracked) or both outside (if you "
                           "want the inplace to be tracked).")
    if t._node is None and t._rg:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    if v is not None and v[0]._node is None and v[0]._rg:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")


def _snapshot(t, copy):
    """A Tensor with t's graph identity as it is now (the ``prev`` of the node t gets rebased onto)."""
    old = Tensor(_engine._copy(t._data) if copy else t._data)
    if not copy:
        old._ver = t._ver
    old._rg, old._node = t._rg, t._node
    return old


def _rebase(t, node, prev):
    _state.rebased = True
    node.prev = prev
    t._node = node
    t._rg = True
    old = prev._node
    if old is not None and old.hooks:
        kept = [h for h in old.hooks if getattr(h, "retains", None) is t]
        if kept:  # NOTE: retain_grad() follows the tensor to its new version, as in PyTorch
            old.hooks = [h for h in old.hooks if h not in kept]
            node.hooks = (node.hooks or []) + kept


def _views_stale(root):
    """root's graph changed and it has views: they regenerate their grad_fn on next use (Primitive.apply)."""
    if root._ver[2]:
        root._ver[1] += 1
        _state.views_rebased = True


def _mkview(out, src, kind, arg):
    """Mark ``out`` (made from src by a view op) as a view: shared version counter and a recipe from its root."""
    if out is src or not _shares(out._data, src._data):
        return out
    v = src._view
    root, chain = (src, ()) if v is None else (v[0], v[1])
    ver = src._ver
    ver[2] = 1
    out._ver = ver
    out._view = (root, chain + ((kind, arg),), ver[1])
    return out


def _shares(a, b):
    if type(a) is np.ndarray:
        ba = a if a.base is None else a.base
        return ba is (b if b.base is None else b.base)
    return bool(_be.xp_of(a).may_share_memory(a, b))


def _refresh_view(t):
    """Regenerate a view's graph from its root after the root (or another view of it) was rebased."""
    root, chain, _ = t._view
    if not _state.grad_enabled:
        return
    old = _snapshot(t, False)
    fresh = _sh.view_of_tensor(root, chain)
    t._view = (root, chain, root._ver[1])
    if fresh._node is not None:
        _rebase(t, fresh._node, old)


_function._view_refresh = _refresh_view


_CTYPE = {"float32": "float", "float64": "double", "float16": "c10::Half", "bfloat16": "c10::BFloat16",
          "int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
          "bool": "bool"}  # PyTorch's C++ type names, as its dtype-check messages spell them


def lerp(input, end, weight):  # noqa: A002
    """input + weight * (end - input), computed as PyTorch does (from the nearer end for |weight| >= 0.5).

    As PyTorch: ``end`` (and a ``weight`` Tensor that is not 0-d) must have input's dtype, a floating one."""
    if not isinstance(end, Tensor):
        raise TypeError(f"lerp(): argument 'end' (position 2) must be Tensor, not {type(end).__name__}")
    dt = input._data.dtype
    for what, o in (("end", end), ("weight", weight)):
        if isinstance(o, Tensor) and (o.ndim or what == "end") and o._data.dtype != dt:
            raise RuntimeError(f"expected dtype {_CTYPE[dt.name]} for `{what}` but got dtype "
                               f"{_CTYPE[o._data.dtype.name]}")
    if not is_floating(dt):
        kind = "tensor" if isinstance(weight, Tensor) and weight.ndim else "scalar"
        raise NotImplementedError(f"\"lerp_kernel_{kind}\" not implemented for '{_tname(dt)}'")
    d = end - input
    if isinstance(weight, Tensor):
        return where(weight.abs() < 0.5, input + weight * d, end - d * (1 - weight))
    return input + weight * d if abs(weight) < 0.5 else end - d * (1 - weight)


def addcmul(input, tensor1, tensor2, value=1):  # noqa: A002
    return input + value * tensor1 * tensor2 if value != 1 else input + tensor1 * tensor2


def addcdiv(input, tensor1, tensor2, value=1):  # noqa: A002
    return input + value * tensor1 / tensor2 if value != 1 else input + tensor1 / tensor2


_SCATTER_DTYPE = "scatter(): Expected self.dtype to be equal to src.dtype (self {}, src {})"


def _same_dtype(t, src, msg):
    """PyTorch's error (``msg`` with the two dtype names) when an indexed update's source has another dtype than
    self: PyTorch refuses rather than promoting or casting."""
    if isinstance(src, Tensor) and src.dtype != t.dtype:
        raise RuntimeError(msg.format(_tname(t.dtype), _tname(src.dtype)) +
                           f"; cast the source first with .to(gg.{t.dtype})")


def _dim_index(t, dim, index, what, negative=True):
    """The index tuple selecting ``index`` (a 1-D int tensor) along ``dim`` of t; ``negative``: -n..-1 count from
    the end (index_fill), else they are out of range as in PyTorch's index_add/index_copy."""
    d = _one(dim, max(t.ndim, 1))
    idx = index._data if isinstance(index, Tensor) else t.xp.asarray(index)
    if idx.ndim > 1 or idx.dtype.kind not in "iu":
        raise IndexError(f"{what}: index must be a 1-D integer tensor, got shape {tuple(idx.shape)} and dtype "
                         f"{idx.dtype}")
    n = t.shape[d] if t.ndim else 1
    if idx.size and (int(idx.min()) < (-n if negative else 0) or int(idx.max()) >= n):
        bad = int(idx.max()) if int(idx.max()) >= n else int(idx.min())
        raise IndexError(f"{what}: index {bad} is out of bounds for dimension {d} with size {n}")
    return (slice(None),) * d + (idx.reshape(-1),)


def _scatter_index(t, dim, index, what):
    """Advanced index into t for scatter/gather along ``dim``: out[i][index[i][j]][k] for dim=1."""
    idx = index._data if isinstance(index, Tensor) else t.xp.asarray(index)
    if idx.dtype.kind not in "iu" or idx.ndim != t.ndim:
        raise RuntimeError(f"{what}: index must be an int64 tensor with as many dims as self ({t.ndim}), got "
                           f"shape {tuple(idx.shape)} and dtype {idx.dtype}")
    d = _one(dim, t.ndim)
    if any(idx.shape[i] > t.shape[i] for i in range(t.ndim) if i != d):
        raise RuntimeError(f"{what}: index {tuple(idx.shape)} is larger than self {tuple(t.shape)} apart from "
                           f"dimension {d}")
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= t.shape[d]):
        raise RuntimeError(f"{what}: index {int(idx.max()) if int(idx.max()) >= t.shape[d] else int(idx.min())} "
                           f"is out of bounds for dimension {d} with size {t.shape[d]}")
    xp = t.xp
    grid = xp.ix_(*[xp.arange(s) for s in idx.shape]) if idx.ndim else ()
    return tuple(idx if i == d else grid[i] for i in range(t.ndim)), tuple(slice(0, s) for s in idx.shape)


def _idx_add(t, src, idx):
    return _sh.IndexAddTo.apply(t, src, idx=idx)
