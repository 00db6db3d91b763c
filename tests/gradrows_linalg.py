"""Gradient-check rows for gg.linalg and the linear-algebra functions (gpugrad/ops/linalg2.py).

Inputs of inv / solve / cholesky / eigh are made well conditioned inside the row's function (A A^T + n I,
symmetric positive definite); eigh and svd rows check gauge-invariant functions of the vectors.
"""
import numpy as np

import gpugrad as gg


def _spd(a):  # Tensor or array (..., n, n) -> symmetric positive definite
    n = a.shape[-1]
    return a @ a.swapaxes(-1, -2) + n * (gg.eye(n, dtype=gg.float64) if isinstance(a, gg.Tensor) else np.eye(n))


_C = np.array([1.0, 2.0, -1.0, 3.0])


def _eigh_inv(L, V, T):  # eigenvalues and V diag(c) V^T: independent of the eigenvectors' signs
    return L, (V * T(_C[:V.shape[-1]])) @ V.swapaxes(-1, -2)


def _svd_inv(U, S, Vh, T):
    k = S.shape[-1]
    return S, (U[..., :k] * T(_C[:k])) @ Vh[..., :k, :]


def rows(R, ANY, POS, NONZERO, away):
    t64 = lambda a: gg.tensor(a, dtype=gg.float64)  # noqa: E731
    la = gg.linalg
    return [
        R("einsum_mm", lambda a, b: gg.einsum("ij,jk->ik", a, b), lambda a, b: a @ b, (2, 3), (3, 4)),
        R("einsum_diag", lambda a: gg.einsum("ii->i", a), np.diagonal, (3, 3)),
        R("einsum_trace", lambda a: gg.einsum("ii", a), np.trace, (3, 3)),
        R("einsum_ellipsis_bcast", lambda a, b: gg.einsum("...ij,...jk", a, b), lambda a, b: a @ b, (2, 1, 2, 3),
          (4, 3, 2)),
        R("einsum_size1_bcast", lambda a, b: gg.einsum("ij,ij->ij", a, b), np.multiply, (1, 3), (2, 3)),
        R("einsum_three", lambda a, b, c: gg.einsum("i,ij,j->", [a, b, c]), lambda a, b, c: a @ b @ c, (2,), (2, 3),
          (3,)),
        R("einsum_repeat_out", lambda a, b: gg.einsum("iij,j->ij", a, b),
          lambda a, b: np.einsum("iij,j->ij", a, b), (2, 2, 3), (3,)),
        R("einsum_sum_only", lambda a, b: gg.einsum("ab,c->c", a, b), lambda a, b: a.sum() * b, (2, 3), (2,)),
        R("tensordot", lambda a, b: gg.tensordot(a, b, ([0, 2], [1, 0])),
          lambda a, b: np.tensordot(a, b, ([0, 2], [1, 0])), (2, 3, 4), (4, 2, 2)),
        R("kron", gg.kron, np.kron, (2, 3), (2, 2)),
        R("outer", gg.outer, np.outer, (2,), (3,)),
        R("dot", gg.dot, np.dot, (3,), (3,)),
        R("addmm", lambda c, a, b: gg.addmm(c, a, b, beta=0.5, alpha=2), lambda c, a, b: 0.5 * c + 2 * (a @ b),
          (2,), (3, 4), (4, 2)),
        R("baddbmm", lambda c, a, b: gg.baddbmm(c, a, b, beta=-1), lambda c, a, b: -c + a @ b, (1, 2), (2, 2, 3),
          (2, 3, 2)),
        R("addmv", lambda c, a, b: gg.addmv(c, a, b, alpha=3), lambda c, a, b: c + 3 * (a @ b), (2,), (2, 3), (3,)),
        R("trace", gg.trace, np.trace, (3, 4)),
        R("diag_vec", lambda a: gg.diag(a, 1), lambda a: np.diag(a, 1), (3,)),
        R("diag_mat", lambda a: a.diag(-1), lambda a: np.diag(a, -1), (3, 4)),
        R("diag_embed", lambda a: gg.diag_embed(a, -1, 0, 2),
          lambda a: np.stack([np.diag(r, -1) for r in a]).transpose(1, 0, 2), (2, 3)),
        R("tril", lambda a: a.tril(-1), lambda a: np.tril(a, -1), (2, 3, 4)),
        R("triu", lambda a: gg.triu(a, 1), lambda a: np.triu(a, 1), (3, 3)),
        R("inv", lambda a: la.inv(_spd(a)), lambda a: np.linalg.inv(_spd(a)), (2, 3, 3)),
        R("inverse_general", lambda a: (a + 3 * gg.eye(3, dtype=gg.float64)).inverse(),
          lambda a: np.linalg.inv(a + 3 * np.eye(3)), (3, 3)),
        R("det", la.det, np.linalg.det, (2, 3, 3)),
        R("det_method", lambda a: a.det(), np.linalg.det, (2, 2)),
        R("slogdet", lambda a: la.slogdet(a).logabsdet, lambda a: np.linalg.slogdet(a)[1], (2, 3, 3)),
        R("solve", lambda a, b: la.solve(_spd(a), b), lambda a, b: np.linalg.solve(_spd(a), b), (2, 3, 3), (3, 2)),
        R("solve_vec", lambda a, b: la.solve(_spd(a), b), lambda a, b: np.linalg.solve(_spd(a), b[..., None])[..., 0],
          (2, 3, 3), (2, 3)),
        R("solve_right", lambda a, b: la.solve(_spd(a), b, left=False),
          lambda a, b: np.linalg.solve(_spd(a).T, b.T).T, (3, 3), (2, 3)),
        R("cholesky", lambda a: la.cholesky(_spd(a)), lambda a: np.linalg.cholesky(_spd(a)), (2, 3, 3)),
        R("cholesky_upper", lambda a: la.cholesky(_spd(a), upper=True),
          lambda a: np.linalg.cholesky(_spd(a)).T, (3, 3)),
        *[R(f"qr{s}", lambda a: tuple(la.qr(a)), lambda a: tuple(np.linalg.qr(a)), s)
          for s in [(4, 3), (3, 3), (3, 5), (2, 3, 2)]],
        R("eigh", lambda a: _eigh_inv(*la.eigh(_spd(a)), t64), lambda a: _eigh_inv(*np.linalg.eigh(_spd(a)), np.asarray),
          (2, 3, 3)),
        R("eigh_upper", lambda a: _eigh_inv(*la.eigh(_spd(a), UPLO="U"), t64),
          lambda a: _eigh_inv(*np.linalg.eigh(_spd(a), UPLO="U"), np.asarray), (4, 4)),
        *[R(f"svd{s}{fm}", lambda a, fm=fm: _svd_inv(*la.svd(a, fm), t64),
            lambda a, fm=fm: _svd_inv(*np.linalg.svd(a, full_matrices=fm), np.asarray), s)
          for s in [(4, 3), (3, 3), (2, 3, 4)] for fm in (False, True)],
        R("svdvals", la.svdvals, lambda a: np.linalg.svd(a, compute_uv=False), (2, 3, 4)),
        *[R(f"matrix_norm_{o}", lambda a, o=o: la.matrix_norm(a, o), lambda a, o=o: np.linalg.norm(a, o, (-2, -1)),
            (2, 3, 4), dom=NONZERO) for o in ["fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]],
        R("norm_vec3", lambda a: la.norm(a, 3, dim=1), lambda a: np.linalg.norm(a, 3, axis=1), (2, 3), dom=NONZERO),
        R("vector_norm_inf", lambda a: la.vector_norm(a, float("inf"), dim=(0, 2), keepdim=True),
          lambda a: np.abs(a).max(axis=(0, 2), keepdims=True), (2, 3, 2), dom=NONZERO),
        # issue 11: the rest of torch.linalg
        R("cross", la.cross, np.cross, (2, 3), (2, 3)),
        R("cross_dim0_bcast", lambda a, b: la.cross(a, b, dim=0), lambda a, b: np.cross(a, b, axis=0), (3, 1), (3, 2)),
        R("vecdot", la.vecdot, lambda a, b: (a * b).sum(-1), (2, 3), (3,)),
        R("multi_dot_vecs", lambda *t: la.multi_dot(t), lambda *t: np.linalg.multi_dot(t), (3,), (3, 4), (4, 2), (2,)),
        R("multi_dot3", lambda *t: la.multi_dot(list(t)), lambda *t: np.linalg.multi_dot(t), (2, 3), (3, 4), (4, 2)),
        *[R(f"matrix_power{k}", lambda a, k=k: la.matrix_power(a, k), lambda a, k=k: np.linalg.matrix_power(a, k),
            (2, 3, 3)) for k in (0, 2, 3, 5)],
        R("matrix_power-2", lambda a: la.matrix_power(_spd(a), -2), lambda a: np.linalg.matrix_power(_spd(a), -2),
          (2, 3, 3)),
        *[R(f"pinv{s}", la.pinv, np.linalg.pinv, s) for s in [(4, 3), (2, 3, 4)]],
        R("pinv_hermitian", lambda a: la.pinv(_spd(a), hermitian=True), lambda a: np.linalg.pinv(_spd(a)), (3, 3)),
        R("lstsq", lambda a, b: la.lstsq(a, b).solution, lambda a, b: np.linalg.lstsq(a, b, rcond=None)[0], (5, 3),
          (5, 2)),
        R("lstsq_wide_batch", lambda a, b: la.lstsq(a, b, driver="gelsd").solution,
          lambda a, b: np.stack([np.linalg.lstsq(x, y, rcond=None)[0] for x, y in zip(a, b)]), (2, 3, 4), (2, 3, 2)),
        R("lstsq_residuals", lambda a, b: la.lstsq(a, b, driver="gels").residuals,
          lambda a, b: np.linalg.lstsq(a, b[:, None], rcond=None)[1], (5, 3), (5,)),
        *[R(f"solve_triangular_{up}_{left}_{unit}", lambda a, b, up=up, left=left, unit=unit: la.solve_triangular(
            a + 3 * gg.eye(3, dtype=gg.float64), b, upper=up, left=left, unitriangular=unit),
            lambda a, b, up=up, left=left, unit=unit: _tri_ref(a + 3 * np.eye(3), b, up, left, unit), (2, 3, 3),
            (3, 2) if left else (2, 3)) for up, left, unit in [(True, True, False), (False, True, True),
                                                                 (True, False, True), (False, False, False)]],
        R("cond", la.cond, np.linalg.cond, (2, 4, 3)),
        R("cond_fro", lambda a: la.cond(a, "fro"), lambda a: np.linalg.cond(a, "fro"), (3, 3)),
        R("matrix_exp", la.matrix_exp, None, (2, 3, 3)),
        R("inv_ex", lambda a: la.inv_ex(_spd(a)).inverse, lambda a: np.linalg.inv(_spd(a)), (2, 3, 3)),
        R("cholesky_ex_upper", lambda a: la.cholesky_ex(_spd(a), upper=True).L,
          lambda a: np.linalg.cholesky(_spd(a)).swapaxes(-1, -2), (2, 3, 3)),
        R("solve_ex_right", lambda a, b: la.solve_ex(_spd(a), b, left=False).result,
          lambda a, b: np.linalg.solve(_spd(a).T, b.T).T, (3, 3), (2, 3)),
        *[R(f"lu_factor{s}", lambda a: la.lu_factor(a).LU, None, s) for s in [(3, 3), (2, 3, 3), (3, 5), (5, 3)]],
        *[R(f"lu{s}", lambda a: tuple(la.lu(a)[1:]), None, s) for s in [(2, 4, 4), (2, 4), (4, 2)]],
        *[R(f"lu_solve_{left}_{adj}", lambda a, b, left=left, adj=adj: la.lu_solve(*la.lu_factor(a), b, left=left,
                                                                                   adjoint=adj),
            lambda a, b, left=left, adj=adj: _lu_ref(a, b, left, adj), (2, 3, 3), (3, 2) if left else (2, 3))
          for left in (True, False) for adj in (False, True)],
        R("vander", lambda a: la.vander(a, N=4), lambda a: np.vander(a, 4, increasing=True), (3,)),
        R("vander_batch", la.vander, lambda a: np.stack([np.vander(r, increasing=True) for r in a]), (2, 3)),
        R("tensorinv", lambda a: la.tensorinv(_spd(a.reshape(4, 4)).reshape(4, 2, 2), ind=1),
          lambda a: np.linalg.tensorinv(_spd(a.reshape(4, 4)).reshape(4, 2, 2), ind=1), (4, 4)),
        R("tensorsolve", lambda a, b: la.tensorsolve(_spd(a).reshape(6, 2, 3), b),
          lambda a, b: np.linalg.tensorsolve(_spd(a).reshape(6, 2, 3), b), (6, 6), (6,)),
        R("householder_product", la.householder_product, _hh_ref, (2, 4, 3), (2, 2)),
    ]


def _tri_ref(a, b, up, left, unit):
    t = np.triu(a) if up else np.tril(a)
    t = t - t * np.eye(3) + np.eye(3) if unit else t
    return np.linalg.solve(t, b) if left else np.swapaxes(np.linalg.solve(np.swapaxes(t, -1, -2), b.T), -1, -2)


def _lu_ref(a, b, left, adj):
    a = np.swapaxes(a, -1, -2) if adj else a
    return np.linalg.solve(a, b) if left else np.swapaxes(np.linalg.solve(np.swapaxes(a, -1, -2), b.T), -1, -2)


def _hh_ref(a, tau):
    m, n = a.shape[-2:]
    out = []
    for x, t in zip(a, tau):
        q = np.eye(m)
        for i in range(t.shape[0]):
            v = np.tril(x, -1)[:, i] + np.eye(m, n)[:, i]
            q = q @ (np.eye(m) - t[i] * np.outer(v, v))
        out.append(q[:, :n])
    return np.stack(out)
