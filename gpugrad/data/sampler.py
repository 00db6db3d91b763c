"""Samplers (PyTorch's names and semantics): which dataset indices a DataLoader visits, in what order.

Random samplers draw from ``generator=`` (a CPU ``gg.Generator``, or a numpy.random.Generator) at
iteration time, else from gpugrad's default CPU generator (reproducible after ``gg.manual_seed``).
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import random as _random
from .dataset import _rng

__all__ = ["BatchSampler", "RandomSampler", "Sampler", "SequentialSampler", "SubsetRandomSampler",
           "WeightedRandomSampler"]


def _draw(generator):
    return _random.rng(generator, "cpu")


class Sampler:
    """Base class: ``__iter__`` yields dataset indices (or, for batch samplers, lists of them)."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1``."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A new permutation every epoch; ``replacement=True`` draws ``num_samples`` indices uniformly with
    replacement; ``num_samples`` larger than the dataset (without replacement) chains permutations."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={replacement}")
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = _rng(None, generator)
        # NOTE: PyTorch also rejects an empty dataset here; gpugrad's DataLoader(empty, shuffle=True) has always
        #       yielded no batches, so only an explicit num_samples is checked for an empty data_source.
        if (num_samples is not None or len(data_source) > 0) and (
                not isinstance(self.num_samples, int) or isinstance(self.num_samples, bool) or self.num_samples <= 0):
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={self.num_samples}")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n, k = len(self.data_source), self.num_samples
        if k == 0:
            return
        if self.replacement:
            yield from (int(i) for i in _draw(self.generator).integers(0, n, size=k))
            return
        from .dataset import _permutation
        for _ in range(k // n):
            yield from (int(i) for i in _permutation(self.generator, n))
        if k % n:
            yield from (int(i) for i in _permutation(self.generator, n)[:k % n])

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices``, in a new random order every epoch."""

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = _rng(None, generator)

    def __iter__(self):
        from .dataset import _permutation
        for i in _permutation(self.generator, len(self.indices)):
            yield self.indices[int(i)]

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices in ``[0, len(weights))`` drawn with probabilities proportional to ``weights``
    (with replacement by default)."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if not isinstance(num_samples, numbers.Integral) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement}")
        w = np.asarray(weights._data if hasattr(weights, "_data") else weights, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {tuple(w.shape)}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise RuntimeError("invalid multinomial distribution (weights must be finite, non-negative, with a "
                               "positive sum)")
        if not replacement and num_samples > np.count_nonzero(w):
            raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
        self.weights = w
        self.num_samples = int(num_samples)
        self.replacement = replacement
        self.generator = _rng(None, generator)

    def __iter__(self):
        idx = _draw(self.generator).choice(len(self.weights), size=self.num_samples, replace=self.replacement,
                                           p=self.weights / self.weights.sum())
        return iter(int(i) for i in idx)

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of ``batch_size`` indices from ``sampler`` (the last one shorter unless ``drop_last``)."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size
