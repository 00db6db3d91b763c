"""``gg.distributed``: PyTorch's collective API on MPI (CPU tensors; ``mpi4py``) and NCCL (CUDA tensors).

Start the processes with ``mpiexec -n N python -m mpi4py script.py`` (or ``python -m gpugrad train --nproc N``);
``init_process_group()`` takes rank and world size from MPI. See docs/distributed.md.
"""
from __future__ import annotations

import enum
import sys
import traceback

import numpy as np

from .._dtypes import is_float as _isf
from ..autograd.primitive import bump
from ..backend import xp_of
from ..tensor import Tensor

__all__ = ["ReduceOp", "Work", "all_gather", "all_gather_object", "all_reduce", "barrier", "broadcast",
           "broadcast_object_list", "destroy_process_group", "get_backend", "get_rank", "get_world_size",
           "init_process_group", "is_available", "is_initialized", "is_mpi_available", "is_nccl_available",
           "reduce_scatter"]


class ReduceOp(enum.Enum):
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "prod"
    MIN = "min"
    MAX = "max"


_state = {"backend": None}  # the default process group: an _mpi.MPIBackend or _nccl.NCCLBackend


def is_available():
    return True


def is_mpi_available():
    try:
        import mpi4py  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def is_nccl_available():
    try:
        from cupy.cuda import nccl  # noqa: F401, PLC0415
    except Exception:  # noqa: BLE001  (no CuPy, no CUDA, or CuPy built without NCCL)
        return False
    return True


def is_initialized():
    return _state["backend"] is not None


def _pg(group=None):
    if group is not None:
        raise NotImplementedError("gpugrad.distributed has only the default process group: pass group=None")
    b = _state["backend"]
    if b is None:
        raise RuntimeError("Default process group has not been initialized, please make sure to call "
                           "init_process_group.")
    return b


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    """Join the job started by ``mpiexec``: ``backend="mpi"`` (CPU tensors; CUDA tensors staged through host
    memory) or ``"nccl"`` (CUDA tensors; each rank uses GPU ``local rank % device count``)."""
    if _state["backend"] is not None:
        raise ValueError("trying to initialize the default process group twice!")
    backend = "mpi" if backend is None else str(backend).lower()
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"backend {backend!r} is not available in gpugrad: use 'mpi' (CPU) or 'nccl' (CUDA)")
    if init_method not in (None, "env://") or store is not None:
        raise ValueError("gpugrad.distributed takes ranks from MPI: start with mpiexec and leave init_method/store unset")
    if not is_mpi_available():
        raise RuntimeError('gpugrad.distributed needs mpi4py and an MPI library: pip install "gpugrad[mpi]"')
    from . import _mpi  # noqa: PLC0415
    b = _mpi.MPIBackend()
    for name, given, real in (("world_size", world_size, b.size), ("rank", rank, b.rank)):
        if given not in (-1, None) and given != real:
            raise ValueError(f"init_process_group: {name}={given}, but MPI started this process with {name}={real}")
    if backend == "nccl":
        from ._nccl import NCCLBackend  # noqa: PLC0415
        b = NCCLBackend(b)
    _state["backend"] = b
    if b.size > 1:
        # NOTE: an exception on one rank would leave the others blocked in a collective forever: the job ends
        # instead (MPI_Abort kills every rank; mpiexec's exit status is non-zero)
        _state["excepthook"] = sys.excepthook
        sys.excepthook = _abort_job


def _abort_job(kind, value, tb):
    b = _state["backend"]
    msg = "".join(traceback.format_exception(kind, value, tb))
    sys.stderr.write(f"{msg}gpugrad.distributed: rank {b.rank} of {b.size} failed ({kind.__name__}: {value}); "
                     "aborting the whole job (MPI_Abort)\n")
    sys.stderr.flush()
    b.abort(1)


def destroy_process_group(group=None):
    b = _pg(group)
    b.close()
    _state["backend"] = None
    if "excepthook" in _state:
        sys.excepthook = _state.pop("excepthook")


def get_backend(group=None):
    return _pg(group).name


def get_rank(group=None):
    """This process's rank (-1 when no process group is initialized, as PyTorch)."""
    b = _state["backend"]
    return -1 if b is None and group is None else _pg(group).rank


def get_world_size(group=None):
    b = _state["backend"]
    return -1 if b is None and group is None else _pg(group).size


class Work:
    """What ``async_op=True`` returns: ``wait()`` blocks until the collective finished and the tensor holds
    its result; ``is_completed()`` polls."""

    def __init__(self, req, finish=None):
        self._req, self._finish = req, finish

    def is_completed(self):
        if self._req is not None and self._req.test():
            self._req = None
        if self._req is None and self._finish is not None:
            self.wait()
        return self._req is None

    def wait(self, timeout=None):
        if self._req is not None:
            self._req.wait()
            self._req = None
        if self._finish is not None:
            f, self._finish = self._finish, None
            f()
        return True


def _done(req, finish, async_op):
    w = Work(req, finish)
    if async_op:
        return w
    w.wait()
    return None


def _array(t, what):
    if not isinstance(t, Tensor):
        raise TypeError(f"{what} expects a gpugrad Tensor, got {type(t).__name__}")
    return t._data


def _inplace(t, compute, async_op):
    """Run ``compute(buf) -> (request, after)`` on a contiguous buffer of ``t`` and write the result into ``t``."""
    a = _array(t, "collective")
    buf = a if a.flags.c_contiguous else a.copy()  # NOTE: MPI/NCCL need one contiguous block

    def finish(after):
        if after is not None:
            after()
        if buf is not a:
            a[...] = buf
        bump(t)
    req, after = compute(buf)
    return _done(req, lambda: finish(after), async_op)


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``tensor`` over all ranks, in place (every rank gets the result)."""
    b, op = _pg(group), ReduceOp(op)
    a = _array(tensor, "all_reduce")
    if op is ReduceOp.AVG and not _isf(a.dtype):
        raise TypeError(f"all_reduce with ReduceOp.AVG needs a floating tensor, got {a.dtype}")

    def compute(buf):
        req = b.allreduce(buf, ReduceOp.SUM if op is ReduceOp.AVG else op)
        # NOTE: AVG is a SUM divided by the world size afterwards (MPI has no AVG; the same on every rank)
        return req, (lambda: buf.__itruediv__(b.size)) if op is ReduceOp.AVG else None
    return _inplace(tensor, compute, async_op)


def broadcast(tensor, src, group=None, async_op=False):
    """Copy rank ``src``'s ``tensor`` into every rank's ``tensor``."""
    b = _pg(group)
    _check_rank(src, b, "src")
    return _inplace(tensor, lambda buf: (b.bcast(buf, src), None), async_op)


def _rank_list(fname, what, tensors, a, size):
    """The arrays of ``tensors``, one per rank, each of ``a``'s shape and dtype (else a ValueError saying so)."""
    arrs = [_array(t, fname) for t in tensors]
    if len(arrs) != size or any(o.shape != a.shape or o.dtype != a.dtype for o in arrs):
        raise ValueError(f"{fname}: {what} must hold {size} tensors of shape {tuple(a.shape)} and dtype {a.dtype}")
    return arrs


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """``tensor_list[r]`` gets rank r's ``tensor`` (all of the same shape and dtype)."""
    b = _pg(group)
    a = _array(tensor, "all_gather")
    _rank_list("all_gather", "tensor_list", tensor_list, a, b.size)
    xp = xp_of(a)
    send, recv = xp.ascontiguousarray(a), xp.empty((b.size,) + a.shape, a.dtype)

    def finish():
        for o, t in zip(tensor_list, recv):
            o._data[...] = t
            bump(o)
    return _done(b.allgather(send, recv), finish, async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """``output`` on rank r gets the reduction over all ranks of their ``input_list[r]``."""
    b, op = _pg(group), ReduceOp(op)
    a = _array(output, "reduce_scatter")
    ins = _rank_list("reduce_scatter", "input_list", input_list, a, b.size)
    xp = xp_of(a)
    send = xp.ascontiguousarray(xp.stack(ins))

    def compute(buf):
        req = b.reduce_scatter(send, buf, ReduceOp.SUM if op is ReduceOp.AVG else op)
        return req, (lambda: buf.__itruediv__(b.size)) if op is ReduceOp.AVG else None
    return _inplace(output, compute, async_op)


def barrier(group=None, async_op=False, device_ids=None):
    return _done(_pg(group).barrier(), None, async_op)


def broadcast_object_list(object_list, src=0, group=None, device=None):
    """Replace ``object_list``'s items by rank ``src``'s (pickled)."""
    b = _pg(group)
    _check_rank(src, b, "src")
    object_list[:] = b.mpi.comm.bcast(list(object_list), root=src)


def all_gather_object(object_list, obj, group=None):
    """``object_list[r]`` gets rank r's ``obj`` (pickled)."""
    object_list[:] = _pg(group).mpi.comm.allgather(obj)


def _check_rank(r, b, what):
    if not (isinstance(r, (int, np.integer)) and 0 <= r < b.size):
        raise ValueError(f"{what}={r} is not a rank of this group of {b.size}")
