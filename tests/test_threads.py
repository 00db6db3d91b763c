"""gg.set_num_threads / get_num_threads and the block runner of the CPU fallbacks (gpugrad._threads)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import _threads
from gpugrad.fused import activation as A


@pytest.fixture
def threads():
    """Set the thread count for one test, restored after it."""
    before = gg.get_num_threads()
    yield gg.set_num_threads
    gg.set_num_threads(before)


@pytest.mark.parametrize("nthreads", [1, 2, 3])
@pytest.mark.parametrize("n,block", [(0, 4), (1, 4), (3, 4), (4, 4), (5, 4), (1000, 7), (1 << 12, 1 << 8)])
def test_blocks_cover_each_item_once(threads, nthreads, n, block):
    threads(nthreads)
    hits = np.zeros(n, np.int64)
    seen = []

    def fn(s, e):
        assert 0 <= s < e <= n and e - s <= block
        seen.append((s, e))
        hits[s:e] += 1

    _threads.blocks(n, fn, block=block, parallel_from=0)
    assert (hits == 1).all()
    assert sorted(seen) == [(s, min(s + block, n)) for s in range(0, n, block)]


def test_nested_blocks_run_in_order_inside_a_block(threads):
    threads(2)
    out = np.zeros((8, 64))

    def inner(row):
        def fn(s, e):
            out[row, s:e] += 1
        return fn

    _threads.blocks(8, lambda s, e: [_threads.blocks(64, inner(r), block=8, parallel_from=0) for r in range(s, e)],
                    block=1, parallel_from=0)
    assert (out == 1).all()


def test_a_failing_block_raises(threads):
    threads(2)
    done = []

    def fn(s, e):
        if s == 40:
            raise KeyError("block 40")
        done.append(s)

    with pytest.raises(KeyError, match="block 40"):
        _threads.blocks(100, fn, block=1, parallel_from=0)
    assert 40 not in done


def test_errstate_reaches_the_workers(threads):
    """NumPy's errstate is a context variable: the blocks on pool threads see the caller's."""
    threads(2)
    x = np.full(64, 3e38, np.float32)

    def fn(s, e):
        x[s:e] * np.float32(10)

    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        _threads.blocks(64, fn, block=1, parallel_from=0)
    with np.errstate(over="ignore"):
        _threads.blocks(64, fn, block=1, parallel_from=0)  # no warning, no error


def test_set_num_threads_errors_as_pytorch(threads):
    for bad, msg in ((0, "positive integer"), (-2, "positive integer"), (1.5, "an int, but got float"),
                     (True, "an int, but got bool"), ("2", "an int, but got str")):
        with pytest.raises(RuntimeError, match=msg):
            gg.set_num_threads(bad)
    threads(3)
    assert gg.get_num_threads() == 3


def test_errors_match_torch():
    torch = pytest.importorskip("torch")
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(RuntimeError) as ours:
            gg.set_num_threads(bad)
        with pytest.raises(RuntimeError) as theirs:
            torch.set_num_threads(bad)
        assert str(theirs.value).split(",")[0].split("(")[0].strip() in str(ours.value)


def test_default_reads_omp_num_threads():
    env = dict(os.environ, OMP_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", "import gpugrad as gg; print(gg.get_num_threads())"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "3"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_blocks_work_in_a_forked_child(threads):
    threads(2)
    _threads.blocks(8, lambda s, e: None, block=1, parallel_from=0)  # the pool exists in the parent now
    pid = os.fork()
    if pid == 0:  # the child: a pool inherited without its threads would hang here
        hits = np.zeros(64)
        _threads.blocks(64, lambda s, e: hits.__setitem__(slice(s, e), 1), block=1, parallel_from=0)
        os._exit(0 if hits.all() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "silu", "hardswish", "mish", "elu"])
def test_threaded_activations_equal_single_threaded(threads, name):
    """Large inputs run in blocks on the pool: bit for bit the one-thread (and one-call) result."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(1 << 19) * 4).astype(np.float32)
    x[::997] = np.nan
    x[1::991] = np.inf
    g = rng.standard_normal(x.size).astype(np.float32)
    op, p = A.resolve(name, {})
    s = A.fwd(op, x, p) if op.saves_output(p) else x
    with np.errstate(all="ignore"):
        whole = op.np_fwd(x, None, *p), op.np_bwd(g, s, None, *p)
    runs = []
    for n in (1, 2):
        threads(n)
        runs.append((A.fwd(op, x, p), A.bwd(op, g, s, p)))
    for got in runs:
        for a, b in zip(got, whole):
            np.testing.assert_array_equal(a, b)
