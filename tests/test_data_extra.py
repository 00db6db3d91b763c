"""gg.data: samplers, ConcatDataset, IterableDataset, default_collate/default_convert, DataLoader's
sampler/batch_sampler/collate_fn/drop_last/batch_size=None options, and num_workers > 0 (same batches
as in-process, worker seeding and sharding, errors, timeouts). Every worker test is bounded by timeout=."""
import collections
import os
import time

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler,
                          SequentialSampler, Subset, SubsetRandomSampler, TensorDataset, WeightedRandomSampler,
                          default_collate, default_convert, get_worker_info, random_split)
from gpugrad.tensor import Tensor

T = 20  # seconds: no worker test may wait longer for a batch


class Squares(Dataset):
    def __init__(self, n, delay=0.0):
        self.n, self.delay = n, delay

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if self.delay:
            time.sleep(self.delay)
        return {"x": np.float32(i) ** 2, "i": i, "pid": os.getpid()}


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        lo, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(lo, self.n, step))


class Boom(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            raise KeyError("bad sample 2")
        return i


def _vals(batches, key="i"):
    return [b[key].tolist() for b in batches]


def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3] and len(SequentialSampler(range(4))) == 4
    g = gg.Generator().manual_seed(0)
    a = list(RandomSampler(range(6), generator=g))
    assert sorted(a) == list(range(6)) and a == list(RandomSampler(range(6), generator=gg.Generator().manual_seed(0)))
    r = list(RandomSampler(range(3), replacement=True, num_samples=10, generator=g))
    assert len(r) == 10 and set(r) <= {0, 1, 2}
    chained = list(RandomSampler(range(3), num_samples=7, generator=g))
    assert len(chained) == 7 and sorted(chained[:3]) == [0, 1, 2] and sorted(chained[3:6]) == [0, 1, 2]
    s = list(SubsetRandomSampler([10, 20, 30], generator=g))
    assert sorted(s) == [10, 20, 30]
    w = list(WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 200, generator=g))
    assert set(w) == {1, 3} and 120 < w.count(3) < 180
    assert sorted(WeightedRandomSampler([1, 1, 1], 3, replacement=False, generator=g)) == [0, 1, 2]
    assert list(BatchSampler(range(5), 2, False)) == [[0, 1], [2, 3], [4]] and len(BatchSampler(range(5), 2, False)) == 3
    assert list(BatchSampler(range(5), 2, True)) == [[0, 1], [2, 3]] and len(BatchSampler(range(5), 2, True)) == 2


@pytest.mark.parametrize("make,match", [
    (lambda: RandomSampler(range(3), num_samples=0), "num_samples should be a positive integer"),
    (lambda: WeightedRandomSampler([1, 1], 3, replacement=False), "without replacement"),
    (lambda: WeightedRandomSampler([[1.0]], 1), "1d sequence"),
    (lambda: BatchSampler(range(3), 0, False), "batch_size should be a positive integer"),
    (lambda: DataLoader(Squares(3), sampler=[0], shuffle=True), "mutually exclusive with shuffle"),
    (lambda: DataLoader(Squares(3), batch_sampler=[[0]], batch_size=2), "batch_sampler option is mutually exclusive"),
    (lambda: DataLoader(Stream(3), shuffle=True), "IterableDataset: expected unspecified shuffle"),
    (lambda: DataLoader(Squares(3), num_workers=-1), "num_workers option should be non-negative"),
    (lambda: DataLoader(Squares(3), prefetch_factor=2), "prefetch_factor option could only be specified"),
    (lambda: DataLoader(Squares(3), persistent_workers=True), "persistent_workers option needs num_workers > 0"),
    (lambda: DataLoader(Squares(3), timeout=-1), "timeout option should be non-negative"),
])
def test_argument_errors(make, match):
    with pytest.raises((ValueError, RuntimeError), match=match):
        make()


def test_concat_subset_random_split():
    a, b = Squares(3), Squares(2)
    c = ConcatDataset([a, b])
    assert len(c) == 5 and c.cumulative_sizes == [3, 5]
    assert [c[i]["i"] for i in range(5)] == [0, 1, 2, 0, 1] and c[-1]["i"] == 1
    assert len(a + b) == 5
    with pytest.raises(IndexError):
        c[5]
    with pytest.raises(AssertionError, match="ConcatDataset does not support IterableDataset"):
        ConcatDataset([a, Stream(2)])
    parts = random_split(Squares(10), [0.5, 0.3, 0.2], generator=gg.Generator().manual_seed(3))
    assert [len(p) for p in parts] == [5, 3, 2]
    assert sorted(int(i) for p in parts for i in p.indices) == list(range(10))
    assert [len(p) for p in random_split(range(7), [0.5, 0.5], seed=1)] == [4, 3]


Point = collections.namedtuple("Point", "x y")


def test_default_collate_and_convert():
    out = default_collate([{"a": 1, "b": (1.5, np.arange(2))}, {"a": 2, "b": (2.5, np.arange(2) + 10)}])
    assert out["a"].dtype == np.int64 and out["a"].tolist() == [1, 2]
    assert out["b"][0].dtype == np.float64 and out["b"][0].tolist() == [1.5, 2.5]
    assert out["b"][1].tolist() == [[0, 1], [10, 11]] and isinstance(out["b"], list)  # NOTE: PyTorch's list
    p = default_collate([Point(1, np.float32(2)), Point(3, np.float32(4))])
    assert isinstance(p, Point) and p.x.tolist() == [1, 3] and p.y.dtype == np.float32
    assert default_collate([[1, "a"], [2, "b"]])[1] == ["a", "b"]
    c = default_convert({"x": np.arange(3), "s": "k", "t": (np.zeros(1), 5)})
    assert isinstance(c["x"], Tensor) and c["s"] == "k" and isinstance(c["t"][0], Tensor) and c["t"][1] == 5


def test_loader_sampler_batch_sampler_collate_drop_last_no_batching():
    ds = Squares(7)
    assert _vals(DataLoader(ds, batch_size=3, sampler=[6, 0, 3, 1])) == [[6, 0, 3], [1]]
    assert _vals(DataLoader(ds, batch_sampler=[[5, 4], [0], [2, 2, 2]])) == [[5, 4], [0], [2, 2, 2]]
    dl = DataLoader(ds, batch_size=3, drop_last=True)
    assert len(dl) == 2 and _vals(dl) == [[0, 1, 2], [3, 4, 5]]
    assert list(DataLoader(ds, batch_size=4, collate_fn=lambda b: sum(s["i"] for s in b))) == [6, 15]
    one = list(DataLoader(TensorDataset(np.arange(3.0)), batch_size=None))
    assert len(one) == 3 and one[2][0].shape == () and float(one[2][0].item()) == 2.0
    st = list(DataLoader(Stream(5), batch_size=2))
    assert [b.tolist() for b in st] == [[0, 1], [2, 3], [4]]
    assert len(DataLoader(TensorDataset(np.zeros(5)), batch_size=2, sampler=RandomSampler(range(5)))) == 3


def _seeded_init(wid):
    import numpy as np_
    info = get_worker_info()
    assert info is not None and info.id == wid
    os.environ["GG_TEST_WORKER_SEED"] = str(info.seed)
    np_.random.seed(100 + wid)


class Noisy(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return np.array([i, np.random.randint(0, 1 << 30), get_worker_info().id], np.int64)


@pytest.mark.parametrize("shuffle", [False, True])
def test_workers_give_the_same_batches(shuffle):
    ds = Squares(23)
    in_proc = DataLoader(ds, batch_size=4, shuffle=shuffle, generator=gg.Generator().manual_seed(7))
    ref = [[(b["i"].tolist(), b["x"].tolist()) for b in in_proc] for _ in range(2)]
    dl = DataLoader(ds, batch_size=4, shuffle=shuffle, generator=gg.Generator().manual_seed(7), num_workers=2,
                    timeout=T)
    for epoch in range(2):
        got = list(dl)
        assert [(b["i"].tolist(), b["x"].tolist()) for b in got] == ref[epoch]
        assert {p for b in got for p in b["pid"].tolist()} - {os.getpid()}  # loaded in other processes
    assert (ref[0] != ref[1]) == shuffle
    ref = ref[0]
    if not shuffle:
        assert ref[0] == ([0, 1, 2, 3], [0.0, 1.0, 4.0, 9.0]) and ref[-1][0] == [20, 21, 22]
    tdl = TensorDataset(np.arange(10.0))
    fast = [b[0].tolist() for b in DataLoader(tdl, batch_size=3, shuffle=True, seed=5)]
    slow = [b[0].tolist() for b in DataLoader(tdl, batch_size=3, shuffle=True, seed=5, num_workers=2, timeout=T)]
    assert fast == slow and sorted(sum(fast, [])) == list(range(10))


def test_workers_speed_up_a_slow_getitem():
    ds = Squares(16, delay=0.05)  # 0.8 s in one process
    t0 = time.monotonic()
    got = list(DataLoader(ds, batch_size=2, num_workers=4, timeout=T))
    assert time.monotonic() - t0 < 0.7
    assert sum(_vals(got), []) == list(range(16))


def test_worker_init_seeds_and_persistent_workers():
    dl = DataLoader(Noisy(), batch_size=2, num_workers=2, worker_init_fn=_seeded_init, persistent_workers=True,
                    timeout=T)
    e1, e2 = [b.numpy() for b in dl], [b.numpy() for b in dl]
    assert np.concatenate(e1)[:, 0].tolist() == list(range(8))
    assert [b[:, 2].tolist() for b in e1] == [[0, 0], [1, 1], [0, 0], [1, 1]]  # round-robin over workers
    first0 = np.random.RandomState(100).randint(0, 1 << 30)  # worker 0's first draw after np.random.seed(100)
    assert int(e1[0][0, 1]) == first0
    assert int(e2[0][0, 1]) != first0  # persistent: the same worker continues its stream
    pool = dl._pool
    assert pool is not None and len(pool.workers) == 2 and pool.alive()
    pool.shutdown()


def test_iterable_dataset_sharded_over_workers():
    dl = DataLoader(Stream(9), batch_size=2, num_workers=2, timeout=T)
    got = [b.tolist() for b in dl]
    assert got == [[0, 2], [1, 3], [4, 6], [5, 7], [8]]
    assert sorted(sum(got, [])) == list(range(9))
    assert [b.tolist() for b in DataLoader(Stream(5), batch_size=2, num_workers=3, timeout=T, drop_last=True)] == \
        [[0, 3], [1, 4]]


def test_worker_errors_and_timeout():
    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process"):
        list(DataLoader(Boom(), batch_size=1, num_workers=2, timeout=T))
    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.2 seconds"):
        list(DataLoader(Squares(2, delay=3.0), batch_size=1, num_workers=1, timeout=0.2))
    with pytest.raises(NotImplementedError, match="in_order=False"):
        DataLoader(Squares(2), num_workers=1, in_order=False)


def test_pin_memory_is_accepted():
    dl = DataLoader(TensorDataset(np.arange(4.0)), batch_size=2, pin_memory=True)
    assert [b[0].tolist() for b in dl] == [[0.0, 1.0], [2.0, 3.0]]


def test_pin_memory_pins_batches_only_when_cuda_is_usable(monkeypatch):
    from gpugrad.data import dataloader as DL  # noqa: PLC0415
    pinned = []
    monkeypatch.setattr(gg.Tensor, "pin_memory", lambda t: pinned.append(t.shape) or t)
    ds = gg.data.TensorDataset(gg.arange(6.0).reshape(6, 1), gg.arange(6))
    monkeypatch.setattr(DL._cuda, "is_available", lambda: False)
    assert len(list(gg.data.DataLoader(ds, batch_size=4, pin_memory=True))) == 2 and pinned == []
    monkeypatch.setattr(DL._cuda, "is_available", lambda: True)
    batches = list(gg.data.DataLoader(ds, batch_size=4, pin_memory=True))
    assert [tuple(s) for s in pinned] == [(4, 1), (4,), (2, 1), (2,)]       # every tensor of every batch
    assert batches[1][1].tolist() == [4, 5]
    pinned.clear()
    dicts = gg.data.DataLoader([{"x": gg.ones(2)}] * 3, batch_size=3, pin_memory=True)
    assert list(dicts)[0]["x"].shape == (3, 2) and len(pinned) == 1
