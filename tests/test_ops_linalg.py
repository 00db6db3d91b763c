"""Linear algebra (gpugrad/ops/linalg2.py, gg.linalg): values, dtypes, shapes, PyTorch's error texts and the
gradient conventions at special points. Gradients in general: tests/gradrows_linalg.py (gradcheck table)."""
import re

import numpy as np
import pytest

import gpugrad as gg

from conftest import to_np

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

la = gg.linalg
F64 = gg.float64
M23 = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
SQ = [[2.0, 1.0], [1.0, 3.0]]
S3 = [[4.0, 2.0, 0.0], [2.0, 5.0, 1.0], [0.0, 1.0, 3.0]]


def _torch_call(expr, args):
    return expr(torch, *[torch.tensor(np.asarray(a)) if isinstance(a, np.ndarray) else a for a in args])


def _a(x, dt=np.float64):
    return np.asarray(x, dtype=dt)


# (name, expr(lib, *args), args (arrays become tensors), expected value, expected dtype)
VALUES = [
    ("einsum_mm", lambda L, a, b: L.einsum("ij,kj->ik", a, b), (_a(M23), _a(M23)), [[14, 32], [32, 77]], "float64"),
    ("einsum_implicit", lambda L, a, b: L.einsum("ji,j", a, b), (_a(M23), _a([1, -1])), [-3, -3, -3], "float64"),
    ("einsum_implicit_order", lambda L, a: L.einsum("ba", a), (_a(M23),), [[1, 4], [2, 5], [3, 6]], "float64"),
    ("einsum_trace", lambda L, a: L.einsum("ii", a), (_a(S3),), 12, "float64"),
    ("einsum_diag", lambda L, a: L.einsum("ii->i", a), (_a(S3),), [4, 5, 3], "float64"),
    ("einsum_list", lambda L, a, b: L.einsum("i,j->ij", [a, b]), (_a([1, 2]), _a([3, 4, 5])),
     [[3, 4, 5], [6, 8, 10]], "float64"),
    ("einsum_ellipsis", lambda L, a: L.einsum("...i->...", a), (_a(M23),), [6, 15], "float64"),
    ("einsum_ellipsis_sum", lambda L, a: L.einsum("...i->i", a), (_a(M23),), [5, 7, 9], "float64"),
    ("einsum_broadcast1", lambda L, a, b: L.einsum("ij,ij->ij", a, b), (_a([[1, 2, 3]]), _a(M23)),
     [[1, 4, 9], [4, 10, 18]], "float64"),
    ("einsum_int", lambda L, a: L.einsum("ij->j", a), (_a(M23, np.int64),), [5, 7, 9], "int64"),
    ("einsum_spaces", lambda L, a: L.einsum(" i j -> j i ", a), (_a(M23),), [[1, 4], [2, 5], [3, 6]], "float64"),
    ("tensordot_int", lambda L, a, b: L.tensordot(a, b, dims=1), (_a(M23), _a([[1], [0], [2]])), [[7], [16]],
     "float64"),
    ("tensordot_lists", lambda L, a, b: L.tensordot(a, b, dims=([0], [0])), (_a(M23), _a([1, 1])), [5, 7, 9],
     "float64"),
    ("tensordot_0", lambda L, a, b: L.tensordot(a, b, dims=0).shape, (_a([1, 2]), _a([1, 2, 3])), (2, 3), None),
    ("kron", lambda L, a, b: L.kron(a, b), (_a([[1, 2]]), _a([[1], [10]])), [[1, 2], [10, 20]], "float64"),
    ("kron_promotes", lambda L, a, b: L.kron(a, b), (_a([1, 2], np.int64), _a([0.5], np.float32)), [0.5, 1],
     "float32"),
    ("outer", lambda L, a, b: L.outer(a, b), (_a([1, 2]), _a([1, 0, -1])), [[1, 0, -1], [2, 0, -2]], "float64"),
    ("outer_promotes", lambda L, a, b: L.outer(a, b), (_a([1, 2], np.int32), _a([3], np.int64)), [[3], [6]],
     "int64"),
    ("ger", lambda L, a, b: L.ger(a, b), (_a([1, 2]), _a([3])), [[3], [6]], "float64"),
    ("dot", lambda L, a, b: L.dot(a, b), (_a([1, 2, 3]), _a([4, 5, 6])), 32, "float64"),
    ("dot_int", lambda L, a, b: L.dot(a, b), (_a([1, 2], np.int64), _a([3, 4], np.int64)), 11, "int64"),
    ("vdot", lambda L, a, b: L.vdot(a, b), (_a([1, 2]), _a([3, 4])), 11, "float64"),
    ("inner", lambda L, a, b: L.inner(a, b), (_a(M23), _a([[1, 0, 1]])), [[4], [10]], "float64"),
    ("addmm", lambda L, c, a, b: L.addmm(c, a, b, beta=2, alpha=0.5), (_a([1, -1]), _a(M23), _a([[1, 0], [0, 1],
                                                                                           [1, 1]])),
     [[4, 0.5], [7, 3.5]], "float64"),
    ("addmm_beta0_nan", lambda L, c, a, b: L.addmm(c, a, b, beta=0), (_a([np.nan]), _a([[1, 2]]), _a([[1], [1]])),
     [[3]], "float64"),
    ("addmm_int_scalars_truncate", lambda L, c, a, b: L.addmm(c, a, b, beta=0.5, alpha=1.5),
     (_a([[1]], np.int64), _a([[2]], np.int64), _a([[3]], np.int64)), [[6]], "int64"),
    ("baddbmm", lambda L, c, a, b: L.baddbmm(c, a, b, alpha=2), (_a([1]), _a([[[1, 2]], [[3, 4]]]),
                                                                  _a([[[1], [1]], [[1], [0]]])),
     [[[7]], [[7]]], "float64"),
    ("addmv", lambda L, c, a, b: L.addmv(c, a, b, beta=-1), (_a([1, 1]), _a(M23), _a([1, 0, 1])), [3, 9],
     "float64"),
    ("trace", lambda L, a: L.trace(a), (_a(M23),), 6, "float64"),
    ("trace_int32_to_int64", lambda L, a: L.trace(a), (_a(SQ, np.int32),), 5, "int64"),
    ("tril", lambda L, a: L.tril(a), (_a(M23),), [[1, 0, 0], [4, 5, 0]], "float64"),
    ("tril_k", lambda L, a: L.tril(a, 1), (_a(M23, np.int32),), [[1, 2, 0], [4, 5, 6]], "int32"),
    ("triu_k", lambda L, a: L.triu(a, -1), (_a(S3),), [[4, 2, 0], [2, 5, 1], [0, 1, 3]], "float64"),
    ("triu_batched", lambda L, a: L.triu(a, 1)[1], (_a(np.ones((2, 2, 2))),), [[0, 1], [0, 0]], "float64"),
    ("diag_vec", lambda L, a: L.diag(a, 1), (_a([1, 2]),), [[0, 1, 0], [0, 0, 2], [0, 0, 0]], "float64"),
    ("diag_mat", lambda L, a: L.diag(a, -1), (_a(M23),), [4], "float64"),
    ("diag_embed", lambda L, a: L.diag_embed(a, 1, 0, 2)[:, 0], (_a([[1, 2]]),), [[0, 1, 0], [0, 0, 2],
                                                                                 [0, 0, 0]], "float64"),
    ("diag_embed_shape", lambda L, a: L.diag_embed(a, -1, 2, 0).shape, (_a(np.ones((2, 3))),), (4, 2, 4), None),
    ("inv", lambda L, a: L.linalg.inv(a), (_a(SQ),), [[0.6, -0.2], [-0.2, 0.4]], "float64"),
    ("inverse_f32", lambda L, a: L.inverse(a), (_a(SQ, np.float32),), [[0.6, -0.2], [-0.2, 0.4]], "float32"),
    ("inv_empty", lambda L, a: L.linalg.inv(a).shape, (_a(np.ones((0, 0))),), (0, 0), None),
    ("det", lambda L, a: L.linalg.det(a), (_a([[[2, 1], [1, 3]], [[1, 2], [3, 4]]]),), [5, -2], "float64"),
    ("det_empty", lambda L, a: L.det(a), (_a(np.ones((0, 0))),), 1, "float64"),
    ("slogdet", lambda L, a: tuple(L.linalg.slogdet(a)), (_a([[1, 2], [3, 4]]),), (-1, np.log(2)), "float64"),
    ("slogdet_singular", lambda L, a: tuple(L.slogdet(a)), (_a(np.zeros((2, 2))),), (0, -np.inf), "float64"),
    ("solve", lambda L, a, b: L.linalg.solve(a, b), (_a(SQ), _a([[3], [4]])), [[1], [1]], "float64"),
    ("solve_vec", lambda L, a, b: L.linalg.solve(a, b), (_a(SQ), _a([3, 4])), [1, 1], "float64"),
    ("solve_batch_vec", lambda L, a, b: L.linalg.solve(a, b), (_a([SQ, SQ]), _a([[3, 4], [2, 1]])),
     [[1, 1], [1, 0]], "float64"),
    ("solve_bcast_vec", lambda L, a, b: L.linalg.solve(a, b), (_a([SQ, SQ]), _a([3, 4])), [[1, 1], [1, 1]],
     "float64"),
    ("solve_right", lambda L, a, b: L.linalg.solve(a, b, left=False), (_a(SQ), _a([[3, 4]])), [[1, 1]], "float64"),
    ("cholesky", lambda L, a: L.linalg.cholesky(a), (_a([[4, 9], [2, 2]]),), [[2, 0], [1, 1]], "float64"),
    ("cholesky_upper_reads_upper", lambda L, a: L.linalg.cholesky(a, upper=True), (_a([[4, 2], [9, 2]]),),
     [[2, 1], [0, 1]], "float64"),
    ("qr_R", lambda L, a: L.linalg.qr(a).R, (_a([[3, 1], [4, 2]]),), [[-5, -2.2], [0, 0.4]], "float64"),
    ("qr_Q", lambda L, a: L.linalg.qr(a).Q, (_a([[3, 1], [4, 2]]),), [[-0.6, -0.8], [-0.8, 0.6]], "float64"),
    ("qr_complete_shape", lambda L, a: tuple(t.shape for t in L.linalg.qr(a, "complete")), (_a(np.ones((3, 2))),),
     ((3, 3), (3, 2)), None),
    ("qr_r_mode", lambda L, a: tuple(t.shape for t in L.linalg.qr(a, "r")), (_a(np.ones((3, 2))),), ((0,), (2, 2)),
     None),
    ("eigh_values", lambda L, a: L.linalg.eigh(a).eigenvalues, (_a([[2, 1], [1, 2]]),), [1, 3], "float64"),
    ("eigh_upper", lambda L, a: L.linalg.eigh(a, UPLO="U")[0], (_a([[2, 1], [5, 2]]),), [1, 3], "float64"),
    ("eigh_lower", lambda L, a: L.linalg.eigh(a)[0], (_a([[2, 5], [1, 2]]),), [1, 3], "float64"),
    ("svd_S", lambda L, a: L.linalg.svd(a).S, (_a([[3, 0], [0, -4], [0, 0]]),), [4, 3], "float64"),
    ("svd_shapes", lambda L, a: tuple(t.shape for t in L.linalg.svd(a)), (_a(np.ones((2, 3, 4))),),
     ((2, 3, 3), (2, 3), (2, 4, 4)), None),
    ("svd_reduced_shapes", lambda L, a: tuple(t.shape for t in L.linalg.svd(a, full_matrices=False)),
     (_a(np.ones((4, 3))),), ((4, 3), (3,), (3, 3)), None),
    ("svdvals", lambda L, a: L.linalg.svdvals(a), (_a([[0, 2], [1, 0]]),), [2, 1], "float64"),
    ("vector_norm", lambda L, a: L.linalg.vector_norm(a), (_a([[3, 4], [0, 0]]),), 5, "float64"),
    ("vector_norm_ord", lambda L, a: L.linalg.vector_norm(a, 1, dim=0), (_a([[3, -4], [1, 0]]),), [4, 4],
     "float64"),
    ("vector_norm_inf_keep", lambda L, a: L.linalg.vector_norm(a, float("inf"), dim=1, keepdim=True),
     (_a([[3, -4], [1, 0]]),), [[4], [1]], "float64"),
    ("vector_norm_dtype", lambda L, a: L.linalg.vector_norm(a, dtype=L.float64), (_a([3, 4], np.float32),), 5,
     "float64"),
    ("matrix_norm_fro", lambda L, a: L.linalg.matrix_norm(a), (_a([[3, 0], [0, 4]]),), 5, "float64"),
    ("matrix_norm_nuc", lambda L, a: L.linalg.matrix_norm(a, "nuc"), (_a([[3, 0], [0, -4]]),), 7, "float64"),
    ("matrix_norm_2", lambda L, a: L.linalg.matrix_norm(a, 2), (_a([[3, 0], [0, -4]]),), 4, "float64"),
    ("matrix_norm_-2", lambda L, a: L.linalg.matrix_norm(a, -2), (_a([[3, 0], [0, -4]]),), 3, "float64"),
    ("matrix_norm_1", lambda L, a: L.linalg.matrix_norm(a, 1), (_a([[1, -2], [3, 4]]),), 6, "float64"),
    ("matrix_norm_-1", lambda L, a: L.linalg.matrix_norm(a, -1), (_a([[1, -2], [3, 4]]),), 4, "float64"),
    ("matrix_norm_inf", lambda L, a: L.linalg.matrix_norm(a, float("inf")), (_a([[1, -2], [3, 4]]),), 7, "float64"),
    ("matrix_norm_-inf", lambda L, a: L.linalg.matrix_norm(a, -float("inf")), (_a([[1, -2], [3, 4]]),), 3,
     "float64"),
    ("matrix_norm_dims_keep", lambda L, a: L.linalg.matrix_norm(a, 1, dim=(0, 2), keepdim=True).shape,
     (_a(np.ones((2, 3, 4))),), (1, 3, 1), None),
    ("norm_default", lambda L, a: L.linalg.norm(a), (_a(np.full((2, 2, 2), 0.5)),), np.sqrt(2), "float64"),
    ("norm_ord_2d", lambda L, a: L.linalg.norm(a, 1), (_a([[1, -2], [3, 4]]),), 6, "float64"),
    ("norm_ord_1d", lambda L, a: L.linalg.norm(a, 1), (_a([1, -2]),), 3, "float64"),
    ("norm_dim_pair", lambda L, a: L.linalg.norm(a, dim=(0, 1)), (_a([[3, 4]]),), 5, "float64"),
    ("norm_nuc", lambda L, a: L.linalg.norm(a, "nuc"), (_a([[3, 0], [0, -4]]),), 7, "float64"),
]


@pytest.mark.parametrize("name,expr,args,want,dt", VALUES, ids=[v[0] for v in VALUES])
def test_values(name, expr, args, want, dt, device):
    got = expr(gg, *[gg.tensor(a, device=device) if isinstance(a, np.ndarray) else a for a in args])
    outs = got if isinstance(got, tuple) and got and isinstance(got[0], gg.Tensor) else (got,)
    wants = want if len(outs) > 1 else (want,)
    for g, w in zip(outs, wants):
        if dt is None:
            assert tuple(g) == tuple(w)
            continue
        assert g.dtype == np.dtype(dt)
        assert g.shape == np.shape(w)
        np.testing.assert_allclose(to_np(g), np.asarray(w, dtype=np.float64), rtol=1e-6, atol=1e-12)
    if torch is not None:  # the oracle agrees
        tg = _torch_call(expr, args)
        touts = tg if isinstance(tg, tuple) and tg and isinstance(tg[0], torch.Tensor) else (tg,)
        for g, t in zip(outs, touts):
            if dt is None:
                assert tuple(g) == tuple(t)
            else:
                assert str(t.dtype) == f"torch.{dt}"
                np.testing.assert_allclose(to_np(g), t.numpy(), rtol=1e-6, atol=1e-12)


E = np.ones
# (expr(lib, *args), args, error type, message (literal text))
ERRORS = [
    (lambda L, a, b: L.einsum("i,i", a, b), (E(3, np.float32), E(3)), RuntimeError,
     "expected scalar type Float but found Double"),
    (lambda L, a: L.einsum("ij", a, a), (E((2, 3)),), RuntimeError,
     "einsum(): more operands were provided than specified in the equation"),
    (lambda L, a: L.einsum("i,j", a), (E(3),), RuntimeError,
     "einsum(): fewer operands were provided than specified in the equation"),
    (lambda L, a: L.einsum("ij->k", a), (E((2, 3)),), RuntimeError,
     "einsum(): output subscript k does not appear in the equation for any input operand"),
    (lambda L, a: L.einsum("ij->ii", a), (E((2, 3)),), RuntimeError,
     "einsum(): output subscript i appears more than once in the output"),
    (lambda L, a: L.einsum("ii", a), (E((2, 3)),), RuntimeError,
     "einsum(): subscript i is repeated for operand 0 but the sizes don't match, 3 != 2"),
    (lambda L, a, b: L.einsum("ij,j->i", a, b), (E((2, 3)), E(2)), RuntimeError,
     "einsum(): subscript j has size 2 for operand 1 which does not broadcast with previously seen size 3"),
    (lambda L, a: L.einsum("i", a), (E((2, 3)),), RuntimeError,
     "einsum(): the number of subscripts in the equation (1) does not match the number of dimensions (2) for "
     "operand 0 and no ellipsis was given"),
    (lambda L, a: L.einsum("...ij->...", a), (E(3),), RuntimeError,
     "einsum(): the number of subscripts in the equation (2) is more than the number of dimensions (1) for operand 0"),
    (lambda L, a: L.einsum("i.j", a), (E((2, 3)),), RuntimeError,
     "einsum(): found '.' for operand 0 that is not part of any ellipsis"),
    (lambda L, a: L.einsum("i1", a), (E((3, 2)),), RuntimeError,
     "einsum(): invalid subscript given at index 1 in the equation string, subscripts must be in [a-zA-Z]"),
    (lambda L, a, b: L.dot(a, b), (E((2, 3)), E(3)), RuntimeError, "1D tensors expected, but got 2D and 1D tensors"),
    (lambda L, a, b: L.dot(a, b), (E(3, np.float32), E(3)), RuntimeError,
     "dot : expected both vectors to have same dtype, but found Float and Double"),
    (lambda L, a, b: L.dot(a, b), (E(3), E(4)), RuntimeError,
     "inconsistent tensor size, expected tensor [3] and src [4] to have the same number of elements, but got 3 and 4 "
     "elements respectively"),
    (lambda L, a, b: L.outer(a, b), (E((2, 3)), E(3)), RuntimeError, "outer: Expected 1-D argument self, but got 2-D"),
    (lambda L, a, b: L.outer(a, b), (E(3), E((2, 3))), RuntimeError, "outer: Expected 1-D argument vec2, but got 2-D"),
    (lambda L, c, a, b: L.addmm(c, a, b), (E(3), E((2, 3)), E((3, 2))), RuntimeError,
     "The expanded size of the tensor (2) must match the existing size (3) at non-singleton dimension 1.  Target "
     "sizes: [2, 2].  Tensor sizes: [3]"),
    (lambda L, c, a, b: L.addmm(c, a, b), (E(2), E((2, 3)), E((2, 2))), RuntimeError,
     "mat1 and mat2 shapes cannot be multiplied (2x3 and 2x2)"),
    (lambda L, c, a, b: L.addmm(c, a, b), (E(2), E(3), E((3, 2))), RuntimeError, "mat1 must be a matrix, got 1-D tensor"),
    (lambda L, c, a, b: L.addmm(c, a, b), (E(2, np.float32), E((2, 3)), E((3, 2))), RuntimeError,
     "self and mat2 must have the same dtype, but got Float and Double"),
    (lambda L, c, a, b: L.addmm(c, a, b), (E(2), E((2, 3), np.float32), E((3, 2))), RuntimeError,
     "mat1 and mat2 must have the same dtype, but got Float and Double"),
    (lambda L, c, a, b: L.baddbmm(c, a, b), (E(2), E((2, 3)), E((4, 3, 2))), RuntimeError, "batch1 must be a 3D tensor"),
    (lambda L, c, a, b: L.baddbmm(c, a, b), (E(2), E((4, 2, 3)), E((5, 3, 2))), RuntimeError,
     "Expected size for first two dimensions of batch2 tensor to be: [4, 3] but got: [5, 3]."),
    (lambda L, c, a, b: L.baddbmm(c, a, b), (E(2, np.float32), E((4, 2, 3)), E((4, 3, 2))), RuntimeError,
     "Input dtypes must be the same, got: input float, batch1: double, batch2: double"),
    (lambda L, c, a, b: L.addmv(c, a, b), (E(2), E((2, 3)), E(2)), RuntimeError,
     "size mismatch, got input (2), mat (2x3), vec (2)"),
    (lambda L, c, a, b: L.addmv(c, a, b), (E(2), E(3), E(3)), RuntimeError,
     "vector + matrix @ vector expected, got 1, 1, 1"),
    (lambda L, c, a, b: L.addmv(c, a, b), (E(2), E((2, 3), np.float32), E(3)), RuntimeError,
     "addmv input tensors must have the same dtype, but got Double, Float, and Double"),
    (lambda L, a, b: L.tensordot(a, b, dims=([1], [0])), (E((2, 3)), E((2, 4))), RuntimeError,
     "contracted dimensions need to match, but first has size 3 in dim 1 and second has size 2 in dim 0"),
    (lambda L, a, b: L.tensordot(a, b, dims=-1), (E((2, 3)), E((2, 3))), RuntimeError,
     "tensordot expects dims >= 0, but got dims=-1"),
    (lambda L, a, b: L.tensordot(a, b, dims=([0], [0, 1])), (E((2, 3)), E((2, 3))), RuntimeError,
     "both dimension lists should have same length"),
    (lambda L, a, b: L.tensordot(a, b), (E((2, 3)), E((2, 3), np.float32)), RuntimeError,
     "both inputs should have same dtype"),
    (lambda L, a: L.trace(a), (E((2, 2, 2)),), RuntimeError, "trace: expected a matrix, but got tensor with dim 3"),
    (lambda L, a: L.tril(a), (E(3),), RuntimeError, "tril: input tensor must have at least 2 dimensions"),
    (lambda L, a: L.triu(a), (E(3),), RuntimeError, "triu: input tensor must have at least 2 dimensions"),
    (lambda L, a: L.diag(a), (E((2, 2, 2)),), RuntimeError, "diag(): Supports 1D or 2D tensors. Got 3D"),
    (lambda L, a: L.diag_embed(a, 0, 0, 0), (E((2, 3)),), RuntimeError, "diagonal dimensions cannot be identical 0, 0"),
    (lambda L, a: L.diag_embed(a, 0, 3), (E((2, 3)),), IndexError,
     "Dimension out of range (expected to be in range of [-3, 2], but got 3)"),
    (lambda L, a: L.linalg.inv(a), (np.zeros((3, 3)),), RuntimeError,
     "linalg.inv: The diagonal element 1 is zero, the inversion could not be completed because the input matrix is "
     "singular."),
    (lambda L, a: L.linalg.inv(a), (np.array([[1., 2, 3], [4, 5, 6], [7, 8, 9]], np.float32),), RuntimeError,
     "linalg.inv: The diagonal element 3 is zero, the inversion could not be completed because the input matrix is "
     "singular."),
    (lambda L, a: L.linalg.inv(a), (np.zeros((2, 3, 3)),), RuntimeError,
     "linalg.inv: (Batch element 0): The diagonal element 1 is zero"),
    (lambda L, a: L.linalg.inv(a), (E((2, 3)),), RuntimeError,
     "linalg.inv: A must be batches of square matrices, but they are 2 by 3 matrices"),
    (lambda L, a: L.linalg.inv(a), (E((2, 2), np.int64),), RuntimeError,
     "linalg.inv: Expected a floating point or complex tensor as input. Got Long"),
    (lambda L, a: L.linalg.inv(a), (E((2, 2), np.float16),), RuntimeError,
     "linalg.inv: Low precision dtypes not supported. Got Half"),
    (lambda L, a: L.linalg.det(a), (E(3),), RuntimeError, "linalg.det: The input tensor A must have at least 2 dimensions."),
    (lambda L, a: L.linalg.cholesky(a), (np.array([[1., 2], [2, 1]]),), RuntimeError,
     "linalg.cholesky: The factorization could not be completed because the input is not positive-definite (the "
     "leading minor of order 2 is not positive-definite)."),
    (lambda L, a: L.linalg.cholesky(a), (np.stack([np.eye(2), -np.eye(2)]),), RuntimeError,
     "linalg.cholesky: (Batch element 1): The factorization could not be completed because the input is not "
     "positive-definite (the leading minor of order 1 is not positive-definite)."),
    (lambda L, a, b: L.linalg.solve(a, b), (np.zeros((2, 3, 3)), E(3)), RuntimeError,
     "torch.linalg.solve: (Batch element 0): The solver failed because the input matrix is singular."),
    (lambda L, a, b: L.linalg.solve(a, b), (np.eye(3), E((2, 3))), RuntimeError,
     "linalg.solve: Incompatible shapes of A and B for the equation AX = B (3x3 and 2x3)"),
    (lambda L, a, b: L.linalg.solve(a, b), (np.eye(3), E(4)), RuntimeError,
     "linalg.solve: Incompatible shapes of A and B for the equation AX = B (3x3 and 4x1)"),
    (lambda L, a, b: L.linalg.solve(a, b, left=False), (np.eye(3), E(3)), RuntimeError,
     "linalg.solve: Incompatible shapes of A and B for the equation XA = B (3x3 and 3x1)"),
    (lambda L, a, b: L.linalg.solve(a, b), (np.eye(3, dtype=np.float32), E(3)), RuntimeError,
     "linalg.solve: Expected A and B to have the same dtype, but found A of type Float and B of type Double instead"),
    (lambda L, a: L.linalg.qr(a, mode="x"), (E((2, 3)),), RuntimeError,
     "qr received unrecognized mode 'x' but expected one of 'reduced' (default), 'r', or 'complete'"),
    (lambda L, a: L.linalg.eigh(a), (E((2, 3)),), RuntimeError,
     "linalg.eigh: A must be batches of square matrices, but they are 2 by 3 matrices"),
    (lambda L, a: L.linalg.eigh(a, UPLO="X"), (np.eye(2),), RuntimeError,
     "Expected UPLO argument to be 'L' or 'U', but got X"),
    (lambda L, a: L.linalg.vector_norm(a, "fro"), (E(3),), TypeError,
     "linalg_vector_norm(): argument 'ord' (position 2) must be Number, not str"),
    (lambda L, a: L.linalg.matrix_norm(a), (E(3),), RuntimeError,
     "linalg.matrix_norm: The input tensor A must have at least 2 dimensions."),
    (lambda L, a: L.linalg.matrix_norm(a, 3), (E((2, 3)),), RuntimeError, "linalg.matrix_norm: Order 3 not supported."),
    (lambda L, a: L.linalg.matrix_norm(a, dim=(0, 0)), (E((2, 3)),), RuntimeError,
     "linalg.matrix_norm: dims must be different. Got (0, 0)"),
    (lambda L, a: L.linalg.matrix_norm(a), (E((2, 3), np.int64),), RuntimeError,
     "linalg.matrix_norm: Expected a floating point or complex tensor as input. Got Long"),
    (lambda L, a: L.linalg.norm(a, 2), (E((2, 2, 2)),), RuntimeError,
     "linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got 3D."),
    (lambda L, a: L.linalg.norm(a, dim=(0, 1, 2)), (E((2, 2, 2)),), RuntimeError,
     "linalg.norm: If dim is specified, it must be of length 1 or 2. Got [0, 1, 2]"),
]


@pytest.mark.parametrize("expr,args,exc,msg", ERRORS, ids=[e[3][:40] for e in ERRORS])
def test_errors(expr, args, exc, msg):
    with pytest.raises(exc, match=re.escape(msg)):
        expr(gg, *[gg.tensor(a) if isinstance(a, np.ndarray) else a for a in args])
    if torch is not None:
        with pytest.raises(exc, match=re.escape(msg)):
            _torch_call(expr, args)


def test_singular_matrices_raise_linalg_error():
    assert issubclass(la.LinAlgError, RuntimeError)
    with pytest.raises(la.LinAlgError):
        la.inv(gg.zeros(2, 2))


def _grad(f, x):
    x = gg.tensor(x, dtype=F64, requires_grad=True)
    f(x).backward()
    return to_np(x.grad)


@pytest.mark.parametrize("lib", ["gg", "torch"])
def test_det_gradient_at_singular_matrices(lib):
    """PyTorch: a zero first-order gradient where det == 0; the adjugate (via SVD) under create_graph."""
    if lib == "torch" and torch is None:
        pytest.skip("torch not installed")
    L, T, grad = (gg, lambda a: gg.tensor(a, requires_grad=True), gg.autograd.grad) if lib == "gg" else \
        (torch, lambda a: torch.tensor(a, requires_grad=True), torch.autograd.grad)
    a = T(np.array([[1.0, 2.0], [2.0, 4.0]]))
    (g1,) = grad(L.linalg.det(a), a)
    np.testing.assert_array_equal(np.asarray(g1.detach().numpy()), [[0, 0], [0, 0]])
    (g,) = grad(L.linalg.det(a), a, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [[4, -2], [-2, 1]], atol=1e-12)
    (h,) = grad((g * L.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=L.float64)).sum(), a)
    np.testing.assert_allclose(h.numpy(), [[4, -3], [-2, 1]], atol=1e-12)


def test_gradients_at_special_points():
    # eigenvalues alone stay finite at a repeated eigenvalue (V diag(g) V^T)
    np.testing.assert_allclose(_grad(lambda a: la.eigh(a).eigenvalues.sum(), np.eye(2)), np.eye(2), atol=1e-12)
    np.testing.assert_allclose(_grad(lambda a: la.svdvals(a).sum(), [[3.0, 0.0], [0.0, 2.0]]), np.eye(2), atol=1e-12)
    np.testing.assert_allclose(_grad(lambda a: la.inv(a).sum(), SQ), [[-0.16, -0.08], [-0.08, -0.04]], atol=1e-12)
    np.testing.assert_allclose(_grad(lambda a: gg.einsum("ii", a), S3), np.eye(3))
    np.testing.assert_allclose(_grad(lambda a: la.matrix_norm(a, 1), [[1.0, -2.0], [1.0, 2.0]]),
                               [[0, -1], [0, 1]])
    with pytest.raises(RuntimeError, match=re.escape("The derivative of linalg.qr depends on Q, which is not computed "
                                                     "when mode='r'")):
        _grad(lambda a: la.qr(a, "r").R.sum(), SQ)
    with pytest.raises(RuntimeError, match=re.escape("The QR decomposition is not differentiable when mode='complete' "
                                                     "and nrows > ncols.")):
        _grad(lambda a: la.qr(a, "complete").Q.sum(), np.ones((3, 2)))


def test_results_are_named_tuples_and_methods_exist():
    a = gg.tensor(S3, dtype=F64)
    assert la.svd(a)._fields == ("U", "S", "Vh") and la.qr(a)._fields == ("Q", "R")
    assert la.eigh(a)._fields == ("eigenvalues", "eigenvectors") and la.slogdet(a)._fields == ("sign", "logabsdet")
    assert float(a.det()) == pytest.approx(44.0) and float(a.trace()) == 12.0
    np.testing.assert_allclose(to_np(a @ a.inverse()), np.eye(3), atol=1e-12)
    assert a.tril(-1).tolist() == [[0, 0, 0], [2, 0, 0], [0, 1, 0]] and a.triu(2).tolist()[0] == [0, 0, 0]
    v = gg.tensor([1.0, 2.0])
    assert v.dot(v).item() == 5.0 and v.outer(v).tolist() == [[1, 2], [2, 4]] and v.diag().tolist() == [[1, 0], [0, 2]]
    assert v.kron(v).tolist() == [1, 2, 2, 4] and v.diag_embed().shape == (2, 2)
    assert gg.tensor([0.0]).addmv(gg.tensor([[1.0, 1.0]]), v, alpha=2).tolist() == [6.0]
    assert gg.tensor([[0.0]]).addmm(v[None], v[:, None]).tolist() == [[5.0]]
    assert gg.zeros(1, 1, 1).baddbmm(v[None, None], v[None, :, None]).tolist() == [[[5.0]]]
    assert a.slogdet().logabsdet.item() == pytest.approx(np.log(44.0))
