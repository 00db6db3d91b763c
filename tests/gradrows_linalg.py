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
    ]
