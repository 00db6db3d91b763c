"""``gg.linalg``: torch.linalg's names (real floating tensors; batched over leading dims).

The implementations live in :mod:`gpugrad.ops.linalg2`; gradients follow PyTorch's formulas.
"""
from __future__ import annotations

from .ops.linalg2 import (EighResult, LinAlgError, QRResult, SlogdetResult, SVDResult, cholesky, det, eigh,
                          eigvalsh, inv, matrix_norm, norm, qr, slogdet, solve, svd, svdvals, vector_norm)
from .tensor import Tensor, matmul

__all__ = ["LinAlgError", "cholesky", "det", "diagonal", "eigh", "eigvalsh", "inv", "matrix_norm", "norm", "qr",
           "slogdet", "solve", "svd", "svdvals", "vector_norm", "matmul", "EighResult", "QRResult", "SlogdetResult",
           "SVDResult"]


def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    """torch.linalg.diagonal: ``A.diagonal(offset, dim1, dim2)`` (a view) with the last two dims as defaults."""
    if not isinstance(A, Tensor):
        raise TypeError(f"linalg_diagonal(): argument 'A' (position 1) must be Tensor, not {type(A).__name__}")
    return A.diagonal(offset, dim1, dim2)
