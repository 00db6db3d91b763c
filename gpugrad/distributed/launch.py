"""``python -m gpugrad train --nproc N``: the launcher and the pieces the training loop uses on each rank.

``relaunch`` runs ``mpiexec -n N python -m gpugrad.distributed.launch <the same command line>``; on each rank this
module's ``main`` runs the gpugrad CLI and, if it fails on any rank, ends the whole job (MPI_Abort) so the other
ranks do not wait forever in a collective. ``Job`` is what ``gpugrad/train.py`` asks: rank, the DDP wrapper, the
per-rank loader, rank-0-only file writes.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

_MARK = "GPUGRAD_NPROC"  # set by relaunch in the ranks' environment


def in_job():
    return _MARK in os.environ or "PMI_SIZE" in os.environ or "OMPI_COMM_WORLD_SIZE" in os.environ


def start(nproc, batch_size, argv):
    """--nproc N outside mpiexec: start N ranks and return their exit status; inside (or N = 1): this rank's Job."""
    if batch_size % nproc:
        raise ValueError(f"--batch-size {batch_size} must be a multiple of --nproc {nproc} (it is the global batch, "
                         "split among the processes)")
    if nproc > 1 and not in_job():
        return relaunch(nproc, argv)
    return Job(batch_size)


def relaunch(nproc, argv):
    """Start ``nproc`` ranks running the gpugrad command ``argv``; returns mpiexec's exit status."""
    here = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(here) if here.exists() else shutil.which("mpiexec")
    if mpiexec is None:
        raise RuntimeError('--nproc needs mpiexec and mpi4py: pip install "gpugrad[mpi]"')
    env = dict(os.environ, **{_MARK: str(nproc)})
    # NOTE: the cores are shared among the ranks: one BLAS pool per rank of cores/nproc threads (unless set)
    threads = str(max(1, (os.cpu_count() or 1) // nproc))
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(k, threads)
    cmd = [mpiexec, "-n", str(nproc), sys.executable, "-m", "gpugrad.distributed.launch", *argv]
    return subprocess.call(cmd, env=env)


class Job:
    """One rank's view of a ``train`` run (a 1-process run when not started by mpiexec: everything is a no-op)."""

    def __init__(self, batch_size):
        from .. import distributed as dist  # noqa: PLC0415
        self.dist = dist
        if in_job() and not dist.is_initialized():
            dist.init_process_group("mpi")
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        self.main = self.rank == 0
        if batch_size % self.world:
            raise ValueError(f"--batch-size {batch_size} must be a multiple of --nproc {self.world} (it is the "
                             "global batch, split among the processes)")
        self.batch = batch_size // self.world
        if not self.main:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (only rank 0 prints)

    def on_main(self, fn):
        """``fn()`` on rank 0 only; every rank gets its result (or raises its exception)."""
        if self.world == 1:
            return fn()
        box = [None]
        if self.main:
            try:
                box = [(True, fn())]
            except Exception as e:  # noqa: BLE001
                box = [(False, e)]
        self.dist.broadcast_object_list(box, src=0)
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def wrap(self, model):
        if self.world == 1:
            return model
        from ..nn.parallel import DistributedDataParallel  # noqa: PLC0415
        return DistributedDataParallel(model)

    def loader(self, dataset, seed):
        from ..data import DataLoader, DistributedSampler  # noqa: PLC0415
        if self.world == 1:
            return DataLoader(dataset, batch_size=self.batch, shuffle=True, seed=seed)
        # NOTE: every rank gets as many batches (the sampler pads): the ranks' all-reduces pair up
        return DataLoader(dataset, batch_size=self.batch,
                          sampler=DistributedSampler(dataset, self.world, self.rank, shuffle=True, seed=seed))

    def sum(self, *values):
        """Sum numbers over the ranks (the epoch's loss, hits and sample count)."""
        if self.world == 1:
            return values
        from ..tensor import tensor  # noqa: PLC0415
        t = tensor([float(v) for v in values], dtype="float64")
        self.dist.all_reduce(t)
        return tuple(type(v)(x) for v, x in zip(values, t.tolist()))


def main(argv=None):
    import runpy  # noqa: PLC0415
    if argv is not None:
        sys.argv[1:] = argv
    # NOTE: runs the CLI as `python -m gpugrad` would (a program, not an import: gpugrad.train imports this module)
    try:
        runpy.run_module("gpugrad", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code
    from .. import distributed as dist  # noqa: PLC0415
    if code not in (0, None) and dist.is_initialized() and dist.get_world_size() > 1:
        sys.stderr.write(f"gpugrad.distributed: rank {dist.get_rank()} exited with status {code}; ending the job\n")
        sys.stderr.flush()
        dist._pg().abort(code if isinstance(code, int) else 1)
    return code


if __name__ == "__main__":
    sys.exit(main())
