"""gg.explain.loss_landscape and filter-normalized directions: exact losses at grid points, restored models."""
import numpy as np
import pytest
from conftest import to_np

import gpugrad as gg
from gpugrad import nn
from gpugrad.explain import Landscape, filter_normalized_direction, loss_landscape


def _cnn(device):
    gg.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(48, 5), nn.ReLU(), nn.Linear(5, 3)).to(device, "float64")


def _ce(out, y):
    """Cross-entropy from core ops (mean over the batch)."""
    z = out - out.detach().max(1, keepdim=True)[0]
    picked = z[gg.arange(out.shape[0], device=out.device), y]
    return (z.exp().sum(1).log() - picked).mean()


def _mse(out, y):
    d = out - y
    return (d * d).mean()


def test_filter_normalized_directions_have_the_weight_norm_per_filter(device):
    m = _cnn(device)
    d = filter_normalized_direction(m, seed=0)
    assert set(d) == {n for n, _ in m.named_parameters()}
    for name, p in m.named_parameters():
        dv, w = to_np(d[name]), to_np(p.detach())
        assert d[name].device == p.device and dv.shape == w.shape
        if w.ndim <= 1:  # biases and BatchNorm weight/bias stay at zero
            assert not dv.any(), name
            continue
        # one norm per output filter: conv (out, in, kh, kw) -> out filters; linear (out, in) -> out rows
        np.testing.assert_allclose(np.linalg.norm(dv.reshape(w.shape[0], -1), axis=1),
                                   np.linalg.norm(w.reshape(w.shape[0], -1), axis=1), rtol=1e-12)
        assert not np.allclose(dv, w)  # a random direction, not the weights themselves
    d2 = filter_normalized_direction(m, seed=0)
    np.testing.assert_array_equal(to_np(d2["0.weight"]), to_np(d["0.weight"]))
    d3 = filter_normalized_direction(m, seed=1)
    assert not np.allclose(to_np(d3["0.weight"]), to_np(d["0.weight"]))
    dl = filter_normalized_direction(m, seed=0, norm="layer")
    w = to_np(m[4].weight.detach())
    assert np.linalg.norm(to_np(dl["4.weight"])) == pytest.approx(np.linalg.norm(w), rel=1e-12)


def test_1d_random_slice_of_a_linear_least_squares_is_an_exact_parabola(device):
    # one weight w, loss(w) = mean((w x - y)^2) -> along d: loss(a) = mean(((w + a d) x - y)^2)
    m = nn.Linear(1, 1, bias=False).to(device, "float64")
    with gg.no_grad():
        m.weight.fill_(0.5)
    x = gg.tensor([[1.0], [2.0], [-1.0]], dtype="float64", device=device)
    y = gg.tensor([[1.0], [0.0], [2.0]], dtype="float64", device=device)
    d = {"weight": gg.tensor([[2.0]], dtype="float64", device=device)}
    res = loss_landscape(m, _mse, (x, y), directions=[d], steps=5, span=(-1, 1))
    xs, ys = np.array([1.0, 2.0, -1.0]), np.array([1.0, 0.0, 2.0])
    expect = [np.mean(((0.5 + a * 2.0) * xs - ys) ** 2) for a in (-1, -0.5, 0, 0.5, 1)]
    assert isinstance(res, Landscape) and res.ndim == 1
    np.testing.assert_allclose(res.alphas, [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_allclose(res.losses, expect, rtol=1e-12)
    assert to_np(m.weight.detach())[0, 0] == 0.5


def test_random_directions_restore_the_model(device):
    m = _cnn(device)
    m.train()
    x = gg.tensor(np.random.randn(6, 1, 4, 4), device=device)
    y = gg.tensor(np.random.randint(0, 3, 6), device=device)
    arrays = {n: p._data for n, p in m.named_parameters()}
    copies = {n: to_np(p.detach()).copy() for n, p in m.named_parameters()}
    buffers = {n: to_np(b).copy() for n, b in m.named_buffers()}
    res = loss_landscape(m, _ce, (x, y), steps=5, seed=3)
    assert m.training
    for n, p in m.named_parameters():
        assert p._data is arrays[n]
        np.testing.assert_array_equal(to_np(p.detach()), copies[n])
    for n, b in m.named_buffers():
        np.testing.assert_array_equal(to_np(b), buffers[n])
    m.eval()
    base = float(_ce(m(x), y).item())
    assert res.losses[2] == pytest.approx(base, rel=1e-12)  # alpha = 0 is the model itself
    assert np.ptp(res.losses) > 1e-3
    # the direction used is returned and filter-normalized
    d = res.directions[0]
    w = to_np(m[0].weight.detach())
    np.testing.assert_allclose(np.linalg.norm(to_np(d["0.weight"]).reshape(3, -1), axis=1),
                               np.linalg.norm(w.reshape(3, -1), axis=1), rtol=1e-12)


def test_2d_slice_values_and_batches(device):
    m = _cnn(device)
    x = gg.tensor(np.random.randn(8, 1, 4, 4), device=device)
    y = gg.tensor(np.random.randint(0, 3, 8), device=device)
    batches = [(x[:3], y[:3]), (x[3:], y[3:])]  # an iterable of batches: the mean over all samples
    res = loss_landscape(m, _ce, batches, dims=2, steps=3, span=(-0.5, 0.5), seed=0)
    assert res.losses.shape == (3, 3) and res.betas is not None
    d1, d2 = res.directions
    m.eval()
    a, b = res.alphas[0], res.betas[2]  # (-0.5, 0.5)
    with gg.no_grad():
        for n, p in m.named_parameters():
            p._data = p._data + a * d1[n]._data + b * d2[n]._data
    expect = float(_ce(m(x), y).item())
    assert res.losses[0, 2] == pytest.approx(expect, rel=1e-10)


def test_interpolation_between_two_checkpoints(device):
    x = gg.tensor(np.random.randn(10, 1, 4, 4), device=device)
    y = gg.tensor(np.random.randint(0, 3, 10), device=device)
    a = _cnn(device)
    gg.manual_seed(5)
    b = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                      nn.Linear(48, 5), nn.ReLU(), nn.Linear(5, 3)).to(device, "float64")
    sa, sb = a.state_dict(), b.state_dict()
    sa = {k: v._data.copy() for k, v in sa.items()}
    res = loss_landscape(a, _ce, (x, y), mode="interpolate", start=sa, end=sb, steps=3)
    a.eval()
    b.eval()
    la, lb = float(_ce(a(x), y).item()), float(_ce(b(x), y).item())
    np.testing.assert_allclose(res.alphas, [0, 0.5, 1])
    assert res.losses[0] == pytest.approx(la, rel=1e-12)
    assert res.losses[2] == pytest.approx(lb, rel=1e-12)
    mid = _cnn(device)
    with gg.no_grad():
        for (n, p), (_, q) in zip(mid.named_parameters(), b.named_parameters()):
            p._data = 0.5 * sa[n] + 0.5 * q._data
    mid.eval()
    assert res.losses[1] == pytest.approx(float(_ce(mid(x), y).item()), rel=1e-12)
    with pytest.raises(ValueError, match="needs end"):
        loss_landscape(a, _ce, (x, y), mode="interpolate")
    with pytest.raises(KeyError, match="0.weight"):
        loss_landscape(a, _ce, (x, y), mode="interpolate", end={})


def test_landscape_plots(tmp_path):
    pytest.importorskip("matplotlib")
    m = _cnn("cpu")
    x, y = gg.randn(4, 1, 4, 4, dtype="float64"), gg.tensor([0, 1, 2, 0])
    for dims in (1, 2):
        res = loss_landscape(m, _ce, (x, y), dims=dims, steps=3, seed=0)
        p = res.plot(tmp_path / f"l{dims}.png")
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert res.to_dict()["losses"] == res.losses.tolist()
