"""``gg.nn.utils.stateless.functional_call``: call a module with some parameters and buffers swapped out."""
from __future__ import annotations

import warnings

from ..tensor import Tensor

__all__ = ["functional_call"]

_MISSING = object()


def _untie(module, given):
    """PyTorch's _untie_named_tensors_map: a tensor given under one of several tied names replaces all of them."""
    names = {}
    for n, t in [*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)]:
        names.setdefault(id(t), set()).add(n)
    tied = {n: ns for ns in names.values() if len(ns) > 1 for n in ns}
    gt = {n for n in given if n in tied}
    for n in gt:
        ns = tied[n]
        if len({id(given[m]) for m in ns & gt}) > 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(ns)}, which are tied. "
                             "Consider using tie_weights=False")
    out = dict(given)
    for n in gt:
        out.update(dict.fromkeys(tied[n], given[n]))
    return out


def _swap(module, name, t):
    """Put ``t`` at dotted ``name`` (into _parameters/_buffers where it lives); return what was there."""
    prefix, _, attr = name.rpartition(".")
    m = module.get_submodule(prefix)
    if t is not _MISSING and t is not None and not isinstance(t, Tensor):
        raise TypeError(f"{t} is not an instance of torch.Tensor")
    for reg in (m._parameters, m._buffers):
        if attr in reg:
            old = reg[attr]
            if t is _MISSING:
                del reg[attr]
            else:
                reg[attr] = t
            return old
    old = getattr(m, attr, _MISSING)
    if t is not _MISSING:
        setattr(m, attr, t)
    elif hasattr(m, attr):
        delattr(m, attr)
    return old


def functional_call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """``module(*args, **kwargs)`` with the parameters and buffers named in ``parameters_and_buffers`` (a dict
    of dotted names, or a sequence of dicts) replaced for the call; the originals are back afterwards, also when
    the call raises. ``tie_weights``: a value for one of several tied names replaces all of them; ``strict``:
    the names must be exactly the module's parameters and buffers."""
    warnings.warn("`torch.nn.utils.stateless.functional_call` is deprecated as of PyTorch 2.0 and will be removed in a "
                  "future version of PyTorch. Please use `torch.func.functional_call` instead which is a drop-in "
                  "replacement.", FutureWarning, stacklevel=2)
    return call(module, parameters_and_buffers, args, kwargs, tie_weights=tie_weights, strict=strict)


def call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """:func:`functional_call` without its deprecation warning (``gg.func.functional_call``)."""
    if isinstance(parameters_and_buffers, (list, tuple)):
        merged = {}
        for d in parameters_and_buffers:
            for k, v in d.items():
                if k in merged:
                    raise ValueError(f"{k} appeared in multiple dictionaries; behavior of functional call is ambiguous")
                merged[k] = v
        parameters_and_buffers = merged
    given = _untie(module, parameters_and_buffers) if tie_weights else parameters_and_buffers
    if strict:
        valid = {n for n, _ in [*module.named_parameters(remove_duplicate=False),
                                *module.named_buffers(remove_duplicate=False)]}
        msgs = []
        if set(given) - valid:
            msgs.append(f"Unexpected key(s): {', '.join(map(repr, sorted(set(given) - valid)))}.")
        if valid - set(given):
            msgs.append(f"Missing key(s): {', '.join(map(repr, sorted(valid - set(given))))}.")
        if msgs:
            raise RuntimeError(f"Error(s) in reparametrizing for {module._get_name()}:\n\t" + "\n\t".join(msgs))
    kwargs = {} if kwargs is None else kwargs
    args = () if args is None else args if isinstance(args, tuple) else (args,)
    orig = {}
    try:
        for k, v in given.items():
            orig[k] = _swap(module, k, v)
        return module(*args, **kwargs)
    finally:
        for k, v in reversed(orig.items()):
            _swap(module, k, v)
