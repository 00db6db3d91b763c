"""F.scaled_dot_product_attention and the fused attention op (gpugrad.fused.attention, gpugrad.ops.attention).

Torch-free checks: the fused op against a matmul + softmax composite written here (values and gradients,
every flag), plain-NumPy forward values, gradcheck / gradgradcheck in float64 (the create_graph path runs
the node's composite), PyTorch's errors, fully masked rows, dropout, and the memory bound of the blocked
fallback (peak extra memory linear in the sequence length, tracemalloc). With torch installed: the same
calls against torch.nn.functional.scaled_dot_product_attention (values and gradients).
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad.fused import attention as A

RNG = np.random.default_rng(0)


def _t(a, rg=True):
    return gg.tensor(a, requires_grad=rg)


def composite(q, k, v, mask=None, is_causal=False, scale=None):
    """The definition, in core ops: softmax(q k^T * scale + mask) @ v (fully masked rows give 0)."""
    sc = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ k.transpose(-2, -1) * sc
    L, S = s.shape[-2:]
    if is_causal:
        mask = gg.tensor(np.tril(np.ones((L, S), bool)))
    if mask is not None:
        s = s + (gg.where(mask, 0.0, float("-inf")).to(s.dtype) if mask.dtype == np.bool_ else mask)
    dead = (s.detach().numpy() == -np.inf).all(-1, keepdims=True)
    s = gg.where(gg.tensor(dead), 0.0, s)
    return gg.where(gg.tensor(dead), 0.0, s.softmax(-1)) @ v


def np_attention(q, k, v, bias):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]) + bias
    m = s.max(-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(m), m, 0))
    d = e.sum(-1, keepdims=True)
    return np.where(d > 0, e / np.where(d > 0, d, 1), 0) @ v


# (q shape, k shape, v shape, mask: None | "bool" | "float" with its shape, causal, gqa)
CASES = [
    ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), None, False, False),
    ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), None, True, False),
    ((2, 3, 9, 8), (2, 3, 4, 8), (2, 3, 4, 4), None, True, False),
    ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), ("bool", (5, 7)), False, False),
    ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), ("bool", (2, 1, 1, 7)), False, False),
    ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), ("float", (3, 1, 7)), False, False),
    ((5, 8), (7, 8), (7, 6), ("bool", (5, 7)), False, False),
    ((4, 5, 8), (4, 7, 8), (4, 7, 3), None, True, False),
    ((1, 2, 2, 5, 8), (2, 1, 7, 8), (2, 1, 7, 4), ("bool", (2, 1, 1, 7)), False, False),
    ((2, 6, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), None, False, True),
    ((2, 3, 300, 8), (2, 3, 300, 8), (2, 3, 300, 8), None, True, False),  # several query blocks
]
IDS = [f"{c[0]}{'-' + c[3][0] + str(c[3][1]) if c[3] else ''}{'-causal' if c[4] else ''}{'-gqa' if c[5] else ''}"
       for c in CASES]


def _case(case, dtype=np.float64, seed=0):
    qs, ks, vs, mask, causal, gqa = case
    rng = np.random.default_rng(seed)
    arrs = [rng.standard_normal(s).astype(dtype) for s in (qs, ks, vs)]
    m = None
    if mask is not None:
        kind, shape = mask
        m = rng.random(shape) > 0.3 if kind == "bool" else rng.standard_normal(shape).astype(dtype)
        if kind == "bool":
            m[..., 0, :] = False  # a fully masked query row
    return arrs, m, dict(is_causal=causal, enable_gqa=gqa)


def _run(fn, arrs, m, kw, w, rg=True):
    ts = [_t(a, rg) for a in arrs]
    out = fn(*ts, attn_mask=None if m is None else gg.tensor(m), **kw)
    (out * gg.tensor(w)).sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


def _gqa_composite(q, k, v, attn_mask=None, is_causal=False, enable_gqa=False):
    if enable_gqa:
        r = q.shape[-3] // k.shape[-3]
        k, v = k.repeat_interleave(r, dim=-3), v.repeat_interleave(r, dim=-3)
    return composite(q, k, v, attn_mask, is_causal)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fused_matches_composite(case):
    arrs, m, kw = _case(case)
    out_shape = F.scaled_dot_product_attention(*[gg.tensor(a) for a in arrs], attn_mask=None if m is None else
                                               gg.tensor(m), **kw).shape
    w = np.random.default_rng(1).standard_normal(out_shape)
    got, ggot = _run(F.scaled_dot_product_attention, arrs, m, kw, w)
    want, gwant = _run(_gqa_composite, arrs, m, kw, w)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    for a, b in zip(ggot, gwant):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)


def test_forward_against_numpy_and_dead_rows():
    q, k, v = (RNG.standard_normal(s) for s in ((2, 4, 6), (2, 5, 6), (2, 5, 3)))
    bias = np.where(RNG.random((2, 4, 5)) < 0.3, -np.inf, RNG.standard_normal((2, 4, 5)))
    bias[:, 1] = -np.inf
    out = F.scaled_dot_product_attention(*map(gg.tensor, (q, k, v)), attn_mask=gg.tensor(bias)).numpy()
    np.testing.assert_allclose(out, np_attention(q, k, v, bias), rtol=1e-12, atol=1e-14)
    assert np.all(out[:, 1] == 0)
    qt = _t(q)
    F.scaled_dot_product_attention(qt, gg.tensor(k), gg.tensor(v), attn_mask=gg.tensor(bias)).sum().backward()
    assert np.all(qt.grad.numpy()[:, 1] == 0) and np.all(np.isfinite(qt.grad.numpy()))


@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-6), (np.float16, 2e-3)])
def test_low_precision_matches_float64(dtype, tol):
    arrs, m, kw = _case(CASES[3], dtype)
    w = np.random.default_rng(1).standard_normal((2, 3, 5, 4))
    got, ggot = _run(F.scaled_dot_product_attention, arrs, m, kw, w.astype(dtype))
    want, gwant = _run(F.scaled_dot_product_attention, [a.astype(np.float64) for a in arrs], m, kw, w)
    assert got.dtype == dtype and ggot[0].dtype == dtype
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    for a, b in zip(ggot, gwant):
        np.testing.assert_allclose(a, b, rtol=tol * 5, atol=tol * 5)


def test_gradcheck_and_double_backward():
    q, k, v = (_t(RNG.standard_normal(s)) for s in ((1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 2)))
    mask = gg.tensor(RNG.random((3, 5)) > 0.3)

    def f(a, b, c):
        return F.scaled_dot_product_attention(a, b, c, attn_mask=mask)

    def fc(a, b, c):
        return F.scaled_dot_product_attention(a, b, c, is_causal=True, scale=0.7)

    assert gg.autograd.gradcheck(f, (q, k, v))
    assert gg.autograd.gradcheck(fc, (q, k, v))
    assert gg.autograd.gradgradcheck(fc, (q, k, v))
    # a float mask that requires grad takes the composite path and gets its gradient
    bias = _t(RNG.standard_normal((3, 5)))
    assert gg.autograd.gradcheck(lambda a, bb: F.scaled_dot_product_attention(a, k.detach(), v.detach(), attn_mask=bb),
                                 (q, bias))


def test_dropout_zeroes_and_rescales_weights():
    """With value = identity the output is the weight matrix: each entry is 0 or weight / (1 - p)."""
    gg.manual_seed(0)
    q, k = gg.tensor(RNG.standard_normal((2, 40, 8))), gg.tensor(RNG.standard_normal((2, 30, 8)))
    v = gg.tensor(np.broadcast_to(np.eye(30), (2, 30, 30)).copy())
    w = F.scaled_dot_product_attention(q, k, v).numpy()
    d = F.scaled_dot_product_attention(q, k, v, dropout_p=0.25).numpy()
    kept = d != 0
    np.testing.assert_allclose(d[kept], w[kept] / 0.75, rtol=1e-12)
    assert 0.65 < kept.mean() < 0.85
    assert np.all(F.scaled_dot_product_attention(q, k, v, dropout_p=1.0).numpy() == 0)


def test_errors_as_pytorch():
    q = gg.randn(2, 3, 4, 8)
    k, v = gg.randn(2, 3, 5, 8), gg.randn(2, 3, 5, 8)
    sdpa = F.scaled_dot_product_attention
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set when is_causal=True"):
        sdpa(q, k, v, attn_mask=gg.ones(4, 5, dtype=gg.bool), is_causal=True)
    with pytest.raises(RuntimeError, match="Expected attn_mask dtype to be bool or float or to match query dtype"):
        sdpa(q, k, v, attn_mask=gg.zeros(4, 5, dtype=gg.float64))
    with pytest.raises(RuntimeError, match="to have the same dtype"):
        sdpa(q, k.double(), v)
    with pytest.raises(RuntimeError, match="at least 2 dimensional"):
        sdpa(q[0, 0, 0], k[0, 0, 0], v[0, 0, 0])
    with pytest.raises(RuntimeError, match="must divide the number of heads"):
        sdpa(gg.randn(2, 4, 4, 8), k, v, enable_gqa=True)
    with pytest.raises(RuntimeError, match="cannot be broadcast"):
        sdpa(q, k, v, attn_mask=gg.zeros(3, 5))
    assert sdpa(q, k[:, :, :0], v[:, :, :0]).numpy().tolist() == np.zeros((2, 3, 4, 8)).tolist()  # no keys: 0


def _peak_extra(n, causal):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, n, 16)).astype(np.float32) for _ in range(3))
    g = np.ones((1, 2, n, 16), np.float32)
    tracemalloc.start()
    try:
        out, lse = A.attention_fwd(q, k, v, causal=causal)
        A.attention_bwd(g, q, k, v, out, lse, causal=causal)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("causal", [False, True])
def test_fallback_memory_grows_linearly(causal, monkeypatch):
    """4x the sequence: at most ~4x the peak extra memory (the (L, S) scores would be 16x), and at n = 2048
    under a quarter of the scores alone (2 x 2048^2 float32 = 32 MiB). The score tile is set to 2^18
    elements (1 MiB), so the O(n) per-row state is visible at these small sizes."""
    monkeypatch.setattr(A, "_TILE", 1 << 18)
    small, big = _peak_extra(512, causal), _peak_extra(2048, causal)
    assert big < 5 * small, (small, big)
    assert big < 2 * 2048 * 2048 * 4 / 4, big


# -- against PyTorch (skipped without it) ---------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_against_torch(case):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    arrs, m, kw = _case(case)
    ts = [torch.tensor(a, requires_grad=True) for a in arrs]
    want = TF.scaled_dot_product_attention(*ts, attn_mask=None if m is None else torch.tensor(m), **kw)
    w = np.random.default_rng(1).standard_normal(tuple(want.shape))
    (want * torch.tensor(w)).sum().backward()
    got, grads = _run(F.scaled_dot_product_attention, arrs, m, kw, w)
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, t in zip(grads, ts):
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=1e-9, atol=1e-11)
