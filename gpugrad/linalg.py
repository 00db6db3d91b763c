"""``gg.linalg``: torch.linalg's names (real floating tensors; batched over leading dims).

The implementations live in :mod:`gpugrad.ops.linalg2`; gradients follow PyTorch's formulas.
"""
from __future__ import annotations

from .ops.linalg2 import (CholeskyExResult, EighResult, InvExResult, LinAlgError, LstsqResult, LUFactorExResult,
                          LUFactorResult, LUResult, QRResult, SlogdetResult, SolveExResult, SVDResult, cholesky,
                          cholesky_ex, cond, cross, det, eig, eigh, eigvals, eigvalsh, householder_product, inv, inv_ex,
                          lstsq, lu, lu_factor, lu_factor_ex, lu_solve, matrix_exp, matrix_norm, matrix_power,
                          matrix_rank, multi_dot, norm, pinv, qr, slogdet, solve, solve_ex, solve_triangular, svd,
                          svdvals, tensorinv, tensorsolve, vander, vecdot, vector_norm)
from .ops.linalg2 import LDLFactorExResult, LDLFactorResult, ldl_factor, ldl_factor_ex, ldl_solve  # noqa: E402
from .tensor import Tensor, matmul

__all__ = ["LinAlgError", "cholesky", "cholesky_ex", "cond", "cross", "det", "diagonal", "eig", "eigh", "eigvals",
           "eigvalsh", "householder_product", "inv", "inv_ex", "lstsq", "lu", "lu_factor", "lu_factor_ex", "lu_solve",
           "matmul", "matrix_exp", "matrix_norm", "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr",
           "slogdet", "solve", "solve_ex", "solve_triangular", "svd", "svdvals", "tensorinv", "tensorsolve", "vander",
           "vecdot", "vector_norm", "CholeskyExResult", "EighResult", "InvExResult", "LstsqResult", "LUFactorExResult",
           "LUFactorResult", "LUResult", "QRResult", "SlogdetResult", "SolveExResult", "SVDResult"]
__all__ += ["ldl_factor", "ldl_factor_ex", "ldl_solve", "LDLFactorResult", "LDLFactorExResult"]


def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    """torch.linalg.diagonal: ``A.diagonal(offset, dim1, dim2)`` (a view) with the last two dims as defaults."""
    if not isinstance(A, Tensor):
        raise TypeError(f"linalg_diagonal(): argument 'A' (position 1) must be Tensor, not {type(A).__name__}")
    return A.diagonal(offset, dim1, dim2)
