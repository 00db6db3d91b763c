"""Mixed precision (``torch.amp``'s names): :class:`GradScaler` (dynamic loss scaling) and
:class:`autocast` (ops in float16 where PyTorch's per-device lists say so; also ``gg.autocast``)."""
from .autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled  # noqa: F401
from .grad_scaler import GradScaler  # noqa: F401

__all__ = ["GradScaler", "autocast", "get_autocast_dtype", "is_autocast_enabled"]
