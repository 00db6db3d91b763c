"""Autograd semantics: when the graph is recorded, the backward sweep, gradient accumulation,
autograd.grad, grad modes, hooks, aliasing of .grad, anomaly detection and custom Functions."""
import inspect
import warnings

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.autograd.primitive import Primitive

from conftest import to_np


def f64(data, device="cpu", rg=True):
    return gg.tensor(data, dtype=gg.float64, device=device, requires_grad=rg)


# -- recording --------------------------------------------------------------------------------------
def test_graph_recorded_only_when_grad_enabled_and_input_requires_grad(device):
    x = f64([1.0, 2.0], device)
    c = f64([3.0, 4.0], device, rg=False)
    y = x * c
    assert y.requires_grad and not y.is_leaf and y.grad_fn is not None
    z = c * c
    assert not z.requires_grad and z.is_leaf and z.grad_fn is None
    with gg.no_grad():
        w = x * c
        assert not gg.is_grad_enabled()
    assert gg.is_grad_enabled()
    assert not w.requires_grad and w.grad_fn is None
    with gg.no_grad():
        with gg.enable_grad():
            v = x * 2
    assert v.requires_grad and v.grad_fn is not None


def test_grad_modes_as_decorators_and_functions():
    x = f64([1.0])

    @gg.no_grad()
    def f(t):
        return t * 2

    @gg.no_grad
    def f_bare(t):
        return t * 2

    @gg.enable_grad()
    def h(t):
        return t * 2

    @gg.set_grad_enabled(False)
    def s(t):
        return t * 2

    assert gg.is_grad_enabled()  # decorating changes nothing by itself
    assert not f(x).requires_grad and not f_bare(x).requires_grad and not s(x).requires_grad
    with gg.no_grad():
        assert h(x).requires_grad
        assert not (x * 2).requires_grad
    gg.set_grad_enabled(False)
    try:
        assert not gg.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        gg.set_grad_enabled(True)
    with gg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad


def test_grad_mode_restored_after_exception():
    with pytest.raises(ZeroDivisionError), gg.no_grad():
        _ = 1 / 0
    assert gg.is_grad_enabled()


# -- the sweep --------------------------------------------------------------------------------------
def test_chain_of_100k_ops_is_iterative():
    x = f64([1.0, -2.0])
    y = x
    for _ in range(50_000):
        y = -y
        y = y + 1.0
    y.sum().backward()  # would overflow the stack if the sweep recursed
    np.testing.assert_array_equal(to_np(x.grad), [1.0, 1.0])


def test_tensor_used_many_times_gets_the_sum_of_contributions(device):
    x = f64([1.5, -0.5], device)
    y = x * x * x + x * 2 + x.exp() * x
    y.sum().backward()
    xv = np.array([1.5, -0.5])
    np.testing.assert_allclose(to_np(x.grad), 3 * xv ** 2 + 2 + np.exp(xv) * (1 + xv))
    x.grad = None
    sum(x for _ in range(30)).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [30.0, 30.0])


def test_repeated_indices_accumulate_in_backward(device):
    x = f64([1.0, 2.0, 3.0], device)
    (x[[0, 0, 2, 0]] * f64([1.0, 2.0, 3.0, 4.0], device, rg=False)).sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [1.0 + 2.0 + 4.0, 0.0, 3.0])
    m = f64([[1.0, 2.0], [3.0, 4.0]], device)
    idx = gg.tensor([[1, 1], [0, 1]], device=device)
    m[idx].sum().backward()  # rows gathered: 1, 1, 0, 1
    np.testing.assert_array_equal(to_np(m.grad), [[1.0, 1.0], [3.0, 3.0]])
    b = f64([1.0, -2.0, 3.0], device)
    (b[b > 0] * 5).sum().backward()
    np.testing.assert_array_equal(to_np(b.grad), [5.0, 0.0, 5.0])


def test_diamond_graph_runs_each_node_once(device):
    calls = []

    class Count(Primitive):
        def forward(self, x):
            return x * 1.0

        def backward(self, g):
            calls.append(1)
            return g

    x = f64([2.0], device)
    a = Count.apply(x)
    y = a.sin() * a.cos() + a * a
    y.sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(to_np(x.grad), [np.cos(4.0) + 4.0])


def test_leaf_grad_accumulates_across_calls(device):
    x = f64([1.0, 2.0], device)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [4.0, 8.0])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [3.0, 3.0])


def test_second_backward_through_freed_graph_raises_unless_retained(device):
    x = f64([1.0, 2.0], device)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph=True"):
        y.backward()
    z = (x.exp()).sum()
    x.grad = None
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_allclose(to_np(x.grad), 2 * np.exp([1.0, 2.0]))
    w = (x * x).sum()
    gg.autograd.grad(w, x)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        gg.autograd.grad(w, x)


def test_backward_on_non_scalar_needs_gradient(device):
    x = f64([1.0, 2.0, 3.0], device)
    y = x * 2
    with pytest.raises(RuntimeError, match="only for scalar outputs.*shape \\(3,\\)"):
        y.backward()
    with pytest.raises(RuntimeError, match="shape"):
        y.backward(gg.tensor([1.0, 1.0], dtype=gg.float64, device=device))
    y.backward(gg.tensor([1.0, 0.5, -1.0], dtype=gg.float64, device=device))
    np.testing.assert_allclose(to_np(x.grad), [2.0, 1.0, -2.0])
    one = (x * 2)[1:2]
    one.backward()  # a one-element (not 0-d) output is fine, as in PyTorch
    np.testing.assert_allclose(to_np(x.grad), [2.0, 3.0, -2.0])


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (gg.tensor([1.0]) * 2).sum().backward()


@pytest.mark.parametrize("data,dtype", [([1, 2], None), ([1, 2], "int32"), ([True], None)])
def test_integer_and_bool_tensors_cannot_require_grad(data, dtype):
    with pytest.raises(RuntimeError, match="floating point"):
        gg.tensor(data, dtype=dtype, requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        gg.tensor(data, dtype=dtype).requires_grad_()
    with pytest.raises(RuntimeError, match="floating point"):
        gg.zeros(2, dtype=gg.int64, requires_grad=True)


def test_grads_flow_back_through_casts_to_the_source_dtype():
    x = gg.tensor([1.0, 2.0], dtype=gg.float64, requires_grad=True)
    (x.float() * x.float()).sum().backward()
    assert x.grad.dtype == gg.float64
    np.testing.assert_allclose(to_np(x.grad), [2.0, 4.0])
    h = gg.tensor([1.0, 2.0], requires_grad=True)
    (h.half() * 3).sum().backward()
    assert h.grad.dtype == gg.float32
    np.testing.assert_allclose(to_np(h.grad), [3.0, 3.0])


# -- autograd.grad ------------------------------------------------------------------------------------
def test_autograd_grad_leaves_and_intermediates(device):
    x = f64([0.5, 1.0], device)
    y = x * x
    z = y.sin().sum()
    gx, gy = gg.autograd.grad(z, [x, y])
    np.testing.assert_allclose(to_np(gy), np.cos([0.25, 1.0]))
    np.testing.assert_allclose(to_np(gx), np.cos([0.25, 1.0]) * 2 * np.array([0.5, 1.0]))
    with pytest.warns(UserWarning, match="The .grad attribute of a Tensor that is not a leaf Tensor"):
        assert x.grad is None and y.grad is None  # grad() does not touch .grad


def test_autograd_grad_unused_input(device):
    x, u = f64([1.0], device), f64([2.0], device)
    y = (x * 3).sum()
    with pytest.raises(RuntimeError, match=r"inputs\[1\].*not have been used.*allow_unused=True"):
        gg.autograd.grad(y, [x, u], retain_graph=True)
    gx, gu = gg.autograd.grad(y, [x, u], allow_unused=True, retain_graph=True)
    assert gu is None
    np.testing.assert_allclose(to_np(gx), [3.0])
    _, gu = gg.autograd.grad(y, [x, u], materialize_grads=True)
    np.testing.assert_array_equal(to_np(gu), [0.0])
    with pytest.raises(RuntimeError, match=r"inputs\[0\].*does not require grad"):
        gg.autograd.grad((x * 2).sum(), [f64([1.0], device, rg=False)])


def test_autograd_grad_with_grad_outputs_and_several_outputs(device):
    x = f64([1.0, 2.0], device)
    y1, y2 = x * 2, x * x
    (g,) = gg.autograd.grad([y1, y2], [x], [f64([1.0, 1.0], device, False), f64([0.5, -1.0], device, False)])
    np.testing.assert_allclose(to_np(g), [2 + 1.0, 2 - 4.0])


def test_create_graph_gives_higher_derivatives(device):
    x = f64([0.5, -1.5], device)
    (g1,) = gg.autograd.grad((x ** 3).sum(), x, create_graph=True)
    assert g1.requires_grad
    (g2,) = gg.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = gg.autograd.grad(g2.sum(), x)
    np.testing.assert_allclose(to_np(g1), 3 * np.array([0.25, 2.25]))
    np.testing.assert_allclose(to_np(g2), 6 * np.array([0.5, -1.5]))
    np.testing.assert_allclose(to_np(g3), [6.0, 6.0])
    # backward(create_graph=True) leaves a differentiable .grad
    y = (x.sin() * x).sum()
    with warnings.catch_warnings():  # NOTE: PyTorch's once-per-process reference-cycle warning
        warnings.simplefilter("ignore")
        y.backward(create_graph=True)
    assert x.grad.requires_grad
    (h,) = gg.autograd.grad(x.grad.sum(), x)
    xv = np.array([0.5, -1.5])
    np.testing.assert_allclose(to_np(h), 2 * np.cos(xv) - xv * np.sin(xv))


def test_backward_inputs_and_autograd_backward(device):
    a, b = f64([1.0], device), f64([2.0], device)
    (a * b).sum().backward(inputs=[a])
    assert b.grad is None
    np.testing.assert_allclose(to_np(a.grad), [2.0])
    p, q = f64([1.0, 2.0], device), f64([3.0, 4.0], device)
    (p + q).sum().backward(inputs=[p, q])
    p.grad._data *= 2  # writable, and not shared with q.grad
    np.testing.assert_array_equal(to_np(q.grad), [1.0, 1.0])
    gp, gq = gg.autograd.grad((p + q).sum(), [p, q])
    gp._data += 1
    np.testing.assert_array_equal(to_np(gq), [1.0, 1.0])
    a.grad = None
    gg.autograd.backward([(a * b).sum(), (a * a).sum()])
    np.testing.assert_allclose(to_np(a.grad), [2.0 + 2.0])
    np.testing.assert_allclose(to_np(b.grad), [1.0])


# -- detach, requires_grad_, hooks, retain_grad ------------------------------------------------------
def test_detach_and_requires_grad_(device):
    x = f64([1.0, 2.0], device)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    assert np.shares_memory(to_np(d), to_np(x)) or device != "cpu"  # a view of the same data, as in PyTorch
    y = (x * d).sum()
    y.backward()
    np.testing.assert_allclose(to_np(x.grad), [1.0, 2.0])  # no gradient through the detached factor
    t = gg.tensor([1.0], device=device)
    assert t.requires_grad_() is t and t.requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        (t * 2).requires_grad_(False)
    z = t * 2
    z.detach_()
    assert not z.requires_grad and z.grad_fn is None


def test_hooks_replace_gradients_on_leaves_and_non_leaves(device):
    x = f64([1.0, 2.0], device)
    seen = []
    hx = x.register_hook(lambda g: g * 10)
    y = x * 3
    y.register_hook(lambda g: seen.append(to_np(g).copy()))  # returns None: observe only
    y.register_hook(lambda g: g + 1)
    y.sum().backward()
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    np.testing.assert_allclose(to_np(x.grad), [60.0, 60.0])  # (1 + 1) * 3 * 10
    hx.remove()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [3.0, 3.0])
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        gg.tensor([1.0]).register_hook(lambda g: g)
    with pytest.raises(RuntimeError, match="shape"):
        z = f64([1.0, 2.0], device)
        z.register_hook(lambda g: g.sum())
        (z * 1).sum().backward()


def test_retain_grad(device):
    x = f64([1.0, 2.0], device)
    y = x * x
    y.retain_grad()
    z = x * 2
    (y * 3 + z).sum().backward()
    np.testing.assert_allclose(to_np(y.grad), [3.0, 3.0])
    with pytest.warns(UserWarning, match="not a leaf Tensor"):
        assert z.grad is None
    x.retain_grad()  # a no-op on leaves
    np.testing.assert_allclose(to_np(x.grad), [6.0 + 2, 12.0 + 2])
    # a retained grad accumulates across backward calls, as a leaf's does
    w = x * 2
    w.retain_grad()
    out = (w * w).sum()
    out.backward(retain_graph=True)
    out.backward()
    np.testing.assert_allclose(to_np(w.grad), 2 * 2 * to_np(w.detach()))


def test_grad_never_aliases_another_grad_or_a_user_array(device):
    a, b = f64([1.0, 2.0], device), f64([3.0, 4.0], device)
    (a + b).sum().backward()
    a.grad._data *= 5  # also checks the grad is writable (not a broadcast view)
    np.testing.assert_array_equal(to_np(b.grad), [1.0, 1.0])
    a2, b2 = f64([1.0], device), f64([1.0], device)
    g = gg.tensor([2.0], dtype=gg.float64, device=device)
    (a2 + b2).backward(g)
    a2.grad._data *= 3
    np.testing.assert_array_equal(to_np(b2.grad), [2.0])
    np.testing.assert_array_equal(to_np(g), [2.0])
    c = f64([2.0], device)
    c.backward(g)  # a leaf output: .grad must still be a copy
    c.grad._data += 1
    np.testing.assert_array_equal(to_np(g), [2.0])
    # a retained non-leaf grad and a leaf grad from the same Add
    p, q = f64([1.0, 2.0], device), f64([3.0, 4.0], device)
    y = p.exp()
    y.retain_grad()
    (y + q).sum().backward()
    q.grad._data *= 7
    np.testing.assert_array_equal(to_np(y.grad), [1.0, 1.0])
    # a hook returning a tensor the user keeps
    keep = gg.tensor([5.0, 5.0], dtype=gg.float64, device=device)
    r = f64([0.0, 0.0], device)
    r.register_hook(lambda g: keep)
    r.sum().backward()
    r.grad._data += 1
    np.testing.assert_array_equal(to_np(keep), [5.0, 5.0])


def test_in_place_on_tensor_requiring_grad_needs_no_grad(device):
    x = f64([1.0, 2.0], device)
    with pytest.raises(RuntimeError, match="in-place"):
        x.zero_()
    with pytest.raises(RuntimeError, match="in-place"):
        x[0] = 3.0
    with gg.no_grad():
        x[0] = 3.0
        x.fill_(1.0)
    np.testing.assert_array_equal(to_np(x), [1.0, 1.0])


# -- anomaly detection -------------------------------------------------------------------------------
def test_detect_anomaly_names_op_and_user_line():
    x = f64([0.0, 1.0])
    with gg.autograd.detect_anomaly():
        line = inspect.currentframe().f_lineno + 1
        y = x.sqrt() * 0
        with pytest.raises(RuntimeError) as ei, np.errstate(all="ignore"):
            y.sum().backward()
    msg = str(ei.value)
    assert "Sqrt" in msg and "nan" in msg
    assert f'test_autograd.py", line {line}' in msg
    assert "y = x.sqrt() * 0" in msg
    assert not gg.autograd.grad_mode.state.anomaly  # restored on exit


def test_without_anomaly_mode_nan_passes_silently_and_forward_outside_is_reported():
    x = f64([0.0])
    with np.errstate(all="ignore"):
        (x.sqrt() * 0).sum().backward()
        assert np.isnan(to_np(x.grad)).all()
        y = x.sqrt() * 0
        with gg.autograd.detect_anomaly(), pytest.raises(RuntimeError, match="(?s)Sqrt.*not recorded under detect_anomaly"):
            y.sum().backward()


# -- custom Functions ---------------------------------------------------------------------------------
class FusedSoftplus(Primitive):
    """A 'fused' op whose backward uses raw arrays; create_graph goes through the composite."""
    composite = staticmethod(lambda x: (x.exp() + 1).log())

    def forward(self, x):
        return np.log1p(np.exp(x))

    def backward(self, g):
        x = self.inputs[0]._data
        return g / (1 + np.exp(-x))


def test_composite_gives_higher_order_gradients_of_a_fused_op():
    x = f64([-1.0, 0.5, 2.0])
    assert gg.autograd.gradcheck(FusedSoftplus.apply, (x,))
    assert gg.autograd.gradgradcheck(FusedSoftplus.apply, (x,))
    (g,) = gg.autograd.grad(FusedSoftplus.apply(x).sum(), x, create_graph=True)
    (h,) = gg.autograd.grad(g.sum(), x)
    s = 1 / (1 + np.exp(-np.array([-1.0, 0.5, 2.0])))
    np.testing.assert_allclose(to_np(h), s * (1 - s))


def test_function_with_several_inputs_and_none_gradient():
    class ScaleBy(Primitive):
        def forward(self, x, s):
            return x * s

        def backward(self, g):
            _, s = self.values()
            return g * s, None  # no gradient for s, by choice

    x, s = f64([1.0, 2.0]), f64([3.0])
    ScaleBy.apply(x, s).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [3.0, 3.0])
    assert s.grad is None


def test_grad_wrt_a_nonleaf_stops_there_and_leaves_the_graph_above_intact():
    a = gg.tensor([1.0, 2.0], requires_grad=True)
    b = a * 3
    (g1,) = gg.autograd.grad((b * b).sum(), b)
    (g2,) = gg.autograd.grad((b * 2).sum(), b)   # b's own node was not run or freed by the first call
    assert g1.tolist() == [6.0, 12.0] and g2.tolist() == [2.0, 2.0]
    c = a * 3
    ga, gc = gg.autograd.grad((c * c).sum(), [a, c])  # an input above another input: walk through it
    assert ga.tolist() == [18.0, 36.0] and gc.tolist() == [6.0, 12.0]


def test_gradcheck_perturbs_non_contiguous_inputs_in_place():
    x = gg.tensor(np.ones((2, 3))).T.detach().requires_grad_()
    assert gg.autograd.gradcheck(lambda t: (t * t * 2).sum(), (x,))


def test_norm_inf_and_zero_and_int_division_and_clamp_dtypes():
    assert gg.tensor([1.0, -3.0]).norm(float("inf")).item() == 3.0
    assert gg.tensor([1.0, 0.0, 2.0]).norm(0).item() == 2.0
    assert (gg.tensor([3, 5]) / gg.tensor([2, 2], dtype="int32")).dtype == gg.float32
    assert gg.tensor([1, 2, 3]).clamp(min=1.5).dtype == gg.float32
    with pytest.raises(RuntimeError, match="-1 is not allowed"):
        gg.tensor([[1.0, 2.0], [3.0, 4.0]]).expand(-1, 2, 2)
