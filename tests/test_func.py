"""gg.func: grad, value_and_grad, vjp, jvp, jacrev and hessian against closed forms, and nesting."""
import numpy as np
import pytest

import gpugrad as gg
from gpugrad import func

from conftest import to_np

X = np.array([0.5, -1.2, 2.0])


def t64(a, device="cpu"):
    return gg.tensor(np.asarray(a, dtype=np.float64), device=device)


def cubic(x):
    """f(x) = sum(x^3) + x0 * x1."""
    return (x ** 3).sum() + x[0] * x[1]


def cubic_grad(x):
    g = 3 * x ** 2
    g[0] += x[1]
    g[1] += x[0]
    return g


def cubic_hessian(x):
    h = np.diag(6 * x)
    h[0, 1] += 1
    h[1, 0] += 1
    return h


def test_grad_of_known_function(device):
    x = t64(X, device)
    g = func.grad(cubic)(x)
    np.testing.assert_allclose(to_np(g), cubic_grad(X), rtol=1e-12)
    assert not g.requires_grad and not x.requires_grad and x.grad is None  # no side effects


def test_grad_argnums_aux_and_value_and_grad():
    x, y = t64([1.0, 2.0]), t64([3.0, -4.0])
    gx, gy = func.grad(lambda a, b: (a * b).sum(), argnums=(0, 1))(x, y)
    assert to_np(gx).tolist() == [3.0, -4.0] and to_np(gy).tolist() == [1.0, 2.0]
    gy_only = func.grad(lambda a, b: (a * b * b).sum(), argnums=1)(x, y)
    np.testing.assert_allclose(to_np(gy_only), 2 * np.array([1.0, 2.0]) * np.array([3.0, -4.0]))
    g, aux = func.grad(lambda a: ((a ** 2).sum(), a.sum() * 10), has_aux=True)(x)
    assert to_np(g).tolist() == [2.0, 4.0] and aux.item() == 30.0
    v, g = func.value_and_grad(lambda a: (a.exp()).sum())(x)
    assert v.item() == pytest.approx(np.exp([1.0, 2.0]).sum()) and not v.requires_grad
    np.testing.assert_allclose(to_np(g), np.exp([1.0, 2.0]))
    (v, aux), g = func.value_and_grad(lambda a: (a.sum(), "tag"), has_aux=True)(x)
    assert aux == "tag" and v.item() == 3.0


def test_grad_edge_cases():
    x = t64([1.0, 2.0])
    np.testing.assert_array_equal(to_np(func.grad(lambda a: gg.tensor(5.0, dtype=gg.float64))(x)), [0.0, 0.0])
    with pytest.raises(RuntimeError, match="one-element"):
        func.grad(lambda a: a * 2)(x)
    with pytest.raises(TypeError, match="not a Tensor"):
        func.grad(lambda a: a)(1.0)
    with pytest.raises(TypeError, match="floating"):
        func.grad(lambda a: a.sum())(gg.tensor([1, 2]))


def test_vjp(device):
    x, y = t64([1.0, 2.0], device), t64([0.5, -1.0], device)
    out, vjp_fn = func.vjp(lambda a, b: a * a * b, x, y)
    np.testing.assert_allclose(to_np(out), [0.5, -4.0])
    v = t64([1.0, 3.0], device)
    gx, gy = vjp_fn(v)
    np.testing.assert_allclose(to_np(gx), 2 * np.array([1.0, 2.0]) * np.array([0.5, -1.0]) * [1.0, 3.0])
    np.testing.assert_allclose(to_np(gy), np.array([1.0, 4.0]) * [1.0, 3.0])
    gx2, _ = vjp_fn(t64([1.0, 0.0], device))  # the vjp can be called again
    np.testing.assert_allclose(to_np(gx2), [1.0, 0.0])


def test_jvp(device):
    x, y = t64([0.3, 1.1], device), t64([2.0, -1.0], device)
    tx, ty = t64([1.0, -2.0], device), t64([0.5, 0.25], device)
    out, jv = func.jvp(lambda a, b: a.sin() * b, (x, y), (tx, ty))
    xv, yv = np.array([0.3, 1.1]), np.array([2.0, -1.0])
    np.testing.assert_allclose(to_np(out), np.sin(xv) * yv)
    np.testing.assert_allclose(to_np(jv), np.cos(xv) * yv * [1.0, -2.0] + np.sin(xv) * [0.5, 0.25], rtol=1e-12)
    # a linear map: the jvp is A @ t
    A = t64([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], device)
    _, jv = func.jvp(lambda a: A @ a, (x,), (tx,))
    np.testing.assert_allclose(to_np(jv), to_np(A) @ [1.0, -2.0])


def test_jacrev_of_a_vector_field(device):
    def f(x):  # R^3 -> R^4
        return gg.stack([x[0] * x[1], x[0].sin(), x[1] ** 2, x.sum()])

    x0, x1, _ = X
    want = np.array([[x1, x0, 0], [np.cos(x0), 0, 0], [0, 2 * x1, 0], [1, 1, 1]])
    J = func.jacrev(f)(t64(X, device))
    assert J.shape == (4, 3)
    np.testing.assert_allclose(to_np(J), want, rtol=1e-12)
    assert func.jacobian is func.jacrev


def test_jacrev_shapes_and_argnums():
    A = np.arange(6.0).reshape(2, 3)
    JA, Jx = func.jacrev(lambda a, x: a @ x, argnums=(0, 1))(t64(A), t64(X))
    np.testing.assert_allclose(to_np(Jx), A)
    assert JA.shape == (2, 2, 3)  # out.shape + arg.shape
    want = np.zeros((2, 2, 3))
    want[0, 0], want[1, 1] = X, X
    np.testing.assert_allclose(to_np(JA), want)
    M = func.jacrev(lambda m: m.tanh())(t64([[0.1, 0.2], [0.3, 0.4]]))
    assert M.shape == (2, 2, 2, 2)
    np.testing.assert_allclose(to_np(M).reshape(4, 4), np.diag(1 - np.tanh([0.1, 0.2, 0.3, 0.4]) ** 2))


def test_hessian_of_cubic(device):
    H = func.hessian(cubic)(t64(X, device))
    np.testing.assert_allclose(to_np(H), cubic_hessian(X), rtol=1e-12, atol=1e-12)
    assert not H.requires_grad


def test_hessian_of_logsumexp_is_diag_p_minus_ppt():
    x = np.array([0.2, -1.0, 1.5, 0.0])
    p = np.exp(x) / np.exp(x).sum()
    H = func.hessian(lambda a: a.logsumexp(0))(t64(x))
    np.testing.assert_allclose(to_np(H), np.diag(p) - np.outer(p, p), rtol=1e-10, atol=1e-12)
    # the Hessian of a quadratic form 0.5 x^T A x is (A + A^T) / 2
    A = np.array([[2.0, 1.0], [0.0, 3.0]])
    Hq = func.hessian(lambda a: 0.5 * (a @ (t64(A) @ a)))(t64([1.0, -1.0]))
    np.testing.assert_allclose(to_np(Hq), (A + A.T) / 2)


def test_nesting():
    x = t64(1.5)
    f = lambda a: a ** 4  # noqa: E731
    d1, d2, d3 = func.grad(f), func.grad(func.grad(f)), func.grad(func.grad(func.grad(f)))
    assert d1(x).item() == pytest.approx(4 * 1.5 ** 3)
    assert d2(x).item() == pytest.approx(12 * 1.5 ** 2)
    assert d3(x).item() == pytest.approx(24 * 1.5)
    # jacrev of jacrev equals the hessian
    xv = t64(X)
    np.testing.assert_allclose(to_np(func.jacrev(func.jacrev(cubic))(xv)), cubic_hessian(X), atol=1e-12)
    # a function that uses a gradient inside: g(x) = |grad cubic(x)|^2, whose gradient is 2 H grad
    g = func.grad(lambda a: (func.grad(cubic)(a) ** 2).sum())(xv)
    np.testing.assert_allclose(to_np(g), 2 * cubic_hessian(X) @ cubic_grad(X), rtol=1e-12)
    # jvp of a gradient is a Hessian-vector product
    v = t64([1.0, 0.0, -1.0])
    _, hvp = func.jvp(func.grad(cubic), (xv,), (v,))
    np.testing.assert_allclose(to_np(hvp), cubic_hessian(X) @ [1.0, 0.0, -1.0], rtol=1e-12)


def test_transforms_differentiate_through_an_outer_graph():
    # an argument that is part of an outer graph: the result stays differentiable w.r.t. that graph
    w = t64([2.0]).requires_grad_()
    x = w * t64([1.0, 3.0])
    inner = func.grad(lambda a: (a ** 3).sum())(x)  # 3 x^2 = 3 w^2 c^2
    assert inner.requires_grad
    np.testing.assert_allclose(to_np(inner.detach()), [12.0, 108.0])
    inner.sum().backward()
    np.testing.assert_allclose(to_np(w.grad), [6 * 2.0 * (1 + 9)])


def test_transforms_of_a_constant_function_give_zeros():
    x = gg.tensor([1.0, 2.0])
    _, jv = gg.func.jvp(lambda t: gg.ones(2), (x,), (gg.ones(2),))
    assert jv.tolist() == [0.0, 0.0]
    (g,) = gg.func.vjp(lambda t: gg.ones(2), x)[1](gg.ones(2))
    assert g.tolist() == [0.0, 0.0]
