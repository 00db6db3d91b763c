"""The MPI backend (mpi4py): non-blocking collectives on NumPy arrays; CuPy arrays are staged through host
memory, since the PyPI MPI wheels are not CUDA-aware."""
from __future__ import annotations

import numpy as np
from mpi4py import MPI


class Request:
    """A started collective: ``wait()`` blocks until it is done, ``test()`` polls (and drives MPI's progress)."""

    def __init__(self, req, after=None):
        self.req, self.after = req, after

    def test(self):
        return self.req.Test()

    def wait(self):
        self.req.Wait()
        if self.after is not None:
            self.after()
            self.after = None


class MPIBackend:
    name = "mpi"

    def __init__(self):
        # NOTE: a private communicator: the user's own MPI calls on COMM_WORLD never match ours
        self.comm = MPI.COMM_WORLD.Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.mpi = self
        self.ops = {"sum": MPI.SUM, "prod": MPI.PROD, "min": MPI.MIN, "max": MPI.MAX}

    def _start(self, start, arrays, written):
        """``start(*host_arrays)`` -> MPI request; ``written``: indices of the arrays the collective fills."""
        if all(type(a) is np.ndarray for a in arrays):
            return Request(start(*arrays))
        host = [a.get() for a in arrays]  # NOTE: CuPy -> host copies (after the producing stream finished)

        def after():
            for i in written:
                arrays[i].set(host[i])
        return Request(start(*host), after)

    def allreduce(self, buf, op):
        return self._start(lambda b: self.comm.Iallreduce(MPI.IN_PLACE, b, op=self.ops[op.value]), [buf], [0])

    def bcast(self, buf, root):
        return self._start(lambda b: self.comm.Ibcast(b, root=root), [buf], [0])

    def allgather(self, send, recv):
        return self._start(lambda s, r: self.comm.Iallgather(s, r), [send, recv], [1])

    def reduce_scatter(self, send, recv, op):
        return self._start(lambda s, r: self.comm.Ireduce_scatter_block(s, r, op=self.ops[op.value]),
                           [send, recv], [1])

    def barrier(self):
        return Request(self.comm.Ibarrier())

    def abort(self, code):
        MPI.COMM_WORLD.Abort(code)

    def close(self):
        self.comm.Free()
