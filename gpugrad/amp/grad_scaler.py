"""``gg.amp.GradScaler``: dynamic loss scaling with PyTorch's rules (``torch.amp.GradScaler``).

Per iteration: ``scaler.scale(loss).backward()``, then ``scaler.step(opt)`` (which unscales the
gradients unless ``unscale_(opt)`` already did, and skips ``opt.step()`` when any gradient is inf or
NaN), then ``scaler.update()`` (the scale halves after a skipped step and doubles after
``growth_interval`` clean ones in a row). The check and the unscale are one fused pass per device
and dtype (:func:`gpugrad.fused.amp.unscale_`); the scale, its reciprocal and the flag stay in the
device's memory, and the flag is read once per ``step`` (the one host sync, as in PyTorch).

NOTE: a skipped step does not call ``optimizer.step()``: the optimizer's step count, state and any
LR scheduler's "lr_scheduler.step() before optimizer.step()" warning behave as in PyTorch.
"""
from __future__ import annotations

import warnings
from collections import abc, defaultdict

import numpy as np

from .. import backend as _be
from ..autograd import no_grad
from ..fused.amp import unscale_ as _fused_unscale
from ..tensor import Tensor

__all__ = ["GradScaler", "OptState"]


class OptState:
    READY, UNSCALED, STEPPED = 0, 1, 2


def _fresh_state():
    return {"stage": OptState.READY, "found_inf_per_device": {}}


_FIX = "This may indicate your script did not use scaler.scale(loss or outputs) earlier in the iteration."


class GradScaler:
    """Loss scaling for float16 gradients; PyTorch's arguments and defaults.

    ``device`` is the device type of the tensors it scales ("cuda" or "cpu"). As in PyTorch, a
    "cuda" scaler on a machine without usable CUDA warns and disables itself (every method is then a
    pass-through); use ``GradScaler("cpu")`` on the CPU."""

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        self._device = str(device)
        self._enabled = bool(enabled)
        if self._device == "cuda" and self._enabled and not _be.cuda.is_available():
            warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.",
                          stacklevel=2)
            self._enabled = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")
            self._init_scale = init_scale
            self._scale = None            # 0-d float32 Tensor, made on the first scale()
            self._growth_factor = growth_factor
            self._backoff_factor = backoff_factor
            self._growth_interval = growth_interval
            self._init_growth_tracker = 0
            self._growth_tracker = None   # 0-d int32 Tensor
            self._per_optimizer_states = defaultdict(_fresh_state)

    # -- scale ---------------------------------------------------------------------------------------
    def _lazy_init(self, dev):
        self._scale = Tensor(_be.to_device(np.full((), self._init_scale, np.float32), dev))
        self._growth_tracker = Tensor(_be.to_device(np.full((), self._init_growth_tracker, np.int32), dev))

    def _check(self, funcname):
        if self._scale is None:
            raise AssertionError(f"Attempted {funcname} but _scale is None.  " + _FIX)
        if self._growth_tracker is None:
            raise AssertionError(f"Attempted {funcname} but _growth_tracker is None.  " + _FIX)
        return self._scale, self._growth_tracker

    def scale(self, outputs):
        """``outputs * scale`` (a Tensor, or nested lists/tuples/iterables of Tensors); as they are when disabled.

        NOTE: the scale is a 0-d float32 tensor, so by the promotion rules a float16 output stays
        float16 (as in PyTorch): keep the loss in float32 (autocast does) to avoid overflowing it."""
        if not self._enabled:
            return outputs

        def apply(v):
            if isinstance(v, Tensor):
                if self._scale is None:
                    self._lazy_init(v.device)
                s = self._scale if self._scale.device == v.device else self._scale.to(v.device)
                return v * s
            if isinstance(v, abc.Iterable):
                it = map(apply, v)
                return type(v)(it) if isinstance(v, (list, tuple)) else it
            raise ValueError("outputs must be a Tensor or an iterable of Tensors")
        return apply(outputs)

    # -- unscale / step ------------------------------------------------------------------------------
    def _unscale_grads_(self, optimizer, inv_scale, found_inf, allow_fp16):
        """One fused check+unscale per (device, dtype); {device: found_inf (0-d float32 array)}."""
        groups = defaultdict(lambda: defaultdict(list))
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if not allow_fp16 and p.grad.dtype == np.float16:
                    # NOTE: PyTorch's rule: float16 gradients mean float16 parameters, whose update
                    #       cannot be unscaled safely; keep parameters in float32 under autocast.
                    raise ValueError("Attempting to unscale FP16 gradients.")
                groups[p.grad.device][p.grad.dtype].append(p.grad)
        found = {}
        with no_grad():
            for dev, per_dtype in groups.items():
                inv = inv_scale if dev == self._scale.device else _be.to_device(inv_scale, dev)
                f = found_inf if dev == self._scale.device else dev.xp.zeros((), np.float32)
                for grads in per_dtype.values():
                    for g in grads:
                        g._ver[0] += 1  # NOTE: an in-place write, as any optimizer update (version counter)
                    _fused_unscale([g._data for g in grads], inv, f)
                found[dev] = f
        return found

    def unscale_(self, optimizer):
        """Divide ``optimizer``'s gradients by the scale, in place (once per step; e.g. before clipping)."""
        if not self._enabled:
            return
        self._check("unscale_")
        st = self._per_optimizer_states[id(optimizer)]
        if st["stage"] == OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if st["stage"] == OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        s = self._scale._data
        # NOTE: the reciprocal in float64, rounded to float32 (PyTorch's double().reciprocal().float())
        inv = _be.xp_of(s).reciprocal(s.astype(np.float64)).astype(np.float32)
        found = _be.xp_of(s).zeros((), np.float32)
        st["found_inf_per_device"] = self._unscale_grads_(optimizer, inv, found, False)
        st["stage"] = OptState.UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """``optimizer.step(*args, **kwargs)`` unless a gradient was inf/NaN (then nothing; returns None)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check("step")
        st = self._per_optimizer_states[id(optimizer)]
        if st["stage"] == OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if st["stage"] == OptState.READY:
            self.unscale_(optimizer)
        if not st["found_inf_per_device"]:
            raise AssertionError("No inf checks were recorded for this optimizer.")
        retval = None
        # NOTE: the one host read per step: each device's flag (a 4-byte copy, i.e. a stream sync on CUDA)
        if not sum(float(f) for f in st["found_inf_per_device"].values()):
            retval = optimizer.step(*args, **kwargs)
        st["stage"] = OptState.STEPPED
        return retval

    # -- update --------------------------------------------------------------------------------------
    def update(self, new_scale=None):
        """Back off after an inf/NaN, grow after ``growth_interval`` clean steps; or set ``new_scale``."""
        if not self._enabled:
            return
        scale, tracker = self._check("update")
        if new_scale is not None:
            if isinstance(new_scale, float):
                scale._data.fill(new_scale)
            else:
                reason = ("new_scale should be a float or a 1-element torch.cuda.FloatTensor or "
                          "torch.FloatTensor with requires_grad=False.")
                if not isinstance(new_scale, Tensor) or new_scale.device.type != self._device \
                        or new_scale.numel() != 1 or new_scale.requires_grad:
                    raise AssertionError(reason)
                scale._data[...] = new_scale._data.reshape(()).astype(np.float32)
        else:
            found = [f if _be.device_of(f) == scale.device else _be.to_device(f, scale.device)
                     for st in self._per_optimizer_states.values() for f in st["found_inf_per_device"].values()]
            if not found:
                raise AssertionError("No inf checks were recorded prior to update.")
            total = found[0]
            for f in found[1:]:
                total = total + f
            _update_scale(scale._data, tracker._data, total, self._growth_factor, self._backoff_factor,
                          self._growth_interval)
        self._per_optimizer_states = defaultdict(_fresh_state)

    # -- accessors and state -------------------------------------------------------------------------
    def _get_scale_async(self):
        return self._scale

    def get_scale(self):
        """The current scale as a Python float (a host sync); 1.0 when disabled."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else self._scale.item()

    def get_growth_factor(self):
        return self._growth_factor

    def set_growth_factor(self, new_factor):
        self._growth_factor = new_factor

    def get_backoff_factor(self):
        return self._backoff_factor

    def set_backoff_factor(self, new_factor):
        self._backoff_factor = new_factor

    def get_growth_interval(self):
        return self._growth_interval

    def set_growth_interval(self, new_interval):
        self._growth_interval = new_interval

    def _get_growth_tracker(self):
        if not self._enabled:
            return 0
        return self._init_growth_tracker if self._growth_tracker is None else int(self._growth_tracker.item())

    def is_enabled(self):
        return self._enabled

    def state_dict(self):
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict):
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        self._init_scale = state_dict["scale"]
        if self._scale is not None:
            self._scale._data.fill(state_dict["scale"])
        self._growth_factor = state_dict["growth_factor"]
        self._backoff_factor = state_dict["backoff_factor"]
        self._growth_interval = state_dict["growth_interval"]
        self._init_growth_tracker = state_dict["_growth_tracker"]
        if self._growth_tracker is not None:
            self._growth_tracker._data.fill(state_dict["_growth_tracker"])


def _update_scale(scale, tracker, found_inf, growth_factor, backoff_factor, growth_interval):
    """PyTorch's _amp_update_scale_ on 0-d device arrays, in place, without reading them on the host.

    found: scale *= backoff, tracker = 0; else tracker += 1 and, when it reaches growth_interval,
    scale *= growth (kept only if finite) and tracker = 0.
    NOTE: products in float64, rounded once to float32 (as PyTorch's kernel, whose factors are double)."""
    xp = _be.xp_of(scale)
    bad = found_inf > 0
    s64 = scale.astype(np.float64)
    with np.errstate(over="ignore"):  # NOTE: a scale grown past float32's range is inf, and then not taken
        grown = (s64 * float(growth_factor)).astype(np.float32)
    backed = (s64 * float(backoff_factor)).astype(np.float32)
    succ = tracker + 1
    grow = xp.logical_and(xp.logical_not(bad), succ == growth_interval)
    new = xp.where(bad, backed, xp.where(xp.logical_and(grow, xp.isfinite(grown)), grown, scale))
    scale[...] = new
    tracker[...] = xp.where(xp.logical_or(bad, grow), 0, succ).astype(np.int32)

