"""Scaled dot-product attention: the fused node (the row of :data:`gpugrad.fused.attention.ROWS`) and
``scaled_dot_product_attention`` with PyTorch's arguments and semantics.

Paths: without dropout, and unless a float ``attn_mask`` itself needs a gradient, the fused node runs
(memory-efficient forward and backward, no (L, S) matrix kept); it keeps its inputs, its output and the
per-row log-sum-exp. Dropout and masks that need gradients run the composite (matmul + softmax, which
materialises the scores), as does every create_graph backward (the engine differentiates the node's
composite).
"""
from __future__ import annotations

import math

import numpy as np

from .._dtypes import is_float as _isf
from .. import _promotion as _promo
from ..tensor import Tensor as _Tensor
from ..tensor import where as _where
from ..autograd.grad_mode import state as _grad_state
from ..autograd.primitive import Primitive
from ..fused import attention as _K

__all__ = ["scaled_dot_product_attention"]


class Attention(Primitive):
    """softmax(scale q k^T + bias, causal) @ v on 4-D (B, H, L, E) inputs; ``bias`` a constant array."""
    lowp = "native"  # NOTE: the fused kernels and fallbacks read float16/bfloat16 storage, compute in float32
    op = _K.ROWS["attention"]
    composite = staticmethod(op.composite)
    save_output = True

    def forward(self, q, k, v, bias=None, scale=None, causal=False):
        out, self.lse = self.op.fwd(q, k, v, bias, scale, causal)
        return out

    def backward(self, g):
        p = self.params
        q, k, v = (t._data for t in self.inputs)
        grads = self.op.bwd(g, q, k, v, self.y, self.lse, p.get("bias"), p.get("scale"), p.get("causal", False))
        return tuple(gr if need else None for gr, need in zip(grads, self.needs_input_grad))


def _fail(msg):
    raise RuntimeError(msg)


def _bias_of(mask, q, shape):
    """attn_mask as an additive bias: a bool mask (True = take part) becomes a constant array of 0 / -inf in
    q's dtype; a float mask of q's dtype stays the Tensor it is. Checked against the scores' ``shape``."""
    if mask.dtype == np.bool_:
        xp = q.xp
        bias = _Tensor(xp.where(mask._data, q.dtype.type(0), q.dtype.type(-np.inf)))
    elif mask.dtype == q.dtype:
        bias = mask
    else:
        _fail(f"Expected attn_mask dtype to be bool or float or to match query dtype, but got attn_mask.dtype: "
              f"{_promo.cpp_name(mask.dtype)} and  query.dtype: {_promo.cpp_name(q.dtype)} instead.")
    try:
        full = np.broadcast_shapes(tuple(bias.shape), shape)
    except ValueError:
        full = None
    if full != shape:
        _fail(f"attn_mask of shape {list(mask.shape)} cannot be broadcast to the attention scores {list(shape)}")
    return bias


def _as_4d(t, batch, B, H):
    """(batch..., n, d) -> (B, H, n, d), expanding broadcast batch dims (a copy only when they differ)."""
    if tuple(t.shape[:-2]) != batch:
        t = t.expand(batch + tuple(t.shape[-2:]))
    return t.reshape(B, H, *t.shape[-2:])


def _bias_4d(bias, batch, B, H):
    """The bias array as (Bb, Hb, Lb, Sb), each dim 1 or full, without materialising broadcast dims except
    leading batch dims that are partly broadcast (rare: then those are expanded)."""
    a = bias._data
    nb = len(batch)
    a = a.reshape((1,) * (nb + 2 - a.ndim) + a.shape)
    lead, hb = a.shape[:max(nb - 1, 0)], a.shape[nb - 1] if nb else 1
    if any(d != 1 for d in lead) and lead != batch[:-1]:
        a = bias.xp.broadcast_to(a, batch[:-1] + a.shape[nb - 1:])
        lead = batch[:-1]
    bb = 1 if all(d == 1 for d in lead) else B
    return bias.xp.ascontiguousarray(a).reshape(bb, hb, *a.shape[-2:])


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """softmax(query @ key^T * scale + mask) @ value, as ``torch.nn.functional.scaled_dot_product_attention``.

    query (N..., L, E), key (N..., S, E), value (N..., S, Ev) -> (N..., L, Ev); batch dims broadcast.
    ``attn_mask``: bool (True = take part) or a float additive mask of query's dtype, broadcastable to
    (N..., L, S). ``is_causal``: query i sees keys j <= i (with ``attn_mask`` it raises, as PyTorch's
    math path; NOTE: torch 2.13's CPU flash path instead ignores is_causal then). ``scale``: default
    1/sqrt(E). ``enable_gqa``: key/value heads (dim -3) repeated to the query's. A row with every key masked
    gives 0 (PyTorch's safe softmax). ``dropout_p`` is applied to the attention weights whenever > 0.
    """
    q, k, v = query, key, value
    for name, t in (("query", q), ("key", k), ("value", v)):
        if not isinstance(t, _Tensor):
            from .._errors import not_a_tensor  # noqa: PLC0415
            raise not_a_tensor(t, "scaled_dot_product_attention()", name)
    if min(q.ndim, k.ndim, v.ndim) < 2:
        _fail(f"Expected query, key, and value to all be  at least 2 dimensional, but got query.dim: {q.ndim} "
              f"key.dim: {k.ndim} and value.dim: {v.ndim} instead.")
    if not (q.dtype == k.dtype == v.dtype):
        n = _promo.cpp_name
        _fail(f"Expected query, key, and value to have the same dtype, but got query.dtype: {n(q.dtype)} key.dtype: "
              f"{n(k.dtype)} and value.dtype: {n(v.dtype)} instead.")
    if not _isf(q.dtype):
        _fail(f"expected scalar type Float but found {_promo.short_name(q.dtype)}")
    if attn_mask is not None and is_causal:
        _fail("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
    if k.shape[-1] != q.shape[-1] or v.shape[-2] != k.shape[-2]:
        _fail(f"scaled_dot_product_attention: query {list(q.shape)}, key {list(k.shape)} and value "
              f"{list(v.shape)} need key.size(-1) == query.size(-1) and value.size(-2) == key.size(-2)")
    if enable_gqa and min(q.ndim, k.ndim, v.ndim) >= 3 and (k.shape[-3] != q.shape[-3] or v.shape[-3] != q.shape[-3]):
        hq, hk, hv = q.shape[-3], k.shape[-3], v.shape[-3]
        if hq % hk or hq % hv:
            _fail("Number of heads in key and value must divide the number of heads in query")
        # NOTE: as PyTorch, each key/value head serves hq/hk consecutive query heads (repeat_interleave)
        k = k.repeat_interleave(hq // hk, dim=-3) if hk != hq else k
        v = v.repeat_interleave(hq // hv, dim=-3) if hv != hq else v
    try:
        batch = tuple(np.broadcast_shapes(tuple(q.shape[:-2]), tuple(k.shape[:-2]), tuple(v.shape[:-2])))
    except ValueError:
        _fail(f"scaled_dot_product_attention: the batch dims of query {list(q.shape)}, key {list(k.shape)} and "
              f"value {list(v.shape)} do not broadcast")
    L, S, Ev = q.shape[-2], k.shape[-2], v.shape[-1]
    bias = None if attn_mask is None else _bias_of(attn_mask, q, batch + (L, S))
    if dropout_p > 0 or (bias is not None and bias.requires_grad and _grad_state.grad_enabled):
        # NOTE: the composite materialises the (L, S) weights: dropout draws a mask over them, and a mask
        # that needs a gradient gets the full (L, S) score gradient
        return _K.c_attention(q, k, v, bias, scale, is_causal, dropout_p)
    H = batch[-1] if batch else 1
    B = math.prod(batch[:-1]) if len(batch) > 1 else 1
    b4 = None if bias is None else _bias_4d(bias, batch, B, H)
    out = Attention.apply(_as_4d(q, batch, B, H), _as_4d(k, batch, B, H), _as_4d(v, batch, B, H), bias=b4,
                          scale=scale, causal=bool(is_causal))
    return out.reshape(batch + (L, Ev))
