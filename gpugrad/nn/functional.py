"""``gg.nn.functional`` (``F``): stateless layers, PyTorch names, arguments and semantics.

Activations, softmax/log_softmax/logsumexp and the losses are fused ops from gpugrad.ops.activation,
gpugrad.ops.softmax and gpugrad.ops.loss, re-exported here. Everything else in this file is a
composite of core Tensor ops plus the sliding-window primitives of gpugrad.ops.conv.
"""
from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from .._dtypes import LOWP as _LOWP, is_float as _isf
from .. import _promotion as _promo
from .. import random as _random
from ..autograd.grad_mode import is_grad_enabled as _grad_enabled
from ..autograd.grad_mode import no_grad
from ..ops import activation as _act
from ..ops import conv as _conv
from ..ops import index as _index
from ..ops import loss as _loss
from ..ops import softmax as _softmax
from ..ops.activation import *  # noqa: F403  (the fused ops are re-exported)
from ..ops.linalg import Linear as _Linear
from ..ops import nnops as _nnops
from ..ops.nnops import BinaryCrossEntropy as _BCE
from ..ops.loss import *  # noqa: F403
from ..ops.reduce import MaxMin as _MaxMin
from ..ops.softmax import *  # noqa: F403
from ..ops.attention import scaled_dot_product_attention  # fused attention (issue 16)
from ..tensor import Tensor, matmul, stack, where
from ..tensor import one_hot as _one_hot
from ..tensor import pad as _core_pad

__all__ = ["linear", "conv2d", "unfold", "fold", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "batch_norm",
           "layer_norm", "group_norm", "dropout", "embedding", "pad", "one_hot", "flatten", "normalize"]
__all__ += _act.__all__ + _softmax.__all__ + _loss.__all__  # the re-exported fused ops
__all__ += ["scaled_dot_product_attention"]


# -- argument helpers -------------------------------------------------------------------------------
def _pair(v, name):
    if isinstance(v, numbers.Integral):
        return (int(v), int(v))
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v}")
    return v


def _pads(padding):
    """int or (ph, pw) -> ((ph, ph), (pw, pw))."""
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
    return ((ph, ph), (pw, pw))


def _as_4d(x, name):
    """Accept (N, C, H, W) or unbatched (C, H, W) input; return the 4-D tensor and whether to squeeze."""
    if x.ndim == 4:
        return x, False
    if x.ndim == 3:
        return x.unsqueeze(0), True
    raise ValueError(f"{name}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {tuple(x.shape)}")


# -- linear / conv --------------------------------------------------------------------------------
def linear(input, weight, bias=None):  # noqa: A002
    """y = input @ weight.T + bias (one graph node). weight: (out, in), bias: (out,)."""
    wdt = weight._data.dtype
    if input._data.dtype != wdt or (bias is not None and bias._data.dtype != wdt):
        # NOTE: no promotion, as PyTorch: its error names the kernel linear dispatches to (mm / addmm)
        n = _promo.short_name
        if bias is None:
            raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {_promo.cpp_name(input.dtype)} "
                               f"!= {_promo.cpp_name(weight.dtype)}")
        if input.dtype != weight.dtype:
            raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {n(input.dtype)} and "
                               f"{n(weight.dtype)}")
        raise RuntimeError(f"self and mat2 must have the same dtype, but got {n(bias.dtype)} and {n(weight.dtype)}")
    if input.shape[-1] != weight.shape[-1]:
        raise RuntimeError(f"linear: input has {input.shape[-1]} features (shape {tuple(input.shape)}) but weight "
                           f"expects {weight.shape[-1]} (shape {tuple(weight.shape)})")
    return _Linear.apply(input, weight) if bias is None else _Linear.apply(input, weight, bias)


def _conv_padding(padding, kernel, dilation, stride):
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            out = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                out.append((total // 2, total - total // 2))
            return tuple(out)
        raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    return _pads(padding)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """2-D convolution (cross-correlation, as PyTorch): the fused ``Conv2d`` primitive of gpugrad.ops.conv.

    input (N, C_in, H, W) or (C_in, H, W); weight (C_out, C_in/groups, KH, KW); bias (C_out,).
    """
    # NOTE: no promotion, as PyTorch (the bias is checked first; the weight message is its CUDA/oneDNN one)
    if bias is not None and bias.dtype != input.dtype:
        raise RuntimeError(f"Input type ({_promo.cpp_name(input.dtype)}) and bias type ({_promo.cpp_name(bias.dtype)}) "
                           "should be the same")
    if weight.dtype != input.dtype:
        raise RuntimeError(f"Input type ({_promo.tensor_type_name(input.dtype, input.is_cuda)}) and weight type "
                           f"({_promo.tensor_type_name(weight.dtype, weight.is_cuda)}) should be the same")
    x, unbatched = _as_4d(input, "conv2d")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (C_out, C_in/groups, KH, KW), got shape {tuple(weight.shape)}")
    n, c, h, w = x.shape
    oc, cg, kh, kw = weight.shape
    if c != cg * groups:
        raise RuntimeError(f"conv2d: input has {c} channels but weight {tuple(weight.shape)} with groups={groups} "
                           f"expects {cg * groups}")
    if oc % groups:
        raise ValueError(f"conv2d: out_channels {oc} must be divisible by groups {groups}")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    pads = _conv_padding(padding, (kh, kw), dilation, stride)
    args = (x, weight) if bias is None else (x, weight, bias)
    prm = dict(stride=stride, padding=pads, dilation=dilation, groups=groups)
    # NOTE: integer convolutions keep the composite (matmul's integer semantics); floats take the fused primitive
    y = _conv.Conv2d.apply(*args, **prm) if _isf(x.dtype) else _conv.Conv2d.composite(*args, **prm)
    return y.squeeze(0) if unbatched else y


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):  # noqa: A002
    """Sliding local blocks: (N, C, H, W) -> (N, C*KH*KW, L) (PyTorch's F.unfold)."""
    x, unbatched = _as_4d(input, "unfold")
    k = _pair(kernel_size, "kernel_size")
    cols = _conv.im2col(x, k, _pair(stride, "stride"), _pads(padding), _pair(dilation, "dilation"))
    c, n = cols.shape[0], cols.shape[3]
    out = cols.permute(3, 0, 1, 2, 4, 5).reshape(n, c * k[0] * k[1], cols.shape[-2] * cols.shape[-1])
    return out.squeeze(0) if unbatched else out


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):  # noqa: A002
    """The adjoint of unfold: (N, C*KH*KW, L) -> (N, C, H, W), summing overlapping values."""
    x = input if input.ndim == 3 else input.unsqueeze(0)
    size, k = _pair(output_size, "output_size"), _pair(kernel_size, "kernel_size")
    stride, dilation, pads = _pair(stride, "stride"), _pair(dilation, "dilation"), _pads(padding)
    oh = _conv.out_size(size[0], k[0], stride[0], *pads[0], dilation[0])
    ow = _conv.out_size(size[1], k[1], stride[1], *pads[1], dilation[1])
    n, ck, L = x.shape
    if ck % (k[0] * k[1]) or L != oh * ow:
        raise RuntimeError(f"fold: input of shape {tuple(input.shape)} does not match kernel {k} and {oh}x{ow} "
                           f"block positions for output size {size}")
    cols = x.reshape(n, ck // (k[0] * k[1]), k[0], k[1], oh, ow).permute(1, 2, 3, 0, 4, 5)
    out = _conv.col2im(cols, size, k, stride, pads, dilation)
    return out if input.ndim == 3 else out.squeeze(0)


# -- pooling --------------------------------------------------------------------------------------
def _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, name):
    if 0 in x.shape[1:]:  # NOTE: as PyTorch: only the batch may be empty (x is 4-D here: an unbatched input got N=1)
        raise RuntimeError(f"Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but "
                           f"got:{list(x.shape)}")
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0) else _pair(stride, "stride")
    p, d = _pair(padding, "padding"), _pair(dilation, "dilation")
    for pi, ki in zip(p, k):
        if pi < 0 or pi > ki // 2:
            raise RuntimeError(f"pad should be smaller than or equal to half of kernel size, but got padding="
                               f"{padding} and kernel_size={kernel_size} in {name}")  # NOTE: PyTorch's type
    h, w = x.shape[-2:]
    pads = []
    for n_, k_, s_, p_, d_ in zip((h, w), k, s, p, d):
        extra = 0
        if ceil_mode:
            span = n_ + 2 * p_ - d_ * (k_ - 1) - 1
            o = -(-span // s_) + 1
            if (o - 1) * s_ >= n_ + p_:  # NOTE: the last window must start inside the input or the left padding
                o -= 1
            extra = max(0, (o - 1) * s_ + d_ * (k_ - 1) + 1 - (n_ + 2 * p_))
        pads.append((p_, p_ + extra))
    return k, s, tuple(pads), d, p


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):
    """Max over each window (padding counts as -inf); the gradient goes to the window's argmax."""
    x, unbatched = _as_4d(input, "max_pool2d")
    k, s, pads, d, _ = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    if k == s and pads == ((0, 0), (0, 0)) and d == (1, 1) and not return_indices:
        y = _conv.MaxTiles.apply(x, kernel=k)  # NOTE: non-overlapping windows (the CNNs' 2x2 pools): fused
        return y.squeeze(0) if unbatched else y
    y, idx = _conv.max_pool(x, k, s, pads, d)
    if unbatched:
        y = y.squeeze(0)
    if not return_indices:
        return y
    flat = _conv.flat_argmax_index(idx[:, 0].transpose(1, 0, 2, 3), tuple(x.shape[-2:]), k, s, pads, d)
    return y, Tensor(flat[0] if unbatched else flat)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,  # noqa: A002
               divisor_override=None):
    """Mean over each window; zero padding counts in the divisor unless count_include_pad=False."""
    x, unbatched = _as_4d(input, "avg_pool2d")
    k, s, pads, d, p = _pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    n, c, h, w = x.shape
    if divisor_override is None and k == s and pads == ((0, 0), (0, 0)) and h % k[0] == 0 and w % k[1] == 0:
        y = x.reshape(n, c, h // k[0], k[0], w // k[1], k[1]).mean((3, 5))  # NOTE: non-overlapping tiles: no copy
        return y.squeeze(0) if unbatched else y
    sums = _conv.im2col(x, k, s, pads, d).sum((1, 2)).permute(1, 0, 2, 3)
    if divisor_override is not None:
        y = sums / float(divisor_override)
    else:
        if count_include_pad and pads == ((p[0], p[0]), (p[1], p[1])):
            y = sums / float(k[0] * k[1])
        else:
            # NOTE: windows are counted over input + padding (count_include_pad) or the input alone; the
            # extra cells that ceil_mode adds past the padding never count.
            region = (0, h + 2 * p[0], 0, w + 2 * p[1]) if count_include_pad else (p[0], p[0] + h, p[1], p[1] + w)
            y = sums / Tensor(_conv.window_counts(x.xp, (h, w), k, s, pads, d, region, x.dtype))
    return y.squeeze(0) if unbatched else y


def _adaptive_matrix(xp, n, m, dtype):
    """(m, n) averaging matrix: row i averages input cells [floor(i*n/m), ceil((i+1)*n/m))."""
    a = np.zeros((m, n), dtype=np.float64)
    for i in range(m):
        lo, hi = (i * n) // m, -(-((i + 1) * n) // m)
        a[i, lo:hi] = 1.0 / (hi - lo)
    return Tensor(xp.asarray(a.astype(dtype)))


def adaptive_avg_pool2d(input, output_size):  # noqa: A002
    """Average pooling to a fixed output size (an int, a pair; None keeps that input size)."""
    x, unbatched = _as_4d(input, "adaptive_avg_pool2d")
    n, c, h, w = x.shape
    if isinstance(output_size, numbers.Integral) or output_size is None:
        output_size = (output_size, output_size)
    oh, ow = (h if output_size[0] is None else int(output_size[0])), (w if output_size[1] is None else int(output_size[1]))
    if oh <= 0 or ow <= 0:
        raise ValueError(f"adaptive_avg_pool2d: output size must be positive, got {output_size}")
    if h % oh == 0 and w % ow == 0:
        y = x.reshape(n, c, oh, h // oh, ow, w // ow).mean((3, 5))
    else:
        # NOTE: overlapping/uneven windows: y = A_h @ x @ A_w.T with constant averaging matrices.
        y = matmul(matmul(_adaptive_matrix(x.xp, h, oh, x.dtype), x), _adaptive_matrix(x.xp, w, ow, x.dtype).T)
    return y.squeeze(0) if unbatched else y


# -- normalisation ----------------------------------------------------------------------------------
def _standardized(input, axes, eps, weight=None, bias=None):  # noqa: A002
    """(input - mean) / sqrt(var + eps) over ``axes`` [* weight] [+ bias] as one node (ops.nnops.Standardize;
    weight and bias already shaped to broadcast), with the batch mean and biased variance arrays (size-1 dims
    kept) for the running statistics."""
    with np.errstate(invalid="ignore", divide="ignore"):  # NOTE: an empty group: NaN statistics, quietly
        if input.numel() == 0:
            import warnings  # noqa: PLC0415
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # NOTE: numpy's "mean of empty slice"
                d, mean, var = _nnops.moments(input._data, axes)
        else:
            d, mean, var = _nnops.moments(input._data, axes)
    wb = [t for t in (weight, bias) if t is not None]
    affine = ("w" if weight is not None else "") + ("b" if bias is not None else "")
    y = _nnops.Standardize.apply(input, *wb, axes=axes, eps=float(eps), mean=mean, var=var, work=[d], affine=affine)
    return y, mean, var


def _norm_dtypes(input, *params):  # noqa: A002
    """PyTorch's dtype rule for the normalization layers: the parameters (and running stats) have the
    input's dtype, or are float32 with a float16/bfloat16 input (mixed precision: the result is float16/bfloat16).
    Returns whether the result must be cast back to the input's dtype."""
    ps = [p for p in params if p is not None]
    if all(p.dtype == input.dtype for p in ps):
        return False
    n = _promo.short_name
    if any(p.dtype != ps[0].dtype for p in ps):
        bad = next(p for p in ps if p.dtype != input.dtype)
        raise RuntimeError(f"expected scalar type {n(input.dtype)} but found {n(bad.dtype)}")
    if ps[0].dtype != np.float32:
        raise RuntimeError(f"mixed dtype (CPU): expect parameter to have scalar type of Float (input is "
                           f"{n(input.dtype)}, parameters are {n(ps[0].dtype)})")
    if input.dtype not in _LOWP:
        raise RuntimeError(f"mixed dtype (CPU): all inputs must share same datatype. (input is {n(input.dtype)}, "
                           f"parameters are {n(ps[0].dtype)})")
    return True


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,  # noqa: A002
               eps=1e-5):
    """Batch normalisation over all dims but 1 (channels).

    training=True: normalise with the batch mean and biased variance, and (when given) update the
    running stats in place: ``running = (1 - momentum) * running + momentum * batch``, with the
    unbiased variance. training=False: use the running stats.
    """
    if momentum is None:  # NOTE: PyTorch's argument parser: a float, even in eval (BatchNorm maps None itself)
        raise TypeError("batch_norm(): argument 'momentum' (position 7) must be float, not NoneType")
    if not training and (running_mean is None or running_var is None):
        raise RuntimeError(f"running_{'mean' if running_mean is None else 'var'} must be defined in evaluation mode")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected at least 2-D input (N, C, ...), got shape {tuple(input.shape)}")
    mixed = _norm_dtypes(input, running_mean, running_var, weight, bias)
    c = input.shape[1]
    axes = (0,) + tuple(range(2, input.ndim))
    bshape = (1, c) + (1,) * (input.ndim - 2)
    if training:
        count = input.numel() // c
        if training and count == 1:  # NOTE: as PyTorch, an empty batch passes (and leaves the running stats)
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(input.shape)}")
        y, mean, var = _standardized(input, axes, eps, None if weight is None else weight.reshape(bshape),
                                     None if bias is None else bias.reshape(bshape))
        if training and running_mean is not None and count:
            with no_grad():
                m = float(momentum)
                rm, rv = running_mean._data, running_var._data
                rm[...] = (1 - m) * rm + m * mean.reshape(c).astype(rm.dtype, copy=False)
                unb = var.reshape(c) * (count / max(count - 1, 1))
                rv[...] = (1 - m) * rv + m * unb.astype(rv.dtype, copy=False)
        return y.type(input.dtype) if mixed else y
    else:
        inv = Tensor((running_var._data.astype(input.dtype, copy=False) + eps) ** -0.5)
        rm = Tensor(running_mean._data.astype(input.dtype, copy=False))
        scale = inv if weight is None else inv * weight
        y = (input - rm.reshape(bshape)) * scale.reshape(bshape)
    if bias is not None:
        y = y + bias.reshape(bshape)
    return y.type(input.dtype) if mixed else y


def _shape_arg(v, fn):
    """PyTorch's parse of ``normalized_shape`` (argument 2 of ``fn``): a tuple or list of ints; a bare int, a bool or
    a float raises TypeError (the modules accept an int and make it a tuple themselves)."""
    head = f"{fn}(): argument 'normalized_shape' (position 2) must be tuple of ints"
    if not isinstance(v, (tuple, list)):
        raise TypeError(f"{head}, not {type(v).__name__}")
    for i, e in enumerate(v):
        if isinstance(e, bool) or not hasattr(e, "__index__"):
            raise TypeError(f"{head}, but found element of type {type(e).__name__} at pos {i}")
    return tuple(int(e) for e in v)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):  # noqa: A002
    """Normalise over the trailing ``normalized_shape`` dims (biased variance), then scale and shift."""
    shape = _shape_arg(normalized_shape, "layer_norm")
    k = len(shape)
    if tuple(input.shape[input.ndim - k:]) != shape or input.ndim < k:
        raise RuntimeError(f"layer_norm: input shape {tuple(input.shape)} does not end with normalized_shape {shape}")
    mixed = _norm_dtypes(input, weight, bias)
    axes = tuple(range(input.ndim - k, input.ndim))
    # NOTE: the moments are taken inside the node (mean=None), block by block with the output (ops.nnops)
    wb = [t for t in (weight, bias) if t is not None]
    affine = ("w" if weight is not None else "") + ("b" if bias is not None else "")
    y = _nnops.Standardize.apply(input, *wb, axes=axes, eps=float(eps), affine=affine)
    return y.type(input.dtype) if mixed else y


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):  # noqa: A002
    """Normalise each group of channels of each sample; per-channel affine."""
    n, c = input.shape[:2]
    if c % num_groups:
        raise ValueError(f"group_norm: {c} channels are not divisible into {num_groups} groups")
    mixed = _norm_dtypes(input, weight, bias)
    # NOTE: groups and their channels apart: w, b broadcast per channel. The node takes the input as it is and
    # works on this view of it (``shape``), so x's gradient comes back in x's shape (no reshape node, no copy)
    gshape = (n, num_groups, c // num_groups, math.prod(input.shape[2:]))
    wshape = (1, num_groups, c // num_groups, 1)
    wb = [t.reshape(wshape) for t in (weight, bias) if t is not None]
    affine = ("w" if weight is not None else "") + ("b" if bias is not None else "")
    y = _nnops.Standardize.apply(input, *wb, axes=(2, 3), eps=float(eps), affine=affine, shape=gshape)
    return y.type(input.dtype) if mixed else y


def normalize(input, p=2.0, dim=1, eps=1e-12):  # noqa: A002
    """input / max(||input||_p over dim, eps)."""
    return input / input.norm(p, dim, keepdim=True).clamp(min=eps)


# -- dropout / embedding ------------------------------------------------------------------------------
def dropout(input, p=0.5, training=True, inplace=False):  # noqa: A002
    """Zero each element with probability p and scale the rest by 1/(1-p) (identity unless training).

    The mask comes from gpugrad.random.generator(device), so gg.manual_seed makes it reproducible.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input.mul_(0.0) if inplace else input * 0.0
    mask = Tensor(_dropout_mask(input.device, tuple(input.shape), input.dtype, p))
    return input.mul_(mask) if inplace else input * mask


def _dropout_mask(device, shape, dtype, p):
    """The scaled keep-mask of dropout: uniform draws from the device's generator >= p, times 1/(1-p), in ``dtype``
    (drawn in float32 for float16). A module function, so that gg.compile records the draw and repeats it."""
    dt = dtype if dtype in (np.float32, np.float64) else np.float32
    keep = _random.generator(device).random(shape, dtype=dt) >= p
    return (keep * (1.0 / (1.0 - p))).astype(dtype, copy=False)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,  # noqa: A002
              sparse=False):
    """Rows of ``weight`` (num_embeddings, dim) picked by the integer ``input``; shape input.shape + (dim,).

    ``padding_idx``: that row gets no gradient. ``max_norm``: rows looked up are renormalised in place.
    """
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse gradients are not supported")
    idx = input._data if isinstance(input, Tensor) else weight.xp.asarray(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {idx.dtype}")
    num = weight.shape[0]
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num):  # NOTE: no negative indices, as PyTorch
        raise IndexError(f"embedding: index out of range [0, {num}) (got min {int(idx.min())}, max {int(idx.max())})")
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise AssertionError("Padding_idx must be within num_embeddings")  # NOTE: PyTorch's type and text
        padding_idx %= num
    if max_norm is not None:
        with no_grad():
            xp = weight.xp
            rows = xp.unique(idx.reshape(-1))
            wd = weight._data
            norms = (xp.abs(wd[rows]) ** norm_type).sum(-1) ** (1.0 / norm_type)
            sc = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(wd.dtype)
            wd[rows] = wd[rows] * sc[:, None]
    out = weight[Tensor(idx)]
    if padding_idx is not None and weight.requires_grad:
        keep = Tensor((idx != padding_idx)[..., None])
        out = where(keep, out, out.detach())  # NOTE: same values; no gradient to the padding row
    return out


# -- shapes -----------------------------------------------------------------------------------------
def _pad_index(n, lo, hi, mode):
    if n + lo + hi < 0:
        raise RuntimeError("Negative padding value is resulting in an empty dimension" if mode == "circular" else
                           f"input (W: {n}) is too small. Calculated output W: {n + lo + hi}")
    i = np.arange(-lo, n + hi)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    if mode == "circular":
        # NOTE: as PyTorch, negative widths crop first and the positive ones wrap around the cropped part
        a, m = max(-lo, 0), n - max(-lo, 0) - max(-hi, 0)
        if max(lo, 0) > m or max(hi, 0) > m:
            raise RuntimeError("Padding value causes wrapping around more than once.")
        return a + np.arange(-max(lo, 0), m + max(hi, 0)) % max(m, 1)
    i = np.abs(i)
    return np.where(i > n - 1, 2 * (n - 1) - i, i)


_PAD_COMBOS = ("Supported combinations for non-constant padding:\n  - 2D or 3D input: padding size = 2 (pads last "
               "dimension)\n  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n  - 4D or 5D input: padding "
               "size = 6 (pads last 3 dimensions)")


def pad(input, pad, mode="constant", value=None):  # noqa: A002
    """torch.nn.functional.pad: ``pad`` = (left, right, top, bottom, ...) from the LAST dim backwards.

    Modes: 'constant' (``value``, default 0; any number of dims), and 'reflect', 'replicate', 'circular' on the last
    1, 2 or 3 dims of a (batched or unbatched) input, PyTorch's combinations and checks."""
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input dimension but got "
                           f"padding length {len(pad)} and input of dimension {input.ndim}")
    if mode == "constant":
        return _core_pad(input, pad, value=0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if value is not None and value != 0:
        raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
    k = len(pad) // 2
    if k not in (1, 2, 3) or input.ndim not in (k + 1, k + 2):
        raise NotImplementedError(f"Padding size {len(pad)} is not supported for {input.ndim}D input tensor.\n"
                                  + _PAD_COMBOS)
    if mode != "circular" and 0 in tuple(input.shape)[input.ndim - k - 1:]:
        raise RuntimeError(f"Expected {k + 1}D or {k + 2}D (batch mode) tensor with possibly 0 batch size and other "
                           f"non-zero dimensions for input, but got: {list(input.shape)}")
    y = input
    for i in range(k):
        d = input.ndim - 1 - i
        lo, hi = int(pad[2 * i]), int(pad[2 * i + 1])
        if mode == "reflect" and (lo >= y.shape[d] or hi >= y.shape[d]):
            raise RuntimeError(f"Argument #{4 + 2 * i}: Padding size should be less than the corresponding input "
                               f"dimension, but got: padding ({lo}, {hi}) at dimension {d} of input "
                               f"{list(input.shape)}")
        if lo == hi == 0:
            continue
        idx = y.xp.asarray(_pad_index(y.shape[d], lo, hi, mode))
        y = y[(slice(None),) * d + (Tensor(idx),)]
    return y


def one_hot(tensor, num_classes=-1):
    """(...,) integer classes -> (..., num_classes) int64 one-hot."""
    return _one_hot(tensor, num_classes)


def flatten(input, start_dim=0, end_dim=-1):  # noqa: A002
    return input.flatten(start_dim, end_dim)


# ====================================================================================================
# The everyday PyTorch nn ops (issue "The everyday PyTorch ops"): composites of core Tensor ops.
# ====================================================================================================
__all__ += ["conv1d", "conv3d", "conv_transpose1d", "conv_transpose2d", "max_pool1d", "avg_pool1d",
            "adaptive_avg_pool1d", "adaptive_max_pool1d", "adaptive_max_pool2d", "interpolate", "upsample",
            "pixel_shuffle", "pixel_unshuffle", "hardtanh", "relu6", "hardswish", "hardsigmoid", "celu", "glu",
            "prelu", "softsign", "tanhshrink", "threshold", "softmin", "binary_cross_entropy", "kl_div",
            "cosine_similarity", "pairwise_distance", "instance_norm", "rms_norm"]


def _const_like(x, value):
    return Tensor(x.xp.full((), value, dtype=x.dtype))


# -- 1-D / 3-D convolutions, transposed convolutions ----------------------------------------------------
def _single(v, name):
    if isinstance(v, numbers.Integral):
        return int(v)
    v = tuple(int(a) for a in v)
    if len(v) != 1:
        raise ValueError(f"{name} must be an int or a 1-tuple, got {v}")
    return v[0]


def _check_dims(x, dims, name):
    if x.ndim not in (dims, dims + 1):
        raise RuntimeError(f"Expected {dims}D (unbatched) or {dims + 1}D (batched) input to {name}, but got input of "
                           f"size: {list(x.shape)}")


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """1-D convolution: conv2d over a height-1 image. input (N, C_in, L) or (C_in, L); weight (C_out, C_in/groups, K)."""
    _check_dims(input, 2, "conv1d")
    if weight.ndim != 3:
        raise RuntimeError(f"conv1d: weight must be 3-D (C_out, C_in/groups, K), got shape {tuple(weight.shape)}")
    if input.shape[-2] != weight.shape[1] * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected input"
                           f"{list(input.shape)} to have {weight.shape[1] * groups} channels, but got "
                           f"{input.shape[-2]} channels instead")
    if not isinstance(padding, str):
        padding = (0, _single(padding, "padding"))
    y = conv2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, _single(stride, "stride")), padding,
               (1, _single(dilation, "dilation")), groups)
    return y.squeeze(-2)


def _triple(v, name):
    if isinstance(v, numbers.Integral):
        return (int(v),) * 3
    v = tuple(int(a) for a in v)
    if len(v) != 3:
        raise ValueError(f"{name} must be an int or a triple of ints, got {v}")
    return v


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """3-D convolution: for each output depth, the sum over kernel depths of 2-D convolutions (im2col).

    input (N, C_in, D, H, W) or unbatched; weight (C_out, C_in/groups, KD, KH, KW); integer/tuple padding only.
    """
    _check_dims(input, 4, "conv3d")
    if isinstance(padding, str):
        raise NotImplementedError("conv3d: string padding ('same'/'valid') is not supported; pass integers")
    x = input if input.ndim == 5 else input.unsqueeze(0)
    if weight.ndim != 5:
        raise RuntimeError(f"conv3d: weight must be 5-D, got shape {tuple(weight.shape)}")
    if x.shape[1] != weight.shape[1] * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected input"
                           f"{list(input.shape)} to have {weight.shape[1] * groups} channels, but got "
                           f"{x.shape[1]} channels instead")
    (sd, sh, sw), (pd, ph, pw), (dd, dh, dw) = _triple(stride, "stride"), _triple(padding, "padding"), \
        _triple(dilation, "dilation")
    if pd:
        x = _core_pad(x, (0, 0, 0, 0, pd, pd))
    kd, depth = weight.shape[2], x.shape[2]
    od = (depth - dd * (kd - 1) - 1) // sd + 1
    if od <= 0:
        raise RuntimeError(f"conv3d: input depth {input.shape[-3]} (padded {depth}) is too small for kernel depth {kd}")
    # NOTE: the KD kernel slices are stacked along channels, so each output depth is ONE conv2d
    # (channel order: kernel depth major within each group).
    n, c = x.shape[:2]
    oc, cg = weight.shape[:2]
    w2 = weight.reshape(oc, cg, kd, *weight.shape[3:]).permute(0, 2, 1, 3, 4).reshape(oc, kd * cg, *weight.shape[3:])
    outs = []
    for o in range(od):
        sl = [x[:, :, o * sd + k * dd] for k in range(kd)]  # each (N, C, H, W)
        planes = stack(sl, 1).reshape(n, kd, groups, cg, *x.shape[3:]).permute(0, 2, 1, 3, 4, 5)
        outs.append(conv2d(planes.reshape(n, groups * kd * cg, *x.shape[3:]), w2, bias, (sh, sw), (ph, pw),
                           (dh, dw), groups))
    y = stack(outs, 2)
    return y if input.ndim == 5 else y.squeeze(0)


def _conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups, dilation, name):  # noqa: A002
    """conv_transpose2d on 4-D x: the adjoint of conv2d w.r.t. its input (``ConvTranspose2d`` of gpugrad.ops.conv)."""
    if bias is not None and bias.dtype != input.dtype:
        raise RuntimeError(f"Input type ({_promo.cpp_name(input.dtype)}) and bias type ({_promo.cpp_name(bias.dtype)}) "
                           "should be the same")
    if weight.dtype != input.dtype:
        raise RuntimeError(f"Input type ({_promo.tensor_type_name(input.dtype, input.is_cuda)}) and weight type "
                           f"({_promo.tensor_type_name(weight.dtype, weight.is_cuda)}) should be the same")
    x = input
    n, c, h, w = x.shape
    ic, ocg, kh, kw = weight.shape
    if c != ic:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected input"
                           f"{list(input.shape)} to have {ic} channels, but got {c} channels instead")
    if groups <= 0 or ic % groups:
        raise RuntimeError(f"{name}: in_channels {ic} must be divisible by groups {groups}")
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    if not ((oph < sh or oph < dh) and (opw < sw or opw < dw)):
        raise RuntimeError(f"output padding must be smaller than either stride or dilation, but got output_padding_"
                           f"height: {oph} output_padding_width: {opw} stride_height: {sh} stride_width: {sw} "
                           f"dilation_height: {dh} dilation_width: {dw}")
    H = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    W = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    if H <= 0 or W <= 0:
        raise RuntimeError(f"{name}: the output size would be ({H}, {W}) for input {tuple(input.shape)}: too small")
    oc = ocg * groups
    # NOTE: the output padding rows/cols sit past the bottom/right crop; beyond the uncropped extent they are zero
    extra_h, extra_w = max(oph - ph, 0), max(opw - pw, 0)
    pads = ((ph, ph - oph + extra_h), (pw, pw - opw + extra_w))
    args = (x, weight) if bias is None or extra_h or extra_w else (x, weight, bias)
    prm = dict(size=(H - extra_h, W - extra_w), stride=(sh, sw), padding=pads, dilation=(dh, dw), groups=groups)
    fn = _conv.ConvTranspose2d
    y = fn.apply(*args, **prm) if _isf(x.dtype) else fn.composite(*args, **prm)
    if extra_h or extra_w:
        y = _core_pad(y, (0, extra_w, 0, extra_h))
    if bias is not None and len(args) == 2:
        y = y + bias.reshape(1, oc, 1, 1)
    return y


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):  # noqa: A002
    """Transposed 2-D convolution. input (N, C_in, H, W) or unbatched; weight (C_in, C_out/groups, KH, KW)."""
    _check_dims(input, 3, "conv_transpose2d")
    if weight.ndim != 4:
        raise RuntimeError(f"conv_transpose2d: weight must be 4-D, got shape {tuple(weight.shape)}")
    if isinstance(padding, str):
        raise TypeError("conv_transpose2d(): argument 'padding' must be tuple of ints, not str")
    x = input if input.ndim == 4 else input.unsqueeze(0)
    y = _conv_transpose_nd(x, weight, bias, _pair(stride, "stride"), _pair(padding, "padding"),
                           _pair(output_padding, "output_padding"), int(groups), _pair(dilation, "dilation"),
                           "conv_transpose2d")
    return y if input.ndim == 4 else y.squeeze(0)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):  # noqa: A002
    """Transposed 1-D convolution. input (N, C_in, L) or (C_in, L); weight (C_in, C_out/groups, K)."""
    _check_dims(input, 2, "conv_transpose1d")
    if weight.ndim != 3:
        raise RuntimeError(f"conv_transpose1d: weight must be 3-D, got shape {tuple(weight.shape)}")
    if isinstance(padding, str):
        raise TypeError("conv_transpose1d(): argument 'padding' must be tuple of ints, not str")
    x = (input if input.ndim == 3 else input.unsqueeze(0)).unsqueeze(-2)
    y = _conv_transpose_nd(x, weight.unsqueeze(-2), bias, (1, _single(stride, "stride")),
                           (0, _single(padding, "padding")), (0, _single(output_padding, "output_padding")),
                           int(groups), (1, _single(dilation, "dilation")), "conv_transpose1d").squeeze(-2)
    return y if input.ndim == 3 else y.squeeze(0)


# -- 1-D pooling, adaptive pooling ------------------------------------------------------------------------
def _as_3d(x, name):
    if x.ndim not in (2, 3):
        raise RuntimeError(f"{name}: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch size for input, "
                           f"but got:{list(x.shape)}")
    return x.unsqueeze(-2)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):
    x = _as_3d(input, "max_pool1d")
    s = None if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0) else \
        (1, _single(stride, "stride"))
    r = max_pool2d(x, (1, _single(kernel_size, "kernel_size")), s, (0, _single(padding, "padding")),
                   (1, _single(dilation, "dilation")), ceil_mode, return_indices)
    if return_indices:
        return r[0].squeeze(-2), r[1].squeeze(-2)
    return r.squeeze(-2)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):  # noqa: A002
    x = _as_3d(input, "avg_pool1d")
    s = None if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0) else \
        (1, _single(stride, "stride"))
    return avg_pool2d(x, (1, _single(kernel_size, "kernel_size")), s, (0, _single(padding, "padding")), ceil_mode,
                      count_include_pad).squeeze(-2)


def adaptive_avg_pool1d(input, output_size):  # noqa: A002
    x = _as_3d(input, "adaptive_avg_pool1d")
    return adaptive_avg_pool2d(x, (1, _single(output_size, "output_size"))).squeeze(-2)


def _adaptive_index(n, m):
    """(m, kmax) input indices of the adaptive windows [floor(i*n/m), ceil((i+1)*n/m)), padded by repeating
    the window's last index (a repeat never wins the first-maximum search; when it wins the last-NaN one, it names
    the same input element)."""
    lo = [(i * n) // m for i in range(m)]
    hi = [-(-((i + 1) * n) // m) for i in range(m)]
    k = max(b - a for a, b in zip(lo, hi))
    return np.array([[min(a + j, b - 1) for j in range(k)] for a, b in zip(lo, hi)], dtype=np.int64)


def adaptive_max_pool2d(input, output_size, return_indices=False):  # noqa: A002
    """Max pooling to a fixed output size; the gradient goes to each window's first maximum (as PyTorch)."""
    x, unbatched = _as_4d(input, "adaptive_max_pool2d")
    n, c, h, w = x.shape
    if isinstance(output_size, numbers.Integral) or output_size is None:
        output_size = (output_size, output_size)
    oh = h if output_size[0] is None else int(output_size[0])
    ow = w if output_size[1] is None else int(output_size[1])
    if oh < 0 or ow < 0 or (h == 0 or w == 0):
        raise RuntimeError(f"adaptive_max_pool2d: elements of output_size must be greater than or equal to 0 and the "
                           f"input's spatial size non-empty, got output_size {output_size}, input {tuple(input.shape)}")
    if oh == 0 or ow == 0:
        y = Tensor(x.xp.zeros((n, c, oh, ow), dtype=x.dtype))
        idx = Tensor(x.xp.zeros((n, c, oh, ow), dtype=np.int64))
        y, idx = (y[0], idx[0]) if unbatched else (y, idx)
        return (y, idx) if return_indices else y
    ih, iw = _adaptive_index(h, oh), _adaptive_index(w, ow)
    kh, kw = ih.shape[1], iw.shape[1]
    xp = x.xp
    g = x[:, :, Tensor(xp.asarray(ih.reshape(-1)))][..., Tensor(xp.asarray(iw.reshape(-1)))]
    win = g.reshape(n, c, oh, kh, ow, kw).permute(0, 1, 2, 4, 3, 5).reshape(n, c, oh, ow, kh * kw)
    am = _conv.window_argmax(win._data, 4)
    y = _MaxMin.apply(win, axis=4, idx=am, keepdim=False, mode="max")
    if unbatched:
        y = y.squeeze(0)
    if not return_indices:
        return y
    a = am[..., 0]
    hh = xp.asarray(ih)[xp.arange(oh).reshape(-1, 1), a // kw]
    ww = xp.asarray(iw)[xp.arange(ow).reshape(1, -1), a % kw]
    flat = (hh * w + ww).astype(np.int64)
    return y, Tensor(flat[0] if unbatched else flat)


def adaptive_max_pool1d(input, output_size, return_indices=False):  # noqa: A002
    x = _as_3d(input, "adaptive_max_pool1d")
    r = adaptive_max_pool2d(x, (1, _single(output_size, "output_size")), return_indices)
    if return_indices:
        return r[0].squeeze(-2), r[1].squeeze(-2)
    return r.squeeze(-2)


# -- interpolate / upsample, pixel shuffle ------------------------------------------------------------------
_INTERP_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def _cubic_weights(t, A=-0.75):
    """PyTorch's cubic convolution coefficients for the 4 taps at offsets -1, 0, 1, 2 (t in [0, 1))."""
    def c1(v):
        return ((A + 2) * v - (A + 3)) * v * v + 1

    def c2(v):
        return ((A * v - 5 * A) * v + 8 * A) * v - 4 * A
    return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]


def _interp_axis(x, axis, n_in, n_out, mode, align_corners, scale):
    """Resample ``x`` along ``axis`` from n_in to n_out (PyTorch's source-index rules, one axis at a time): the
    taps (source indices and weights per output position) go to ``index.resample`` (strided slices where they
    repeat with the scale's period, as for integer factors)."""
    dst = np.arange(n_out, dtype=np.float64)
    if mode in ("nearest", "nearest-exact"):
        # NOTE: PyTorch computes the nearest source index in float32 whatever the dtype (floorf(dst * scale))
        s = np.float32((1.0 / scale) if scale is not None and scale > 0 else n_in / n_out)
        src = np.floor((dst.astype(np.float32) + np.float32(0.5 if mode == "nearest-exact" else 0.0)) * s)
        return _index.resample(x, axis, n_out, [(np.minimum(src, n_in - 1).astype(np.int64), None)])
    # NOTE: source indices and weights in PyTorch's opmath type (float32 unless the input is float64), as its
    # kernels: a float64 computation rounds some weights differently (a 0 weight where PyTorch's is 1e-8 turns
    # inf * w into NaN instead of inf)
    ot = np.float64 if x.dtype == np.float64 else np.float32
    dst = dst.astype(ot)
    if align_corners:
        s = ot(n_in - 1) / ot(n_out - 1) if n_out > 1 else ot(0.0)
        src = dst * s
    else:
        s = ot(1.0 / scale) if scale is not None and scale > 0 else ot(n_in) / ot(n_out)
        src = s * (dst + ot(0.5)) - ot(0.5)
    if mode == "linear":
        src = np.maximum(src, ot(0.0))
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        lam = np.clip(src - i0.astype(ot), ot(0.0), ot(1.0))
        return _index.resample(x, axis, n_out, [(i0, ot(1.0) - lam), (i1, lam)])
    i0 = np.floor(src).astype(np.int64)
    ws = _cubic_weights(src - i0.astype(ot))
    return _index.resample(x, axis, n_out, [(np.clip(i0 + k, 0, n_in - 1), wk) for k, wk in zip(range(-1, 3), ws)])


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,  # noqa: A002
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial dims of (N, C, *spatial) input: nearest, nearest-exact, linear, bilinear, bicubic,
    trilinear, area (PyTorch's source-index rules; separable, one axis at a time)."""
    modes = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    dim = input.ndim - 2
    if mode not in modes or dim not in (1, 2, 3):
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for "
                                  f"the modes: nearest | linear | bilinear | bicubic | trilinear | area | "
                                  f"nearest-exact (got {mode})")
    if mode in _INTERP_DIMS and _INTERP_DIMS[mode] != dim:
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs {_INTERP_DIMS[mode] + 2}D input")
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    in_sizes = tuple(input.shape[2:])
    if size is not None:
        if isinstance(size, (list, tuple)):
            if len(size) != dim:
                raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input "
                                 f"with spatial dimensions of {list(in_sizes)} and output size of {list(size)}. Please "
                                 "provide input tensor in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, "
                                 "...,oK) format.")
            out = tuple(int(s) for s in size)
        else:
            out = (int(size),) * dim
        scales = (None,) * dim
    elif scale_factor is not None:
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dim:
                raise ValueError(f"Input and scale_factor must have the same number of spatial dimensions, but got "
                                 f"input with spatial dimensions of {list(in_sizes)} and scale_factor of shape "
                                 f"{list(scale_factor)}. Please provide input tensor in (N, C, d1, d2, ...,dK) format "
                                 "and scale_factor in (s1, s2, ...,sK) format.")
            scales = tuple(float(s) for s in scale_factor)
        else:
            scales = (float(scale_factor),) * dim
        out = tuple(int(math.floor(n * s)) for n, s in zip(in_sizes, scales))
        if recompute_scale_factor:
            scales = (None,) * dim
    else:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if any(o <= 0 for o in out):
        raise RuntimeError(f"Input and output sizes should be greater than 0, but got input {in_sizes} and output "
                           f"{out}")
    if not _isf(input.dtype):
        raise NotImplementedError(f"interpolate: not implemented for '{_promo.short_name(input.dtype)}' input")
    if mode == "area":
        if dim == 1:
            return adaptive_avg_pool1d(input, out[0])
        if dim == 2:
            return adaptive_avg_pool2d(input, out)
        raise NotImplementedError("interpolate: mode='area' supports 3-D and 4-D input only")
    kind = "cubic" if mode == "bicubic" else ("linear" if mode in _INTERP_DIMS else mode)
    y = input
    # NOTE: the last axis first: PyTorch's kernels weight the rows of the innermost interpolation first
    # (h0 * (w0 x00 + w1 x01) + h1 * (...)), so this order rounds as they do; and the widening pass on the
    # contiguous axis runs on the smaller array
    for i in reversed(range(dim)):
        y = _interp_axis(y, 2 + i, in_sizes[i], out[i], kind, align_corners, scales[i])
    return y


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):  # noqa: A002
    return interpolate(input, size, scale_factor, mode, align_corners)


def pixel_shuffle(input, upscale_factor):  # noqa: A002
    """(*, C*r^2, H, W) -> (*, C, H*r, W*r)."""
    r = int(upscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    *b, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
                           f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    k = len(b)
    y = input.reshape(*b, c // (r * r), r, r, h, w)
    y = y.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return y.reshape(*b, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):  # noqa: A002
    """(*, C, H*r, W*r) -> (*, C*r^2, H, W)."""
    r = int(downscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    *b, c, h, w = input.shape
    if h % r or w % r:
        which, val = ("height", h) if h % r else ("width", w)
        raise RuntimeError(f"pixel_unshuffle expects {which} to be divisible by downscale_factor, but input.size("
                           f"{-2 if which == 'height' else -1})={val} is not divisible by {r}")
    k = len(b)
    y = input.reshape(*b, c, h // r, r, w // r, r)
    y = y.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return y.reshape(*b, c * r * r, h // r, w // r)


# -- more activations ---------------------------------------------------------------------------------------
def _inplace_act(fn, input, *args):  # noqa: A002
    """``inplace=True``: ``fn(input, *args)`` written into ``input`` through the generic in-place machinery
    (under autograd the tensor is rebased onto the op's node, as PyTorch's ``hardtanh_`` etc.; the old
    values are kept because these composites read them in backward)."""
    return input._inplace(lambda t: fn(t, *args), keep=True)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):  # noqa: A002
    """clamp(input, min_val, max_val); the gradient is 0 AT the bounds (PyTorch's hardtanh_backward)."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    if inplace:
        return _inplace_act(_hardtanh, input, min_val, max_val)
    return _hardtanh(input, min_val, max_val)


def _hardtanh(input, min_val, max_val):  # noqa: A002
    inside = Tensor((input._data > min_val) & (input._data < max_val))
    return where(inside, input, input.clamp(min_val, max_val).detach())


def relu6(input, inplace=False):  # noqa: A002
    return hardtanh(input, 0.0, 6.0, inplace)


def hardswish(input, inplace=False):  # noqa: A002
    """x * relu6(x + 3) / 6; gradient 0 for x <= -3, x/3 + 1/2 on (-3, 3), 1 for x >= 3 (as PyTorch)."""
    if inplace:
        return _act._in_place(hardswish, input, "hardswish")
    return _act.node("hardswish").apply(input)


def hardsigmoid(input, inplace=False):  # noqa: A002
    """relu6(x + 3) / 6; the gradient is 1/6 on the open interval (-3, 3) only."""
    if inplace:
        return _inplace_act(hardsigmoid, input)
    d = input._data
    const = Tensor((d >= 3).astype(input.dtype))
    return where(Tensor((d > -3) & (d < 3)), input / 6.0 + 0.5, const)


def celu(input, alpha=1.0, inplace=False):  # noqa: A002
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    if inplace:
        return _act._in_place(celu, input, "celu", alpha=alpha)
    return _act.node("celu").apply(input, alpha=alpha)


def glu(input, dim=-1):  # noqa: A002
    """a * sigmoid(b), with a, b the two halves of ``input`` along ``dim``."""
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = dim % input.ndim if -input.ndim <= dim < input.ndim else dim
    if not 0 <= d < input.ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-input.ndim}, {input.ndim - 1}], "
                         f"but got {dim})")
    if input.shape[d] % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size {input.shape[d]}")
    a, b = input.chunk(2, d)
    return a * _act.sigmoid(b)


def prelu(input, weight):  # noqa: A002
    """max(0, x) + weight * min(0, x); weight has 1 or C (= input.shape[1]) elements. Gradient at 0: weight."""
    if input.ndim == 0:
        raise RuntimeError("Not allow zero-dim input tensor.")
    ch = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() != 1 and weight.numel() != ch:
        raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                           f"{weight.numel()} and channel size = {ch}.")
    if weight.ndim > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {weight.ndim}")
    w = weight.reshape(()) if weight.numel() == 1 else weight.reshape((ch,) + (1,) * (input.ndim - 2))
    return where(Tensor(input._data > 0), input, w * input)


def softsign(input):  # noqa: A002
    return input / (input.abs() + 1.0)


def tanhshrink(input):  # noqa: A002
    return input - _act.tanh(input)


def threshold(input, threshold, value, inplace=False):  # noqa: A002
    """input where input > threshold, else value."""
    if inplace:
        return _inplace_act(globals()["threshold"], input, threshold, value)
    return where(Tensor(input._data > threshold), input, _const_like(input, value))


def softmin(input, dim=None, _stacklevel=3, dtype=None):  # noqa: A002
    if dim is None:
        dim = _softmax._implicit_dim(input.ndim)
    return _softmax.softmax(-input, dim=dim, dtype=dtype)


# -- more losses ---------------------------------------------------------------------------------------------
def _reduce_loss(v, reduction):
    if reduction == "none":
        return v
    if reduction == "sum":
        return v.sum()
    if reduction == "mean":
        return v.mean()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):  # noqa: A002
    """-w * (t * log(x) + (1 - t) * log(1 - x)), each log clamped to >= -100 (as PyTorch)."""
    reduction = _loss._reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size (torch.Size({list(target.shape)})) that is different to the input size "
                         f"(torch.Size({list(input.shape)})) is deprecated. Please ensure they have the same size.")
    if input.dtype != target.dtype:
        raise RuntimeError(f"Found dtype {_promo.short_name(target.dtype)} but expected "
                           f"{_promo.short_name(input.dtype)}")
    xd = input._data
    if input.numel() and bool(((xd < 0) | (xd > 1)).any()):
        raise RuntimeError("all elements of input should be between 0 and 1")

    w = None
    if weight is not None:
        if weight.requires_grad and _grad_enabled():
            raise RuntimeError("The function 'binary_cross_entropy' is not differentiable with respect to argument "
                               "'weight'. This input cannot have requires_grad True.")
        wd = weight._data
        np.broadcast_shapes(tuple(weight.shape), tuple(input.shape))
        w = wd.astype(input.dtype, copy=False)
    # NOTE: a Primitive, for PyTorch's first-order gradient (x - t) / max(x (1 - x), 1e-12) at x = 0 and 1
    v = _BCE.apply(input, target, weight=w)
    return _reduce_loss(v, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):  # noqa: A002
    """Pointwise target * (log(target) - input) (0 where target = 0); ``input`` holds log-probabilities.

    reduction 'batchmean' divides the sum by input.size(0); 'mean' averages over all elements (as PyTorch).
    """
    if size_average is not None or reduce is not None:
        reduction = _loss._reduction(size_average, reduce, "mean")
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if log_target:
        v = target.exp() * (target - input)
    else:
        from ..ops.math import xlogy  # noqa: PLC0415
        v = xlogy(target, target) - target * input
    if reduction == "mean":
        import warnings  # noqa: PLC0415
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      stacklevel=3)
    if reduction == "batchmean":
        return v.sum() / input.shape[0] if input.ndim else v.sum()
    return _reduce_loss(v, reduction)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1/max(||x1||, eps) * x2/max(||x2||, eps)) over ``dim`` (x1, x2 broadcast)."""
    # NOTE: as PyTorch, the clamp is invisible to autograd (done in place under no_grad): its value, the norm's gradient
    if tuple(x1.shape) != tuple(x2.shape):
        # NOTE: PyTorch broadcasts the inputs first, so each norm is over the broadcast dim (a size-1 dim of x2
        # counts x2's value once per element of x1's dim); norms of the unbroadcast inputs were silently different
        try:
            shape = np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
        except ValueError:
            raise RuntimeError(f"The size of tensor a ({tuple(x1.shape)}) must match the size of tensor b "
                               f"({tuple(x2.shape)}) at a non-singleton dimension") from None
        x1, x2 = x1.expand(shape), x2.expand(shape)
    n1, n2 = x1.norm(2, dim, keepdim=True), x2.norm(2, dim, keepdim=True)
    n1 = n1 + (n1.clamp(min=eps) - n1).detach()
    n2 = n2 + (n2.clamp(min=eps) - n2).detach()
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p over the last dim."""
    if x1.ndim == 0 or x2.ndim == 0:
        nd = max(x1.ndim, x2.ndim)
        return (x1 - x2 + eps).abs() if nd == 0 else (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)


# -- more normalisation -------------------------------------------------------------------------------------
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,  # noqa: A002
                  momentum=0.1, eps=1e-5):
    """Normalise each (sample, channel) over its spatial dims; running stats (when given) average over the batch."""
    if input.ndim < 3:
        raise ValueError(f"instance_norm: expected at least 3-D input (N, C, ...), got shape {tuple(input.shape)}")
    n, c = input.shape[:2]
    spatial = int(np.prod(input.shape[2:]))  # NOTE: not numel // (n*c): the batch may be empty
    if use_input_stats and spatial <= 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                         f"torch.Size({list(input.shape)})")
    mixed = _norm_dtypes(input, running_mean, running_var, weight, bias)
    axes = tuple(range(2, input.ndim))
    bshape = (1, c) + (1,) * (input.ndim - 2)
    if use_input_stats:
        y, mean, var = _standardized(input, axes, eps, None if weight is None else weight.reshape(bshape),
                                     None if bias is None else bias.reshape(bshape))
        if running_mean is not None and running_var is not None:
            with no_grad():
                m = float(momentum)
                rm, rv = running_mean._data, running_var._data
                bm = mean.reshape(n, c).mean(0)
                bv = (var * (spatial / max(spatial - 1, 1))).reshape(n, c).mean(0)
                rm[...] = (1 - m) * rm + m * bm.astype(rm.dtype, copy=False)
                rv[...] = (1 - m) * rv + m * bv.astype(rv.dtype, copy=False)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("Expected running_mean and running_var to be defined when use_input_stats is false")
        rm = Tensor(running_mean._data.astype(input.dtype, copy=False)).reshape(bshape)
        inv = Tensor((running_var._data.astype(input.dtype, copy=False) + eps) ** -0.5).reshape(bshape)
        y = (input - rm) * inv
        if weight is not None:
            y = y * weight.reshape(bshape)
        if bias is not None:
            y = y + bias.reshape(bshape)
    return y.type(input.dtype) if mixed else y


def rms_norm(input, normalized_shape, weight=None, eps=None):  # noqa: A002
    """input * rsqrt(mean(input^2 over the trailing dims) + eps) * weight; eps=None: the dtype's machine epsilon."""
    shape = _shape_arg(normalized_shape, "rms_norm")
    k = len(shape)
    if input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*{', '.join(map(str, shape))}], but got input of size{list(input.shape)}")
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    axes = tuple(range(input.ndim - k, input.ndim))
    y = input * ((input * input).mean(axes, keepdim=True) + eps).rsqrt()
    return y * weight if weight is not None else y


# == issue "The everyday PyTorch ops" (nn, part 2): sampling, feature dropout, more losses, cdist, LRN, ============
# == embedding_bag, max_unpool2d ====================================================================================
__all__ += ["gumbel_softmax", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "poisson_nll_loss",
            "gaussian_nll_loss", "cdist", "margin_ranking_loss", "hinge_embedding_loss", "triplet_margin_loss",
            "cosine_embedding_loss", "multi_margin_loss", "multilabel_soft_margin_loss", "local_response_norm",
            "embedding_bag", "max_unpool2d"]


def _reduction_enum(size_average, reduce, reduction):
    """PyTorch's _Reduction.get_enum / legacy_get_enum: the reduction name, or its ValueError."""
    reduction = _loss._reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _relu_mask(z):
    """max(z, 0) whose gradient is 1 only where z > 0 (PyTorch's `if (z > 0)` in the margin losses)."""
    return where(Tensor(z._data > 0), z, _const_like(z, 0.0))


def gumbel_softmax(logits, tau=1, hard=False, eps=1e-10, dim=-1):
    """softmax((logits + g) / tau) with g ~ Gumbel(0, 1); ``hard``: the one-hot argmax in the forward with
    the soft sample's gradient (straight-through: y_hard - y_soft.detach() + y_soft)."""
    if eps != 1e-10:
        import warnings  # noqa: PLC0415
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=3)
    g = _random.generator(logits.device)
    dt = logits.dtype if logits.dtype in (np.float32, np.float64) else np.float32
    e = g.standard_exponential(tuple(logits.shape), dtype=dt)
    gumbels = Tensor((-logits.xp.log(e)).astype(logits.dtype, copy=False))
    y_soft = _softmax.softmax((logits + gumbels) / tau, dim=dim)
    if not hard:
        return y_soft
    d = dim % logits.ndim if logits.ndim else 0
    idx = logits.xp.argmax(y_soft._data, axis=d) if logits.ndim else None
    hard_arr = logits.xp.zeros(tuple(logits.shape), dtype=logits.dtype)
    if logits.ndim:
        logits.xp.put_along_axis(hard_arr, logits.xp.expand_dims(idx, d), 1, axis=d)
    else:
        hard_arr[...] = 1
    return Tensor(hard_arr) - y_soft.detach() + y_soft


def _feature_dropout(input, p, training, inplace, batched):  # noqa: A002
    """PyTorch's feature_dropout: one Bernoulli(1 - p) per (sample, channel), scaled by 1/(1-p); an
    unbatched input (``batched`` False) is treated as one sample."""
    if not training or p == 0.0 or input.numel() == 0:
        return input
    shape = tuple(input.shape) if batched else (1,) + tuple(input.shape)
    if len(shape) < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    mshape = shape[:2] + (1,) * (len(shape) - 2)
    if p == 1.0:
        mask = input.xp.zeros(mshape, dtype=input.dtype)
    else:
        g = _random.generator(input.device)
        dt = input.dtype if input.dtype in (np.float32, np.float64) else np.float32
        mask = ((g.random(mshape, dtype=dt) >= p) * (1.0 / (1.0 - p))).astype(input.dtype, copy=False)
    if not batched:
        mask = mask.reshape(mshape[1:])
    return input.mul_(Tensor(mask)) if inplace else input * Tensor(mask)


def _check_p(p):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _feature_dims_warning(k, nd):
    """PyTorch's deprecation warning of dropout{k}d for an input of nd dims."""
    import warnings  # noqa: PLC0415
    warnings.warn(f"dropout{k}d: Received a {nd}-D input to dropout{k}d, which is deprecated and will result in an "
                  "error in a future release. To retain the behavior and silence this warning, please use dropout "
                  f"instead. Note that dropout{k}d exists to provide channel-wise dropout on inputs with {k} spatial "
                  f"dimensions, a channel dimension, and an optional batch dimension (i.e. {k + 1}D or {k + 2}D "
                  "inputs).", stacklevel=4)


def dropout1d(input, p=0.5, training=True, inplace=False):  # noqa: A002
    """Zero whole channels of (N, C, L) or unbatched (C, L) input with probability p (scaled by 1/(1-p))."""
    _check_p(p)
    if input.ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. Note that "
                           "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial dimension, a "
                           "channel dimension, and an optional batch dimension (i.e. 2D or 3D inputs).")
    return _feature_dropout(input, p, training, inplace, input.ndim == 3)


def dropout2d(input, p=0.5, training=True, inplace=False):  # noqa: A002
    """Zero whole channels of (N, C, H, W) input. As PyTorch, a 3-D input is read as (N, C, L) (with its warning)."""
    import warnings  # noqa: PLC0415
    _check_p(p)
    nd = input.ndim
    if nd not in (3, 4):
        _feature_dims_warning(2, nd)
    if nd == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior "
                      "is desired - input is interpreted as shape (N, C, L), where C is the channel dim. This behavior "
                      "will change in a future release to interpret the input as one without a batch dimension, i.e. "
                      "shape (C, H, W). To maintain the 1D channel-wise dropout behavior, please switch to using "
                      "dropout1d instead.", stacklevel=3)
    return _feature_dropout(input, p, training, inplace, True)


def dropout3d(input, p=0.5, training=True, inplace=False):  # noqa: A002
    """Zero whole channels of (N, C, D, H, W) or unbatched (C, D, H, W) input."""
    _check_p(p)
    nd = input.ndim
    if nd not in (4, 5):
        _feature_dims_warning(3, nd)
    return _feature_dropout(input, p, training, inplace, nd == 5)


_SELU_ALPHA_PRIME = 1.7580993408473766  # NOTE: -selu's negative saturation (alpha * scale), PyTorch's constant


def alpha_dropout(input, p=0.5, training=False, inplace=False):  # noqa: A002
    """Dropout for SELU networks: dropped elements get -alpha', then an affine map keeps mean 0 / variance 1.
    NOTE: training defaults to False, as PyTorch's."""
    _check_p(p)
    return _alpha_dropout(input, p, training, inplace, None)


def _alpha_dropout(input, p, training, inplace, shape):  # noqa: A002
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        z = Tensor(input.xp.zeros((), dtype=input.dtype))
        return input.mul_(z) if inplace else input * z
    g = _random.generator(input.device)
    dt = input.dtype if input.dtype in (np.float32, np.float64) else np.float32
    keep = (g.random(tuple(input.shape) if shape is None else shape, dtype=dt) >= p).astype(input.dtype)
    a = 1.0 / math.sqrt((_SELU_ALPHA_PRIME ** 2 * p + 1) * (1 - p))
    b = Tensor(((keep - 1) * (_SELU_ALPHA_PRIME * a) + _SELU_ALPHA_PRIME * a * p).astype(input.dtype, copy=False))
    m = Tensor((keep * a).astype(input.dtype, copy=False))
    if inplace:
        return input._inplace(lambda t: t * m + b, keep=False)
    return input * m + b


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,  # noqa: A002
                     reduction="mean"):
    """exp(input) - target * input (log_input) or input - target * log(input + eps); ``full`` adds Stirling's
    term target*log(target) - target + 0.5*log(2*pi*target) where target > 1."""
    if size_average is not None or reduce is not None:
        reduction = _loss._reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not a valid value for reduction")
    loss = input.exp() - target * input if log_input else input - target * (input + eps).log()
    if full:
        stirling = target * target.log() - target + 0.5 * (2 * math.pi * target).log()
        loss = loss + where(Tensor(target._data > 1), stirling, _const_like(stirling, 0.0))
    return _reduce_loss(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):  # noqa: A002
    """0.5 * (log(max(var, eps)) + (input - target)^2 / max(var, eps)) (+ 0.5 log(2 pi) if ``full``).

    ``var``: a Tensor of input's shape, of input's shape less the last dim, or with one dim of size 1; or a float.
    The clamp is invisible to autograd (PyTorch clamps a clone in place under no_grad)."""
    if isinstance(var, float):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = var * Tensor(input.xp.ones(tuple(input.shape), dtype=input.dtype))
    elif not isinstance(var, Tensor):
        # NOTE: PyTorch fails here with torch.any's TypeError for an int (or any non-float number)
        raise TypeError(f"gaussian_nll_loss: var must be a Tensor or a float, got {type(var).__name__}")
    elif var.numel() and bool((var._data < 0).any()):
        raise ValueError("var has negative entry/entries")
    ishape, vshape = tuple(input.shape), tuple(var.shape)
    if vshape != ishape:
        if ishape[:-1] == vshape:
            var = var.unsqueeze(-1)
        elif not (input.ndim == var.ndim and sum(y for x, y in zip(ishape, vshape) if x != y) == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    var = var + (var.clamp(min=eps) - var).detach()
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce_loss(loss, reduction)


_CDIST_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist")


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """p-norm distances between the rows of x1 (B.., P, M) and x2 (B.., R, M): (B.., P, R). Computed directly
    (no matrix-product shortcut); the gradient is 0 where a distance is 0, and for p = inf it goes to every
    coordinate attaining the max (PyTorch's cdist backward)."""
    if compute_mode not in _CDIST_MODES:
        raise ValueError(f"{compute_mode} is not a valid value for compute_mode")
    if x1.ndim < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X1 got: {x1.ndim}D")
    if x2.ndim < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X2 got: {x2.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: {x2.shape[-1]}")
    for nm, t in (("X1", x1), ("X2", x2)):
        if not _isf(t.dtype):
            raise RuntimeError(f"cdist only supports floating-point dtypes, {nm} got: {_promo.short_name(t.dtype)}")
    if x1.dtype != x2.dtype:
        raise RuntimeError(f"expected scalar type {_promo.short_name(x1.dtype)} but found "
                           f"{_promo.short_name(x2.dtype)}")
    if x1.dtype == np.float16:
        raise NotImplementedError("\"cdist\" not implemented for 'Half'")
    if p < 0:
        raise RuntimeError("cdist only supports non-negative p values")
    b1, b2 = tuple(x1.shape[:-2]), tuple(x2.shape[:-2])
    for i in range(1, min(len(b1), len(b2)) + 1):
        if b1[-i] != b2[-i] and b1[-i] != 1 and b2[-i] != 1:
            k = max(len(b1), len(b2)) - i
            raise RuntimeError(f"The size of tensor a ({b1[-i]}) must match the size of tensor b ({b2[-i]}) at "
                               f"non-singleton dimension {k}")
    return _pnorm(x1.unsqueeze(-2) - x2.unsqueeze(-3), p)  # diff: (B.., P, R, M)


def _pnorm(diff, p):
    """||diff||_p over the last dim with cdist's/pdist's gradients: 0 where a distance is 0; for p = inf, to every
    coordinate attaining the max."""
    p = float(p)
    if p == 0.0:
        cnt = Tensor((diff._data != 0).sum(-1).astype(diff.dtype))
        return cnt + (diff * 0.0).sum(-1)  # NOTE: a zero gradient, as PyTorch's
    if math.isinf(p):
        a = diff.abs()
        m = a._data.max(-1, keepdims=True) if diff.shape[-1] else a._data.sum(-1, keepdims=True)
        d = (a * Tensor((a._data == m).astype(diff.dtype))).sum(-1)
        return d + Tensor(m[..., 0]) - d.detach()
    return diff.norm(p, -1)


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """max(0, -target * (input1 - input2) + margin)."""
    reduction = _reduction_enum(size_average, reduce, reduction)
    if input1.ndim != input2.ndim or input1.ndim != target.ndim:
        raise RuntimeError(f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
                           f"input1: torch.Size({list(input1.shape)}), input2: torch.Size({list(input2.shape)}), "
                           f"target: torch.Size({list(target.shape)}) ")
    return _reduce_loss((-target * (input1 - input2) + margin).clamp(min=0), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):  # noqa: A002
    """input where target = 1, max(0, margin - input) where target = -1 (PyTorch's where-form for other values)."""
    reduction = _reduction_enum(size_average, reduce, reduction)
    t = target._data
    zero = _const_like(input, 0.0)
    out = (where(Tensor(t != 1), (margin - input).clamp(min=0), zero) + where(Tensor(t != -1), input, zero))
    return _reduce_loss(out, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """max(0, margin + d(a, p) - d(a, n)), d = pairwise_distance (``swap``: d(a, n) -> min(d(a, n), d(p, n)))."""
    reduction = _reduction_enum(size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                           f"dimensions, but got: anchor {anchor.ndim}D, positive {positive.ndim}D, and negative "
                           f"{negative.ndim}D inputs")
    dpos = pairwise_distance(anchor, positive, p, eps)
    dneg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        from ..tensor import minimum  # noqa: PLC0415
        dneg = minimum(dneg, pairwise_distance(positive, negative, p, eps))
    return _reduce_loss((margin + dpos - dneg).clamp(min=0), reduction)


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """1 - cos(x1, x2) where target = 1, max(0, cos(x1, x2) - margin) where target = -1."""
    reduction = _reduction_enum(size_average, reduce, reduction)
    td = target.ndim
    if td not in (0, 1):
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if td == 1 and not (input1.ndim == 2 and input2.ndim == 2):
        raise RuntimeError(f"1D target tensor expects 2D input tensors, but found inputs with sizes "
                           f"{list(input1.shape)} and {list(input2.shape)}.")
    if td == 0 and not (input1.ndim == 1 and input2.ndim == 1):
        raise RuntimeError(f"0D target tensor expects 1D input tensors, but found inputs with sizes "
                           f"{list(input1.shape)} and {list(input2.shape)}.")
    prod = (input1 * input2).sum(td)
    m1 = (input1 * input1).sum(td) + 1e-12
    m2 = (input2 * input2).sum(td) + 1e-12
    cos = prod / (m1 * m2).sqrt()
    zero = _const_like(cos, 0.0)
    t = target._data
    out = where(Tensor(t == 1), 1 - cos, zero) + where(Tensor(t == -1), (cos - margin).clamp(min=0), zero)
    return _reduce_loss(out, reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,  # noqa: A002
                      reduction="mean"):
    """sum over i != y of max(0, margin - x[y] + x[i])^p (times weight[y]) / C, per sample."""
    reduction = _reduction_enum(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and weight.ndim != 1:
        raise ValueError("weight must be one-dimensional")
    if weight is not None and weight.requires_grad and _grad_enabled():
        raise RuntimeError("The function 'multi_margin_loss' is not differentiable with respect to argument 'weight'. "
                           "This input cannot have requires_grad True.")
    if not (input.ndim <= 2 and input.numel() != 0) and not (input.ndim == 2 and input.shape[0] == 0):
        raise RuntimeError(f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
                           f"{list(input.shape)}")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    n, c = x.shape
    if target.dtype != np.int64:
        raise RuntimeError(f"expected scalar type Long but found {_promo.short_name(target.dtype)}")
    if not (target.ndim <= 1 and target.numel() == n):
        raise RuntimeError(f"multi_margin_loss: target tensor should be 1-D with size equal to the number of input "
                           f"samples (batch size). Expected target size [{n}], but got {list(target.shape)}. Input "
                           f"has shape {list(input.shape)}.")
    if weight is not None and weight.numel() != c:
        raise RuntimeError(f"inconsistent weight size, expected {c} but got {list(weight.shape)}")
    y = target._data.reshape(n)
    if y.size and (int(y.min()) < 0 or int(y.max()) >= c):
        raise RuntimeError("target out of range")
    yi = Tensor(y.reshape(n, 1))
    z = _relu_mask(margin - x.gather(1, yi) + x)
    h = z if p == 1 else z * z
    if weight is not None:
        h = h * weight.gather(0, Tensor(y)).reshape(n, 1)
    other = Tensor((x.xp.arange(c)[None, :] != y[:, None]).astype(x.dtype))
    out = (h * other).sum(1) / c
    if input.ndim < 2 and target.ndim == 0:
        out = out.reshape(())
    return _reduce_loss(out, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,  # noqa: A002
                                reduction="mean"):
    """-(t * logsigmoid(x) + (1 - t) * logsigmoid(-x)) (times weight), averaged over the class (last) dim."""
    if size_average is not None or reduce is not None:
        reduction = _loss._reduction(size_average, reduce, reduction)
    loss = -(target * _act.logsigmoid(input) + (1 - target) * _act.logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    cdim = input.ndim - 1
    loss = loss.sum(cdim) / input.shape[cdim]
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    return _reduce_loss(loss, reduction)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):  # noqa: A002
    """input / (k + alpha * mean of input^2 over ``size`` neighbouring channels (zero-padded)) ** beta."""
    nd = input.ndim
    if nd < 3:
        raise ValueError(f"Expected 3D or higher dimensionality                          input (got {nd} dimensions)")
    if input.numel() == 0:
        return input
    n, c = input.shape[:2]
    sq = (input * input).reshape(n, c, -1)
    lo, hi = size // 2, (size - 1) // 2
    padded = _core_pad(sq, (0, 0, lo, hi))
    acc = padded[:, 0:c]
    for j in range(1, size):
        acc = acc + padded[:, j:j + c]
    div = (acc / size).reshape(tuple(input.shape))
    return input / (div * alpha + k) ** beta


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False,  # noqa: A002
                  mode="mean", sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """Sums / means / maxima of the bags of ``weight`` rows picked by ``input``: a 2-D input is a batch of
    fixed-length bags; a 1-D one is cut at ``offsets``. Empty bags give zeros; ``padding_idx`` entries are
    left out of their bag (and of the mean's count)."""
    if per_sample_weights is not None and tuple(input.shape) != tuple(per_sample_weights.shape):
        raise ValueError(f"embedding_bag: If per_sample_weights (torch.Size({list(per_sample_weights.shape)})) is not "
                         f"None, then it must have the same shape as the input (torch.Size({list(input.shape)}))")
    if weight.ndim != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension {weight.ndim}")
    xp = weight.xp
    psw = per_sample_weights
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated is a mini-batch of fixed "
                             f"length sequences. However, found offsets of type {type(offsets)}")
        off = xp.arange(0, input.numel(), max(input.shape[1], 1), dtype=np.int64)[: input.shape[0]]
        include_last_offset = False
        idx = input._data.reshape(-1)
        psw = psw.reshape(-1) if psw is not None else None
    elif input.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        if offsets.ndim != 1:
            raise ValueError("offsets has to be a 1D Tensor")
        idx, off = input._data, offsets._data
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.ndim}")
    if mode not in ("sum", "mean", "max"):
        raise ValueError("mode has to be one of sum, mean or max")
    if mode == "max" and scale_grad_by_freq:
        raise ValueError("max mode does not support scaling the gradient by the frequency")
    if mode == "max" and sparse:
        raise ValueError("max mode does not support sparse weights")
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding_bag: scale_grad_by_freq and sparse gradients are not supported")
    for nm, a in (("indices", idx), ("offsets", off)):
        if a.dtype not in (np.int64, np.int32):
            raise RuntimeError(f"Expected tensor for argument #1 '{nm}' to have one of the following scalar types: "
                               f"Long, Int; but got torch.{_promo.short_name(a.dtype)}Tensor instead (while checking "
                               "arguments for embedding_bag)")
    num = weight.shape[0]
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise RuntimeError(f"padding_idx must be within the number of embeddings, -{num} through {num - 1}, but "
                               f"got {padding_idx}")
        padding_idx %= num
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num):
        raise IndexError(f"embedding_bag: index out of range [0, {num}) (got min {int(idx.min())}, max "
                         f"{int(idx.max())})")
    if max_norm is not None:
        embedding(Tensor(idx), weight, max_norm=max_norm, norm_type=norm_type)  # NOTE: its in-place renorm only
    if psw is not None and mode != "sum":
        raise NotImplementedError("embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                  f"supported for mode='sum' (got mode='{mode}'). Please open a feature request on "
                                  "GitHub.")
    if psw is not None and psw.dtype != weight.dtype:
        raise RuntimeError(f"Expected tensor for argument #1 'weight' to have the same type as tensor for argument #1 "
                           f"'per_sample_weights'; but type {_promo.tensor_type_name(weight.dtype, weight.is_cuda)} "
                           f"does not equal {_promo.tensor_type_name(psw.dtype, psw.is_cuda)} (while checking "
                           "arguments for embedding_bag)")
    n = int(idx.size)
    off = off.astype(np.int64)
    if off.size and int(off[0]) != 0:
        raise RuntimeError(f"offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from "
                           f"position 0. However, got {int(off[0])}")
    if off.size and int(off[-1]) > n:
        raise RuntimeError(f"offsets[-1] can not be greater than input's length {n} but got offsets[-1] of "
                           f"{int(off[-1])}")
    if off.size > 1 and bool((off[1:] < off[:-1]).any()):
        raise RuntimeError("embedding_bag: offsets must be non-decreasing")  # NOTE: PyTorch fails an internal check
    if include_last_offset and off.size and int(off[-1]) != n:
        # NOTE: PyTorch (CPU) does not check this, and its modes then disagree about where the last bag ends
        raise ValueError(f"embedding_bag: with include_last_offset=True, offsets[-1] must equal the number of indices "
                         f"({n}), got {int(off[-1])}")
    nb = max(int(off.size) - 1, 0) if include_last_offset else int(off.size)
    ends = xp.concatenate([off[1:nb], xp.asarray([n], dtype=np.int64)])[:nb]
    pos = xp.arange(n, dtype=np.int64)
    bag = xp.searchsorted(off[:nb], pos, side="right") - 1 if nb else xp.zeros(0, np.int64)
    valid = (bag >= 0) & (pos < (ends[bag] if nb else pos))
    if padding_idx is not None:
        valid &= idx != padding_idx
    sel = xp.nonzero(valid)[0]
    rows = weight[Tensor(idx[sel])]
    seg = bag[sel]
    dim = weight.shape[1]
    out0 = Tensor(xp.zeros((nb, dim), dtype=weight.dtype))
    if mode in ("sum", "mean"):
        if psw is not None:
            rows = rows * psw[Tensor(sel)].unsqueeze(1)
        out = out0.index_add(0, Tensor(seg), rows)
        if mode == "mean":
            cnt = xp.bincount(seg, minlength=nb)[:nb].astype(weight.dtype)
            out = out / Tensor(xp.maximum(cnt, 1)[:, None])
        return out
    # max: gather each bag into a padded (nb, L, dim) block; empty slots read a -inf row
    cnt = xp.bincount(seg, minlength=nb)[:nb] if nb else xp.zeros(0, np.int64)
    width = int(cnt.max()) if cnt.size and sel.size else 0
    if width == 0:
        return out0 + weight.sum() * 0.0 if weight.requires_grad else out0
    start = xp.concatenate([xp.zeros(1, np.int64), xp.cumsum(cnt)[:-1]])
    slot = xp.arange(sel.size) - start[seg]
    block = xp.full((nb, width), sel.size, dtype=np.int64)
    block[seg, slot] = xp.arange(sel.size)
    ext = _cat_rows(rows, Tensor(xp.full((1, dim), -np.inf, dtype=weight.dtype)))
    mx = ext[Tensor(block)].max(1).values
    return where(Tensor((cnt > 0)[:, None]), mx, _const_like(mx, 0.0))


def _cat_rows(a, b):
    from ..tensor import cat  # noqa: PLC0415
    return cat([a, b], 0)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):  # noqa: A002
    """The inverse of max_pool2d(return_indices=True): each value written at its flat index in (H_out*W_out),
    zeros elsewhere. Default size (H - 1) * stride - 2 * padding + kernel_size per dim."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2)


def _max_unpool(input, indices, kernel_size, stride, padding, output_size, nd):  # noqa: A002
    tup = _pair if nd == 2 else _triple
    kernel_size = tup(kernel_size, "kernel_size")
    stride = kernel_size if stride is None else tup(stride, "stride")
    padding = tup(padding, "padding")
    default = [(input.shape[-nd + d] - 1) * stride[d] + kernel_size[d] - 2 * padding[d] for d in range(nd)] \
        if input.ndim >= nd else [0] * nd
    if output_size is None:
        size = default
    else:
        given = output_size
        output_size = list(output_size)
        if len(output_size) == nd + 2:
            output_size = output_size[2:]
        if len(output_size) != nd:
            raise ValueError(f"output_size should be a sequence containing {nd} or {nd + 2} elements, but it has a "
                             f"length of '{len(output_size)}'")
        for d in range(nd):
            lo, hi = default[d] - stride[d], default[d] + stride[d]
            if not lo < output_size[d] < hi:
                shown = list(output_size) if isinstance(given, list) else tuple(output_size)
                raise ValueError(f'invalid output_size "{shown}" (dim {d} must be between {lo} and {hi})')
        size = [int(v) for v in output_size]
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"Input to max_unpooling{nd}d should be a {nd + 1}d or {nd + 2}d Tensor, but got a tensor "
                           f"with {input.ndim} dimensions.")
    if indices.dtype != np.int64:
        raise RuntimeError("elements in indices should be type int64" + (
            f" but got: {_promo.short_name(indices.dtype)}" if nd == 2 else ""))
    if tuple(indices.shape) != tuple(input.shape):
        raise RuntimeError(f"Expected shape of indices to be same as that of the input tensor ({list(input.shape)}) "
                           f"but got indices tensor with shape: {list(indices.shape)}")
    total = int(np.prod(size))
    lead = tuple(input.shape[:-nd])
    flat_i = indices._data.reshape(lead + (int(np.prod(input.shape[-nd:])),))  # NOTE: no -1: N may be 0
    if flat_i.size and (int(flat_i.min()) < 0 or int(flat_i.max()) >= total):
        bad = int(flat_i.max()) if int(flat_i.max()) >= total else int(flat_i.min())
        raise RuntimeError(f"Found an invalid max index: {bad} (output volumes are of size "
                           f"{'x'.join(map(str, size))})")
    base = Tensor(input.xp.zeros(lead + (total,), dtype=input.dtype))
    out = base.scatter(len(lead), Tensor(flat_i), input.reshape(flat_i.shape))
    return out.reshape(lead + tuple(size))


# == issue 11 (breadth): shrinks, RReLU, the in-place functional forms, soft/multilabel margin and distance-function
# == triplet losses, pdist, bilinear, channel_shuffle, 3-D pooling, max_pool*_with_indices ==========================
__all__ += ["hardshrink", "softshrink", "rrelu", "rrelu_", "relu_", "elu_", "leaky_relu_", "hardtanh_", "threshold_",
            "selu_", "celu_", "soft_margin_loss", "multilabel_margin_loss", "triplet_margin_with_distance_loss", "pdist",
            "bilinear", "channel_shuffle", "max_pool3d", "avg_pool3d", "adaptive_avg_pool3d", "max_pool1d_with_indices",
            "max_pool2d_with_indices", "max_pool3d_with_indices"]
_FMAX = {"Half": "65504", "BFloat16": "3.38953e+38", "Float": "3.40282e+38", "Double": "1.79769e+308"}


def _float_only(input, kernel):  # noqa: A002
    if not _isf(input.dtype):
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{_promo.short_name(input.dtype)}'")


def hardshrink(input, lambd=0.5):  # noqa: A002
    """input where |input| > lambd, else 0; the gradient is 0 on [-lambd, lambd] (PyTorch's hardshrink_backward)."""
    _float_only(input, "hardshrink_cpu")
    d = input._data
    return where(Tensor((d >= -lambd) & (d <= lambd)), _const_like(input, 0.0), input)


def softshrink(input, lambd=0.5):  # noqa: A002
    """input - lambd above lambd, input + lambd below -lambd, else 0 (input * 0: PyTorch's -0.0 for negatives)."""
    _float_only(input, "softshrink_check")
    name = _promo.short_name(input.dtype)
    if not 0 <= lambd <= float(_FMAX[name]):
        raise RuntimeError(f"lambda must be in range [0, {_FMAX[name]}] for input dtype {name}, but found {lambd:g}")
    d = input._data
    return where(Tensor(d > lambd), input - lambd, where(Tensor(d < -lambd), input + lambd, input * 0.0))


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):  # noqa: A002
    """Randomized leaky ReLU. Training: each element <= 0 times its own slope ~ U[lower, upper) drawn from gpugrad's
    generator (the gradient is that slope); eval: leaky_relu with the fixed slope (lower + upper) / 2."""
    if lower > upper:
        raise RuntimeError("Lower bound should be less than or equal to the upper bound")
    if inplace:
        return _inplace_act(rrelu, input, lower, upper, training)
    _float_only(input, "rrelu_with_noise_out_cpu" if training else "leaky_relu_cpu")
    if not training:
        return _act.leaky_relu(input, (lower + upper) / 2)
    g = _random.generator(input.device)
    dt = input.dtype if input.dtype in (np.float32, np.float64) else np.float32
    r = g.random(tuple(input.shape), dtype=dt) * (upper - lower) + lower
    # NOTE: one draw per element (PyTorch draws only for the elements <= 0; its stream is not reproduced anyway)
    return input * Tensor(input.xp.where(input._data <= 0, r, 1).astype(input.dtype, copy=False))


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):  # noqa: A002
    return rrelu(input, lower, upper, training, True)


def relu_(input):  # noqa: A002
    return _act.relu(input, True)


def elu_(input, alpha=1.0):  # noqa: A002
    return _act.elu(input, alpha, True)


def leaky_relu_(input, negative_slope=0.01):  # noqa: A002
    return _act.leaky_relu(input, negative_slope, True)


def hardtanh_(input, min_val=-1.0, max_val=1.0):  # noqa: A002
    # NOTE: PyTorch's hardtanh_ is the C++ op: no min_val <= max_val check (F.hardtanh's); clamp's max then wins
    return _inplace_act(_hardtanh, input, min_val, max_val)


def threshold_(input, threshold, value):  # noqa: A002
    return globals()["threshold"](input, threshold, value, True)


def selu_(input):  # noqa: A002
    return _act.selu(input, True)


def celu_(input, alpha=1.0):  # noqa: A002
    return celu(input, alpha, True)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):  # noqa: A002
    """log(1 + exp(-target * input)) per element (target and input broadcast), then the reduction."""
    reduction = _reduction_enum(size_average, reduce, reduction)
    if target.requires_grad and _grad_enabled():
        raise RuntimeError("The function 'soft_margin_loss' is not differentiable with respect to argument 'target'. "
                           "This input cannot have requires_grad True.")
    # NOTE: as -logsigmoid(target * input): PyTorch's log1p(exp(.)) overflows to inf (and a NaN gradient) past ~88
    # in float32; equal values below
    return _reduce_loss(-_act.logsigmoid(input * target), reduction)


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):  # noqa: A002
    """Per sample, the sum over target classes j (target's entries before the first -1) and non-target classes i of
    max(0, 1 - (x[j] - x[i])), divided by C; the gradient flows where that is > 0."""
    reduction = _reduction_enum(size_average, reduce, reduction)
    nd, shape = input.ndim, list(input.shape)
    if not ((nd <= 2 and input.numel() > 0) or (nd == 2 and shape[1] > 0)):
        raise RuntimeError(f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: {shape}")
    c = shape[-1] if nd else 1
    if (target.ndim > 1 or target.numel() != c) if nd <= 1 else list(target.shape) != shape:
        raise RuntimeError(f"inconsistent target size: {list(target.shape)} for input of size: {shape}")
    _float_only(input, "multilabel_margin_loss_forward_out_frame")
    if target.dtype != np.int64:
        raise RuntimeError(f"expected scalar type Long but found {_promo.short_name(target.dtype)}")
    xp, y = input.xp, target._data.reshape(-1, c)
    if y.size and (int(y.min()) < -1 or int(y.max()) >= c):
        raise RuntimeError("argument #2 'target' is out of range")
    valid = xp.cumprod(y >= 0, axis=1).astype(bool)  # NOTE: the target list ends at its first -1
    y = xp.where(valid, y, 0)
    is_target = ((y[:, :, None] == xp.arange(c)) & valid[:, :, None]).any(1)
    x = input.reshape(-1, c)
    z = _relu_mask(1 - x.gather(1, Tensor(y)).unsqueeze(2) + x.unsqueeze(1))  # (N, J, C)
    out = (z * Tensor((valid[:, :, None] & ~is_target[:, None, :]).astype(input.dtype))).sum((1, 2)) / c
    return _reduce_loss(out.reshape(()) if nd <= 1 else out, reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0, swap=False,
                                      reduction="mean"):
    """max(0, margin + d(a, p) - d(a, n)) with d = distance_function (default pairwise_distance); ``swap``:
    d(a, n) -> min(d(a, n), d(p, n))."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                           f"dimensions, but got: anchor {anchor.ndim}D, positive {positive.ndim}D, and negative "
                           f"{negative.ndim}D inputs")
    dist = pairwise_distance if distance_function is None else distance_function
    dpos, dneg = dist(anchor, positive), dist(anchor, negative)
    if swap:
        from ..tensor import minimum  # noqa: PLC0415
        dneg = minimum(dneg, dist(positive, negative))
    return _reduce_loss((margin + dpos - dneg).clamp(min=0), reduction)


def pdist(input, p=2):  # noqa: A002
    """p-norm distances between the rows of input (N, M), pairs (0, 1), (0, 2), ..., (N-2, N-1): (N (N-1) / 2,)."""
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    if not _isf(input.dtype):
        raise RuntimeError("pdist only supports floating-point dtypes")
    if p < 0:
        raise RuntimeError("pdist only supports non-negative p values")
    if input.dtype == np.float16:
        raise NotImplementedError("\"pdist\" not implemented for 'Half'")
    i, j = (Tensor(input.xp.asarray(a)) for a in np.triu_indices(input.shape[0], 1))
    return _pnorm(input[i] - input[j], p)


def bilinear(input1, input2, weight, bias=None):
    """y[..., o] = sum_ij input1[..., i] weight[o, i, j] input2[..., j] (+ bias[o]): one matmul and a product-sum."""
    named = [("input1", input1), ("input2", input2), ("weight", weight)] + ([("bias", bias)] if bias is not None else [])
    if len({t.dtype for _, t in named}) > 1:
        raise RuntimeError("All tensors must have the same dtype, got " +
                           ", ".join(f"{n}: {_promo.cpp_name(t.dtype)}" for n, t in named))
    if input1.ndim != input2.ndim:
        raise RuntimeError(f"bilinear(): input dimensions do not match: got {input1.ndim} and {input2.ndim}")
    if input1.ndim == 0:
        raise IndexError("Dimension specified as -1 but tensor has no dimensions")
    for d in range(input1.ndim - 1):
        if input1.shape[d] != input2.shape[d]:
            raise RuntimeError(f"bilinear(): input batch dimensions do not match at dim {d}: got {input1.shape[d]} "
                               f"and {input2.shape[d]}")
    for k, t in ((1, input1), (2, input2)):
        if t.shape[-1] != weight.shape[k]:
            raise RuntimeError(f"bilinear(): input{k} size does not match weight size: got {t.shape[-1]} but expected "
                               f"{weight.shape[k]}")
    if bias is not None and bias.shape[0] != weight.shape[0]:
        raise RuntimeError(f"bilinear(): bias size does not match weight size: got {bias.shape[0]} but expected "
                           f"{weight.shape[0]}")
    o, i1, i2 = weight.shape
    z = matmul(input1, weight.permute(1, 0, 2).reshape(i1, o * i2))
    y = (z.reshape(*input1.shape[:-1], o, i2) * input2.unsqueeze(-2)).sum(-1)
    return y if bias is None else y + bias


def channel_shuffle(input, groups):  # noqa: A002
    """(N, C, *) -> channels regrouped: (N, groups, C/groups, *) transposed to (N, C/groups, groups, *)."""
    if not isinstance(groups, numbers.Integral):
        raise TypeError(f"channel_shuffle(): argument 'groups' (position 2) must be int, not {type(groups).__name__}")
    if input.ndim <= 2:
        raise RuntimeError(f"channel_shuffle expects input with > 2 dims, but got input with sizes {list(input.shape)}")
    if groups <= 0:
        raise RuntimeError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    n, c = input.shape[:2]
    if c % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups.")
    return input.reshape(n, groups, c // groups, *input.shape[2:]).transpose(1, 2).reshape(tuple(input.shape))


def _pool3d_args(input, kernel_size, stride, padding, dilation, ceil_mode, name, prefix):  # noqa: A002
    """PyTorch's pool3d checks; the 5-D input (an unbatched 4-D one gets N = 1) and k, s, p, d triples."""
    if input.ndim not in (4, 5):
        raise RuntimeError("non-empty 4D or 5D (batch mode) tensor expected for input")
    if 0 in tuple(input.shape)[-4:]:
        raise RuntimeError(f"{prefix}Expected input's non-batch dimensions to have positive length, but input has a "
                           f"shape of {list(input.shape)} and non-batch dimension 0 has length zero!")
    either = "either " if name == "max_pool3d" else ""

    def trip(v, what, how=f"{either}be a single int"):
        v = (int(v),) * 3 if isinstance(v, numbers.Integral) else tuple(int(a) for a in v)
        if len(v) not in (1, 3):
            raise RuntimeError(f"{name}: {what} must {how}, or a tuple of three ints")
        return v * 3 if len(v) == 1 else v
    k = trip(kernel_size, "kernel_size")
    s = k if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0) else \
        trip(stride, "stride", f"{either}be omitted, a single int")
    p, d = trip(padding, "padding"), trip(dilation, "dilation", "be either a single int")
    sz = tuple(input.shape[-3:])
    if name == "avg_pool3d" and any(n_ < k_ for n_, k_ in zip(sz, k)):  # NOTE: PyTorch checks before the padding
        raise RuntimeError(f"input image (T: {sz[0]} H: {sz[1]} W: {sz[2]}) smaller than kernel size (kT: {k[0]} kH: "
                           f"{k[1]} kW: {k[2]})")
    out = []
    for n_, k_, s_, p_, d_ in zip(sz, k, s, p, d):
        if p_ > (d_ * (k_ - 1) + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={p_}, kernel_size="
                               f"{k_} and dilation={d_}")
        o = (n_ + 2 * p_ - d_ * (k_ - 1) - 1 + (s_ - 1 if ceil_mode else 0)) // s_ + 1
        out.append(o - 1 if ceil_mode and (o - 1) * s_ >= n_ + p_ else o)
    if min(out) < 1:
        c = input.shape[-4]
        raise RuntimeError(f"Given input size: ({c}x{'x'.join(map(str, sz))}). Calculated output size: ({c}x"
                           f"{'x'.join(map(str, out))}). Output size is too small" if name == "max_pool3d" else
                           f"input image (T: {sz[0]} H: {sz[1]} W: {sz[2]}) smaller than kernel size (kT: {k[0]} kH: "
                           f"{k[1]} kW: {k[2]})")
    return (input if input.ndim == 5 else input.unsqueeze(0)), k, s, p, d


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):
    """Max over (D, H, W) windows, as two max_pool2d passes: over each (H, W) plane, then over depth (a max over a
    box is the max of its planes' maxima; ties go to the first maximum in (d, h, w) order, as PyTorch's)."""
    x, k, s, p, d = _pool3d_args(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool3d",
                                 "max_pool3d_with_indices_out_cpu_template(): ")
    n, c, dd, h, w = x.shape
    r1 = max_pool2d(x.reshape(n, c * dd, h, w), k[1:], s[1:], p[1:], d[1:], ceil_mode, return_indices)
    y1 = r1[0] if return_indices else r1
    oh, ow = y1.shape[-2:]
    r2 = max_pool2d(y1.reshape(n, c, dd, oh * ow), (k[0], 1), (s[0], 1), (p[0], 0), (d[0], 1), ceil_mode,
                    return_indices)
    y2 = r2[0] if return_indices else r2
    y = y2.reshape(n, c, y2.shape[2], oh, ow)  # NOTE: no -1: the batch may be empty
    y = y if input.ndim == 5 else y.squeeze(0)
    if not return_indices:
        return y
    dep = r2[1]._data // (oh * ow)  # (N, C, OD, OH*OW): the depth of each window's maximum
    hw = x.xp.take_along_axis(r1[1]._data.reshape(n, c, dd, oh * ow), dep, axis=2)
    idx = (dep * (h * w) + hw).reshape(tuple(y.shape) if input.ndim == 5 else (1,) + tuple(y.shape))
    return y, Tensor(idx if input.ndim == 5 else idx[0])


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,  # noqa: A002
               divisor_override=None):
    """Mean over (D, H, W) windows, as avg_pool2d over each plane, then over depth (the divisor of a box window is
    the product of its per-dim counts, so the two means make PyTorch's one)."""
    x, k, s, p, _ = _pool3d_args(input, kernel_size, stride, padding, 1, ceil_mode, "avg_pool3d", "avg_pool3d(): ")
    n, c, dd, h, w = x.shape
    div = None if divisor_override is None else 1  # NOTE: with an override: sums, then one division
    y1 = avg_pool2d(x.reshape(n, c * dd, h, w), k[1:], s[1:], p[1:], ceil_mode, count_include_pad, div)
    oh, ow = y1.shape[-2:]
    y2 = avg_pool2d(y1.reshape(n, c, dd, oh * ow), (k[0], 1), (s[0], 1), (p[0], 0), ceil_mode, count_include_pad,
                    divisor_override)
    y = y2.reshape(n, c, y2.shape[2], oh, ow)  # NOTE: no -1: the batch may be empty
    return y if input.ndim == 5 else y.squeeze(0)


def _adaptive3d_size(input, output_size, name, colon, bad_len):  # noqa: A002
    """(D, H, W) of an adaptive 3-D pool's output_size (an int or a triple; None keeps the input's size), after
    PyTorch's input checks (its messages differ between the two pools by ``colon`` and ``bad_len``)."""
    if input.ndim not in (4, 5):
        raise RuntimeError(f"{name}(): Expected 4D or 5D tensor, but got{colon} {list(input.shape)}")
    size = (output_size,) * 3 if isinstance(output_size, numbers.Integral) or output_size is None else \
        tuple(output_size)
    if len(size) != 3:
        raise RuntimeError(bad_len)
    for i in range(input.ndim - 4, input.ndim):
        if input.shape[i] == 0:
            raise RuntimeError(f"{name}(): Expected input to have non-zero size for non-batch dimensions, but input "
                               f"has sizes {list(input.shape)} with dimension {i} being empty")
    return tuple(int(v) if v is not None else n for v, n in zip(size, input.shape[-3:]))


def adaptive_avg_pool3d(input, output_size):  # noqa: A002
    """Average pooling to a fixed (D, H, W) size (an int or a triple; None keeps that input size): adaptive_avg_pool2d
    over each plane, then over depth (the adaptive windows are boxes)."""
    od, oh, ow = _adaptive3d_size(input, output_size, "adaptive_avg_pool3d", "", "adaptive_avg_pool3d: output_size "
                                  "must be 3")
    if min(od, oh, ow) < 0:
        raise RuntimeError(f"adaptive_avg_pool3d: elements of output_size must be greater than or equal to 0 but "
                           f"received {{{od}, {oh},{ow}}}")
    x = input if input.ndim == 5 else input.unsqueeze(0)
    n, c, dd, h, w = x.shape
    if 0 in (od, oh, ow):
        y = x.reshape(-1)[:0].reshape(n, c, od, oh, ow)
    else:
        y1 = adaptive_avg_pool2d(x.reshape(n, c * dd, h, w), (oh, ow))
        y = adaptive_avg_pool2d(y1.reshape(n, c, dd, oh * ow), (od, oh * ow)).reshape(n, c, od, oh, ow)
    return y if input.ndim == 5 else y.squeeze(0)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
                            return_indices=False):
    """max_pool1d's (output, indices), whatever return_indices says (as PyTorch's)."""
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
                            return_indices=False):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
                            return_indices=False):
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


# == issue 11 leftovers: LP pools, adaptive_max_pool3d, max_unpool1d/3d, affine_grid, grid_sample, feature alpha dropout
__all__ += ["lp_pool1d", "lp_pool2d", "lp_pool3d", "adaptive_max_pool3d", "max_unpool1d", "max_unpool3d",
            "affine_grid", "grid_sample", "feature_alpha_dropout"]


def _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, nd):  # noqa: A002
    """PyTorch's composite: (sign(s) * relu(|s|) * prod(k)) ** (1/p) over s = avg_pool(x ** p); +-inf norms are
    max pools of |x| (-inf: minus the max pool of -|x|)."""
    mx, avg = (max_pool1d, max_pool2d, max_pool3d)[nd - 1], (avg_pool1d, avg_pool2d, avg_pool3d)[nd - 1]
    if norm_type in (math.inf, -math.inf):
        sgn = 1 if norm_type > 0 else -1
        return mx(input.abs() * sgn, kernel_size, stride, 0, 1, ceil_mode) * sgn
    k = kernel_size if nd == 1 else (_pair if nd == 2 else _triple)(kernel_size, "kernel_size")
    out = avg(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return (out.sign() * relu(out.abs())).mul(int(np.prod(k))).pow(1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):  # noqa: A002
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 1)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):  # noqa: A002
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 2)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):  # noqa: A002
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 3)


def adaptive_max_pool3d(input, output_size, return_indices=False):  # noqa: A002
    """adaptive_max_pool2d over each plane, then over depth (separable; ties go to the first maximum in (d, h, w)
    order, as PyTorch's); indices flat in D*H*W."""
    od, oh, ow = _adaptive3d_size(input, output_size, "adaptive_max_pool3d", ":",
                                  "adaptive_max_pool3d(): internal error: output_size.size() must be 3")
    x = input if input.ndim == 5 else input.unsqueeze(0)
    n, c, dd, h, w = x.shape
    if min(od, oh, ow) < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(od, oh, ow)}: "
                           f"{list(input.shape[:-3]) + [od, oh, ow]}")
    y1, i1 = adaptive_max_pool2d(x.reshape(n, c * dd, h, w), (oh, ow), True)
    y, i2 = adaptive_max_pool2d(y1.reshape(n, c, dd, oh * ow), (od, oh * ow), True)
    y = y.reshape(n, c, od, oh, ow)
    y = y if input.ndim == 5 else y.squeeze(0)
    if not return_indices:
        return y
    dep = i2._data // (oh * ow)
    hw = x.xp.take_along_axis(i1._data.reshape(n, c, dd, oh * ow), dep, axis=2)
    idx = (dep * (h * w) + hw).reshape(n, c, od, oh, ow)
    return y, Tensor(idx if input.ndim == 5 else idx[0])


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):  # noqa: A002
    """PyTorch's: max_unpool2d over a trailing unit dim."""
    k, p = _single(kernel_size, "kernel_size"), _single(padding, "padding")
    s = k if stride is None else _single(stride, "stride")
    default = (input.shape[-1] - 1) * s - 2 * p + k
    if output_size is not None:
        osz = list(output_size)[2:] if len(output_size) == 3 else list(output_size)
        if len(osz) != 1:
            raise ValueError(f"output_size should be a sequence containing 1 or 3 elements, but it has a length of "
                             f"'{len(osz)}'")
        if not default - s < osz[0] < default + s:
            shown = osz if isinstance(output_size, list) else tuple(osz)
            raise ValueError(f'invalid output_size "{shown}" (dim 0 must be between {default - s} and {default + s})')
        default = int(osz[0])
    return max_unpool2d(input.unsqueeze(-1), indices.unsqueeze(-1), (k, 1), (s, 1), (p, 0),
                        (default, 1)).squeeze(-1)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):  # noqa: A002
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3)


_ALIGN_WARN = ("Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. Please "
               "specify align_corners=True if the old behavior is desired. See the documentation of grid_sample for "
               "details.")


def _base_coords(n, align_corners):
    if n <= 1:
        return np.zeros(max(n, 1))
    v = np.linspace(-1.0, 1.0, n)
    return v if align_corners else v * (n - 1) / n


def affine_grid(theta, size, align_corners=None):
    """The sampling grid (N, H, W, 2) (or (N, D, H, W, 3)) of the affine maps theta (N, 2, 3) / (N, 3, 4): the base
    grid of normalized (x, y[, z], 1) times theta^T (a matmul, differentiable in theta)."""
    if align_corners is None:
        import warnings  # noqa: PLC0415
        warnings.warn(_ALIGN_WARN, UserWarning, stacklevel=2)
        align_corners = False
    if not _isf(theta.dtype):
        raise ValueError(f"Expected theta to have floating point type, but got torch.{theta.dtype}")
    size = list(size)
    if len(size) not in (4, 5):
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {size}.")
    k = len(size) - 2
    if theta.ndim != 3 or tuple(theta.shape[-2:]) != (k, k + 1):
        raise ValueError(f"Expected a batch of {k}D affine matrices of shape Nx{k}x{k + 1} for size {size}. Got "
                         f"torch.Size({list(theta.shape)}).")
    sp = size[2:]
    if align_corners and min(sp) == 1:
        import warnings  # noqa: PLC0415
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the documentation of "
                      "affine_grid for details.", UserWarning, stacklevel=2)
    elif min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")
    axes = [_base_coords(m, align_corners) for m in sp]  # (D,) H, W
    mesh = np.meshgrid(*axes, indexing="ij")
    base = np.stack([m for m in mesh[::-1]] + [np.ones_like(mesh[0])], -1).reshape(1, -1, k + 1)
    b = Tensor(theta.xp.asarray(base.astype(theta.dtype if theta.dtype not in _LOWP else np.float32)))
    return matmul(b.type(theta.dtype), theta.transpose(1, 2)).reshape([size[0]] + sp + [k])


def _piecewise(x, val, slope):
    """x * slope + (val - x * slope) as constants: a value val whose derivative in x is slope (0 / +-1)."""
    return x * Tensor(slope) + Tensor(val - x._data * slope)


def _grid_coord(g, n, padding_mode, align_corners):
    """Unnormalize one grid coordinate to a pixel position and apply the padding mode (PyTorch's
    grid_sampler_compute_source_index, with its gradient: 0 where clipped, a sign flip where reflected)."""
    xp = g.xp
    x = (g + 1) / 2 * (n - 1) if align_corners else ((g + 1) * n - 1) / 2
    if padding_mode == "zeros":
        return x
    if padding_mode == "reflection":
        lo, hi = (0.0, 2.0 * (n - 1)) if align_corners else (-1.0, 2.0 * n - 1)
        d = x._data
        if lo == hi:
            x = _piecewise(x, xp.zeros_like(d), xp.zeros_like(d))
        else:
            mn, span = lo / 2, (hi - lo) / 2
            a = xp.abs(d - mn)
            extra, flips = xp.fmod(a, span), xp.floor(a / span)
            even = flips % 2 == 0
            val = xp.where(even, extra + mn, span - extra + mn)
            # NOTE: PyTorch's reflect_coordinates_set_grad: -1 below the low edge, times -1 per odd flip count
            slope = xp.where(d - mn < 0, -1.0, 1.0) * xp.where(even, 1.0, -1.0)
            x = _piecewise(x, val.astype(d.dtype), slope.astype(d.dtype))
    d = x._data
    inside = (d > 0) & (d < n - 1)  # NOTE: clip_coordinates_set_grad: no gradient at or beyond either edge
    return _piecewise(x, xp.clip(d, 0, n - 1).astype(d.dtype), inside.astype(d.dtype))


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):  # noqa: A002
    """Samples input (N, C, H, W) / (N, C, D, H, W) at grid (N, Ho, Wo, 2) / (N, Do, Ho, Wo, 3) of normalized
    (x, y[, z]) positions; bilinear (trilinear) or nearest (round half to even), padding zeros/border/reflection.
    Composed from gathers and the corner weights, so it is differentiable in input and grid to any order
    (PyTorch's grid_sampler_2d_backward has no double backward). mode='bicubic' is not supported yet."""
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', but "
                         f"got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError("nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    if align_corners is None:
        import warnings  # noqa: PLC0415
        warnings.warn(_ALIGN_WARN, UserWarning, stacklevel=2)
        align_corners = False
    if input.shape[0] != grid.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, but got input with "
                           f"sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    k = input.ndim - 2
    if grid.shape[-1] != k:
        raise RuntimeError(f"grid_sampler(): expected grid to have size {k} in last dimension, but got grid with "
                           f"sizes {list(grid.shape)}")
    if input.ndim not in (4, 5) or grid.ndim != input.ndim:
        raise RuntimeError(f"grid_sampler(): expected {4 if input.ndim == 4 else 5}D input and grid with same number "
                           f"of dimensions, but got input with sizes {list(input.shape)} and grid with sizes "
                           f"{list(grid.shape)}")
    if input.dtype != grid.dtype:
        raise RuntimeError(f"expected scalar type {_promo.short_name(input.dtype)} but found "
                           f"{_promo.short_name(grid.dtype)}")
    if mode == "bicubic":
        raise NotImplementedError("grid_sample(mode='bicubic') is not supported yet; use 'bilinear' or 'nearest'")
    xp, n, c = input.xp, input.shape[0], input.shape[1]
    sp = tuple(input.shape[2:])  # (D,) H, W; grid's last dim is (x, y[, z]): reversed
    osp = tuple(grid.shape[1:-1])
    m = int(np.prod(osp))
    pos = [_grid_coord(grid[..., k - 1 - a].reshape(n, 1, m), sp[a], padding_mode, align_corners) for a in range(k)]
    flat = input.reshape(n, c, -1)

    def tap(cs):  # the input at integer corner cs (one (N, 1, M) array per axis), zero outside
        ok, lin = True, 0
        for a, ca in enumerate(cs):
            ok = (ca >= 0) & (ca < sp[a]) & ok
            lin = lin * sp[a] + xp.clip(ca, 0, sp[a] - 1)
        v = flat.gather(2, Tensor(xp.broadcast_to(lin.astype(np.int64), (n, c, m))))
        return v * Tensor(ok.astype(input.dtype if input.dtype not in _LOWP else np.float32)).type(input.dtype)
    if mode == "nearest":
        out = tap([xp.rint(p._data).astype(np.int64) for p in pos])
        # NOTE: PyTorch's nearest gradient for grid is zeros (not None): a where that never picks the grid
        out = out + where(Tensor(xp.zeros((), bool)), grid[..., 0].reshape(n, 1, m), _const_like(out, 0.0))
    else:
        lo = [xp.floor(p._data) for p in pos]
        frac = [p - Tensor(f) for p, f in zip(pos, lo)]
        out = None
        for corner in itertools.product((0, 1), repeat=k):
            wt = None
            for a, bit in enumerate(corner):
                f = frac[a] if bit else 1 - frac[a]
                wt = f if wt is None else wt * f
            term = tap([lo[a].astype(np.int64) + corner[a] for a in range(k)]) * wt
            out = term if out is None else out + term
    return out.reshape((n, c) + osp)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):  # noqa: A002
    """alpha_dropout with one mask per (sample, channel) map (PyTorch's make_feature_noise: shape (N, C, 1, ...))."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if training and p not in (0.0, 1.0) and input.numel() and input.ndim < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    return _alpha_dropout(input, p, training, inplace, tuple(input.shape[:2]) + (1,) * (input.ndim - 2))


# -- a clear TypeError for NumPy arrays / torch.Tensors passed where Tensors are needed ------------------
def _guarded(fn):
    """``fn`` that turns the AttributeError / TypeError a non-Tensor argument causes into a clear TypeError
    (naming fn and how to convert). NOTE: costs one call frame (~0.1 us); the try block itself is free."""
    import functools  # noqa: PLC0415
    from .._errors import foreign_arg  # noqa: PLC0415
    name = fn.__name__

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (AttributeError, TypeError) as e:
            err = foreign_arg(e, args, kwargs, name)
            if err is None:
                raise
            raise err from None
    return call


for _n in __all__:
    if _n not in ("embedding", "one_hot"):  # NOTE: these take integer arrays too (an extension)
        globals()[_n] = _guarded(globals()[_n])
del _n

# NOTE: autocast (gpugrad/amp/autocast_mode.py): the ops of PyTorch's autocast lists are wrapped here, last,
#       so that nn modules calling F.<op> get the wrapped function
from ..amp.autocast_mode import install as _autocast_install  # noqa: E402

_autocast_install(globals())
