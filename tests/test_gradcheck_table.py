"""The gradient-check table (JAX/Chainer style): one row per op and shape set.

Each row names the function, a NumPy reference for its forward, its input shapes, the domain the
inputs are drawn from (kinks and poles avoided) and its tolerances. One parametrized test checks the
forward against the reference and the analytic gradient against float64 central differences
(``gg.autograd.gradcheck``); a second runs ``gg.autograd.gradgradcheck`` over the same rows
(create_graph=True through every op). A third table pins the values at kinks and extremes to
PyTorch's conventions.
"""
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.autograd import gradcheck, gradgradcheck
from gpugrad.ops.linalg import Linear

from conftest import to_np


# -- input domains: (rng, shape) -> float64 array ---------------------------------------------------
def ANY(r, s):
    return r.uniform(-2, 2, s)


def POS(r, s):
    return r.uniform(0.5, 2, s)


def NONZERO(r, s):
    return r.choice([-1.0, 1.0], s) * r.uniform(0.3, 2, s)


def GT_M1(r, s):  # log1p
    return r.uniform(-0.7, 2, s)


def away(*kinks, gap=0.1):
    """Uniform in [-2, 2], at least ``gap`` from every kink (finite differences must not straddle one)."""
    def dom(r, s):
        x = r.uniform(-2, 2, s)
        while True:
            bad = np.zeros(np.shape(x), bool)
            for k in kinks:
                bad |= np.abs(x - k) < gap
            if not bad.any():
                return x
            x = np.where(bad, r.uniform(-2, 2, s), x)
    return dom


OFF_Q = away(-2, 0, 2, gap=0.35)


def DIVISOR(r, s):  # with a dividend from OFF_Q below, a / b stays off the integers (the jumps of % and //)
    return r.uniform(1.9, 2.1, s)


class Row(NamedTuple):
    name: str
    fn: Callable          # Tensors -> Tensor or tuple of Tensors
    ref: Callable         # arrays -> array or tuple of arrays (None: no forward reference)
    shapes: tuple
    dom: object = ANY     # one domain, or a tuple with one per input
    atol: float = 1e-6
    rtol: float = 1e-4
    eps: float = 1e-6
    order2: bool = True   # run gradgradcheck on this row too


def R(name, fn, ref, *shapes, **kw):
    return Row(name, fn, ref, tuple(shapes), **kw)


_lse = lambda a, ax, kd=False: np.log(np.exp(a).sum(axis=ax, keepdims=kd))  # noqa: E731
_mask23 = np.array([[True, False, True], [False, False, True]])
_idx2d = np.array([[0, 2], [2, 2]])

ROWS = [
    # arithmetic, with broadcast pairs and 0-d tensors
    *[R(f"{op}{sa}{sb}", f, r, sa, sb, dom=(ANY, NONZERO) if op == "div" else ANY)
      for op, f, r in [("add", lambda a, b: a + b, np.add), ("sub", lambda a, b: a - b, np.subtract),
                       ("mul", lambda a, b: a * b, np.multiply), ("div", lambda a, b: a / b, np.divide)]
      for sa, sb in [((), ()), ((3,), ()), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 2))]],
    R("add_scalar", lambda a: a + 2.5, lambda a: a + 2.5, (3,)),
    R("rsub_scalar", lambda a: 2.5 - a, lambda a: 2.5 - a, (3,)),
    R("mul_int", lambda a: a * 3, lambda a: a * 3, (2, 2)),
    R("rdiv_scalar", lambda a: 3 / a, lambda a: 3 / a, (3,), dom=NONZERO),
    R("pow3", lambda a: a ** 3, lambda a: a ** 3, (2, 3)),
    R("pow2.5", lambda a: a ** 2.5, lambda a: a ** 2.5, (3,), dom=POS),
    R("pow-1.5", lambda a: a ** -1.5, lambda a: a ** -1.5, (), dom=POS),
    R("pow0", lambda a: a ** 0, lambda a: a ** 0, (3,)),
    R("square", lambda a: a.square(), np.square, (3,)),
    R("rpow", lambda a: 2 ** a, lambda a: 2 ** a, (3,)),
    R("pow_tensors", lambda a, b: a ** b, np.power, (2, 3), (3,), dom=(POS, ANY)),
    R("pow_tensors0d", lambda a, b: a ** b, np.power, (), (2,), dom=(POS, ANY)),
    R("neg", lambda a: -a, np.negative, (2, 3)),
    R("abs", lambda a: a.abs(), np.abs, (2, 3), dom=NONZERO),
    R("abs_builtin", lambda a: abs(a), np.abs, (), dom=NONZERO),
    # unary math
    R("exp", lambda a: a.exp(), np.exp, (2, 3)),
    R("exp0d", lambda a: gg.exp(a), np.exp, ()),
    R("log", lambda a: a.log(), np.log, (2, 3), dom=POS),
    R("log1p", lambda a: a.log1p(), np.log1p, (4,), dom=GT_M1),
    R("sqrt", lambda a: a.sqrt(), np.sqrt, (2, 3), dom=POS),
    R("rsqrt", lambda a: a.rsqrt(), lambda a: 1 / np.sqrt(a), (3,), dom=POS),
    R("sin", lambda a: a.sin(), np.sin, (2, 3)),
    R("cos", lambda a: a.cos(), np.cos, (2, 3)),
    R("tanh", lambda a: a.tanh(), np.tanh, (2, 3)),
    R("tanh0d", lambda a: a.tanh(), np.tanh, ()),
    R("sigmoid", lambda a: a.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), (2, 3), dom=lambda r, s: r.uniform(-6, 6, s)),
    R("relu", lambda a: a.relu(), lambda a: np.maximum(a, 0), (2, 3), dom=NONZERO),
    R("clamp", lambda a: a.clamp(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), (3, 3), dom=away(-0.5, 0.5)),
    R("clamp_min", lambda a: a.clamp(min=0.2), lambda a: np.maximum(a, 0.2), (4,), dom=away(0.2)),
    R("clamp_max", lambda a: a.clamp(max=1.0), lambda a: np.minimum(a, 1.0), (4,), dom=away(1.0)),
    R("clamp_tensors", lambda a, lo, hi: a.clamp(lo, hi), lambda a, lo, hi: np.minimum(np.maximum(a, lo), hi),
      (2, 3), (3,), (), dom=(ANY, lambda r, s: r.uniform(-2, -0.5, s), lambda r, s: r.uniform(0.5, 2, s))),
    *[R(f"{op}{sa}{sb}", f, r, sa, sb)
      for op, f, r in [("maximum", gg.maximum, np.maximum), ("minimum", gg.minimum, np.minimum)]
      for sa, sb in [((3,), (3,)), ((2, 3), (3,)), ((), (2, 2))]],
    R("maximum_scalar", lambda a: gg.maximum(a, 0.3), lambda a: np.maximum(a, 0.3), (5,), dom=away(0.3)),
    R("where", lambda a, b: gg.where(a > 0, a, b), lambda a, b: np.where(a > 0, a, b), (2, 3), (3,), dom=NONZERO),
    R("where0d", lambda a, b: gg.where(a > 0, a, b), lambda a, b: np.where(a > 0, a, b), (3,), (), dom=NONZERO),
    R("where_scalar", lambda a: gg.where(a > 0, a * 2, 0.0), lambda a: np.where(a > 0, a * 2, 0.0), (4,), dom=NONZERO),
    R("masked_fill", lambda a: a.masked_fill(a < 0, 1.5), lambda a: np.where(a < 0, 1.5, a), (4,), dom=NONZERO),
    # rounding, floor/trunc division, remainder (PyTorch: round/floor/ceil/trunc/div-rounded have zero gradient)
    *[R(f"{op}{sa}{sb}", f, r, sa, sb, dom=(OFF_Q, DIVISOR))
      for op, f, r in [("remainder", lambda a, b: a % b, np.remainder), ("fmod", lambda a, b: a.fmod(b), np.fmod),
                       ("div_floor", lambda a, b: a.div(b, rounding_mode="floor"), np.floor_divide),
                       ("div_trunc", lambda a, b: gg.div(a, b, rounding_mode="trunc"), lambda a, b: np.trunc(a / b))]
      for sa, sb in [((3,), (3,)), ((2, 3), ()), ((), (2, 2))]],
    R("remainder_scalar", lambda a: a % -1.5, lambda a: np.remainder(a, -1.5), (4,), dom=away(-1.5, 0, 1.5)),
    R("fmod_scalar", lambda a: gg.fmod(a, 1.5), lambda a: np.fmod(a, 1.5), (4,), dom=away(-1.5, 0, 1.5)),
    R("frac", lambda a: a.frac(), lambda a: a - np.trunc(a), (2, 3), dom=away(-1, 0, 1)),
    *[R(op, lambda a, op=op: getattr(a, op)(), getattr(np, op), (2, 3), dom=away(-2, -1, 0, 1, 2))
      for op in ("floor", "ceil", "trunc")],
    R("round", lambda a: gg.round(a), np.round, (4,), dom=away(-1.5, -0.5, 0.5, 1.5)),
    R("round_decimals", lambda a: a.round(decimals=1), lambda a: np.round(a, 1), (3,),
      dom=lambda r, s: r.choice([-1.52, 0.33, 1.21], s) + r.uniform(-0.01, 0.01, s)),
    # matmul: 1-D, 2-D, batched with broadcast batch dims
    *[R(f"matmul{sa}{sb}", lambda a, b: a @ b, np.matmul, sa, sb)
      for sa, sb in [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((2, 1, 2, 3), (3, 3, 2)),
                     ((4,), (2, 4, 3)), ((2, 3, 4), (4,))]],
    R("gg.matmul", gg.matmul, np.matmul, (2, 2), (2, 3)),
    R("linear", lambda x, w, b: Linear.apply(x, w, b), lambda x, w, b: x @ w.T + b, (2, 3), (4, 3), (4,)),
    R("linear3d", lambda x, w, b: Linear.apply(x, w, b), lambda x, w, b: x @ w.T + b, (2, 2, 3), (4, 3), (4,)),
    R("linear_nobias", lambda x, w: Linear.apply(x, w), lambda x, w: x @ w.T, (3,), (2, 3)),
    # reductions, with dim and keepdim
    R("sum", lambda a: a.sum(), np.sum, (2, 3)),
    R("sum0d", lambda a: a.sum(), np.sum, ()),
    R("sum0d_dim", lambda a: a.sum(0), np.sum, ()),
    R("sum_dim", lambda a: a.sum(1), lambda a: a.sum(1), (2, 3)),
    R("sum_dims_keep", lambda a: a.sum((0, 2), keepdim=True), lambda a: a.sum((0, 2), keepdims=True), (2, 3, 2)),
    R("sum_neg_keep", lambda a: a.sum(-1, keepdim=True), lambda a: a.sum(-1, keepdims=True), (3, 2)),
    R("mean", lambda a: a.mean(), np.mean, (2, 3)),
    R("mean_dim", lambda a: a.mean(0), lambda a: a.mean(0), (2, 3)),
    R("mean_keep", lambda a: a.mean((1, 2), keepdim=True), lambda a: a.mean((1, 2), keepdims=True), (2, 2, 3)),
    R("mean0d", lambda a: a.mean(-1), np.mean, ()),
    R("max", lambda a: a.max(), np.max, (2, 3)),
    R("max_dim", lambda a: a.max(dim=1).values, lambda a: a.max(1), (3, 4)),
    R("max_dim_keep", lambda a: a.max(0, keepdim=True)[0], lambda a: a.max(0, keepdims=True), (3, 2)),
    R("min", lambda a: a.min(), np.min, (4,)),
    R("min_dim", lambda a: a.min(dim=-1).values, lambda a: a.min(-1), (2, 3)),
    R("amax", lambda a: a.amax(1), lambda a: a.max(1), (2, 3)),
    R("var", lambda a: a.var(), lambda a: a.var(ddof=1), (2, 3)),
    R("var_dim", lambda a: a.var(1), lambda a: a.var(1, ddof=1), (2, 4)),
    R("var_biased_keep", lambda a: a.var(0, unbiased=False, keepdim=True), lambda a: a.var(0, keepdims=True), (3, 2)),
    R("var_correction0", lambda a: a.var(correction=0), np.var, (5,)),
    R("std", lambda a: a.std(), lambda a: a.std(ddof=1), (2, 3)),
    R("std_dim_keep", lambda a: a.std(-1, keepdim=True), lambda a: a.std(-1, ddof=1, keepdims=True), (2, 3)),
    R("logsumexp", lambda a: a.logsumexp(0), lambda a: _lse(a, 0), (4,)),
    R("logsumexp_keep", lambda a: a.logsumexp(1, keepdim=True), lambda a: _lse(a, 1, True), (2, 3)),
    R("logsumexp_dims", lambda a: a.logsumexp((0, 2)), lambda a: _lse(a, (0, 2)), (2, 3, 2)),
    R("logsumexp0d", lambda a: gg.logsumexp(a, 0), lambda a: a, ()),
    # shape
    R("reshape", lambda a: a.reshape(3, 2), lambda a: a.reshape(3, 2), (2, 3)),
    R("reshape-1", lambda a: a.reshape((-1, 2)), lambda a: a.reshape(-1, 2), (6,)),
    R("reshape0d", lambda a: a.reshape(1, 1), lambda a: a.reshape(1, 1), ()),
    R("view", lambda a: a.view(6) * 2, lambda a: a.reshape(6) * 2, (3, 2)),
    R("flatten", lambda a: a.flatten(), lambda a: a.reshape(-1), (2, 3, 2)),
    R("flatten1", lambda a: a.flatten(1), lambda a: a.reshape(2, 6), (2, 3, 2)),
    R("transpose", lambda a: a.transpose(0, 2), lambda a: a.swapaxes(0, 2), (2, 3, 2)),
    R("permute", lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), (2, 3, 2)),
    R("T", lambda a: a.T, lambda a: a.T, (2, 3)),
    R("t", lambda a: a.t() * a.t(), lambda a: a.T * a.T, (3, 2)),
    R("squeeze", lambda a: a.squeeze(), lambda a: a.squeeze(), (1, 3, 1)),
    R("squeeze_dim", lambda a: a.squeeze(0), lambda a: a.squeeze(0), (1, 3, 1)),
    R("unsqueeze", lambda a: a.unsqueeze(1), lambda a: a[:, None], (2, 3)),
    R("unsqueeze0d", lambda a: a.unsqueeze(-1), lambda a: a.reshape(1), ()),
    R("expand", lambda a: a.expand(2, 3, 4), lambda a: np.broadcast_to(a, (2, 3, 4)), (3, 1)),
    R("expand-1", lambda a: a.expand(-1, 3), lambda a: np.broadcast_to(a, (2, 3)), (2, 1)),
    R("expand0d", lambda a: a.expand(3), lambda a: np.broadcast_to(a, (3,)), ()),
    # indexing: slices, integer arrays (repeats accumulate), boolean masks
    R("slice", lambda a: a[1:3], lambda a: a[1:3], (4,)),
    R("slice_step", lambda a: a[:, ::2], lambda a: a[:, ::2], (2, 5)),
    R("index_int", lambda a: a[-1], lambda a: a[-1], (3, 2)),
    R("index_ellipsis", lambda a: a[..., 0], lambda a: a[..., 0], (2, 2, 3)),
    R("index_none", lambda a: a[None, 1], lambda a: a[None, 1], (3, 2)),
    R("index_list_repeat", lambda a: a[[0, 0, 2, 0]], lambda a: a[[0, 0, 2, 0]], (3,)),
    R("index_tensor2d", lambda a: a[gg.tensor(_idx2d, device=a.device)], lambda a: a[_idx2d], (3, 2)),
    R("index_mixed", lambda a: a[np.array([1, 1, 0]), 1:], lambda a: a[np.array([1, 1, 0]), 1:], (2, 3)),
    R("index_bool", lambda a: a[gg.tensor(_mask23, device=a.device)], lambda a: a[_mask23], (2, 3)),
    R("index_bool_data", lambda a: a[a > 0] * 2, lambda a: a[a > 0] * 2, (6,), dom=NONZERO),
    # joining and splitting
    R("cat", lambda a, b: gg.cat([a, b], dim=1), lambda a, b: np.concatenate([a, b], 1), (2, 3), (2, 1)),
    R("cat3", lambda a, b, c: gg.cat([a, b, c]), lambda a, b, c: np.concatenate([a, b, c]), (2,), (1,), (3,)),
    R("stack", lambda a, b: gg.stack([a, b]), lambda a, b: np.stack([a, b]), (2, 3), (2, 3)),
    R("stack_last", lambda a, b: gg.stack([a, b], dim=-1), lambda a, b: np.stack([a, b], -1), (3,), (3,)),
    R("stack0d", lambda a, b: gg.stack([a, b]), lambda a, b: np.stack([a, b]), (), ()),
    R("split", lambda a: gg.split(a, 2, dim=1), lambda a: tuple(np.split(a, [2, 4], 1)), (2, 5)),
    R("split_sections", lambda a: a.split([1, 3]), lambda a: tuple(np.split(a, [1])), (4, 2)),
    R("chunk", lambda a: a.chunk(3), lambda a: tuple(np.split(a, [2, 4])), (6,)),
    R("pad", lambda a: gg.pad(a, (1, 2)), lambda a: np.pad(a, ((0, 0), (1, 2))), (2, 3)),
    R("pad2d_value", lambda a: gg.pad(a, (1, 0, 0, 2), value=3.0), lambda a: np.pad(a, ((0, 2), (1, 0)),
                                                                                    constant_values=3.0), (2, 2)),
    # dtype casts (the narrow dtype limits the finite-difference precision)
    R("cast_f32", lambda a: (a.float() * 2).double(), lambda a: a * 2, (3,), eps=1e-3, atol=1e-3, rtol=1e-3),
    R("cast_to", lambda a: a.to(gg.float32).exp().to(gg.float64), np.exp, (3,), eps=1e-3, atol=1e-3, rtol=1e-3),
    R("cast_f16", lambda a: a.half().double(), lambda a: a.astype(np.float16).astype(np.float64), (3,), eps=1e-2,
      atol=2e-2, rtol=2e-2, order2=False),
    R("cast_mixed", lambda a, b: a.float() * b, lambda a, b: a * b, (3,), (3,), eps=1e-3, atol=1e-3, rtol=1e-3),
    # composites
    R("norm", lambda a: a.norm(), np.linalg.norm, (2, 3)),
    R("norm1_dim", lambda a: a.norm(1, dim=0), lambda a: np.abs(a).sum(0), (2, 3), dom=NONZERO),
    # the Norm primitive (gpugrad/ops/norm.py): p = 2, other p, +-inf; 0-d and keepdim
    R("norm2_dim_keepdim", lambda a: a.norm(dim=1, keepdim=True), lambda a: np.linalg.norm(a, axis=1, keepdims=True),
      (2, 3)),
    R("norm2_0d", lambda a: a.norm(), np.abs, (), dom=NONZERO),
    R("norm3_dim", lambda a: a.norm(3, dim=0), lambda a: (np.abs(a) ** 3).sum(0) ** (1 / 3), (2, 3), dom=NONZERO),
    R("norm_half_dim", lambda a: a.norm(0.5, dim=1), lambda a: np.sqrt(np.abs(a)).sum(1) ** 2, (2, 3), dom=NONZERO),
    R("norm_inf_dim", lambda a: a.norm(float("inf"), dim=1), lambda a: np.abs(a).max(1), (2, 3), dom=NONZERO,
      order2=False),  # NOTE: piecewise linear: its gradient is a constant (no graph to differentiate again)
    R("norm_neginf", lambda a: a.norm(float("-inf")), lambda a: np.abs(a).min(), (2, 3), dom=NONZERO, order2=False),
    R("normalize", lambda a: gg.nn.functional.normalize(a, dim=1), lambda a: a / np.linalg.norm(a, axis=1, keepdims=True),
      (2, 3)),
    R("chain", lambda a, b: ((a @ b.T).tanh() @ b).sigmoid().sum(0) * a[0], None, (2, 3), (4, 3)),
]


# more rows, one file per op family (tests/gradrows_<family>.py defines rows(R, ANY, POS, NONZERO, away))
for _p in sorted(__import__("pathlib").Path(__file__).parent.glob("gradrows_*.py")):
    ROWS += __import__("importlib").import_module(_p.stem).rows(R, ANY, POS, NONZERO, away)


def _inputs(row, device, seed=0):
    r = np.random.default_rng(seed)
    doms = row.dom if isinstance(row.dom, tuple) else (row.dom,) * len(row.shapes)
    arrs = [np.asarray(d(r, s), dtype=np.float64) for d, s in zip(doms, row.shapes)]
    return arrs, tuple(gg.tensor(a, device=device, requires_grad=True) for a in arrs)


def _tuple(x):
    return x if isinstance(x, tuple) else (x,)


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_gradcheck(row, device):
    arrs, xs = _inputs(row, device)
    if row.ref is not None:
        got, want = _tuple(row.fn(*xs)), _tuple(row.ref(*arrs))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert tuple(g.shape) == np.shape(w)
            np.testing.assert_allclose(to_np(g), w, rtol=1e-6, atol=1e-6 if row.eps < 1e-3 else 1e-2)
    assert gradcheck(row.fn, xs, eps=row.eps, atol=row.atol, rtol=row.rtol)


@pytest.mark.parametrize("row", [r for r in ROWS if r.order2], ids=[r.name for r in ROWS if r.order2])
def test_gradgradcheck(row, device):
    _, xs = _inputs(row, device, seed=1)
    assert gradgradcheck(row.fn, xs, eps=row.eps, atol=row.atol * 10, rtol=row.rtol * 10)


def test_gradcheck_catches_a_wrong_backward():
    class BadSquare(gg.autograd.Primitive):
        def forward(self, x):
            return x * x

        def backward(self, g):
            return g * self.values()[0] * 2.01

    x = gg.tensor([0.5, -1.0], dtype=gg.float64, requires_grad=True)
    with pytest.raises(gg.autograd.GradcheckError, match="numerical .* vs analytical"):
        gradcheck(BadSquare.apply, (x,))
    assert gradcheck(BadSquare.apply, (x,), raise_exception=False) is False


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable():
    class OpaqueSquare(gg.autograd.Primitive):
        def forward(self, x):
            return x * x

        def backward(self, g):  # wrong in create_graph mode: the result is a constant, not a graph
            x = self.inputs[0]._data
            gd = g._data if isinstance(g, gg.Tensor) else g
            return gg.Tensor(gd * x * 2) if isinstance(g, gg.Tensor) else gd * x * 2

    x = gg.tensor([0.5, -1.0], dtype=gg.float64, requires_grad=True)
    assert gradcheck(OpaqueSquare.apply, (x,))
    with pytest.raises(gg.autograd.GradcheckError):
        gradgradcheck(OpaqueSquare.apply, (x,))


# -- special values: kinks (PyTorch's conventions) and extremes -------------------------------------
INF, NAN = float("inf"), float("nan")
SPECIAL = [
    # name, fn, input, expected output, expected gradient of out.sum()
    ("relu_at_0", lambda x: x.relu(), [0.0, -0.0, 1e-30], [0, 0, 1e-30], [0, 0, 1]),
    ("abs_at_0", lambda x: x.abs(), [0.0, -2.0], [0, 2], [0, -1]),
    ("clamp_at_bounds", lambda x: x.clamp(-1, 1), [-1.0, 1.0, 1.5, -1.5], [-1, 1, 1, -1], [1, 1, 0, 0]),
    ("clamp_min_at_bound", lambda x: x.clamp(min=0.0), [0.0, -1.0], [0, 0], [1, 0]),
    ("maximum_tie", lambda x: gg.maximum(x, gg.tensor([1.0, 0.0], dtype=gg.float64)), [1.0, 1.0], [1, 1], [0.5, 1]),
    ("minimum_tie", lambda x: gg.minimum(x, gg.tensor([1.0, 2.0], dtype=gg.float64)), [1.0, 1.0], [1, 1], [0.5, 1]),
    ("max_all_ties", lambda x: x.max(), [1.0, 3.0, 3.0], 3, [0, 0.5, 0.5]),
    ("min_all_ties", lambda x: x.min(), [2.0, 2.0, 2.0, 5.0], 2, [1 / 3, 1 / 3, 1 / 3, 0]),
    ("max_dim_ties_first", lambda x: x.max(0).values, [1.0, 3.0, 3.0], 3, [0, 1, 0]),
    ("sqrt_at_0", lambda x: x.sqrt(), [0.0, 4.0], [0, 2], [INF, 0.25]),
    ("log_at_0", lambda x: x.log(), [0.0], [-INF], [INF]),
    ("pow2_at_0", lambda x: x ** 2, [0.0], [0], [0]),
    ("pow0_at_0", lambda x: x ** 0, [0.0], [1], [0]),
    ("pow_half_at_0", lambda x: x ** 0.5, [0.0], [0], [INF]),
    ("pow_exponent_grad_at_base0", lambda x: gg.tensor([0.0, 2.0], dtype=gg.float64) ** x, [2.0, 1.0], [0, 2],
     [0, 2 * np.log(2)]),
    ("sigmoid_extremes", lambda x: x.sigmoid(), [-1000.0, 1000.0, 0.0], [0, 1, 0.5], [0, 0, 0.25]),
    ("tanh_extremes", lambda x: x.tanh(), [-50.0, 50.0], [-1, 1], [0, 0]),
    ("exp_overflow", lambda x: x.exp(), [1000.0, -1000.0], [INF, 0], [INF, 0]),
    ("logsumexp_large", lambda x: x.logsumexp(0), [1000.0, 1000.0], 1000 + np.log(2), [0.5, 0.5]),
    ("logsumexp_neg_inf", lambda x: x.logsumexp(0), [-INF, 0.0], 0, [0, 1]),
    ("logsumexp_tiny", lambda x: x.logsumexp(0), [-1000.0, -1000.0], -1000 + np.log(2), [0.5, 0.5]),
    ("var_one_element", lambda x: x.var(), [3.0], NAN, [NAN]),
    ("var_one_element_biased", lambda x: x.var(correction=0), [3.0], 0, [0]),
    ("std_constant", lambda x: x.std(), [2.0, 2.0], 0, [0, 0]),  # PyTorch 2.13's std_backward masks std == 0
    ("norm2_at_0", lambda x: x.norm(), [0.0, 0.0], 0, [0, 0]),  # PyTorch's subgradient, not NaN
    ("norm3_at_0", lambda x: x.norm(3), [0.0, 0.0], 0, [0, 0]),
    ("norm_half_at_0", lambda x: x.norm(0.5), [0.0, 4.0], 4, [0, 1]),
    ("normalize_at_0", lambda x: gg.nn.functional.normalize(x, dim=0), [0.0, 0.0], [0, 0], [1e12, 1e12]),
]


@pytest.mark.parametrize("name,fn,x,out,grad", SPECIAL, ids=[s[0] for s in SPECIAL])
def test_special_values(name, fn, x, out, grad, device):
    t = gg.tensor(x, dtype=gg.float64, device=device, requires_grad=True)
    with np.errstate(all="ignore"):
        y = fn(t)
        np.testing.assert_allclose(to_np(y), out, rtol=1e-12, atol=1e-300)
        y.sum().backward()
    np.testing.assert_allclose(to_np(t.grad), grad, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_special_values_keep_narrow_dtypes_finite(dtype, device):
    x = gg.tensor([-100.0, -10.0, 0.0, 10.0, 100.0], dtype=dtype, device=device, requires_grad=True)
    for f in (lambda t: t.sigmoid(), lambda t: t.tanh(), lambda t: t.logsumexp(0)):
        x.grad = None
        y = f(x)
        assert y.dtype == np.dtype(dtype)
        y.sum().backward()
        assert x.grad.dtype == np.dtype(dtype)
        assert np.isfinite(to_np(y)).all() and np.isfinite(to_np(x.grad)).all()
