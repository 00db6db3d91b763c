"""Reverse-mode sweep: ``Tensor.backward`` and ``gg.autograd.grad``.

The sweep is iterative (no recursion): nodes come off a heap in decreasing creation order, so each
node runs after all its consumers, with its gradient accumulated from all of them (autograd.grad
also walks the graph once, depth first, to skip nodes that lead to none of its inputs). Gradients are raw arrays unless ``create_graph=True``, in which
case they are Tensors and every backward formula records its own graph (double backprop).
"""
from __future__ import annotations

import operator
import warnings
import weakref
from heapq import heappop, heappush

import numpy as np

from ..backend import quiet_begin, quiet_end, xp_of
from . import primitive as _fn
from .grad_mode import set_grad_enabled, state

_FREED = ("Trying to backward through the graph a second time (or to use saved values after they were "
          "freed). Pass retain_graph=True to the first backward() or autograd.grad() if you need to "
          "backward through the graph again.")


def _topo(roots, stop=None):
    """Nodes reachable from ``roots`` (Tensors), each after all nodes it depends on."""
    order, seen = [], set()
    stack = [(t._node, False) for t in roots if t._node is not None]
    push, pop, mark, emit = stack.append, stack.pop, seen.add, order.append
    while stack:
        node, done = pop()
        if done:
            emit(node)
            continue
        if node in seen:
            continue
        mark(node)
        inputs = node.inputs
        if inputs is None:
            raise RuntimeError(_FREED)
        push((node, True))
        if stop is not None and node in stop:
            continue
        for t in _inputs_of(node):
            n = t._node
            if n is not None and n not in seen:
                push((n, False))
    return order


def _identity(t, seq):
    """``t`` as it was when node ``seq`` recorded it: an in-place op rebases a tensor onto a newer node
    (``node.prev`` keeps the identity it had before), so walk back past nodes newer than ``seq``."""
    n = t._node
    while n is not None and n.seq > seq:
        t = n.prev
        n = t._node
    return t


def _inputs_of(node):
    seq = node.seq
    return [_identity(t, seq) for t in node.inputs]


def _as_grad(x, like, create_graph, what):
    """Validate/convert a user-given gradient for ``like``."""
    T = _fn._Tensor
    if x is None:
        if like._data.size != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs; {what} has shape "
                               f"{tuple(like.shape)}: pass gradient= (backward) or grad_outputs= (autograd.grad)")
        g = _ones_like(like._data)
    else:
        if isinstance(x, T):
            if create_graph:
                if tuple(x.shape) != tuple(like.shape):
                    raise RuntimeError(f"gradient shape {tuple(x.shape)} does not match {what} shape {tuple(like.shape)}")
                return x.clone()  # NOTE: a leaf's .grad is never the user's tensor (PyTorch clones it too)
            x = x._data
        d = like._data
        # NOTE: an array of the right type and dtype is used as it is (copying 8 MB cost ~1.2 ms per step here): no backward
        # writes into its incoming gradient, and run() keeps it out of .grad, results and hooks (``user``)
        g = x if type(x) is type(d) and x.dtype == d.dtype and not create_graph else \
            xp_of(d).array(x, dtype=d.dtype, copy=True)
        if g.shape != like._data.shape:
            raise RuntimeError(f"gradient shape {g.shape} does not match {what} shape {like._data.shape}")
        if type(g) is not type(like._data):
            raise RuntimeError(f"gradient is on a different device than {what} ({like.device})")
    return T(g) if create_graph else g


def _ones_like(a):
    return xp_of(a).ones_like(a)


# NOTE: every array operation of the sweep's own bookkeeping (gradient sums, copies, the seed gradient
# above, the store into .grad below) goes through a module global, which gg.compile swaps for a
# recording version while it records a step: nothing to check, and nothing to pay, when not recording.
_add = operator.add


def _copy(a):
    return a.copy()


def _check_finite(node, i, gi):
    data = gi._data if isinstance(gi, _fn._Tensor) else gi
    if not bool(xp_of(data).isfinite(data).all()):
        where = "".join(__import__("traceback").format_list(getattr(node, "trace", []) or [])) or \
            "  (forward was not recorded under detect_anomaly(); run the forward inside it too)\n"
        raise RuntimeError(f"Function '{node.name}' returned nan or inf values in its gradient for input {i}. "
                           f"The forward call of '{node.name}' was made at:\n{where}")


def _composite_vjp(node, g):
    """Differentiable gradient of a fused op through its composite definition (create_graph path)."""
    if node.ycomposite is not None and node.reads_output() and node.yver[0] == node.outv:
        # NOTE: PyTorch's formula from the output (tanh, sigmoid, elu, ...): an in-place activation overwrote its
        # input, and the output's own node carries the second-order terms
        return (node.ycomposite(node.output_tensor(), g, **node.params),)
    inputs = _inputs_of(node)
    vers = node.vers
    if vers is not None or len(inputs) == 1:  # NOTE: else unknown (saves=() multi-input nodes record no versions)
        for i, t in enumerate(inputs):
            then = vers[i] if vers is not None else 0
            if t._ver[0] != then:  # NOTE: the composite re-reads every input: one written in place since is wrong
                _fn._modified(node, t, f"input {i}", t._ver[0], then)
    aliases = [_fn.Alias.apply(t) for t in inputs]
    need = [a for a, t in zip(aliases, inputs) if t._rg]
    out = type(node).composite(*aliases, **node.params)
    got = run(out_list=[out], grad_list=[g], inputs=need, retain_graph=True, create_graph=True,
              allow_unused=True, stop={a._node for a in need})
    it = iter(got)
    return tuple(next(it) if t._rg else None for t in inputs)


def run(out_list, grad_list, inputs=None, retain_graph=None, create_graph=False, allow_unused=False, stop=None):
    """The sweep. With ``inputs`` it returns their gradients instead of accumulating into leaves."""
    T = _fn._Tensor
    full = inputs is None if stop is None else is_checkpoint_valid()  # see full_sweeps
    if retain_graph is None:
        retain_graph = create_graph
    grads = {}
    # NOTE: ids of the (memory owners of the) user-given gradient arrays: never handed on as .grad, a result or
    # a hook's argument without a copy
    user = {id(g if g.base is None else g.base) for g in grad_list if not isinstance(g, T)}
    leaf = {None: set(user)}  # id(tensor) -> [tensor, grad]; None -> ids of the arrays handed out (_acc_leaf)
    for t, g in zip(out_list, grad_list):
        if not t._rg:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn: "
                               "the output was computed without any input that requires grad "
                               "(or under no_grad())")
        if t._node is None:
            _acc_leaf(leaf, t, g)
        else:
            n = t._node
            grads[n] = g if n not in grads else grads[n] + g
    # NOTE: nodes run in decreasing creation order (Primitive.seq): every consumer of a node was
    # created after it, so when a node comes off the heap all gradient for it has arrived. No
    # separate topological sort is needed for backward(); autograd.grad still walks the graph to
    # prune nodes that lead to none of its inputs.
    heap = [(-n.seq, n) for n in grads]
    heap.sort()
    if inputs is not None:
        # NOTE: the sweep stops at non-leaf inputs (their own backward is not needed, and the graph
        # above them may already be freed), unless another input lies above one of them.
        tstop = {t._node for t in inputs if isinstance(t, T) and t._node is not None}
        full_stop = tstop | (stop or set())
        order = _topo(out_list, full_stop)
        reached = {id(t) for n in order if n not in full_stop for t in n.inputs} | {id(t) for t in out_list}
        if tstop and any(id(t) not in reached for t in inputs):
            order = _topo(out_list, stop)  # an input lies above a non-leaf input: walk through it
        else:
            stop = full_stop

    targets = None
    if inputs is not None:
        targets = {}
        for i, t in enumerate(inputs):
            if not isinstance(t, T):
                raise TypeError(f"autograd.grad inputs must be Tensors, got {type(t).__name__}")
            if not t._rg:
                raise RuntimeError(f"inputs[{i}] (shape {tuple(t.shape)}) does not require grad; "
                                   "call .requires_grad_() on it first")
            targets[id(t)] = t
        # prune: only nodes with a path to some input need to run
        tnodes = {t._node: t for t in inputs if t._node is not None}
        needed = set()
        for node in order:
            if any((id(t) in targets) or (t._node in needed) for t in _inputs_of(node)):
                needed.add(node)
        captured = {}
    else:
        needed = None

    # NOTE: NumPy's floating-point warnings are off for the sweep and the accumulation (inf - inf is nan
    # silently, as in PyTorch): one error-state switch per backward instead of one per formula
    quiet = quiet_begin()
    full_sweeps.append(full)
    try:
        _sweep(heap, grads, leaf, targets, tnodes if targets is not None else None, needed, stop,
               captured if targets is not None else None, retain_graph, create_graph, user)
        if inputs is not None:
            return _results(inputs, leaf, captured, allow_unused, user, create_graph)
        if create_graph:
            _warn_create_graph()
        _accumulate(leaf, create_graph, user)
    finally:
        full_sweeps.pop()
        quiet_end(quiet)
    return None


# NOTE: one entry per running sweep, innermost last: True for backward(), False for autograd.grad or
# backward(inputs=...); an internal nested sweep (given ``stop``: a composite's or a non-reentrant checkpoint's
# gradient) inherits the enclosing one's. A reentrant checkpoint's backward runs its own nested backward(), which
# is only valid inside a full one (PyTorch's torch.autograd._is_checkpoint_valid); see gpugrad/utils/checkpoint.py
full_sweeps = []


def is_checkpoint_valid():
    return not full_sweeps or full_sweeps[-1]


def _results(inputs, leaf, captured, allow_unused, user, create_graph):
    """autograd.grad: the gradient of each input (never accumulated into .grad)."""
    T = _fn._Tensor
    res = []
    for i, t in enumerate(inputs):
        if t._node is None:
            e = leaf.get(id(t))
            g = None if e is None else e[1]
            if g is not None and t._hooks:
                g = _run_hooks(t._hooks, g, create_graph, user)  # NOTE: a leaf's hooks apply (PyTorch)
        else:
            g = captured.get(id(t))
        if g is None and not allow_unused:
            raise RuntimeError(f"inputs[{i}] (shape {tuple(t.shape)}) appears to not have "
                               "been used in the graph. Set allow_unused=True if this is the desired behavior.")
        if g is not None and not isinstance(g, T):
            # NOTE: results own their memory (views may be read-only; a non-leaf's may be the user's array)
            g = T(g.copy() if g.base is not None or id(g) in user else g)
        res.append(g)
    return res


def _accumulate(leaf, create_graph, user):
    """backward(): add this pass's gradients into the leaves' .grad (hooks see the pass's total first)."""
    del leaf[None]
    for t, g in leaf.values():
        if t._hooks:
            g = _run_hooks(t._hooks, g, create_graph, user)
        _store_grad(t, g, create_graph)
        if post_hooks:
            _run_post_hooks(t)


def _store_grad(t, g, create_graph):
    """Set or add one leaf's gradient of this pass into its ``.grad``."""
    T = _fn._Tensor
    if not isinstance(g, T):
        if g.base is not None:
            g = g.copy()  # NOTE: never let .grad alias a view or another tensor's gradient
        g = T(g)
    old = t._grad  # NOTE: the slot itself: the .grad property would check what the engine computed itself
    if old is None:
        t._grad = g
    elif create_graph or old._rg:
        t._grad = old + g
    else:
        gd = old._data
        if type(gd) is np.ndarray and not gd.flags.writeable:
            old._data = gd + g._data
        else:
            gd += g._data  # NOTE: accumulated in place, as PyTorch's AccumulateGrad (arrays holding it see it)
            _fn.bump(old)


def backward_inputs(outs, gs, inputs, retain_graph, create_graph):
    """backward(inputs=...): accumulate into the ``.grad`` of just these tensors. As in PyTorch, a non-leaf
    input is made to retain its gradient (its .grad gets the gradient after its hooks, in this and later
    backward() calls), and a leaf's hooks and post-accumulate hooks run as in a full backward."""
    T = _fn._Tensor
    inputs = [inputs] if isinstance(inputs, T) else list(inputs)
    if not inputs:
        raise RuntimeError("'inputs' argument to backward() cannot be empty.")
    for t in inputs:
        if isinstance(t, T) and t._node is not None and t._rg:
            t.retain_grad()
    if create_graph:
        _warn_create_graph()
    res = run(outs, gs, inputs=inputs, retain_graph=retain_graph, create_graph=create_graph, allow_unused=True)
    done = set()
    for t, g in zip(inputs, res):
        if g is not None and t._node is None and id(t) not in done:
            done.add(id(t))
            _store_grad(t, g, create_graph)
            if post_hooks:
                _run_post_hooks(t)


# -- post-accumulate-grad hooks: id(leaf) -> (weakref to it, [hooks]); empty for most programs ----------------
post_hooks = {}


def register_post_accumulate_grad_hook(t, hook):
    """``Tensor.register_post_accumulate_grad_hook``: ``hook(t)`` after backward() accumulated into ``t.grad``."""
    if not t._rg:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if t._node is not None:
        raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
    k = id(t)
    e = post_hooks.get(k)
    if e is None or e[0]() is not t:
        e = post_hooks[k] = (weakref.ref(t, lambda _r, k=k: post_hooks.pop(k, None)), [])
    hooks = e[1]
    hooks.append(hook)
    return _Handle(hooks, hook)


class _Handle:
    """What register_*hook returns: ``remove()`` unregisters the hook."""

    def __init__(self, hooks, hook):
        self.hooks, self.hook = hooks, hook

    def remove(self):
        if self.hook in self.hooks:
            self.hooks.remove(self.hook)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _run_post_hooks(t):
    e = post_hooks.get(id(t))
    if e is not None and e[0]() is t:
        for h in list(e[1]):
            if h(t) is not None:
                raise RuntimeError("post accumulate grad hooks should not return anything (return None)")


# -- the .grad property (Tensor.grad) ---------------------------------------------------------------------------
def warn_nonleaf_grad():
    warnings.warn("The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad attribute "
                  "won't be populated during autograd.backward(). If you indeed want the .grad field to be populated "
                  "for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you access the non-leaf "
                  "Tensor by mistake, make sure you access the leaf Tensor instead.", UserWarning, stacklevel=3)


_warned_cycle = []


def _warn_create_graph():
    if not _warned_cycle:  # NOTE: once per process, as PyTorch's warning
        _warned_cycle.append(True)
        warnings.warn("Using backward() with create_graph=True will create a reference cycle between the parameter "
                      "and its gradient which can cause a memory leak. We recommend using autograd.grad when "
                      "creating the graph to avoid this. If you have to use this function, make sure to reset the "
                      ".grad fields of your parameters to None after use to break the cycle and avoid the leak.",
                      UserWarning, stacklevel=4)


def check_grad_assign(t, value):
    """PyTorch's checks of ``t.grad = value`` (value not None)."""
    T = _fn._Tensor
    if not isinstance(value, T):
        c = type(value)
        name = c.__qualname__ if c.__module__ == "builtins" else f"{c.__module__}.{c.__qualname__}"
        raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type {name}")
    d, v = t._data, value._data
    if type(d) is not type(v) or (type(d) is not np.ndarray and d.device.id != v.device.id):
        raise RuntimeError(f"attempting to assign a gradient located on device '{value.device}' to a tensor located "
                           f"on device '{t.device}'. Please ensure that the gradient and the tensor are on the "
                           "same device")
    if v.dtype != d.dtype:
        raise RuntimeError(f"attempting to assign a gradient with dtype '{v.dtype}' to a tensor with dtype "
                           f"'{d.dtype}'. The gradient must match the tensor's dtype")
    if v.shape != d.shape:
        raise RuntimeError(f"attempting to assign a gradient of size '{list(v.shape)}' to a tensor of size "
                           f"'{list(d.shape)}'. Please ensure that the gradient and the tensor are the same size")


def _bad_shape(node, i, gi, t):
    raise RuntimeError(f"internal error: {node.name} backward gave gradient of shape "
                       f"{tuple(gi.shape)} for input {i} of shape {tuple(t.shape)}")


def _acc_leaf(leaf, t, g):
    """Add ``g`` to leaf ``t``'s gradient of this sweep. ``leaf[None]`` holds the ids of the arrays
    first handed to a leaf: one array must not become two leaves' gradient (Add gives its ``g`` to
    both inputs), or scaling one ``.grad`` in place would change the other."""
    e = leaf.get(id(t))
    if e is None:
        owned = leaf[None]
        if id(g) in owned and not isinstance(g, _fn._Tensor):
            g = _copy(g)
        owned.add(id(g))
        leaf[id(t)] = [t, g]
    else:
        e[1] = _add(e[1], g)


def _run_hooks(hooks, g, create_graph, user):
    T = _fn._Tensor
    if user and not isinstance(g, T) and id(g if g.base is None else g.base) in user:
        g = _copy(g)  # NOTE: a hook may write into its argument: never into the user's gradient
    for h in hooks:
        gt = g if isinstance(g, T) else T(g)
        r = h(gt)
        if r is not None:
            if not isinstance(r, T):
                raise TypeError(f"a gradient hook must return a Tensor or None, got {type(r).__name__}")
            if tuple(r.shape) != tuple(gt.shape):
                raise RuntimeError(f"hook returned a gradient of shape {tuple(r.shape)}, expected {tuple(gt.shape)}")
            g = r if isinstance(g, T) else _copy(r._data)  # NOTE: a copy: r may be a tensor the user keeps
    return g


def _sweep(heap, grads, leaf, targets, tnodes, needed, stop, captured, retain_graph, create_graph, user):
    """Run the nodes off the heap (consumers first), accumulating gradients per node and into ``leaf``."""
    anomaly = state.anomaly
    written = _fn.last_write
    rebased = state.rebased  # NOTE: no tensor was ever rebased by an in-place op: edges need no identity walk
    with set_grad_enabled(bool(create_graph)):
        while heap:
            node = heappop(heap)[1]
            g = grads.pop(node)
            if node.inputs is None:
                raise RuntimeError(_FREED)
            seq = node.seq
            if seq < written[0]:
                node.check_saved()  # NOTE: only nodes recorded before the latest in-place write can be stale
            if targets is not None:
                # NOTE: PyTorch's rule for a non-leaf input of autograd.grad: its entry is the gradient after
                # the tensor's hooks when the sweep stops at it, before them when the sweep goes on through its
                # node (another input lies above it); the hooks run in both cases
                out_t = tnodes.get(node)
                skip = node not in needed or (stop is not None and node in stop)
                if out_t is not None and not skip:
                    captured[id(out_t)] = g
                if node.hooks:
                    g = _run_hooks(node.hooks, g, create_graph, user)
                if skip:
                    if out_t is not None:
                        captured[id(out_t)] = g
                    continue
            elif node.hooks:
                g = _run_hooks(node.hooks, g, create_graph, user)
            if create_graph:
                node.graph = True
                gin = _composite_vjp(node, g) if node.composite is not None else node.backward(g)
            else:
                gin = node.backward(g)
            nin = node.inputs
            if type(gin) is not tuple:
                gin = (gin,)
            for i in range(len(nin)):
                gi = gin[i]
                if gi is None:
                    continue
                t = nin[i]
                n = t._node
                if rebased and n is not None and n.seq > seq:
                    t = _identity(t, seq)  # rebased by an in-place op after this node was recorded
                    n = t._node
                if not t._rg:
                    continue
                if anomaly:
                    _check_finite(node, i, gi)
                if gi.shape != t._data.shape:
                    _bad_shape(node, i, gi, t)
                if n is None:
                    _acc_leaf(leaf, t, gi)
                else:
                    prev = grads.get(n)
                    if prev is None:
                        grads[n] = gi
                        heappush(heap, (-n.seq, n))
                    else:
                        grads[n] = _add(prev, gi)
            if not retain_graph:
                node.release()
            elif create_graph:
                node.graph = False
