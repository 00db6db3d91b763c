"""kernels/amp.cu (the GradScaler's fused inf/NaN check + unscale) under the emulated CUDA thread
model: gpugrad/fused/amp.py's bridge with CuPy's stand-in against its NumPy fallback, for every
dtype, several gradients per launch (the pointer table), inf/NaN anywhere, strided gradients."""
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
from gpugrad.fused import amp as AMP  # noqa: E402

DTYPES = list(harness.DTYPES)  # float16, float32, float64 and bfloat16 (with ml_dtypes)
COVERS = ("amp.cu",)


@pytest.fixture(scope="module")
def emu():
    with harness.session(__name__) as e:
        yield e


def _grads(sizes, dt, seed, scale=1e3):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(n) * scale).astype(dt) for n in sizes]


def _run_both(host, inv, strided=False):
    """The fallback on ``host`` (in place) and the kernel on device copies; returns (device grads, flags)."""
    cp = harness.cupy()
    dev = [cp.asarray(np.repeat(g, 2))[::2] if strided else cp.asarray(g) for g in host]
    hf, df = np.zeros(1, np.float32), cp.zeros(1, cp.float32)
    AMP.unscale_(host, np.array([inv], np.float32), hf)
    AMP.unscale_(dev, cp.asarray(np.array([inv], np.float32)), df)
    return [d.get() for d in dev], float(hf[0]), float(df.get()[0])


def case_unscale(dtype, sizes, inv, bad, strided):
    dt = np.dtype(dtype)
    host = _grads(sizes, dt, seed=len(sizes))
    for (t, i, v) in bad:   # (tensor, index, value) of the non-finite entries
        host[t][i] = v
    got, hflag, dflag = _run_both(host, inv, strided)
    assert hflag == dflag == (1.0 if bad else 0.0), f"found_inf: host {hflag}, device {dflag}, wanted {bool(bad)}"
    for k, (g, h) in enumerate(zip(got, host)):
        # NOTE: one multiply by a power of two (or 1/3 rounded to float32), one rounding: the same bits
        assert np.array_equal(g.view(np.uint8), h.view(np.uint8)) or np.array_equal(g, h, equal_nan=True), \
            f"gradient {k} of {sizes}: {g[:4]} vs {h[:4]}"
        harness.assert_agree(g, h, f"gradient {k}")


CASES = [
    ((1,), 0.5, [], False),
    ((7, 1000, 33), 2.0 ** -16, [], False),                 # several gradients in one launch
    ((4101, 3, 0, 9), 1.0 / 3.0, [(0, 4100, np.inf)], False),  # inf at the tail of a long one; an empty one
    ((5, 17), 2.0 ** -10, [(1, 0, np.nan)], False),
    ((64, 64), 1.0, [(0, 3, -np.inf), (1, 60, np.nan)], False),  # inv_scale 1: values untouched
    ((300, 20), 0.125, [(1, 19, np.inf)], True),            # strided gradients: copies written back
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_unscale(emu, dtype, case):
    sizes, inv, bad, strided = CASES[case]
    emu.check("case_unscale", dtype=dtype, sizes=list(sizes), inv=inv,
              bad=[[t, i, float(v)] for t, i, v in bad], strided=strided)


def _unscaled(g, inv):
    """fn for harness.compare: the unscaled gradient and the flag (fresh arrays on g's side)."""
    g, f = g.copy(), inv * 0  # NOTE: compare hands the same host array to both runs: do not write into it
    AMP.unscale_([g], inv, f)
    return g, f


def case_check_before_multiply(dtype):
    """A finite gradient that the multiply overflows is not 'found' (PyTorch checks the stored value)."""
    dt = np.dtype(dtype)
    big = float(np.finfo(dt).max) / 2
    g, f = cmp(_unscaled, (np.array([big, 1.0, -big], dt), np.array([4.0], np.float32)), what="overflowing multiply")
    assert f.tolist() == [0.0] and g[1] == 4.0 and np.isinf(g[0]) and np.isinf(g[2]) and g[2] < 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_before_multiply(emu, dtype):
    emu.check("case_check_before_multiply", dtype=dtype)


def case_flag_accumulates(dtype):
    """found_inf is only ever set: a second clean launch keeps an earlier 1 (one read per step)."""
    cp = harness.cupy()
    dt = np.dtype(dtype)
    df = cp.zeros(1, cp.float32)
    inv = cp.asarray(np.array([0.5], np.float32))
    AMP.unscale_([cp.asarray(np.array([np.inf, 2.0], dt))], inv, df)
    clean = cp.asarray(np.array([2.0, 4.0], dt))
    AMP.unscale_([clean], inv, df)
    assert float(df.get()[0]) == 1.0 and clean.get().tolist() == [1.0, 2.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_flag_accumulates(emu, dtype):
    emu.check("case_flag_accumulates", dtype=dtype)


def test_every_kernel_ran(emu):
    """Every __global__ kernel of amp.cu ran for every dtype."""
    harness.assert_every_kernel_ran(emu, __name__, globals(), COVERS, DTYPES)
