"""``DistributedSampler``: each rank of a data-parallel job visits its own share of the dataset."""
from __future__ import annotations

import math

import numpy as np

from .sampler import Sampler

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler):
    """PyTorch's index assignment: the (shuffled, seeded by ``seed + epoch``, so equal on every rank) index
    list is padded by repeating its start to a multiple of ``num_replicas`` (or cut to one with ``drop_last``)
    and rank r takes positions ``r, r + num_replicas, ...``. Call ``set_epoch`` before each epoch.

    NOTE: the permutation comes from NumPy's PCG64 seeded with ``seed + epoch``, not torch.randperm, so the
    order differs from PyTorch's; the assignment rule is the same."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed as dist  # noqa: PLC0415
            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                                   "gg.distributed.init_process_group() first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if not 0 <= rank < num_replicas:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, seed, drop_last, 0
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        n = len(self.dataset)
        idx = np.random.default_rng(self.seed + self.epoch).permutation(n) if self.shuffle else np.arange(n)
        if self.drop_last:
            idx = idx[:self.total_size]
        elif self.total_size > n:
            idx = np.resize(idx, self.total_size)  # NOTE: pads by repeating from the start (cyclically)
        return iter(idx[self.rank:self.total_size:self.num_replicas].tolist())

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """The epoch seeds the shuffle: call it before every epoch, or each epoch repeats the first's order."""
        self.epoch = epoch
