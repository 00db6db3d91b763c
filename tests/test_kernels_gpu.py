"""GPU kernels vs their NumPy fallbacks (needs CuPy and an NVIDIA GPU; skipped otherwise).

Every array-level function in gpugrad.fused is called twice with the same data, once with NumPy
arrays (the fallback) and once with CuPy arrays (the CUDA kernel), for float16/32/64; results must
agree to the dtype's rounding. Shapes cover the vectorised and scalar (misaligned / odd-sized)
elementwise paths, warp-per-row and block-per-row reductions, and the error flag.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gpugrad.backend import cuda  # noqa: E402
from gpugrad.fused import activation as A  # noqa: E402
from gpugrad.fused import cuda as loader  # noqa: E402
from gpugrad.fused import loss as L  # noqa: E402
from gpugrad.fused import softmax as S  # noqa: E402

try:
    from gpugrad._dtypes import bfloat16 as _bf  # noqa: E402
    BF16 = _bf()  # NOTE: gpugrad loads ml_dtypes lazily
except TypeError:
    BF16 = None

DTYPES = [np.float16, np.float32, np.float64] + ([BF16] if BF16 is not None else [])
TOL = {np.float16: dict(rtol=2e-3, atol=1e-4), np.float32: dict(rtol=1e-5, atol=1e-7),
       np.float64: dict(rtol=1e-12, atol=1e-14), BF16: dict(rtol=1.6e-2, atol=8e-4)}  # NOTE: bf16 = fp16 x 8


@pytest.fixture(scope="module")
def cp():
    reason = cuda.why_unavailable()
    if reason is not None:
        pytest.skip(f"GPU kernel tests need CuPy and a CUDA GPU: {reason}")
    import cupy  # noqa: PLC0415
    return cupy


def _gpu(cp, a):
    return cp.asarray(a) if isinstance(a, np.ndarray) else a


def compare(cp, fn, args, kwargs=None, dt=np.float32, scaled=False, **tol):
    """fn on NumPy arrays vs fn on CuPy copies; outputs (array or tuple of arrays) must agree."""
    kwargs = kwargs or {}
    want = fn(*args, **kwargs)
    got = fn(*[_gpu(cp, a) for a in args], **{k: _gpu(cp, v) for k, v in kwargs.items()})
    want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    for w, g in zip(want, got):
        assert isinstance(g, cp.ndarray), type(g)
        g = cp.asnumpy(g)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
        t = dict(TOL[dt])
        t.update(tol)
        w64, g64 = w.astype(np.float64), g.astype(np.float64)
        if scaled and np.isfinite(w64).any():
            t["atol"] = max(t["atol"], t["rtol"] * float(np.nanmax(np.abs(w64[np.isfinite(w64)]))))
        np.testing.assert_allclose(g64, w64, equal_nan=True, **t)
    return got


def _rand(shape, dt, scale=3.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dt)


ACTS = A.table_cases()  # (row, params): every row of the activation table, defaults and cases
ACT_IDS = [A.case_id(*c) for c in ACTS]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("op,params", ACTS, ids=ACT_IDS)
def test_activation_gpu_matches_fallback(cp, op, params, dt):
    p = op.values(params)
    for n in (1, 37, 4096 + 5):
        base = _rand(n + 1, dt, seed=n)
        base[:3] = [0.0, 88.0, -1e4 if dt != np.float16 else -6e4][:min(3, n + 1)]
        for x in (base[:n], base[1:]):  # aligned (vector path) and offset by one element (scalar path)
            compare(cp, lambda a: A.fwd(op, a, p), (x,), dt=dt)
            g = _rand(x.shape, dt, 1.0, seed=7)
            s = A.fwd(op, x, p) if op.saves_output(p) else x
            compare(cp, lambda gg, ss: A.bwd(op, gg, ss, p), (g, s), dt=dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape,axis", [((5, 1), -1), ((4, 7), -1), ((33, 100), -1), ((3, 1024), -1),
                                        ((3, 1025), -1), ((2, 20000), -1), ((6, 5, 4), 1), ((7, 3), 0)])
def test_softmax_family_gpu_matches_fallback(cp, dt, shape, axis):
    x = _rand(shape, dt)
    for fwd, bwd in ((S.softmax_fwd, S.softmax_bwd), (S.log_softmax_fwd, S.log_softmax_bwd)):
        compare(cp, lambda a: fwd(a, axis), (x,), dt=dt)
        g = _rand(shape, dt, 1.0, seed=3)
        compare(cp, lambda gg, yy: bwd(gg, yy, axis), (g, fwd(x, axis)), dt=dt, scaled=True)
    compare(cp, lambda a: S.logsumexp_fwd(a, axis), (x,), dt=dt)
    gl = _rand(S.logsumexp_fwd(x, axis).shape, dt, 1.0, seed=4)
    compare(cp, lambda gg, a, ll: S.logsumexp_bwd(gg, a, ll, axis), (gl, x, S.logsumexp_fwd(x, axis)), dt=dt)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("n", [7, 3000])
def test_softmax_special_rows_gpu(cp, dt, n):
    x = _rand((6, n), dt)
    x[1, n // 2] = np.inf              # +inf in one thread's share: NaN row (softmax), +inf (logsumexp)
    x[2, :] = -np.inf                  # all -inf
    x[3, 0] = np.nan
    x[4, :] = 1e4
    x[5, :: 2] = -np.inf
    for fn in (S.softmax_fwd, S.log_softmax_fwd, S.logsumexp_fwd):
        compare(cp, fn, (x,), dt=dt)


CE = [dict(), dict(label_smoothing=0.1), dict(weight=True), dict(weight=True, label_smoothing=0.2, ignore_index=3),
      dict(probs=True), dict(probs=True, weight=True, label_smoothing=0.1)]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("ncls", [5, 1000, 5003])
@pytest.mark.parametrize("case", CE, ids=lambda c: "-".join(c) or "plain")
def test_cross_entropy_gpu_matches_fallback(cp, case, ncls, reduction, dt):
    rng = np.random.default_rng(ncls)
    rows = 37
    x = _rand((rows, ncls), dt, 4.0, seed=ncls)
    if case.get("probs"):
        t = rng.random((rows, ncls))
        t = (t / t.sum(axis=1, keepdims=True)).astype(dt)
    else:
        t = rng.integers(0, ncls, rows)
        t[::5] = case.get("ignore_index", -100)
    kw = dict(weight=(rng.random(ncls) + 0.5).astype(dt) if case.get("weight") else None,
              ignore_index=case.get("ignore_index", -100), label_smoothing=case.get("label_smoothing", 0.0),
              reduction=reduction)
    compare(cp, lambda a, tt, **k: L.cross_entropy_fwd(a, tt, **k), (x, t), kw, dt=dt, scaled=True)
    _, lse = L.cross_entropy_fwd(x, t, **kw)
    g = _rand((rows,), dt, 1.0, seed=5) if reduction == "none" else np.array(1.3, dt)
    compare(cp, lambda gg, a, tt, ll, **k: L.cross_entropy_bwd(gg, a, tt, ll, **k), (g, x, t, lse), kw, dt=dt,
            scaled=True)


def test_cross_entropy_gpu_kdim_and_extremes(cp):
    x = _rand((4, 6, 3), np.float32)
    x[0, :, 0] = [1e4, -1e4, 0, 1e4 - 1, 5, -5]
    t = np.random.default_rng(0).integers(0, 6, (4, 3))
    loss, _ = compare(cp, lambda a, tt: L.cross_entropy_fwd(a, tt, reduction="none"), (x, t))
    assert loss.shape == (4, 3) and np.isfinite(cp.asnumpy(loss)).all()
    g = np.linspace(0.5, 1.5, 12, dtype=np.float32).reshape(4, 3)
    gx = compare(cp, lambda gg, a, tt, ll: L.cross_entropy_bwd(gg, a, tt, ll, reduction="none"),
                 (g, x, t, L.cross_entropy_fwd(x, t, reduction="none")[1]), scaled=True)
    assert gx[0].shape == x.shape and np.isfinite(cp.asnumpy(gx[0])).all()


def test_cross_entropy_gpu_bad_target_raises(cp):
    x = cp.zeros((4, 3), cp.float32)
    with pytest.raises(ValueError, match=r"target 5 is out of bounds.*\[0, 3\)"):
        L.cross_entropy_fwd(x, cp.asarray([0, 5, 1, -100]))
    with pytest.raises(ValueError, match=r"target -2 is out of bounds"):
        L.nll_loss_fwd(x, cp.asarray([0, -2, 1, 2]))
    loss, _ = L.cross_entropy_fwd(x, cp.asarray([0, 2, 1, -100]), reduction="none")  # no false alarm
    np.testing.assert_allclose(cp.asnumpy(loss), [np.log(3)] * 3 + [0], rtol=1e-6)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_gpu_matches_fallback(cp, dt, reduction, weighted):
    rng = np.random.default_rng(1)
    x = _rand((29, 7), dt) - 2
    t = rng.integers(0, 7, 29)
    t[::4] = -100
    w = (rng.random(7) + 0.5).astype(dt) if weighted else None
    compare(cp, lambda a, tt, ww: L.nll_loss_fwd(a, tt, ww, reduction=reduction), (x, t, w), dt=dt, scaled=True)
    g = _rand((29,), dt, 1.0) if reduction == "none" else np.array(0.7, dt)
    compare(cp, lambda gg, a, tt, ww: L.nll_loss_bwd(gg, a, tt, ww, reduction=reduction), (g, x, t, w), dt=dt)


POINTWISE = [(L.mse_loss_fwd, L.mse_loss_bwd, {}), (L.l1_loss_fwd, L.l1_loss_bwd, {}),
             (L.huber_loss_fwd, L.huber_loss_bwd, {"delta": 0.7}),
             (L.smooth_l1_loss_fwd, L.smooth_l1_loss_bwd, {"beta": 0.5}),
             (L.smooth_l1_loss_fwd, L.smooth_l1_loss_bwd, {"beta": 0.0})]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("fwd,bwd,kw", POINTWISE, ids=["mse", "l1", "huber", "smooth_l1", "smooth_l1_0"])
def test_pointwise_losses_gpu_match_fallback(cp, fwd, bwd, kw, reduction, dt):
    for n in (1, 1001):
        base = _rand(n + 1, dt, 1.0)
        t = _rand(n + 1, dt, 1.0, seed=9)
        t[0] = base[0]
        for x, tt in ((base[:n], t[:n]), (base[1:], t[1:])):
            compare(cp, lambda a, b: fwd(a, b, reduction=reduction, **kw), (x, tt), dt=dt, scaled=reduction != "none")
            g = _rand(x.shape, dt, 1.0, seed=4) if reduction == "none" else np.array(2.0, dt)
            compare(cp, lambda gg, a, b: bwd(gg, a, b, reduction=reduction, **kw), (g, x, tt), dt=dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_bce_with_logits_gpu_matches_fallback(cp, dt, reduction):
    x = _rand((33, 4), dt, 5.0)
    x[0] = [1e4, -1e4, 0, 88] if dt != np.float16 else [6e4, -6e4, 0, 88]
    t = np.random.default_rng(2).random((33, 4)).astype(dt)
    for w, pw in ((None, None), (_rand((33, 1), dt, 0.3) + 1, np.array([0.5, 1, 2, 3], dt))):
        compare(cp, lambda a, b, ww, pp: L.bce_with_logits_fwd(a, b, ww, pp, reduction=reduction), (x, t, w, pw),
                dt=dt, scaled=True)
        g = _rand(x.shape, dt, 1.0) if reduction == "none" else np.array(1.0, dt)
        compare(cp, lambda gg, a, b, ww, pp: L.bce_with_logits_bwd(gg, a, b, ww, pp, reduction=reduction),
                (g, x, t, w, pw), dt=dt)


def test_loader_memoizes_and_names_compile_errors(cp):
    k1 = loader.get_kernel("activation.cu", "gpugrad_relu_fwd", np.float32, 0)
    assert loader.get_kernel("activation.cu", "gpugrad_relu_fwd<float>", np.float32, 0) is k1
    with pytest.raises(loader.KernelCompileError, match=r"gpugrad_no_such_kernel<float>.*activation\.cu"):
        loader.get_kernel("activation.cu", "gpugrad_no_such_kernel", np.float32, 0)
    # the module for the dtype still works after a failed lookup
    assert loader.get_kernel("activation.cu", "gpugrad_tanh_fwd", np.float32, 0) is not None
