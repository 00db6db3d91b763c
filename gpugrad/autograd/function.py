"""``gg.autograd.Function``: PyTorch's ctx-style custom autograd functions, built on :class:`Primitive`.

Users write ``forward``/``backward`` with Tensors; each call records one ``Primitive`` node (a subclass
named after the Function, so ``grad_fn`` reads ``<MyFnBackward>``) whose array-level forward is the
already-computed output and whose backward calls the user's backward with Tensors (under grad mode
when ``create_graph=True``, so a backward written with Tensor ops gives double backward).
See docs/contracts.md, "Custom functions".
"""
from __future__ import annotations

import functools
import inspect
import traceback
import weakref

import numpy as np

from .._dtypes import is_float as _isf
from . import primitive as _prim
from .grad_mode import no_grad, state
from .primitive import Primitive

__all__ = ["Function", "FunctionCtx", "once_differentiable"]

_FREED = object()  # ctx._saved after the graph was freed
# NOTE: node attributes owned by Primitive/the engine; never looked up on the user's ctx
_INTERNAL = frozenset({"ctx", "owner", "inputs", "seq", "vers", "prev", "trace", "params", "y", "out", "yver"})


class FunctionCtx:
    """The ``ctx`` handed to ``forward``/``setup_context`` and ``backward``; any attribute may be set
    on it (``ctx.k = 3``), and ``y.grad_fn.k`` reads it back."""
    needs_input_grad = ()   # one bool per forward argument (False for non-Tensors)
    _to_save = ()
    _saved = None           # packed (version-checked) entries once a graph node owns the ctx
    _dirty = ()
    _non_diff = ()
    _inputs = ()
    _materialize = True
    _name = "Function"

    def save_for_backward(self, *tensors):
        T = _prim._Tensor
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, T):
                raise TypeError(f"save_for_backward can only save Tensors or None, but argument {i} is of type "
                                f"{type(t).__name__}; keep other values as ctx attributes (ctx.k = value)")
        self._to_save = tensors

    def mark_dirty(self, *tensors):
        """Declare inputs that forward modified in place; forward must return them (they are outputs)."""
        self._dirty = tensors

    def mark_non_differentiable(self, *tensors):
        """Outputs that get requires_grad=False; backward still receives a gradient (zeros) for each."""
        self._non_diff = tensors

    def set_materialize_grads(self, value):
        """False: backward receives None (not zeros) for outputs that got no gradient."""
        self._materialize = bool(value)

    @property
    def saved_tensors(self):
        """What forward saved, each checked against in-place writes since (PyTorch's error if stale)."""
        saved = self._saved
        if saved is None:
            return tuple(self._to_save)
        if saved is _FREED:
            from .engine import _FREED as msg  # noqa: PLC0415
            raise RuntimeError(msg)
        return tuple(None if e is None else self._unpack(i, *e) for i, e in enumerate(saved))

    def _unpack(self, i, t, ver, v0, ref, data):
        if ver[0] != v0:
            a = data if t is None else t
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an inplace operation: "
                f"[{a.dtype} {list(a.shape)}], which is saved tensor {i} of {self._name}Backward, is at version "
                f"{ver[0]}; expected version {v0} instead. Hint: it was written in place after forward saved it "
                "(ctx.save_for_backward); write to a clone() instead, or save a clone() in forward.")
        if ref is None:
            return t
        t = ref()  # NOTE: outputs are saved weakly (no node -> ctx -> output -> node cycle), as Primitive.result
        if t is None:
            if state.grad_enabled:
                raise RuntimeError(f"{self._name}: an output saved with save_for_backward was freed before a "
                                   "create_graph backward; keep retain_graph=True with create_graph=True")
            t = _prim._Tensor(data)
            t._ver = ver  # first order: the values are all backward needs
        return t


class _Node(Primitive):
    """The graph node of one custom Function call (subclassed per Function: the name gives the repr)."""
    saves = ()  # NOTE: saved tensors are version-checked when backward reads ctx.saved_tensors (as PyTorch)
    fn = None

    def forward(self, *arrays, y):
        return y

    @property
    def needs_input_grad(self):
        return self.ctx.needs_input_grad

    @property
    def saved_tensors(self):
        return self.ctx.saved_tensors

    def __getattr__(self, name):  # NOTE: `y.grad_fn.k` reads `ctx.k` (in PyTorch the ctx is the node)
        if name in _INTERNAL or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.ctx, name)

    def backward(self, g):
        T, ctx, graph = _prim._Tensor, self.ctx, self.graph
        diff = self.diff
        if len(diff) == 1:
            got = {diff[0]: g}
        else:  # g is the mask of the outputs whose _Pick ran in this sweep (see the NOTE in Function._record)
            mask, pend = (g._data if graph else g), self.pending
            got = {i: pend.get(j) for j, i in enumerate(diff) if mask[j]}
            pend.clear()
        grads = []
        for i, meta in enumerate(self.meta):
            gi = got.get(i)
            if gi is None and meta is not None and ctx._materialize:
                from ..tensor import zeros  # noqa: PLC0415
                gi = zeros(*meta[0], dtype=meta[1], device=meta[2])
            elif gi is not None and not graph:
                gi = T(gi)
            grads.append(gi)
        return self._take(self.fn.backward(ctx, *grads))

    def _take(self, res):
        """Validate what the user's backward returned; one gradient per node input (arrays unless graph)."""
        T, name = _prim._Tensor, f"{self.name}Backward"
        res = res if isinstance(res, tuple) else (res,)
        n = len(self.isten)
        if len(res) > n and all(r is None for r in res[n:]):
            res = res[:n]  # NOTE: extra trailing Nones are allowed, as PyTorch
        if len(res) != n:
            raise RuntimeError(f"function {name} returned an incorrect number of gradients (expected {n}, got "
                               f"{len(res)}): return one gradient per forward argument, None for non-Tensors")
        out, k, ins = [], 0, self.inputs
        for pos, r in enumerate(res):
            if not self.isten[pos]:
                if r is not None:
                    raise RuntimeError(f"function {name} returned a gradient different than None at position "
                                       f"{pos + 1}, but the corresponding forward input was not a Tensor")
                continue
            t = ins[k]
            k += 1
            if r is None or not self.ctx.needs_input_grad[pos]:
                out.append(None)
                continue
            if not isinstance(r, T):
                raise RuntimeError(f"function {name} returned {type(r).__name__} as the gradient of forward "
                                   f"argument {pos} ({self._argname(pos)}): expected a Tensor or None")
            if r.shape != t.shape:
                r = self._reduce(r, t, pos, name)
            if r.dtype != t.dtype:
                r = r.type(t.dtype)
            rd, td = r._data, t._data
            if type(rd) is not type(td) or (type(td) is not np.ndarray and rd.device != td.device):
                raise RuntimeError(f"function {name} returned the gradient of forward argument {pos} "
                                   f"({self._argname(pos)}) on {r.device}, but that input is on {t.device}")
            if not self.graph:
                # NOTE: never hand the engine an input's or saved tensor's own array (it would become .grad)
                saved = self.ctx._saved or ()
                if any(rd is u._data for u in ins) or any(e is not None and rd is e[4] for e in saved):
                    rd = rd.copy()
                r = rd
            out.append(r)
        return tuple(out)

    def _reduce(self, r, t, pos, name):
        """Sum a broadcast gradient down to the input's shape (PyTorch accepts any shape the input expands to)."""
        shape, lead = tuple(t.shape), r.ndim - t.ndim
        if lead < 0 or any(s != 1 and s != rs for s, rs in zip(shape, r.shape[lead:])):
            raise RuntimeError(f"Function {name} returned an invalid gradient at index {pos} - got {list(r.shape)} "
                               f"but expected shape compatible with {list(shape)} (forward argument {pos}, "
                               f"{self._argname(pos)}): return a gradient of the input's shape")
        axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and r.shape[lead + i] != 1)
        return (r.sum(dim=axes, keepdim=True) if axes else r).reshape(shape)

    def _argname(self, pos):
        try:
            names = list(inspect.signature(self.fn.forward).parameters)[0 if self.fn._setup else 1:]
            return f"'{names[pos]}'"
        except (TypeError, ValueError, IndexError):
            return f"argument {pos}"

    def release(self):
        ctx = self.__dict__.get("ctx")
        super().release()
        if ctx is not None:
            ctx._saved, ctx._inputs = _FREED, ()
            self.ctx = ctx  # NOTE: ctx attributes stay readable through grad_fn (as PyTorch); saved tensors go


class _Pick(Primitive):
    """Multiple outputs: output j of a Function (input: the node's hidden packed tensor)."""
    saves = ()

    def forward(self, d, y):
        return y

    def backward(self, g):
        o = self.owner
        o.pending[self.j] = g
        m = np.zeros(len(o.diff))
        m[self.j] = 1
        return _prim._Tensor(m) if self.graph else m

    def __getattr__(self, name):
        if name in _INTERNAL or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.owner, name)


class _DelayedError(Primitive):
    """Output of a @once_differentiable backward under create_graph: differentiating it raises."""
    saves = ()

    def forward(self, g, *deps, fname):
        self.fname = fname
        return g

    def backward(self, g):
        raise RuntimeError(f"trying to differentiate twice a function that was marked with @once_differentiable "
                           f"({self.fname}.backward): remove the decorator and write backward with Tensor ops to "
                           "get higher-order gradients")


def once_differentiable(fn):
    """Decorator for ``backward``: it runs under no_grad; differentiating its result again raises."""
    @functools.wraps(fn)
    def wrapper(ctx, *grads):
        with no_grad():
            out = fn(ctx, *grads)
        if not state.grad_enabled:
            return out
        T = _prim._Tensor
        # NOTE: as PyTorch, outputs are guarded only when some incoming gradient requires grad; otherwise they
        # do not require grad (differentiating them raises "does not require grad", also an error)
        deps = [g for g in grads if isinstance(g, T) and g._rg]
        if not deps:
            return out

        def guard(o):
            return _DelayedError.apply(T(o._data), *deps, fname=ctx._name) if isinstance(o, T) else o
        return tuple(guard(o) for o in out) if isinstance(out, tuple) else guard(out)
    return wrapper


class Function:
    """Base class of custom differentiable functions (PyTorch's ``torch.autograd.Function``)::

        class Cube(gg.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 3
            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 3 * g * x * x        # Tensor ops: double backward works too

        y = Cube.apply(x)

    Or PyTorch 2's split form: ``forward(*args)`` without ctx plus ``setup_context(ctx, inputs, output)``.
    forward runs under no_grad and may return a Tensor or a tuple (non-Tensors allowed); backward gets
    one gradient per output and returns one per forward argument (None for non-Tensors). In-place
    forwards must ``ctx.mark_dirty(x)`` and return ``x``; it then carries this function's history.
    """
    _setup = False
    _sig = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        attrs = {"fn": cls, "__module__": cls.__module__, "__qualname__": cls.__qualname__ + "Backward"}
        cls._node_cls = type(cls.__name__, (_Node,), dict(attrs))
        cls._pick_cls = type(cls.__name__, (_Pick,), dict(attrs))
        cls._setup = cls.setup_context is not Function.setup_context
        cls._sig = None

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__}: a Function instance cannot be called (PyTorch's legacy autograd "
                           f"function style); call {type(self).__name__}.apply(...) on the class")

    @staticmethod
    def forward(*args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement the backward method of your custom autograd.Function "
                                  "to use it with backward mode AD.")

    @classmethod
    def _bind(cls, args, kwargs):
        # NOTE: as PyTorch, keyword arguments become positional ones (they get needs_input_grad entries and
        # gradients); the setup_context form also fills in defaults, so `inputs` has every argument
        if cls._sig is None:
            cls._sig = inspect.signature(cls.forward)
        b = cls._sig.bind(*args, **kwargs) if cls._setup else cls._sig.bind(None, *args, **kwargs)
        if cls._setup:
            b.apply_defaults()
        return (b.args if cls._setup else b.args[1:]), b.kwargs

    @classmethod
    def apply(cls, *args, **kwargs):
        if kwargs or cls._setup:
            args, kwargs = cls._bind(args, kwargs)
        T = _prim._Tensor
        ctx = FunctionCtx()
        ctx._name = cls.__name__
        isten = tuple(isinstance(a, T) for a in args)
        ctx.needs_input_grad = tuple(i and a._rg for i, a in zip(isten, args))
        with no_grad():
            if cls._setup:
                out = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, out)
            else:
                out = cls.forward(ctx, *args, **kwargs)
        outs = out if isinstance(out, tuple) else (out,)
        tensors = [a for a, i in zip(args, isten) if i]
        ins, dirty, nondiff = {id(t) for t in tensors}, {id(t) for t in ctx._dirty}, {id(t) for t in ctx._non_diff}
        if not dirty <= {id(o) for o in outs}:
            raise RuntimeError(f"{cls.__name__}: some tensors marked dirty (ctx.mark_dirty) were not returned by "
                               "forward: the inputs that are modified in place must all be outputs of the Function")
        record = state.grad_enabled and any(ctx.needs_input_grad)
        final, diff, seen = list(outs), [], set()
        for i, o in enumerate(outs):
            if not isinstance(o, T):
                continue
            oid = id(o)
            if oid in seen or (oid in ins and oid not in dirty):
                # NOTE: an input returned as-is gets a new Tensor over its memory and version counter (PyTorch
                # returns a view of it); it is not registered as a view, so write to the input, not to it
                final[i] = o.detach()
            elif o._rg and oid not in dirty:
                final[i] = o.detach() if o._view is not None else o.detach_()  # forward used enable_grad()
            seen.add(oid)
            if record and oid not in nondiff and _isf(o.dtype):
                diff.append(i)
        if dirty:
            from ..tensor import _bump  # noqa: PLC0415
            for t in ctx._dirty:
                _bump(t)  # NOTE: as PyTorch, dirty tensors are bumped once more after forward
        if diff:
            cls._record(ctx, isten, tensors, outs, final, diff, dirty)
        ctx._dirty = ctx._non_diff = ()
        return tuple(final) if isinstance(out, tuple) else final[0]

    @classmethod
    def _record(cls, ctx, isten, tensors, outs, final, diff, dirty):
        from ..tensor import _rebase, _snapshot, _views_stale  # noqa: PLC0415
        T = _prim._Tensor
        stand = {}
        for i in diff:
            o = final[i]
            if id(o) in dirty:
                if o._node is None and o._rg:
                    raise RuntimeError(f"{cls.__name__}: a leaf Variable that requires grad was modified in place by "
                                       "forward (ctx.mark_dirty); pass x.clone() instead")
                if o._view is not None:
                    raise RuntimeError(f"{cls.__name__}: an input modified in place by forward (ctx.mark_dirty) is a "
                                       "view of another tensor, whose history cannot be rebased through a custom "
                                       "Function; pass x.clone() or the base tensor instead")
                stand[id(o)] = _snapshot(o, False)  # the input's identity before this call
        inputs = [stand.get(id(t), t) for t in tensors]
        # NOTE: multiple outputs without a multi-output engine: with one differentiable output the node
        # produces it directly; with several it produces a hidden 1-D tensor D (one slot per output)
        # and each output is a _Pick of D. A _Pick's backward parks its gradient on the node and
        # returns a one-hot gradient for D; the engine sums those (every _Pick was created after the
        # node, so all run before it) and the node reads the sum as the mask of the outputs that got a
        # gradient in THIS sweep, so gradients parked by an aborted earlier sweep are never used.
        many = len(diff) > 1
        y = cls._node_cls.apply(*inputs, y=np.zeros(len(diff)) if many else final[diff[0]]._data)
        node = y._node
        if state.anomaly:
            node.trace = traceback.extract_stack()[:-2]
        node.ctx, node.isten, node.diff = ctx, isten, diff
        node.meta = [(o.shape, o.dtype, o.device) if isinstance(o, T) else None for o in outs]
        if many:
            node.pending = {}
        adopted = {}
        for j, i in enumerate(diff):
            o = final[i]
            n = node
            if many:
                n = cls._pick_cls.apply(y, y=o._data)._node
                n.owner, n.j = node, j
            if id(o) in stand:
                _rebase(o, n, stand[id(o)])  # NOTE: the engine's in-place rebasing: older readers of o use prev
                _views_stale(o)
            else:
                o._node, o._rg = n, True
            adopted[id(outs[i])] = o
        ctx._inputs = tuple(inputs)
        packed, ins = [], {id(t) for t in tensors}
        for s in ctx._to_save:
            if s is None:
                packed.append(None)
            elif id(s) in adopted and (id(s) in dirty or id(s) not in ins):
                o = adopted[id(s)]  # an output: saved weakly (see FunctionCtx._unpack)
                packed.append((None, o._ver, o._ver[0], weakref.ref(o), o._data))
            else:
                packed.append((s, s._ver, s._ver[0], None, s._data))
        ctx._saved, ctx._to_save = packed, ()
