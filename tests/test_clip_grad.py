"""gg.nn.utils.clip_grad_norm_ / clip_grad_value_ against NumPy on the concatenated gradients."""
import numpy as np
import pytest
from conftest import to_np

import gpugrad as gg
from gpugrad.nn.utils import clip_grad_norm_, clip_grad_value_

SHAPES = [(3, 4), (7,), (), (2, 1, 3)]


def _params(device="cpu", dtype="float32", scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    ps = [gg.tensor(rng.normal(size=s), dtype=dtype, device=device, requires_grad=True) for s in SHAPES]
    grads = [scale * rng.normal(size=s) for s in SHAPES]
    for p, g in zip(ps, grads):
        p.grad = gg.tensor(g, dtype=dtype, device=device)
    return ps, [np.asarray(g, dtype=np.float64) for g in grads]


def _np_norm(grads, p):
    flat = np.concatenate([g.ravel() for g in grads])
    return np.linalg.norm(flat, ord=p)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.5, 0.5])
@pytest.mark.parametrize("max_norm,clips", [(0.5, True), (1e6, False)])
def test_clip_grad_norm_matches_numpy(norm_type, max_norm, clips, device):
    ps, grads = _params(device, "float64")
    total = clip_grad_norm_(ps, max_norm, norm_type=norm_type)
    want = _np_norm(grads, norm_type)
    assert isinstance(total, gg.Tensor) and total.shape == () and total.device == ps[0].device
    assert float(to_np(total)) == pytest.approx(want, rel=1e-12)  # the norm BEFORE clipping
    coef = min(max_norm / (want + 1e-6), 1.0)
    assert bool(coef < 1.0) is clips
    for p, g in zip(ps, grads):
        np.testing.assert_allclose(to_np(p.grad), g * coef, rtol=1e-12, atol=0)
    if clips:
        assert _np_norm([to_np(p.grad) for p in ps], norm_type) == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_norm_float16_accumulates_in_float32():
    ps, grads = _params(dtype="float16", scale=300.0)  # squares overflow float16 (max 65504)
    total = clip_grad_norm_(ps, 1.0)
    half = [g.astype(np.float16).astype(np.float64) for g in grads]
    assert total.dtype == np.float32
    assert float(total.item()) == pytest.approx(_np_norm(half, 2), rel=1e-5)
    assert all(p.grad.dtype == np.float16 for p in ps)
    np.testing.assert_allclose(_np_norm([p.grad._data.astype(np.float64) for p in ps], 2), 1.0, rtol=2e-3)


def test_clip_grad_norm_skips_missing_grads_and_accepts_one_tensor():
    ps, grads = _params("cpu", "float64")
    ps[1].grad = None
    total = clip_grad_norm_(ps, 0.1)
    assert float(total.item()) == pytest.approx(_np_norm(grads[:1] + grads[2:], 2), rel=1e-12)
    assert ps[1].grad is None
    one = gg.tensor([3.0, 4.0], dtype="float64", requires_grad=True)
    one.grad = gg.tensor([3.0, 4.0], dtype="float64")
    assert float(clip_grad_norm_(one, 1.0).item()) == 5.0
    np.testing.assert_allclose(one.grad._data, np.array([3.0, 4.0]) / (5.0 + 1e-6), rtol=1e-12)
    assert float(clip_grad_norm_([gg.tensor([1.0], requires_grad=True)], 1.0).item()) == 0.0  # no grads at all


def test_clip_grad_norm_nonfinite():
    ps, _ = _params("cpu", "float64")
    ps[0].grad._data[0, 0] = np.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    assert np.isinf(ps[0].grad._data[0, 0])  # nothing was scaled
    total = clip_grad_norm_(ps, 1.0)  # PyTorch semantics: scale by max_norm / inf = 0
    assert np.isinf(total.item())
    assert np.isnan(ps[0].grad._data[0, 0]) and np.all(ps[1].grad._data == 0)


@pytest.mark.parametrize("clip", [0.0, 0.3, 5.0])
def test_clip_grad_value(clip, device):
    ps, grads = _params(device, "float32")
    arrays = [p.grad._data for p in ps]
    clip_grad_value_(ps, clip)
    for p, a, g in zip(ps, arrays, grads):
        assert p.grad._data is a  # in place
        np.testing.assert_allclose(to_np(p.grad), np.clip(g.astype(np.float32), -clip, clip), rtol=0, atol=0)
    with pytest.raises(ValueError, match="non-negative"):
        clip_grad_value_(ps, -1.0)
