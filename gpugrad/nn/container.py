"""Containers: Sequential, ModuleList, ModuleDict, ParameterList."""
from __future__ import annotations

import operator
from collections import OrderedDict

from .module import Module, _addindent
from .parameter import Parameter

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList"]


def _index(idx, n, what):
    i = operator.index(idx)
    if not -n <= i < n:
        raise IndexError(f"index {idx} is out of range for a {what} of length {n}")
    return i % n


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: children named '0', '1', ... kept in order."""
    _takes_arrays = True  # NOTE: containers pass inputs on; each child says what it accepts (Module.__call__)

    def _renumber(self, items):
        """Re-register ``items`` as children '0'..'n-1' (indices stay contiguous, as PyTorch)."""
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def pop(self, key):
        """Remove and return the child at ``key`` (an index or a slice); the rest are renumbered."""
        v = self[key]
        del self[key]
        return v


class Sequential(_ModuleSequence):
    """Modules applied in order: ``Sequential(m1, m2, ...)`` or ``Sequential(OrderedDict(name=m, ...))``."""

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for k, m in args[0].items():
                self.add_module(k, m)
        else:
            for i, m in enumerate(args):
                self.add_module(str(i), m)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_index(idx, len(self), "Sequential")]

    def __setitem__(self, idx, module):
        key = list(self._modules)[_index(idx, len(self), "Sequential")]
        setattr(self, key, module)

    def __delitem__(self, idx):
        keys = list(self._modules)
        for k in (keys[idx] if isinstance(idx, slice) else [keys[_index(idx, len(keys), "Sequential")]]):
            del self._modules[k]
        # NOTE: as PyTorch 2.13, the children left are renumbered '0'..'n-1', named ones too
        self._renumber(list(self._modules.values()))

    def _check_seq(self, other):
        if not isinstance(other, Sequential):
            raise ValueError(f"add operator supports only objects of Sequential class, but {type(other)} is given.")

    def _check_factor(self, n):
        if not isinstance(n, int):
            raise TypeError(f"unsupported operand type(s) for *: {type(self)} and {type(n)}")
        if n <= 0:
            raise ValueError(f"Non-positive multiplication factor {n} for {type(self)}")

    def __add__(self, other):
        """A new Sequential of both's modules (the same objects), numbered '0'..'n-1'."""
        self._check_seq(other)
        return Sequential(*self, *other)

    def __iadd__(self, other):
        """Append other's modules, named by their new positions (the existing names stay)."""
        self._check_seq(other)
        n = len(self)
        for i, m in enumerate(list(other)):
            self.add_module(str(n + i), m)
        return self

    def __mul__(self, n):
        """A new Sequential repeating this one's modules ``n`` times (the same objects, as PyTorch)."""
        self._check_factor(n)
        return Sequential(*(list(self) * n))

    __rmul__ = __mul__

    def __imul__(self, n):
        self._check_factor(n)
        mods, k = list(self), len(self)
        for i, m in enumerate(mods * (n - 1)):
            self.add_module(str(k + i), m)
        return self

    def insert(self, index, module):
        items = list(self._modules.values())
        n = len(items)
        index = index + n if index < 0 else index
        if not 0 <= index <= n:
            raise IndexError(f"insert index {index} is out of range for a Sequential of length {n}")
        items.insert(index, module)
        self._renumber(items)
        return self

    def forward(self, input):  # noqa: A002
        for m in self._modules.values():
            input = m(input)  # noqa: A001
        return input


class ModuleList(_ModuleSequence):
    """A list of modules, registered as children '0', '1', ... (no forward of its own)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[str(_index(idx, len(self), "ModuleList"))]

    def __setitem__(self, idx, module):
        setattr(self, str(_index(idx, len(self), "ModuleList")), module)

    def __repr__(self):
        """As PyTorch's: a run of children with the same repr is one entry, ``(i-j): n x <repr>``."""
        runs = []  # [first index, last index, repr]
        for i, m in enumerate(self._modules.values()):
            r = repr(m)
            if runs and runs[-1][2] == r:
                runs[-1][1] = i
            else:
                runs.append([i, i, r])
        if not runs:
            return self._get_name() + "()"
        items = [_addindent(f"({a}): {r}" if a == b else f"({a}-{b}): {b - a + 1} x {r}", 2) for a, b, r in runs]
        return self._get_name() + "(\n  " + "\n  ".join(items) + "\n)"

    def __delitem__(self, idx):
        items = list(self._modules.values())
        if isinstance(idx, slice):
            del items[idx]
        else:
            del items[_index(idx, len(items), "ModuleList")]
        self._renumber(items)

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        return type(self)(list(self) + list(other))

    def insert(self, index, module):
        items = list(self._modules.values())
        items.insert(index, module)
        self._renumber(items)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(): iterate over it in your module's forward")


class ModuleDict(Module):
    """An ordered dict of modules, registered under their keys."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def pop(self, key):
        m = self[key]
        del self[key]
        return m

    def clear(self):
        self._modules.clear()

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for k, m in items:
            self[k] = m

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward(): index it in your module's forward")


class ParameterList(Module):
    """A list of Parameters registered as '0', '1', ... (plain Tensors are wrapped as Parameters)."""

    def __init__(self, values=None):
        super().__init__()
        for v in values or ():
            self.append(v)

    def __getitem__(self, idx):
        if isinstance(idx, slice):  # NOTE: a new ParameterList holding the same Parameter objects, as PyTorch
            return type(self)(list(self._parameters.values())[idx])
        return self._parameters[str(_index(idx, len(self), "ParameterList"))]

    def __setitem__(self, idx, value):
        key = str(_index(idx, len(self), "ParameterList"))
        setattr(self, key, value if isinstance(value, Parameter) else Parameter(value))

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def append(self, value):
        setattr(self, str(len(self)), value if isinstance(value, Parameter) else Parameter(value))
        return self

    def extend(self, values):
        for v in values:
            self.append(v)
        return self

    def extra_repr(self):
        from .extra import _param_line  # noqa: PLC0415
        return "\n".join(_param_line(k, v) for k, v in self._parameters.items())
