"""``gg.func``: function transforms built on autograd.grad (JAX/functorch style).

Each transform makes differentiable copies of the arguments it differentiates, so the transforms
nest: ``hessian(f) = jacrev(jacrev(f))``; ``jacrev`` of a vector-valued function is the gradient of
a vector field (its Jacobian). ``vmap`` is a loop (see its docstring), so it nests with itself and
with every other transform.

NOTE: forward mode. gpugrad has no dual numbers: ``jvp`` and ``jacfwd`` are built from reverse mode
by the double-vjp trick (``J t = d/du <J^T u, t>``, the vjp being linear in its cotangent ``u``);
``jacfwd`` takes one column ``J e_k`` per input element from one shared ``J^T u`` graph. Results
equal PyTorch's forward mode; the cost is that of reverse passes.
"""
from __future__ import annotations

import functools

from ._dtypes import is_float as _isf
from .autograd import grad as _grad
from .autograd.grad_mode import enable_grad
from .tensor import Tensor, stack, zeros_like

__all__ = ["grad", "value_and_grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "jacobian", "hessian",
           "vmap", "functional_call"]


# -- a minimal pytree: tuple, list, namedtuple and dict nodes; everything else is a leaf -------------------------
def _is_node(x):
    return isinstance(x, (tuple, list, dict))


def _children(x):
    return [x[k] for k in x] if isinstance(x, dict) else list(x)


def _spec(x):
    """The structure of ``x`` (a hashable description; '*' is a leaf)."""
    if not _is_node(x):
        return "*"
    keys = tuple(x) if isinstance(x, dict) else len(x)
    return (type(x), keys, tuple(_spec(c) for c in _children(x)))


def _flatten(x):
    if not _is_node(x):
        return [x]
    return [leaf for c in _children(x) for leaf in _flatten(c)]


def _unflatten(spec, leaves):
    it = iter(leaves)

    def build(s):
        if s == "*":
            return next(it)
        typ, keys, subs = s
        kids = [build(c) for c in subs]
        if typ is dict or issubclass(typ, dict):
            return typ(zip(keys, kids))
        if hasattr(typ, "_fields"):  # namedtuple
            return typ(*kids)
        return typ(kids)
    return build(spec)


def _spec_str(s):
    if s == "*":
        return "*"
    return f"{s[0].__name__}[{', '.join(_spec_str(c) for c in s[2])}]"


def _broadcast_prefix(prefix, tree, what, fail):
    """Flatten ``prefix`` to ``tree``'s leaves: a non-container entry of the prefix covers a whole subtree."""
    if not _is_node(prefix):
        return [prefix] * len(_flatten(tree))
    if not _is_node(tree) or type(prefix) is not type(tree) or _spec(prefix)[1] != _spec(tree)[1]:
        fail(f"{what}s is not compatible with the structure of `{what.replace('_dim', 'put')}s`. {what}s has "
             f"structure {_spec_str(_spec(prefix))} but {what.replace('_dim', 'put')}s has structure "
             f"{_spec_str(_spec(tree))}.")
    return [d for p, t in zip(_children(prefix), _children(tree)) for d in _broadcast_prefix(p, t, what, fail)]


def _detach_tree(x):
    leaves = [t.detach() if isinstance(t, Tensor) else t for t in _flatten(x)]
    return _unflatten(_spec(x), leaves)


# -- random numbers inside a transform (vmap's ``randomness``) ----------------------------------------------------
_RANDOMNESS = ("error", "different", "same")


def _check_randomness(randomness):
    if randomness not in _RANDOMNESS:
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}")


class _RandomGuard:
    """While active, every draw from a gg.Generator (they all go through ``Generator._impl``) is seen:
    mode 'error' raises PyTorch's error; 'same' records each generator's state before its first draw so
    that ``rewind()`` makes the next batch element draw the same numbers. 'different' needs nothing.

    NOTE: a raw numpy/cupy Generator passed as ``generator=`` bypasses gg.Generator and is not seen."""

    def __init__(self, mode):
        self.mode, self.saved, self.busy = mode, {}, False

    def __enter__(self):
        from . import random as _r  # noqa: PLC0415
        self.cls, self.orig = _r.Generator, _r.Generator.__dict__["_impl"]
        guard, orig = self, self.orig

        def _impl(gen):
            if not guard.busy:
                if guard.mode == "error":
                    raise RuntimeError("vmap: called random operation while in randomness error mode. Please "
                                       "either use the 'same' or 'different' randomness flags on vmap or perform "
                                       "the randomness operation out of vmap")
                if guard.mode == "same" and gen not in guard.saved:
                    guard.busy = True
                    try:
                        guard.saved[gen] = gen.get_state()
                    finally:
                        guard.busy = False
            return orig(gen)
        if self.mode != "different":
            self.cls._impl = _impl
        return self

    def rewind(self):
        self.busy = True
        try:
            for gen, state in self.saved.items():
                gen.set_state(state)
        finally:
            self.busy = False

    def __exit__(self, *exc):
        if self.mode != "different":
            self.cls._impl = self.orig
        return False


# -- the gradient transforms ----------------------------------------------------------------------------------
def _argnums(argnums, n):
    if isinstance(argnums, bool) or not isinstance(argnums, (int, tuple)) or (
            isinstance(argnums, tuple) and not all(isinstance(i, int) and not isinstance(i, bool) for i in argnums)):
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    nums = (argnums,) if isinstance(argnums, int) else argnums
    if not nums:
        raise RuntimeError("argnums must be non-empty")
    for i in nums:
        if not -n <= i < n:
            raise RuntimeError(f"Got argnum={i}, but only {n} positional inputs")
    nums = tuple(i % n for i in nums)
    if len(set(nums)) != len(nums):
        raise RuntimeError(f"argnums must be unique, got {argnums}")
    return nums


def _prep(args, argnums):
    """Arguments with the differentiated ones made into graph inputs; whether an outer graph exists."""
    nums = _argnums(argnums, len(args))
    args = list(args)
    outer = False
    for i in nums:
        a = args[i]
        if not isinstance(a, Tensor):
            raise TypeError(f"argument {i} is differentiated but is a {type(a).__name__}, not a Tensor")
        if not _isf(a.dtype):
            raise TypeError(f"argument {i} is differentiated but has dtype {a.dtype}; use a floating point tensor")
        if a.requires_grad:
            outer = True  # part of an enclosing graph: differentiate through it, keep the graph
            args[i] = a
        else:
            args[i] = a.detach().requires_grad_()
    return args, nums, outer


def _split_aux(out, has_aux, name):
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError(f"{name}: output of function f should be a tuple: (output, aux) if has_aux is True")
    return out


def _tensor_leaves(out, name):
    leaves = _flatten(out)
    for leaf in leaves:
        if not isinstance(leaf, Tensor):
            raise RuntimeError(f"{name}: expected f(*primals) to return only tensors, got unsupported type "
                               f"{type(leaf)}")
    return leaves


def _grads(outs, ins, cots, *, create_graph, retain_graph=True):
    """Gradients of the outputs that are in the graph (zeros for inputs they do not reach)."""
    pairs = [(o, c) for o, c in zip(outs, cots) if o.requires_grad]
    if not pairs:
        return [zeros_like(x) for x in ins]
    return list(_grad([o for o, _ in pairs], ins, [c for _, c in pairs], retain_graph=retain_graph,
                      create_graph=create_graph, allow_unused=True, materialize_grads=True))


def value_and_grad(f, argnums=0, has_aux=False):
    """``f(*args) -> (value, grad)`` where grad is w.r.t. args[argnums] (a tuple if argnums is a tuple);
    with ``has_aux`` f returns ``(value, aux)`` and the result is ``((value, aux), grad)``."""
    @functools.wraps(f)
    def wrapped(*args):
        with enable_grad():
            xs, nums, outer = _prep(args, argnums)
            out, aux = _split_aux(f(*xs), has_aux, "grad_and_value(f)(*args)")
            if not isinstance(out, Tensor) or out.numel() != 1:
                raise RuntimeError("grad: f must return a one-element Tensor (use jacrev for vector outputs)")
            gs = _grads([out], [xs[i] for i in nums], [None], create_graph=outer, retain_graph=None)
        value = out if outer else out.detach()
        g = gs[0] if isinstance(argnums, int) else tuple(gs)
        if has_aux:
            return (value, aux if outer else _detach_tree(aux)), g
        return value, g
    return wrapped


def grad_and_value(func, argnums=0, has_aux=False):
    """``torch.func.grad_and_value``: ``(grad, value)``, or ``(grad, (value, aux))`` with ``has_aux``."""
    vg = value_and_grad(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapped(*args):
        v, g = vg(*args)
        return g, v
    return wrapped


def grad(func, argnums=0, has_aux=False):
    """The gradient function of a scalar function ``func``; with ``has_aux``, ``(grad, aux)``."""
    vg = value_and_grad(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapped(*args):
        v, g = vg(*args)
        return (g, v[1]) if has_aux else g
    return wrapped


def vjp(func, *primals, has_aux=False):
    """``(func(*primals), vjp_fn)`` (``(..., vjp_fn, aux)`` with ``has_aux``); ``vjp_fn(cotangents)``, the
    cotangents shaped like the output (a Tensor or the same tuple/list/dict structure), returns a tuple
    with one gradient per primal."""
    with enable_grad():
        xs, _, outer = _prep(primals, tuple(range(len(primals))))
        out, aux = _split_aux(func(*xs), has_aux, "vjp(f, *primals)")
        outs = _tensor_leaves(out, "vjp(f, *primals)")
    spec = _spec(out)

    def vjp_fn(cotangents):
        if _spec(cotangents) != spec:
            raise RuntimeError("Expected pytree structure of cotangents to be the same as pytree structure of "
                               f"outputs to the function. cotangents: {_spec_str(_spec(cotangents))}, primal "
                               f"output: {_spec_str(spec)}")
        cots = _flatten(cotangents)
        for o, c in zip(outs, cots):
            if not isinstance(c, Tensor):
                raise RuntimeError(f"Expected tensors, got unsupported type {type(c)}")
            if tuple(c.shape) != tuple(o.shape):
                raise RuntimeError(f"Mismatch in shape: cotangent has a shape of {tuple(c.shape)} and output has a "
                                   f"shape of {tuple(o.shape)}.")
        with enable_grad():
            return tuple(_grads(outs, xs, cots, create_graph=outer))
    res = (out if outer else _detach_tree(out)), vjp_fn
    return res + ((aux if outer else _detach_tree(aux)),) if has_aux else res


def _u_graph(outs, xs):
    """The double-vjp trick's graph: cotangents ``us`` (one per output) and ``J^T u`` for each x."""
    us = [zeros_like(o).requires_grad_() if _isf(o.dtype) else None for o in outs]
    live = [(o, u) for o, u in zip(outs, us) if u is not None]
    gx = _grads([o for o, _ in live], xs, [u for _, u in live], create_graph=True)
    return us, gx


def _u_grads(gx_parts, us, outs, seeds, *, create_graph):
    """``d <gx_parts, seeds> / du`` for each output: zeros where it does not depend on u."""
    live_u = [u for u in us if u is not None]
    pairs = [(g, s) for g, s in zip(gx_parts, seeds) if g.requires_grad]
    if not pairs or not live_u:
        return [zeros_like(o) for o in outs]
    res = iter(_grad([g for g, _ in pairs], live_u, [s for _, s in pairs], retain_graph=True,
                     create_graph=create_graph, allow_unused=True, materialize_grads=True))
    return [next(res) if u is not None else zeros_like(o) for o, u in zip(outs, us)]


def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """``(func(*primals), J @ tangents)`` (``(..., aux)`` appended with ``has_aux``), by the double-vjp trick."""
    name = "jvp(f, primals, tangents)"
    if not isinstance(primals, tuple):
        raise RuntimeError(f"{name}: Expected primals to be a tuple. E.g. it should be valid to call f(*primals).")
    if _spec(primals) != _spec(tangents):
        raise RuntimeError(f"{name}: Expected primals and tangents to have the same python structure. For example, "
                           "if primals is a tuple of 3 tensors, tangents also must be. Got primals with structure "
                           f"{_spec_str(_spec(primals))} and tangents with structure {_spec_str(_spec(tangents))}")
    if strict:
        raise RuntimeError(f"{name}: strict=True is not implemented in gpugrad (its check of the tangents' "
                           "dependence is a forward-mode notion); use strict=False")
    for p, t in zip(primals, tangents):
        if not isinstance(t, Tensor):
            raise RuntimeError(f"Expected tensors, got unsupported type {type(t)}")
        if not _isf(t.dtype):
            raise ValueError(f"Expected tangent to be floating point or complex, but got: {t.dtype}")
        if isinstance(p, Tensor) and tuple(t.shape) != tuple(p.shape):
            raise RuntimeError("Trying to set a forward gradient that has a different size than that of the "
                               f"original Tensor, this is not supported. Tensor is of size {list(p.shape)} while "
                               f"the given forward gradient is of size {list(t.shape)}.")
    with enable_grad():
        xs, _, outer = _prep(primals, tuple(range(len(primals))))
        out, aux = _split_aux(func(*xs), has_aux, name)
        outs = _tensor_leaves(out, name)
        us, gx = _u_graph(outs, xs)
        jv = _u_grads(gx, us, outs, list(tangents), create_graph=outer)
        if not outer:
            jv = [j.detach() for j in jv]
    res = (out if outer else _detach_tree(out)), _unflatten(_spec(out), jv)
    return res + ((aux if outer else _detach_tree(aux)),) if has_aux else res


def _jac_result(out, per_out, argnums, outer):
    """Arrange ``per_out[i][j]`` (output leaf i, argument j) into the output's structure, a tuple over
    arguments at each leaf when argnums is a tuple."""
    leaves = [tuple(r if outer else r.detach() for r in rs) for rs in per_out]
    leaves = [rs[0] if isinstance(argnums, int) else rs for rs in leaves]
    return _unflatten(_spec(out), leaves)


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None, _preallocate_and_copy=False):
    """Jacobian of ``func`` by reverse mode, one vjp per output element: for each output leaf a tensor
    of shape out.shape + arg.shape (a tuple over arguments if argnums is a tuple), in the output's
    structure; ``(jacobian, aux)`` with ``has_aux``. ``chunk_size`` only bounds memory in PyTorch (here the
    rows are always computed one at a time) and is validated, not used."""
    if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")

    @functools.wraps(func)
    def wrapped(*args):
        with enable_grad():
            xs, nums, outer = _prep(args, argnums)
            out, aux = _split_aux(func(*xs), has_aux, "jacrev(f, ...)(*args)")
            outs = _tensor_leaves(out, "vjp(f, *primals)")
            ins = [xs[i] for i in nums]
            per_out = []
            for o in outs:
                flat = o.reshape(-1)
                rows = [_grads([flat[k]], ins, [None], create_graph=outer) for k in range(flat.shape[0])]
                per_out.append([_stack_rows([r[j] for r in rows], x).reshape(tuple(o.shape) + tuple(x.shape))
                                for j, x in enumerate(ins)])
        res = _jac_result(out, per_out, argnums, outer)
        return (res, aux if outer else _detach_tree(aux)) if has_aux else res
    return wrapped


def _stack_rows(rows, x, dim=0):
    return stack(rows, dim) if rows else zeros_like(x).reshape(-1)[:0]


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """Jacobian of ``func`` column by column ("forward mode"; see the module NOTE: the columns are jvps
    by the double-vjp trick). Same result structure as :func:`jacrev`. ``randomness`` is vmap's: 'error'
    raises at a random draw inside ``func``; 'same' evaluates ``func`` once (every column sees the same
    numbers); 'different' evaluates ``func`` once per column, so each column sees its own draws."""
    _check_randomness(randomness)

    @functools.wraps(func)
    def wrapped(*args):
        with enable_grad():
            _prep(args, argnums)  # validation only
            if randomness == "different":
                return _jacfwd_per_column(func, args, argnums, has_aux)
            with _RandomGuard(randomness):
                out, aux, per_out, outer = _jacfwd_once(func, args, argnums, has_aux)
            return _finish_jacfwd(out, aux, per_out, args, _argnums(argnums, len(args)), argnums, has_aux, outer)
    return wrapped


def _jacfwd_once(func, args, argnums, has_aux, column=None):
    """All columns from one evaluation; with ``column=(j, k)`` only that column of argument j."""
    xs, nums, outer = _prep(args, argnums)
    out, aux = _split_aux(func(*xs), has_aux, "jacfwd(f, ...)(*args)")
    outs = _tensor_leaves(out, "jvp(f, primals, tangents)")
    ins = [xs[i] for i in nums]
    us, gx = _u_graph(outs, ins)
    per_out = [[] for _ in outs]
    for j, (x, g) in enumerate(zip(ins, gx)):
        ks = range(x.numel()) if column is None else ([column[1]] if column[0] == j else [])
        cols = [_u_grads([g.reshape(-1)[k]], us, outs, [None], create_graph=outer) for k in ks]
        for i, o in enumerate(outs):
            per_out[i].append([c[i] for c in cols])
    return out, aux, per_out, outer


def _jacfwd_per_column(func, args, argnums, has_aux):
    nums = _argnums(argnums, len(args))
    per_out = out = aux = outer = None
    for j, i in enumerate(nums):
        for k in range(args[i].numel()):
            out, aux, po, outer = _jacfwd_once(func, args, argnums, has_aux, (j, k))
            if per_out is None:
                per_out = [[[] for _ in nums] for _ in po]
            for a, b in zip(per_out, po):
                a[j].extend(b[j])
    if per_out is None:  # every differentiated argument is empty
        out, aux, per_out, outer = _jacfwd_once(func, args, argnums, has_aux)
    return _finish_jacfwd(out, aux, per_out, args, nums, argnums, has_aux, outer)


def _finish_jacfwd(out, aux, per_out, args, nums, argnums, has_aux, outer):
    outs = _flatten(out)
    res = [[_stack_rows(cols, o, -1).reshape(tuple(o.shape) + tuple(args[i].shape))
            for cols, i in zip(po, nums)] for po, o in zip(per_out, outs)]
    res = _jac_result(out, res, argnums, outer)
    return (res, aux if outer else _detach_tree(aux)) if has_aux else res


jacobian = jacrev


def hessian(func, argnums=0):
    """Hessian of a scalar function, in PyTorch's structure (``H[i][j]`` for argnums tuples).

    NOTE: PyTorch computes ``jacfwd(jacrev(func))`` (forward-over-reverse). Here jacfwd is itself made
    of reverse passes (module NOTE), so forward-over-reverse would cost two extra passes over a larger
    graph; reverse-over-reverse, ``jacrev(jacrev(func))``, gives the same matrix (a Hessian is symmetric)
    for less. Random draws inside ``func`` raise, as under PyTorch's jacfwd (randomness='error')."""
    inner = jacrev(jacrev(func, argnums), argnums)

    @functools.wraps(func)
    def wrapped(*args):
        with _RandomGuard("error"):
            return inner(*args)
    return wrapped


# -- vmap -------------------------------------------------------------------------------------------------------
def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """``torch.func.vmap``: map ``func`` over dimension ``in_dims`` of its inputs and stack the results
    along ``out_dims``.

    ``in_dims`` is an int (every Tensor argument), or a tuple with one entry per positional argument,
    each an int, None (not mapped) or a nested tuple/list/dict matching that argument; ``out_dims`` the
    same for the outputs. Keyword arguments are passed through unmapped. ``randomness``: 'error' (a
    random draw inside ``func`` raises), 'different' (each batch element draws its own numbers) or
    'same' (every element draws the same numbers).

    NOTE: not vectorised. ``func`` runs once per batch element on that element's slice and the results
    are stacked (``gg.stack``, differentiable), which is correct for every op (running ``func`` once on
    the batched tensor is not: reductions, matmul and indexing would mix samples). The cost is B calls
    of ``func``; ``chunk_size`` is validated and has no further effect. Nested vmap and vmap over
    grad/jacrev/jacfwd (and those over vmap) work because each call is ordinary gpugrad code.

    Differences from PyTorch (raised, or more permissive, never a different value):
    a batch of size 0 raises (func cannot run on zero elements); ``.item()``, data-dependent Python
    control flow and outputs whose shape varies across the batch are allowed where PyTorch refuses
    them (varying shapes raise at the stack); ``out_dims=None`` for a Tensor output requires it to be
    identical for every batch element (PyTorch refuses any output that depends on a mapped input,
    even one that happens to be equal)."""
    _check_randomness(randomness)
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")
    name = getattr(func, "__name__", repr(func))

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        def fail(msg, head=f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): "):
            raise ValueError(head + msg)
        if not args:
            raise ValueError(f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you are "
                             "trying to vmap over a function with no inputs. The latter is unsupported.")
        if not (isinstance(in_dims, (int, tuple)) and not isinstance(in_dims, bool)):
            fail("expected `in_dims` to be int or a (potentially nested) tuple matching the structure of inputs, "
                 f"got: {type(in_dims)}.")
        spec, leaves = _spec(args), _flatten(args)
        dims = _broadcast_prefix(in_dims, args, "in_dim", fail)
        size = None
        for leaf, d in zip(leaves, dims):
            if d is None:
                continue
            if isinstance(d, bool) or not isinstance(d, int):
                fail(f"Got in_dim={d} for an input but in_dim must be either an integer dimension or None.")
            if not isinstance(leaf, Tensor):
                fail(f"Got in_dim={d} for an input but the input is of type {type(leaf)}. We cannot vmap over "
                     "non-Tensor arguments, please use None as the respective in_dim")
            n = leaf.ndim
            if not -n <= d < n:
                fail(f"Got in_dim={d} for some input, but that input is a Tensor of dimensionality {n} so expected "
                     f"in_dim to satisfy -{n} <= in_dim < {n}.")
        sizes = [leaf.shape[d] for leaf, d in zip(leaves, dims) if d is not None]
        if not sizes:
            raise ValueError("vmap: Expected at least one Tensor to vmap over")
        if len(set(sizes)) != 1:
            raise ValueError("vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                             f"{sizes} for the mapped dimension")
        size = sizes[0]
        if size == 0:
            raise ValueError(f"vmap({name}): the mapped dimension has size 0; gpugrad's vmap runs func once per "
                             "element and cannot infer the output of an empty batch")
        results = []
        with _RandomGuard(randomness) as guard:
            for b in range(size):
                if b and randomness == "same":
                    guard.rewind()
                xs = [leaf.select(d, b) if d is not None else leaf for leaf, d in zip(leaves, dims)]
                results.append(func(*_unflatten(spec, xs), **kwargs))
        return _stack_outputs(results, out_dims, name)
    return wrapped


def _stack_outputs(results, out_dims, name):
    head = f"vmap({name}, ..., out_dims={out_dims})(<inputs>): "
    if not (out_dims is None or (isinstance(out_dims, (int, tuple)) and not isinstance(out_dims, bool))):
        raise ValueError(head + "expected `out_dims` to be int or a (potentially nested) tuple matching the "
                         f"structure of outputs, got: {type(out_dims)}.")
    first = results[0]
    spec = _spec(first)
    for r in results[1:]:
        if _spec(r) != spec:
            raise ValueError(f"vmap({name}): `{name}` returned outputs of different structures for different "
                             "batch elements")

    def fail(msg):
        raise ValueError(head + msg)
    dims = _broadcast_prefix(out_dims, first, "out_dim", fail)
    columns = list(zip(*[_flatten(r) for r in results]))
    stacked = []
    for col, d in zip(columns, dims):
        if d is None:
            stacked.append(_unbatched(col, name))
            continue
        if not isinstance(col[0], Tensor):
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type {type(col[0])}. Did "
                             "you mean to set out_dims= to None for output?")
        if isinstance(d, bool) or not isinstance(d, int):
            fail(f"Got out_dim={d} for an output but out_dim must be either an integer dimension or None.")
        nd = col[0].ndim + 1
        if not -nd <= d < nd:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {d})")
        try:
            stacked.append(stack(col, d % nd))
        except RuntimeError as e:
            raise RuntimeError(f"vmap({name}): the outputs have different shapes for different batch elements, "
                               f"which PyTorch's vmap cannot express either ({e})") from None
    return _unflatten(spec, stacked)


def _unbatched(col, name):
    """An output with out_dim None: it must not vary over the batch."""
    v = col[0]
    if isinstance(v, Tensor):
        if any(not isinstance(c, Tensor) or tuple(c.shape) != tuple(v.shape) or not bool((c == v).all().item())
               for c in col[1:]):
            raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is None")
    return v


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """torch.func.functional_call: ``module(*args, **kwargs)`` with the given parameters and buffers in place of
    the module's own (a dict, or a sequence of dicts with disjoint keys); the module is left as it was."""
    from .nn.stateless import call  # noqa: PLC0415  (func is imported before nn)
    dicts = parameter_and_buffer_dicts
    if isinstance(dicts, dict):
        merged = dicts
    else:
        merged = {}
        for d in dicts:
            dup = sorted(set(merged) & set(d))
            if dup:
                raise ValueError(f"{dup} appeared in multiple dictionaries; behavior of functional call is ambiguous")
            merged.update(d)
    return call(module, merged, args, kwargs, tie_weights=tie_weights, strict=strict)
