"""Fused losses (gpugrad.ops.loss) through autograd: cross_entropy, nll_loss,
binary_cross_entropy_with_logits, mse/l1/huber/smooth_l1.

Values against NumPy references and hand-computed numbers (weights, ignore_index, label smoothing,
reductions, layouts), each loss against its composite (values and gradients, extremes included),
gradcheck and gradgradcheck, the cross-entropy Hessian in closed form, float16, what the node keeps,
and the error messages.
"""
import math

import numpy as np
import pytest
from conftest import to_np
from test_fused_ops import T, against_composite, data

import gpugrad as gg
from gpugrad.autograd import gradcheck, gradgradcheck
from gpugrad.nn import functional as F

REDUCTIONS = ["none", "mean", "sum"]


def I(a, device):  # noqa: E743
    return gg.tensor(np.asarray(a, dtype=np.int64), device=device)


# -- NumPy references -------------------------------------------------------------------------------
def _rows(x):
    """(rows, C) with the class dim (1, or 0 for 1-D logits) last, and the per-sample shape."""
    cdim = 1 if x.ndim >= 2 else 0
    xm = np.moveaxis(x, cdim, -1)
    return xm.reshape(-1, x.shape[cdim]), xm.shape[:-1]


def _logp(xr):
    m = xr.max(1, keepdims=True)
    return xr - m - np.log(np.exp(xr - m).sum(1, keepdims=True))


def _reduce(rows, reduction, shape, denom):
    return rows.reshape(shape) if reduction == "none" else rows.sum() if reduction == "sum" else rows.sum() / denom


def ce_ref(x, t, w=None, ig=-100, eps=0.0, reduction="mean"):
    xr, shape = _rows(x)
    c = xr.shape[1]
    logp, w = _logp(xr), np.ones(c) if w is None else w
    if t.dtype.kind == "f":
        q = _rows(t)[0] * (1 - eps) + eps / c
        return _reduce(-(logp * q * w).sum(1), reduction, shape, len(xr))
    t = t.reshape(-1)
    valid = t != ig
    tc = np.where(valid, t, 0)
    nll = -logp[np.arange(len(t)), tc] * w[tc]
    rows = np.where(valid, (1 - eps) * nll - eps / c * (logp * w).sum(1), 0)
    return _reduce(rows, reduction, shape, (w[tc] * valid).sum())


def bce_ref(x, t, w=None, pw=None, reduction="mean"):
    lw = 1 if pw is None else 1 + (pw - 1) * t
    r = ((1 - t) * x + lw * np.logaddexp(0, -x)) * (1 if w is None else w)
    return _reduce(r, reduction, r.shape, r.size)


def pointwise_ref(name, x, t, p, reduction):
    d = x - t
    a = np.abs(d)
    r = {"mse_loss": d * d, "l1_loss": a,
         "huber_loss": np.where(a < p, 0.5 * d * d, p * (a - 0.5 * p)),
         "smooth_l1_loss": a if p == 0 else np.where(a < p, 0.5 * d * d / p, a - 0.5 * p)}[name]
    return _reduce(r, reduction, r.shape, r.size)


# -- cross_entropy ------------------------------------------------------------------------------------
LAYOUTS = [(5,), (6, 5), (2, 5, 3, 2)]  # logits (C,), (N, C), (N, C, d1, d2)


def _targets(shape, seed, ignore=True):
    cdim = 1 if len(shape) >= 2 else 0
    sshape = shape[:cdim] + shape[cdim + 1:]
    t = np.random.default_rng(seed).integers(0, shape[cdim], sshape)
    if ignore and t.ndim:
        t.reshape(-1)[1] = -100
    return t


@pytest.mark.parametrize("shape", LAYOUTS, ids=str)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_indices(shape, weighted, eps, reduction, device):
    xa, ta = data(shape), _targets(shape, 1)
    wa = np.random.default_rng(2).uniform(0.5, 2, shape[1 if len(shape) >= 2 else 0]) if weighted else None
    x = T(xa, device)
    kw = dict(weight=None if wa is None else T(wa, device, grad=False), label_smoothing=eps, reduction=reduction)
    y = F.cross_entropy(x, I(ta, device), **kw)
    np.testing.assert_allclose(to_np(y), ce_ref(xa, ta, wa, -100, eps, reduction), rtol=1e-12, atol=1e-12)
    against_composite(y, [x])


@pytest.mark.parametrize("shape", [(6, 5), (2, 5, 3)], ids=str)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_probabilities(shape, weighted, reduction, device):
    xa = data(shape)
    qa = np.random.default_rng(3).dirichlet(np.ones(shape[1]), size=(shape[0],) + shape[2:])
    qa = np.moveaxis(qa, -1, 1)
    wa = np.random.default_rng(2).uniform(0.5, 2, shape[1]) if weighted else None
    x, q = T(xa, device), T(qa, device)
    y = F.cross_entropy(x, q, weight=None if wa is None else T(wa, device, grad=False), reduction=reduction,
                        label_smoothing=0.1)
    np.testing.assert_allclose(to_np(y), ce_ref(xa, qa, wa, eps=0.1, reduction=reduction), rtol=1e-12, atol=1e-12)
    against_composite(y, [x, q])  # the target gets its gradient too, as in PyTorch


def test_cross_entropy_by_hand(device):
    x = T(np.log([[1.0, 2.0, 5.0], [1.0, 1.0, 1.0]]), device)
    t = I([2, 0], device)
    l0, l1 = math.log(8 / 5), math.log(3)
    assert F.cross_entropy(x, t).item() == pytest.approx((l0 + l1) / 2, rel=1e-14)
    # weights: mean divides by the summed weight of the targets
    w = T([3.0, 1.0, 2.0], device, grad=False)
    assert F.cross_entropy(x, t, weight=w).item() == pytest.approx((2 * l0 + 3 * l1) / 5, rel=1e-14)
    # ignore_index: the row counts neither in the sum nor in the mean's denominator
    assert F.cross_entropy(x, I([2, 1], device), ignore_index=1).item() == pytest.approx(l0, rel=1e-14)
    assert F.cross_entropy(x, I([-100, -100], device), reduction="sum").item() == 0
    assert math.isnan(F.cross_entropy(x, I([-100, -100], device)).item())
    # label smoothing: (1 - eps) nll + eps/C * sum_c -log p_c
    s0 = (1 - 0.3) * l0 + 0.1 * (math.log(8) + math.log(4) + math.log(8 / 5))
    s1 = math.log(3)
    np.testing.assert_allclose(to_np(F.cross_entropy(x, t, label_smoothing=0.3, reduction="none")), [s0, s1],
                               rtol=1e-14)
    # label smoothing with weights: the smoothing term is weighted by w_c, the mean by w[t]
    sw = (1 - 0.3) * 2 * l0 + 0.1 * (3 * math.log(8) + 1 * math.log(4) + 2 * math.log(8 / 5))
    got = F.cross_entropy(x[:1], t[:1], weight=w, label_smoothing=0.3).item()
    assert got == pytest.approx(sw / 2, rel=1e-14)
    # class probabilities: 'mean' divides by the number of samples
    q = T([[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]], device, grad=False)
    assert F.cross_entropy(x, q).item() == pytest.approx((0.5 * math.log(8) + 0.5 * l0 + l1) / 2, rel=1e-14)


@pytest.mark.parametrize("case", ["index", "weighted_ignore_smooth", "nd", "prob"])
def test_cross_entropy_gradcheck_and_gradgradcheck(case, device):
    x = T(data((3, 4), seed=4, extremes=False, scale=1.0), device)
    w = T([0.5, 1.0, 2.0, 1.5], device, grad=False)
    if case == "index":
        f = lambda a: F.cross_entropy(a, I([0, 3, 1], device))  # noqa: E731
    elif case == "weighted_ignore_smooth":
        f = lambda a: F.cross_entropy(a, I([0, -100, 2], device), weight=w, label_smoothing=0.2)  # noqa: E731
    elif case == "nd":
        x = T(data((2, 3, 2), seed=4, extremes=False, scale=1.0), device)
        f = lambda a: F.cross_entropy(a, I([[0, 2], [1, 1]], device), reduction="sum")  # noqa: E731
    else:
        q = T(np.random.default_rng(5).dirichlet(np.ones(4), 3), device)
        assert gradcheck(lambda a, b: F.cross_entropy(a, b, weight=w, label_smoothing=0.1), (x, q))
        assert gradgradcheck(lambda a, b: F.cross_entropy(a, b, reduction="none"), (x, q))
        return
    assert gradcheck(f, (x,))
    assert gradgradcheck(f, (x,))


def test_cross_entropy_hessian_closed_form(device):
    xa = data((3, 4), seed=6, extremes=False, scale=1.0)
    t = I([1, 0, 3], device)
    H = to_np(gg.func.hessian(lambda a: F.cross_entropy(a, t))(T(xa, device))).reshape(12, 12)
    p = np.exp(_logp(xa))
    want = np.zeros((12, 12))
    for i in range(3):
        want[4 * i:4 * i + 4, 4 * i:4 * i + 4] = (np.diag(p[i]) - np.outer(p[i], p[i])) / 3
    np.testing.assert_allclose(H, want, rtol=1e-10, atol=1e-14)


def test_cross_entropy_extreme_logits_are_finite(device):
    x = T([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [20.0, -20.0, 20.0]], device)
    t = I([1, 2, 0], device)
    y = F.cross_entropy(x, t, label_smoothing=0.1, reduction="none")
    np.testing.assert_allclose(to_np(y), ce_ref(to_np(x), to_np(t), eps=0.1, reduction="none"), rtol=1e-12)
    against_composite(y, [x])


def test_cross_entropy_node_keeps_only_the_lse(device):
    x = T(data((64, 10)), device)
    y = F.cross_entropy(x, I(_targets((64, 10), 7), device), weight=T(np.ones(10), device, grad=False))
    node = y.grad_fn
    (lse,) = node.extra
    assert lse.shape == (64,)
    kept = [v for k, v in vars(node).items() if k != "inputs" and hasattr(v, "shape")] + list(node.extra)
    kept += [v for d in (node.params, node.kp) for v in d.values() if hasattr(v, "shape")]
    assert all(a.size <= 64 for a in kept), [a.shape for a in kept]


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_cross_entropy_narrow_dtypes(dtype, device):
    xa = np.float16(data((8, 50), extremes=False)).astype(np.float64)
    ta = _targets((8, 50), 8)
    xn, xd = T(xa, device, dtype), T(xa, device)
    yn, yd = F.cross_entropy(xn, I(ta, device), label_smoothing=0.1), F.cross_entropy(xd, I(ta, device),
                                                                                      label_smoothing=0.1)
    assert yn.dtype == np.dtype(dtype)
    tol = 1e-3 if dtype == "float16" else 1e-6
    np.testing.assert_allclose(float(yn.item()), yd.item(), rtol=tol)
    yn.backward()
    yd.backward()
    assert xn.grad.dtype == np.dtype(dtype)
    np.testing.assert_allclose(to_np(xn.grad).astype(np.float64), to_np(xd.grad), rtol=tol, atol=tol * 1e-2)


# -- nll_loss ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction, device):
    lpa = _logp(data((5, 4), extremes=False))
    lp, ta, wa = T(lpa, device), np.array([0, 3, -100, 2, 2]), np.array([1.0, 2.0, 0.5, 3.0])
    y = F.nll_loss(lp, I(ta, device), weight=T(wa, device, grad=False), reduction=reduction)
    valid = ta != -100
    rows = np.where(valid, -lpa[np.arange(5), np.where(valid, ta, 0)] * wa[np.where(valid, ta, 0)], 0)
    want = _reduce(rows, reduction, (5,), (wa[np.where(valid, ta, 0)] * valid).sum())
    np.testing.assert_allclose(to_np(y), want, rtol=1e-13)
    against_composite(y, [lp])
    f = lambda a: F.nll_loss(a, I(ta, device), weight=T(wa, device, grad=False), reduction=reduction)  # noqa: E731
    assert gradcheck(f, (lp,)) and gradgradcheck(f, (lp,))
    # cross_entropy == nll_loss(log_softmax)
    x = T(data((5, 4), seed=3), device)
    np.testing.assert_allclose(to_np(F.nll_loss(F.log_softmax(x, 1), I(ta, device), reduction=reduction)),
                               to_np(F.cross_entropy(x, I(ta, device), reduction=reduction)), rtol=1e-12)


# -- binary_cross_entropy_with_logits --------------------------------------------------------------------
@pytest.mark.parametrize("weights", ["none", "weight", "pos_weight", "both"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(weights, reduction, device):
    xa, ta = data((4, 3)), np.random.default_rng(9).uniform(0, 1, (4, 3))
    wa = np.array([0.5, 1.0, 2.0]) if weights in ("weight", "both") else None
    pa = np.array([[3.0], [1.0], [0.5], [2.0]]) if weights in ("pos_weight", "both") else None
    x, t = T(xa, device), T(ta, device)
    kw = {k: T(v, device, grad=False) for k, v in (("weight", wa), ("pos_weight", pa)) if v is not None}
    y = F.binary_cross_entropy_with_logits(x, t, reduction=reduction, **kw)
    np.testing.assert_allclose(to_np(y), bce_ref(xa, ta, wa, pa, reduction), rtol=1e-12, atol=1e-12)
    against_composite(y, [x, t])
    xs, ts = T(data((2, 3), seed=10, extremes=False), device), T([[0.2, 1.0, 0.0], [0.7, 0.5, 0.1]], device)
    f = lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction, **kw)  # noqa: E731
    if pa is not None:
        kw["pos_weight"] = T([1.5, 0.5, 2.0], device, grad=False)
    assert gradcheck(f, (xs, ts)) and gradgradcheck(f, (xs, ts))


def test_bce_by_hand_and_extremes(device):
    x, t = T([0.0, 1e4, -1e4, 20.0], device), T([1.0, 0.0, 0.0, 1.0], device)
    y = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(to_np(y), [math.log(2), 1e4, 0.0, math.log1p(math.exp(-20))], rtol=1e-14)
    y.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [-0.5, 1.0, 0.0, -1 / (1 + math.exp(20))], rtol=1e-14)


# -- mse / l1 / huber / smooth_l1 ------------------------------------------------------------------------
POINTWISE = [("mse_loss", {}, 0.0), ("l1_loss", {}, 0.0), ("huber_loss", {"delta": 0.7}, 0.7),
             ("smooth_l1_loss", {"beta": 1.5}, 1.5), ("smooth_l1_loss", {"beta": 0.0}, 0.0)]


@pytest.mark.parametrize("name,kw,p", POINTWISE, ids=[f"{n}{p}" for n, _, p in POINTWISE])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_pointwise_losses(name, kw, p, reduction, device):
    xa, ta = data((3, 4)), data((3, 4), seed=11, extremes=False)
    x, t = T(xa, device), T(ta, device)
    y = getattr(F, name)(x, t, reduction=reduction, **kw)
    np.testing.assert_allclose(to_np(y), pointwise_ref(name, xa, ta, p, reduction), rtol=1e-12, atol=1e-12)
    gx, gt = against_composite(y, [x, t])
    np.testing.assert_allclose(to_np(gt), -to_np(gx), rtol=1e-15)
    # finite differences need |x - t| away from 0 and from the delta/beta kink
    xs = T([[0.3, -1.2, 2.5], [1.9, -0.4, 0.05]], device)
    ts = T([[-0.5, 0.1, 0.2], [0.0, 0.9, -0.6]], device)
    f = lambda a, b: getattr(F, name)(a, b, reduction=reduction, **kw)  # noqa: E731
    assert gradcheck(f, (xs, ts)) and gradgradcheck(f, (xs, ts))


def test_pointwise_broadcast_warns_like_pytorch(device):
    x, t = T(data((3, 4), extremes=False), device), T([1.0, 2.0, 3.0, 4.0], device)
    with pytest.warns(UserWarning, match=r"target size \(4,\).*input size \(3, 4\)"):
        y = F.mse_loss(x, t, reduction="sum")
    np.testing.assert_allclose(to_np(y), ((to_np(x) - to_np(t)) ** 2).sum(), rtol=1e-13)
    y.backward()
    np.testing.assert_allclose(to_np(t.grad), -2 * (to_np(x) - to_np(t)).sum(0), rtol=1e-13)
    with pytest.raises(ValueError, match=r"target shape \(5,\) does not match input shape \(3, 4\)"):
        F.l1_loss(x, T(np.zeros(5), device))


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss"])
def test_pointwise_float16(name, device):
    xa, ta = (np.float16(data((64,), s, extremes=False)).astype(np.float64) for s in (12, 13))
    yh = getattr(F, name)(T(xa, device, "float16"), T(ta, device, "float16"))
    assert yh.dtype == np.float16
    np.testing.assert_allclose(float(yh.item()), pointwise_ref(name, xa, ta, 1.0, "mean"), rtol=2e-3)


def test_legacy_reduction_arguments(device):
    x, t = T([1.0, 2.0], device), T([0.0, 0.0], device)
    with pytest.warns(UserWarning, match="size_average and reduce"):
        assert F.mse_loss(x, t, size_average=False).item() == 5.0
    with pytest.warns(UserWarning):
        assert F.mse_loss(x, t, reduce=False).shape == (2,)


def test_loss_modules_compute_the_fused_losses(device):
    x, t = T(data((4, 3), extremes=False), device), I([0, 2, 1, 1], device)
    w = T([1.0, 2.0, 0.5], device, grad=False)
    m = gg.nn.CrossEntropyLoss(weight=w, label_smoothing=0.1, ignore_index=2)
    np.testing.assert_allclose(to_np(m(x, t)), ce_ref(to_np(x), to_np(t), to_np(w), 2, 0.1), rtol=1e-12)


# -- errors --------------------------------------------------------------------------------------------------
def test_loss_errors(device):
    x = T(data((4, 3), extremes=False), device)
    with pytest.raises(ValueError, match=r"target 7 is out of bounds.*\[0, 3\)"):
        F.cross_entropy(x, I([0, 7, 1, -100], device))
    with pytest.raises(ValueError, match=r"target -3 is out of bounds"):
        F.nll_loss(x, I([0, -3, 1, 1], device))
    F.cross_entropy(x, I([0, 5, 1, 1], device), ignore_index=5)  # the ignored value may be anything
    with pytest.raises(ValueError, match=r"target shape \(5,\).*\(4, 3\)"):
        F.cross_entropy(x, I([0, 1, 2, 0, 1], device))
    with pytest.raises(ValueError, match=r"target shape \(4, 2\).*\(4, 3\)"):
        F.cross_entropy(x, T(np.full((4, 2), 0.5), device))
    # NOTE: PyTorch's RuntimeError and wording for class-index targets of another dtype than Long/Byte
    with pytest.raises(RuntimeError, match=r"expected target dtype to be Long or Byte, but got Double \(cross_entropy: "
                                           r"a target of shape \(4,\) looks like class indices; use target.long\(\)"):
        F.cross_entropy(x, T([0.0, 1.0, 2.0, 0.0], device))
    with pytest.raises(RuntimeError, match="^expected target dtype to be Long or Byte, but got Double$"):
        F.nll_loss(x, T([0.0, 1.0, 2.0, 0.0], device))
    with pytest.raises(RuntimeError, match="^expected target dtype to be Long or Byte, but got Bool$"):
        F.cross_entropy(x, gg.tensor([True, False, True, True], device=device))
    with pytest.raises(RuntimeError, match="^expected target dtype to be Long or Byte, but got Int$"):
        F.nll_loss(x, gg.tensor([0, 1, 2, 0], dtype=gg.int32, device=device))
    with pytest.raises(ValueError, match=r"weight shape \(4,\).*3 classes"):
        F.cross_entropy(x, I([0, 1, 2, 0], device), weight=T(np.ones(4), device, grad=False))
    with pytest.raises(NotImplementedError, match="weight"):
        F.cross_entropy(x, I([0, 1, 2, 0], device), weight=T(np.ones(3), device))
    with pytest.raises(ValueError, match=r"target shape \(4,\) does not match input shape \(4, 3\)"):
        F.binary_cross_entropy_with_logits(x, T(np.zeros(4), device))
    with pytest.raises(ValueError, match=r"pos_weight shape \(2,\).*\(4, 3\)"):
        F.binary_cross_entropy_with_logits(x, T(np.zeros((4, 3)), device), pos_weight=T([1.0, 2.0], device, grad=False))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(x, x, reduction="avg")
    with pytest.raises(TypeError, match="float16, float32 or float64, got int64"):
        F.cross_entropy(I([[1, 2]], device), I([0], device))
    with pytest.raises(TypeError, match="target must be a Tensor"):
        F.cross_entropy(x, [0, 1, 2, 0])
