"""The normalisation layers on one Standardize node (ops.nnops): values, gradients and running statistics
against the core-op composite (torch-free) and PyTorch (when installed), float16 computed in float32,
double backward through the composite."""
import numpy as np
import pytest
from conftest import to_np

import gpugrad as gg
from gpugrad.autograd import gradcheck, gradgradcheck
from gpugrad.nn import functional as F
from gpugrad.ops.nnops import Standardize

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 6, 5, 3)) * 3 + 1.5
W, B = RNG.standard_normal(6), RNG.standard_normal(6)
CASES = {
    "layer_norm": (lambda m, x, w, b: m.layer_norm(x, (5, 3)), ()),
    "group_norm": (lambda m, x, w, b: m.group_norm(x, 3, w, b), (0, 2, 3)),
    "batch_norm": (lambda m, x, w, b: m.batch_norm(x, None, None, w, b, training=True), (0, 2, 3)),
    "instance_norm": (lambda m, x, w, b: m.instance_norm(x, weight=w, bias=b), (2, 3)),
}


def _composite(name, x, w, b):
    """The same normalisation written with core Tensor ops (the formula the fused node replaced)."""
    if name == "group_norm":
        g = x.reshape(4, 3, -1)
        xc = g - g.mean(2, keepdim=True)
        y = (xc * ((xc * xc).mean(2, keepdim=True) + 1e-5).rsqrt()).reshape(x.shape)
    else:
        axes = {"layer_norm": (2, 3), "batch_norm": (0, 2, 3), "instance_norm": (2, 3)}[name]
        xc = x - x.mean(axes, keepdim=True)
        y = xc * ((xc * xc).mean(axes, keepdim=True) + 1e-5).rsqrt()
    if name == "layer_norm":
        return y
    return y * w.reshape(1, 6, 1, 1) + b.reshape(1, 6, 1, 1)


@pytest.mark.parametrize("name", list(CASES))
def test_fused_norm_equals_the_composite(name, device):
    T = lambda a, rg=True: gg.tensor(a, device=device, requires_grad=rg)  # noqa: E731
    x, w, b = T(X), T(W), T(B)
    y = CASES[name][0](F, x, w, b)
    assert any(isinstance(n, Standardize) for n in _nodes(y))
    xc, wc, bc = T(X), T(W), T(B)
    yc = _composite(name, xc, wc, bc)
    np.testing.assert_allclose(to_np(y), to_np(yc), rtol=1e-12, atol=1e-12)
    g = gg.tensor(RNG.standard_normal(X.shape), device=device)
    y.backward(g)
    yc.backward(g)
    for a, c in ((x, xc), (w, wc), (b, bc)):
        if a.grad is not None or c.grad is not None:
            np.testing.assert_allclose(to_np(a.grad), to_np(c.grad), rtol=1e-10, atol=1e-12)


def _nodes(y):
    seen, todo = [], [y.grad_fn]
    while todo:
        n = todo.pop()
        if n is not None and n not in seen:
            seen.append(n)
            todo += [getattr(t, "grad_fn", None) for t in (n.inputs or ())]
    return seen


@pytest.mark.parametrize("name", list(CASES))
def test_fused_norm_gradcheck_and_double_backward(name):
    x = gg.tensor(X[:2, :6, :2, :2].copy() if name != "group_norm" else X[:4, :6, :2, :2].copy(), requires_grad=True)
    f = {"layer_norm": lambda t: F.layer_norm(t, (2, 2)),
         "group_norm": lambda t: F.group_norm(t, 3),
         "batch_norm": lambda t: F.batch_norm(t, None, None, training=True),
         "instance_norm": lambda t: F.instance_norm(t)}[name]
    assert gradcheck(f, (x,)) and gradgradcheck(f, (x,))


def test_running_statistics_and_float16():
    rm, rv = gg.zeros(6, dtype=gg.float64), gg.ones(6, dtype=gg.float64)
    x = gg.tensor(X)
    F.batch_norm(x, rm, rv, training=True, momentum=0.5)
    m = X.mean((0, 2, 3))
    v = X.var((0, 2, 3), ddof=1)
    np.testing.assert_allclose(rm.numpy(), 0.5 * m, rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), 0.5 + 0.5 * v, rtol=1e-12)
    # float16 input: computed in float32 and rounded once
    xh = gg.tensor(X.astype(np.float16), requires_grad=True)
    yh = F.layer_norm(xh, (5, 3))
    assert yh.dtype == gg.float16
    ref = F.layer_norm(gg.tensor(X.astype(np.float16).astype(np.float64)), (5, 3)).detach().numpy()
    np.testing.assert_allclose(yh.detach().numpy().astype(np.float64), ref, rtol=2e-3, atol=2e-3)
    yh.sum().backward()
    assert xh.grad.dtype == gg.float16 and np.isfinite(xh.grad.numpy()).all()


@pytest.mark.parametrize("name", list(CASES))
def test_fused_norm_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    fn = CASES[name][0]
    for dt, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):
        x, w, b = (gg.tensor(a.astype(dt), requires_grad=True) for a in (X, W, B))
        tx, tw, tb = (torch.tensor(a.astype(dt), requires_grad=True) for a in (X, W, B))
        y, ty = fn(F, x, w, b), fn(torch.nn.functional, tx, tw, tb)
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=tol, atol=tol)
        g = RNG.standard_normal(X.shape).astype(dt)
        y.backward(gg.tensor(g))
        ty.backward(torch.tensor(g))
        for a, c in ((x, tx), (w, tw), (b, tb)):
            if c.grad is not None:
                np.testing.assert_allclose(a.grad.numpy(), c.grad.numpy(), rtol=tol * 10, atol=tol * 10)
