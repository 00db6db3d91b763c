"""Fused activations and softmax family (gpugrad.ops.activation / softmax) through autograd.

Each fused op against its own composite (the core-op definition that create_graph differentiates):
values and first-order gradients in float64 on random data with extremes (+-20, +-1e4); gradcheck
of every F.* function; gradgradcheck through the composite route; float16 computed in float32;
what each node keeps for its backward; Tensor methods. Losses: test_fused_losses.py.
"""
import math

import numpy as np
import pytest
from conftest import to_np

import gpugrad as gg
from gpugrad.autograd import grad, gradcheck, gradgradcheck
from gpugrad.fused import activation as A
from gpugrad.nn import functional as F
from gpugrad.ops.activation import Activation
from gpugrad.ops.softmax import RowReduce

EXTREMES = [-1e4, -20.0, 20.0, 1e4]


def T(a, device, dtype="float64", grad=True):
    return gg.tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=device, requires_grad=grad)


def data(shape, seed=0, extremes=True, scale=3.0):
    x = np.random.default_rng(seed).standard_normal(shape) * scale
    if extremes:
        x.reshape(-1)[:len(EXTREMES)] = EXTREMES
    return x


def against_composite(y, inputs, rtol=1e-9, atol=1e-12, seed=1):
    """Assert that a fused op's output and input gradients equal its composite's, all finite."""
    node = y.grad_fn
    yc = type(node).composite(*node.inputs, **node.params)
    np.testing.assert_allclose(to_np(y), to_np(yc), rtol=rtol, atol=atol)
    g = gg.tensor(np.random.default_rng(seed).standard_normal(y.shape), dtype=y.dtype, device=y.device)
    gf = grad([y], inputs, [g], retain_graph=True)
    gc = grad([yc], inputs, [g])
    for a, b in zip(gf, gc):
        assert np.isfinite(to_np(a)).all()
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=rtol, atol=atol)
    assert np.isfinite(to_np(y)).all()
    return gf


# -- activations ------------------------------------------------------------------------------------
# every row of the activation table at its defaults and its test cases: the public function
# (PyTorch's name, with the row's fixed keyword arguments), the params, the row, the kinks
ACTS = [(op.torch[0], {**op.torch[1], **c}, op, (0.0, *op.kinks(*op.values(c)))) for op, c in A.table_cases()]
IDS = [A.case_id(op, c) for op, c in A.table_cases()]


def away(x, kinks, gap=0.05):
    for k in kinks:
        x = np.where(np.abs(x - k) < gap, k + gap * np.sign(x - k + 1e-300) * 2, x)
    return x


@pytest.mark.parametrize("fname,params,op,kinks", ACTS, ids=IDS)
def test_activation_equals_composite(fname, params, op, kinks, device):
    x = T(data((4, 5)), device)
    y = getattr(F, fname)(x, **params)
    assert isinstance(y.grad_fn, Activation) and y.shape == x.shape and y.dtype == x.dtype
    against_composite(y, [x])


@pytest.mark.parametrize("fname,params,op,kinks", ACTS, ids=IDS)
def test_activation_gradcheck_and_gradgradcheck(fname, params, op, kinks, device):
    x = T(away(data((2, 3), seed=2, extremes=False, scale=1.5), kinks), device)
    f = lambda t: getattr(F, fname)(t, **params)  # noqa: E731
    assert gradcheck(f, (x,))
    assert gradgradcheck(f, (x,))


@pytest.mark.parametrize("fname,params,op,kinks", ACTS, ids=IDS)
def test_activation_saves_what_the_row_names(fname, params, op, kinks, device):
    x = T(data((3, 4)), device)
    y = getattr(F, fname)(x, **params)
    assert y.grad_fn.op is op
    want = "output" if op.saves_output(op.values({k: v for k, v in params.items() if k in op.names})) else "input"
    assert (y.grad_fn.s is y._data) == (want == "output") and (y.grad_fn.s is x._data) == (want == "input")
    assert y.grad_fn.from_y == (want == "output")


@pytest.mark.parametrize("fname,params,op,kinks", ACTS, ids=IDS)
def test_activation_float16_computes_in_float32(fname, params, op, kinks, device):
    x64 = np.random.default_rng(3).uniform(-4, 4, (64,))
    x64 = np.float16(x64).astype(np.float64)  # exactly representable in float16
    xh, xd = T(x64, device, "float16"), T(x64, device)
    yh, yd = getattr(F, fname)(xh, **params), getattr(F, fname)(xd, **params)
    assert yh.dtype == np.float16
    # NOTE: one rounding of the float32 result: within half an ulp of float16 plus float32 noise
    np.testing.assert_allclose(to_np(yh).astype(np.float64), to_np(yd), rtol=1e-3, atol=1e-4)
    yh.sum().backward()
    yd.sum().backward()
    assert xh.grad.dtype == np.float16
    np.testing.assert_allclose(to_np(xh.grad).astype(np.float64), to_np(xd.grad), rtol=2e-3, atol=2e-3)


def test_activation_values_by_hand(device):
    x = T([-2.0, -0.5, 0.0, 0.5, 3.0], device)
    xs = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    sig = 1 / (1 + np.exp(-xs))
    erf = np.vectorize(math.erf)
    expect = {
        "relu": np.maximum(xs, 0), "sigmoid": sig, "tanh": np.tanh(xs), "silu": xs * sig,
        "gelu": 0.5 * xs * (1 + erf(xs / math.sqrt(2))), "softplus": np.log1p(np.exp(xs)),
        "logsigmoid": np.log(sig), "mish": xs * np.tanh(np.log1p(np.exp(xs))),
        "elu": np.where(xs > 0, xs, np.expm1(xs)), "leaky_relu": np.where(xs > 0, xs, 0.01 * xs),
    }
    for name, ref in expect.items():
        np.testing.assert_allclose(to_np(getattr(F, name)(x)), ref, rtol=1e-12, atol=1e-15, err_msg=name)
    # PyTorch's kink conventions: relu'(0) = 0, leaky'(0) = slope, elu'(0) = alpha
    for name, kw, g0 in [("relu", {}, 0.0), ("leaky_relu", {"negative_slope": 0.2}, 0.2), ("elu", {"alpha": 0.7}, 0.7)]:
        z = T([0.0], device)
        getattr(F, name)(z, **kw).sum().backward()
        assert to_np(z.grad)[0] == g0, name
        z.grad = None
        (g1,) = grad([getattr(F, name)(z, **kw).sum()], [z], create_graph=True)  # the composite agrees
        assert to_np(g1)[0] == g0, name


def test_tensor_methods_and_gg_functions_are_the_fused_ops(device):
    x = T(data((2, 3), extremes=False), device)
    for m in ("tanh", "sigmoid", "relu"):
        y = getattr(x, m)()
        assert isinstance(y.grad_fn, Activation) and y.grad_fn.op.name == m
        np.testing.assert_array_equal(to_np(getattr(gg, m)(x)), to_np(y))
        np.testing.assert_array_equal(to_np(getattr(F, m)(x)), to_np(y))
    assert isinstance(x.softmax(1).grad_fn, RowReduce) and isinstance(x.log_softmax(-1).grad_fn, RowReduce)
    assert isinstance(x.logsumexp(0).grad_fn, RowReduce)
    # integer inputs: tanh/sigmoid give floats (as PyTorch), relu stays integer
    i = gg.tensor([-2, 0, 3], device=device)
    assert i.tanh().dtype == gg.float32 and i.sigmoid().dtype == gg.float32
    r = i.relu()
    assert r.dtype == gg.int64 and r.tolist() == [0, 0, 3]


def test_third_derivative_of_tanh(device):
    # d3/dx3 tanh = -2 (1 - t^2)(1 - 3 t^2): create_graph through the composite, twice
    x = T([0.3, -1.2], device)
    (g1,) = grad([x.tanh().sum()], [x], create_graph=True)
    (g2,) = grad([g1.sum()], [x], create_graph=True)
    (g3,) = grad([g2.sum()], [x])
    t = np.tanh([0.3, -1.2])
    np.testing.assert_allclose(to_np(g2), -2 * t * (1 - t * t), rtol=1e-12)
    np.testing.assert_allclose(to_np(g3), -2 * (1 - t * t) * (1 - 3 * t * t), rtol=1e-12)


# -- softmax, log_softmax, logsumexp ---------------------------------------------------------------------
def _np_lse(a, axis, keepdims=False):
    m = a.max(axis=axis, keepdims=True)
    r = np.log(np.exp(a - m).sum(axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_family_values_and_composite(dim, device):
    xa = data((3, 4, 5))
    x = T(xa, device)
    lse = _np_lse(xa, dim, keepdims=True)
    for y, ref in [(F.softmax(x, dim), np.exp(xa - lse)), (F.log_softmax(x, dim), xa - lse),
                   (F.logsumexp(x, dim), np.squeeze(lse, dim)), (x.logsumexp(dim, keepdim=True), lse)]:
        np.testing.assert_allclose(to_np(y), ref, rtol=1e-12, atol=1e-12)
        against_composite(y, [x])


def test_logsumexp_several_dims_and_0d(device):
    xa = data((2, 3, 4), extremes=False)
    x = T(xa, device)
    for dims, keep in [((0, 2), False), ((1, 2), True), ((0, 1, 2), False), ((-1, 0), True)]:
        ax = tuple(d % 3 for d in dims)
        y = x.logsumexp(dims, keepdim=keep)
        np.testing.assert_allclose(to_np(y), _np_lse(xa, ax, keep), rtol=1e-12)
        assert gradcheck(lambda t, d=dims, k=keep: t.logsumexp(d, keepdim=k), (x,))
    with pytest.raises(TypeError, match="logsumexp\\(\\): argument 'dim' must be tuple of ints, not NoneType"):
        x.logsumexp(None)  # NOTE: as PyTorch: dim is required
    s = T(1.5, device)
    assert gg.logsumexp(s, 0).shape == () and to_np(gg.logsumexp(s, 0)) == 1.5
    assert to_np(F.softmax(s, 0)) == 1.0


@pytest.mark.parametrize("fn", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_family_gradcheck_and_gradgradcheck(fn, device):
    x = T(data((2, 3), seed=6, extremes=False, scale=1.0), device)
    for dim in (0, 1):
        f = lambda t, d=dim: getattr(F, fn)(t, d)  # noqa: E731
        assert gradcheck(f, (x,))
        assert gradgradcheck(f, (x,))


def test_softmax_extremes_finite(device):
    x = T([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [20.0, -20.0, 20.0]], device)
    p = F.softmax(x, 1)
    np.testing.assert_allclose(to_np(p), [[1, 0, 0], [1 / 3] * 3, [0.5, 0, 0.5]], atol=1e-17)
    for y in (p, F.log_softmax(x, 1), F.logsumexp(x, 1)):
        against_composite(y, [x])


@pytest.mark.parametrize("fn", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_family_float16(fn, device):
    xa = np.float16(np.random.default_rng(7).uniform(-8, 8, (4, 33))).astype(np.float64)
    xh, xd = T(xa, device, "float16"), T(xa, device)
    yh, yd = getattr(F, fn)(xh, 1), getattr(F, fn)(xd, 1)
    assert yh.dtype == np.float16
    np.testing.assert_allclose(to_np(yh).astype(np.float64), to_np(yd), rtol=1e-3, atol=1e-3)
    g = np.random.default_rng(8).standard_normal(yd.shape)
    yh.backward(gg.tensor(g, dtype="float16", device=device))
    yd.backward(gg.tensor(g, device=device))
    np.testing.assert_allclose(to_np(xh.grad).astype(np.float64), to_np(xd.grad), rtol=1e-2, atol=2e-3)


def test_softmax_dtype_and_implicit_dim(device):
    x = T(data((2, 3), extremes=False), device, "float32")
    assert F.softmax(x, 1, dtype=gg.float64).dtype == np.float64
    np.testing.assert_array_equal(to_np(F.softmax(x)), to_np(F.softmax(x, 1)))  # PyTorch's legacy dim for 2-D
    with pytest.raises(IndexError, match="out of range"):
        F.softmax(x, 2)


def test_softmax_node_keeps_only_the_output(device):
    x = T(data((3, 4)), device)
    y = F.softmax(x, 1)
    arrays = [v for k, v in vars(y.grad_fn).items() if k != "inputs" and hasattr(v, "shape")]
    assert len(arrays) == 1 and arrays[0] is y._data


@pytest.mark.parametrize("fname,params,op,kinks", ACTS, ids=IDS)
def test_activation_matches_pytorch(fname, params, op, kinks):
    """Every row of the table against its PyTorch peer: values and gradients (float64 and float32) on
    random data, the kinks, +-inf and NaN."""
    torch = pytest.importorskip("torch")
    base = np.concatenate([data((40,), seed=9), [0.0, -0.0, np.inf, -np.inf, np.nan], np.asarray(kinks, float)])
    for dt, tol in (("float64", 1e-12), ("float32", 2e-6)):
        x = T(base, "cpu", dt)
        y = getattr(F, fname)(x, **params)
        tx = torch.tensor(base, dtype=getattr(torch, dt), requires_grad=True)
        tname, tkw = op.torch
        tfn = getattr(torch, tname) if tname in ("sigmoid", "tanh") else getattr(torch.nn.functional, tname)
        ty = tfn(tx, **tkw, **{k: v for k, v in params.items() if k in op.names})
        g = np.linspace(-2, 2, base.size)
        y.backward(gg.tensor(g, dtype=dt))
        ty.backward(torch.tensor(g, dtype=getattr(torch, dt)))
        for i, (ours, theirs) in enumerate(((to_np(y), ty.detach().numpy()), (to_np(x.grad), tx.grad.numpy()))):
            # NOTE: the one documented difference (README): at +-inf gpugrad gives the limits (gelu, silu and
            # mish forms x * gate(x)) where PyTorch's formula makes inf * 0 = NaN
            lim = np.isnan(theirs) & np.isinf(base)
            want = (np.where(base < 0, op.limits[2 * i], op.limits[2 * i + 1]) * (1 if i == 0 else g)).astype(dt)
            np.testing.assert_array_equal(ours[lim], want[lim], err_msg=f"{op.name} {dt} limits")
            # NOTE: gradients at a NaN input are not compared: PyTorch's own vectorised and scalar CPU paths
            # disagree there (hardswish: NaN in the vector body, g in the scalar tail)
            keep = ~lim & ~(np.isnan(base) if i else False)
            np.testing.assert_allclose(ours[keep], theirs[keep], rtol=tol, atol=tol, err_msg=f"{op.name} {dt} {i}")
