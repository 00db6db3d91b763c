"""Fused losses on arrays: one signature for NumPy (fallback) and CuPy (``kernels/loss.cu``).

API (PyTorch's argument names, defaults and semantics; ``reduction`` in 'none' | 'mean' | 'sum')::

    cross_entropy_fwd(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0,
                      reduction="mean") -> (loss, lse)
    cross_entropy_bwd(g, logits, target, lse, weight=None, ignore_index=-100,
                      label_smoothing=0.0, reduction="mean") -> grad_logits
    nll_loss_fwd(logp, target, weight=None, ignore_index=-100, reduction="mean") -> loss
    nll_loss_bwd(g, logp, target, weight=None, ignore_index=-100, reduction="mean") -> grad_logp
    bce_with_logits_fwd(x, target, weight=None, pos_weight=None, reduction="mean") -> loss
    bce_with_logits_bwd(g, x, target, weight=None, pos_weight=None, reduction="mean") -> grad_x
    mse_loss_fwd(x, target, reduction="mean")            mse_loss_bwd(g, x, target, reduction="mean")
    l1_loss_fwd / l1_loss_bwd                            (same arguments)
    huber_loss_fwd(x, target, reduction="mean", delta=1.0)   / huber_loss_bwd(g, ..., delta=1.0)
    smooth_l1_loss_fwd(x, target, reduction="mean", beta=1.0) / smooth_l1_loss_bwd(g, ..., beta=1.0)

Cross-entropy / NLL layouts: logits (C,) with a scalar target, (N, C) with (N,), or
(N, C, d1, ...) with (N, d1, ...); integer targets are class indices, floating targets of the
logits' shape are class probabilities (then ``ignore_index`` does not apply and 'mean' divides
by the number of samples). With indices, 'mean' divides by the summed weight of the non-ignored
targets (NaN if there are none), label smoothing included, exactly as PyTorch.

The forward returns what the backward needs besides the inputs: ``lse``, the per-sample
log-sum-exp (shape of the per-sample loss, dtype float32 for float16/bfloat16 logits, float64
otherwise).
No softmax matrix is kept; the backward rebuilds it from the logits in the pass writing the
gradient. ``g`` is the upstream gradient of the returned loss (a scalar for 'mean'/'sum').
Gradients are w.r.t. the first input only (targets and weights are constants here).

Errors: a class index outside [0, C) that is not ``ignore_index`` raises ValueError naming it
(on the GPU via a device-side flag: one small device->host copy per forward); shape mismatches
raise ValueError with both shapes.
"""
from __future__ import annotations

import numpy as np

from .._dtypes import is_float as _isf
from .. import tensor as _tensor
from ..backend import xp_of
from . import activation as _KA
from . import softmax as _KS
from .activation import c_softplus1 as _c_softplus1
from ._common import (FusedOp, as_compute, check_float, check_reduction, compute_dtype, np_sigmoid, same_device,
                      table,
                      wide_dtype)
from . import cuda
from .cuda import NULL

__all__ = ["cross_entropy_fwd", "cross_entropy_bwd", "nll_loss_fwd", "nll_loss_bwd", "bce_with_logits_fwd",
           "bce_with_logits_bwd", "mse_loss_fwd", "mse_loss_bwd", "l1_loss_fwd", "l1_loss_bwd",
           "huber_loss_fwd", "huber_loss_bwd", "smooth_l1_loss_fwd", "smooth_l1_loss_bwd"]

_SOURCE = "loss.cu"
_POINTWISE = ("mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss")


# -- class-index / probability target layouts ---------------------------------------------------

class _Rows:
    """Logits as contiguous (rows, C) with the class dim last, plus how to undo it."""

    def __init__(self, xp, logits, what):
        if logits.ndim == 0:
            raise ValueError(f"{what} must have a class dimension, got a 0-d array")
        self.xp, self.shape = xp, tuple(logits.shape)
        self.cdim = 1 if logits.ndim >= 2 else 0
        self.ncls = logits.shape[self.cdim]
        if self.ncls == 0:
            raise ValueError(f"{what} has no classes (shape {self.shape})")
        moved = xp.moveaxis(logits, self.cdim, -1) if self.cdim != logits.ndim - 1 else logits
        self.moved = tuple(moved.shape)
        self.sample_shape = self.shape[:self.cdim] + self.shape[self.cdim + 1:]
        self.rows = int(np.prod(self.sample_shape, dtype=np.int64))
        self.x = xp.ascontiguousarray(moved).reshape(self.rows, self.ncls)

    def to_rows(self, a):
        """An array shaped like the logits, as contiguous (rows, C)."""
        xp = self.xp
        if self.cdim != a.ndim - 1:
            a = xp.moveaxis(a, self.cdim, -1)
        return xp.ascontiguousarray(a).reshape(self.rows, self.ncls)

    def from_rows(self, r):
        out = r.reshape(self.moved)
        if self.cdim != len(self.shape) - 1:
            out = self.xp.moveaxis(out, -1, self.cdim)
        return out


def _targets(xp, R, target, logits_dtype, what):
    """('index', int64 (rows,)) or ('prob', (rows, C) in the logits dtype)."""
    if np.issubdtype(target.dtype, np.integer):
        if tuple(target.shape) != R.sample_shape:
            raise ValueError(f"target shape {tuple(target.shape)} does not match {what} shape {R.shape} "
                             f"(class indices need shape {R.sample_shape})")
        return "index", xp.ascontiguousarray(target, dtype=np.int64).reshape(R.rows)
    if _isf(target.dtype):  # NOTE: not np.issubdtype(.., np.floating): bfloat16's kind is 'V'
        if tuple(target.shape) != R.shape:
            raise ValueError(f"target shape {tuple(target.shape)} does not match {what} shape {R.shape} "
                             f"(class probabilities need the same shape)")
        return "prob", R.to_rows(target.astype(logits_dtype, copy=False))
    raise TypeError(f"target must be integer class indices or floating class probabilities, got {target.dtype}")


def _weight(xp, weight, R, dt):
    if weight is None:
        return None
    if tuple(weight.shape) != (R.ncls,):
        raise ValueError(f"weight shape {tuple(weight.shape)} does not match the {R.ncls} classes of "
                         f"input shape {R.shape} (expected ({R.ncls},))")
    return xp.ascontiguousarray(weight, dtype=dt)


def _valid(xp, t, ignore_index, ncls):
    return (t != ignore_index) & (t >= 0) & (t < ncls)


def _raise_bad_target(xp, t, ignore_index, ncls):
    bad = t[(t != ignore_index) & ((t < 0) | (t >= ncls))]
    if bad.size:
        raise ValueError(f"target {int(bad[0])} is out of bounds: class indices must be in [0, {ncls}) "
                         f"or equal ignore_index={ignore_index}")


def _target_weights(xp, t, w, ignore_index, ncls, cdt):
    """(valid mask, per-row target weight: w[t], 1 without weights, 0 when not valid)."""
    valid = _valid(xp, t, ignore_index, ncls)
    if w is None:
        return valid, valid.astype(cdt)
    wt = w[xp.where(valid, t, 0)].astype(cdt)
    wt *= valid
    return valid, wt


@np.errstate(over="ignore")
def _reduce_rows(xp, loss_rows, reduction, denom, out_dtype, sample_shape):
    """Apply the reduction to per-row losses (compute dtype); a 0-d array for 'mean'/'sum'."""
    if reduction == "none":
        return loss_rows.astype(out_dtype).reshape(sample_shape)
    total = loss_rows.sum()
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):  # NOTE: nothing counted: 0/0 = NaN, as PyTorch
            total = total / denom
    return xp.asarray(total).astype(out_dtype)


def _row_grad(xp, g, reduction, denom, rows, cdt, sample_shape):
    """Upstream gradient per row in the compute dtype: (array, stride) with stride 0 for a scalar."""
    if reduction == "none":
        if tuple(g.shape) != tuple(sample_shape):
            raise ValueError(f"grad shape {tuple(g.shape)} does not match the loss shape {tuple(sample_shape)}")
        return xp.ascontiguousarray(g, dtype=cdt).reshape(rows), 1
    if g.size != 1:
        raise ValueError(f"grad of a '{reduction}'-reduced loss must be a scalar, got shape {tuple(g.shape)}")
    gs = xp.asarray(g, dtype=cdt).reshape(())
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            gs = xp.asarray(gs / denom, dtype=cdt)
    return gs, 0


def _check_eps(label_smoothing):
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    return eps


# -- cross-entropy --------------------------------------------------------------------------------

def _fast(logits, target, weight, ignore_index, label_smoothing, reduction):
    """The common small case on the CPU: (rows, C) float32/64 logits, int64 (rows,) class indices all
    in [0, C) (ignore_index outside it), no weight or smoothing, reduced. Same numbers as the general
    path, without its per-call overhead (which dominates below ~64k elements)."""
    if (type(logits) is not np.ndarray or type(target) is not np.ndarray or weight is not None
            or label_smoothing != 0 or reduction == "none" or logits.ndim != 2 or target.ndim != 1
            or logits.dtype not in _FAST_DT or target.dtype != np.int64 or not logits.flags.c_contiguous):
        return False
    rows, ncls = logits.shape
    if (rows != target.shape[0] or rows == 0 or ncls == 0 or rows * ncls > _BLOCK
            or 0 <= ignore_index < ncls or reduction not in ("mean", "sum")):
        return False
    return int(target.min()) >= 0 and int(target.max()) < ncls


_FAST_DT = (np.dtype(np.float32), np.dtype(np.float64))


def _fast_fwd(x, t, reduction):
    rows = x.shape[0]
    # NOTE: no finiteness test: a row whose max is +-inf gives NaN here (inf - inf) exactly as the
    # general path does (PyTorch's NaN), and a finite max cannot overflow exp(x - m) <= 1.
    m = x.max(axis=1)
    b = np.subtract(x, m[:, None])
    np.exp(b, out=b)
    logs = np.log(b.sum(axis=1))
    loss = (m - x[_arange(rows), t]) + logs      # lse - x_t, without subtracting a rounded lse
    total = loss.sum()
    if reduction == "mean":
        total = total / rows
    return np.asarray(total, dtype=x.dtype), m.astype(np.float64) + logs


def _fast_bwd(g, x, t, lse, reduction):
    rows = x.shape[0]
    gs = float(g.reshape(()))
    if reduction == "mean":
        gs /= rows
    # NOTE: lse = hi + lo with hi in x's dtype: exp(x - lse) = exp(x - hi) exp(-lo), as _np_softmax_rows;
    # c = gs exp(-lo) is formed in lse's wide dtype and rounded once
    hi = lse.astype(x.dtype)
    c = np.exp(hi - lse)
    c *= gs
    gx = np.subtract(x, hi[:, None])
    np.exp(gx, out=gx)
    gx *= c.astype(x.dtype)[:, None]
    gx[_arange(rows), t] -= x.dtype.type(gs)
    return gx


_AR = np.arange(0)


def _arange(n):
    """0..n-1 (a slice of a cached array: no allocation per call)."""
    global _AR
    if _AR.shape[0] < n:
        _AR = np.arange(max(n, 1024))
    return _AR[:n]


def cross_entropy_fwd(logits, target, weight=None, ignore_index: int = -100, label_smoothing: float = 0.0,
                      reduction: str = "mean"):
    """(loss, lse): the cross-entropy of ``logits`` against ``target`` and the per-sample logsumexp."""
    if _fast(logits, target, weight, ignore_index, label_smoothing, reduction):
        return _fast_fwd(logits, target, reduction)
    dt = check_float("logits", logits)
    check_reduction(reduction)
    eps = _check_eps(label_smoothing)
    xp = xp_of(logits)
    same_device(xp, target=target, weight=weight)
    R = _Rows(xp, logits, "logits")
    kind, t = _targets(xp, R, target, dt, "logits")
    w = _weight(xp, weight, R, dt)
    cdt, ldt = compute_dtype(dt), wide_dtype(dt)
    if kind == "index":
        ig = int(ignore_index)
        if xp is np:
            _raise_bad_target(xp, t, ig, R.ncls)
            with np.errstate(all="ignore"):
                loss_rows, lse = _np_ce_index_fwd(as_compute(R.x), t, None if w is None else as_compute(w),
                                                  ig, eps, ldt)
        else:
            loss_rows, lse = _gpu_ce_index_fwd(xp, R, t, w, ig, eps, cdt, ldt)
        denom = _target_weights(xp, t, w, ig, R.ncls, cdt)[1].sum() if reduction == "mean" else None
    else:
        if xp is np:
            with np.errstate(all="ignore"):
                loss_rows, lse = _np_ce_prob_fwd(as_compute(R.x), as_compute(t), None if w is None else as_compute(w),
                                                 eps, ldt)
        else:
            loss_rows, lse = _gpu_ce_prob_fwd(xp, R, t, w, eps, cdt, ldt)
        denom = R.rows
    loss = _reduce_rows(xp, loss_rows, reduction, denom, dt, R.sample_shape)
    return loss, lse.reshape(R.sample_shape)


def cross_entropy_bwd(g, logits, target, lse, weight=None, ignore_index: int = -100,
                      label_smoothing: float = 0.0, reduction: str = "mean"):
    """Gradient of :func:`cross_entropy_fwd`'s loss w.r.t. the logits (g: upstream gradient)."""
    if (_fast(logits, target, weight, ignore_index, label_smoothing, reduction) and type(g) is np.ndarray
            and g.size == 1 and type(lse) is np.ndarray and lse.shape == (logits.shape[0],)
            and lse.dtype == np.float64):
        return _fast_bwd(g, logits, target, lse, reduction)
    dt = check_float("logits", logits)
    check_reduction(reduction)
    eps = _check_eps(label_smoothing)
    xp = xp_of(logits)
    same_device(xp, grad=g, target=target, lse=lse, weight=weight)
    R = _Rows(xp, logits, "logits")
    kind, t = _targets(xp, R, target, dt, "logits")
    w = _weight(xp, weight, R, dt)
    cdt, ldt = compute_dtype(dt), wide_dtype(dt)
    if tuple(lse.shape) != R.sample_shape:
        raise ValueError(f"lse shape {tuple(lse.shape)} does not match the per-sample shape {R.sample_shape}")
    lse = xp.ascontiguousarray(lse, dtype=ldt).reshape(R.rows)
    ig = int(ignore_index)
    if kind == "index":
        denom = _target_weights(xp, t, w, ig, R.ncls, cdt)[1].sum() if reduction == "mean" else None
    else:
        denom = R.rows
    gs, stride = _row_grad(xp, g, reduction, denom, R.rows, cdt, R.sample_shape)
    if R.rows == 0:
        return xp.zeros(R.shape, dt)
    if xp is np:
        with np.errstate(all="ignore"):
            gsr = np.broadcast_to(gs, (R.rows,)).astype(ldt)
            wl = None if w is None else w.astype(ldt)
            if kind == "index":
                gx = _np_ce_index_bwd(as_compute(R.x), t, wl, lse, gsr, ig, eps, ldt)
            else:
                gx = _np_ce_prob_bwd(as_compute(R.x), as_compute(t), wl, lse, gsr, eps, ldt)
        gx = gx.astype(dt, copy=False)
    else:
        gx = _gpu_ce_bwd(xp, kind, R, t, w, lse, gs, stride, ig, eps, cdt)
    return R.from_rows(gx)


# NOTE: the NumPy cross-entropy works on blocks of rows (about _BLOCK elements): max, shift, exp
# and the row sums then run on data in cache, the only full-size array is the gradient itself
# (no (rows, C) temporaries: peak memory one gradient), and everything per element is in the
# compute dtype (float32 for float16/bfloat16/float32 logits), as the kernels do. Per-row values (the
# saved lse, coefficients) are in the wide dtype.
_BLOCK = 1 << 16


def _blocks(rows, ncls):
    step = max(1, _BLOCK // ncls)
    return [(r, min(rows, r + step)) for r in range(0, rows, step)], step


def _np_row_stats(x, w=None, q=None, eps=0.0, want_sw=False):
    """Per row of x (rows, C): max m, logs = log(sum exp(x - m)) (NaN for an infinite max, as
    ms_logs in common.cuh), and, when asked, sw = sum_c w_c (x_c - m) (w = 1 without weights)
    or, with probability targets q, (s1, s2) = (sum w q' (x - m), sum w q'), q' = (1-eps) q + eps/C.
    Sums are NumPy's pairwise sums in the compute dtype (the kernels accumulate in it too)."""
    rows, ncls = x.shape
    m = np.empty(rows, x.dtype)
    s = np.empty(rows, x.dtype)
    sw = np.empty(rows, x.dtype) if (want_sw or q is not None) else None
    s2 = np.empty(rows, x.dtype) if q is not None else None
    blocks, step = _blocks(rows, ncls)
    buf = np.empty((min(step, rows), ncls), x.dtype)
    wq = np.empty_like(buf) if q is not None else None
    for r0, r1 in blocks:
        xb, b = x[r0:r1], buf[:r1 - r0]
        mb = np.max(xb, axis=1, out=m[r0:r1])
        np.subtract(xb, mb[:, None], out=b)
        if q is not None:
            c = wq[:r1 - r0]
            np.multiply(q[r0:r1], 1 - eps, out=c)
            c += eps / ncls
            if w is not None:
                c *= w
            np.sum(c, axis=1, out=s2[r0:r1])
            c *= b
            np.sum(c, axis=1, out=sw[r0:r1])      # NOTE: shifted by the max: no cancellation
        elif want_sw:
            if w is None:
                np.sum(b, axis=1, out=sw[r0:r1])
            else:
                np.matmul(b, w, out=sw[r0:r1])
        np.exp(b, out=b)
        np.sum(b, axis=1, out=s[r0:r1])
    np.log(s, out=s)
    s[np.isinf(m)] = np.nan
    return m, s, sw, s2


def _np_lse(m, logs, ldt):
    return m.astype(ldt) + logs.astype(ldt)


def _np_ce_index_fwd(x, t, w, ig, eps, ldt):
    rows, ncls = x.shape
    if rows == 0:
        return np.zeros(0, x.dtype), np.zeros(0, ldt)
    # NOTE: sum_c w_c (x_c - m): shifted by the max, no cancellation at |x| ~ 1e4
    m, logs, sw, _ = _np_row_stats(x, w, want_sw=eps != 0)
    valid = _valid(np, t, ig, ncls)
    tc = np.where(valid, t, 0)
    xt = x[np.arange(rows), tc]
    wt = np.ones(rows, x.dtype) if w is None else w[tc]
    loss = (m - xt) + logs            # lse - x_t, without subtracting a rounded lse
    loss *= (1 - eps) * wt
    if eps != 0:
        W = ncls if w is None else w.sum()
        loss += eps / ncls * (W * logs - sw)
    loss[~valid] = 0
    return loss, _np_lse(m, logs, ldt)


def _np_softmax_rows(x, lse, coef, out):
    """out = coef[:, None] * exp(x - lse[:, None]) in the compute dtype of x, block by block.

    NOTE: the kernels take x - lse in the wide dtype (lse is float64 for float32 logits, so a
    logit near 1e4 does not lose ~5e-4 to a float32 lse), then exp in the compute dtype. Here no
    pass over the matrix is wide:
    - a block whose rows have 0 <= lse <= 80 (typical logits) computes exp(x) * K, K = coef exp(-lse)
      per row in the wide dtype, rounded once: x <= lse <= 80 cannot overflow exp(x), and every x
      with exp(x - lse) above float32's normal range has x >= lse - 87 >= -87, so exp(x) is normal
      and accurate to ~1 ulp; with K normal (checked) p coef errs by ~2 ulp whatever |x - lse|
      (the kernels' rounded x - lse gives ~|x - lse| / 2 ulp). One pass less than a shift.
    - other blocks use lse = hi + lo, hi = lse rounded to the compute dtype: exp(x - lse) =
      exp(x - hi) exp(-lo), exp(-lo) (per row, wide) folded into coef. x - hi errs by at most half an
      ulp of |x - hi| = |x - lse| + |lo|, the same as rounding the wide difference, so p keeps the
      kernels' accuracy; x <= m <= hi for a forward's lse, so exp(x - hi) <= 1 cannot overflow."""
    cdt = x.dtype
    hi = lse.astype(cdt)
    lo = np.subtract(lse, hi, dtype=lse.dtype)
    lo[~np.isfinite(lo)] = 0          # +-inf / NaN lse: the x - hi pass gives the limit / NaN
    np.exp(np.negative(lo, out=lo), out=lo)
    c = (coef * lo).astype(cdt)
    direct = None
    if cdt == np.float32:
        k = coef * np.exp(-lse)
        ak = np.abs(k)
        direct = (lse >= 0) & (lse <= 80) & ((ak >= np.finfo(cdt).tiny) | (k == 0)) & (ak <= 1e30)
        k = k.astype(cdt)
    for r0, r1 in _blocks(*x.shape)[0]:
        if direct is not None and direct[r0:r1].all():
            b = np.exp(x[r0:r1], out=out[r0:r1])
            b *= k[r0:r1, None]
            continue
        b = np.subtract(x[r0:r1], hi[r0:r1, None], out=out[r0:r1])
        np.exp(b, out=b)
        b *= c[r0:r1, None]
    return out


def _np_ce_index_bwd(x, t, w, lse, gs, ig, eps, ldt):
    """x in the compute dtype; w, lse, gs per row / class in the wide dtype ldt."""
    rows, ncls = x.shape
    valid = _valid(np, t, ig, ncls)
    tc = np.where(valid, t, 0)
    gs = np.where(valid, gs, 0)
    wt = np.ones(rows, ldt) if w is None else w[tc]
    W = ncls if w is None else w.sum()
    gx = _np_softmax_rows(x, lse, gs * ((1 - eps) * wt + eps / ncls * W), np.empty(x.shape, x.dtype))
    if eps != 0:
        b = (gs * (eps / ncls)).astype(x.dtype)
        if w is None:
            gx -= b[:, None]
        else:
            wc = w.astype(x.dtype)
            for r0, r1 in _blocks(rows, ncls)[0]:
                gx[r0:r1] -= np.multiply.outer(b[r0:r1], wc)
    gx[np.arange(rows), tc] -= (gs * (1 - eps) * wt).astype(x.dtype)
    if not valid.all():
        gx[~valid] = 0
    return gx


def _np_ce_prob_fwd(x, q, w, eps, ldt):
    rows, ncls = x.shape
    if rows == 0:
        return np.zeros(0, x.dtype), np.zeros(0, ldt)
    m, logs, s1, s2 = _np_row_stats(x, w, q=q, eps=eps)
    loss = s2 * logs - s1
    return loss, _np_lse(m, logs, ldt)


def _np_ce_prob_bwd(x, q, w, lse, gs, eps, ldt):
    """d/dx = gs * (S2 p - w q'), S2 = sum w q' (compute dtype, as the kernel)."""
    rows, ncls = x.shape
    wq = np.multiply(q, 1 - eps)
    wq += eps / ncls
    if w is not None:
        wq *= w.astype(x.dtype)
    s2 = wq.sum(axis=1).astype(ldt)
    gx = _np_softmax_rows(x, lse, gs * s2, np.empty(x.shape, x.dtype))
    wq *= gs.astype(x.dtype)[:, None]
    gx -= wq
    return gx


def _gpu_ce_index_fwd(cp, R, t, w, ig, eps, cdt, ldt):
    with cuda.on(R.x):
        loss = cp.empty(R.rows, cdt)
        lse = cp.empty(R.rows, ldt)
        err = cp.zeros((), cp.int32)
        cuda.rows_launch(_SOURCE, "gpugrad_cross_entropy_fwd", R.x.dtype, R.rows, R.ncls,
                         (R.x, t, NULL if w is None else w, NULL if w is None else w.sum(dtype=cdt), loss, lse, err),
                         (np.int64(ig), np.float64(eps)))
        if R.rows:  # NOTE: reading the flag is one 4-byte device->host copy, i.e. a sync with the stream
            cuda.check_flag(err, lambda: _raise_bad_target(cp, t, ig, R.ncls))
    return loss, lse


def _gpu_ce_prob_fwd(cp, R, q, w, eps, cdt, ldt):
    with cuda.on(R.x):
        loss = cp.empty(R.rows, cdt)
        lse = cp.empty(R.rows, ldt)
        cuda.rows_launch(_SOURCE, "gpugrad_cross_entropy_prob_fwd", R.x.dtype, R.rows, R.ncls,
                         (R.x, q, NULL if w is None else w, loss, lse), (np.float64(eps),))
    return loss, lse


def _gpu_ce_bwd(cp, kind, R, t, w, lse, gs, stride, ig, eps, cdt):
    wp = NULL if w is None else w
    with cuda.on(R.x):
        gx = cp.empty_like(R.x)
        if kind == "index":
            cuda.rows_launch(_SOURCE, "gpugrad_cross_entropy_bwd", R.x.dtype, R.rows, R.ncls,
                             (R.x, t, wp, NULL if w is None else w.sum(dtype=cdt), lse, gs, np.int64(stride), gx),
                             (np.int64(ig), np.float64(eps)))
        else:
            cuda.rows_launch(_SOURCE, "gpugrad_cross_entropy_prob_bwd", R.x.dtype, R.rows, R.ncls,
                             (R.x, t, wp, lse, gs, np.int64(stride), gx), (np.float64(eps),))
    return gx


# -- nll_loss -------------------------------------------------------------------------------------

def _nll_setup(logp, target, weight, what="input"):
    dt = check_float(what, logp)
    xp = xp_of(logp)
    same_device(xp, target=target, weight=weight)
    R = _Rows(xp, logp, what)
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"nll_loss target must hold integer class indices, got {target.dtype}")
    _, t = _targets(xp, R, target, dt, what)
    return dt, xp, R, t, _weight(xp, weight, R, dt)


def nll_loss_fwd(logp, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """Negative log-likelihood of log-probabilities ``logp`` at class indices ``target``."""
    check_reduction(reduction)
    dt, xp, R, t, w = _nll_setup(logp, target, weight)
    cdt, ig = compute_dtype(dt), int(ignore_index)
    valid, wt = _target_weights(xp, t, w, ig, R.ncls, cdt)
    if xp is np:
        _raise_bad_target(xp, t, ig, R.ncls)
        tc = np.where(valid, t, 0)
        with np.errstate(invalid="ignore"):
            loss_rows = np.where(valid, as_compute(R.x)[np.arange(R.rows), tc] * -wt, 0).astype(cdt)
    else:
        with cuda.on(R.x):
            loss_rows = xp.empty(R.rows, cdt)
            err = xp.zeros((), xp.int32)
            # NOTE: one thread per row (an elementwise launch over rows): kernel(..., rows, ncls, ignore_index)
            cuda.map_launch(_SOURCE, "gpugrad_nll_loss_fwd", dt, R.rows, (R.x, t, NULL if w is None else w, loss_rows, err),
                            (np.int64(R.ncls), np.int64(ig)))
            if R.rows:  # NOTE: one small device->host copy (a sync), as cross_entropy_fwd
                cuda.check_flag(err, lambda: _raise_bad_target(xp, t, ig, R.ncls))
    return _reduce_rows(xp, loss_rows, reduction, wt.sum() if reduction == "mean" else None, dt, R.sample_shape)


def nll_loss_bwd(g, logp, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """Gradient of :func:`nll_loss_fwd` w.r.t. ``logp``: -w[t] * g at the target, 0 elsewhere."""
    check_reduction(reduction)
    dt, xp, R, t, w = _nll_setup(logp, target, weight)
    same_device(xp, grad=g)
    cdt, ig = compute_dtype(dt), int(ignore_index)
    valid, wt = _target_weights(xp, t, w, ig, R.ncls, cdt)
    gs, stride = _row_grad(xp, g, reduction, wt.sum() if reduction == "mean" else None, R.rows, cdt,
                           R.sample_shape)
    if xp is np:
        gx = np.zeros((R.rows, R.ncls), cdt)
        gx[np.arange(R.rows), np.where(valid, t, 0)] = np.where(valid, -wt * gs, 0)
        gx = gx.astype(dt, copy=False)
    else:
        with cuda.on(R.x):
            gx = xp.empty((R.rows, R.ncls), dt)
            cuda.rows_launch(_SOURCE, "gpugrad_nll_loss_bwd", dt, R.rows, R.ncls,
                             (t, NULL if w is None else w, gs, np.int64(stride), gx), (np.int64(ig),))
    return R.from_rows(gx)


# -- elementwise losses ---------------------------------------------------------------------------

def _pair(x, target, what="input"):
    dt = check_float(what, x)
    xp = xp_of(x)
    same_device(xp, target=target)
    if tuple(target.shape) != tuple(x.shape):
        raise ValueError(f"target shape {tuple(target.shape)} does not match input shape {tuple(x.shape)}")
    return dt, xp, target.astype(dt, copy=False)


def _np_pointwise_fwd(name, d, p):
    """Elementwise loss of d = x - target (d is overwritten)."""
    if name == "mse_loss":
        return np.multiply(d, d, out=d)
    if name == "l1_loss" or (name == "smooth_l1_loss" and p == 0):
        return np.abs(d, out=d)
    z = np.abs(d)
    small = z < p                      # NaN: False, so NaN flows through the linear branch
    quad = np.multiply(d, d, out=d)
    quad *= 0.5 if name == "huber_loss" else 0.5 / p
    z -= 0.5 * p
    if name == "huber_loss":
        z *= p
    np.copyto(z, quad, where=small)
    return z


def _np_pointwise_bwd(name, d, p):
    if name == "mse_loss":
        d *= 2
        return d
    if name == "l1_loss" or (name == "smooth_l1_loss" and p == 0):
        return np.sign(d, out=d)
    if name == "huber_loss":
        return np.clip(d, -p, p, out=d)
    d /= p
    return np.clip(d, -1, 1, out=d)


def _pointwise_fwd(name, x, target, reduction, p):
    check_reduction(reduction)
    dt, xp, t = _pair(x, target)
    if xp is np:
        with np.errstate(all="ignore"):
            out = _np_pointwise_fwd(name, np.subtract(as_compute(x), as_compute(t)).reshape(-1), p).reshape(x.shape)
    else:
        out = _gpu_pointwise(xp, f"gpugrad_{name}_fwd", x, (x, t), (np.float64(p),))
    return _reduce_elems(xp, out, reduction, dt)


def _pointwise_bwd(name, g, x, target, reduction, p):
    check_reduction(reduction)
    dt, xp, t = _pair(x, target)
    same_device(xp, grad=g)
    gs, per_elem = _elem_grad(xp, g, x, reduction)
    if xp is np:
        with np.errstate(all="ignore"):
            d = _np_pointwise_bwd(name, np.subtract(as_compute(x), as_compute(t)).reshape(-1), p).reshape(x.shape)
            d *= gs
            return d.astype(dt, copy=False)
    return _gpu_pointwise(xp, f"gpugrad_{name}_bwd", x,
                          (gs if per_elem else NULL, NULL if per_elem else gs, x, t), (np.float64(p),))


@np.errstate(over="ignore")  # NOTE: float16 results beyond 65504 round to inf, as PyTorch's
def _reduce_elems(xp, out, reduction, dt):
    if reduction == "none":
        return out.astype(dt, copy=False)
    total = out.sum(dtype=compute_dtype(dt))
    if reduction == "mean":
        total = total / out.size if out.size else total * np.nan  # NOTE: mean of nothing is NaN
    return xp.asarray(total).astype(dt)


def _elem_grad(xp, g, x, reduction):
    """(upstream gradient, per_elem): x-shaped array of x's dtype for 'none', else a 0-d compute scalar."""
    cdt = compute_dtype(x.dtype)
    if reduction == "none":
        if tuple(g.shape) != tuple(x.shape):
            raise ValueError(f"grad shape {tuple(g.shape)} does not match input shape {tuple(x.shape)}")
        if xp is np:
            return as_compute(g.astype(x.dtype, copy=False)), True
        return xp.ascontiguousarray(g, dtype=x.dtype), True
    if g.size != 1:
        raise ValueError(f"grad of a '{reduction}'-reduced loss must be a scalar, got shape {tuple(g.shape)}")
    gs = xp.asarray(g, dtype=cdt).reshape(())
    if reduction == "mean":
        gs = xp.asarray(gs / x.size if x.size else gs, dtype=cdt)
    return gs, False


def _gpu_pointwise(cp, kernel, x, arrays, scalars):
    """kernel(*arrays, out, n, *scalars) over x's elements; out is new, of x's shape and dtype."""
    with cuda.on(x):
        out = cp.empty(x.shape, x.dtype)
        cuda.map_launch(_SOURCE, kernel, x.dtype, x.size, (*arrays, out), scalars)
    return out


def mse_loss_fwd(x, target, reduction: str = "mean"):
    """(x - target)^2, reduced."""
    return _pointwise_fwd("mse_loss", x, target, reduction, 0.0)


def mse_loss_bwd(g, x, target, reduction: str = "mean"):
    """Gradient of :func:`mse_loss_fwd` w.r.t. x (w.r.t. target it is the negative)."""
    return _pointwise_bwd("mse_loss", g, x, target, reduction, 0.0)


def l1_loss_fwd(x, target, reduction: str = "mean"):
    """|x - target|, reduced."""
    return _pointwise_fwd("l1_loss", x, target, reduction, 0.0)


def l1_loss_bwd(g, x, target, reduction: str = "mean"):
    """Gradient of :func:`l1_loss_fwd` w.r.t. x: sign(x - target) (0 at 0)."""
    return _pointwise_bwd("l1_loss", g, x, target, reduction, 0.0)


def huber_loss_fwd(x, target, reduction: str = "mean", delta: float = 1.0):
    """0.5 d^2 for |d| < delta, else delta (|d| - delta/2); d = x - target."""
    if not delta > 0:
        raise ValueError(f"huber_loss delta must be positive, got {delta}")
    return _pointwise_fwd("huber_loss", x, target, reduction, float(delta))


def huber_loss_bwd(g, x, target, reduction: str = "mean", delta: float = 1.0):
    """Gradient of :func:`huber_loss_fwd` w.r.t. x: clip(d, -delta, delta)."""
    return _pointwise_bwd("huber_loss", g, x, target, reduction, float(delta))


def smooth_l1_loss_fwd(x, target, reduction: str = "mean", beta: float = 1.0):
    """0.5 d^2 / beta for |d| < beta, else |d| - beta/2 (beta = 0: l1); d = x - target."""
    if beta < 0:
        raise ValueError(f"smooth_l1_loss beta must be non-negative, got {beta}")
    return _pointwise_fwd("smooth_l1_loss", x, target, reduction, float(beta))


def smooth_l1_loss_bwd(g, x, target, reduction: str = "mean", beta: float = 1.0):
    """Gradient of :func:`smooth_l1_loss_fwd` w.r.t. x: clip(d / beta, -1, 1) (sign(d) for beta = 0)."""
    return _pointwise_bwd("smooth_l1_loss", g, x, target, reduction, float(beta))


# -- binary cross-entropy with logits -------------------------------------------------------------

def _bce_weights(xp, x, weight, pos_weight, dt):
    out = []
    for name, w in (("weight", weight), ("pos_weight", pos_weight)):
        if w is None:
            out.append(None)
            continue
        same_device(xp, **{name: w})
        try:
            ok = np.broadcast_shapes(tuple(w.shape), tuple(x.shape)) == tuple(x.shape)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{name} shape {tuple(w.shape)} cannot be broadcast to input shape {tuple(x.shape)}")
        out.append(w.astype(dt, copy=False))
    return out


def _np_bce(x, t, w, pw, grad):
    if x.ndim == 0:  # NOTE: ufuncs return scalars for 0-d inputs, which cannot take out=
        return _np_bce(x.reshape(1), t.reshape(1), w, pw, grad).reshape(())
    lw = None if pw is None else (pw - 1) * t + 1
    if not grad:
        r = np.logaddexp(0, -x)              # softplus(-x), the stable one-pass form
        if lw is not None:
            r *= lw
        r += (1 - t) * x
    else:
        r = np.negative(x)
        np_sigmoid(r, out=r)                 # sigmoid(-x)
        if lw is not None:
            r *= lw
        np.subtract(1 - t, r, out=r)
    if w is not None:
        r *= w
    return r


def bce_with_logits_fwd(x, target, weight=None, pos_weight=None, reduction: str = "mean"):
    """Binary cross-entropy on logits: w * ((1 - t) x + (1 + (pw - 1) t) softplus(-x)), reduced."""
    check_reduction(reduction)
    dt, xp, t = _pair(x, target)
    w, pw = _bce_weights(xp, x, weight, pos_weight, dt)
    if xp is np:
        with np.errstate(all="ignore"):
            out = _np_bce(as_compute(x), as_compute(t), None if w is None else as_compute(w),
                          None if pw is None else as_compute(pw), grad=False)
    else:
        out = _gpu_pointwise(xp, "gpugrad_bce_with_logits_fwd", x, (x, t, *_materialize(xp, x, w, pw)), ())
    return _reduce_elems(xp, out, reduction, dt)


def bce_with_logits_bwd(g, x, target, weight=None, pos_weight=None, reduction: str = "mean"):
    """Gradient of :func:`bce_with_logits_fwd` w.r.t. x: w * ((1 - t) - (1 + (pw - 1) t) sigmoid(-x))."""
    check_reduction(reduction)
    dt, xp, t = _pair(x, target)
    same_device(xp, grad=g)
    w, pw = _bce_weights(xp, x, weight, pos_weight, dt)
    gs, per_elem = _elem_grad(xp, g, x, reduction)
    if xp is np:
        with np.errstate(all="ignore"):
            d = _np_bce(as_compute(x), as_compute(t), None if w is None else as_compute(w),
                        None if pw is None else as_compute(pw), grad=True)
            d *= gs
            return d.astype(dt, copy=False)
    return _gpu_pointwise(xp, "gpugrad_bce_with_logits_bwd", x,
                          (gs if per_elem else NULL, NULL if per_elem else gs, x, t, *_materialize(xp, x, w, pw)), ())


def _materialize(cp, x, w, pw):
    """weight / pos_weight broadcast to x's shape and made contiguous (NULL when absent)."""
    return tuple(NULL if a is None else cp.ascontiguousarray(cp.broadcast_to(a, x.shape)) for a in (w, pw))


# -- target gradients (first order; arrays) -----------------------------------------------------------------
def _upstream(g, reduction, n):
    """The loss gradient per element/sample: g itself ('none', 'sum') or g / n ('mean')."""
    return g / n if reduction == "mean" else g


def _ce_target_grad(g, x, q, lse, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    # NOTE: loss = -sum_c w_c q'_c log p_c with q' = (1 - eps) q + eps / C, so dloss/dq_c = -(1 - eps) w_c log p_c
    xp = xp_of(x)
    cdim = 1 if x.ndim >= 2 else 0
    logp = x - xp.expand_dims(lse, cdim)  # in lse's wide dtype
    d = logp * -(1.0 - label_smoothing)
    if weight is not None:
        d *= weight.reshape((-1,) + (1,) * (x.ndim - cdim - 1))
    up = _upstream(g, reduction, lse.size)
    d *= xp.expand_dims(up, cdim) if reduction == "none" else up
    return d.astype(q.dtype, copy=False)


def _bce_target_grad(g, x, t, weight=None, pos_weight=None, reduction="mean"):
    # NOTE: d/dt [w ((1 - t) x + (1 + (pw - 1) t) softplus(-x))] = w (-x - (pw - 1) log_sigmoid(x))
    xc = as_compute(x)
    d = -xc
    if pos_weight is not None:
        d = d - (pos_weight.astype(xc.dtype) - 1) * _KA.activation_fwd("log_sigmoid", xc)
    if weight is not None:
        d = d * weight.astype(xc.dtype)
    return (d * _upstream(g, reduction, x.size)).astype(t.dtype, copy=False)


# -- composites (core Tensor ops; differentiable to any order) --------------------------------------------
def _reduce(rows, reduction, denom=None):
    if reduction == "none":
        return rows
    total = rows.sum()
    if reduction == "sum":
        return total
    with np.errstate(invalid="ignore", divide="ignore"):  # NOTE: a mean over nothing is NaN
        return total / (rows.numel() if denom is None else denom)


def _class_layout(x, weight):
    cdim = 1 if x.ndim >= 2 else 0
    wshape = (x.shape[cdim],) + (1,) * (x.ndim - cdim - 1)
    w = None if weight is None else _tensor.Tensor(weight.astype(x.dtype, copy=False).reshape(wshape))
    return cdim, wshape, w


def _index_rows(logp, t, weight, ignore_index, scale):
    """(-w[t] * scale * logp[t] per sample (0 where ignored), valid mask, w[t] (0 where ignored))."""
    cdim, wshape, _ = _class_layout(logp, None)
    xp, td = logp.xp, t._data
    valid = td != ignore_index
    tc = xp.where(valid, td, 0)
    onehot = xp.expand_dims(tc, cdim) == xp.arange(logp.shape[cdim]).reshape(wshape)
    wt = xp.ones(td.shape, logp.dtype) if weight is None else weight.astype(logp.dtype, copy=False)[tc]
    wt = xp.where(valid, wt, 0).astype(logp.dtype, copy=False)
    picked = (logp * _tensor.Tensor(onehot)).sum(cdim)
    return picked * _tensor.Tensor(wt * -scale), valid, wt


def _c_cross_entropy(x, t, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    cdim, _, w = _class_layout(x, weight)
    ncls, eps = x.shape[cdim], label_smoothing
    logp = _KS.c_log_softmax(x, cdim)
    if _isf(t.dtype):
        q = t * (1 - eps) + eps / ncls
        rows = -((logp * q if w is None else logp * q * w).sum(cdim))
        return _reduce(rows, reduction)
    rows, valid, wt = _index_rows(logp, t, weight, ignore_index, 1 - eps)
    if eps:
        smooth = (logp if w is None else logp * w).sum(cdim) * (-eps / ncls)
        rows = rows + smooth
    rows = _tensor.where(_tensor.Tensor(valid), rows, 0.0)
    return _reduce(rows, reduction, _tensor.Tensor(wt.sum()))


def _c_nll_loss(logp, t, weight=None, ignore_index=-100, reduction="mean"):
    rows, valid, wt = _index_rows(logp, t, weight, ignore_index, 1.0)
    return _reduce(_tensor.where(_tensor.Tensor(valid), rows, 0.0), reduction, _tensor.Tensor(wt.sum()))


def _c_bce(x, t, weight=None, pos_weight=None, reduction="mean"):
    t = t.type(x.dtype)
    sp = _c_softplus1(-x)
    if pos_weight is not None:
        sp = sp * (t * _tensor.Tensor(pos_weight.astype(x.dtype) - 1) + 1)
    out = (1 - t) * x + sp
    if weight is not None:
        out = out * _tensor.Tensor(weight.astype(x.dtype))
    return _reduce(out, reduction)


def _c_pointwise(name):
    def composite(x, t, reduction="mean", delta=1.0, beta=1.0):
        d = x - t.type(x.dtype)
        if name == "mse_loss":
            out = d * d
        elif name == "l1_loss" or (name == "smooth_l1_loss" and beta == 0):
            out = d.abs()
        else:
            p = delta if name == "huber_loss" else beta
            a = d.abs()
            quad = d * d * (0.5 if name == "huber_loss" else 0.5 / p)
            lin = (a - 0.5 * p) * (p if name == "huber_loss" else 1.0)
            out = _tensor.where(_tensor.Tensor(a._data < p), quad, lin)
        return _reduce(out, reduction)
    return composite


# -- the table ------------------------------------------------------------------------------------------
class LossOp(FusedOp):
    """A loss row: also its gradient w.r.t. the target, ``target_grad(g, x, t, gx, *extra, **params)`` (None:
    the target takes no gradient), and whether that needs the input gradient gx (``target_from_gx``)."""
    __slots__ = ("target_grad", "target_from_gx")

    def __init__(self, name, launch, fwd, bwd, composite, target_grad=None, target_from_gx=False, kernels=None):
        super().__init__(name, _SOURCE, launch, "input and target", fwd, bwd, composite, kernels)
        self.target_grad, self.target_from_gx = target_grad, target_from_gx


def _minus_gx(g, x, t, gx, **params):
    return (-gx).astype(t.dtype, copy=False)  # NOTE: these losses depend on x - t only


ROWS = table([
    LossOp("cross_entropy", "rows", cross_entropy_fwd, cross_entropy_bwd, _c_cross_entropy,
           lambda g, x, t, gx, lse, **kp: _ce_target_grad(g, x, t, lse, **kp),
           kernels=[f"gpugrad_cross_entropy{k}_{d}" for k in ("", "_prob") for d in ("fwd", "bwd")]),
    LossOp("nll_loss", "rows", nll_loss_fwd, nll_loss_bwd, _c_nll_loss),
    LossOp("bce_with_logits", "map", bce_with_logits_fwd, bce_with_logits_bwd, _c_bce,
           lambda g, x, t, gx, **kp: _bce_target_grad(g, x, t, **kp)),
    *(LossOp(n, "map", globals()[f"{n}_fwd"], globals()[f"{n}_bwd"], _c_pointwise(n), _minus_gx, True)
      for n in _POINTWISE),
])
