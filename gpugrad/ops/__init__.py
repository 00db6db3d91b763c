"""Op families: each module holds primitives (forward and backward side by side) and the
composite functions built from them. Modules work on arrays inside Functions, Tensors outside."""
from . import elementwise, linalg, reduce, shape  # noqa: F401
# NOTE: the fused families (activation, loss, softmax) build on gpugrad.tensor, which imports the
# primitives above: gpugrad/__init__.py imports them after tensor (importing them here would be a circle).
