"""The bundled 8x8 handwritten digits (UCI optdigits test part, CC BY 4.0; see DATA_LICENSE.md)."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .dataset import TensorDataset
from .idx import _image_dataset

__all__ = ["DIGITS_PATH", "load_digits"]

DIGITS_PATH = Path(__file__).with_name("digits.npz")
_SPLITS = ("train", "test", "all")


@functools.lru_cache(maxsize=1)
def _raw():
    """(images uint8 (1797, 8, 8), labels uint8, {split: indices}); read-only, read once."""
    if not DIGITS_PATH.is_file():
        raise FileNotFoundError(f"the bundled digits file {DIGITS_PATH} is missing: the gpugrad installation is incomplete "
                                "(package data not installed); reinstall gpugrad")
    with np.load(DIGITS_PATH, allow_pickle=False) as f:
        images, labels = f["images"], f["labels"]
        idx = {"train": f["train_idx"].astype(np.int64), "test": f["test_idx"].astype(np.int64),
               "all": np.arange(len(labels), dtype=np.int64)}
    for a in (images, labels, *idx.values()):
        a.flags.writeable = False
    return images, labels, idx


def load_digits(split="train", normalize=True, flatten=False, device=None) -> TensorDataset:
    """The 8x8 digits as a TensorDataset ``(images, labels)``.

    ``split``: ``"train"`` (1,437 images), ``"test"`` (360, 36 per class) or ``"all"``
    (1,797, in the original order). The split is fixed in the bundled file and never
    changes. Images are float32 of shape (N, 1, 8, 8) (``(N, 64)`` when ``flatten``),
    in [0, 1] when ``normalize`` (else the raw counts 0..16); labels are int64 in
    0..9. Tensors go to ``device`` (default: the default device). The dataset also
    has ``classes`` (the ten digits).
    """
    if split not in _SPLITS:
        raise ValueError(f"load_digits: split must be one of {_SPLITS}, got {split!r}")
    images, labels, idx = _raw()
    rows = idx[split]
    ds = _image_dataset(images[rows], labels[rows], 16.0, normalize, flatten, device)
    ds.classes = list(range(10))
    return ds
