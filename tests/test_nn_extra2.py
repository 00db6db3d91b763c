"""nn ops of issue "The everyday PyTorch ops", part 2: literal values, error texts, reprs, PyTorch comparisons
(when torch is importable), in-place activations under autograd, full backward hooks."""
import warnings

import numpy as np
import pytest

import gpugrad as gg

F = gg.nn.functional
nn = gg.nn
T = gg.tensor
INF = float("inf")

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # pragma: no cover
    torch = None


def close(t, expected, tol=1e-5):
    np.testing.assert_allclose(np.asarray(t.tolist() if hasattr(t, "tolist") else t), expected, rtol=tol, atol=tol)


# -- values (literal), and the same call in PyTorch --------------------------------------------------------------
W6 = np.arange(12.0, dtype=np.float32).reshape(6, 2)
CASES = [
    ("cdist2", lambda m, t: m.cdist(t([[0., 0], [1, 1]]), t([[3., 4], [1, 0]])), [[5.0, 1.0], [3.6055512, 1.0]]),
    ("cdist1", lambda m, t: m.cdist(t([[0., 0], [1, 1]]), t([[3., 4], [1, 0]]), p=1.0), [[7.0, 1.0], [5.0, 1.0]]),
    ("cdist0", lambda m, t: m.cdist(t([[0., 0], [1, 1]]), t([[3., 4], [1, 0]]), p=0.0), [[2.0, 1.0], [2.0, 1.0]]),
    ("cdistinf", lambda m, t: m.cdist(t([[0., 0], [1, 1]]), t([[3., 4], [1, 0]]), p=INF), [[4.0, 1.0], [3.0, 1.0]]),
    ("mrl", lambda f, t: f.margin_ranking_loss(t([1., 2, 3]), t([2., 2, 1]), t([1., -1, 1]), margin=0.5,
                                               reduction="none"), [1.5, 0.5, 0.0]),
    ("hel", lambda f, t: f.hinge_embedding_loss(t([0.5, 2., -1]), t([1., -1, 1]), reduction="none"), [0.5, 0.0, -1.0]),
    ("trip", lambda f, t: f.triplet_margin_loss(t([[0., 0]]), t([[3., 4]]), t([[1., 0]]), eps=0.0), 5.0),
    ("trip_swap", lambda f, t: f.triplet_margin_loss(t([[0., 0]]), t([[3., 4]]), t([[1., 0]]), eps=0.0, swap=True),
     5.0),
    ("cel", lambda f, t: f.cosine_embedding_loss(t([[1., 0], [1, 1]]), t([[1., 1], [1, 0]]), t([-1., -1]), margin=0.5,
                                                 reduction="none"), [0.20710677, 0.20710677]),
    ("cel_pos", lambda f, t: f.cosine_embedding_loss(t([1., 0]), t([0., 1]), t(1.)), 1.0),
    ("mml", lambda f, t: f.multi_margin_loss(t([[0.1, 0.2, 0.4, 0.8], [0.3, -0.1, 0.5, 0.2]]), t([3, 0]),
                                             reduction="none"), [0.325, 0.675]),
    ("mml_p2_w", lambda f, t: f.multi_margin_loss(t([[0.1, 0.2, 0.4, 0.8]]), t([3]), p=2, weight=t([1., 1, 1, 2])),
     0.305),
    ("mlsml", lambda f, t: f.multilabel_soft_margin_loss(t([[0., 0.]]), t([[1., 0.]])), 0.6931472),
    ("pnll", lambda f, t: f.poisson_nll_loss(t([0., 1.]), t([1., 2.]), reduction="none"), [1.0, 0.7182820]),
    ("pnll_full", lambda f, t: f.poisson_nll_loss(t([1., 2.]), t([1., 3.]), log_input=False, full=True,
                                                  reduction="none"), [1.0, 1.6846400]),
    ("gnll", lambda f, t: f.gaussian_nll_loss(t([1., 2.]), t([0., 0.]), t([1., 4.]), reduction="none"),
     [0.5, 1.1931472]),
    ("gnll_eps", lambda f, t: f.gaussian_nll_loss(t([1., 2.]), t([0., 0.]), t([0., 4.]), eps=0.5, reduction="none"),
     [0.6534264, 1.1931472]),
    ("gnll_float", lambda f, t: f.gaussian_nll_loss(t([[1., 2.]]), t([[0., 0.]]), 4.0, full=True), 1.9245858),
    ("lrn", lambda f, t: f.local_response_norm(t([[[1.], [2.], [3.]]]), 2, alpha=1., beta=1., k=1.),
     [[[0.6666667], [0.5714286], [0.4]]]),
    ("ebag_sum", lambda f, t: f.embedding_bag(t([1, 2, 4, 5]), t(W6), t([0, 2, 2]), mode="sum"),
     [[6., 8.], [0., 0.], [18., 20.]]),
    ("ebag_max", lambda f, t: f.embedding_bag(t([1, 2, 4, 5]), t(W6), t([0, 2, 2]), mode="max"),
     [[4., 5.], [0., 0.], [10., 11.]]),
    ("ebag_mean_pad", lambda f, t: f.embedding_bag(t([[1, 2], [4, 5]]), t(W6), padding_idx=5), [[3., 4.], [8., 9.]]),
    ("ebag_last", lambda f, t: f.embedding_bag(t([1, 2, 4, 5]), t(W6), t([0, 2, 4]), include_last_offset=True,
                                               mode="sum"), [[6., 8.], [18., 20.]]),
    ("ebag_psw", lambda f, t: f.embedding_bag(t([[1, 2]]), t(W6), mode="sum", per_sample_weights=t([[1., 2.]])),
     [[10., 13.]]),
    ("unpool", lambda f, t: f.max_unpool2d(t([[[[5., 6], [7, 8]]]]), t([[[[0, 3], [8, 15]]]]), 2),
     [[[[5., 0, 0, 6], [0, 0, 0, 0], [7, 0, 0, 0], [0, 0, 0, 8]]]]),
    ("unpool_size", lambda f, t: f.max_unpool2d(t([[[5., 6]]]), t([[[0, 4]]]), 2, output_size=(3, 3)),
     [[[5., 0, 0], [0, 6, 0], [0, 0, 0]]]),
]


@pytest.mark.parametrize("name,fn,expected", CASES, ids=[c[0] for c in CASES])
def test_values(name, fn, expected):
    mod = gg if name.startswith("cdist") else F
    y = fn(mod, lambda *a, **k: T(*a, **k))
    assert y.dtype == gg.float32
    close(y, expected)
    if torch is not None:
        yt = fn(torch if name.startswith("cdist") else TF, lambda *a, **k: torch.tensor(*a, **k))
        close(y, yt.numpy())
        assert tuple(y.shape) == tuple(yt.shape)


# -- gradients at PyTorch's special points ---------------------------------------------------------------------------
def test_cdist_grads_at_zero_distance_and_inf_ties():
    for p in (2.0, 1.0, 3.0, 0.0, INF):
        a = T([[0., 0., 0.]], requires_grad=True)
        gg.cdist(a, T([[0., 0., 0.]]), p).sum().backward()
        close(a.grad, [[0., 0., 0.]])
    a = T([[1., -3., 3.]], requires_grad=True)
    gg.cdist(a, T([[0., 0., 0.]]), p=INF).sum().backward()
    close(a.grad, [[0., -1., 1.]])  # NOTE: every tied coordinate gets the full gradient (torch.cdist)


def test_gaussian_nll_var_clamp_is_invisible_to_autograd():
    v = T([0.1, 4.0], requires_grad=True)
    F.gaussian_nll_loss(T([1., 2.]), T([0., 0.]), v, eps=0.5, reduction="sum").backward()
    close(v.grad, [-1.0, 0.0])  # 0.5 * (1/0.5 - 1/0.25) at the clamp (passed to v unchanged); 0.5 * (1/4 - 4/16)


def test_embedding_bag_grads():
    w = T(W6, requires_grad=True)
    F.embedding_bag(T([1, 2, 4, 5]), w, T([0, 2]), mode="max").sum().backward()
    close(w.grad, [[0, 0], [0, 0], [1, 1], [0, 0], [0, 0], [1, 1]])
    w.grad = None
    F.embedding_bag(T([1, 1, 4]), w, T([0, 2]), mode="mean", padding_idx=4).sum().backward()
    close(w.grad[1], [1.0, 1.0])
    close(w.grad[4], [0.0, 0.0])


# -- errors -----------------------------------------------------------------------------------------------------
A, B = gg.ones(3, 4), gg.ones(3, 4)
ERRORS = [
    (lambda: gg.cdist(gg.ones(3), gg.ones(3)), RuntimeError, "cdist only supports at least 2D tensors, X1 got: 1D"),
    (lambda: gg.cdist(A, gg.ones(2, 5)), RuntimeError, "X1 and X2 must have the same number of columns. X1: 4 X2: 5"),
    (lambda: gg.cdist(A, B, p=-1), RuntimeError, "cdist only supports non-negative p values"),
    (lambda: gg.cdist(A.long(), B.long()), RuntimeError, "cdist only supports floating-point dtypes, X1 got: Long"),
    (lambda: gg.cdist(A, B.double()), RuntimeError, "expected scalar type Float but found Double"),
    (lambda: gg.cdist(A, B, compute_mode="x"), ValueError, "x is not a valid value for compute_mode"),
    (lambda: gg.cdist(gg.ones(2, 3, 4), gg.ones(3, 2, 4)), RuntimeError,
     "The size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 0"),
    (lambda: F.triplet_margin_loss(A, B, gg.ones(4)), RuntimeError, "anchor 2D, positive 2D, and negative 1D inputs"),
    (lambda: F.triplet_margin_loss(A, B, B, margin=0), ValueError, "margin must be greater than 0, got 0"),
    (lambda: F.triplet_margin_loss(A, B, B, reduction="bad"), ValueError, "bad is not a valid value for reduction"),
    (lambda: F.margin_ranking_loss(gg.ones(3), gg.ones(3), gg.ones(3, 1)), RuntimeError,
     "input1: torch.Size([3]), input2: torch.Size([3]), target: torch.Size([3, 1])"),
    (lambda: F.cosine_embedding_loss(A, B, gg.ones(3, 1)), RuntimeError, "0D or 1D target tensor expected"),
    (lambda: F.cosine_embedding_loss(A, B, gg.ones(())), RuntimeError,
     "0D target tensor expects 1D input tensors, but found inputs with sizes [3, 4] and [3, 4]."),
    (lambda: F.poisson_nll_loss(A, B, reduction="x"), ValueError, "x is not a valid value for reduction"),
    (lambda: F.gaussian_nll_loss(A, B, gg.ones(3, 2)), ValueError, "var is of incorrect size"),
    (lambda: F.gaussian_nll_loss(A, B, -1.0), ValueError, "var has negative entry/entries"),
    (lambda: F.gaussian_nll_loss(A, B, 1), TypeError, "var must be a Tensor or a float"),
    (lambda: F.gaussian_nll_loss(A, B, B, reduction="x"), ValueError, "x is not valid"),
    (lambda: F.multi_margin_loss(A, T([1, 0, 1]), p=3), ValueError, "only p == 1 and p == 2 supported"),
    (lambda: F.multi_margin_loss(A, T([1., 0, 1])), RuntimeError, "expected scalar type Long but found Float"),
    (lambda: F.multi_margin_loss(A, T([4, 0, 1])), RuntimeError, "target out of range"),
    (lambda: F.multi_margin_loss(A, T([1, 0])), RuntimeError, "Expected target size [3], but got [2]"),
    (lambda: F.multi_margin_loss(A, T([1, 0, 1]), weight=gg.ones(3)), RuntimeError,
     "inconsistent weight size, expected 4 but got [3]"),
    (lambda: F.multilabel_soft_margin_loss(A, B, reduction="x"), ValueError, "x is not valid"),
    (lambda: F.local_response_norm(gg.ones(2, 3), 2), ValueError, "Expected 3D or higher dimensionality"),
    (lambda: F.dropout1d(gg.ones(4), 0.5), RuntimeError, "dropout1d: Expected 2D or 3D input, but received a 1D"),
    (lambda: F.dropout2d(A, 1.5), ValueError, "dropout probability has to be between 0 and 1, but got 1.5"),
    (lambda: F.embedding_bag(T([1, 2]), gg.ones(6, 2)), ValueError, "offsets has to be a 1D Tensor but got None"),
    (lambda: F.embedding_bag(T([[1, 2]]), gg.ones(6, 2), T([0])), ValueError, "if input is 2D, then offsets has"),
    (lambda: F.embedding_bag(T([1, 2]), gg.ones(6, 2), T([1])), RuntimeError, "offsets[0] has to be 0"),
    (lambda: F.embedding_bag(T([1, 2]), gg.ones(6, 2), T([0, 1]), include_last_offset=True), ValueError,
     "with include_last_offset=True, offsets[-1] must equal the number of indices (2), got 1"),
    (lambda: F.embedding_bag(T([1, 2]), gg.ones(6, 2), T([0]), mode="x"), ValueError,
     "mode has to be one of sum, mean or max"),
    (lambda: F.embedding_bag(T([1, 2]), gg.ones(6, 2), T([0]), mode="mean", per_sample_weights=gg.ones(2)),
     NotImplementedError, "per_sample_weights is only supported for mode='sum' (got mode='mean')"),
    (lambda: F.embedding_bag(T([1, 2]), gg.ones(6, 2), T([0]), padding_idx=6), RuntimeError,
     "padding_idx must be within the number of embeddings, -6 through 5, but got 6"),
    (lambda: F.max_unpool2d(gg.ones(1, 1, 2, 2), T([[[[0, 3], [8, 16]]]]), 2), RuntimeError,
     "Found an invalid max index: 16 (output volumes are of size 4x4)"),
    (lambda: F.max_unpool2d(gg.ones(2, 2), T([[0, 3], [8, 15]]), 2), RuntimeError,
     "should be a 3d or 4d Tensor, but got a tensor with 2 dimensions."),
    (lambda: F.max_unpool2d(gg.ones(1, 1, 2, 2), T([[[[0, 3], [8, 15]]]]), 2, output_size=(6, 6)), ValueError,
     'invalid output_size "(6, 6)" (dim 0 must be between 2 and 6)'),
]


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_errors(i):
    fn, exc, text = ERRORS[i]
    with pytest.raises(exc) as e:
        fn()
    assert text in str(e.value)


# -- random ops: structure, scaling, reproducibility ------------------------------------------------------------------
def test_feature_dropout_masks_whole_channels():
    gg.manual_seed(0)
    y = F.dropout2d(gg.ones(4, 8, 3, 3), 0.5)
    v = y.numpy().reshape(32, 9)
    assert set(np.unique(v).tolist()) <= {0.0, 2.0} and (v == v[:, :1]).all()
    y1 = F.dropout1d(gg.ones(8, 5), 0.25)  # unbatched (C, L)
    v1 = y1.numpy()
    assert np.isclose(v1, 0.0).sum() + np.isclose(v1, 4 / 3).sum() == 40 and (v1 == v1[:, :1]).all()
    assert F.dropout3d(gg.ones(2, 3, 2, 2), 0.5, training=False).tolist() == gg.ones(2, 3, 2, 2).tolist()
    assert F.dropout2d(gg.ones(1, 2, 2, 2), 1.0).tolist() == [[[[0., 0.], [0., 0.]]] * 2]
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        F.dropout2d(gg.ones(2, 3, 4))
    x = gg.ones(2, 3, 2) * 1.0
    assert F.dropout1d(x, 0.5, inplace=True) is x


def test_alpha_dropout_keeps_mean_and_variance_and_defaults_to_eval():
    x = gg.randn(200000)
    assert F.alpha_dropout(x, 0.5) is x  # NOTE: training=False by default
    y = F.alpha_dropout(x, 0.2, training=True).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
    a = 1 / np.sqrt((1.7580993408473766 ** 2 * 0.2 + 1) * 0.8)
    close(np.unique(y[np.isclose(y, -1.7580993408473766 * a * 0.8)])[:1], [-1.7580993408473766 * a * 0.8])


def test_gumbel_softmax_soft_hard_and_straight_through():
    gg.manual_seed(1)
    lg = T([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]], requires_grad=True)
    ys = F.gumbel_softmax(lg, tau=0.5)
    close(ys.sum(-1), [1.0, 1.0])
    yh = F.gumbel_softmax(lg, hard=True)
    assert sorted(yh.detach().numpy().ravel().tolist()) == [0, 0, 0, 0, 1, 1]
    (yh * T([[1., 2., 3.], [1., 2., 3.]])).sum().backward()
    assert np.abs(lg.grad.numpy()).sum() > 0
    close(lg.grad.sum(-1), [0.0, 0.0])  # softmax's gradient sums to 0 along dim
    with pytest.warns(UserWarning, match="deprecated"):
        F.gumbel_softmax(lg, eps=1e-3)


# -- in-place activations under autograd -----------------------------------------------------------------------------
@pytest.mark.parametrize("name,args,expected", [
    ("hardtanh", (), [-1.0, -1.0, 0.4, 1.0]), ("relu6", (), [0.0, 0.0, 0.4, 6.0]),
    ("hardswish", (), [0.0, -0.3333, 0.2267, 7.0]), ("hardsigmoid", (), [0.0, 0.1667, 0.5667, 1.0]),
    ("celu", (0.5,), [-0.5, -0.4908, 0.4, 7.0]), ("threshold", (0.3, -2.0), [-2.0, -2.0, 0.4, 7.0])])
def test_inplace_activation_records_graph(name, args, expected):
    x = T([-4.0, -1.0, 0.2, 3.5], requires_grad=True)
    y = x * 2
    z = getattr(F, name)(y, *args, inplace=True)
    assert z is y
    close(z, expected, tol=1e-4)
    (z * z).sum().backward()
    if torch is not None:
        xt = torch.tensor([-4.0, -1.0, 0.2, 3.5], requires_grad=True)
        yt = xt * 2
        zt = getattr(TF, name)(yt, *args, inplace=True)
        (zt * zt).sum().backward()
        close(x.grad, xt.grad.numpy())
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        getattr(F, name)(x, *args, inplace=True)


# -- modules: reprs, defaults, forward ---------------------------------------------------------------------------
@pytest.mark.parametrize("mod,text", [
    (lambda: nn.Dropout2d(), "Dropout2d(p=0.5, inplace=False)"), (lambda: nn.AlphaDropout(0.2),
                                                                  "AlphaDropout(p=0.2, inplace=False)"),
    (lambda: nn.Dropout1d(0.1, True), "Dropout1d(p=0.1, inplace=True)"), (lambda: nn.Dropout3d(), "Dropout3d(p=0.5, inplace=False)"),
    (lambda: nn.PoissonNLLLoss(), "PoissonNLLLoss()"), (lambda: nn.GaussianNLLLoss(), "GaussianNLLLoss()"),
    (lambda: nn.TripletMarginLoss(), "TripletMarginLoss()"), (lambda: nn.MultiMarginLoss(), "MultiMarginLoss()"),
    (lambda: nn.MultiLabelSoftMarginLoss(reduction="sum"), "MultiLabelSoftMarginLoss()"),
    (lambda: nn.LocalResponseNorm(2), "LocalResponseNorm(2, alpha=0.0001, beta=0.75, k=1.0)"),
    (lambda: nn.EmbeddingBag(10, 3), "EmbeddingBag(10, 3, mode='mean')"),
    (lambda: nn.EmbeddingBag(10, 3, max_norm=1.0, norm_type=1.0, mode="max", padding_idx=2),
     "EmbeddingBag(10, 3, max_norm=1.0, norm_type=1.0, mode='max', padding_idx=2)"),
    (lambda: nn.MaxUnpool2d((2, 3), 1, 1), "MaxUnpool2d(kernel_size=(2, 3), stride=(1, 1), padding=(1, 1))")])
def test_module_reprs(mod, text):
    assert repr(mod()) == text


def test_loss_modules_forward():
    assert nn.TripletMarginLoss().margin == 1.0 and nn.TripletMarginLoss().p == 2.0
    close(nn.MarginRankingLoss(0.5, reduction="sum")(T([1., 2, 3]), T([2., 2, 1]), T([1., -1, 1])), 2.0)
    close(nn.HingeEmbeddingLoss()(T([0.5, 2., -1]), T([1., -1, 1])), -1 / 6)
    close(nn.CosineEmbeddingLoss()(T([1., 0]), T([0., 1]), T(1.)), 1.0)
    close(nn.PoissonNLLLoss(reduction="none")(T([0., 1.]), T([1., 2.])), [1.0, 0.7182820])
    close(nn.GaussianNLLLoss()(T([1., 2.]), T([0., 0.]), T([1., 4.])), 0.8465736)
    close(nn.MultiMarginLoss(weight=T([1., 1, 1, 2]))(T([[0.1, 0.2, 0.4, 0.8]]), T([3])), 0.65)
    close(nn.MultiLabelSoftMarginLoss()(T([[0., 0.]]), T([[1., 0.]])), 0.6931472)
    close(nn.LocalResponseNorm(2, 1., 1., 1.)(T([[[1.], [2.], [3.]]])), [[[0.6666667], [0.5714286], [0.4]]])
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        nn.MultiMarginLoss(p=3)


def test_embedding_bag_module_and_unpool_module():
    bag = nn.EmbeddingBag.from_pretrained(T(W6), mode="sum", padding_idx=5)
    assert not bag.weight.requires_grad and list(bag.state_dict()) == ["weight"]
    close(bag(T([1, 2, 4, 5]), T([0, 2])), [[6., 8.], [8., 9.]])
    gg.manual_seed(0)
    b2 = nn.EmbeddingBag(4, 2, padding_idx=1)
    close(b2.weight[1], [0.0, 0.0])
    pool = nn.MaxPool2d(2, return_indices=True)
    x = T([[[[1., 5, 2, 0], [3, 4, 8, 1], [0, 0, 1, 1], [9, 0, 1, 2]]]])
    y, i = pool(x)
    close(nn.MaxUnpool2d(2)(y, i), [[[[0, 5, 0, 0], [0, 0, 8, 0], [0, 0, 0, 0], [9, 0, 0, 2]]]])


# -- full backward hooks -------------------------------------------------------------------------------------------
def test_full_backward_hooks_semantics():
    log = []
    lin = nn.Linear(3, 2)
    with gg.no_grad():
        lin.weight.copy_(T(np.arange(6.0).reshape(2, 3) / 10, dtype=gg.float32))
        lin.bias.copy_(T([0.5, -0.5]))

    def pre(m, go):
        log.append(("pre", go[0].tolist()))
        return (go[0] * 3,)

    def hook(m, gi, go):
        log.append(("hook", gi[0].tolist(), go[0].tolist()))
        return (gi[0] * 2,)
    h1 = lin.register_full_backward_hook(hook)
    lin.register_full_backward_pre_hook(pre)
    x = T([[1., 2., 3.]], requires_grad=True)
    (lin(x) * T([[1., 2.]])).sum().backward()
    assert log[0] == ("pre", [[1.0, 2.0]])
    close(log[1][1], [[1.8, 2.7, 3.6]])
    close(log[1][2], [[3.0, 6.0]])
    close(x.grad, [[3.6, 5.4, 7.2]])
    close(lin.weight.grad, [[3., 6., 9.], [6., 12., 18.]])
    h1.remove()
    log.clear()
    x.grad = None
    lin(x).sum().backward()
    assert [e[0] for e in log] == ["pre"]
    seen = []
    lin2 = nn.Linear(3, 2)
    lin2.register_full_backward_hook(lambda m, gi, go: seen.append((gi, len(go))))
    with pytest.warns(UserWarning, match="no inputs require gradients"):
        lin2(T([[1., 2., 3.]])).sum().backward()
    assert seen == [((None,), 1)]
    lin3 = nn.Linear(3, 2)
    lin3.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="invalid number of grad_input, got 2, but expected 1"):
        lin3(x).sum().backward()


# -- interpolate through index.resample: periodic interior slices + loose rows --------------------------------
def _interp_reference(x, out, mode, align_corners=False, scales=None):
    """A straightforward float64 reference: per axis (last first), each output position's taps read one by one."""
    y = x.astype(np.float64)
    for ax in reversed(range(2, x.ndim)):
        n_in, n_out = y.shape[ax], out[ax - 2]
        sc = None if scales is None else scales[ax - 2]
        cols = []
        for j in range(n_out):
            if mode == "nearest":
                s = np.float32(1.0 / sc if sc else n_in / n_out)
                taps = [(min(int(np.floor(np.float32(j) * s)), n_in - 1), 1.0)]
            else:  # PyTorch's float32 source index and weights (opmath of a float32 input)
                f = np.float32
                if align_corners:
                    src = f(j) * (f(n_in - 1) / f(n_out - 1) if n_out > 1 else f(0))
                else:
                    s = f(1.0 / sc) if sc else f(n_in) / f(n_out)
                    src = max(s * (f(j) + f(0.5)) - f(0.5), f(0))
                i0 = min(int(np.floor(src)), n_in - 1)
                lam = min(max(src - f(i0), f(0)), f(1))
                taps = [(i0, float(f(1) - lam)), (min(i0 + 1, n_in - 1), float(lam))]
            with np.errstate(invalid="ignore"):
                cols.append(sum(w * np.take(y, i, axis=ax) for i, w in taps))
        y = np.stack(cols, axis=ax)
    return y


@pytest.mark.parametrize("shape,kw", [
    ((2, 3, 8, 8), dict(scale_factor=2, mode="bilinear", align_corners=False)),
    ((2, 3, 8, 6), dict(scale_factor=3, mode="bilinear", align_corners=False)),
    ((2, 3, 8, 8), dict(scale_factor=0.5, mode="bilinear", align_corners=False)),
    ((2, 3, 9, 8), dict(scale_factor=1.5, mode="bilinear", align_corners=False)),
    ((2, 3, 8, 8), dict(size=(13, 5), mode="bilinear", align_corners=True)),
    ((1, 2, 1, 1), dict(scale_factor=4, mode="bilinear", align_corners=False)),
    ((2, 3, 8, 8), dict(scale_factor=2, mode="nearest")),
    ((2, 3, 8, 8), dict(scale_factor=0.5, mode="nearest")),
    ((2, 3, 6, 10), dict(size=(15, 4), mode="nearest")),
    ((0, 3, 8, 8), dict(scale_factor=2, mode="bilinear", align_corners=False)),
])
def test_interpolate_resample_paths(shape, kw):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(np.float32)
    if x.size:
        x.reshape(-1)[::17] = INF
        x.reshape(-1)[5::23] = np.nan
    a = T(x, requires_grad=True)
    y = F.interpolate(a, **kw)
    mode = kw["mode"].replace("bi", "")
    out = tuple(y.shape[2:])
    sc = kw.get("scale_factor")
    ref = _interp_reference(x, out, mode, kw.get("align_corners", False),
                            None if sc is None else (sc,) * (x.ndim - 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NOTE: inf * 0 weights give NaN quietly, as PyTorch
        got = y.detach().numpy()
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=2e-6)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(T(g))
    # the gradient is the adjoint: <dy, J dx> = <J^T dy, dx> on finite inputs
    xf = np.nan_to_num(x, posinf=1.0)
    b = T(xf, requires_grad=True)
    yb = F.interpolate(b, **kw)
    yb.backward(T(g))
    lhs = float((g.astype(np.float64) * _interp_reference(xf, out, mode, kw.get("align_corners", False),
                 None if sc is None else (sc,) * (x.ndim - 2))).sum())
    assert b.grad.numpy().astype(np.float64).ravel() @ xf.astype(np.float64).ravel() == pytest.approx(lhs, rel=1e-5,
                                                                                                  abs=1e-4)
    if torch is not None:
        # NOTE: finite input against torch: where a float32 source index is an exact integer, whether torch's weight
        # of the next tap is 0 or ~1e-8 (0 * inf = NaN or inf) depends on its compiler's FMA contraction
        t = torch.tensor(xf, requires_grad=True)
        ty = TF.interpolate(t, **kw)
        np.testing.assert_allclose(yb.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(b.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_interpolate_resample_double_backward():
    x = T(np.random.default_rng(2).standard_normal((1, 1, 5, 4)), requires_grad=True)
    assert gg.autograd.gradcheck(lambda v: F.interpolate(v, scale_factor=2, mode="bilinear", align_corners=False),
                                 (x,))
    assert gg.autograd.gradgradcheck(lambda v: F.interpolate(v, size=(7, 3), mode="bilinear", align_corners=True) ** 2,
                                     (x,))
    g, = gg.autograd.grad(F.interpolate(x, scale_factor=3, mode="nearest").sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), np.full((1, 1, 5, 4), 9.0))
