"""gg.compile (issue 13): a replayed step's peak memory is no more than the eager step's, and replays do not grow.

tracemalloc counts NumPy's allocations (and Python objects). Before each slot was dropped after its last use the
replay of the digits CNN step peaked at 6.9 MB against eager's 5.6 MB (every activation kept to the end)."""
import tracemalloc

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import models, nn

# NOTE: the slack is Python objects, not arrays: the replay's slot list (one pointer per array of the step) and the
# small temporaries of its calls; 8 KiB is below the smallest activation of either model (64 x 128 float32 = 32 KiB)
SLACK = 8 << 10


def _setup(kind, small=False):
    gg.manual_seed(0)
    rng = np.random.default_rng(0)
    if kind == "cnn":  # the digits CNN of `gpugrad train --model cnn` (small: fewer channels, for the 200 replays)
        cfg = {"model": "cnn", **({"channels1": 4, "channels2": 8, "hidden": 16} if small else {})}
        model, x = models.build_model(cfg), rng.random((32, 1, 8, 8), dtype=np.float32)
    else:
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))
        x = rng.random((64, 64), dtype=np.float32)
    opt = gg.optim.Adam(model.parameters(), lr=1e-3)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step, gg.tensor(x), gg.tensor(rng.integers(0, 10, x.shape[0]))


def _peak(fn, *args):
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn(*args)
        cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, cur - base


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_replay_peak_at_most_eager_and_flat(kind):
    step, x, y = _setup(kind)
    for _ in range(3):  # NOTE: the optimizer state exists before the measured step, in both runs
        step(x, y)
    eager = _peak(step, x, y)[0]
    step, x, y = _setup(kind)
    f = gg.compile(step)
    for _ in range(4):
        f(x, y)
    replay = _peak(f, x, y)[0]
    assert replay <= eager + SLACK, (replay, eager)
    f = gg.compile(_setup(kind, small=True)[0])

    def arrays():  # NOTE: NumPy's buffers only (its tracemalloc domain): Python's free lists hold small objects
        snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)])
        return sum(t.size for t in snap.traces)
    tracemalloc.start()
    try:
        for i in range(210):
            f(x, y)
            if i == 9:
                a = arrays()
        b = arrays()
    finally:
        tracemalloc.stop()
    assert b - a <= SLACK, (a, b)  # no buffer accumulates over 200 replays
