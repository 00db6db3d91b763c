"""DataLoader worker processes: each loads and collates whole batches; the main process hands out
index lists and puts results back in sampler order.

Workers never touch CUDA: the default device is forced to the CPU in them, and nothing here imports
CuPy (samples are loaded as NumPy-backed Tensors, as PyTorch's workers load CPU tensors).
"""
from __future__ import annotations

import os
import queue
import random
import sys
import time
import traceback

__all__ = ["WorkerInfo", "get_worker_info"]

_worker_info = None


class WorkerInfo:
    """What :func:`get_worker_info` returns in a worker: ``id``, ``num_workers``, ``seed``, ``dataset``
    (the worker's own copy)."""

    def __init__(self, id, num_workers, seed, dataset):
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __repr__(self):
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed}, dataset={self.dataset!r})"


def get_worker_info():
    """In a DataLoader worker process: its :class:`WorkerInfo`; in the main process: None."""
    return _worker_info


class _IterableEnd:
    """Sent by a worker whose IterableDataset iterator is exhausted."""


class _Error:
    def __init__(self, worker_id, exc):
        self.exc_type = type(exc)
        self.msg = (f"Caught {type(exc).__name__} in DataLoader worker process {worker_id}.\nOriginal "
                    + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))

    def reraise(self):
        try:
            err = self.exc_type(self.msg)
        except Exception:
            err = RuntimeError(self.msg)
        raise err


def _seed_everything(seed):
    import numpy as np
    from .. import random as gg_random
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    gg_random.manual_seed(seed)


def _loop(fetch, dataset, is_iterable, index_queue, result_queue, worker_id, num_workers, seed, worker_init_fn):
    global _worker_info
    try:
        from .. import backend
        backend.set_default_device("cpu")
        _seed_everything(seed)
        _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
    except Exception as e:  # NOTE: reported for the first task this worker gets
        init_error = _Error(worker_id, e)
    else:
        init_error = None
    it = None
    while True:
        try:
            msg = index_queue.get(timeout=5.0)
        except queue.Empty:
            if os.getppid() == 1:  # NOTE: orphaned (the main process died): exit instead of waiting forever
                return
            continue
        if msg is None:
            return
        epoch, idx, indices = msg
        if init_error is not None:
            result_queue.put((epoch, idx, init_error))
            continue
        try:
            if is_iterable:
                if indices == "reset" or it is None:
                    it = iter(dataset)
                    if indices == "reset":
                        continue
                data = fetch(it)
            else:
                data = fetch(indices)
        except StopIteration:
            data = _IterableEnd()
        except Exception as e:
            data = _Error(worker_id, e)
        result_queue.put((epoch, idx, data))


def _context(method):
    import multiprocessing as mp
    if method is not None:
        return mp.get_context(method) if isinstance(method, str) else method
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() and sys.platform != "darwin" else "spawn")


class _Pool:
    """The worker processes of one DataLoader (kept across epochs with persistent_workers)."""

    def __init__(self, loader, fetch, is_iterable):
        ctx = _context(loader.multiprocessing_context)
        n = loader.num_workers
        self.result_queue = ctx.Queue()
        self.index_queues, self.workers = [], []
        base_seed = loader._base_seed()
        for w in range(n):
            q = ctx.Queue()
            p = ctx.Process(target=_loop, args=(fetch, loader.dataset, is_iterable, q, self.result_queue, w, n,
                                                base_seed + w, loader.worker_init_fn), daemon=True)
            p.start()
            self.index_queues.append(q)
            self.workers.append(p)
        self.epoch = 0

    def alive(self):
        return all(p.is_alive() for p in self.workers)

    def get(self, timeout):
        """The next (epoch, idx, data) from any worker; RuntimeError on a dead worker or a timeout."""
        start = time.monotonic()
        while True:
            wait = 0.1 if not timeout else max(0.0, min(0.1, timeout - (time.monotonic() - start)))
            try:
                return self.result_queue.get(timeout=wait)
            except queue.Empty:
                dead = [str(p.pid) for p in self.workers if not p.is_alive()]
                if dead:
                    self.shutdown()
                    raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(dead)}) exited unexpectedly") from None
                if timeout and time.monotonic() - start >= timeout:
                    raise RuntimeError(f"DataLoader timed out after {timeout} seconds") from None

    def shutdown(self):
        for q in self.index_queues:
            try:
                q.put(None)
            except Exception:
                pass
        for p in self.workers:
            p.join(timeout=1.0)
            if p.is_alive():
                p.terminate()
                p.join(timeout=1.0)
        for q in [*self.index_queues, self.result_queue]:
            q.cancel_join_thread()
            q.close()
        self.workers = []


class _MultiProcessIter:
    def __init__(self, loader, pool, tasks, is_iterable, persistent):
        self.loader, self.pool, self.is_iterable, self.persistent = loader, pool, is_iterable, persistent
        pool.epoch += 1
        self.epoch = pool.epoch
        self.tasks = tasks
        self.n = len(pool.workers)
        self.active = [True] * self.n
        self.next_worker = 0
        self.sent = self.rcvd = 0
        self.buffer = {}
        self.owner = {}
        self.done = False
        if is_iterable:
            for q in pool.index_queues:
                q.put((self.epoch, -1, "reset"))
        for _ in range(loader.prefetch_factor * self.n):
            self._send()

    def _send(self):
        if self.done or not any(self.active):
            return
        if self.is_iterable:
            task = None
        else:
            try:
                task = next(self.tasks)
            except StopIteration:
                self.done = True
                return
        for _ in range(self.n):
            w = self.next_worker
            self.next_worker = (w + 1) % self.n
            if self.active[w]:
                break
        self.pool.index_queues[w].put((self.epoch, self.sent, task))
        self.owner[self.sent] = w
        self.sent += 1

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            if self.rcvd >= self.sent:
                self._finish()
                raise StopIteration
            if self.rcvd in self.buffer:
                data = self.buffer.pop(self.rcvd)
                w = self.owner.pop(self.rcvd)
                self.rcvd += 1
                if isinstance(data, _IterableEnd):
                    self.active[w] = False
                self._send()
                if isinstance(data, _IterableEnd):
                    continue
                if isinstance(data, _Error):
                    self._finish()
                    data.reraise()
                return data
            epoch, idx, data = self.pool.get(self.loader.timeout)
            if epoch == self.epoch:
                self.buffer[idx] = data

    def _finish(self):
        self.done = True
        if not self.persistent and self.pool.workers:
            self.pool.shutdown()

    def __del__(self):
        try:
            if not self.persistent and self.pool.workers:
                self.pool.shutdown()
        except Exception:
            pass
