"""``gg.nn.utils`` weight tools that work through forward pre-hooks or by rewriting a layer's tensors.

* ``weight_norm`` / ``remove_weight_norm`` and ``spectral_norm`` / ``remove_spectral_norm``: the older,
  hook-based reparametrizations (PyTorch's names, arguments, parameter/buffer names and state_dict keys).
  Each installs one hook object (:class:`_WeightNormHook`, :class:`_SpectralNormHook`) that owns the recipe:
  ``attach`` rearranges the module's tensors, calling the hook recomputes ``module.<name>`` before a forward,
  ``detach`` folds everything back into one Parameter.
* ``fuse_conv_bn_*`` / ``fuse_linear_bn_*``: fold an eval-mode batch norm into the layer before it.
* ``skip_init``: build a module without caring about its initial values.
"""
from __future__ import annotations

import copy
import inspect
import warnings

import numpy as np

from .. import linalg
from ..autograd import no_grad
from ..backend import xp_of
from ..tensor import _bump
from .module import Module
from .parameter import Parameter

__all__ = ["weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm", "fuse_conv_bn_eval",
           "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights", "skip_init"]


# -- numerical pieces shared with gpugrad.nn.parametrizations ----------------------------------------------

def _norm_except_dim(v, dim):
    """``torch.norm_except_dim(v, 2, dim)``: 2-norms of the slices ``v.select(dim, i)``, shaped to broadcast
    against ``v`` (size-1 everywhere but ``dim``). PyTorch reads ``dim=-1`` (what ``dim=None`` becomes) as
    "no dimension kept": the norm of the whole tensor, 0-D."""
    if dim == -1:
        return linalg.vector_norm(v)
    kept = dim % v.ndim
    reduced = tuple(a for a in range(v.ndim) if a != kept)
    if not reduced:
        return v.abs()
    return linalg.vector_norm(v, 2, dim=reduced, keepdim=True)


def _weight_norm(v, g, dim):
    """``torch._weight_norm(v, g, dim)``, the value ``g * v / ||v||``."""
    # NOTE: evaluated as v * (g / norm), PyTorch's order, so values agree to the last bits
    scale = g / _norm_except_dim(v, dim)
    return v * scale


def _normalize(a, eps):
    """``F.normalize(a, dim=0, eps=eps)`` for a 1-D array: ``a / max(||a||, eps)``."""
    xp = xp_of(a)
    length = xp.sqrt(xp.dot(a, a))
    return a / xp.maximum(length, eps)


def _power_iteration(mat, u, v, steps, eps, v_first):
    """``steps`` rounds of power iteration for the top singular pair of the matrix Tensor ``mat``, written
    into the arrays of the 1-D Tensors ``u`` (length rows) and ``v`` (length columns). ``v_first`` picks the
    order inside a round: v <- normalize(mat^T u), then u <- normalize(mat v) (hook API), or u first
    (parametrization API), as in PyTorch's two implementations."""
    work = np.promote_types(mat.dtype, np.float32)  # NOTE: float16/bfloat16 iterate in float32
    m = mat._data.astype(work, copy=False)
    ua, va = u._data, v._data

    def left():
        ua[...] = _normalize(m @ va.astype(work), eps)

    def right():
        va[...] = _normalize(m.T @ ua.astype(work), eps)

    order = (right, left) if v_first else (left, right)
    for _ in range(steps):
        # NOTE: each result is stored into the buffer (rounded to its dtype) before the next product reads
        # it, as PyTorch's normalize(..., out=buffer) does
        for half_step in order:
            half_step()
    _bump(u)
    _bump(v)


def _random_unit(n, like, eps):
    """A random unit vector of length ``n`` with ``like``'s dtype and device."""
    from .. import randn  # noqa: PLC0415
    # NOTE: drawn from gpugrad's generator (gg.manual_seed), where PyTorch draws from its own
    t = randn(n, dtype=like.dtype, device=like.device)
    t._data = _normalize(t._data, eps)
    return t


def _rows_first(weight, dim):
    """``weight`` as a matrix whose rows run along ``dim`` (that dimension moved to the front, the rest
    flattened)."""
    if dim != 0:
        rest = [a for a in range(weight.ndim) if a != dim]
        weight = weight.permute(dim, *rest)
    return weight.reshape(weight.shape[0], -1)


def _default_dim(module):
    """Spectral norm's default ``dim``: 1 for transposed convolutions (their outputs are dimension 1), else 0."""
    from .extra import _ConvTransposeNd  # noqa: PLC0415
    return 1 if isinstance(module, _ConvTransposeNd) else 0


# -- the hook objects ----------------------------------------------------------------------------------------

def _installed(module, hook_type, name):
    """The key and object of ``module``'s forward pre-hook of ``hook_type`` that manages ``name``, or None."""
    for key, (hook, _kw) in module._forward_pre_hooks.items():
        if isinstance(hook, hook_type) and hook.name == name:
            return key, hook
    return None


def _uninstall(module, hook_type, label, name):
    found = _installed(module, hook_type, name)
    if found is None:
        raise ValueError(f"{label} of '{name}' not found in {module}")
    key, hook = found
    hook.detach(module)
    del module._forward_pre_hooks[key]
    return module


class _WeightNormHook:
    """``module.<name> = g * v / ||v||`` from the parameters ``<name>_g`` and ``<name>_v``."""

    def __init__(self, name, dim):
        self.name, self.dim = name, (-1 if dim is None else dim)

    def value(self, module):
        return _weight_norm(getattr(module, f"{self.name}_v"), getattr(module, f"{self.name}_g"), self.dim)

    def attach(self, module):
        w = getattr(module, self.name)
        module._parameters.pop(self.name)
        flat = w.detach()
        module.register_parameter(f"{self.name}_g", Parameter(_norm_except_dim(flat, self.dim)))
        module.register_parameter(f"{self.name}_v", Parameter(flat))  # shares the old weight's array, as PyTorch
        setattr(module, self.name, self.value(module))
        module.register_forward_pre_hook(self)

    def detach(self, module):
        w = self.value(module)
        delattr(module, self.name)  # the computed plain attribute
        for suffix in ("_g", "_v"):
            del module._parameters[self.name + suffix]
        setattr(module, self.name, Parameter(w.detach()))

    def __call__(self, module, args):
        setattr(module, self.name, self.value(module))


class _SpectralNormHook:
    """``module.<name> = <name>_orig / sigma``, sigma the top singular value of ``<name>_orig`` (as a matrix
    with rows along ``dim``) estimated from the buffers ``<name>_u`` and ``<name>_v``, which advance by
    ``n_power_iterations`` steps at each forward in training mode."""

    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.name, self.dim = name, dim
        self.n_power_iterations, self.eps = n_power_iterations, eps

    def value(self, module, iterate):
        w = getattr(module, f"{self.name}_orig")
        u, v = getattr(module, f"{self.name}_u"), getattr(module, f"{self.name}_v")
        mat = _rows_first(w, self.dim)
        if iterate:
            _power_iteration(mat, u, v, self.n_power_iterations, self.eps, v_first=True)
        # NOTE: sigma is built from copies: the buffers change in place at the next training forward, which
        # must not alter what this graph saved for backward
        sigma = u.clone().dot(mat @ v.clone())
        return w / sigma

    def attach(self, module):
        w = module._parameters[self.name]
        if w is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{self.name}` is None")
        with no_grad():
            rows, cols = _rows_first(w, self.dim).shape
            u = _random_unit(rows, w, self.eps)
            v = _random_unit(cols, w, self.eps)
        del module._parameters[self.name]
        module.register_parameter(f"{self.name}_orig", w)
        setattr(module, self.name, w.detach())
        module.register_buffer(f"{self.name}_u", u)
        module.register_buffer(f"{self.name}_v", v)
        module.register_forward_pre_hook(self)

    def detach(self, module):
        with no_grad():
            w = self.value(module, iterate=False)
        for attr in (self.name, f"{self.name}_u", f"{self.name}_v", f"{self.name}_orig"):
            delattr(module, attr)
        module.register_parameter(self.name, Parameter(w.detach()))

    def __call__(self, module, args):
        setattr(module, self.name, self.value(module, iterate=module.training))


# -- public functions ----------------------------------------------------------------------------------------

def weight_norm(module, name="weight", dim=0):
    """Split ``module.<name>`` into a magnitude ``<name>_g`` and a direction ``<name>_v`` (both parameters);
    the weight ``g * v / ||v||`` is recomputed before each forward. The norm is over every dimension but
    ``dim`` (over the whole tensor when ``dim=None``). Deprecated in PyTorch in favour of
    ``parametrizations.weight_norm``, with the same FutureWarning here. Returns ``module``."""
    warnings.warn("`torch.nn.utils.weight_norm` is deprecated in favor of "
                  "`torch.nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=2)
    if _installed(module, _WeightNormHook, name) is not None:
        raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
    _WeightNormHook(name, dim).attach(module)
    return module


def remove_weight_norm(module, name="weight"):
    """Undo :func:`weight_norm`: ``module.<name>`` is one Parameter again, holding the current value."""
    return _uninstall(module, _WeightNormHook, "weight_norm", name)


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Rescale ``module.<name>`` by the inverse of its spectral norm, estimated by power iteration
    (``n_power_iterations`` steps per training forward; none in eval mode). Adds the parameter ``<name>_orig``
    and the buffers ``<name>_u``, ``<name>_v``. ``dim`` (the output dimension) defaults to 1 for transposed
    convolutions and 0 otherwise. Returns ``module``."""
    if _installed(module, _SpectralNormHook, name) is not None:
        raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
    hook = _SpectralNormHook(name, n_power_iterations, _default_dim(module) if dim is None else dim, eps)
    hook.attach(module)
    return module


def remove_spectral_norm(module, name="weight"):
    """Undo :func:`spectral_norm`: ``module.<name>`` becomes one Parameter holding the normalized weight as
    it is now (no further power iteration)."""
    return _uninstall(module, _SpectralNormHook, "spectral_norm", name)


def _check_eval(layer, bn):
    if layer.training or bn.training:
        raise AssertionError("Fusion only for eval!")


def _check_stats(bn):
    if any(stat is None for stat in (bn.running_mean, bn.running_var)):
        raise AssertionError("bn.running_mean and bn.running_var must not be None")


def fuse_conv_bn_eval(conv, bn, transpose=False):
    """A deep copy of the eval-mode convolution ``conv`` that also applies the eval-mode batch norm ``bn``
    following it (``transpose=True`` for a transposed convolution, whose output channels are dimension 1)."""
    _check_eval(conv, bn)
    out = copy.deepcopy(conv)
    _check_stats(bn)
    out.weight, out.bias = fuse_conv_bn_weights(out.weight, out.bias, bn.running_mean, bn.running_var, bn.eps,
                                                bn.weight, bn.bias, transpose)
    return out


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """The convolution weight and bias (new Parameters) that give ``bn(conv(x))`` for an eval-mode batch norm
    with running mean ``bn_rm``, running variance ``bn_rv``, ``bn_eps`` and affine ``bn_w``/``bn_b`` (None:
    1 and 0); a missing ``conv_b`` counts as zeros. The results keep the conv tensors' dtypes."""
    from ..tensor import ones_like, zeros_like  # noqa: PLC0415
    w_dtype = conv_w.dtype
    b_dtype = w_dtype if conv_b is None else conv_b.dtype
    bias = zeros_like(bn_rm) if conv_b is None else conv_b
    gamma = ones_like(bn_rm) if bn_w is None else bn_w
    beta = zeros_like(bn_rm) if bn_b is None else bn_b
    inv_std = (bn_rv + bn_eps).rsqrt()
    # per-output-channel factor, laid along the weight's output dimension (0, or 1 when transposed)
    channel_axis = 1 if transpose else 0
    bshape = [1] * conv_w.ndim
    bshape[channel_axis] = -1
    # NOTE: the products are grouped as in PyTorch, so fused values match its to the last bit
    new_w = conv_w * (gamma * inv_std).reshape(bshape)
    new_b = (bias - bn_rm) * inv_std * gamma + beta
    return (Parameter(new_w.to(dtype=w_dtype), conv_w.requires_grad),
            Parameter(new_b.to(dtype=b_dtype), bias.requires_grad))


def fuse_linear_bn_eval(linear, bn):
    """A deep copy of the eval-mode ``linear`` that also applies the eval-mode batch norm ``bn`` following it
    (``bn.num_features`` must equal ``linear.out_features``, or be 1)."""
    _check_eval(linear, bn)
    out = copy.deepcopy(linear)
    if bn.num_features not in (linear.out_features, 1):
        raise AssertionError("To fuse, linear.out_features == bn.num_features or bn.num_features == 1, got "
                             f"linear.out_features={linear.out_features} and bn.num_features={bn.num_features}")
    _check_stats(bn)
    out.weight, out.bias = fuse_linear_bn_weights(out.weight, out.bias, bn.running_mean, bn.running_var, bn.eps,
                                                  bn.weight, bn.bias)
    return out


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """The linear weight and bias (new Parameters) that give ``bn(linear(x))`` for an eval-mode batch norm
    (arguments as :func:`fuse_conv_bn_weights`); the results keep the linear tensors' dtypes."""
    from ..tensor import ones_like, zeros_like  # noqa: PLC0415
    w_dtype = linear_w.dtype
    b_dtype = w_dtype if linear_b is None else linear_b.dtype
    bias = zeros_like(bn_rm) if linear_b is None else linear_b
    # NOTE: PyTorch fails on an affine=False batch norm here; gpugrad reads a missing weight/bias as 1/0
    gamma = ones_like(bn_rm) if bn_w is None else bn_w
    beta = zeros_like(bn_rm) if bn_b is None else bn_b
    per_row = gamma * (bn_rv + bn_eps).rsqrt()
    new_w = linear_w * per_row.to(dtype=w_dtype)[:, None]
    new_b = (bias - bn_rm) * per_row + beta
    return (Parameter(new_w, linear_w.requires_grad),
            Parameter(new_b.to(dtype=b_dtype), bias.requires_grad))


def skip_init(module_cls, *args, **kwargs):
    """``module_cls(*args, **kwargs)`` for a module whose initial parameter and buffer values do not matter
    (PyTorch leaves them uninitialized; gpugrad has no meta device and builds the module on ``device``, so its
    values are whatever the constructor makes). ``module_cls`` must take a ``device`` argument."""
    if not (isinstance(module_cls, type) and issubclass(module_cls, Module)):
        raise RuntimeError(f"Expected a Module; got {module_cls}")
    accepted = inspect.signature(module_cls).parameters
    if "device" not in accepted:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")
    kwargs.setdefault("device", "cpu")
    return module_cls(*args, **kwargs)
