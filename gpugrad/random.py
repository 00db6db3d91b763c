"""Random numbers: ``gg.Generator`` (PyTorch's ``torch.Generator``), the default CPU generator and the
per-device CUDA ones, and the seeding functions.

A Generator wraps a NumPy ``Generator`` (PCG64, via ``numpy.random.default_rng(seed)``) or, on a CUDA
device, a CuPy one (XORWOW), made lazily from its seed. ``gg.manual_seed(s)`` seeds the default CPU
generator with ``s`` and each CUDA device ``i`` with ``s + i``.
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np

from . import backend as _be

__all__ = ["Generator", "default_generator", "manual_seed", "seed", "initial_seed", "get_rng_state",
           "set_rng_state", "generator", "rng"]

DEFAULT_SEED = 67280421310721  # NOTE: PyTorch's default seed: an unseeded process draws the same numbers each run
_FORMAT = "gpugrad.rng"


def _check_seed(seed):
    """PyTorch's seed rules: an integer in [-2**63, 2**64); negative seeds wrap around (two's complement)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise RuntimeError(f"manual_seed expected a long, but got {type(seed).__name__}")
    s = int(seed)
    if not -(1 << 63) <= s < (1 << 64):
        raise ValueError("Overflow when unpacking long long")
    return s % (1 << 64)


def _fresh_seed():
    return int.from_bytes(os.urandom(8), "little")


class Generator:
    """A random number generator, as ``torch.Generator``: pass it as ``generator=`` to gg.randn, gg.rand,
    gg.randint, gg.randperm, gg.normal, the gg.nn.init functions and DataLoader/random_split.

    ``manual_seed(seed)`` (returns self), ``seed()`` (a fresh non-deterministic seed, returned),
    ``initial_seed()``, ``get_state()`` (a uint8 Tensor) / ``set_state(state)`` (returns self), ``device``.
    """

    def __init__(self, device="cpu"):
        self._device = _be.device(device)
        self._seed = DEFAULT_SEED
        self._rng = None  # the NumPy / CuPy generator, made on first use

    @property
    def device(self):
        return self._device

    def manual_seed(self, seed):
        self._seed = _check_seed(seed)
        self._rng = None
        return self

    def seed(self):
        self._seed = _fresh_seed()
        self._rng = None
        return self._seed

    def initial_seed(self):
        return self._seed

    def _impl(self):
        """The array-level generator (numpy.random.Generator, or cupy.random.Generator on CUDA)."""
        g = self._rng
        if g is None:
            if self._device.type == "cpu":
                g = np.random.default_rng(self._seed)
            else:
                cp = self._device.xp
                with cp.cuda.Device(self._device.index):
                    g = cp.random.default_rng(self._seed)
            self._rng = g
        return g

    # -- state: a uint8 Tensor holding a JSON header (and, for CUDA, the raw cuRAND states) ----------------
    def get_state(self):
        from .tensor import Tensor  # noqa: PLC0415
        g = self._impl()
        head = {"format": _FORMAT, "version": 1, "device": self._device.type, "seed": self._seed}
        payload = b""
        if self._device.type == "cpu":
            head["state"] = _jsonable(g.bit_generator.state)
        else:
            # NOTE: CuPy's cuRAND bit generators keep their states in a device byte array (``_state``)
            bg = g.bit_generator
            head["bit_generator"] = type(bg).__name__
            payload = bg._state.get().view(np.uint8).tobytes()
            head["nbytes"] = len(payload)
        h = json.dumps(head, separators=(",", ":")).encode()
        return Tensor(np.frombuffer(struct.pack("<I", len(h)) + h + payload, dtype=np.uint8).copy())

    def set_state(self, new_state):
        from .tensor import Tensor  # noqa: PLC0415
        if not isinstance(new_state, Tensor):
            raise TypeError(f"expected a uint8 Tensor (from get_state()), but got {type(new_state).__name__}")
        if new_state.dtype != np.uint8 or new_state.ndim != 1:
            raise TypeError(f"RNG state must be a 1-D uint8 Tensor (from get_state()), got {new_state.dtype} "
                            f"of shape {tuple(new_state.shape)}")
        raw = _be.to_device(new_state._data, "cpu").tobytes()
        try:
            (n,) = struct.unpack("<I", raw[:4])
            head = json.loads(raw[4:4 + n].decode())
            ok = isinstance(head, dict) and head.get("format") == _FORMAT
        except (struct.error, UnicodeDecodeError, ValueError):
            ok = False
        if not ok:
            raise RuntimeError("set_state: the tensor is not a gpugrad RNG state (use the result of get_state())")
        if head["device"] != self._device.type:
            raise RuntimeError(f"set_state: the state is of a {head['device']} generator, this generator is on "
                               f"{self._device}")
        seed = _check_seed(head["seed"])
        if self._device.type == "cpu":
            g = np.random.default_rng(seed)
            state = _from_jsonable(head["state"])
            if state.get("bit_generator") != type(g.bit_generator).__name__:
                raise RuntimeError(f"set_state: the state is of a {state.get('bit_generator')} bit generator, "
                                   f"expected {type(g.bit_generator).__name__}")
            g.bit_generator.state = state
        else:
            payload = raw[4 + n:]
            cp = self._device.xp
            with cp.cuda.Device(self._device.index):
                g = cp.random.default_rng(seed)
                bg = g.bit_generator
                if head.get("bit_generator") != type(bg).__name__ or len(payload) != bg._state.nbytes:
                    raise RuntimeError(f"set_state: the state holds {len(payload)} bytes of a "
                                       f"{head.get('bit_generator')} generator; this device's "
                                       f"{type(bg).__name__} needs {bg._state.nbytes}")
                bg._state[...] = cp.asarray(np.frombuffer(payload, dtype=bg._state.dtype))
        self._seed, self._rng = seed, g
        return self

    def __repr__(self):
        return f"<gpugrad.Generator device='{self._device}' initial_seed={self._seed}>"


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return {"__ndarray__": x.tolist(), "dtype": x.dtype.str}
    if isinstance(x, np.generic):
        return x.item()
    return x


def _from_jsonable(x):
    if isinstance(x, dict):
        if "__ndarray__" in x:
            return np.asarray(x["__ndarray__"], dtype=np.dtype(x["dtype"]))
        return {k: _from_jsonable(v) for k, v in x.items()}
    return x


default_generator = Generator("cpu")
_seed = DEFAULT_SEED   # the seed of the last gg.manual_seed (CUDA device i draws from _seed + i)
_cuda = {}             # device index -> default Generator of that CUDA device


def manual_seed(seed):
    """Seed every generator gpugrad uses (the CPU one now, each CUDA device with ``seed + index``);
    returns the default CPU generator, as ``torch.manual_seed``."""
    global _seed
    _seed = _check_seed(seed)
    default_generator.manual_seed(_seed)
    for i, g in _cuda.items():
        g.manual_seed((_seed + i) % (1 << 64))
    return default_generator


def seed():
    """Seed every generator with a fresh non-deterministic seed and return it (``torch.seed``)."""
    s = _fresh_seed()
    manual_seed(s)
    return s


def initial_seed():
    """The initial seed of the default CPU generator."""
    return default_generator.initial_seed()


def get_rng_state():
    """The state of the default CPU generator, a uint8 Tensor (``torch.get_rng_state``)."""
    return default_generator.get_state()


def set_rng_state(new_state):
    """Restore the default CPU generator from a state returned by :func:`get_rng_state`."""
    default_generator.set_state(new_state)


def cuda_generator(dev=None):
    """The default gg.Generator of a CUDA device (``torch.cuda.default_generators[i]``)."""
    dev = _be.device("cuda" if dev is None else dev)
    if dev.type != "cuda":
        raise ValueError(f"expected a CUDA device, got {dev}")
    idx = dev.index
    g = _cuda.get(idx)
    if g is None:
        g = _cuda[idx] = Generator(f"cuda:{idx}").manual_seed((_seed + idx) % (1 << 64))
    return g


def generator(dev=None):
    """The array-level generator of a device's default Generator (numpy, or cupy for CUDA)."""
    dev = _be.device(dev)
    if dev.type == "cpu":
        return default_generator._impl()
    return cuda_generator(dev)._impl()


def rng(gen, dev):
    """The array-level generator to draw from for a ``generator=`` argument on device ``dev``.

    ``gen`` is a gg.Generator (it must be on ``dev``'s device type), None (the device's default), or,
    for backward compatibility, a numpy/cupy Generator (used as given).
    """
    if gen is None:
        return generator(dev)
    if isinstance(gen, Generator):
        dev = _be.device(dev)
        gd = gen._device
        if gd.type != dev.type:
            raise RuntimeError(f"Expected a '{dev.type}' device type for generator but found '{gd.type}'")
        if gd.index != dev.index:
            raise RuntimeError(f"Expected a generator on {dev} but found one on {gd}")
        return gen._impl()
    if isinstance(gen, np.random.Generator) or type(gen).__module__.startswith("cupy"):
        return gen
    raise TypeError(f"generator must be a gg.Generator, got {type(gen).__name__}")


# -- gg.cuda's random-state functions (torch.cuda's names), attached to backend._Cuda ------------------------
def _cuda_get_rng_state(device="cuda"):
    """The state of a CUDA device's default generator, a uint8 Tensor on the CPU."""
    return cuda_generator(_be._cuda_dev(device)).get_state()


def _cuda_set_rng_state(new_state, device="cuda"):
    """Restore a CUDA device's default generator from :meth:`get_rng_state`."""
    cuda_generator(_be._cuda_dev(device)).set_state(new_state)


def _cuda_manual_seed(seed):
    """Seed the default generator of the current CUDA device (device 0 unless set)."""
    cuda_generator("cuda").manual_seed(seed)


def _cuda_manual_seed_all(seed):
    """Seed the default generator of every CUDA device."""
    for i in range(_be._Cuda.device_count()):
        cuda_generator(f"cuda:{i}").manual_seed(seed)


for _name, _f in (("default_generator", cuda_generator), ("get_rng_state", _cuda_get_rng_state),
                  ("set_rng_state", _cuda_set_rng_state), ("manual_seed", _cuda_manual_seed),
                  ("manual_seed_all", _cuda_manual_seed_all)):
    setattr(_be._Cuda, _name, staticmethod(_f))

