"""PyTorch 2.13 semantics of corner cases in nn/optim, torch-free: the expected values are torch's literal outputs.

Pools over windows of only -inf/padding or holding NaNs, InstanceNorm's num_batches_tracked, F.batch_norm's and
layer_norm's argument errors, embedding's padding_idx range, empty batches through conv/pool/norm, and a Tensor lr
in the optimizers and LR schedulers (the differential twin is tests/test_fuzz_nn_torch.py).
"""
import math
import warnings

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F

INF, NAN = math.inf, math.nan


def T(a, rg=True):
    return gg.tensor(np.asarray(a, dtype=np.float64), requires_grad=rg)


# -- max pooling: windows of only -inf/padding (the first in-bounds tap), NaNs (the last NaN) ---------------------
@pytest.mark.parametrize("fn, x, args, kw, idx, grad", [
    ("max_pool1d", [[[-INF] * 3]], (2,), {"padding": 1}, [[[0, 1]]], [[[1.0, 1.0, 0.0]]]),
    ("max_pool1d", [[[-INF] * 4]], (3,), {"padding": 1, "stride": 1}, [[[0, 0, 1, 2]]], [[[2.0, 1.0, 1.0, 0.0]]]),
    ("max_pool1d", [[[-INF] * 5]], (4,), {"padding": 2, "dilation": 2, "stride": 1}, [[[0, 1, 0]]],
     [[[2.0, 1.0, 0.0, 0.0, 0.0]]]),
    ("max_pool2d", [[[[-INF] * 3] * 3]], (2,), {"padding": 1}, [[[[0, 1], [3, 4]]]],
     [[[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]]),
    ("max_pool3d", [[[[[-INF] * 3] * 3] * 3]], (2,), {"padding": 1}, [[[[[0, 1], [3, 4]], [[9, 10], [12, 13]]]]],
     None),
    ("max_pool1d", [[[1.0, NAN, 2.0, NAN, 3.0]]], (4,), {"stride": 1}, [[[3, 3]]], [[[0.0, 0.0, 0.0, 2.0, 0.0]]]),
    ("max_pool1d", [[[NAN, NAN, NAN, 1.0]]], (3,), {"stride": 1, "padding": 1}, [[[1, 2, 2, 2]]],
     [[[0.0, 1.0, 3.0, 0.0]]]),
    ("max_pool2d", [[[[1.0, NAN, 2.0], [NAN, 0.0, 0.0], [5.0, 0.0, NAN]]]], (3,), {"stride": 1}, [[[[8]]]], None),
    ("max_pool2d", [[[[1.0, 2.0], [NAN, NAN]]]], (2,), {"stride": 1}, [[[[3]]]], None),
    ("max_pool3d", [[[[[1.0, NAN], [0.0, 0.0]], [[NAN, 0.0], [0.0, NAN]]]]], (2,), {"stride": 1}, [[[[[7]]]]], None),
    ("adaptive_max_pool1d", [[[-INF] * 3]], (2,), {}, [[[0, 1]]], [[[1.0, 1.0, 0.0]]]),
    ("adaptive_max_pool1d", [[[1.0, NAN, 2.0, NAN]]], (1,), {}, [[[3]]], [[[0.0, 0.0, 0.0, 1.0]]]),
    ("adaptive_max_pool2d", [[[[1.0, NAN], [NAN, 2.0]]]], (1,), {}, [[[[2]]]], None),
    ("adaptive_max_pool3d", [[[[[1.0, NAN], [NAN, 2.0]]]]], (1,), {}, [[[[[2]]]]], None),
])
def test_max_pool_indices_and_gradient(fn, x, args, kw, idx, grad):
    xt = T(x)
    y, i = getattr(F, fn)(xt, *args, return_indices=True, **kw)
    assert i.dtype == gg.int64 and i.tolist() == idx
    # NOTE: the value at each index is the output (a -inf window gives -inf, a NaN window NaN)
    flat = np.asarray(x).reshape(np.asarray(x).shape[:2] + (-1,))
    got = np.take_along_axis(flat, i.numpy().reshape(flat.shape[:2] + (-1,)), 2)
    np.testing.assert_array_equal(got.reshape(y.shape), y.detach().numpy())
    y.backward(gg.ones(tuple(y.shape), dtype=gg.float64))
    if grad is not None:
        assert xt.grad.tolist() == grad
    # the unpooled index stays inside the input (a -1 would have written the last element)
    assert int(i.min()) >= 0


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool_of_padded_neginf_windows(nd):
    x = gg.full((1, 1) + (3,) * nd, -INF)
    y, i = getattr(F, f"max_pool{nd}d")(x, 2, padding=1, return_indices=True)
    u = getattr(F, f"max_unpool{nd}d")(gg.ones(tuple(y.shape), dtype=gg.float64), i, 2, padding=1,
                                       output_size=(3,) * nd)
    expect = {1: [1.0, 1.0, 0.0], 2: [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
              3: [1.0, 1.0, 0.0, 1.0, 1.0, 0.0] + [0.0] * 3 + [1.0, 1.0, 0.0, 1.0, 1.0, 0.0] + [0.0] * 12}[nd]
    assert u.numpy().ravel().tolist() == expect  # torch's


def test_max_pool_values_without_indices_follow_the_same_rule():
    x = T([[[[-INF] * 3] * 3]])
    F.max_pool2d(x, 2, padding=1).sum().backward()
    assert x.grad.tolist() == [[[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]]


# -- norms --------------------------------------------------------------------------------------------------------
def test_instance_norm_does_not_count_batches():
    m = gg.nn.InstanceNorm1d(2, track_running_stats=True).double()
    x = gg.tensor(np.arange(12.0).reshape(2, 2, 3) ** 1.5)
    m(x)
    m(x * 2)
    assert int(m.num_batches_tracked) == 0  # torch: tensor(0)
    np.testing.assert_allclose(m.running_mean.numpy(), [2.8841970182485674, 5.774970177613608], rtol=1e-13)
    np.testing.assert_allclose(m.running_var.numpy(), [5.167821628901122, 8.515335534160002], rtol=1e-13)


def test_batch_norm_argument_errors():
    x, rm, rv = gg.randn(4, 3, dtype=gg.float64), gg.zeros(3, dtype=gg.float64), gg.ones(3, dtype=gg.float64)
    msg = "batch_norm(): argument 'momentum' (position 7) must be float, not NoneType"
    for tr in (False, True):
        with pytest.raises(TypeError) as e:
            F.batch_norm(x, rm, rv, training=tr, momentum=None)
        assert str(e.value) == msg
    with pytest.raises(RuntimeError, match="^running_mean must be defined in evaluation mode$"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(RuntimeError, match="^running_var must be defined in evaluation mode$"):
        F.batch_norm(x, rm, None, training=False)
    with pytest.raises(ValueError, match="^running_mean and running_var must either both be None or neither be None$"):
        F.batch_norm(x, None, rv, training=True)
    assert tuple(F.batch_norm(x, None, None, training=True).shape) == (4, 3)
    # the module maps momentum=None to a cumulative average itself
    bn = gg.nn.BatchNorm1d(3, momentum=None).double()
    bn(x)
    bn.eval()
    assert tuple(bn(x).shape) == (4, 3)


@pytest.mark.parametrize("fn", ["layer_norm", "rms_norm"])
def test_normalized_shape_must_be_a_tuple(fn):
    x = gg.randn(2, 4)
    head = f"{fn}(): argument 'normalized_shape' (position 2) must be tuple of ints"
    for bad, tail in ((4, ", not int"), (4.0, ", not float"), (None, ", not NoneType"),
                      ((4.0,), ", but found element of type float at pos 0"),
                      ((True,), ", but found element of type bool at pos 0")):
        with pytest.raises(TypeError) as e:
            getattr(F, fn)(x, bad)
        assert str(e.value) == head + tail
    for ok in ((4,), [4], (np.int64(4),)):
        assert tuple(getattr(F, fn)(x, ok).shape) == (2, 4)
    assert tuple(gg.nn.LayerNorm(4)(x).shape) == (2, 4)  # the modules take an int
    assert tuple(gg.nn.RMSNorm(4)(x).shape) == (2, 4)


def test_embedding_padding_idx_range():
    w = T(np.random.default_rng(0).standard_normal((5, 3)))
    idx = gg.tensor([0, 1, 0])
    for p in (5, 6, -6):
        with pytest.raises(AssertionError, match="^Padding_idx must be within num_embeddings$"):
            F.embedding(idx, w, padding_idx=p)
        with pytest.raises(AssertionError, match="^Padding_idx must be within num_embeddings$"):
            gg.nn.Embedding(5, 3, padding_idx=p)
    F.embedding(idx, w, padding_idx=-5).sum().backward()  # -5 is row 0
    assert w.grad.tolist() == [[0.0] * 3, [1.0] * 3, [0.0] * 3, [0.0] * 3, [0.0] * 3]


# -- empty batches ----------------------------------------------------------------------------------------------
def _z(*s):
    return gg.zeros(*s, dtype=gg.float64, requires_grad=True)


@pytest.mark.parametrize("name, make, shape", [
    ("conv1d", lambda: (_z(0, 2, 5), _z(3, 2, 2), _z(3)), (0, 3, 4)),
    ("conv2d", lambda: (_z(0, 2, 4, 4), _z(3, 2, 2, 2)), (0, 3, 3, 3)),
    ("conv3d", lambda: (_z(0, 2, 4, 4, 4), _z(3, 2, 2, 2, 2), _z(3)), (0, 3, 3, 3, 3)),
    ("conv_transpose1d", lambda: (_z(0, 2, 5), _z(2, 3, 2), _z(3)), (0, 3, 6)),
    ("conv_transpose2d", lambda: (_z(0, 2, 4, 4), _z(2, 3, 2, 2)), (0, 3, 5, 5)),
])
def test_conv_empty_batch(name, make, shape):
    ins = make()
    y = getattr(F, name)(*ins)
    assert tuple(y.shape) == shape and y.dtype == gg.float64
    y.sum().backward()
    for t in ins:  # torch: zero gradients of each input's shape
        assert tuple(t.grad.shape) == tuple(t.shape) and float(t.grad.abs().sum()) == 0.0


def test_conv_empty_batch_grouped_and_create_graph():
    x, w = _z(0, 4, 4, 4), _z(4, 2, 3, 3)
    y = F.conv2d(x, w, padding=1, groups=2, stride=2)
    assert tuple(y.shape) == (0, 4, 2, 2)
    (g,) = gg.autograd.grad((y * y).sum(), [w], create_graph=True)
    assert tuple(g.shape) == (4, 2, 3, 3)


@pytest.mark.parametrize("call, shape", [
    (lambda x: F.max_pool3d(x, 2), (0, 2, 2, 2, 2)),
    (lambda x: F.max_pool3d(x, 2, padding=1, return_indices=True)[0], (0, 2, 3, 3, 3)),
    (lambda x: F.avg_pool3d(x, 2), (0, 2, 2, 2, 2)),
    (lambda x: F.lp_pool3d(x, 2, 2), (0, 2, 2, 2, 2)),
    (lambda x: F.adaptive_max_pool3d(x, 2), (0, 2, 2, 2, 2)),
    (lambda x: F.max_unpool3d(x, gg.zeros(tuple(x.shape), dtype=gg.int64), 2), (0, 2, 10, 10, 10)),
    (lambda x: F.instance_norm(x.reshape(0, 2, 125)), (0, 2, 125)),
    (lambda x: F.batch_norm(x, gg.zeros(2, dtype=gg.float64), gg.ones(2, dtype=gg.float64), training=True),
     (0, 2, 5, 5, 5)),
])
def test_pool_and_norm_empty_batch(call, shape):
    x = _z(0, 2, 5, 5, 5)
    y = call(x)
    assert tuple(y.shape) == shape
    y.sum().backward()
    assert tuple(x.grad.shape) == (0, 2, 5, 5, 5)


def test_batch_norm_empty_batch_keeps_running_stats():
    rm, rv = gg.zeros(2, dtype=gg.float64), gg.ones(2, dtype=gg.float64)
    F.batch_norm(gg.zeros(0, 2, 3, dtype=gg.float64), rm, rv, training=True)
    assert rm.tolist() == [0.0, 0.0] and rv.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        F.batch_norm(gg.zeros(1, 2, dtype=gg.float64), rm, rv, training=True)


# -- a Tensor lr ------------------------------------------------------------------------------------------------
def _quad_steps(opt_cls, n=2, **kw):
    p = gg.nn.Parameter(gg.tensor([1.0, 2.0], dtype=gg.float64))
    lr = gg.tensor(0.05)  # float32, as torch.tensor(0.05)
    o = opt_cls([p], lr=lr, **kw)
    for _ in range(n):
        o.zero_grad()
        (p ** 2).sum().backward()
        o.step()
    return p, o, lr


def test_tensor_lr_optimizers():
    p, o, lr = _quad_steps(gg.optim.SGD)
    assert o.param_groups[0]["lr"] is lr
    assert p.tolist() == [0.8099999973177909, 1.6199999946355819]  # torch: lr's float32 value
    p, _, _ = _quad_steps(gg.optim.Adagrad)
    np.testing.assert_allclose(p.tolist(), [0.9155625256639459, 1.9150949919370404], rtol=1e-14)
    p, _, _ = _quad_steps(gg.optim.RMSprop)
    np.testing.assert_allclose(p.tolist(), [0.2754933904599581, 1.199035373242867], rtol=1e-14)
    p, _, _ = _quad_steps(gg.optim.Adam, fused=True)
    np.testing.assert_allclose(p.tolist(), [0.9000832418231931, 1.9000369961768777], rtol=1e-9)


def test_tensor_lr_errors():
    p = gg.nn.Parameter(gg.ones(2))
    with pytest.raises(ValueError, match="^Tensor lr must be 1-element$"):
        gg.optim.SGD([p], lr=gg.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="^Invalid learning rate: -0.10000000149011612$"):
        gg.optim.SGD([p], lr=gg.tensor(-0.1))
    for cls in (gg.optim.Adam, gg.optim.AdamW):
        with pytest.raises(ValueError, match="^lr as a Tensor is not supported for capturable=False and foreach=True$"):
            cls([p], lr=gg.tensor(0.1), foreach=True)
    assert gg.optim.SGD([p], lr=gg.tensor([0.1])).param_groups[0]["lr"].shape == (1,)


def test_tensor_lr_load_state_dict_copies():
    p = gg.nn.Parameter(gg.ones(2))
    lr = gg.tensor(0.1)
    sd = gg.optim.Adam([p], lr=lr).state_dict()
    assert sd["param_groups"][0]["lr"] is lr
    o2 = gg.optim.Adam([p], lr=0.5)
    o2.load_state_dict(sd)
    got = o2.param_groups[0]["lr"]
    assert isinstance(got, gg.Tensor) and got is not lr and abs(float(got) - 0.1) < 1e-8


def test_tensor_lr_schedulers_fill_in_place():
    p = gg.nn.Parameter(gg.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = gg.tensor(0.1)
        o = gg.optim.SGD([p], lr=lr)
        s = gg.optim.lr_scheduler.StepLR(o, 1, gamma=0.5)
        first = s.get_last_lr()[0]
        assert first is not lr and s.base_lrs[0] is not o.param_groups[0]["initial_lr"]
        o.step()
        s.step()
        assert o.param_groups[0]["lr"] is lr and abs(float(lr) - 0.05) < 1e-9
        assert abs(float(first) - 0.1) < 1e-8  # the earlier list does not alias the lr
        assert isinstance(s.get_last_lr()[0], gg.Tensor)
        lr = gg.tensor(0.1)
        o = gg.optim.SGD([p], lr=lr)
        s = gg.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7)
        vals = []
        for _ in range(10):
            o.step()
            s.step()
            vals.append(lr.item())
        # torch's (float32 tensor arithmetic)
        assert vals == [0.0950484499335289, 0.08117449283599854, 0.06112604960799217, 0.038873955607414246,
                        0.018825512379407883, 0.004951557144522667, 0.0, 0.00495155667886138, 0.018825510516762733,
                        0.03887395188212395]
        lr = gg.tensor(0.1)
        o = gg.optim.SGD([p], lr=lr)
        s = gg.optim.lr_scheduler.ReduceLROnPlateau(o, patience=0)
        for _ in range(3):
            o.step()
            s.step(1.0)
        assert o.param_groups[0]["lr"] is lr and abs(float(lr) - 0.001) < 1e-9
