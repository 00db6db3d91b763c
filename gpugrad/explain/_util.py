"""Helpers shared by the explanation methods: targets, eval mode, input gradients, chunking."""
from __future__ import annotations

import contextlib

import numpy as np

from ..autograd import grad as _grad
from ..autograd.grad_mode import enable_grad, no_grad
from ..tensor import Tensor, is_floating


def as_input(x):
    """``x`` as a floating-point Tensor (a batch ``(N, ...)``); arrays are wrapped without copying."""
    if not isinstance(x, Tensor):
        if isinstance(x, np.ndarray) or type(x).__module__.startswith("cupy"):
            x = Tensor(x)
        else:
            raise TypeError(f"expected the input batch as a Tensor, got {type(x).__name__}")
    if not is_floating(x.dtype):
        raise TypeError(f"the input batch must be floating point to be differentiated, got {x.dtype}")
    if x.ndim < 1:
        raise ValueError("the input must be a batch with a leading sample dimension (N, ...), got a 0-d tensor")
    return x


def target_index(target, n, xp, out=None):
    """Per-sample class indices, an int array of shape (n,) on the array module ``xp``.

    ``target`` is an int (the same class for every sample), a sequence / Tensor / array of n ints,
    or None: the predicted class (argmax of ``out``, the model output), or no selection for a
    model with one output per sample.
    """
    if target is None:
        if out is None:
            raise ValueError("target=None needs the model output to pick the predicted class")
        d = out._data
        if d.ndim == 1 or (d.ndim == 2 and d.shape[1] == 1):
            return None
        return xp.asarray(d.reshape(d.shape[0], -1).argmax(axis=1), dtype=np.int64)
    if isinstance(target, Tensor):
        target = target._data
    if isinstance(target, (int, np.integer)):
        return xp.full((n,), int(target), dtype=np.int64)
    arr = target if (isinstance(target, np.ndarray) or type(target).__module__.startswith("cupy")) \
        else np.asarray(target)
    if arr.ndim == 0:
        return xp.full((n,), int(arr), dtype=np.int64)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"target must be an int or hold one class index per sample ({n}), got shape {tuple(arr.shape)}")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"target must hold integer class indices, got dtype {arr.dtype}")
    return xp.asarray(arr, dtype=np.int64)


def select_mask(out, tgt):
    """A gradient seed (an array shaped like ``out``) that selects each sample's target score."""
    d = out._data
    xp = out.xp
    if tgt is None:
        return xp.ones_like(d)
    if d.ndim < 2:
        raise ValueError(f"the model output has shape {tuple(d.shape)}: a class target needs outputs (N, classes)")
    flat = d.reshape(d.shape[0], -1)
    if int(tgt.max()) >= flat.shape[1] or int(tgt.min()) < 0:
        raise IndexError(f"target class out of range for a model with {flat.shape[1]} outputs: "
                         f"got {int(tgt.min())}..{int(tgt.max())}")
    m = xp.zeros_like(flat)
    m[xp.arange(flat.shape[0]), tgt] = 1
    return m.reshape(d.shape)


def target_scores(out, tgt):
    """Each sample's target score as an array (N,) (no graph)."""
    d = out._data
    return (d * select_mask(out, tgt)).reshape(d.shape[0], -1).sum(axis=1)


@contextlib.contextmanager
def eval_mode(model):
    """Put ``model`` (and all its submodules) in eval mode; restore every module's own flag after."""
    mods = []
    named = getattr(model, "modules", None)
    if callable(named):
        mods = [(m, getattr(m, "training", None)) for m in model.modules()]
    elif hasattr(model, "training"):
        mods = [(model, model.training)]
    if hasattr(model, "eval") and callable(model.eval):
        model.eval()
    try:
        yield model
    finally:
        for m, flag in mods:
            if flag is not None:
                m.training = flag


def input_grad(model, x, tgt_arg, extra_hooks=None):
    """(gradient of the selected scores w.r.t. ``x``, model output): no parameter ``.grad`` is touched."""
    xr = x.detach().requires_grad_()
    with enable_grad():
        out = model(xr)
        if not isinstance(out, Tensor):
            raise TypeError(f"the model must return a Tensor, got {type(out).__name__}")
        tgt = target_index(tgt_arg, x.shape[0], x.xp, out)
        if not out.requires_grad:
            return Tensor(x.xp.zeros_like(x._data)), out.detach()
        (g,) = _grad(out, xr, grad_outputs=Tensor(select_mask(out, tgt)), allow_unused=True,
                     materialize_grads=True)
    return g, out.detach()


def forward(model, x):
    with no_grad():
        return model(x)


def row_blocks(n, batch):
    """Slices of range(n) with at most ``batch`` rows each (``None`` = one block)."""
    if batch is None or batch >= n:
        return [slice(0, n)]
    if batch < 1:
        raise ValueError(f"internal_batch_size must be a positive int, got {batch}")
    return [slice(i, min(i + batch, n)) for i in range(0, n, batch)]


def resolve_layer(model, layer):
    """A submodule given as a module object or by its name in ``model.named_modules()``."""
    if isinstance(layer, str):
        for name, m in model.named_modules():
            if name == layer:
                return m
        names = [n for n, _ in model.named_modules() if n]
        raise ValueError(f"the model has no layer named {layer!r}; its layers are {names}")
    return layer
