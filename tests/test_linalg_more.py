"""The rest of torch.linalg (issue 11): closed-form values without torch; with torch 2.13, values, shapes, dtypes,
result types, gradients and error texts compared. Gradients in general: tests/gradrows_linalg.py."""
import math

import numpy as np
import pytest

import gpugrad as gg

from conftest import to_np

la = gg.linalg
F64 = gg.float64
R = np.random.default_rng(0)


def t64(x):
    return gg.tensor(np.asarray(x, dtype=np.float64))


# -- torch-free: closed forms ---------------------------------------------------------------------------------
def test_products_and_powers_closed_form():
    e = np.eye(3)
    np.testing.assert_array_equal(to_np(la.cross(t64(e[0]), t64(e[1]))), e[2])
    np.testing.assert_array_equal(to_np(la.cross(t64(e), t64(e[[1, 2, 0]]))), e[[2, 0, 1]])
    assert la.vecdot(t64([1, 2, 3]), t64([[1, 1, 1], [0, 0, 2]])).tolist() == [6.0, 6.0]
    a, b, c = R.standard_normal((2, 3)), R.standard_normal((3, 4)), R.standard_normal(4)
    np.testing.assert_allclose(to_np(la.multi_dot([t64(a), t64(b), t64(c)])), a @ b @ c, rtol=1e-12)
    assert la.multi_dot([t64([1, 2]), t64([3, 4])]).shape == ()
    J = t64([[1, 1], [0, 1]])
    for n in (0, 1, 2, 3, 7, -1, -4):
        assert la.matrix_power(J, n).tolist() == [[1.0, float(n)], [0.0, 1.0]]
    assert la.matrix_power(gg.tensor([[2, 0], [0, 3]]), 3).tolist() == [[8, 0], [0, 27]]
    assert la.matrix_power(gg.tensor([[2, 0], [0, 3]]), 0).dtype == gg.int64


def test_rank_pinv_lstsq_cond_closed_form():
    assert la.matrix_rank(gg.ones(2, 3, 4)).tolist() == [1, 1] and la.matrix_rank(gg.eye(3)).dtype == gg.int64
    assert la.matrix_rank(t64(np.diag([1, 1e-3, 0])), atol=1e-2).item() == 1
    assert la.matrix_rank(t64(np.diag([1, 1e-3, 0])), 1e-4).item() == 2  # the positional tol: atol, rtol = 0
    np.testing.assert_allclose(to_np(la.pinv(t64(np.diag([2.0, 0.0, 4.0])))), np.diag([0.5, 0, 0.25]))
    np.testing.assert_allclose(to_np(la.pinv(t64(np.ones((2, 2))), hermitian=True)), np.full((2, 2), 0.25))
    A, x = R.standard_normal((6, 3)), R.standard_normal((3, 2))
    res = la.lstsq(t64(A), t64(A @ x), driver="gelsd")
    assert type(res).__name__ == "linalg_lstsq" and res._fields == ("solution", "residuals", "rank", "singular_values")
    np.testing.assert_allclose(to_np(res.solution), x, rtol=1e-10)
    np.testing.assert_allclose(to_np(res.residuals), [0, 0], atol=1e-20)
    assert res.rank.item() == 3 and res.singular_values.shape == (3,)
    d = la.lstsq(t64(A), t64(A @ x))  # CPU default: gelsy (no residuals, no singular values)
    assert d.residuals.shape == (0,) and d.singular_values.shape == (0,) and d.rank.dtype == gg.int64
    assert la.lstsq(t64(A), t64(A @ x), driver="gels").rank.shape == (0,)
    assert la.cond(t64(np.diag([1.0, 10.0]))).item() == pytest.approx(10.0)
    assert la.cond(t64(np.diag([1.0, 10.0])), -2).item() == pytest.approx(0.1)
    assert la.cond(gg.zeros(3, 3, dtype=F64), 1).item() == math.inf


def test_triangular_exp_and_ex_closed_form():
    U = t64([[2, 1], [0, 4]])
    np.testing.assert_allclose(to_np(la.solve_triangular(U, t64([[3], [4]]), upper=True)), [[1], [1]])
    np.testing.assert_allclose(to_np(la.solve_triangular(U, t64([[3], [4]]), upper=True, unitriangular=True)),
                               [[-1], [4]])
    assert la.solve_triangular(gg.zeros(2, 2), gg.ones(2, 1), upper=True).tolist() == [[pytest.approx(math.nan,
                                                                                                     nan_ok=True)],
                                                                                      [math.inf]]
    th = 0.7
    np.testing.assert_allclose(to_np(la.matrix_exp(t64([[0, th], [-th, 0]]))),
                               [[math.cos(th), math.sin(th)], [-math.sin(th), math.cos(th)]], rtol=1e-14)
    np.testing.assert_allclose(to_np(la.matrix_exp(t64(np.diag([1.0, -30.0, 40.0])))),
                               np.diag(np.exp([1.0, -30.0, 40.0])), rtol=1e-13)
    S = t64([[1, 2], [2, 4]])
    inv, info = la.inv_ex(S)
    assert type(la.inv_ex(S)).__name__ == "linalg_inv_ex" and info.dtype == gg.int32 and info.item() == 2
    assert inv.tolist() == [[-math.inf, math.inf], [math.inf, -math.inf]]
    L, info = la.cholesky_ex(gg.stack([S, gg.eye(2, dtype=F64)]))
    assert info.tolist() == [2, 0] and L.tolist()[0] == [[1.0, 0.0], [2.0, 0.0]]
    X, info = la.solve_ex(gg.eye(2, dtype=F64), t64([1, 2]))
    assert X.tolist() == [1.0, 2.0] and info.item() == 0
    with pytest.raises(gg.linalg.LinAlgError, match=r"linalg.inv_ex: \(Batch element 1\): The diagonal element 2"):
        la.inv_ex(gg.stack([gg.eye(2, dtype=F64), S]), check_errors=True)
    with pytest.raises(gg.linalg.LinAlgError, match="leading minor of order 2"):
        la.cholesky_ex(S, check_errors=True)


def test_lu_closed_form():
    A = t64([[0, 1, 2], [1, 1, 1], [2, 1, 1]])
    LU, piv = la.lu_factor(A)
    assert piv.dtype == gg.int32 and piv.tolist() == [3, 3, 3] and type(la.lu_factor(A)).__name__ == "linalg_lu_factor"
    P, L, U = la.lu(A)
    np.testing.assert_allclose(to_np(P @ L @ U), to_np(A), atol=1e-15)
    assert np.allclose(np.diag(to_np(L)), 1) and np.allclose(np.tril(to_np(U), -1), 0)
    b = t64([[1, 0], [2, 1], [0, 3]])
    np.testing.assert_allclose(to_np(la.lu_solve(LU, piv, b)), np.linalg.solve(to_np(A), to_np(b)), rtol=1e-12)
    np.testing.assert_allclose(to_np(la.lu_solve(LU, piv, b.mT, left=False, adjoint=True)),
                               np.linalg.solve(to_np(A), to_np(b)).T, rtol=1e-12)
    LU, piv, info = la.lu_factor_ex(t64([[1, 2], [2, 4]]))
    assert LU.tolist() == [[2.0, 4.0], [0.5, 0.0]] and piv.tolist() == [2, 2] and info.item() == 2
    with pytest.raises(RuntimeError, match=r"torch.linalg.lu_factor: U\[2,2\] is zero"):
        la.lu_factor(t64([[1, 2], [2, 4]]))
    with pytest.raises(RuntimeError, match="LU without pivoting is not implemented on the CPU"):
        la.lu_factor(A, pivot=False)


def test_vander_tensor_householder_closed_form():
    assert la.vander(t64([1, 2, 3])).tolist() == [[1, 1, 1], [1, 2, 4], [1, 3, 9]]
    assert la.vander(gg.tensor([2], dtype=gg.int32), N=3).dtype == gg.int64
    A = R.standard_normal((2, 3, 6)) + np.eye(6).reshape(2, 3, 6) * 3
    Ai = la.tensorinv(t64(A))
    assert Ai.shape == (6, 2, 3)
    np.testing.assert_allclose(np.tensordot(A, to_np(Ai), 1).reshape(6, 6), np.eye(6), atol=1e-12)
    b = R.standard_normal((2, 3))
    x = la.tensorsolve(t64(A), t64(b))
    np.testing.assert_allclose(np.tensordot(A, to_np(x), 1), b, atol=1e-12)
    v = np.array([[9.0], [0.5], [-2.0]])  # one reflector: I - tau v v^T with v = (1, 0.5, -2)
    w = np.array([1.0, 0.5, -2.0])
    np.testing.assert_allclose(to_np(la.householder_product(t64(v), t64([0.4]))), (np.eye(3) - 0.4 * np.outer(w, w))[:, :1])
    assert la.householder_product(t64(np.ones((3, 2))), t64(np.zeros(0))).tolist() == [[1, 0], [0, 1], [0, 0]]


def test_eig_out_and_errors():
    for f in (la.eig, la.eigvals):
        with pytest.raises(NotImplementedError, match="complex tensors are not supported"):
            f(gg.eye(2))
    with pytest.raises(RuntimeError, match="must be batches of square matrices"):
        la.eig(gg.ones(2, 3))
    with pytest.raises(NotImplementedError, match="out= is not supported"):
        la.cross(gg.ones(3), gg.ones(3), out=gg.ones(3))
    with pytest.raises(TypeError):
        la.solve_triangular(gg.eye(2), gg.ones(2, 1))  # upper is keyword-only and required
    with pytest.raises(RuntimeError, match="pivots should be a Tensor of scalar type torch.int32"):
        la.lu_solve(gg.eye(2), gg.tensor([1, 2]), gg.ones(2, 1))


def test_gradients_closed_form():
    A = t64([[1.0, 2.0], [0.5, 3.0]]).requires_grad_()
    la.matrix_power(A, 2).sum().backward()  # d sum(A^2) = 1 A^T + A^T 1
    one = np.ones((2, 2))
    np.testing.assert_allclose(to_np(A.grad), one @ to_np(A).T + to_np(A).T @ one)
    A.grad = None
    la.matrix_exp(A).trace().backward()  # d tr exp(A) = exp(A)^T
    np.testing.assert_allclose(to_np(A.grad), to_np(la.matrix_exp(A)).T, rtol=1e-12)


# -- torch 2.13 ----------------------------------------------------------------------------------------------------
def _a(*s):
    return R.standard_normal(s)


SQ, RHS, TALL, SING = _a(2, 3, 3) + 2 * np.eye(3), _a(2, 3, 2), _a(5, 3), np.array([[1.0, 2.0], [2.0, 4.0]])
SPD = SQ @ SQ.swapaxes(-1, -2) + np.eye(3)

# name -> (call(lib, *tensors), inputs, differentiable input positions)
CASES = {
    "cross": (lambda m, a, b: m.linalg.cross(a, b), [_a(2, 3), _a(1, 3)], (0, 1)),
    "cross dim": (lambda m, a, b: m.linalg.cross(a, b, dim=0), [_a(3, 2), _a(3, 2)], (0, 1)),
    "vecdot": (lambda m, a, b: m.linalg.vecdot(a, b, dim=0), [_a(3, 2), _a(3, 1)], (0, 1)),
    "multi_dot": (lambda m, *t: m.linalg.multi_dot(t), [_a(3), _a(3, 5), _a(5, 2), _a(2, 4)], (0, 1, 2, 3)),
    **{f"matrix_power {k}": (lambda m, a, k=k: m.linalg.matrix_power(a, k), [SQ], (0,)) for k in (0, 1, 4, -3)},
    "matrix_rank": (lambda m, a: m.linalg.matrix_rank(a, atol=0.5, rtol=0.1), [_a(2, 3, 4)], ()),
    "matrix_rank hermitian": (lambda m, a: m.linalg.matrix_rank(a, hermitian=True), [np.ones((3, 3))], ()),
    "pinv": (lambda m, a: m.linalg.pinv(a), [TALL], (0,)),
    "pinv rtol batch": (lambda m, a: m.linalg.pinv(a, rtol=m.tensor([0.0, 0.9])), [TALL], (0,)),
    "pinv hermitian": (lambda m, a: m.linalg.pinv(a, hermitian=True), [SPD], (0,)),
    **{f"lstsq {d}": (lambda m, a, b, d=d: (m.linalg.lstsq(a, b, driver=d)), [TALL, _a(5, 2)], (0, 1))
       for d in (None, "gels", "gelsd", "gelss")},
    "lstsq vector": (lambda m, a, b: (m.linalg.lstsq(a, b, driver="gelsd")), [_a(2, 5, 3), _a(2, 5)], (0, 1)),
    "lstsq wide": (lambda m, a, b: m.linalg.lstsq(a, b, 1e-3).solution, [_a(3, 5), _a(3, 2)], (0, 1)),
    "solve_triangular": (lambda m, a, b: m.linalg.solve_triangular(a, b, upper=True), [SQ, RHS], (0, 1)),
    "solve_triangular right unit": (lambda m, a, b: m.linalg.solve_triangular(a, b, upper=False, left=False,
                                                                           unitriangular=True), [SQ, _a(4, 1, 2, 3)],
                                    (0, 1)),
    # NOTE: PyTorch cannot differentiate cond for other p (an in-place masked_fill_ on inv_ex's output)
    **{f"cond {p}": (lambda m, a, p=p: m.linalg.cond(a, p), [SQ], (0,) if p in (None, -2) else ())
       for p in (None, -2, "fro", "nuc", math.inf)},
    "cond tall": (lambda m, a: m.linalg.cond(a), [TALL], (0,)),
    "matrix_exp": (lambda m, a: m.linalg.matrix_exp(a), [SQ * 3], (0,)),
    "inv_ex": (lambda m, a: (m.linalg.inv_ex(a)), [np.stack([SING, np.eye(2)])], ()),
    "cholesky_ex": (lambda m, a: (m.linalg.cholesky_ex(a, upper=True)), [np.stack([SING, np.eye(2)])], ()),
    "cholesky_ex grad": (lambda m, a: m.linalg.cholesky_ex(a).L, [SPD], (0,)),
    "solve_ex": (lambda m, a, b: (m.linalg.solve_ex(a, b)), [np.stack([SING, np.eye(2)]), np.ones(2)], ()),
    "solve_ex grad": (lambda m, a, b: m.linalg.solve_ex(a, b, left=False)[0], [SQ, _a(2, 4, 3)], (0, 1)),
    **{f"lu_factor {s}": (lambda m, a: (m.linalg.lu_factor(a)), [_a(*s)], (0,)) for s in
       [(2, 4, 4), (3, 5), (5, 3)]},
    "lu_factor_ex": (lambda m, a: (m.linalg.lu_factor_ex(a)), [np.stack([SING, np.zeros((2, 2))])], ()),
    **{f"lu {s}": (lambda m, a: (m.linalg.lu(a)), [_a(*s)], (0,)) for s in [(2, 4, 4), (2, 5), (5, 2)]},
    **{f"lu_solve {lf} {adj}": (lambda m, a, b, lf=lf, adj=adj: m.linalg.lu_solve(*m.linalg.lu_factor(a), b, left=lf,
                                                                                   adjoint=adj),
                                [SQ, _a(4, 1, 3, 2) if lf else _a(2, 3)], (0, 1))
       for lf in (True, False) for adj in (True, False)},
    "vander": (lambda m, x: m.linalg.vander(x), [_a(2, 3)], (0,)),
    "vander N": (lambda m, x: m.linalg.vander(x, N=5), [_a(2)], (0,)),
    "vander int": (lambda m, x: m.linalg.vander(x.int(), N=3), [np.array([1.0, 2.0])], ()),
    "tensorinv": (lambda m, a: m.linalg.tensorinv(a, ind=1), [_a(4, 2, 2) + 5 * np.eye(4).reshape(4, 2, 2)], (0,)),
    "tensorsolve": (lambda m, a, b: m.linalg.tensorsolve(a, b, dims=(0,)), [_a(2, 3, 2, 3) + 4 * np.eye(6).reshape(
        2, 3, 2, 3), _a(2, 3)], (0, 1)),
    "householder_product": (lambda m, a, t: m.linalg.householder_product(a, t), [_a(2, 4, 3), _a(2, 3)], (0, 1)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_against_torch(name):
    torch = pytest.importorskip("torch")
    call, inputs, diff = CASES[name]
    g_in = [gg.tensor(x, requires_grad=i in diff) for i, x in enumerate(inputs)]
    t_in = [torch.tensor(x, requires_grad=i in diff) for i, x in enumerate(inputs)]
    got, want = call(gg, *g_in), call(torch, *t_in)
    if isinstance(want, tuple):
        assert type(got).__name__ == type(want).__name__ and got._fields == type(want).__match_args__
    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    for g, w in zip(got, want):
        assert tuple(g.shape) == tuple(w.shape) and str(g.dtype) == str(w.dtype).replace("torch.", "")
        np.testing.assert_allclose(to_np(g), w.detach().numpy(), rtol=1e-9, atol=1e-11)
    pairs = [(g, w) for g, w in zip(got, want) if w.requires_grad and w.numel()]
    if diff:
        assert pairs and all(g.requires_grad for g, _ in pairs)
        cot = [R.standard_normal(tuple(w.shape)) for _, w in pairs]
        gg_g = gg.autograd.grad([g for g, _ in pairs], [g_in[i] for i in diff], [gg.tensor(c) for c in cot])
        t_g = torch.autograd.grad([w for _, w in pairs], [t_in[i] for i in diff], [torch.tensor(c) for c in cot])
        for a, b in zip(gg_g, t_g):
            np.testing.assert_allclose(to_np(a), b.numpy(), rtol=1e-7, atol=1e-9)


ERRORS = {
    "cross ndim": lambda m: m.linalg.cross(m.ones(2, 3), m.ones(3)),
    "cross len": lambda m: m.linalg.cross(m.ones(2, 4), m.ones(2, 4)),
    "cross dtype": lambda m: m.linalg.cross(m.ones(3), m.ones(3, dtype=m.float64)),
    "vecdot int": lambda m: m.linalg.vecdot(m.ones(3, dtype=m.int64), m.ones(3, dtype=m.int64)),
    "vecdot dtype": lambda m: m.linalg.vecdot(m.ones(3), m.ones(3, dtype=m.float64)),
    "multi_dot one": lambda m: m.linalg.multi_dot([m.ones(3)]),
    "multi_dot 3d": lambda m: m.linalg.multi_dot([m.ones(2, 2), m.ones(2, 2, 2), m.ones(2, 2)]),
    "multi_dot shapes": lambda m: m.linalg.multi_dot([m.ones(2, 3), m.ones(2, 2)]),
    "multi_dot dtype": lambda m: m.linalg.multi_dot([m.ones(2, 3), m.ones(3, 2, dtype=m.float64)]),
    "matrix_power square": lambda m: m.linalg.matrix_power(m.ones(2, 3), 2),
    "matrix_power float n": lambda m: m.linalg.matrix_power(m.ones(2, 2), 2.0),
    "matrix_power singular": lambda m: m.linalg.matrix_power(m.zeros(2, 2), -1),
    "matrix_rank 1d": lambda m: m.linalg.matrix_rank(m.ones(3)),
    "pinv int": lambda m: m.linalg.pinv(m.ones(2, 2, dtype=m.int64)),
    "lstsq driver": lambda m: m.linalg.lstsq(m.ones(3, 2), m.ones(3, 1), driver="foo"),
    "lstsq rows": lambda m: m.linalg.lstsq(m.ones(3, 2), m.ones(2, 1)),
    "lstsq vector rows": lambda m: m.linalg.lstsq(m.ones(3, 2), m.ones(2)),
    "lstsq dtype": lambda m: m.linalg.lstsq(m.ones(3, 2), m.ones(3, 1, dtype=m.float64)),
    "lstsq dims": lambda m: m.linalg.lstsq(m.ones(3, 2), m.ones(3, 1, 1)),
    "solve_triangular B 1d": lambda m: m.linalg.solve_triangular(m.eye(3), m.ones(3), upper=True),
    "solve_triangular shapes": lambda m: m.linalg.solve_triangular(m.eye(3), m.ones(2, 3), upper=True),
    "solve_triangular int": lambda m: m.linalg.solve_triangular(m.ones(2, 2, dtype=m.int64), m.ones(2, 1),
                                                                upper=True),
    "cond p": lambda m: m.linalg.cond(m.eye(2), 3),
    "cond square": lambda m: m.linalg.cond(m.ones(3, 2), 1),
    "cond 1d": lambda m: m.linalg.cond(m.ones(3)),
    "matrix_exp int": lambda m: m.linalg.matrix_exp(m.ones(2, 2, dtype=m.int64)),
    "matrix_exp square": lambda m: m.linalg.matrix_exp(m.ones(2, 3)),
    "inv_ex square": lambda m: m.linalg.inv_ex(m.ones(2, 3)),
    "solve_ex singular": lambda m: m.linalg.solve_ex(m.zeros(2, 2), m.ones(2), check_errors=True),
    "lu_factor batch singular": lambda m: m.linalg.lu_factor(m.stack([m.eye(2), m.ones(2, 2)])),
    "lu_factor_ex check": lambda m: m.linalg.lu_factor_ex(m.ones(2, 2), check_errors=True),
    "lu_factor 1d": lambda m: m.linalg.lu_factor(m.ones(3)),
    "lu_factor int": lambda m: m.linalg.lu_factor(m.ones(2, 2, dtype=m.int64)),
    "lu_solve B 1d": lambda m: m.linalg.lu_solve(m.eye(3), m.ones(3, dtype=m.int32), m.ones(3)),
    "lu_solve dtype": lambda m: m.linalg.lu_solve(m.eye(3), m.ones(3, dtype=m.int32), m.ones(3, 1, dtype=m.float64)),
    "lu_solve npiv": lambda m: m.linalg.lu_solve(m.eye(3), m.ones(2, dtype=m.int32), m.ones(3, 1)),
    "lu_solve pivshape": lambda m: m.linalg.lu_solve(m.eye(3).expand(2, 3, 3), m.ones(3, dtype=m.int32), m.ones(3, 1)),
    "lu_solve shapes": lambda m: m.linalg.lu_solve(m.eye(3), m.ones(3, dtype=m.int32), m.ones(1, 2), left=False),
    "vander N": lambda m: m.linalg.vander(m.ones(1)),
    "vander bool": lambda m: m.linalg.vander(m.ones(2, dtype=m.bool)),
    "tensorinv ind": lambda m: m.linalg.tensorinv(m.ones(4, 2, 2), ind=0),
    "tensorinv prod": lambda m: m.linalg.tensorinv(m.ones(4, 2, 2), ind=2),
    "tensorinv singular": lambda m: m.linalg.tensorinv(m.zeros(2, 2), ind=1),
    "tensorsolve prod": lambda m: m.linalg.tensorsolve(m.ones(2, 3, 6), m.ones(6)),
    "householder wide": lambda m: m.linalg.householder_product(m.ones(2, 3), m.ones(2)),
    "householder tau": lambda m: m.linalg.householder_product(m.ones(3, 2), m.ones(3)),
    "householder ndim": lambda m: m.linalg.householder_product(m.ones(3, 2), m.ones(1, 2)),
    "householder batch": lambda m: m.linalg.householder_product(m.ones(2, 3, 2), m.ones(3, 2)),
    "householder dtype": lambda m: m.linalg.householder_product(m.ones(3, 2), m.ones(2, dtype=m.float64)),
    "eig square": lambda m: m.linalg.eig(m.ones(2, 3)),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_match_torch(name):
    torch = pytest.importorskip("torch")
    with pytest.raises(Exception) as te:
        ERRORS[name](torch)
    with pytest.raises(Exception) as ge:
        ERRORS[name](gg)
    linalg_error = isinstance(te.value, torch.linalg.LinAlgError)
    assert isinstance(ge.value, gg.linalg.LinAlgError if linalg_error else type(te.value)), (ge.value, te.value)
    assert str(ge.value) == str(te.value).split("\n")[0]


@pytest.mark.parametrize("name", ["lu_factor pivots", "lstsq singular_values", "cholesky_ex info"])
def test_compile_refuses_side_outputs(name):
    """Pivots, singular values and info come from outside the recorded ops: gg.compile must refuse a step they feed
    (a replay would keep the first call's values), and eager calls stay right."""
    a = gg.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))
    fn = {"lu_factor pivots": lambda x: gg.linalg.lu_factor(x).pivots.double().sum(),
          "lstsq singular_values": lambda x: gg.linalg.lstsq(x, x, driver="gelsd").singular_values.sum(),
          "cholesky_ex info": lambda x: gg.linalg.cholesky_ex(x @ x.mT).info.double()}[name]
    want = float(fn(a))
    with pytest.raises(gg.CompileError, match="outside the recorded"):
        c = gg.compile(fn)
        c(a)
        c(a)
    assert float(fn(a)) == want
