"""The recurrent-cell kernels of kernels/rnn.cu, executed on the CPU under the emulated CUDA thread model.

Each array-level function of gpugrad/fused/rnn.py runs on NumPy arrays (the fallback) and on the emulated
CuPy stand-in (the kernels through the bridge); results must agree to the dtype's rounding. The time loops
of gpugrad/ops/rnn.py (which write each step's results into slices of preallocated arrays) run the same way.
``case_*`` functions run inside the emulator's worker (tests/cudaemu/worker.py); without a C++ compiler
everything here skips.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
for p in (str(TESTS), str(TESTS.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from cudaemu import harness  # noqa: E402
from cudaemu.harness import View  # noqa: E402
from cudaemu.harness import compare as cmp  # noqa: E402
from gpugrad.backend import xp_of  # noqa: E402
from gpugrad.fused import rnn as R  # noqa: E402  (importing the family registers its kernels)
from gpugrad.ops import rnn as ops  # noqa: E402

DTYPES = list(harness.DTYPES)  # float16, float32, float64 and bfloat16 (with ml_dtypes)
COVERS = ("rnn.cu",)
# (B, H): one element, odd widths, a warp, the 8/16-wide vector packs with and without tails, no rows
SIZES = [(1, 1), (3, 5), (2, 8), (4, 9), (1, 33), (5, 64), (3, 129), (0, 4)]


@pytest.fixture(scope="module")
def emu():
    with harness.session(__name__) as e:
        yield e


def _rand(shape, dt, scale=2.0, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape) * scale
    if a.size >= 3:  # saturated gates, an exact zero
        a.reshape(-1)[:3] = [12.0, -30.0, 0.0]
    return a.astype(dt)


def _unit(shape, dt, seed):
    """Values in (0, 1) (saved sigmoid/tanh activations)."""
    return np.random.default_rng(seed).uniform(0.02, 0.98, shape).astype(dt)


def case_lstm_cell(dtype):
    dt = np.dtype(dtype)
    for B, H in SIZES:
        xg, hg, c0 = _rand((B, 4 * H), dt, seed=1), _rand((B, 4 * H), dt, seed=2), _rand((B, H), dt, seed=3)
        cmp(R.lstm_cell_fwd, (xg, hg, c0), what=f"lstm fwd {B}x{H}", scaled=True)  # NOTE: c, h are sums of products
        act, c, _ = R.lstm_cell_fwd(xg, hg, c0)
        dh, dc = _rand((B, H), dt, 1.0, 4), _rand((B, H), dt, 1.0, 5)
        for extra in ((None, None), (_rand((B, H), dt, 1.0, 6), _rand((B, H), dt, 1.0, 7))):
            cmp(R.lstm_cell_bwd, (act, c, c0, dh, dc, *extra), what=f"lstm bwd {B}x{H} recurrent={extra[0] is not None}",
                scaled=True)


def case_gru_cell(dtype):
    dt = np.dtype(dtype)
    for B, H in SIZES:
        xg, hg, h0 = _rand((B, 3 * H), dt, seed=1), _rand((B, 3 * H), dt, seed=2), _rand((B, H), dt, seed=3)
        for bhh in (None, _rand((3 * H,), dt, 0.5, 8)):
            cmp(R.gru_cell_fwd, (xg, hg, h0, bhh), what=f"gru fwd {B}x{H} bias={bhh is not None}", scaled=True)
        saved = np.concatenate([_unit((B, 2 * H), dt, 9), np.tanh(_rand((B, H), dt, seed=10)), _rand((B, H), dt, seed=11)],
                               axis=1).astype(dt)
        for dhr in (None, _rand((B, H), dt, 1.0, 6)):
            cmp(R.gru_cell_bwd, (saved, h0, _rand((B, H), dt, 1.0, 4), dhr),
                what=f"gru bwd {B}x{H} recurrent={dhr is not None}", scaled=True)


def case_rnn_cell(dtype, kind):
    dt = np.dtype(dtype)
    for n in (0, 1, 3, 7, 8, 9, 31, 33, 1000, 1027):
        for off in (0, 1):  # NOTE: 0: 16-byte aligned (emap's vector packs + tail), 1: misaligned (scalar loop)
            xg, hg = View(_rand(n + 1, dt, seed=n), slice(off, off + n)), View(_rand(n + 1, dt, seed=n + 1),
                                                                                slice(off, off + n))
            cmp(lambda a, b: R.rnn_cell_fwd(kind, a, b), (xg, hg), what=f"{kind} fwd n={n} off={off}")
            h = R.rnn_cell_fwd(kind, _rand(n, dt, seed=2), _rand(n, dt, seed=3))
            for dhr in (None, View(_rand(n + 1, dt, 1.0, 5), slice(off, off + n))):
                cmp(lambda y, g, r: R.rnn_cell_bwd(kind, y, g, r), (h, View(_rand(n + 1, dt, 1.0, 4), slice(off, off + n)),
                                                                   dhr), what=f"{kind} bwd n={n} off={off}", scaled=True)
    x = _rand((3, 17), dt)  # 2-D, as the loops call them
    cmp(lambda a, b: R.rnn_cell_fwd(kind, a, b), (x, x[::-1].copy()), what=f"{kind} fwd 2-d")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_cell_kernels_match_fallback(emu, cell, dtype):
    if cell.startswith("rnn_"):
        emu.check("case_rnn_cell", dtype=dtype, kind=cell[4:])
    else:
        emu.check(f"case_{cell}_cell", dtype=dtype)


# -- the time loops: each step's kernels write into slices of the layer's arrays ------------------------------
def _loop(cls, arrays, params):
    """forward then backward of node ``cls`` on raw arrays (a node without Tensors: inputs carry only their data)."""
    node = cls.__new__(cls)
    y = node.forward(*arrays, **params)
    node.y = y
    node.inputs = [types.SimpleNamespace(_data=a, _rg=True) for a in arrays]
    g = xp_of(y).asarray(_rand(y.shape, y.dtype, 1.0, seed=21))
    return (y, *node.backward(g))


def case_loops(dtype, reverse):
    dt = np.dtype(dtype)
    T, B, H, P = 5, 3, 6, 2
    rng = np.random.default_rng(0)
    w = lambda *s: (rng.standard_normal(s) * 0.4).astype(dt)  # noqa: E731
    runs = {
        "lstm": (ops.LSTMSeq, [w(T, B, 4 * H), w(4 * H, H), w(B, H), w(B, H)], {}),
        "lstm proj": (ops.LSTMSeq, [w(T, B, 4 * H), w(4 * H, P), w(B, P), w(B, H), w(P, H)], {}),
        "gru": (ops.GRUSeq, [w(T, B, 3 * H), w(3 * H, H), w(B, H), w(3 * H)], {}),
        "gru no bias": (ops.GRUSeq, [w(T, B, 3 * H), w(3 * H, H), w(B, H)], {}),
        "rnn relu": (ops.RNNSeq, [w(T, B, H), w(H, H), w(B, H)], {"nonlinearity": "relu"}),
    }
    for name, (cls, arrays, params) in runs.items():
        params = dict(params, reverse=reverse)
        cmp(lambda *a: _loop(cls, a, params), tuple(arrays), what=f"{name} loop reverse={reverse}", scaled=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
def test_time_loops_on_the_device_path(emu, dtype, reverse):
    emu.check("case_loops", dtype=dtype, reverse=reverse)


def test_every_kernel_ran_for_every_dtype(emu):
    """Every __global__ kernel of rnn.cu was launched for every dtype (DTYPES) by the tests above."""
    harness.assert_every_kernel_ran(emu, __name__, globals(), COVERS, DTYPES)
