"""Gradient attributions with respect to the input: saliency, gradient x input, SmoothGrad
(and its squared and VarGrad variants) and integrated gradients.

Every function takes a batch ``x`` of shape (N, ...) and a ``target`` (an int, one class index
per sample, or None for the predicted class) and returns attributions with ``x``'s shape on
``x``'s device. The model runs in eval mode (each module's own train/eval flag is restored after)
and gradients are taken with ``gg.autograd.grad`` with respect to a detached copy of ``x``, so
the parameters' ``.grad`` fields are never touched.
"""
from __future__ import annotations

import functools

import numpy as np

from .. import random as _random
from ..tensor import Tensor
from ._util import as_input, eval_mode, forward, input_grad, row_blocks, target_index, target_scores

__all__ = ["saliency", "gradient_x_input", "input_x_gradient", "smoothgrad", "integrated_gradients",
           "IG_METHODS", "ig_steps"]


def saliency(model, x, target=None, abs=True):  # noqa: A002
    """Simonyan et al. 2013: the gradient of the target score with respect to the input.

    ``abs=True`` (default) gives its magnitude |d score / d x|; ``abs=False`` the signed gradient.
    """
    x = as_input(x)
    with eval_mode(model):
        g, _ = input_grad(model, x, target)
    return Tensor(x.xp.abs(g._data)) if abs else g


def gradient_x_input(model, x, target=None):
    """The signed gradient times the input, elementwise (equals integrated gradients with a zero
    baseline and a single right-Riemann step)."""
    x = as_input(x)
    with eval_mode(model):
        g, _ = input_grad(model, x, target)
    return Tensor(g._data * x._data)


input_x_gradient = gradient_x_input

_SG_VARIANTS = ("smoothgrad", "smoothgrad_sq", "vargrad")


def smoothgrad(model, x, target=None, n_samples=50, noise_level=0.15, seed=None, variant="smoothgrad",
               internal_batch_size=None):
    """SmoothGrad (Smilkov et al. 2017): gradients averaged over noisy copies of the input.

    Each copy is ``x + N(0, sigma^2)`` with ``sigma = noise_level * (max(x_i) - min(x_i))`` per
    sample. ``variant``: ``"smoothgrad"`` (mean of the signed gradients), ``"smoothgrad_sq"``
    (mean of the squared gradients) or ``"vargrad"`` (their variance, Adebayo et al. 2018).
    With ``noise_level=0`` these are the signed saliency, its square, and zero. The noise comes
    from ``default_rng(seed)`` of NumPy (CuPy on a GPU), or from gpugrad's generator (seeded by
    ``gg.manual_seed``) when ``seed`` is None.
    ``internal_batch_size`` bounds how many rows (noisy samples) go through the model at once.
    """
    if variant not in _SG_VARIANTS:
        raise ValueError(f"smoothgrad: variant must be one of {_SG_VARIANTS}, got {variant!r}")
    if int(n_samples) < 1:
        raise ValueError(f"smoothgrad: n_samples must be >= 1, got {n_samples}")
    if noise_level < 0:
        raise ValueError(f"smoothgrad: noise_level must be >= 0, got {noise_level}")
    if internal_batch_size is not None and int(internal_batch_size) < 1:
        raise ValueError(f"internal_batch_size must be a positive int, got {internal_batch_size}")
    x = as_input(x)
    xp, d = x.xp, x._data
    n, k = d.shape[0], int(n_samples)
    flat = d.reshape(n, -1)
    sigma = (noise_level * (flat.max(axis=1) - flat.min(axis=1))).astype(d.dtype) if flat.shape[1] else \
        xp.zeros((n,), d.dtype)
    sigma = sigma.reshape((n,) + (1,) * (d.ndim - 1))
    rng = _random.generator(x.device) if seed is None else xp.random.default_rng(seed)
    with eval_mode(model):
        # NOTE: the predicted class is taken once, on the clean input, not per noisy copy
        tgt = target_index(target, n, xp, forward(model, x) if target is None else None)
        s1 = xp.zeros_like(d)
        s2 = xp.zeros_like(d)
        # rows are (sample copy j, input i) pairs, j-major; each block holds whole copies of the batch
        per = k if internal_batch_size is None else max(1, int(internal_batch_size) // max(n, 1))
        for blk in row_blocks(k, per):
            m = blk.stop - blk.start
            noise = rng.standard_normal((m,) + d.shape).astype(d.dtype, copy=False)
            xs = (d[None] + noise * sigma[None]).reshape((m * n,) + d.shape[1:])
            g, _ = input_grad(model, Tensor(xs), None if tgt is None else xp.tile(tgt, m))
            g = g._data.reshape((m,) + d.shape)
            s1 += g.sum(axis=0)
            s2 += (g * g).sum(axis=0)
    mean = s1 / k
    if variant == "smoothgrad":
        return Tensor(mean)
    if variant == "smoothgrad_sq":
        return Tensor(s2 / k)
    return Tensor(xp.maximum(s2 / k - mean * mean, 0))


# -- integrated gradients ------------------------------------------------------------------------------
IG_METHODS = ("riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle", "gausslegendre")


def ig_steps(n_steps, method):
    """(alphas, weights) on [0, 1] for the path integral: sum_k w_k f(alpha_k) ~ integral_0^1 f."""
    n = int(n_steps)
    if n < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if method == "riemann_left":
        a = np.arange(n) / n
        w = np.full(n, 1.0 / n)
    elif method == "riemann_right":
        a = np.arange(1, n + 1) / n
        w = np.full(n, 1.0 / n)
    elif method == "riemann_middle":
        a = (np.arange(n) + 0.5) / n
        w = np.full(n, 1.0 / n)
    elif method == "riemann_trapezoid":
        if n < 2:
            raise ValueError("riemann_trapezoid needs n_steps >= 2 (it evaluates both end points)")
        a = np.linspace(0.0, 1.0, n)
        w = np.full(n, 1.0 / (n - 1))
        w[0] = w[-1] = 0.5 / (n - 1)
    elif method == "gausslegendre":
        t, wt = _gauss_legendre(n)
        a, w = (t + 1) / 2, wt / 2
    else:
        raise ValueError(f"integrated_gradients: method must be one of {IG_METHODS}, got {method!r}")
    return a, w


@functools.lru_cache(maxsize=16)
def _gauss_legendre(n):
    """Gauss-Legendre nodes and weights on [-1, 1] (Golub-Welsch: eigen-decomposition of the Jacobi matrix)."""
    # NOTE: numpy's leggauss takes ~1 s for n=256; the symmetric tridiagonal eigenproblem takes ~ms.
    k = np.arange(1, n)
    off = k / np.sqrt(4.0 * k * k - 1)
    nodes, vecs = np.linalg.eigh(np.diag(off, 1) + np.diag(off, -1))
    nodes = (nodes - nodes[::-1]) / 2  # exact symmetry about 0
    w = 2 * vecs[0] ** 2
    w = (w + w[::-1]) / 2
    return nodes, w


def _baseline(baseline, x):
    xp, d = x.xp, x._data
    if baseline is None:
        return xp.zeros_like(d)
    if isinstance(baseline, (int, float, np.number)):
        return xp.full_like(d, baseline)
    b = baseline._data if isinstance(baseline, Tensor) else baseline
    if type(b) is not type(d):
        raise RuntimeError(f"the baseline is on a different device than the input ({x.device})")
    try:
        return xp.broadcast_to(b.astype(d.dtype, copy=False), d.shape)
    except ValueError:
        raise ValueError(f"baseline of shape {tuple(b.shape)} does not broadcast to the input shape {tuple(d.shape)}") \
            from None


def integrated_gradients(model, x, target=None, baseline=None, n_steps=50, method="riemann_trapezoid",
                         internal_batch_size=None, return_convergence_delta=False):
    """Integrated gradients (Sundararajan et al. 2017).

    ``(x - b) * integral_0^1 grad f_target(b + a (x - b)) da``, the integral taken by ``method``
    with ``n_steps`` points (``"gausslegendre"`` is exact for polynomial paths of degree
    < 2 n_steps). ``baseline`` is None (zeros), a number, or a tensor broadcastable to ``x``.
    The ``n_steps * N`` path points are evaluated in chunks of at most ``internal_batch_size``
    rows, so memory stays bounded. With ``return_convergence_delta=True`` it also returns
    ``|sum of attributions - (f(x) - f(b))|`` per sample (a Tensor (N,)): by completeness it is
    zero for the exact integral, so it measures the quadrature error.
    """
    x = as_input(x)
    xp, d = x.xp, x._data
    n = d.shape[0]
    alphas, weights = ig_steps(n_steps, method)
    b = _baseline(baseline, x)
    diff = d - b
    if internal_batch_size is not None and int(internal_batch_size) < 1:
        raise ValueError(f"internal_batch_size must be a positive int, got {internal_batch_size}")
    with eval_mode(model):
        out_x = forward(model, x)
        tgt = target_index(target, n, xp, out_x)
        total = xp.zeros_like(d)
        B = n * len(alphas) if internal_batch_size is None else int(internal_batch_size)
        # samples in blocks of at most B rows; within a block, as many path steps per forward as fit
        for sblk in row_blocks(n, B):
            ns = sblk.stop - sblk.start
            bs, ds = b[sblk], diff[sblk]
            ts = None if tgt is None else tgt[sblk]
            acc = xp.zeros_like(ds)
            for kblk in row_blocks(len(alphas), max(1, B // ns)):
                a = xp.asarray(alphas[kblk], dtype=d.dtype)
                w = xp.asarray(weights[kblk], dtype=d.dtype)
                m = a.shape[0]
                shp = (m,) + (1,) * d.ndim
                pts = (bs[None] + a.reshape(shp) * ds[None]).reshape((m * ns,) + d.shape[1:])
                g, _ = input_grad(model, Tensor(pts), None if ts is None else xp.tile(ts, m))
                acc += (g._data.reshape((m, ns) + d.shape[1:]) * w.reshape(shp)).sum(axis=0)
            total[sblk] = acc
        attr = diff * total
        if not return_convergence_delta:
            return Tensor(attr)
        out_b = forward(model, Tensor(xp.ascontiguousarray(b)))
        gap = target_scores(out_x, tgt) - target_scores(out_b, tgt)
        delta = xp.abs(attr.reshape(n, -1).sum(axis=1) - gap)
    return Tensor(attr), Tensor(delta)
