"""Rebuild ``digits.npz`` (the bundled 8x8 digits) from the scikit-learn wheel's CSV.

Not imported by gpugrad; kept so the bundled file can be regenerated and checked::

    pip download --no-deps --only-binary=:all: scikit-learn -d /tmp/skl
    python -m gpugrad.data._make_digits /tmp/skl/scikit_learn-*.whl

The split is fixed once and stored in the file: 36 test images per class (360 in
all) drawn by a seeded permutation, the remaining 1,437 for training. Rebuilding
with the same source and seed gives byte-identical arrays.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

SPLIT_SEED = 20240607
TEST_PER_CLASS = 36
CSV_MEMBER = "sklearn/datasets/data/digits.csv.gz"


def build(wheel: str, out: Path) -> None:
    raw = zipfile.ZipFile(wheel).read(CSV_MEMBER)
    table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",")
    assert table.shape == (1797, 65) and table.min() == 0 and table[:, :64].max() == 16
    table = table.astype(np.uint8)
    images, labels = table[:, :64].reshape(-1, 8, 8), table[:, 64]
    rng = np.random.default_rng(SPLIT_SEED)
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:TEST_PER_CLASS] for c in range(10)])
    test = np.sort(test)
    train = np.setdiff1d(np.arange(len(labels)), test)
    np.savez_compressed(
        out,
        images=images,
        labels=labels,
        train_idx=train.astype(np.uint16),
        test_idx=test.astype(np.uint16),
        # NOTE: a unicode ('<U') array, so the file still loads with allow_pickle=False.
        source_sha256=np.array(hashlib.sha256(raw).hexdigest()),
    )
    print(f"wrote {out} ({out.stat().st_size} bytes): {len(train)} train / {len(test)} test")


if __name__ == "__main__":
    build(sys.argv[1], Path(__file__).with_name("digits.npz"))
