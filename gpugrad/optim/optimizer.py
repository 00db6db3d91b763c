"""The Optimizer base class: parameter groups, per-parameter state, state_dict round trips.

Subclasses declare their options in ``defaults``, check one group's values in ``_check_group``
and implement ``step``; the update math lives in :mod:`gpugrad.fused.optim` (a fused CUDA kernel
on the GPU, NumPy in place on the CPU) and :mod:`gpugrad.optim._composite` (PyTorch's op sequences).

Low-precision (float16/bfloat16) parameters, two modes:

- default (``master_weights=False``): as PyTorch. The state has the parameter's dtype and the update is
  PyTorch's sequence of tensor ops, each computed in float32 and rounded to the parameter's dtype
  (bit for bit PyTorch's CPU single-tensor optimizers, run with one thread). Updates below half an ulp
  of a parameter are lost (it stagnates), and e.g. Adam's default ``eps=1e-8`` rounds to 0 in float16,
  so an element whose second moment underflows becomes NaN or inf, as in PyTorch.
- ``master_weights=True`` (a gpugrad extension; PyTorch has no such option): each float16/bfloat16
  parameter has a float32 master copy (``state["master_param"]``) and float32 state; the update is the
  float32 one, on the master, rounded once into the parameter. A write into the parameter outside the
  optimizer (its version moves and the rounded master no longer equals it) re-seeds the master from it.
  float32/float64 parameters are unaffected by the flag. A state dict saved in one mode loads in the
  other: the state is cast to the new state dtype, a missing master is made from the parameter and
  a master the mode has no use for is dropped.
"""
from __future__ import annotations

import collections
import functools

import numpy as np

from .._dtypes import FLOATS, LOWP
from ..autograd import primitive as _prim
from ..backend import to_device
from ..tensor import Tensor

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks an option that has no default and must be given (per group or to the constructor)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()

# NOTE: options a group may carry besides the optimizer's own: LR schedulers store the starting lr
#       here, and a resumed scheduler (last_epoch != -1) expects it in the groups it is given.
_EXTRA_GROUP_KEYS = frozenset({"params", "initial_lr"})


def _is_number(x):
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


class Optimizer:
    """Base class of all optimizers.

    ``params`` is an iterable of Tensors, or of dicts (parameter groups) each with a ``"params"``
    entry plus any per-group options, e.g. ``[{"params": body, "lr": 1e-4}, {"params": head}]``:
    options missing from a group take the constructor's values (``defaults``).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_records_call", False):
            # NOTE: LR schedulers warn when their first step() comes before any optimizer.step(), as
            #       PyTorch's do; every subclass's step records that it ran.
            @functools.wraps(step)
            def recorded_step(self, *args, **kwargs):
                if _prim.tape is not None:  # NOTE: gg.compile records the update as one call, replayed as is
                    return _prim.tape.opaque(recorded_step, self, args, kwargs)
                self._opt_called = True
                return step(self, *args, **kwargs)
            recorded_step._records_call = True
            cls.step = recorded_step

    def __init__(self, params, defaults, master_weights=False):
        self.master_weights = bool(master_weights)
        self._synced = {}  # id(p) -> p's version when its master copy was last known to round to it
        self.defaults = dict(defaults)
        self.state = collections.defaultdict(dict)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {type(params).__name__}; wrap a single parameter in a list")
        if isinstance(params, dict):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            "but got a dict; pass a list of parameter groups: [{'params': ...}]")
        if isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs; use a list instead")
        param_groups = list(params)
        if not param_groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # -- groups ------------------------------------------------------------------------------------
    def add_param_group(self, param_group):
        """Add a parameter group (a dict with ``"params"`` and optional per-group options)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a parameter group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("a parameter group must have a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs; use a list instead")
        else:
            params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but parameter {i} of the group is a "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor (parameter {i} of the group); "
                                 "optimize the leaf it was computed from, or .detach().requires_grad_() it")
            if np.dtype(p.dtype) not in FLOATS:
                raise TypeError(f"optimizers update floating-point parameters (float16/bfloat16/float32/float64), "
                                f"got dtype {p.dtype}")
        group["params"] = params

        unknown = sorted(set(group) - set(self.defaults) - _EXTRA_GROUP_KEYS)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))} in a parameter group of "
                             f"{type(self).__name__}; valid options are {', '.join(sorted(self.defaults))}")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            group.setdefault(name, default)
        self._check_group(group)

        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if seen.intersection(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def _check_group(self, group):
        """Validate one group's option values (subclasses extend); raise ValueError with the value."""
        lr = group.get("lr")
        if isinstance(lr, Tensor):  # NOTE: PyTorch accepts a 1-element Tensor lr: kept as is, schedulers fill it
            if lr.numel() != 1:
                raise ValueError("Tensor lr must be 1-element")
            if not float(lr) >= 0.0:
                raise ValueError(f"Invalid learning rate: {float(lr)}")
        elif "lr" in group:
            _check_nonneg(group, "lr", "learning rate")

    # -- gradients ---------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True):
        """Reset the gradients of all parameters: to None (default), or to zeros in place."""
        if _prim.tape is not None:
            return _prim.tape.opaque(Optimizer.zero_grad, self, (set_to_none,), {})
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif p.grad.requires_grad or not p.grad.is_leaf:
                    # NOTE: a grad that is part of a graph (create_graph=True) is replaced, not mutated
                    p.grad = Tensor(p.grad.xp.zeros_like(p.grad._data))
                else:
                    p.grad._data.fill(0)

    def _eval_closure(self, closure):
        if closure is None:
            return None
        from ..autograd import enable_grad
        with enable_grad():
            return closure()

    def step(self, closure=None):
        """Perform one update of every parameter that has a gradient; returns ``closure()``'s loss."""
        raise NotImplementedError

    # -- state helpers for subclasses --------------------------------------------------------------
    def _state_dtype(self, p):
        """The dtype of p's state: p's own, float32 for a float16/bfloat16 p with master weights."""
        dt = np.dtype(p.dtype)
        return np.dtype(np.float32) if self.master_weights and dt in LOWP else dt

    def _zeros(self, p, fill=0.0):
        """A state Tensor shaped like ``p`` on its device, in :meth:`_state_dtype`."""
        xp, dt = p.device.xp, self._state_dtype(p)
        # NOTE: a fill goes through float32 to a low-precision dtype, as PyTorch's full_like casts a scalar
        a = xp.zeros(p.shape, dtype=dt) if fill == 0 else xp.full(p.shape, fill, dtype=np.float32 if dt in LOWP else dt)
        return Tensor(a.astype(dt, copy=False))

    # -- (de)serialization -------------------------------------------------------------------------
    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``.

        Parameters are numbered in group order from 0, as in PyTorch. State Tensors are shared with
        the optimizer (not copied): deep-copy or save the dict to keep a snapshot.
        """
        index = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in g["params"]]
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a dict from :meth:`state_dict` (this optimizer's or a saved one) into this optimizer.

        Groups are matched by position and must hold the same number of parameters; state arrays
        are copied to each parameter's device and state dtype.
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("expected a dict with 'state' and 'param_groups' entries (from Optimizer.state_dict())")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter group(s), but the optimizer has "
                             f"{len(self.param_groups)}")
        by_index = {}
        for i, (g, sg) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't match the size of "
                                 f"optimizer's group: group {i} has {len(sg['params'])} parameter(s) in the state "
                                 f"dict and {len(g['params'])} in the optimizer")
            by_index.update(zip(sg["params"], g["params"]))

        new_state = collections.defaultdict(dict)
        for idx, s in state_dict["state"].items():
            if idx not in by_index:
                raise ValueError(f"state dict has state for parameter index {idx}, which is in no parameter group")
            p = by_index[idx]
            keep = self.master_weights and np.dtype(p.dtype) in LOWP  # NOTE: a master only where this mode has one
            new_state[p] = {k: self._load_value(p, idx, k, v) for k, v in s.items() if keep or k != "master_param"}

        new_groups = []
        for g, sg in zip(self.param_groups, saved_groups):
            # NOTE: a Tensor option (lr) is copied, as PyTorch's deep copy of the loaded dict
            ng = {k: v.clone() if isinstance(v, Tensor) else v for k, v in sg.items() if k != "params"}
            for k, v in g.items():  # NOTE: options added since the dict was saved keep their current value
                ng.setdefault(k, v)
            ng["params"] = g["params"]
            self._check_group(ng)
            new_groups.append(ng)
        self.state = new_state
        self.param_groups = new_groups
        self._synced.clear()  # NOTE: loaded masters are checked against their parameters at the next step

    def _load_value(self, p, idx, key, v):
        if key == "step":
            return int(v.item() if hasattr(v, "item") else v)
        arr = v._data if isinstance(v, Tensor) else v
        if not hasattr(arr, "shape") or not hasattr(arr, "dtype"):
            return v  # plain Python values are kept as they are
        if tuple(arr.shape) != tuple(p.shape):
            raise ValueError(f"state '{key}' of parameter {idx} has shape {tuple(arr.shape)}, but the parameter has "
                             f"shape {tuple(p.shape)}")
        dt = np.dtype(np.float32) if key == "master_param" else self._state_dtype(p)
        return Tensor(to_device(arr, p.device).astype(dt, copy=True))

    # -- misc --------------------------------------------------------------------------------------
    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {g[k]}" for k in sorted(g) if k != "params"]
        lines.append(")")
        return "\n".join(lines)


# -- validation helpers (shared by the optimizers) -------------------------------------------------

def _num(group, key):
    v = group[key]
    if not _is_number(v):
        raise TypeError(f"{key} must be a real number, got {v!r}")
    return float(v)


def _check_nonneg(group, key, what=None):
    v = _num(group, key)
    if not v >= 0.0:  # NOTE: also rejects NaN
        raise ValueError(f"Invalid {what or key} value: {group[key]!r} (must be >= 0)")
    return v


def _check_unit(group, key, what=None, closed=False):
    """0 <= v < 1 (or <= 1 with closed=True)."""
    v = _num(group, key)
    if not (0.0 <= v <= 1.0 if closed else 0.0 <= v < 1.0):
        raise ValueError(f"Invalid {what or key} value: {group[key]!r} (must be in [0, 1{']' if closed else ')'})")
    return v


def _check_flags_unsupported(group, **names):
    for name, what in names.items():
        if group.get(name):
            raise NotImplementedError(f"{name}=True is not supported by gpugrad: {what}")
