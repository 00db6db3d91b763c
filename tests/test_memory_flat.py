"""Memory stays flat over long eager training runs: no Python object allocated by gpugrad survives a step.

Method: ``sys.getallocatedblocks()`` (every live object has a pymalloc block for its header, arrays
included) after ``gc.collect()``, before and after many steps. NOTE: the collection matters twice: it frees
cyclic garbage awaiting collection, and a full collection also empties CPython's per-size free lists. Without it
tracemalloc sees an eager step's traced total rise for ~1000 steps and then stop: ``tuple(<generator>)`` (e.g.
``Primitive.needs_input_grad``) allocates a 10-slot tuple and shrinks it, so each call adds one tuple to the 2-
or 3-slot free list until that holds its maximum (2000 in CPython 3.11); a bounded cache, not a leak.
(tracemalloc with tracebacks finds the same, but took ~50 s of CPU for these cases: too slow for the suite.)
"""
from __future__ import annotations

import gc
import sys

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import nn
from gpugrad.ops import linalg

# NOTE: the bound. The warm-up (300 steps) makes the optimizer state and every version counter and step count
# exist and pass 256, so none of them leaves CPython's small-int cache (a cached int replaced by a heap block)
# during the measured steps: a flat run then grows by a block or two (measured: 1 for every case below). A leak
# of any one object per step gives STEPS blocks.
BOUND, STEPS = 32, 1000


def _growth(step, steps=STEPS):
    """Allocated blocks alive after ``steps`` more steps, after a warm-up, each count after a full collection."""
    for _ in range(300):
        step()
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(steps):
        step()
    gc.collect()
    return sys.getallocatedblocks() - before


def _trainer(model="mlp", opt="adam", mode="plain"):
    gg.manual_seed(0)
    if model == "mlp":
        m = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    else:
        m = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))
    ps = m.parameters()
    o = {"adam": lambda: gg.optim.Adam(ps, lr=1e-3), "adamw": lambda: gg.optim.AdamW(ps, lr=1e-3),
         "sgdm": lambda: gg.optim.SGD(ps, lr=1e-2, momentum=0.9)}[opt]()
    rng = np.random.default_rng(0)
    x = gg.tensor(rng.standard_normal((4, 1, 4, 4)).astype(np.float32))
    y = gg.tensor(rng.integers(0, 3, 4))

    def step():
        o.zero_grad()
        if mode == "autocast":
            with gg.autocast("cpu", dtype=gg.bfloat16):
                loss = F.cross_entropy(m(x), y)
        else:
            loss = F.cross_entropy(m(x), y)
        if mode == "retain":
            loss.backward(create_graph=False, retain_graph=True)
        loss.backward()
        o.step()
    return step


@pytest.mark.parametrize("model,opt,mode", [("mlp", "adam", "plain"), ("mlp", "sgdm", "plain"),
                                            ("mlp", "adamw", "autocast"), ("mlp", "adam", "retain"),
                                            ("cnn", "sgdm", "plain")])
def test_eager_step_memory_is_flat(model, opt, mode):
    assert _growth(_trainer(model, opt, mode)) < BOUND


def test_the_check_sees_a_small_leak(monkeypatch):
    """The measurement can fail: one leaked 1-tuple per Linear backward (two per step) is caught."""
    kept, orig = [], linalg.Linear.backward

    def leaky(self, g):
        kept.append((len(kept),))
        return orig(self, g)
    monkeypatch.setattr(linalg.Linear, "backward", leaky)
    assert _growth(_trainer(), 100) >= 200
