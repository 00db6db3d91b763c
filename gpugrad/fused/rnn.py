"""Fused recurrent cells: the pointwise math of one LSTM / GRU / Elman step (``kernels/rnn.cu`` on CuPy
arrays, the NumPy fallback below otherwise), their composites in core Tensor ops, and the table of them.

The matmuls around a step are ordinary matmuls (the input projection batched over the sequence, the
recurrent ``h @ W_hh^T`` once per step); a cell is everything in between. Gate order and formulas are
PyTorch's (LSTM i, f, g, o; GRU r, z, n with ``b_hn`` inside the reset product). Array API (2-D arrays of
one float dtype; ``out``: arrays to write the results into, contiguous, of the results' shapes and dtype)::

    lstm_cell_fwd(xg, hg, c0, out=None) -> (act, c, h)             xg, hg (B, 4H); c0 (B, H); act (B, 4H)
    lstm_cell_bwd(act, c, c0, dh, dc, dhr=None, dcr=None, out=None) -> (dgates, dc0)
    gru_cell_fwd(xg, hg, h0, bhh=None, out=None) -> (saved, h)     xg, hg (B, 3H); bhh (3H,); saved (B, 4H)
    gru_cell_bwd(saved, h0, dh, dhr=None, out=None) -> (dxg, dhg, dh0)
    rnn_cell_fwd(kind, xg, hg, out=None) -> h                      kind "tanh" | "relu"; xg, hg (B, H)
    rnn_cell_bwd(kind, h, dh, dhr=None, out=None) -> dpre

``dhr``/``dcr`` are second upstream gradients added to ``dh``/``dc`` (the recurrent ones; None = 0). The GRU's
``dh0`` is the direct part ``dh * z`` only (the caller adds ``dhg @ W_hh``). float16/bfloat16 compute in float32
and round each result once; the saved activations have the input's dtype (as PyTorch's fused cells).
"""
from __future__ import annotations

import functools

import numpy as np

from ..backend import xp_of
from . import cuda
from ._common import F32, F64, FusedOp, as_compute, check_float, np_sigmoid, table

_SOURCE = "rnn.cu"
__all__ = ["ROWS", "lstm_cell_fwd", "lstm_cell_bwd", "gru_cell_fwd", "gru_cell_bwd", "rnn_cell_fwd", "rnn_cell_bwd",
           "c_lstm_cell", "c_gru_cell", "c_rnn_cell"]


# -- checks and outputs ---------------------------------------------------------------------------------
def _check(dt, xp, **arrays):
    """Every array (None allowed) 2-D of dtype ``dt`` on device ``xp``, with its expected (rows, cols)."""
    for k, (a, shape) in arrays.items():
        if a is None:
            continue
        if xp_of(a) is not xp:
            raise ValueError(f"'{k}' is on a different device than the input")
        if a.dtype != dt:
            raise TypeError(f"'{k}' has dtype {a.dtype}, expected {dt} (as the input)")
        if tuple(a.shape) != shape:
            raise ValueError(f"'{k}' has shape {tuple(a.shape)}, expected {shape}")


def _targets(xp, out, shapes, dt):
    """The output arrays: the caller's ``out`` (checked) or new ones."""
    if out is None:
        return [xp.empty(s, dt) for s in shapes]
    if len(out) != len(shapes):
        raise ValueError(f"out must hold {len(shapes)} arrays")
    for o, s in zip(out, shapes):
        if tuple(o.shape) != s or o.dtype != dt or not o.flags.c_contiguous:
            raise ValueError(f"out arrays must be contiguous {dt} arrays of shapes {shapes}")
    return list(out)


def _np(f, ins, outs):
    """The fallback ``f(*ins, *outs)`` on NumPy arrays; float16/bfloat16 compute in float32, rounded once."""
    dt = outs[0].dtype
    with np.errstate(all="ignore"):  # NOTE: exp overflow in sigmoid gives its limit 0; inf/NaN propagate
        if dt == F32 or dt == F64:
            f(*ins, *outs)
            return outs
        work = [np.empty(o.shape, F32) for o in outs]
        f(*[None if a is None else as_compute(a) for a in ins], *work)
    for o, w in zip(outs, work):
        o[...] = w  # NOTE: float16 may overflow to inf here, as the kernel's rounding
    return outs


def _gpu(kernel, dt, n, lead, tail=()):
    with cuda.on(lead[0]):
        cuda.map_launch(_SOURCE, kernel, dt, n, tuple(cuda.NULL if a is None else a for a in lead), tail)


# -- NumPy fallbacks: formula by formula as the functors of kernels/rnn.cu ----------------------------------
def _np_lstm_fwd(xg, hg, c0, act, c, h):
    H = c0.shape[1]
    np.add(xg, hg, out=act)
    # NOTE: in place on the gate blocks of act (strided 2-D views): i and f are adjacent, so one call for both
    for blk, fn in ((slice(0, 2 * H), np_sigmoid), (slice(2 * H, 3 * H), np.tanh), (slice(3 * H, 4 * H), np_sigmoid)):
        fn(act[:, blk], out=act[:, blk])
    i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
    np.multiply(f, c0, out=c)
    c += i * g
    np.tanh(c, out=h)
    h *= o


def _np_lstm_bwd(act, c, c0, dh, dc, dhr, dcr, d, dc0):
    H = c.shape[1]
    i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
    if dhr is not None:
        dh = dh + dhr
    if dcr is not None:
        dc = dc + dcr
    tc = np.tanh(c)
    t = np.multiply(dh, o)
    dct = np.multiply(tc, tc)
    np.subtract(1, dct, out=dct)
    dct *= t
    dct += dc                                    # dc + dh o (1 - tanh(c)^2)
    for k, (a, b) in enumerate(((g, i), (c0, f))):  # d_i = dct g i (1 - i), d_f = dct c0 f (1 - f)
        dk = np.multiply(dct, a, out=d[:, k * H:(k + 1) * H])
        dk *= b
        np.subtract(1, b, out=t)
        dk *= t
    d2 = np.multiply(dct, i, out=d[:, 2 * H:3 * H])
    np.multiply(g, g, out=t)
    np.subtract(1, t, out=t)
    d2 *= t
    d3 = np.multiply(dh, tc, out=d[:, 3 * H:])
    d3 *= o
    np.subtract(1, o, out=t)
    d3 *= t
    np.multiply(dct, f, out=dc0)


def _np_gru_fwd(xg, hg, bhh, h0, s, h):
    H = h0.shape[1]
    hb = hg if bhh is None else hg + bhh
    rz = np.add(xg[:, :2 * H], hb[:, :2 * H], out=s[:, :2 * H])
    np_sigmoid(rz, out=rz)
    r, z, m, hn = s[:, :H], s[:, H:2 * H], s[:, 2 * H:3 * H], s[:, 3 * H:]
    hn[...] = hb[:, 2 * H:]
    np.multiply(r, hn, out=m)
    np.add(xg[:, 2 * H:], m, out=m)
    np.tanh(m, out=m)
    np.subtract(h0, m, out=h)
    h *= z
    h += m


def _np_gru_bwd(s, h0, dh, dhr, dxg, dhg, dh0):
    H = h0.shape[1]
    r, z, m, hn = s[:, :H], s[:, H:2 * H], s[:, 2 * H:3 * H], s[:, 3 * H:]
    if dhr is not None:
        dh = dh + dhr
    t = np.subtract(1, z)
    dm = np.multiply(dh, t, out=dxg[:, 2 * H:])
    np.multiply(m, m, out=t)
    np.subtract(1, t, out=t)
    dm *= t                                       # dh (1 - z) (1 - m^2)
    dr = np.multiply(dm, hn, out=dxg[:, :H])
    dr *= r
    np.subtract(1, r, out=t)
    dr *= t
    dz = np.subtract(h0, m, out=dxg[:, H:2 * H])
    np.multiply(dh, dz, out=dz)
    dz *= z
    np.subtract(1, z, out=t)
    dz *= t
    dhg[:, :2 * H] = dxg[:, :2 * H]
    np.multiply(dm, r, out=dhg[:, 2 * H:])
    np.multiply(dh, z, out=dh0)


def _np_rnn_fwd(kind, xg, hg, h):
    np.add(xg, hg, out=h)
    if kind == "tanh":
        np.tanh(h, out=h)
    else:
        np.copyto(h, 0, where=h <= 0)             # NOTE: NaN passes through, as relu


def _np_rnn_bwd(kind, h, dh, dhr, dpre):
    if dhr is not None:
        np.add(dh, dhr, out=dpre)
    else:
        dpre[...] = dh
    if kind == "tanh":
        t = np.multiply(h, h)
        np.subtract(1, t, out=t)
        dpre *= t
    else:
        np.copyto(dpre, 0, where=h <= 0)          # NOTE: exactly 0 (not 0 * g: an infinite g stays finite)


# -- the array-level functions ----------------------------------------------------------------------------
def lstm_cell_fwd(xg, hg, c0, out=None):
    dt, xp = check_float("xg", xg), xp_of(xg)
    B, H = c0.shape[0], c0.shape[-1]
    _check(dt, xp, xg=(xg, (B, 4 * H)), hg=(hg, (B, 4 * H)), c0=(c0, (B, H)))
    outs = _targets(xp, out, [(B, 4 * H), (B, H), (B, H)], dt)
    if xp is np:
        return tuple(_np(_np_lstm_fwd, (xg, hg, c0), outs))
    _gpu("gpugrad_lstm_cell_fwd", dt, B * H, (xg, hg, c0, *outs), (np.int64(H),))
    return tuple(outs)


def lstm_cell_bwd(act, c, c0, dh, dc, dhr=None, dcr=None, out=None):
    dt, xp = check_float("act", act), xp_of(act)
    B, H = c.shape
    _check(dt, xp, act=(act, (B, 4 * H)), c0=(c0, (B, H)), dh=(dh, (B, H)), dc=(dc, (B, H)), dhr=(dhr, (B, H)),
           dcr=(dcr, (B, H)))
    outs = _targets(xp, out, [(B, 4 * H), (B, H)], dt)
    if xp is np:
        return tuple(_np(_np_lstm_bwd, (act, c, c0, dh, dc, dhr, dcr), outs))
    _gpu("gpugrad_lstm_cell_bwd", dt, B * H, (act, c, c0, dh, dhr, dc, dcr, *outs), (np.int64(H),))
    return tuple(outs)


def gru_cell_fwd(xg, hg, h0, bhh=None, out=None):
    dt, xp = check_float("xg", xg), xp_of(xg)
    B, H = h0.shape[0], h0.shape[-1]
    _check(dt, xp, xg=(xg, (B, 3 * H)), hg=(hg, (B, 3 * H)), h0=(h0, (B, H)))
    if bhh is not None:
        _check(dt, xp, bhh=(bhh.reshape(1, -1), (1, 3 * H)))
    outs = _targets(xp, out, [(B, 4 * H), (B, H)], dt)
    if xp is np:
        return tuple(_np(_np_gru_fwd, (xg, hg, bhh, h0), outs))
    _gpu("gpugrad_gru_cell_fwd", dt, B * H, (xg, hg, bhh, h0, *outs), (np.int64(H),))
    return tuple(outs)


def gru_cell_bwd(saved, h0, dh, dhr=None, out=None):
    dt, xp = check_float("saved", saved), xp_of(saved)
    B, H = h0.shape
    _check(dt, xp, saved=(saved, (B, 4 * H)), dh=(dh, (B, H)), dhr=(dhr, (B, H)))
    outs = _targets(xp, out, [(B, 3 * H), (B, 3 * H), (B, H)], dt)
    if xp is np:
        return tuple(_np(_np_gru_bwd, (saved, h0, dh, dhr), outs))
    _gpu("gpugrad_gru_cell_bwd", dt, B * H, (saved, h0, dh, dhr, *outs), (np.int64(H),))
    return tuple(outs)


def _kind(kind):
    if kind not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{kind}'. Select from 'tanh' or 'relu'.")
    return kind


def rnn_cell_fwd(kind, xg, hg, out=None):
    dt, xp = check_float("xg", xg), xp_of(xg)
    _check(dt, xp, hg=(hg, tuple(xg.shape)))
    (h,) = _targets(xp, None if out is None else (out,), [tuple(xg.shape)], dt)
    if xp is np:
        return _np(functools.partial(_np_rnn_fwd, _kind(kind)), (xg, hg), [h])[0]
    _gpu(f"gpugrad_rnn_{_kind(kind)}_cell_fwd", dt, h.size, (xg, hg, h))
    return h


def rnn_cell_bwd(kind, h, dh, dhr=None, out=None):
    dt, xp = check_float("h", h), xp_of(h)
    _check(dt, xp, dh=(dh, tuple(h.shape)), dhr=(dhr, tuple(h.shape)))
    (d,) = _targets(xp, None if out is None else (out,), [tuple(h.shape)], dt)
    if xp is np:
        return _np(functools.partial(_np_rnn_bwd, _kind(kind)), (h, dh, dhr), [d])[0]
    _gpu(f"gpugrad_rnn_{_kind(kind)}_cell_bwd", dt, d.size, (h, dh, dhr, d))
    return d


# -- composites: the same cells in core Tensor ops (create_graph; the tests) ----------------------------------
def _blocks(t, k):
    H = t.shape[-1] // k
    return [t[..., j * H:(j + 1) * H] for j in range(k)]


def c_lstm_cell(xg, hg, c0):
    """(c, h) of one LSTM step from Tensors xg, hg (B, 4H) and c0 (B, H)."""
    i, f, g, o = _blocks(xg + hg, 4)
    c = f.sigmoid() * c0 + i.sigmoid() * g.tanh()
    return c, o.sigmoid() * c.tanh()


def c_gru_cell(xg, hg, h0, bhh=None):
    """h of one GRU step from Tensors xg, hg (B, 3H) (hg without b_hh), h0 (B, H) and b_hh (3H,) or None."""
    hb = hg if bhh is None else hg + bhh
    xr, xz, xn = _blocks(xg, 3)
    hr, hz, hn = _blocks(hb, 3)
    r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
    m = (xn + r * hn).tanh()
    return (h0 - m) * z + m


def c_rnn_cell(kind, xg, hg):
    pre = xg + hg
    return pre.tanh() if _kind(kind) == "tanh" else pre.relu()


# -- the table ------------------------------------------------------------------------------------------------
ROWS = table([
    FusedOp("lstm_cell", _SOURCE, "map", "act, c, c0", lstm_cell_fwd, lstm_cell_bwd, c_lstm_cell),
    FusedOp("gru_cell", _SOURCE, "map", "saved, h0", gru_cell_fwd, gru_cell_bwd, c_gru_cell),
    *(FusedOp(f"rnn_{k}_cell", _SOURCE, "map", "h", functools.partial(rnn_cell_fwd, k),
              functools.partial(rnn_cell_bwd, k), functools.partial(c_rnn_cell, k)) for k in ("tanh", "relu")),
])
