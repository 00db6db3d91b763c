"""gg.autograd.Function: PyTorch's ctx-style custom functions (numbers by hand; also against torch if installed)."""
import numpy as np
import pytest

import gpugrad as gg
from conftest import to_np
from gpugrad.autograd.function import FunctionCtx, once_differentiable

F64 = gg.float64


def _defs(base):
    """The same source defines custom functions for gpugrad and for torch (the APIs match)."""
    class Cube(base):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * g * x * x

    class SumProd(base):  # two outputs
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a + b, a * b

        @staticmethod
        def backward(ctx, gs, gp):
            a, b = ctx.saved_tensors
            return gs + gp * b, gs + gp * a
    return Cube, SumProd


Cube, SumProd = _defs(gg.autograd.Function)


def _fn(fwd, bwd, name="Bad"):
    return type(name, (gg.autograd.Function,), {"forward": staticmethod(fwd), "backward": staticmethod(bwd)})


def t64(v, device="cpu", rg=True):
    return gg.tensor(v, dtype=F64, device=device, requires_grad=rg)


def test_ctx_style_values_grads_repr(device):
    x = t64([1.0, 2.0, -3.0], device)
    y = Cube.apply(x)
    assert np.allclose(to_np(y), [1, 8, -27])
    assert repr(y.grad_fn) == "<CubeBackward>" and y.grad_fn.name == "Cube" and y.requires_grad
    y.sum().backward()
    assert np.allclose(to_np(x.grad), [3, 12, 27])
    assert gg.autograd.gradcheck(Cube.apply, (t64([0.5, -1.5], device),))
    y = Cube.apply(t64([2.0], device, rg=False))  # no input requires grad, or no_grad: no graph
    assert not y.requires_grad and y.grad_fn is None and np.allclose(to_np(y), [8])
    with gg.no_grad():
        y = Cube.apply(x)
    assert not y.requires_grad and y.grad_fn is None


def test_non_tensor_args_kwargs_needs_input_grad_and_ctx_attributes():
    seen = []

    class ScaledMul(gg.autograd.Function):  # a non-tensor argument in the middle, a default kwarg at the end
        @staticmethod
        def forward(ctx, a, alpha, b, shift=0.0):
            seen.append((ctx.needs_input_grad, gg.is_grad_enabled(), isinstance(ctx, FunctionCtx)))
            ctx.save_for_backward(a, b)
            ctx.alpha = alpha
            return alpha * a * b + shift

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g * ctx.alpha * b, None, g * ctx.alpha * a, None

    a, b = t64([1.0, 2.0]), t64([3.0, 4.0], rg=False)
    y = ScaledMul.apply(a, 2.0, b=b, shift=1.0)  # keyword arguments count as forward arguments (as PyTorch)
    assert seen == [((True, False, False, False), False, True)]  # forward runs under no_grad
    assert np.allclose(to_np(y), [7, 17]) and y.grad_fn.alpha == 2.0
    y.sum().backward()
    assert np.allclose(to_np(a.grad), [6, 8]) and b.grad is None
    assert gg.autograd.gradcheck(lambda a, b: ScaledMul.apply(a, 0.5, b), (t64([1.0, -2.0]), t64([0.3, 0.7])))


def test_setup_context_style():
    class Scale(gg.autograd.Function):
        @staticmethod
        def forward(x, k=3.0):
            return x * k

        @staticmethod
        def setup_context(ctx, inputs, output):
            assert len(inputs) == 2 and not gg.is_grad_enabled()  # defaults filled in, as PyTorch
            ctx.k = inputs[1]

        @staticmethod
        def backward(ctx, g):
            return g * ctx.k, None

    x = t64([1.0, 2.0])
    assert np.allclose(to_np(Scale.apply(x)), [3, 6])
    Scale.apply(x, k=5.0).sum().backward()
    assert np.allclose(to_np(x.grad), [5, 5])


def test_multiple_outputs_and_set_materialize_grads(device):
    a, b = t64([1.0, 2.0], device), t64([3.0, 4.0], device)
    s, p = SumProd.apply(a, b)
    assert np.allclose(to_np(s), [4, 6]) and np.allclose(to_np(p), [3, 8])
    assert s.requires_grad and p.requires_grad and repr(p.grad_fn) == "<SumProdBackward>"
    (s.sum() + 10 * p.sum()).backward(retain_graph=True)
    assert np.allclose(to_np(a.grad), [31, 41]) and np.allclose(to_np(b.grad), [11, 21])
    ga, gb = gg.autograd.grad(p.sum(), (a, b))  # s got no gradient: backward sees zeros for it
    assert np.allclose(to_np(ga), [3, 4]) and np.allclose(to_np(gb), [1, 2])
    assert gg.autograd.gradcheck(lambda a, b: SumProd.apply(a, b), (t64([0.5, -1.0]), t64([2.0, 0.25])))
    got = []

    def fwd(ctx, x):
        ctx.set_materialize_grads(False)
        return x * 2, x * 3
    x = t64([1.0, 1.0])
    _fn(fwd, lambda ctx, g1, g2: got.append(g2) or g1 * 2).apply(x)[0].sum().backward()
    assert got == [None] and np.allclose(to_np(x.grad), [2, 2])  # set_materialize_grads(False): None, not zeros


def test_non_differentiable_non_tensor_and_integer_outputs():
    got = []

    def fwd(ctx, x):
        m, i = x * 2, x.argmax()
        ctx.mark_non_differentiable(m)
        return x * 3, m, i, "tag"

    def bwd(ctx, g, gm, gi, gtag):
        got.append((to_np(gm).tolist(), gi.item(), gtag))
        return g * 3
    x = t64([1.0, 5.0])
    y, m, i, tag = _fn(fwd, bwd).apply(x)
    assert not m.requires_grad and m.grad_fn is None and not i.requires_grad and tag == "tag" and int(i) == 1
    y.sum().backward()
    assert got == [([0.0, 0.0], 0, None)] and np.allclose(to_np(x.grad), [3, 3])


def test_input_returned_unchanged():
    got = []
    pass_a = _fn(lambda ctx, a, b: (a, b * 2), lambda ctx, ga, gb: got.append(to_np(ga).tolist()) or (ga * 10, gb * 2),
                 "PassA")
    a = t64([1.0, 2.0])
    y, z = pass_a.apply(a, a)
    assert y is not a and repr(y.grad_fn) == "<PassABackward>" and y._ver is a._ver and a.grad_fn is None
    z.sum().backward()
    assert got == [[0.0, 0.0]] and np.allclose(to_np(a.grad), [2, 2])  # y got no gradient: zeros
    with gg.no_grad():
        y, _ = pass_a.apply(a, a)
    assert y is not a and not y.requires_grad and y._ver is a._ver


def test_wrong_gradients_raise_pytorch_errors():
    x = t64([1.0, 2.0])
    fwd = lambda ctx, x, n: x * n  # noqa: E731
    with pytest.raises(RuntimeError, match=r"function BadBackward returned an incorrect number of gradients "
                                           r"\(expected 2, got 1\)"):
        _fn(fwd, lambda ctx, g: g).apply(x, 3).sum().backward()
    with pytest.raises(RuntimeError, match="gradient different than None at position 2, but the corresponding "
                                           "forward input was not a Tensor"):
        _fn(fwd, lambda ctx, g: (g, g)).apply(x, 3).sum().backward()
    with pytest.raises(RuntimeError, match=r"invalid gradient at index 0 - got \[1\] but expected shape compatible "
                                           r"with \[2\] \(forward argument 0, 'x'\)"):
        _fn(fwd, lambda ctx, g: (g[:1], None)).apply(x, 3).sum().backward()
    with pytest.raises(RuntimeError, match="returned int as the gradient of forward argument 0"):
        _fn(fwd, lambda ctx, g: (3, None)).apply(x, 3).sum().backward()
    _fn(fwd, lambda ctx, g: (gg.ones(4, 2, dtype=F64), None, None)).apply(x, 3).sum().backward()
    assert np.allclose(to_np(x.grad), [4, 4])  # a broadcast gradient is summed down; extra trailing Nones are fine
    with pytest.raises(TypeError, match="can only save Tensors or None, but argument 1 is of type int"):
        _fn(lambda ctx, x: ctx.save_for_backward(x, 3) or x * 2, lambda ctx, g: g).apply(t64([1.0]))


def test_saved_tensors_are_version_checked_and_outputs_keep_their_graph():
    x = t64([1.0, 2.0])
    y = Cube.apply(x)
    with gg.no_grad():
        x.mul_(2)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: \[float64 \[2\]\], which is saved "
                                           r"tensor 0 of CubeBackward, is at version 1; expected version 0 instead"):
        y.sum().backward()

    def fwd(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)  # an output: saved_tensors gives the output itself, with its grad_fn
        return y
    exp = _fn(fwd, lambda ctx, g: g * ctx.saved_tensors[0], "Exp")
    x = t64([0.0, 1.0])
    (g1,) = gg.autograd.grad(exp.apply(x).sum(), x, create_graph=True)
    (g2,) = gg.autograd.grad(g1.sum(), x)
    assert np.allclose(to_np(g2), [1, np.e])  # second order flows through the saved output
    y = exp.apply(x)
    y.add_(1)  # bumps the output's version: its saved copy is stale
    with pytest.raises(RuntimeError, match="saved tensor 0 of ExpBackward, is at version 1; expected version 0"):
        y.sum().backward()


def test_retain_graph_and_freed_graph():
    x = t64([1.0, 2.0])
    y = Cube.apply(x)
    y.sum().backward(retain_graph=True)
    y.sum().backward()
    assert np.allclose(to_np(x.grad), [6, 24])
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.sum().backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.grad_fn.saved_tensors  # noqa: B018


def test_double_backward_cube_is_6x(device):
    x = t64([1.0, 2.0, -0.5], device)
    (gx,) = gg.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    assert np.allclose(to_np(gx), [3, 12, 0.75])
    (ggx,) = gg.autograd.grad(gx.sum(), x)
    assert np.allclose(to_np(ggx), [6, 12, -3])
    assert gg.autograd.gradgradcheck(Cube.apply, (t64([0.7, -1.2]),))
    assert gg.autograd.gradgradcheck(lambda a, b: SumProd.apply(a, b), (t64([0.5, -1.0]), t64([2.0, 0.25])))


def test_once_differentiable():
    modes = []

    class OnceCube(Cube):
        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            modes.append(gg.is_grad_enabled())
            (x,) = ctx.saved_tensors
            return 3 * g * x * x

    x = t64([1.0, 2.0])
    OnceCube.apply(x).sum().backward()
    assert np.allclose(to_np(x.grad), [3, 12])
    (gx,) = gg.autograd.grad(OnceCube.apply(x).sum(), x, create_graph=True)
    assert np.allclose(to_np(gx), [3, 12]) and modes == [False, False]  # runs under no_grad
    # NOTE: as PyTorch, a once_differentiable backward under create_graph with a constant grad_output gives a
    # result that does not require grad; with a grad_output that requires grad, differentiating again raises
    assert not gx.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        gg.autograd.grad(gx.sum(), x)
    g_out = gg.ones(2, dtype=gg.float64, requires_grad=True)
    (gx,) = gg.autograd.grad(OnceCube.apply(x), x, g_out, create_graph=True)
    with pytest.raises(RuntimeError, match="trying to differentiate twice a function that was marked with "
                                           r"@once_differentiable \(OnceCube.backward\)"):
        gx.sum().backward()


def test_mark_dirty_in_place_forward():
    def fwd(ctx, x):
        x.mul_(2)
        ctx.mark_dirty(x)
        return x
    double_ = _fn(fwd, lambda ctx, g: g * 2, "Double_")
    a = t64([1.0, 2.0])
    z = a * 1
    q = z * 3  # recorded before the in-place call: must still see z's old history
    y = double_.apply(z)
    assert y is z and repr(z.grad_fn) == "<Double_Backward>" and z._version == 2  # mul_ + mark_dirty, as PyTorch
    assert np.allclose(to_np(z), [2, 4])
    (y.sum() + q.sum()).backward()
    assert np.allclose(to_np(a.grad), [5, 5])
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad was modified in place"):
        double_.apply(t64([1.0]))
    with pytest.raises(RuntimeError, match="marked dirty .* were not returned"):
        _fn(lambda ctx, x: ctx.mark_dirty(x) or x * 1, lambda ctx, g: g).apply(t64([1.0]) * 1)


def test_hooks_autograd_grad_and_anomaly():
    x = t64([1.0, 2.0])
    s, p = SumProd.apply(x, x)
    p.register_hook(lambda g: g * 10)
    (gx,) = gg.autograd.grad(p.sum(), x, retain_graph=True)
    assert np.allclose(to_np(gx), [20, 40])  # d(x*x)/dx = 2x, scaled by the hook
    bad = _fn(lambda ctx, x: x * 1, lambda ctx, g: g * float("nan"))
    with gg.autograd.detect_anomaly():
        y = bad.apply(x)
        with pytest.raises(RuntimeError, match=r"(?s)Function 'Bad' returned nan .*test_custom_function.py"):
            y.sum().backward()


def test_aborted_sweep_leaves_no_stale_output_gradient():
    x = t64([1.0, 2.0])
    s, p = SumProd.apply(x, x)

    def stop(g):
        raise ValueError("stop")
    h = s.register_hook(stop)
    with pytest.raises(ValueError, match="stop"):
        (s.sum() + p.sum()).backward(retain_graph=True)  # p's gradient was parked, then the sweep aborted
    h.remove()
    s.sum().backward()
    assert np.allclose(to_np(x.grad), [2, 2])  # only s's gradient: the parked one for p was not reused


def test_matches_torch():
    torch = pytest.importorskip("torch")
    TCube, TSumProd = _defs(torch.autograd.Function)
    v, w = [0.5, -1.25, 2.0], [1.5, 0.25, -1.0]
    tx, ty = (torch.tensor(u, dtype=torch.float64, requires_grad=True) for u in (v, w))
    x, y = t64(v), t64(w)
    res = []
    for lib, C, S, a, b in ((torch, TCube, TSumProd, tx, ty), (gg, Cube, SumProd, x, y)):
        (g,) = lib.autograd.grad(C.apply(a).sum(), a, create_graph=True)
        (g2,) = lib.autograd.grad((g * g).sum(), a)
        s, p = S.apply(a, b)
        ga, gb = lib.autograd.grad((2 * s + p * p).sum(), (a, b))
        res.append([np.asarray(to_np(t) if lib is gg else t.detach().numpy()) for t in (g, g2, ga, gb)])
    for mine, ref in zip(res[1], res[0]):
        assert np.allclose(mine, ref)
    a, b = np.array(v), np.array(w)
    assert np.allclose(res[1][1], 36 * a ** 3)  # d/dx (3x^2)^2 = 36 x^3
    assert np.allclose(res[1][2], 2 + 2 * a * b * b) and np.allclose(res[1][3], 2 + 2 * a * a * b)
