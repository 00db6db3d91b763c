"""Addition sums as character sequences, generated from a seed (nothing to download).

A sample is the query ``a+b=`` followed by ``digits + 1`` blanks, where the model writes the sum. Each number is
written least-significant digit first and padded with blanks to ``digits`` characters, so the digits that add up
(and the carry between them) come in the order a left-to-right model needs them (e.g. 3 digits, 45 + 7:
``"54 +7  =    "``); the target is the sum's ``digits + 1`` digits, least significant first, zero padded
(``52`` -> ``[2, 5, 0, 0]``). Numbers have 1..digits digits (the count drawn uniformly, then the value).

A fixed 5% of all pairs (a, b), chosen by a hash of the pair, is held out: test sets draw from those pairs only
and training sets never contain them, so the test accuracy is measured on sums never seen in training.
"""
from __future__ import annotations

import numpy as np

__all__ = ["VOCAB", "addition_dataset", "encode", "decode"]

VOCAB = "0123456789+= "
_PLUS, _EQ, _BLANK = 10, 11, 12
_HELD_OUT = 0.05


def _held_out(a, b):
    """A fixed 5% of the pairs (a, b): a multiplicative hash of the pair (NOTE: uint64 arithmetic wraps)."""
    h = (a.astype(np.uint64) * np.uint64(1_000_003) + b.astype(np.uint64)) * np.uint64(0x9E3779B97F4A7C15)
    return (h >> np.uint64(40)) < np.uint64(int(_HELD_OUT * 2**24))


def _numbers(rng, n, digits):
    k = rng.integers(1, digits + 1, n)
    lo = np.where(k == 1, 0, 10 ** (k - 1))
    return rng.integers(lo, 10 ** k)


def _digits_lsd(v, width):
    """(n, width) digits of v, least significant first."""
    return (v[:, None] // 10 ** np.arange(width)) % 10


def _tokens(a, b, digits):
    n = len(a)
    out = np.full((n, 2 * digits + 2 + digits + 1), _BLANK, np.int64)
    for col, v in ((0, a), (digits + 1, b)):
        d = _digits_lsd(v, digits)
        ndig = np.maximum(1, np.floor(np.log10(np.maximum(v, 1))).astype(np.int64) + 1)
        d[np.arange(digits)[None, :] >= ndig[:, None]] = _BLANK  # NOTE: no leading zeros: blanks after the last digit
        out[:, col:col + digits] = d
    out[:, digits] = _PLUS
    out[:, 2 * digits + 1] = _EQ
    return out


def addition_dataset(n, digits=3, split="train", seed=0, device=None):
    """A TensorDataset of ``n`` sums: inputs (n, 3 * digits + 3) int64 tokens of :data:`VOCAB`, targets
    (n, digits + 1) int64 digits of a + b (least significant first). ``split`` "train" excludes the held-out
    pairs, "test" draws only from them; the same (n, digits, split, seed) always gives the same samples."""
    from ..tensor import tensor  # noqa: PLC0415
    from .dataset import TensorDataset  # noqa: PLC0415
    if digits < 1 or digits > 9:
        raise ValueError(f"digits must be between 1 and 9, got {digits}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    rng = np.random.default_rng([seed, digits, split == "test"])
    a, b = np.empty(0, np.int64), np.empty(0, np.int64)
    while len(a) < n:  # NOTE: rejection sampling; the held-out share is 5%, so test draws take ~20 rounds' worth
        m = max(2 * (n - len(a)), 64) * (25 if split == "test" else 1)
        x, y = _numbers(rng, m, digits), _numbers(rng, m, digits)
        keep = _held_out(x, y) == (split == "test")
        a, b = np.concatenate([a, x[keep]])[:n], np.concatenate([b, y[keep]])[:n]
    inputs, targets = _tokens(a, b, digits), _digits_lsd(a + b, digits + 1)
    return TensorDataset(tensor(inputs, device=device), tensor(targets, device=device))


def encode(a, b, digits=3):
    """The input string of the sum a + b (see the module docstring)."""
    return "".join(VOCAB[t] for t in _tokens(np.array([a]), np.array([b]), digits)[0])


def decode(target):
    """The number written by a target row (least-significant digit first)."""
    return int("".join(str(int(d)) for d in reversed(list(target))))
