"""Data-parallel throughput (issue 15): MLP 784-512-512-10, float32, batch 256 per rank, SGD, one BLAS thread
per rank; 1 rank (plain model and DDP) vs 2 ranks under mpiexec, one bucket (the all-reduce starts when the whole
backward is done: no overlap) vs 1 MiB buckets (the first starts while the first layer's gradients are computed).

    python benchmarks/distributed.py [--steps 40]      # starts the mpiexec runs itself; writes results/distributed-cpu.json
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def rank_main(steps, cap, plain):
    import numpy as np

    import gpugrad as gg
    import gpugrad.distributed as dist
    from gpugrad import nn
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    gg.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    net = model if plain else nn.parallel.DistributedDataParallel(model, bucket_cap_mb=cap)
    opt = gg.optim.SGD(model.parameters(), lr=0.01)
    r = np.random.default_rng(rank)
    x = gg.tensor(r.standard_normal((256, 784), dtype=np.float32))
    y = gg.tensor(r.integers(0, 10, 256))

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    for _ in range(3):
        step()
    dist.barrier()
    if not plain:
        net.comm_wait_s = 0.0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dist.barrier()
    dt = time.perf_counter() - t0
    if rank == 0:
        print(json.dumps({"ranks": world, "ddp": not plain, "bucket_cap_mb": None if plain else cap,
                          "buckets": None if plain else len(net.bucket_indices), "step_ms": 1e3 * dt / steps,
                          "samples_per_s": world * 256 * steps / dt,
                          "allreduce_wait_ms_per_step": None if plain else 1e3 * net.comm_wait_s / steps}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rank", nargs=2, metavar=("CAP", "PLAIN"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.rank:
        return rank_main(a.steps, float(a.rank[0]), a.rank[1] == "1")
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    mpiexec = mpiexec if Path(mpiexec).exists() else shutil.which("mpiexec")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    rows = []
    for n, cap, plain in ((1, 25, True), (1, 25, False), (2, 25, False), (2, 1, False)):
        out = subprocess.run([mpiexec, "-n", str(n), sys.executable, __file__, "--steps", str(a.steps),
                              "--rank", str(cap), "1" if plain else "0"], env=env, capture_output=True, text=True,
                             check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    base = rows[0]["samples_per_s"]
    for r in rows:
        r["speedup_vs_1_rank"] = r["samples_per_s"] / base
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "distributed-cpu.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("| ranks | model | buckets | step | samples/s | vs 1 rank | all-reduce wait/step |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        w = "-" if r["allreduce_wait_ms_per_step"] is None else f"{r['allreduce_wait_ms_per_step']:.2f} ms"
        kind = "plain" if not r["ddp"] else f"DDP, cap {r['bucket_cap_mb']:g} MiB"
        print(f"| {r['ranks']} | {kind} | {r['buckets'] or '-'} | {r['step_ms']:.1f} ms | {r['samples_per_s']:.0f} | "
              f"{r['speedup_vs_1_rank']:.2f}x | {w} |")


if __name__ == "__main__":
    main()
