"""Sliding windows: im2col / col2im primitives (each the other's adjoint), and conv/pool composites.

Layout: ``x`` is (N, C, H, W); the columns are channel-major, (C, KH, KW, N, OH, OW), so that
reshaping them to (C*KH*KW, N*OH*OW) needs no copy and a convolution is ONE matrix product for the
whole batch (per group), forward and backward (a batch of N small products is ~2-3x slower on CPU). Padding is
``((top, bottom), (left, right))`` (asymmetric for 'same' with even kernels), filled with ``value``.
"""
from __future__ import annotations

import numpy as np

from ..autograd.primitive import Primitive
from ..backend import xp_of

__all__ = ["Im2Col", "Col2Im", "out_size", "im2col", "col2im"]


def out_size(n, k, s, p0, p1, d):
    """Number of window positions along one axis (n input, k kernel, s stride, p0/p1 pads, d dilation)."""
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def _geometry(hw, kernel, stride, padding, dilation):
    (H, W), (kh, kw), (sh, sw), ((pt, pb), (pl, pr)), (dh, dw) = hw, kernel, stride, padding, dilation
    oh, ow = out_size(H, kh, sh, pt, pb, dh), out_size(W, kw, sw, pl, pr, dw)
    if oh <= 0 or ow <= 0:
        raise RuntimeError(f"sliding window: input size ({H}, {W}) (padded ({H + pt + pb}, {W + pl + pr})) is too "
                           f"small for kernel {kernel} with dilation {dilation}: output size would be ({oh}, {ow})")
    return oh, ow


class Im2Col(Primitive):
    """(N, C, H, W) -> (C, KH, KW, N, OH, OW): every window position's pixels (one copy per kernel offset)."""

    def forward(self, x, kernel, stride, padding, dilation, value=0.0):
        self.geo = (tuple(x.shape[-2:]), kernel, stride, padding, dilation)
        oh, ow = _geometry(*self.geo)
        (kh, kw), (sh, sw), ((pt, pb), (pl, pr)), (dh, dw) = kernel, stride, padding, dilation
        xp = xp_of(x)
        if pt or pb or pl or pr:
            x = xp.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), mode="constant", constant_values=value)
        n, c = x.shape[:2]
        xt = x.transpose(1, 0, 2, 3)
        cols = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
        # NOTE: KH*KW strided copies, each vectorised over batch, channels and output positions.
        for i in range(kh):
            h0 = i * dh
            hs = slice(h0, h0 + sh * (oh - 1) + 1, sh)
            for j in range(kw):
                w0 = j * dw
                cols[:, i, j] = xt[:, :, hs, w0:w0 + sw * (ow - 1) + 1:sw]
        return cols

    def backward(self, g):
        hw, kernel, stride, padding, dilation = self.geo
        return self.call(Col2Im, g, size=hw, kernel=kernel, stride=stride, padding=padding, dilation=dilation)


class Col2Im(Primitive):
    """The adjoint of Im2Col: add every window's pixels (C, KH, KW, N, OH, OW) back to the (N, C, H, W) image."""

    def forward(self, cols, size, kernel, stride, padding, dilation):
        self.geo = (tuple(size), kernel, stride, padding, dilation)
        (H, W), (kh, kw), (sh, sw), ((pt, pb), (pl, pr)), (dh, dw) = self.geo
        oh, ow = _geometry(*self.geo)
        c, n = cols.shape[0], cols.shape[3]
        if tuple(cols.shape[1:3]) + tuple(cols.shape[4:]) != (kh, kw, oh, ow):
            raise RuntimeError(f"col2im: columns of shape {tuple(cols.shape)} do not match kernel {kernel} and "
                               f"output positions ({oh}, {ow}) of a {size} image")
        xp = xp_of(cols)
        out = xp.zeros((n, c, H + pt + pb, W + pl + pr), dtype=cols.dtype)
        ot = out.transpose(1, 0, 2, 3)
        for i in range(kh):
            h0 = i * dh
            hs = slice(h0, h0 + sh * (oh - 1) + 1, sh)
            for j in range(kw):
                w0 = j * dw
                ot[:, :, hs, w0:w0 + sw * (ow - 1) + 1:sw] += cols[:, i, j]
        if pt or pb or pl or pr:
            out = xp.ascontiguousarray(out[:, :, pt:pt + H, pl:pl + W])
        return out

    def backward(self, g):
        _, kernel, stride, padding, dilation = self.geo
        return self.call(Im2Col, g, kernel=kernel, stride=stride, padding=padding, dilation=dilation)


def im2col(x, kernel, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), value=0.0):
    """Tensor form of :class:`Im2Col` (all geometry arguments already normalised to pairs)."""
    return Im2Col.apply(x, kernel=tuple(kernel), stride=tuple(stride), padding=tuple(map(tuple, padding)),
                        dilation=tuple(dilation), value=value)


def col2im(cols, size, kernel, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1)):
    """Tensor form of :class:`Col2Im`."""
    return Col2Im.apply(cols, size=tuple(size), kernel=tuple(kernel), stride=tuple(stride),
                        padding=tuple(map(tuple, padding)), dilation=tuple(dilation))


def window_counts(xp, size, kernel, stride, padding, dilation, region, dtype):
    """How many pixels of ``region`` (an (H', W') mask over the padded image) each window covers: (OH, OW)."""
    (H, W), ((pt, pb), (pl, pr)) = size, padding
    mask = xp.zeros((1, 1, H + pt + pb, W + pl + pr), dtype=dtype)
    r0, r1, c0, c1 = region
    mask[:, :, r0:r1, c0:c1] = 1
    cols = Im2Col().forward(mask, kernel=kernel, stride=stride, padding=((0, 0), (0, 0)), dilation=dilation)
    return cols.sum(axis=(1, 2))[0, 0]


def flat_argmax_index(idx, size, kernel, stride, padding, dilation):
    """Window-local argmax ``idx`` (..., OH, OW) in [0, KH*KW) -> flat index into the H*W input plane."""
    xp = xp_of(idx)
    (_, W), (_, kw), (sh, sw), ((pt, _), (pl, _)), (dh, dw) = size, kernel, stride, padding, dilation
    oh, ow = idx.shape[-2:]
    h = (xp.arange(oh) * sh - pt).reshape(-1, 1) + (idx // kw) * dh
    w = (xp.arange(ow) * sw - pl).reshape(1, -1) + (idx % kw) * dw
    return (h * W + w).astype(np.int64)


def window_argmax(cols, axis):
    """First index of the maximum along a short ``axis`` (kernel offsets), keepdims; NaN counts as maximal.

    NOTE: a loop of elementwise passes over the KH*KW slabs beats ``argmax`` along a middle axis,
    which numpy runs as one tiny reduction per output element.
    """
    xp = xp_of(cols)
    sl = [slice(None)] * cols.ndim
    sl[axis] = 0
    best = cols[tuple(sl)].copy()
    idx = xp.zeros(best.shape, dtype=np.int64)
    for k in range(1, cols.shape[axis]):
        sl[axis] = k
        v = cols[tuple(sl)]
        better = v > best
        xp.maximum(best, v, out=best)  # NOTE: propagates NaN, so NaN windows are detected below
        xp.copyto(idx, k, where=better)
    nan = xp.isnan(best)
    if bool(nan.any()):
        idx = xp.where(nan, xp.isnan(cols).argmax(axis), idx)
    return xp.expand_dims(idx, axis)
