"""The gradient scaler's fused pass (gpugrad.amp.GradScaler): inf/NaN check and unscale, in place.

``unscale_(grads, inv_scale, found_inf)`` multiplies every array of ``grads`` (one device, one
dtype) by ``inv_scale`` and sets ``found_inf`` to 1 when any element was inf or NaN. CuPy arrays
launch ``gpugrad_amp_unscale<T>`` from ``kernels/amp.cu`` once for all of them (a table of
pointers; ``inv_scale`` and ``found_inf`` stay in device memory, nothing is read back); NumPy
arrays run the fallback below with the same per-element semantics (see the kernel's NOTE):

- the check looks at each gradient before the multiply;
- every gradient is multiplied, found or not; ``inv_scale == 1`` leaves values as they are;
- ``inv_scale`` is a float32 value; float16/bfloat16 gradients are widened to float32, multiplied
  and rounded once; float64 gradients multiply by the float32 value widened to float64.
"""
from __future__ import annotations

import numpy as np

from ..backend import xp_of
from ._common import F32, FusedOp, table
from . import cuda

__all__ = ["ROWS", "unscale_"]

_SOURCE = "amp.cu"


def unscale_(grads, inv_scale, found_inf):
    """In place: ``g *= inv_scale`` for each of ``grads``; ``found_inf[...] = 1`` if any was non-finite.

    ``inv_scale`` and ``found_inf`` are float32 arrays of one element on the gradients' device."""
    grads = [g for g in grads if g.size]
    if not grads:
        return
    xp = xp_of(grads[0])
    dt = grads[0].dtype
    for g in grads:
        if g.dtype != dt or xp_of(g) is not xp:
            raise ValueError("unscale_: the gradients of one call must share a dtype and a device")
    for name, a in (("inv_scale", inv_scale), ("found_inf", found_inf)):
        if a.dtype != F32 or a.size != 1 or xp_of(a) is not xp:
            raise ValueError(f"unscale_: '{name}' must be a one-element float32 array on the gradients' device")
    if xp is not np:
        _gpu_unscale(xp, grads, inv_scale, found_inf)
        return
    inv = inv_scale.reshape(()).astype(F32)
    wide = F32 if dt.itemsize < 4 else dt  # NOTE: float16/bfloat16 compute in float32, rounded once on store
    invw = inv.astype(wide)
    for g in grads:
        if not np.isfinite(g).all():        # NOTE: checked before the multiply, as the kernel does
            found_inf[...] = 1.0
        if invw == 1:
            continue
        if g.dtype == wide:
            np.multiply(g, invw, out=g)
        else:
            g[...] = np.multiply(g.astype(wide), invw)


def _gpu_unscale(cp, grads, inv_scale, found_inf):
    with cuda.on(grads[0]):
        # NOTE: strided gradients go through contiguous copies written back afterwards (rare: .grad
        #       is allocated contiguous); the pointer table then names the copies.
        work = [g if g.flags.c_contiguous else cp.ascontiguousarray(g) for g in grads]
        sizes = np.array([0] + [w.size for w in work], np.int64)
        offsets = cp.asarray(np.cumsum(sizes))
        ptrs = cp.asarray(np.array([w.data.ptr for w in work], np.uint64))
        n = int(sizes.sum())
        cuda.map_launch(_SOURCE, "gpugrad_amp_unscale", grads[0].dtype, n,
                        (ptrs, offsets, np.int64(len(work)), inv_scale.reshape(()), found_inf.reshape(())))
        for g, w in zip(grads, work):
            if w is not g:
                g[...] = w


# -- the table: one in-place kernel (no backward, no composite) ---------------------------------------
ROWS = table([FusedOp("amp_unscale", _SOURCE, "update", "none", unscale_, None, None, kernels=["gpugrad_amp_unscale"])])
