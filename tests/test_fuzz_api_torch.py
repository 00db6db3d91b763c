"""Differential tests of gpugrad's autograd API, nn.Module API and data utilities against torch 2.13 CPU.

Each scenario is written once as a function of the library module `m` (gg or torch); it runs on both and the
observable results are compared: values, shapes, dtypes, requires_grad / is_leaf / grad_fn-is-None of returned
tensors, raise/no-raise and the exception type (gpugrad's must be an instance of torch's builtin base type),
and the warnings emitted (category and the first words of the message). Known differences are
`xfail(strict=True)` with the reason (see XFAIL). Skipped without torch.
"""
from __future__ import annotations

import collections
import copy
import pickle
import re
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import gpugrad as gg  # noqa: E402

torch.set_num_threads(1)


# -- machinery -----------------------------------------------------------------------------------------------
def D(m):
    """The data-utilities namespace: gg.data or torch.utils.data."""
    return gg.data if m is gg else torch.utils.data


def FN(m):
    """The functional-transforms namespace: gg.func or torch.func."""
    return gg.func if m is gg else torch.func


def _is_tensor(x):
    return isinstance(x, (gg.Tensor, torch.Tensor))


def _dt(d):
    return str(d).replace("torch.", "")


def obs(x):
    """A library-neutral picture of a scenario's result."""
    if _is_tensor(x):
        a = x.detach()
        a = a.float() if _dt(a.dtype) == "bfloat16" else a
        return ("T", _dt(x.dtype), tuple(x.shape), bool(x.requires_grad), bool(x.is_leaf), x.grad_fn is None,
                np.array(a.cpu().numpy() if x.__class__.__module__.startswith("torch") else a.numpy()))
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return ("NT", tuple(x._fields), tuple(obs(v) for v in x))
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, tuple(obs(v) for v in x))
    if isinstance(x, dict):
        return ("dict", tuple((k, obs(v)) for k, v in x.items()))
    if isinstance(x, np.ndarray):
        return ("nd", str(x.dtype), x.shape, x)
    if isinstance(x, np.generic):
        return ("npscalar", str(x.dtype), x.item())
    if isinstance(x, (torch.dtype, np.dtype)) or (isinstance(x, type) and issubclass(x, np.generic)):
        return ("dtype", _dt(x))
    if isinstance(x, (torch.Size,)):
        return ("tuple", tuple(obs(v) for v in x))
    if isinstance(x, BaseException):
        return ("exc", _base_exc(type(x)).__name__)
    if isinstance(x, str):
        return ("py", "str", _norm(x))
    if x is None or isinstance(x, (bool, int, float, bytes)):
        return ("py", type(x).__name__, x)
    if isinstance(x, type):
        return ("type", x.__name__)
    raise TypeError(f"obs: unsupported {type(x)}")


def _base_exc(t):
    for c in t.__mro__:
        if c.__module__ == "builtins":
            return c
    return Exception


class Raised:
    def __init__(self, e):
        self.e = e

    def __repr__(self):
        return f"Raised({type(self.e).__name__}: {str(self.e)[:300]})"


_NOISE = (DeprecationWarning, FutureWarning, PendingDeprecationWarning)


def run(m, f):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            out = obs(f(m))
        except Exception as e:  # noqa: BLE001
            out = Raised(e)
    ws = [(_base_exc(x.category).__name__ if x.category.__module__ != "builtins" else x.category.__name__,
           " ".join(str(x.message).split()[:4])) for x in w if not issubclass(x.category, _NOISE)]
    return out, ws


def same(a, b, path="r"):
    """Assert two obs pictures agree (a: gg, b: torch)."""
    __tracebackhide__ = True  # NOTE: keeps the xfail reports short (pytest re-parses this file per shown frame)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, f"{path}: shape {a.shape} vs {b.shape}"
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            assert np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=1e-5, atol=1e-7, equal_nan=True), \
                f"{path}: values\n{a}\nvs torch\n{b}"
        else:
            assert np.array_equal(a, b), f"{path}: values {a} vs torch {b}"
        return
    if isinstance(a, tuple) and isinstance(b, tuple):
        assert len(a) == len(b), f"{path}: structure {a!r:.300} vs torch {b!r:.300}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
        return
    if isinstance(a, float) and isinstance(b, float):
        assert np.isclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True), f"{path}: {a} vs torch {b}"
        return
    assert type(a) is type(b) and a == b, f"{path}: {a!r:.300} vs torch {b!r:.300}"


def compare(f):
    __tracebackhide__ = True
    t_out, t_w = run(torch, f)
    g_out, g_w = run(gg, f)
    if isinstance(t_out, Raised):
        assert isinstance(g_out, Raised), f"torch raised {t_out!r}, gpugrad returned {g_out!r:.500}"
        want = _base_exc(type(t_out.e))
        assert isinstance(g_out.e, want), f"exception type: gpugrad {g_out!r} vs torch {t_out!r}"
    else:
        assert not isinstance(g_out, Raised), f"gpugrad raised {g_out!r}, torch returned {t_out!r:.500}"
        same(g_out, t_out)
    assert [c for c, _ in g_w] == [c for c, _ in t_w], f"warnings: gpugrad {g_w} vs torch {t_w}"
    for (_, gm), (_, tm) in zip(g_w, t_w):
        assert gm == tm, f"warning text: gpugrad {gm!r} vs torch {tm!r}"


def _norm(text):
    """Error text with the libraries' own names taken out (torch.Size([2, 3]) -> (2, 3), torch.float32 -> float32)."""
    text = re.sub(r"torch\.Size\(\[([^\]]*)\]\)", lambda mo: "(" + mo.group(1) + ("," if "," not in mo.group(1)
                                                                            and mo.group(1) else "") + ")", text)
    return re.sub(r"\b(torch|gg|gpugrad)\.", "", text)


def msg(fn, text=False):
    """Run fn; return the exception's builtin type name (and its normalised text with text=True), None if none."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return (_base_exc(type(e)).__name__, _norm(str(e))) if text else _base_exc(type(e)).__name__
    return None


SCEN = {}


def scen(f):
    SCEN[f.__name__] = f
    return f


# -- 1. autograd ---------------------------------------------------------------------------------------------
@scen
def backward_accumulates(m):
    x = m.tensor([1., 2., 3.], dtype=m.float64, requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    g1 = x.grad.clone()
    y.backward()
    return g1, x.grad, x.grad.requires_grad


@scen
def backward_twice_saved(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x.exp().sum()
    y.backward()
    y.backward()


@scen
def backward_twice_nothing_saved(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = (x + 1).sum()
    y.backward()
    y.backward()
    return x.grad


@scen
def backward_nonscalar_no_gradient(m):
    x = m.tensor([1., 2.], requires_grad=True)
    (x * 2).backward()


@scen
def backward_gradient_shape_mismatch(m):
    x = m.tensor([1., 2., 3.], requires_grad=True)
    (x * 2).backward(m.ones(1))


@scen
def backward_gradient_shape_2d(m):
    x = m.tensor([1., 2., 3.], requires_grad=True)
    (x * 2).backward(m.ones(1, 3))


@scen
def backward_gradient_ok(m):
    x = m.tensor([[1., 2.], [3., 4.]], requires_grad=True)
    (x * x).backward(m.tensor([[1., 0.], [2., 3.]]))
    return x.grad


@scen
def backward_gradient_other_dtype(m):
    x = m.tensor([1., 2.], dtype=m.float64, requires_grad=True)
    (x * 3).backward(m.tensor([1., 1.], dtype=m.float32))
    return x.grad


@scen
def backward_scalar_gradient_1elem(m):
    x = m.tensor([1., 2.], requires_grad=True)
    (x * 3).sum().backward(m.tensor([2.]))
    return x.grad


@scen
def backward_on_no_grad_output(m):
    x = m.tensor([1., 2.])
    (x * 2).sum().backward()


@scen
def backward_inputs_arg(m):
    x = m.tensor([1., 2.], requires_grad=True)
    w = m.tensor([3., 4.], requires_grad=True)
    (x * w).sum().backward(inputs=[x])
    return x.grad, w.grad


@scen
def backward_on_leaf(m):
    x = m.tensor(3., requires_grad=True)
    x.backward()
    return x.grad


@scen
def backward_create_graph_grad(m):
    x = m.tensor([1., 2.], requires_grad=True)
    with warnings.catch_warnings():  # NOTE: both libraries warn once per process: which test is first varies
        warnings.simplefilter("ignore")
        (x ** 3).sum().backward(create_graph=True)
    g = x.grad
    return g, g.requires_grad, g.grad_fn is None


@scen
def autograd_backward_multi(m):
    x = m.tensor([1., 2.], requires_grad=True)
    a = (x * 2).sum()
    b = x * x
    m.autograd.backward([a, b], [None, m.tensor([1., 3.])])
    return x.grad


@scen
def grad_unused_raises(m):
    x = m.tensor([1., 2.], requires_grad=True)
    w = m.tensor([1., 2.], requires_grad=True)
    return m.autograd.grad((x * 2).sum(), [x, w])


@scen
def grad_allow_unused(m):
    x = m.tensor([1., 2.], requires_grad=True)
    w = m.tensor([1., 2.], requires_grad=True)
    return m.autograd.grad((x * 2).sum(), [x, w], allow_unused=True)


@scen
def grad_materialize(m):
    x = m.tensor([1., 2.], requires_grad=True)
    w = m.tensor([[1.], [2.]], dtype=m.float64, requires_grad=True)
    return m.autograd.grad((x * 2).sum(), [x, w], materialize_grads=True)


@scen
def grad_materialize_allow_unused_false(m):
    x = m.tensor([1., 2.], requires_grad=True)
    w = m.tensor([1., 2.], requires_grad=True)
    return m.autograd.grad((x * 2).sum(), [x, w], allow_unused=False, materialize_grads=True)


@scen
def grad_outputs_list(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y1 = x * 3
    y2 = (x * x).sum()
    return m.autograd.grad([y1, y2], x, grad_outputs=[m.tensor([1., -1.]), None])


@scen
def grad_outputs_single_tensor(m):
    x = m.tensor([1., 2.], requires_grad=True)
    return m.autograd.grad(x * 3, x, m.tensor([2., 5.]))


@scen
def grad_outputs_wrong_shape(m):
    x = m.tensor([1., 2.], requires_grad=True)
    return m.autograd.grad(x * 3, x, m.tensor([2., 5., 1.]))


@scen
def grad_outputs_wrong_count(m):
    x = m.tensor([1., 2.], requires_grad=True)
    return m.autograd.grad([x * 3], x, [m.tensor([2., 5.]), m.tensor([1., 1.])])


@scen
def grad_nonscalar_no_grad_outputs(m):
    x = m.tensor([1., 2.], requires_grad=True)
    return m.autograd.grad(x * 3, x)


@scen
def grad_input_no_requires_grad(m):
    x = m.tensor([1., 2.], requires_grad=True)
    c = m.tensor([1., 2.])
    return m.autograd.grad((x * c).sum(), [x, c], allow_unused=True)


@scen
def grad_output_no_requires_grad(m):
    x = m.tensor([1., 2.], requires_grad=True)
    return m.autograd.grad(m.tensor(1.), [x])


@scen
def grad_only_inputs(m):
    x = m.tensor([1., 2.], requires_grad=True)
    return m.autograd.grad((x * x).sum(), x, only_inputs=True)


@scen
def grad_leaves_grad_untouched(m):
    x = m.tensor([1., 2.], requires_grad=True)
    g = m.autograd.grad((x * x).sum(), x)
    return g, x.grad is None


@scen
def grad_twice_no_retain(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = (x.exp()).sum()
    m.autograd.grad(y, x)
    return m.autograd.grad(y, x)


@scen
def grad_twice_retain(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = (x.exp()).sum()
    m.autograd.grad(y, x, retain_graph=True)
    return m.autograd.grad(y, x)


@scen
def grad_create_graph_third(m):
    x = m.tensor([1., 2.], dtype=m.float64, requires_grad=True)
    y = (x ** 4).sum()
    (g1,) = m.autograd.grad(y, x, create_graph=True)
    (g2,) = m.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = m.autograd.grad(g2.sum(), x)
    return g1, g2, g3


@scen
def grad_no_create_graph_result(m):
    x = m.tensor([1., 2.], requires_grad=True)
    (g,) = m.autograd.grad((x ** 2).sum(), x)
    return g


@scen
def grad_wrt_intermediate(m):
    x = m.tensor([1., 2.], requires_grad=True)
    h = x * 2
    y = (h * h).sum()
    return m.autograd.grad(y, h)


@scen
def grad_is_grads_batched(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * x
    return m.autograd.grad(y, x, m.eye(2), is_grads_batched=True)


@scen
def retain_grad_nonleaf(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 2
    y.retain_grad()
    (y * y).sum().backward()
    return y.grad, y.retains_grad, x.retains_grad


@scen
def retain_grad_leaf_noop(m):
    x = m.tensor([1., 2.], requires_grad=True)
    x.retain_grad()
    (x * 3).sum().backward()
    return x.grad, x.retains_grad


@scen
def retain_grad_no_requires(m):
    x = m.tensor([1., 2.])
    x.retain_grad()


@scen
def retain_grad_then_inplace(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.mul_(3)
    (y * y).sum().backward()
    return y.grad, x.grad


@scen
def retain_grad_after_inplace(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 2
    y.add_(1)
    y.retain_grad()
    (y * y).sum().backward()
    return y.grad


@scen
def retain_grad_and_hook_order(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.register_hook(lambda g: g * 10)
    (y * y).sum().backward()
    return y.grad, x.grad


@scen
def hook_leaf_replaces(m):
    x = m.tensor([1., 2.], requires_grad=True)
    x.register_hook(lambda g: g * 2)
    (x * 3).sum().backward()
    return x.grad


@scen
def hooks_order_and_chain(m):
    calls = []
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 1

    def h(name, k):
        def f(g):
            calls.append((name, g.tolist()))
            return g * k if k != 1 else None
        return f

    y.register_hook(h("a", 2))
    y.register_hook(h("b", 1))
    y.register_hook(h("c", 3))
    y.sum().backward()
    return calls, x.grad


@scen
def hook_remove_handle(m):
    x = m.tensor([1., 2.], requires_grad=True)
    hd = x.register_hook(lambda g: g * 100)
    x.register_hook(lambda g: g + 1)
    hd.remove()
    (x * 3).sum().backward()
    return x.grad


@scen
def hook_no_requires_grad(m):
    x = m.tensor([1., 2.])
    x.register_hook(lambda g: g)


@scen
def hook_wrong_shape_return(m):
    x = m.tensor([1., 2.], requires_grad=True)
    x.register_hook(lambda g: g.sum())
    (x * 3).sum().backward()
    return x.grad


@scen
def hook_called_with_grad_autograd_grad(m):
    calls = []
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: calls.append(g.tolist()))
    x.register_hook(lambda g: calls.append(("x", g.tolist())))
    g = m.autograd.grad(y.sum(), x)
    return calls, g


@scen
def hook_leaf_applies_in_autograd_grad(m):
    x = m.tensor([1., 2.], requires_grad=True)
    x.register_hook(lambda g: g * 2)
    return m.autograd.grad((x * 3).sum(), x)


@scen
def hook_nonleaf_input_autograd_grad(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g * 5)
    return m.autograd.grad((y * y).sum(), [y, x])


@scen
def retains_grad_after_backward(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 2
    y.retain_grad()
    before = y.retains_grad
    y.sum().backward()
    return before, y.retains_grad


@scen
def no_grad_generator_values(m):
    x = m.tensor([1., 2.], requires_grad=True)

    @m.no_grad()
    def gen():
        yield m.is_grad_enabled()
        yield (x * 2).grad_fn is None

    return list(gen())


@scen
def post_accumulate_grad_hook(m):
    seen = []
    x = m.tensor([1., 2.], requires_grad=True)
    x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (x * 3).sum().backward()
    return seen


@scen
def saved_tensors_hooks(m):
    seen = []
    x = m.tensor([1., 2.], requires_grad=True)
    with m.autograd.graph.saved_tensors_hooks(lambda t: (seen.append("pack"), t)[1],
                                              lambda t: (seen.append("unpack"), t)[1]):
        y = (x * x).sum()
    y.backward()
    return x.grad, len(seen) > 0


@scen
def detach_shares(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 2
    d = y.detach()
    d[0] = 10.
    return d, y, d.requires_grad, d.is_leaf


@scen
def detach_inplace(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 2
    y.detach_()
    return y, y.is_leaf, y.requires_grad, y.grad_fn is None


@scen
def detach_inplace_view(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = (x * 2)[:1]
    y.detach_()
    return y


@scen
def requires_grad_nonleaf_false(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 2
    y.requires_grad_(False)


@scen
def requires_grad_nonleaf_true(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 2
    return y.requires_grad_(True)


@scen
def requires_grad_int(m):
    x = m.tensor([1, 2])
    x.requires_grad_()


@scen
def requires_grad_int_ctor(m):
    return m.tensor([1, 2], requires_grad=True)


@scen
def requires_grad_setattr(m):
    x = m.tensor([1., 2.])
    x.requires_grad = True
    y = x * 2
    y.requires_grad = False


@scen
def requires_grad_returns_self(m):
    x = m.tensor([1., 2.])
    return x.requires_grad_() is x, x.requires_grad_(False).requires_grad


@scen
def grad_mode_nesting(m):
    x = m.tensor([1., 2.], requires_grad=True)
    out = []
    with m.no_grad():
        out.append((x * 2).requires_grad)
        with m.enable_grad():
            out.append((x * 2).requires_grad)
            with m.set_grad_enabled(False):
                out.append((x * 2).requires_grad)
                out.append(m.is_grad_enabled())
        out.append(m.is_grad_enabled())
    out.append(m.is_grad_enabled())
    return out


@scen
def set_grad_enabled_function(m):
    x = m.tensor([1., 2.], requires_grad=True)
    m.set_grad_enabled(False)
    try:
        a = (x * 2).requires_grad
        b = m.is_grad_enabled()
    finally:
        m.set_grad_enabled(True)
    return a, b, (x * 2).requires_grad


@scen
def grad_mode_decorators(m):
    x = m.tensor([1., 2.], requires_grad=True)

    @m.no_grad()
    def f1():
        return (x * 2).requires_grad

    @m.no_grad
    def f2():
        return (x * 2).requires_grad

    @m.enable_grad()
    def f3():
        return (x * 2).requires_grad

    @m.set_grad_enabled(False)
    def f4():
        return (x * 2).requires_grad

    with m.no_grad():
        r3 = f3()
    return f1(), f2(), r3, f4(), m.is_grad_enabled()


@scen
def no_grad_generator(m):
    x = m.tensor([1., 2.], requires_grad=True)

    @m.no_grad()
    def gen():
        for _ in range(2):
            yield (x * 2).requires_grad

    out = list(gen())
    return out, (x * 2).requires_grad


@scen
def no_grad_exception_restores(m):
    try:
        with m.no_grad():
            raise KeyError("x")
    except KeyError:
        pass
    return m.is_grad_enabled()


@scen
def inference_mode_basic(m):
    x = m.tensor([1., 2.], requires_grad=True)
    with m.inference_mode():
        y = x * 2
        e = m.is_inference_mode_enabled()
        g = m.is_grad_enabled()
        with m.inference_mode(False):
            e2 = m.is_inference_mode_enabled()
    return y, e, g, e2, m.is_inference_mode_enabled(), y.is_inference(), x.is_inference()


@scen
def inference_mode_decorator(m):
    x = m.tensor([1., 2.], requires_grad=True)

    @m.inference_mode()
    def f():
        return x * 2

    return f()


@scen
def is_leaf_rules(m):
    a = m.tensor([1., 2.])
    b = a * 2
    x = m.tensor([1., 2.], requires_grad=True)
    with m.no_grad():
        c = x * 2
    d = x * 2
    e = x.detach()
    f = m.zeros(2, requires_grad=True)
    g = x[0]
    return [(t.is_leaf, t.requires_grad, t.grad_fn is None) for t in (a, b, c, d, e, f, g)]


@scen
def nonleaf_grad_warns(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 2
    y.sum().backward()
    return y.grad


@scen
def nonleaf_retained_grad_no_warn(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.sum().backward()
    return y.grad


@scen
def grad_zero_then_accum(m):
    x = m.tensor([1., 2.], requires_grad=True)
    (x * 3).sum().backward()
    g = x.grad
    x.grad.zero_()
    (x * x).sum().backward()
    return x.grad, g is x.grad


@scen
def grad_accumulates_in_place_object(m):
    x = m.tensor([1., 2.], requires_grad=True)
    (x * 3).sum().backward()
    g = x.grad
    (x * 3).sum().backward()
    return g is x.grad, g


@scen
def grad_assign_ok(m):
    x = m.tensor([1., 2.], requires_grad=True)
    x.grad = m.tensor([5., 6.])
    (x * 3).sum().backward()
    return x.grad


@scen
def grad_assign_shape(m):
    x = m.tensor([1., 2.], requires_grad=True)
    x.grad = m.tensor([5., 6., 7.])


@scen
def grad_assign_dtype(m):
    x = m.tensor([1., 2.], requires_grad=True)
    x.grad = m.tensor([5., 6.], dtype=m.float64)


@scen
def grad_assign_int(m):
    x = m.tensor([1., 2.], requires_grad=True)
    x.grad = m.tensor([5, 6])


@scen
def grad_assign_nontensor(m):
    x = m.tensor([1., 2.], requires_grad=True)
    x.grad = [1., 2.]


@scen
def grad_assign_none(m):
    x = m.tensor([1., 2.], requires_grad=True)
    (x * 3).sum().backward()
    x.grad = None
    return x.grad


@scen
def grad_assign_nonleaf(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = x * 2
    y.grad = m.tensor([1., 1.])
    y.retain_grad()
    return y.grad


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_grad_dtype_low_precision(dt):
    def f(m):
        x = m.tensor([1., 2., 3.], dtype=getattr(m, dt), requires_grad=True)
        (x * x).sum().backward()
        w = m.tensor([1., 2., 3.], dtype=getattr(m, dt), requires_grad=True)
        (w.float() * 2).sum().backward()
        return x.grad, w.grad
    compare(f)


# custom Functions
def _function(m, fwd, bwd, *, once=False):
    """A custom ``m.autograd.Function`` subclass named F from plain ``fwd(ctx, ...)`` / ``bwd(ctx, *grads)``;
    ``once`` wraps bwd in ``once_differentiable``."""
    class F(m.autograd.Function):  # NOTE: a class statement, so the library's subclass hooks see a normal class
        forward = staticmethod(fwd)
        backward = staticmethod(m.autograd.function.once_differentiable(bwd) if once else bwd)
    return F


def _saving(m, f, grad, *, once=False):
    """A one-input Function that saves its input x: forward f(x), backward grad(g, x)."""
    def fwd(ctx, x):
        ctx.save_for_backward(x)
        return f(x)

    def bwd(ctx, g):
        (x,) = ctx.saved_tensors
        return grad(g, x)
    return _function(m, fwd, bwd, once=once)


def _square_fn(m):
    def fwd(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x * x * k

    def bwd(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 * x * ctx.k, None
    return _function(m, fwd, bwd)


@scen
def function_save_for_backward(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = _square_fn(m).apply(x, 3.0)
    y.sum().backward()
    return y, x.grad, y.grad_fn is None, y.is_leaf


@scen
def function_no_grad_input(m):
    x = m.tensor([1., 2.])
    y = _square_fn(m).apply(x, 3.0)
    return y


@scen
def function_needs_input_grad(m):
    seen = []

    def fwd(ctx, a, b, k):
        seen.append(tuple(ctx.needs_input_grad))
        return a * b

    def bwd(ctx, g):
        seen.append(tuple(ctx.needs_input_grad))
        return g, None, None

    a = m.tensor([1., 2.], requires_grad=True)
    b = m.tensor([3., 4.])
    _function(m, fwd, bwd).apply(a, b, 2).sum().backward()
    return seen, a.grad


@scen
def function_mark_non_differentiable(m):
    def fwd(ctx, x):
        i = (x > 1).to(x.dtype)
        ctx.mark_non_differentiable(i)
        return x * 2, i

    x = m.tensor([1., 2.], requires_grad=True)
    y, i = _function(m, fwd, lambda ctx, g, gi: g * 2 + (0 if gi is None else gi.sum() * 0)).apply(x)
    y.sum().backward()
    return y, i, i.requires_grad, x.grad


@scen
def function_non_differentiable_backward_through(m):
    def fwd(ctx, x):
        i = x * 3
        ctx.mark_non_differentiable(i)
        return i

    x = m.tensor([1., 2.], requires_grad=True)
    _function(m, fwd, lambda ctx, g: g).apply(x).sum().backward()


def _double_in_place(m):
    def fwd(ctx, x):
        x.mul_(2)
        ctx.mark_dirty(x)
        return x
    return _function(m, fwd, lambda ctx, g: g * 2)


@scen
def function_mark_dirty(m):
    a = m.tensor([1., 2.], requires_grad=True)
    x = a * 1
    y = _double_in_place(m).apply(x)
    (y * y).sum().backward()
    return y is x, y, a.grad


@scen
def function_mark_dirty_leaf(m):
    a = m.tensor([1., 2.], requires_grad=True)
    _double_in_place(m).apply(a)


@scen
def function_once_differentiable(m):
    F = _saving(m, lambda x: x * x, lambda g, x: g * 2 * x, once=True)
    x = m.tensor([1., 2.], requires_grad=True)
    (g,) = m.autograd.grad(F.apply(x).sum(), x, create_graph=True)
    r = (g, g.requires_grad)
    try:
        g.sum().backward()
        return r, "no raise"
    except RuntimeError:
        return r, "RuntimeError"


@scen
def function_materialize_grads_default(m):
    seen = []

    def bwd(ctx, g1, g2):
        seen.append((g1 is None, g2 is None, None if g2 is None else g2.tolist()))
        return g1 * 2

    x = m.tensor([1., 2.], requires_grad=True)
    a, b = _function(m, lambda ctx, x: (x * 2, x * 3), bwd).apply(x)
    a.sum().backward()
    return seen, x.grad


@scen
def function_set_materialize_grads_false(m):
    seen = []

    def fwd(ctx, x):
        ctx.set_materialize_grads(False)
        return x * 2, x * 3

    def bwd(ctx, g1, g2):
        seen.append((g1 is None, g2 is None))
        return g1 * 2

    x = m.tensor([1., 2.], requires_grad=True)
    a, b = _function(m, fwd, bwd).apply(x)
    a.sum().backward()
    return seen, x.grad


@scen
def function_returns_none_grad(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = m.tensor([3., 4.], requires_grad=True)
    _function(m, lambda ctx, x, y: x * y, lambda ctx, g: (None, g)).apply(x, y).sum().backward()
    return x.grad, y.grad


@scen
def function_wrong_grad_count(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = m.tensor([3., 4.], requires_grad=True)
    _function(m, lambda ctx, x, y: x * y, lambda ctx, g: (g,)).apply(x, y).sum().backward()


@scen
def function_too_many_grads_none(m):
    x = m.tensor([1., 2.], requires_grad=True)
    _function(m, lambda ctx, x: x * 2, lambda ctx, g: (g * 2, None, None)).apply(x).sum().backward()
    return x.grad


@scen
def function_wrong_grad_shape(m):
    x = m.tensor([1., 2.], requires_grad=True)
    _function(m, lambda ctx, x: x * 2, lambda ctx, g: g[:1]).apply(x).sum().backward()
    return x.grad


@scen
def function_broadcastable_grad_shape(m):
    x = m.tensor([1., 2.], requires_grad=True)
    _function(m, lambda ctx, x: x * 2, lambda ctx, g: g.expand(3, 2) * 1).apply(x).sum().backward()
    return x.grad


@scen
def function_grad_for_nonrequiring(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = m.tensor([3., 4.])
    _function(m, lambda ctx, x, y: x * y, lambda ctx, g: (g, g)).apply(x, y).sum().backward()
    return x.grad, y.grad


@scen
def function_nontensor_args(m):
    def fwd(ctx, x, n, s, opt=None):
        ctx.n = n
        return x * n if s == "mul" else x + n

    x = m.tensor([1., 2.], requires_grad=True)
    y = _function(m, fwd, lambda ctx, g: (g * ctx.n, None, None, None)).apply(x, 3, "mul", None)
    y.sum().backward()
    return y, x.grad


@scen
def function_setup_context(m):
    class F(m.autograd.Function):
        @staticmethod
        def forward(x, k):
            return x * k

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.k = inputs[1]

        @staticmethod
        def backward(ctx, g):
            return g * ctx.k, None

    x = m.tensor([1., 2.], requires_grad=True)
    F.apply(x, 4.0).sum().backward()
    return x.grad


@scen
def function_call_forward_directly_raises(m):
    return _function(m, lambda ctx, x: x, lambda ctx, g: g)()(m.tensor([1.]))


@scen
def function_returns_input_unchanged(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = _function(m, lambda ctx, x: x, lambda ctx, g: g * 5).apply(x)
    y.sum().backward()
    return y is x, x.grad, y.is_leaf


@scen
def function_saved_tensors_twice(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = _saving(m, lambda x: x * x, lambda g, x: g * 2 * x).apply(x).sum()
    y.backward()
    y.backward()


@scen
def function_double_backward(m):
    x = m.tensor([1., 2.], dtype=m.float64, requires_grad=True)
    y = _saving(m, lambda x: x ** 3, lambda g, x: g * 3 * x * x).apply(x)
    (g,) = m.autograd.grad(y.sum(), x, create_graph=True)
    (h,) = m.autograd.grad(g.sum(), x)
    return g, h


# gradcheck
def _ok_fn(m):
    return lambda a, b: (a * b.sin()).sum(1)


def _bad_fn(m):
    return _saving(m, lambda x: x * x, lambda g, x: g * 3 * x).apply


@scen
def gradcheck_ok(m):
    a = m.tensor([[1., 2.], [3., 4.]], dtype=m.float64, requires_grad=True)
    b = m.tensor([[.5, .2], [.1, .7]], dtype=m.float64, requires_grad=True)
    return m.autograd.gradcheck(_ok_fn(m), (a, b)), m.autograd.gradgradcheck(_ok_fn(m), (a, b))


@scen
def gradcheck_bad_raises(m):
    a = m.tensor([1., 2.], dtype=m.float64, requires_grad=True)
    return m.autograd.gradcheck(_bad_fn(m), (a,))


@scen
def gradcheck_bad_no_raise(m):
    a = m.tensor([1., 2.], dtype=m.float64, requires_grad=True)
    return m.autograd.gradcheck(_bad_fn(m), (a,), raise_exception=False)


@scen
def gradcheck_single_tensor_input(m):
    a = m.tensor([1., 2.], dtype=m.float64, requires_grad=True)
    return m.autograd.gradcheck(lambda x: x.exp(), a)


@scen
def gradcheck_float32_warns(m):
    a = m.tensor([1., 2.], dtype=m.float32, requires_grad=True)
    return m.autograd.gradcheck(lambda x: x * 2, (a,), eps=1e-3, atol=1e-2, rtol=1e-2)


@scen
def gradcheck_no_requires_grad(m):
    a = m.tensor([1., 2.], dtype=m.float64)
    return m.autograd.gradcheck(lambda x: x * 2, (a,))


@scen
def gradgradcheck_bad(m):
    bad = _saving(m, lambda x: x ** 3, lambda g, x: g * 3 * x * x.detach()).apply
    a = m.tensor([1., 2.], dtype=m.float64, requires_grad=True)
    return m.autograd.gradgradcheck(bad, (a,), raise_exception=False)


# autograd.functional
def _f2(x, y):
    return (x * y).exp(), x.sum() * y


def _x2(m):
    return m.tensor([0.1, 0.2, 0.3], dtype=m.float64), m.tensor([0.5, -0.4, 0.7], dtype=m.float64)


@scen
def af_jacobian_single(m):
    x = m.tensor([0.1, 0.2, 0.3], dtype=m.float64)
    return m.autograd.functional.jacobian(lambda t: t.sin() * t.sum(), x)


@scen
def af_jacobian_tuple(m):
    return m.autograd.functional.jacobian(_f2, _x2(m))


@scen
def af_jacobian_vectorize(m):
    return m.autograd.functional.jacobian(_f2, _x2(m), vectorize=True)


@scen
def af_jacobian_forward_strategy(m):
    return m.autograd.functional.jacobian(_f2, _x2(m), vectorize=True, strategy="forward-mode")


@scen
def af_jacobian_create_graph(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64, requires_grad=True)
    j = m.autograd.functional.jacobian(lambda t: t ** 3, x, create_graph=True)
    return j, j.requires_grad


@scen
def af_jacobian_no_create_graph(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64, requires_grad=True)
    return m.autograd.functional.jacobian(lambda t: t ** 3, x)


@scen
def af_jacobian_strict_independent(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return m.autograd.functional.jacobian(lambda t: m.ones(2, dtype=m.float64), x, strict=True)


@scen
def af_jacobian_nonstrict_independent(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return m.autograd.functional.jacobian(lambda t: m.ones(3, dtype=m.float64), x)


@scen
def af_jacobian_strict_vectorize(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return m.autograd.functional.jacobian(lambda t: t * 2, x, strict=True, vectorize=True)


@scen
def af_hessian(m):
    x = m.tensor([0.1, 0.2, 0.3], dtype=m.float64)
    return m.autograd.functional.hessian(lambda t: (t ** 3).sum() * t.sum(), x)


@scen
def af_hessian_tuple(m):
    return m.autograd.functional.hessian(lambda a, b: (a * b.exp()).sum(), _x2(m))


@scen
def af_hessian_nonscalar(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return m.autograd.functional.hessian(lambda t: t * 2, x)


@scen
def af_vjp(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return m.autograd.functional.vjp(lambda t: t ** 2, x, m.tensor([1., 2.], dtype=m.float64))


@scen
def af_vjp_scalar_no_v(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return m.autograd.functional.vjp(lambda t: (t ** 2).sum(), x)


@scen
def af_vjp_nonscalar_no_v(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return m.autograd.functional.vjp(lambda t: t ** 2, x)


@scen
def af_vjp_tuple(m):
    v = (m.ones(3, dtype=m.float64), m.tensor([1., 2., 3.], dtype=m.float64))
    return m.autograd.functional.vjp(_f2, _x2(m), v)


@scen
def af_jvp(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return m.autograd.functional.jvp(lambda t: t ** 2, x, m.tensor([1., 2.], dtype=m.float64))


@scen
def af_jvp_tuple(m):
    v = (m.ones(3, dtype=m.float64), m.tensor([1., 2., 3.], dtype=m.float64))
    return m.autograd.functional.jvp(_f2, _x2(m), v)


@scen
def af_jvp_v_wrong_shape(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return m.autograd.functional.jvp(lambda t: t ** 2, x, m.ones(3, dtype=m.float64))


@scen
def af_hvp_vhp(m):
    x = m.tensor([0.1, 0.2, 0.3], dtype=m.float64)
    v = m.tensor([1., -1., 2.], dtype=m.float64)
    f = lambda t: (t ** 3).sum() * t[0]  # noqa: E731
    return m.autograd.functional.hvp(f, x, v), m.autograd.functional.vhp(f, x, v)


@scen
def af_hvp_create_graph(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64, requires_grad=True)
    v = m.tensor([1., -1.], dtype=m.float64)
    out, h = m.autograd.functional.hvp(lambda t: (t ** 3).sum(), x, v, create_graph=True)
    return out, h, h.requires_grad


@scen
def af_vjp_strict(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return m.autograd.functional.vjp(lambda t: t.detach() * 2, x, m.ones(2, dtype=m.float64), strict=True)


# torch.func
@scen
def func_grad(m):
    x = m.tensor([0.1, 0.2, 0.3], dtype=m.float64)
    return FN(m).grad(lambda t: (t.sin() ** 2).sum())(x)


@scen
def func_grad_argnums_tuple(m):
    a, b = _x2(m)
    return FN(m).grad(lambda x, y: (x * y.exp()).sum(), argnums=(0, 1))(a, b)


@scen
def func_grad_argnums_int1(m):
    a, b = _x2(m)
    return FN(m).grad(lambda x, y: (x * y.exp()).sum(), argnums=1)(a, b)


@scen
def func_grad_has_aux(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return FN(m).grad(lambda t: ((t ** 2).sum(), {"a": t * 2}), has_aux=True)(x)


@scen
def func_grad_nonscalar(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return FN(m).grad(lambda t: t ** 2)(x)


@scen
def func_grad_and_value(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return FN(m).grad_and_value(lambda t: ((t ** 2).sum(), t.sum()), has_aux=True)(x)


@scen
def func_grad_of_grad(m):
    x = m.tensor(0.7, dtype=m.float64)
    return FN(m).grad(FN(m).grad(lambda t: t.sin() * t))(x)


@scen
def func_grad_bad_argnums(m):
    x = m.tensor([0.1], dtype=m.float64)
    return FN(m).grad(lambda t: t.sum(), argnums=1)(x)


@scen
def func_vjp(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    out, fn = FN(m).vjp(lambda t: t.exp() * t, x)
    return out, fn(m.tensor([1., 3.], dtype=m.float64))


@scen
def func_vjp_has_aux(m):
    a, b = _x2(m)
    out, fn, aux = FN(m).vjp(lambda x, y: (x * y, x.sum()), a, b, has_aux=True)
    return out, fn(m.ones(3, dtype=m.float64)), aux


@scen
def func_jvp(m):
    a, b = _x2(m)
    return FN(m).jvp(lambda x, y: x * y.exp(), (a, b), (m.ones(3, dtype=m.float64), b))


@scen
def func_jvp_has_aux(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return FN(m).jvp(lambda t: (t ** 2, t.sum()), (x,), (m.ones(2, dtype=m.float64),), has_aux=True)


@scen
def func_jvp_primals_not_tuple(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return FN(m).jvp(lambda t: t ** 2, x, m.ones(2, dtype=m.float64))


@scen
def func_jacrev_jacfwd(m):
    a, b = _x2(m)
    f = lambda x, y: (x * y).exp()  # noqa: E731
    return (FN(m).jacrev(f)(a, b), FN(m).jacfwd(f)(a, b), FN(m).jacrev(f, argnums=(0, 1))(a, b),
            FN(m).jacfwd(f, argnums=(1, 0))(a, b))


@scen
def func_jacrev_has_aux_tuple_out(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return FN(m).jacrev(lambda t: ((t ** 2, t.sum()), t * 3), has_aux=True)(x)


@scen
def func_jacrev_dict_out(m):
    x = m.tensor([0.1, 0.2], dtype=m.float64)
    return FN(m).jacrev(lambda t: {"a": t.exp(), "b": t.sum()})(x)


@scen
def func_hessian(m):
    x = m.tensor([0.1, 0.2, 0.3], dtype=m.float64)
    return FN(m).hessian(lambda t: (t ** 3).sum() * t[1])(x)


@scen
def func_hessian_argnums(m):
    a, b = _x2(m)
    return FN(m).hessian(lambda x, y: (x * y.exp()).sum(), argnums=(0, 1))(a, b)


@scen
def func_vmap_basic(m):
    x = m.arange(6., dtype=m.float64).reshape(2, 3)
    return FN(m).vmap(lambda t: (t * t).sum())(x)


@scen
def func_vmap_in_dims(m):
    x = m.arange(6., dtype=m.float64).reshape(2, 3)
    y = m.tensor([1., 2., 3.], dtype=m.float64)
    return FN(m).vmap(lambda a, b: a * b, in_dims=(1, None))(x, y)


@scen
def func_vmap_out_dims(m):
    x = m.arange(6., dtype=m.float64).reshape(2, 3)
    return FN(m).vmap(lambda a: (a * 2, a.sum()), out_dims=(1, 0))(x)


@scen
def func_vmap_size_mismatch(m):
    return FN(m).vmap(lambda a, b: a * b)(m.ones(2, 3), m.ones(3, 3))


@scen
def func_vmap_nested_dict(m):
    x = {"a": m.ones(2, 3, dtype=m.float64), "b": m.arange(2., dtype=m.float64)}
    return FN(m).vmap(lambda d: d["a"].sum() * d["b"])(x)


@scen
def func_vmap_grad(m):
    x = m.arange(6., dtype=m.float64).reshape(2, 3)
    return FN(m).vmap(FN(m).grad(lambda t: (t ** 3).sum()))(x)


@scen
def func_vmap_in_dims_bad(m):
    x = m.ones(2, 3)
    return FN(m).vmap(lambda t: t, in_dims=2)(x)


@scen
def func_vmap_chunk_randomness_args(m):
    x = m.arange(6., dtype=m.float64).reshape(3, 2)
    return FN(m).vmap(lambda t: t.sum(), chunk_size=2)(x)


@scen
def checkpoint_nonreentrant(m):
    ck = gg.utils.checkpoint if m is gg else torch.utils.checkpoint
    x = m.tensor([0.1, 0.2], dtype=m.float64, requires_grad=True)
    y = ck.checkpoint(lambda t: t.sin().exp(), x, use_reentrant=False)
    y.sum().backward()
    return y, x.grad


@scen
def hook_leaf_with_existing_grad(m):
    x = m.tensor([1., 2.], requires_grad=True)
    x.grad = m.tensor([1., 1.])
    x.register_hook(lambda g: g * 2)
    (x * 3).sum().backward()
    return x.grad


@scen
def create_graph_retains_graph(m):
    x = m.tensor([1., 2.], requires_grad=True)
    y = (x.exp()).sum()
    m.autograd.grad(y, x, create_graph=True)
    return m.autograd.grad(y, x)


@scen
def backward_inputs_nonleaf(m):
    x = m.tensor([1., 2.], requires_grad=True)
    h = x * 2
    (h * h).sum().backward(inputs=[h])
    return h.grad, x.grad


@scen
def backward_inputs_unused(m):
    x = m.tensor([1., 2.], requires_grad=True)
    w = m.tensor([1., 2.], requires_grad=True)
    (x * 2).sum().backward(inputs=[w])
    return x.grad, w.grad


@scen
def leaf_inplace_raises(m):
    x = m.tensor([1., 2.], requires_grad=True)
    x.add_(1)


@scen
def leaf_inplace_no_grad_ok(m):
    x = m.tensor([1., 2.], requires_grad=True)
    with m.no_grad():
        x.add_(1)
    return x, x.is_leaf, x.requires_grad


@scen
def view_of_leaf_grad(m):
    x = m.tensor([1., 2., 3.], requires_grad=True)
    v = x[1:]
    (v * 2).sum().backward()
    return x.grad, v.is_leaf


@scen
def enable_grad_in_inference_mode(m):
    x = m.tensor([1., 2.], requires_grad=True)
    with m.inference_mode():
        with m.enable_grad():
            y = x * 2
    return y.requires_grad, m.is_grad_enabled()


@scen
def set_grad_enabled_bad_arg(m):
    with m.set_grad_enabled("no"):
        pass


@scen
def grad_outputs_requires_grad_create_graph(m):
    x = m.tensor([1., 2.], requires_grad=True)
    v = m.tensor([1., 3.], requires_grad=True)
    (g,) = m.autograd.grad(x * x, x, v, create_graph=True)
    (gv,) = m.autograd.grad(g.sum(), v)
    return g, gv


@scen
def load_state_dict_numpy(m):
    net = m.nn.Linear(2, 1)
    net.load_state_dict({"weight": np.ones((1, 2), dtype=np.float32), "bias": np.zeros(1, dtype=np.float32)})
    return net.weight


@scen
def forward_hook_tuple_output(m):
    class M(m.nn.Module):
        def forward(self, x):
            return x * 2, x * 3
    mod = M()
    mod.register_forward_hook(lambda mod_, a, o: (o[1], o[0]))
    calls = []
    mod.register_full_backward_hook(lambda mod_, gin, gout: calls.append([g.tolist() for g in gout]))
    x = m.tensor([1., 2.], requires_grad=True)
    a, b = mod(x)
    (a * 10 + b).sum().backward()
    return a, b, x.grad, calls


@scen
def parameter_deepcopy_pickle(m):
    p = m.nn.Parameter(m.ones(2), requires_grad=False)
    q = copy.deepcopy(p)
    r = pickle.loads(pickle.dumps(m.nn.Parameter(m.ones(2))))
    return type(q).__name__, q.requires_grad, type(r).__name__, r.requires_grad, r


@scen
def module_half_grads(m):
    lin = _bw_net(m)
    lin(m.ones(1, 2)).sum().backward()
    lin.half()
    return lin.weight.grad.dtype, lin.weight.dtype


@scen
def zero_grad_keeps_requires(m):
    lin = _bw_net(m)
    lin.weight.requires_grad_(False)
    lin(m.ones(1, 2)).sum().backward()
    lin.zero_grad()
    return lin.weight.grad, lin.bias.grad


# -- 2. nn.Module ---------------------------------------------------------------------------------------------
def _fill(mod, m):
    """Deterministic parameter values (same in both libraries)."""
    with m.no_grad():
        for i, p in enumerate(mod.parameters()):
            n = int(np.prod(p.shape))
            p.copy_(m.tensor(((np.arange(n) % 7 - 3) * 0.1 + 0.01 * i).reshape(tuple(p.shape)), dtype=p.dtype))
    return mod


class _Sub:
    """Builds a small custom module class for library m."""

    @staticmethod
    def make(m):
        class Net(m.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = m.nn.Linear(3, 2)
                self.bn = m.nn.BatchNorm1d(2)
                self.register_buffer("running", m.ones(2))
                self.register_buffer("scratch", m.zeros(2), persistent=False)
                self.seq = m.nn.Sequential(m.nn.Linear(2, 2), m.nn.ReLU())

            def forward(self, x):
                return self.seq(self.bn(self.fc(x))) * self.running
        return _fill(Net(), m)


def _sd(sd):
    return [(k, v) for k, v in sd.items()]


@scen
def module_state_dict(m):
    net = _Sub.make(m)
    sd = net.state_dict()
    return type(sd).__name__, _sd(sd), list(net.state_dict(prefix="p.").keys())


@scen
def module_state_dict_keep_vars(m):
    net = _Sub.make(m)
    sd = net.state_dict(keep_vars=True)
    return [(k, type(v).__name__, v.requires_grad) for k, v in sd.items()], sd["fc.weight"] is net.fc.weight


@scen
def module_state_dict_shares_storage(m):
    net = _Sub.make(m)
    sd = net.state_dict()
    sd["fc.bias"].add_(1)
    return net.fc.bias


@scen
def module_state_dict_destination(m):
    net = m.nn.Linear(2, 1)
    d = collections.OrderedDict()
    r = net.state_dict(d, "x.")
    return r is d, list(d.keys())


@scen
def module_load_strict_missing(m):
    net = _Sub.make(m)
    sd = net.state_dict()
    del sd["fc.bias"]
    sd["extra"] = m.ones(1)
    return net.load_state_dict(sd)


@scen
def module_load_strict_error_text(m):
    net = _Sub.make(m)
    sd = net.state_dict()
    del sd["fc.bias"]
    sd["extra"] = m.ones(1)
    return msg(lambda: net.load_state_dict(sd), text=True)


@scen
def module_load_nonstrict(m):
    net = _Sub.make(m)
    sd = net.state_dict()
    del sd["fc.bias"]
    sd["extra"] = m.ones(1)
    r = net.load_state_dict(sd, strict=False)
    return r, r.missing_keys, r.unexpected_keys, repr(net.load_state_dict(net.state_dict()))


@scen
def module_load_shape_mismatch_text(m):
    net = m.nn.Linear(3, 2)
    sd = {"weight": m.zeros(2, 4), "bias": m.zeros(2)}
    return msg(lambda: net.load_state_dict(sd, strict=False), text=True)


@scen
def module_load_values_and_dtype(m):
    net = _Sub.make(m)
    sd = {k: (v * 2).double() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    w = net.fc.weight
    net.load_state_dict(sd)
    return net.fc.weight is w, net.fc.weight, net.bn.num_batches_tracked, net.fc.weight.requires_grad


@scen
def module_load_assign(m):
    net = m.nn.Linear(2, 1)
    w = net.weight
    sd = {"weight": m.tensor([[1., 2.]], dtype=m.float64), "bias": m.tensor([3.], dtype=m.float64)}
    net.load_state_dict(sd, assign=True)
    return (net.weight is w, net.weight, type(net.weight).__name__, net.weight.requires_grad,
            net.weight is sd["weight"])


@scen
def module_load_not_dict(m):
    return m.nn.Linear(2, 1).load_state_dict([1, 2])


@scen
def module_load_buffer_nonpersistent(m):
    net = _Sub.make(m)
    sd = net.state_dict()
    sd["scratch"] = m.ones(2)
    return net.load_state_dict(sd, strict=False)


@scen
def register_buffer_errors(m):
    mod = m.nn.Module()
    mod.x = 3
    out = [msg(lambda: mod.register_buffer("a.b", m.ones(1))), msg(lambda: mod.register_buffer("", m.ones(1))),
           msg(lambda: mod.register_buffer("x", m.ones(1))), msg(lambda: mod.register_buffer("c", [1.])),
           msg(lambda: mod.register_buffer(3, m.ones(1)))]
    mod.register_buffer("n", None)
    mod.register_buffer("t", m.ones(1))
    out.append(msg(lambda: mod.register_buffer("t", m.zeros(1))))
    return out, list(dict(mod.named_buffers())), mod.n, mod.t


@scen
def register_parameter_errors(m):
    mod = m.nn.Module()
    mod.x = 3
    mod.register_buffer("b", m.ones(1))
    out = [msg(lambda: mod.register_parameter("a.b", m.nn.Parameter(m.ones(1)))),
           msg(lambda: mod.register_parameter("", m.nn.Parameter(m.ones(1)))),
           msg(lambda: mod.register_parameter("x", m.nn.Parameter(m.ones(1)))),
           msg(lambda: mod.register_parameter("b", m.nn.Parameter(m.ones(1)))),
           msg(lambda: mod.register_parameter("c", m.ones(1))),
           msg(lambda: mod.register_parameter(1, m.nn.Parameter(m.ones(1))))]
    mod.register_parameter("n", None)
    return out, list(dict(mod.named_parameters())), mod.n


@scen
def register_parameter_nonleaf(m):
    mod = m.nn.Module()
    x = m.ones(1, requires_grad=True)
    mod.register_parameter("p", m.nn.Parameter(x * 2))
    return mod.p, type(mod.p).__name__


@scen
def add_module_errors(m):
    mod = m.nn.Module()
    mod.x = 3
    mod.register_buffer("b", m.ones(1))
    out = [msg(lambda: mod.add_module("a.b", m.nn.ReLU())), msg(lambda: mod.add_module("", m.nn.ReLU())),
           msg(lambda: mod.add_module("x", m.nn.ReLU())), msg(lambda: mod.add_module("b", m.nn.ReLU())),
           msg(lambda: mod.add_module("c", 3)), msg(lambda: mod.add_module(2, m.nn.ReLU())),
           msg(lambda: mod.register_module("d.e", m.nn.ReLU()))]
    mod.add_module("n", None)
    mod.register_module("r", m.nn.ReLU())
    mod.add_module("r", m.nn.Tanh())
    return out, [(k, type(v).__name__) for k, v in mod.named_children()], mod.n


@scen
def setattr_rules(m):
    mod = m.nn.Linear(2, 1)
    out = [msg(lambda: setattr(mod, "weight", m.ones(1, 2)))]
    mod.weight = m.nn.Parameter(m.ones(1, 2))
    mod.bias = None
    mod.extra = m.nn.Parameter(m.zeros(3))
    mod.sub = m.nn.ReLU()
    mod.t = m.ones(2)
    out.append(msg(lambda: setattr(mod, "sub", m.ones(1))))
    mod.register_buffer("buf", m.zeros(2))
    mod.buf = m.ones(2)
    out.append(msg(lambda: setattr(mod, "buf", 3)))
    mod.sub = None
    return (out, list(dict(mod.named_parameters())), list(dict(mod.named_buffers())),
            [k for k, _ in mod.named_children()], mod.bias, mod.buf, "t" in mod.state_dict())


@scen
def setattr_module_over_param(m):
    mod = m.nn.Linear(2, 1)
    mod.weight = m.nn.ReLU()
    return list(dict(mod.named_parameters())), [k for k, _ in mod.named_children()]


@scen
def setattr_param_over_module(m):
    mod = m.nn.Module()
    mod.a = m.nn.ReLU()
    mod.a = m.nn.Parameter(m.ones(1))
    return list(dict(mod.named_parameters())), [k for k, _ in mod.named_children()]


@scen
def setattr_before_init(m):
    class Bad(m.nn.Module):
        def __init__(self):
            self.fc = m.nn.Linear(1, 1)
            super().__init__()
    Bad()


@scen
def delattr_param(m):
    mod = m.nn.Linear(2, 1)
    del mod.bias
    return list(dict(mod.named_parameters())), hasattr(mod, "bias")


@scen
def getattr_missing_text(m):
    return msg(lambda: m.nn.Linear(2, 1).nope, text=True)


def _shared(m):
    class Net(m.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = m.nn.Linear(2, 2)
            self.b = self.a
            self.c = m.nn.Sequential(self.a, m.nn.Linear(2, 1))
            self.p = self.a.weight
    return Net()


@scen
def named_parameters_shared(m):
    net = _shared(m)
    return (list(dict(net.named_parameters())), [k for k, _ in net.named_parameters(remove_duplicate=False)],
            [k for k, _ in net.named_parameters(prefix="net")], [k for k, _ in net.named_parameters(recurse=False)],
            len(list(net.parameters())), list(net.state_dict().keys()))


@scen
def named_modules_shared(m):
    net = _shared(m)
    memo = set()
    memo.add(net.c)
    return ([k for k, _ in net.named_modules()], [k for k, _ in net.named_modules(remove_duplicate=False)],
            [k for k, _ in net.named_modules(memo=memo, prefix="z")], [k for k, _ in net.named_children()],
            [type(c).__name__ for c in net.children()], [type(c).__name__ for c in net.modules()])


@scen
def named_buffers_opts(m):
    net = _Sub.make(m)
    return ([k for k, _ in net.named_buffers()], [k for k, _ in net.named_buffers(prefix="q", recurse=False)],
            len(list(net.buffers())), len(list(net.buffers(recurse=False))))


@scen
def module_apply_order(m):
    net = _Sub.make(m)
    seen = []
    r = net.apply(lambda mod: seen.append(type(mod).__name__))
    return seen, r is net


@scen
def module_to_dtype(m):
    net = _Sub.make(m)
    net(m.ones(4, 3)).sum().backward()
    w = net.fc.weight
    r = net.to(m.float64)
    return (r is net, net.fc.weight is w, net.fc.weight.dtype, net.fc.weight.grad.dtype, net.running.dtype,
            net.scratch.dtype, net.bn.num_batches_tracked.dtype, net.fc.weight.is_leaf, net.fc.weight.requires_grad)


@scen
def module_half_double(m):
    net = _Sub.make(m)
    net.half()
    a = (net.fc.weight.dtype, net.running.dtype, net.bn.num_batches_tracked.dtype)
    net.double()
    b = (net.fc.weight.dtype, net.bn.running_mean.dtype)
    net.float()
    return a, b, net.fc.weight.dtype, type(net.fc.weight).__name__


@scen
def module_to_int_dtype(m):
    m.nn.Linear(2, 1).to(m.int64)


@scen
def module_to_kwargs(m):
    net = m.nn.Linear(2, 1)
    net.to(dtype=m.float64)
    net.to("cpu")
    net.to("cpu", m.float16)
    return net.weight.dtype, str(net.weight.device)


@scen
def module_requires_grad_(m):
    net = _Sub.make(m)
    r = net.requires_grad_(False)
    a = [p.requires_grad for p in net.parameters()]
    net.fc.requires_grad_()
    return r is net, a, [p.requires_grad for p in net.parameters()]


@scen
def module_train_eval(m):
    net = _Sub.make(m)
    r = net.eval()
    a = [mod.training for mod in net.modules()]
    net.seq.train()
    b = [mod.training for mod in net.modules()]
    net.train(False)
    c = [mod.training for mod in net.modules()]
    return r is net, a, b, c


@scen
def module_zero_grad(m):
    net = _Sub.make(m)
    net(m.ones(4, 3)).sum().backward()
    net.zero_grad()
    a = [p.grad is None for p in net.parameters()]
    net(m.ones(4, 3)).sum().backward()
    net.zero_grad(set_to_none=False)
    return a, [p.grad for p in net.parameters()]


@scen
def forward_hooks_kwargs(m):
    calls = []

    class M(m.nn.Module):
        def forward(self, x, scale=1.0):
            calls.append(("fwd", scale))
            return x * scale

    mod = M()

    def pre(mod_, args, kwargs):
        calls.append(("pre", len(args), sorted(kwargs)))
        return (args[0] + 1,), {"scale": kwargs.get("scale", 1.0) * 2}

    def post(mod_, args, kwargs, out):
        calls.append(("post", args[0].tolist(), dict(kwargs)))
        return out + 100

    def plain_pre(mod_, args):
        calls.append(("plain_pre", len(args)))

    def plain_post(mod_, args, out):
        calls.append(("plain_post", out.tolist()))

    mod.register_forward_pre_hook(pre, with_kwargs=True)
    mod.register_forward_pre_hook(plain_pre, prepend=True)
    mod.register_forward_hook(post, with_kwargs=True)
    h = mod.register_forward_hook(plain_post)
    y = mod(m.tensor([1., 2.]), scale=3.0)
    h.remove()
    y2 = mod(m.tensor([1.]))
    return calls, y, y2


@scen
def forward_pre_hook_single_return(m):
    mod = m.nn.Identity()
    mod.register_forward_pre_hook(lambda mod_, args: args[0] * 2)
    return mod(m.tensor([1., 2.]))


@scen
def forward_pre_hook_kwargs_bad_return(m):
    mod = m.nn.Identity()
    mod.register_forward_pre_hook(lambda mod_, a, k: a, with_kwargs=True)
    return mod(m.tensor([1., 2.]))


@scen
def forward_hook_always_call(m):
    calls = []

    class M(m.nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    mod = M()
    mod.register_forward_hook(lambda mod_, a, o: calls.append("always"), always_call=True)
    mod.register_forward_hook(lambda mod_, a, o: calls.append("normal"))
    try:
        mod(m.ones(1))
    except ValueError:
        calls.append("raised")
    return calls


def _bw_net(m):
    lin = m.nn.Linear(2, 2)
    _fill(lin, m)
    return lin


@scen
def full_backward_hook(m):
    calls = []
    lin = _bw_net(m)
    x = m.tensor([[1., 2.]], requires_grad=True)

    def hook(mod, gin, gout):
        calls.append(("hook", [None if g is None else g.tolist() for g in gin], [g.tolist() for g in gout]))

    def pre(mod, gout):
        calls.append(("pre", [g.tolist() for g in gout]))

    lin.register_full_backward_hook(hook)
    lin.register_full_backward_pre_hook(pre)
    (lin(x) * m.tensor([[1., 3.]])).sum().backward()
    return calls, x.grad, lin.weight.grad


@scen
def full_backward_hook_replace(m):
    lin = _bw_net(m)
    x = m.tensor([[1., 2.]], requires_grad=True)
    lin.register_full_backward_hook(lambda mod, gin, gout: (gin[0] * 10,))
    lin.register_full_backward_pre_hook(lambda mod, gout: (gout[0] * 2,))
    lin(x).sum().backward()
    return x.grad, lin.weight.grad


@scen
def full_backward_hook_input_no_grad(m):
    calls = []
    lin = _bw_net(m)
    lin.register_full_backward_hook(lambda mod, gin, gout: calls.append((len(gin), gin[0] is None)))
    lin(m.tensor([[1., 2.]])).sum().backward()
    return calls, lin.weight.grad


@scen
def full_backward_hook_wrong_count(m):
    lin = _bw_net(m)
    x = m.tensor([[1., 2.]], requires_grad=True)
    lin.register_full_backward_hook(lambda mod, gin, gout: (gin[0], gin[0]))
    lin(x).sum().backward()


@scen
def full_backward_hook_inplace_output(m):
    mod = m.nn.ReLU(inplace=True)
    mod.register_full_backward_hook(lambda *a: None)
    x = m.tensor([1., -2.], requires_grad=True)
    return mod(x * 1)


@scen
def full_backward_hook_multi_input(m):
    calls = []

    class M(m.nn.Module):
        def forward(self, a, k, b):
            return a * b * k

    mod = M()
    mod.register_full_backward_hook(lambda mod_, gin, gout: calls.append(
        [None if g is None else g.tolist() for g in gin]))
    a = m.tensor([1., 2.], requires_grad=True)
    b = m.tensor([3., 4.])
    mod(a, 2.0, b).sum().backward()
    return calls, a.grad


@scen
def state_dict_pre_hook(m):
    seen = []
    net = m.nn.Linear(2, 1)
    net.register_state_dict_pre_hook(lambda mod, prefix, keep_vars: seen.append((prefix, keep_vars)))
    net.state_dict(prefix="a.")
    return seen


@scen
def state_dict_post_hook_private(m):
    net = m.nn.Linear(2, 1)

    def hook(mod, sd, prefix, local_metadata):
        sd[prefix + "extra"] = m.ones(1)
    net._register_state_dict_hook(hook)
    return list(net.state_dict().keys())


@scen
def load_state_dict_post_hook(m):
    seen = []
    net = m.nn.Linear(2, 1)
    net.register_load_state_dict_post_hook(lambda mod, keys: seen.append((list(keys.missing_keys),
                                                                          list(keys.unexpected_keys))))
    net.load_state_dict({"weight": m.ones(1, 2), "x": m.ones(1)}, strict=False)
    return seen


@scen
def load_state_dict_pre_hook(m):
    net = m.nn.Linear(2, 1)

    def hook(mod, sd, prefix, *rest):
        sd[prefix + "bias"] = m.tensor([7.])
    net.register_load_state_dict_pre_hook(hook)
    net.load_state_dict({"weight": m.ones(1, 2)})
    return net.bias


@scen
def repr_nested(m):
    net = m.nn.Sequential(m.nn.Linear(2, 3, bias=False), m.nn.ModuleList([m.nn.ReLU(), m.nn.Dropout(0.2)]),
                          m.nn.ModuleDict({"a": m.nn.Tanh(), "b": m.nn.Sequential()}),
                          m.nn.Conv2d(1, 2, 3, stride=2), m.nn.BatchNorm1d(3), m.nn.Flatten(),
                          m.nn.LayerNorm(3), m.nn.Embedding(4, 2), m.nn.Identity())
    return repr(net)


@scen
def repr_param_containers(m):
    pl = m.nn.ParameterList([m.nn.Parameter(m.ones(2)), m.nn.Parameter(m.ones(1, 3, dtype=m.float64))])
    pd = m.nn.ParameterDict({"a": m.nn.Parameter(m.ones(2))})
    return repr(pl), repr(pd)


@scen
def extra_repr_custom(m):
    class M(m.nn.Module):
        def __init__(self):
            super().__init__()
            self.l = m.nn.Linear(1, 1)

        def extra_repr(self):
            return "k=1\nz=2"
    return repr(M()), repr(m.nn.Module())


@scen
def sequential_ops(m):
    s = m.nn.Sequential(m.nn.ReLU(), m.nn.Tanh(), m.nn.Sigmoid(), m.nn.Identity())
    names = lambda q: [(k, type(v).__name__) for k, v in q.named_children()]  # noqa: E731
    out = [names(s[1:3]), type(s[1:3]).__name__, type(s[-1]).__name__, names(s[::2])]
    out.append(msg(lambda: s[10]))
    s.append(m.nn.ELU())
    out.append(names(s))
    s.insert(1, m.nn.GELU())
    out.append(names(s))
    s.insert(-1, m.nn.SiLU())
    out.append(names(s))
    del s[0]
    out.append(names(s))
    s.extend([m.nn.Softplus()])
    out.append(names(s))
    del s[1]
    out.append(names(s))
    del s[1:3]
    out.append(names(s))
    s2 = s + m.nn.Sequential(m.nn.ReLU())
    out.append((names(s2), names(s)))
    s[0] = m.nn.Hardtanh()
    out.append(names(s))
    out.append(len(s))
    out.append(msg(lambda: s.insert(10, m.nn.ReLU())))
    out.append(msg(lambda: s.append(3)))
    return out


@scen
def sequential_ordereddict(m):
    s = m.nn.Sequential(collections.OrderedDict([("first", m.nn.ReLU()), ("second", m.nn.Tanh())]))
    return ([k for k, _ in s.named_children()], type(s.first).__name__, [k for k, _ in s[1:].named_children()],
            type(s[0]).__name__, s(m.tensor([-1., 1.])))


@scen
def sequential_iadd(m):
    s = m.nn.Sequential(m.nn.ReLU(), m.nn.Tanh())
    s0 = s
    s += m.nn.Sequential(m.nn.Sigmoid())
    return [k for k, _ in s.named_children()], s is s0


@scen
def sequential_mul(m):
    s = m.nn.Sequential(m.nn.ReLU(), m.nn.Tanh())
    s2 = s * 2
    return [k for k, _ in s2.named_children()], s2[0] is s[0]


@scen
def sequential_forward_kwargs(m):
    s = m.nn.Sequential(m.nn.ReLU())
    return s(m.tensor([1.]), m.tensor([2.]))


@scen
def modulelist_ops(m):
    ml = m.nn.ModuleList([m.nn.ReLU(), m.nn.Tanh()])
    t = lambda q: [type(v).__name__ for v in q]  # noqa: E731
    out = [type(ml[0:1]).__name__, t(ml[::-1]), type(ml[-1]).__name__]
    ml.append(m.nn.Sigmoid())
    ml.extend([m.nn.ELU()])
    ml.insert(1, m.nn.GELU())
    out.append(t(ml))
    out.append([k for k, _ in ml.named_children()])
    ml[0] = m.nn.Identity()
    del ml[1]
    out.append([k for k, _ in ml.named_children()])
    del ml[-1]
    ml += m.nn.ModuleList([m.nn.ReLU()])
    out.append(t(ml))
    out.append(t(ml + m.nn.ModuleList([m.nn.Tanh()])))
    out.append(ml.index(ml[2]) if hasattr(ml, "index") else "noindex")
    out.append(msg(lambda: ml.append(3)))
    out.append(msg(lambda: ml[20]))
    out.append(msg(lambda: ml.extend(m.nn.ReLU())))
    out.append(len(ml))
    return out


@scen
def moduledict_ops(m):
    md = m.nn.ModuleDict({"b": m.nn.ReLU(), "a": m.nn.Tanh()})
    out = [list(md.keys()), [type(v).__name__ for v in md.values()], "a" in md, len(md)]
    md.update({"c": m.nn.ELU()})
    md.update([("d", m.nn.GELU())])
    md["e"] = m.nn.SiLU()
    out.append(type(md.pop("b")).__name__)
    out.append(msg(lambda: md.pop("nope")))
    out.append([k for k, _ in md.items()])
    out.append(msg(lambda: md.__setitem__("f", 3)))
    out.append(msg(lambda: md["zzz"]))
    out.append(msg(lambda: md.update(3)))
    del md["a"]
    out.append(list(md))
    md.clear()
    out.append(len(md))
    return out


@scen
def parameterlist_ops(m):
    pl = m.nn.ParameterList([m.ones(2), m.nn.Parameter(m.zeros(1), requires_grad=False)])
    pl.append(m.full((3,), 2.))
    pl.extend([m.ones(1)])
    out = [[(type(p).__name__, p.requires_grad, tuple(p.shape)) for p in pl], len(pl), type(pl[-1]).__name__]
    out.append([k for k, _ in pl.named_parameters()])
    pl[0] = m.nn.Parameter(m.ones(5))
    out.append(tuple(pl[0].shape))
    return out


@scen
def parameterdict_ops(m):
    pd = m.nn.ParameterDict({"w": m.ones(2), "b": m.nn.Parameter(m.zeros(1))})
    pd["c"] = m.ones(3)
    pd.update({"d": m.nn.Parameter(m.ones(1), requires_grad=False)})
    out = [list(pd.keys()), [(type(p).__name__, p.requires_grad) for p in pd.values()], "w" in pd, len(pd)]
    out.append(type(pd.pop("w")).__name__)
    out.append([k for k, _ in pd.named_parameters()])
    out.append(pd.get("zz", None))
    return out


@scen
def module_deepcopy(m):
    net = _shared(m)
    _fill(net, m)
    c = copy.deepcopy(net)
    return (c.a.weight is net.a.weight, c.b is c.a, c.p is c.a.weight, c.c[0] is c.a, c.a.weight,
            type(c.a.weight).__name__, c.a.weight.requires_grad, c.a.weight.is_leaf)


@scen
def module_deepcopy_with_grad(m):
    lin = _bw_net(m)
    lin(m.ones(1, 2)).sum().backward()
    c = copy.deepcopy(lin)
    return c.weight.grad, c.weight.grad is lin.weight.grad


@scen
def module_deepcopy_nonleaf_attr(m):
    lin = _bw_net(m)
    lin.cache = lin.weight * 2
    copy.deepcopy(lin)


@scen
def module_pickle(m):
    net = _Sub.make(m)
    net.eval()
    c = pickle.loads(pickle.dumps(net))
    return c.state_dict(), c.training, c.fc.weight.requires_grad, c(m.ones(1, 3))


@scen
def parameter_requires_grad_false(m):
    p = m.nn.Parameter(m.ones(2), requires_grad=False)
    mod = m.nn.Module()
    mod.p = p
    q = p * 2
    return (p.requires_grad, p.is_leaf, len(list(mod.parameters())), q.requires_grad, type(p).__name__,
            isinstance(p, m.Tensor), repr(p))


@scen
def parameter_misc(m):
    p0 = m.nn.Parameter()
    p = m.nn.Parameter(m.ones(2, dtype=m.float64))
    pp = m.nn.Parameter(p)
    return (p0, type(p0).__name__, pp.dtype, type(pp).__name__, repr(p), type(p * 2).__name__,
            type(p.detach()).__name__, type(p[0]).__name__)


@scen
def parameter_int_raises(m):
    return m.nn.Parameter(m.ones(2, dtype=m.int64))


@scen
def parameter_int_no_grad(m):
    return m.nn.Parameter(m.ones(2, dtype=m.int64), requires_grad=False)


@scen
def get_submodule_errors(m):
    net = _Sub.make(m)
    return (type(net.get_submodule("seq.0")).__name__, type(net.get_submodule("")).__name__,
            msg(lambda: net.get_submodule("seq.5")), msg(lambda: net.get_submodule("fc.weight")),
            msg(lambda: net.get_submodule("fc.in_features")),
            msg(lambda: net.get_submodule("zz")),
            tuple(net.get_parameter("seq.0.bias").shape), msg(lambda: net.get_parameter("seq.0.nope")),
            msg(lambda: net.get_parameter("running")), msg(lambda: net.get_parameter("zz.weight")),
            tuple(net.get_buffer("bn.running_mean").shape), msg(lambda: net.get_buffer("fc.weight")),
            msg(lambda: net.get_buffer("bn.zz")), tuple(net.get_buffer("scratch").shape))


@scen
def param_reassign_keeps_order(m):
    lin = m.nn.Linear(2, 1)
    lin.weight = m.nn.Parameter(m.ones(1, 2))
    lin.register_buffer("b1", m.ones(1))
    lin.register_buffer("b2", m.ones(1))
    lin.b1 = m.zeros(1)
    return [k for k, _ in lin.named_parameters()], list(lin.state_dict())


@scen
def module_reassign_keeps_order(m):
    s = m.nn.Module()
    s.a = m.nn.ReLU()
    s.b = m.nn.Tanh()
    s.a = m.nn.ELU()
    return [k for k, _ in s.named_children()]


@scen
def module_missing_methods(m):
    names = ["set_submodule", "to_empty", "share_memory", "get_extra_state", "set_extra_state",
             "register_backward_hook", "register_state_dict_post_hook", "register_load_state_dict_pre_hook"]
    return [hasattr(m.nn.Module(), n) for n in names]


@scen
def sequential_pop(m):
    s = m.nn.Sequential(m.nn.ReLU(), m.nn.Tanh())
    return type(s.pop(0)).__name__, [k for k, _ in s.named_children()]


@scen
def modulelist_pop(m):
    s = m.nn.ModuleList([m.nn.ReLU(), m.nn.Tanh(), m.nn.ELU()])
    return type(s.pop(1)).__name__, [k for k, _ in s.named_children()]


@scen
def parameterlist_slice(m):
    pl = m.nn.ParameterList([m.ones(1), m.ones(2), m.ones(3)])
    q = pl[1:]
    return type(q).__name__, [tuple(p.shape) for p in q]


@scen
def parameterdict_missing_key(m):
    pd = m.nn.ParameterDict({"a": m.ones(1)})
    return msg(lambda: pd["zz"])


@scen
def module_train_nonbool(m):
    return msg(lambda: m.nn.Linear(1, 1).train("yes"))


@scen
def sequential_setitem_forward(m):
    s = m.nn.Sequential(m.nn.Linear(2, 2), m.nn.ReLU(), m.nn.Linear(2, 2))
    s[0] = m.nn.Linear(2, 2)
    _fill(s, m)
    return [k for k, _ in s.named_children()], [type(c).__name__ for c in s], s(m.tensor([[1., -2.]])), list(s.state_dict())


@scen
def modulelist_setitem_order(m):
    ml = m.nn.ModuleList([m.nn.ReLU(), m.nn.GELU(), m.nn.Tanh()])
    ml[0] = m.nn.Identity()
    return [type(v).__name__ for v in ml], type(ml[0]).__name__


# -- 3. data --------------------------------------------------------------------------------------------------
Pt = collections.namedtuple("Pt", ["x", "y"])


def _tl(x):
    """Plain tuples as lists: torch's default_collate turns a batch of tuples into a list (gg: a tuple), a
    difference checked once in collate_tuple_type; the other data scenarios compare contents only."""
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        return [_tl(v) for v in x]
    if isinstance(x, list):
        return [_tl(v) for v in x]
    if isinstance(x, dict):
        return {k: _tl(v) for k, v in x.items()}
    return x


def dscen(f):
    def g(m):
        return _tl(f(m))
    g.__name__ = f.__name__
    return scen(g)


@scen
def collate_tuple_type(m):
    ds = D(m).TensorDataset(m.arange(4), m.arange(4))
    b = next(iter(D(m).DataLoader(ds, batch_size=2)))
    return type(b).__name__, type(D(m).default_collate([(1, 2), (3, 4)])).__name__


class _ListDS:
    """A map-style dataset over a Python list (a plain class: both libraries accept any __getitem__/__len__)."""

    def __init__(self, items):
        self.items = items

    def __getitem__(self, i):
        return self.items[i]

    def __len__(self):
        return len(self.items)


def _batches(m, items, **kw):
    return list(D(m).DataLoader(_ListDS(items), **kw))


@dscen
def collate_python_numbers(m):
    return (_batches(m, [1, 2, 3], batch_size=2), _batches(m, [1.5, 2.5], batch_size=2),
            _batches(m, [True, False], batch_size=2), _batches(m, ["a", "b", "c"], batch_size=2))


@dscen
def collate_dict_tuple_namedtuple(m):
    items = [{"a": i, "b": (float(i), np.array([i, i + 1], dtype=np.int32)), "p": Pt(i, [i * 1.0, 2.0])}
             for i in range(3)]
    return _batches(m, items, batch_size=2)


@dscen
def collate_list_samples(m):
    return _batches(m, [[1, 2.0], [3, 4.0]], batch_size=2)


@dscen
def collate_numpy(m):
    items = [np.arange(3, dtype=np.float32) + i for i in range(4)]
    return (_batches(m, items, batch_size=2), _batches(m, [np.float64(1.5), np.float64(2.)], batch_size=2),
            _batches(m, [np.int16(1), np.int16(2)], batch_size=2), _batches(m, [np.bool_(True)], batch_size=1))


@dscen
def collate_tensors(m):
    items = [m.tensor([1, 2]) + i for i in range(3)]
    return _batches(m, items, batch_size=2), _batches(m, [m.tensor(1.5), m.tensor(2.5)], batch_size=2)


@dscen
def collate_tensor_requires_grad(m):
    items = [m.ones(2, requires_grad=True) for _ in range(2)]
    return _batches(m, items, batch_size=2)


@dscen
def collate_mismatched_sizes(m):
    items = [m.ones(2), m.ones(3)]
    return msg(lambda: _batches(m, items, batch_size=2), text=True)


@dscen
def collate_mismatched_list_lengths(m):
    items = [[1, 2], [3]]
    return msg(lambda: _batches(m, items, batch_size=2), text=True)


@dscen
def collate_mismatched_numpy(m):
    items = [np.ones(2), np.ones(3)]
    return msg(lambda: _batches(m, items, batch_size=2))


@dscen
def collate_unsupported_type(m):
    return msg(lambda: _batches(m, [object(), object()], batch_size=2))


@dscen
def collate_none(m):
    return msg(lambda: _batches(m, [None, None], batch_size=2))


@dscen
def default_collate_direct(m):
    c = D(m).default_collate
    return (c([1, 2]), c([(1, "a"), (2, "b")]), c([{"x": m.zeros(2)}, {"x": m.ones(2)}]),
            c([np.zeros((2, 2)), np.ones((2, 2))]), c([1.0, 2]))


@dscen
def default_convert_direct(m):
    c = D(m).default_convert
    return c(np.arange(3)), c([np.float32(1.), np.array([1, 2])]), c({"a": np.ones(1)}), c(3), c("s")


@dscen
def default_collate_mixed_dtypes(m):
    c = D(m).default_collate
    return c([m.tensor([1.]), m.tensor([2.], dtype=m.float64)])


@dscen
def dataloader_drop_last_len(m):
    ds = D(m).TensorDataset(m.arange(10))
    a = D(m).DataLoader(ds, batch_size=3)
    b = D(m).DataLoader(ds, batch_size=3, drop_last=True)
    return len(a), len(b), list(a), list(b)


@dscen
def dataloader_batch_size_none(m):
    ds = D(m).TensorDataset(m.arange(3), m.arange(3) * 2.)
    dl = D(m).DataLoader(ds, batch_size=None)
    return len(dl), list(dl), _batches(m, [1, 2], batch_size=None), _batches(m, [np.ones(2)], batch_size=None)


@dscen
def dataloader_default_batch_size(m):
    ds = D(m).TensorDataset(m.arange(3))
    return list(D(m).DataLoader(ds)), D(m).DataLoader(ds).batch_size


@dscen
def dataloader_sampler_shuffle_exclusive(m):
    ds = D(m).TensorDataset(m.arange(4))
    return msg(lambda: D(m).DataLoader(ds, sampler=D(m).SequentialSampler(ds), shuffle=True))


@dscen
def dataloader_batch_sampler_exclusive(m):
    ds = D(m).TensorDataset(m.arange(4))
    bs = D(m).BatchSampler(D(m).SequentialSampler(ds), 2, False)
    return (msg(lambda: D(m).DataLoader(ds, batch_sampler=bs, batch_size=2)),
            msg(lambda: D(m).DataLoader(ds, batch_sampler=bs, shuffle=True)),
            msg(lambda: D(m).DataLoader(ds, batch_sampler=bs, drop_last=True)),
            msg(lambda: D(m).DataLoader(ds, batch_sampler=bs, sampler=D(m).SequentialSampler(ds))))


@dscen
def dataloader_batch_sampler(m):
    ds = D(m).TensorDataset(m.arange(5))
    bs = D(m).BatchSampler(D(m).SequentialSampler(ds), 2, False)
    dl = D(m).DataLoader(ds, batch_sampler=bs)
    bs2 = D(m).BatchSampler(range(5), 2, True)
    return len(dl), list(dl), list(bs2), len(bs2), dl.batch_size, dl.drop_last


@dscen
def dataloader_custom_sampler(m):
    ds = D(m).TensorDataset(m.arange(5))
    return list(D(m).DataLoader(ds, sampler=[4, 0, 2], batch_size=2))


@dscen
def dataloader_batch_size_none_drop_last(m):
    ds = D(m).TensorDataset(m.arange(4))
    return msg(lambda: D(m).DataLoader(ds, batch_size=None, drop_last=True))


@dscen
def dataloader_bad_batch_size(m):
    ds = D(m).TensorDataset(m.arange(4))
    return msg(lambda: D(m).DataLoader(ds, batch_size=0)), msg(lambda: D(m).DataLoader(ds, batch_size=-1))


@dscen
def dataloader_bad_num_workers(m):
    ds = D(m).TensorDataset(m.arange(4))
    return msg(lambda: D(m).DataLoader(ds, num_workers=-1))


@dscen
def batch_sampler_errors(m):
    B = D(m).BatchSampler
    return (msg(lambda: B(range(3), 0, False)), msg(lambda: B(range(3), 2, "no")),
            msg(lambda: B(range(3), 2.0, False)))


def _iter_ds(m, n):
    class It(D(m).IterableDataset):
        def __iter__(self):
            return iter(range(n))
    return It()


def _iter_ds_len(m, n, k):
    class It(D(m).IterableDataset):
        def __iter__(self):
            return iter(range(n))

        def __len__(self):
            return k
    return It()


@dscen
def iterable_len(m):
    dl = D(m).DataLoader(_iter_ds(m, 5), batch_size=2)
    return msg(lambda: len(dl)), list(dl)


@dscen
def iterable_len_defined(m):
    dl = D(m).DataLoader(_iter_ds_len(m, 5, 5), batch_size=2)
    dl2 = D(m).DataLoader(_iter_ds_len(m, 5, 5), batch_size=2, drop_last=True)
    return len(dl), list(dl), len(dl2), list(dl2)


@dscen
def iterable_len_too_short(m):
    dl = D(m).DataLoader(_iter_ds_len(m, 5, 1), batch_size=2)
    return list(dl)


@dscen
def iterable_shuffle_error(m):
    return msg(lambda: D(m).DataLoader(_iter_ds(m, 5), shuffle=True))


@dscen
def iterable_sampler_error(m):
    return msg(lambda: D(m).DataLoader(_iter_ds(m, 5), sampler=[0, 1]))


@dscen
def iterable_batch_none(m):
    return list(D(m).DataLoader(_iter_ds(m, 3), batch_size=None))


@dscen
def random_split_fractions(m):
    ds = D(m).TensorDataset(m.arange(10))
    parts = D(m).random_split(ds, [0.3, 0.3, 0.4])
    parts2 = D(m).random_split(range(5), [0.5, 0.5])
    parts3 = D(m).random_split(range(7), [0.1, 0.2, 0.7])
    return ([len(p) for p in parts], [type(p).__name__ for p in parts], [len(p) for p in parts2],
            [len(p) for p in parts3], sorted(int(v[0]) for p in parts for v in p))


@dscen
def random_split_errors(m):
    rs = D(m).random_split
    return (msg(lambda: rs(range(5), [2, 2])), msg(lambda: rs(range(5), [0.5, 0.6])),
            msg(lambda: rs(range(5), [1.5, -0.5])), [len(p) for p in rs(range(5), [5, 0])])


@dscen
def random_split_generator(m):
    g = m.Generator().manual_seed(0)
    return [len(p) for p in D(m).random_split(range(6), [2, 4], generator=g)]


@dscen
def subset_ops(m):
    ds = D(m).TensorDataset(m.arange(10) * 2)
    sub = D(m).Subset(ds, [5, 1, 7])
    sub2 = D(m).Subset(sub, [2, 0])
    return (len(sub), sub[0], sub[-1], sub2[0], [int(i) for i in sub.indices], msg(lambda: sub[3]),
            list(D(m).DataLoader(sub, batch_size=2)))


@dscen
def subset_indices_type(m):
    return D(m).Subset(list(range(5)), [3, 1]).indices


@dscen
def subset_getitems(m):
    ds = D(m).TensorDataset(m.arange(10) * 2)
    return D(m).Subset(ds, [5, 1, 7])[[0, 2]]


@dscen
def concat_indexing(m):
    a = D(m).TensorDataset(m.arange(3))
    b = D(m).TensorDataset(m.arange(10, 12))
    c = D(m).ConcatDataset([a, b])
    return (len(c), c[0], c[3], c[-1], c[-5], msg(lambda: c[-6]), msg(lambda: c[5]), c.cumulative_sizes,
            len(a + b), (a + b)[4])


@dscen
def concat_errors(m):
    return (msg(lambda: D(m).ConcatDataset([])), msg(lambda: D(m).ConcatDataset([_iter_ds(m, 3)])))


@dscen
def concat_list_datasets(m):
    c = D(m).ConcatDataset([[1, 2], [3]])
    return len(c), c[2], c[-3]


@dscen
def tensordataset_errors(m):
    T = D(m).TensorDataset
    return (msg(lambda: T(m.ones(3), m.ones(4))), msg(lambda: T()), len(T(m.ones(3), m.ones(3, 2))),
            T(m.arange(3), m.ones(3, 2))[1], T(m.arange(3))[-1], msg(lambda: T(m.arange(3))[3]))


@dscen
def tensordataset_non_tensor(m):
    return D(m).TensorDataset([1, 2, 3])


@dscen
def tensordataset_fancy_index(m):
    ds = D(m).TensorDataset(m.arange(5), m.arange(5) * 2)
    return ds[1:3], ds[m.tensor([0, 4])]


@dscen
def weighted_sampler_errors(m):
    W = D(m).WeightedRandomSampler
    return (msg(lambda: list(W([1., 1.], 3, replacement=False))), msg(lambda: W([1., 1.], 0)),
            msg(lambda: W([1., 1.], 2, replacement="x")), msg(lambda: W([1., 1.], 2.5)),
            msg(lambda: list(W([0., 0.], 2))), msg(lambda: list(W([-1., 1.], 2))))


@dscen
def weighted_sampler_no_replacement(m):
    W = D(m).WeightedRandomSampler
    s = W([1., 0., 2., 3.], 3, replacement=False)
    out = list(s)
    return len(s), len(out), len(set(out)), 1 not in out, type(out[0]).__name__


@dscen
def weighted_sampler_2d_weights(m):
    return list(D(m).WeightedRandomSampler(m.ones(2, 2), 2))


@dscen
def samplers_basic(m):
    ds = list(range(5))
    rs = D(m).RandomSampler(ds)
    rs2 = D(m).RandomSampler(ds, replacement=True, num_samples=8)
    srs = D(m).SubsetRandomSampler([3, 1, 4])
    return (list(D(m).SequentialSampler(ds)), len(rs), sorted(rs), len(rs2), len(list(rs2)), sorted(srs), len(srs),
            type(next(iter(rs))).__name__, msg(lambda: D(m).RandomSampler(ds, num_samples=0)),
            msg(lambda: D(m).RandomSampler(ds, replacement="y")))


@dscen
def random_sampler_num_samples_no_replacement(m):
    rs = D(m).RandomSampler(list(range(3)), num_samples=7)
    out = list(rs)
    return len(rs), len(out), sorted(collections.Counter(out).values())


@dscen
def dataloader_shuffle_covers(m):
    ds = D(m).TensorDataset(m.arange(7))
    dl = D(m).DataLoader(ds, batch_size=3, shuffle=True)
    out = list(dl)
    return len(out), [tuple(b[0].shape) for b in out], sorted(int(v) for b in out for v in b[0])


@dscen
def dataloader_collate_fn_and_attrs(m):
    ds = D(m).TensorDataset(m.arange(4))
    dl = D(m).DataLoader(ds, batch_size=2, collate_fn=lambda b: len(b))
    return list(dl), dl.batch_size, dl.drop_last, dl.num_workers, type(dl.sampler).__name__, \
        type(dl.batch_sampler).__name__, dl.dataset is ds


@dscen
def dataloader_dataset_len_iter_twice(m):
    ds = D(m).TensorDataset(m.arange(4))
    dl = D(m).DataLoader(ds, batch_size=3)
    return list(dl), list(dl), len(list(iter(dl)))


@dscen
def dataset_add_and_base(m):
    class DS(D(m).Dataset):
        def __getitem__(self, i):
            return i

        def __len__(self):
            return 2
    c = DS() + DS()
    return type(c).__name__, len(c), c[3], msg(lambda: D(m).Dataset()[0])


@dscen
def stack_dataset(m):
    s = D(m).StackDataset(m.arange(3), [10, 11, 12])
    s2 = D(m).StackDataset(a=m.arange(3), b=[10, 11, 12])
    return len(s), s[1], s2[2], msg(lambda: D(m).StackDataset(m.arange(3), [1]))


@dscen
def chain_dataset(m):
    c = D(m).ChainDataset([_iter_ds(m, 2), _iter_ds(m, 3)])
    return list(c), msg(lambda: len(c))


XFAIL = {
    # silent
    # gg computes where torch raises
    "load_state_dict_numpy": "load_state_dict takes NumPy arrays (torch RuntimeError: expected torch.Tensor)",
    "full_backward_hook_inplace_output": "in-place op on a full-backward-hooked module's output: torch RuntimeError",
    "module_deepcopy_nonleaf_attr": "deepcopy of a module holding a non-leaf tensor attribute (torch RuntimeError)",
    # gg raises where torch computes
    "backward_twice_nothing_saved": "second backward through a graph with no saved tensors raises (torch accumulates)",
    "saved_tensors_hooks": "gg.autograd.graph (saved_tensors_hooks) missing (AttributeError)",
    # warnings / text / types
    "tensordataset_non_tensor": "TensorDataset([1, 2]): gg TypeError, torch AttributeError",
}


def _params(names):
    out = []
    for n in names:
        if n in XFAIL:
            out.append(pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=XFAIL[n])))
        else:
            out.append(n)
    return out


def test_scenario(name):
    compare(SCEN[name])


def pytest_generate_tests(metafunc):  # pragma: no cover - pytest hook defined at module level
    if "name" in metafunc.fixturenames:
        metafunc.parametrize("name", _params(list(SCEN)))
