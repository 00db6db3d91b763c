"""nn.MultiheadAttention and the Transformer layers.

Torch-free: MultiheadAttention against a NumPy composite of PyTorch's formula written here (projections, masks,
bias_k / zero attention, softmax, out_proj), an encoder layer against the same composite plus layer norm and
feed-forward, gradients of the fused path against the need_weights (matmul + softmax) path, the causal
mask, state_dict round trips. With torch installed: a PyTorch module's state_dict loads and gives the same
outputs and gradients (inputs and parameters) for the flag combinations below (eval mode, float64).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn

RNG = np.random.default_rng(0)


def _np_state(m):
    return {k: v.detach().numpy() for k, v in m.state_dict().items()}


def _np_mha(sd, q, k, v, H, kpm=None, am=None, bias_kv=False, zero_attn=False):
    """PyTorch's multi_head_attention_forward in NumPy, (L, N, E) layout; bool masks are True = blocked."""
    E = q.shape[-1]
    if "in_proj_weight" in sd:
        wq, wk, wv = np.split(sd["in_proj_weight"], 3)
    else:
        wq, wk, wv = sd["q_proj_weight"], sd["k_proj_weight"], sd["v_proj_weight"]
    bq, bk, bv = np.split(sd["in_proj_bias"], 3) if "in_proj_bias" in sd else (0, 0, 0)
    Q, K, V = q @ wq.T + bq, k @ wk.T + bk, v @ wv.T + bv
    L, N, _ = Q.shape
    add = lambda m: np.where(m, -np.inf, 0.0) if m is not None and m.dtype == bool else m  # noqa: E731
    kpm, am = add(kpm), add(am)
    if bias_kv:
        K = np.concatenate([K, np.broadcast_to(sd["bias_k"], (1, N, E))])
        V = np.concatenate([V, np.broadcast_to(sd["bias_v"], (1, N, E))])
    hd = E // H
    split = lambda x: x.reshape(x.shape[0], N, H, hd).transpose(1, 2, 0, 3)  # noqa: E731
    Q, K, V = split(Q), split(K), split(V)
    if zero_attn:
        K = np.concatenate([K, np.zeros((N, H, 1, hd))], 2)
        V = np.concatenate([V, np.zeros((N, H, 1, hd))], 2)
    S = K.shape[2]
    s = Q @ K.transpose(0, 1, 3, 2) / np.sqrt(hd)
    pad = lambda m, n: np.concatenate([m, np.zeros(m.shape[:-1] + (n - m.shape[-1],))], -1)  # noqa: E731
    if am is not None:
        s = s + pad(am if am.ndim == 2 else am.reshape(N, H, L, -1), S)
    if kpm is not None:
        s = s + pad(kpm, S)[:, None, None, :]
    w = np.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    out = (w @ V).transpose(2, 0, 1, 3).reshape(L, N, E)
    out = out @ sd["out_proj.weight"].T + sd.get("out_proj.bias", 0)
    return out, w


def _ln(x, w, b, eps=1e-5):
    m = x.mean(-1, keepdims=True)
    return (x - m) / np.sqrt(x.var(-1, keepdims=True) + eps) * w + b


MHA = [  # constructor kwargs, forward flags
    (dict(), dict()),
    (dict(batch_first=True), dict(kpm=True)),
    (dict(kdim=6, vdim=5), dict(am="bool")),
    (dict(add_bias_kv=True, add_zero_attn=True), dict(kpm=True, am="float")),
    (dict(bias=False), dict(am="3d")),
]


def _mha_inputs(ck, fl, L=4, S=6, N=3, E=8, H=2):
    bf = ck.get("batch_first", False)
    shp = lambda n, e: (N, n, e) if bf else (n, N, e)  # noqa: E731
    q = RNG.standard_normal(shp(L, E))
    k = RNG.standard_normal(shp(S, ck.get("kdim", E)))
    v = RNG.standard_normal(shp(S, ck.get("vdim", E)))
    kpm = None
    if fl.get("kpm"):
        kpm = RNG.random((N, S)) < 0.3
        kpm[:, 0] = False
    am = {"bool": lambda: RNG.random((L, S)) < 0.3, "float": lambda: RNG.standard_normal((L, S)),
          "3d": lambda: RNG.standard_normal((N * H, L, S))}.get(fl.get("am"), lambda: None)()
    if am is not None and am.dtype == bool:
        am[:, 1] = False
    return q, k, v, kpm, am


@pytest.mark.parametrize("ck,fl", MHA, ids=[str(i) for i in range(len(MHA))])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_against_numpy_composite(ck, fl, need_weights):
    gg.manual_seed(0)
    m = nn.MultiheadAttention(8, 2, dtype=gg.float64, **ck).eval()
    sd = _np_state(m)
    q, k, v, kpm, am = _mha_inputs(ck, fl)
    bf = ck.get("batch_first", False)
    out, w = m(*(gg.tensor(a) for a in (q, k, v)), key_padding_mask=None if kpm is None else gg.tensor(kpm),
               attn_mask=None if am is None else gg.tensor(am), need_weights=need_weights)
    tr = (lambda x: x.transpose(1, 0, 2)) if bf else (lambda x: x)
    want, ww = _np_mha(sd, tr(q), tr(k), tr(v), 2, kpm, am, ck.get("add_bias_kv", False),
                       ck.get("add_zero_attn", False))
    np.testing.assert_allclose(out.detach().numpy(), tr(want), rtol=1e-11, atol=1e-12)
    if need_weights:
        np.testing.assert_allclose(w.detach().numpy(), ww.mean(1), rtol=1e-11, atol=1e-12)
    else:
        assert w is None


def test_mha_fused_gradients_equal_weights_path_gradients():
    m = nn.MultiheadAttention(8, 2, dtype=gg.float64, add_bias_kv=True).eval()
    q, k, v, kpm, _ = _mha_inputs({}, dict(kpm=True))
    grads = []
    for nw in (True, False):
        ts = [gg.tensor(a, requires_grad=True) for a in (q, k, v)]
        m.zero_grad()
        out, _ = m(*ts, key_padding_mask=gg.tensor(kpm), need_weights=nw)
        (out * gg.tensor(np.cos(np.arange(out.numel())).reshape(out.shape))).sum().backward()
        grads.append([t.grad.numpy() for t in ts] + [p.grad.numpy() for p in m.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_mha_unbatched_and_errors():
    m = nn.MultiheadAttention(8, 2, dtype=gg.float64).eval()
    x = gg.tensor(RNG.standard_normal((5, 8)))
    with gg.no_grad():
        out, w = m(x, x, x, average_attn_weights=False)
        batched, _ = m(x.unsqueeze(1), x.unsqueeze(1), x.unsqueeze(1))
    assert out.shape == (5, 8) and w.shape == (2, 5, 5)
    np.testing.assert_allclose(out.numpy(), batched.numpy()[:, 0], rtol=1e-12)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        m(x, x, x, is_causal=True)
    with pytest.raises(AssertionError, match="divisible"):
        nn.MultiheadAttention(8, 3)


def test_causal_mask_and_is_causal_hint():
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(mask.numpy(), np.triu(np.full((4, 4), -np.inf), 1))
    m = nn.MultiheadAttention(8, 2, dtype=gg.float64).eval()
    x = gg.tensor(RNG.standard_normal((4, 2, 8)))
    cm = nn.Transformer.generate_square_subsequent_mask(4, dtype=gg.float64)
    a = m(x, x, x, attn_mask=cm, need_weights=False, is_causal=True)[0]
    b = m(x, x, x, attn_mask=cm, need_weights=True)[0]
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_against_numpy_composite(norm_first):
    lay = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=norm_first, dtype=gg.float64).eval()
    sd = _np_state(lay)
    sa = {k[len("self_attn."):]: v for k, v in sd.items() if k.startswith("self_attn.")}
    x = RNG.standard_normal((5, 3, 8))
    kpm = RNG.random((3, 5)) < 0.3
    kpm[:, 0] = False

    def block(y):
        return _np_mha(sa, y, y, y, 2, kpm)[0]

    def ff(y):
        return np.maximum(y @ sd["linear1.weight"].T + sd["linear1.bias"], 0) @ sd["linear2.weight"].T + sd["linear2.bias"]

    n1 = lambda y: _ln(y, sd["norm1.weight"], sd["norm1.bias"])  # noqa: E731
    n2 = lambda y: _ln(y, sd["norm2.weight"], sd["norm2.bias"])  # noqa: E731
    if norm_first:
        y = x + block(n1(x))
        want = y + ff(n2(y))
    else:
        y = n1(x + block(x))
        want = n2(y + ff(y))
    got = lay(gg.tensor(x), src_key_padding_mask=gg.tensor(kpm)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-11)


def test_state_dict_round_trip_and_clones():
    gg.manual_seed(1)
    a = nn.Transformer(8, 2, 2, 1, 16, dropout=0.0, dtype=gg.float64).eval()
    gg.manual_seed(2)
    b = nn.Transformer(8, 2, 2, 1, 16, dropout=0.0, dtype=gg.float64).eval()
    src, tgt = gg.tensor(RNG.standard_normal((5, 2, 8))), gg.tensor(RNG.standard_normal((3, 2, 8)))
    with gg.no_grad():
        assert not np.allclose(a(src, tgt).numpy(), b(src, tgt).numpy())
        b.load_state_dict(a.state_dict())
        np.testing.assert_array_equal(a(src, tgt).numpy(), b(src, tgt).numpy())
    # the encoder layers are independent copies
    w0, w1 = a.encoder.layers[0].linear1.weight, a.encoder.layers[1].linear1.weight
    assert w0 is not w1
    assert "encoder.norm.weight" in a.state_dict() and "decoder.layers.0.multihead_attn.in_proj_weight" in a.state_dict()


# -- against PyTorch --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def torch():
    t = pytest.importorskip("torch")
    old = t.backends.mha.get_fastpath_enabled()
    t.backends.mha.set_fastpath_enabled(False)  # NOTE: its nested-tensor fast path zeroes padded positions
    yield t
    t.backends.mha.set_fastpath_enabled(old)


def _load(ours, theirs):
    ours.load_state_dict({k: gg.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return ours.eval()


def _compare(torch, ours, theirs, arrays, masks, **kw):
    """Same inputs, same upstream gradient: outputs, input gradients and parameter gradients agree."""
    tin = [torch.tensor(a, requires_grad=True) for a in arrays]
    gin = [gg.tensor(a, requires_grad=True) for a in arrays]
    tm = {k: None if v is None else torch.tensor(v) for k, v in masks.items()}
    gm = {k: None if v is None else gg.tensor(v) for k, v in masks.items()}
    t_out, g_out = theirs(*tin, **tm, **kw), ours(*gin, **gm, **kw)
    if isinstance(t_out, tuple):
        if t_out[1] is not None:
            np.testing.assert_allclose(g_out[1].detach().numpy(), t_out[1].detach().numpy(), rtol=1e-9, atol=1e-11)
        t_out, g_out = t_out[0], g_out[0]
    w = np.sin(np.arange(t_out.numel())).reshape(tuple(t_out.shape))
    np.testing.assert_allclose(g_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-9, atol=1e-11)
    (t_out * torch.tensor(w)).sum().backward()
    (g_out * gg.tensor(w)).sum().backward()
    for a, b in zip(gin, tin):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=1e-10)
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tp[name].grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("ck,fl", MHA, ids=[str(i) for i in range(len(MHA))])
@pytest.mark.parametrize("need_weights,average", [(True, True), (True, False), (False, True)])
def test_mha_against_torch(torch, ck, fl, need_weights, average):
    theirs = torch.nn.MultiheadAttention(8, 2, dtype=torch.float64, **ck).eval()
    ours = _load(nn.MultiheadAttention(8, 2, dtype=gg.float64, **ck), theirs)
    q, k, v, kpm, am = _mha_inputs(ck, fl)
    _compare(torch, ours, theirs, (q, k, v), dict(key_padding_mask=kpm, attn_mask=am), need_weights=need_weights,
             average_attn_weights=average)


LAYERS = list(itertools.product([False, True], ["relu", "gelu"], [False, True]))  # norm_first, activation, batch_first


@pytest.mark.parametrize("norm_first,act,bf", LAYERS)
def test_encoder_decoder_layers_against_torch(torch, norm_first, act, bf):
    kw = dict(dim_feedforward=16, dropout=0.1, activation=act, batch_first=bf, norm_first=norm_first)
    te = torch.nn.TransformerEncoderLayer(8, 2, dtype=torch.float64, **kw)
    _compare(torch, _load(nn.TransformerEncoderLayer(8, 2, dtype=gg.float64, **kw), te.eval()), te,
             [RNG.standard_normal((3, 5, 8) if bf else (5, 3, 8))],
             dict(src_key_padding_mask=RNG.random((3, 5)) < 0.3 if not norm_first else None,
                  src_mask=np.triu(np.full((5, 5), -np.inf), 1)))
    td = torch.nn.TransformerDecoderLayer(8, 2, dtype=torch.float64, **kw)
    tgt, mem = RNG.standard_normal((2, 4, 8) if bf else (4, 2, 8)), RNG.standard_normal((2, 6, 8) if bf else (6, 2, 8))
    _compare(torch, _load(nn.TransformerDecoderLayer(8, 2, dtype=gg.float64, **kw), td.eval()), td, [tgt, mem],
             dict(tgt_mask=np.triu(np.ones((4, 4), bool), 1), memory_key_padding_mask=np.array([[0, 0, 1, 0, 0, 1],
                                                                                                 [0, 0, 0, 0, 1, 1]], bool)),
             tgt_is_causal=True)


@pytest.mark.parametrize("bf", [False, True])
def test_transformer_against_torch(torch, bf):
    kw = dict(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=16, batch_first=bf,
              activation="gelu")
    theirs = torch.nn.Transformer(dtype=torch.float64, **kw).eval()
    ours = _load(nn.Transformer(dtype=gg.float64, **kw), theirs)
    src = RNG.standard_normal((2, 5, 8) if bf else (5, 2, 8))
    tgt = RNG.standard_normal((2, 4, 8) if bf else (4, 2, 8))
    _compare(torch, ours, theirs, [src, tgt],
             dict(tgt_mask=np.triu(np.full((4, 4), -np.inf), 1), src_key_padding_mask=np.array([[0, 0, 0, 1, 1],
                                                                                                [0, 0, 0, 0, 0]], bool)))
    enc_t = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, 16, dtype=torch.float64), 2,
                                        norm=torch.nn.LayerNorm(8, dtype=torch.float64), enable_nested_tensor=False)
    enc = _load(nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dtype=gg.float64), 2,
                                      norm=nn.LayerNorm(8, dtype=gg.float64)), enc_t.eval())
    _compare(torch, enc, enc_t, [RNG.standard_normal((5, 2, 8))], dict(mask=np.triu(np.full((5, 5), -np.inf), 1)))
