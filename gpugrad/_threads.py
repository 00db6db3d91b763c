"""Cache-sized blocks of NumPy work, spread over a few threads (the CPU fallbacks' intra-op parallelism).

NumPy's ufunc loops release the GIL, so a long elementwise chain evaluated block by block (each block's
temporaries stay in cache and are reused instead of faulting in fresh multi-megabyte pages) runs on several
cores at once; only the Python glue between the ufunc calls is serialised. ``gg.set_num_threads`` /
``gg.get_num_threads`` control the count as PyTorch's do (default: ``OMP_NUM_THREADS``, else the CPUs this
process may use, at most 8).
A leaf module: NumPy and the standard library only.
"""
from __future__ import annotations

import contextvars
import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["get_num_threads", "set_num_threads", "blocks"]


def _default():
    # NOTE: PyTorch's default: OMP_NUM_THREADS when set (the benchmarks set it to 1), else the usable CPUs
    v = os.environ.get("OMP_NUM_THREADS", "")
    if v.isdigit() and int(v) > 0:
        return int(v)
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # NOTE: macOS and Windows have no sched_getaffinity
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


_n = _default()
_pool = None
_local = threading.local()  # .busy: this thread is running blocks (nested calls then run in order)


def _forget_pool():
    global _pool
    _pool = None


# NOTE: a forked child (DataLoader workers) inherits the pool object but not its threads: it starts its own
if hasattr(os, "register_at_fork"):  # POSIX only
    os.register_at_fork(after_in_child=_forget_pool)


def get_num_threads():
    """The number of threads the CPU fallbacks use for one op (``torch.get_num_threads``)."""
    return _n


def set_num_threads(n):
    """Use ``n`` threads for one op's CPU work from now on (``torch.set_num_threads``; 1 = none).

    NOTE: unlike PyTorch's, this does not reach matrix products: NumPy's BLAS keeps its own pool, sized by
    ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` at start-up."""
    global _n, _pool
    if isinstance(n, bool) or not isinstance(n, int):  # NOTE: PyTorch's errors (RuntimeError, its words)
        raise RuntimeError(f"set_num_threads expects an int, but got {type(n).__name__}")
    if n < 1:
        raise RuntimeError(f"set_num_threads expects a positive integer (got {n})")
    if n != _n and _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    _n = n


def blocks(n, fn, block=1 << 16, parallel_from=1 << 18):
    """Call ``fn(start, stop)`` for consecutive ranges covering ``[0, n)`` of at most ``block`` items each.

    Below ``parallel_from`` items (or with one thread) the calls run in order on this thread; otherwise on
    the pool, each in a copy of the caller's context (NumPy's ``errstate`` lives in a context variable). The
    ranges must be independent (each ``fn`` writes only its own slice). A failing range stops the others from
    starting; its exception is re-raised once the running ones have finished (they may hold the arrays)."""
    starts = range(0, n, block)
    # NOTE: a call from inside a block (a fallback that itself uses blocks) runs in order: waiting on the pool
    # from one of its own threads could deadlock it
    if _n == 1 or n < parallel_from or len(starts) == 1 or getattr(_local, "busy", False):
        for s in starts:
            fn(s, min(s + block, n))
        return
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_n - 1, thread_name_prefix="gpugrad")
    # NOTE: dynamic scheduling: each thread (this one too) takes the next block until none is left, so a thread
    # slowed by other load does less (the blocks write disjoint slices: the order does not change any result)
    todo = iter(starts)
    lock = threading.Lock()

    def run():
        _local.busy = True
        try:
            while True:
                with lock:
                    s = next(todo, None)
                if s is None:
                    return
                fn(s, min(s + block, n))
        except BaseException:
            with lock:  # NOTE: a failed block stops the others from taking more
                for _ in todo:
                    pass
            raise
        finally:
            _local.busy = False

    futs = [_pool.submit(contextvars.copy_context().run, run) for _ in range(min(_n, len(starts)) - 1)]
    err = None
    try:
        run()
    except BaseException as e:  # noqa: BLE001  (re-raised below, after the workers are done with the arrays)
        err = e
    for f in futs:
        try:
            f.result()
        except BaseException as e:  # noqa: BLE001
            err = err or e
    if err is not None:
        raise err
