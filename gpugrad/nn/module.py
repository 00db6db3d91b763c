"""``gg.nn.Module``: the base class of layers and models (PyTorch's registration and traversal rules).

Attributes that are Parameters, Modules or registered buffers are kept in ``_parameters``,
``_modules`` and ``_buffers`` (insertion ordered); ``named_parameters``/``state_dict`` walk them
with dotted names. ``to(device/dtype)`` converts arrays IN PLACE (``param._data = ...``) so that an
optimizer built before the move keeps updating the same Parameter objects.
"""
from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple

import numpy as np

from .._dtypes import bfloat16 as _bfloat16, is_float as _isf
from .. import backend as _be
from ..tensor import Tensor, _bump, as_dtype, is_floating, parse_to
from .parameter import Buffer, Parameter

__all__ = ["Module", "RemovableHandle"]


class RemovableHandle:
    """Returned by ``register_*_hook``: ``handle.remove()`` unregisters the hook (also a context manager)."""

    _ids = itertools.count()

    def __init__(self, hooks_dict):
        self.id = next(RemovableHandle._ids)
        self._hooks = hooks_dict

    _extra = None  # another container the id is registered in (the always-call set of forward hooks)

    def remove(self):
        self._hooks.pop(self.id, None)
        if self._extra is not None:
            self._extra.discard(self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _addindent(s, n):
    lines = s.split("\n")
    return lines[0] + "".join("\n" + " " * n + line for line in lines[1:])


def _parse_to(args, kwargs):
    """Module.to arguments -> (device or None, dtype or None)."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    device, dtype = parse_to(args, device, dtype)
    device = None if device is None else _be.device(device)
    dtype = as_dtype(dtype)
    if dtype is not None and not is_floating(dtype):
        raise TypeError(f"Module.to only accepts floating point dtypes, but got desired dtype={dtype}")
    return device, dtype


class Module:
    """Base class for all layers and models. Subclasses call ``super().__init__()`` then assign
    Parameters / sub-Modules as attributes, and define ``forward``."""

    training: bool
    _version = 1

    def __init__(self):
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()
        d["_backward_hooks"] = OrderedDict()
        d["_backward_pre_hooks"] = OrderedDict()
        d["_forward_hooks_always_called"] = set()
        d["_state_dict_pre_hooks"] = OrderedDict()
        d["_state_dict_hooks"] = OrderedDict()
        d["_load_state_dict_pre_hooks"] = OrderedDict()
        d["_load_state_dict_post_hooks"] = OrderedDict()

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    # -- registration ---------------------------------------------------------------------------------
    def _check_ready(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call "
                                 f"(call super().__init__() first in {type(self).__name__}.__init__)")

    @staticmethod
    def _check_name(name, kind):
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"{kind} name can't be empty or contain '.', got {name!r}")

    def register_parameter(self, name, param):
        self._check_ready("parameters")
        self._check_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute {name!r} already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign a {type(param).__name__} as parameter {name!r} "
                            "(gg.nn.Parameter or None expected)")
        if param is not None and param.grad_fn is not None:
            raise ValueError(f"cannot assign non-leaf Tensor to parameter {name!r}: model parameters must be "
                             "created explicitly; to express it as a function of another Tensor, compute it in forward()")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Register a non-trainable tensor (e.g. running stats); saved in state_dict unless persistent=False."""
        self._check_ready("buffers")
        self._check_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute {name!r} already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign a {type(tensor).__name__} as buffer {name!r} (Tensor or None expected)")
        if isinstance(tensor, Buffer):
            persistent = tensor.persistent
            tensor = Tensor(tensor._data)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        self._check_ready("child modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name, "module")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute {name!r} already exists")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            self._check_ready("parameters")
            self._remove_from(name, d, "_parameters")
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} as parameter {name!r} "
                                "(gg.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            self._check_ready("child modules")
            self._remove_from(name, d, "_modules")
            d["_modules"][name] = value
        elif d.get("_modules") is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} as child module {name!r} (Module or None expected)")
            d["_modules"][name] = None
        elif isinstance(value, Buffer):
            self._check_ready("buffers")
            self._remove_from(name, d, "_buffers")
            self.register_buffer(name, value)
        elif d.get("_buffers") is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign a {type(value).__name__} as buffer {name!r} (Tensor or None expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def _remove_from(self, name, d, keep):
        """Drop ``name`` from the instance dict and from every registry but ``keep`` (the one it is re-registered in).
        NOTE: as PyTorch, re-assigning an existing parameter / buffer / submodule keeps its position in that
        registry (named_parameters, optimizer and state_dict order; ``seq[i] = m`` keeps the layer order)."""
        d.pop(name, None)
        for key in ("_parameters", "_buffers", "_modules"):
            reg = d.get(key)
            if reg is not None and key != keep:
                reg.pop(name, None)
        if keep != "_buffers":
            d["_non_persistent_buffers_set"].discard(name)

    def __getattr__(self, name):
        # only called when normal lookup fails
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            reg = d.get(key)
            if reg is not None and name in reg:
                return reg[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for key in ("_parameters", "_buffers", "_modules"):
            reg = self.__dict__.get(key)
            if reg is not None and name in reg:
                del reg[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # -- traversal ------------------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(name, module) for this module and every descendant, depth first; shared modules once.

        NOTE: as PyTorch, ``memo`` is a set of modules: a module already in it is skipped with its whole subtree
        (checked also with remove_duplicate=False, which only stops adding to it)."""
        if memo is None:
            memo = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if m in memo:
                continue
            if remove_duplicate:
                memo.add(m)
            yield name, m
            children = [(f"{name}.{k}" if name else k, c) for k, c in m._modules.items() if c is not None]
            stack.extend(reversed(children))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, get, prefix, recurse, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mname, m in mods:
            for k, v in get(m):
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield (f"{mname}.{k}" if mname else k), v

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, Parameter) pairs; a parameter shared by several modules appears once."""
        yield from self._named_members(lambda m: m._parameters.items(), prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members(lambda m: m._buffers.items(), prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target):
        m = self
        if target == "":
            return m
        for part in target.split("."):
            if part not in m._modules or m._modules[part] is None:
                raise AttributeError(f"{type(m).__name__} has no submodule {part!r} (looking up {target!r})")
            m = m._modules[part]
        return m

    def set_submodule(self, target, module, strict=False):
        """Put ``module`` at the dotted path ``target`` (its parent must exist; with ``strict`` the attribute too)."""
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        *path, last = target.split(".")
        if not isinstance(module, Module):
            raise ValueError(f"`module` is not an nn.Module, found {type(module)}")
        m = self
        for part in path:
            if not hasattr(m, part):
                raise AttributeError(f"{m._get_name()} has no attribute `{part}`")
            m = getattr(m, part)
            if not isinstance(m, Module):
                raise AttributeError(f"`{part}` is not an nn.Module")
        if not hasattr(m, last):
            if strict:
                raise AttributeError(f"{m._get_name()} has no attribute `{last}`")
        elif not isinstance(getattr(m, last), Module):
            raise AttributeError(f"`{last}` is not an nn.Module")
        setattr(m, last, module)

    def get_parameter(self, target):
        mod, _, name = target.rpartition(".")
        m = self.get_submodule(mod)
        if name not in m._parameters:
            raise AttributeError(f"{type(m).__name__} has no parameter {name!r}")
        return m._parameters[name]

    def get_buffer(self, target):
        mod, _, name = target.rpartition(".")
        m = self.get_submodule(mod)
        if name not in m._buffers:
            raise AttributeError(f"{type(m).__name__} has no buffer {name!r}")
        return m._buffers[name]

    # -- modes and in-place conversion ------------------------------------------------------------------
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                if p.grad.grad_fn is not None:
                    p.grad = p.grad.detach()
                p.grad._data[...] = 0

    def apply(self, fn):
        """Call ``fn(m)`` on every submodule (children first) and on self; returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _apply_arrays(self, fn, convert_buffers=True):
        """Replace every parameter's (and its grad's) and buffer's array by ``fn(array)``, in place."""
        for m in self.modules():
            for p in m._parameters.values():
                if p is None:
                    continue
                p._data = fn(p._data)
                if p.grad is not None:
                    p.grad._data = fn(p.grad._data)
            if convert_buffers:
                for b in m._buffers.values():
                    if b is not None:
                        b._data = fn(b._data)
        return self

    def to(self, *args, **kwargs):
        """Move/cast parameters and buffers in place: ``to(device)``, ``to(dtype)``, ``to(device, dtype)``,
        ``to(tensor)``. Only floating point arrays change dtype (integer buffers keep theirs)."""
        device, dtype = _parse_to(args, dict(kwargs))

        def conv(a):
            if device is not None:
                a = _be.to_device(a, device)
            if dtype is not None and _isf(a.dtype) and a.dtype != dtype:
                a = a.astype(dtype)
            return a
        return self._apply_arrays(conv)

    def to_empty(self, *, device, recurse=True):
        """Give every parameter, gradient and buffer uninitialized memory of its shape and dtype on ``device``
        (None: where it is), in place (the Parameter objects stay, as PyTorch's); returns self."""
        dev = None if device is None else _be.device(device)
        for m in (self.modules() if recurse else [self]):
            for t in [*m._parameters.values(), *m._buffers.values()]:
                for x in (t, getattr(t, "grad", None)):
                    if x is not None:
                        a = x.xp.empty(x.shape, dtype=x._data.dtype)
                        x._data = a if dev is None else _be.to_device(a, dev)
        return self

    def share_memory(self):
        # NOTE: NumPy/CuPy arrays are copied into other processes (no shared storage as PyTorch's), so a no-op
        # would silently break Hogwild-style training: refuse clearly
        raise NotImplementedError("Module.share_memory(): gpugrad tensors cannot be moved to shared memory "
                                  "(worker processes get copies of the parameters)")

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else (f"cuda:{device}" if isinstance(device, int) else device))

    def type(self, dst_type):
        return self.to(dtype=dst_type)

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def half(self):
        return self.to(dtype=np.float16)

    def bfloat16(self):
        return self.to(dtype=_bfloat16())

    # -- state dict -------------------------------------------------------------------------------------
    def _local_state(self):
        """(name, tensor) of this module's own state_dict entries: parameters, then persistent buffers (not None)."""
        for k, p in self._parameters.items():
            if p is not None:
                yield k, p
        for k, b in self._buffers.items():
            if b is not None and k not in self._non_persistent_buffers_set:
                yield k, b

    def _has_extra_state(self):
        return type(self).get_extra_state is not Module.get_extra_state

    def get_extra_state(self):
        """Override (with ``set_extra_state``) to save extra picklable state as the ``_extra_state`` entry."""
        raise RuntimeError("Reached a code path in Module.get_extra_state() that should never be called.")

    def set_extra_state(self, state):
        raise RuntimeError("Reached a code path in Module.set_extra_state() that should never be called.")

    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        """OrderedDict of dotted name -> detached Tensor (sharing memory) for parameters and persistent buffers
        (and ``_extra_state`` where get_extra_state is overridden); ``._metadata`` holds each module's version.
        Hooks as PyTorch's: pre hooks ``hook(module, prefix, keep_vars)``; post hooks
        ``hook(module, state_dict, prefix, local_metadata)`` (the private ``_register_state_dict_hook`` ones may
        return a replacement dict)."""
        if args:  # PyTorch's legacy positional (destination, prefix, keep_vars)
            destination = args[0]
            if len(args) > 1:
                prefix = args[1]
            if len(args) > 2:
                keep_vars = args[2]
        d = self.__dict__
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        for hook in list(d.get("_state_dict_pre_hooks", {}).values()):
            hook(self, prefix, keep_vars)
        local_metadata = {"version": self._version}
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata
        for k, t in self._local_state():
            # NOTE: a lazy module's uninitialized parameter is itself in the state dict, as PyTorch's
            destination[prefix + k] = t if keep_vars or getattr(t, "_uninitialized", False) else t.detach()
        if self._has_extra_state():
            destination[prefix + "_extra_state"] = self.get_extra_state()
        for name, m in self._modules.items():
            if m is not None:  # NOTE: as PyTorch, a child's replacement dict (private hook) is not taken up here
                m.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        for hook, public in list(d.get("_state_dict_hooks", {}).values()):
            r = hook(self, destination, prefix, local_metadata)
            if r is not None:
                if public:
                    raise RuntimeError("state_dict post-hook must return None")
                destination = r
        return destination

    def _check_entry(self, key, v, t, errors):
        """The array to load into t from the checkpoint value v (None after recording an error)."""
        arr = v._data if isinstance(v, Tensor) else v
        if not hasattr(arr, "shape") or not hasattr(arr, "dtype"):
            try:
                arr = np.asarray(arr)
            except Exception:  # noqa: BLE001
                arr = None
            if arr is None or arr.dtype == object:
                errors.append(f'While copying the parameter named "{key}", expected a Tensor or array from '
                              f"the checkpoint, got {type(v).__name__}.")
                return None
        if getattr(v, "_uninitialized", False) and not getattr(t, "_uninitialized", False):
            v.shape  # noqa: B018  (raises PyTorch's "Can't access the shape of an uninitialized parameter")
        if not getattr(t, "_uninitialized", False) and tuple(arr.shape) != tuple(t.shape):
            errors.append(f"size mismatch for {key}: copying a param with shape {tuple(arr.shape)} from "
                          f"checkpoint, the shape in current model is {tuple(t.shape)}.")
            return None
        return arr

    def _load_walk(self, sd, prefix, meta, acc):
        """One module's part of load_state_dict, PyTorch's recursion: pre hooks (on this module's slice of the
        state dict), its own keys (planned; written at once when ``eager``), its unexpected keys, the children,
        then (eager) its post hooks."""
        missing, unexpected, errors, plan, eager, assign = acc
        start = len(plan)
        local_metadata = {} if meta is None else meta.get(prefix[:-1], {})
        for hook, with_module in list(self.__dict__.get("_load_state_dict_pre_hooks", {}).values()):
            a = (sd, prefix, local_metadata, True, missing, unexpected, errors)
            hook(self, *a) if with_module else hook(*a)
        own = dict(self._local_state())
        for k, t in own.items():
            key = prefix + k
            if key not in sd:
                missing.append(key)
                continue
            v = sd[key]
            arr = self._check_entry(key, v, t, errors)
            if arr is None or (getattr(t, "_uninitialized", False) and getattr(v, "_uninitialized", False)):
                continue  # NOTE: uninitialized into uninitialized: nothing to load, as PyTorch
            plan.append((t, arr, self, k))
        extra = prefix + "_extra_state"
        if self._has_extra_state():
            if extra in sd:
                plan.append((None, sd[extra], self, None))
            else:
                missing.append(extra)
        elif extra in sd:
            unexpected.append(extra)
        if eager:
            self._apply_plan(plan[start:], assign)
        for key in sd:
            if not key.startswith(prefix) or key == extra:
                continue
            rest = key[len(prefix):]
            head, dot, _ = rest.partition(".")
            if (dot and head in self._modules) or rest in own:
                continue  # NOTE: a key under a child is the child's to judge (a None child's are ignored, as PyTorch)
            unexpected.append(key)
        for name, m in self._modules.items():
            if m is not None:
                cp = prefix + name + "."
                m._load_walk(OrderedDict((k, v) for k, v in sd.items() if k.startswith(cp)), cp, meta, acc)
        for hook in list(self.__dict__.get("_load_state_dict_post_hooks", {}).values()):
            if hook(self, _IncompatibleKeys(missing, unexpected)) is not None:
                raise AssertionError("Hooks registered with ``register_load_state_dict_post_hook`` are not "
                                     "expected to return new values, if incompatible_keys need to be modified, "
                                     "it should be done inplace.")

    @staticmethod
    def _key_errors(missing, unexpected):
        errors = []
        if missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
        if unexpected:
            errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
        return errors

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy values from ``state_dict`` into parameters and buffers (in place, keeping dtype and device).

        Everything is validated first: a shape mismatch is an error and, with ``strict``, any missing or
        unexpected key; on error nothing is changed (but see the post hooks). Returns (missing_keys,
        unexpected_keys). Hooks as PyTorch's: pre hooks ``hook(module, state_dict, prefix, local_metadata, strict,
        missing_keys, unexpected_keys, error_msgs)`` on a copy of the state dict; post hooks
        ``hook(module, incompatible_keys)`` may edit the key lists (the strict check reads them afterwards).
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"expected a dict-like state_dict, got {type(state_dict).__name__}")
        meta = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)  # NOTE: pre hooks edit this copy, not the caller's dict, as PyTorch
        if meta is not None:
            state_dict._metadata = meta
        # NOTE: with load post hooks anywhere in the tree, PyTorch's order exactly: each module is written as it
        # is walked and its post hooks run after its children (they see loaded weights and may clear the key lists
        # the strict check reads); an error is then raised after loading what matched, as PyTorch. Without them
        # everything is validated before anything is written, so a failing load changes nothing.
        eager = any(m.__dict__.get("_load_state_dict_post_hooks") for m in self.modules())
        missing, unexpected, errors, plan = [], [], [], []
        self._load_walk(state_dict, "", meta, (missing, unexpected, errors, plan, eager, assign))
        errors = (self._key_errors(missing, unexpected) if strict else []) + errors
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        if not eager:
            self._apply_plan(plan, assign)
        return _IncompatibleKeys(missing, unexpected)

    @staticmethod
    def _apply_plan(plan, assign):
        for t, arr, m, _ in plan:  # NOTE: validated: a lazy module's parameters take the loaded shapes now
            if t is not None and getattr(t, "_uninitialized", False):
                t._materialize_for_load(m, tuple(arr.shape))
        dev_arrays = []
        for t, arr, m, k in plan:  # convert everything before touching the model
            if t is None:
                dev_arrays.append((t, arr, m, k))
                continue
            a = _be.to_device(arr, t.device)
            dev_arrays.append((t, a if assign else a.astype(t.dtype, copy=False), m, k))
        for t, a, m, k in dev_arrays:
            if t is None:
                m.set_extra_state(a)
            elif assign:
                if isinstance(t, Parameter):
                    m._parameters[k] = Parameter(a, requires_grad=t.requires_grad)
                else:
                    m._buffers[k] = Tensor(a)
            else:
                t._data[...] = a
                _bump(t)

    def register_state_dict_pre_hook(self, hook):
        """``hook(module, prefix, keep_vars)`` runs before ``state_dict`` saves this module."""
        return self._add_hook("_state_dict_pre_hooks", hook)

    def register_state_dict_post_hook(self, hook):
        """``hook(module, state_dict, prefix, local_metadata)`` runs after; it edits state_dict in place (returns None)."""
        return self._add_hook("_state_dict_hooks", (hook, True))

    def _register_state_dict_hook(self, hook):
        """As register_state_dict_post_hook, but a returned dict replaces the state dict (PyTorch's private form)."""
        return self._add_hook("_state_dict_hooks", (hook, False))

    def register_load_state_dict_pre_hook(self, hook):
        """``hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)``
        runs before this module's entries are read (it may edit the state dict and the lists)."""
        return self._add_hook("_load_state_dict_pre_hooks", (hook, True))

    def _register_load_state_dict_pre_hook(self, hook, with_module=False):
        return self._add_hook("_load_state_dict_pre_hooks", (hook, with_module))

    def register_load_state_dict_post_hook(self, hook):
        """``hook(module, incompatible_keys)`` runs after loading; it may edit ``incompatible_keys``'s lists."""
        return self._add_hook("_load_state_dict_post_hooks", hook)

    def _add_hook(self, where, value):
        d = self.__dict__.setdefault(where, OrderedDict())
        h = RemovableHandle(d)
        d[h.id] = value
        return h

    # -- hooks and call -----------------------------------------------------------------------------------
    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """``hook(module, args)`` runs before forward; it may return new args (a tuple or a single value)."""
        h = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[h.id] = (hook, with_kwargs)
        if prepend:
            self._forward_pre_hooks.move_to_end(h.id, last=False)
        return h

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """``hook(module, args, output)`` runs after forward; it may return a replacement output.
        ``always_call=True``: it also runs (with output None, or the output so far) when the pre-hooks, forward or
        another forward hook raise; then its own exceptions become a warning and the first error propagates."""
        h = RemovableHandle(self._forward_hooks)
        self._forward_hooks[h.id] = (hook, with_kwargs)
        if prepend:
            self._forward_hooks.move_to_end(h.id, last=False)
        if always_call:
            always = self.__dict__.setdefault("_forward_hooks_always_called", set())
            always.add(h.id)
            h._extra = always
        return h

    def register_backward_hook(self, hook):
        # NOTE: PyTorch's deprecated form passes the grad_inputs of the LAST autograd node inside forward (e.g.
        # addmm's bias/input/weight grads for Linear), which gpugrad's graph does not reproduce: refuse clearly
        raise NotImplementedError("Module.register_backward_hook (deprecated in PyTorch) is not supported: its "
                                  "grad_input is that of the module's last autograd node; use "
                                  "register_full_backward_hook (grad_input: the gradients w.r.t. the module's inputs)")

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """``hook(module, grad_output)`` runs when the gradients w.r.t. the module's outputs are computed,
        before ``grad_input``; it may return a replacement ``grad_output`` (a tuple)."""
        d = self.__dict__.setdefault("_backward_pre_hooks", OrderedDict())
        h = RemovableHandle(d)
        d[h.id] = hook
        if prepend:
            d.move_to_end(h.id, last=False)
        return h

    def register_full_backward_hook(self, hook, prepend=False):
        """``hook(module, grad_input, grad_output)`` runs once the gradients w.r.t. the module's positional
        inputs are computed (None for non-Tensors and inputs that need none); it may return a replacement
        ``grad_input``. As PyTorch's BackwardHook: identity nodes wrap the Tensor inputs and outputs."""
        d = self.__dict__.setdefault("_backward_hooks", OrderedDict())
        h = RemovableHandle(d)
        d[h.id] = hook
        if prepend:
            d.move_to_end(h.id, last=False)
        return h

    def __call__(self, *args, **kwargs):
        d = self.__dict__
        if not d["_forward_pre_hooks"] and not d["_forward_hooks"] and not d.get("_backward_hooks") \
                and not d.get("_backward_pre_hooks"):
            try:
                return self.forward(*args, **kwargs)
            except (AttributeError, TypeError) as e:
                err = self._foreign_input(e, args, kwargs)
                if err is None:
                    raise
                raise err from None
        try:
            return self._call_hooked(d, args, kwargs)
        except (AttributeError, TypeError) as e:
            err = self._foreign_input(e, args, kwargs)
            if err is None:
                raise
            raise err from None

    def _foreign_input(self, exc, args, kwargs):
        """The clear TypeError for a NumPy array / torch.Tensor passed to one of gpugrad's own modules
        (which need gpugrad Tensors), else None (user modules may take anything)."""
        cls = type(self)
        if not cls.__module__.startswith("gpugrad.") or getattr(cls, "_takes_arrays", False):
            return None
        from .._errors import foreign_arg  # noqa: PLC0415
        return foreign_arg(exc, args, kwargs, f"{cls.__name__}.forward()")

    def _call_hooked(self, d, args, kwargs):
        always = d.get("_forward_hooks_always_called")
        if not always:
            return self._call_hooks(d, args, kwargs, set())
        done, state = set(), {"args": args, "kwargs": kwargs, "out": None}
        try:
            return self._call_hooks(d, args, kwargs, done, state)
        except Exception:
            # NOTE: as PyTorch, the always-call forward hooks not run yet get (args, output so far or None)
            for hid, (hook, wk) in list(d["_forward_hooks"].items()):
                if hid not in always or hid in done:
                    continue
                a, k, out = state["args"], state["kwargs"], state["out"]
                try:
                    hook(self, a, k, out) if wk else hook(self, a, out)
                except Exception as e:  # noqa: BLE001
                    import warnings  # noqa: PLC0415
                    warnings.warn("module forward hook with ``always_call=True`` raised an exception that was "
                                  f"silenced as another error was raised in forward: {e}", stacklevel=2)
            raise

    def _call_hooks(self, d, args, kwargs, done, state=None):
        for hook, wk in list(d["_forward_pre_hooks"].values()):
            if wk:
                r = hook(self, args, kwargs)
                if r is not None:
                    if not (isinstance(r, tuple) and len(r) == 2):
                        raise RuntimeError("a forward pre-hook with with_kwargs=True must return None or (args, kwargs)")
                    args, kwargs = r
            else:
                r = hook(self, args)
                if r is not None:
                    args = r if isinstance(r, tuple) else (r,)
            if state is not None:
                state["args"], state["kwargs"] = args, kwargs
        bw = _BackwardHook(self, d) if d.get("_backward_hooks") or d.get("_backward_pre_hooks") else None
        if bw is not None:
            args = bw.setup_input_hook(args)
        if state is not None:
            state["args"], state["kwargs"] = args, kwargs
        out = self.forward(*args, **kwargs)
        for hid, (hook, wk) in list(d["_forward_hooks"].items()):
            if state is not None:
                state["out"] = out
                done.add(hid)
            r = hook(self, args, kwargs, out) if wk else hook(self, args, out)
            if r is not None:
                out = r
        if bw is not None:
            out = bw.setup_output_hook(out)
        return out

    def _call_impl(self, *args, **kwargs):
        return self(*args, **kwargs)

    # -- repr -------------------------------------------------------------------------------------------
    def extra_repr(self):
        """One line shown inside this module's repr (subclasses override)."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        children = [f"({k}): " + _addindent(repr(m), 2) for k, m in self._modules.items()]
        main = self._get_name() + "("
        if lines and not children and len(lines) == 1:
            return main + lines[0] + ")"
        body = lines + children
        if body:
            main += "\n  " + "\n  ".join(body) + "\n"
        return main + ")"

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)


# -- full backward hooks (PyTorch's torch.utils.hooks.BackwardHook) ----------------------------------------------
def _hook_fn_class():
    from ..autograd.function import Function  # noqa: PLC0415

    class BackwardHookFunction(Function):
        """Identity on its Tensor arguments; its backward (one call with every output's gradient) runs ``ctx.cb``."""

        @staticmethod
        def forward(ctx, cb, *tensors):
            ctx.cb = cb
            ctx.set_materialize_grads(False)
            ctx.mark_non_differentiable(*[t for t in tensors if not t.requires_grad])
            return tensors if len(tensors) > 1 else tensors[0]

        @staticmethod
        def backward(ctx, *grads):
            return (None,) + tuple(ctx.cb(grads))
    return BackwardHookFunction


_BHF = []


class _BackwardHook:
    def __init__(self, module, d):
        self.module = module
        self.hooks = list(d.get("_backward_hooks", {}).values())
        self.pre_hooks = list(d.get("_backward_pre_hooks", {}).values())
        self.n_inputs, self.input_idx, self.n_outputs, self.grad_outputs = 0, None, 0, None

    @staticmethod
    def _apply(cb, seq):
        from ..autograd.grad_mode import is_grad_enabled  # noqa: PLC0415
        from ..tensor import Tensor  # noqa: PLC0415
        idx = [i for i, a in enumerate(seq) if isinstance(a, Tensor)]
        if not idx or not is_grad_enabled() or not any(seq[i].requires_grad for i in idx):
            return seq, None
        if not _BHF:
            _BHF.append(_hook_fn_class())
        new = _BHF[0].apply(cb, *[seq[i] for i in idx])
        new = new if isinstance(new, tuple) else (new,)
        out = list(seq)
        for i, t in zip(idx, new):
            out[i] = t
        return tuple(out), idx

    @staticmethod
    def _pack(idx, vals, n):
        r = [None] * n
        for i, v in zip(idx, vals):
            r[i] = v
        return tuple(r)

    def setup_input_hook(self, args):
        self.n_inputs = len(args)
        if not self.hooks:
            return args
        new, self.input_idx = self._apply(self._input_cb, tuple(args))
        if self.input_idx is not None:  # NOTE: kept as arrays' specs only (no reference to the inputs)
            self.input_specs = [(args[i].shape, args[i].dtype, args[i].xp) for i in self.input_idx]
        return new

    def _input_cb(self, grads):
        # NOTE: as PyTorch, a Tensor input that gets no gradient (it does not require grad, or forward did not use
        # it) shows zeros in grad_input; non-Tensor inputs show None
        grads = [Tensor(xp.zeros(shape, dtype)) if g is None else g
                 for g, (shape, dtype, xp) in zip(grads, self.input_specs)]
        gi = self._pack(self.input_idx, grads, self.n_inputs)
        for hook in self.hooks:
            r = hook(self.module, gi, self.grad_outputs)
            if r is None:
                continue
            r = tuple(r) if isinstance(r, (tuple, list)) else (r,)
            if len(r) != len(gi):
                raise RuntimeError(f"Backward hook returned an invalid number of grad_input, got {len(r)}, but "
                                   f"expected {len(gi)}")
            gi = r
        self.grad_outputs = None
        return tuple(gi[i] for i in self.input_idx)

    def setup_output_hook(self, out):
        from ..tensor import Tensor  # noqa: PLC0415
        single = isinstance(out, Tensor)
        if not single and not isinstance(out, tuple):
            raise RuntimeError("full backward hooks support a module output that is a Tensor or a tuple of Tensors "
                               f"only, got {type(out).__name__}")
        seq = (out,) if single else out
        self.n_outputs = len(seq)
        new, self.output_idx = self._apply(self._output_cb, seq)
        return new[0] if single else new

    def _output_cb(self, grads):
        go = self._pack(self.output_idx, grads, self.n_outputs)
        for hook in self.pre_hooks:
            r = hook(self.module, go)
            if r is None:
                continue
            r = tuple(r) if isinstance(r, (tuple, list)) else (r,)
            if len(r) != len(go):
                raise RuntimeError(f"Backward pre hook returned an invalid number of grad_output, got {len(r)}, but "
                                   f"expected {len(go)}")
            go = r
        self.grad_outputs = go
        if self.input_idx is None and self.hooks:
            import warnings  # noqa: PLC0415
            warnings.warn("Full backward hook is firing when gradients are computed with respect to module outputs "
                          "since no inputs require gradients. See https://docs.pytorch.org/docs/main/generated/"
                          "torch.nn.Module.html#torch.nn.Module.register_full_backward_hook for more details.",
                          stacklevel=2)
            gi = (None,) * self.n_inputs
            for hook in self.hooks:
                r = hook(self.module, gi, self.grad_outputs)
                if r is not None and not (isinstance(r, tuple) and all(v is None for v in r)):
                    raise RuntimeError("Backward hook for Modules where no input requires gradient should always "
                                       "return None or None for all gradients.")
            self.grad_outputs = None
        return tuple(go[i] for i in self.output_idx)
