"""Recurrent layers as graph nodes: one node per layer and direction, running the whole time loop.

Each step of the loop is one recurrent matmul ``h @ W_hh^T`` (an ordinary matmul) and one fused cell op
(:mod:`gpugrad.fused.rnn`: the CUDA kernel on CuPy arrays, the NumPy fallback otherwise); the input
projection ``x @ W_ih^T + b`` of all steps is one matmul done by the caller (``xg``, shape (T, B, kH)).
The backward runs the loop in reverse with the cells' backward kernels, and the weight gradient of
``W_hh`` is one matmul over all steps afterwards. Under ``create_graph=True`` the engine differentiates the
composite instead: the same loop in core Tensor ops.

NOTE: one node for the loop rather than a few nodes per step: per-step nodes would each cost Python
overhead, and slicing step t out of the projected input would cost a full-size gradient buffer per step
(O(T^2) memory traffic in backward); here the gradient of ``xg`` is written step by step into one array.

Nodes (arrays: ``xg`` (T, B, kH), ``w_hh`` (kH, P), ``h0`` (B, P); ``reverse`` runs t = T-1 .. 0)::

    LSTMSeq(xg, w_hh, h0, c0[, w_hr]) -> flat [hs (T, B, P), cs (T, B, H)]   (see lstm_layer)
    GRUSeq(xg, w_hh, h0[, b_hh]) -> hs (T, B, H)      (xg holds b_ih; b_hh stays inside the reset product)
    RNNSeq(xg, w_hh, h0, nonlinearity=) -> hs (T, B, H)
"""
from __future__ import annotations

import numpy as np

from .._dtypes import LOWP
from ..autograd.primitive import Primitive
from ..backend import xp_of
from ..fused import rnn as K
from ..tensor import cat, stack

__all__ = ["LSTMSeq", "GRUSeq", "RNNSeq", "lstm_layer", "gru_layer", "rnn_layer"]


def _order(T, reverse):
    return range(T - 1, -1, -1) if reverse else range(T)


def _mm(a, b):
    """a @ b; float16/bfloat16 multiply in float32 and round once (NumPy's float16 matmul is a scalar loop,
    ml_dtypes' bfloat16 one returns float32)."""
    if a.dtype in LOWP:
        return (a.astype(np.float32) @ b.astype(np.float32)).astype(a.dtype)
    return a @ b


def _weight_grad(dg, hs, h0, reverse):
    """sum_t dg[t]^T @ h_prev[t] (the gradient of W_hh) as two matmuls, without building the h_prev sequence."""
    T, B, G = dg.shape
    P = hs.shape[-1]
    low = dg.dtype if dg.dtype in LOWP else None
    if low is not None:  # NOTE: both products summed in float32, rounded once
        dg, hs, h0 = dg.astype(np.float32), hs.astype(np.float32), h0.astype(np.float32)
    first, rest, prev = (dg[-1], dg[:-1], hs[1:]) if reverse else (dg[0], dg[1:], hs[:-1])
    w = first.T @ h0
    if T > 1:
        w += rest.reshape(-1, G).T @ prev.reshape(-1, P)
    return w if low is None else w.astype(low)


def _reads_all_but_input(rg):
    return tuple(range(1, len(rg)))  # NOTE: backward reads the weights and initial states, never xg itself


class _Seq(Primitive):
    lowp = "native"  # NOTE: the fused kernels and fallbacks read float16/bfloat16 storage, compute in float32
    save_output = True   # NOTE: backward reads the states it produced; an in-place write to them must raise
    saves = staticmethod(_reads_all_but_input)

    def _grads(self, *grads):
        return tuple(g if need else None for g, need in zip(grads, self.needs_input_grad))


class LSTMSeq(_Seq):
    """Output: the flat concatenation of hs (T, B, P) and cs (T, B, H) (one array, so one node; see lstm_layer)."""

    def forward(self, xg, w_hh, h0, c0, *w_hr, reverse=False):
        xp = xp_of(xg)
        T, B, G = xg.shape
        H, P = G // 4, w_hh.shape[1]
        buf = xp.empty(T * B * (P + H), xg.dtype)
        hs, cs = buf[:T * B * P].reshape(T, B, P), buf[T * B * P:].reshape(T, B, H)
        act = xp.empty((T, B, G), xg.dtype)
        hc = xp.empty((T, B, H), xg.dtype) if w_hr else hs  # the cell's h before the projection
        whT = w_hh.T
        h, c = h0, c0
        for t in _order(T, reverse):
            K.lstm_cell_fwd(xg[t], _mm(h, whT), c, out=(act[t], cs[t], hc[t]))
            if w_hr:
                hs[t] = _mm(hc[t], w_hr[0].T)
            h, c = hs[t], cs[t]
        self.act, self.hc, self.reverse, self.dims = act, hc, reverse, (T, B, P, H)
        return buf

    def backward(self, g):
        T, B, P, H = self.dims
        _, w_hh, h0, c0, *w_hr = [t._data for t in self.inputs]
        xp = xp_of(g)
        g = xp.ascontiguousarray(g)
        dhs, dcs = g[:T * B * P].reshape(T, B, P), g[T * B * P:].reshape(T, B, H)
        hs, cs = self.y[:T * B * P].reshape(T, B, P), self.y[T * B * P:].reshape(T, B, H)
        act = self.act
        dxg = xp.empty_like(act)
        dc_bufs = (xp.empty((B, H), act.dtype), xp.empty((B, H), act.dtype))  # NOTE: ping-pong: dc0 out != dcr in
        dhp = xp.empty((T, B, P), act.dtype) if w_hr else None
        order = list(_order(T, self.reverse))
        dh_rec = dc_rec = None
        for k in range(T - 1, -1, -1):
            t = order[k]
            c_prev = c0 if k == 0 else cs[order[k - 1]]
            if w_hr:  # the projection's gradient first: dh of the cell is (dy + dh_rec) @ W_hr
                d = dhp[t]
                if dh_rec is None:
                    d[...] = dhs[t]
                else:
                    xp.add(dhs[t], dh_rec, out=d)
                dh, dhr = _mm(d, w_hr[0]), None
            else:
                dh, dhr = dhs[t], dh_rec
            _, dc_rec = K.lstm_cell_bwd(act[t], cs[t], c_prev, dh, dcs[t], dhr, dc_rec, out=(dxg[t], dc_bufs[k % 2]))
            dh_rec = _mm(dxg[t], w_hh)
        extra = (_mm(dhp.reshape(-1, P).T, self.hc.reshape(-1, H)),) if w_hr else ()
        return self._grads(dxg, _weight_grad(dxg, hs, h0, self.reverse), dh_rec, dc_rec, *extra)

    @staticmethod
    def composite(xg, w_hh, h0, c0, *w_hr, reverse=False):
        T = xg.shape[0]
        hs, cs = [None] * T, [None] * T
        h, c = h0, c0
        for t in _order(T, reverse):
            c, h = K.c_lstm_cell(xg[t], h @ w_hh.T, c)
            if w_hr:
                h = h @ w_hr[0].T
            hs[t], cs[t] = h, c
        return cat([stack(hs).reshape(-1), stack(cs).reshape(-1)])


class GRUSeq(_Seq):
    def forward(self, xg, w_hh, h0, *b_hh, reverse=False):
        xp = xp_of(xg)
        T, B, G = xg.shape
        H = G // 3
        hs = xp.empty((T, B, H), xg.dtype)
        saved = xp.empty((T, B, 4 * H), xg.dtype)
        bhh = b_hh[0] if b_hh else None
        whT = w_hh.T
        h = h0
        for t in _order(T, reverse):
            K.gru_cell_fwd(xg[t], _mm(h, whT), h, bhh, out=(saved[t], hs[t]))
            h = hs[t]
        self.saved, self.reverse = saved, reverse
        return hs

    def backward(self, g):
        _, w_hh, h0, *b_hh = [t._data for t in self.inputs]
        hs, saved = self.y, self.saved
        xp = xp_of(g)
        T, B, H = hs.shape
        dxg = xp.empty((T, B, 3 * H), hs.dtype)
        dhg = xp.empty_like(dxg)
        dhp = xp.empty((B, H), hs.dtype)
        order = list(_order(T, self.reverse))
        dh_rec = None
        for k in range(T - 1, -1, -1):
            t = order[k]
            K.gru_cell_bwd(saved[t], h0 if k == 0 else hs[order[k - 1]], g[t], dh_rec, out=(dxg[t], dhg[t], dhp))
            dh_rec = _mm(dhg[t], w_hh)
            dh_rec += dhp
        extra = (dhg.sum(axis=(0, 1)),) if b_hh else ()
        return self._grads(dxg, _weight_grad(dhg, hs, h0, self.reverse), dh_rec, *extra)

    @staticmethod
    def composite(xg, w_hh, h0, *b_hh, reverse=False):
        hs = [None] * xg.shape[0]
        h = h0
        for t in _order(xg.shape[0], reverse):
            h = hs[t] = K.c_gru_cell(xg[t], h @ w_hh.T, h, b_hh[0] if b_hh else None)
        return stack(hs)


class RNNSeq(_Seq):
    def forward(self, xg, w_hh, h0, reverse=False, nonlinearity="tanh"):
        xp = xp_of(xg)
        hs = xp.empty(xg.shape, xg.dtype)
        whT = w_hh.T
        h = h0
        for t in _order(xg.shape[0], reverse):
            h = K.rnn_cell_fwd(nonlinearity, xg[t], _mm(h, whT), out=hs[t])
        self.reverse, self.kind = reverse, nonlinearity
        return hs

    def backward(self, g):
        _, w_hh, h0 = [t._data for t in self.inputs]
        hs = self.y
        dxg = xp_of(g).empty_like(hs)
        order = list(_order(hs.shape[0], self.reverse))
        dh_rec = None
        for k in range(hs.shape[0] - 1, -1, -1):
            t = order[k]
            K.rnn_cell_bwd(self.kind, hs[t], g[t], dh_rec, out=dxg[t])
            dh_rec = _mm(dxg[t], w_hh)
        return self._grads(dxg, _weight_grad(dxg, hs, h0, self.reverse), dh_rec)

    @staticmethod
    def composite(xg, w_hh, h0, reverse=False, nonlinearity="tanh"):
        hs = [None] * xg.shape[0]
        h = h0
        for t in _order(xg.shape[0], reverse):
            h = hs[t] = K.c_rnn_cell(nonlinearity, xg[t], h @ w_hh.T)
        return stack(hs)


# -- Tensor-level entry points (what gpugrad.nn.rnn calls) -------------------------------------------------------
def lstm_layer(xg, w_hh, h0, c0, w_hr=None, reverse=False):
    """(hs (T, B, P), cs (T, B, H)) Tensors of one LSTM layer and direction."""
    T, B, G = xg.shape
    P, H = w_hh.shape[1], G // 4
    buf = LSTMSeq.apply(xg, w_hh, h0, c0, *(() if w_hr is None else (w_hr,)), reverse=reverse)
    n = T * B * P
    return buf[:n].view(T, B, P), buf[n:].view(T, B, H)


def gru_layer(xg, w_hh, h0, b_hh=None, reverse=False):
    return GRUSeq.apply(xg, w_hh, h0, *(() if b_hh is None else (b_hh,)), reverse=reverse)


def rnn_layer(xg, w_hh, h0, nonlinearity="tanh", reverse=False):
    return RNNSeq.apply(xg, w_hh, h0, reverse=reverse, nonlinearity=nonlinearity)
