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
from .reduce import MaxMin

__all__ = ["Im2Col", "Col2Im", "Conv2d", "ConvTranspose2d", "MaxTiles", "out_size", "im2col", "col2im"]


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


# -- convolution: one primitive, forward and backward written together ---------------------------------
# NOTE (the layout): the padded input is split into its stride phases x_pad[a::sh, b::sw], each a channel-major
# (C, N*HQ*WQ) grid with HQ = OH + max shift; kernel tap t then reads its phase at the flat offset qi*WQ + qj, so a
# tap is a column shift of a 2-D array for every image at once and the convolution is, per chunk of grid positions,
# KH*KW strided copies into a cache-sized column buffer and ONE matrix product (no im2col of the whole batch, no
# col2im scatter). Grid positions past OH/OW are computed and dropped; the gradients put zeros there.
# NOTE: those positions read real pixels times a zero output gradient, so an inf in x can make the weight gradient
# NaN where PyTorch's is inf (finite inputs are unaffected; the flat mode below has no such positions).
_CHUNK = {True: 1 << 22, False: 1 << 26}  # bytes of columns per chunk: numpy (L2/L3-sized) / cupy


class _Geo:
    """The phase-grid plan of a convolution of an (N, C, H, W) input (pads may be negative at the bottom/right)."""

    def __init__(self, xshape, wshape, stride, padding, dilation, groups):
        self.n, _, self.h, self.w = xshape
        self.oc, self.groups, self.stride, self.pads = wshape[0], groups, stride, padding
        ax = []
        for n, k, s, (p0, p1), d in zip(xshape[2:], wshape[2:], stride, padding, dilation):
            o = (n + p0 + p1 - d * (k - 1) - 1) // s + 1
            taps = [((i * d) % s, (i * d) // s) for i in range(k)]
            ax.append((o, o + max(q for _, q in taps), taps))
        (self.oh, self.hq, th), (self.ow, self.wq, tw) = ax
        if self.oh <= 0 or self.ow <= 0:
            _geometry((self.h, self.w), wshape[2:], stride, padding, dilation)  # raises
        self.phases = sorted({(a, b) for a, _ in th for b, _ in tw})
        self.taps = [(self.phases.index((a, b)), qi * self.wq + qj) for a, qi in th for b, qj in tw]
        self.m = self.lead = max(o for _, o in self.taps)  # the output grid's margin, where the output starts in it
        self.shifts = None
        # NOTE (flat mode): stride 1, output of the input's size, not depthwise: the grid is the input itself, a
        # channel-major (C, N*H*W) array with margins; tap (i, j) is the flat shift a*W + b (a = i*dh - top,
        # b = j*dw - left) and the columns where that shift crosses a row or image edge are zeroed (_chunks). The
        # products then run over N*H*W columns, not N*(H+2p)*(W+2p) (1.56x fewer for 8x8 images, 3x3 kernels).
        if stride == (1, 1) and (self.oh, self.ow) == (self.h, self.w) and not (wshape[:2] == (groups, 1)):
            self.hq, self.wq = self.h, self.w
            self.shifts = [(i * dilation[0] - padding[0][0], j * dilation[1] - padding[1][0])
                           for i in range(wshape[2]) for j in range(wshape[3])]
            offs = [a * self.w + b for a, b in self.shifts]
            self.pad = (max(0, -min(offs)), max(0, max(offs)))  # margins before and after the N*H*W positions
            self.taps = [(0, self.pad[0] + o) for o in offs]
            self.m, self.lead = sum(self.pad), self.pad[1]
        self.size = self.n * self.hq * self.wq  # grid positions per phase
        self.used = (self.n - 1) * self.hq * self.wq + (self.oh - 1) * self.wq + self.ow  # past the last valid one

    def spans(self, f):
        """(phase rows, input rows) and (phase cols, input cols) slices of phase f."""
        out = []
        for a, n, s, p, q in zip(self.phases[f], (self.h, self.w), self.stride, (self.pads[0][0], self.pads[1][0]),
                                 (self.hq, self.wq)):
            u0 = max(0, -(-(p - a) // s))
            u1 = max(u0, min(q, (n - 1 + p - a) // s + 1))
            h0 = a + s * u0 - p
            out.append((slice(u0, u1), slice(h0, h0 + s * (u1 - u0), s)))
        return out

    def mask(self, sign):
        """The edges that _chunks zeroes in flat mode (None otherwise); sign -1: the input gradient's taps."""
        return None if self.shifts is None else (self.h, self.w, [(sign * a, sign * b) for a, b in self.shifts])

    def split(self, x):
        """(N, C, H, W) -> its phases (F, C, N*HQ*WQ), zero where the padding is (flat mode: (1, C, margins +
        N*H*W))."""
        xp = xp_of(x)
        if self.shifts is not None:
            buf = xp.zeros((1, x.shape[1], self.m + self.size), dtype=x.dtype)
            buf[0, :, self.pad[0]:self.pad[0] + self.size].reshape(x.shape[1], self.n, self.h, self.w)[...] = \
                x.transpose(1, 0, 2, 3)
            return buf
        f_, sp = len(self.phases), [self.spans(f) for f in range(len(self.phases))]
        buf = xp.zeros((f_, x.shape[1], self.n, self.hq, self.wq), dtype=x.dtype)
        bt = buf.transpose(0, 2, 1, 3, 4)
        # NOTE: a few images at a time (~512 KB of x), every phase of them, so that each block of x is read from
        # memory once, not once per phase: ~1.5x on a cold x at stride 2 (one block on cupy / with one phase)
        k = max(1, (1 << 19) // max(1, x[0].nbytes)) if xp is np and f_ > 1 else self.n
        for n0 in range(0, self.n, k):
            for f, ((u, hs), (v, ws)) in enumerate(sp):
                bt[f, n0:n0 + k, :, u, v] = x[n0:n0 + k, :, hs, ws]
        return buf.reshape(f_, x.shape[1], self.size)

    def merge(self, out, f, buf):
        """The adjoint of split, one phase at a time: out (C, N, H, W)[phase f's pixels] = its grid buf (C, N*HQ*WQ)
        (each input pixel is in one phase). ``out`` from :meth:`merged`."""
        (u, hs), (v, ws) = self.spans(f)
        out[:, :, hs, ws] = buf.reshape(-1, self.n, self.hq, self.wq)[:, :, u, v]

    def merged(self, xp, c, dtype):
        """The (C, N, H, W) array merge writes into: zeros only where some input pixel is in no phase (a stride
        larger than the kernel's reach), else uninitialised (every pixel is written once)."""
        spans = map(self.spans, range(len(self.phases)))
        cover = sum((u.stop - u.start) * (v.stop - v.start) for (u, _), (v, _) in spans)
        return (xp.empty if cover == self.h * self.w else xp.zeros)((c, self.n, self.h, self.w), dtype=dtype)

    def grid(self, y):
        """(N, C, OH, OW) -> the output grid (C, m + N*HQ*WQ), zero outside the valid positions, the output at
        [lead, lead + size), so that grid[:, m - off + q] is the output at q - off + pad[0] for every q in [0, size)
        (phase mode: lead = m = max tap offset, pad[0] = 0)."""
        xp = xp_of(y)
        out = xp.zeros((y.shape[1], self.m + self.size), dtype=y.dtype)
        out[:, self.lead:self.lead + self.size].reshape(y.shape[1], self.n, self.hq, self.wq)[:, :, :self.oh,
                                                                                            :self.ow] = y.transpose(1, 0, 2, 3)
        return out, self.m

    def crop(self, y):
        """The output grid (C, N*HQ*WQ) -> (N, C, OH, OW) (a view)."""
        return y.reshape(-1, self.n, self.hq, self.wq)[:, :, :self.oh, :self.ow].transpose(1, 0, 2, 3)


def _edge(s, n):
    return slice(0, min(n, -s)) if s < 0 else slice(max(0, n - s), n)


def _chunks(srcs, taps, count, dtype, mask=None, keep=None):
    """(start, stop, cols (C, T, stop-start)) over [0, count): cols[:, t, r] = srcs[f_t][:, o_t + start + r], zero
    where a flat-mode shift crosses an edge (``mask``: (H, W, shifts); chunks of whole images). ``keep``: a dict
    that keeps the columns when they are one chunk, and gives them back to the next call."""
    if keep and keep["cols"].dtype == dtype:  # NOTE: the weight gradient reuses the forward's columns
        yield 0, count, keep["cols"]
        return
    xp = xp_of(srcs[0])
    c, t_ = srcs[0].shape[0], len(taps)
    step = max(1, min(count, _CHUNK[xp is np] // (c * t_ * dtype.itemsize)))
    if mask is not None:
        step = max(1, step // (mask[0] * mask[1])) * mask[0] * mask[1]
    cols = xp.empty((c, t_, step), dtype=dtype)
    for r0 in range(0, count, step):
        m = min(step, count - r0)
        cb = cols[:, :, :m]
        for t, (f, o) in enumerate(taps):
            cb[:, t] = srcs[f][:, o + r0:o + r0 + m]
        if mask is not None:
            v = cb.reshape(c, t_, -1, mask[0], mask[1])  # a view: the last axis is split
            for t, (a, b) in enumerate(mask[2]):
                if a:
                    v[:, t, :, _edge(a, mask[0])] = 0
                if b:
                    v[:, t, :, :, _edge(b, mask[1])] = 0
        yield r0, r0 + m, cb
    if keep is not None and step >= count:
        keep["cols"] = cols


def _tap_sum(out, srcs, taps, wm, count, mask=None, keep=None):
    """out[g, :, q] = sum_t wm[g, :, (c, t)] @ srcs[f_t][g's channels, o_t + q] for q < count; out (G, OCg, >=count).

    NOTE: depthwise (one channel in and out per group): per-tap multiply-adds of whole rows, no tiny products."""
    xp = xp_of(out)
    if wm.shape[1] == 1 and wm.shape[2] == len(taps):
        o2 = out[:, 0]
        step = max(1, min(count, _CHUNK[xp is np] // (2 * o2.shape[0] * out.itemsize)))
        tmp = xp.empty((o2.shape[0], step), dtype=out.dtype)
        for r0 in range(0, count, step):
            m = min(step, count - r0)
            o = o2[:, r0:r0 + m]
            for t, (f, off) in enumerate(taps):
                s = srcs[f][:, off + r0:off + r0 + m]
                if t == 0:
                    xp.multiply(s, wm[:, 0, :1], out=o)
                else:
                    o += xp.multiply(s, wm[:, 0, t:t + 1], out=tmp[:, :m])
        return out
    g = wm.shape[0]
    for r0, r1, cols in _chunks(srcs, taps, count, out.dtype, mask, keep):
        xp.matmul(wm, cols.reshape(g, -1, r1 - r0), out=out[:, :, r0:r1])
    return out


def _tap_corr(gy, srcs, taps, count, groups, mask=None, keep=None):
    """The weight gradient: sum_q gy[g, :, q] (x) srcs[f_t][g's channels, o_t + q] -> (G, OCg, Cg*T)."""
    xp = xp_of(gy)
    if gy.shape[1] == 1 and srcs[0].shape[0] == groups:  # NOTE: depthwise: row dot products per tap
        acc = xp.empty((groups, len(taps)), dtype=gy.dtype)
        # NOTE: as a batch of (1, count) @ (count, 1) products: BLAS dots, ~2x faster than einsum("cq,cq->c")
        for t, (f, off) in enumerate(taps):
            acc[:, t] = xp.matmul(gy[:, :, :count], srcs[f][:, off:off + count, None])[:, 0, 0]
        return acc[:, None]
    acc = None
    # NOTE: computed transposed, cols @ gy.T -> (G, Cg*T, OCg): OpenBLAS runs this ~1.4x faster than gy @ cols.T
    # (the long chunk axis is the reduction either way; measured on the 64x32x32x32 rows, 1 thread)
    for r0, r1, cols in _chunks(srcs, taps, count, gy.dtype, mask, keep):
        part = xp.matmul(cols.reshape(groups, -1, r1 - r0), gy[:, :, r0:r1].transpose(0, 2, 1))
        acc = part if acc is None else acc.__iadd__(part)
    return acc.transpose(0, 2, 1)


def _conv(src, w, geo, keep=None):
    """Phases of x (F, C, size) -> the output grid (OC, size) of conv2d(x, w) (valid below geo.used)."""
    g = geo.groups
    y = xp_of(src).empty((g, geo.oc // g, geo.size), dtype=src.dtype)
    return _tap_sum(y, src, geo.taps, w.reshape(g, geo.oc // g, -1), geo.used, geo.mask(1), keep).reshape(geo.oc,
                                                                                                         geo.size)


def _conv_data(grid, m, w, geo):
    """The input gradient (N, C, H, W) of conv2d from the output-gradient grid (``geo.grid``): per stride phase,
    the taps of that phase read the grid shifted back."""
    g, (oc, cg, kh, kw) = geo.groups, w.shape
    xp, t_, f_ = xp_of(grid), kh * kw, len(geo.phases)
    out = None if geo.shifts is not None else geo.merged(xp, g * cg, grid.dtype)
    # NOTE: measured and dropped: the forward's adjoint (per chunk one product W^T @ gy for all taps, K = OCg, its
    # tap slabs added into the phases): ~1.25x slower than these per-phase products on the stride-2 rows
    wt = w.reshape(g, oc // g, cg, t_).transpose(0, 2, 1, 3)  # (G, Cg, OCg, T)
    buf = xp.empty((g, cg, geo.size), dtype=grid.dtype)
    # NOTE: one phase's grid at a time, merged at once (while it is in cache) and reused for the next phase
    # (measured and dropped: blocks of images, every phase of a block at once: no faster on the stride-2 rows)
    for f in range(f_):
        ts = [t for t, (ft, _) in enumerate(geo.taps) if ft == f]
        _tap_sum(buf, [grid], [(0, m - geo.taps[t][1]) for t in ts], wt[..., ts].reshape(g, cg, -1), geo.size,
                 geo.mask(-1))
        if out is not None:
            geo.merge(out, f, buf)
    if out is None:  # NOTE: flat mode: the grid is the input itself
        return buf.reshape(g * cg, geo.n, geo.h, geo.w).transpose(1, 0, 2, 3)
    return out.transpose(1, 0, 2, 3)


def _conv_weight(src, grid, m, geo, wshape, keep=None):
    """The weight gradient (OC, Cg, KH, KW) of conv2d from the phases of x and the output-gradient grid."""
    g, gy = geo.groups, grid[:, geo.lead:geo.lead + geo.size]
    return _tap_corr(gy.reshape(g, geo.oc // g, -1), src, geo.taps, geo.used, g, geo.mask(1), keep).reshape(wshape)


def _empty_batch_grads(x, w, g, need):
    """(gx, gw) of a convolution of an empty batch: an empty input gradient and a zero weight gradient."""
    xp = xp_of(g)
    return (xp.zeros(x.shape, dtype=g.dtype) if need[0] else None), (xp.zeros(w.shape, dtype=g.dtype) if need[1]
                                                                     else None)


class Conv2d(Primitive):
    """conv2d(x, w) + b on arrays (4-D x; geometry normalised); backward: the input and weight gradients above.
    NOTE: one dtype throughout: float16/bfloat16 arrive widened to float32 (Primitive.apply's choke point)."""
    saves = (0, 1)  # NOTE: as PyTorch's ConvolutionBackward: x and w (both, always), never the bias

    def forward(self, x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
        self.geo = _Geo(x.shape, w.shape, stride, padding, dilation, groups)
        if self.geo.n == 0:  # NOTE: an empty batch (PyTorch computes it): an empty output, zero w/b gradients
            return xp_of(x).zeros((0, self.geo.oc, self.geo.oh, self.geo.ow), dtype=x.dtype)
        self.src, self.keep = self.geo.split(x), {}
        y = _conv(self.src, w, self.geo, self.keep)
        if b is not None:  # NOTE: only below geo.used: the grid's tail is uninitialised (adding to it could warn)
            y[:, :self.geo.used] += b[:, None]
        return self.geo.crop(y)

    def backward(self, g):
        vals, need = self.values(), self.needs_input_grad
        w, geo = vals[1], self.geo
        gb = g.sum((0, 2, 3)) if len(vals) > 2 and need[2] else None
        if geo.n == 0:
            return _empty_batch_grads(vals[0], w, g, need) + (gb,)
        grid, m = geo.grid(g)
        gx = _conv_data(grid, m, w, geo) if need[0] else None
        gw = _conv_weight(self.src, grid, m, geo, w.shape, self.keep) if need[1] else None
        return gx, gw, gb

    @staticmethod
    def composite(x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
        """Tensor ops (create_graph): im2col, then one matrix product per group."""
        n, oc, (cg, kh, kw) = x.shape[0], w.shape[0], w.shape[1:]
        cols = im2col(x, (kh, kw), stride, padding, dilation)  # (C, KH, KW, N, OH, OW)
        oh, ow = cols.shape[-2:]
        y = w.reshape(groups, oc // groups, -1) @ cols.reshape(groups, cg * kh * kw, n * oh * ow)
        if b is not None:
            y = y.reshape(oc, n * oh * ow) + b.reshape(oc, 1)
        return y.reshape(oc, n, oh, ow).permute(1, 0, 2, 3)


class ConvTranspose2d(Primitive):
    """conv_transpose2d(x, w) + b = the input gradient of conv2d(., w) (of output size ``size``) for x."""
    saves = (0, 1)

    def forward(self, x, w, b=None, size=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
        self.geo = _Geo((x.shape[0], w.shape[1] * groups) + tuple(size), w.shape, stride, padding, dilation, groups)
        if self.geo.n == 0:  # NOTE: an empty batch, as Conv2d
            return xp_of(x).zeros((0, w.shape[1] * groups) + tuple(size), dtype=x.dtype)
        y = _conv_data(*self.geo.grid(x), w, self.geo)
        if b is not None:
            y += b[:, None, None]
        return y

    def backward(self, g):
        vals, need = self.values(), self.needs_input_grad
        x, w, geo = vals[0], vals[1], self.geo
        gb = g.sum((0, 2, 3)) if len(vals) > 2 and need[2] else None
        if geo.n == 0:
            return _empty_batch_grads(x, w, g, need) + (gb,)
        src = geo.split(g)
        gx = geo.crop(_conv(src, w, geo)) if need[0] else None
        gw = _conv_weight(src, *geo.grid(x), geo, w.shape) if need[1] else None
        return gx, gw, gb

    @staticmethod
    def composite(x, w, b=None, size=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
        """Tensor ops (create_graph): one matrix product per group, then col2im."""
        (n, _, h, wd), (ic, ocg, kh, kw) = x.shape, w.shape
        xs = x.permute(1, 0, 2, 3).reshape(groups, ic // groups, n * h * wd)
        cols = (w.reshape(groups, ic // groups, ocg * kh * kw).transpose(1, 2) @ xs).reshape(ocg * groups, kh, kw,
                                                                                               n, h, wd)
        y = col2im(cols, size, (kh, kw), stride, padding, dilation)
        return y if b is None else y + b.reshape(1, -1, 1, 1)


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


def _argmax(slabs, first=None):
    """First index (int64) of the maximum over the equal-shape arrays ``slabs``; NaN counts as maximal, and of
    several NaNs the LAST wins (PyTorch's CPU pools: ``val > max || isnan(val)``). A result whose maximum is -inf
    takes ``first`` instead (broadcast to the result), when given."""
    xp = xp_of(slabs[0])
    it = np.int8 if len(slabs) < 128 else np.int64
    best, idx = slabs[0].copy(), xp.zeros(slabs[0].shape, dtype=it)
    for k in range(1, len(slabs)):
        better = slabs[k] > best
        xp.maximum(best, slabs[k], out=best)  # NOTE: propagates NaN, so NaN windows are detected below
        # NOTE: idx only rises, to the current k: a maximum instead of a masked write (copyto where=, ~6x slower)
        xp.maximum(idx, better * it(k), out=idx)
    if first is not None:
        idx = xp.where(best == -np.inf, first.astype(it), idx)
    nan = xp.isnan(best)
    if bool(nan.any()):
        last = len(slabs) - 1 - _argmax([xp.isnan(v) for v in reversed(slabs)])  # NOTE: the first NaN from the end
        idx = xp.where(nan, last, idx)
    return idx.astype(np.int64)


def window_argmax(cols, axis, first=None):
    """First index of the maximum along a short ``axis`` (kernel offsets), keepdims; NaN counts as maximal (the last
    NaN wins, see :func:`_argmax`). ``first``: nested tuples (OH x OW) of the window-local index of each padded
    window's first tap inside the input, which a window holding only -inf and padding reports (as PyTorch).

    NOTE: a loop of elementwise passes over the KH*KW slabs beats ``argmax`` along a middle axis,
    which numpy runs as one tiny reduction per output element.
    """
    xp = xp_of(cols)
    first = None if first is None else xp.asarray(first, dtype=np.int64)  # NOTE: a tuple, so gg.compile replays it
    return xp.expand_dims(_argmax([cols[(slice(None),) * axis + (k,)] for k in range(cols.shape[axis])], first), axis)


def _first_taps(size, kernel, stride, padding, dilation):
    """Window-local index of each window's first tap inside the input (PyTorch's initial argmax), as nested tuples
    (OH x OW), or None without padding (then it is tap 0)."""
    if not any(padding[0] + padding[1]):
        return None
    ks = []
    for n_, k_, s_, (p0, p1), d_ in zip(size, kernel, stride, padding, dilation):
        o = out_size(n_, k_, s_, p0, p1, d_)
        ks.append([max(0, -(-(p0 - i * s_) // d_)) for i in range(o)])  # NOTE: ceil((p0 - start) / d), >= 0
    return tuple(tuple(i * kernel[1] + j for j in ks[1]) for i in ks[0])


def max_pool(x, kernel, stride, padding, dilation):
    """Tensor max_pool2d of a 4-D x (geometry normalised): im2col with -inf padding, the first maximum of each
    window -> (y (N, C, OH, OW), window-local argmax (C, 1, N, OH, OW))."""
    n, c = x.shape[:2]
    cols = im2col(x, kernel, stride, padding, dilation, value=-np.inf)  # (C, KH, KW, N, OH, OW)
    cols = cols.reshape(c, kernel[0] * kernel[1], n, *cols.shape[-2:])
    idx = window_argmax(cols._data, 1, _first_taps(tuple(x.shape[-2:]), kernel, stride, padding, dilation))
    return MaxMin.apply(cols, axis=1, idx=idx, keepdim=False, mode="max").permute(1, 0, 2, 3), idx


class MaxTiles(Primitive):
    """max_pool2d over non-overlapping windows (stride == kernel, no padding or dilation; a ragged edge is dropped):
    one copy to window-offset-major rows, the first maximum (as :func:`max_pool`), a gather; backward: a scatter."""
    saves = (0,)  # NOTE: backward reads only the positions kept at forward, but PyTorch's saves x: writes to it raise

    def forward(self, x, kernel):
        xp, (n, c, h, w), (kh, kw) = xp_of(x), x.shape, kernel
        oh, ow = _geometry((h, w), kernel, kernel, ((0, 0), (0, 0)), (1, 1))  # raises if the kernel is too big
        x = xp.ascontiguousarray(x)
        cols = xp.ascontiguousarray(x[:, :, :oh * kh, :ow * kw].reshape(n * c * oh, kh, ow, kw).transpose(1, 3, 0, 2))
        idx = _argmax(list(cols.reshape(kh * kw, -1)))
        off = xp.asarray((np.arange(kh)[:, None] * w + np.arange(kw)).ravel())
        base = (xp.arange(n * c) * (h * w))[:, None, None] + (xp.arange(oh) * (kh * w))[:, None] + xp.arange(ow) * kw
        self.flat, self.shape = base.reshape(-1) + off[idx], x.shape  # NOTE: the flat position in x of each maximum
        return x.reshape(-1)[self.flat].reshape(n, c, oh, ow)

    def backward(self, g):
        gx = xp_of(g).zeros(int(np.prod(self.shape)), dtype=g.dtype)
        gx[self.flat] = g.reshape(-1)  # NOTE: as PyTorch, a non-finite g reaches only the argmax
        return gx.reshape(self.shape)

    @staticmethod
    def composite(x, kernel):
        return max_pool(x, kernel, kernel, ((0, 0), (0, 0)), (1, 1))[0]
