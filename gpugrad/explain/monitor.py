"""Gradient health: per-layer gradient norms, parameter norms and update ratios, recorded by hooks."""
from __future__ import annotations

import json
import math
import warnings

import numpy as np

from ..backend import xp_of

__all__ = ["GradientMonitor", "GradientWarning"]


class GradientWarning(UserWarning):
    """A vanishing or exploding gradient seen by a :class:`GradientMonitor`."""


def _host(a):
    return a if isinstance(a, np.ndarray) else a.get()


def _enc(v):
    if v is None or math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def _dec(v):
    return float(v) if isinstance(v, str) else v


class GradientMonitor:
    """Record each layer's gradient norm, parameter norm and update ratio at every step.

    Gradient hooks on the parameters collect the gradients that ``backward()`` accumulates
    (``gg.autograd.grad`` calls, e.g. explanations, are not seen). Call :meth:`step` once per
    training step, after ``optimizer.step()``: it computes, per layer (the module owning the
    parameters, named as in ``model.named_parameters()``),

    * ``grad_norm``: the L2 norm of the layer's gradients from this step's backward passes
      (None when the layer got no gradient),
    * ``param_norm``: the L2 norm of its parameters,
    * ``update_ratio``: ``||theta_t - theta_{t-1}|| / ||theta_{t-1}||``, the relative size of the
      update since the previous :meth:`step` (``track_updates=False`` skips it, and the copy of
      the parameters it needs),

    and flags a layer as *vanishing* when its gradient norm is below ``vanish_threshold`` and as
    *exploding* when it is above ``explode_threshold`` or not finite: a :class:`GradientWarning`
    naming the layer and step (``warn=False`` only records it in :attr:`events`).
    Use it as a context manager, or call :meth:`remove` to take the hooks off.
    """

    def __init__(self, model, vanish_threshold=1e-7, explode_threshold=1e3, track_updates=True, warn=True,
                 every=1):
        if not vanish_threshold < explode_threshold:
            raise ValueError(f"vanish_threshold ({vanish_threshold}) must be below explode_threshold "
                             f"({explode_threshold})")
        if int(every) < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.model = model
        self.vanish_threshold = float(vanish_threshold)
        self.explode_threshold = float(explode_threshold)
        self.track_updates = bool(track_updates)
        self.warn = bool(warn)
        self.every = int(every)
        self.step_count = 0
        self.steps = []
        self.layers = {}          # layer name -> [(param name, param)]
        for pname, p in model.named_parameters():
            if not getattr(p, "requires_grad", True):
                continue
            layer = pname.rsplit(".", 1)[0] if "." in pname else "(model)"
            self.layers.setdefault(layer, []).append((pname, p))
        if not self.layers:
            raise ValueError("GradientMonitor: the model has no parameters that require gradients")
        # NOTE: each layer's module type, for labels such as "0 Conv2d" or "features.3 Linear"
        modules = dict(model.named_modules())
        self.layer_types = {k: type(modules.get("" if k == "(model)" else k, model)).__name__ for k in self.layers}
        self.grad_norm = {k: [] for k in self.layers}
        self.param_norm = {k: [] for k in self.layers}
        self.update_ratio = {k: [] for k in self.layers}
        self.events = []
        self._pending = {}        # id(param) -> summed gradient array of the current step
        self._prev = {}
        if self.track_updates:
            self._snapshot()
        self._handles = []
        for plist in self.layers.values():
            for _, p in plist:
                self._handles.append(p.register_hook(self._make_hook(p)))

    # -- hooks ---------------------------------------------------------------------------------------
    def _make_hook(self, p):
        key = id(p)

        def hook(g):
            d = g._data
            prev = self._pending.get(key)
            # NOTE: a copy, so in-place changes to .grad afterwards (clipping, zero_grad) do not alter it
            self._pending[key] = d.copy() if prev is None else prev + d
        return hook

    def _snapshot(self):
        self._prev = {id(p): p._data.copy() for plist in self.layers.values() for _, p in plist}

    def remove(self):
        """Take the hooks off the parameters."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False

    # -- per step ------------------------------------------------------------------------------------
    def step(self, step=None):
        """Close the current training step: record its norms and flag bad layers.

        ``step`` overrides the step number (default: a counter starting at 0). Returns this step's
        ``{layer: {"grad_norm", "param_norm", "update_ratio"}}`` (None when skipped by ``every``).
        """
        s = self.step_count if step is None else int(step)
        self.step_count = s + 1
        pending, self._pending = self._pending, {}
        if s % self.every:
            if self.track_updates:
                self._snapshot()
            return None
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite values are flagged, not warned about
            return self._record(s, pending)

    def _record(self, s, pending):
        names = list(self.layers)
        sums = []   # device scalars: grad^2, param^2, update^2, prev^2 per layer (one host copy at the end)
        has_grad = []
        for name in names:
            g2 = p2 = u2 = q2 = None
            got = False
            for _, p in self.layers[name]:
                d = p._data
                xp = xp_of(d)
                d64 = d.astype(np.float64, copy=False)
                p2 = _acc(p2, (d64 * d64).sum())
                g = pending.get(id(p))
                if g is not None:
                    got = True
                    g64 = g.astype(np.float64, copy=False)
                    g2 = _acc(g2, (g64 * g64).sum())
                if self.track_updates:
                    q = self._prev.get(id(p))
                    if q is not None:
                        q64 = q.astype(np.float64, copy=False)
                        u = d64 - q64
                        u2 = _acc(u2, (u * u).sum())
                        q2 = _acc(q2, (q64 * q64).sum())
            z = xp.zeros((), np.float64)
            sums.append(xp.stack([z if v is None else xp.asarray(v, dtype=np.float64) for v in (g2, p2, u2, q2)]))
            has_grad.append((got, u2 is not None))
        vals = [_host(v) for v in sums]
        rec = {}
        for name, v, (got, upd) in zip(names, vals, has_grad):
            gn = float(np.sqrt(v[0])) if got else None
            pn = float(np.sqrt(v[1]))
            ur = None
            if upd:
                den = float(np.sqrt(v[3]))
                ur = float(np.sqrt(v[2])) / den if den > 0 else (0.0 if v[2] == 0 else math.inf)
            self.grad_norm[name].append(gn)
            self.param_norm[name].append(pn)
            self.update_ratio[name].append(ur)
            rec[name] = {"grad_norm": gn, "param_norm": pn, "update_ratio": ur}
            if gn is not None:
                self._check(name, s, gn)
        self.steps.append(s)
        if self.track_updates:
            self._snapshot()
        return rec

    def _check(self, layer, step, gn):
        kind = None
        if not math.isfinite(gn) or gn > self.explode_threshold:
            kind = "exploding"
            why = f"gradient norm {gn:.3g} " + ("is not finite" if not math.isfinite(gn)
                                                else f"> explode_threshold {self.explode_threshold:.3g}")
        elif gn < self.vanish_threshold:
            kind = "vanishing"
            why = f"gradient norm {gn:.3g} < vanish_threshold {self.vanish_threshold:.3g}"
        if kind is None:
            return
        msg = f"{kind} gradient in layer '{layer}' at step {step}: {why}"
        self.events.append({"step": step, "layer": layer, "kind": kind, "grad_norm": gn, "message": msg})
        if self.warn:
            warnings.warn(msg, GradientWarning, stacklevel=4)

    def flagged(self, kind=None):
        """The recorded events (dicts with step, layer, kind, grad_norm, message), optionally of one kind."""
        return [e for e in self.events if kind is None or e["kind"] == kind]

    # -- history -------------------------------------------------------------------------------------
    @property
    def history(self):
        """Everything recorded, as plain Python data (what :meth:`to_json` writes)."""
        return {
            "format": "gpugrad.gradient_history", "version": 1,
            "vanish_threshold": self.vanish_threshold, "explode_threshold": self.explode_threshold,
            "steps": list(self.steps), "layers": list(self.layers), "layer_types": dict(self.layer_types),
            "params": {k: [n for n, _ in v] for k, v in self.layers.items()},
            "grad_norm": {k: list(v) for k, v in self.grad_norm.items()},
            "param_norm": {k: list(v) for k, v in self.param_norm.items()},
            "update_ratio": {k: list(v) for k, v in self.update_ratio.items()},
            "events": [dict(e) for e in self.events],
        }

    def to_json(self, path=None, indent=None):
        """The history as strict JSON (non-finite numbers written as "nan"/"inf"); also written to ``path``."""
        h = self.history
        for key in ("grad_norm", "param_norm", "update_ratio"):
            h[key] = {k: [_enc(x) for x in v] for k, v in h[key].items()}
        for e in h["events"]:
            e["grad_norm"] = _enc(e["grad_norm"])
        text = json.dumps(h, indent=indent, allow_nan=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    save = to_json

    @staticmethod
    def load_history(path_or_text):
        """Read a history written by :meth:`to_json` (a path or the JSON text) back into Python data."""
        text = path_or_text
        if not str(path_or_text).lstrip().startswith("{"):
            with open(path_or_text, encoding="utf-8") as f:
                text = f.read()
        h = json.loads(text)
        for key in ("grad_norm", "param_norm", "update_ratio"):
            h[key] = {k: [_dec(x) for x in v] for k, v in h[key].items()}
        for e in h["events"]:
            e["grad_norm"] = _dec(e["grad_norm"])
        return h

    def plot(self, path, **kw):
        """Per-layer gradient norms over the steps, as a PNG (needs the ``plot`` extra)."""
        from .plot import plot_gradient_norms  # noqa: PLC0415
        return plot_gradient_norms(self.history, path, **kw)

    def __repr__(self):
        return (f"GradientMonitor({len(self.layers)} layers, {len(self.steps)} steps recorded, "
                f"{len(self.events)} flagged)")


def _acc(a, b):
    return b if a is None else a + b
