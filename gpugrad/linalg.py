"""``gg.linalg``: torch.linalg's names (real floating tensors; batched over leading dims).

The implementations live in :mod:`gpugrad.ops.linalg2`; gradients follow PyTorch's formulas.
"""
from __future__ import annotations

from .ops.linalg2 import (EighResult, LinAlgError, QRResult, SlogdetResult, SVDResult, cholesky, det, eigh,
                          eigvalsh, inv, matrix_norm, norm, qr, slogdet, solve, svd, svdvals, vector_norm)
from .tensor import matmul

__all__ = ["LinAlgError", "cholesky", "det", "eigh", "eigvalsh", "inv", "matrix_norm", "norm", "qr", "slogdet",
           "solve", "svd", "svdvals", "vector_norm", "matmul", "EighResult", "QRResult", "SlogdetResult",
           "SVDResult"]
