"""Random numbers: one seed for the CPU generator and, when used, the CUDA one."""
from __future__ import annotations

import numpy as np

from . import backend as _be

_seed = None
_cpu = np.random.default_rng()
_cuda = {}


def manual_seed(seed: int):
    """Seed every generator gpugrad uses (CPU now, each CUDA device on first use)."""
    global _seed, _cpu
    _seed = int(seed)
    _cpu = np.random.default_rng(_seed)
    _cuda.clear()
    return _seed


def initial_seed():
    return _seed


def generator(dev=None):
    """The random generator of a device: a numpy Generator, or a cupy Generator for CUDA."""
    dev = _be.device(dev)
    if dev.type == "cpu":
        return _cpu
    g = _cuda.get(dev.index)
    if g is None:
        cp = dev.xp
        with cp.cuda.Device(dev.index):
            g = cp.random.default_rng(None if _seed is None else _seed + dev.index)
        _cuda[dev.index] = g
    return g
