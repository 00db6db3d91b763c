"""Property tests (hypothesis): broadcasting gradients for random broadcast-compatible shape pairs,
gradient accumulation through reused tensors, and a few algebraic identities of the sweep."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gpugrad as gg

from conftest import to_np

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast together (with 1s, missing leading dims and 0-d among them)."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
    return shapes.input_shapes


def _reduce(g, shape):
    """The numpy reference of a broadcast gradient: sum over the broadcast axes, back to ``shape``."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead)))
    return g.sum(axis=tuple(i for i, s in enumerate(shape) if s == 1), keepdims=True).reshape(shape)


OPS = {
    # name: (op, d/da, d/db) on numpy arrays
    "add": (lambda a, b: a + b, lambda a, b: np.ones_like(a + b), lambda a, b: np.ones_like(a + b)),
    "sub": (lambda a, b: a - b, lambda a, b: np.ones_like(a + b), lambda a, b: -np.ones_like(a + b)),
    "mul": (lambda a, b: a * b, lambda a, b: b + 0 * a, lambda a, b: a + 0 * b),
    "div": (lambda a, b: a / b, lambda a, b: 1 / b + 0 * a, lambda a, b: -a / b ** 2),
    "maximum": (gg.maximum, lambda a, b: (a > b) + 0.0 * b, lambda a, b: (b > a) + 0.0 * a),
}


@pytest.mark.parametrize("name", list(OPS))
@SETTINGS
@given(shapes=broadcast_pair(), data=st.data())
def test_broadcast_gradients_reduce_to_each_operand(name, shapes, data):
    sa, sb = shapes
    # quarter- and three-quarter-integers: b is never 0 (div) and never ties with a (maximum)
    a = data.draw(hnp.arrays(np.float64, sa, elements=st.integers(-3, 3).map(lambda i: i + 0.25)))
    b = data.draw(hnp.arrays(np.float64, sb, elements=st.integers(-3, 3).map(lambda i: i + 0.75)))
    op, da, db = OPS[name]
    ta, tb = gg.tensor(a, requires_grad=True), gg.tensor(b, requires_grad=True)
    out = op(ta, tb)
    ref = op(a, b) if name != "maximum" else np.maximum(a, b)
    assert out.shape == np.shape(ref)
    np.testing.assert_allclose(to_np(out), ref, rtol=1e-12)
    w = np.random.default_rng(0).standard_normal(np.shape(ref))  # a non-uniform upstream gradient
    out.backward(gg.tensor(w))
    assert ta.grad.shape == sa and tb.grad.shape == sb
    np.testing.assert_allclose(to_np(ta.grad), _reduce(w * da(a, b), sa), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_np(tb.grad), _reduce(w * db(a, b), sb), rtol=1e-10, atol=1e-12)


@SETTINGS
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=2, max_side=4), elements=st.floats(-2, 2)),
       k=st.integers(1, 6))
def test_reused_tensor_accumulates_all_contributions(x, k):
    """f(x) = x*x + x*x*x + ... + x**(k+1) summed: df/dx = sum_j (j+1) x**j."""
    t = gg.tensor(x, requires_grad=True)
    p, total = t, None
    for _ in range(k):
        p = p * t
        total = p if total is None else total + p
    total.sum().backward()
    want = sum((j + 1) * x ** j for j in range(1, k + 1))
    np.testing.assert_allclose(to_np(t.grad), want, rtol=1e-10, atol=1e-10)


@SETTINGS
@given(x=hnp.arrays(np.float64, st.integers(1, 5), elements=st.floats(-2, 2)),
       c=st.floats(-3, 3), reps=st.integers(1, 4))
def test_backward_is_linear_and_accumulates(x, c, reps):
    """Repeated backward calls with gradient c add up: .grad = reps * c * f'(x)."""
    t = gg.tensor(x, requires_grad=True)
    y = t.sin() * t
    for _ in range(reps):
        y.backward(gg.tensor(np.full(x.shape, c)), retain_graph=True)
    np.testing.assert_allclose(to_np(t.grad), reps * c * (np.cos(x) * x + np.sin(x)), rtol=1e-10, atol=1e-12)


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), data=st.data())
def test_sum_over_any_dims_matches_numpy_and_broadcasts_back(shape, data):
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-2, 2)))
    dims = data.draw(st.lists(st.integers(0, len(shape) - 1), unique=True, min_size=1))
    keep = data.draw(st.booleans())
    t = gg.tensor(x, requires_grad=True)
    s = t.sum(tuple(dims), keepdim=keep)
    np.testing.assert_allclose(to_np(s), x.sum(tuple(dims), keepdims=keep), rtol=1e-12, atol=1e-12)
    (s * s).sum().backward()
    np.testing.assert_allclose(to_np(t.grad), 2 * np.broadcast_to(x.sum(tuple(dims), keepdims=True), shape),
                               rtol=1e-10, atol=1e-12)
