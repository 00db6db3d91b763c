"""PyTorch's autograd API semantics, as literal values taken from torch 2.13 (no torch needed here): hooks and
autograd.grad / backward(inputs=), retain_grad, grad-mode decorators on generators, once_differentiable under
create_graph, the .grad setter's checks, autograd.grad/gradcheck arguments, and the warnings PyTorch gives."""
import warnings

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.autograd import engine as _engine
from gpugrad.autograd.function import once_differentiable


def _x():
    return gg.tensor([1., 2.], requires_grad=True)


def _vals(ts):
    return [t.tolist() for t in ts]


# -- hooks and autograd.grad / backward(inputs=) -------------------------------------------------------------------
def test_leaf_hook_applies_in_autograd_grad():
    x, calls = _x(), []
    x.register_hook(lambda g: calls.append(g.tolist()) or g * 2)
    assert _vals(gg.autograd.grad((x * 3).sum(), x)) == [[6., 6.]]
    assert calls == [[3., 3.]]


def test_nonleaf_input_entry_before_hooks_when_the_sweep_goes_on():
    x = _x()
    y = x * 2
    y.register_hook(lambda g: g * 5)
    # torch: y's entry is the gradient before its hooks (its node still runs for x), x sees the hooked one
    assert _vals(gg.autograd.grad((y * y).sum(), [y, x])) == [[4., 8.], [40., 80.]]


def test_nonleaf_input_entry_after_hooks_when_the_sweep_stops_there():
    x = _x()
    y = x * 2
    y.register_hook(lambda g: g * 5)
    assert _vals(gg.autograd.grad((y * y).sum(), [y])) == [[20., 40.]]


def test_hooks_called_once_in_autograd_grad():
    calls, x = [], _x()
    y = x * 2
    y.register_hook(lambda g: calls.append(g.tolist()))
    x.register_hook(lambda g: calls.append(("x", g.tolist())))
    assert _vals(gg.autograd.grad(y.sum(), x)) == [[2., 2.]]
    assert calls == [[1., 1.], ("x", [2., 2.])]


def test_backward_inputs_leaf_and_nonleaf():
    x = _x()
    x.register_hook(lambda g: g * 2)
    (x * 3).sum().backward(inputs=[x])
    assert x.grad.tolist() == [6., 6.]
    x = _x()
    y = x * 2
    y.register_hook(lambda g: g * 5)
    (y * y).sum().backward(inputs=[y])
    assert y.grad.tolist() == [20., 40.] and y.retains_grad and x.grad is None  # torch retain_grad()s y
    x = _x()
    y = x * 2
    y.register_hook(lambda g: g * 5)
    (y * y).sum().backward(inputs=[y, x])
    assert y.grad.tolist() == [20., 40.] and x.grad.tolist() == [40., 80.]
    with pytest.raises(RuntimeError, match="cannot be empty"):
        (x * 2).sum().backward(inputs=[])


def test_autograd_backward_inputs():
    x, w = _x(), _x()
    gg.autograd.backward([(x * w).sum()], inputs=[w])
    assert w.grad.tolist() == [1., 2.] and x.grad is None


# -- retain_grad ---------------------------------------------------------------------------------------------------
def test_retain_grad_runs_after_other_hooks():
    x = _x()
    y = x * 2
    y.retain_grad()
    y.register_hook(lambda g: g * 10)
    (y * y).sum().backward()
    assert y.grad.tolist() == [40., 80.] and x.grad.tolist() == [80., 160.]
    x = _x()
    y = x * 2
    y.register_hook(lambda g: g * 10)
    y.retain_grad()
    y.register_hook(lambda g: g + 1)
    (y * y).sum().backward()
    assert y.grad.tolist() == [41., 81.] and x.grad.tolist() == [82., 162.]


def test_retain_grad_in_autograd_grad_and_flags():
    x = _x()
    y = x * 2
    y.retain_grad()
    y.retain_grad()  # a second call adds nothing
    y.register_hook(lambda g: g * 10)
    assert _vals(gg.autograd.grad((y * y).sum(), [x])) == [[80., 160.]]
    assert y.grad.tolist() == [40., 80.]
    x = _x()
    y = x * 2
    y.retain_grad()
    y.sum().backward()
    assert y.retains_grad and not x.retains_grad and y.grad.tolist() == [1., 1.]


def test_retain_grad_requires_grad():
    with pytest.raises(RuntimeError, match="can't retain_grad on Tensor that has requires_grad=False"):
        gg.tensor([1., 2.]).retain_grad()
    x = _x()
    x.retain_grad()  # a leaf: no-op
    assert not x.retains_grad


# -- post-accumulate-grad hooks ------------------------------------------------------------------------------------
def test_post_accumulate_grad_hook():
    seen, x = [], _x()
    h = x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    gg.autograd.grad((x * 3).sum(), x)  # no accumulation: not called
    assert seen == [[3., 3.], [6., 6.]]
    h.remove()
    (x * 3).sum().backward()
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)


# -- grad modes ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [gg.no_grad, lambda: gg.no_grad, lambda: gg.set_grad_enabled(False),
                                  gg.inference_mode], ids=["no_grad()", "no_grad", "set_grad_enabled", "inference"])
def test_grad_mode_decorator_on_generator(make):
    x = _x()
    deco = make()  # NOTE: set_grad_enabled(False) turns grad off at once, until it decorates

    def gen():
        for _ in range(2):
            got = yield (x * 2).requires_grad, gg.is_grad_enabled()
            assert got == "sent"
        return "done"
    g = deco(gen)()
    assert next(g) == (False, False) and gg.is_grad_enabled()  # the caller's code between resumes: its own mode
    assert g.send("sent") == (False, False)
    with pytest.raises(StopIteration) as stop:
        g.send("sent")
    assert stop.value.value == "done" and (x * 2).requires_grad


def test_enable_grad_decorator_on_generator_under_no_grad():
    x = _x()

    @gg.enable_grad()
    def gen():
        yield (x * 2).requires_grad
    with gg.no_grad():
        assert list(gen()) == [True]


def test_enable_grad_inside_inference_mode_records_nothing():
    x = _x()
    with gg.inference_mode():
        with gg.enable_grad():
            assert not (x * 2).requires_grad and gg.is_grad_enabled()  # torch: False, True
            with gg.inference_mode(False):
                assert (x * 2).requires_grad
        with gg.set_grad_enabled(True):
            assert not (x * 2).requires_grad and gg.is_grad_enabled()
        assert not gg.is_grad_enabled()
    assert gg.is_grad_enabled() and (x * 2).requires_grad


def test_set_grad_enabled_needs_bool():
    for bad in ("no", 1, None):
        with pytest.raises(TypeError, match="must be bool"):
            gg.set_grad_enabled(bad)
    assert gg.is_grad_enabled()


# -- once_differentiable -------------------------------------------------------------------------------------------
def test_once_differentiable_under_create_graph():
    class F(gg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 2 * x

    x = _x()
    (g,) = gg.autograd.grad(F.apply(x).sum(), x, create_graph=True)
    assert g.tolist() == [2., 4.] and not g.requires_grad  # torch: requires_grad False
    with pytest.raises(RuntimeError):
        g.sum().backward()
    # an incoming gradient that requires grad: the guard's error
    v = gg.ones(2, requires_grad=True)
    (g,) = gg.autograd.grad(F.apply(x), x, v, create_graph=True)
    assert g.requires_grad
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.sum().backward()


# -- the .grad setter ----------------------------------------------------------------------------------------------
def test_grad_setter_checks():
    x = _x()
    with pytest.raises(RuntimeError, match=r"attempting to assign a gradient of size '\[3\]' to a tensor of size "
                                           r"'\[2\]'"):
        x.grad = gg.ones(3)
    with pytest.raises(RuntimeError, match="of size '\\[1, 2\\]'"):
        x.grad = gg.ones(1, 2)
    with pytest.raises(RuntimeError, match="attempting to assign a gradient with dtype 'float64'"):
        x.grad = gg.ones(2, dtype=gg.float64)
    with pytest.raises(RuntimeError, match="with dtype 'int64'"):
        x.grad = gg.tensor([5, 6])
    with pytest.raises(TypeError, match="assigned grad expected to be a Tensor or None but got grad of type list"):
        x.grad = [1., 2.]
    with pytest.raises(TypeError, match="got grad of type numpy.ndarray"):
        x.grad = np.ones(2, dtype=np.float32)
    assert x.grad is None
    x.grad = gg.tensor([5., 6.])
    assert x.grad.tolist() == [5., 6.]
    (x * 1).sum().backward()
    assert x.grad.tolist() == [6., 7.]
    x.grad = None
    assert x.grad is None
    i = gg.tensor([1, 2])
    i.grad = gg.tensor([3, 4])  # no requires_grad needed, the dtype must match
    assert i.grad.tolist() == [3, 4]


# -- autograd.grad and gradcheck arguments -------------------------------------------------------------------------
def test_grad_allow_unused_and_materialize():
    x, w = _x(), _x()
    with pytest.raises(ValueError, match="Expected allow_unused to be True or not passed when materialize_grads=True"):
        gg.autograd.grad((x * 2).sum(), [x, w], allow_unused=False, materialize_grads=True)
    assert _vals(gg.autograd.grad((x * 2).sum(), [x, w], materialize_grads=True)) == [[2., 2.], [0., 0.]]
    with pytest.raises(RuntimeError, match="appears to not have been used"):
        gg.autograd.grad((x * 2).sum(), [x, w])


def test_grad_outputs_count():
    x = _x()
    # torch ignores grad_outputs beyond the outputs, and raises for fewer
    assert _vals(gg.autograd.grad([x * 3], x, [gg.tensor([2., 5.]), gg.tensor([1., 1.])])) == [[6., 15.]]
    with pytest.raises(RuntimeError, match="got 2 tensors and 1 gradients"):
        gg.autograd.grad([x * 2, x * 3], x, [gg.ones(2)])


def test_grad_only_inputs_and_batched():
    x = _x()
    with pytest.warns(FutureWarning, match="only_inputs argument is deprecated"):
        assert _vals(gg.autograd.grad((x * x).sum(), x, only_inputs=False)) == [[2., 4.]]
    assert _vals(gg.autograd.grad((x * x).sum(), x, only_inputs=True)) == [[2., 4.]]
    w = _x()
    got = gg.autograd.grad(x * x, [x, w], gg.eye(2), is_grads_batched=True, allow_unused=True)
    assert got[0].tolist() == [[2., 0.], [0., 4.]] and got[1] is None
    got = gg.autograd.grad(x * x, [x, w], gg.eye(2), is_grads_batched=True, materialize_grads=True)
    assert got[1].tolist() == [0., 0.]  # torch: zeros of the input's shape, no batch dim
    with pytest.raises(RuntimeError, match="is_grads_batched"):
        gg.autograd.grad(x * x, x, None, is_grads_batched=True)


def test_gradcheck_arguments():
    with pytest.raises(ValueError, match="gradcheck expects at least one input tensor to require gradient"):
        gg.autograd.gradcheck(lambda t: t * 2, (gg.tensor([1., 2.], dtype=gg.float64),))
    a = gg.tensor([1., 2.], requires_grad=True)
    with pytest.warns(UserWarning, match="Input #0 requires gradient and is not a double precision floating point"):
        assert gg.autograd.gradcheck(lambda t: t * 2, (a,), eps=1e-3, atol=1e-2, rtol=1e-2)

    class Bad(gg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x * x.detach()

    b = gg.tensor([1., 2.], dtype=gg.float64, requires_grad=True)
    assert gg.autograd.gradgradcheck(Bad.apply, (b,), raise_exception=False) is False
    with pytest.raises(gg.autograd.GradcheckError):
        gg.autograd.gradgradcheck(Bad.apply, (b,))
    go = gg.tensor([1., -2.], dtype=gg.float64)
    assert gg.autograd.gradgradcheck(lambda t: t ** 3, (b,), (go,))


# -- warnings ------------------------------------------------------------------------------------------------------
def _warned(fn):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fn()
    return [str(x.message) for x in w if x.category is UserWarning]


def test_nonleaf_grad_warns():
    x = _x()
    y = x * 2
    y.sum().backward()
    got = _warned(lambda: y.grad)
    assert len(got) == 1 and got[0].startswith("The .grad attribute of a Tensor that is not a leaf Tensor is being "
                                               "accessed.")
    assert _warned(lambda: x.grad) == []
    y.retain_grad()
    assert _warned(lambda: y.grad) == []


def test_backward_create_graph_warns_once():
    _engine._warned_cycle.clear()
    x = _x()
    got = _warned(lambda: (x ** 3).sum().backward(create_graph=True))
    assert len(got) == 1 and got[0].startswith("Using backward() with create_graph=True will create a reference cycle")
    assert _warned(lambda: (x ** 3).sum().backward(create_graph=True)) == []  # once per process, as torch
    assert x.grad.tolist() == [6., 24.] and x.grad.requires_grad
    assert _warned(lambda: gg.autograd.grad((x ** 3).sum(), x, create_graph=True)) == []


def test_function_instance_call_raises():
    class F(gg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x

    with pytest.raises(RuntimeError, match="apply"):
        F()(gg.tensor([1.]))
