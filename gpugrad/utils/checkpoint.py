"""``gg.utils.checkpoint``: activation checkpointing by PyTorch's names (``torch.utils.checkpoint``).

``checkpoint(function, *args, use_reentrant=...)`` keeps only ``function``'s inputs (and the RNG and autocast
state); the backward runs ``function`` again with grad enabled (dropout draws the same masks) and backpropagates
through that recomputation. ``use_reentrant=True``: the forward records nothing and the backward runs a nested
``backward()`` (so ``autograd.grad`` through it raises, as PyTorch). ``use_reentrant=False``: the node's inputs
also include every outside tensor the function reads (parameters), so ``autograd.grad``, ``backward(inputs=)``
and double backward work.
"""
from __future__ import annotations

import contextlib
import warnings

from .. import random as _random
from ..amp import autocast_mode as _amp
from ..autograd import backward as _backward, engine as _engine
from ..autograd.function import Function
from ..autograd import primitive as _prim
from ..autograd.grad_mode import enable_grad, state
from ..nn.container import Sequential
from ..tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential", "noop_context_fn"]

_WARN = ("torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. Starting in PyTorch "
         "2.9, calling checkpoint without use_reentrant will raise an exception. use_reentrant=False is "
         "recommended, but if you need to preserve the current default behavior, you can pass "
         "use_reentrant=True. Refer to docs for more details on the differences between the two variants.")
_WARN_SEQ = ("torch.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter should be passed "
             "explicitly. In version 2.9 we will raise an exception if use_reentrant is not passed. "
             "use_reentrant=False is recommended, but if you need to preserve the current default behavior, you "
             "can pass use_reentrant=True. Refer to docs for more details on the differences between the two "
             "variants.")
_INVALID = ("When use_reentrant=True, torch.utils.checkpoint is incompatible with .grad() or passing an `inputs` "
            "parameter to .backward(). To resolve this error, you can either set use_reentrant=False, or call "
            ".backward() without passing the `inputs` argument.")
_SLOT = object()  # a Tensor argument's place in ctx.args (the Tensor itself is in ctx.saved_tensors)


def noop_context_fn():
    """The default ``context_fn``: two null contexts (forward, recomputation)."""
    return contextlib.nullcontext(), contextlib.nullcontext()


def _rng_state(tensors):
    """The states of the default generators the function may draw from: the CPU one and, as PyTorch, those of
    the CUDA devices of the Tensor arguments."""
    devs = sorted({str(t.device) for t in tensors if t.device.type == "cuda"})
    return _random.get_rng_state(), [(d, _random.cuda_generator(d).get_state()) for d in devs]


@contextlib.contextmanager
def _rng_set(saved):
    """Run the block from the RNG states ``saved`` and put the current ones back after it (PyTorch's fork_rng):
    the recomputation does not advance the generators the rest of the program draws from."""
    cpu, cuda = saved
    now = _rng_state([])[0], [(d, _random.cuda_generator(d).get_state()) for d, _ in cuda]
    _random.set_rng_state(cpu)
    for d, s in cuda:
        _random.cuda_generator(d).set_state(s)
    try:
        yield
    finally:
        _random.set_rng_state(now[0])
        for d, s in now[1]:
            _random.cuda_generator(d).set_state(s)


def _amp_state():
    st = _amp._tls
    return [(d, _amp.is_autocast_enabled(d), _amp.get_autocast_dtype(d), st.cache_on) for d in ("cuda", "cpu")]


class _Run:
    """What a recomputation needs: the function, its arguments (Tensors as _SLOT: they are the node's saved
    tensors), the RNG and autocast state of the forward and the recomputation context (non-reentrant)."""

    def __init__(self, function, args, kwargs, preserve_rng_state, recompute_ctx=None):
        tensors = [a for a in args if isinstance(a, Tensor)]
        self.function, self.kwargs, self.amp, self.ctx = function, kwargs, _amp_state(), recompute_ctx
        self.rng = _rng_state(tensors) if preserve_rng_state else None
        self.args = [_SLOT if isinstance(a, Tensor) else a for a in args]  # NOTE: non-Tensors kept as they are
        self.ntensors = len(tensors)

    def __call__(self, tensors, link=False):
        """The arguments (detached Tensors requiring grad as the originals) and ``function``'s output, run again
        with grad enabled from the forward's RNG and autocast state. ``link``: the Tensors requiring grad are
        aliases of the originals instead, so gradients taken with create_graph depend on the originals."""
        with contextlib.ExitStack() as stack:
            if self.rng is not None:
                stack.enter_context(_rng_set(self.rng))
            for dev, on, dt, cache in self.amp:  # NOTE: the forward's autocast state, as PyTorch's recomputation
                stack.enter_context(_amp.autocast(dev, dtype=dt, enabled=on, cache_enabled=cache))
            if self.ctx is not None:
                stack.enter_context(self.ctx)
            stack.enter_context(enable_grad())
            it = iter(tensors)
            args = [_again(next(it), link) if a is _SLOT else a for a in self.args]
            out = self.function(*args, **self.kwargs)
        return args, out


class CheckpointFunction(Function):
    """The graph node of one ``checkpoint(..., use_reentrant=True)`` call (``<CheckpointFunctionBackward>``)."""

    @staticmethod
    def forward(ctx, run, *args):
        ctx.run = run
        ctx.save_for_backward(*(a for a in args if isinstance(a, Tensor)))  # NOTE: version-checked when read
        return run.function(*args)  # NOTE: Function.apply runs forward under no_grad: no graph is kept

    @staticmethod
    def backward(ctx, *grads):
        if not _engine.is_checkpoint_valid():
            raise RuntimeError(_INVALID)
        inputs, out = ctx.run(ctx.saved_tensors)
        outs = out if isinstance(out, tuple) else (out,)
        pairs = [(o, g) for o, g in zip(outs, grads) if isinstance(o, Tensor) and o.requires_grad]
        if not pairs:
            raise RuntimeError("none of output has requires_grad=True, this checkpoint() is not necessary")
        # NOTE: the reentrant part: a nested first-order backward() from the recomputed outputs accumulates into
        # the .grad of every leaf used inside (parameters) and of the detached inputs, whose .grad are this node's
        # gradients. As PyTorch, it never records a graph (create_graph=True through a checkpoint gives
        # gradients that do not require grad)
        _backward([o for o, _ in pairs], [g.detach() for _, g in pairs])
        return (None,) + tuple(a.grad if isinstance(a, Tensor) else None for a in inputs)


class CheckpointError(RuntimeError):
    """A recomputation that differs from the forward (``determinism_check="default"``)."""


def _meta(t):
    return {"shape": tuple(t.shape), "dtype": t.dtype, "device": t.device}


def _external(outs, start, inner):
    """The Tensors requiring grad that ``function`` read without making them (parameters, captured
    tensors, keyword arguments): inputs of the nodes recorded since ``start`` that are neither one of those
    nodes' outputs nor one of the detached arguments ``inner`` (ids)."""
    found, seen, ext = set(inner), set(), []
    stack = [o for o in outs if isinstance(o, Tensor)]
    while stack:
        t = stack.pop()
        n = t._node
        if n is not None and n.seq > start:
            if n not in seen:
                seen.add(n)
                stack.extend(_engine._inputs_of(n))  # NOTE: as the tensors were when the node recorded them
        elif t._rg and id(t) not in found:
            found.add(id(t))
            ext.append(t)
    return ext


class Checkpoint(Function):
    """The graph node of one ``checkpoint(..., use_reentrant=False)`` call. Its inputs are the Tensor
    arguments and every outside Tensor the function read (found by recording the forward once), so
    ``autograd.grad``/``backward(inputs=...)`` reach parameters used inside, as PyTorch's variant."""

    @staticmethod
    def forward(ctx, run, outs, *tensors):
        ctx.run, ctx.meta = run, [_meta(o) if isinstance(o, Tensor) else None for o in outs]
        ctx.save_for_backward(*tensors)
        ctx.mark_non_differentiable(*(o for o in outs if isinstance(o, Tensor) and not o._rg))
        return outs

    @staticmethod
    def backward(ctx, *grads):
        run, saved = ctx.run, ctx.saved_tensors
        graph = state.grad_enabled  # NOTE: True in a create_graph sweep: the gradients then record their graph
        args, out = run(saved[:run.ntensors], link=graph)
        outs = out if isinstance(out, tuple) else (out,)
        if run.check:
            for i, (m, o) in enumerate(zip(ctx.meta, outs)):
                if m is not None and (not isinstance(o, Tensor) or _meta(o) != m):
                    raise CheckpointError(
                        "torch.utils.checkpoint: Recomputed values for the following tensors have different metadata "
                        f"than during the forward pass.\noutput at position {i}:\nsaved metadata: {m}\nrecomputed "
                        f"metadata: {_meta(o) if isinstance(o, Tensor) else type(o).__name__}\n")
        pairs = [(o, g) for o, g in zip(outs, grads) if isinstance(o, Tensor) and o._rg and g is not None]
        wrt = [a for a in args if isinstance(a, Tensor)] + list(saved[run.ntensors:])
        need = [t for t, n in zip(wrt, ctx.needs_input_grad[2:]) if n]
        # NOTE: aliases (link) are non-leaves: the sweep stops at them, as at the outside non-leaf tensors
        res = {}
        if pairs and need:
            gs = [_engine._as_grad(g, o, graph, "output") for o, g in pairs]
            # NOTE: the nested sweep stops at the outside non-leaf tensors: their graph is the outer sweep's
            got = _engine.run([o for o, _ in pairs], gs, inputs=need, retain_graph=graph, create_graph=graph,
                              allow_unused=True, stop={t._node for t in need if t._node is not None})
            res = {id(t): g for t, g in zip(need, got)}
        return (None, None) + tuple(res.get(id(t)) for t in wrt)


def _nonreentrant(function, args, kwargs, context_fn, determinism_check, preserve_rng_state):
    if determinism_check not in ("default", "none"):
        raise ValueError(f"determinism_check should be one of ['default', 'none'], but got {determinism_check}")
    fwd_ctx, re_ctx = context_fn()
    if not state.grad_enabled:  # NOTE: nothing to recompute: the plain call
        with fwd_ctx:
            return function(*args, **kwargs)
    run = _Run(function, args, kwargs, preserve_rng_state, re_ctx)
    run.check = determinism_check == "default"  # NOTE: checks the outputs' metadata (PyTorch: saved tensors')
    tensors = [a for a in args if isinstance(a, Tensor)]
    # NOTE: the forward records its graph once, to find the outside tensors it reads; the graph is dropped as
    # soon as the outputs are detached (Function.apply), so only one checkpointed segment's activations are
    # alive at a time, as PyTorch's saved-tensor hooks keep none
    start = next(_prim._seq)
    inner = [_detached(t) for t in tensors]
    it = iter(inner)
    with fwd_ctx, enable_grad():
        out = function(*[next(it) if a is _SLOT else a for a in run.args], **kwargs)
    outs = out if isinstance(out, tuple) else (out,)
    back = {id(d): t for d, t in zip(inner, tensors)}
    ext = _external(outs, start, back)
    # NOTE: an argument returned as it is comes back as the argument itself (as PyTorch's variant)
    res = Checkpoint.apply(run, tuple(None if id(o) in back else o for o in outs), *tensors, *ext)
    res = tuple(back[id(o)] if id(o) in back else r for o, r in zip(outs, res))
    return res if isinstance(out, tuple) else res[0]


def _detached(t):
    d = t.detach()
    d.requires_grad_(t.requires_grad)
    return d


def _again(t, link):
    return _prim.Alias.apply(t) if link and t._rg else _detached(t)


def checkpoint(function, *args, use_reentrant=None, context_fn=noop_context_fn, determinism_check="default",
               debug=False, preserve_rng_state=True, **kwargs):
    """``torch.utils.checkpoint.checkpoint``: ``function(*args, **kwargs)`` without keeping its intermediate
    tensors; the backward recomputes them. use_reentrant=True (the default, with PyTorch's warning): the output
    requires grad when some Tensor argument does, and parameters used inside get gradients only through
    ``.backward()`` without ``inputs=``; keyword arguments, ``context_fn`` and ``debug`` are refused.
    use_reentrant=False: no such limits (see the module docstring)."""
    if use_reentrant is None:
        warnings.warn(_WARN, UserWarning, stacklevel=2)
        use_reentrant = True
    if not use_reentrant:
        if debug and context_fn is not noop_context_fn:
            raise ValueError("debug=True is incompatible with non-default context_fn")
        return _nonreentrant(function, args, kwargs, context_fn, determinism_check, preserve_rng_state)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    if context_fn is not noop_context_fn or debug is not False:
        raise ValueError("Passing `context_fn` or `debug` is only supported when use_reentrant=False.")
    # NOTE: determinism_check is only used by the non-reentrant variant (PyTorch ignores it here too)
    if not any(isinstance(a, Tensor) and a.requires_grad for a in args):
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None", UserWarning,
                      stacklevel=2)
    return CheckpointFunction.apply(_Run(function, args, {}, preserve_rng_state), *args)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """``torch.utils.checkpoint.checkpoint_sequential``: split ``functions`` (an ``nn.Sequential`` or a list of
    callables) into ``segments`` runs of ``len // segments`` each; every run but the last is checkpointed."""
    if use_reentrant is None:
        warnings.warn(_WARN_SEQ, UserWarning, stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    fns = list(functions.children()) if isinstance(functions, Sequential) else functions

    def chain(lo, hi):
        def run(x):
            for f in fns[lo:hi]:
                x = f(x)
            return x
        return run

    # NOTE: PyTorch's split, with its corner cases: segments=0 divides by zero, more segments than functions
    # gives a zero step (ValueError from range), a negative count checkpoints nothing; the remainder joins the
    # last, unchecked, run
    size = len(fns) // segments
    lo = 0
    for lo in range(0, size * (segments - 1), size):
        input = checkpoint(chain(lo, lo + size), input, use_reentrant=use_reentrant, preserve_rng_state=preserve)
        lo += size
    return chain(lo, len(fns))(input)
