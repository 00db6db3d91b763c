"""gg.nn.utils.rnn (PackedSequence, pack/pad helpers) and PackedSequence input to RNN/LSTM/GRU: torch-free checks
of layouts, errors and gradients, and comparisons with torch (float64, values and gradients) when it is there."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as gg

R = gg.nn.utils.rnn
RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.standard_normal(shape)


# -- torch-free ----------------------------------------------------------------------------------------------------
def test_pack_layout_and_roundtrip():
    x = gg.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)  # (T, B), no feature dims
    pk = R.pack_padded_sequence(x, [4, 2, 1])
    assert isinstance(pk, tuple) and pk._fields == ("data", "batch_sizes", "sorted_indices", "unsorted_indices")
    assert pk.data.tolist() == [0, 1, 2, 3, 4, 6, 9] and pk.batch_sizes.tolist() == [3, 2, 1, 1]
    assert pk.batch_sizes.dtype == gg.int64 and pk.batch_sizes.device.type == "cpu" and pk.sorted_indices is None
    pad, lengths = R.pad_packed_sequence(pk, padding_value=-1.0, total_length=5)
    assert lengths.tolist() == [4, 2, 1] and lengths.dtype == gg.int64 and pad.shape == (5, 3)
    assert pad.tolist()[2] == [6, -1, -1] and pad.tolist()[4] == [-1, -1, -1]
    pk.data.sum().backward()
    assert x.grad.tolist() == [[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 0, 0]]


def test_unsorted_pack_and_sequences():
    a, b, c = gg.tensor([1, 2]), gg.tensor([3]), gg.tensor([4, 5, 6])
    pk = R.pack_sequence([a, b, c], enforce_sorted=False)
    assert pk.data.tolist() == [4, 1, 3, 5, 2, 6] and pk.batch_sizes.tolist() == [3, 2, 1]
    assert pk.sorted_indices.tolist() == [2, 0, 1] and pk.unsorted_indices.tolist() == [1, 2, 0]
    pad, lengths = R.pad_packed_sequence(pk, batch_first=True)
    assert pad.tolist() == [[1, 2, 0], [3, 0, 0], [4, 5, 6]] and lengths.tolist() == [2, 1, 3]
    assert [s.tolist() for s in R.unpack_sequence(pk)] == [[1, 2], [3], [4, 5, 6]]
    left = R.pad_sequence([a, b, c], batch_first=True, padding_value=9, padding_side="left")
    assert left.tolist() == [[9, 1, 2], [9, 9, 3], [4, 5, 6]]
    padded = R.pad_sequence([a, b, c])
    seqs = R.unpad_sequence(padded, gg.tensor([2, 1, 3]))
    assert padded.shape == (3, 3) and [s.tolist() for s in seqs] == [[1, 2], [3], [4, 5, 6]]
    assert R.invert_permutation(gg.tensor([2, 0, 1])).tolist() == [1, 2, 0] and R.invert_permutation(None) is None


def test_pad_sequence_grad_and_dtype():
    a, b = gg.tensor(_x(3, 2), requires_grad=True), gg.tensor(_x(1, 2), requires_grad=True)
    out = R.pad_sequence([a, b], batch_first=True, padding_value=7.0)
    assert out.shape == (2, 3, 2) and out[1, 1:].tolist() == [[7, 7], [7, 7]]
    (out * gg.arange(1.0, 7.0).reshape(1, 3, 2)).sum().backward()
    assert b.grad.tolist() == [[1, 2]] and a.grad.tolist() == [[1, 2], [3, 4], [5, 6]]
    ints = R.pad_sequence([gg.tensor([1, 2]), gg.tensor([3.5])], padding_value=2.5)
    assert ints.dtype == gg.int64 and ints.tolist() == [[1, 3], [2, 2]]  # NOTE: the first sequence's dtype


@pytest.mark.parametrize("call, err, msg", [
    (lambda x: R.pack_padded_sequence(x, [2, 3, 1]), RuntimeError, "must be sorted in decreasing order"),
    (lambda x: R.pack_padded_sequence(x, [3, 0, 0]), RuntimeError, "has to be greater than 0"),
    (lambda x: R.pack_padded_sequence(x, [2, 0, 1], enforce_sorted=False), RuntimeError, "has to be greater than 0"),
    (lambda x: R.pack_padded_sequence(x, [3, 2]), RuntimeError, r"got 2 \(batch_size=3\)"),
    (lambda x: R.pack_padded_sequence(x, [5, 2, 1]), RuntimeError, "exceeds the padded sequence length"),
    (lambda x: R.pack_padded_sequence(x, gg.tensor([[3, 2, 1]])), RuntimeError, "1D CPU int64 tensor, but got 2D"),
    (lambda x: R.pack_padded_sequence(x[:, :0], []), RuntimeError, "Cannot pack empty tensors."),
    (lambda x: R.pad_packed_sequence(R.pack_padded_sequence(x, [3, 2, 1]), total_length=2), ValueError,
     "total_length=2 and max sequence length being 3"),
    (lambda x: R.pad_sequence([]), RuntimeError, "received an empty list of sequences"),
    (lambda x: R.pad_sequence(5), RuntimeError, "Expected iterable"),
    (lambda x: R.pad_sequence([x], padding_side="up"), RuntimeError, "one of left or right, but got up."),
    (lambda x: R.PackedSequence(x), AssertionError, "list or tuple of length 2"),
])
def test_errors(call, err, msg):
    with pytest.raises(err, match=msg):
        call(gg.tensor(_x(4, 3, 2)))


def test_packed_sequence_methods():
    pk = R.pack_padded_sequence(gg.tensor(_x(3, 2, 2), dtype=gg.float32), [3, 1], enforce_sorted=False)
    assert pk.to(gg.float32) is pk and pk.float() is pk
    d = pk.double()
    assert d.data.dtype == gg.float64 and d.batch_sizes is pk.batch_sizes and d.sorted_indices.tolist() == [0, 1]
    assert pk.long().data.dtype == gg.int64 and not pk.is_cuda
    assert R.PackedSequence((pk.data, pk.batch_sizes)).unsorted_indices is None
    assert R.PackedSequence(pk.data, pk.batch_sizes, gg.tensor([1, 0])).unsorted_indices.tolist() == [1, 0]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_packed_rnn_matches_padded_per_sequence(kind):
    """Each sequence's output and final state equal the unpacked layer run on that sequence alone."""
    lengths = [2, 4, 1, 4]
    m = getattr(gg.nn, kind)(3, 4, num_layers=2, bidirectional=True, dtype=gg.float64).requires_grad_(False)
    seqs = [gg.tensor(_x(n, 3)) for n in lengths]
    out, h = m(R.pack_sequence(seqs, enforce_sorted=False))
    h = h[0] if kind == "LSTM" else h
    pad, got = R.pad_packed_sequence(out)
    assert got.tolist() == lengths and isinstance(out, R.PackedSequence)
    for i, s in enumerate(seqs):
        o1, h1 = m(s)
        h1 = h1[0] if kind == "LSTM" else h1
        np.testing.assert_allclose(pad[:lengths[i], i].numpy(), o1.numpy(), atol=1e-12)
        np.testing.assert_allclose(h[:, i].numpy(), h1.numpy(), atol=1e-12)
        assert not pad[lengths[i]:, i].numpy().any()


def test_packed_rnn_errors():
    m = gg.nn.GRU(2, 3)
    pk = R.pack_sequence([gg.tensor(_x(3, 2), dtype=gg.float32), gg.tensor(_x(1, 2), dtype=gg.float32)])
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 2, 3\), got \[1, 3, 3\]"):
        m(pk, gg.zeros(1, 3, 3))
    with pytest.raises(RuntimeError, match="input.size"):
        gg.nn.GRU(3, 3)(pk)
    with pytest.raises(ValueError, match="does not match weight dtype"):
        m(pk.double())


# -- against torch -------------------------------------------------------------------------------------------------
def _both(fn, *arrays, grads=True):
    """fn(lib, R, *tensors) with torch and gpugrad; returns ([outputs], [input grads]) for each as numpy."""
    torch = pytest.importorskip("torch")
    res = []
    for lib, RR in ((torch, torch.nn.utils.rnn), (gg, R)):
        ts = [lib.tensor(a, requires_grad=grads) for a in arrays]
        outs = fn(lib, RR, *ts)
        if grads:
            sum(((o.double() if o.dtype != ts[0].dtype else o) * (1.0 + i)).sum() for i, o in enumerate(outs)
                if o.dtype == ts[0].dtype).backward()
        res.append([np.asarray(o.detach().numpy()) for o in outs] + [t.grad.numpy() for t in ts if grads])
    for a, b in zip(*res):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(b, a, atol=1e-12)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths, enforce", [([5, 3, 3, 1], True), ([2, 5, 1, 3], False)])
def test_pack_pad_vs_torch(batch_first, lengths, enforce):
    x = _x(*((4, 5) if batch_first else (5, 4)), 2)

    def fn(lib, RR, t):
        pk = RR.pack_padded_sequence(t, lib.tensor(lengths), batch_first=batch_first, enforce_sorted=enforce)
        pad, ln = RR.pad_packed_sequence(pk, batch_first=not batch_first, padding_value=-2.0, total_length=6)
        return [pk.data * pad.sum(), pad, pk.batch_sizes, ln] + ([] if enforce else [pk.sorted_indices])
    _both(fn, x)


@pytest.mark.parametrize("side", ["right", "left"])
def test_sequences_vs_torch(side):
    def fn(lib, RR, a, b, c):
        pad = RR.pad_sequence([a, b, c], batch_first=True, padding_value=0.5, padding_side=side)
        pk = RR.pack_sequence([a, b, c], enforce_sorted=False)
        un = RR.unpack_sequence(pk)
        return [pad, pk.data, *un, *RR.unpad_sequence(RR.pad_sequence([c, a]), lib.tensor([1, 3]))]
    _both(fn, _x(3, 2), _x(4, 2), _x(1, 2))


@pytest.mark.parametrize("kind, layers, bidir, proj", [
    ("RNN", 1, False, 0), ("RNN", 2, True, 0), ("LSTM", 1, True, 0), ("LSTM", 2, True, 0), ("LSTM", 2, True, 2),
    ("GRU", 1, False, 0), ("GRU", 2, True, 0)])
@pytest.mark.parametrize("enforce", [True, False])
def test_packed_rnn_vs_torch(kind, layers, bidir, proj, enforce):
    torch = pytest.importorskip("torch")
    lengths = [5, 3, 3, 1] if enforce else [2, 5, 1, 3]
    kw = dict(num_layers=layers, bidirectional=bidir, **({"proj_size": proj} if proj else {}))
    tm = getattr(torch.nn, kind)(3, 4, dtype=torch.float64, **kw)
    gm = getattr(gg.nn, kind)(3, 4, dtype=gg.float64, **kw)
    gm.load_state_dict({k: gg.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    D, S = 2 if bidir else 1, proj or 4
    x, h0, c0 = _x(4, 5, 3), _x(layers * D, 4, S), _x(layers * D, 4, 4)
    for with_hx in (False, True):
        res = []
        for lib, m in ((torch, tm), (gg, gm)):
            m.zero_grad()
            ts = [lib.tensor(a, requires_grad=True) for a in (x, h0, c0)]
            pk = lib.nn.utils.rnn.pack_padded_sequence(ts[0], lengths, batch_first=True, enforce_sorted=enforce)
            hx = ((ts[1], ts[2]) if kind == "LSTM" else ts[1]) if with_hx else None
            out, h = m(pk, hx)
            hs = list(h) if kind == "LSTM" else [h]
            pad, _ = lib.nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
            ((pad ** 2).sum() + sum((q * (i + 1.5)).sum() for i, q in enumerate(hs)) + out.data.sum()).backward()
            grads = [t.grad for t in ts[:(3 if kind == "LSTM" else 2) if with_hx else 1]]
            res.append([r.detach().numpy() for r in [out.data, pad, *hs, *grads, *(p.grad for p in m.parameters())]])
        for a, b in zip(*res):
            np.testing.assert_allclose(b, a, atol=1e-10)


def test_packed_dropout_between_layers():
    gg.manual_seed(0)
    m = gg.nn.LSTM(2, 3, num_layers=2, dropout=0.5, dtype=gg.float64)
    pk = R.pack_padded_sequence(gg.tensor(_x(4, 3, 2)), gg.tensor([4, 2, 1], dtype=gg.int32))
    train = m(pk)[0].data
    m.eval()
    ev, (h, c) = m(pk)
    assert train.shape == ev.data.shape == (7, 3) and not np.allclose(train.detach().numpy(), ev.data.detach().numpy())
    m.dropout = 0.0
    np.testing.assert_array_equal(m(pk)[0].data.detach().numpy(), ev.data.detach().numpy())
    assert h.shape == c.shape == (2, 3, 3)
