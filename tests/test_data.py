"""gg.data: the bundled digits, TensorDataset, DataLoader, Subset/random_split, IDX files and load_mnist."""
import gzip
import hashlib
import struct

import numpy as np
import pytest

from gpugrad import backend
from gpugrad import random as gg_random
from gpugrad.data import (
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    load_digits,
    load_mnist,
    random_split,
    read_idx,
    write_idx,
)
from gpugrad.data.digits import DIGITS_PATH
from gpugrad.tensor import Tensor

ALL_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # per class, 1,797 in all


# ----------------------------------------------------------------------------------------- digits

def test_digits_file_is_small_plain_and_unchanged():
    assert DIGITS_PATH.stat().st_size < 60_000
    with np.load(DIGITS_PATH, allow_pickle=False) as f:
        assert sorted(f.files) == ["images", "labels", "source_sha256", "test_idx", "train_idx"]
        images, labels, tr, te = f["images"], f["labels"], f["train_idx"], f["test_idx"]
        assert str(f["source_sha256"]) == "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
    assert images.dtype == np.uint8 and images.shape == (1797, 8, 8)
    assert labels.dtype == np.uint8 and labels.shape == (1797,)
    assert hashlib.sha256(images.tobytes()).hexdigest() == "8f26b2bd9d135c256808f68f14fdabddde6d9c7f869ae419704b051f0f14b3b3"
    assert hashlib.sha256(labels.tobytes()).hexdigest() == "8ba4f891220f5e4c9c819638d1602d74b83618f167043c6da52a2a247841ddf0"
    assert int(images.sum(dtype=np.int64)) == 561718
    # the split is fixed: a hash of the test indices and a few known entries
    assert hashlib.sha256(te.astype("<i8").tobytes()).hexdigest() == \
        "0f7792f5829817b5bf88656226619f315bc1bb4a0bc4bd595c283d2e7c66866b"
    assert te[:10].tolist() == [4, 7, 8, 10, 25, 30, 35, 39, 43, 46]
    assert tr[:10].tolist() == [0, 1, 2, 3, 5, 6, 9, 11, 12, 13]
    assert len(np.intersect1d(tr, te)) == 0
    assert np.array_equal(np.sort(np.concatenate([tr, te])), np.arange(1797))


@pytest.mark.parametrize("split,n", [("train", 1437), ("test", 360), ("all", 1797)])
def test_digits_shapes_dtypes_range(split, n):
    ds = load_digits(split)
    x, y = ds.tensors
    assert len(ds) == n and x.shape == (n, 1, 8, 8) and y.shape == (n,)
    assert x.dtype == np.float32 and y.dtype == np.int64 and str(x.device) == "cpu"
    assert float(x._data.min()) == 0.0 and float(x._data.max()) == 1.0
    assert np.array_equal(x._data * 16, np.round(x._data * 16))  # exactly k/16
    assert ds.classes == list(range(10))
    flat = load_digits(split, flatten=True).tensors[0]
    assert flat.shape == (n, 64) and np.array_equal(flat._data, x._data.reshape(n, 64))
    raw = load_digits(split, normalize=False).tensors[0]
    assert raw.dtype == np.float32 and raw._data.max() == 16.0 and np.array_equal(raw._data / 16, x._data)


def test_digits_class_balance_and_split_consistency():
    counts = {s: np.bincount(load_digits(s).tensors[1]._data, minlength=10).tolist() for s in ("train", "test", "all")}
    assert counts["all"] == ALL_COUNTS
    assert counts["test"] == [36] * 10
    assert counts["train"] == [c - 36 for c in ALL_COUNTS]
    with np.load(DIGITS_PATH) as f:
        te = f["test_idx"].astype(np.int64)
    xa, ya = load_digits("all").tensors
    xt, yt = load_digits("test").tensors
    assert np.array_equal(xt._data, xa._data[te]) and np.array_equal(yt._data, ya._data[te])
    assert ya._data[:20].tolist() == list(range(10)) * 2
    assert (xa._data[0, 0, 0] * 16).tolist() == [0, 0, 5, 13, 9, 1, 0, 0]  # first row of the first image (a zero)


def test_digits_returns_fresh_copies_and_rejects_bad_split():
    ds = load_digits("test")
    ds.tensors[0]._data[:] = 7.0
    assert float(load_digits("test").tensors[0]._data.max()) == 1.0
    with pytest.raises(ValueError, match="split must be one of"):
        load_digits("validation")


# ------------------------------------------------------------------------------------ TensorDataset

def _ds(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return TensorDataset(Tensor(x), Tensor(np.arange(n, dtype=np.int64) * 10))


def test_tensor_dataset_items():
    ds = _ds()
    assert len(ds) == 10
    x, y = ds[2]
    assert isinstance(x, Tensor) and x.shape == (3,) and x._data.tolist() == [6, 7, 8]
    assert isinstance(y, Tensor) and y.shape == () and int(y._data) == 20
    assert ds[-1][1]._data.item() == 90
    with pytest.raises(IndexError, match="index 10 is out of bounds for dimension 0 with size 10"):
        ds[10]
    x, y = ds[1:3]  # NOTE: as PyTorch's: any tensor index (a slice, a list, a Tensor)
    assert x.shape == (2, 3) and y.tolist() == [10, 20] and ds[[0, 2]][1].tolist() == [0, 20]
    arr_ds = TensorDataset(np.zeros((4, 2)), np.ones(4))  # arrays are wrapped
    assert isinstance(arr_ds.tensors[0], Tensor) and len(arr_ds) == 4


def test_tensor_dataset_errors():
    with pytest.raises(AssertionError, match=r"Size mismatch between tensors \(first dimensions \[5, 4\]\)"):
        TensorDataset(Tensor(np.zeros(5)), Tensor(np.zeros((4, 2))))
    assert TensorDataset().tensors == ()  # NOTE: PyTorch accepts no tensors (len() then fails)
    with pytest.raises(IndexError, match="0-dimensional"):
        TensorDataset(Tensor(np.zeros(())))
    with pytest.raises(TypeError, match="argument 1 is a list"):
        TensorDataset(Tensor(np.zeros(3)), [1, 2, 3])


# --------------------------------------------------------------------------------------- DataLoader

def _rows(batches, k=1):
    return np.concatenate([b[k]._data for b in batches]).tolist()


def test_loader_in_order_with_partial_last_batch():
    ds = _ds(10)
    dl = DataLoader(ds, batch_size=4)
    batches = list(dl)
    assert len(dl) == 3 and [len(b[1]._data) for b in batches] == [4, 4, 2]
    # NOTE: a list per batch, as PyTorch's default_collate gives for tuple samples
    assert all(isinstance(b, list) and len(b) == 2 and all(isinstance(t, Tensor) for t in b) for b in batches)
    assert _rows(batches) == [i * 10 for i in range(10)]
    assert batches[0][0].shape == (4, 3) and batches[0][0].dtype == np.float32 and not batches[0][0].requires_grad
    batches[0][0]._data[:] = -1  # batches are copies: the dataset is untouched
    assert ds.tensors[0]._data.min() == 0


@pytest.mark.parametrize("n,bs,full,partial", [(10, 4, 2, 3), (8, 4, 2, 2), (3, 5, 0, 1), (0, 2, 0, 0)])
def test_loader_len_matches_iteration(n, bs, full, partial):
    ds = _ds(n)
    for shuffle in (False, True):
        kw = {"seed": 0} if shuffle else {}
        a, b = DataLoader(ds, bs, shuffle, drop_last=True, **kw), DataLoader(ds, bs, shuffle, **kw)
        assert (len(a), len(b)) == (full, partial)
        assert (len(list(a)), len(list(b))) == (full, partial)
        assert all(len(x[0]._data) == bs for x in a)


def test_loader_shuffle_seeded_reproducible_and_new_each_epoch():
    ds = _ds(50)
    dl = DataLoader(ds, batch_size=8, shuffle=True, seed=123)
    e1, e2 = _rows(dl), _rows(dl)
    assert sorted(e1) == sorted(e2) == [i * 10 for i in range(50)]
    assert e1 != e2
    # documented semantics: one generator from the seed, one permutation per epoch
    rng = np.random.default_rng(123)
    assert e1 == (rng.permutation(50) * 10).tolist() and e2 == (rng.permutation(50) * 10).tolist()
    again = DataLoader(ds, batch_size=8, shuffle=True, seed=123)
    assert [_rows(again), _rows(again)] == [e1, e2]
    gen = DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(123))
    assert _rows(gen) == e1
    assert _rows(DataLoader(ds, batch_size=8, shuffle=True, seed=124)) != e1
    # rows stay together: x[i] goes with y[i]
    b = next(iter(dl))
    assert np.array_equal(b[0]._data[:, 0], b[1]._data * 3 / 10)


def test_loader_shuffle_without_seed_follows_manual_seed():
    ds = _ds(30)
    gg_random.manual_seed(7)
    a = _rows(DataLoader(ds, batch_size=30, shuffle=True))
    gg_random.manual_seed(7)
    b = _rows(DataLoader(ds, batch_size=30, shuffle=True))
    assert a == b and sorted(a) == [i * 10 for i in range(30)] and a != sorted(a)


def test_loader_shuffle_drop_last_gives_full_distinct_batches():
    dl = DataLoader(_ds(10), batch_size=3, shuffle=True, drop_last=True, seed=1)
    rows = _rows(dl)
    assert len(rows) == 9 and len(set(rows)) == 9


def test_loader_argument_errors():
    ds = _ds(4)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            DataLoader(ds, batch_size=bad)
    with pytest.raises(ValueError, match="batch_size=None option disables auto-batching"):
        DataLoader(ds, batch_size=None, drop_last=True)  # batch_size=None alone turns batching off, as in PyTorch
    assert _rows(DataLoader(ds, batch_size=3, seed=1)) == [0, 10, 20, 30]  # a seed without shuffle changes nothing
    with pytest.raises(ValueError, match="not both"):
        DataLoader(ds, shuffle=True, seed=1, generator=np.random.default_rng(1))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        DataLoader(ds, shuffle=True, generator=42)


def test_loader_fast_path_does_not_index_samples(monkeypatch):
    calls = []
    orig = TensorDataset.__getitem__
    monkeypatch.setattr(TensorDataset, "__getitem__", lambda self, i: calls.append(i) or orig(self, i))
    ds = _ds(10)
    assert _rows(DataLoader(ds, batch_size=4, shuffle=True, seed=0)) != []
    assert _rows(DataLoader(ds, batch_size=4)) == [i * 10 for i in range(10)]
    assert calls == []


class _Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((2,), i, dtype=np.float32), i * i


def test_loader_generic_dataset_collates_per_item():
    dl = DataLoader(_Squares(5), batch_size=2)
    batches = list(dl)
    assert len(batches) == 3
    x, y = batches[0]
    assert x.shape == (2, 2) and x.dtype == np.float32 and x._data.tolist() == [[0, 0], [1, 1]]
    assert y.dtype == np.int64 and y._data.tolist() == [0, 1]
    assert batches[2][1]._data.tolist() == [16]
    shuffled = DataLoader(_Squares(6), batch_size=6, shuffle=True, seed=3)
    assert next(iter(shuffled))[1]._data.tolist() == [int(i) ** 2 for i in np.random.default_rng(3).permutation(6)]
    # a subclass that overrides __getitem__ is not fancy-indexed
    class Plus1(TensorDataset):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x, Tensor(y._data + 1)
    assert _rows(DataLoader(Plus1(*_ds(3).tensors), batch_size=2)) == [1, 11, 21]


def test_default_collate_types_and_errors():
    b = default_collate([{"a": 1.5, "b": True, "s": "x"}, {"a": 2.5, "b": False, "s": "y"}])
    assert b["a"].dtype == np.float64 and b["a"]._data.tolist() == [1.5, 2.5]
    assert b["b"].dtype == np.bool_ and b["s"] == ["x", "y"]
    assert default_collate([np.int16(3), np.int16(4)]).dtype == np.int16
    t = default_collate([Tensor(np.ones(2)), Tensor(np.zeros(2))])
    assert t.shape == (2, 2) and t._data.tolist() == [[1, 1], [0, 0]]
    assert isinstance(default_collate([[1, 2], [3, 4]]), list)
    with pytest.raises(RuntimeError, match=r"stack expects each tensor to be equal size, but got \[2\] at entry 0"):
        default_collate([np.ones(2), np.ones(3)])
    with pytest.raises(TypeError, match="collate_fn"):
        default_collate([object()])
    seen = []
    dl = DataLoader(_ds(5), batch_size=2, collate_fn=lambda items: seen.append(len(items)) or len(items))
    assert list(dl) == [2, 2, 1] and seen == [2, 2, 1]


def test_subset_and_random_split():
    ds = _ds(10)
    sub = Subset(ds, [9, 0, -2])
    assert len(sub) == 3 and int(sub[0][1]._data) == 90
    assert _rows(DataLoader(sub, batch_size=2)) == [90, 0, 80]
    assert _rows(DataLoader(Subset(sub, [2, 0]), batch_size=5)) == [80, 90]  # nested subsets
    with pytest.raises(IndexError):  # NOTE: as PyTorch: when used, not when made
        Subset(ds, [10])[0]
    with pytest.raises(IndexError, match="index 10 is out of bounds for dimension 0 with size 10"):
        list(DataLoader(Subset(ds, [10]), batch_size=2))
    assert Subset(ds, [3, 1]).indices == [3, 1] and len(Subset(ds, [3, 1])[[0, 1]][0]) == 2
    a, b = random_split(ds, [7, 3], seed=0)
    ra, rb = _rows(DataLoader(a, 10)), _rows(DataLoader(b, 10))
    assert (len(ra), len(rb)) == (7, 3) and sorted(ra + rb) == [i * 10 for i in range(10)]
    assert _rows(DataLoader(random_split(ds, [7, 3], seed=0)[1], 10)) == rb
    assert [len(p) for p in random_split(ds, [0.5, 0.3, 0.2], seed=0)] == [5, 3, 2]
    assert [len(p) for p in random_split(_ds(11), [0.5, 0.5], seed=0)] == [6, 5]
    with pytest.raises(ValueError, match="summing to the dataset size 10"):
        random_split(ds, [5, 4])


def test_digits_through_loader():
    dl = DataLoader(load_digits("test"), batch_size=64, shuffle=True, seed=0)
    seen = np.zeros(10, dtype=int)
    for x, y in dl:
        assert x.shape[1:] == (1, 8, 8)
        seen += np.bincount(y._data, minlength=10)
    assert len(dl) == 6 and seen.tolist() == [36] * 10


@pytest.mark.skipif(not backend.cuda.is_available(), reason="needs CuPy and a CUDA GPU")
def test_loader_iterates_on_the_tensors_device():
    cpu, gpu = load_digits("test", device="cpu"), load_digits("test", device="cuda")
    assert str(gpu.tensors[0].device) == "cuda:0" and str(gpu.tensors[1].device) == "cuda:0"
    for shuffle in (False, True):
        kw = {"seed": 5} if shuffle else {}
        for (xc, yc), (xg, yg) in zip(DataLoader(cpu, 50, shuffle, **kw), DataLoader(gpu, 50, shuffle, **kw)):
            assert str(xg.device) == "cuda:0" and str(yg.device) == "cuda:0"
            assert np.array_equal(xg._data.get(), xc._data) and np.array_equal(yg._data.get(), yc._data)


# ---------------------------------------------------------------------------------------------- IDX

@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, dtype, gz):
    a = (np.arange(24).reshape(2, 3, 4) * (-1 if dtype[0] in "if" else 1)).astype(dtype)
    p = tmp_path / ("a.idx" + (".gz" if gz else ""))
    write_idx(p, a)
    b = read_idx(p)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.shape == (2, 3, 4) and np.array_equal(a, b)
    assert b.flags.writeable
    raw = p.read_bytes()
    assert raw[:2] == (b"\x1f\x8b" if gz else b"\x00\x00")


def test_idx_header_layout(tmp_path):
    p = tmp_path / "x"
    write_idx(p, np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8))
    assert p.read_bytes() == bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
    write_idx(p, np.array([258], dtype=np.int32))
    assert p.read_bytes() == bytes([0, 0, 0x0C, 1, 0, 0, 0, 1, 0, 0, 1, 2])


def test_idx_errors_name_the_file(tmp_path):
    p = tmp_path / "bad-idx"
    good = struct.pack(">HBBII", 0, 8, 2, 2, 3) + bytes(6)
    cases = [
        (b"", "too short"),
        (b"\x01\x02\x08\x01" + bytes(8), "bad magic number 0x01020801"),
        (b"\x00\x00\x07\x01" + bytes(8), "bad magic number"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (good[:10], "truncated IDX header"),
        (good[:-1], r"truncated IDX file: shape \(2, 3\) of uint8 needs 6 data bytes, found 5"),
        (good + b"\x00", "1 unexpected bytes"),
        (gzip.compress(good)[:-6], "corrupt or truncated gzip"),
    ]
    for data, msg in cases:
        p.write_bytes(data)
        with pytest.raises(ValueError, match=msg) as e:
            read_idx(p)
        assert str(p) in str(e.value)
    with pytest.raises(TypeError, match="int64"):
        write_idx(p, np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        write_idx(p, np.uint8(3))


def _fake_mnist(folder, n_train=5, n_test=3, gz=False, h=4, w=5):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
        y = rng.integers(0, 10, size=n, dtype=np.uint8)
        ext = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", x)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", y)
        out[prefix] = (x, y)
    return out


@pytest.mark.parametrize("layout", ["", "raw", "MNIST/raw"])
@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist(tmp_path, layout, gz):
    ref = _fake_mnist(tmp_path / layout if layout else tmp_path, gz=gz)
    tr = load_mnist(tmp_path)
    x, y = tr.tensors
    assert len(tr) == 5 and x.shape == (5, 1, 4, 5) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(x._data[:, 0], ref["train"][0] / np.float32(255)) and y._data.tolist() == ref["train"][1].tolist()
    te = load_mnist(tmp_path, train=False, flatten=True, normalize=False)
    assert te.tensors[0].shape == (3, 20) and te.tensors[0]._data.max() == ref["t10k"][0].max()


def test_load_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="looked for train-images-idx3-ubyte, train-images.idx3-ubyte, "
                                                "train-images-idx3-ubyte.gz"):
        load_mnist(tmp_path)
    _fake_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match=r"holds 5 images but .*train-labels-idx1-ubyte holds 4 labels"):
        load_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((5, 1), np.uint8))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: expected uint8 labels of shape \(N,\)"):
        load_mnist(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 4, 5), np.float32))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: expected uint8 images"):
        load_mnist(tmp_path, train=False)
