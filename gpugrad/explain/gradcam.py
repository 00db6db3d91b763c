"""Grad-CAM (Selvaraju et al. 2017), guided backpropagation (Springenberg et al. 2014) and guided Grad-CAM."""
from __future__ import annotations

import warnings

import numpy as np

from ..autograd import grad as _grad
from ..autograd.grad_mode import enable_grad
from ..tensor import Tensor
from ._util import as_input, eval_mode, forward, input_grad, resolve_layer, select_mask, target_index

__all__ = ["grad_cam", "guided_backprop", "guided_grad_cam", "upsample_bilinear", "last_conv_layer"]


def _interp_matrix(n_out, n_in):
    """(n_out, n_in) bilinear interpolation weights, half-pixel centres (align_corners=False)."""
    m = np.zeros((n_out, n_in))
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    f = src - i0
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), 1 - f)
    np.add.at(m, (rows, i1), f)
    return m


def upsample_bilinear(maps, size):
    """Bilinearly resize arrays/Tensors ``(..., h, w)`` to ``size=(H, W)`` (half-pixel centres)."""
    d = maps._data if isinstance(maps, Tensor) else maps
    xp = Tensor(d).xp
    H, W = size
    h, w = d.shape[-2:]
    if (h, w) == (H, W):
        return Tensor(d)
    mh = xp.asarray(_interp_matrix(H, h), dtype=d.dtype)
    mw = xp.asarray(_interp_matrix(W, w), dtype=d.dtype)
    return Tensor(mh @ d @ mw.T)


def _capture(layer, store):
    if not hasattr(layer, "register_forward_hook"):
        raise TypeError(f"layer must be a module of the model (with register_forward_hook), got {type(layer).__name__}")

    def hook(module, inputs, output):
        store.append(output)
    return layer.register_forward_hook(hook)


def grad_cam(model, x, target=None, layer=None, relu=True, upsample=True):
    """Grad-CAM on ``layer`` (a module of ``model``, or its name in ``model.named_modules()``;
    default: the last ``nn.Conv2d``).

    The layer's output A (N, K, h, w) is weighted per channel by the spatial mean of
    d score / d A; the weighted sum over channels (ReLU'd when ``relu``) is the map. With
    ``upsample`` it is resized bilinearly to the input's spatial size. Returns (N, 1, H, W)
    (or (N, 1, h, w) without upsampling), on ``x``'s device.
    """
    if layer is None:
        layer = last_conv_layer(model)
        if layer is None:
            raise ValueError("grad_cam needs a convolutional layer: the model has no nn.Conv2d, pass layer=")
    x = as_input(x)
    layer = resolve_layer(model, layer)
    store = []
    with eval_mode(model):
        handle = _capture(layer, store)
        try:
            xr = x.detach().requires_grad_()
            with enable_grad():
                out = model(xr)
        finally:
            handle.remove()
        if not store:
            raise RuntimeError(f"grad_cam: layer {type(layer).__name__} was not called in the model's forward")
        if len(store) > 1:
            raise RuntimeError(f"grad_cam: layer {type(layer).__name__} was called {len(store)} times in one forward; "
                               "pick a layer that runs once")
        act = store[0]
        if not isinstance(act, Tensor) or act.ndim != 4:
            raise ValueError(f"grad_cam needs a layer with (N, C, H, W) outputs (a convolutional layer), got "
                             f"{type(layer).__name__} with output shape {tuple(getattr(act, 'shape', ()))}")
        tgt = target_index(target, x.shape[0], x.xp, out)
        with enable_grad():
            (ga,) = _grad(out, act, grad_outputs=Tensor(select_mask(out, tgt)), allow_unused=True,
                          materialize_grads=True)
    a, g = act._data, ga._data
    alpha = g.mean(axis=(2, 3), keepdims=True)
    cam = (alpha * a).sum(axis=1, keepdims=True)
    if relu:
        cam = x.xp.maximum(cam, 0)
    if upsample:
        if x.ndim != 4:
            raise ValueError(f"grad_cam: cannot upsample to an input of shape {tuple(x.shape)}; pass upsample=False "
                             "or give (N, C, H, W) images")
        cam = upsample_bilinear(cam, x.shape[-2:])._data
    return Tensor(cam)


def _relu_types():
    from .. import nn  # noqa: PLC0415
    return tuple(t for t in (getattr(nn, "ReLU", None),) if t is not None)


def guided_backprop(model, x, target=None):
    """Guided backpropagation: at every ``nn.ReLU`` module only positive gradients flowing back
    through positive inputs pass. The change lives on this call's graph (tensor hooks on the
    ReLU outputs, forward hooks removed in ``finally``); nothing global is patched."""
    x = as_input(x)
    relus = [m for m in model.modules() if isinstance(m, _relu_types())]
    if not relus:
        warnings.warn("guided_backprop: the model has no nn.ReLU modules, so the result is the plain gradient "
                      "(functional relu calls are not guided)", stacklevel=2)

    def clamp_grad(g):
        return Tensor(g.xp.maximum(g._data, 0))

    def hook(module, inputs, output):
        if isinstance(output, Tensor) and output.requires_grad:
            output.register_hook(clamp_grad)

    handles = [m.register_forward_hook(hook) for m in relus]
    try:
        with eval_mode(model):
            g, _ = input_grad(model, x, target)
    finally:
        for h in handles:
            h.remove()
    return g


def guided_grad_cam(model, x, target=None, layer=None):
    """Guided Grad-CAM: guided backpropagation times the (upsampled) Grad-CAM map, shape of ``x``."""
    x = as_input(x)
    with eval_mode(model):
        tgt = target_index(target, x.shape[0], x.xp, forward(model, x) if target is None else None)
    cam = grad_cam(model, x, tgt, layer)
    gb = guided_backprop(model, x, tgt)
    return Tensor(gb._data * cam._data)


def last_conv_layer(model):
    """The name of the last ``nn.Conv2d`` in ``model.named_modules()`` (None when there is none)."""
    from .. import nn  # noqa: PLC0415
    name = None
    for n, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            name = n
    return name
