"""The kernels of kernels/attention.cu under the emulated CUDA thread model (see tests/test_kernels_emulated.py
and tests/cudaemu/README.md): gpugrad.fused.attention's forward and backward on NumPy arrays (the blocked
fallback) against the same calls on device arrays (the kernels through the bridge), in every dtype, for
both launch layouts (a warp per row, and a whole block per row once the other sequence exceeds 1024),
causal and not, with broadcast additive masks, fully masked rows, capped grids, and three thread schedules.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
for p in (str(TESTS), str(TESTS.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from cudaemu import harness  # noqa: E402
from cudaemu.harness import compare as cmp  # noqa: E402
from gpugrad.fused import attention as A  # noqa: E402  (importing it registers its kernels)
from gpugrad.fused import cuda as loader  # noqa: E402

DTYPES = list(harness.DTYPES)  # float16, float32, float64 and bfloat16 (with ml_dtypes)
COVERS = ("attention.cu",)


@pytest.fixture(scope="module")
def emu():
    with harness.session(__name__) as e:
        yield e


def _inputs(dt, B, H, L, S, E, Ev, bias_shape, dead_row, seed=0):
    rng = np.random.default_rng(seed)
    q, k = (rng.standard_normal(s).astype(dt) for s in ((B, H, L, E), (B, H, S, E)))
    v = rng.standard_normal((B, H, S, Ev)).astype(dt)
    bias = None
    if bias_shape is not None:
        bias = np.where(rng.random(bias_shape) < 0.3, -np.inf, rng.standard_normal(bias_shape)).astype(dt)
        if dead_row:
            bias[..., 0, :] = -np.inf  # NOTE: query row 0 sees no key: output 0, lse -inf, zero gradients
    return q, k, v, bias


def case_attention(dtype, shape, causal, bias_shape=None, dead_row=False, schedules=False, scale=None):
    dt = np.dtype(dtype)
    B, H, L, S, E, Ev = shape
    q, k, v, bias = _inputs(dt, B, H, L, S, E, Ev, bias_shape, dead_row)
    kw = dict(bias=bias, scale=scale, causal=causal)
    what = f"attention {shape} causal={causal} bias={bias_shape}"
    # NOTE: float32's lse is float64 holding float32 precision; scaled: outputs are sums of signed terms
    cmp(lambda a, b, c, **kk: A.attention_fwd(a, b, c, **kk), (q, k, v), kw, what=what + " fwd", scaled=True,
        tol_as=harness.compute(dt), schedules=schedules)
    out, lse = A.attention_fwd(q, k, v, **kw)
    g = np.random.default_rng(9).standard_normal(out.shape).astype(dt)
    got = cmp(lambda gg, a, b, c, o, ll, **kk: A.attention_bwd(gg, a, b, c, o, ll, **kk), (g, q, k, v, out, lse), kw,
              what=what + " bwd", scaled=True, schedules=schedules)
    if dead_row:
        assert not np.any(got[0][..., 0, :]), "a fully masked query row must get a zero gradient"


CASES = [  # (B, H, L, S, E, Ev), causal, bias shape, a fully masked row
    ((1, 2, 5, 7, 8, 4), False, None, False),
    ((2, 1, 9, 4, 3, 5), True, None, False),
    ((2, 3, 6, 33, 16, 8), True, None, False),
    ((2, 2, 5, 37, 8, 8), False, (2, 1, 1, 37), True),    # a key-padding mask, broadcast over heads and queries
    ((1, 2, 7, 6, 4, 4), False, (1, 2, 7, 6), False),
    ((1, 1, 3, 1100, 4, 4), False, (1, 1, 3, 1), False),  # block-per-row layout in fwd/bwd (n = S > 1024)
    ((1, 1, 1100, 3, 4, 4), True, None, False),           # block-per-row layout in bwd_kv (n = L > 1024)
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,causal,bias_shape,dead_row", CASES, ids=[str(c[0]) + ("c" if c[1] else "") for c in CASES])
def test_attention(emu, dtype, shape, causal, bias_shape, dead_row):
    emu.check("case_attention", dtype=dtype, shape=list(shape), causal=causal,
              bias_shape=None if bias_shape is None else list(bias_shape), dead_row=dead_row,
              schedules=dtype == "float32" and shape[3] < 1000)


def test_attention_head_dim_256_and_scale(emu):
    """The largest head dim the kernels take, every accumulator slot of a warp-layout thread in use."""
    emu.check("case_attention", dtype="float32", shape=[1, 1, 3, 5, 256, 256], causal=False, scale=0.05)


def case_capped_grids():
    """Grids capped to 2 blocks: the row loops grid-stride over several rounds (barriers included)."""
    row = loader.row_launch

    def row_capped(rows, n):
        g, b = row(rows, n)
        return (min(g[0], 2), 1, 1), b

    with harness.patched(loader, row_launch=row_capped):
        for dt in DTYPES:
            case_attention(dt, [2, 2, 9, 5, 4, 4], True, [2, 1, 9, 5])
            case_attention(dt, [1, 1, 3, 1030, 4, 4], False)
            case_attention(dt, [1, 1, 1030, 2, 4, 4], True)


def test_capped_grids(emu):
    emu.check("case_capped_grids")


def test_every_kernel_ran_for_every_dtype(emu):
    harness.assert_every_kernel_ran(emu, __name__, globals(), COVERS, DTYPES)
