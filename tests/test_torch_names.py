"""The torch.* functions and Tensor methods that wrap ops gpugrad has in another form (issue 11): each exists and
runs without torch; with torch, each is called in torch's positional and keyword forms and compared, gradients too."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as gg
from case_table import run_case

R = np.random.default_rng(0)


def _a(*shape):
    return R.standard_normal(shape)


X, Y, T01 = _a(3, 4), _a(3, 4), R.random((3, 4))
IDX = np.array([2, 0, 2], np.int64)
B = _a(3, 3)
SPD = B @ B.T + 3 * np.eye(3)
W = _a(10, 3)
EB_IDX, EB_OFF = np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 4, 4])
SIGN = np.sign(_a(3, 4))
TRI = np.array([1.0, -1.0, 1.0])

# name -> (call(m, *tensors), inputs, positions of the differentiable inputs). m is gpugrad or torch.
CASES = {
    "scatter": (lambda m, x: m.scatter(x, 0, m.tensor([[1, 0, 2, 1]]), 7.0), [X], (0,)),
    "scatter kw": (lambda m, x, y: m.scatter(x, dim=1, index=m.tensor([[0, 1], [2, 3], [1, 0]]), src=y[:, :2]), [X, Y], (0, 1)),
    "scatter_add": (lambda m, x, y: m.scatter_add(x, 0, m.tensor([[1, 0, 2, 1], [1, 1, 1, 1]]), y[:2]), [X, Y], (0, 1)),
    "index_add": (lambda m, x, y: m.index_add(x, 0, m.tensor(IDX), y, alpha=2.0), [X, Y], (0, 1)),
    "index_copy": (lambda m, x, y: m.index_copy(x, 1, m.tensor([3, 0, 1]), y[:, :3]), [X, Y], (0, 1)),
    "index_fill": (lambda m, x: m.index_fill(x, dim=1, index=m.tensor([0, 2]), value=-1.5), [X], (0,)),
    "masked_scatter": (lambda m, x, y: m.masked_scatter(x, m.tensor(T01 > 0.5), y), [X, Y], (0, 1)),
    "flip": (lambda m, x: m.flip(x, (0, 1)), [X], (0,)),
    "flip kw": (lambda m, x: m.flip(x, dims=[1]), [X], (0,)),
    "fliplr": (lambda m, x: m.fliplr(x), [X], (0,)),
    "flipud": (lambda m, x: m.flipud(input=x), [X], (0,)),
    "diagonal": (lambda m, x: m.diagonal(x, 1), [X], (0,)),
    "diagonal kw": (lambda m, x: m.diagonal(x, offset=-1, dim1=1, dim2=0), [X], (0,)),
    "movedim": (lambda m, x: m.movedim(x.reshape(3, 2, 2), (0, 1), (2, 0)), [X], (0,)),
    "moveaxis": (lambda m, x: m.moveaxis(x, source=0, destination=1), [X], (0,)),
    "narrow": (lambda m, x: m.narrow(x, -1, 1, 2), [X], (0,)),
    "narrow kw": (lambda m, x: m.narrow(x, dim=0, start=1, length=2), [X], (0,)),
    "unbind": (lambda m, x: m.unbind(x, dim=1), [X], (0,)),
    "select": (lambda m, x: m.select(x, 1, -1), [X], (0,)),
    "swapdims": (lambda m, x: m.swapdims(x, 0, 1), [X], (0,)),
    "unflatten": (lambda m, x: m.unflatten(x, 1, (2, 2)), [X], (0,)),
    "broadcast_to": (lambda m, x: m.broadcast_to(x, (2, 3, 4)), [X], (0,)),
    "clone": (lambda m, x: m.clone(x), [X], (0,)),
    "eq": (lambda m, x, y: m.eq(x, y), [X, X], ()),
    "ge kw": (lambda m, x, y: m.ge(x, other=y), [X, Y], ()),
    "lt number": (lambda m, x: m.lt(x, 0.1), [X], ()),
    "cosine_similarity": (lambda m, x, y: m.cosine_similarity(x, y, 0, 1e-6), [X, Y], (0, 1)),
    "pairwise_distance": (lambda m, x, y: m.pairwise_distance(x, y, p=1.0, keepdim=True), [X, Y], (0, 1)),
    "pixel_shuffle": (lambda m, x: m.pixel_shuffle(x.reshape(1, 4, 3, 1), 2), [X], (0,)),
    "pixel_unshuffle": (lambda m, x: m.pixel_unshuffle(x.reshape(1, 1, 2, 6), downscale_factor=2), [X], (0,)),
    "prelu": (lambda m, x, w: m.prelu(x, w), [X, np.array([0.25])], (0, 1)),
    "threshold": (lambda m, x: m.threshold(x, 0.1, 20.0), [X], (0,)),
    "threshold kw": (lambda m, x: m.threshold(x, threshold=-0.2, value=0.5), [X], (0,)),
    "celu": (lambda m, x: m.celu(x), [X], (0,)),
    "celu alpha": (lambda m, x: m.celu(x, alpha=2.0), [X], (0,)),
    "selu": (lambda m, x: m.selu(x), [X], (0,)),
    "kl_div": (lambda m, x, t: m.kl_div(x, t), [X, T01], (0, 1)),
    "kl_div sum log_target": (lambda m, x, t: m.kl_div(x, t, 2, log_target=True), [X, Y], (0, 1)),
    "kl_div none": (lambda m, x, t: m.kl_div(x, t, reduction=0), [X, T01], (0, 1)),
    "poisson_nll_loss": (lambda m, x, t: m.poisson_nll_loss(x, t, True, False, 1e-8, 1), [X, T01], (0,)),
    "poisson_nll_loss kw": (lambda m, x, t: m.poisson_nll_loss(x.abs(), t, log_input=False, full=True, eps=1e-6,
                                                               reduction=2), [X, T01 * 3], (0,)),
    "margin_ranking_loss": (lambda m, a, b: m.margin_ranking_loss(a, b, m.tensor(SIGN), 0.3), [X, Y], (0, 1)),
    "margin_ranking_loss kw": (lambda m, a, b: m.margin_ranking_loss(a, b, m.tensor(SIGN), margin=0.1, reduction=0),
                               [X, Y], (0, 1)),
    "hinge_embedding_loss": (lambda m, x: m.hinge_embedding_loss(x, m.tensor(SIGN)), [X], (0,)),
    "hinge_embedding_loss kw": (lambda m, x: m.hinge_embedding_loss(x, m.tensor(SIGN), margin=0.5, reduction=2),
                                [X], (0,)),
    "triplet_margin_loss": (lambda m, a, p, n: m.triplet_margin_loss(a, p, n), [X, Y, X * 0.5], (0, 1, 2)),
    "triplet_margin_loss kw": (lambda m, a, p, n: m.triplet_margin_loss(a, p, n, margin=2.0, p=1.0, eps=1e-5,
                                                                        swap=True, reduction=0), [X, Y, X * 0.5],
                               (0, 1, 2)),
    "cosine_embedding_loss": (lambda m, a, b: m.cosine_embedding_loss(a, b, m.tensor(TRI)), [X, Y], (0, 1)),
    "cosine_embedding_loss kw": (lambda m, a, b: m.cosine_embedding_loss(a, b, m.tensor(TRI), margin=0.2,
                                                                         reduction=2), [X, Y], (0, 1)),
    "binary_cross_entropy_with_logits": (lambda m, x, t: m.binary_cross_entropy_with_logits(x, t, None, None, 2),
                                         [X, T01], (0,)),
    "rms_norm": (lambda m, x, w: m.rms_norm(x, (4,), w, 1e-5), [X, Y[0]], (0, 1)),
    "rms_norm kw": (lambda m, x: m.rms_norm(x, normalized_shape=[4]), [X], (0,)),
    "layer_norm": (lambda m, x, w, b: m.layer_norm(x, (4,), w, b, 1e-5, False), [X, Y[0], Y[1]], (0, 1, 2)),
    "group_norm": (lambda m, x, w: m.group_norm(x.reshape(1, 4, 3), 2, w, eps=1e-3), [X, Y[0]], (0, 1)),
    "batch_norm": (lambda m, x, w, b: m.batch_norm(x, w, b, None, None, True, 0.1, 1e-5, False),
                   [X, Y[0], Y[1]], (0, 1, 2)),
    "instance_norm": (lambda m, x, w, b: m.instance_norm(x.reshape(1, 3, 4), w, b, None, None, True, 0.1, 1e-5,
                                                         False), [X, Y[0, :3], Y[1, :3]], (0, 1, 2)),
    "instance_norm kw": (lambda m, x: m.instance_norm(x.reshape(3, 1, 4), weight=None, bias=None, running_mean=None,
                                                      running_var=None, use_input_stats=True, momentum=0.1, eps=1e-5,
                                                      cudnn_enabled=False), [X], (0,)),
    "embedding": (lambda m, w: m.embedding(w, m.tensor([[1, 2], [2, 9]])), [W], (0,)),
    "embedding padding": (lambda m, w: m.embedding(w, m.tensor([1, 2, 2, 9]), padding_idx=2), [W], (0,)),
    "embedding_bag sum": (lambda m, w: m.embedding_bag(w, m.tensor(EB_IDX), m.tensor(EB_OFF)), [W], (0,)),
    "embedding_bag mean": (lambda m, w: m.embedding_bag(w, m.tensor(EB_IDX), m.tensor(EB_OFF), False, 1), [W], (0,)),
    "embedding_bag max": (lambda m, w: m.embedding_bag(w, m.tensor(EB_IDX), m.tensor(EB_OFF), mode=2), [W], (0,)),
    "embedding_bag max padding": (lambda m, w: m.embedding_bag(w, m.tensor(EB_IDX), m.tensor(EB_OFF), False, 2,
                                                               False, None, False, 2), [W], (0,)),
    "embedding_bag mean padding": (lambda m, w: m.embedding_bag(w, m.tensor(EB_IDX), m.tensor(EB_OFF), False, 1,
                                                                False, None, False, 4), [W], (0,)),
    "embedding_bag sum float32": (lambda m, w: m.embedding_bag(w.float(), m.tensor(EB_IDX), m.tensor(EB_OFF)), [W],
                                  (0,)),
    "embedding_bag sum weights last": (lambda m, w, p: m.embedding_bag(w, m.tensor(EB_IDX), m.tensor([0, 3, 8]),
                                                                       per_sample_weights=p, include_last_offset=True),
                                       [W, _a(8)], (0, 1)),
    "alpha_dropout eval": (lambda m, x: m.alpha_dropout(x, 0.5, False), [X], (0,)),
    "dropout eval": (lambda m, x: m.dropout(x, p=0.3, train=False), [X], (0,)),
    "conv1d": (lambda m, x, w: m.conv1d(x.reshape(1, 3, 4), w.reshape(2, 3, 2), None, 1, 1), [X, Y], (0, 1)),
    "conv2d": (lambda m, x, w: m.conv2d(x.reshape(1, 1, 3, 4), w.reshape(1, 1, 2, 2), padding=1), [X, Y[0]], (0, 1)),
    "conv3d": (lambda m, x, w: m.conv3d(x.reshape(1, 1, 3, 2, 2), w.reshape(1, 1, 2, 2, 2), stride=1, padding=0,
                                        dilation=1, groups=1), [X, Y[:2]], (0, 1)),
    "conv_transpose1d": (lambda m, x, w: m.conv_transpose1d(x.reshape(1, 3, 4), w.reshape(3, 1, 4), stride=2),
                         [X, Y], (0, 1)),
    "conv_transpose2d": (lambda m, x, w: m.conv_transpose2d(x.reshape(1, 1, 3, 4), w.reshape(1, 1, 2, 2)),
                         [X, Y[0]], (0, 1)),
    "max_pool1d": (lambda m, x: m.max_pool1d(x.reshape(1, 3, 4), 2), [X], (0,)),
    "max_pool1d kw": (lambda m, x: m.max_pool1d(x.reshape(1, 3, 4), kernel_size=3, stride=2, padding=1, dilation=1,
                                                ceil_mode=True), [X], (0,)),
    "max_pool2d": (lambda m, x: m.max_pool2d(x.reshape(1, 1, 3, 4), 2, 1), [X], (0,)),
    "adaptive_max_pool1d": (lambda m, x: m.adaptive_max_pool1d(x.reshape(1, 3, 4), 3), [X], (0,)),
    "avg_pool1d": (lambda m, x: m.avg_pool1d(x.reshape(1, 3, 4), 2, stride=1, padding=1, count_include_pad=False),
                   [X], (0,)),
    "adaptive_avg_pool1d": (lambda m, x: m.adaptive_avg_pool1d(x.reshape(1, 3, 4), output_size=3), [X], (0,)),
    "cholesky": (lambda m, a: m.cholesky(a), [SPD], (0,)),
    "cholesky upper": (lambda m, a: m.cholesky(a, upper=True), [SPD], (0,)),
    "qr": (lambda m, a: m.qr(a), [_a(4, 3)], (0,)),
    "qr complete": (lambda m, a: m.qr(a, some=False), [_a(4, 3)], ()),
    "svd": (lambda m, a: m.svd(a), [_a(4, 3)], (0,)),
    "svd full": (lambda m, a: m.svd(a.mT, False), [_a(2, 4, 3)], ()),
    "svd no uv": (lambda m, a: m.svd(a, compute_uv=False), [_a(2, 4, 3)], (0,)),
    "Tensor.bmm": (lambda m, a, b: a.bmm(b), [_a(2, 3, 4), _a(2, 4, 2)], (0, 1)),
    "Tensor.prelu": (lambda m, x, w: x.prelu(w), [X.reshape(1, 3, 4), np.array([0.1, 0.2, 0.3])], (0, 1)),
    "Tensor.cholesky": (lambda m, a: a.cholesky(True), [SPD], (0,)),
    "Tensor.qr": (lambda m, a: a.qr(some=True), [_a(3, 3)], (0,)),
    "Tensor.svd": (lambda m, a: a.svd(some=True, compute_uv=True), [_a(3, 4)], (0,)),
    "Tensor.svd no uv": (lambda m, a: a.svd(compute_uv=False), [_a(3, 4)], ()),
}



def _run(m, name, grad):
    return run_case(m, CASES[name], grad)

@pytest.mark.parametrize("name", list(CASES))
def test_exists_and_runs(name):
    ys, gs = _run(gg, name, grad=True)
    assert ys and all(np.isfinite(y).all() for y in ys if y.dtype.kind == "f")
    assert all(np.isfinite(g).all() for g in gs)


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    ys, gs = _run(gg, name, grad=True)
    yt, gt = _run(torch, name, grad=True)
    assert len(ys) == len(yt)
    decomposition = name.split()[0].split(".")[-1] in ("qr", "svd")
    for a, b in zip(ys, yt):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        if decomposition:  # NOTE: the factors' column signs are a convention; compare up to sign
            a, b = np.abs(a), np.abs(b)
        np.testing.assert_allclose(a, b, rtol=1e-6 if a.dtype != np.float32 else 1e-5, atol=1e-9)
    for a, b in zip(gs, gt):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_listed_names_exist():
    names = ("scatter scatter_add index_add index_copy index_fill masked_scatter flip fliplr flipud diagonal movedim "
             "narrow unbind cosine_similarity pairwise_distance pixel_shuffle pixel_unshuffle prelu threshold celu "
             "kl_div poisson_nll_loss margin_ranking_loss hinge_embedding_loss triplet_margin_loss "
             "cosine_embedding_loss rms_norm instance_norm embedding_bag alpha_dropout conv1d conv3d max_pool1d "
             "avg_pool1d adaptive_avg_pool1d cholesky qr svd").split()
    assert [n for n in names if not callable(getattr(gg, n, None))] == []
    assert [n for n in ("bmm", "prelu", "cholesky", "qr", "svd") if not hasattr(gg.Tensor, n)] == []


def test_errors_as_torch():
    x = gg.tensor(X)
    with pytest.raises(TypeError, match="must be tuple of ints, not int"):
        gg.flip(x, 0)
    with pytest.raises(TypeError, match="argument 'reduction' .* must be int, not str"):
        gg.kl_div(x, x, "sum")
    with pytest.raises(TypeError, match="must be int, not bool"):
        gg.hinge_embedding_loss(x, x, 1.0, True)
    with pytest.raises(TypeError, match="argument 'mode' .* must be int, not str"):
        gg.embedding_bag(gg.tensor(W), gg.tensor(EB_IDX), gg.tensor(EB_OFF), mode="sum")
    with pytest.raises(TypeError):
        gg.alpha_dropout(x, 0.5)  # train is required, as torch
    with pytest.raises(TypeError, match="must be Tensor"):
        gg.narrow([1.0, 2.0], 0, 0, 1)


# -- torch.linalg.diagonal, Tensor.pin_memory / is_pinned (issue 11, the last names) ------------------------------
LDIAG = {"default": {}, "offset": {"offset": 1}, "dims": {"offset": -1, "dim1": 0, "dim2": 2},
         "far offset": {"offset": 9}, "negative dims": {"dim1": -1, "dim2": -3}}


@pytest.mark.parametrize("kw", list(LDIAG))
def test_linalg_diagonal(kw):
    a = _a(2, 3, 4)
    x = gg.tensor(a, requires_grad=True)
    y = gg.linalg.diagonal(x, **LDIAG[kw])
    k = {"offset": 0, "dim1": -2, "dim2": -1, **LDIAG[kw]}
    np.testing.assert_array_equal(y.detach().numpy(), np.diagonal(a, k["offset"], k["dim1"], k["dim2"]))
    (y * y).sum().backward()
    try:
        import torch
    except ImportError:
        return
    xt = torch.tensor(a, requires_grad=True)
    yt = torch.linalg.diagonal(xt, **LDIAG[kw])
    (yt * yt).sum().backward()
    assert tuple(yt.shape) == tuple(y.shape)
    np.testing.assert_array_equal(y.detach().numpy(), yt.detach().numpy())
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())


def test_linalg_diagonal_view_and_errors():
    z = gg.zeros(2, 3, 3)
    gg.linalg.diagonal(z).fill_(1.0)  # a view, as torch's: writes reach the base
    np.testing.assert_array_equal(z.numpy(), np.broadcast_to(np.eye(3), (2, 3, 3)))
    with pytest.raises(TypeError):
        gg.linalg.diagonal(z, 1)  # offset/dims are keyword-only
    with pytest.raises(TypeError, match="must be Tensor"):
        gg.linalg.diagonal([[1.0]])
    for bad in (gg.ones(3), gg.tensor(1.0)):
        with pytest.raises(IndexError):
            gg.linalg.diagonal(bad)
    with pytest.raises(RuntimeError, match="cannot be identical"):
        gg.linalg.diagonal(z, dim1=1, dim2=-2)


def test_pin_memory_without_cuda_as_torch():
    if gg.cuda.is_available():
        pytest.skip("CUDA is usable here")
    x = gg.ones(2)
    assert x.is_pinned() is False
    with pytest.raises(RuntimeError, match="Cannot access accelerator device"):
        x.pin_memory()
    with pytest.warns(DeprecationWarning), pytest.raises(RuntimeError, match="CPU device type not an accelerator"):
        x.pin_memory("cpu")
    try:
        import torch
    except ImportError:
        return
    assert torch.ones(2).is_pinned() is False
    with pytest.raises(RuntimeError, match="Cannot access accelerator device"):
        torch.ones(2).pin_memory()


def test_pin_memory_with_a_cupy_stand_in(monkeypatch):
    """The CUDA path against a stand-in: the copy lives in memory the (fake) runtime reports as page-locked."""
    import sys
    import types
    from gpugrad import backend
    pinned = []  # (start, end) of each "pinned" allocation

    def empty_pinned(shape, dtype):
        buf = np.empty(shape, dtype)
        pinned.append((buf.ctypes.data, buf.ctypes.data + max(buf.nbytes, 1)))
        keep.append(buf)
        return buf
    keep = []
    err = type("CUDARuntimeError", (Exception,), {})
    attrs = lambda p: types.SimpleNamespace(type=1 if any(a <= p < b for a, b in pinned) else 0)  # noqa: E731
    cp = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(
        pointerGetAttributes=attrs, CUDARuntimeError=err)))
    monkeypatch.setattr(backend, "_import_cupy", lambda: cp)
    monkeypatch.setitem(sys.modules, "cupyx", types.SimpleNamespace(empty_pinned=empty_pinned))
    a = _a(3, 4).astype(np.float32)
    x = gg.tensor(a, requires_grad=True)
    p = x.pin_memory()
    assert p is not x and p.is_pinned() and not x.is_pinned() and p.dtype == x.dtype
    assert p.pin_memory() is p  # already pinned: itself, as torch
    assert p[1:].is_pinned()  # a view of pinned memory is pinned
    np.testing.assert_array_equal(p.detach().numpy(), a)
    (p * 2).sum().backward()  # in the graph, as torch's
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), 2, np.float32))


@pytest.mark.parametrize("make", [lambda m, **k: m.zeros(2, **k), lambda m, **k: m.tensor([1.0, 2.0], **k),
                                  lambda m, **k: m.arange(3, **k), lambda m, **k: m.randn(2, **k),
                                  lambda m, **k: m.full_like(m.ones(2), 3.0, **k)])
def test_factories_take_pin_memory(make):
    """PyTorch's factories take pin_memory=; False is the plain tensor, True needs CUDA (a RuntimeError without)."""
    t = make(gg, pin_memory=False)
    assert isinstance(t, gg.Tensor) and not t.is_pinned()
    if not gg.cuda.is_available():
        with pytest.raises(RuntimeError, match="accelerator"):
            make(gg, pin_memory=True)
