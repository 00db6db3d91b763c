"""IDX files (the MNIST format): ``read_idx``, ``write_idx`` and ``load_mnist``.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values, big-endian,
row-major. Files may be gzip-compressed (detected from their first bytes).
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..backend import device as _device
from ..backend import to_device
from ..tensor import Tensor
from .dataset import TensorDataset

__all__ = ["load_mnist", "read_idx", "write_idx"]

_CODES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODE_OF = {dt.newbyteorder("="): code for code, dt in _CODES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from None
    return raw


def read_idx(path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a native-byte-order NumPy array."""
    path = os.fspath(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file: only {len(raw)} bytes, too short for the 4-byte magic number")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _CODES:
        raise ValueError(f"{path}: not an IDX file: bad magic number 0x{raw[:4].hex()} (expected 0x0000 then a type "
                         f"code in {{{', '.join(f'0x{c:02x}' for c in _CODES)}}} and the number of dimensions)")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, the file has {len(raw)}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _CODES[code]
    need = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - header
    if have < need:
        raise ValueError(f"{path}: truncated IDX file: shape {dims} of {dtype.name} needs {need} data bytes, found {have}")
    if have > need:
        raise ValueError(f"{path}: IDX file has {have - need} unexpected bytes after the {need} data bytes of shape {dims}")
    return np.frombuffer(raw, dtype=dtype, count=need // dtype.itemsize, offset=header).reshape(dims).astype(
        dtype.newbyteorder("="))


def write_idx(path, array) -> None:
    """Write an array as an IDX file (gzipped when ``path`` ends in ``.gz``)."""
    path = os.fspath(path)
    a = np.asarray(array)
    dt = a.dtype.newbyteorder("=")
    if dt not in _CODE_OF:
        raise TypeError(f"IDX cannot store dtype {a.dtype}; supported: uint8, int8, int16, int32, float32, float64")
    if a.ndim == 0 or a.ndim > 255:
        raise ValueError(f"IDX stores arrays of 1 to 255 dimensions, got {a.ndim}")
    code = _CODE_OF[dt]
    body = struct.pack(f">HBB{a.ndim}I", 0, code, a.ndim, *a.shape) + np.ascontiguousarray(a, _CODES[code]).tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(body)


def _find(root, kind, prefix):
    names = [f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte",
             f"{prefix}-{kind}.idx{3 if kind == 'images' else 1}-ubyte"]
    names += [n + ".gz" for n in names]
    dirs = [root, root / "raw", root / "MNIST" / "raw"]
    for d in dirs:
        for n in names:
            if (d / n).is_file():
                return d / n
    raise FileNotFoundError(f"load_mnist: no {'training' if prefix == 'train' else 'test'} {kind} file found in {root}: "
                            f"looked for {', '.join(names)} in {', '.join(str(d) for d in dirs)}")


def load_mnist(root, train=True, normalize=True, flatten=False, device=None) -> TensorDataset:
    """MNIST-format IDX files in folder ``root`` as a TensorDataset (images, labels).

    Reads ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (or ``t10k-*`` when
    ``train=False``), plain or ``.gz``, from ``root``, ``root/raw`` or ``root/MNIST/raw``;
    works for any same-format set (Fashion-MNIST, KMNIST). Images become float32 of
    shape (N, 1, H, W) (``(N, H*W)`` when ``flatten``), scaled to [0, 1] when
    ``normalize`` (else 0..255); labels int64. Tensors go to ``device`` (default: the
    default device).
    """
    root = Path(root)
    prefix = "train" if train else "t10k"
    img_path, lab_path = _find(root, "images", prefix), _find(root, "labels", prefix)
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{img_path}: expected uint8 images of shape (N, H, W) (magic 0x00000803), "
                         f"got {images.dtype} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{lab_path}: expected uint8 labels of shape (N,) (magic 0x00000801), "
                         f"got {labels.dtype} of shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{img_path} holds {len(images)} images but {lab_path} holds {len(labels)} labels")
    return _image_dataset(images, labels, 255.0, normalize, flatten, device)


def _image_dataset(images, labels, scale, normalize, flatten, device):
    """uint8 (N, H, W) images and labels -> TensorDataset of float32 images and int64 labels."""
    x = images.astype(np.float32)
    if normalize:
        x /= np.float32(scale)
    x = x.reshape(len(x), -1) if flatten else x[:, None]
    dev = _device(device)
    return TensorDataset(Tensor(to_device(x, dev)), Tensor(to_device(labels.astype(np.int64), dev)))
