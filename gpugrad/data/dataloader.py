"""``DataLoader``: batches of Tensors from a dataset, optionally shuffled, reproducibly, optionally loaded in
worker processes."""
from __future__ import annotations

import collections.abc
import math
import operator

import numpy as np

from .. import random as _random
from ..backend import cuda as _cuda
from ..backend import device_of, to_device, xp_of
from ..tensor import Tensor
from . import _worker
from .dataset import IterableDataset, _fast_arrays, _permutation, _rng
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader", "default_collate", "default_convert"]


class _Fetcher:
    """Loads one batch: ``indices`` (map-style) or the next samples of an iterator (IterableDataset),
    then collates. Picklable, so worker processes get their own copy."""

    def __init__(self, dataset, collate_fn, auto_collation, batch_size, drop_last, is_iterable):
        self.dataset, self.collate_fn, self.auto_collation = dataset, collate_fn, auto_collation
        self.batch_size, self.drop_last, self.is_iterable = batch_size, drop_last, is_iterable

    def __call__(self, arg):
        if self.is_iterable:
            if not self.auto_collation:
                return self.collate_fn(next(arg))
            batch = []
            for x in arg:
                batch.append(x)
                if len(batch) == self.batch_size:
                    break
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                raise StopIteration
            return self.collate_fn(batch)
        if self.auto_collation:
            return self.collate_fn([self.dataset[i] for i in arg])
        return self.collate_fn(self.dataset[arg])


def _pinned(batch):
    """``batch`` with its CPU tensors in pinned memory (tuples, lists, namedtuples and dicts followed)."""
    if isinstance(batch, Tensor):
        return batch.pin_memory() if not batch.is_cuda else batch
    if isinstance(batch, dict):
        return type(batch)({k: _pinned(v) for k, v in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*[_pinned(v) for v in batch])
    if isinstance(batch, (list, tuple)):
        return type(batch)(_pinned(v) for v in batch)
    return batch


class DataLoader:
    """Iterate over ``dataset`` in batches, PyTorch's ``torch.utils.data.DataLoader``.

    Each batch is what ``collate_fn`` makes of a list of samples; by default
    (:func:`default_collate`) a tuple of Tensors for tuple samples. Indices come from ``sampler``
    (default: in order, or a :class:`RandomSampler` with ``shuffle=True``) grouped by ``batch_size``
    and ``drop_last``, or from ``batch_sampler`` (lists of indices). ``batch_size=None`` turns
    auto-batching off (each sample goes through ``collate_fn``, by default :func:`default_convert`).

    ``shuffle=True`` draws a new permutation at the start of every epoch from a
    generator made once from ``seed=`` (a gpugrad extension) or passed as ``generator=``
    (a ``gg.Generator``): epochs differ from each other, and two loaders
    with the same seed produce the same sequence of epochs. Without either, each
    epoch draws from gpugrad's global CPU generator (reproducible after
    ``gg.manual_seed``), as PyTorch does.

    ``num_workers > 0`` loads and collates batches in that many worker processes (start method
    'fork' where available, else 'spawn'; or ``multiprocessing_context``), up to
    ``prefetch_factor`` batches per worker ahead, and yields exactly the batches, in the order,
    that ``num_workers=0`` gives. Each worker is seeded with ``base_seed + worker_id`` (Python's
    ``random``, NumPy's global and gpugrad's default generator), then runs ``worker_init_fn(id)``;
    :func:`get_worker_info` tells a dataset which worker it is in. ``timeout`` (seconds, 0 = none)
    bounds the wait for one batch. Workers load on the CPU and never touch CUDA.
    A ``TensorDataset`` (or a ``Subset`` of one) with the default collate in the main process is
    batched without a per-sample loop: one fancy index per tensor per batch, on the tensors' own
    device. ``pin_memory=True`` copies each batch's CPU tensors into page-locked host memory
    (``Tensor.pin_memory``) when CUDA is usable, and does nothing otherwise (as PyTorch, which also warns).
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True, seed=None):
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                       or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing.let num_workers > 0 "
                             "to enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if not in_order:
            raise NotImplementedError("in_order=False is not supported by gpugrad: batches always come in sampler order")
        self._is_iterable = isinstance(dataset, IterableDataset)
        if self._is_iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, but got "
                                 f"sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, but "
                                 f"got batch_sampler={batch_sampler}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and "
                                 "drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
        self.dataset = dataset
        self.batch_size = None if batch_size is None else int(batch_size)
        self.shuffle = shuffle
        self.drop_last = bool(drop_last)
        self.num_workers = int(num_workers)
        self.prefetch_factor = prefetch_factor
        self.pin_memory = bool(pin_memory)
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.persistent_workers = bool(persistent_workers)
        self.in_order = in_order
        self.generator = _rng(seed, generator)  # NOTE: unused without shuffle, as in PyTorch
        self._default_sampler = sampler is None
        if sampler is None and not self._is_iterable:
            sampler = RandomSampler(dataset, generator=self.generator) if shuffle else SequentialSampler(dataset)
        self.sampler = sampler
        if batch_sampler is None and self.batch_size is not None and not self._is_iterable:
            batch_sampler = BatchSampler(sampler, self.batch_size, self.drop_last)
        self.batch_sampler = batch_sampler
        self._user_collate = collate_fn is not None
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if self._auto_collation else default_convert)
        self._pool = None
        self._epochs = 0

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None or (self._is_iterable and self.batch_size is not None)

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self):
        if self._is_iterable:
            n = len(self.dataset)
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
            return n
        return len(self._index_sampler)

    def _base_seed(self):
        # NOTE: derived from the generator's seed and the epoch, without drawing from it, so that worker
        #       processes leave the shuffle order exactly as num_workers=0 has it.
        g = self.generator
        seed = g.initial_seed() if isinstance(g, _random.Generator) else _random.initial_seed()
        ss = np.random.SeedSequence([int(seed) % (1 << 63), self._epochs])
        return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))

    def __iter__(self):
        it = self._iter()
        if self.pin_memory and _cuda.is_available():
            return (_pinned(b) for b in it)
        return it

    def _iter(self):
        self._epochs += 1
        fetch = _Fetcher(self.dataset, self.collate_fn, self._auto_collation, self.batch_size, self.drop_last,
                         self._is_iterable)
        if self.num_workers > 0:
            return self._iter_workers(fetch)
        if self._is_iterable:
            return self._iter_iterable(fetch)
        fast = (_fast_arrays(self.dataset) if not self._user_collate and self._default_sampler
                and isinstance(self.batch_sampler, BatchSampler) and self.batch_sampler.sampler is self.sampler
                else None)
        if fast is not None:
            n = len(self.dataset)
            order = _permutation(self.generator, n) if self.shuffle else None
            stop = n - n % self.batch_size if self.drop_last else n
            arrays, index_map = fast
            if index_map is not None:
                order = index_map if order is None else index_map[order]
            return self._iter_arrays(arrays, order, stop)
        return (fetch(i) for i in self._index_sampler)

    def _iter_iterable(self, fetch):
        it = iter(self.dataset)
        while True:
            try:
                batch = fetch(it)
            except StopIteration:
                return
            yield batch

    def _iter_workers(self, fetch):
        pool = self._pool
        if pool is None or not pool.workers or not pool.alive():
            pool = _worker._Pool(self, fetch, self._is_iterable)
            if self.persistent_workers:
                self._pool = pool
        tasks = None if self._is_iterable else iter(self._index_sampler)
        return _worker._MultiProcessIter(self, pool, tasks, self._is_iterable, self.persistent_workers)

    def __del__(self):
        pool = getattr(self, "_pool", None)
        if pool is not None and pool.workers:
            try:
                pool.shutdown()
            except Exception:
                pass

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_pool"] = None
        return d

    def _iter_arrays(self, arrays, order, stop):
        bs = self.batch_size
        if order is None:
            # NOTE: in order: contiguous slices, copied so that in-place edits of a batch never touch the dataset.
            for s in range(0, stop, bs):
                yield [Tensor(a[s:s + bs].copy()) for a in arrays]  # NOTE: a list, as default_collate's
            return
        # NOTE: the index array goes to each tensor's device once per epoch; batches slice it there.
        on_device = {}
        idx = []
        for a in arrays:
            dev = device_of(a)
            if dev not in on_device:
                on_device[dev] = to_device(order, dev)
            idx.append(on_device[dev])
        for s in range(0, stop, bs):
            yield [Tensor(a[i[s:s + bs]]) for a, i in zip(arrays, idx)]

    def __repr__(self):
        n = len(self.dataset) if hasattr(self.dataset, "__len__") else "?"
        return (f"DataLoader({type(self.dataset).__name__} of {n}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, num_workers={self.num_workers})")


def _stack(arrays):
    s0 = tuple(arrays[0].shape)
    for i, a in enumerate(arrays):
        if tuple(a.shape) != s0:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(s0)} at entry 0 and "
                               f"{list(a.shape)} at entry {i}")
    return Tensor(xp_of(arrays[0]).stack(arrays))


def default_collate(batch):
    """Merge a list of samples into a batch.

    Tensors and arrays are stacked along a new first dimension (on their device);
    Python ints -> int64, floats -> float64, bools -> bool Tensors; NumPy scalars
    keep their dtype; strings stay a list; tuples/lists/dicts are collated field
    by field (tuples and lists of samples give a list of batches, as PyTorch's; a namedtuple its own type).
    Tensors that require grad are stacked with autograd (``gg.stack``), as PyTorch's ``torch.stack``.
    """
    elem = batch[0]  # NOTE: an empty batch: IndexError, as PyTorch
    if isinstance(elem, Tensor):
        if any(b.requires_grad for b in batch):
            from ..tensor import stack  # noqa: PLC0415
            return stack(batch)
        return _stack([b._data for b in batch])
    if isinstance(elem, np.ndarray) or type(elem).__module__.startswith("cupy"):
        return _stack(batch)
    if isinstance(elem, np.generic):
        return Tensor(np.array(batch, dtype=elem.dtype))
    if isinstance(elem, bool):
        return Tensor(np.array(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return Tensor(np.array([operator.index(b) for b in batch], dtype=np.int64))
    if isinstance(elem, float):
        return Tensor(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {k: default_collate([d[k] for d in batch]) for k in elem}
    if isinstance(elem, (tuple, list)):
        if any(len(b) != len(elem) for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        fields = [default_collate(list(f)) for f in zip(*batch)]
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
            return type(elem)(*fields)
        return fields  # NOTE: a list for tuples too, as PyTorch's
    raise TypeError(f"default_collate: don't know how to batch samples of type {type(elem).__name__}; pass collate_fn=")


def default_convert(data):
    """What the DataLoader does to each sample with ``batch_size=None``, as PyTorch's: NumPy arrays and scalars
    (not strings or objects) become Tensors, containers are converted element by element (a plain tuple gives a
    list), anything else is kept."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, (np.ndarray, np.generic)) and data.dtype.kind not in "SUO":
        return Tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        return type(data)({k: default_convert(v) for k, v in data.items()}) if not isinstance(data, dict) \
            else {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, list):
        return [default_convert(d) for d in data]
    return data
