"""gg.nn.functional: conv/pool/norm/dropout/embedding/pad against naive NumPy loops, plus gradchecks."""
import numpy as np
import pytest
from conftest import to_np

import gpugrad as gg
from gpugrad.autograd import gradcheck, gradgradcheck
from gpugrad.nn import functional as F
from gpugrad.ops import conv as C


def T(a, device, grad=True):
    return gg.tensor(np.asarray(a, dtype=np.float64), device=device, requires_grad=grad)


def rnd(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def distinct(*shape, seed=0):
    """Values with no ties (max-pool gradients are then unambiguous)."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) / n - 0.5).reshape(shape) * 4


# ------------------------------------------------------------------------------------ references
def conv_ref(x, w, b, stride, pad, dil, groups):
    """Direct convolution loop. pad = ((top, bottom), (left, right))."""
    n = x.shape[0]
    oc, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), pad[0], pad[1]))
    oh = (xp.shape[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (xp.shape[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, oc, oh, ow))
    ocg = oc // groups
    for bi in range(n):
        for o in range(oc):
            g = o // ocg
            for i in range(oh):
                for j in range(ow):
                    acc = 0.0
                    for ci in range(cg):
                        for u in range(kh):
                            for v in range(kw):
                                acc += w[o, ci, u, v] * xp[bi, g * cg + ci, i * stride[0] + u * dil[0],
                                                           j * stride[1] + v * dil[1]]
                    out[bi, o, i, j] = acc + (0 if b is None else b[o])
    return out


def pool_ref(x, k, s, p, d, op, ceil=False, count_include_pad=True):
    n, c, h, w = x.shape

    def osz(L, k_, s_, p_, d_):
        span = L + 2 * p_ - d_ * (k_ - 1) - 1
        o = (-(-span // s_) if ceil else span // s_) + 1
        if ceil and (o - 1) * s_ >= L + p_:
            o -= 1
        return o
    oh, ow = osz(h, k[0], s[0], p[0], d[0]), osz(w, k[1], s[1], p[1], d[1])
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            vals, cnt_pad = [], 0
            for u in range(k[0]):
                for v in range(k[1]):
                    r, q = i * s[0] - p[0] + u * d[0], j * s[1] - p[1] + v * d[1]
                    if 0 <= r < h and 0 <= q < w:
                        vals.append(x[:, :, r, q])
                    if -p[0] <= r < h + p[0] and -p[1] <= q < w + p[1]:
                        cnt_pad += 1
            v = np.stack(vals)
            if op == "max":
                out[:, :, i, j] = v.max(0)
            else:
                out[:, :, i, j] = v.sum(0) / (cnt_pad if count_include_pad else len(vals))
    return out


# ------------------------------------------------------------------------------------------ conv2d
CONV_CASES = [  # (C_in, C_out, k, stride, padding, dilation, groups, bias, H, W)
    (3, 4, 3, 1, 0, 1, 1, True, 6, 5),
    (2, 3, (2, 3), (2, 1), (1, 2), 1, 1, False, 5, 6),
    (4, 6, 3, 2, 1, 2, 2, True, 7, 7),
    (4, 4, 3, 1, "same", 1, 4, True, 5, 5),       # depthwise, 'same'
    (2, 2, 2, 1, "same", (2, 1), 1, True, 5, 4),  # even kernel: asymmetric 'same' padding
    (3, 5, 1, 1, 0, 1, 1, True, 4, 4),            # 1x1 fast path
    (2, 2, 3, 1, "valid", 1, 1, True, 4, 5),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_naive_loop(case, device):
    cin, cout, k, s, p, d, g, bias, h, w = case
    k2, s2, d2 = F._pair(k, "k"), F._pair(s, "s"), F._pair(d, "d")
    x, wt = rnd(2, cin, h, w), rnd(cout, cin // g, *k2, seed=1)
    b = rnd(cout, seed=2) if bias else None
    y = F.conv2d(T(x, device), T(wt, device), None if b is None else T(b, device), s, p, d, g)
    pads = F._conv_padding(p, k2, d2, s2)
    np.testing.assert_allclose(to_np(y), conv_ref(x, wt, b, s2, pads, d2, g), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CONV_CASES[:5])
def test_conv2d_gradcheck(case, device):
    cin, cout, k, s, p, d, g, bias, h, w = case
    k2 = F._pair(k, "k")
    x, wt = T(rnd(1, cin, h, w), device), T(rnd(cout, cin // g, *k2, seed=1), device)
    b = T(rnd(cout, seed=2), device) if bias else None
    inputs = (x, wt) + ((b,) if bias else ())
    assert gradcheck(lambda x, w, *b: F.conv2d(x, w, b[0] if b else None, s, p, d, g), inputs)


def test_conv2d_double_backward(device):
    x = T(rnd(1, 2, 4, 4), device)
    w = T(rnd(2, 1, 2, 2, seed=1), device)
    b = T(rnd(2, seed=2), device)
    assert gradgradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=1, padding=1, dilation=1, groups=2), (x, w, b))
    # through a nonlinearity after a strided grouped conv (the second-order terms are then nonzero)
    assert gradgradcheck(lambda x, w: F.conv2d(x, w, None, 2, 0, 1, 2).tanh(), (x, w))


def test_conv2d_unbatched_and_errors(device):
    x, w = rnd(3, 5, 5), rnd(2, 3, 3, 3, seed=1)
    y = F.conv2d(T(x, device, False), T(w, device, False), padding=1)
    assert y.shape == (2, 5, 5)
    np.testing.assert_allclose(to_np(y), conv_ref(x[None], w, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)[0], atol=1e-10)
    with pytest.raises(RuntimeError, match="channels"):
        F.conv2d(T(rnd(1, 4, 5, 5), device), T(w, device))
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(T(x, device), T(w, device), stride=2, padding="same")
    with pytest.raises(RuntimeError, match="too small"):
        F.conv2d(T(rnd(1, 3, 2, 2), device), T(w, device))


def test_im2col_col2im_are_adjoint(device):
    x = T(rnd(2, 3, 6, 5), device, False)
    kw = {"kernel": (2, 3), "stride": (2, 1), "padding": ((1, 0), (2, 1)), "dilation": (1, 2)}
    cols = C.Im2Col.apply(x, **kw)
    c = T(rnd(*cols.shape, seed=3), device, False)
    back = C.Col2Im.apply(c, size=(6, 5), **kw)
    lhs = float((cols * c).sum().item())
    rhs = float((x * back).sum().item())
    assert abs(lhs - rhs) < 1e-9 * max(1.0, abs(lhs))


def test_unfold_fold(device):
    x = rnd(2, 3, 5, 6)
    u = F.unfold(T(x, device, False), kernel_size=(2, 3), padding=1, stride=(1, 2))
    oh, ow = (5 + 2 - 2) // 1 + 1, (6 + 2 - 3) // 2 + 1
    assert u.shape == (2, 3 * 6, oh * ow)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    # block (row i, col j) of channel c, kernel offset (a, b) sits at row c*6 + a*3 + b, column i*ow + j
    np.testing.assert_array_equal(to_np(u)[1, 1 * 6 + 1 * 3 + 2, 2 * ow + 1], xp[1, 1, 2 + 1, 1 * 2 + 2])
    # fold(unfold(x)) multiplies each pixel by the number of blocks covering it
    ones = F.fold(F.unfold(gg.ones(1, 1, 4, 4, device=device, dtype="float64"), 2), (4, 4), 2)
    np.testing.assert_array_equal(to_np(ones)[0, 0], [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
    assert gradcheck(lambda t: F.fold(t, (3, 4), 2, padding=(1, 0)), (T(rnd(1, 4, 4 * 3), device),))


# ------------------------------------------------------------------------------------------ pooling
POOL_CASES = [  # (k, stride, padding, dilation, ceil_mode, H, W)
    (2, None, 0, 1, False, 6, 6),
    (3, 2, 1, 1, False, 7, 6),
    ((3, 2), (2, 1), (1, 0), (1, 2), False, 7, 7),
    (3, 2, 1, 1, True, 6, 6),
    (2, 2, 0, 1, True, 5, 7),
]


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool2d_matches_naive(case, device):
    k, s, p, d, ceil, h, w = case
    x = distinct(2, 3, h, w)
    y, idx = F.max_pool2d(T(x, device, False), k, s, p, d, ceil_mode=ceil, return_indices=True)
    k2 = F._pair(k, "k")
    ref = pool_ref(x, k2, k2 if s is None else F._pair(s, "s"), F._pair(p, "p"), F._pair(d, "d"), "max", ceil)
    np.testing.assert_array_equal(to_np(y), ref)
    flat = x.reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, to_np(idx).reshape(2, 3, -1), 2).reshape(ref.shape), ref)


@pytest.mark.parametrize("case", POOL_CASES[1:4])
def test_max_pool2d_gradcheck(case, device):
    k, s, p, d, ceil, h, w = case
    x = T(distinct(1, 2, h, w), device)
    assert gradcheck(lambda x: F.max_pool2d(x, k, s, p, d, ceil_mode=ceil), (x,))


def test_max_pool2d_gradient_goes_to_argmax(device):
    x = T([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 9.0, 8.0]]]], device)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(to_np(x.grad)[0, 0], [[0, 1, 0, 0], [0, 0, 1, 0]])
    with pytest.raises(RuntimeError, match="pad should be smaller than or equal to half of kernel size"):
        F.max_pool2d(x, 2, padding=2)
    nan = F.max_pool2d(T([[[[1.0, np.nan, 2.0, 0.0], [3.0, 4.0, 9.0, 8.0]]]], device, False), 2)
    np.testing.assert_array_equal(np.isnan(to_np(nan))[0, 0], [[True, False]])  # NaN propagates, as in PyTorch
    assert gradgradcheck(lambda x: F.max_pool2d(x, 2, 1, 1) ** 2, (T(distinct(1, 1, 3, 3), device),))


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("include", [True, False])
def test_avg_pool2d_matches_naive(case, include, device):
    k, s, p, d, ceil, h, w = case
    if d != 1:
        return
    x = rnd(2, 3, h, w)
    y = F.avg_pool2d(T(x, device, False), k, s, p, ceil_mode=ceil, count_include_pad=include)
    k2 = F._pair(k, "k")
    ref = pool_ref(x, k2, k2 if s is None else F._pair(s, "s"), F._pair(p, "p"), (1, 1), "avg", ceil, include)
    np.testing.assert_allclose(to_np(y), ref, rtol=1e-12, atol=1e-12)


def test_avg_pool2d_gradcheck_and_divisor(device):
    x = T(rnd(1, 2, 5, 5), device)
    assert gradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), (x,))
    assert gradcheck(lambda x: F.avg_pool2d(x, 2), (T(rnd(1, 2, 4, 4), device),))
    y = F.avg_pool2d(T(np.ones((1, 1, 4, 4)), device, False), 2, divisor_override=3)
    np.testing.assert_allclose(to_np(y), np.full((1, 1, 2, 2), 4 / 3))


@pytest.mark.parametrize("size,out", [((6, 8), (3, 4)), ((5, 7), (3, 4)), ((5, 7), (2, None)), ((4, 4), 1)])
def test_adaptive_avg_pool2d(size, out, device):
    h, w = size
    x = rnd(2, 3, h, w)
    y = F.adaptive_avg_pool2d(T(x, device, False), out)
    o = (out, out) if isinstance(out, int) else out
    oh, ow = (h if o[0] is None else o[0]), (w if o[1] is None else o[1])
    ref = np.zeros((2, 3, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, r1 = (i * h) // oh, -(-((i + 1) * h) // oh)
            c0, c1 = (j * w) // ow, -(-((j + 1) * w) // ow)
            ref[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean((2, 3))
    np.testing.assert_allclose(to_np(y), ref, rtol=1e-12)
    if size == (5, 7):
        assert gradcheck(lambda t: F.adaptive_avg_pool2d(t, out), (T(x[:1, :1], device),))


# -------------------------------------------------------------------------------------- normalisation
def test_batch_norm_train_forward_and_running_stats(device):
    x = rnd(4, 3, 2, 5)
    rm, rv = gg.zeros(3, dtype="float64", device=device), gg.ones(3, dtype="float64", device=device)
    w, b = rnd(3, seed=1), rnd(3, seed=2)
    y = F.batch_norm(T(x, device, False), rm, rv, T(w, device, False), T(b, device, False), training=True,
                     momentum=0.2, eps=1e-3)
    mu = x.mean((0, 2, 3))
    var = x.var((0, 2, 3))
    ref = (x - mu[:, None, None]) / np.sqrt(var[:, None, None] + 1e-3) * w[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(to_np(y), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_np(rm), 0.2 * mu, rtol=1e-12)
    np.testing.assert_allclose(to_np(rv), 0.8 + 0.2 * x.var((0, 2, 3), ddof=1), rtol=1e-12)
    with pytest.raises(ValueError, match="more than 1 value"):
        F.batch_norm(T(rnd(1, 3), device), None, None, training=True)


def test_batch_norm_gradcheck(device):
    x, w, b = T(rnd(3, 2, 2, 2), device), T(rnd(2, seed=1), device), T(rnd(2, seed=2), device)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (x, w, b))
    rm, rv = gg.tensor([0.3, -0.2], dtype="float64", device=device), gg.tensor([1.5, 0.7], dtype="float64", device=device)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), (x, w, b))
    y = F.batch_norm(x, rm, rv, w, b, training=False)
    ref = (to_np(x) - to_np(rm)[:, None, None]) / np.sqrt(to_np(rv)[:, None, None] + 1e-5)
    np.testing.assert_allclose(to_np(y.detach()), ref * to_np(w)[:, None, None] + to_np(b)[:, None, None], rtol=1e-12)


def test_layer_norm(device):
    x, w, b = rnd(2, 3, 4), rnd(3, 4, seed=1), rnd(3, 4, seed=2)
    y = F.layer_norm(T(x, device, False), (3, 4), T(w, device, False), T(b, device, False), eps=1e-4)
    mu = x.mean((1, 2), keepdims=True)
    ref = (x - mu) / np.sqrt(x.var((1, 2), keepdims=True) + 1e-4) * w + b
    np.testing.assert_allclose(to_np(y), ref, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (4,), w, b), (T(x[:1], device), T(w[0], device), T(b[0], device)))
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.layer_norm(T(x, device), (5,))


def test_group_norm(device):
    x = rnd(2, 4, 3)
    y = F.group_norm(T(x, device, False), 2, eps=1e-5)
    g = x.reshape(2, 2, 6)
    ref = ((g - g.mean(2, keepdims=True)) / np.sqrt(g.var(2, keepdims=True) + 1e-5)).reshape(x.shape)
    np.testing.assert_allclose(to_np(y), ref, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda x, w: F.group_norm(x, 2, w), (T(x[:1], device), T(rnd(4, seed=1), device)))


# -------------------------------------------------------------------------------- dropout / embedding
def test_dropout_mask_scaling_and_seed(device):
    x = gg.ones(200, 100, device=device)
    gg.manual_seed(7)
    y = to_np(F.dropout(x, 0.3))
    vals = np.unique(y)
    assert len(vals) == 2 and vals[0] == 0 and abs(vals[1] - 1 / 0.7) < 1e-6
    assert abs((y == 0).mean() - 0.3) < 0.02
    gg.manual_seed(7)
    np.testing.assert_array_equal(to_np(F.dropout(x, 0.3)), y)
    assert F.dropout(x, 0.3, training=False) is x
    np.testing.assert_array_equal(to_np(F.dropout(x, 1.0)), 0)
    with pytest.raises(ValueError):
        F.dropout(x, 1.5)


def test_dropout_gradcheck_fixed_mask(device):
    x = T(rnd(3, 4), device)

    def f(x):
        gg.manual_seed(3)
        return F.dropout(x, 0.5)
    assert gradcheck(f, (x,))
    f(x).sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), to_np(f(x).detach()) / to_np(x.detach()))


def test_embedding_repeated_indices_and_padding(device):
    w = T(rnd(5, 3), device)
    idx = gg.tensor([[1, 3, 1], [0, 1, 4]], device=device)
    out = F.embedding(idx, w)
    np.testing.assert_array_equal(to_np(out.detach()), to_np(w.detach())[to_np(idx)])
    out.sum().backward()
    np.testing.assert_array_equal(to_np(w.grad)[:, 0], [1, 3, 0, 1, 1])
    assert gradcheck(lambda w: F.embedding(idx, w) * 1.5, (w,))
    w.grad = None
    F.embedding(idx, w, padding_idx=1).sum().backward()
    np.testing.assert_array_equal(to_np(w.grad)[:, 0], [1, 0, 0, 1, 1])
    with pytest.raises(IndexError):
        F.embedding(gg.tensor([5], device=device), w)


# -------------------------------------------------------------------------------------- pad & misc
@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap"),
                                          ("constant", "constant")])
def test_pad_modes(mode, np_mode, device):
    x = rnd(2, 3, 4)
    y = F.pad(T(x, device, False), (2, 1, 1, 2), mode=mode)
    np.testing.assert_array_equal(to_np(y), np.pad(x, ((0, 0), (1, 2), (2, 1)), mode=np_mode))
    assert gradcheck(lambda t: F.pad(t, (2, 1), mode=mode), (T(x[0], device),))
    if mode == "constant":
        np.testing.assert_array_equal(to_np(F.pad(T(x, device, False), (1, 1), value=7.0))[..., 0], 7.0)


def test_linear_one_hot_flatten_normalize(device):
    x, w, b = T(rnd(2, 3, 4), device), T(rnd(5, 4, seed=1), device), T(rnd(5, seed=2), device)
    y = F.linear(x, w, b)
    np.testing.assert_allclose(to_np(y.detach()), to_np(x.detach()) @ to_np(w.detach()).T + to_np(b.detach()))
    assert gradcheck(F.linear, (x, w, b))
    assert gradcheck(lambda x, w: F.linear(x, w), (T(rnd(4), device), w))
    with pytest.raises(RuntimeError, match="features"):
        F.linear(x, T(rnd(5, 3), device))
    oh = F.one_hot(gg.tensor([2, 0], device=device), 3)
    np.testing.assert_array_equal(to_np(oh), [[0, 0, 1], [1, 0, 0]])
    assert F.flatten(x, 1).shape == (2, 12)
    n = F.normalize(T([[3.0, 4.0], [0.0, 0.0]], device, False), dim=1)
    np.testing.assert_allclose(to_np(n), [[0.6, 0.8], [0.0, 0.0]])
