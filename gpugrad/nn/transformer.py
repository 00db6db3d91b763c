"""Attention layers with PyTorch's names, arguments, parameter layout and semantics: MultiheadAttention,
TransformerEncoderLayer / DecoderLayer, TransformerEncoder / Decoder, Transformer.

A PyTorch ``state_dict`` of the same module loads as it is (``in_proj_weight`` (3E, E), or ``q_proj_weight``
/ ``k_proj_weight`` / ``v_proj_weight`` when kdim/vdim differ, ``in_proj_bias``, ``out_proj.*``, ``bias_k``
/ ``bias_v``; ``layers.N.self_attn...``, ``linear1``, ``norm1``, ...). MultiheadAttention follows
``torch.nn.functional.multi_head_attention_forward``: with ``need_weights`` it forms the (L, S) weights
(softmax of q/sqrt(d) k^T + masks, as PyTorch; a fully masked row is NaN there, as in PyTorch), without them
it calls the fused ``scaled_dot_product_attention`` (no (L, S) matrix; a fully masked row gives 0).
Masks of MultiheadAttention use PyTorch's convention: a bool ``key_padding_mask`` / ``attn_mask`` is True
where attention is NOT allowed; float masks are added to the scores.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from .._dtypes import is_float as _isf
from ..tensor import Tensor, cat, zeros
from . import functional as F
from . import init
from .container import ModuleList
from .layers import Dropout, Linear
from .module import Module
from .normalization import LayerNorm
from .parameter import Parameter

__all__ = ["MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder",
           "TransformerDecoder", "Transformer", "generate_square_subsequent_mask"]


def generate_square_subsequent_mask(sz, device=None, dtype=None):
    """(sz, sz) float mask: 0 on and below the diagonal, -inf above (PyTorch's causal mask)."""
    from ..tensor import full  # noqa: PLC0415
    return full((sz, sz), float("-inf"), dtype=dtype or np.float32, device=device).triu(1)


def _additive(mask, dtype, name):
    """PyTorch's _canonical_mask: a bool mask (True = not allowed) as 0 / -inf, a float mask as it is."""
    if mask is None:
        return None
    if mask.dtype == np.bool_:
        xp = mask.xp
        return Tensor(xp.where(mask._data, dtype.type(-np.inf), dtype.type(0)))
    if not _isf(mask.dtype):
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return mask if mask.dtype == dtype else mask.to(dtype)


def _pad_last(m):
    """A mask with one more (zero: allowed) column, for bias_k / add_zero_attn."""
    return None if m is None else cat([m, zeros(*m.shape[:-1], 1, dtype=m.dtype, device=m.device)], -1)


class MultiheadAttention(Module):
    """Multi-head attention, ``torch.nn.MultiheadAttention``: forward(query, key, value, key_padding_mask=None,
    need_weights=True, attn_mask=None, average_attn_weights=True, is_causal=False) -> (output, weights or None)."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} and "
                             f"num_heads={num_heads} instead")
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        from ..tensor import empty  # noqa: PLC0415
        kw = dict(device=device, dtype=dtype)
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **kw))
            for n in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(n, None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, **kw))
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = Parameter(empty(1, 1, embed_dim, **kw))
            self.bias_v = Parameter(empty(1, 1, embed_dim, **kw))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _projections(self):
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            ws = (w[:E], w[E:2 * E], w[2 * E:])
        else:
            ws = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        b = self.in_proj_bias
        bs = (None,) * 3 if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        return ws, bs

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        batched = query.ndim == 3
        if self.batch_first and batched:
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        L, N, E = query.shape
        H, hd = self.num_heads, self.head_dim
        if E != self.embed_dim:
            raise AssertionError(f"was expecting embedding dimension of {self.embed_dim}, but got {E}")
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                               "method `generate_square_subsequent_mask` to create this mask.")
        dt = query.dtype
        kpm = _additive(key_padding_mask, dt, "key_padding_mask")
        # NOTE: as PyTorch, the causal hint replaces attn_mask only on the SDPA path without a padding mask
        causal = bool(is_causal) and kpm is None and not need_weights
        am = None if causal else _additive(attn_mask, dt, "attn_mask")
        (wq, wk, wv), (bq, bk, bv) = self._projections()
        q, k, v = F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)
        S = k.shape[0]
        if am is not None:
            if am.ndim == 2:
                if tuple(am.shape) != (L, S):
                    raise RuntimeError(f"The shape of the 2D attn_mask is {tuple(am.shape)}, but should be {(L, S)}.")
                am = am.reshape(1, 1, L, S)
            elif am.ndim == 3:
                if tuple(am.shape) != (N * H, L, S):
                    raise RuntimeError(f"The shape of the 3D attn_mask is {tuple(am.shape)}, but should be "
                                       f"{(N * H, L, S)}.")
                am = am.reshape(N, H, L, S)
            else:
                raise RuntimeError(f"attn_mask's dimension {am.ndim} is not supported")
        if kpm is not None:
            if tuple(kpm.shape) != (N, S):
                raise AssertionError(f"expecting key_padding_mask shape of {(N, S)}, but got {tuple(kpm.shape)}")
            kpm = kpm.reshape(N, 1, 1, S)
        if self.bias_k is not None:
            k = cat([k, self.bias_k.expand(1, N, E)])
            v = cat([v, self.bias_v.expand(1, N, E)])
            am, kpm = _pad_last(am), _pad_last(kpm)
        # (S, N, E) -> (N, H, S, hd)
        q = q.reshape(L, N, H, hd).permute(1, 2, 0, 3)
        k = k.reshape(k.shape[0], N, H, hd).permute(1, 2, 0, 3)
        v = v.reshape(v.shape[0], N, H, hd).permute(1, 2, 0, 3)
        if self.add_zero_attn:
            k = cat([k, zeros(N, H, 1, hd, dtype=dt, device=k.device)], 2)
            v = cat([v, zeros(N, H, 1, hd, dtype=dt, device=v.device)], 2)
            am, kpm = _pad_last(am), _pad_last(kpm)
        bias = kpm if am is None else (am if kpm is None else am + kpm)
        p = self.dropout if self.training else 0.0
        if need_weights:
            # NOTE: PyTorch's order: q scaled by 1/sqrt(hd) before the product, then the masks, a plain softmax
            s = (q * math.sqrt(1.0 / hd)) @ k.transpose(-2, -1)
            if bias is not None:
                s = s + bias
            w = F.softmax(s, -1)
            out = F.dropout(w, p, training=True) @ v if p > 0 else w @ v
        else:
            w = None
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p, is_causal=causal)
        out = self.out_proj(out.permute(2, 0, 1, 3).reshape(L, N, E))
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        if not batched:
            out = out.squeeze(1)
        if w is not None:
            if average_attn_weights:
                w = w.mean(1)
            if not batched:
                w = w.squeeze(0)
        return out, w



class NonDynamicallyQuantizableLinear(Linear):
    """MultiheadAttention's out_proj: a Linear under PyTorch's class name (its repr and isinstance checks)."""


def _activation(a):
    if a == "relu" or a is F.relu:
        return F.relu
    if a == "gelu" or a is F.gelu:
        return F.gelu
    if callable(a):
        return a
    raise RuntimeError(f"activation should be relu/gelu, not {a}")


class TransformerEncoderLayer(Module):
    """Self-attention + feed-forward block (``torch.nn.TransformerEncoderLayer``)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self._ff_init(d_model, dim_feedforward, dropout, activation, layer_norm_eps, norm_first, bias, 2, kw)

    def _ff_init(self, d_model, ff, dropout, activation, eps, norm_first, bias, norms, kw):
        self.linear1 = Linear(d_model, ff, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(ff, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        for i in range(1, norms + 1):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=eps, bias=bias, **kw))
        for i in range(1, norms + 1):
            setattr(self, f"dropout{i}", Dropout(dropout))
        self.activation = _activation(activation)

    def _sa_block(self, x, mask, kpm, is_causal):
        x = self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=kpm, need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x, drop):
        return drop(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x), self.dropout2)
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x, self.dropout2))


class TransformerDecoderLayer(TransformerEncoderLayer):
    """Self-attention, cross-attention over ``memory``, feed-forward (``torch.nn.TransformerDecoderLayer``)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        Module.__init__(self)
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                                 **kw)
        self._ff_init(d_model, dim_feedforward, dropout, activation, layer_norm_eps, norm_first, bias, 3, kw)

    def _mha_block(self, x, mem, mask, kpm, is_causal):
        x = self.multihead_attn(x, mem, mem, attn_mask=mask, key_padding_mask=kpm, need_weights=False,
                                is_causal=is_causal)[0]
        return self.dropout2(x)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            return x + self._ff_block(self.norm3(x), self.dropout3)
        x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
        return self.norm3(x + self._ff_block(x, self.dropout3))


def _detect_is_causal(mask, is_causal, size):
    """PyTorch's _detect_is_causal_mask: an explicit flag, or (is_causal None) whether ``mask`` is exactly the
    float causal mask of ``size``."""
    if is_causal is not None or mask is None:
        return bool(is_causal)
    ref = generate_square_subsequent_mask(size, device=mask.device, dtype=mask.dtype)
    return tuple(mask.shape) == tuple(ref.shape) and bool((mask._data == ref._data).all())


class TransformerEncoder(Module):
    """``num_layers`` deep copies of ``encoder_layer`` (``layers.0`` ...), then ``norm`` if given."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers, self.norm = num_layers, norm
        # NOTE: nested tensors (PyTorch's fast path for padded batches) are not implemented: the flag is kept
        # for signature compatibility; padded positions are computed, not zeroed
        self.enable_nested_tensor, self.mask_check = enable_nested_tensor, mask_check

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        causal = _stack_causal(self.layers, src, mask, is_causal)
        x = src
        for mod in self.layers:
            x = mod(x, src_mask=mask, is_causal=causal, src_key_padding_mask=src_key_padding_mask)
        return self.norm(x) if self.norm is not None else x


def _stack_causal(layers, x, mask, is_causal):
    """is_causal for every layer of a stack: given, or detected from ``mask`` over the sequence axis of the first
    layer's layout (PyTorch's _detect_is_causal_mask)."""
    bf = layers[0].self_attn.batch_first if len(layers) else False
    return _detect_is_causal(mask, is_causal, x.shape[1 if bf and x.ndim == 3 else 0])


class TransformerDecoder(Module):
    """``num_layers`` deep copies of ``decoder_layer``, then ``norm`` if given."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers, self.norm = num_layers, norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        causal = _stack_causal(self.layers, tgt, tgt_mask, tgt_is_causal)
        x = tgt
        for mod in self.layers:
            x = mod(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_key_padding_mask=tgt_key_padding_mask,
                    memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=causal,
                    memory_is_causal=memory_is_causal)
        return self.norm(x) if self.norm is not None else x


class Transformer(Module):
    """Encoder-decoder Transformer (``torch.nn.Transformer``); weights with dim > 1 start xavier-uniform."""

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
                 dropout=0.1, activation="relu", custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        lay = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                   layer_norm_eps=layer_norm_eps, batch_first=batch_first, norm_first=norm_first, bias=bias, **kw)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(d_model, nhead, **lay), num_encoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(d_model, nhead, **lay), num_decoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        if src.ndim == 3 and tgt.ndim == 3 and src.shape[0 if self.batch_first else 1] != \
                tgt.shape[0 if self.batch_first else 1]:
            raise RuntimeError("the batch number of src and tgt must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError("the feature number of src and tgt must be equal to d_model")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)

    generate_square_subsequent_mask = staticmethod(generate_square_subsequent_mask)
