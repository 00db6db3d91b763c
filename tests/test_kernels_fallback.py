"""NumPy fallbacks of gpugrad.fused vs straightforward float64 reference formulas.

Forward values against textbook formulas (and a few hand-computed numbers), backward values
against the analytic derivative and central finite differences of the forward, for float16,
float32 and float64; extremes (+-1e4 logits, +-inf, NaN), PyTorch kink conventions, and the
error messages for bad input.
"""
from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gpugrad.fused import activation as A  # noqa: E402
from gpugrad.fused import loss as L  # noqa: E402
from gpugrad.fused import softmax as S  # noqa: E402
from gpugrad.fused._common import np_erfc  # noqa: E402

DTYPES = [np.float16, np.float32, np.float64]
TOL = {np.float16: dict(rtol=2e-3, atol=2e-3), np.float32: dict(rtol=2e-6, atol=1e-6),
       np.float64: dict(rtol=1e-12, atol=1e-13)}
_erf = np.vectorize(math.erf, otypes=[np.float64])
SELU_A, SELU_S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def close(actual, expected, dt, scale=1.0, **kw):
    tol = {k: v * scale for k, v in TOL[dt].items()}
    tol.update(kw)
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64), **tol)


def fd(f, x, h=1e-6):
    """Elementwise central difference of an elementwise f (float64)."""
    return (f(x + h) - f(x - h)) / (2 * h)


def fd_dir(f, x, v, h=1e-6):
    """Directional derivative <grad f(x), v> of a scalar-valued f by central differences."""
    return (float(f(x + h * v)) - float(f(x - h * v))) / (2 * h)


# -- activations ------------------------------------------------------------------------------------

def _sig(x):
    return 1 / (1 + np.exp(-x))


# name, params, reference forward (float64, |x| <= 20), reference derivative
ACT_REF = [
    ("relu", {}, lambda x: np.where(x > 0, x, 0.0), lambda x: (x > 0) * 1.0),
    ("leaky_relu", {}, lambda x: np.where(x > 0, x, 0.01 * x), lambda x: np.where(x > 0, 1.0, 0.01)),
    ("leaky_relu", {"negative_slope": -0.3}, lambda x: np.where(x > 0, x, -0.3 * x),
     lambda x: np.where(x > 0, 1.0, -0.3)),
    ("elu", {"alpha": 1.3}, lambda x: np.where(x > 0, x, 1.3 * (np.exp(x) - 1)),
     lambda x: np.where(x > 0, 1.0, 1.3 * np.exp(x))),
    ("elu", {"alpha": -0.5}, lambda x: np.where(x > 0, x, -0.5 * (np.exp(x) - 1)),
     lambda x: np.where(x > 0, 1.0, -0.5 * np.exp(x))),
    ("selu", {}, lambda x: SELU_S * np.where(x > 0, x, SELU_A * (np.exp(x) - 1)),
     lambda x: SELU_S * np.where(x > 0, 1.0, SELU_A * np.exp(x))),
    ("gelu", {}, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
     lambda x: 0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)),
    ("gelu", {"approximate": "tanh"},
     lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
     lambda x: 0.5 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
     + 0.5 * x * (1 - np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)) ** 2)
     * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x ** 2)),
    ("silu", {}, lambda x: x * _sig(x), lambda x: _sig(x) * (1 + x * (1 - _sig(x)))),
    ("mish", {}, lambda x: x * np.tanh(np.log1p(np.exp(x))),
     lambda x: np.tanh(np.log1p(np.exp(x))) + x * (1 - np.tanh(np.log1p(np.exp(x))) ** 2) * _sig(x)),
    ("sigmoid", {}, _sig, lambda x: _sig(x) * (1 - _sig(x))),
    ("tanh", {}, np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    ("softplus", {}, lambda x: np.log1p(np.exp(x)), _sig),
    ("softplus", {"beta": 2.0, "threshold": 3.0}, lambda x: np.where(2 * x > 3, x, np.log1p(np.exp(2 * x)) / 2),
     lambda x: np.where(2 * x > 3, 1.0, _sig(2 * x))),
    ("log_sigmoid", {}, lambda x: np.log(_sig(x)), lambda x: 1 - _sig(x)),
]
ACT_IDS = [f"{n}{'-' + '-'.join(map(str, p.values())) if p else ''}" for n, p, _, _ in ACT_REF]


def _act_points(dt):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-6, 6, 200), [-20, -12, -3, -1, -0.5, 0.25, 1, 2.5, 7, 12, 20]])
    return x.astype(dt)


def _bwd(name, g, x, params):
    saves = A.activation_saves(name, **params)
    kw = {"y": A.activation_fwd(name, x, **params)} if saves == "output" else {"x": x}
    return A.activation_bwd(name, g, **kw, **params)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name,params,ref,dref", ACT_REF, ids=ACT_IDS)
def test_activation_matches_reference(name, params, ref, dref, dt):
    x = _act_points(dt)
    x64 = x.astype(np.float64)
    y = A.activation_fwd(name, x, **params)
    assert y.dtype == dt and y.shape == x.shape
    close(y, ref(x64), dt)
    g = np.linspace(-1.5, 1.5, x.size).astype(dt)
    gx = _bwd(name, g, x, params)
    assert gx.dtype == dt
    # NOTE: float16 saves y in float16, so output-based derivatives see y rounded to 1e-3
    close(gx, g.astype(np.float64) * dref(x64), dt, scale=4.0 if dt == np.float16 else 1.0)


@pytest.mark.parametrize("name,params,ref,dref", ACT_REF, ids=ACT_IDS)
def test_activation_bwd_matches_finite_differences(name, params, ref, dref):
    x = _act_points(np.float64)
    x = x[(np.abs(np.abs(x) - 1.5) > 1e-3) & (np.abs(x) != 20)]  # away from softplus's threshold switch
    num = fd(lambda v: A.activation_fwd(name, v, **params), x)
    np.testing.assert_allclose(_bwd(name, np.ones_like(x), x, params), num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name,params,expected", [
    ("relu", {}, 0.0), ("leaky_relu", {"negative_slope": 0.2}, 0.2), ("elu", {"alpha": 0.7}, 0.7),
    ("elu", {"alpha": -0.7}, -0.7), ("selu", {}, SELU_S * SELU_A), ("gelu", {}, 0.5), ("silu", {}, 0.5),
    ("sigmoid", {}, 0.25), ("tanh", {}, 1.0), ("softplus", {}, 0.5), ("log_sigmoid", {}, 0.5),
    ("mish", {}, math.tanh(math.log(2))), ("gelu", {"approximate": "tanh"}, 0.5)])
def test_activation_derivative_at_zero_follows_pytorch(name, params, expected):
    for dt in DTYPES:
        x = np.zeros(3, dt)
        close(_bwd(name, np.ones(3, dt), x, params), [expected] * 3, dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("op", list(A.ACTIVATIONS.values()), ids=list(A.ACTIVATIONS))
def test_activation_extremes(op, dt):
    """The row's limits at -inf and +inf: (f(-inf), f(inf), f'(-inf), f'(inf)); finite results for
    large finite inputs; NaN in gives NaN out."""
    lo, hi, dlo, dhi = op.limits
    p = op.defaults

    def bwd(g, x):
        return A.bwd(op, g, A.fwd(op, x, p) if op.saves_output(p) else x, p)
    x = np.array([-np.inf, np.inf], dt)
    np.testing.assert_array_equal(A.fwd(op, x, p), np.array([lo, hi], dt))
    # NOTE: float16 output-based derivatives see y rounded to float16 (selu'(-inf) ~ 3e-4)
    close(bwd(np.ones(2, dt), x), [dlo, dhi], dt, atol=1e-3 if dt == np.float16 else 1e-12)
    big = np.array([-1e4, -88, -20, 20, 88, 1e4, 65504 if dt == np.float16 else 1e30], dt)
    assert np.isfinite(A.fwd(op, big[:-1], p)).all()
    assert np.isfinite(bwd(np.ones_like(big), big)).all()
    nan = A.fwd(op, np.array([np.nan, 1.0], dt), p)
    assert np.isnan(nan[0]) and np.isfinite(nan[1])


def test_activation_table_matches_the_cuda_list():
    """The rows of ACTIVATIONS are exactly the X(name, Functor) entries of GG_ACTIVATIONS in activation.cu."""
    src = (ROOT / "kernels" / "activation.cu").read_text()
    block = src[src.index("#define GG_ACTIVATIONS(X)"):]
    block = block[:block.index("\n\n")]
    assert re.findall(r"X\((\w+), \w+\)", block) == list(A.ACTIVATIONS)


def test_sigmoid_tails_keep_relative_precision():
    x = np.array([-30.0, -80.0, -700.0, 30.0])
    y = A.activation_fwd("sigmoid", x)
    np.testing.assert_allclose(y, [math.exp(-30) / (1 + math.exp(-30)), math.exp(-80), math.exp(-700), 1.0],
                               rtol=1e-13)
    assert A.activation_fwd("log_sigmoid", np.array([-1e4]))[0] == -1e4
    np.testing.assert_allclose(A.activation_fwd("log_sigmoid", np.array([40.0])), [-math.exp(-40)], rtol=1e-12)


def test_erfc_fallback_matches_math_erfc():
    z = np.concatenate([np.linspace(-6, 26, 4001), [0.0, 1e-300, np.inf, -np.inf]])
    ref = np.array([math.erfc(v) for v in z])
    np.testing.assert_allclose(np_erfc(z), ref, rtol=2e-13, atol=0)
    z32 = np.linspace(-4, 4, 801).astype(np.float32)
    got = np_erfc(z32)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [math.erfc(v) for v in z32.astype(np.float64)], rtol=3e-6)
    assert np.isnan(np_erfc(np.array([np.nan])))[0]


def test_float32_erfc_matches_math_erfc():
    """The float32 path (gelu's, and erfc's for float32): relative error against the float64 erfc of the same
    float32 input below 2e-6 for z < 4, 2e-5 beyond while erfc is a normal float32 number (the rounding of
    the exponent -z^2, as the 15-term series), exact limits, NaN, both signs."""
    from gpugrad.fused._common import erfc, erfc_nonneg32  # noqa: PLC0415
    z = np.concatenate([np.linspace(0, 9.1, 20001), [1e-30, 1e-8]]).astype(np.float32)
    ref = np.array([math.erfc(v) for v in z.astype(np.float64)])
    got = erfc_nonneg32(z)
    assert got.dtype == np.float32
    near = z < 4
    np.testing.assert_allclose(got[near], ref[near], rtol=2e-6, atol=0)
    np.testing.assert_allclose(got[~near], ref[~near], rtol=2e-5, atol=0)
    assert erfc_nonneg32(np.array([np.inf, np.nan], np.float32))[0] == 0 and np.isnan(erfc_nonneg32(np.array([np.nan], np.float32)))[0]
    zs = np.linspace(-4, 4, 801).astype(np.float32)
    from gpugrad.fused import _common  # noqa: PLC0415
    saved, _common._scipy_erfc = _common._scipy_erfc, False  # NOTE: the path taken without SciPy (as in CI)
    try:
        np.testing.assert_allclose(erfc(zs), [math.erfc(v) for v in zs.astype(np.float64)], rtol=2e-6, atol=0)
        assert erfc(np.array([-np.inf], np.float32))[0] == 2
    finally:
        _common._scipy_erfc = saved


def test_activation_saves():
    assert A.activation_saves("relu") == "output" and A.activation_saves("sigmoid") == "output"
    assert A.activation_saves("leaky_relu") == "output"
    assert A.activation_saves("leaky_relu", negative_slope=-0.1) == "input"
    assert A.activation_saves("elu", alpha=-1.0) == "input" and A.activation_saves("elu") == "output"
    assert A.activation_saves("gelu", approximate="tanh") == "input" and A.activation_saves("softplus") == "input"


def test_activation_errors():
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        A.activation_fwd("swish", x)
    with pytest.raises(TypeError, match="alpha"):
        A.activation_fwd("relu", x, alpha=1.0)
    with pytest.raises(ValueError, match="approximate"):
        A.activation_fwd("gelu", x, approximate="fast")
    with pytest.raises(ValueError, match="saved output y"):
        A.activation_bwd("sigmoid", x, x=x)
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        A.activation_bwd("gelu", x, x=np.ones(4, np.float32))
    with pytest.raises(TypeError, match="float16, float32 or float64"):
        A.activation_fwd("relu", np.ones(3, np.int32))


def test_zero_size_and_0d():
    assert A.activation_fwd("relu", np.zeros((0, 3), np.float32)).shape == (0, 3)
    y = A.activation_fwd("sigmoid", np.array(0.0))
    assert y.shape == () and float(y) == 0.5
    assert float(A.activation_bwd("tanh", np.array(2.0), y=np.array(0.5))) == 1.5


# -- softmax family ---------------------------------------------------------------------------------

def _ref_lse(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_family_matches_reference(dt, axis):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((4, 5, 6)) * 3).astype(dt)
    x64 = x.astype(np.float64)
    lse = _ref_lse(x64, axis)
    sm = np.exp(x64 - np.expand_dims(lse, axis))
    close(S.softmax_fwd(x, axis), sm, dt)
    close(S.log_softmax_fwd(x, axis), x64 - np.expand_dims(lse, axis), dt, scale=4.0)
    out = S.logsumexp_fwd(x, axis)
    assert out.dtype == dt and out.shape == lse.shape
    close(out, lse, dt, scale=4.0)
    assert S.logsumexp_fwd(x, axis, keepdims=True).shape == np.expand_dims(lse, axis).shape
    g = rng.standard_normal(x.shape).astype(dt)
    g64 = g.astype(np.float64)
    close(S.softmax_bwd(g, S.softmax_fwd(x, axis), axis),
          sm * (g64 - np.sum(g64 * sm, axis=axis, keepdims=True)), dt, scale=4.0)
    close(S.log_softmax_bwd(g, S.log_softmax_fwd(x, axis), axis),
          g64 - sm * np.sum(g64, axis=axis, keepdims=True), dt, scale=4.0)
    gl = rng.standard_normal(lse.shape).astype(dt)
    close(S.logsumexp_bwd(gl, x, out, axis), np.expand_dims(gl.astype(np.float64), axis) * sm, dt, scale=4.0)


def test_softmax_family_bwd_matches_finite_differences():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5))
    v = rng.standard_normal(x.shape)
    g = rng.standard_normal(x.shape)
    for fwd, bwd in ((S.softmax_fwd, S.softmax_bwd), (S.log_softmax_fwd, S.log_softmax_bwd)):
        num = fd_dir(lambda a: np.sum(g * fwd(a)), x, v)
        assert np.sum(bwd(g, fwd(x)) * v) == pytest.approx(num, rel=1e-7)
    gl = rng.standard_normal(3)
    num = fd_dir(lambda a: np.sum(gl * S.logsumexp_fwd(a)), x, v)
    assert np.sum(S.logsumexp_bwd(gl, x, S.logsumexp_fwd(x)) * v) == pytest.approx(num, rel=1e-7)


@pytest.mark.parametrize("dt", DTYPES)
def test_softmax_extremes(dt):
    big = 3e4 if dt == np.float16 else 1e4  # NOTE: x - max must stay within float16's range
    x = np.array([[big, -big, 0.0, big], [-big] * 4, [np.inf, 1, 2, 3], [-np.inf] * 4, [np.nan, 1, 2, 3]], dt)
    y = S.softmax_fwd(x)
    np.testing.assert_allclose(y[0], [0.5, 0, 0, 0.5])
    np.testing.assert_allclose(y[1], [0.25] * 4)
    assert np.isnan(y[2:]).all()  # a +inf, all -inf or NaN row: NaN (PyTorch)
    ls = S.log_softmax_fwd(x)
    assert np.isfinite(ls[:2]).all() and ls[0, 0] == pytest.approx(-math.log(2), rel=1e-3)
    lse = S.logsumexp_fwd(x)
    assert lse[2] == np.inf and lse[3] == -np.inf and np.isnan(lse[4])
    close(lse[:2], [big + math.log(2), -big + math.log(4)], dt, scale=10.0)
    g = np.ones_like(x[:2])
    assert np.isfinite(S.softmax_bwd(g, y[:2])).all() and np.isfinite(S.log_softmax_bwd(g, ls[:2])).all()


def test_softmax_errors_and_empty():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        S.softmax_fwd(x, axis=2)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        S.softmax_bwd(x, np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"grad shape \(3,\)"):
        S.logsumexp_bwd(np.ones(3, np.float32), x, np.ones(2, np.float32))
    assert S.softmax_fwd(np.ones((0, 3))).shape == (0, 3)
    np.testing.assert_array_equal(S.logsumexp_fwd(np.ones((2, 0))), [-np.inf, -np.inf])


# -- cross-entropy ----------------------------------------------------------------------------------

def ref_cross_entropy(x, t, w=None, ignore_index=-100, eps=0.0, reduction="mean"):
    """PyTorch's definition, written out in float64 (class dim 1, or 0 for a 1-D input)."""
    x = np.asarray(x, np.float64)
    if x.ndim == 1:
        x, t = x[None], np.asarray(t)[None]
    x = np.moveaxis(x, 1, -1)
    C = x.shape[-1]
    logp = x - _ref_lse(x)[..., None]
    w = np.ones(C) if w is None else np.asarray(w, np.float64)
    if np.issubdtype(np.asarray(t).dtype, np.floating):  # probabilities
        q = np.moveaxis(np.asarray(t, np.float64), 1, -1) * (1 - eps) + eps / C
        loss = -(q * w * logp).sum(-1)
        return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / loss.size}[reduction]
    t = np.asarray(t)
    keep = t != ignore_index
    tc = np.where(keep, t, 0)
    nll = -np.take_along_axis(logp, tc[..., None], -1)[..., 0] * w[tc]
    smooth = -(logp * w).sum(-1)
    loss = np.where(keep, (1 - eps) * nll + eps / C * smooth, 0.0)
    return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / (w[tc] * keep).sum()}[reduction]


def test_cross_entropy_hand_computed():
    x = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    t = np.array([2, 0])
    w = np.array([1.0, 2.0, 3.0])
    lse0 = math.log(math.e + math.e ** 2 + math.e ** 3)
    expect = (3 * (lse0 - 3) + 1 * math.log(3)) / (3 + 1)  # 'mean' divides by the target weights
    assert float(L.cross_entropy_fwd(x, t, weight=w)[0]) == pytest.approx(expect, rel=1e-14)
    assert float(L.cross_entropy_fwd(np.zeros(4), np.array(1))[0]) == pytest.approx(math.log(4))
    # smoothing 0.3 on 2 uniform classes is still log 2
    assert float(L.cross_entropy_fwd(np.zeros((1, 2)), np.array([0]), label_smoothing=0.3)[0]) == \
        pytest.approx(math.log(2))


CE_CASES = [dict(), dict(weight=True), dict(label_smoothing=0.2), dict(weight=True, label_smoothing=0.1),
            dict(ignore_index=1, weight=True, label_smoothing=0.3), dict(probs=True),
            dict(probs=True, weight=True, label_smoothing=0.15)]
CE_IDS = ["-".join(f"{k}" for k in c) or "plain" for c in CE_CASES]


def _ce_data(dt, case, shape=(6, 5), rng_seed=4):
    rng = np.random.default_rng(rng_seed)
    x = (rng.standard_normal(shape) * 2).astype(dt)
    C = shape[1]
    if case.get("probs"):
        t = rng.random(shape)
        t = (t / t.sum(axis=1, keepdims=True)).astype(dt)
    else:
        sample = (shape[0],) + shape[2:]
        t = rng.integers(0, C, sample)
        t.flat[0] = -100
        t.flat[2] = 1
    w = (rng.random(C) + 0.5).astype(dt) if case.get("weight") else None
    kw = dict(weight=w, label_smoothing=case.get("label_smoothing", 0.0))
    if "ignore_index" in case:
        kw["ignore_index"] = case["ignore_index"]
        if not case.get("probs"):
            t[t == -100] = case["ignore_index"]
    return x, t, kw


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("case", CE_CASES, ids=CE_IDS)
def test_cross_entropy_matches_reference(case, reduction, dt):
    x, t, kw = _ce_data(dt, case)
    loss, lse = L.cross_entropy_fwd(x, t, reduction=reduction, **kw)
    ref = ref_cross_entropy(x, t, kw["weight"], kw.get("ignore_index", -100), kw["label_smoothing"], reduction)
    assert loss.dtype == dt and loss.shape == np.shape(ref)
    close(loss, ref, dt, scale=4.0)
    assert lse.shape == (6,) and lse.dtype == (np.float32 if dt == np.float16 else np.float64)
    close(lse, _ref_lse(x.astype(np.float64)), np.float32 if dt == np.float16 else dt)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("case", CE_CASES, ids=CE_IDS)
def test_cross_entropy_bwd_matches_finite_differences(case, reduction):
    x, t, kw = _ce_data(np.float64, case, shape=(5, 4, 3))  # K-dim: (N, C, d1)
    rng = np.random.default_rng(5)
    g = rng.standard_normal((5, 3)) if reduction == "none" else np.array(1.7)
    _, lse = L.cross_entropy_fwd(x, t, reduction=reduction, **kw)
    gx = L.cross_entropy_bwd(g, x, t, lse, reduction=reduction, **kw)
    assert gx.shape == x.shape
    for seed in range(3):
        v = np.random.default_rng(seed).standard_normal(x.shape)
        num = fd_dir(lambda a: np.sum(g * L.cross_entropy_fwd(a, t, reduction=reduction, **kw)[0]), x, v)
        assert np.sum(gx * v) == pytest.approx(num, rel=1e-6, abs=1e-9)
    if not case.get("probs"):
        ig = kw.get("ignore_index", -100)
        assert (gx[np.broadcast_to((t == ig)[:, None, :], x.shape)] == 0).all()


@pytest.mark.parametrize("dt", DTYPES)
def test_cross_entropy_extreme_logits(dt):
    big = 1024 if dt == np.float16 else 1e4  # NOTE: big - 1 must be representable
    x = np.array([[big, -big, 0.0], [-big, -big, -big], [big, big - 1, -big]], dt)
    t = np.array([0, 2, 1])
    for kw in (dict(), dict(label_smoothing=0.1), dict(weight=np.array([1, 2, 3], dt))):
        loss, lse = L.cross_entropy_fwd(x, t, reduction="none", **kw)
        assert np.isfinite(loss).all() and np.isfinite(lse).all()
        gx = L.cross_entropy_bwd(np.ones(3, dt), x, t, lse, reduction="none", **kw)
        assert np.isfinite(gx).all()
    loss, lse = L.cross_entropy_fwd(x, t, reduction="none")
    close(loss, [0.0, math.log(3), 1 + math.log1p(math.exp(-1))], dt, atol=1e-3 if dt == np.float16 else 1e-6)
    gx = L.cross_entropy_bwd(np.ones(3, dt), x, t, lse, reduction="none")
    close(gx[2], [1 / (1 + math.exp(-1)), 1 / (1 + math.e) - 1, 0.0], dt, atol=2e-3 if dt == np.float16 else 1e-6)


def test_cross_entropy_confident_row_keeps_precision():
    # loss = log(1 + e^-40) ~ 4.2e-18: the (m - x_t) + log(s) form keeps it, lse - x_t would give 0
    x = np.array([[1e4, 1e4 - 40.0]])
    loss, _ = L.cross_entropy_fwd(x, np.array([0]))
    assert float(loss) == pytest.approx(math.exp(-40), rel=1e-9)


def test_cross_entropy_all_ignored_mean_is_nan():
    loss, _ = L.cross_entropy_fwd(np.zeros((2, 3)), np.array([-100, -100]))
    assert np.isnan(loss)
    assert float(L.cross_entropy_fwd(np.zeros((2, 3)), np.array([-100, -100]), reduction="sum")[0]) == 0


def test_cross_entropy_errors():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"target 7 is out of bounds.*\[0, 4\).*ignore_index=-100"):
        L.cross_entropy_fwd(x, np.array([0, 7, 1]))
    with pytest.raises(ValueError, match=r"target -1 is out of bounds"):
        L.cross_entropy_fwd(x, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"target shape \(2,\) does not match logits shape \(3, 4\)"):
        L.cross_entropy_fwd(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"target shape \(3, 3\) does not match logits shape \(3, 4\)"):
        L.cross_entropy_fwd(x, np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match=r"weight shape \(3,\) does not match .*\(3, 4\)"):
        L.cross_entropy_fwd(x, np.array([0, 1, 2]), weight=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="label_smoothing"):
        L.cross_entropy_fwd(x, np.array([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        L.cross_entropy_fwd(x, np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match=r"grad of a 'mean'-reduced loss must be a scalar"):
        L.cross_entropy_bwd(np.ones(3), x, np.array([0, 1, 2]), np.zeros(3))
    with pytest.raises(TypeError, match="integer class indices or floating"):
        L.cross_entropy_fwd(x, np.array([True, False, True]))
    # ignore_index inside the class range is honoured; the same value is not an error
    loss, _ = L.cross_entropy_fwd(x, np.array([3, 3, 1]), ignore_index=3, reduction="none")
    np.testing.assert_allclose(loss, [0, 0, math.log(4)], rtol=1e-6)


# -- nll_loss ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(dt, reduction, weighted):
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((7, 4)) - 2).astype(dt)
    t = rng.integers(0, 4, 7)
    t[3] = -100
    w = (rng.random(4) + 0.5).astype(dt) if weighted else None
    w64 = np.ones(4) if w is None else w.astype(np.float64)
    rows = -x.astype(np.float64)[np.arange(7), np.where(t >= 0, t, 0)] * w64[np.where(t >= 0, t, 0)] * (t >= 0)
    ref = {"none": rows, "sum": rows.sum(), "mean": rows.sum() / (w64[np.where(t >= 0, t, 0)] * (t >= 0)).sum()}
    out = L.nll_loss_fwd(x, t, w, reduction=reduction)
    assert out.dtype == dt
    close(out, ref[reduction], dt, scale=2.0)
    g = rng.standard_normal(7).astype(dt) if reduction == "none" else np.array(0.7, dt)
    gx = L.nll_loss_bwd(g, x, t, w, reduction=reduction)
    if dt == np.float64:
        v = rng.standard_normal(x.shape)
        num = fd_dir(lambda a: np.sum(g * L.nll_loss_fwd(a, t, w, reduction=reduction)), x, v)
        assert np.sum(gx * v) == pytest.approx(num, rel=1e-7)
    assert (gx[3] == 0).all() and np.count_nonzero(gx) <= 6
    with pytest.raises(ValueError, match=r"target 4 is out of bounds"):
        L.nll_loss_fwd(x, np.full(7, 4), w)


# -- binary cross-entropy with logits ---------------------------------------------------------------

def ref_bce(x, t, w=None, pw=None):
    x, t = x.astype(np.float64), t.astype(np.float64)
    w = 1.0 if w is None else w.astype(np.float64)
    pw = 1.0 if pw is None else pw.astype(np.float64)
    return -w * (pw * t * np.log(_sig(x)) + (1 - t) * np.log(1 - _sig(x)))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_with_logits(dt, weighted):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((5, 3)) * 4).astype(dt)
    t = rng.random((5, 3)).astype(dt)
    w = (rng.random((5, 1)) + 0.5).astype(dt) if weighted else None   # broadcast over classes
    pw = np.array([0.5, 2.0, 3.0], dt) if weighted else None          # per class
    ref = ref_bce(x, t, w, pw)
    for red, r in (("none", ref), ("sum", ref.sum()), ("mean", ref.mean())):
        close(L.bce_with_logits_fwd(x, t, w, pw, reduction=red), r, dt, scale=4.0)
    x64, t64 = x.astype(np.float64), t.astype(np.float64)
    w64 = None if w is None else w.astype(np.float64)
    pw64 = None if pw is None else pw.astype(np.float64)
    gx = L.bce_with_logits_bwd(np.array(1.0), x64, t64, w64, pw64, reduction="sum")
    np.testing.assert_allclose(gx, fd(lambda a: ref_bce(a, t64, w64, pw64), x64), rtol=1e-6, atol=1e-9)
    assert L.bce_with_logits_bwd(np.array(1.0, dt), x, t, w, pw).dtype == dt


def test_bce_with_logits_extremes_and_errors():
    x = np.array([1e4, -1e4, 1e4, -1e4, 88.0, -88.0])
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    out = L.bce_with_logits_fwd(x, t, reduction="none")
    np.testing.assert_allclose(out, [0, 0, 1e4, 1e4, math.exp(-88), 88], rtol=1e-12, atol=1e-300)
    assert np.isfinite(L.bce_with_logits_bwd(np.ones(6), x, t, reduction="none")).all()
    assert np.isfinite(L.bce_with_logits_fwd(x.astype(np.float16), t.astype(np.float16), reduction="none")).all()
    with pytest.raises(ValueError, match=r"target shape \(5,\) does not match input shape \(6,\)"):
        L.bce_with_logits_fwd(x, t[:5])
    with pytest.raises(ValueError, match=r"pos_weight shape \(4,\) cannot be broadcast to input shape \(6,\)"):
        L.bce_with_logits_fwd(x, t, pos_weight=np.ones(4))


# -- regression losses ------------------------------------------------------------------------------

POINTWISE = [
    ("mse", L.mse_loss_fwd, L.mse_loss_bwd, {}, lambda d: d * d, lambda d: 2 * d),
    ("l1", L.l1_loss_fwd, L.l1_loss_bwd, {}, np.abs, np.sign),
    ("huber", L.huber_loss_fwd, L.huber_loss_bwd, {"delta": 0.8},
     lambda d: np.where(np.abs(d) < 0.8, 0.5 * d * d, 0.8 * (np.abs(d) - 0.4)), lambda d: np.clip(d, -0.8, 0.8)),
    ("smooth_l1", L.smooth_l1_loss_fwd, L.smooth_l1_loss_bwd, {"beta": 0.5},
     lambda d: np.where(np.abs(d) < 0.5, d * d, np.abs(d) - 0.25), lambda d: np.clip(2 * d, -1, 1)),
    ("smooth_l1_beta0", L.smooth_l1_loss_fwd, L.smooth_l1_loss_bwd, {"beta": 0.0}, np.abs, np.sign),
]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name,fwd,bwd,kw,ref,dref", POINTWISE, ids=[p[0] for p in POINTWISE])
def test_pointwise_losses(name, fwd, bwd, kw, ref, dref, dt):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 6)).astype(dt)
    t = rng.standard_normal((4, 6)).astype(dt)
    t[0, :2] = x[0, :2]  # exact zeros of d: the kink
    d = x.astype(np.float64) - t.astype(np.float64)
    for red, r in (("none", ref(d)), ("sum", ref(d).sum()), ("mean", ref(d).mean())):
        out = fwd(x, t, reduction=red, **kw)
        assert out.dtype == dt and out.shape == np.shape(r)
        close(out, r, dt, scale=4.0)
    g = rng.standard_normal(x.shape).astype(dt)
    close(bwd(g, x, t, reduction="none", **kw), g.astype(np.float64) * dref(d), dt, scale=2.0)
    close(bwd(np.array(3.0, dt), x, t, reduction="mean", **kw), 3.0 * dref(d) / d.size, dt, scale=2.0)
    assert (bwd(np.ones_like(g), x, t, reduction="none", **kw)[0, :2] == 0).all() or name == "mse"
    if dt == np.float64:
        smooth = np.abs(np.abs(d) - kw.get("delta", kw.get("beta", -1))) > 1e-4
        smooth &= np.abs(d) > 1e-4
        num = fd(lambda a: fwd(a, t, reduction="none", **kw), x)
        np.testing.assert_allclose(bwd(np.ones_like(x), x, t, reduction="none", **kw)[smooth], num[smooth],
                                   rtol=1e-6, atol=1e-8)


def test_pointwise_loss_edge_cases():
    with pytest.raises(ValueError, match=r"target shape \(2,\) does not match input shape \(3,\)"):
        L.mse_loss_fwd(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="grad shape"):
        L.mse_loss_bwd(np.ones(2), np.ones(3), np.ones(3), reduction="none")
    assert np.isnan(L.mse_loss_fwd(np.ones(0), np.ones(0)))
    assert float(L.l1_loss_fwd(np.ones(0), np.ones(0), reduction="sum")) == 0
    assert np.isnan(L.l1_loss_fwd(np.array([np.nan, 1.0]), np.zeros(2), reduction="none")[0])
    assert L.huber_loss_fwd(np.array([1e4]), np.array([-1e4]), reduction="none")[0] == 2e4 - 0.5


# -- loader (the parts that need no GPU) ----------------------------------------------------------

def test_loader_finds_sources_and_names_kernels():
    from gpugrad.fused import cuda as loader  # noqa: PLC0415
    d = loader.kernels_dir()
    assert d == ROOT / "kernels" or d.name == "_kernels"
    assert {"common.cuh", "activation.cu", "softmax.cu", "loss.cu"} <= {p.name for p in d.iterdir()}
    assert loader.name_expression("gpugrad_relu_fwd", np.float16) == "gpugrad_relu_fwd<__half>"
    assert loader.name_expression("gpugrad_adam_step<float>", np.float64) == "gpugrad_adam_step<float>"
    with pytest.raises(TypeError, match="int32"):
        loader.ctype(np.int32)
    assert set(loader.registered_kernels("activation.cu")) == {f"gpugrad_{n}_{d}" for n in A.ACTIVATIONS
                                                               for d in ("fwd", "bwd")}
    assert "gpugrad_cross_entropy_bwd" in loader.registered_kernels("loss.cu")
    assert loader.row_launch(10, 7) == ((3, 1, 1), (32, 4, 1))
    assert loader.row_launch(2, 20000) == ((2, 1, 1), (1024, 1, 1))
    assert loader.elementwise_grid(10**9, 4) == 65535 * 8 and loader.elementwise_grid(1, 8) == 1


def test_import_never_touches_cuda():
    import subprocess  # noqa: PLC0415
    code = ("import sys; import gpugrad, gpugrad.fused.activation, gpugrad.fused.softmax, "
            "gpugrad.fused.loss; sys.exit(1 if 'cupy' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_get_kernel_without_cuda_says_why():
    from gpugrad.backend import CudaUnavailableError, cuda  # noqa: PLC0415
    from gpugrad.fused import cuda as loader  # noqa: PLC0415
    if cuda.why_unavailable() is None:
        pytest.skip("CUDA is available here; the no-CUDA error path cannot be observed")
    with pytest.raises(CudaUnavailableError, match="CuPy|CUDA"):
        loader.get_kernel("activation.cu", "gpugrad_relu_fwd", np.float32, 0)


@pytest.mark.parametrize("dt", DTYPES)
def test_fallbacks_never_modify_their_inputs(dt):
    for name, params, _, _ in ACT_REF:
        for shape in ((), (5,)):
            x = np.full(shape, -0.75, dt)
            g = np.full(shape, 2.0, dt)
            y = A.activation_fwd(name, x, **params)
            _bwd(name, g, x, params)
            assert (x == dt(-0.75)).all() and (g == 2).all(), name
            assert y.shape == shape
    x = np.full((2, 3), -0.5, dt)
    b = np.full(3, 0.25, dt)
    S.softmax_bwd(np.ones_like(x), S.softmax_fwd(x))
    L.cross_entropy_bwd(np.array(1.0, dt), x, np.array([0, 2]), L.cross_entropy_fwd(x, np.array([0, 2]))[1])
    L.huber_loss_bwd(np.array(1.0, dt), x, b[None].repeat(2, 0))
    assert (x == dt(-0.5)).all() and (b == dt(0.25)).all()


def test_gelu_with_the_pure_numpy_erfc(monkeypatch):
    from gpugrad.fused import _common  # noqa: PLC0415
    monkeypatch.setattr(_common, "_scipy_erfc", False)
    name, params, ref, dref = ACT_REF[6]
    assert name == "gelu" and not params
    for dt in (np.float32, np.float64):
        x = _act_points(dt)
        close(A.activation_fwd("gelu", x), ref(x.astype(np.float64)), dt)
        close(_bwd("gelu", np.ones_like(x), x, {}), dref(x.astype(np.float64)), dt)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 10), (5, 3), (100, 600)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_small_fast_path_matches_general_path(dt, shape, reduction):
    """The small-input CPU fast path (no weight) gives the general path's numbers (weight=ones forces it)."""
    from gpugrad.fused import loss as L
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 6).astype(dt)
    t = rng.integers(0, shape[1], shape[0])
    assert L._fast(x, t, None, -100, 0.0, reduction)
    ones = np.ones(shape[1], dt)
    loss, lse = L.cross_entropy_fwd(x, t, reduction=reduction)
    loss_g, lse_g = L.cross_entropy_fwd(x, t, weight=ones, reduction=reduction)
    np.testing.assert_allclose(loss, loss_g, rtol=1e-6)
    np.testing.assert_array_equal(lse, lse_g)
    g = np.asarray(0.7, dt)
    gx = L.cross_entropy_bwd(g, x, t, lse, reduction=reduction)
    gx_g = L.cross_entropy_bwd(g, x, t, lse_g, weight=ones, reduction=reduction)
    assert gx.dtype == dt
    # NOTE: at the target class p - 1 cancels; both paths round p once, so allow a few ulps of max|gx|
    np.testing.assert_allclose(gx, gx_g, rtol=1e-5, atol=4 * np.finfo(dt).eps * float(np.abs(gx_g).max()))
    # a target out of range or a present ignore_index never takes the fast path
    bad = t.copy()
    bad[0] = shape[1]
    assert not L._fast(x, bad, None, -100, 0.0, reduction)
    assert not L._fast(x, t, None, 0, 0.0, reduction)


# -- bfloat16 storage: as float16, computed in float32 and rounded once -------------------------------

def _bf16():
    from gpugrad import _dtypes  # noqa: PLC0415
    try:
        return _dtypes.bfloat16()  # NOTE: loads ml_dtypes (gpugrad loads it lazily)
    except TypeError:
        pytest.skip("bfloat16 needs ml_dtypes")


def test_bfloat16_fallbacks_are_the_float32_ones_rounded_once():
    """Every family on bfloat16 arrays = the float32 fallback on the same (exactly widened) values, rounded once to
    bfloat16, bit for bit; the losses reduce in float32 (a bfloat16 running sum would be far off)."""
    from gpugrad.fused import amp as AMP  # noqa: PLC0415
    from gpugrad.fused import attention as AT  # noqa: PLC0415
    from gpugrad.fused import rnn as R  # noqa: PLC0415
    bf = _bf16()
    rng = np.random.default_rng(0)
    x, q = (rng.standard_normal((6, 40)) * 3).astype(bf), rng.random((6, 40)).astype(bf)
    f = lambda a: a.astype(np.float32)  # noqa: E731

    def same(got, want32, what):
        want = np.asarray(want32)
        assert got.dtype == bf and want.dtype == np.float32 and got.shape == want.shape, (what, got.dtype, want.dtype)
        np.testing.assert_array_equal(got.view(np.uint16), want.astype(bf).view(np.uint16), err_msg=what)

    for op, params in A.table_cases():
        p = op.values(params)
        same(A.fwd(op, x, p), A.fwd(op, f(x), p), A.case_id(op, params))
        s = A.fwd(op, x, p) if op.saves_output(p) else x
        same(A.bwd(op, q, s, p), A.bwd(op, f(q), f(s), p), A.case_id(op, params) + " bwd")
    for fwd, bwd in ((S.softmax_fwd, S.softmax_bwd), (S.log_softmax_fwd, S.log_softmax_bwd)):
        y = fwd(x)
        same(y, fwd(f(x)), fwd.__name__)
        same(bwd(q, y), bwd(f(q), f(y)), bwd.__name__)
    same(S.logsumexp_fwd(x), S.logsumexp_fwd(f(x)), "logsumexp")
    t, w = rng.integers(0, 40, 6), (rng.random(40) + 0.5).astype(bf)
    for red in ("none", "mean", "sum"):
        loss, lse = L.cross_entropy_fwd(x, t, reduction=red)
        loss32, lse64 = L.cross_entropy_fwd(f(x), t, reduction=red)
        same(loss, loss32, f"cross_entropy {red}")
        assert lse.dtype == np.float32 and np.allclose(lse, lse64, rtol=2e-7)  # NOTE: the wide dtype is float32
        same(L.nll_loss_fwd(x, t, w, reduction=red), L.nll_loss_fwd(f(x), t, f(w), reduction=red), f"nll {red}")
        for name in ("mse", "l1", "huber", "smooth_l1"):
            same(getattr(L, f"{name}_loss_fwd")(x, q, reduction=red), getattr(L, f"{name}_loss_fwd")(f(x), f(q), reduction=red),
                 f"{name} {red}")
        same(L.bce_with_logits_fwd(x, q, w, w, reduction=red), L.bce_with_logits_fwd(f(x), f(q), f(w), f(w), reduction=red),
             f"bce {red}")
        g = np.asarray(rng.random(6 if red == "none" else ()), bf)
        gx = L.cross_entropy_bwd(g, x, t, lse, reduction=red)
        assert gx.dtype == bf
        np.testing.assert_allclose(f(gx), L.cross_entropy_bwd(f(g), f(x), t, lse64, reduction=red), rtol=2 ** -8,
                                   atol=2 ** -8 * float(np.abs(f(gx)).max()))
    u = rng.uniform(1, 2, 1 << 14).astype(bf)
    total = float(L.mse_loss_fwd(u, np.zeros_like(u), reduction="sum"))
    assert abs(total - (f(u).astype(np.float64) ** 2).sum()) <= 2 ** -8 * total  # one rounding of a float32 sum
    gs, found = [x.copy()], np.zeros(1, np.float32)
    AMP.unscale_(gs, np.array([1 / 3], np.float32), found)
    same(gs[0], f(x) * np.float32(1 / 3), "amp unscale")
    qk = (rng.standard_normal((2, 2, 5, 8)) * 2).astype(bf)
    bias = np.where(rng.random((1, 1, 5, 5)) < 0.2, -np.inf, rng.standard_normal((1, 1, 5, 5))).astype(bf)
    same(AT.attention_fwd(qk, qk, qk, bias=bias)[0], AT.attention_fwd(f(qk), f(qk), f(qk), bias=f(bias))[0], "attention")
    xg, h0 = (rng.standard_normal((3, 16)) * 2).astype(bf), rng.standard_normal((3, 4)).astype(bf)
    for got, want in ((R.lstm_cell_fwd(xg, xg[::-1], h0), R.lstm_cell_fwd(f(xg), f(xg[::-1]), f(h0))),
                      (R.gru_cell_fwd(xg[:, :12], xg[::-1, :12], h0), R.gru_cell_fwd(f(xg[:, :12]), f(xg[::-1, :12]), f(h0))),
                      ((R.rnn_cell_fwd("tanh", h0, h0[::-1]),), (R.rnn_cell_fwd("tanh", f(h0), f(h0[::-1])),))):
        for k, (a, b) in enumerate(zip(got, want)):
            same(a, b, f"cell output {k}")
    with pytest.raises(TypeError, match="bfloat16, float16, float32 or float64, got int32"):
        S.softmax_fwd(np.ones(3, np.int32))
