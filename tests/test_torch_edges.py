"""Edge semantics checked against PyTorch 2.13: the literals below are torch's outputs (the torch runs, when torch
is importable, check them). Binary max/min overloads, extremes of empty tensors, maximum/minimum gradients at
NaN, var/std with correction >= N, in-place logical ops under autograd, degenerate histogram ranges."""
import math

import numpy as np
import pytest

import gpugrad as gg

NAN, INF = math.nan, math.inf


def _libs():
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return [gg]
    torch.set_num_threads(1)
    return [gg, torch]


LIBS = _libs()


def _same(got, want):
    np.testing.assert_array_equal(np.asarray(got.tolist() if hasattr(got, "tolist") else got, dtype=float),
                                  np.asarray(want, dtype=float))


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_max_min_elementwise_overloads(L):
    a, b = L.tensor([1., 5., 3.]), L.tensor([4., 2., 3.])
    _same(L.max(a, b), [4., 5., 3.])
    _same(L.min(a, b), [1., 2., 3.])
    _same(a.max(b), [4., 5., 3.])
    _same(L.max(a, other=b), [4., 5., 3.])
    _same(L.ones(2, 2).max(L.tensor([1., 3.])), [[1., 3.], [1., 3.]])  # broadcasts
    r = L.max(L.ones(2, dtype=L.int64), L.ones(2) * 2.5)  # promotes
    assert r.dtype == L.float32
    _same(r, [2.5, 2.5])
    v, i = L.tensor([[1., 7.], [9., 2.]]).max(1)  # the reduction forms are unchanged
    _same(v, [7., 9.]) and _same(i, [1, 0])


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_extremes_of_empty_tensors(L):
    x = L.zeros(0, 3)
    # a non-empty reduced dim gives an empty result; an empty reduced dim or a full reduction raises
    assert tuple(x.amax(1).shape) == (0,) and tuple(x.amin(1, keepdim=True).shape) == (0, 1)
    v, i = x.max(1)
    assert tuple(v.shape) == (0,) and i.dtype == L.int64
    assert tuple(x.argmax(1).shape) == (0,)
    mn, mx = L.aminmax(x, dim=1)
    assert tuple(mn.shape) == tuple(mx.shape) == (0,)
    want = r"Expected reduction dim to be specified for input.numel\(\) == 0. Specify the reduction dim with the 'dim'"
    for f, name in ((lambda: x.max(), "max"), (lambda: x.amax(), "amax"), (lambda: x.amin(dim=()), "amin")):
        with pytest.raises(RuntimeError, match=rf"{name}\(\): {want}"):
            f()
    for f, name in ((lambda: x.max(0), r"max\(\):"), (lambda: x.amax(0), r"amax\(\):"),
                    (lambda: x.amax((0, 1)), r"amax\(\):"), (lambda: x.argmax(0), r"argmax\(\):"),
                    (lambda: L.aminmax(x, dim=0), "aminmax:"), (lambda: L.zeros(0).min(0), r"min\(\):")):
        with pytest.raises(IndexError, match=name + " Expected reduction dim 0 to have non-zero size"):
            f()
    with pytest.raises(IndexError, match=r"argmax\(\): Expected reduction dim to be specified for input.numel"):
        x.argmax()
    with pytest.raises(RuntimeError, match="cannot compute aminmax over an empty dimension"):
        L.aminmax(x)


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("fn, ga, gb", [
    # torch's formula: g, halved at ties, zeroed where the input loses: a NaN loses to nothing
    ("maximum", [1, 2, 1.5, 4, INF, 0], [1, 2, 1.5, 4, 0, NAN]),
    ("minimum", [1, 2, 1.5, 4, 0, NAN], [1, 2, 1.5, 4, INF, 0]),
])
def test_maximum_minimum_gradients_at_nan_and_ties(L, fn, ga, gb):
    a = L.tensor([NAN, 1., 2., NAN, 3., 1.], dtype=L.float64, requires_grad=True)
    b = L.tensor([1., NAN, 2., NAN, 1., 3.], dtype=L.float64, requires_grad=True)
    getattr(L, fn)(a, b).backward(L.tensor([1., 2., 3., 4., INF, NAN], dtype=L.float64))
    _same(a.grad, ga)
    _same(b.grad, gb)


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_var_std_with_correction_at_least_n(L):
    def grad(f, xs, **kw):
        x = L.tensor(xs, dtype=L.float64, requires_grad=True)
        v = f(x, **kw)
        v.backward(L.ones(v.shape, dtype=L.float64))
        return v, x.grad
    # N < correction: value inf (NaN for a constant row), gradient 2 (x - mean) / (N - correction), finite
    v, g = grad(lambda x, **k: x.var(**k), [[1., 2., 4.], [1., 1., 1.]], dim=1, correction=5)
    _same(v, [INF, NAN])
    np.testing.assert_allclose(np.asarray(g.tolist()), [[4 / 3, 1 / 3, -5 / 3], [0, 0, 0]], rtol=1e-15)
    # N == correction: +-inf, NaN where x == mean
    v, g = grad(lambda x, **k: x.var(**k), [[1., 2., 4.], [1., 1., 1.]], dim=1, correction=3)
    _same(g, [[-INF, -INF, INF], [NAN, NAN, NAN]])
    v, g = grad(lambda x, **k: x.std(**k), [[1., 2., 4.]], dim=1, correction=5)
    _same(v, [INF])
    _same(g, [[0, 0, 0]])
    v, g = grad(lambda x, **k: x.var(**k), [[1., 2., 4.]], dim=1, correction=1)  # the ordinary case
    np.testing.assert_allclose(np.asarray(g.tolist()), [[-4 / 3, -1 / 3, 5 / 3]], rtol=1e-14)


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("op", ["logical_and_", "logical_or_", "logical_xor_", "logical_not_"])
def test_inplace_logical_ops_pass_the_gradient_through(L, op):
    x = L.tensor([1., 0., 3.], requires_grad=True)
    y = x * 2
    args = () if op == "logical_not_" else (L.tensor([1., 1., 0.]),)
    r = getattr(y, op)(*args)
    assert r is y and y._version == 1 and y.dtype == L.float32
    want = {"logical_and_": [1, 0, 0], "logical_or_": [1, 1, 1], "logical_xor_": [0, 1, 1], "logical_not_": [0, 1, 0]}
    _same(y.detach(), want[op])
    y.sum().backward()
    _same(x.grad, [2., 2., 2.])  # as if the op had not happened (PyTorch does not differentiate it)
    leaf = L.tensor([1., 0.], requires_grad=True)
    getattr(leaf, op)(*(a[:2] for a in args))  # a leaf may be written: no "leaf Variable" error
    assert leaf._version == 1


def test_inplace_logical_op_still_trips_the_saved_tensor_check():
    x = gg.tensor([1., 0., 3.], requires_grad=True)
    y = x.exp()  # exp saves its output
    y.logical_not_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_histograms_of_constant_inputs(L):
    # a constant input's range widens by 0.5 (histogram) or 1 (histc) each side
    h = L.histogram(L.tensor([2., 2., 2.]), bins=4)
    _same(h.hist, [0, 0, 3, 0])
    _same(h.bin_edges, [1.5, 1.75, 2., 2.25, 2.5])
    _same(L.histc(L.tensor([2., 2., 2.]), bins=4), [0, 0, 3, 0])
    _same(L.histc(L.tensor([-2., -2.]), bins=4), [0, 0, 2, 0])


def test_histograms_refuse_ranges_that_round_to_nothing():
    # NOTE: PyTorch divides by a zero bin width here (1e9 +- 0.5 or 1 is 1e9 in float32) and returns a count in an
    # arbitrary bin (histogram: bin 1, histc: the middle one); gpugrad refuses
    x = gg.tensor([1e9] * 3)
    with pytest.raises(RuntimeError, match=r"too narrow for 7 bins.*float64 input"):
        gg.histogram(x, bins=7)
    with pytest.raises(RuntimeError, match=r"histc: every value is 1000000000.0 .* rounds back to it in Float"):
        gg.histc(x, bins=7)
    with pytest.raises(RuntimeError, match="too narrow for 1000 bins"):
        gg.histogram(gg.tensor([1e9, 1e9 + 64]), bins=1000)
    # float64 has the room
    _same(gg.histc(x.double(), bins=7), [0, 0, 0, 3, 0, 0, 0])
    _same(gg.histogram(x.double(), bins=2).hist, [0, 3])


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_nextafter_gradient(L):
    # PyTorch 2.13: the upstream gradient for self where self != other (zero, even for inf/NaN, where equal)
    x = L.tensor([1., 0., 3., 2.], dtype=L.float64, requires_grad=True)
    o = L.tensor([1., 1., 0., 2.], dtype=L.float64, requires_grad=True)
    L.nextafter(x, o).backward(L.tensor([INF, 2., 3., NAN], dtype=L.float64))
    _same(x.grad, [0, 2, 3, 0])
    _same(o.grad, [0, 0, 0, 0])


def test_singular_and_indefinite_inputs_raise_on_every_device(device):
    # NOTE: on CUDA this checks cuSOLVER's info (CuPy alone returns NaN or garbage without an error)
    with pytest.raises(RuntimeError, match="The diagonal element 1 is zero, the inversion could not be completed"):
        gg.linalg.inv(gg.zeros(2, 2, dtype=gg.float64, device=device))
    with pytest.raises(RuntimeError, match="The solver failed because the input matrix is singular"):
        gg.linalg.solve(gg.zeros(2, 2, device=device), gg.ones(2, device=device))
    with pytest.raises(RuntimeError, match="leading minor of order 2 is not positive-definite"):
        gg.linalg.cholesky(gg.tensor([[1., 2.], [2., 1.]], device=device))


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_python_numbers_into_narrow_dtypes(L):
    # PyTorch 2.13: an unsigned dtype takes integers down to -max, wrapped; anything else out of range raises
    assert L.tensor([-1, -255, 3], dtype=L.uint8).tolist() == [255, 1, 3]
    assert L.full((2,), -1, dtype=L.uint8).tolist() == [255, 255]
    assert L.zeros(2, dtype=L.uint8).fill_(-200).tolist() == [56, 56]
    for f, ctype in ((lambda: L.tensor([-256], dtype=L.uint8), "uint8"), (lambda: L.tensor([200], dtype=L.int8), "int8"),
                     (lambda: L.tensor([-1.5], dtype=L.uint8), "uint8"), (lambda: L.full((1,), 300, dtype=L.uint8),
                                                                         "uint8_t"),
                     (lambda: L.zeros(1, dtype=L.int8).fill_(-129), "int8_t"),
                     (lambda: L.zeros(1).fill_(1e300), "float"), (lambda: L.full((1,), 1e300), "float"),
                     (lambda: L.zeros(2, dtype=L.float16).fill_(1e5), "c10::Half")):
        with pytest.raises(RuntimeError, match=f"value cannot be converted to type {ctype} without overflow"):
            f()
    with pytest.raises(OverflowError):
        L.full((1,), 2 ** 70)
    # in range: as before (a float into an int dtype truncates; inf into a float dtype is inf)
    assert L.zeros(2, dtype=L.int64).fill_(2.5).tolist() == [2, 2] and L.zeros(1).fill_(math.inf).tolist() == [INF]
