"""Utilities by PyTorch's names: :mod:`gpugrad.utils.dlpack` (``torch.utils.dlpack``)."""
from . import dlpack  # noqa: F401
from . import checkpoint  # noqa: F401  (torch.utils.checkpoint: checkpoint, checkpoint_sequential)
