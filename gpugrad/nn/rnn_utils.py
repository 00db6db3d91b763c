"""``torch.nn.utils.rnn`` (reached as ``gg.nn.utils.rnn``): PackedSequence and the pack / pad helpers, with
PyTorch's arguments, results and error messages.

A PackedSequence holds the steps of a batch of sequences sorted by decreasing length, time-major: the rows of
step t are the first ``batch_sizes[t]`` sequences (``batch_sizes``: int64 on the CPU). ``sorted_indices[j]`` is
the original batch position of sorted sequence j, ``unsorted_indices`` its inverse (None when the input was
sorted already). Every helper is differentiable: packing and padding are ONE gather node each (an index into
the flattened input, or into the data with one padding row appended), so gradients flow to the packed data or
the padded input, and the backward is one scatter-add.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from ..tensor import Tensor, arange, as_tensor, cat, full, int64

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
           "unpad_sequence", "pack_sequence", "unpack_sequence"]


class PackedSequence_(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


def _bind(t, fn):
    return None if t is None else fn(t)


class PackedSequence(PackedSequence_):
    """Holds the data and list of ``batch_sizes`` of a packed sequence (made by pack_padded_sequence /
    pack_sequence, never by hand). ``PackedSequence(data, batch_sizes, sorted_indices)`` and
    ``PackedSequence((data, batch_sizes))`` both work, as in PyTorch."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        elif batch_sizes.device.type != "cpu":
            raise ValueError("batch_sizes should always be on CPU. Instances of PackedSequence should never be created "
                             "manually. They should be instantiated by functions like pack_sequence and "
                             "pack_padded_sequences in nn.utils.rnn. "
                             "https://pytorch.org/docs/stable/nn.html#torch.nn.utils.rnn.pack_sequence")
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def _with(self, data):
        """NOTE: as PyTorch: self when the data did not change; the indices follow the data's device, batch_sizes
        stays on the CPU."""
        if data is self.data:
            return self
        move = lambda t: t.to(data.device)  # noqa: E731
        return type(self)(data, self.batch_sizes, _bind(self.sorted_indices, move), _bind(self.unsorted_indices, move))

    def to(self, *args, **kwargs):
        return self._with(self.data.to(*args, **kwargs))

    def cuda(self, *args, **kwargs):
        return self._with(self.data.cuda(*args, **kwargs))

    def cpu(self):
        return self._with(self.data.cpu())

    def pin_memory(self):
        return type(self)(self.data.pin_memory(), self.batch_sizes, _bind(self.sorted_indices, Tensor.pin_memory),
                          _bind(self.unsorted_indices, Tensor.pin_memory))

    def double(self):
        return self.to(dtype=np.float64)

    def float(self):
        return self.to(dtype=np.float32)

    def half(self):
        return self.to(dtype=np.float16)

    def long(self):
        return self.to(dtype=np.int64)

    def int(self):
        return self.to(dtype=np.int32)

    def short(self):
        return self.to(dtype=np.int16)

    def char(self):
        return self.to(dtype=np.int8)

    def byte(self):
        return self.to(dtype=np.uint8)

    @property
    def is_cuda(self):
        return self.data.is_cuda

    def is_pinned(self):
        return self.data.is_pinned()


def invert_permutation(permutation):
    """The inverse of the 1-D index ``permutation`` (None for None)."""
    if permutation is None:
        return None
    n = permutation.numel()
    return permutation.new_zeros(n).scatter(0, permutation, arange(n, device=permutation.device))


def _np(t):
    return t.detach().cpu().numpy()


def _gather(flat, idx):
    """flat[idx] (rows of flat (M, *feat) picked by the integer array idx) as ONE differentiable index_select."""
    rows = as_tensor(np.ascontiguousarray(idx).reshape(-1), device=flat.device)
    return flat.index_select(0, rows).view(*idx.shape, *flat.shape[1:])


def _steps(bs):
    """(t, j) of every packed row: its step and its position within the step."""
    t = np.repeat(np.arange(len(bs)), bs)
    return t, np.arange(t.size) - np.repeat(np.cumsum(bs) - bs, bs)


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):  # noqa: A002
    """Pack a padded batch (T, B, *) (or (B, T, *) with ``batch_first``) of sequences of the given lengths."""
    lengths = as_tensor(lengths, dtype=int64, device="cpu") if not isinstance(lengths, Tensor) else \
        lengths.to(dtype=int64)
    sorted_indices = None
    if not enforce_sorted:
        # NOTE: a stable descending sort: tied lengths keep their batch order (torch.sort's order of ties is
        # unspecified); padded results and final states do not depend on it
        lengths, sorted_indices = lengths.sort(descending=True, stable=True)
        sorted_indices = sorted_indices.to(input.device)
    if lengths.device.type != "cpu" or lengths.ndim != 1:
        raise RuntimeError(f"'lengths' argument should be a 1D CPU int64 tensor, but got {lengths.ndim}D "
                           f"{lengths.device} Long tensor")
    T, B = (input.shape[1], input.shape[0]) if batch_first else (input.shape[0], input.shape[1])
    if input.numel() == 0:
        raise RuntimeError("Cannot pack empty tensors.")
    L = _np(lengths)
    if L.size != B:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got {L.size} (batch_size={B})")
    if L[-1] <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element in 'lengths' that "
                           "is <= 0")
    if (L[1:] > L[:-1]).any():
        raise RuntimeError("`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You can "
                           "pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to sidestep this "
                           "requirement if you do not need ONNX exportability.")
    if L[0] > T:  # NOTE: PyTorch 2.13 packs fewer rows than batch_sizes claims here (out-of-bounds); we refuse
        raise RuntimeError(f"pack_padded_sequence: a length ({L[0]}) exceeds the padded sequence length ({T})")
    bs = (L[None, :] > np.arange(L[0])[:, None]).sum(1)
    t, j = _steps(bs)
    b = j if sorted_indices is None else _np(sorted_indices)[j]
    data = _gather(input.reshape(T * B, *input.shape[2:]), b * T + t if batch_first else t * B + b)
    return PackedSequence(data, as_tensor(bs.astype(np.int64), device="cpu"), sorted_indices, None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """(padded (T, B, *) or (B, T, *), lengths (B,) int64), in the original batch order: the inverse of packing."""
    bs = _np(sequence.batch_sizes).astype(np.int64)
    T = len(bs)
    if total_length is not None:
        if total_length < T:
            raise ValueError("Expected total_length to be at least the length of the longest sequence in input, but "
                             f"got total_length={total_length} and max sequence length being {T}")
        T = total_length
    data, B = sequence.data, int(bs[0])
    t, j = _steps(bs)
    idx = np.full((T, B), t.size, np.int64)  # NOTE: row N of cat([data, pad]) is the padding row
    idx[t, j] = np.arange(t.size)
    lengths = (bs[None, :] > np.arange(B)[:, None]).sum(1)
    if sequence.unsorted_indices is not None:
        un = _np(sequence.unsorted_indices)
        idx, lengths = idx[:, un], lengths[un]
    if batch_first:
        idx = idx.T
    pad = full((1, *data.shape[1:]), padding_value, dtype=data.dtype, device=data.device)
    return _gather(cat([data, pad]), idx), as_tensor(lengths.astype(np.int64), device="cpu")


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack sequences (L_i, *) into (T, B, *) (or (B, T, *)), padded with ``padding_value`` on ``padding_side``.
    The result has the first sequence's dtype and device (the others are copied into it, broadcasting their
    trailing dimensions, as PyTorch's copy)."""
    if not isinstance(sequences, Iterable):
        raise RuntimeError(f"pad_sequence: Expected iterable for input sequences, but got arg of type: "
                           f"{type(sequences)}")
    sequences = tuple(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    s0 = sequences[0]
    feat, lens = tuple(s0.shape[1:]), np.array([s.shape[0] for s in sequences], np.int64)
    rows = [s.to(device=s0.device, dtype=s0.dtype) for s in sequences]
    rows = [s if tuple(s.shape[1:]) == feat else s.expand(s.shape[0], *feat) for s in rows]
    T, B, N = int(lens.max()), len(rows), int(lens.sum())
    idx = np.full((T, B), N, np.int64)
    for i, (o, n) in enumerate(zip(np.cumsum(lens) - lens, lens)):
        idx[T - n if padding_side == "left" else 0:T if padding_side == "left" else n, i] = np.arange(o, o + n)
    if batch_first:
        idx = idx.T
    pad = full((1, *feat), padding_value, dtype=s0.dtype, device=s0.device)
    return _gather(cat([*rows, pad]), idx)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of the unpadded sequences of a padded batch (copies, as PyTorch's boolean-mask indexing).
    NOTE: PyTorch 2.13 transposes ``padded_sequences`` IN PLACE here when batch_first=False (transpose_, its
    issue #98499, fixes pending upstream); we leave the caller's tensor as it is (the results are the same)."""
    out = []
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    # NOTE: the mask is made on the data's device (PyTorch indexes CUDA data with its CPU mask; gpugrad's
    # indexing wants the index on the data's device), from each length as a Python int
    if padded_sequences.device.type == "cpu" and lengths.device.type != "cpu":
        raise RuntimeError("indices should be either on cpu or on the same device as the indexed tensor (cpu)")
    idx = arange(padded_sequences.shape[1], device=padded_sequences.device)
    for seq, length in zip(padded_sequences, lengths, strict=True):
        out.append(seq[idx < int(length)])
    return out


def pack_sequence(sequences, enforce_sorted=True):
    """pack_padded_sequence(pad_sequence(sequences), their lengths)."""
    lengths = as_tensor([v.size(0) for v in sequences], dtype=int64, device="cpu")
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    """The list of the sequences of a PackedSequence, in the original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
