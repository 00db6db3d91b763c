"""Datasets: the abstract ``Dataset``, ``TensorDataset``, ``Subset`` and ``random_split``."""
from __future__ import annotations

import itertools
import operator

import numpy as np

from .. import random as _random
from ..tensor import Tensor

__all__ = ["ChainDataset", "ConcatDataset", "Dataset", "IterableDataset", "StackDataset", "Subset", "TensorDataset",
           "random_split"]


class Dataset:
    """A map-style dataset: subclasses define ``__getitem__(i)`` and ``__len__()``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is a stream: subclasses define ``__iter__``. With ``num_workers > 0`` every worker
    iterates its own copy; use :func:`gpugrad.data.get_worker_info` in ``__iter__`` to shard the stream
    (otherwise each worker yields every sample, as in PyTorch)."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __getitem__(self, index):
        raise TypeError(f"{type(self).__name__} is an IterableDataset: iterate over it instead of indexing it")

    def __len__(self):
        # NOTE: TypeError (as for any object without a length), so list(loader) still works
        raise TypeError(f"{type(self).__name__} is an IterableDataset without __len__")

    def __add__(self, other):
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """The streams of several IterableDatasets, one after another, chained on the fly (PyTorch semantics)."""

    def __init__(self, datasets):
        self.datasets = datasets

    def _each(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            yield d

    def __iter__(self):
        for d in self._each():
            yield from d

    def __len__(self):
        return sum(len(d) for d in self._each())


class StackDataset(Dataset):
    """Samples of several same-length datasets side by side: ``StackDataset(a, b)[i] == (a[i], b[i])``,
    ``StackDataset(x=a, y=b)[i] == {"x": a[i], "y": b[i]}`` (PyTorch semantics and errors)."""

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("Supported either ``tuple``- (via ``args``) or``dict``- (via ``kwargs``) like "
                             "input/output, but both types are given.")
        if not args and not kwargs:
            raise ValueError("At least one dataset should be passed")
        ds = list(args or kwargs.values())
        self._length = len(ds[0])
        if any(self._length != len(d) for d in ds):
            raise ValueError("Size mismatch between datasets")
        self.datasets = args or kwargs

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __getitems__(self, indices):
        named = self.datasets.items() if isinstance(self.datasets, dict) else enumerate(self.datasets)
        cols = {}
        for k, d in named:
            if callable(getattr(d, "__getitems__", None)):
                items = d.__getitems__(indices)
                if len(items) != len(indices):
                    raise ValueError(f"Nested dataset's output size mismatch. Expected {len(indices)}, got "
                                     f"{len(items)}")
                cols[k] = list(items)
            else:
                cols[k] = [d[i] for i in indices]
        if isinstance(self.datasets, dict):
            return [{k: c[j] for k, c in cols.items()} for j in range(len(indices))]
        return [tuple(c[j] for c in cols.values()) for j in range(len(indices))]

    def __len__(self):
        return self._length


class ConcatDataset(Dataset):
    """The samples of several map-style datasets, one after another (``ds1 + ds2`` makes one)."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        # NOTE: PyTorch's AssertionErrors, raised explicitly (an assert statement would vanish under python -O)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        idx = operator.index(idx)
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise ValueError("absolute value of index should not exceed dataset length")
            idx += n
        if idx >= n:
            raise IndexError(f"index {idx} is out of range for a ConcatDataset of {n} samples")
        k = int(np.searchsorted(self.cumulative_sizes, idx, side="right"))
        return self.datasets[k][idx - (self.cumulative_sizes[k - 1] if k else 0)]


def _as_tensor(t, position):
    if isinstance(t, Tensor):
        return t
    if isinstance(t, np.ndarray) or type(t).__module__.startswith("cupy"):
        return Tensor(t)  # wraps without copying
    raise TypeError(f"TensorDataset: argument {position} is a {type(t).__name__}, expected a Tensor or an array")


class TensorDataset(Dataset):
    """Samples are rows of the given tensors: ``ds[i] == (t0[i], t1[i], ...)``.

    All tensors must have the same size in the first dimension. Numpy/CuPy arrays
    are accepted and wrapped without copying. ``DataLoader`` batches a
    TensorDataset with one fancy index per tensor per batch.
    """

    def __init__(self, *tensors):
        tensors = tuple(_as_tensor(t, i) for i, t in enumerate(tensors))
        for i, t in enumerate(tensors):
            if len(t.shape) == 0:
                raise IndexError(f"TensorDataset: tensor {i} is 0-dimensional; every tensor needs a first (sample) "
                                 "dimension")
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) > 1:
            raise AssertionError(f"Size mismatch between tensors (first dimensions {sizes})")
        self.tensors = tensors

    def __getitem__(self, index):
        # NOTE: as PyTorch's: each tensor indexed as a Tensor (an int, a slice, a list or a Tensor of indices), with
        # autograd for one that requires grad. Otherwise the sample shares the memory but is not a registered view:
        # a pickled view carries its whole base, and DataLoader workers pickle every sample
        return tuple(t[index] if t.requires_grad else Tensor(t[index]._data) for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def __repr__(self):
        shapes = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in self.tensors)
        return f"TensorDataset({len(self)} samples: {shapes})"


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        # NOTE: kept as given (a list stays a list), as PyTorch's; checked where they are used
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


def random_split(dataset, lengths, seed=None, generator=None):
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths.

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1
    (remainders go round-robin to the first parts, as in PyTorch). Reproducible
    with ``seed=`` or ``generator=`` (a ``gg.Generator``), else drawn from
    gpugrad's global generator (``gg.manual_seed``).
    """
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(x, float) for x in lengths) and abs(sum(lengths) - 1) < 1e-9:
        counts = [int(np.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(int(x) != x or x < 0 for x in lengths) or sum(lengths) != n:
        raise ValueError(f"random_split: lengths {lengths} must be non-negative counts summing to the dataset size {n} "
                         "(or fractions summing to 1)")
    perm = _permutation(_rng(seed, generator), n)
    bounds = np.cumsum([0] + [int(x) for x in lengths])
    return [Subset(dataset, perm[a:b].tolist()) for a, b in itertools.pairwise(bounds)]  # NOTE: lists, as PyTorch


def _rng(seed, generator):
    """The generator to draw from: ``generator`` (a CPU gg.Generator, or a numpy.random.Generator), a new
    gg.Generator seeded with ``seed``, else None (= gpugrad's default CPU generator, at use time)."""
    if seed is not None and generator is not None:
        raise ValueError("pass either seed= or generator=, not both")
    if generator is not None:
        if isinstance(generator, _random.Generator):
            if generator.device.type != "cpu":
                raise RuntimeError(f"Expected a 'cpu' device type for generator but found '{generator.device.type}'")
            return generator
        if not isinstance(generator, np.random.Generator):
            raise TypeError(f"generator must be a gg.Generator (or a numpy.random.Generator), got "
                            f"{type(generator).__name__}")
        return generator
    return None if seed is None else _random.Generator("cpu").manual_seed(seed)


def _permutation(rng, n):
    # NOTE: drawn at use time: from the default CPU generator without seed=/generator= (so gg.manual_seed()
    # governs it), and from a gg.Generator's current state (so its manual_seed/set_state take effect).
    return _random.rng(rng, "cpu").permutation(n)


def _fast_arrays(dataset):
    """(arrays, index_map) when ``dataset`` can be batched by fancy indexing, else None.

    ``index_map`` is None or an int64 array mapping loader positions to rows
    (for Subsets, possibly nested, of a TensorDataset).
    """
    index_map = None
    while isinstance(dataset, Subset) and type(dataset).__getitem__ is Subset.__getitem__:
        idx = _index_array(dataset.indices, len(dataset.dataset))
        if idx is None:
            return None
        index_map = idx if index_map is None else idx[index_map]
        dataset = dataset.dataset
    if isinstance(dataset, TensorDataset) and type(dataset).__getitem__ is TensorDataset.__getitem__:
        return [t._data for t in dataset.tensors], index_map
    return None


def _index_array(indices, n):
    """A Subset's indices as an int64 array with negatives wrapped (the fast loader's index map), or None when they
    are not a 1-d sequence of integers (the loader then indexes sample by sample, as PyTorch)."""
    raw = indices._data if isinstance(indices, Tensor) else indices
    idx = raw.get() if hasattr(raw, "get") else np.asarray(raw)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        return None
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = int(idx.max()) if idx.max() >= n else int(idx.min())
        raise IndexError(f"index {bad} is out of bounds for dimension 0 with size {n}")
    return np.where(idx < 0, idx + n, idx).astype(np.int64)
