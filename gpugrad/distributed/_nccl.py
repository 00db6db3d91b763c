"""The NCCL backend (``cupy.cuda.nccl``) for CUDA tensors. MPI still starts the processes, hands out the
NCCL unique id and runs barrier/object collectives.

NOTE: written for CuPy and NCCL but never run on a GPU yet (the machines that built it have none); its
tests skip without CuPy, NCCL and a GPU.
"""
from __future__ import annotations

import numpy as np


class Request:
    """A collective enqueued on the communication stream; ``wait()`` makes the caller's stream wait for it
    (as PyTorch's NCCL work), so the host does not block."""

    def __init__(self, event):
        self.event = event

    def test(self):
        return self.event.done

    def wait(self):
        import cupy  # noqa: PLC0415
        cupy.cuda.get_current_stream().wait_event(self.event)


class NCCLBackend:
    name = "nccl"

    def __init__(self, mpi):
        import cupy  # noqa: PLC0415
        from cupy.cuda import nccl  # noqa: PLC0415
        from mpi4py import MPI  # noqa: PLC0415
        self.mpi, self.rank, self.size, self.cp, self.nccl = mpi, mpi.rank, mpi.size, cupy, nccl
        local = mpi.comm.Split_type(MPI.COMM_TYPE_SHARED)
        # NOTE: one GPU per process: the i-th process on a node takes GPU i (modulo the node's GPU count)
        cupy.cuda.Device(local.Get_rank() % cupy.cuda.runtime.getDeviceCount()).use()
        local.Free()
        uid = mpi.comm.bcast(nccl.get_unique_id() if self.rank == 0 else None, root=0)
        self.comm = nccl.NcclCommunicator(self.size, uid, self.rank)
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.ops = {"sum": nccl.NCCL_SUM, "prod": nccl.NCCL_PROD, "min": nccl.NCCL_MIN, "max": nccl.NCCL_MAX}
        self.types = {np.dtype(k): getattr(nccl, "NCCL_" + k.upper()) for k in
                      ("int8", "uint8", "int32", "uint32", "int64", "uint64", "float16", "float32", "float64")}

    def _run(self, call, *arrays):
        for a in arrays:
            if type(a) is np.ndarray:
                raise TypeError("the NCCL backend takes CUDA tensors; use init_process_group('mpi') for CPU tensors")
        dt = self.types.get(np.dtype(arrays[0].dtype))
        if dt is None:
            raise TypeError(f"NCCL has no type for {arrays[0].dtype}")
        # NOTE: the communication stream starts after what the current stream has queued (the data's producers)
        self.stream.wait_event(self.cp.cuda.get_current_stream().record())
        call(dt, self.stream.ptr)
        return Request(self.stream.record())

    def allreduce(self, buf, op):
        p = buf.data.ptr
        return self._run(lambda dt, s: self.comm.allReduce(p, p, buf.size, dt, self.ops[op.value], s), buf)

    def bcast(self, buf, root):
        return self._run(lambda dt, s: self.comm.bcast(buf.data.ptr, buf.size, dt, root, s), buf)

    def allgather(self, send, recv):
        return self._run(lambda dt, s: self.comm.allGather(send.data.ptr, recv.data.ptr, send.size, dt, s),
                         send, recv)

    def reduce_scatter(self, send, recv, op):
        return self._run(lambda dt, s: self.comm.reduceScatter(send.data.ptr, recv.data.ptr, recv.size, dt,
                                                               self.ops[op.value], s), send, recv)

    def barrier(self):
        self.cp.cuda.Device().synchronize()
        return self.mpi.barrier()

    def abort(self, code):
        self.mpi.abort(code)

    def close(self):
        self.stream.synchronize()
        self.comm.destroy()
        self.mpi.close()
