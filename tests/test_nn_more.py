"""nn names of issue 11 (breadth): shrinks, RReLU, the in-place functional forms, padding modules, soft/multilabel
margin and distance-function triplet losses, pdist, bilinear, channel_shuffle, Softmax2d, UpsamplingNearest2d/
Bilinear2d, BatchNorm3d, InstanceNorm3d, 3-D pools and max_pool*_with_indices. Literal values and errors without
torch; with torch (2.13), values, dtypes, shapes, gradients, reprs, state_dict keys and error texts compared."""
import numpy as np
import pytest

import gpugrad as gg

F = gg.nn.functional
nn = gg.nn
T = gg.tensor
R = np.random.default_rng(0)
XX = np.array([-1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0])
X34, Y34 = R.standard_normal((3, 4)), np.sign(R.standard_normal((3, 4)))
X5 = R.standard_normal((2, 3, 5, 6, 7))
ML = [[3, 0, -1, 1], [0, 1, 2, 3], [1, -1, 2, -1]]
DUP = np.array([[1.0, 2], [1, 2], [0, 0], [3, -1]])
W = R.standard_normal((5, 4, 2))
POOLS = [dict(kernel_size=2), dict(kernel_size=(2, 3, 2), stride=1, padding=1, ceil_mode=True),
         dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), dict(kernel_size=2, stride=3, ceil_mode=True),
         dict(kernel_size=(3, 2, 2), stride=(2, 1, 3), padding=(1, 0, 1))]


def close(t, expected, tol=1e-6):
    np.testing.assert_allclose(np.asarray(t.tolist()), expected, rtol=tol, atol=tol)


# -- without torch ------------------------------------------------------------------------------------------------
def test_shrinks_values_and_gradients():
    x = T(XX, requires_grad=True)
    y = F.hardshrink(x)
    close(y, [-1, 0, 0, 0, 0, 0, 1])
    y.sum().backward()
    close(x.grad, [1, 0, 0, 0, 0, 0, 1])  # NOTE: 0 at |x| == lambd, as PyTorch
    x.grad = None
    y = F.softshrink(x, 0.2)
    close(y, [-0.8, -0.3, 0, 0, 0, 0.3, 0.8])
    assert np.signbit(y.detach().numpy()[2])  # PyTorch's x * 0: -0.0 for a negative x inside the band
    y.sum().backward()
    close(x.grad, [1, 1, 0, 0, 0, 1, 1])
    with pytest.raises(RuntimeError, match=r"lambda must be in range \[0, 3.40282e\+38\] for input dtype Float, but "
                                           r"found -1"):
        F.softshrink(gg.ones(2), -1.0)
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        F.hardshrink(T([1, 2]))
    assert repr(nn.Hardshrink()) == "Hardshrink(0.5)" and repr(nn.Softshrink(1)) == "Softshrink(1)"


def test_rrelu_train_and_eval():
    x = T(XX, requires_grad=True)
    y = F.rrelu(x)  # eval: leaky_relu with (lower + upper) / 2
    close(y, np.where(XX >= 0, XX, XX * (1 / 8 + 1 / 3) / 2))
    gg.manual_seed(0)
    y = F.rrelu(x, 0.1, 0.3, training=True)
    (g,) = gg.autograd.grad(y.sum(), x, create_graph=True)
    slope = g.detach().numpy()
    assert ((slope[XX <= 0] >= 0.1) & (slope[XX <= 0] < 0.3)).all() and (slope[XX > 0] == 1).all()
    close(y, XX * slope)
    gg.manual_seed(0)
    close(F.rrelu(T(XX), 0.1, 0.3, True), XX * slope)  # the gpugrad generator: reproducible
    assert not g.requires_grad  # second order: the slopes are constants (as PyTorch's)
    with pytest.raises(RuntimeError, match="Lower bound should be less than or equal to the upper bound"):
        F.rrelu(x, 0.5, 0.2)
    m = nn.RReLU(0.1, 0.2, True)
    assert repr(m) == "RReLU(lower=0.1, upper=0.2, inplace=True)" and repr(nn.RReLU()) == \
        "RReLU(lower=0.125, upper=0.3333333333333333)"
    z = T(XX.copy())
    assert m(z) is z and m.eval()(z) is z


def test_inplace_functional_forms():
    x = T(XX, requires_grad=True)
    for f, ref in [(F.relu_, lambda a: np.maximum(a, 0)), (lambda t: F.leaky_relu_(t, 0.2), lambda a: np.where(a > 0, a, .2 * a)),
                   (lambda t: F.hardtanh_(t, -0.3, 0.4), lambda a: np.clip(a, -0.3, 0.4)),
                   (lambda t: F.hardtanh_(t, 0.3, -0.4), lambda a: np.full_like(a, -0.4)),
                   (lambda t: F.threshold_(t, 0.1, 5.0), lambda a: np.where(a > 0.1, a, 5.0)),
                   (lambda t: F.elu_(t, 2.0), lambda a: np.where(a > 0, a, 2 * np.expm1(a))),
                   (lambda t: F.celu_(t, 0.5), lambda a: np.where(a > 0, a, 0.5 * np.expm1(a / 0.5))),
                   (F.selu_, lambda a: 1.0507009873554805 * np.where(a > 0, a, 1.6732632423543772 * np.expm1(a))),
                   (F.rrelu_, lambda a: np.where(a >= 0, a, a * (1 / 8 + 1 / 3) / 2))]:
        t = x * 1.0
        assert f(t) is t
        close(t, ref(XX))
        t.sum().backward()
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        F.relu_(x)


@pytest.mark.parametrize("cls,n,mode", [(c, n, m) for m, c in [("constant", "ZeroPad"), ("constant", "ConstantPad"),
                                                                ("reflect", "ReflectionPad"), ("replicate", "ReplicationPad"),
                                                                ("circular", "CircularPad")] for n in (1, 2, 3)])
def test_padding_modules(cls, n, mode):
    m = getattr(nn, f"{cls}{n}d")(1) if cls != "ConstantPad" else getattr(nn, f"{cls}{n}d")(1, 2.5)
    assert m.padding == (1,) * (2 * n) and m.state_dict() == {} if hasattr(m.state_dict(), "keys") else True
    x = T(R.standard_normal((2,) + (3,) * (n + 1)), requires_grad=True)
    np_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap", "constant": "constant"}[mode]
    kw = {"constant_values": 2.5 if cls == "ConstantPad" else 0.0} if mode == "constant" else {}
    want = np.pad(x.detach().numpy(), [(0, 0)] * 2 + [(1, 1)] * n, mode=np_mode, **kw)
    np.testing.assert_array_equal(m(x).detach().numpy(), want)
    m(x).sum().backward()
    np.testing.assert_array_equal(m(x[0]).detach().numpy(), want[0])  # unbatched
    if mode != "constant":
        with pytest.raises((ValueError, NotImplementedError), match="input"):
            m(gg.zeros(*(3,) * n))


def test_padding_errors_and_reprs():
    assert repr(nn.ZeroPad2d(1)) == "ZeroPad2d((1, 1, 1, 1))" and repr(nn.ZeroPad1d([1, 2])) == "ZeroPad1d((1, 2))"
    assert repr(nn.ConstantPad1d((1, 2), 3.5)) == "ConstantPad1d(padding=(1, 2), value=3.5)"
    assert repr(nn.CircularPad2d((1, 2))) == "CircularPad2d((1, 2))" and isinstance(nn.ZeroPad3d(1), nn.ConstantPad3d)
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 1D input\)"):
        nn.CircularPad1d(1)(gg.zeros(4))
    with pytest.raises(NotImplementedError, match="Padding size 2 is not supported for 1D input tensor"):
        nn.ReflectionPad1d(1)(gg.zeros(4))
    with pytest.raises(RuntimeError, match=r"Argument #4: Padding size should be less than the corresponding input "
                                           r"dimension, but got: padding \(4, 1\) at dimension 2 of input \[1, 2, 4\]"):
        nn.ReflectionPad1d((4, 1))(gg.zeros(1, 2, 4))
    with pytest.raises(RuntimeError, match="wrapping around more than once"):
        nn.CircularPad1d(5)(gg.zeros(1, 2, 4))
    with pytest.raises(RuntimeError, match="Padding length must be divisible by 2"):
        F.pad(gg.zeros(2, 3), (1,))
    with pytest.raises(RuntimeError, match="doesn't take in value argument"):
        F.pad(gg.zeros(2, 3), (1, 1), "reflect", 1.0)
    x = gg.arange(4.0).reshape(1, 1, 4)  # NOTE: circular with a negative width crops, then wraps the rest (PyTorch)
    close(F.pad(x, (-1, 2), "circular"), [[[1, 2, 3, 1, 2]]])
    close(F.pad(x, (2, -1), "circular"), [[[1, 2, 0, 1, 2]]])


def test_losses_values_and_errors():
    x = T([[0.1, 0.2, 0.4, 0.8]], requires_grad=True)
    loss = F.multilabel_margin_loss(x, T([[3, 0, -1, 1]]))
    close(loss, 0.85)  # PyTorch's documented example
    loss.backward()
    close(F.soft_margin_loss(T([0.0, 1.0]), T([1.0, -1.0]), reduction="none"), [np.log(2), np.log1p(np.e)])
    close(F.soft_margin_loss(T([100.0]), T([-1.0])), 100.0)  # NOTE: finite where log1p(exp(100)) overflows in float32
    with pytest.raises(RuntimeError, match="argument #2 'target' is out of range"):
        F.multilabel_margin_loss(x, T([[4, 0, -1, 1]]))
    with pytest.raises(RuntimeError, match=r"inconsistent target size: \[2, 4\] for input of size: \[1, 4\]"):
        F.multilabel_margin_loss(x, T([[3, 0, -1, 1]] * 2))
    with pytest.raises(ValueError, match="foo is not a valid value for reduction"):
        F.soft_margin_loss(x, x.detach(), reduction="foo")
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'target'"):
        F.soft_margin_loss(x, x)
    a, p, n = (T(R.standard_normal((3, 4)), requires_grad=True) for _ in range(3))
    full = F.triplet_margin_with_distance_loss(a, p, n, reduction="none")
    close(full, np.maximum(1 + np.array(F.pairwise_distance(a, p).tolist()) - F.pairwise_distance(a, n).tolist(), 0))
    with pytest.raises(ValueError, match="margin must be greater than 0, got 0"):
        F.triplet_margin_with_distance_loss(a, p, n, margin=0)
    with pytest.raises(ValueError, match="TripletMarginWithDistanceLoss: expected margin to be greater than 0"):
        nn.TripletMarginWithDistanceLoss(margin=0)
    m = nn.TripletMarginWithDistanceLoss(distance_function=lambda u, v: (u - v).abs().sum(-1), swap=True)
    m(a, p, n).backward()
    assert repr(nn.SoftMarginLoss()) == "SoftMarginLoss()" and repr(nn.MultiLabelMarginLoss(reduction="sum")) == \
        "MultiLabelMarginLoss()" and "(distance_function): PairwiseDistance()" in repr(nn.TripletMarginWithDistanceLoss())


def test_pdist_bilinear_channel_shuffle_softmax2d():
    close(F.pdist(T(DUP)), [0, np.sqrt(5), np.sqrt(13), np.sqrt(5), np.sqrt(13), np.sqrt(10)])
    assert F.pdist(gg.zeros(1, 3)).shape == (0,)
    with pytest.raises(RuntimeError, match="pdist only supports 2D tensors, got: 1D"):
        F.pdist(gg.zeros(3))
    a, b, w = T(X34), T(R.standard_normal((3, 2))), T(W)
    close(F.bilinear(a, b, w), np.einsum("ni,oij,nj->no", X34, W, b.numpy()))
    with pytest.raises(RuntimeError, match="bilinear\\(\\): input batch dimensions do not match at dim 0: got 3 and 2"):
        F.bilinear(a, b[:2], w)
    m = nn.Bilinear(4, 2, 5)
    assert list(m.state_dict()) == ["weight", "bias"] and m.weight.shape == (5, 4, 2)
    assert np.abs(m.weight.detach().numpy()).max() <= 0.5 and repr(nn.Bilinear(4, 2, 5, bias=False)) == \
        "Bilinear(in1_features=4, in2_features=2, out_features=5, bias=False)"
    m(a.float(), b.float()).sum().backward()
    close(F.channel_shuffle(gg.arange(8.0).reshape(1, 4, 2), 2), [[[0, 1], [4, 5], [2, 3], [6, 7]]])
    with pytest.raises(RuntimeError, match="Number of channels must be divisible by groups. Got 5 channels and 2"):
        nn.ChannelShuffle(2)(gg.zeros(1, 5, 2))
    s = nn.Softmax2d()(T(R.standard_normal((2, 3, 2, 2))))
    close(s.sum(1), np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="Softmax2d: expected input to be 3D or 4D, got 2D instead"):
        nn.Softmax2d()(gg.zeros(2, 3))


def test_upsampling_norms_3d():
    up = nn.UpsamplingBilinear2d(scale_factor=2)
    assert up.align_corners is True and repr(up) == "UpsamplingBilinear2d(scale_factor=2.0, mode='bilinear')"
    close(up(gg.arange(2.0).reshape(1, 1, 1, 2))[0, 0, 0], [0, 1 / 3, 2 / 3, 1])  # align_corners=True
    close(nn.UpsamplingNearest2d(size=(1, 4))(gg.arange(2.0).reshape(1, 1, 1, 2))[0, 0, 0], [0, 0, 1, 1])
    bn = nn.BatchNorm3d(3)
    y = bn(T(X5, dtype=gg.float32))
    close(y.mean((0, 2, 3, 4)), np.zeros(3), 1e-6)
    assert repr(bn) == "BatchNorm3d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert list(nn.BatchNorm3d(3, bias=False).state_dict())[:2] == ["weight", "running_mean"]
    with pytest.raises(ValueError, match=r"expected 5D input \(got 4D input\)"):
        bn(T(X5[0], dtype=gg.float32))
    inn = nn.InstanceNorm3d(3)
    close(inn(T(X5[0])).mean((1, 2, 3)), np.zeros(3), 1e-6)
    with pytest.raises(ValueError, match=r"expected 4D or 5D input \(got 3D input\)"):
        inn(T(X5[0, 0]))


def test_pool3d_values():
    x = T(X5, requires_grad=True)
    y, idx = F.max_pool3d(x, 2, return_indices=True)
    ref = X5[:, :, :4, :6, :6].reshape(2, 3, 2, 2, 3, 2, 3, 2).max((3, 5, 7))
    close(y, ref)
    flat = X5.reshape(2, 3, -1)
    close(np.take_along_axis(flat, idx.numpy().reshape(2, 3, -1), 2).reshape(ref.shape), ref)
    y.sum().backward()
    assert x.grad.numpy().sum() == y.numel()
    close(F.avg_pool3d(T(X5), 2), X5[:, :, :4, :6, :6].reshape(2, 3, 2, 2, 3, 2, 3, 2).mean((3, 5, 7)))
    close(F.adaptive_avg_pool3d(T(X5), 1), X5.mean((2, 3, 4), keepdims=True))
    assert F.max_pool2d_with_indices(gg.zeros(1, 4, 4), 2)[1].dtype == gg.int64
    assert len(F.max_pool1d_with_indices(gg.zeros(1, 4), 2, return_indices=False)) == 2
    assert repr(nn.MaxPool3d(2)) == "MaxPool3d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.AvgPool3d(2)) == "AvgPool3d(kernel_size=2, stride=2, padding=0)"
    with pytest.raises(RuntimeError, match="non-empty 4D or 5D"):
        F.max_pool3d(gg.zeros(2, 3, 4), 2)
    with pytest.raises(RuntimeError, match="pad should be at most half of effective kernel size"):
        nn.AvgPool3d(3, padding=2)(T(X5))


# -- against torch ----------------------------------------------------------------------------------------------------
CASES = {
    "hardshrink": (lambda F, m, x: F.hardshrink(x, lambd=0.2), [XX]),
    "softshrink": (lambda F, m, x: F.softshrink(x.float(), 0.2), [XX]),
    "rrelu eval": (lambda F, m, x: F.rrelu(x, lower=0.1, upper=0.5, training=False), [XX]),
    "relu_": (lambda F, m, x: F.relu_(x * 1), [XX]), "elu_": (lambda F, m, x: F.elu_(x * 1, alpha=2.0), [XX]),
    "leaky_relu_": (lambda F, m, x: F.leaky_relu_(x * 1, 0.2), [XX]),
    "hardtanh_": (lambda F, m, x: F.hardtanh_(x * 1, -0.3, 0.4), [XX]),
    "hardtanh_ swapped": (lambda F, m, x: F.hardtanh_(x * 1, 0.3, -0.4), [XX]),
    "threshold_": (lambda F, m, x: F.threshold_(x * 1, 0.1, 5.0), [XX]), "selu_": (lambda F, m, x: F.selu_(x * 1), [XX]),
    "celu_": (lambda F, m, x: F.celu_(x * 1, alpha=0.5), [XX]), "rrelu_": (lambda F, m, x: F.rrelu_(x * 1, .1, .3), [XX]),
    **{f"soft_margin {r}": (lambda F, m, x, r=r: F.soft_margin_loss(x, m.tensor(Y34), reduction=r), [X34])
       for r in ("mean", "sum", "none")},
    "soft_margin broadcast": (lambda F, m, x: F.soft_margin_loss(x, m.tensor(Y34[0])), [X34]),
    **{f"multilabel {r}": (lambda F, m, x, r=r: F.multilabel_margin_loss(x, m.tensor(ML), reduction=r), [X34])
       for r in ("mean", "sum", "none")},
    "multilabel 1d": (lambda F, m, x: F.multilabel_margin_loss(x[0], m.tensor(ML[0]), reduction="none"), [X34]),
    **{f"triplet distance {r}": (lambda F, m, a, p, n, r=r: F.triplet_margin_with_distance_loss(
        a, p, n, distance_function=lambda u, v: (u - v).abs().sum(-1), margin=2.0, swap=True, reduction=r),
        [X34, X34[::-1].copy(), Y34]) for r in ("mean", "sum", "none")},
    "triplet distance default": (lambda F, m, a, p, n: F.triplet_margin_with_distance_loss(a, p, n), [X34, Y34, X34 * 2]),
    **{f"pdist {p}": (lambda F, m, x, p=p: F.pdist(x, p), [DUP]) for p in (2, 1, 0.5, 3, 0, float("inf"))},
    "bilinear": (lambda F, m, a, b, w, c: F.bilinear(a, b, w, c), [X34, X34[:, :2].copy(), W, W[:, 0, 0].copy()]),
    "bilinear 3d": (lambda F, m, a, b, w: F.bilinear(a, b, w), [X5[0, :2, :3, :4, 0], X5[1, :2, :3, :2, 0], W]),
    "channel_shuffle": (lambda F, m, x: F.channel_shuffle(x, 3), [X5.reshape(2, 6, 105)[..., :4]]),
    **{f"max_pool3d {k}": (lambda F, m, x, kw=kw: F.max_pool3d(x, **kw, return_indices=True), [X5])
       for k, kw in enumerate(POOLS)},
    "max_pool3d ties": (lambda F, m, x: F.max_pool3d(x[0], 3, 2, 1, return_indices=True), [np.round(X5)]),
    **{f"avg_pool3d {k} {c}": (lambda F, m, x, kw=kw, c=c: F.avg_pool3d(x, **kw, count_include_pad=c), [X5])
       for k, kw in enumerate(POOLS) for c in (True, False)},
    "avg_pool3d divisor": (lambda F, m, x: F.avg_pool3d(x[0], 3, 2, 1, True, divisor_override=5), [X5]),
    **{f"adaptive_avg_pool3d {s}": (lambda F, m, x, s=s: F.adaptive_avg_pool3d(x, s), [X5])
       for s in ((2, 3, 4), 1, (None, 2, 5), (3, 4, 3))},
    "max_pool2d_with_indices": (lambda F, m, x: F.max_pool2d_with_indices(x[0], 3, 2, 1), [X5]),
    "max_pool1d_with_indices": (lambda F, m, x: F.max_pool1d_with_indices(x[0, 0], 2), [X5]),
}


def _run(m, Fm, name):
    fn, arrays = CASES[name]
    xs = [m.tensor(a, requires_grad=True) for a in arrays]
    ys = fn(Fm, m, *xs)
    ys = list(ys) if isinstance(ys, (tuple, list)) else [ys]
    fl = [y for y in ys if y.requires_grad]
    loss = sum((y * y * m.tensor(np.linspace(0.5, 1.5, y.numel()).reshape(tuple(y.shape)), dtype=y.dtype)).sum()
               for y in fl)
    gs = m.autograd.grad(loss, xs, allow_unused=True)
    return [y.detach().numpy() for y in ys], [None if g is None else g.numpy() for g in gs]


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    ys, gs = _run(gg, F, name)
    yt, gt = _run(torch, torch.nn.functional, name)
    assert len(ys) == len(yt)
    for a, b in zip(ys, yt):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=1e-6 if a.dtype != np.float32 else 1e-5, atol=1e-9)
    for a, b in zip(gs, gt):
        if b is None:
            assert a is None or not a.any()
        else:
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


MODULES = [("Hardshrink", (0.3,)), ("Softshrink", ()), ("RReLU", (0.1, 0.2, True)), ("ZeroPad2d", ((1, 2),)),
           ("ConstantPad3d", (1, 2)), ("ReflectionPad1d", (2,)), ("ReplicationPad3d", ((1, 0, 2, 1, 0, 1),)),
           ("CircularPad2d", (1,)), ("SoftMarginLoss", ()), ("MultiLabelMarginLoss", ()),
           ("TripletMarginWithDistanceLoss", ()), ("Bilinear", (3, 2, 4)), ("ChannelShuffle", (2,)), ("Softmax2d", ()),
           ("UpsamplingNearest2d", (None, 2)), ("UpsamplingBilinear2d", ((3, 5),)), ("BatchNorm3d", (3,)),
           ("InstanceNorm3d", (3,)), ("MaxPool3d", (2, 1, 1)), ("AvgPool3d", ((2, 1, 2),)),
           ("AdaptiveAvgPool3d", ((2, None, 3),))]


@pytest.mark.parametrize("name,args", MODULES)
def test_module_repr_state_dict_as_torch(name, args):
    torch = pytest.importorskip("torch")
    g, t = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(g) == repr(t)
    assert list(g.state_dict()) == list(t.state_dict())
    assert [tuple(v.shape) for v in g.state_dict().values()] == [tuple(v.shape) for v in t.state_dict().values()]


@pytest.mark.parametrize("cls,args", [("BatchNorm1d", (3,)), ("BatchNorm2d", (3,)), ("BatchNorm3d", (3,)),
                                      ("InstanceNorm2d", (3,)), ("GroupNorm", (2, 4)), ("LayerNorm", (4,))])
@pytest.mark.parametrize("kw", [{}, {"bias": False}, {"affine": False}])
def test_norm_layers_bias_keyword_as_pytorch(cls, args, kw):
    """PyTorch 2.13's ``bias=`` keyword of the norm layers: parameters, state_dict keys and repr."""
    torch = pytest.importorskip("torch")
    if cls == "LayerNorm" and "affine" in kw:
        kw = {"elementwise_affine": False}
    g, t = getattr(gg.nn, cls)(*args, **kw), getattr(torch.nn, cls)(*args, **kw)
    assert repr(g) == repr(t)
    assert list(g.state_dict()) == list(t.state_dict())
    assert (g.bias is None) == (t.bias is None)
    g.reset_parameters()
