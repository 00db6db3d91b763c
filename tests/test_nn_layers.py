"""gg.nn layers: parameter shapes and init, forward semantics, gradchecks through modules, train/eval."""
import math

import numpy as np
import pytest
from conftest import to_np

import gpugrad as gg
from gpugrad import nn
from gpugrad.autograd import gradcheck
from gpugrad.nn import functional as F


def rnd(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def T(a, device, grad=True):
    return gg.tensor(np.asarray(a, dtype=np.float64), device=device, requires_grad=grad)


def check_module(m, x):
    """gradcheck a module's output with respect to its input and all its parameters (float64)."""
    # NOTE: gradcheck perturbs the arrays of the tensors it is given in place, so passing the
    # parameters themselves makes the module see the perturbations.
    return gradcheck(lambda x, *ps: m(x), (x, *m.parameters()))


# -------------------------------------------------------------------------------------------- Linear
def test_linear_shapes_init_and_gradcheck(device):
    m = nn.Linear(20, 7, device=device)
    assert m.weight.shape == (7, 20) and m.bias.shape == (7,)
    assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad and m.weight.dtype == gg.float32
    bound = 1 / math.sqrt(20)
    assert np.abs(to_np(m.weight.detach())).max() <= bound and np.abs(to_np(m.bias.detach())).max() <= bound
    assert np.abs(to_np(m.weight.detach())).max() > 0.8 * bound  # uses the full range
    y = m(gg.ones(3, 20, device=device))
    np.testing.assert_allclose(to_np(y.detach()), (to_np(m.weight.detach()).sum(1) + to_np(m.bias.detach()))[None]
                               .repeat(3, 0), rtol=1e-5)
    m64 = nn.Linear(3, 2, dtype="float64", device=device)
    assert check_module(m64, T(rnd(2, 3), device))
    nb = nn.Linear(3, 2, bias=False)
    assert nb.bias is None and [n for n, _ in nb.named_parameters()] == ["weight"]
    assert repr(nb) == "Linear(in_features=3, out_features=2, bias=False)"


# -------------------------------------------------------------------------------------------- Conv2d
def test_conv2d_module(device):
    m = nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2, device=device, dtype="float64")
    assert m.weight.shape == (6, 2, 3, 2) and m.bias.shape == (6,)
    bound = 1 / math.sqrt(2 * 3 * 2)
    assert np.abs(to_np(m.weight.detach())).max() <= bound and np.abs(to_np(m.bias.detach())).max() <= bound
    x = T(rnd(1, 4, 5, 6), device)
    ref = F.conv2d(x, m.weight, m.bias, 2, 1, (1, 2), 2)
    np.testing.assert_array_equal(to_np(m(x).detach()), to_np(ref.detach()))
    assert check_module(m, x)
    assert "Conv2d(4, 6, kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), dilation=(1, 2), groups=2)" == repr(m)
    with pytest.raises(ValueError):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError):
        nn.Conv2d(2, 4, 3, stride=2, padding="same")


def test_conv2d_same_and_padding_modes(device):
    m = nn.Conv2d(2, 3, 4, padding="same", device=device)
    assert m(gg.randn(2, 2, 7, 5, device=device)).shape == (2, 3, 7, 5)
    r = nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect", bias=False, device=device, dtype="float64")
    x = T(rnd(1, 1, 4, 5), device)
    xp = np.pad(to_np(x.detach()), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    ref = F.conv2d(gg.tensor(xp, device=device), r.weight.detach())
    np.testing.assert_allclose(to_np(r(x).detach()), to_np(ref), rtol=1e-12)
    assert check_module(r, x)


# ------------------------------------------------------------------------------------------- pooling
def test_pool_modules(device):
    x = T(rnd(2, 3, 6, 6), device)
    mp = nn.MaxPool2d(3, stride=None, padding=1)
    assert mp.stride == 3
    np.testing.assert_array_equal(to_np(mp(x).detach()), to_np(F.max_pool2d(x, 3, 3, 1).detach()))
    ap = nn.AvgPool2d(2, 1, count_include_pad=False)
    np.testing.assert_array_equal(to_np(ap(x).detach()), to_np(F.avg_pool2d(x, 2, 1).detach()))
    aa = nn.AdaptiveAvgPool2d((1, 1))
    np.testing.assert_allclose(to_np(aa(x).detach())[..., 0, 0], to_np(x.detach()).mean((2, 3)), rtol=1e-12)
    out, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert out.shape == idx.shape == (2, 3, 3, 3) and idx.dtype == gg.int64
    assert "MaxPool2d(kernel_size=3, stride=3, padding=1" in repr(mp)


# ----------------------------------------------------------------------------------------- BatchNorm
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_running_stats_closed_form(momentum, device):
    bn = nn.BatchNorm2d(3, momentum=momentum, device=device, dtype="float64")
    xs = [rnd(4, 3, 2, 2, seed=s) * (s + 1) + s for s in range(4)]
    for x in xs:
        bn(gg.tensor(x, device=device))
    means = [x.mean((0, 2, 3)) for x in xs]
    uvars = [x.var((0, 2, 3), ddof=1) for x in xs]
    if momentum is None:  # cumulative average
        rm, rv = np.mean(means, 0), np.mean(uvars, 0)
    else:  # exponential moving average, unrolled: sum_t m (1-m)^(T-1-t) stat_t + (1-m)^T init
        m, n = momentum, len(xs)
        rm = sum(m * (1 - m) ** (n - 1 - t) * means[t] for t in range(n))
        rv = (1 - m) ** n + sum(m * (1 - m) ** (n - 1 - t) * uvars[t] for t in range(n))
    np.testing.assert_allclose(to_np(bn.running_mean), rm, rtol=1e-12)
    np.testing.assert_allclose(to_np(bn.running_var), rv, rtol=1e-12)
    assert bn.num_batches_tracked.item() == 4 and bn.num_batches_tracked.dtype == gg.int64


def test_batchnorm_train_eval(device):
    bn = nn.BatchNorm1d(3, device=device, dtype="float64")
    bn.weight._data[...] = bn.weight.xp.asarray([1.0, 2.0, 0.5])
    x = T(rnd(5, 3) * 3 + 1, device)
    y = to_np(bn(x).detach())
    xn = to_np(x.detach())
    ref = (xn - xn.mean(0)) / np.sqrt(xn.var(0) + 1e-5) * [1.0, 2.0, 0.5]
    np.testing.assert_allclose(y, ref, rtol=1e-10)
    bn.eval()
    y2 = to_np(bn(x).detach())
    ref2 = (xn - to_np(bn.running_mean)) / np.sqrt(to_np(bn.running_var) + 1e-5) * [1.0, 2.0, 0.5]
    np.testing.assert_allclose(y2, ref2, rtol=1e-10)
    before = to_np(bn.running_mean).copy()
    bn(x)
    np.testing.assert_array_equal(to_np(bn.running_mean), before)  # eval does not update
    assert bn.num_batches_tracked.item() == 1
    assert check_module(bn, T(rnd(4, 3), device))          # eval: running stats are constants
    bn.train()
    assert check_module(bn, T(rnd(4, 3, 2), device))       # train, (N, C, L) input
    with pytest.raises(ValueError, match="expected"):
        bn(T(rnd(4, 3, 2, 2), device))


def test_batchnorm_no_tracking_no_affine(device):
    bn = nn.BatchNorm2d(2, affine=False, track_running_stats=False, device=device)
    assert list(bn.state_dict()) == [] and list(bn.parameters()) == []
    bn.eval()  # no running stats: batch statistics even in eval
    y = to_np(bn(gg.randn(4, 2, 3, 3, device=device) * 5 + 2))
    np.testing.assert_allclose(y.mean((0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var((0, 2, 3)), 1, atol=1e-3)


def test_layernorm_groupnorm_modules(device):
    ln = nn.LayerNorm((2, 3), device=device, dtype="float64")
    assert ln.weight.shape == ln.bias.shape == (2, 3)
    ln.weight._data[...] = ln.weight.xp.asarray(rnd(2, 3, seed=4))
    x = T(rnd(2, 2, 3), device)
    xn = to_np(x.detach())
    mu, var = xn.mean((1, 2), keepdims=True), xn.var((1, 2), keepdims=True)
    np.testing.assert_allclose(to_np(ln(x).detach()), (xn - mu) / np.sqrt(var + 1e-5) * rnd(2, 3, seed=4), rtol=1e-10)
    assert check_module(ln, x)
    assert list(dict(nn.LayerNorm(4, elementwise_affine=False).named_parameters())) == []
    gn = nn.GroupNorm(2, 4, device=device, dtype="float64")
    assert check_module(gn, T(rnd(1, 4, 2), device))


# ------------------------------------------------------------------------------------------ Dropout
def test_dropout_module(device):
    d = nn.Dropout(0.25)
    x = gg.ones(100, 100, device=device)
    gg.manual_seed(1)
    y1 = to_np(d(x))
    gg.manual_seed(1)
    np.testing.assert_array_equal(to_np(d(x)), y1)
    assert abs((y1 == 0).mean() - 0.25) < 0.02
    np.testing.assert_allclose(y1.mean(), 1.0, atol=0.03)
    d.eval()
    assert d(x) is x
    assert repr(d) == "Dropout(p=0.25, inplace=False)"
    with pytest.raises(ValueError):
        nn.Dropout(-0.1)


# ---------------------------------------------------------------------------------------- Embedding
def test_embedding_module(device):
    e = nn.Embedding(6, 4, padding_idx=-1, device=device, dtype="float64")
    assert e.padding_idx == 5
    np.testing.assert_array_equal(to_np(e.weight.detach())[5], 0)
    assert abs(to_np(e.weight.detach())[:5].std() - 1) < 0.5
    idx = gg.tensor([[0, 5, 0], [2, 2, 2]], device=device)
    out = e(idx)
    assert out.shape == (2, 3, 4)
    out.sum().backward()
    np.testing.assert_array_equal(to_np(e.weight.grad)[:, 0], [2, 0, 3, 0, 0, 0])
    assert repr(e) == "Embedding(6, 4, padding_idx=5)"
    pre = nn.Embedding.from_pretrained(gg.tensor(rnd(3, 2), device=device))
    assert not pre.weight.requires_grad
    np.testing.assert_allclose(to_np(pre(gg.tensor([2], device=device))), rnd(3, 2)[[2]], rtol=1e-6)
    mn = nn.Embedding(3, 2, max_norm=1.0, device=device)
    mn.weight._data[...] = mn.weight.xp.asarray([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]])
    mn(gg.tensor([0, 1], device=device))
    np.testing.assert_allclose(np.linalg.norm(to_np(mn.weight.detach()), axis=1), [1.0, 0.5, 10.0], rtol=1e-5)


# ----------------------------------------------------------------------------------- shape modules
def test_flatten_unflatten_identity(device):
    x = gg.randn(2, 3, 4, 5, device=device)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 2)(x).shape == (24, 5)
    assert nn.Unflatten(1, (3, 20))(nn.Flatten()(x)).shape == (2, 3, 20)
    assert nn.Identity(54, unused="x")(x) is x


# ------------------------------------------------------------------------------ activation modules
ACTS = [
    (nn.ReLU, {}, "relu", {}),
    (nn.LeakyReLU, {"negative_slope": 0.2}, "leaky_relu", {"negative_slope": 0.2}),
    (nn.ELU, {"alpha": 0.7}, "elu", {"alpha": 0.7}),
    (nn.SELU, {}, "selu", {}),
    (nn.GELU, {"approximate": "tanh"}, "gelu", {"approximate": "tanh"}),
    (nn.SiLU, {}, "silu", {}),
    (nn.Mish, {}, "mish", {}),
    (nn.Sigmoid, {}, "sigmoid", {}),
    (nn.Tanh, {}, "tanh", {}),
    (nn.Softplus, {"beta": 2.0, "threshold": 10.0}, "softplus", {"beta": 2.0, "threshold": 10.0}),
    (nn.LogSigmoid, {}, "logsigmoid", {}),
    (nn.Softmax, {"dim": 0}, "softmax", {"dim": 0}),
    (nn.LogSoftmax, {"dim": -1}, "log_softmax", {"dim": -1}),
]


@pytest.mark.parametrize("cls,ctor,fname,expect", ACTS, ids=[a[0].__name__ for a in ACTS])
def test_activation_modules_call_functional(cls, ctor, fname, expect, monkeypatch):
    calls = []

    def fake(x, **kw):
        calls.append(kw)
        return x * 2.0
    monkeypatch.setattr(F, fname, fake, raising=False)
    x = gg.tensor([1.0, -2.0])
    y = cls(**ctor)(x)
    np.testing.assert_array_equal(to_np(y), [2.0, -4.0])
    assert calls == [expect]
    r = repr(cls(**ctor))
    assert r.startswith(cls.__name__ + "(") and all(f"{k}={v!r}" in r for k, v in ctor.items())


def test_core_activation_modules_values(device):
    x = gg.tensor([-1.5, 0.0, 2.0], device=device)
    np.testing.assert_allclose(to_np(nn.ReLU()(x)), [0, 0, 2])
    np.testing.assert_allclose(to_np(nn.Tanh()(x)), np.tanh([-1.5, 0, 2]), rtol=1e-6)
    np.testing.assert_allclose(to_np(nn.Sigmoid()(x)), 1 / (1 + np.exp([1.5, 0, -2])), rtol=1e-6)


def test_softmax_implicit_dim(monkeypatch):
    seen = []
    monkeypatch.setattr(F, "softmax", lambda x, dim: seen.append(dim) or x, raising=False)
    for shape in [(3,), (2, 3), (2, 3, 4), (2, 3, 4, 5)]:
        nn.Softmax()(gg.zeros(*shape))
    assert seen == [0, 1, 0, 1]


# ------------------------------------------------------------------------------------- loss modules
LOSSES = [
    (nn.CrossEntropyLoss, {"label_smoothing": 0.1, "ignore_index": 3}, "cross_entropy",
     {"weight": None, "ignore_index": 3, "reduction": "mean", "label_smoothing": 0.1}),
    (nn.NLLLoss, {"reduction": "sum"}, "nll_loss", {"weight": None, "ignore_index": -100, "reduction": "sum"}),
    (nn.BCEWithLogitsLoss, {}, "binary_cross_entropy_with_logits",
     {"weight": None, "reduction": "mean", "pos_weight": None}),
    (nn.MSELoss, {"reduction": "none"}, "mse_loss", {"reduction": "none"}),
    (nn.L1Loss, {}, "l1_loss", {"reduction": "mean"}),
    (nn.HuberLoss, {"delta": 0.5}, "huber_loss", {"reduction": "mean", "delta": 0.5}),
    (nn.SmoothL1Loss, {"beta": 2.0}, "smooth_l1_loss", {"reduction": "mean", "beta": 2.0}),
]


@pytest.mark.parametrize("cls,ctor,fname,expect", LOSSES, ids=[a[0].__name__ for a in LOSSES])
def test_loss_modules_call_functional(cls, ctor, fname, expect, monkeypatch):
    calls = []
    monkeypatch.setattr(F, fname, lambda x, t, **kw: calls.append(kw) or (x - t).sum(), raising=False)
    out = cls(**ctor)(gg.tensor([3.0]), gg.tensor([1.0]))
    assert out.item() == 2.0 and calls == [expect]
    with pytest.raises(ValueError, match="reduction"):
        cls(reduction="avg")


def test_weighted_loss_registers_buffers(device):
    w = gg.tensor([1.0, 2.0], device=device)
    m = nn.CrossEntropyLoss(weight=w)
    assert m.weight is w and list(m.state_dict()) == ["weight"]
    b = nn.BCEWithLogitsLoss(pos_weight=w)
    assert list(b.state_dict()) == ["pos_weight"]


def test_loss_modules_take_pytorch_positional_order_and_legacy_reduction():
    w = gg.tensor([1.0, 2.0, 3.0])
    m = gg.nn.CrossEntropyLoss(w, None, 2)          # (weight, size_average, ignore_index)
    assert m.ignore_index == 2 and m.reduction == "mean"
    assert gg.nn.MSELoss(None, False).reduction == "none"
    assert gg.nn.L1Loss(False).reduction == "sum"
    assert gg.nn.SmoothL1Loss(reduction="sum", beta=0.5).beta == 0.5
    logits = gg.tensor([[1.0, 2.0, 0.5], [0.1, 0.2, 3.0]])
    t = gg.tensor([0, 2])
    # the ignored sample (class 2) drops out: loss is the first sample's weighted loss / its weight
    lse = np.log(np.exp([1.0, 2.0, 0.5]).sum())
    assert float(m(logits, t)) == pytest.approx(lse - 1.0, rel=1e-6)
