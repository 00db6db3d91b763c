"""``DataLoader``: batches of Tensors from a dataset, optionally shuffled, reproducibly."""
from __future__ import annotations

import collections.abc
import math
import operator

import numpy as np

from ..backend import device_of, to_device, xp_of
from ..tensor import Tensor
from .dataset import _fast_arrays, _permutation, _rng

__all__ = ["DataLoader", "default_collate"]


class DataLoader:
    """Iterate over ``dataset`` in batches (PyTorch semantics, single process).

    Each batch is what ``collate_fn`` makes of a list of samples; by default
    (:func:`default_collate`) a tuple of Tensors for tuple samples. A
    ``TensorDataset`` (or a ``Subset`` of one) with the default collate is
    batched without a per-sample loop: one fancy index per tensor per batch, on
    the tensors' own device.

    ``shuffle=True`` draws a new permutation at the start of every epoch from a
    generator made once from ``seed=`` (or passed as ``generator=``, a
    ``gg.Generator``): epochs differ from each other, and two loaders
    with the same seed produce the same sequence of epochs. Without either, each
    epoch draws from gpugrad's global CPU generator (reproducible after
    ``gg.manual_seed``), as PyTorch does.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, *, drop_last=False, seed=None, generator=None,
                 collate_fn=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.generator = _rng(seed, generator)  # NOTE: unused without shuffle, as in PyTorch

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = _permutation(self.generator, n) if self.shuffle else None
        stop = n - n % self.batch_size if self.drop_last else n
        fast = _fast_arrays(self.dataset) if self.collate_fn is None else None
        if fast is not None:
            arrays, index_map = fast
            if index_map is not None:
                order = index_map if order is None else index_map[order]
            return self._iter_arrays(arrays, order, stop)
        return self._iter_items(order, n, stop)

    def _iter_arrays(self, arrays, order, stop):
        bs = self.batch_size
        if order is None:
            # NOTE: in order: contiguous slices, copied so that in-place edits of a batch never touch the dataset.
            for s in range(0, stop, bs):
                yield tuple(Tensor(a[s:s + bs].copy()) for a in arrays)
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
            yield tuple(Tensor(a[i[s:s + bs]]) for a, i in zip(arrays, idx))

    def _iter_items(self, order, n, stop):
        collate = self.collate_fn or default_collate
        positions = np.arange(n) if order is None else order
        for s in range(0, stop, self.batch_size):
            yield collate([self.dataset[int(i)] for i in positions[s:s + self.batch_size]])

    def __repr__(self):
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last})")


def _stack(arrays):
    shapes = {tuple(a.shape) for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"default_collate: cannot stack samples of different shapes {sorted(shapes)}; "
                         "pass a collate_fn that pads or keeps them apart")
    return Tensor(xp_of(arrays[0]).stack(arrays))


def default_collate(batch):
    """Merge a list of samples into a batch.

    Tensors and arrays are stacked along a new first dimension (on their device);
    Python ints -> int64, floats -> float64, bools -> bool Tensors; NumPy scalars
    keep their dtype; strings stay a list; tuples/lists/dicts are collated field
    by field (a tuple of samples gives a tuple of batches, a list a list).
    """
    if not batch:
        raise ValueError("default_collate: empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
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
            raise ValueError(f"default_collate: samples have different lengths {sorted({len(b) for b in batch})}")
        fields = [default_collate(list(f)) for f in zip(*batch)]
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
            return type(elem)(*fields)
        return fields if isinstance(elem, list) else tuple(fields)
    raise TypeError(f"default_collate: don't know how to batch samples of type {type(elem).__name__}; pass collate_fn=")
