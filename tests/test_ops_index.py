"""Indexing, scatter_reduce, scans and order statistics (gpugrad/ops/index.py, gpugrad/ops/scan.py): values,
dtypes and errors written out, and checked against torch when it is installed. Gradients: tests/gradrows_index.py."""
import math
import re

import numpy as np
import pytest

import gpugrad as gg

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

NAN = math.nan


def _flat(r):
    """(dtype name, values) of a Tensor, or a list of those for a tuple of results."""
    if isinstance(r, tuple):
        return [_flat(x) for x in r]
    return str(r.dtype).replace("torch.", ""), np.asarray(r.detach().cpu().numpy()).tolist()


# expression over a namespace m (gg or torch), expected (dtype, values) or a list of them for tuples
VALUES = [
    ("gather", lambda m: m.tensor([[1., 2], [3, 4]]).gather(1, m.tensor([[0, 0], [1, 0]])),
     ("float32", [[1., 1.], [4., 3.]])),
    ("index_select", lambda m: m.index_select(m.tensor([[1, 2, 3], [4, 5, 6]]), 1, m.tensor([2, 0])),
     ("int64", [[3, 1], [6, 4]])),
    ("take", lambda m: m.take(m.tensor([[1, 2], [3, 4]]), m.tensor([3, -4])), ("int64", [4, 1])),
    ("take_along_dim", lambda m: m.take_along_dim(m.tensor([[10, 30, 20], [60, 40, 50]]), m.tensor([[1], [0]]), dim=1),
     ("int64", [[30], [60]])),
    ("masked_select", lambda m: m.tensor([[1, 2], [3, 4]]).masked_select(m.tensor([[True], [False]])), ("int64", [1, 2])),
    ("nonzero", lambda m: m.nonzero(m.tensor([[0, 1.5], [2, 0]])), ("int64", [[0, 1], [1, 0]])),
    ("nonzero_tuple", lambda m: m.tensor([[0, 1.5], [2, 0]]).nonzero(as_tuple=True), [("int64", [0, 1]), ("int64", [1, 0])]),
    ("nonzero0d", lambda m: m.nonzero(m.tensor(2)), ("int64", [[]])),
    ("argwhere", lambda m: m.argwhere(m.tensor([0, 3, 0, 1])), ("int64", [[1], [3]])),
    ("where1", lambda m: m.where(m.tensor([[0, 1.5], [2, 0]])), [("int64", [0, 1]), ("int64", [1, 0])]),
    ("sr_sum", lambda m: m.tensor([1., 2, 3]).scatter_reduce(0, m.tensor([0, 0, 2, 2]), m.tensor([5., 6, 7, 8]), "sum"),
     ("float32", [12., 2., 18.])),
    ("sr_mean_noself", lambda m: m.tensor([1., 2, 3]).scatter_reduce(0, m.tensor([0, 0, 2, 2]), m.tensor([5., 6, 7, 8]),
                                                                      "mean", include_self=False), ("float32", [5.5, 2., 7.5])),
    ("sr_amax", lambda m: m.tensor([1, 9, 3]).scatter_reduce(0, m.tensor([0, 0, 2, 2]), m.tensor([5, 6, 7, 1]), "amax"),
     ("int64", [6, 9, 7])),
    ("sr_mean_int", lambda m: m.tensor([1, 9, 3]).scatter_reduce(0, m.tensor([0, 0, 2, 2]), m.tensor([5, 6, 7, 1]), "mean"),
     ("int64", [4, 9, 3])),
    ("prod_int32", lambda m: m.tensor([[1, 2], [3, 4]], dtype=m.int32).prod(1), ("int64", [2, 12])),
    ("prod_bool", lambda m: m.prod(m.tensor([True, True])), ("int64", 1)),
    ("prod_keep", lambda m: m.tensor([[1., 2], [3, 4]]).prod(0, keepdim=True), ("float32", [[3., 8.]])),
    ("cumsum_bool", lambda m: m.tensor([True, False, True]).cumsum(0), ("int64", [1, 1, 2])),
    ("cumsum_dtype", lambda m: m.cumsum(m.tensor([1, 2, 3]), 0, dtype=m.float32), ("float32", [1., 3., 6.])),
    ("cumprod_int8", lambda m: m.tensor([2, 3, 4], dtype=m.int8).cumprod(0), ("int64", [2, 6, 24])),
    ("logcumsumexp_stable", lambda m: m.tensor([-1000., 0., 1000.]).logcumsumexp(0), ("float32", [-1000., 0., 1000.])),
    ("cummax_nan", lambda m: m.cummax(m.tensor([1., 3, 2, 3, NAN, 0]), 0),
     [("float32", [1., 3., 3., 3., NAN, NAN]), ("int64", [0, 1, 1, 3, 4, 4])]),
    ("cummin_ties", lambda m: m.tensor([[3, 1, 2, 1]]).cummin(1), [("int64", [[3, 1, 1, 1]]), ("int64", [[0, 1, 1, 3]])]),
    ("sort_desc_nan", lambda m: m.sort(m.tensor([2., NAN, 1, 2, -0.5]), descending=True),
     [("float32", [NAN, 2., 2., 1., -0.5]), ("int64", [1, 0, 3, 2, 4])]),
    ("sort_stable", lambda m: m.tensor([2., NAN, 1, 2, -0.5]).sort(stable=True),
     [("float32", [-0.5, 1., 2., 2., NAN]), ("int64", [4, 2, 0, 3, 1])]),
    ("sort_bool", lambda m: m.tensor([True, False, True]).sort(), [("bool", [False, True, True]), ("int64", [1, 0, 2])]),
    ("argsort", lambda m: m.argsort(m.tensor([[3, 1, 2], [0, 0, -1]]), dim=1, descending=True),
     ("int64", [[0, 2, 1], [0, 1, 2]])),
    ("topk_ties", lambda m: m.tensor([1, 3, 3, 2]).topk(3), [("int64", [3, 3, 2]), ("int64", [1, 2, 3])]),
    ("topk_smallest", lambda m: m.topk(m.tensor([[4., 1], [2, 3]]), 1, dim=0, largest=False),
     [("float32", [[2., 1.]]), ("int64", [[1, 0]])]),
    ("kthvalue", lambda m: m.tensor([[3, 1, 4, 0, 2]]).kthvalue(4, 1, keepdim=True), [("int64", [[3]]), ("int64", [[0]])]),
    ("kthvalue_ties", lambda m: m.tensor([1., 2, 2, 1]).kthvalue(3), [("float32", 2.), ("int64", 2)]),
    ("median_all", lambda m: m.tensor([[3, 1, 2, 5]]).median(), ("int64", 2)),
    ("median_dim_nan", lambda m: m.median(m.tensor([[3., 1, 2, 5], [NAN, 0, 1, 2]]), 1),
     [("float32", [2., NAN]), ("int64", [2, 0])]),
    ("nanmedian_dim", lambda m: m.tensor([[3., 1, 2, 5], [NAN, 0, 1, NAN]]).nanmedian(1),
     [("float32", [2., 0.]), ("int64", [2, 1])]),
    ("nanmedian_all", lambda m: m.tensor([NAN, 4., 1, 2]).nanmedian(), ("float32", 2.)),
    ("mode", lambda m: m.mode(m.tensor([[1, 2, 2, 1, 3], [0, 4, 4, 0, 4]])), [("int64", [1, 4]), ("int64", [3, 4])]),
    ("quantile_vec_keep", lambda m: m.quantile(m.tensor([[0., 1, 2, 3], [4, 5, 6, 7]]), m.tensor([0.25, 0.5]), dim=1,
                                               keepdim=True), ("float32", [[[0.75], [4.75]], [[1.5], [5.5]]])),
    *[(f"quantile_{how}", lambda m, h=how, q=q: m.tensor([0., 1, 2, 3]).quantile(q, interpolation=h), ("float32", v))
      for how, q, v in [("lower", 0.5, 1.), ("higher", 0.5, 2.), ("nearest", 0.5, 2.), ("midpoint", 0.4, 1.5),
                        ("linear", 0.4, 1.2000000476837158)]],
    ("quantile_nan_row", lambda m: m.tensor([[0., NAN, 2], [1, 2, 3]]).quantile(0.5, dim=1), ("float32", [NAN, 2.])),
    ("std_mean", lambda m: m.std_mean(m.tensor([[1., 2, 4], [0, 0, 3]]), dim=0, correction=0, keepdim=True),
     [("float32", [[0.5, 1., 0.5]]), ("float32", [[0.5, 1., 3.5]])]),
    ("var_mean_unbiased_pos", lambda m: m.var_mean(m.tensor([1., 2, 4, 5]), False), [("float32", 2.5), ("float32", 3.)]),
    ("aminmax", lambda m: m.aminmax(m.tensor([[1, 5, -2], [0, 7, 3]]), dim=0), [("int64", [0, 5, -2]), ("int64", [1, 7, 3])]),
    ("nansum", lambda m: m.tensor([[1., NAN], [NAN, NAN]]).nansum(1), ("float32", [1., 0.])),
    ("nansum_int8", lambda m: m.nansum(m.tensor([1, 2], dtype=m.int8)), ("int64", 3)),
    ("nanmean", lambda m: m.nanmean(m.tensor([[1., NAN, 3], [NAN, NAN, NAN]]), dim=1), ("float32", [2., NAN])),
    ("count_nonzero", lambda m: m.count_nonzero(m.tensor([[0, 1, 2], [3, 0, 0]]), dim=1), ("int64", [2, 1])),
    ("count_nonzero_nan", lambda m: m.tensor([[0., NAN], [1, 0]]).count_nonzero(), ("int64", 2)),
    ("unique", lambda m: m.unique(m.tensor([3, 1, 3, 2, 1]), return_inverse=True, return_counts=True),
     [("int64", [1, 2, 3]), ("int64", [2, 0, 2, 1, 0]), ("int64", [2, 1, 2])]),
    ("unique_dim0", lambda m: m.tensor([[1, 2], [0, 5], [1, 2]]).unique(dim=0, return_counts=True),
     [("int64", [[0, 5], [1, 2]]), ("int64", [1, 2])]),
    ("unique_dim1", lambda m: m.unique(m.tensor([[1, 0, 1], [2, 5, 2]]), dim=1, return_inverse=True),
     [("int64", [[0, 1], [5, 2]]), ("int64", [1, 0, 1])]),
    ("unique_nan", lambda m: m.tensor([NAN, 1., NAN, 1]).unique(), ("float32", [1., NAN, NAN])),
    ("bincount", lambda m: m.bincount(m.tensor([0, 3, 3, 1]), minlength=6), ("int64", [1, 1, 0, 2, 0, 0])),
    ("bincount_weights", lambda m: m.tensor([0, 3, 3]).bincount(m.tensor([0.5, 1, 2])), ("float32", [0.5, 0., 0., 3.])),
    ("histc", lambda m: m.histc(m.tensor([1., 2, 1, 7, -1]), bins=4, min=0, max=3), ("float32", [0., 2., 1., 0.])),
    ("histc_auto_range", lambda m: m.tensor([1., 2, 1, 4]).histc(3), ("float32", [2., 1., 1.])),
    ("any_dim", lambda m: m.tensor([[0, 1], [0, 0]]).any(1), ("bool", [True, False])),
    ("all_keepdim", lambda m: m.all(m.tensor([[1., 1], [0, 1]]), dim=0, keepdim=True), ("bool", [[False, True]])),
    ("all_dims", lambda m: m.tensor([[[1, 1], [0, 1]]]).all(dim=(0, 2)), ("bool", [True, False])),
    ("any_uint8", lambda m: m.tensor([[0, 1], [0, 0]], dtype=m.uint8).any(0), ("uint8", [0, 1])),
    ("any_axis", lambda m: m.any(m.tensor([[0, 1], [0, 0]]), axis=0, keepdims=True), ("bool", [[False, True]])),
]


def _same(got, want):
    if isinstance(want, list) and want and isinstance(want[0], tuple):
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
        return
    assert got[0] == want[0]
    np.testing.assert_array_equal(np.asarray(got[1], dtype=float), np.asarray(want[1], dtype=float))


@pytest.mark.parametrize("name,expr,want", VALUES, ids=[v[0] for v in VALUES])
def test_values(name, expr, want):
    _same(_flat(expr(gg)), want)
    if torch is not None:
        _same(_flat(expr(torch)), want)


def test_return_types_and_gradients_to_selected():
    x = gg.tensor([[3., 1, 2], [0, 5, 4]], requires_grad=True)
    s = x.sort(1)
    assert type(s).__name__ == "sort" and s.values is s[0] and s.indices.tolist() == [[1, 2, 0], [0, 2, 1]]
    (s.values * gg.tensor([1., 2, 3])).sum().backward()
    assert x.grad.tolist() == [[3., 1., 2.], [1., 3., 2.]]
    y = gg.tensor([1., 2, 2, 3, 2], requires_grad=True)
    y.median().backward()  # NOTE: median() shares the gradient among the tied medians, as PyTorch
    np.testing.assert_allclose(y.grad.numpy(), [0, 1 / 3, 1 / 3, 0, 1 / 3])
    z = gg.tensor([2., 0, 3, 4], requires_grad=True)
    (g,) = gg.autograd.grad((z.cumprod(0) * gg.tensor([1., 2, 3, 4])).sum(), z, create_graph=True)
    assert g.tolist() == [1., 118., 0., 0.]
    (h,) = gg.autograd.grad((g * gg.tensor([1., 2, 3, 4])).sum(), z)
    assert h.tolist() == [118., 269., 76., 48.]
    p = gg.tensor([2., 0, 3], requires_grad=True)
    p.prod().backward()
    assert p.grad.tolist() == [0., 6., 0.]
    assert gg.aminmax(gg.tensor([1, 2]))._fields == ("min", "max")


I = lambda v: gg.tensor(v)  # noqa: E731, E741
M23 = gg.arange(6.).reshape(2, 3)
ERRORS = [
    (lambda: M23.gather(1, I([[0, 5]])), RuntimeError, "index 5 is out of bounds for dimension 1 with size 3"),
    (lambda: M23.gather(1, I([[0, -1]])), RuntimeError, "index -1 is out of bounds for dimension 1 with size 3"),
    (lambda: M23.gather(1, I([0, 1])), RuntimeError, "Index tensor must have the same number of dimensions"),
    (lambda: M23.gather(1, I([[0.]])), RuntimeError, r"gather\(\): Expected dtype int64 or int32 for index"),
    (lambda: M23.index_select(1, I([0, 3])), RuntimeError, "index 3 is out of bounds for dimension 1 with size 3"),
    (lambda: M23.index_select(0, I([[0]])), IndexError, r"index_select\(\): Index is supposed to be a vector"),
    (lambda: M23.take(I([6])), IndexError, "out of range: tried to access index 6 on a tensor of 6 elements."),
    (lambda: M23.take(I([-7])), IndexError, "out of range: tried to access index -7 on a tensor of 6 elements."),
    (lambda: M23.masked_select(I([1, 0, 1])), RuntimeError, "masked_select: expected BoolTensor for mask"),
    (lambda: M23.scatter_reduce(0, I([[0]]), M23, "max"), RuntimeError, "reduce argument must be either sum, prod"),
    (lambda: M23.topk(4), RuntimeError, "selected index k out of range"),
    (lambda: M23.kthvalue(0), RuntimeError, r"kthvalue\(\): selected number k out of range for dimension 1"),
    (lambda: gg.zeros(2, 0).median(1), IndexError, r"median\(\): Expected reduction dim 1 to have non-zero size."),
    (lambda: M23.cumsum(2), IndexError, "out of range"),
    (lambda: gg.tensor([1, 2]).logcumsumexp(0), NotImplementedError, "not implemented for 'Long'"),
    (lambda: gg.tensor([1, 2]).quantile(0.5), RuntimeError, "quantile.. input tensor must be either float or double"),
    (lambda: M23.quantile(1.5), RuntimeError, r"quantile\(\) q values must be in the range \[0, 1\]"),
    (lambda: M23.quantile(0.5, interpolation="x"), ValueError, "interpolation must be one of linear"),
    (lambda: M23.quantile(I([0.5]).double()), RuntimeError, "q tensor must be same dtype as the input tensor"),
    (lambda: gg.tensor([1, 2]).nanmean(), RuntimeError, r"nanmean\(\): expected input to have floating point"),
    (lambda: gg.aminmax(gg.tensor([])), RuntimeError, "cannot compute aminmax over an empty dimension"),
    (lambda: gg.bincount(I([-1, 3])), RuntimeError, "bincount only supports 1-d non-negative integral inputs."),
    (lambda: gg.bincount(I([1., 3])), NotImplementedError, "not implemented for 'Float'"),
    (lambda: gg.histc(I([1., 2]), bins=4, min=3, max=1), RuntimeError, "torch.histc: max must be larger than min"),
    (lambda: gg.histc(I([1, 2])), NotImplementedError, "not implemented for 'Long'"),
]


@pytest.mark.parametrize("fn,exc,msg", ERRORS, ids=[f"err{i}" for i in range(len(ERRORS))])
def test_errors(fn, exc, msg):
    with pytest.raises(exc, match=msg):
        fn()


def test_large_sort_and_cumsum_match_numpy():
    r = np.random.default_rng(0).standard_normal((7, 300))
    x = gg.tensor(r)
    np.testing.assert_array_equal(x.sort(1).values.numpy(), np.sort(r, 1))
    np.testing.assert_array_equal(x.argsort(0, descending=True).numpy(), np.argsort(-r, 0, kind="stable"))
    np.testing.assert_allclose(x.cumsum(1).numpy(), np.cumsum(r, 1), rtol=1e-12)
    np.testing.assert_allclose(x.logcumsumexp(1).numpy(), np.logaddexp.accumulate(r, 1), rtol=1e-12)
    np.testing.assert_allclose(x.quantile(0.37, dim=1).numpy(), np.quantile(r, 0.37, axis=1), rtol=1e-12)


# -- scatter_reduce prod ---------------------------------------------------------------------------
def _scatter_prod(m, x, idx, src, inc, dim, create_graph=False):
    X, S = m.tensor(x, requires_grad=True), m.tensor(src, requires_grad=True)
    y = m.scatter_reduce(X, dim, m.tensor(idx), S, "prod", include_self=inc)
    g = m.arange(1., y.numel() + 1, dtype=X.dtype).reshape(tuple(y.shape))
    gx, gs = m.autograd.grad((y * g).sum(), (X, S), create_graph=create_graph)
    return [t.detach().numpy() for t in (y, gx, gs)]


def test_scatter_reduce_prod_closed_form():
    # target 0 of row 0: 2 * 3 * 0.5 (self * src), target 1: 4 * 0 * 5 (one zero), target 2: 7 (untouched)
    # row 1: target 0: 0 * 2 * 0 (zeros in self and twice in src)
    x = [[2., 4., 7.], [0., 1., 1.]]
    idx = [[0, 1, 0, 1], [0, 0, 1, 2]]
    src = [[3., 0., 0.5, 5.], [2., 0., 6., 0.]]
    y, gx, gs = _scatter_prod(gg, x, idx, src, True, 1)
    np.testing.assert_array_equal(y, [[3., 0., 7.], [0., 6., 0.]])
    # grad (weights 1..6): d/dself = weight * (product of the src values)
    np.testing.assert_array_equal(gx, [[1 * 1.5, 2 * 0., 3.], [4 * 0., 5 * 6., 6 * 0.]])
    # d/dsrc = weight * (self * the other src values), the single zero of row 0 target 1 included
    np.testing.assert_array_equal(gs, [[1 * 1., 2 * 20., 1 * 6., 2 * 0.], [4 * 0., 4 * 0., 5 * 1., 6 * 1.]])
    y, gx, gs = _scatter_prod(gg, x, idx, src, False, 1)  # without self: touched targets start from 1
    np.testing.assert_array_equal(y, [[1.5, 0., 7.], [0., 6., 0.]])
    np.testing.assert_array_equal(gx, [[0., 0., 3.], [0., 0., 0.]])
    np.testing.assert_array_equal(gs, [[1 * 0.5, 2 * 5., 1 * 3., 2 * 0.], [4 * 0., 4 * 2., 5 * 1., 6 * 1.]])
    assert gg.tensor([[1, 2], [3, 4]]).scatter_reduce(1, I([[0, 0], [1, 1]]), gg.tensor([[5, 6], [7, 8]]),
                                                       "prod").tolist() == [[30, 2], [3, 224]]


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@pytest.mark.parametrize("inc", [True, False])
def test_scatter_reduce_prod_matches_torch(inc):
    rng = np.random.default_rng(3)
    for trial in range(12):
        dim = trial % 2
        x = rng.choice([0., 1.5, -2., 0.5, 3.], size=(3, 5))
        ishape = (3, 4) if dim == 1 else (4, 4)
        src = rng.choice([0., 1.5, -2., 0.5, 1.25], size=ishape, p=[0.25, 0.2, 0.2, 0.2, 0.15])
        idx = rng.integers(0, x.shape[dim], ishape)
        for a, b in zip(_scatter_prod(gg, x, idx, src, inc, dim), _scatter_prod(torch, x, idx, src, inc, dim)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_scatter_reduce_prod_double_backward():
    x, idx, src = [[2., 3.]], [[0, 0, 1]], [[5., 0.5, 4.]]
    X, S = gg.tensor(x, requires_grad=True), gg.tensor(src, requires_grad=True)
    y = gg.scatter_reduce(X, 1, gg.tensor(idx), S, "prod")
    (gs,) = gg.autograd.grad(y.sum(), S, create_graph=True)
    assert gs.tolist() == [[1., 10., 3.]]  # x0 * the other src of target 0; x1 for target 1
    (h,) = gg.autograd.grad(gs[0, 0], S)
    assert h.tolist() == [[0., 2., 0.]]  # d(x0 * s1)/ds1
    S0 = gg.tensor([[0., 0., 4.]], requires_grad=True)
    y = gg.scatter_reduce(X, 1, gg.tensor(idx), S0, "prod")
    with pytest.raises(RuntimeError, match="Double backward is unsupported for src when >1 zeros"):
        gg.autograd.grad(y.sum(), S0, create_graph=True)


def test_blocked_scans_match_sequential():
    # the NumPy fast paths along a long last axis (blocked cumsum / cumprod / prod), odd lengths, special values
    rng = np.random.default_rng(5)
    for n in (64, 333, 1024):
        r = 1 + 1e-2 * rng.standard_normal((40, n))
        x = gg.tensor(r.astype(np.float32))
        np.testing.assert_allclose(x.cumsum(1).numpy(), np.cumsum(r, 1), rtol=2e-6)
        np.testing.assert_allclose(x.cumprod(1).numpy(), np.cumprod(r, 1), rtol=2e-5)
        np.testing.assert_allclose(x.prod(1).numpy(), np.prod(r, 1), rtol=2e-5)
        np.testing.assert_allclose(gg.tensor(r).cumsum(-1).numpy(), np.cumsum(r, 1), rtol=1e-12)
    z = np.ones((8, 200), np.float32)
    z[0, 3], z[1, 150], z[2, 10], z[2, 70], z[3, 40], z[4, 199] = np.inf, np.nan, 0, np.inf, -np.inf, 0
    with np.errstate(all="ignore"):
        for got, want in ((gg.tensor(z).cumsum(1), np.cumsum(z, 1)), (gg.tensor(z).cumprod(1), np.cumprod(z, 1)),
                          (gg.tensor(z).prod(1), np.prod(z, 1))):
            np.testing.assert_array_equal(got.numpy(), want)
    h = gg.tensor(np.full((16, 1024), 1.001, np.float32)).half()
    assert h.cumsum(1).dtype == gg.float16 and float(h.cumsum(1)[0, -1]) == pytest.approx(1025, rel=1e-3)



def test_flat_index_is_writable_and_gather_matches():
    # flat_index hands numpy a writable index (a read-only broadcast view made take/add.at copy it first)
    from gpugrad.ops.shape import Trusted, flat_index
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 9, (6, 9))
    lin = flat_index(Trusted((idx.reshape(-1),)), (54,))
    assert lin.flags.writeable and np.array_equal(lin, idx.reshape(-1))
    cols = rng.integers(0, 4, (1, 5))
    b = flat_index(Trusted((np.arange(3)[:, None], cols)), (3, 4))  # broadcast pair: (3, 5) linear indices
    assert np.array_equal(b, (np.arange(3)[:, None] * 4 + cols).reshape(-1))
    x = rng.standard_normal((6, 9)).astype(np.float32)
    a = gg.tensor(x, requires_grad=True)
    y = gg.gather(a, 1, gg.tensor(idx))
    assert np.array_equal(y.detach().numpy(), np.take_along_axis(x, idx, 1))
    g = rng.standard_normal((6, 9)).astype(np.float32)
    y.backward(gg.tensor(g))
    want = np.zeros_like(x)
    for i in range(6):
        for j in range(9):
            want[i, idx[i, j]] += g[i, j]
    np.testing.assert_allclose(a.grad.numpy(), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", ["rows", "view", "dim1", "partial", "broken", "general"])
def test_scatter_add_row_index_bit_identical(case):
    # a scatter index that is one row index broadcast along the other dims takes the row-rounds path
    # (shape._row_index): values and gradients stay bit-identical to the sequential np.add.at order
    from gpugrad.ops.shape import _row_index
    rng = np.random.default_rng(3)
    shape, d, n = ((30, 40), 0, 400) if case != "dim1" else ((3, 20, 33), 1, 300)
    ishape = list(shape)
    ishape[d] = n
    heads = rng.integers(0, shape[d], n).reshape([n if k == d else 1 for k in range(len(shape))])
    idx = np.broadcast_to(heads, ishape)
    if case == "partial":  # other dims smaller than self's: not a row index (general path)
        idx = idx[:, :25]
    idx = idx if case == "view" else idx.copy()
    if case == "broken":
        idx[n // 2, 7] = (idx[n // 2, 7] + 1) % shape[d]
    if case == "general":
        idx = rng.integers(0, shape[d], ishape)
    src = rng.standard_normal(idx.shape).astype(np.float32)
    grid = np.ix_(*[np.arange(s) for s in idx.shape])
    tup = tuple(idx if k == d else grid[k] for k in range(len(shape)))
    assert (_row_index(tup, shape) is not None) == (case in ("rows", "view", "dim1"))
    z = gg.zeros(shape, requires_grad=True)
    s = gg.tensor(src, requires_grad=True)
    y = z.scatter_add(d, gg.tensor(idx), s)
    want = np.zeros(shape, np.float32)
    np.add.at(want, tup, src)
    assert np.array_equal(y.detach().numpy(), want)
    g = rng.standard_normal(shape).astype(np.float32)
    y.backward(gg.tensor(g))
    assert np.array_equal(s.grad.numpy(), g[tup]) and np.array_equal(z.grad.numpy(), g)
    if torch is not None:
        t = torch.zeros(shape).scatter_add(d, torch.tensor(np.ascontiguousarray(idx)), torch.tensor(src))
        assert np.array_equal(y.detach().numpy(), t.numpy())
    # double backward through the saved row index / linear index
    x = gg.tensor(src.astype(np.float64), requires_grad=True)
    w = gg.tensor(g.astype(np.float64), requires_grad=True)
    (gx,) = gg.autograd.grad((gg.zeros(shape, dtype=gg.float64).scatter_add(d, gg.tensor(idx), x) * w).sum(), x,
                             create_graph=True)
    (gw,) = gg.autograd.grad((gx * gx).sum(), w)
    want_w = np.zeros(shape)
    np.add.at(want_w, tup, 2 * g.astype(np.float64)[tup])
    np.testing.assert_allclose(gw.numpy(), want_w, rtol=1e-12)


def _sequential(base, idx_tuple, src):
    """PyTorch's CPU order: each target adds its sources one by one onto its own value (float32 each step)."""
    out = base.copy()
    full = [np.broadcast_to(i, src.shape) for i in idx_tuple]
    for pos in np.ndindex(src.shape):
        tgt = tuple(int(i[pos]) for i in full)
        out[tgt] = np.float32(out[tgt] + src[pos])
    return out


@pytest.mark.parametrize("case", ["rows", "general", "index_add"])
def test_indexed_adds_accumulate_onto_self_in_order(case):
    # ((t + a) + b), not t + (a + b): bit for bit PyTorch's CPU scatter_add/index_add on a non-zero self
    rng = np.random.default_rng(7)
    base = (rng.standard_normal((6, 40)) * 1e4).astype(np.float32)
    if case == "index_add":
        rows = rng.integers(0, 6, 300)
        src = rng.standard_normal((300, 40)).astype(np.float32)
        t, s = gg.tensor(base, requires_grad=True), gg.tensor(src, requires_grad=True)
        y = t.index_add(0, gg.tensor(rows), s)
        idx = np.broadcast_to(rows[:, None], src.shape)
    else:
        idx = (np.broadcast_to(rng.integers(0, 6, (300, 1)), (300, 40)).copy() if case == "rows"
               else rng.integers(0, 6, (300, 40)))
        src = rng.standard_normal(idx.shape).astype(np.float32)
        t, s = gg.tensor(base, requires_grad=True), gg.tensor(src, requires_grad=True)
        y = t.scatter_add(0, gg.tensor(idx), s)
    grid = np.ix_(*[np.arange(n) for n in idx.shape])
    want = _sequential(base, (idx, grid[1]), src)
    assert np.array_equal(y.detach().numpy(), want)
    assert not np.array_equal(want, base + _sequential(np.zeros_like(base), (idx, grid[1]), src))  # the order shows
    if torch is not None:
        tt = torch.tensor(base)
        got = (tt.index_add(0, torch.tensor(rows), torch.tensor(src)) if case == "index_add"
               else tt.scatter_add(0, torch.tensor(idx), torch.tensor(src)))
        assert np.array_equal(got.numpy(), want)
    g = rng.standard_normal(base.shape).astype(np.float32)
    y.backward(gg.tensor(g))
    assert np.array_equal(t.grad.numpy(), g) and np.array_equal(s.grad.numpy(), g[idx, grid[1]])
    t2 = gg.tensor(base.copy())
    (t2.index_add_(0, gg.tensor(rows), gg.tensor(src)) if case == "index_add"
     else t2.scatter_add_(0, gg.tensor(idx), gg.tensor(src)))
    assert np.array_equal(t2.numpy(), want)


_DTYPE_ERRORS = [
    ("scatter_add", lambda m, x, s: x.scatter_add(0, m.tensor([0]), s), "scatter(): Expected self.dtype to be equal"),
    ("scatter", lambda m, x, s: x.scatter(0, m.tensor([0]), s), "scatter(): Expected self.dtype to be equal"),
    ("scatter add", lambda m, x, s: x.scatter(0, m.tensor([0]), s, reduce="add"), "scatter(): Expected self.dtype"),
    ("scatter_", lambda m, x, s: x.scatter_(0, m.tensor([0]), s), "scatter(): Expected self.dtype to be equal"),
    ("index_add", lambda m, x, s: x.index_add(0, m.tensor([0]), s), r"index_add_\(\): self \(Float\) and source "
                                                                     r"\(Double\) must have the same scalar type"),
    ("index_add_", lambda m, x, s: x.index_add_(0, m.tensor([0]), s), "must have the same scalar type"),
    ("index_copy", lambda m, x, s: x.index_copy(0, m.tensor([0]), s), r"index_copy_\(\): self and source expected "
                                                                       r"to have the same dtype, but got \(self\) Float"),
    ("masked_scatter", lambda m, x, s: x.masked_scatter(x > -1, s), "masked_scatter: expected self and source to "
                                                                    "have same dtypes but got"),
]


@pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter")
@pytest.mark.parametrize("name,call,msg", _DTYPE_ERRORS, ids=[r[0] for r in _DTYPE_ERRORS])
def test_indexed_updates_refuse_another_source_dtype(name, call, msg):
    # PyTorch raises (never promotes or casts) when src/source has another dtype than self
    for m in (gg, torch) if torch is not None else (gg,):
        x = m.zeros(3)
        with pytest.raises(RuntimeError, match=msg if "\\" in msg else re.escape(msg)):
            call(m, x, m.ones(3, dtype=m.float64))
    assert np.array_equal(x.numpy(), np.zeros(3))  # nothing written


@pytest.mark.parametrize("name", ["index_add", "index_copy"])
def test_negative_index_out_of_range_as_pytorch(name):
    # index_add/index_copy refuse negative indices (PyTorch: IndexError); index_fill counts them from the end
    x = gg.zeros(3)
    with pytest.raises(IndexError, match="index -1 is out of bounds for dimension 0 with size 3"):
        getattr(x, name)(0, gg.tensor([-1]), gg.ones(1))
    assert x.index_fill(0, gg.tensor([-1]), 2.0).tolist() == [0.0, 0.0, 2.0]
    if torch is not None:
        with pytest.raises(IndexError):
            getattr(torch.zeros(3), name)(0, torch.tensor([-1]), torch.ones(1))
