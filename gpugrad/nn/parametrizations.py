"""``gg.nn.utils.parametrizations``: weight norm and spectral norm as parametrizations
(:mod:`gpugrad.nn.parametrize`), with PyTorch's names, arguments and state_dict layout.

The two parametrization modules keep PyTorch's class names (``_WeightNorm``, ``_SpectralNorm``), which show in
the module's repr, and its buffer names (``_u``, ``_v``), which show in state_dict keys; the arithmetic is
shared with the hook-based versions in :mod:`gpugrad.nn.weight_hooks`.
"""
from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from . import parametrize
from .module import Module
from .weight_hooks import _default_dim, _norm_except_dim, _power_iteration, _random_unit, _rows_first, _weight_norm

__all__ = ["weight_norm", "spectral_norm"]


class _WeightNorm(Module):
    """Two stored tensors, magnitude ``g`` (``original0``) and direction ``v`` (``original1``), give the
    weight ``g * v / ||v||``, the norm over every dimension but ``dim`` (``dim=None``: the whole tensor)."""

    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight):
        magnitude = _norm_except_dim(weight, self.dim)
        return magnitude, weight


def weight_norm(module, name="weight", dim=0):
    """Reparametrize ``module.<name>`` as ``g * v / ||v||``: ``g`` is stored as
    ``module.parametrizations.<name>.original0`` and ``v`` as ``original1`` (PyTorch's state_dict keys).
    Returns ``module``.

    NOTE: PyTorch also accepts old state dicts with ``<name>_g``/``<name>_v`` keys (through a load_state_dict
    pre-hook); gpugrad's Module has no such hooks, so rename those keys before loading."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


class _SpectralNorm(Module):
    """Divides the weight by an estimate of its largest singular value (the weight seen as a matrix with rows
    along ``dim``), kept up to date by power iteration on the buffers ``_u``/``_v``: 15 steps when built,
    ``n_power_iterations`` more at each evaluation in training mode, none in eval mode. A 1-D weight is just
    scaled to unit length."""

    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        nd = weight.ndim
        if not -nd <= dim < nd:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{nd}, {nd - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim, self.eps, self.n_power_iterations = dim % nd, eps, n_power_iterations
        if nd == 1:
            return
        mat = _rows_first(weight, self.dim)
        rows, cols = mat.shape
        self.register_buffer("_u", _random_unit(rows, weight, eps))
        self.register_buffer("_v", _random_unit(cols, weight, eps))
        # NOTE: 15 warm-up steps at construction, PyTorch's number, so the first sigma is already close
        _power_iteration(mat, self._u, self._v, 15, eps, v_first=False)

    def forward(self, w):
        if w.ndim < 2:  # 1-D (the constructor refused 0-D)
            return F.normalize(w, 2.0, 0, self.eps)
        mat = _rows_first(w, self.dim)
        steps = self.n_power_iterations if self.training else 0
        if steps:
            _power_iteration(mat, self._u, self._v, steps, self.eps, v_first=False)
        # NOTE: copies, because the next training evaluation rewrites the buffers in place
        top_singular = self._u.clone().dot(mat @ self._v.clone())
        return w / top_singular

    def right_inverse(self, value):
        return value  # any weight is its own preimage: the division by sigma is recomputed on every read


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Rescale ``module.<name>`` by the inverse of its spectral norm with a parametrization; the power
    iteration vectors are the buffers ``parametrizations.<name>.0._u``/``_v``. ``dim`` defaults to 1 for
    transposed convolutions and 0 otherwise. Returns ``module``."""
    target = getattr(module, name, None)
    if not isinstance(target, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    dim = _default_dim(module) if dim is None else dim
    parametrize.register_parametrization(module, name, _SpectralNorm(target, n_power_iterations, dim, eps))
    return module
