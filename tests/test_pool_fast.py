"""The fused max_pool2d of non-overlapping windows (ops.conv.MaxTiles) against PyTorch and the im2col path; the flat
mode of conv2d / conv_transpose2d (stride 1, output of the input's size) and its reuse of the forward's columns."""
import numpy as np
import pytest

import gpugrad as gg
from gpugrad.nn import functional as F
from gpugrad.ops import conv as C

CASES = [((2, 3, 8, 8), 2), ((2, 3, 7, 9), 2), ((1, 2, 9, 8), 3), ((2, 2, 6, 9), (2, 3)), ((3, 5, 5), 2), ((2, 1, 4, 4), 4),
         ((1, 2, 3, 5), (1, 2))]


def _data(shape, kind, rng):
    x = rng.standard_normal(shape)
    if kind == "ties":  # relu outputs: many equal zeros, and repeated values
        x = np.maximum(np.round(x), 0)
    if kind == "nan":
        x[(rng.random(shape) < 0.2)] = np.nan
        x[(rng.random(shape) < 0.1)] = np.inf
    return x


@pytest.mark.parametrize("shape,k", CASES)
@pytest.mark.parametrize("kind", ["normal", "ties"])
@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_matches_torch(shape, k, kind, dt):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, g = _data(shape, kind, rng).astype(dt), rng.standard_normal((1,)).astype(dt)
    X = gg.tensor(x, requires_grad=True)
    y = F.max_pool2d(X, k)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(tx, k)
    g = rng.standard_normal(ty.shape).astype(dt)
    y.backward(gg.tensor(g))
    ty.backward(torch.tensor(g))
    assert y.dtype == X.dtype and y.shape == tuple(ty.shape)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(X.grad.numpy(), tx.grad.numpy())  # the first maximum gets it all


@pytest.mark.parametrize("shape,k", CASES)
@pytest.mark.parametrize("kind", ["ties", "nan"])
@pytest.mark.parametrize("dt", [np.float32, np.float16])
def test_equals_im2col_path(shape, k, kind, dt):
    """Bit for bit the general path (first maximum, NaN windows: the first NaN), on the fused one's own inputs."""
    rng = np.random.default_rng(1)
    x = _data(shape if len(shape) == 4 else (1,) + shape, kind, rng).astype(dt)
    kk = (k, k) if isinstance(k, int) else k
    X1, X2 = gg.tensor(x, requires_grad=True), gg.tensor(x, requires_grad=True)
    y1 = C.MaxTiles.apply(X1, kernel=kk)
    y2 = C.max_pool(X2, kk, kk, ((0, 0), (0, 0)), (1, 1))[0]
    g = gg.tensor(rng.standard_normal(y1.shape).astype(dt))
    y1.backward(g)
    y2.backward(g)
    assert y1.dtype == y2.dtype == x.dtype
    np.testing.assert_array_equal(y1.detach().numpy(), y2.detach().numpy())
    np.testing.assert_array_equal(X1.grad.numpy(), X2.grad.numpy())


def test_nan_window_routes_to_last_nan():
    x = np.array([[[[1.0, np.nan], [np.nan, 5.0]]]])
    X = gg.tensor(x, requires_grad=True)
    y = F.max_pool2d(X, 2)
    y.backward(gg.ones_like(y))
    assert np.isnan(y.item())
    np.testing.assert_array_equal(X.grad.numpy(), [[[[0.0, 0.0], [1.0, 0.0]]]])  # torch's: the last NaN


def test_fused_path_taken_and_dispatch():
    calls = []
    orig = C.MaxTiles.forward
    C.MaxTiles.forward = lambda self, *a, **k: (calls.append(1), orig(self, *a, **k))[1]
    try:
        x = gg.tensor(np.random.default_rng(2).standard_normal((2, 3, 8, 8)))
        F.max_pool2d(x, 2)
        F.max_pool2d(x, 2, return_indices=True)
        F.max_pool2d(x, 2, padding=1)
        F.max_pool2d(x, 3, stride=2)
        F.max_pool2d(x, 2, ceil_mode=True)  # 8 is even: no extra cell, fused
        F.max_pool2d(x[..., :7], 2, ceil_mode=True)  # an extra cell: general path
    finally:
        C.MaxTiles.forward = orig
    assert len(calls) == 2


def test_double_backward():
    x = gg.tensor(np.random.default_rng(3).standard_normal((2, 2, 6, 6)), requires_grad=True)
    assert gg.autograd.gradcheck(lambda t: F.max_pool2d(t, 2), (x,))
    assert gg.autograd.gradgradcheck(lambda t: F.max_pool2d(t, 2) ** 2, (x,))


FLAT = [("conv2d", (2, 3, 5, 4), (4, 3, 3, 3), dict(padding=1)),
        ("conv2d", (2, 4, 6, 5), (6, 2, 3, 3), dict(padding=1, groups=2)),
        ("conv2d", (1, 2, 7, 6), (3, 2, 4, 2), dict(padding="same")),
        ("conv2d", (2, 2, 6, 7), (2, 2, 3, 3), dict(padding="same", dilation=(2, 3))),
        ("conv2d", (2, 3, 2, 3), (2, 3, 5, 5), dict(padding=2)),  # shifts past the whole image
        ("conv2d", (3, 4, 4), (2, 3, 1, 1), {}),
        ("conv_transpose2d", (2, 3, 5, 4), (3, 2, 3, 3), dict(padding=1)),
        ("conv_transpose2d", (2, 4, 4, 6), (4, 3, 3, 5), dict(padding=(1, 2), groups=2))]


@pytest.mark.parametrize("name,xs,ws,kw", FLAT)
@pytest.mark.parametrize("chunk", [1 << 22, 1, 200])  # one chunk (columns kept), one image per chunk, a few images
def test_conv_flat_mode(name, xs, ws, kw, chunk, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setitem(C._CHUNK, True, chunk)
    geos, nodes, init, fwd = [], [], C._Geo.__init__, C.Conv2d.forward
    monkeypatch.setattr(C._Geo, "__init__", lambda self, *a: (geos.append(self), init(self, *a))[1])
    monkeypatch.setattr(C.Conv2d, "forward", lambda self, *a, **k: (nodes.append(self), fwd(self, *a, **k))[1])
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0] if name == "conv2d" else ws[1] * kw.get("groups", 1))
    gi = [gg.tensor(a, requires_grad=True) for a in (x, w, b)]
    ti = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y, ty = getattr(F, name)(*gi, **kw), getattr(torch.nn.functional, name)(*ti, **kw)
    assert [g.shifts is not None for g in geos] == [True]  # flat mode
    one = chunk > 200 or len(xs) == 3 or xs[0] == 1  # one chunk: the columns are kept for the weight gradient
    assert [bool(n.keep) for n in nodes] == ([one] if name == "conv2d" else [])
    go = rng.standard_normal(ty.shape)
    y.backward(gg.tensor(go))
    ty.backward(torch.tensor(go))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    for a, t in zip(gi, ti):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("fn", ["max_pool2d", "avg_pool2d"])
def test_only_the_batch_may_be_empty(fn):
    """As PyTorch: (0, C, H, W) gives an empty result, an empty channel or spatial dim raises."""
    f = getattr(gg.nn.functional, fn)
    assert tuple(f(gg.ones(0, 3, 4, 4), 2).shape) == (0, 3, 2, 2)
    for shape in ((2, 0, 4, 4), (3, 0, 4)):
        with pytest.raises(RuntimeError, match="with optional 0 dim batch size"):
            f(gg.ones(*shape), 2)
