"""gg.distributed, DistributedDataParallel and DistributedSampler (issue 15).

The MPI cases start real ranks: ``mpiexec -n N python -m mpi4py tests/dist_worker.py`` (the MPICH wheel of the
``mpi``/``dev`` extras ships mpiexec); the parent compares what each rank pickled.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.data import DistributedSampler

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "dist_worker.py"


def _mpiexec():
    here = Path(sys.executable).parent / "mpiexec"  # NOTE: the mpich wheel's, next to this Python
    return str(here) if here.exists() else shutil.which("mpiexec")


def _mpi_missing():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return 'mpi4py is not installed (pip install "gpugrad[mpi]")'
    return None if _mpiexec() else "no mpiexec on PATH (pip install mpich)"


needs_mpi = pytest.mark.skipif(_mpi_missing() is not None, reason=str(_mpi_missing()))


def launch(n, what, out, mpi4py_runner=True, timeout=90):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    runner = ["-m", "mpi4py"] if mpi4py_runner else []
    cmd = [_mpiexec(), "-n", str(n), sys.executable, *runner, str(WORKER), what, str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.fixture(scope="module", params=[2, 1], ids=["2ranks", "1rank"])
def ranks(request, tmp_path_factory):
    n = request.param
    out = tmp_path_factory.mktemp(f"dist{n}")
    p = launch(n, "all", out)
    assert p.returncode == 0, p.stdout + p.stderr
    return n, [pickle.loads((out / f"rank{r}.pkl").read_bytes()) for r in range(n)]


def close(a, b, tol):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if x is None or y is None:
            assert x is None and y is None
        else:
            np.testing.assert_allclose(x, y, rtol=0, atol=tol)


def same(a, b):
    return all((x is None and y is None) or np.array_equal(x, y) for x, y in zip(a, b))


@needs_mpi
def test_collectives_match_their_definitions(ranks):
    w, res = ranks
    x = np.arange(6.0).reshape(2, 3)
    rs = np.arange(w)
    for r, d in enumerate(res):
        c = d["coll"]
        assert (c["rank"], c["world"]) == (r, w)
        np.testing.assert_array_equal(c["SUM"], w * x + rs.sum())
        np.testing.assert_array_equal(c["AVG"], x + (w - 1) / 2)
        np.testing.assert_array_equal(c["MAX"], x + w - 1)
        np.testing.assert_array_equal(c["MIN"], x)
        np.testing.assert_array_equal(c["PRODUCT"], np.prod([x + k for k in rs], axis=0))
        np.testing.assert_array_equal(c["async_sum"], w * x + rs.sum())
        assert c["int_sum"].dtype == np.int64
        np.testing.assert_array_equal(c["int_sum"], w * x + rs.sum())
        np.testing.assert_array_equal(c["noncontig_sum"], w * np.arange(12.0).reshape(3, 4).T + rs.sum())
        assert c["bcast"].dtype == np.float32
        np.testing.assert_array_equal(c["bcast"], x + w - 1)
        for k, g in enumerate(c["gather"]):
            np.testing.assert_array_equal(g, x + k)
        np.testing.assert_array_equal(c["rs"], w * x + rs.sum() + 10 * w * r)
        assert c["obj"] == {"a": 1}


@needs_mpi
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_ranks_on_half_batches_equal_one_process_on_the_full_batch(ranks, opt):
    w, res = ranks
    keys = [k for k in res[0] if k.startswith(f"ddp_{opt}_")]
    assert len(keys) == 4
    for k in keys:
        close(res[0][k], res[0][f"ref_{opt}"], 1e-12)
        # NOTE: a sum of two terms is exact whatever the order: the ranks agree bit for bit, for every bucket size
        assert all(same(d[k], res[0][k]) for d in res)
        assert same(res[0][k], res[0][keys[0]])


@needs_mpi
def test_bucket_boundaries(ranks):
    _, res = ranks
    d = res[0]
    assert d["buckets_25"] == [[3, 2, 1, 0]]  # one bucket, reverse parameter order
    assert d["buckets_1e-06"] == [[3], [2], [1], [0]]  # cap below one parameter: one each
    assert d["buckets_0.0005"] == [[3, 2, 1, 0]]
    assert d["view_shares"] == [[True]]  # gradient_as_bucket_view: .grad lives in the bucket
    # several dtypes: never mixed in one bucket
    assert d["dt_buckets_25"] == [["float64"], ["float32"]]
    assert d["dt_buckets_1e-06"] == [["float64"]] * 2 + [["float32"]] * 2 + [["float64"]] * 2
    for cap in ("1e-06", "25"):
        for g, ref in zip(d[f"dt_{cap}"], d["dt_ref"]):
            assert g.dtype == ref.dtype
            np.testing.assert_allclose(g, ref, rtol=0, atol=1e-12 if g.dtype == np.float64 else 1e-6)
        assert all(same(e[f"dt_{cap}"], d[f"dt_{cap}"]) for e in res)


@needs_mpi
def test_no_sync_accumulates_locally_then_averages_the_sums(ranks):
    w, res = ranks
    for d in res:
        close(d["ns_ddp"], res[0]["ns_ref"], 1e-12)
    if w == 2:  # inside no_sync the gradients are each rank's own
        assert all(not np.allclose(a, b) for a, b in zip(res[0]["ns_local"], res[1]["ns_local"]))


@needs_mpi
def test_unused_parameters(ranks):
    _, res = ranks
    for d in res:
        # a: used everywhere; b: used on rank 0 only (the others contribute zeros); c: unused everywhere (.grad None)
        close(d["un_ddp"], res[0]["un_ref"], 1e-12)
        assert d["un_ddp"][4] is None and d["un_ddp"][5] is None
        msg = d["un_error"]
        assert "find_unused_parameters=True" in msg and "c.weight" in msg and "c.bias" in msg
        assert "gradient hooks" in d["hook_error"] and "would not run" in d["hook_error"]


@needs_mpi
def test_a_failing_rank_ends_the_job(tmp_path):
    p = launch(2, "fail", tmp_path, mpi4py_runner=False, timeout=60)
    assert p.returncode != 0
    err = p.stdout + p.stderr
    assert "ValueError: rank 1 fails on purpose" in err
    assert "rank 1 of 2 failed" in err and "MPI_Abort" in err


def _needs_gpu_nccl():
    if _mpi_missing() or not gg.distributed.is_nccl_available():
        return "needs mpi4py, CuPy with NCCL and a GPU"
    return None if gg.cuda.is_available() else "needs a CUDA GPU"


@pytest.mark.skipif(_needs_gpu_nccl() is not None, reason=str(_needs_gpu_nccl()))
def test_nccl_one_rank(tmp_path):
    p = launch(1, "nccl", tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    d = pickle.loads((tmp_path / "rank0.pkl").read_bytes())
    np.testing.assert_array_equal(d["sum"], np.arange(6.0))
    close(d["ddp"], d["ref"], 1e-12)


# -- DistributedSampler (no MPI needed: num_replicas and rank given) ---------------------------------------------
def assignment(n, world, drop_last, shuffle=False, seed=0, epoch=0):
    out = []
    for r in range(world):
        s = DistributedSampler(list(range(n)), num_replicas=world, rank=r, shuffle=shuffle, seed=seed,
                               drop_last=drop_last)
        s.set_epoch(epoch)
        out.append(list(s))
        assert len(s) == len(out[-1])
    return out


def test_sampler_pads_by_repeating_and_strides_over_ranks():
    assert assignment(10, 4, False) == [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]
    assert assignment(10, 4, True) == [[0, 4], [1, 5], [2, 6], [3, 7]]
    assert assignment(2, 5, False) == [[0], [1], [0], [1], [0]]  # padding longer than the dataset: cycles
    assert assignment(8, 2, True) == assignment(8, 2, False) == [[0, 2, 4, 6], [1, 3, 5, 7]]


def test_sampler_shuffle_is_shared_by_ranks_and_changes_with_the_epoch():
    a = assignment(11, 3, False, shuffle=True, seed=5, epoch=0)
    perm = np.random.default_rng(5).permutation(11)
    assert a == [np.resize(perm, 12)[r::3].tolist() for r in range(3)]
    assert sorted(sum(a, [])) == sorted(list(range(11)) + [int(perm[0])])
    assert assignment(11, 3, False, shuffle=True, seed=5, epoch=1) != a


def test_sampler_errors():
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))


def test_api_without_a_process_group():
    d = gg.distributed
    assert not d.is_initialized() and d.get_rank() == -1 and d.get_world_size() == -1
    with pytest.raises(RuntimeError, match="has not been initialized"):
        d.all_reduce(gg.ones(2))
    with pytest.raises(RuntimeError, match="init_process_group"):
        gg.nn.parallel.DistributedDataParallel(gg.nn.Linear(2, 2))


@needs_mpi
def test_train_nproc_2_matches_one_process_and_resumes(tmp_path):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("GPUGRAD_NPROC", None)

    def train(*a):
        cmd = [sys.executable, "-m", "gpugrad", "train", "--device", "cpu", "--no-progress", *a]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout
    one = train("--epochs", "2", "--out", str(tmp_path / "one"))
    two = train("--epochs", "2", "--out", str(tmp_path / "two"), "--nproc", "2")
    assert two.count("epoch 2/2:") == 1  # only rank 0 prints
    acc = [json.loads((tmp_path / d / "metrics.json").read_text())["history"][-1] for d in ("one", "two")]
    # NOTE: the same global batches (the sampler's strided halves of each window): equal up to rounding
    assert abs(acc[0]["test_acc"] - acc[1]["test_acc"]) <= 0.01
    assert abs(acc[0]["train_loss"] - acc[1]["train_loss"]) < 1e-3
    more = train("--epochs", "3", "--resume", str(tmp_path / "two" / "checkpoint.ggt"), "--nproc", "2")
    assert "resumed from" in more and more.count("epoch 3/3:") == 1
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["epochs"] == 3
