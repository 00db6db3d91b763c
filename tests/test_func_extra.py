"""gg.func.vmap / jacfwd / hessian / has_aux and gg.autograd.functional: literal values, closed forms,
PyTorch's result structures and errors (compared with torch when it is installed)."""
import numpy as np
import pytest

import gpugrad as gg
from gpugrad import func
from gpugrad.autograd import functional as AF

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


def t64(a):
    return gg.tensor(np.asarray(a, dtype=np.float64))


def n(x):
    return x.detach().numpy()


X = [[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]]
Y = [0.5, -1.0, 2.0]


# -- vmap ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("in_dims,out_dims,want", [
    (0, 0, [4.5, 7.0]),                         # row . y for each row of X
    ((0, None), 0, [4.5, 7.0]),
    ((1, None), 0, None),                      # columns of X against y[:2]: see below
])
def test_vmap_in_dims_reductions_are_per_sample(in_dims, out_dims, want):
    x, y = t64(X), t64(Y)
    if want is None:
        r = func.vmap(lambda a, b: (a * b[:2]).sum(), in_dims=in_dims)(x, y)
        want = [1.0 * 0.5 + -1.0 * -1.0, 2.0 * 0.5 + 0.5 * -1.0, 3.0 * 0.5 + 4.0 * -1.0]
    else:
        yy = y if in_dims == (0, None) else y.unsqueeze(0).expand(2, 3)
        r = func.vmap(lambda a, b: a @ b, in_dims=in_dims, out_dims=out_dims)(x, yy)
    assert r.tolist() == want


def test_vmap_nested_structures_out_dims_and_kwargs():
    x = t64(X)
    r = func.vmap(lambda d, s=1.0: ({"e": d["a"] * s}, [d["a"].sum()]), in_dims=({"a": 1},), out_dims=(1, 0))(
        {"a": x}, s=2.0)
    assert isinstance(r, tuple) and isinstance(r[0], dict) and isinstance(r[1], list)
    assert r[0]["e"].tolist() == [[2.0, 4.0, 6.0], [-2.0, 1.0, 8.0]]  # stacked on dim 1: X * 2 back again
    assert r[1][0].tolist() == [0.0, 2.5, 7.0]
    m = func.vmap(lambda a: a[:, None] * a[None, :], in_dims=-1, out_dims=-1)(x)  # outer products, batch last
    assert m.shape == (2, 2, 3) and n(m)[:, :, 2].tolist() == [[9.0, 12.0], [12.0, 16.0]]
    c = func.vmap(lambda a: gg.ones(2), in_dims=0)(x)  # an output that ignores the batch is still stacked
    assert c.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    u, w = func.vmap(lambda a: (a * 2, gg.ones(2)), out_dims=(0, None))(x)
    assert u.tolist() == [[2.0, 4.0, 6.0], [-2.0, 1.0, 8.0]] and w.tolist() == [1.0, 1.0]
    if torch is not None:
        tu, tw = torch.func.vmap(lambda a: (a * 2, torch.ones(2)), out_dims=(0, None))(torch.tensor(X))
        assert tu.tolist() == u.tolist() and tw.tolist() == w.tolist()


def test_vmap_nesting_and_transforms():
    x = t64(X)
    assert func.vmap(func.vmap(lambda a: a * a))(x).tolist() == [[1.0, 4.0, 9.0], [1.0, 0.25, 16.0]]
    g = func.vmap(func.grad(lambda a: (a ** 3).sum()))(x)                  # per-sample gradients 3 a^2
    assert g.tolist() == [[3.0, 12.0, 27.0], [3.0, 0.75, 48.0]]
    J = func.vmap(func.jacrev(lambda a: a * a.sum()))(x)                 # diag(s) + a 1^T per row
    np.testing.assert_allclose(n(J[1]), np.diag([3.5] * 3) + np.outer([-1.0, 0.5, 4.0], [1, 1, 1]))
    # grad of a vmapped function flows back through the stack
    gv = func.grad(lambda a: func.vmap(lambda r: (r ** 2).sum())(a).sum())(x)
    assert gv.tolist() == [[2.0, 4.0, 6.0], [-2.0, 1.0, 8.0]]
    if torch is not None:
        tJ = torch.func.vmap(torch.func.jacrev(lambda a: a * a.sum()))(torch.tensor(X, dtype=torch.float64))
        np.testing.assert_allclose(n(J), tJ.numpy())


def test_vmap_randomness():
    x = t64(X)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        func.vmap(lambda a: a + gg.randn(3))(x)
    gg.manual_seed(0)
    same = func.vmap(lambda a: gg.randn(3), randomness="same")(x)
    diff = func.vmap(lambda a: gg.randn(3), randomness="different")(x)
    assert same[0].tolist() == same[1].tolist() and diff[0].tolist() != diff[1].tolist()
    with pytest.raises(RuntimeError, match="Only allowed values for randomness"):
        func.vmap(lambda a: a, randomness="bad")
    assert gg.randn(2).shape == (2,)  # the guard is removed afterwards


@pytest.mark.parametrize("call,exc,msg", [
    (lambda x: func.vmap(lambda a, b: a * b)(x, 1.0), ValueError, "cannot vmap over non-Tensor"),
    (lambda x: func.vmap(lambda a: a, in_dims=[0])(x), ValueError, "expected `in_dims` to be int"),
    (lambda x: func.vmap(lambda a: a, in_dims=(0, 0))(x), ValueError, "not compatible with the structure"),
    (lambda x: func.vmap(lambda a: a, in_dims=2)(x), ValueError, "-2 <= in_dim < 2"),
    (lambda x: func.vmap(lambda a, b: a + b)(x, gg.zeros(3, 3)), ValueError, r"got sizes \[2, 3\]"),
    (lambda x: func.vmap(lambda a, b: a, in_dims=(None, None))(x, x), ValueError, "at least one Tensor"),
    (lambda x: func.vmap(lambda: 1)(), ValueError, "got no inputs"),
    (lambda x: func.vmap(lambda a: 1.0)(x), ValueError, "must only return Tensors"),
    (lambda x: func.vmap(lambda a: a, out_dims=None)(x), ValueError, "BatchedTensor when out_dim is None"),
    (lambda x: func.vmap(lambda a: a, out_dims=3)(x), IndexError, "Dimension out of range"),
    (lambda x: func.vmap(lambda a: a, chunk_size=0)(x), ValueError, "chunk_size should be None or greater"),
    (lambda x: func.vmap(lambda a: a.sum())(gg.zeros(0, 2)), ValueError, "size 0"),
    (lambda x: func.vmap(lambda a: a[: int(a[0].item()) + 2])(t64([[0.0, 1, 2], [1.0, 1, 2]])), RuntimeError,
     "different shapes"),
])
def test_vmap_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(t64(X))


# -- jacfwd, hessian, has_aux ----------------------------------------------------------------------------------
def test_jacfwd_closed_forms_and_structures():
    y = t64(Y)
    J = func.jacfwd(lambda a: a.sin() * a[0])(y)                   # diag(cos a) a0 + sin(a) e0^T
    want = np.diag(np.cos(Y)) * Y[0]
    want[:, 0] += np.sin(Y)
    np.testing.assert_allclose(n(J), want, rtol=1e-13)
    (Pa, Pb), (Qa, Qb) = func.jacfwd(lambda a, b: (a * b, (a * a).sum()), argnums=(0, 1))(y, y * 2)  # [out][arg]
    assert n(Pa).tolist() == np.diag([1.0, -2.0, 4.0]).tolist() and n(Pb).tolist() == np.diag(Y).tolist()
    assert Qa.tolist() == [1.0, -2.0, 4.0] and Qb.tolist() == [0.0, 0.0, 0.0]
    j, aux = func.jacfwd(lambda a: (a.exp(), a.sum()), has_aux=True)(y)
    np.testing.assert_allclose(n(j), np.diag(np.exp(Y)))
    assert aux.item() == 1.5 and not aux.requires_grad and not j.requires_grad
    jr, auxr = func.jacrev(lambda a: ({"s": a * 3}, a), has_aux=True)(y)
    assert n(jr["s"]).tolist() == np.diag([3.0] * 3).tolist() and not auxr.requires_grad
    with pytest.raises(RuntimeError, match="randomness error mode"):
        func.jacfwd(lambda a: a * gg.randn(3))(y)
    if torch is not None:
        ty = torch.tensor(Y, dtype=torch.float64)
        np.testing.assert_allclose(n(J), torch.func.jacfwd(lambda a: a.sin() * a[0])(ty).numpy(), rtol=1e-13)


def test_hessian_structure_and_torch():
    h = lambda a, b: (a * a * b).sum() + (a ** 3).sum()  # noqa: E731
    a, b = t64(Y), t64([1.0, 2.0, 3.0])
    (Haa, Hab), (Hba, Hbb) = func.hessian(h, argnums=(0, 1))(a, b)
    assert n(Haa).tolist() == np.diag(2 * np.array([1.0, 2, 3]) + 6 * np.array(Y)).tolist()
    assert n(Hab).tolist() == np.diag(2 * np.array(Y)).tolist() == n(Hba).tolist()
    assert n(Hbb).tolist() == np.zeros((3, 3)).tolist()
    if torch is not None:
        T = torch.func.hessian(h, argnums=(0, 1))(torch.tensor(Y, dtype=torch.float64),
                                                 torch.tensor([1.0, 2, 3], dtype=torch.float64))
        np.testing.assert_allclose(n(Hab), T[0][1].numpy())


def test_has_aux_and_argnums_errors():
    y = t64(Y)
    with pytest.raises(RuntimeError, match=r"should be a tuple: \(output, aux\)"):
        func.grad(lambda a: a.sum(), has_aux=True)(y)
    with pytest.raises(RuntimeError, match=r"should be a tuple: \(output, aux\)"):
        func.vjp(lambda a: a, y, has_aux=True)
    out, fn, aux = func.vjp(lambda a: (a * 2, {"k": a.sum()}), y, has_aux=True)
    assert fn(t64([1.0, 0.0, 1.0]))[0].tolist() == [2.0, 0.0, 2.0] and aux["k"].item() == 1.5
    o, jv, aux = func.jvp(lambda a: (a.sin(), a * 2), (y,), (t64([1.0, 1.0, 1.0]),), has_aux=True)
    np.testing.assert_allclose(n(jv), np.cos(Y)) and aux.tolist() == [1.0, -2.0, 4.0]
    with pytest.raises(RuntimeError, match="Expected primals to be a tuple"):
        func.jvp(lambda a: a, y, y)
    with pytest.raises(RuntimeError, match="pytree structure of cotangents"):
        func.vjp(lambda a: (a, a), y)[1](y)
    with pytest.raises(RuntimeError, match="argnums must be non-empty"):
        func.jacrev(lambda a: a, argnums=())(y)
    with pytest.raises(RuntimeError, match="Got argnum=1, but only 1 positional inputs"):
        func.grad(lambda a: a.sum(), argnums=1)(y)
    with pytest.raises(ValueError, match="chunk_size"):
        func.jacrev(lambda a: a, chunk_size=0)


# -- gg.autograd.functional ------------------------------------------------------------------------------------
def _cases():
    return [  # (func, inputs as lists, expected structure of jacobian: 't' tensor, or nesting)
        (lambda a: a * a.sum(), (Y,), "t"),
        (lambda a, b: (a * b, a.sin()), (Y, [1.0, 2.0, 3.0]), "tt"),
        (lambda a, b: a * b, (Y, [1.0, 2.0, 3.0]), "t_in"),
        (lambda a: (a.exp(), a * a), (Y,), "t_out"),
    ]


@pytest.mark.parametrize("k", range(4))
@pytest.mark.parametrize("create_graph", [False, True])
def test_functional_jacobian_vjp_jvp_structures(k, create_graph):
    f, ins, kind = _cases()[k]
    g_in = tuple(t64(v) for v in ins) if len(ins) > 1 else t64(ins[0])
    J = AF.jacobian(f, g_in, create_graph=create_graph)
    if kind == "t":
        assert isinstance(J, gg.Tensor)
        np.testing.assert_allclose(n(J), np.diag([1.5] * 3) + np.outer(Y, [1, 1, 1]))
    elif kind == "tt":
        assert isinstance(J, tuple) and all(isinstance(r, tuple) and len(r) == 2 for r in J)
        assert n(J[0][0]).tolist() == np.diag([1.0, 2, 3]).tolist() and n(J[1][1]).tolist() == np.zeros((3, 3)).tolist()
    else:
        assert isinstance(J, tuple) and len(J) == 2 and isinstance(J[0], gg.Tensor)
    assert all(not t.requires_grad for t in _leaves(J)) or create_graph
    if torch is None:
        return
    t_in = tuple(torch.tensor(v, dtype=torch.float64) for v in ins) if len(ins) > 1 else torch.tensor(ins[0], dtype=torch.float64)
    _same(J, torch.autograd.functional.jacobian(f, t_in, create_graph=create_graph))
    _same(AF.jacobian(f, g_in, vectorize=True, strategy="forward-mode"),
          torch.autograd.functional.jacobian(f, t_in, vectorize=True, strategy="forward-mode"))
    _same(AF.jvp(f, g_in, g_in, create_graph=create_graph),
          torch.autograd.functional.jvp(f, t_in, t_in, create_graph=create_graph))
    v_g, v_t = f(*(g_in if isinstance(g_in, tuple) else (g_in,))), f(*(t_in if isinstance(t_in, tuple) else (t_in,)))
    _same(AF.vjp(f, g_in, v_g, create_graph=create_graph),
          torch.autograd.functional.vjp(f, t_in, v_t.detach() if isinstance(v_t, torch.Tensor) else
                                        tuple(v.detach() for v in v_t), create_graph=create_graph))


def _leaves(x):
    return [x] if isinstance(x, gg.Tensor) else [t for c in x for t in _leaves(c)]


def _same(g, t):
    assert type(g).__name__ == type(t).__name__ or (isinstance(g, gg.Tensor) and isinstance(t, torch.Tensor))
    if isinstance(t, torch.Tensor):
        np.testing.assert_allclose(n(g), t.detach().numpy(), rtol=1e-12, atol=1e-14)
        assert g.requires_grad == t.requires_grad
    else:
        assert len(g) == len(t)
        for a, b in zip(g, t):
            _same(a, b)


@pytest.mark.parametrize("create_graph", [False, True])
def test_functional_hessian_hvp_vhp(create_graph):
    s = lambda a, b: (a * a * b).sum()  # noqa: E731  H = [[2 diag b, 2 diag a], [2 diag a, 0]]
    a, b, v = t64(Y), t64([1.0, 2.0, 3.0]), t64([1.0, 0.0, -1.0])
    H = AF.hessian(s, (a, b), create_graph=create_graph)
    assert n(H[0][0]).tolist() == np.diag([2.0, 4.0, 6.0]).tolist() and n(H[1][0]).tolist() == np.diag([1.0, -2, 4]).tolist()
    out, hv = AF.hvp(s, (a, b), (v, v), create_graph=create_graph)
    assert out.item() == 0.25 * 1 + 1 * 2 + 4 * 3
    assert n(hv[0]).tolist() == [2 * 1 + 1.0, 0.0, -6.0 - 4.0] and n(hv[1]).tolist() == [1.0, 0.0, -4.0]
    _, vh = AF.vhp(lambda x: (x ** 3).sum(), a, v, create_graph=create_graph)
    assert isinstance(vh, gg.Tensor) and n(vh).tolist() == [3.0, 0.0, -12.0]
    assert vh.requires_grad is create_graph
    if torch is not None:
        ta, tb, tv = (torch.tensor(x, dtype=torch.float64) for x in (Y, [1.0, 2, 3], [1.0, 0, -1]))
        _same(H, torch.autograd.functional.hessian(s, (ta, tb), create_graph=create_graph))
        _same(hv, torch.autograd.functional.hvp(s, (ta, tb), (tv, tv), create_graph=create_graph)[1])


@pytest.mark.parametrize("call,msg", [
    (lambda a: AF.vjp(lambda x: x * 2, a), "v can only be None"),
    (lambda a: AF.vjp(lambda x: x * 2, a, gg.ones(2)), r"v has invalid size: should be \(3,\)"),
    (lambda a: AF.vjp(lambda x: gg.ones(3), a, gg.ones(3), strict=True), "does not require gradients"),
    (lambda a: AF.vjp(lambda x, y: x * 2, (a, a), gg.ones(3), strict=True), "independent of input 1"),
    (lambda a: AF.jacobian(lambda x, y: x * 2, (a, a), strict=True), "Output 0 .* independent of input 1"),
    (lambda a: AF.jacobian(lambda x: x, a, strict=True, vectorize=True), "not supported together"),
    (lambda a: AF.jacobian(lambda x: x, a, strategy="forward-mode"), "only implemented for `vectorize=True`"),
    (lambda a: AF.hessian(lambda x: x * 2, a), "should contain a single element"),
    (lambda a: AF.hessian(lambda x: x.sum() * 2, a, strict=True), "jacobian of the user-provided function"),
    (lambda a: AF.hvp(lambda x: (x * x).sum(), a, (gg.ones(3), gg.ones(3))), "single Tensor"),
    (lambda a: AF.jvp(lambda x: x, [a], [a]), "must be either a Tensor or a tuple of Tensors"),
])
def test_functional_errors(call, msg):
    with pytest.raises((RuntimeError, TypeError, NotImplementedError), match=msg):
        call(t64(Y))


def test_functional_create_graph_is_differentiable():
    a = t64(Y).requires_grad_()
    _, vj = AF.vjp(lambda x: (x ** 3).sum(), a, create_graph=True)   # 3 x^2, differentiable in a
    assert vj.requires_grad
    (g,) = gg.autograd.grad(vj.sum(), a)
    assert g.tolist() == [3.0, -6.0, 12.0]
    _, vj0 = AF.vjp(lambda x: (x ** 3).sum(), a)
    assert not vj0.requires_grad and a.grad is None
