"""Utilities by PyTorch's names: :mod:`gpugrad.utils.dlpack` (``torch.utils.dlpack``)."""
from . import dlpack  # noqa: F401
