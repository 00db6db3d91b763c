"""Op families: each module holds primitives (forward and backward side by side) and the
composite functions built from them. Modules work on arrays inside Functions, Tensors outside."""
from . import elementwise, linalg, reduce, shape  # noqa: F401
from . import activation, loss, softmax  # noqa: F401  (fused ops; after the primitives they compose)
