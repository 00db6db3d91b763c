"""``gg.autocast``: regions where ops run in a lower precision where PyTorch's per-device lists say so.

The lists are PyTorch's (the "Autocast Op Reference" of https://pytorch.org/docs/stable/amp.html,
checked against torch 2.13's CPU autocast in tests/test_amp.py), restricted to the ops gpugrad has:

- ``LOWER``: run in the autocast dtype (float16/bfloat16): the matmul / linear / conv family;
- ``FP32``: run in float32 (inputs in float16/bfloat16 are widened): on CUDA exp, log, pow, softmax,
  sums, norms, losses...; on the CPU the losses, prod, cdist, trace and the decompositions (on the
  CPU, e.g. softmax, sum and layer_norm of a low-precision input stay in it, as in PyTorch);
- ``PROMOTE``: inputs widened to the widest floating dtype among them;
- ``binary_cross_entropy`` raises under CUDA autocast (PyTorch: unsafe to autocast).
Every other op runs in the dtype of its inputs (ordinary promotion).

Mechanics: each listed op is wrapped once (:func:`install`): outside autocast the wrapper is one
global check; inside, it casts the eligible tensor arguments (floating, not float64; an explicit
``dtype=`` argument makes a call ineligible, as in PyTorch) and runs the op with autocast excluded,
so ops composed of other listed ops are cast once, at the top. Casts are differentiable (the
backward returns gradients in the original dtype). With ``cache_enabled`` the low-precision copy of a
leaf tensor that requires grad (a parameter) is made once per outermost autocast region (kept while
its version is unchanged). State is per thread; regions nest, and ``enabled=False`` turns autocast
off inside an enabled one.
"""
from __future__ import annotations

import functools
import sys
import threading

import numpy as np

from .._dtypes import LOWP, bfloat16 as _bf16, is_float as _isf

__all__ = ["autocast", "is_autocast_enabled", "get_autocast_dtype", "install", "POLICIES"]

_LOWER_COMMON = ("matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "baddbmm", "addbmm", "linear",
                 "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "prelu")
_CUDA_FP32 = ("__pow__", "__rpow__", "__rtruediv__", "acos", "asin", "binary_cross_entropy_with_logits", "cosh",
              "cosine_embedding_loss", "cdist", "cosine_similarity", "cross_entropy", "cumprod", "cumsum", "dist",
              "erfinv", "exp", "expm1", "group_norm", "hinge_embedding_loss", "kl_div", "l1_loss", "layer_norm",
              "log", "log_softmax", "log10", "log1p", "log2", "margin_ranking_loss", "mse_loss",
              "multilabel_margin_loss", "multi_margin_loss", "nll_loss", "norm", "normalize", "pdist",
              "poisson_nll_loss", "pow", "prod", "reciprocal", "rsqrt", "sinh", "smooth_l1_loss",
              "soft_margin_loss", "softmax", "softmin", "softplus", "sum", "renorm", "tan", "triplet_margin_loss")
_CPU_FP32 = ("binary_cross_entropy", "prod", "quantile", "nanquantile", "cdist", "trace", "cholesky", "inverse",
             "pinverse", "mse_loss", "cosine_embedding_loss", "nll_loss", "hinge_embedding_loss", "poisson_nll_loss",
             "smooth_l1_loss", "cross_entropy", "l1_loss", "huber_loss", "margin_ranking_loss", "soft_margin_loss",
             "triplet_margin_loss", "multi_margin_loss", "kl_div", "multilabel_margin_loss",
             "binary_cross_entropy_with_logits", "qr", "svd",
             # gg.linalg (PyTorch's linalg_* entries of the CPU list)
             "linalg.inv", "linalg.cholesky", "linalg.qr", "linalg.svd", "linalg.svdvals", "linalg.eigh",
             "linalg.eigvalsh", "linalg.solve", "linalg.pinv", "linalg.lstsq", "linalg.matrix_rank")

POLICIES = {
    "cuda": {**{n: "lower" for n in _LOWER_COMMON + ("addmv", "addr", "mv", "chain_matmul", "linalg.multi_dot")},
             **{n: "fp32" for n in _CUDA_FP32},
             **{n: "promote" for n in ("addcdiv", "addcmul", "atan2", "bilinear", "cross", "dot", "scatter_add",
                                       "tensordot")},
             "binary_cross_entropy": "banned"},
    "cpu": {**{n: "lower" for n in _LOWER_COMMON + ("scaled_dot_product_attention",)},
            **{n: "fp32" for n in _CPU_FP32},
            **{n: "promote" for n in ("stack", "cat", "concat", "index_copy")}},
}

_BANNED = ("torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are unsafe to autocast.\n"
           "Many models use a sigmoid layer right before the binary cross entropy layer.\n"
           "In this case, combine the two layers using torch.nn.functional.binary_cross_entropy_with_logits\n"
           "or torch.nn.BCEWithLogitsLoss.  binary_cross_entropy_with_logits and BCEWithLogits are\n"
           "safe to autocast.")


class _State(threading.local):
    def __init__(self):
        self.on = {"cuda": False, "cpu": False}
        self.dtype = {"cuda": np.dtype(np.float16), "cpu": np.dtype(np.float16)}  # NOTE: read only while enabled
        self.cache_on = True
        self.excluded = 0
        self.depth = 0
        self.cache = {}


_tls = _State()
_ACTIVE = [0]  # NOTE: threads inside an enabled region; 0 makes every wrapper a single check
_lock = threading.Lock()


def _default_dtype(device_type):
    # NOTE: PyTorch's defaults; bfloat16 needs ml_dtypes, and without it the error says how to get it
    #       (never another dtype silently)
    return np.dtype(np.float16) if device_type == "cuda" else _bf16()


def is_autocast_enabled(device_type="cuda"):
    return _tls.on[device_type]


def get_autocast_dtype(device_type):
    return _tls.dtype[device_type]


class autocast:
    """``with gg.autocast(device_type="cuda"|"cpu", dtype=None, enabled=True, cache_enabled=True): ...``
    and ``@gg.autocast(...)``. dtype defaults to float16 on CUDA and bfloat16 on the CPU (as PyTorch)."""

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        if device_type not in ("cuda", "cpu"):
            raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
        from ..tensor import as_dtype  # noqa: PLC0415
        self.device = device_type
        self._enabled = bool(enabled)
        # NOTE: a disabled region needs no dtype (the CPU default, bfloat16, is only refused when used)
        self.fast_dtype = as_dtype(dtype) if dtype is not None else \
            (_default_dtype(device_type) if self._enabled else np.dtype(np.float16))
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        if self._enabled and self.fast_dtype not in LOWP:
            # NOTE: PyTorch warns and disables autocast for an unsupported dtype; gpugrad refuses it
            raise RuntimeError(f"In {device_type} autocast, but the target dtype is not supported: autocast "
                               f"supports float16 and bfloat16, got {self.fast_dtype}")

    def __enter__(self):
        st = _tls
        self._prev = (st.on[self.device], st.dtype[self.device], st.cache_on)
        was_active = st.on["cuda"] or st.on["cpu"]
        st.on[self.device], st.dtype[self.device] = self._enabled, self.fast_dtype
        st.cache_on = self._cache_enabled
        st.depth += 1
        now_active = st.on["cuda"] or st.on["cpu"]
        if now_active != was_active:
            with _lock:
                _ACTIVE[0] += 1 if now_active else -1
        return self

    def __exit__(self, *exc):
        st = _tls
        was_active = st.on["cuda"] or st.on["cpu"]
        st.on[self.device], st.dtype[self.device], st.cache_on = self._prev
        st.depth -= 1
        if st.depth == 0:
            st.cache.clear()  # NOTE: PyTorch clears the cast cache when the outermost region exits
        now_active = st.on["cuda"] or st.on["cpu"]
        if now_active != was_active:
            with _lock:
                _ACTIVE[0] += 1 if now_active else -1
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def decorated(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled, self._cache_enabled):
                return func(*args, **kwargs)
        return decorated


# -- the wrappers -------------------------------------------------------------------------------------

def _first_device(args, kwargs):
    from ..tensor import Tensor  # noqa: PLC0415
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, Tensor):
            return a.device.type
        if isinstance(a, (list, tuple)):
            for b in a:
                if isinstance(b, Tensor):
                    return b.device.type
    return None


def _eligible(t):
    return _isf(t.dtype) and t.dtype != np.float64  # NOTE: float64 is never cast (PyTorch's is_eligible)


def _cast(t, dtype):
    if t.dtype == dtype:
        return t
    st = _tls
    if st.cache_on and t.is_leaf and t.requires_grad:
        key = (id(t), dtype)
        hit = st.cache.get(key)
        if hit is not None and hit[0] is t and hit[1] == t._version:
            return hit[2]
        out = t.to(dtype)
        st.cache[key] = (t, t._version, out)
        return out
    return t.to(dtype)


def _map(v, fn):
    from ..tensor import Tensor  # noqa: PLC0415
    if isinstance(v, Tensor):
        return fn(v)
    if isinstance(v, (list, tuple)):
        return type(v)(_map(b, fn) for b in v)
    return v


def _tensors(vals):
    from ..tensor import Tensor  # noqa: PLC0415
    for v in vals:
        if isinstance(v, Tensor):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from _tensors(v)


# NOTE: calls from gpugrad's op implementations (an unlisted op built from listed ones, a method calling
#       another) are not autocast: the cast happens where the user (or an nn.Module) calls the op.
_INTERNAL = ("gpugrad.tensor", "gpugrad.ops", "gpugrad.nn.functional", "gpugrad.fused", "gpugrad.linalg",
             "gpugrad.autograd", "gpugrad.func", "gpugrad.amp")


def _hook(name, fn):
    if getattr(fn, "_autocast_op", None) is not None:
        return fn

    @functools.wraps(fn)
    def op(*args, **kwargs):
        if not _ACTIVE[0]:
            return fn(*args, **kwargs)
        st = _tls
        if st.excluded or sys._getframe(1).f_globals.get("__name__", "").startswith(_INTERNAL):
            return fn(*args, **kwargs)
        dev = _first_device(args, kwargs)
        if dev is None or not st.on.get(dev) or kwargs.get("dtype") is not None:
            return fn(*args, **kwargs)
        policy = POLICIES[dev].get(name)
        if policy is None:
            return fn(*args, **kwargs)
        if policy == "banned":
            raise RuntimeError(_BANNED)
        if policy == "lower":
            target = st.dtype[dev]
        elif policy == "fp32":
            target = np.dtype(np.float32)
        else:  # promote: the widest floating dtype among the arguments
            from .._promotion import promote_types  # noqa: PLC0415
            floats = [t.dtype for t in _tensors(list(args) + list(kwargs.values())) if _isf(t.dtype)]
            if not floats:
                return fn(*args, **kwargs)
            target = functools.reduce(promote_types, floats)
        cast = lambda t: _cast(t, target) if _eligible(t) else t  # noqa: E731
        args = tuple(_map(a, cast) for a in args)
        kwargs = {k: _map(v, cast) for k, v in kwargs.items()}
        st.excluded += 1
        try:
            return fn(*args, **kwargs)
        finally:
            st.excluded -= 1
    op._autocast_op = name
    return op


def install(namespace, names=None, prefix=""):
    """Wrap the listed ops found in ``namespace`` (a module's globals dict, or a class) in place."""
    listed = set(POLICIES["cuda"]) | set(POLICIES["cpu"])
    is_dict = isinstance(namespace, dict)
    for full in sorted(listed):
        if prefix and not full.startswith(prefix):
            continue
        if not prefix and "." in full:
            continue
        attr = full[len(prefix):]
        fn = namespace.get(attr) if is_dict else namespace.__dict__.get(attr)
        if fn is None or not callable(fn):
            continue
        wrapped = _hook(full, fn)
        if is_dict:
            namespace[attr] = wrapped
        else:
            setattr(namespace, attr, wrapped)
