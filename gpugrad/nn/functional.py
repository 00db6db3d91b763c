"""``gg.nn.functional`` (``F``): stateless layers, PyTorch names, arguments and semantics.

Activations, softmax/log_softmax/logsumexp and the losses are fused ops from gpugrad.ops.activation,
gpugrad.ops.softmax and gpugrad.ops.loss, re-exported here. Everything else in this file is a
composite of core Tensor ops plus the sliding-window primitives of gpugrad.ops.conv.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _promotion as _promo
from .. import random as _random
from ..autograd.grad_mode import no_grad
from ..ops import activation as _act
from ..ops import conv as _conv
from ..ops import loss as _loss
from ..ops import softmax as _softmax
from ..ops.activation import *  # noqa: F403  (the fused ops are re-exported)
from ..ops.linalg import Linear as _Linear
from ..ops.loss import *  # noqa: F403
from ..ops.reduce import MaxMin as _MaxMin
from ..ops.softmax import *  # noqa: F403
from ..tensor import Tensor, matmul, where
from ..tensor import one_hot as _one_hot
from ..tensor import pad as _core_pad

__all__ = ["linear", "conv2d", "unfold", "fold", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "batch_norm",
           "layer_norm", "group_norm", "dropout", "embedding", "pad", "one_hot", "flatten", "normalize"]
__all__ += _act.__all__ + _softmax.__all__ + _loss.__all__  # the re-exported fused ops


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
    if input.dtype != weight.dtype or (bias is not None and bias.dtype != weight.dtype):
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
    """2-D convolution (cross-correlation, as PyTorch): im2col, then one matrix product per group.

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
    if (kh, kw) == (1, 1) and stride == (1, 1) and pads == ((0, 0), (0, 0)):
        oh, ow = h, w
        cols = x.permute(1, 0, 2, 3).reshape(c, n * h * w)  # NOTE: a 1x1 convolution needs no im2col
    else:
        cols = _conv.im2col(x, (kh, kw), stride, pads, dilation)  # (C, KH, KW, N, OH, OW)
        oh, ow = cols.shape[-2:]
        cols = cols.reshape(c * kh * kw, n * oh * ow)
    k = cg * kh * kw
    # NOTE: one matrix product for the whole batch: (OC, K) @ (K, N*OH*OW), batched over groups only
    if groups == 1:
        y = matmul(weight.reshape(oc, k), cols)
    else:
        y = matmul(weight.reshape(groups, oc // groups, k), cols.reshape(groups, k, n * oh * ow))
    if bias is not None:
        y = y.reshape(oc, n * oh * ow) + bias.reshape(oc, 1)
    y = y.reshape(oc, n, oh, ow).permute(1, 0, 2, 3)
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
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0) else _pair(stride, "stride")
    p, d = _pair(padding, "padding"), _pair(dilation, "dilation")
    for pi, ki in zip(p, k):
        if pi < 0 or pi > ki // 2:
            raise ValueError(f"{name}: padding should be at most half of the kernel size, got padding={padding} "
                             f"for kernel_size={kernel_size}")
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
    n, c = x.shape[:2]
    cols = _conv.im2col(x, k, s, pads, d, value=-math.inf)  # (C, KH, KW, N, OH, OW)
    oh, ow = cols.shape[-2:]
    cols = cols.reshape(c, k[0] * k[1], n, oh, ow)
    idx = _conv.window_argmax(cols._data, 1)
    y = _MaxMin.apply(cols, axis=1, idx=idx, keepdim=False, mode="max").permute(1, 0, 2, 3)
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
def _norm_dtypes(input, *params):  # noqa: A002
    """PyTorch's dtype rule for the normalization layers: the parameters (and running stats) have the
    input's dtype, or are float32 with a float16 input (mixed precision: the result is float16).
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
    if input.dtype != np.float16:
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
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected at least 2-D input (N, C, ...), got shape {tuple(input.shape)}")
    mixed = _norm_dtypes(input, running_mean, running_var, weight, bias)
    c = input.shape[1]
    axes = (0,) + tuple(range(2, input.ndim))
    bshape = (1, c) + (1,) * (input.ndim - 2)
    if training or running_mean is None or running_var is None:
        count = input.numel() // c
        if training and count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(input.shape)}")
        mean = input.mean(axes, keepdim=True)
        xc = input - mean
        var = (xc * xc).mean(axes, keepdim=True)
        if training and running_mean is not None:
            with no_grad():
                m = float(momentum)
                rm, rv = running_mean._data, running_var._data
                rm[...] = (1 - m) * rm + m * mean._data.reshape(c).astype(rm.dtype, copy=False)
                unb = var._data.reshape(c) * (count / max(count - 1, 1))
                rv[...] = (1 - m) * rv + m * unb.astype(rv.dtype, copy=False)
        scale = (var + eps).rsqrt()
        if weight is not None:
            scale = scale * weight.reshape(bshape)
        y = xc * scale
    else:
        inv = Tensor((running_var._data.astype(input.dtype, copy=False) + eps) ** -0.5)
        rm = Tensor(running_mean._data.astype(input.dtype, copy=False))
        scale = inv if weight is None else inv * weight
        y = (input - rm.reshape(bshape)) * scale.reshape(bshape)
    if bias is not None:
        y = y + bias.reshape(bshape)
    return y.type(input.dtype) if mixed else y


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):  # noqa: A002
    """Normalise over the trailing ``normalized_shape`` dims (biased variance), then scale and shift."""
    shape = (int(normalized_shape),) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
    k = len(shape)
    if tuple(input.shape[input.ndim - k:]) != shape or input.ndim < k:
        raise RuntimeError(f"layer_norm: input shape {tuple(input.shape)} does not end with normalized_shape {shape}")
    mixed = _norm_dtypes(input, weight, bias)
    axes = tuple(range(input.ndim - k, input.ndim))
    mean = input.mean(axes, keepdim=True)
    xc = input - mean
    var = (xc * xc).mean(axes, keepdim=True)
    y = xc * (var + eps).rsqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y.type(input.dtype) if mixed else y


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):  # noqa: A002
    """Normalise each group of channels of each sample; per-channel affine."""
    n, c = input.shape[:2]
    if c % num_groups:
        raise ValueError(f"group_norm: {c} channels are not divisible into {num_groups} groups")
    mixed = _norm_dtypes(input, weight, bias)
    g = input.reshape(n, num_groups, -1)
    mean = g.mean(2, keepdim=True)
    xc = g - mean
    y = (xc * ((xc * xc).mean(2, keepdim=True) + eps).rsqrt()).reshape(input.shape)
    bshape = (1, c) + (1,) * (input.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(bshape)
    if bias is not None:
        y = y + bias.reshape(bshape)
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
    g = _random.generator(input.device)
    dt = input.dtype if input.dtype in (np.float32, np.float64) else np.float32
    keep = g.random(input.shape, dtype=dt) >= p
    mask = (keep * (1.0 / (1.0 - p))).astype(input.dtype, copy=False)
    return input.mul_(Tensor(mask)) if inplace else input * Tensor(mask)


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
    if padding_idx is not None and padding_idx < 0:
        padding_idx += num
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
    i = np.arange(-lo, n + hi)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    if mode == "circular":
        if lo > n or hi > n:
            raise ValueError(f"pad: circular padding ({lo}, {hi}) can't exceed the dimension size {n}")
        return i % n
    if lo >= n or hi >= n:
        raise ValueError(f"pad: reflect padding ({lo}, {hi}) must be less than the dimension size {n}")
    i = np.abs(i)
    return np.where(i > n - 1, 2 * (n - 1) - i, i)


def pad(input, pad, mode="constant", value=None):  # noqa: A002
    """torch.nn.functional.pad: ``pad`` = (left, right, top, bottom, ...) from the LAST dim backwards.

    Modes: 'constant' (``value``, default 0), 'reflect', 'replicate', 'circular'.
    """
    if mode == "constant":
        return _core_pad(input, pad, value=0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"pad: unknown mode {mode!r}")
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: expected an even number of values covering at most {input.ndim} dims, got {pad}")
    y = input
    for i in range(len(pad) // 2):
        d = input.ndim - 1 - i
        lo, hi = int(pad[2 * i]), int(pad[2 * i + 1])
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
