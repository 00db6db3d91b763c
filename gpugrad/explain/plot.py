"""PNG plots of explanations (needs the ``plot`` extra: ``pip install "gpugrad[plot]"``).

matplotlib is imported inside the functions, never when ``gpugrad.explain`` is imported, and only
its object API is used (no pyplot global state), so plotting is safe in scripts and threads.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["plot_attribution", "plot_gradient_norms", "plot_landscape"]


def _mpl():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415
    except ImportError as e:
        raise ImportError('plotting needs matplotlib: install the plot extra, pip install "gpugrad[plot]" '
                          f"({e})") from None
    return Figure, FigureCanvasAgg


def _host(t):
    d = getattr(t, "data", t)
    if not isinstance(d, np.ndarray) and type(d).__module__.startswith("cupy"):
        d = d.get()
    return np.asarray(d, dtype=np.float64)


def _save(fig, canvas_cls, path):
    canvas_cls(fig)
    fig.savefig(path, format="png")
    return path


def _as_image(a, what):
    a = _host(a)
    while a.ndim > 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3:
        return a  # (C, H, W)
    if a.ndim == 2:
        return a[None]
    if a.ndim == 1 and math.isqrt(a.size) ** 2 == a.size:  # a flattened square image
        s = math.isqrt(a.size)
        return a.reshape(1, s, s)
    raise ValueError(f"{what}: expected one image (C, H, W) or (H, W), got shape {a.shape}")


def plot_attribution(image, attribution, path, title=None, signed=None, alpha=0.6):
    """The input image and the attribution heatmap laid over it, side by side, as a PNG.

    ``image``/``attribution``: one sample ((C, H, W), (H, W), a batch of one, or a flattened square
    image); channels of the attribution are summed. A signed map (``signed=None``: when it has
    negative values) uses a diverging red/blue scale centred on zero, else a heat scale from 0.
    Returns ``path``.
    """
    Figure, Canvas = _mpl()
    img = _as_image(image, "image")
    att = _as_image(attribution, "attribution").sum(axis=0)
    if att.shape != img.shape[1:]:
        raise ValueError(f"attribution {att.shape} and image {img.shape[1:]} differ in size")
    gray = img.mean(axis=0) if img.shape[0] != 3 else None
    rgb = None if gray is not None else np.clip(np.moveaxis(img, 0, -1), 0, 1)
    if signed is None:
        signed = bool((att < 0).any())
    fig = Figure(figsize=(6.4, 3.2), dpi=100)
    ax0, ax1 = fig.subplots(1, 2)
    for ax in (ax0, ax1):
        if gray is not None:
            ax.imshow(gray, cmap="gray", interpolation="nearest")
        else:
            ax.imshow(rgb, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    ax0.set_title("input")
    if signed:
        m = float(np.abs(att).max()) or 1.0
        im = ax1.imshow(att, cmap="bwr", vmin=-m, vmax=m, alpha=alpha, interpolation="nearest")
    else:
        im = ax1.imshow(att, cmap="inferno", vmin=0, vmax=float(att.max()) or 1.0, alpha=alpha,
                        interpolation="nearest")
    fig.colorbar(im, ax=ax1, fraction=0.046, pad=0.04)
    ax1.set_title("attribution")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Canvas, path)


def layer_labels(history):
    """The legend label of each layer in a :class:`GradientMonitor` history: its module path and type
    (``"0 Conv2d"``, ``"features.3 Linear"``; the bare path for a history without types)."""
    types = history.get("layer_types", {})
    return [f"{layer} {types[layer]}" if layer in types else layer for layer in history["layers"]]


def plot_gradient_norms(history, path, log=True, title="gradient norm per layer"):
    """Per-layer gradient norms over the steps (a :class:`GradientMonitor` history), with flagged
    steps marked, as a PNG; layers are labelled by module path and type. Returns ``path``."""
    Figure, Canvas = _mpl()
    if hasattr(history, "history"):
        history = history.history
    steps = np.asarray(history["steps"])
    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.subplots()
    for layer, label in zip(history["layers"], layer_labels(history)):
        v = np.array([np.nan if x is None else float(x) for x in history["grad_norm"][layer]])
        ax.plot(steps, v, label=label)
    bad = [e for e in history.get("events", [])]
    if bad:
        ys = [float(e["grad_norm"]) if math.isfinite(float(e["grad_norm"])) else np.nan for e in bad]
        ax.scatter([e["step"] for e in bad], ys, marker="x", color="red", zorder=3, label="flagged")
    ax.axhline(history["vanish_threshold"], color="gray", ls=":", lw=1)
    ax.axhline(history["explode_threshold"], color="gray", ls="--", lw=1)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("gradient L2 norm")
    ax.set_title(title)
    ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
    return _save(fig, Canvas, path)


def plot_landscape(landscape, path, title=None, levels=20, log=False):
    """A loss landscape (:class:`Landscape`): a curve for 1-D, filled contours for 2-D. Returns ``path``."""
    Figure, Canvas = _mpl()
    losses = np.asarray(landscape.losses, dtype=np.float64)
    if log:
        losses = np.log10(np.maximum(losses, 1e-12))
    fig = Figure(figsize=(5.5, 4.5), dpi=100)
    ax = fig.subplots()
    if landscape.betas is None:
        ax.plot(landscape.alphas, losses, marker="o", ms=3)
        ax.set_xlabel("alpha (interpolation)" if landscape.mode == "interpolate" else "alpha (direction 1)")
        ax.set_ylabel("log10 loss" if log else "loss")
    else:
        A, B = np.meshgrid(landscape.alphas, landscape.betas, indexing="ij")
        cs = ax.contourf(A, B, losses, levels=levels, cmap="viridis")
        ax.contour(A, B, losses, levels=levels, colors="k", linewidths=0.4)
        fig.colorbar(cs, ax=ax, label="log10 loss" if log else "loss")
        ax.set_xlabel("direction 1")
        ax.set_ylabel("direction 2")
    ax.set_title(title or f"loss landscape ({landscape.mode})")
    fig.tight_layout()
    return _save(fig, Canvas, path)
