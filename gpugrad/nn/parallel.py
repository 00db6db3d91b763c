"""``gg.nn.parallel.DistributedDataParallel``: data-parallel training over the ranks of ``gg.distributed``.

How the gradients travel (PyTorch's Reducer, rebuilt on gpugrad's engine): for each forward that will be
differentiated, every parameter enters the module through a fresh identity node (``_Ready``). The engine
runs a node only once all its consumers have run, so that node's backward receives the parameter's complete
gradient of this pass, during the backward sweep. It copies the gradient into its slot of a flat bucket and,
when the bucket is full, starts the bucket's non-blocking all-reduce, which then overlaps the rest of the
backward. The last parameter's node waits for all buckets and writes the averaged gradients into ``.grad``.
"""
from __future__ import annotations

import contextlib
import time

from .. import distributed as dist
from ..autograd.grad_mode import state as _grad_state
from ..autograd.primitive import Primitive, bump
from ..backend import xp_of
from ..tensor import Tensor
from .module import Module

__all__ = ["DistributedDataParallel"]


class _Ready(Primitive):
    """Identity on a parameter; its backward hands the parameter's full gradient of the pass to the reducer."""
    saves = ()

    def forward(self, x):
        return x

    def backward(self, g):
        if isinstance(g, Tensor):
            raise RuntimeError("DistributedDataParallel does not support create_graph=True backward")
        self.reducer.ready(self.index, g)
        return None  # NOTE: the reducer writes .grad itself (the averaged value), the engine adds nothing


class DistributedDataParallel(Module):
    """Wrap ``module`` so that ``backward()`` leaves in every parameter's ``.grad`` the average over the ranks
    of their gradients. Rank 0's parameters and buffers are copied to every rank at wrap time (and buffers at
    every forward with ``broadcast_buffers``). Each rank feeds its own share of the batch (see
    ``gg.data.DistributedSampler``)."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False,
                 gradient_as_bucket_view=False, static_graph=False):
        super().__init__()
        if not dist.is_initialized() or process_group is not None:
            raise RuntimeError("DistributedDataParallel needs gg.distributed.init_process_group() first "
                               "(and only the default process group)")
        if dim != 0 or static_graph:
            raise NotImplementedError("DistributedDataParallel: only dim=0 and static_graph=False are supported")
        if device_ids is not None and len(device_ids) > 1:
            raise ValueError("DistributedDataParallel takes one device per process: device_ids=[d] or None")
        self.module = module
        self.broadcast_buffers, self.find_unused_parameters = broadcast_buffers, find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.require_backward_grad_sync = True
        self._world = dist.get_world_size()
        params = [p for p in module.parameters() if p.requires_grad]
        self._params = params
        sig = [(tuple(p.shape), str(p.dtype)) for p in module.parameters()]
        sigs = []
        dist.all_gather_object(sigs, sig)
        if any(s != sigs[0] for s in sigs):
            raise RuntimeError("DistributedDataParallel: the ranks hold different models (parameter shapes or "
                               "dtypes differ); every rank must build the same module")
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.detach(), 0)
        self._make_buckets(25 if bucket_cap_mb is None else bucket_cap_mb)
        self._pass, self.comm_wait_s = None, 0.0

    def _make_buckets(self, cap_mb):
        """Flat buckets of at most ``cap_mb`` MiB (at least one parameter each), one dtype and device each, filled in
        reverse parameter order (the order in which a backward tends to produce the gradients)."""
        cap, open_, done = cap_mb * 2 ** 20, {}, []
        for i in reversed(range(len(self._params))):
            p = self._params[i]
            b = open_.setdefault((p._data.dtype, str(p.device)), [[], 0])
            b[0].append(i)
            b[1] += p._data.nbytes
            if b[1] >= cap:
                done.append(open_.pop((p._data.dtype, str(p.device)))[0])
        done += [b[0] for b in open_.values()]
        # NOTE: every rank launches the buckets in this one order (MPI collectives must match across ranks)
        self.bucket_indices = sorted(done, key=lambda b: -b[0])
        self._flat, self._views, self._bucket_of = [], [None] * len(self._params), [0] * len(self._params)
        for k, idx in enumerate(self.bucket_indices):
            p0 = self._params[idx[0]]._data
            flat = xp_of(p0).zeros(sum(self._params[i]._data.size for i in idx), p0.dtype)
            off = 0
            for i in idx:
                a = self._params[i]._data
                self._views[i] = flat[off:off + a.size].reshape(a.shape)
                self._bucket_of[i] = k
                off += a.size
            self._flat.append(flat)

    @contextlib.contextmanager
    def no_sync(self):
        """Forwards inside skip the all-reduce: their gradients accumulate locally in ``.grad``, and the first
        synchronized backward after averages the accumulated sums."""
        old, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def forward(self, *inputs, **kwargs):
        self._check_finished()
        if self.broadcast_buffers and self.training:
            for b in self.module.buffers():
                dist.broadcast(b.detach(), 0)
        if not (self.require_backward_grad_sync and _grad_state.grad_enabled and self._params):
            return self.module(*inputs, **kwargs)
        hooked = [t for t in self._params if t._hooks]
        if hooked:
            # NOTE: the reducer writes .grad itself, so hooks on parameters would never run: PyTorch runs them
            raise NotImplementedError(f"DistributedDataParallel: {len(hooked)} parameter(s) have gradient hooks "
                                      "(register_hook), which would not run under it; remove them and process the "
                                      "averaged .grad after backward() instead")
        self._pass = p = _Pass(self)
        alias = {}
        for i, t in enumerate(self._params):
            a = _Ready.apply(t)
            a._node.reducer, a._node.index = p, i
            alias[id(t)] = a
        swapped = []
        for m in self.module.modules():
            for k, v in m._parameters.items():
                if v is not None and id(v) in alias:
                    swapped.append((m, k, v))
                    m._parameters[k] = alias[id(v)]
        try:
            out = self.module(*inputs, **kwargs)
        finally:
            for m, k, v in swapped:
                m._parameters[k] = v
        if self.find_unused_parameters:
            # NOTE: PyTorch's cost: one walk of the forward graph per step finds the parameters it cannot reach;
            # they are ready now (zeros, or their accumulated .grad), so their buckets do not wait for them
            reached = _reachable(out)
            for i in range(len(self._params)):
                if i not in reached.get(p, ()):
                    p.ready(i, None)
        return out

    def _check_finished(self):
        p = self._pass
        if p is not None and p.started and p.left:
            self._pass = None
            raise RuntimeError(
                "Expected to have finished reduction in the prior iteration before starting a new one. This error "
                "indicates that your module has parameters that were not used in producing loss: "
                f"{[n for i, n in p.missing()]}. Pass find_unused_parameters=True to DistributedDataParallel, "
                "or make sure every parameter takes part in the loss on every rank.")


class _Pass:
    """The reduction state of one forward/backward (which parameters are ready, which buckets started)."""

    def __init__(self, ddp):
        self.ddp, self.left = ddp, len(ddp._params)
        self.is_ready, self.used = [False] * self.left, [False] * self.left
        self.pending = [len(b) for b in ddp.bucket_indices]
        self.works, self.next, self.started = [], 0, False

    def missing(self):
        names = {id(p): n for n, p in self.ddp.module.named_parameters()}
        return [(i, names.get(id(p), "?")) for i, p in enumerate(self.ddp._params) if not self.is_ready[i]]

    def ready(self, i, g):
        ddp = self.ddp
        if self.is_ready[i]:
            raise RuntimeError("Expected to mark a variable ready only once: a parameter got gradients from two "
                               "backward passes of one DistributedDataParallel forward (retain_graph=True?)")
        self.is_ready[i], self.used[i] = True, g is not None
        self.started |= g is not None
        p, slot = ddp._params[i], ddp._views[i]
        acc = None if p.grad is None else p.grad._data
        # NOTE: a .grad accumulated under no_sync() (or not zeroed) joins this pass's gradient in the bucket
        if acc is slot:
            if g is not None:
                slot += g
        elif acc is not None:
            slot[...] = acc if g is None else acc + g
        elif g is None:
            slot[...] = 0
        else:
            slot[...] = g
        k = ddp._bucket_of[i]
        self.pending[k] -= 1
        while self.next < len(self.pending) and self.pending[self.next] == 0:
            self.works.append(dist._pg().allreduce(ddp._flat[self.next], dist.ReduceOp.SUM))
            self.next += 1
        for w in self.works:
            w.test()  # NOTE: MPI progresses non-blocking collectives only inside MPI calls: poke it
        self.left -= 1
        if self.left == 0:
            self.finish()

    def finish(self):
        ddp = self.ddp
        t0 = time.perf_counter()
        for w in self.works:
            w.wait()
        ddp.comm_wait_s += time.perf_counter() - t0  # seconds the backward spent waiting for all-reduces
        for flat in ddp._flat:
            flat /= ddp._world
        used = None
        if ddp.find_unused_parameters:
            u = Tensor(xp_of(ddp._flat[0]).asarray(self.used, dtype="int32"))
            dist.all_reduce(u, dist.ReduceOp.MAX)
            used = u._data.tolist()
        for i, p in enumerate(ddp._params):
            if used is not None and not used[i]:
                continue  # NOTE: unused on every rank: .grad is left as it was (PyTorch)
            view = ddp._views[i]
            if ddp.gradient_as_bucket_view:
                if p.grad is None or p.grad._data is not view:
                    p.grad = Tensor(view)
                else:
                    bump(p.grad)
            elif p.grad is None or p.grad._data.shape != view.shape:
                p.grad = Tensor(view.copy())
            else:
                p.grad._data[...] = view
                bump(p.grad)
        ddp._pass = None


def _reachable(out):
    """{pass: set of parameter indices} whose _Ready nodes the graph of ``out`` reaches."""
    stack, seen, found = [], set(), {}

    def add(o):
        if isinstance(o, Tensor):
            if o._node is not None:
                stack.append(o._node)
        elif isinstance(o, (list, tuple)):
            for x in o:
                add(x)
        elif isinstance(o, dict):
            for x in o.values():
                add(x)
    add(out)
    while stack:
        n = stack.pop()
        if id(n) in seen or n.inputs is None:
            continue
        seen.add(id(n))
        if isinstance(n, _Ready):
            found.setdefault(n.reducer, set()).add(n.index)
            continue
        stack.extend(t._node for t in n.inputs if t._node is not None)
    return found
