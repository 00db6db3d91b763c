"""Issue 11 leftovers: diagflat, fill_diagonal_, renorm, i0, nextafter, the in-place matrix products, scatter_reduce_,
index_reduce; LP pools, adaptive_max_pool3d, max_unpool1d/3d, affine_grid, grid_sample, feature_alpha_dropout, the lazy
modules; linalg.ldl_factor / ldl_factor_ex / ldl_solve. Torch-free checks first, then comparisons with PyTorch."""
import copy
import warnings

import numpy as np
import pytest

import gpugrad as gg

F = gg.nn.functional
R = np.random.default_rng(0)


# -- torch-free -----------------------------------------------------------------------------------------------------
# SciPy's i0/i1 at a few points (reference values, so these tests need no SciPy)
_I0 = {1.0: 1.2660658777520082, 1.5: 1.6467231897728907, -2.0: 2.279585302336067, 3.0: 4.880792585865024}
_I1 = {1.0: 0.5651591039924851, 1.5: 0.9816664285779079, -2.0: -1.5906368546373295, 3.0: 3.9533702174026093,
       30.1: 847983630191.5414, 80.0: 2.4596595795675403e+33}


def test_np_i1_fallback_matches_scipy():
    from gpugrad.ops.extra_ops import _np_i1
    x = np.array(list(_I1))
    np.testing.assert_allclose(_np_i1(x), list(_I1.values()), rtol=1e-13)
    assert _np_i1(np.array([0.0]))[0] == 0.0 and _np_i1(np.array([-3.0]))[0] == -_np_i1(np.array([3.0]))[0]
    sp = pytest.importorskip("scipy.special", exc_type=ImportError)
    x = np.array([0.0, 1e-8, -0.5, 1.0, 3.0, -12.0, 29.9, 30.1, 80.0, -300.0, 700.0])
    np.testing.assert_allclose(_np_i1(x), sp.i1(x), rtol=1e-13, atol=1e-300)


def test_i0_gradients_at_zero_and_second_order():
    x = gg.tensor([0.0, 1.5, -2.0], dtype=gg.float64, requires_grad=True)
    (g,) = gg.autograd.grad(gg.i0(x).sum(), x, create_graph=True)
    (gg2,) = gg.autograd.grad(g.sum(), x)
    i0v, i1v = np.array([1.0, _I0[1.5], _I0[-2.0]]), np.array([0.0, _I1[1.5], _I1[-2.0]])
    xv = x.detach().numpy()
    np.testing.assert_allclose(g.detach().numpy(), i1v, rtol=1e-12)
    want = np.where(xv == 0, 0.5, i0v - i1v / np.where(xv == 0, 1, xv))  # i1' = i0 - i1/x (1/2 at 0)
    np.testing.assert_allclose(gg2.numpy(), want, rtol=1e-12)


def test_fill_diagonal_and_diagflat():
    x = gg.zeros(7, 3)
    assert x.fill_diagonal_(5, wrap=True) is x
    np.testing.assert_array_equal(x.numpy(), (lambda a: (np.fill_diagonal(a, 5, wrap=True), a)[1])(np.zeros((7, 3))))
    y = gg.zeros(3, 3, 3)
    y.fill_diagonal_(2.0)
    assert y.sum().item() == 6 and y[1, 1, 1].item() == 2
    with pytest.raises(RuntimeError, match="all dimensions of input must be of equal length"):
        gg.zeros(2, 3, 4).fill_diagonal_(1)
    np.testing.assert_array_equal(gg.diagflat(gg.tensor([[1, 2], [3, 4]]), 1).numpy(), np.diagflat([1, 2, 3, 4], 1))


def test_fill_diagonal_autograd():
    a = gg.ones(3, 3, requires_grad=True)
    b = a * 2
    b.fill_diagonal_(0.0)
    b.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), 2 * (1 - np.eye(3)))


def test_index_reduce_and_inplace_forms():
    x = gg.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = x.index_reduce(0, gg.tensor([0, 0]), gg.tensor([[2.0, 0.5], [3.0, 1.0]]), "prod")
        np.testing.assert_array_equal(y.numpy(), [[6.0, 1.0], [3.0, 4.0], [5.0, 6.0]])
        with pytest.raises(RuntimeError, match="Expected reduce to be one of prod, mean, amax or amin but got sum"):
            x.index_reduce(0, gg.tensor([0]), gg.ones(1, 2), "sum")
        with pytest.raises(IndexError, match="index out of range in self"):
            x.index_reduce(0, gg.tensor([-1]), gg.ones(1, 2), "amax")
        assert x.index_reduce_(1, gg.tensor([1]), gg.zeros(3, 1), "amin") is x
    np.testing.assert_array_equal(x[:, 1].numpy(), [0.0, 0.0, 0.0])
    z = gg.zeros(3)
    z.scatter_reduce_(0, gg.tensor([0, 0, 2]), gg.tensor([1.0, 2.0, 3.0]), "amax", include_self=False)
    np.testing.assert_array_equal(z.numpy(), [2.0, 0.0, 3.0])
    m = gg.ones(2, 2)
    m.addmm_(gg.eye(2), gg.eye(2), beta=0.5, alpha=2)
    np.testing.assert_array_equal(m.numpy(), [[2.5, 0.5], [0.5, 2.5]])
    v = gg.addmv_(gg.ones(2), gg.eye(2), gg.tensor([1.0, 2.0]))
    np.testing.assert_array_equal(v.numpy(), [2.0, 3.0])


def test_nextafter_lowp_native_and_errors():
    for dt in (gg.float16, gg.bfloat16):
        a = gg.tensor([1.0, 2.0], dtype=dt)
        y = gg.nextafter(a, gg.tensor([3.0, 0.0], dtype=dt))
        assert y.dtype == dt and y[0].item() > 1.0 and y[1].item() < 2.0 and y[0].item() < 1.01
    with pytest.raises(NotImplementedError, match="nextafter_cpu"):
        gg.nextafter(gg.tensor([1]), gg.tensor([2]))
    x = gg.tensor([1.0], requires_grad=True)
    o = gg.tensor([2.0], requires_grad=True)
    gg.nextafter(x, o).sum().backward()
    assert x.grad.item() == 1.0 and o.grad.item() == 0.0


def test_renorm_errors():
    with pytest.raises(RuntimeError, match="renorm: expected maxnorm to be >= 0 but got -1"):
        gg.renorm(gg.ones(2, 2), 2, 0, -1)
    with pytest.raises(RuntimeError, match="non-positive-norm"):
        gg.ones(2, 2).renorm_(0, 0, 1)


def test_lazy_modules():
    m = gg.nn.LazyLinear(3)
    assert repr(m) == "LazyLinear(in_features=0, out_features=3, bias=True)"
    params = list(m.parameters())
    assert len(params) == 2 and all(isinstance(p, gg.nn.UninitializedParameter) for p in params)
    with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized parameter"):
        m.weight.shape
    m2 = copy.deepcopy(m)
    opt = gg.optim.SGD(m.parameters(), lr=0.1)
    y = m(gg.ones(2, 5))
    assert type(m) is gg.nn.Linear and m.in_features == 5 and y.shape == (2, 3)
    assert m.weight is params[0] and type(params[0]) is gg.nn.Parameter and tuple(m.weight.shape) == (3, 5)
    y.sum().backward()
    before = m.weight.detach().numpy().copy()
    opt.step()
    assert not np.array_equal(before, m.weight.detach().numpy())
    assert m2(gg.ones(4, 2)).shape == (4, 3)
    nb = gg.nn.LazyLinear(2, bias=False)
    nb(gg.ones(3))
    assert nb.bias is None and tuple(nb.weight.shape) == (2, 3)
    for cls, x, cout in ((gg.nn.LazyConv1d, gg.ones(4, 5), (4, 4, 3)), (gg.nn.LazyConv2d, gg.ones(1, 2, 5, 5), None),
                         (gg.nn.LazyConv3d, gg.ones(1, 2, 3, 3, 3), None)):
        c = cls(4, 3)
        assert repr(c).startswith(f"{cls.__name__}(0, 4, kernel_size=")
        c(x)
        assert type(c).__name__ == cls.__name__[4:] and c.in_channels == x.shape[-c._n - 1]
        assert tuple(c.weight.shape)[:2] == (4, x.shape[-c._n - 1])
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        gg.nn.LazyConv2d(4, 3, groups=2)(gg.ones(1, 3, 5, 5))


def test_feature_alpha_dropout_masks_whole_maps():
    gg.manual_seed(0)
    y = F.feature_alpha_dropout(gg.ones(4, 6, 3, 3), 0.5, training=True).numpy()
    assert np.all(y == y[:, :, :1, :1]) and len(np.unique(y)) == 2
    assert F.feature_alpha_dropout(gg.ones(2, 2)).numpy().sum() == 4  # training defaults to False
    m = gg.nn.FeatureAlphaDropout(0.2)
    assert repr(m) == "FeatureAlphaDropout(p=0.2, inplace=False)"


def test_ldl_solve_torch_free():
    pytest.importorskip("scipy", exc_type=ImportError)
    a = R.normal(size=(2, 4, 4))
    a = a + a.transpose(0, 2, 1)
    b = R.normal(size=(2, 4, 3))
    LD, piv = gg.linalg.ldl_factor(gg.tensor(a))
    assert piv.dtype == gg.int32 and np.all(np.triu(LD.numpy()[0], 1) == 0)
    x = gg.linalg.ldl_solve(LD, piv, gg.tensor(b))
    np.testing.assert_allclose(a @ x.numpy(), b, atol=1e-10)
    info = gg.linalg.ldl_factor_ex(gg.zeros(3, 3)).info
    assert info.item() == 1
    with pytest.raises(RuntimeError, match="Unknown error code: 1"):
        gg.linalg.ldl_factor(gg.zeros(3, 3))
    A = gg.tensor(a[0], requires_grad=True)
    LD = gg.linalg.ldl_factor(A).LD
    assert LD.requires_grad
    with pytest.raises(RuntimeError, match="derivative for aten::linalg_ldl_factor_ex is not implemented"):
        LD.sum().backward()


# -- against PyTorch ------------------------------------------------------------------------------------------------
def _cmp(gf, tf, *arrs, atol=1e-9, grad=True):
    torch = pytest.importorskip("torch")
    gi = [gg.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrs]
    ti = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gy, ty = gf(*gi), tf(*ti)
    assert str(gy.dtype).split(".")[-1] == str(ty.dtype).split(".")[-1]
    # NOTE: float32 i0 is SciPy's (Cephes): within an ulp of PyTorch's own kernel
    np.testing.assert_allclose(gy.detach().numpy(), ty.detach().numpy(), atol=atol, rtol=1e-7 if gy.dtype == gg.float64
                               else 3e-7)
    if grad and ty.requires_grad:
        w = R.random(tuple(ty.shape))
        gw = [t for t in gi if t.requires_grad]
        tw = [t for t in ti if t.requires_grad]
        ga = gg.autograd.grad((gy * gg.tensor(w)).sum(), gw, allow_unused=True)
        ta = torch.autograd.grad((ty * torch.tensor(w)).sum(), tw, allow_unused=True)
        for a, b in zip(ga, ta):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(a.numpy(), b.numpy(), atol=atol, rtol=1e-7)


A34 = R.normal(size=(3, 4))
TENSOR_CASES = [
    ("diagflat", lambda m: (lambda a: m.diagflat(a, 1)), (A34,)),
    ("renorm", lambda m: (lambda a: m.renorm(a, 2, 0, 1.5)), (A34,)),
    ("renorm_p1", lambda m: (lambda a: a.renorm(1, -1, 1.0)), (A34,)),
    ("renorm_3d", lambda m: (lambda a: a.renorm(3, 1, 1.0)), (R.normal(size=(2, 3, 4)),)),
    ("i0", lambda m: m.i0, (R.normal(size=(6,)) * 3,)),
    ("i0_int", lambda m: m.i0, (np.arange(5),)),
    ("nextafter", lambda m: m.nextafter, (A34, R.normal(size=(4,)))),
    *[(f"index_reduce_{red}_{inc}", lambda m, red=red, inc=inc: (
        lambda a, s: a.index_reduce(0, m.tensor([0, 2, 0, 1, 2]), s, red, include_self=inc)),
       (A34.round(0), R.normal(size=(5, 4)).round(0)))
      for red in ("prod", "mean", "amax", "amin") for inc in (True, False)],
    ("index_reduce_dim1", lambda m: (lambda a, s: m.index_reduce(a, 1, m.tensor([3, 0]), s, "amin")),
     (A34, R.normal(size=(3, 2)))),
    ("addmv_", lambda m: (lambda a, b, c: (a * 1).addmv_(b, c, beta=2, alpha=0.5)),
     (R.normal(size=(3,)), A34, R.normal(size=(4,)))),
    ("baddbmm_", lambda m: (lambda a, b, c: (a * 1).baddbmm_(b, c, beta=0.5)),
     (R.normal(size=(2, 3, 2)), R.normal(size=(2, 3, 4)), R.normal(size=(2, 4, 2)))),
    ("addbmm_", lambda m: (lambda a, b, c: (a * 1).addbmm_(b, c, alpha=3)),
     (R.normal(size=(3, 2)), R.normal(size=(2, 3, 4)), R.normal(size=(2, 4, 2)))),
    ("scatter_reduce_", lambda m: (lambda a, s: (a * 1).scatter_reduce_(0, m.tensor([[0, 1, 0, 0]]), s, "prod")),
     (A34, R.normal(size=(1, 4)))),
    ("renorm_", lambda m: (lambda a: (a * 1).renorm_(2, 1, 0.7)), (A34,)),
    ("i0_", lambda m: (lambda a: (a * 1).i0_()), (A34,)),
]


@pytest.mark.parametrize("name,fn,arrs", TENSOR_CASES, ids=[c[0] for c in TENSOR_CASES])
def test_tensor_ops_match_torch(name, fn, arrs):
    torch = pytest.importorskip("torch")
    _cmp(fn(gg), fn(torch), *arrs)


X4 = R.normal(size=(2, 3, 6, 7))
X5 = R.normal(size=(2, 2, 5, 6, 7))
NN_CASES = [
    *[(f"lp_pool2d_{p}", lambda m, p=p: (lambda a: m.nn.functional.lp_pool2d(a.abs() + 0.1, p, 2)), (X4,))
      for p in (2, 3, 1.5, float("inf"), float("-inf"))],
    ("lp_pool2d_stride_ceil", lambda m: (lambda a: m.nn.functional.lp_pool2d(a, 2, (2, 3), (1, 2), True)), (X4,)),
    ("lp_pool1d", lambda m: (lambda a: m.nn.functional.lp_pool1d(a, 2, 3, 2)), (X4[0],)),
    ("lp_pool3d", lambda m: (lambda a: m.nn.LPPool3d(2, 2)(a)), (X5,)),
    ("adaptive_max_pool3d", lambda m: (lambda a: m.nn.functional.adaptive_max_pool3d(a, (2, 3, 4))), (X5,)),
    ("adaptive_max_pool3d_unbatched", lambda m: (lambda a: m.nn.AdaptiveMaxPool3d((3, None, 2))(a)), (X5[0],)),
    ("adaptive_max_pool3d_ties", lambda m: (lambda a: m.nn.functional.adaptive_max_pool3d(a, 2)),
     (R.normal(size=(2, 2, 4, 4, 4)).round(0),)),
    *[(f"affine_grid_{k}d_{ac}", lambda m, k=k, ac=ac: (
        lambda t: m.nn.functional.affine_grid(t, [2, 3, 4, 5] + [3] * (k - 2), ac)),
       (R.normal(size=(2, k, k + 1)),)) for k in (2, 3) for ac in (True, False)],
    *[(f"grid_sample_{k}d_{mode}_{pm}_{ac}", lambda m, mode=mode, pm=pm, ac=ac: (
        lambda a, g: m.nn.functional.grid_sample(a, g, mode, pm, ac)),
       (X4 if k == 2 else X5, R.uniform(-1.6, 1.6, size=(2, 3, 5, k) if k == 2 else (2, 3, 5, 4, 3))))
      for k in (2, 3) for mode in ("bilinear", "nearest") for pm in ("zeros", "border", "reflection")
      for ac in (True, False)],
    *[(f"grid_sample_edges_{pm}", lambda m, pm=pm: (lambda a, g: m.nn.functional.grid_sample(a, g, "bilinear", pm, True)),
       (X4, np.array([[[[-1.0, -1], [1, 1], [0, 0.5]]]]).repeat(2, 0))) for pm in ("zeros", "border", "reflection")],
]


@pytest.mark.parametrize("name,fn,arrs", NN_CASES, ids=[c[0] for c in NN_CASES])
def test_nn_ops_match_torch(name, fn, arrs):
    torch = pytest.importorskip("torch")
    _cmp(fn(gg), fn(torch), *arrs)


def test_pool_indices_and_unpool_match_torch():
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    for x in (X5, R.normal(size=(2, 2, 4, 4, 4)).round(0)):
        gi = F.adaptive_max_pool3d(gg.tensor(x), (2, 3, 2), True)[1]
        ti = TF.adaptive_max_pool3d(torch.tensor(x), (2, 3, 2), True)[1]
        np.testing.assert_array_equal(gi.numpy(), ti.numpy())
    ty, ti = TF.max_pool3d(torch.tensor(X5[:, :, :4, :4, :4]), 2, return_indices=True)
    gind = gg.tensor(ti.numpy())
    for os_ in (None, (5, 5, 5)):
        _cmp(lambda a: F.max_unpool3d(a, gind, 2, output_size=os_),
             lambda a: TF.max_unpool3d(a, ti, 2, output_size=os_), ty.numpy())
    ty, ti = TF.max_pool1d(torch.tensor(X4[0]), 2, return_indices=True)
    gind = gg.tensor(ti.numpy())
    for os_ in (None, [7]):
        _cmp(lambda a: gg.nn.MaxUnpool1d(2)(a, gind, os_), lambda a: torch.nn.MaxUnpool1d(2)(a, ti, os_), ty.numpy())


def _both(f):
    torch = pytest.importorskip("torch")
    out = []
    for m in (gg, torch):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = f(m)
            out.append(("ok", [str(t.dtype).split(".")[-1] for t in (r if isinstance(r, tuple) else (r,))]))
        except Exception as e:  # noqa: BLE001
            out.append((type(e).__name__, str(e).split("\n")[0]))
    assert out[0] == out[1]


ERROR_CASES = [
    lambda m: m.ones(3, 4).index_reduce_(0, m.tensor([0, 2.0]), m.ones(2, 4), "prod"),
    lambda m: m.ones(3, 4).index_reduce(0, m.tensor([0, 2]), m.ones(2, 4, dtype=m.float64), "prod"),
    lambda m: m.ones(3, 4).index_reduce(0, m.tensor([0, 2]), m.ones(3, 4), "prod"),
    lambda m: m.ones(3, 4).index_reduce(0, m.tensor([[0, 1]]), m.ones(2, 4), "prod"),
    lambda m: m.ones(3, 4).index_reduce(0, m.tensor([0, 1]), m.ones(2, 5), "prod"),
    lambda m: m.ones(3, 4).index_reduce(2, m.tensor([0, 1]), m.ones(2, 4), "amax"),
    lambda m: m.tensor([[7, 8], [1, 1]]).index_reduce(0, m.tensor([0, 0]), m.tensor([[2, 3], [4, 4]]), "mean"),
    lambda m: m.zeros(2).fill_diagonal_(1),
    lambda m: m.renorm(m.ones(3, 4, dtype=m.long), 2, 0, 1),
    lambda m: m.renorm(m.ones(4), 2, 0, 1),
    lambda m: m.renorm(m.ones(3, 4), 2, 2, 1),
    lambda m: m.i0(m.tensor([True])),
    lambda m: m.i0(m.tensor([1.0], dtype=m.float16)),
    lambda m: m.tensor([1, 2]).i0_(),
    lambda m: m.nextafter(m.tensor([1.0, 2]), m.tensor([3, 4.0], dtype=m.float64)),
    lambda m: m.nextafter(m.tensor([1.0, 2]), 3.0),
    lambda m: m.nextafter(m.tensor([True]), m.tensor([True])),
    lambda m: m.ones(2, 2, dtype=m.int64).addmm_(m.ones(2, 2), m.ones(2, 2)),
    lambda m: m.nn.functional.adaptive_max_pool3d(m.ones(2, 3), 2),
    lambda m: m.nn.functional.adaptive_max_pool3d(m.ones(2, 3, 4, 5), (2, 3)),
    lambda m: m.nn.functional.adaptive_max_pool3d(m.ones(2, 0, 4, 5), (2, 3, 1)),
    lambda m: m.nn.functional.max_unpool3d(m.ones(2, 2, 2), m.zeros(2, 2, 2, dtype=m.long), 2),
    lambda m: m.nn.functional.max_unpool3d(m.ones(1, 2, 2, 2), m.zeros(1, 2, 2, 2, dtype=m.int32), 2),
    lambda m: m.nn.functional.max_unpool3d(m.ones(1, 2, 2, 2), m.full((1, 2, 2, 2), 99, dtype=m.long), 2),
    lambda m: m.nn.functional.max_unpool3d(m.ones(1, 2, 2, 2), m.zeros(1, 2, 2, 2, dtype=m.long), 2,
                                           output_size=(9, 9, 9)),
    lambda m: m.nn.functional.max_unpool1d(m.ones(3), m.zeros(3, dtype=m.long), 2),
    lambda m: m.nn.functional.max_unpool1d(m.ones(2, 3), m.full((2, 3), 60, dtype=m.long), 2),
    lambda m: m.nn.functional.max_unpool1d(m.ones(2, 3), m.zeros(2, 3, dtype=m.long), 2, output_size=[12]),
    lambda m: m.nn.functional.affine_grid(m.ones(1, 2, 3, dtype=m.long), [1, 1, 2, 2], False),
    lambda m: m.nn.functional.affine_grid(m.ones(1, 2, 3), [1, 1, 2], False),
    lambda m: m.nn.functional.affine_grid(m.ones(1, 3, 3), [1, 1, 2, 2], False),
    lambda m: m.nn.functional.affine_grid(m.ones(1, 2, 3), [1, 1, 0, 2], False),
    lambda m: m.nn.functional.grid_sample(m.ones(1, 1, 2, 2), m.ones(1, 1, 1, 2), "cubic"),
    lambda m: m.nn.functional.grid_sample(m.ones(1, 1, 2, 2), m.ones(1, 1, 1, 2), padding_mode="wrap"),
    lambda m: m.nn.functional.grid_sample(m.ones(1, 1, 2, 2), m.ones(1, 1, 1, 2, dtype=m.float64)),
    lambda m: m.nn.functional.grid_sample(m.ones(1, 1, 2, 2), m.ones(1, 1, 2)),
    lambda m: m.nn.functional.grid_sample(m.ones(1, 1, 2, 2), m.ones(2, 1, 1, 2)),
    lambda m: m.nn.functional.grid_sample(m.ones(1, 1, 2, 2), m.ones(1, 1, 1, 3)),
    lambda m: m.nn.functional.grid_sample(m.ones(1, 1, 2), m.ones(1, 1, 2, dtype=m.float64)),
    lambda m: m.nn.functional.grid_sample(m.ones(1, 1, 2, 2, 2, 2), m.ones(1, 1, 1, 1, 1, 4)),
    lambda m: m.nn.functional.grid_sample(m.ones(1, 1, 2, 2, 2), m.ones(1, 1, 1, 3)),
    lambda m: m.nn.functional.feature_alpha_dropout(m.ones(2), 1.5),
    lambda m: m.linalg.ldl_factor(m.ones(3, 4)),
    lambda m: m.linalg.ldl_factor(m.ones(3)),
    lambda m: m.linalg.ldl_factor(m.ones(3, 3, dtype=m.long)),
    lambda m: m.linalg.ldl_factor(m.ones(3, 3, dtype=m.float16)),
    lambda m: m.linalg.ldl_factor_ex(m.zeros(2, 3, 3)),
    lambda m: m.linalg.ldl_factor_ex(m.zeros(2, 0, 0)),
    lambda m: m.linalg.ldl_solve(*m.linalg.ldl_factor(m.eye(4, dtype=m.float64)), m.ones(4, 2)),
    lambda m: m.linalg.ldl_solve(*m.linalg.ldl_factor(m.eye(4)), m.ones(3, 2)),
    lambda m: m.linalg.ldl_solve(*m.linalg.ldl_factor(m.eye(4)), m.ones(4)),
    lambda m: m.linalg.ldl_solve(m.eye(4), m.ones(3, dtype=m.int32), m.ones(4, 2)),
]


@pytest.mark.parametrize("k", range(len(ERROR_CASES)))
def test_errors_and_dtypes_match_torch(k):
    if "ldl_" in __import__("inspect").getsource(ERROR_CASES[k]):
        pytest.importorskip("scipy", exc_type=ImportError)  # NOTE: gpugrad's LDL runs on SciPy's LAPACK
    _both(ERROR_CASES[k])


def test_ldl_matches_torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("scipy", exc_type=ImportError)
    a = R.normal(size=(3, 5, 5))
    a = a + a.transpose(0, 2, 1)
    b = R.normal(size=(5, 2))
    for dt in ("float64", "float32"):
        g = gg.linalg.ldl_factor_ex(gg.tensor(a.astype(dt)))
        t = torch.linalg.ldl_factor_ex(torch.tensor(a.astype(dt)))
        for u, v in zip(g, t):
            np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=1e-5)
        x = gg.linalg.ldl_solve(g.LD, g.pivots, gg.tensor(b.astype(dt)))
        y = torch.linalg.ldl_solve(t.LD, t.pivots, torch.tensor(b.astype(dt)))
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-4, atol=1e-6)


def test_lazy_modules_load_a_state_dict_before_their_first_forward():
    # PyTorch 2.13: the state dict holds the uninitialized parameters themselves; loading materializes them with the
    # loaded shapes; the first forward then turns the module into its cls_to_become and keeps the loaded values
    m = gg.nn.LazyLinear(3)
    sd = m.state_dict()
    assert list(sd) == ["weight", "bias"] and all(isinstance(v, gg.nn.UninitializedParameter) for v in sd.values())
    assert repr(sd["weight"]) == "<UninitializedParameter>"
    with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter in numel"):
        m.weight.numel()
    src = gg.nn.Linear(4, 3)
    assert str(m.load_state_dict(src.state_dict())) == "<All keys matched successfully>"
    assert type(m) is gg.nn.LazyLinear and tuple(m.weight.shape) == (3, 4)
    assert repr(m) == "LazyLinear(in_features=0, out_features=3, bias=True)"
    y = m(gg.ones(2, 4))
    assert type(m) is gg.nn.Linear and repr(m) == "Linear(in_features=4, out_features=3, bias=True)"
    assert y.shape == (2, 3)
    np.testing.assert_array_equal(m.weight.detach().numpy(), src.weight.detach().numpy())
    np.testing.assert_array_equal(m.bias.detach().numpy(), src.bias.detach().numpy())
    # uninitialized into uninitialized: nothing to load; into an initialized module: PyTorch's shape error
    assert str(gg.nn.LazyLinear(3).load_state_dict(gg.nn.LazyLinear(3).state_dict())) == \
        "<All keys matched successfully>"
    with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized parameter"):
        gg.nn.Linear(2, 3).load_state_dict(gg.nn.LazyLinear(3).state_dict())
    # nested, and a conv (PyTorch keeps in_channels 0 for a loaded lazy conv)
    s = gg.nn.Sequential(gg.nn.LazyLinear(3), gg.nn.ReLU())
    s.load_state_dict(gg.nn.Sequential(gg.nn.Linear(5, 3), gg.nn.ReLU()).state_dict())
    assert s(gg.ones(1, 5)).shape == (1, 3) and type(s[0]) is gg.nn.Linear
    c = gg.nn.LazyConv2d(5, 3, dtype=gg.float64)
    c.load_state_dict(gg.nn.Conv2d(2, 5, 3).state_dict())
    assert c.weight.dtype == gg.float64 and tuple(c.weight.shape) == (5, 2, 3, 3)
    assert c(gg.ones(1, 2, 6, 6, dtype=gg.float64)).shape == (1, 5, 4, 4)
    assert repr(c) == "Conv2d(0, 5, kernel_size=(3, 3), stride=(1, 1))"
