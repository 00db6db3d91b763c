"""gg.utils.checkpoint (torch.utils.checkpoint, reentrant variant): gradients equal the unchecked model's."""
import contextlib
import warnings

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.utils.checkpoint import checkpoint, checkpoint_sequential

F64 = gg.float64


def _model(seed=0, p=0.0):
    gg.manual_seed(seed)
    layers = [gg.nn.Linear(4, 5, dtype=F64), gg.nn.Tanh()]
    if p:
        layers.append(gg.nn.Dropout(p))
    layers += [gg.nn.Linear(5, 5, dtype=F64), gg.nn.Tanh(), gg.nn.Linear(5, 3, dtype=F64)]
    return gg.nn.Sequential(*layers)


def _x(requires_grad=True):
    return gg.tensor(np.random.default_rng(1).standard_normal((6, 4)), dtype=F64, requires_grad=requires_grad)


def _grads(m, x):
    return [x.grad.numpy().copy()] + [p.grad.numpy().copy() for p in m.parameters()]


def _run(run, p=0.0):
    """Gradients of input and parameters of the same model and input, with ``run(model, x)`` as the forward."""
    m, x = _model(p=p), _x()
    gg.manual_seed(7)
    out = run(m, x)
    (out * out).sum().backward()
    return out.detach().numpy(), _grads(m, x)


def _same(a, b):
    assert np.array_equal(a[0], b[0])
    for u, v in zip(a[1], b[1]):
        np.testing.assert_allclose(u, v, rtol=0, atol=1e-12)


def test_grads_equal_unchecked():
    plain = _run(lambda m, x: m(x))
    ck = _run(lambda m, x: m[4](checkpoint(lambda t: m[3](m[2](m[1](m[0](t)))), x, use_reentrant=True)))
    _same(plain, ck)


def test_param_grads_accumulate():
    m, x = _model(), _x()
    m(x).sum().backward()
    once = _grads(m, x)
    checkpoint(m, x, use_reentrant=True).sum().backward()
    for a, b in zip(once, _grads(m, x)):
        np.testing.assert_allclose(b, 2 * a, rtol=0, atol=1e-12)


def test_dropout_same_mask_with_preserve_rng_state():
    plain = _run(lambda m, x: m(x), p=0.5)
    ck = _run(lambda m, x: checkpoint(m, x, use_reentrant=True), p=0.5)
    _same(plain, ck)
    # NOTE: the recomputation leaves the generator where the forward left it
    gg.manual_seed(3)
    y = checkpoint(lambda t: gg.nn.functional.dropout(t, 0.5), _x(), use_reentrant=True)
    after = gg.get_rng_state()
    y.sum().backward()
    assert np.array_equal(gg.get_rng_state().numpy(), after.numpy())


def test_dropout_without_preserve_rng_state_differs():
    plain = _run(lambda m, x: m(x), p=0.5)
    ck = _run(lambda m, x: checkpoint(m, x, use_reentrant=True, preserve_rng_state=False), p=0.5)
    assert np.array_equal(plain[0], ck[0])  # the forward is the same draw
    assert not np.array_equal(plain[1][0], ck[1][0])  # the recomputation drew another mask


def test_autograd_grad_and_backward_inputs_refused():
    x = _x()
    msg = "When use_reentrant=True, torch.utils.checkpoint is incompatible with .grad()"
    with pytest.raises(RuntimeError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        gg.autograd.grad(checkpoint(lambda t: t.sin(), x, use_reentrant=True).sum(), x)
    with pytest.raises(RuntimeError, match="passing an `inputs` parameter to .backward"):
        checkpoint(lambda t: t.sin(), x, use_reentrant=True).sum().backward(inputs=[x])
    y = checkpoint(lambda t: t.sin(), x, use_reentrant=True)  # a full backward still works after the errors
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(x.detach().numpy()), rtol=0, atol=1e-15)


def test_warnings_and_errors():
    x = _x()
    with pytest.warns(UserWarning, match="the use_reentrant parameter should be passed explicitly"):
        y = checkpoint(lambda t: t * 2, x)
    assert y.requires_grad
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True. Gradients will be None"):
        y = checkpoint(gg.nn.Linear(4, 2, dtype=F64), _x(False), use_reentrant=True)
    assert not y.requires_grad  # NOTE: as PyTorch: the parameters inside do not count
    with pytest.raises(ValueError, match="Unexpected keyword arguments: a,b"):
        checkpoint(lambda t, a=0, b=0: t, x, use_reentrant=True, a=1, b=2)
    with pytest.raises(ValueError, match="Passing `context_fn` or `debug` is only supported"):
        checkpoint(lambda t: t, x, use_reentrant=True, debug=True)
    y = checkpoint(lambda t: t.detach() * 2, x, use_reentrant=True)
    with pytest.raises(RuntimeError, match="none of output has requires_grad=True"):
        y.sum().backward()
    with gg.no_grad():
        assert not checkpoint(lambda t: t * 2, x, use_reentrant=True).requires_grad


def test_non_tensor_args_and_tuple_outputs():
    x = _x()
    w = gg.tensor(np.arange(4.0), dtype=F64, requires_grad=True)
    out = checkpoint(lambda t, k, v, s: (t * v * k, s, (t * v).sum()), x, 3.0, w, None, use_reentrant=True)
    assert out[1] is None and len(out) == 3
    assert out[0].grad_fn.name == "CheckpointFunction"
    (out[0].sum() + 2 * out[2]).backward()
    xn, wn = x.detach().numpy(), w.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(5 * wn, xn.shape), rtol=0, atol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), 5 * xn.sum(0), rtol=0, atol=1e-12)
    x.grad = None
    a, b = checkpoint(lambda t: (t.sin(), t.cos()), x, use_reentrant=True)
    a.sum().backward()  # an output that got no gradient gets zeros
    np.testing.assert_allclose(x.grad.numpy(), np.cos(xn), rtol=0, atol=1e-15)


def test_inplace_input_after_forward_raises():
    a = _x() * 1
    y = checkpoint(lambda t: t.sin(), a, use_reentrant=True)
    with gg.no_grad():
        a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_create_graph_and_retain_graph():
    x = _x()
    y = checkpoint(lambda t: t.sin(), x, use_reentrant=True)
    s = y.sum()
    s.backward(retain_graph=True)
    s.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos(x.detach().numpy()), rtol=0, atol=1e-15)
    x.grad = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        checkpoint(lambda t: t.sin(), x, use_reentrant=True).sum().backward(create_graph=True)
    assert not x.grad.requires_grad  # NOTE: as PyTorch: the nested backward records no graph


@pytest.mark.parametrize("reentrant", [True, False])
@pytest.mark.parametrize("segments", [1, 2, 3, -1])
def test_checkpoint_sequential(segments, reentrant):
    plain = _run(lambda m, x: m(x), p=0.5)
    ck = _run(lambda m, x: checkpoint_sequential(m, segments, x, use_reentrant=reentrant), p=0.5)
    _same(plain, ck)


def test_checkpoint_sequential_errors_and_list():
    m, x = _model(), _x()
    with pytest.warns(UserWarning, match="checkpoint_sequential: the use_reentrant parameter should be passed"):
        checkpoint_sequential(m, 2, x)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: foo"):
        checkpoint_sequential(m, 2, x, use_reentrant=True, foo=1)
    with pytest.raises(ZeroDivisionError):
        checkpoint_sequential(m, 0, x, use_reentrant=True)
    with pytest.raises(ValueError):
        checkpoint_sequential(m, 9, x, use_reentrant=True)
    y = checkpoint_sequential(list(m), 2, x, use_reentrant=True)
    np.testing.assert_allclose(y.detach().numpy(), m(x).detach().numpy(), rtol=0, atol=0)


def test_against_torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    m, x = _model(p=0.0), _x()
    tm = torch.nn.Sequential(*[torch.nn.Linear(a.in_features, a.out_features, dtype=torch.float64)
                               if isinstance(a, gg.nn.Linear) else torch.nn.Tanh() for a in m])
    for a, b in zip(m.parameters(), tm.parameters()):
        b.data.copy_(torch.from_numpy(a.detach().numpy()))
    tx = torch.from_numpy(x.detach().numpy()).requires_grad_()
    y = checkpoint_sequential(m, 2, x, use_reentrant=True)
    ty = torch.utils.checkpoint.checkpoint_sequential(tm, 2, tx, use_reentrant=True)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=0, atol=1e-12)
    for a, b in zip(m.parameters(), tm.parameters()):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=0, atol=1e-12)
    # the same message
    with pytest.raises(RuntimeError) as e:
        gg.autograd.grad(checkpoint(lambda t: t.sin(), x, use_reentrant=True).sum(), x)
    with pytest.raises(RuntimeError) as te:
        torch.autograd.grad(torch.utils.checkpoint.checkpoint(lambda t: t.sin(), tx, use_reentrant=True).sum(), tx)
    assert str(e.value) == str(te.value)
    for ours, theirs in ((lambda: checkpoint(lambda t: t, x), lambda: torch.utils.checkpoint.checkpoint(
            lambda t: t, tx)), (lambda: checkpoint(lambda t: t, _x(False), use_reentrant=True),
                                lambda: torch.utils.checkpoint.checkpoint(lambda t: t, tx.detach(), use_reentrant=True))):
        with warnings.catch_warnings(record=True) as w1:
            warnings.simplefilter("always")
            ours()
        with warnings.catch_warnings(record=True) as w2:
            warnings.simplefilter("always")
            theirs()
        assert [str(a.message) for a in w1] == [str(a.message) for a in w2 if "checkpoint" in str(a.message)
                                                 or "Gradients will be None" in str(a.message)]


def test_recompute_under_forward_autocast():
    pytest.importorskip("ml_dtypes")
    gg.manual_seed(0)
    lin, x = gg.nn.Linear(4, 3), gg.randn(2, 4, requires_grad=True)
    got = []
    for run in (lin, lambda t: checkpoint(lin, t, use_reentrant=True)):
        lin.weight.grad = x.grad = None
        with gg.autocast("cpu"):
            y = run(x)
        assert y.dtype == gg.bfloat16
        y.float().sum().backward()  # NOTE: outside autocast: the recomputation re-enters the forward's state
        got.append((lin.weight.grad.numpy().copy(), x.grad.numpy().copy()))
    for a, b in zip(*got):
        assert np.array_equal(a, b)


# -- use_reentrant=False: one node whose inputs include the outside tensors the function reads --------------------
def test_nonreentrant_grads_equal_unchecked():
    for p in (0.0, 0.5):
        plain = _run(lambda m, x: m(x), p=p)
        _same(plain, _run(lambda m, x: checkpoint(m, x, use_reentrant=False), p=p))
    _same(_run(lambda m, x: m(x)), _run(lambda m, x: m[4](checkpoint(lambda t: m[3](m[2](m[1](m[0](t)))), x,
                                                   use_reentrant=False))))


def test_nonreentrant_autograd_grad_and_backward_inputs():
    m, x = _model(), _x()
    ps = list(m.parameters())
    want = gg.autograd.grad((m(x) ** 2).sum(), [x] + ps)
    y = checkpoint(m, x, use_reentrant=False)
    assert y.grad_fn.name == "Checkpoint"
    got = gg.autograd.grad((y ** 2).sum(), [x] + ps)
    for a, b in zip(want, got):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-12)
    checkpoint(m, x, use_reentrant=False).sum().backward(inputs=[ps[0]])
    assert x.grad is None and ps[1].grad is None and ps[0].grad is not None
    # parameters alone make the output require grad (their gradient is reachable)
    y = checkpoint(m, _x(False), use_reentrant=False)
    assert y.requires_grad
    assert gg.autograd.grad(y.sum(), ps[-1])[0].shape == ps[-1].shape


def test_nonreentrant_double_backward_nested_and_captured():
    x = gg.tensor([0.1, 0.2, 0.3], dtype=F64, requires_grad=True)
    w = gg.tensor([1.0, 2.0, 3.0], dtype=F64, requires_grad=True)

    def f(t, h):  # h: a non-leaf argument; w: a captured leaf; a checkpoint inside a checkpoint
        return checkpoint(lambda u: (u * h * w).sin(), t, use_reentrant=False).exp()
    res = []
    for ck in (False, True):
        h = w * 2
        y = checkpoint(f, x, h, use_reentrant=False) if ck else f(x, h)
        g = gg.autograd.grad(y.sum(), [x, w], create_graph=True)
        res.append([t.detach().numpy() for t in g + gg.autograd.grad(g[0].sum() + g[1].sum(), [x, w])])
    for a, b in zip(*res):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)


def test_nonreentrant_outputs_kwargs_and_checks():
    x = _x()
    out = checkpoint(lambda t, k=1.0: (t.sin() * k, t.detach(), 3, t), x, use_reentrant=False, k=2.0)
    assert out[0].requires_grad and not out[1].requires_grad and out[2] == 3 and out[3] is x
    out[0].sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos(x.detach().numpy()), rtol=0, atol=1e-15)
    with gg.no_grad():
        assert not checkpoint(lambda t: t * 2, x, use_reentrant=False).requires_grad
    with pytest.raises(ValueError, match=r"determinism_check should be one of \['default', 'none'\], but got bogus"):
        checkpoint(lambda t: t, x, use_reentrant=False, determinism_check="bogus")
    calls = []

    def shrinking(t):
        calls.append(1)
        return t[:4 - len(calls)].sin()
    y = checkpoint(shrinking, x, use_reentrant=False)
    with pytest.raises(gg.utils.checkpoint.CheckpointError, match="Recomputed values for the following tensors"):
        y.sum().backward()
    a = _x() * 1
    y = checkpoint(lambda t: t.sin(), a, use_reentrant=False)
    with gg.no_grad():
        a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    with pytest.raises(ValueError, match="debug=True is incompatible with non-default context_fn"):
        checkpoint(lambda t: t, x, use_reentrant=False, debug=True, context_fn=lambda: (None, None))


def test_nonreentrant_context_fn():
    seen = []

    @contextlib.contextmanager
    def tag(name):
        seen.append(name)
        yield
    x = _x()
    y = checkpoint(lambda t: t.exp(), x, use_reentrant=False, context_fn=lambda: (tag("fwd"), tag("re")))
    assert seen == ["fwd"]
    y.sum().backward()
    assert seen == ["fwd", "re"]


def test_nonreentrant_against_torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    x = gg.tensor([0.1, 0.2], dtype=F64, requires_grad=True)
    tx = torch.tensor([0.1, 0.2], dtype=torch.float64, requires_grad=True)
    w, tw = gg.tensor([1.5, -2.0], dtype=F64, requires_grad=True), torch.tensor([1.5, -2.0], dtype=torch.float64,
                                                                                 requires_grad=True)
    y = checkpoint(lambda t: (t * w).sin().exp(), x, use_reentrant=False)
    ty = torch.utils.checkpoint.checkpoint(lambda t: (t * tw).sin().exp(), tx, use_reentrant=False)
    g = gg.autograd.grad(y.sum(), [x, w], create_graph=True)
    tg = torch.autograd.grad(ty.sum(), [tx, tw], create_graph=True)
    gg2 = gg.autograd.grad(g[0].sum(), [x, w])
    tg2 = torch.autograd.grad(tg[0].sum(), [tx, tw])
    for a, b in zip(g + gg2, tg + tg2):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=0, atol=1e-12)


def test_reentrant_inside_nonreentrant():
    x = gg.tensor([0.1, 0.2], dtype=F64, requires_grad=True)

    def f(t):
        return checkpoint(lambda u: u.sin(), t, use_reentrant=True).exp()
    checkpoint(f, x, use_reentrant=False).sum().backward()  # the outer sweep is a full backward(): valid
    xn = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(xn) * np.exp(np.sin(xn)), rtol=0, atol=1e-15)
    with pytest.raises(RuntimeError, match="When use_reentrant=True"):  # as PyTorch: the outer one is .grad()
        gg.autograd.grad(checkpoint(f, x, use_reentrant=False).sum(), x)
