"""Fused scaled dot-product attention on arrays (``kernels/attention.cu`` on CuPy).

API (4-D layouts; ``scaled_dot_product_attention`` in gpugrad.ops.attention brings other ranks here)::

    attention_fwd(q, k, v, bias=None, scale=None, causal=False) -> (out, lse)
    attention_bwd(g, q, k, v, out, lse, bias=None, scale=None, causal=False) -> (dq, dk, dv)

q (B, H, L, E), k (B, H, S, E), v (B, H, S, Ev), out (B, H, L, Ev); ``bias`` None or an additive
mask of q's dtype with shape (Bb, Hb, Lb, Sb), each dim 1 (broadcast) or full; ``scale`` defaults
to 1/sqrt(E); ``causal``: query i sees keys j <= i (top-left aligned, as PyTorch). ``lse`` is the
per-row log-sum-exp of the scaled, biased scores, (B, H, L) in the wide dtype (float32 for
float16/bfloat16, float64 otherwise); it is all the backward keeps besides the inputs and the output.

Neither pass stores the (L, S) score or probability matrix: the forward runs the online softmax
over key blocks (running max, running sum, rescaled output accumulator), the backward recomputes
each probability block as exp(s - lse) (as the fused cross-entropy does) and forms
    D = rowsum(g * out),  dS = P * (g @ v^T - D),  dq = scale dS @ k,  dk = scale dS^T @ q,  dv = P^T @ g.
A row whose scores are all -inf (fully masked) gives output 0 and zero gradients, and lse = -inf, as
PyTorch's ``_safe_softmax`` (torch 2.13: both its math and its CPU flash path); NaN inputs give NaN rows.

Paths: CuPy arrays with E, Ev <= ATT_MAXD launch the kernels (one row of queries, or of keys for
dk/dv, per row group of the rows launcher); everything else (NumPy, or larger head dims on CuPy)
runs the blocked xp code below, whose extra memory is O(query block x key block) per head plus
O(L) per-row state, independent of L x S.
"""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor as _Tensor
from ..tensor import where as _where
from ..backend import xp_of
from . import cuda
from ._common import FusedOp, compute_dtype, check_float, same_device, table, wide_dtype
from .cuda import NULL

__all__ = ["ROWS", "ATT_MAXD", "attention_fwd", "attention_bwd", "c_attention", "default_scale"]

_SOURCE = "attention.cu"
ATT_MAXD = 256        # the kernels' largest head dim (gg::ATT_MAXD in attention.cu)
_QB = 256             # query rows per block of the xp path
_TILE = 1 << 21       # score elements per (B*H, query block, key block) tile of the xp path


def default_scale(e: int) -> float:
    return 1.0 / math.sqrt(e) if e else 1.0  # NOTE: PyTorch's 1/sqrt(E); E = 0 has nothing to scale


# -- checks ---------------------------------------------------------------------------------------

def _check(q, k, v, bias):
    dt = check_float("query", q)
    xp = xp_of(q)
    same_device(xp, key=k, value=v, bias=bias)
    for name, a in (("key", k), ("value", v)):
        if a.dtype != dt:
            raise TypeError(f"{name} dtype {a.dtype} does not match query dtype {dt}")
        if a.ndim != 4:
            raise ValueError(f"{name} must be 4-D (B, H, S, E), got shape {tuple(a.shape)}")
    if q.ndim != 4:
        raise ValueError(f"query must be 4-D (B, H, L, E), got shape {tuple(q.shape)}")
    B, H, L, E = q.shape
    S = k.shape[2]
    if k.shape != (B, H, S, E) or v.shape[:3] != (B, H, S):
        raise ValueError(f"shapes do not match: query {tuple(q.shape)}, key {tuple(k.shape)}, value {tuple(v.shape)}")
    if bias is not None:
        if bias.dtype != dt:
            raise TypeError(f"bias dtype {bias.dtype} does not match query dtype {dt}")
        full = (B, H, L, S)
        if bias.ndim != 4 or any(b not in (1, f) for b, f in zip(bias.shape, full)):
            raise ValueError(f"bias shape {tuple(bias.shape)} must have each dim 1 or that of {full}")
    return xp, dt


def _scale(q, scale):
    return default_scale(q.shape[-1]) if scale is None else float(scale)


# -- the blocked xp path (NumPy fallback; CuPy for head dims above ATT_MAXD) -------------------------

def _blocks(n, step):
    return [(i, min(n, i + step)) for i in range(0, n, step)]


def _key_block(bh, qb, s):
    return max(16, min(s, _TILE // max(1, bh * qb)))


def _scores(xp, qb, k, bias, scale, causal, i0, i1, j0, j1):
    """scale * q[i0:i1] @ k[j0:j1]^T + bias, with -inf where j > i under ``causal``: (B, H, qn, kn)."""
    s = qb @ k[:, :, j0:j1].swapaxes(-1, -2)
    s *= scale
    if bias is not None:
        rows = slice(i0, i1) if bias.shape[2] > 1 else slice(None)
        cols = slice(j0, j1) if bias.shape[3] > 1 else slice(None)
        s += bias[:, :, rows, cols]
    if causal and j1 - 1 > i0:  # NOTE: only blocks crossing the diagonal need the mask
        above = xp.arange(j0, j1)[None, :] > xp.arange(i0, i1)[:, None]
        s[..., above] = -np.inf
    return s


def _key_end(causal, i1, s):
    # NOTE: under causal, query block [i0, i1) sees keys < i1 only: the blocks right of it are never read
    return min(s, i1) if causal else s


def _xp_fwd(xp, q, k, v, bias, scale, causal, w):
    B, H, L, _ = q.shape
    S, Ev = k.shape[2], v.shape[3]
    c = q.dtype
    out = xp.empty((B, H, L, Ev), c)
    lse = xp.empty((B, H, L), w)
    kb = _key_block(B * H, min(L, _QB), S)
    for i0, i1 in _blocks(L, _QB):
        qb = q[:, :, i0:i1]
        m = xp.full((B, H, i1 - i0), -np.inf, c)
        lsum = xp.zeros((B, H, i1 - i0), c)
        acc = xp.zeros((B, H, i1 - i0, Ev), c)
        for j0, j1 in _blocks(_key_end(causal, i1, S), kb):
            s = _scores(xp, qb, k, bias, scale, causal, i0, i1, j0, j1)
            mn = xp.maximum(m, s.max(axis=-1))
            # NOTE: a row still all -inf shifts by 0, so its exp is 0 (not exp(-inf + inf) = NaN)
            shift = xp.where(mn == -np.inf, c.type(0), mn)
            s -= shift[..., None]
            p = xp.exp(s, out=s)
            alpha = xp.exp(m - shift)
            lsum *= alpha
            lsum += p.sum(axis=-1)
            acc *= alpha[..., None]
            acc += p @ v[:, :, j0:j1]
            m = mn
        dead = lsum == 0  # NOTE: every score -inf: output 0, lse -inf (PyTorch's safe softmax)
        out[:, :, i0:i1] = acc / xp.where(dead, c.type(1), lsum)[..., None]
        lse[:, :, i0:i1] = xp.where(dead, -np.inf, m.astype(w) + xp.log(xp.where(dead, 1, lsum).astype(w)))
    return out, lse


def _lse_split(xp, lse, c):
    """(hi, lo) in the compute dtype with hi + lo ~ lse, so that exp((s - hi) - lo) keeps the wide
    lse's precision at compute-dtype cost (s - hi is exact near the row max). A fully masked row
    (lse = -inf) gets hi = +inf, lo = 0: its probabilities are exp(-inf) = 0."""
    dead = lse == -np.inf
    hi = lse.astype(c)
    lo = xp.where(dead, 0, lse - hi.astype(lse.dtype)).astype(c)
    return xp.where(dead, c.type(np.inf), hi), lo


def _xp_bwd(xp, g, q, k, v, out, lse, bias, scale, causal):
    B, H, L, _ = q.shape
    S = k.shape[2]
    c = q.dtype
    dq = xp.empty_like(q)
    dk = xp.zeros_like(k)
    dv = xp.zeros_like(v)
    D = (g * out).sum(axis=-1)  # NOTE: rowsum(g * out) = rowsum(P * (g @ v^T)), the softmax's dot term
    hi, lo = _lse_split(xp, lse, c)
    kb = _key_block(B * H, min(L, _QB), S)
    for i0, i1 in _blocks(L, _QB):
        qb, gb = q[:, :, i0:i1], g[:, :, i0:i1]
        dqb = xp.zeros(qb.shape, c)
        for j0, j1 in _blocks(_key_end(causal, i1, S), kb):
            s = _scores(xp, qb, k, bias, scale, causal, i0, i1, j0, j1)
            s -= hi[:, :, i0:i1, None]
            s -= lo[:, :, i0:i1, None]
            p = xp.exp(s, out=s)
            dv[:, :, j0:j1] += p.swapaxes(-1, -2) @ gb
            ds = gb @ v[:, :, j0:j1].swapaxes(-1, -2)
            ds -= D[:, :, i0:i1, None]
            ds *= p
            dqb += ds @ k[:, :, j0:j1]
            dk[:, :, j0:j1] += ds.swapaxes(-1, -2) @ qb
        dqb *= scale
        dq[:, :, i0:i1] = dqb
    dk *= scale
    return dq, dk, dv


# -- public API ------------------------------------------------------------------------------------

def _use_kernel(xp, q, v):
    return xp is not np and q.shape[-1] <= ATT_MAXD and v.shape[-1] <= ATT_MAXD


def _compute(xp, *arrays):
    return [None if a is None else a.astype(compute_dtype(a.dtype), copy=False) for a in arrays]


def attention_fwd(q, k, v, bias=None, scale=None, causal=False):
    """softmax(scale q k^T + bias, causal) @ v and the per-row lse (see the module docstring)."""
    xp, dt = _check(q, k, v, bias)
    sc = _scale(q, scale)
    if _use_kernel(xp, q, v):
        return _gpu(xp, "fwd", q, k, v, bias, sc, causal)
    with np.errstate(all="ignore"):
        qc, kc, vc = _compute(xp, q, k, v)
        out, lse = _xp_fwd(xp, qc, kc, vc, bias, sc, bool(causal), wide_dtype(dt))
    return out.astype(dt, copy=False), lse


def attention_bwd(g, q, k, v, out, lse, bias=None, scale=None, causal=False):
    """(dq, dk, dv) of attention_fwd for upstream gradient g, from the saved output and lse."""
    xp, dt = _check(q, k, v, bias)
    same_device(xp, grad=g, out=out, lse=lse)
    if g.shape != out.shape or g.dtype != dt or out.dtype != dt:
        raise ValueError(f"grad {tuple(g.shape)} {g.dtype} does not match the output {tuple(out.shape)} {out.dtype}")
    if lse.shape != q.shape[:3] or lse.dtype != wide_dtype(dt):
        raise ValueError(f"lse {tuple(lse.shape)} {lse.dtype} does not match the query rows {tuple(q.shape[:3])}")
    sc = _scale(q, scale)
    if _use_kernel(xp, q, v):
        return _gpu(xp, "bwd", q, k, v, bias, sc, causal, g=g, out=out, lse=lse)
    with np.errstate(all="ignore"):
        gc, qc, kc, vc, oc = _compute(xp, g, q, k, v, out)
        grads = _xp_bwd(xp, gc, qc, kc, vc, oc, lse, bias, sc, bool(causal))
    return tuple(a.astype(dt, copy=False) for a in grads)


# -- GPU launch ------------------------------------------------------------------------------------

def _bias_args(cp, bias):
    """The bias pointer (contiguous in its own, broadcast-sized shape) and its element strides over
    (B, H, L, S), 0 along broadcast dims. NOTE: never broadcast_to: the launcher would make a broadcast
    view contiguous, i.e. materialise the (B, H, L, S) mask the kernel exists to avoid."""
    if bias is None:
        return NULL, (np.int64(0),) * 4
    bias = cp.ascontiguousarray(bias)
    strides, step = [], 1
    for n in reversed(bias.shape):
        strides.append(0 if n == 1 else step)
        step *= n
    return bias, tuple(np.int64(s) for s in reversed(strides))


def _gpu(cp, which, q, k, v, bias, scale, causal, g=None, out=None, lse=None):
    B, H, L, E = q.shape
    S, Ev = k.shape[2], v.shape[3]
    with cuda.on(q):
        bp, bst = _bias_args(cp, bias)
        tail = (np.int64(L), np.int64(S), np.int64(E), np.int64(Ev), np.int64(H), *bst, np.float64(scale),
                np.int32(bool(causal)))
        rows = B * H
        if which == "fwd":
            o = cp.empty((B, H, L, Ev), q.dtype)
            ls = cp.empty((B, H, L), wide_dtype(q.dtype))
            cuda.rows_launch(_SOURCE, "gpugrad_attention_fwd", q.dtype, rows * L, S, (q, k, v, bp, o, ls), tail)
            return o, ls
        dq = cp.empty(q.shape, q.dtype)
        dk = cp.empty(k.shape, q.dtype)
        dv = cp.empty(v.shape, q.dtype)
        dsum = cp.empty((B, H, L), compute_dtype(q.dtype))  # NOTE: rowsum(g * out), from the dq pass to the dk/dv pass
        cuda.rows_launch(_SOURCE, "gpugrad_attention_bwd", q.dtype, rows * L, S, (g, q, k, v, out, lse, bp, dq, dsum),
                         tail)
        cuda.rows_launch(_SOURCE, "gpugrad_attention_bwd_kv", q.dtype, rows * S, L, (g, q, k, v, lse, dsum, bp, dk, dv),
                         tail)
        return dq, dk, dv


# -- composite (core Tensor ops; what create_graph differentiates, and the path for dropout and masks
# that need a gradient) -------------------------------------------------------------------------------

def c_attention(q, k, v, bias=None, scale=None, causal=False, dropout_p=0.0):
    """softmax(scale q @ k^T + bias (+ causal -inf)) @ v as matmul + softmax, with PyTorch's safe softmax
    (an all -inf row gives 0) and ``dropout_p`` on the probabilities. ``bias``: None, an array or a Tensor
    broadcastable to the scores; q, k, v Tensors of any batch shape."""
    T = _Tensor
    sc = _scale(q, scale)
    s = (q @ k.transpose(-2, -1)) * sc
    if bias is not None:
        s = s + (bias if isinstance(bias, T) else T(bias))
    xp = s.xp
    if causal:
        L, S = s.shape[-2:]
        s = s + T(xp.triu(xp.full((L, S), -np.inf, s.dtype), 1))
    # NOTE: all -inf rows are set to 0 before the softmax (so neither its value nor its gradient is NaN)
    # and their probabilities to 0 after it
    dead = T((s._data == -np.inf).all(axis=-1, keepdims=True))
    if bool(dead._data.any()):
        zero = T(xp.zeros((), s.dtype))
        p = _where(dead, zero, _where(dead, zero, s).softmax(-1))
    else:
        p = s.softmax(-1)
    if dropout_p > 0:
        p = p * T(_keep_mask(p, dropout_p))
    return p @ v


def _keep_mask(p, rate):
    """F.dropout's mask (kept with probability 1 - rate, scaled by 1 / (1 - rate); all 0 at rate 1), drawn from
    the same generator. NOTE: written here because gpugrad.nn.functional imports this family (no import circle)."""
    from .. import random as _random  # noqa: PLC0415
    if rate >= 1:
        return p.xp.zeros(p.shape, p.dtype)
    dt = p.dtype if p.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    keep = _random.generator(p.device).random(p.shape, dtype=dt) >= rate
    return (keep * (1.0 / (1.0 - rate))).astype(p.dtype, copy=False)


def _c_fused(q, k, v, bias=None, scale=None, causal=False):
    return c_attention(q, k, v, bias, scale, causal)


ROWS = table([
    FusedOp("attention", _SOURCE, "rows", "input and output (and the per-row lse)", attention_fwd, attention_bwd,
            _c_fused, kernels=("gpugrad_attention_fwd", "gpugrad_attention_bwd", "gpugrad_attention_bwd_kv")),
])
