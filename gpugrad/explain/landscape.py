"""Loss landscapes: 1-D interpolation between two checkpoints (Goodfellow et al. 2015) and 1-D / 2-D
slices along random filter-normalized directions (Li et al. 2018)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import backend as _be
from .. import random as _random
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from ._util import eval_mode

__all__ = ["loss_landscape", "filter_normalized_direction", "Landscape"]


@dataclass
class Landscape:
    """The result of :func:`loss_landscape`.

    ``alphas`` (and ``betas`` for 2-D) are the grid coordinates; ``losses[i]`` (1-D) or
    ``losses[i, j]`` (2-D) is the mean loss at ``center + alphas[i] * d1 (+ betas[j] * d2)``, or
    for ``mode="interpolate"`` at ``(1 - alphas[i]) * start + alphas[i] * end``.
    """
    mode: str
    alphas: np.ndarray
    losses: np.ndarray
    betas: np.ndarray | None = None
    directions: list = field(default_factory=list, repr=False)

    @property
    def ndim(self):
        return 1 if self.betas is None else 2

    def to_dict(self):
        """Plain lists (JSON-ready); the directions are left out."""
        d = {"mode": self.mode, "alphas": self.alphas.tolist(), "losses": self.losses.tolist()}
        if self.betas is not None:
            d["betas"] = self.betas.tolist()
        return d

    def plot(self, path, **kw):
        from .plot import plot_landscape  # noqa: PLC0415
        return plot_landscape(self, path, **kw)


def _named_params(model):
    return [(n, p) for n, p in model.named_parameters()]


def filter_normalized_direction(model, seed=None, norm="filter"):
    """A random direction in parameter space, ``{param name: Tensor}``, on the parameters' devices.

    Gaussian entries, then for ``norm="filter"`` each filter (a slice along the first axis: an
    output channel of a Conv2d weight, an output unit's row of a Linear weight) is scaled to the
    norm of the same filter of the weights; ``"layer"`` scales each whole tensor instead; None
    keeps the raw Gaussian. Parameters with at most one dimension (biases, normalization weights
    and biases) are zero. ``seed`` seeds a NumPy generator (so CPU and GPU get the same direction);
    None draws from gpugrad's CPU generator (``gg.manual_seed``).
    """
    if norm not in ("filter", "layer", None):
        raise ValueError(f"norm must be 'filter', 'layer' or None, got {norm!r}")
    rng = _random.generator("cpu") if seed is None else np.random.default_rng(seed)
    out = {}
    for name, p in _named_params(model):
        d = p._data
        xp = _be.xp_of(d)
        if d.ndim <= 1:
            out[name] = Tensor(xp.zeros_like(d))
            continue
        r = rng.standard_normal(d.shape)
        w = _be.to_device(d, "cpu").astype(np.float64)
        if norm == "filter":
            wn = np.sqrt((w.reshape(w.shape[0], -1) ** 2).sum(1))
            rn = np.sqrt((r.reshape(r.shape[0], -1) ** 2).sum(1))
            r = r * (wn / np.maximum(rn, 1e-12)).reshape((-1,) + (1,) * (d.ndim - 1))
        elif norm == "layer":
            r = r * (np.linalg.norm(w) / max(np.linalg.norm(r), 1e-12))
        out[name] = Tensor(_be.to_device(r.astype(d.dtype), _be.device_of(d)))
    return out


def _batches(data):
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], Tensor) and \
            isinstance(data[1], Tensor):
        return [tuple(data)]
    out = [tuple(b) for b in data]
    if not out:
        raise ValueError("loss_landscape: data is empty")
    return out


def _mean_loss(model, loss_fn, batches):
    total, count = 0.0, 0
    for xb, yb in batches:
        loss = loss_fn(model(xb), yb)
        n = int(xb.shape[0])
        total += float(loss.item()) * n
        count += n
    return total / count


def _arrays_from(src, names, params, what):
    """``{name: array}`` on each parameter's device, from a Module or a state dict."""
    if hasattr(src, "named_parameters"):
        sd = dict(src.named_parameters())
    elif isinstance(src, dict):
        sd = src
    else:
        raise TypeError(f"loss_landscape: {what} must be a model or a state dict, got {type(src).__name__}")
    out = {}
    for name, p in zip(names, params):
        if name not in sd:
            raise KeyError(f"loss_landscape: {what} has no entry for parameter {name!r}")
        v = sd[name]
        a = v._data if isinstance(v, Tensor) else v
        if tuple(a.shape) != tuple(p._data.shape):
            raise ValueError(f"loss_landscape: {what}[{name!r}] has shape {tuple(a.shape)}, the model's "
                             f"parameter has {tuple(p._data.shape)}")
        out[name] = _be.to_device(_be.xp_of(a).asarray(a, dtype=p._data.dtype), _be.device_of(p._data))
    return out


def loss_landscape(model, loss_fn, data, mode="random", dims=1, steps=21, span=None, start=None, end=None,
                   directions=None, seed=None, norm="filter"):
    """Loss values over a line or plane in parameter space. Returns a :class:`Landscape`.

    ``loss_fn(model(x), y)`` must return a scalar Tensor (a mean over the batch); ``data`` is one
    ``(x, y)`` pair of Tensors or an iterable of them (a DataLoader); the loss at each point is
    the mean over all samples.

    * ``mode="interpolate"``: parameters ``(1 - a) * start + a * end`` for ``a`` in
      ``linspace(*span, steps)`` (span default (0, 1)); ``start`` (default: the model's current
      parameters) and ``end`` are models or state dicts keyed like ``model.named_parameters()``.
    * ``mode="random"``: ``center + a * d1`` (``dims=1``) or ``center + a * d1 + b * d2``
      (``dims=2``, a ``steps x steps`` grid) around ``center`` = ``start`` or the current
      parameters, for ``a, b`` in ``linspace(*span, steps)`` (span default (-1, 1)), with
      ``directions`` given (a list of ``{name: Tensor}``) or drawn by
      :func:`filter_normalized_direction` (``seed``, ``seed + 1``; ``norm``).

    The model runs in eval mode; its parameters are restored afterwards (the originals are never
    written to), and buffers such as BatchNorm statistics are left as they are.
    """
    if mode not in ("random", "interpolate"):
        raise ValueError(f"loss_landscape: mode must be 'random' or 'interpolate', got {mode!r}")
    if dims not in (1, 2):
        raise ValueError(f"loss_landscape: dims must be 1 or 2, got {dims}")
    if int(steps) < 1:
        raise ValueError(f"loss_landscape: steps must be >= 1, got {steps}")
    named = _named_params(model)
    names = [n for n, _ in named]
    params = [p for _, p in named]
    originals = [p._data for p in params]
    center = originals if start is None else [_arrays_from(start, names, params, "start")[n] for n in names]
    batches = _batches(data)
    if mode == "interpolate":
        if end is None:
            raise ValueError("loss_landscape: mode='interpolate' needs end= (a model or a state dict)")
        if dims != 1:
            raise ValueError("loss_landscape: interpolation between two checkpoints is 1-D (dims=1)")
        lo, hi = span if span is not None else (0.0, 1.0)
        endp = _arrays_from(end, names, params, "end")
        dirs = [[endp[n] - c for n, c in zip(names, center)]]
    else:
        lo, hi = span if span is not None else (-1.0, 1.0)
        if directions is None:
            directions = [filter_normalized_direction(model, None if seed is None else seed + k, norm)
                          for k in range(dims)]
        if len(directions) != dims:
            raise ValueError(f"loss_landscape: {dims} directions needed, got {len(directions)}")
        dirs = [list(_arrays_from(d, names, params, f"directions[{k}]").values()) for k, d in enumerate(directions)]
    grid = np.linspace(lo, hi, int(steps))
    losses = np.empty((len(grid),) * dims)
    try:
        with eval_mode(model), no_grad():
            for idx in np.ndindex(*losses.shape):
                coef = [grid[i] for i in idx]
                for k, p in enumerate(params):
                    v = center[k]
                    for c, d in zip(coef, dirs):
                        v = v + d[k] * v.dtype.type(c)
                    p._data = v
                losses[idx] = _mean_loss(model, loss_fn, batches)
    finally:
        for p, a in zip(params, originals):
            p._data = a
    dir_tensors = [{n: Tensor(a) for n, a in zip(names, d)} for d in dirs]
    return Landscape(mode=mode, alphas=grid, losses=losses, betas=grid.copy() if dims == 2 else None,
                     directions=dir_tensors)
