"""``gg.compile``: record a step once, replay it as a flat list of array calls.

A call with a new signature runs the function eagerly while a recorder (:class:`_Tape`) notes, at the
array level, every Primitive forward, every node backward and gradient sum/copy of the sweep, every
store into a leaf's ``.grad``, every in-place write, every dropout mask, and each optimizer
``step``/``zero_grad`` as one call. Values are numbered "slots"; a replay runs the noted calls on
the new input arrays with no Tensor, graph or engine bookkeeping. What varies between calls is read
when the replay runs: the inputs, parameters' arrays, ``param_groups`` and optimizer state (the
update is replayed as the optimizer's own ``step``), dropout masks (drawn from the generator), and
the modules' train/eval flags are a guard of each specialization.

NOTE: a signature is recorded twice (its first two calls run eagerly) and replayed only when both
recordings agree: same calls, same Python numbers, same constants bit for bit. That is what catches
values computed outside the recorded calls (which a replay would bake in) and steps that run other
ops from one call to the next.
"""
from __future__ import annotations

import collections
import functools
import linecache
import os
import sys
import types
import warnings

import numpy as np

from ._dtypes import LOWP
from .autograd import engine as _eng
from .autograd import primitive as _prim
from .autograd.grad_mode import state as _state
from .backend import quiet_begin, quiet_end
from .ops.shape import GetItem as _GetItem
from .tensor import Tensor

_tm = sys.modules[Tensor.__module__]  # NOTE: the module (gpugrad.tensor the attribute is the function)

__all__ = ["compile", "CompileError"]


class CompileError(RuntimeError):
    """The function cannot be recorded and replayed with the same result as eager execution."""


_PKG = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_line():
    """'file:line in fn: code' of the innermost frame outside gpugrad (the user's line)."""
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        f = f.f_back
    if f is None:
        return "<unknown>"
    code = linecache.getline(f.f_code.co_filename, f.f_lineno).strip()
    return f"{f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}: {code}"


def _is_array(v):
    return type(v) is np.ndarray or type(v).__module__.startswith("cupy")


class _Ref:
    """A slot reference inside a recorded call's parameters (an array argument)."""
    __slots__ = ("s",)

    def __init__(self, s):
        self.s = s

    def __eq__(self, o):
        return type(o) is type(self) and o.s == self.s

    def __hash__(self):
        return hash(self.s)


class _TRef(_Ref):
    """A slot reference standing for a Tensor argument (of a ``recorded`` function): a Tensor over it on replay."""
    __slots__ = ()


def _flat(v):
    return v if type(v) in (tuple, list) else (v,)


def _fill(v, S):
    if type(v) is _Ref:
        return S[v.s]
    if type(v) is _TRef:
        return Tensor(S[v.s])
    if type(v) in (tuple, list):
        return type(v)(_fill(x, S) for x in v)
    if type(v) is dict:
        return {k: _fill(x, S) for k, x in v.items()}
    return v


_HOST_READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__", "__array__")


class _Tape:
    """What one eager call did, in slots (see the module docstring)."""

    def __init__(self, fallback):
        self.fallback, self.dead = fallback, None
        self.slot, self.keep, self.n = {}, [], 0       # id(array) -> slot; kept alive so ids stay unique
        self.ext, self.consts, self.born = {}, [], {}  # id(tensor) -> (tensor, slot); (slot, array); id -> where
        self.ops, self.ctxs, self.mods = [], {}, {}    # (sig, where, make); id(ctx) -> op index; id(module) -> ...
        self.inputs, self.out = [], None
        self.literal = set()                           # ids of tensors made from Python numbers (tensor._scalar_tensor)
        self.born_data = set()                         # ids of the arrays of tensors made during the call
        self.made = set()                              # ids of the recorded ops' output tensors
        self.objs = {}                                 # op index -> what the CUDA-graph path needs of a host effect

    # -- slots ------------------------------------------------------------------------------------
    def new(self, a):
        s = self.n
        self.n += 1
        self.slot[id(a)] = s
        self.keep.append(a)
        return s

    def const(self, a):
        s = self.new(a)
        self.consts.append((s, a))
        return s

    def ref_a(self, a):
        s = self.slot.get(id(a))
        if s is None and id(a) in self.born_data:
            self._computed_outside()  # NOTE: the array of such a tensor passed as a parameter (where's mask, ...)
        return self.const(a) if s is None else s

    def _computed_outside(self):
        # NOTE: a tensor made during the call from an array computed outside the recorded calls (a comparison, a
        # mask, argmax, ...) may depend on the inputs: baked in, a replay would keep the first call's value even
        # where the second recording happened to agree with it. Refused.
        self.unrecordable("a tensor computed outside the recorded ops (a comparison, a mask, an argmax, ...) feeds "
                          "the step, and a replay would keep its first value")

    def ref_t(self, t):
        s = self.slot.get(id(t._data))
        if s is not None:
            return s
        if id(t) in self.born or id(t) in self.made:
            if id(t) not in self.literal:  # NOTE: made: an op's output whose array was replaced by unrecorded code
                self._computed_outside()
            return self.const(t._data)  # NOTE: a Python number's tensor: a constant, checked by the 2nd recording
        e = self.ext.get(id(t))
        if e is None:  # NOTE: a tensor from before the call (parameter, buffer): its array is read at replay start
            e = self.ext[id(t)] = (t, self.new(t._data))
        return e[1]

    def sub(self, v, tensors=False):
        if _is_array(v):
            return _Ref(self.ref_a(v))
        if type(v) in (tuple, list):
            return type(v)(self.sub(x, tensors) for x in v)
        if type(v) is dict:
            return {k: self.sub(x, tensors) for k, x in v.items()}
        if isinstance(v, Tensor):
            if tensors:
                return _TRef(self.ref_t(v))
            raise CompileError(f"a tensor passed as a parameter of a recorded op cannot be replayed ({_user_line()})")
        return v

    def add(self, sig, make):
        self.ops.append((sig, _user_line(), make))

    # -- what the hooks note -------------------------------------------------------------------------
    def fwd(self, cls, inputs, params, out):
        ins = tuple(self.ref_t(t) for t in inputs)
        pp = self.sub(params)
        dyn = pp != params
        if cls is _GetItem and any(getattr(i, "dtype", None) == np.bool_ for i in _flat(params.get("idx"))):
            self.unrecordable("indexing with a boolean mask (x[mask], masked_select) gives a shape that depends on "
                              "the mask's values")
        o = self.new(out._data)
        self.made.add(id(out))
        self.keep.append(out)
        ctx = out._node
        # NOTE: float16/bfloat16 inputs: eager computed this node through Primitive's float32 choke point
        # (_lowp_forward, and an instance backward _lowp_backward); the replay does the same
        low = cls.lowp != "native" and any(t._data.dtype in LOWP for t in inputs)
        if ctx is not None:  # a graph node: its backward is noted too, and replayed on the same object
            self.ctxs[id(ctx)] = len(self.ops)
            ctx.backward = functools.partial(self.bwd, ctx, ctx.__dict__.get("backward"))
        rgs = tuple(t._rg for t in inputs)
        self.add(("f", cls, ins, pp, o, out._data.shape, out._data.dtype, ctx is not None),
                 lambda: _make_fwd(cls, ctx, ins, pp, dyn, o, rgs, low))

    def bwd(self, ctx, own, g):
        tape, _prim.tape = _prim.tape, None  # NOTE: ops inside a backward (custom Functions) are part of it
        try:
            gin = own(g) if own is not None else type(ctx).backward(ctx, g)
        finally:
            _prim.tape = tape
        if tape is None or self.dead:
            return gin
        gs = self.ref_a(g)
        tup = gin if type(gin) is tuple else (gin,)
        outs = tuple((i, self.new(a)) for i, a in enumerate(tup) if a is not None)
        k = self.ctxs[id(ctx)]
        self.add(("b", k, gs, outs), lambda last: _make_bwd(self.ops[k][3], gs, outs, last, own is not None))
        return gin

    def pure(self, fn, *args):
        """``fn(*args)`` of arrays and constants, noted as one call (the sweep's sums and copies, the seed
        gradient, array helpers that Tensor-level code calls, such as max pooling's argmax)."""
        out = fn(*args)
        ins = self.sub(args)
        o = self.new(out)
        fast = all(type(i) is _Ref for i in ins) and len(ins) <= 2
        self.add(("p", fn, ins, o), lambda: _make_pure(fn, tuple(i.s for i in ins), o) if fast else
                 (lambda S: S.__setitem__(o, fn(*_fill(ins, S)))))
        return out

    def call(self, fn, args, kwargs, dynamic):
        """A ``recorded`` function's call (autograd.primitive.recorded): run now, noted as one call."""
        if dynamic is True or (dynamic is not None and dynamic(*args, **kwargs)):
            self.unrecordable(f"{fn.__name__}() gives a shape that depends on the tensor values")
            return fn(*args, **kwargs)
        spec = self.sub((args, kwargs), True)
        _prim.tape = None
        try:
            out = fn(*args, **kwargs)
        finally:
            _prim.tape = self
        outs = out if isinstance(out, tuple) else (out,)
        if any(t._rg for t in outs):
            self.refuse("a tensor that requires grad made inside the step")
        os_ = tuple(self.new(t._data) for t in outs)

        def make():
            def f(S):
                a, k = _fill(spec, S)
                r = fn(*a, **k)
                for s, t in zip(os_, r if isinstance(r, tuple) else (r,)):
                    S[s] = t._data
            return f
        self.add(("t", fn, spec, os_), make)
        return out

    def opaque(self, fn, obj, args, kwargs):
        """A method with effects only (optimizer step, zero_grad): run now and again on every replay."""
        if getattr(fn, "_records_call", False) and (any(a is not None for a in args) or kwargs.get("closure") is not None):
            raise CompileError(f"optimizer.step(closure) cannot be compiled ({_user_line()})")
        tape, _prim.tape = _prim.tape, None
        try:
            r = fn(obj, *args, **kwargs)
        finally:
            _prim.tape = tape
        self.add(("o", fn, id(obj), args, tuple(sorted(kwargs.items()))), lambda: lambda S: fn(obj, *args, **kwargs))
        return r

    def host_read(self, name):
        self.unrecordable(f"Tensor.{name}() reads a tensor's value on the host while the step is recorded, "
                          "which a replay cannot repeat")

    def unrecordable(self, what):
        """Raise (or, with fallback=True, stop recording: the function then runs eagerly) for ``what``."""
        msg = (f"gg.compile: {what}; at {_user_line()}. Move it out of the compiled function, "
               "or pass fallback=True to run this function eagerly")
        if not self.fallback:
            raise CompileError(msg)
        self.dead = msg
        _prim.tape = None  # NOTE: the rest of this call runs plainly eagerly

    def refuse(self, what):
        raise CompileError(f"gg.compile: {what} cannot be recorded ({_user_line()})")

    # -- the end of a recording ---------------------------------------------------------------------
    def finish(self, result):
        def flat(v):
            if isinstance(v, Tensor):
                n = v._node
                if n is not None and n.inputs is not None:
                    raise CompileError("gg.compile: the function returns a tensor whose graph has not been "
                                       "backpropagated inside it; a replay records no graph (run backward inside "
                                       "the compiled function, or call it under gg.no_grad() for inference)")
                return ("t", self.ref_t(v))
            if type(v) in (tuple, list):
                return (type(v), tuple(flat(x) for x in v))
            if v is None or isinstance(v, (bool, int, float, str)):
                return ("v", v)
            raise CompileError(f"gg.compile: cannot return a {type(v).__name__} from a compiled function")
        self.out = flat(result)
        cs = {s for s, _ in self.consts}
        self.const_out = any(s in cs for s in _slots(self.out))

    def signature(self):
        return ([op[0] for op in self.ops], self.out, sorted((id(t), s) for t, s in self.ext.values()),
                [s for s, _ in self.consts], self.modes())

    def modes(self):
        return tuple((id(m), tr) for m, tr in self.mods.values())

    def differs(self, other):
        """Why two recordings of one signature disagree, or None."""
        a, b = self.signature(), other.signature()
        for i, (x, y) in enumerate(zip(a[0], b[0])):
            if x != y:
                return f"the calls differ at {other.ops[i][1]} (a Python number, an op or a shape changed)"
        if len(a[0]) != len(b[0]):
            return "the two calls ran a different number of ops"
        if a[1:] != b[1:]:
            return "the two calls used different tensors, outputs or train/eval modes"
        for (s, x), (_, y) in zip(self.consts, other.consts):
            if x.shape != y.shape or x.dtype != y.dtype or x.tobytes() != y.tobytes():
                where = next((op[1] for op in other.ops if s in _op_slots(op[0])), "<unknown>")
                return (f"a value computed outside the recorded ops changed between calls (used at {where}); "
                        "a replay would keep the first one")
        return None


def _slots(out):
    if out[0] == "t":
        yield out[1]
    elif out[0] in (tuple, list):
        for x in out[1]:
            yield from _slots(x)


def _op_slots(sig):
    for v in (sig[2:] if sig[0] == "b" else sig[1:]):  # NOTE: a backward's first number is its node, not a slot
        if isinstance(v, _Ref):
            yield v.s
        elif type(v) is int:
            yield v
        elif type(v) in (tuple, list, dict):
            yield from _op_slots(("", *(v.values() if type(v) is dict else v)))


# -- replay closures: each takes S, the list of slots -----------------------------------------------

def _make_fwd(cls, ctx, ins, pp, dyn, o, rgs, low=False):
    if ctx is None:
        obj = cls.__new__(cls)
        fw = obj.forward if not low else (lambda *a, **k: _prim._lowp_forward(obj, a, k))
        if len(ins) == 1 and not dyn:
            i0 = ins[0]

            def f(S):
                S[o] = fw(S[i0], **pp)
        else:
            def f(S):
                S[o] = fw(*[S[i] for i in ins], **(_fill(pp, S) if dyn else pp))
        return f, None
    boxes = tuple(Tensor(None, requires_grad=rg) for rg in rgs)
    d = ctx.__dict__
    d.clear()
    d["inputs"] = boxes
    pairs = tuple(zip(boxes, ins))
    fw, save = ctx.forward, cls.save_output
    if low:
        fw = lambda *a, **k: _prim._lowp_forward(ctx, a, k)  # noqa: E731

    def f(S):
        arrs = []
        for b, i in pairs:
            a = b._data = S[i]
            arrs.append(a)
        y = fw(*arrs, **(_fill(pp, S) if dyn else pp))
        if save:
            ctx.y = y
        S[o] = y
    return f, (ctx, boxes)


def _make_bwd(node, gs, outs, last, low=False):
    ctx, boxes = node
    bw = _prim._lowp_backward if low else type(ctx).backward

    def f(S):
        gin = bw(ctx, S[gs])
        if type(gin) is not tuple:
            gin = (gin,)
        for i, s in outs:
            S[s] = gin[i]
        if last:  # NOTE: the node's last backward (retain_graph runs more) frees what it kept, as eager's release()
            d = ctx.__dict__
            d.clear()
            d["inputs"] = boxes
            for b in boxes:
                b._data = None
    return f


def _make_pure(fn, ins, o):
    if len(ins) == 1:
        i0 = ins[0]

        def f(S):
            S[o] = fn(S[i0])
    else:
        i0, i1 = ins

        def f(S):
            S[o] = fn(S[i0], S[i1])
    return f


class _Spec:
    """One replayable specialization."""

    def __init__(self, tape):
        ops, lastb, last = tape.ops, {}, {}
        for i, (sig, _, _) in enumerate(ops):
            if sig[0] == "b":
                lastb[sig[1]] = i
            for s in _op_slots(sig):  # NOTE: a superset of the slots op i reads (shapes' ints too): safe to free after
                last[s] = i
        keep = set(_slots(tape.out))
        frees = [[] for _ in ops]
        for s, i in last.items():
            if 0 <= s < tape.n and s not in keep:
                frees[i].append(s)
        made = []
        for i, (sig, where, make) in enumerate(ops):
            m = make(lastb[sig[1]] == i) if sig[0] == "b" else make()
            if sig[0] == "f":  # NOTE: forward makers return (closure, node); backward makers read the node
                tape.ops[i] = (sig, where, m[0], m[1])
                m = m[0]
            else:
                tape.ops[i] = (sig, where, m, None)
            made.append(m)
        # NOTE: each slot is dropped after its last use, so a replay holds no more arrays than eager's graph does
        self.plan = [(f, tuple(fr)) for f, fr in zip(made, frees)]
        self.n = tape.n
        self.template = [None] * tape.n
        for s, a in tape.consts:
            self.template[s] = a
        self.ext = [(t, s) for t, s in tape.ext.values()]
        self.inputs = tape.inputs
        self.out = tape.out
        self.const_out = tape.const_out
        self.mods = [(m, tr) for m, tr in tape.mods.values()]
        self.kinds = [(op[0][0], tape.objs.get(i)) for i, op in enumerate(ops)]
        self.graph = None  # the _Graph of CuPy steps (made on the first replay); False: the flat replay

    def guard(self):
        for m, tr in self.mods:
            if m.training is not tr:
                return False
        return True

    def replay(self, tensors):
        if self.graph is None:
            cp = _cupy_for([t._data for t in tensors] + [t._data for t, _ in self.ext])
            self.graph = False if cp is None else _Graph.make(self, cp)
        if self.graph:
            return self.graph.replay(tensors)
        S = self.template.copy()
        for t, s in self.ext:
            S[s] = t._data
        for t, s in zip(tensors, self.inputs):
            S[s] = t._data
        q = quiet_begin()  # NOTE: NumPy's warnings off for the replay, as for eager's backward
        try:
            for f, fr in self.plan:
                f(S)
                for s in fr:
                    S[s] = None
        finally:
            quiet_end(q)
        return _build(self.out, S, self.const_out)


# -- the CUDA-graph replay (CuPy arrays) ------------------------------------------------------------

class _NoGraph(Exception):
    """The step cannot be a CUDA graph: it replays as flat array calls instead (warned once)."""


def _cupy_for(arrays):
    """CuPy when the step's arrays are CuPy arrays (it then replays as CUDA graphs), else None."""
    return sys.modules.get("cupy") if any(type(a).__module__.startswith("cupy") for a in arrays) else None


def _run_captured(run):
    run()  # NOTE: one seam: tests/test_compile_cuda.py's stand-in CuPy notes `run` as what its graph launches


def _no_rng(*_a, **_k):
    raise _NoGraph("it draws random numbers (gg.randn, rand, randint, randperm, ...), which a CUDA graph would "
                   "repeat on every launch")


class _Graph:
    """A specialization of a CuPy step replayed as CUDA graphs, captured on its first replay.

    NOTE (the choices, see README "Compiled steps"):
    - The step splits at its ``"o"`` calls (optimizer ``step``, ``zero_grad``): they run outside the graphs on every
      replay, on the graphs' stream, so ``param_groups`` (a scheduler's lr) and the step count, which the kernels take
      by value, are read as eagerly. Re-capturing on a change would mean every step (Adam's bias correction). Each
      run of array calls between them is one graph: a usual step (zero_grad; forward; backward; step) is one launch.
    - Capture is on a non-blocking stream (relaxed mode, CuPy's default), with a MemoryPool private to the graph as
      the allocator: nothing else is ever handed its blocks, so the graph owns its memory for its lifetime. The cost:
      each captured specialization keeps its step's whole working set (about eager's peak) allocated between calls.
    - Inputs are copied into static buffers before each launch; a parameter whose array was replaced between calls
      is copied into the captured one (and its tensor set to it). Dropout masks are drawn outside the graph before
      each launch (eager's generator order) into the buffers the graph reads; any other random draw refuses the
      graph. The fused kernels' error flags are read after the launch, one host read for them all.
    - Host effects (``.grad`` of leaves, ``p.data = ...``) are undone while capturing and redone after each launch; a
      ``.grad`` from the last replay still held elsewhere gets its own copy, since the graph rewrites its memory.
    - A capture that fails (a host read or sync inside it, no graph support in this CuPy) warns once; this call
      finishes and later calls run as the flat replay. A CompileError is raised as on the flat path.
    """

    @classmethod
    def make(cls, spec, cp):
        try:
            if any(k == "g" and not o[2] for k, o in spec.kinds):
                raise _NoGraph("it adds gradients into existing .grad tensors (zero_grad(set_to_none=False), or "
                               "no zero_grad in the step)")
            return cls(spec, cp)
        except _NoGraph as e:
            return cls.flat(e)

    @staticmethod
    def flat(why):
        warnings.warn(f"gg.compile: this step replays as flat array calls, not as a CUDA graph: {why}",
                      RuntimeWarning, stacklevel=4)
        return False

    def __init__(self, spec, cp):
        self.spec, self.cp, self.S, self.handed = spec, cp, None, []
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.pool = cp.cuda.MemoryPool()
        self.segs = []  # [i, f] of an "o" call, or [i, ops, graph, state] of a run of array calls
        for i, ((f, fr), (k, obj)) in enumerate(zip(spec.plan, spec.kinds)):
            if k == "o":
                self.segs.append([i, f])
            else:
                if not self.segs or len(self.segs[-1]) == 2:
                    self.segs.append([i, [], None, {}])
                self.segs[-1][1].append((i, f, fr, k, obj))

    def replay(self, tensors):
        cp, st, spec = self.cp, self.stream, self.spec
        cur = cp.cuda.get_current_stream()
        st.wait_event(cur.record())  # NOTE: the inputs come from the current stream; the caller's work waits below
        q = quiet_begin()
        try:
            with st:
                if self.S is None:
                    S = self.S = spec.template.copy()
                    with cp.cuda.using_allocator(self.pool.malloc):
                        self.inp = [cp.empty_like(t._data) for t in tensors]
                    self.ext = [(t, s, t._data) for t, s in spec.ext]
                    for s, b in zip(spec.inputs, self.inp):
                        S[s] = b
                    for t, s, a in self.ext:
                        S[s] = a
                S = self.S
                for b, t in zip(self.inp, tensors):
                    b[...] = t._data
                for t, s, a in self.ext:
                    if t._data is not a:  # NOTE: replaced between calls (load_state_dict, p.data = ...)
                        if t._data.shape != a.shape or t._data.dtype != a.dtype:
                            raise CompileError("gg.compile: a tensor the CUDA graph reads changed shape or dtype "
                                               "between calls")
                        a[...] = t._data
                        t._data = a
                for n, seg in enumerate(self.segs):
                    if len(seg) == 2:
                        seg[1](S)
                    elif seg[2] is not None:
                        self._launch(seg, S)
                    elif not self._capture(seg, S):  # NOTE: then this call ends as the flat replay
                        for f, fr in spec.plan[seg[0]:]:
                            f(S)
                            for s in fr:
                                S[s] = None
                        return _build(spec.out, S, True)
                # NOTE: returned tensors are copies: the graph rewrites its outputs on the next launch
                return _build(spec.out, S, True)
        finally:
            quiet_end(q)
            cur.wait_event(st.record())

    def _capture(self, seg, S):
        cp, st, ops, state = self.cp, self.stream, seg[1], seg[3]
        from . import random as _random  # noqa: PLC0415
        from .fused import cuda as _cuda  # noqa: PLC0415
        with cp.cuda.using_allocator(self.pool.malloc):
            bufs = {i: cp.empty(o[0][1], o[0][2]) for i, _, _, k, o in ops if k == "r"}  # NOTE: (device, shape, dtype, p)
            post = state["post"] = {}
            S0 = S.copy()

            def body():  # NOTE: on a copy of the slots, so the stand-in CuPy of the tests can run it again
                W, fl, undo = S0.copy(), [], []
                _cuda.flag_reads = fl
                try:
                    for i, f, fr, k, o in ops:
                        if k == "r":  # NOTE: drawn before each launch (_launch)
                            W[o[1]] = bufs[i]
                            continue
                        if k in "gdn":  # NOTE: host effects are undone at the end and redone after each launch
                            undo.append((o[0], o[1], getattr(o[0], o[1])))
                        f(W)
                        if k in "gdn":
                            post[i] = getattr(o[0], o[1])
                        for s in fr:
                            W[s] = None
                    state["W"], state["flags"] = W, fl
                    state["any"] = functools.reduce(lambda a, b: a | b, [e for e, _ in fl]) if fl else None
                finally:
                    _cuda.flag_reads = None
                    for obj, attr, prev in reversed(undo):
                        setattr(obj, attr, prev)
            rng = _random.generator, _random.rng
            _random.generator = _random.rng = _no_rng
            try:
                st.begin_capture()
                try:
                    _run_captured(body)
                finally:
                    g = st.end_capture()  # NOTE: ends an invalidated capture too (it then raises)
            except CompileError:
                self.spec.graph = False
                raise
            except Exception as e:  # noqa: BLE001  (a sync or host read inside, no graph support, a random draw)
                self.spec.graph = self.flat(e if isinstance(e, _NoGraph) else f"its capture failed ({e!r})")
                return False
            finally:
                _random.generator, _random.rng = rng
        seg[2], state["bufs"] = g, bufs
        self._launch(seg, S)
        return True

    def _launch(self, seg, S):
        from .nn import functional as _F  # noqa: PLC0415
        graph, state = seg[2], seg[3]
        for i, b in state["bufs"].items():  # NOTE: a fresh mask from the generator, in eager's order
            b[...] = _F._dropout_mask(*self.spec.kinds[i][1][0])
        for x in self.handed:  # NOTE: a .grad of the last replay still held elsewhere keeps its values
            if sys.getrefcount(x) > 3:
                x._data = x._data.copy()
        self.handed = []
        graph.launch(self.stream)
        S[:] = state["W"]
        if state["flags"] and int(state["any"]):  # NOTE: one host read per launch (a sync, as eager's flag read)
            for e, fail in state["flags"]:
                if int(e):
                    fail()
        for i, _, _, k, o in seg[1]:
            if k not in "gdn":
                continue
            v = state["post"][i]
            if k == "g":
                if o[0].grad is not None:
                    raise CompileError("gg.compile: a parameter's .grad was None when the step was recorded and is "
                                       "not now; set_to_none by code the recording could not see (call zero_grad "
                                       "inside the compiled step)")
                v = Tensor(v._data)
                self.handed.append(v)
            elif k == "n" and v is not None:
                v = Tensor(v._data)
            setattr(o[0], o[1], v)


def _build(out, S, copy):
    k = out[0]
    if k == "t":
        a = S[out[1]]
        # NOTE: returned tensors carry no graph (the backward already ran inside the step)
        return Tensor(a.copy() if copy else a)
    if k == "v":
        return out[1]
    return k(_build(x, S, copy) for x in out[1])


# -- the recording hooks: swapped in while a call records, restored after (eager pays nothing) ----------

def _hooks(tape):
    from .nn import functional as _F  # noqa: PLC0415  (NOTE: nn loads on first use, as `import gpugrad` keeps it)
    from .nn.module import Module  # noqa: PLC0415
    from .ops import conv as _conv  # noqa: PLC0415
    orig_apply = _prim.Primitive.__dict__["apply"].__func__
    orig_write, orig_store, orig_run = _tm._write, _eng._store_grad, _eng.run
    orig_init, orig_clone = Tensor.__init__, Tensor.clone
    orig_call, orig_mzero, orig_mask = Module.__call__, Module.zero_grad, _F._dropout_mask

    def live():
        t = _prim.tape
        return t if t is not None and not t.dead else None

    def apply(cls, *inputs, **params):
        t = live()
        if t is None:
            return orig_apply(cls, *inputs, **params)
        _prim.tape = None  # NOTE: nested primitives (custom Functions) run inside this one call
        try:
            out = orig_apply(cls, *inputs, **params)
        finally:
            _prim.tape = t
        t.fwd(cls, inputs, params, out)
        return out

    def init(self, data, requires_grad=False):
        orig_init(self, data, requires_grad)
        t = live()
        if t is not None and id(data) not in t.slot:
            t.born[id(self)] = True
            t.born_data.add(id(self._data))
            t.keep.append(self)

    def clone(self):
        t = live()
        if t is None:
            return orig_clone(self)
        out = orig_clone(self)  # NOTE: its Alias forward is noted; the copy that follows is noted here
        o = t.new(out._data)
        i = t.ref_t(self)
        t.add(("p", "copy", (_Ref(i),), o), lambda: _make_pure(_eng._copy, (i,), o))
        return out

    def write(target, idx, value, overlap_ok=False):
        t = live()
        if t is None:
            return orig_write(target, idx, value, overlap_ok)
        n = target._node if target._view is None else target._view[0]._node
        if n is not None and n.cow and id(n) in t.ctxs:
            k = t.ctxs[id(n)]
            t.add(("c", k), lambda: (lambda S, node=t.ops[k][3]: node[0].own_output()))
        orig_write(target, idx, value, overlap_ok)
        ts, ii, vv = t.ref_t(target), t.sub(idx), t.sub(value)
        box = Tensor(None)

        def make():
            def f(S):
                box._data = S[ts]
                box._view = None
                orig_write(box, _fill(ii, S), _fill(vv, S), overlap_ok)
            return f
        t.add(("w", ts, ii, vv, overlap_ok), make)

    def store(leaf, g, create_graph):
        t = live()
        if t is None:
            return orig_store(leaf, g, create_graph)
        was_none = leaf.grad is None
        _prim.tape = None  # NOTE: its own .grad = ... is this op, not a user's assignment
        try:
            orig_store(leaf, g, create_graph)
        finally:
            _prim.tape = t
        if id(leaf) in t.born or any(leaf is x for x in t.input_tensors):
            t.refuse("a gradient of an input tensor or of a tensor made inside the step")
        gs = t.ref_a(g._data if isinstance(g, Tensor) else g)
        o = t.new(leaf.grad._data)
        t.objs[len(t.ops)] = (leaf, "grad", was_none)

        def make():
            def f(S):
                if (leaf.grad is None) is not was_none:
                    raise CompileError("gg.compile: a parameter's .grad was None when the step was recorded and "
                                       "is not now (or the other way round); set_to_none by code the recording "
                                       "could not see (call zero_grad inside the compiled step)")
                orig_store(leaf, S[gs], False)
                S[o] = leaf.grad._data
            return f
        t.add(("g", id(leaf), gs), make)

    def run(out_list, grad_list, inputs=None, retain_graph=None, create_graph=False, allow_unused=False, stop=None):
        t = live()
        if t is not None and (inputs is not None or create_graph):
            t.refuse("autograd.grad, backward(inputs=...) or create_graph=True")
        return orig_run(out_list, grad_list, inputs, retain_graph, create_graph, allow_unused, stop)

    def call(self, *args, **kwargs):
        t = live()
        if t is not None:
            t.mods.setdefault(id(self), (self, self.training))
        return orig_call(self, *args, **kwargs)

    def mzero(self, set_to_none=True):
        t = live()
        if t is None:
            return orig_mzero(self, set_to_none)
        return t.opaque(orig_mzero, self, (set_to_none,), {})

    def mask(device, shape, dtype, p):
        out = orig_mask(device, shape, dtype, p)
        t = live()
        if t is not None:  # NOTE: a fresh draw from the generator on every replay, as eager dropout
            args = (device, shape, dtype, p)
            o = t.new(out)
            t.objs[len(t.ops)] = (args, o)

            def make():
                def f(S):
                    S[o] = orig_mask(*args)
                return f
            t.add(("r", str(device), args[1:], o), make)
        return out

    def host(name):
        orig = getattr(Tensor, name)

        def read(self, *a, **k):
            t = live()
            if t is not None:
                t.host_read(name)
            return orig(self, *a, **k)
        return orig, read

    def pure(name, fn):
        def w(*arrays):
            t = live()
            return fn(*arrays) if t is None else t.pure(fn, *arrays)
        return w

    orig_scalar, orig_cmp, orig_detach, orig_data = _tm._scalar_tensor, Tensor._cmp, Tensor.detach, Tensor.data

    def cmp(self, o, op):
        t = live()
        if t is not None:  # NOTE: tensors from before the call get their slots here, so _cmp_arrays reads them
            t.ref_t(self)
            if isinstance(o, Tensor):
                t.ref_t(o)
        return orig_cmp(self, o, op)

    def detach(self):
        t = live()
        if t is not None:  # NOTE: as cmp: the detached tensor shares a slot with self
            t.ref_t(self)
        return orig_detach(self)

    def get_data(self):
        t = live()
        if t is not None:
            t.ref_t(self)
        return orig_data.fget(self)

    def set_data(self, value):
        orig_data.fset(self, value)
        t = live()
        if t is not None and id(self) not in t.born and id(self) not in t.made:  # NOTE: p.data = ... on a parameter
            s = t.ref_t(value)
            t.objs[len(t.ops)] = (self, "_data", None)
            t.add(("d", id(self), s), lambda: (lambda S: setattr(self, "_data", S[s])))

    orig_grad = Tensor.__dict__["grad"]

    def set_grad(self, value):
        orig_grad.__set__(self, value)
        t = live()
        if t is not None and id(self) not in t.born and id(self) not in t.made and hasattr(self, "_hooks"):
            # NOTE: p.grad = None (or a tensor) in the step; Tensor.__init__'s own (before _hooks is set) is not one
            s = None if value is None else t.ref_t(value)
            t.objs[len(t.ops)] = (self, "grad", None)
            t.add(("n", id(self), s), lambda: (lambda S: orig_grad.__set__(self, None if s is None else Tensor(S[s]))))

    def scalar(o, dt, like_data):
        out = orig_scalar(o, dt, like_data)
        t = live()
        if t is not None:
            t.literal.add(id(out))
            t.born_data.discard(id(out._data))
        return out

    patches = [(_tm, "_scalar_tensor", scalar), (Tensor, "_cmp", cmp), (Tensor, "detach", detach),
               (Tensor, "data", property(get_data, set_data)), (Tensor, "grad", property(orig_grad.__get__, set_grad)), (_tm, "_cmp_arrays", pure("_cmp_arrays", _tm._cmp_arrays)), (_prim.Primitive, "apply", classmethod(apply)), (_tm, "_write", write), (_eng, "_store_grad", store),
               (_eng, "run", run), (Tensor, "__init__", init), (Tensor, "clone", clone), (Module, "__call__", call),
               (Module, "zero_grad", mzero), (_F, "_dropout_mask", mask)]
    # NOTE: array functions called outside any Primitive whose results feed recorded calls
    patches += [(mod, n, pure(n, getattr(mod, n))) for mod, names in ((_eng, ("_add", "_copy", "_ones_like")),
                (_conv, ("window_argmax", "flat_argmax_index"))) for n in names]
    patches += [(Tensor, n, host(n)[1]) for n in _HOST_READS if n in Tensor.__dict__]
    return patches


def _record(fn, args, kwargs, tensors, fallback):
    tape = _Tape(fallback)
    tape.input_tensors = tensors
    tape.inputs = [tape.new(t._data) for t in tensors]
    patches = _hooks(tape)
    saved = [(obj, name, obj.__dict__[name]) for obj, name, _ in patches]
    for obj, name, new in patches:
        setattr(obj, name, new)
    _prim.tape = tape
    try:
        result = fn(*args, **kwargs)
    finally:
        _prim.tape = None
        for obj, name, old in saved:
            setattr(obj, name, old)
    if tape.dead is None:
        tape.finish(result)
    return tape, result


def _key(args, kwargs):
    def one(v):
        if isinstance(v, Tensor):
            d = v._data
            return ("T", d.shape, d.dtype.str, str(v.device), v._rg)
        try:
            hash(v)
        except TypeError:
            raise CompileError(f"gg.compile: an argument of type {type(v).__name__} is not hashable; pass tensors, "
                               "numbers or other hashable values") from None
        return ("v", type(v), v)
    return (tuple(one(a) for a in args), tuple((k, one(v)) for k, v in sorted(kwargs.items())), _state.grad_enabled)


class Compiled:
    """A compiled function: ``__call__`` replays a matching specialization or records one."""

    def __init__(self, fn, fallback=False, max_cache=8):
        self.fn, self.fallback, self.max_cache = fn, fallback, int(max_cache)
        self.cache = collections.OrderedDict()  # key -> [_Spec, ...] (one per train/eval combination)
        self.pending = {}                        # (key, modes) -> the first recording
        self.eager = None                        # the reason this function now runs eagerly
        if isinstance(fn, types.FunctionType):
            functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        if self.eager is not None or _prim.tape is not None or _state.anomaly:
            return self.fn(*args, **kwargs)  # NOTE: inside another recording the call is part of that one
        key = _key(args, kwargs)
        tensors = [a for a in args if isinstance(a, Tensor)] + [v for _, v in sorted(kwargs.items())
                                                                if isinstance(v, Tensor)]
        specs = self.cache.get(key)
        if specs:
            for sp in specs:
                if sp.guard():
                    self.cache.move_to_end(key)
                    return sp.replay(tensors)
        if any(t._rg for t in tensors):
            raise CompileError("gg.compile: inputs that require grad are not supported (their .grad would belong "
                               "to the first call's tensor)")
        tape, result = _record(self.fn, args, kwargs, tensors, self.fallback)
        if tape.dead is not None:
            self._go_eager(tape.dead)
            return result
        pk = (key, tape.modes())
        first = self.pending.pop(pk, None)
        if first is None:
            self.pending[pk] = tape
            return result
        why = first.differs(tape)
        if why is not None:
            msg = f"gg.compile: two calls with the same input shapes did not record the same step: {why}"
            if not self.fallback:
                raise CompileError(msg)
            self._go_eager(msg)
            return result
        self.cache.setdefault(key, []).append(_Spec(tape))
        self.cache.move_to_end(key)
        while sum(len(v) for v in self.cache.values()) > self.max_cache:
            k0 = next(iter(self.cache))
            self.cache[k0].pop(0)  # NOTE: the least recently used specialization goes first
            if not self.cache[k0]:
                del self.cache[k0]
        return result

    def _go_eager(self, msg):
        warnings.warn(msg + "; running it eagerly from now on", RuntimeWarning, stacklevel=3)
        self.eager = msg


def compile(fn=None, *, fallback=False, max_cache=8):  # noqa: A001
    """Compile ``fn`` (a training step, any function of tensors, or a Module for inference).

    The first two calls with a given signature (input shapes, dtypes, devices, other arguments, grad
    mode; and the modules' train/eval flags) run eagerly and record; later calls replay. A host read
    of a tensor value while recording raises :class:`CompileError` naming the line (``fallback=True``:
    warn once and run eagerly from then on). ``max_cache`` specializations are kept (least recently
    used dropped first).
    """
    if fn is None:
        return lambda f: Compiled(f, fallback, max_cache)
    return Compiled(fn, fallback, max_cache)
