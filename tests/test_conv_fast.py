"""The fused Conv2d / ConvTranspose2d primitives (gpugrad.ops.conv, issue 14/11): values and gradients against
PyTorch (float64 and float32) over strides, paddings, dilations, groups (depthwise included), bias and unbatched
inputs; first and second order gradients by finite differences; the fused primitive against its composite."""
import itertools
import warnings

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.autograd import gradcheck, gradgradcheck
from gpugrad.ops import conv as C

F = gg.nn.functional
rng = np.random.default_rng(0)

# (x shape, out channels, kernel, stride, padding, dilation, groups)
CONV = [((2, 4, 7, 6), 4, (3, 3), 1, 1, 1, 1), ((2, 4, 7, 6), 6, (3, 3), 2, 1, 1, 2), ((1, 3, 9, 8), 2, (2, 3), (2, 3),
        (2, 1), (1, 2), 1), ((2, 4, 6, 6), 4, (3, 3), 2, 1, 1, 4), ((2, 4, 6, 7), 8, (3, 3), 1, "same", 2, 4),
        ((2, 2, 6, 6), 3, (4, 2), 1, "same", 1, 1), ((3, 4, 5, 5), 2, (1, 1), 1, 0, 1, 1), ((2, 4, 8, 8), 4, (3, 3),
        3, 0, 1, 4), ((1, 2, 5, 6), 2, (3, 3), 1, "valid", 1, 1), ((3, 5, 5), 4, (3, 3), 2, 2, 1, 1)]
# (x shape, weight shape, stride, padding, output_padding, dilation, groups)
CONVT = [((2, 4, 5, 6), (4, 3, 4, 4), 2, 1, 0, 1, 1), ((2, 4, 5, 5), (4, 2, 3, 3), 2, 1, 1, 1, 2),
         ((1, 2, 4, 5), (2, 3, 2, 3), (3, 2), (2, 0), (1, 1), (1, 2), 1), ((2, 4, 3, 3), (4, 1, 3, 3), 1, 0, 0, 2, 4),
         ((4, 5, 5), (4, 2, 3, 3), 2, 0, 1, 1, 1), ((1, 2, 4, 4), (2, 2, 3, 3), 1, 1, 1, 2, 1)]


def _conv_args(case):
    shape, oc, k, s, p, d, g = case
    x = rng.standard_normal(shape)
    return [x, rng.standard_normal((oc, shape[-3] // g) + k), rng.standard_normal(oc)], dict(stride=s, padding=p,
                                                                                            dilation=d, groups=g)


def _convt_args(case):
    xs, ws, s, p, op, d, g = case
    return [rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[1] * g)], dict(
        stride=s, padding=p, output_padding=op, dilation=d, groups=g)


def _vs_torch(name, arrays, kw, dtype, tol, bias):
    torch = pytest.importorskip("torch")
    arrays = [a.astype(dtype) for a in (arrays if bias else arrays[:2])]
    gi = [gg.tensor(a, requires_grad=True) for a in arrays]
    ti = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = getattr(F, name)(*gi, **kw), getattr(torch.nn.functional, name)(*ti, **kw)
    assert y.shape == tuple(ty.shape) and y.dtype == gg.tensor(arrays[0]).dtype
    go = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    y.backward(gg.tensor(go))
    ty.backward(torch.tensor(go))
    scale = max(1.0, float(np.abs(ty.detach().numpy()).max()))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=tol, atol=tol * scale)
    for a, b in zip(gi, ti):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=tol, atol=tol * float(np.abs(b.grad.numpy()).max()))


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", CONV, ids=str)
def test_conv2d_vs_torch(case, bias, dtype, tol):
    arrays, kw = _conv_args(case)
    _vs_torch("conv2d", arrays, kw, dtype, tol, bias)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", CONVT, ids=str)
def test_conv_transpose2d_vs_torch(case, bias, dtype, tol):
    arrays, kw = _convt_args(case)
    _vs_torch("conv_transpose2d", arrays, kw, dtype, tol, bias)


def test_conv2d_vs_torch_grid():
    """A denser sweep in float64: every stride/padding/dilation/groups/kernel combination PyTorch accepts."""
    torch = pytest.importorskip("torch")
    n = 0
    for k, s, p, d, g in itertools.product([(3, 3), (2, 3), (1, 1)], [1, 2, (2, 1), 3], [0, 1, (2, 1)], [1, 2], [1, 2]):
        x, w = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((4, 4 // g) + k)
        kw = dict(stride=s, padding=p, dilation=d, groups=g)
        try:
            torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), **kw)
        except RuntimeError:
            with pytest.raises(RuntimeError):
                F.conv2d(gg.tensor(x), gg.tensor(w), **kw)
            continue
        _vs_torch("conv2d", [x, w], kw, np.float64, 1e-10, False)
        n += 1
    assert n > 50


@pytest.mark.parametrize("case", CONV[:6] + CONV[-1:], ids=str)
def test_conv2d_gradgradcheck(case):
    arrays, kw = _conv_args(case)
    shape = arrays[0].shape
    arrays[0] = arrays[0][..., :5, :5] if len(shape) == 3 else arrays[0][:1, :, :5, :5]
    ts = [gg.tensor(a, requires_grad=True) for a in arrays]
    fn = lambda a, b, c: F.conv2d(a, b, c, **kw)  # noqa: E731
    assert gradcheck(fn, ts)
    assert gradgradcheck(fn, ts)


@pytest.mark.parametrize("case", CONVT, ids=str)
def test_conv_transpose2d_gradgradcheck(case):
    arrays, kw = _convt_args(case)
    arrays[0] = arrays[0][..., :3, :3] if arrays[0].ndim == 3 else arrays[0][:1, :, :3, :3]
    ts = [gg.tensor(a, requires_grad=True) for a in arrays]
    fn = lambda a, b, c: F.conv_transpose2d(a, b, c, **kw)  # noqa: E731
    assert gradcheck(fn, ts)
    assert gradgradcheck(fn, ts)


@pytest.mark.parametrize("fn", [C.Conv2d, C.ConvTranspose2d])
def test_fused_matches_composite(fn):
    """The primitive against the composite that create_graph differentiates, values and gradients."""
    if fn is C.Conv2d:
        x, w, b = rng.standard_normal((2, 6, 7, 5)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
        kw = dict(stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(1, 2), groups=2)
    else:
        x, w, b = rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((4, 3, 4, 3)), rng.standard_normal(6)
        kw = dict(size=(10, 11), stride=(2, 2), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=2)
    outs = []
    for f in (fn.apply, fn.composite):
        ts = [gg.tensor(a, requires_grad=True) for a in (x, w, b)]
        y = f(*ts, **kw)
        (y * gg.tensor(np.arange(y.numel()).reshape(y.shape) % 7)).sum().backward()
        outs.append([y.detach().numpy()] + [t.grad.numpy() for t in ts])
    for a, b_ in zip(*outs):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)


def test_float16_computes_in_float32():
    x, w, b = (rng.standard_normal(s).astype(np.float16) for s in ((2, 3, 6, 6), (4, 3, 3, 3), (4,)))
    ts = [gg.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*ts, padding=1)
    y.backward(gg.ones_like(y))
    ref = [gg.tensor(a.astype(np.float32), requires_grad=True) for a in (x, w, b)]
    yr = F.conv2d(*ref, padding=1)
    yr.backward(gg.ones_like(yr))
    assert y.dtype == gg.float16 and ts[0].grad.dtype == gg.float16
    np.testing.assert_array_equal(y.detach().numpy(), yr.detach().numpy().astype(np.float16))
    for a, r in zip(ts, ref):
        np.testing.assert_array_equal(a.grad.numpy(), r.grad.numpy().astype(np.float16))


def test_chunked_equals_one_chunk(monkeypatch):
    """Many small column chunks (and depthwise row chunks) give the one-chunk result."""
    x, w = rng.standard_normal((3, 4, 9, 7)), rng.standard_normal((4, 4, 3, 3))
    wd = rng.standard_normal((4, 1, 3, 3))
    res = []
    for chunk in (1 << 26, 700):
        monkeypatch.setitem(C._CHUNK, True, chunk)
        got = []
        for ww, g in ((w, 1), (wd, 4)):
            ts = [gg.tensor(x, requires_grad=True), gg.tensor(ww, requires_grad=True)]
            y = F.conv2d(*ts, stride=2, padding=1, groups=g)
            y.backward(gg.tensor(np.cos(np.arange(y.numel())).reshape(y.shape)))
            got += [y.detach().numpy(), ts[0].grad.numpy(), ts[1].grad.numpy()]
        res.append(got)
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_dirty_memory_reaches_no_result():
    """Recycled memory full of signalling NaNs: the bias is added to the valid outputs only (the grid's tail stays
    uninitialised and must not warn), and pixels no window reads (1x1 kernel, stride 2) get exact zero gradients
    (the input gradient skips zero-filling only when every pixel is written)."""
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 3, 9, 9), (4, 3, 3, 3), (4,)))
    w1 = rng.standard_normal((4, 3, 1, 1)).astype(np.float32)
    for _ in range(10):
        junk = [np.full(288 * k, 0x7fa00000, dtype=np.uint32) for k in range(1, 9) for _ in range(3)]
        del junk  # NOTE: frees same-sized blocks for the next allocations to reuse
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            y = F.conv2d(*(gg.tensor(a) for a in (x, w, b)), stride=2, padding=1)
            ts = [gg.tensor(x, requires_grad=True), gg.tensor(w1, requires_grad=True)]
            F.conv2d(*ts, stride=2).sum().backward()
        assert np.isfinite(y.numpy()).all()
        gx = ts[0].grad.numpy()
        assert not gx[:, :, 1::2].any() and not gx[:, :, :, 1::2].any()
        np.testing.assert_allclose(gx[:, :, ::2, ::2], np.broadcast_to(w1.sum(0)[:, 0, 0, None, None], (2, 3, 5, 5)),
                                   rtol=1e-6)
