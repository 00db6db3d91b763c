"""Issue 11 (breadth): the everyday names gpugrad lacked (in-place forms, aliases, properties, torch.* ops). Each
case runs without torch (finite results, gradients); with torch it is compared: values, dtypes, shapes,
gradients and errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import gpugrad as gg
from case_table import run_case

R = np.random.default_rng(1)


def _a(*shape):
    return R.standard_normal(shape)


X, Y, P = _a(3, 4), _a(3, 4), R.uniform(0.2, 0.8, (3, 4))
V3, M3 = _a(4, 3), _a(3, 3)
I = np.array([[3, -1, 2, 0], [7, 7, -4, 5]], np.int64)
J = np.array([[2, 3, 1, 5], [-3, 7, 6, 5]], np.int64)
NAN = np.array([1.0, np.nan, -2.0, np.nan, 0.5])
NAN2 = np.array([np.nan, 3.0, -2.0, 4.0, 0.7])


def ip(name, *a, **k):
    """x.<name>_(...) on a non-leaf copy (so autograd records it), returning x."""
    return lambda m, x, *t: (x * 1).__getattribute__(name + "_")(*t, *a, **k)


# name -> (call(m, *tensors), inputs, positions of the differentiable inputs). m is gpugrad or torch.
CASES = {
    **{f"{n}_": (ip(n), [P], (0,)) for n in
       "acos asin atan arccos arcsin arctan erf erfc erfinv exp2 expm1 log10 log1p log2 logit lgamma "
       "digamma reciprocal rsqrt sinc sinh cosh tan sign ceil floor trunc fix frac negative absolute".split()},
    # NOTE: PyTorch has no derivative for the in-place asinh_/acosh_/atanh_ (NotImplementedError); gpugrad has:
    # compared without gradients here, checked against finite differences in gradrows_math.py
    **{f"{n}_": (ip(n), [P], ()) for n in "asinh arcsinh atanh arctanh".split()},
    "acosh_": (lambda m, x: (x + 1.5).acosh_(), [P], ()),
    "sgn_": (ip("sgn"), [X], ()),
    "round_": (ip("round", decimals=1), [X], (0,)),
    "logit_ eps": (ip("logit", 0.3), [P], (0,)),
    "nan_to_num_": (lambda m, x: (x * 1).nan_to_num_(posinf=7.0), [NAN], (0,)),
    **{f"{n}_": (ip(n), [X, Y], (0, 1)) for n in "atan2 arctan2 hypot copysign multiply subtract".split()},
    "fmod_": (ip("fmod"), [X, Y + 3], (0, 1)),
    "remainder_": (ip("remainder", 0.7), [X], (0,)),
    "divide_ trunc": (ip("divide", rounding_mode="trunc"), [X, Y + 3], (0, 1)),
    "true_divide_": (ip("true_divide"), [X, Y + 3], (0, 1)),
    "floor_divide_": (ip("floor_divide"), [X, Y + 3], ()),  # NOTE: no derivative, as PyTorch
    "xlogy_": (ip("xlogy"), [X, P], (0, 1)),
    "xlogy_ kw": (lambda m, x, y: (x * 1).xlogy_(other=y.abs()), [X, Y], (0, 1)),
    "heaviside_": (lambda m, x, v: x.sign().heaviside_(v), [X, Y], ()),
    "float_power_": (lambda m, x, y: (x * 1).abs().float_power_(y), [X, Y], (0, 1)),
    "cumsum_": (lambda m, x: (x * 1).cumsum_(1), [X], (0,)),
    "cumprod_": (lambda m, x: (x * 1).cumprod_(dim=0), [X], (0,)),
    "tril_": (ip("tril", -1), [X], (0,)),
    "triu_": (lambda m, x: (x * 1).triu_(diagonal=1), [X], (0,)),
    **{f"{n}_": (ip(n), [X, Y], (0,)) for n in
       "eq ne lt le gt ge greater greater_equal less less_equal not_equal".split()},
    # NOTE: PyTorch leaves x's history untouched by x.logical_and_(y): the gradient flows as if x were unchanged
    **{f"{n}_": (ip(n), [X, Y], (0,)) for n in "logical_and logical_or logical_xor".split()},
    "logical_not_": (lambda m, x: (x * 1).logical_not_(), [X], (0,)),
    "bitwise_and_": (lambda m, a, b: a.bitwise_and_(b), [I, J], ()),
    "bitwise_xor_": (lambda m, a, b: a.bitwise_xor_(b), [I, J], ()),
    "bitwise_left_shift_": (lambda m, a: a.abs().bitwise_left_shift_(2), [I], ()),
    "gcd_": (lambda m, a, b: a.gcd_(b), [I, J], ()),
    "lcm": (lambda m, a, b: m.lcm(a, b), [I, J], ()),
    "clamp_min": (lambda m, x: x.clamp_min(0.1), [X], (0,)),
    "clamp_max tensor": (lambda m, x, y: m.clamp_max(x, y), [X, Y], (0, 1)),
    "clamp_min_ tensor": (lambda m, x, y: (x * 1).clamp_min_(y), [X, Y], (0, 1)),
    "clamp_max_": (ip("clamp_max", 0.2), [X], (0,)),
    "swapaxes_": (lambda m, x: x.detach().clone().swapaxes_(0, 1), [X], ()),
    "swapdims_": (lambda m, x: x.detach().clone().swapdims_(dim0=1, dim1=0), [X], ()),
    # aliases
    "absolute": (lambda m, x: m.absolute(x), [X], (0,)),
    "negative": (lambda m, x: x.negative(), [X], (0,)),
    "positive": (lambda m, x: m.positive(x), [X], (0,)),
    "greater": (lambda m, x, y: m.greater(x, y), [X, Y], ()),
    "less_equal": (lambda m, x: x.less_equal(0.1), [X], ()),
    "not_equal": (lambda m, x, y: m.not_equal(x, other=y), [X, X], ()),
    "ravel": (lambda m, x: m.ravel(x.mT), [X], (0,)),
    "msort": (lambda m, x: m.msort(x), [X], (0,)),
    "H": (lambda m, x: x.H, [X], (0,)),
    "mH": (lambda m, x: x.reshape(3, 2, 2).mH, [X], (0,)),
    "adjoint": (lambda m, x: m.adjoint(x.reshape(2, 3, 2)), [X], (0,)),
    "byte char short": (lambda m, a: (a.abs().byte(), a.char(), a.short()), [I], ()),
    # torch.* ops
    "isin": (lambda m, a, b: m.isin(a, b), [I, J], ()),
    "isin invert scalar": (lambda m, a: m.isin(a, 7, invert=True), [I], ()),
    "isin scalar elements": (lambda m, b: m.isin(5, b), [J], ()),
    "searchsorted": (lambda m, s, v: m.searchsorted(s.sort().values, v), [X[0], Y], ()),
    "searchsorted right int32": (lambda m, s, v: m.searchsorted(s, v, right=True, out_int32=True),
                                 [np.array([1.0, 2, 2, 3]), np.array([2.0, 0.5, 3])], ()),
    "searchsorted side nd": (lambda m, s, v: m.searchsorted(s.sort(-1).values, v, side="right"), [X, Y[:, :2]], ()),
    "searchsorted sorter": (lambda m, s, v: m.searchsorted(s, v, sorter=s.argsort()), [X[0], Y[0]], ()),
    "searchsorted scalar": (lambda m, s: m.searchsorted(s, 2.0), [np.array([1.0, 2, 3])], ()),
    "bucketize": (lambda m, v, b: m.bucketize(v, b), [Y, np.array([-1.0, 0.0, 1.0])], ()),
    "bucketize right": (lambda m, v, b: m.bucketize(v, b, right=True, out_int32=True),
                        [np.array([-1.0, 0.5, 1.0]), np.array([-1.0, 0.0, 1.0])], ()),
    "tril_indices": (lambda m: m.tril_indices(3, 4, 1), [], ()),
    "triu_indices": (lambda m: m.triu_indices(4, 3, -1, dtype=m.int32), [], ()),
    "cartesian_prod": (lambda m, a, b: m.cartesian_prod(a, b), [X[0, :2], Y[0, :3]], (0, 1)),
    "combinations": (lambda m, a: m.combinations(a), [X[0]], (0,)),
    "combinations 3 replacement": (lambda m, a: m.combinations(a, r=3, with_replacement=True), [X[0, :3]], (0,)),
    "combinations too many": (lambda m, a: m.combinations(a, 5), [X[0]], ()),
    "block_diag": (lambda m, a, b, c: m.block_diag(a, b, c), [X[:2, :3], Y[0], np.array(2.5)], (0, 1, 2)),
    "block_diag ints": (lambda m, a, b: m.block_diag(a, b), [I, np.array([1, 2], np.int32)], ()),
    "logspace": (lambda m: m.logspace(-1, 2, 7), [], ()),
    "logspace base dtype": (lambda m: m.logspace(0, 3, 4, base=2, dtype=m.float64), [], ()),
    "diff": (lambda m, x: m.diff(x), [X], (0,)),
    "diff n dim": (lambda m, x: x.diff(n=2, dim=0), [X], (0,)),
    "diff prepend append": (lambda m, x, p, a: m.diff(x, 1, 1, prepend=p, append=a), [X, Y[:, :1], Y[:, 1:3]],
                            (0, 1, 2)),
    "diff bool": (lambda m, x: m.diff(x > 0), [X], ()),
    "diff int": (lambda m, a: m.diff(a), [I], ()),
    "cov": (lambda m, x: m.cov(x), [X], (0,)),
    "cov weights": (lambda m, x, w: m.cov(x, correction=0, fweights=m.tensor([1, 2, 1, 3]), aweights=w.abs()),
                    [X, Y[0]], (0, 1)),
    "cov aweights": (lambda m, x, w: x.cov(aweights=w.abs() + 0.5), [X, Y[0]], (0, 1)),
    "cov 1d int": (lambda m, a: m.cov(a[0]), [I], ()),
    "corrcoef": (lambda m, x: m.corrcoef(x), [X], (0,)),
    "corrcoef 1d": (lambda m, x: x[0].corrcoef(), [X], (0,)),
    "cross dim": (lambda m, a, b: m.cross(a, b, dim=1), [V3, V3[::-1].copy()], (0, 1)),
    "cross method": (lambda m, a, b: a.cross(b, 0), [M3, M3.T.copy()], (0, 1)),
    "dist": (lambda m, a, b: m.dist(a, b), [X, Y], (0, 1)),
    "dist p": (lambda m, a, b: a.dist(b, p=3), [X, Y], (0, 1)),
    "dist inf": (lambda m, a, b: m.dist(a, b, float("inf")), [X, Y], (0, 1)),
    "fmax": (lambda m, a, b: m.fmax(a, b), [NAN, NAN2], (0, 1)),
    "fmin": (lambda m, a, b: a.fmin(b), [NAN, NAN2], (0, 1)),
    "fmax broadcast ties": (lambda m, a, b: m.fmax(a, b), [np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([2.0, 2.0])],
                            (0, 1)),
    "fmax ints": (lambda m, a, b: m.fmax(a, b), [I, J], ()),
    "frexp": (lambda m, x: m.frexp(x * 100), [X], (0,)),
    "frexp tiny": (lambda m, x: x.frexp(), [np.array([1e-310, -5e-324, 0.0, 1e300, np.inf])], ()),
    "ldexp": (lambda m, x, e: m.ldexp(x, e), [X, I[0] % 4], (0,)),  # NOTE: torch's gradient is 0 for e < 0
    "ldexp int": (lambda m, a, e: a.ldexp(e), [I, J % 5], ()),
    "signbit": (lambda m, x: m.signbit(x), [np.array([-0.0, 0.0, -1.0, 2.0, -np.inf])], ()),
    "signbit int": (lambda m, a: a.signbit(), [I], ()),
    "deg2rad rad2deg": (lambda m, x: (m.deg2rad(x), x.rad2deg()), [X], (0,)),
    "histogram": (lambda m, x: m.histogram(x, bins=5), [X], ()),
    "histogram edges weight": (lambda m, x, e, w: x.histogram(e, weight=w.abs(), density=True),
                               [X, np.array([-2.0, -0.5, 0.0, 2.0]), Y], ()),
    "histogram range": (lambda m, x: m.histogram(x, 4, range=(-1.0, 1.0)), [X], ()),
    "trapezoid": (lambda m, y: m.trapezoid(y), [X], (0,)),
    "trapezoid x": (lambda m, y, x: m.trapezoid(y, x.cumsum(0), dim=0), [X, P[:, 0]], (0, 1)),
    "trapezoid dx": (lambda m, y: m.trapezoid(y, dx=0.3, dim=0), [X], (0,)),
    "trapz": (lambda m, y, x: m.trapz(y, x), [X, P.cumsum(1)], (0, 1)),
    "trapz int": (lambda m, a: m.trapz(a), [I], ()),
    "cumulative_trapezoid": (lambda m, y: m.cumulative_trapezoid(y, dx=2.0), [X], (0,)),
    "cumulative_trapezoid x": (lambda m, y, x: m.cumulative_trapezoid(y, x, dim=0), [X, P[:, 1]], (0, 1)),
    "unravel_index": (lambda m, a: m.unravel_index(a.abs(), (2, 4)), [I], ()),
    "unravel_index int": (lambda m, a: m.unravel_index(a, 5), [I], ()),
    "rsub": (lambda m, a, b: m.rsub(a, b, alpha=2), [X, Y], (0, 1)),
    "rsub scalar int": (lambda m, a: m.rsub(a, 3), [I], ()),
    "scalar_tensor": (lambda m: (m.scalar_tensor(3), m.scalar_tensor(2, dtype=m.int32)), [], ()),
    "mv": (lambda m, a, v: m.mv(a, v), [X, Y[0]], (0, 1)),
    "mv method": (lambda m, a, v: a.mv(v), [X.T.copy(), Y[:, 0].copy()], (0, 1)),
    "addr": (lambda m, i, a, b: m.addr(i, a, b), [X, Y[:, 0].copy(), Y[0]], (0, 1, 2)),
    "addr beta alpha": (lambda m, i, a, b: i.addr(a, b, beta=0.5, alpha=-2), [X[0], Y[:, 0].copy(), Y[0]], (0, 1, 2)),
    "addr_": (lambda m, i, a, b: (i * 1).addr_(a, b, alpha=3), [X, Y[:, 0].copy(), Y[0]], (0, 1, 2)),
    "addbmm": (lambda m, i, a, b: m.addbmm(i, a.reshape(2, 3, 2), b.reshape(2, 2, 3), beta=2),
               [X[:, :3], Y, X], (0, 1, 2)),
    "chain_matmul": (lambda m, a, b, c: m.chain_matmul(a, b, c), [X, Y.T.copy(), X], (0, 1, 2)),
    "logdet": (lambda m, a: m.logdet(a @ a.mT + m.eye(3)), [X], (0,)),
    "logdet negative": (lambda m, a: a.logdet(), [np.array([[1.0, 2.0], [3.0, 4.0]])], ()),
    "unique_consecutive": (lambda m, a: m.unique_consecutive(a // 4, return_inverse=True, return_counts=True), [I], ()),
    "unique_consecutive dim": (lambda m, a: a.unique_consecutive(return_counts=True, dim=1),
                               [np.array([[1, 1, 2, 2], [3, 3, 4, 5]])], ()),
    "unique_consecutive plain": (lambda m, a: m.unique_consecutive(a.sign()), [X], ()),
    "index_put": (lambda m, x, v: m.index_put(x, (m.tensor([0, 2]), m.tensor([1, 3])), v), [X, Y[0, :2]], (0, 1)),
    "index_put accumulate": (lambda m, x, v: x.index_put((m.tensor([0, 2, 0]),), v, accumulate=True),
                             [X, Y], (0, 1)),
    "index_put accumulate 2d": (lambda m, x, v: m.index_put(x, (m.tensor([0, -1, 0]), m.tensor([1, 1, 1])), v,
                                                            True), [X, Y[0, :3]], (0, 1)),
    "index_put mask": (lambda m, x, v: x.index_put((x > 0,), v), [X, np.array(2.5)], (0, 1)),
    "index_put_ accumulate": (lambda m, x, v: (x * 1).index_put_((m.tensor([1, 1]),), v, accumulate=True),
                              [X, Y[0]], (0, 1)),
    "put": (lambda m, x, s: m.put(x, m.tensor([0, 11, -1, 5]), s), [X, Y[0]], (0, 1)),
    "put accumulate": (lambda m, x, s: x.put(m.tensor([3, 3, -12]), s, accumulate=True), [X, Y[0, :3]], (0, 1)),
    "put_": (lambda m, x, s: (x * 1).put_(m.tensor([[1, 2]]), s), [X, Y[:1, :2]], (0, 1)),
    "select_scatter": (lambda m, x, s: m.select_scatter(x, s, 1, -2), [X, Y[:, 0].copy()], (0, 1)),
    "slice_scatter": (lambda m, x, s: m.slice_scatter(x, s, dim=1, start=1, end=4, step=2), [X, Y[:, :2]], (0, 1)),
    "slice_scatter default": (lambda m, x, s: x.slice_scatter(s), [X, Y], (0, 1)),
    "diagonal_scatter": (lambda m, x, s: m.diagonal_scatter(x, s, 1), [X, Y[0, :3]], (0, 1)),
    "diagonal_scatter dims": (lambda m, x, s: x.diagonal_scatter(s, -1, dim1=1, dim2=0), [X, Y[0, :3]], (0, 1)),
    **{f"{w}": (lambda m, w=w: (getattr(m, w)(7), getattr(m, w)(6, False), getattr(m, w)(1), getattr(m, w)(0),
                                getattr(m, w)(5, dtype=m.float64)), [], ())
       for w in ("hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window")},
    "hamming_window alpha": (lambda m: m.hamming_window(8, True, 0.5, 0.4), [], ()),
    "kaiser_window beta": (lambda m: m.kaiser_window(8, False, beta=5.0, dtype=m.float64), [], ()),
    "concatenate": (lambda m, a, b: m.concatenate([a, b], 1), [X, Y], (0, 1)),
    "asarray": (lambda m, x: m.asarray(x, dtype=m.float32), [X], (0,)),
}



def _run(m, name, grad):
    return run_case(m, CASES[name], grad)

@pytest.mark.parametrize("name", list(CASES))
def test_exists_and_runs(name):
    ys, gs = _run(gg, name, grad=True)
    assert ys and all(np.isfinite(g).all() for g in gs)


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    ys, gs = _run(gg, name, grad=True)
    yt, gt = _run(torch, name, grad=True)
    assert len(ys) == len(yt)
    for a, b in zip(ys, yt):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=1e-6 if a.dtype != np.float32 else 2e-5,
                                   atol=1e-7 if "window" in name else 1e-9)  # NOTE: torch's float32 window sums
    for a, b in zip(gs, gt):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


# -- errors, as PyTorch's (the messages are pinned here, so they hold without torch too) --------------------------
ERRORS = {
    "float_power_ float32": (lambda m: m.ones(2).float_power_(2), RuntimeError,
                             "the base given to float_power_ has dtype Float but the operation's result requires "
                             "dtype Double"),
    "acos_ int": (lambda m: m.tensor([1, 2]).acos_(), RuntimeError, "result type Float can't be cast to the desired "
                                                                     "output type Long"),
    "hypot_ broadcast": (lambda m: m.ones(2).hypot_(m.ones(2, 2)), RuntimeError,
                         r"output with shape \[2\] doesn't match the broadcast shape \[2, 2\]"),
    "cumsum_ dtype": (lambda m: m.tensor([1]).cumsum_(0, dtype=m.float32), RuntimeError,
                      "Bad in-place call: input tensor dtype long int and output tensor dtype float should match"),
    "index_put dtype": (lambda m: m.ones(3).index_put_((m.tensor([0]),), m.ones(1, dtype=m.float64)), RuntimeError,
                        "Index put requires the source and destination dtypes match, got Float for the destination "
                        "and Double for the source."),
    "put dtype": (lambda m: m.zeros(2, 2).put(m.tensor([1]), m.ones(1, dtype=m.float64)), RuntimeError,
                  "put_\\(\\): self and source expected to have the same dtype, but got self.dtype = Float and "
                  "source.dtype = Double"),
    "put range": (lambda m: m.zeros(2, 2).put(m.tensor([4]), m.ones(1)), IndexError,
                  "out of range: tried to access index 4 on a tensor of 4 elements."),
    "is_nonzero empty": (lambda m: m.tensor([]).is_nonzero(), RuntimeError,
                         "Boolean value of Tensor with no values is ambiguous"),
    "is_nonzero many": (lambda m: m.ones(2).is_nonzero(), RuntimeError,
                        "Boolean value of Tensor with more than one value is ambiguous"),
    "H 1d": (lambda m: m.ones(3).H, RuntimeError, r"tensor.H is only supported on matrices \(2-D tensors\). Got 1-D"),
    "H 3d": (lambda m: m.ones(2, 2, 2).H, RuntimeError, "For batches of matrices, consider using tensor.mH"),
    "mH 1d": (lambda m: m.ones(3).mH, RuntimeError, "tensor.mH is only supported on matrices or batches of matrices"),
    "adjoint 1d": (lambda m: m.ones(3).adjoint(), RuntimeError, r"tensor.adjoint\(\) is only supported on matrices"),
    "positive bool": (lambda m: m.tensor([True]).positive(), RuntimeError,
                      "The `\\+` operator, on a bool tensor is not supported."),
    "cross no 3": (lambda m: m.cross(m.ones(2, 4), m.ones(2, 4)), RuntimeError, "no dimension of size 3 in input"),
    "mv dims": (lambda m: m.mv(m.ones(3), m.ones(2)), RuntimeError, "vector \\+ matrix @ vector expected, got 1, 1, 1"),
    "mv size": (lambda m: m.mv(m.ones(2, 3), m.ones(2)), RuntimeError,
                r"size mismatch, got input \(2\), mat \(2x3\), vec \(2\)"),
    "gcd float": (lambda m: m.gcd(m.ones(2), m.ones(2)), NotImplementedError, "\"gcd_cpu\" not implemented for 'Float'"),
    "frexp int": (lambda m: m.frexp(m.tensor([1, 2])), RuntimeError, "torch.frexp\\(\\) only supports floating-point"),
    "histogram int": (lambda m: m.histogram(m.tensor([1, 2]), bins=3), NotImplementedError,
                      "\"histogramdd\" not implemented for 'Long'"),
    "searchsorted side": (lambda m: m.searchsorted(m.tensor([1.0, 2.0]), m.tensor([1.0]), side="left", right=True),
                          RuntimeError, "side and right can't be set to opposites"),
    "searchsorted shapes": (lambda m: m.searchsorted(m.ones(2, 3), m.ones(1)), RuntimeError,
                            "boundaries tensor should be 1 dimension or the first N-1 dimensions"),
    "unravel_index float": (lambda m: m.unravel_index(m.tensor([1.0]), (2, 4)), TypeError,
                            "expected 'indices' to be integer dtype, but got torch.float32"),
    "select_scatter size": (lambda m: m.select_scatter(m.ones(2, 3), m.zeros(2), 0, 0), RuntimeError,
                            r"expected src to have a size equal to the slice of self. src size = \[2\], slice size = "
                            r"\[3\]"),
    "combinations 2d": (lambda m: m.combinations(m.ones(2, 2)), RuntimeError, "Expect a 1D vector, but got shape"),
    "block_diag 3d": (lambda m: m.block_diag(m.ones(1, 1, 1)), RuntimeError,
                      "torch.block_diag: Input tensors must have 2 or fewer dimensions. Input 0 has 3 dimensions"),
    "fmax number": (lambda m: m.fmax(m.ones(2), 1), TypeError, "must be Tensor, not int"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_as_torch(name):
    fn, exc, msg = ERRORS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc, match=msg):
            fn(gg)
        try:
            import torch
        except ImportError:
            return
        with pytest.raises(exc, match=msg):
            fn(torch)


# -- properties and metadata ------------------------------------------------------------------------------------
def _meta(m):
    x = m.arange(24.0).reshape(2, 3, 4)
    v = x[1:, 1:, ::2]
    y = m.ones(3, requires_grad=True) * 2
    y.retain_grad()
    leaf = m.ones(2, requires_grad=True)
    leaf.retain_grad()
    e = x.new_empty_strided((2, 3), (1, 2))
    return [x.stride(), x.stride(-2), v.stride(), v.storage_offset(), x.t().stride() if x.ndim == 2 else x.mT.stride(),
            x.element_size(), x.itemsize, x.nbytes, m.ones(3).expand(2, 3).nbytes, x.is_signed(), m.tensor([1]).byte()
            .is_signed(), m.tensor(True).is_signed(), x.is_complex(), x.is_cpu, x.get_device(), x.ndimension(),
            m.tensor([2.5]).is_nonzero(), m.tensor(0).is_nonzero(), x.is_same_size(m.zeros(2, 3, 4)),
            x.is_same_size(v), y.retains_grad, leaf.retains_grad, (y * 1).retains_grad, e.shape, e.stride(), e.dtype,
            m.ones(2).byte().dtype, m.ones(2).char().dtype, m.ones(2).short().dtype, m.tensor(1.5).H.shape,
            m.is_nonzero(m.tensor([1])), m.is_same_size(x, x), m.is_signed(x), m.get_device(x)]


def test_properties():
    out = _meta(gg)
    assert out[0] == (12, 4, 1) and out[2] == (12, 4, 2) and out[3] == 16 and out[20:23] == [True, False, False]
    try:
        import torch
    except ImportError:
        return
    tt = _meta(torch)
    norm = lambda v: str(v).replace("torch.", "").replace("gpugrad.", "")  # noqa: E731
    assert [norm(a) if "dtype" in type(a).__name__.lower() else a for a in out[:25]] == tt[:25]
    assert tuple(out[23]) == tuple(tt[23]) and out[24] == tt[24]
    assert [str(np.dtype(d)) for d in out[26:29]] == ["uint8", "int8", "int16"]
    assert tuple(out[29]) == tuple(tt[29]) and out[30:] == tt[30:]


def test_inplace_forms_keep_identity_and_version():
    x = gg.tensor([0.1, 0.5, 0.9])
    before = x._version
    for name in ("asin_", "sinh_", "tan_", "erf_", "expm1_", "log1p_", "reciprocal_", "round_", "frac_"):
        assert getattr(x, name)() is x
    assert x._version == before + 9
    v = gg.arange(6.0).reshape(2, 3)
    row = v[0]
    row.exp2_()  # a view: the write reaches the base
    np.testing.assert_array_equal(v.numpy()[0], np.exp2([0.0, 1.0, 2.0]))
    leaf = gg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        leaf.tan_()
    a = gg.tensor([1.0, 2.0, 3.0])
    assert a.eq_(gg.tensor([1.0, 0.0, 3.0])).dtype == gg.float32 and a.tolist() == [1.0, 0.0, 1.0]


def test_inplace_second_order():
    """create_graph=True through in-place forms and the composed ops: d2/dx2 of sum(sinh_(x*1)) is sinh(x)."""
    x = gg.tensor([0.3, -0.7, 1.2], dtype=gg.float64, requires_grad=True)
    (g,) = gg.autograd.grad((x * 1).sinh_().sum(), x, create_graph=True)
    (h,) = gg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), np.sinh(x.detach().numpy()), rtol=1e-12)
    w = gg.tensor(np.arange(6.0).reshape(2, 3) / 5, requires_grad=True)
    (g,) = gg.autograd.grad(gg.diff(w * w, dim=1).sum() + gg.select_scatter(w, w[0] ** 3, 0, 1).sum(), w,
                            create_graph=True)
    (h,) = gg.autograd.grad(g.sum(), w)
    a = w.detach().numpy()
    expect = np.zeros((2, 3))
    expect[:, [0, 2]] += [-2, 2]  # d2/dw2 of the diff of squares, end columns
    expect[0] += 6 * a[0]  # w[0]**3 lands in row 1; row 1's own values are overwritten (no gradient)
    np.testing.assert_allclose(h.numpy(), expect, rtol=1e-12)


def test_switches_printoptions_aliases():
    assert gg.are_deterministic_algorithms_enabled() is False
    gg.use_deterministic_algorithms(True, warn_only=True)
    try:
        assert gg.are_deterministic_algorithms_enabled() and gg.is_deterministic_algorithms_warn_only_enabled()
    finally:
        gg.use_deterministic_algorithms(False)
    with pytest.raises(TypeError, match="must be bool"):
        gg.use_deterministic_algorithms(1)
    x = gg.tensor([1.0 / 3, 2.0 / 3, 4.0])
    default = repr(x)
    try:
        gg.set_printoptions(precision=2)
        assert "0.33" in repr(x) and "0.3333" not in repr(x)
        gg.set_printoptions(sci_mode=True)
        assert "3.33e-01" in repr(x)
        gg.set_printoptions(sci_mode=False, precision=4)
        assert "0.3333" in repr(x)
        gg.set_printoptions(profile="full")
        assert "..." not in repr(gg.zeros(2000))
        gg.set_printoptions(threshold=5, edgeitems=1)
        assert "..." in repr(gg.zeros(10))
        with pytest.raises(ValueError, match="profile"):
            gg.set_printoptions(profile="long")
    finally:
        gg.set_printoptions(profile="default")
    assert repr(x) == default
    assert gg.vmap is gg.func.vmap and gg.concatenate([x, x], dim=0).shape == (6,)
    a = np.arange(3.0)
    t = gg.asarray(a)
    a[0] = 7  # shares memory, as torch.asarray
    assert t.tolist() == [7.0, 1.0, 2.0] and gg.asarray(t) is t
    assert gg.asarray(a, copy=True).tolist() == [7.0, 1.0, 2.0] and gg.asarray([1, 2]).dtype == gg.int64
    with pytest.warns(UserWarning, match="without specifying the dim arg is deprecated"):
        gg.cross(gg.ones(2, 3), gg.ones(2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gg.cross(gg.ones(2, 3), gg.ones(2, 3), dim=1)  # an explicit dim: no warning
