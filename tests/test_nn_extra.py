"""The everyday nn ops: literal values, PyTorch parity (when torch is importable), reprs, state_dict keys, errors."""
import numpy as np
import pytest

import gpugrad as gg
from conftest import to_np

F, nn = gg.nn.functional, gg.nn
try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # NOTE: the torch comparisons skip themselves; the literal values always run
    torch = TF = None

rng = np.random.default_rng(0)
r = lambda *s: rng.standard_normal(s)  # noqa: E731
X = [-4.0, -3.0, -1.0, 0.0, 0.5, 3.0, 6.0, 7.0]

# name, gpugrad fn, torch fn name/lambda, inputs, literal output (or None), literal gradient of out.sum() (or None)
CASES = [
    ("hardtanh", F.hardtanh, "hardtanh", [X], [-1, -1, -1, 0, 0.5, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0, 0]),
    ("relu6", F.relu6, "relu6", [X], [0, 0, 0, 0, 0.5, 3, 6, 6], [0, 0, 0, 0, 1, 1, 0, 0]),
    ("hardswish", F.hardswish, "hardswish", [X], [0, 0, -1 / 3, 0, 7 / 24, 3, 6, 7], [0, 0, 1 / 6, 0.5, 2 / 3, 1, 1, 1]),
    ("hardsigmoid", F.hardsigmoid, "hardsigmoid", [X], [0, 0, 1 / 3, 0.5, 7 / 12, 1, 1, 1],
     [0, 0, 1 / 6, 1 / 6, 1 / 6, 0, 0, 0]),
    ("softsign", F.softsign, "softsign", [[-1.0, 0.0, 3.0]], [-0.5, 0, 0.75], [0.25, 1, 1 / 16]),
    ("threshold", lambda x: F.threshold(x, 0.5, -9.0), lambda x: TF.threshold(x, 0.5, -9.0), [X],
     [-9, -9, -9, -9, -9, 3, 6, 7], [0, 0, 0, 0, 0, 1, 1, 1]),
    ("celu", lambda x: F.celu(x, 2.0), lambda x: TF.celu(x, 2.0), [[-2.0, 1.0]], [2 * np.expm1(-1), 1], [np.exp(-1), 1]),
    ("glu", lambda x: F.glu(x, 0), lambda x: TF.glu(x, 0), [[1.0, 2.0, 0.0, 0.0]], [0.5, 1.0], [0.5, 0.5, 0.25, 0.5]),
    ("prelu", F.prelu, "prelu", [[[-1.0, 2.0], [-2.0, 0.0]], [0.5, 0.25]], [[-0.5, 2], [-1, 0]], [[0.5, 1], [0.5, 0.25]]),
    ("softmin", lambda x: F.softmin(x, 0), lambda x: TF.softmin(x, 0), [[0.0, np.log(3.0)]], [0.75, 0.25], [0, 0]),
    ("bce", F.binary_cross_entropy, "binary_cross_entropy", [[0.5, 0.0, 1.0], [1.0, 0.0, 0.0]],
     (np.log(2) + 100) / 3, [-2 / 3, 0, 1e12 / 3]),
    ("bce_none_weight", lambda x, t: F.binary_cross_entropy(x, t, gg.tensor([2.0]), reduction="none"),
     lambda x, t: TF.binary_cross_entropy(x, t, torch.tensor([2.0], dtype=torch.float64), reduction="none"),
     [[0.25], [1.0]], [2 * np.log(4)], [-8]),
    ("kl_div_batchmean", lambda x, t: F.kl_div(x, t, reduction="batchmean"),
     lambda x, t: TF.kl_div(x, t, reduction="batchmean"), [[[np.log(0.5), np.log(0.5)]], [[1.0, 0.0]]], np.log(2), [[-1, 0]]),
    ("kl_div_log_target_sum", lambda x, t: F.kl_div(x, t, reduction="sum", log_target=True),
     lambda x, t: TF.kl_div(x, t, reduction="sum", log_target=True), [[0.0, 0.0], [0.0, np.log(2.0)]], 2 * np.log(2),
     [-1, -2]),
    ("cosine_similarity", lambda a, b: F.cosine_similarity(a, b, dim=0), lambda a, b: TF.cosine_similarity(a, b, dim=0),
     [[3.0, 4.0], [4.0, 3.0]], 24 / 25, [0.0448, -0.0336]),
    ("pairwise_distance", lambda a, b: F.pairwise_distance(a, b, eps=0.0), lambda a, b: TF.pairwise_distance(a, b, eps=0.0),
     [[[3.0, 0.0]], [[0.0, 4.0]]], [5.0], [[0.6, -0.8]]),
    ("rms_norm", lambda x: F.rms_norm(x, (2,), eps=0.0), lambda x: TF.rms_norm(x, (2,), eps=0.0), [[3.0, 4.0]],
     [3 / np.sqrt(12.5), 4 / np.sqrt(12.5)], None),
    ("instance_norm", F.instance_norm, "instance_norm", [[[[1.0, 3.0]]]], [[[-1 / np.sqrt(1 + 1e-5),
                                                                              1 / np.sqrt(1 + 1e-5)]]], [[[0, 0]]]),
    ("pixel_shuffle", lambda x: F.pixel_shuffle(x, 2), lambda x: TF.pixel_shuffle(x, 2),
     [np.arange(4.0).reshape(4, 1, 1)], [[[0, 1], [2, 3]]], np.ones((4, 1, 1))),
    ("pixel_unshuffle", lambda x: F.pixel_unshuffle(x, 2), lambda x: TF.pixel_unshuffle(x, 2),
     [np.arange(4.0).reshape(1, 2, 2)], np.arange(4.0).reshape(4, 1, 1), np.ones((1, 2, 2))),
    ("conv1d", lambda x, w: F.conv1d(x, w, padding=1), lambda x, w: TF.conv1d(x, w, padding=1),
     [[[1.0, 2.0, 3.0]], [[[1.0, 0.0, -1.0]]]], [[-2, -2, 2]], None),
    ("conv_transpose1d", lambda x, w: F.conv_transpose1d(x, w, stride=2), lambda x, w: TF.conv_transpose1d(x, w, stride=2),
     [[[1.0, 2.0]], [[[1.0, 10.0, 100.0]]]], [[1, 10, 102, 20, 200]], None),
    ("conv_transpose2d", lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
     lambda x, w: TF.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
     [[[[1.0, 2.0]]], [[[[1.0, 2.0], [3.0, 4.0]]]]], [[[4, 6, 8]]], None),
    ("max_pool1d", lambda x: F.max_pool1d(x, 2), lambda x: TF.max_pool1d(x, 2), [[[1.0, 5.0, 2.0, 2.0, 9.0]]],
     [[5, 2]], [[0, 1, 1, 0, 0]]),
    ("avg_pool1d", lambda x: F.avg_pool1d(x, 2, 1, 1), lambda x: TF.avg_pool1d(x, 2, 1, 1), [[[2.0, 4.0]]],
     [[1, 3, 2]], [[1, 1]]),
    ("adaptive_avg_pool1d", lambda x: F.adaptive_avg_pool1d(x, 2), lambda x: TF.adaptive_avg_pool1d(x, 2),
     [[[1.0, 2.0, 6.0]]], [[1.5, 4]], [[0.5, 1, 0.5]]),
    ("adaptive_max_pool2d", lambda x: F.adaptive_max_pool2d(x, (1, 2)), lambda x: TF.adaptive_max_pool2d(x, (1, 2)),
     [[[[1.0, 7.0, 2.0], [4.0, 3.0, 9.0]]]], [[[7, 9]]], [[[0, 1, 0], [0, 0, 1]]]),
    ("interpolate_nearest", lambda x: F.interpolate(x, size=3), lambda x: TF.interpolate(x, size=3),
     [[[[1.0, 2.0]]]], [[[1, 1, 2]]], [[[2, 1]]]),
    ("interpolate_nearest_exact", lambda x: F.interpolate(x, size=3, mode="nearest-exact"),
     lambda x: TF.interpolate(x, size=3, mode="nearest-exact"), [[[[1.0, 2.0]]]], [[[1, 2, 2]]], [[[1, 2]]]),
    ("interpolate_linear", lambda x: F.interpolate(x, scale_factor=2, mode="linear"),
     lambda x: TF.interpolate(x, scale_factor=2, mode="linear"), [[[[0.0, 4.0]]]], [[[0, 1, 3, 4]]], [[[2, 2]]]),
    ("interpolate_linear_ac", lambda x: F.interpolate(x, size=3, mode="linear", align_corners=True),
     lambda x: TF.interpolate(x, size=3, mode="linear", align_corners=True), [[[[0.0, 4.0]]]], [[[0, 2, 4]]], [[[1.5, 1.5]]]),
    ("interpolate_bilinear", lambda x: F.interpolate(x, size=(1, 3), mode="bilinear", align_corners=True),
     lambda x: TF.interpolate(x, size=(1, 3), mode="bilinear", align_corners=True), [[[[[0.0, 4.0], [8.0, 0.0]]]]],
     [[[[0, 2, 4]]]], [[[[1.5, 1.5], [0, 0]]]]),
    ("interpolate_bicubic", lambda x: F.interpolate(x, scale_factor=2, mode="bicubic"),
     lambda x: TF.interpolate(x, scale_factor=2, mode="bicubic"), [[[[[0.0, 1.0]]]]],
     np.tile([-0.10546875, 0.2265625, 0.7734375, 1.10546875], (1, 1, 2, 1)), [[[[4, 4]]]]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_values_grads_and_torch(case):
    name, fn, tfn, ins, out, grad = case
    xs = [gg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in ins]
    y = fn(*xs)
    if out is not None:
        np.testing.assert_allclose(to_np(y), out, rtol=1e-6, atol=1e-9)
    y.sum().backward()
    if grad is not None:
        np.testing.assert_allclose(to_np(xs[0].grad), grad, rtol=1e-4, atol=1e-9)
    if torch is None:
        return
    ts = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in ins]
    ty = (getattr(TF, tfn) if isinstance(tfn, str) else tfn)(*ts)
    np.testing.assert_allclose(to_np(y), ty.detach().numpy(), rtol=1e-7, atol=1e-12)
    ty.sum().backward()
    for a, b in zip(xs, ts):
        np.testing.assert_allclose(to_np(a.grad), b.grad.numpy(), rtol=1e-6, atol=1e-12)


INTERP = [(mode, kw) for mode in ("nearest", "nearest-exact", "bilinear", "bicubic")
          for kw in (dict(size=(5, 7)), dict(scale_factor=1.7), dict(scale_factor=(0.5, 2.3)),
                     dict(scale_factor=1.7, recompute_scale_factor=True), dict(size=(3, 2), align_corners=True))
          if not ("align_corners" in kw and "nearest" in mode)]


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.parametrize("mode,kw", INTERP, ids=[f"{m}-{k}" for m, k in INTERP])
def test_interpolate_matches_torch(mode, kw):
    a = r(2, 3, 4, 5).astype(np.float32)
    y = F.interpolate(gg.tensor(a), mode=mode, **kw)
    ty = TF.interpolate(torch.tensor(a), mode=mode, **kw)
    assert y.dtype == gg.float32 and tuple(y.shape) == tuple(ty.shape)
    np.testing.assert_allclose(to_np(y), ty.numpy(), rtol=1e-5, atol=1e-5)


CONVT = [(1, 0, 0, 1, 1), (2, 1, 1, 1, 1), (2, 0, 1, 2, 1), (3, 2, 2, 1, 1), (1, 0, 1, 1, 2), ((1, 2), (0, 1), (0, 1), 2, 1)]


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.parametrize("s,p,op,g,d", CONVT)
def test_conv_transpose2d_matches_torch(s, p, op, g, d):
    x, w, b = r(2, 4, 3, 4), r(4, 3, 3, 2), r(3 * g)
    gx, tx = gg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = F.conv_transpose2d(gx, gg.tensor(w), gg.tensor(b), s, p, op, g, d)
    ty = TF.conv_transpose2d(tx, torch.tensor(w), torch.tensor(b), s, p, op, g, d)
    np.testing.assert_allclose(to_np(y), ty.detach().numpy(), rtol=1e-9, atol=1e-9)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(to_np(gx.grad), tx.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_conv3d_and_indices_match_torch():
    if torch is None:
        pytest.skip("torch is not installed")
    x, w = r(2, 4, 5, 6, 4), r(6, 2, 3, 2, 2)
    y = F.conv3d(gg.tensor(x), gg.tensor(w), stride=(2, 1, 1), padding=(1, 0, 1), dilation=(1, 2, 1), groups=2)
    ty = TF.conv3d(torch.tensor(x), torch.tensor(w), stride=(2, 1, 1), padding=(1, 0, 1), dilation=(1, 2, 1), groups=2)
    np.testing.assert_allclose(to_np(y), ty.numpy(), rtol=1e-9, atol=1e-9)
    a = r(2, 3, 7, 5)
    i = F.adaptive_max_pool2d(gg.tensor(a), (3, 4), return_indices=True)[1]
    assert i.dtype == gg.int64
    assert np.array_equal(to_np(i), TF.adaptive_max_pool2d(torch.tensor(a), (3, 4), return_indices=True)[1].numpy())
    v = r(2, 3, 8)
    j = F.max_pool1d(gg.tensor(v), 3, 2, 1, ceil_mode=True, return_indices=True)[1]
    assert np.array_equal(to_np(j), TF.max_pool1d(torch.tensor(v), 3, 2, 1, ceil_mode=True, return_indices=True)[1].numpy())


def test_literal_conv3d_and_indices():
    y = F.conv3d(gg.ones(1, 2, 2, 2), gg.ones(1, 1, 2, 2, 2))  # unbatched
    assert y.shape == (1, 1, 1, 1) and y.item() == 8
    _, i = F.adaptive_max_pool2d(gg.tensor([[[1.0, 7.0, 2.0], [4.0, 3.0, 9.0]]]), (1, 2), return_indices=True)
    assert i.tolist() == [[[1, 5]]]


ERRORS = [
    (lambda: F.glu(gg.zeros(3)), RuntimeError, "Halving dimension must be even, but dimension 0 is size 3"),
    (lambda: F.glu(gg.tensor(1.0)), RuntimeError, "glu does not support scalars"),
    (lambda: F.celu(gg.zeros(2), 0.0), RuntimeError, "alpha cannot be 0 for CELU"),
    (lambda: F.prelu(gg.zeros(2, 3), gg.zeros(2)), RuntimeError, "Found parameter numbers = 2 and channel size = 3"),
    (lambda: F.binary_cross_entropy(gg.tensor([1.5]), gg.tensor([1.0])), RuntimeError, "between 0 and 1"),
    (lambda: F.binary_cross_entropy(gg.tensor([0.5, 0.5]), gg.tensor([1.0])), ValueError, "different to the input size"),
    (lambda: F.binary_cross_entropy(gg.tensor([0.5]), gg.tensor([1.0]), gg.ones(1, requires_grad=True)), RuntimeError,
     "not differentiable with respect to argument 'weight'"),
    (lambda: F.kl_div(gg.zeros(2), gg.zeros(2), reduction="bad"), ValueError, "bad is not a valid value for reduction"),
    (lambda: F.interpolate(gg.zeros(1, 1, 3), size=4, mode="bilinear"), NotImplementedError, "bilinear mode needs 4D"),
    (lambda: F.interpolate(gg.zeros(1, 1, 3), size=4, align_corners=True), ValueError, "align_corners option"),
    (lambda: F.interpolate(gg.zeros(1, 1, 3)), ValueError, "either size or scale_factor should be defined"),
    (lambda: F.interpolate(gg.zeros(1, 1, 3), size=2, scale_factor=2.0), ValueError, "only one of size or scale_factor"),
    (lambda: F.pixel_shuffle(gg.zeros(1, 3, 2, 2), 2), RuntimeError, "input.size\\(-3\\)=3 is not divisible by 4"),
    (lambda: F.conv_transpose2d(gg.zeros(1, 2, 3, 3), gg.zeros(2, 1, 3, 3), stride=2, output_padding=2), RuntimeError,
     "output padding must be smaller than either stride or dilation"),
    (lambda: F.conv_transpose2d(gg.zeros(1, 3, 3, 3), gg.zeros(2, 1, 3, 3)), RuntimeError,
     "expected input\\[1, 3, 3, 3\\] to have 2 channels, but got 3 channels instead"),
    (lambda: F.conv1d(gg.zeros(3, 4, 5, 6), gg.zeros(1, 4, 2)), RuntimeError, "Expected 2D \\(unbatched\\) or 3D"),
    (lambda: F.conv1d(gg.zeros(3, 4, 5), gg.zeros(1, 3, 2)), RuntimeError, "to have 3 channels, but got 4 channels"),
    (lambda: F.max_pool1d(gg.zeros(3, 4, 5, 6), 2), RuntimeError, "Expected 2D or 3D"),
    (lambda: F.rms_norm(gg.zeros(2, 3), (2,)), RuntimeError, "expected input with shape \\[\\*2\\]"),
    (lambda: F.instance_norm(gg.zeros(1, 3, 1)), ValueError, "Expected more than 1 spatial element"),
    (lambda: F.conv1d(np.zeros((1, 2, 3)), gg.zeros(1, 2, 2)), TypeError, "conv1d"),
]


@pytest.mark.parametrize("fn,exc,msg", ERRORS, ids=[e[2][:30] for e in ERRORS])
def test_errors(fn, exc, msg):
    with pytest.raises(exc, match=msg):
        fn()


REPRS = [
    (lambda: nn.Conv1d(2, 3, 3), "Conv1d(2, 3, kernel_size=(3,), stride=(1,))"),
    (lambda: nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1, groups=2, bias=False, dilation=2),
     "ConvTranspose2d(2, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(2, 2), output_padding=(1, 1), "
     "groups=2, bias=False)"),
    (lambda: nn.MaxPool1d(3, 2, 1), "MaxPool1d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)"),
    (lambda: nn.AvgPool1d(3, 2), "AvgPool1d(kernel_size=(3,), stride=(2,), padding=(0,))"),
    (lambda: nn.AdaptiveMaxPool2d((2, None)), "AdaptiveMaxPool2d(output_size=(2, None))"),
    (lambda: nn.Fold((4, 5), 2), "Fold(output_size=(4, 5), kernel_size=2, dilation=1, padding=0, stride=1)"),
    (lambda: nn.Unfold(2), "Unfold(kernel_size=2, dilation=1, padding=0, stride=1)"),
    (lambda: nn.Upsample(scale_factor=2), "Upsample(scale_factor=2.0, mode='nearest')"),
    (lambda: nn.Upsample(size=3, mode="bilinear"), "Upsample(size=3, mode='bilinear')"),
    (lambda: nn.PixelShuffle(2), "PixelShuffle(upscale_factor=2)"),
    (lambda: nn.Hardtanh(-2, 3, True), "Hardtanh(min_val=-2, max_val=3, inplace=True)"),
    (lambda: nn.ReLU6(), "ReLU6()"),
    (lambda: nn.Threshold(0.1, 20), "Threshold(threshold=0.1, value=20)"),
    (lambda: nn.Softmin(1), "Softmin(dim=1)"),
    (lambda: nn.GLU(), "GLU(dim=-1)"),
    (lambda: nn.CELU(), "CELU(alpha=1.0)"),
    (lambda: nn.PReLU(3), "PReLU(num_parameters=3)"),
    (lambda: nn.InstanceNorm1d(3), "InstanceNorm1d(3, eps=1e-05, momentum=0.1, affine=False, bias=False, "
     "track_running_stats=False)"),
    (lambda: nn.RMSNorm(3), "RMSNorm((3,), eps=None, elementwise_affine=True)"),
    (lambda: nn.BCELoss(), "BCELoss()"),
    (lambda: nn.ParameterDict({"b": nn.Parameter(gg.zeros(2, 1)), "a": nn.Parameter(gg.zeros(3))}),
     "ParameterDict(\n    (a): Parameter containing: [torch.FloatTensor of size 3]\n"
     "    (b): Parameter containing: [torch.FloatTensor of size 2x1]\n)"),
]


@pytest.mark.parametrize("make,text", REPRS, ids=[t[:20] for _, t in REPRS])
def test_reprs(make, text):
    assert repr(make()) == text


def test_modules_state_dict_and_forward():
    assert list(nn.InstanceNorm2d(3, affine=True).state_dict()) == ["weight", "bias"]
    assert list(nn.InstanceNorm2d(3, track_running_stats=True).state_dict()) == ["running_mean", "running_var",
                                                                                  "num_batches_tracked"]
    m = nn.ConvTranspose2d(2, 4, 3, groups=2)
    assert m.weight.shape == (2, 2, 3, 3) and list(m.state_dict()) == ["weight", "bias"]
    assert m(gg.zeros(2, 3, 3)).shape == (4, 5, 5) and m(gg.zeros(2, 3, 3), output_size=(5, 5)).shape == (4, 5, 5)
    assert nn.Conv1d(2, 3, 3, padding=1, padding_mode="circular")(gg.zeros(1, 2, 5)).shape == (1, 3, 5)
    assert nn.PReLU().weight.tolist() == [0.25]
    assert nn.RMSNorm([2, 3]).weight.shape == (2, 3)
    n = nn.InstanceNorm1d(2, track_running_stats=True)
    n(gg.tensor([[1.0, 3.0], [0.0, 0.0]]))  # unbatched (C, L)
    np.testing.assert_allclose(to_np(n.running_mean), [0.2, 0.0])
    np.testing.assert_allclose(to_np(n.running_var), [0.9 + 0.1 * 2.0, 0.9])
    assert n.num_batches_tracked.item() == 0  # as PyTorch's InstanceNorm
    pd = nn.ParameterDict({"w": gg.ones(2)})
    assert isinstance(pd["w"], nn.Parameter) and [k for k, _ in pd.named_parameters()] == ["w"]
    loss = nn.KLDivLoss(reduction="batchmean")(gg.tensor([[np.log(0.5), np.log(0.5)]]), gg.tensor([[0.5, 0.5]]))
    assert abs(loss.item()) < 1e-12
    assert nn.BCELoss(reduction="sum")(gg.tensor([0.5, 0.5]), gg.tensor([1.0, 0.0])).item() == pytest.approx(2 * np.log(2))


def test_parameters_to_vector_round_trip():
    m = nn.Linear(2, 3)
    v = nn.utils.parameters_to_vector(m.parameters())
    assert v.shape == (9,)
    nn.utils.vector_to_parameters(gg.arange(9.0), m.parameters())
    assert m.weight.tolist() == [[0, 1], [2, 3], [4, 5]] and m.bias.tolist() == [6, 7, 8]
    with pytest.raises(RuntimeError, match="does not hold the 9 elements"):
        nn.utils.vector_to_parameters(gg.arange(8.0), m.parameters())
