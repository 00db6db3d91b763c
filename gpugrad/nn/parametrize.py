"""``gg.nn.utils.parametrize``: module tensors that are computed, on every read, from other tensors.

PyTorch's API and layout: after ``register_parametrization(m, "weight", P)`` the tensor lives at
``m.parametrizations.weight.original`` (or ``original0``, ``original1``, ... when ``P.right_inverse`` returns a
sequence), and ``m.weight`` reads as ``P(original)``; writing ``m.weight = x`` stores ``P.right_inverse(x)``.
State dict keys follow: ``parametrizations.weight.original``.

How it is built here: the module's class is swapped for a one-off subclass ``Parametrized<Class>`` (made per
module, since it carries that module's attributes), and each parametrized name is a data descriptor
(:class:`_Recomputed`) on that subclass. The chain of parametrizations and the stored originals are one
:class:`ParametrizationList` per name, kept in the ``parametrizations`` ModuleDict, so ``named_parameters``,
``state_dict`` and ``to()`` see the originals as ordinary members.
"""
from __future__ import annotations

import collections.abc
import contextlib
import copy

from ..autograd import no_grad
from ..tensor import Tensor, _bump
from .container import ModuleDict, ModuleList
from .parameter import Parameter

__all__ = ["cached", "ParametrizationList", "register_parametrization", "is_parametrized", "remove_parametrizations",
           "type_before_parametrizations", "transfer_parametrizations_and_params"]

_SEQ_OR_TENSOR = "'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "


# -- the cached() context ------------------------------------------------------------------------------------

class _Memo:
    """What :func:`cached` shares: how many contexts are open, and the values read so far inside them, keyed
    by (id(module), tensor name)."""

    def __init__(self):
        self.depth = 0
        self.values = {}

    def read(self, owner, name, compute):
        if self.depth == 0:
            return compute()
        key = (id(owner), name)
        if key not in self.values:
            self.values[key] = compute()
        return self.values[key]


_memo = _Memo()


@contextlib.contextmanager
def cached():
    """Within this context a parametrized tensor is computed at its first read and that value is reused (for
    instance across the steps of a recurrent network); leaving the outermost context forgets the values."""
    _memo.depth += 1
    try:
        yield
    finally:
        _memo.depth -= 1
        if _memo.depth == 0:
            _memo.values.clear()


# -- small helpers -------------------------------------------------------------------------------------------

def _register(owner, name, t):
    """Put ``t`` on ``owner`` as a parameter when it is a Parameter, otherwise as a buffer."""
    if isinstance(t, Parameter):
        owner.register_parameter(name, t)
    else:
        owner.register_buffer(name, t)


def _take_data(target, source):
    """PyTorch's ``target.set_(source)``: ``target`` keeps its identity (so optimizers that hold it keep
    working) and from now on holds ``source``'s array (shape included)."""
    if target is source:
        return
    target._data = source._data
    _bump(target)


def _seed_originals(chain, value):
    """Run ``value`` back through the chain's ``right_inverse`` methods, last parametrization first. At
    registration a missing ``right_inverse``, or one that raises NotImplementedError, counts as the identity."""
    for p in reversed(chain):
        inverse = getattr(p, "right_inverse", None)
        if inverse is None:
            continue
        try:
            value = inverse(value)
        except NotImplementedError:
            pass
    return value


# -- the list of parametrizations of one tensor -------------------------------------------------------------

class ParametrizationList(ModuleList):
    """The parametrizations registered on one tensor, applied first to last, together with the stored
    original tensor(s): ``original`` when the first ``right_inverse`` gives one tensor (or there is none), else
    ``original0``, ``original1``, ... This is the type of ``module.parametrizations[tensor_name]``."""

    def __init__(self, modules, original, unsafe=False):
        if not len(modules):
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        shape0, dtype0 = original.shape, original.dtype
        with no_grad():
            stored = _seed_originals(self, original)
        if isinstance(stored, Tensor):
            self.is_tensor, self.ntensors = True, 1
            self._adopt_single(original, stored)
        elif isinstance(stored, collections.abc.Sequence):
            self.is_tensor, self.ntensors = False, len(stored)
            self._adopt_many(original, stored)
        else:
            raise ValueError(_SEQ_OR_TENSOR + f"Got {type(stored).__name__}")
        if not self.unsafe:
            self._check_output(shape0, dtype0)

    def _adopt_single(self, original, stored):
        for what in ("dtype", "device"):
            a, b = getattr(original, what), getattr(stored, what)
            if a != b:
                raise ValueError(f"When `right_inverse` outputs one tensor, it may not change the {what}.\n"
                                 f"original.{what}: {a}\nright_inverse(original).{what}: {b}")
        # NOTE: the very tensor object that was module.<name> becomes `original` (it only takes the inverted
        # array), so a Parameter already handed to an optimizer keeps being the one that trains.
        with no_grad():
            _take_data(original, stored)
        _register(self, "original", original)

    def _adopt_many(self, original, stored):
        as_parameter, wants_grad = isinstance(original, Parameter), original.requires_grad
        for i, t in enumerate(stored):
            if not isinstance(t, Tensor):
                raise ValueError(_SEQ_OR_TENSOR + f"Got element {i} of the sequence with type {type(t).__name__}.")
            t = Parameter(t, wants_grad) if as_parameter else t
            t.requires_grad_(wants_grad)
            _register(self, f"original{i}", t)

    def _check_output(self, shape0, dtype0):
        out = self()
        if not isinstance(out, Tensor):
            raise ValueError(f"A parametrization must return a tensor. Got {type(out).__name__}.")
        if out.dtype != dtype0:
            raise ValueError("Registering a parametrization may not change the dtype of the tensor, unless "
                             f"`unsafe` flag is enabled.\nunparametrized dtype: {dtype0}\n"
                             f"parametrized dtype: {out.dtype}")
        if out.shape != shape0:
            raise ValueError("Registering a parametrization may not change the shape of the tensor, unless "
                             f"`unsafe` flag is enabled.\nunparametrized shape: {shape0}\n"
                             f"parametrized shape: {out.shape}")

    def _original_names(self):
        return ["original"] if self.is_tensor else [f"original{i}" for i in range(self.ntensors)]

    def forward(self):
        steps = iter(self)
        out = next(steps)(*(getattr(self, n) for n in self._original_names()))
        for p in steps:
            out = p(out)
        return out

    def right_inverse(self, value):
        """Store in the original tensor(s) what makes this chain return ``value`` (each parametrization's
        ``right_inverse``, last first); the originals keep their identity."""
        with no_grad():
            for p in reversed(self):
                if not hasattr(p, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(p).__name__} does not implement right_inverse.")
                value = p.right_inverse(value)
            store = self._store_single if self.is_tensor else self._store_many
            store(value)

    def _store_single(self, new):
        if not isinstance(new, Tensor):
            raise ValueError(f"`right_inverse` should return a tensor. Got {type(new).__name__}")
        target = self.original
        if new.dtype != target.dtype:
            raise ValueError(f"The tensor returned by `right_inverse` has dtype {new.dtype} while `original` "
                             f"has dtype {target.dtype}")
        _take_data(target, new)

    def _store_many(self, values):
        if not isinstance(values, collections.abc.Sequence):
            raise ValueError(f"'right_inverse' must return a sequence of tensors. Got {type(values).__name__}.")
        if len(values) != self.ntensors:
            raise ValueError(f"'right_inverse' must return a sequence of tensors of length {self.ntensors}. "
                             f"Got a sequence of length {len(values)}.")
        for i, (name, t) in enumerate(zip(self._original_names(), values)):
            target = getattr(self, name)
            if not isinstance(t, Tensor):
                raise ValueError("'right_inverse' must return a sequence of tensors or reference-type opaques. "
                                 f"Got element {i} of type {type(t).__name__}.")
            if t.dtype != target.dtype:
                raise ValueError(f"Tensor {i} returned by `right_inverse` has dtype {t.dtype} while `{name}` "
                                 f"has dtype {target.dtype}")
            _take_data(target, t)


# -- the per-module subclass ---------------------------------------------------------------------------------

class _Recomputed:
    """Class-level data descriptor standing for ``module.<name>`` of a parametrized module: a read evaluates
    the name's ParametrizationList (once per :func:`cached` context), a write goes through its right_inverse."""

    def __init__(self, name):
        self.name = name

    def __get__(self, owner, cls=None):
        if owner is None:
            return self
        chain = owner.parametrizations[self.name]
        return _memo.read(owner, self.name, chain)

    def __set__(self, owner, value):
        owner.parametrizations[self.name].right_inverse(value)


def _no_pickle(self):
    raise RuntimeError("Serialization of parametrized modules is only supported through state_dict(). See:\n"
                       "https://pytorch.org/tutorials/beginner/saving_loading_models.html"
                       "#saving-loading-a-general-checkpoint-for-inference-and-or-resuming-training")


def _twin_class(cls):
    """Another class just like the one-off ``cls`` (same name, base and descriptors)."""
    body = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
    body["__qualname__"] = cls.__qualname__
    return type(cls.__name__, cls.__bases__, body)


def _deepcopy_parametrized(self, memo):
    done = memo.get(id(self))
    if done is not None:
        return done
    # NOTE: the copy gets a class of its own (same name, base and descriptors). PyTorch's copy shares the
    # one-off class, so removing a parametrization from either module would strip the other's attribute.
    dup = object.__new__(_twin_class(type(self)))
    memo[id(self)] = dup
    for k, v in self.__dict__.items():
        dup.__dict__[k] = copy.deepcopy(v, memo)
    return dup


def _make_parametrized_class(base):
    body = {"__getstate__": _no_pickle, "__module__": base.__module__,
            "__qualname__": f"Parametrized{base.__qualname__}"}
    if not hasattr(base, "__deepcopy__"):
        body["__deepcopy__"] = _deepcopy_parametrized
    return type(f"Parametrized{base.__name__}", (base,), body)


# -- public functions ----------------------------------------------------------------------------------------

def _check_appended(module, tensor_name, parametrization):
    """Registering a further parametrization on an already parametrized name (safe mode): it must keep the
    dtype and shape of ``module.<tensor_name>``, and so must its ``right_inverse`` if it has a working one."""
    current = getattr(module, tensor_name)
    out = parametrization(current)
    if not isinstance(out, Tensor):
        raise ValueError(f"A parametrization must return a tensor. Got {type(out).__name__}.")
    _same_meta(current, out, lambda what, a, b: (
        f"Registering a parametrization may not change the {what} of the tensor, unless the `unsafe` flag is "
        f"enabled.\nmodule.{tensor_name}.{what}: {a}\nparametrization(module.{tensor_name}).{what}: {b}"))
    inverse = getattr(parametrization, "right_inverse", None)
    if inverse is None:
        return
    try:
        back = inverse(out)
    except NotImplementedError:
        return
    if not isinstance(back, Tensor):
        raise ValueError(f"parametrization.right_inverse must return a tensor. Got: {type(back).__name__}")
    _same_meta(current, back, lambda what, a, b: (
        f"The tensor returned by parametrization.right_inverse must have the same {what} as module.{tensor_name}, "
        f"unless the `unsafe` flag is enabled.\nmodule.{tensor_name}.{what}: {a}\nreturned {what}: {b}"))


def _same_meta(current, other, text):
    """ValueError ``text(what, current's, other's)`` unless other has current's dtype and shape (in that order)."""
    for what in ("dtype", "shape"):
        a, b = getattr(current, what), getattr(other, what)
        if a != b:
            raise ValueError(text(what, a, b))


def register_parametrization(module, tensor_name, parametrization, *, unsafe=False):
    """Make ``module.<tensor_name>`` read as ``parametrization(original)`` (see the module docstring). On a
    name that is already parametrized the new one is applied after the others. ``unsafe=True`` skips the
    checks that the dtype and shape are kept. Returns ``module``."""
    parametrization.train(mode=module.training)
    chain = _chain_of(module, tensor_name)
    if chain is not None:
        if not unsafe:
            _check_appended(module, tensor_name, parametrization)
        chain.append(parametrization)
        chain.unsafe = chain.unsafe or unsafe  # NOTE: one unsafe member makes the whole list unsafe, as PyTorch
        return module
    if tensor_name not in module._parameters and tensor_name not in module._buffers:
        raise ValueError(f"Module '{module}' does not have a parameter, a buffer, or a parametrized element with "
                         f"name '{tensor_name}'")
    chain = ParametrizationList([parametrization], getattr(module, tensor_name), unsafe=unsafe)
    delattr(module, tensor_name)
    first = not is_parametrized(module)
    if first:
        module.__class__ = _make_parametrized_class(type(module))
        module.add_module("parametrizations", ModuleDict())
    clash = hasattr(module, tensor_name)
    if clash:
        raise AssertionError(f"Module already has an attribute named '{tensor_name}'")
    setattr(type(module), tensor_name, _Recomputed(tensor_name))
    module.parametrizations[tensor_name] = chain
    return module


def _chain_of(module, tensor_name):
    """The ParametrizationList of ``module.<tensor_name>``, or None."""
    registry = getattr(module, "parametrizations", None)
    if isinstance(registry, ModuleDict) and tensor_name in registry:
        return registry[tensor_name]
    return None


def is_parametrized(module, tensor_name=None):
    """True when ``module`` has a parametrization (on ``tensor_name``, when given)."""
    registry = getattr(module, "parametrizations", None)
    has_any = isinstance(registry, ModuleDict) and len(registry) > 0
    return has_any if tensor_name is None else has_any and tensor_name in registry


def remove_parametrizations(module, tensor_name, leave_parametrized=True):
    """Make ``module.<tensor_name>`` a plain parameter or buffer again, holding its current parametrized value
    (``leave_parametrized=True``) or the stored original. A single stored original keeps its identity.
    Returns ``module``."""
    chain = _chain_of(module, tensor_name)
    if chain is None:
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    if chain.is_tensor:
        restored = chain.original
        if leave_parametrized:  # NOTE: leave_parametrized=False keeps the stored original as it is
            with no_grad():
                _take_data(restored, getattr(module, tensor_name))
    elif leave_parametrized:
        value = getattr(module, tensor_name)
        # NOTE: a value that needs no gradient (buffers, frozen originals) comes back as a buffer, as PyTorch's
        restored = Parameter(value) if value.requires_grad else value
    else:
        raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is parametrized in "
                         "terms of a sequence of tensors.")
    base = type_before_parametrizations(module)
    delattr(type(module), tensor_name)
    registry = module.parametrizations
    registry.pop(tensor_name)
    _register(module, tensor_name, restored)
    if len(registry) == 0:  # the last one: the module gets its own class back
        del module._modules["parametrizations"]
        module.__class__ = base
    return module


def type_before_parametrizations(module):
    """The class ``module`` had before its first parametrization (its own class when it has none)."""
    cls = type(module)
    if is_parametrized(module):
        (cls,) = cls.__bases__
    return cls


def transfer_parametrizations_and_params(from_module, to_module, tensor_name=None):
    """Register on ``to_module`` the parametrizations of ``from_module`` (all of them, or those of
    ``tensor_name``), sharing the original tensors; a tensor ``to_module`` lacks is created first. Does nothing
    when ``from_module`` is not parametrized. Returns ``to_module``."""
    if not is_parametrized(from_module):
        return to_module
    names = list(from_module.parametrizations) if tensor_name is None else [tensor_name]
    for name in names:
        source = from_module.parametrizations[name]
        if not hasattr(to_module, name):
            setattr(to_module, name, Parameter(getattr(from_module, name)))
        for p in source:
            # NOTE: the source list's unsafe flag travels along; PyTorch re-registers in safe mode, which
            # refuses to transfer a shape- or dtype-changing parametrization.
            register_parametrization(to_module, name, p, unsafe=source.unsafe)
        target = to_module.parametrizations[name]
        for key in source._original_names():
            setattr(target, key, getattr(source, key))
    return to_module
