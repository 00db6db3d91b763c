"""Attention forward + backward: gpugrad's fused scaled_dot_product_attention (the blocked NumPy fallback on
the CPU, the CUDA kernels on a GPU) against the materialised path (matmul + softmax in gpugrad's core ops,
which keeps the (L, S) scores and probabilities) and PyTorch's scaled_dot_product_attention.

Time: median of a few runs, the implementations timed in turns in one process, single-threaded (common.py).
Peak extra memory: each implementation runs in a fresh subprocess, once to warm up and once measured; the
number is the peak resident memory of the measured step minus the resident memory before it (gradients and
every temporary count, the inputs do not). Target (issue 16): at seq 4096 the fused path uses at most 1/4 of the materialised path's extra memory.

    python benchmarks/attention.py [--seqs 1024 4096] [--batch 8 1] [--heads 8] [--dim 64] [--repeat 3]

NOTE: the issue's batch 8 x heads 8 at seq 4096 means (64, 4096, 4096) float32 score matrices (4.3 GB each; the
materialised backward holds several) and ~1 TFLOP per step: on a 2-core machine the default runs seq 4096 at
batch 1 (heads 8) instead; pass ``--batch 8 8`` on a larger machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

from common import interleaved, save, table, try_torch

IMPLS = ("gpugrad fused", "gpugrad materialised", "torch sdpa")


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _step(impl, b, h, n, d, seed=0):
    """A function running one forward + backward of ``impl`` on fixed inputs."""
    rng = np.random.default_rng(seed)
    arrs = [rng.standard_normal((b, h, n, d)).astype(np.float32) for _ in range(3)]
    g = rng.standard_normal((b, h, n, d)).astype(np.float32)
    if impl.startswith("torch"):
        torch = try_torch()
        ts = [torch.tensor(a, requires_grad=True) for a in arrs]
        tg = torch.tensor(g)

        def run():
            torch.nn.functional.scaled_dot_product_attention(*ts).backward(tg)
            for t in ts:
                t.grad = None  # NOTE: freed after each step, so a measured step allocates its gradients anew
        return run
    import gpugrad as gg  # noqa: PLC0415
    import gpugrad.nn.functional as F  # noqa: PLC0415
    from gpugrad.fused.attention import c_attention  # noqa: PLC0415
    ts = [gg.tensor(a, requires_grad=True) for a in arrs]
    gt = gg.tensor(g)
    fn = F.scaled_dot_product_attention if impl == "gpugrad fused" else c_attention

    def run():
        fn(*ts).backward(gt)
        for t in ts:
            t.grad = None
    return run


def _measure(impl, b, h, n, d):
    """One warm-up step (lazy imports, BLAS buffers, allocator pools), then the peak resident memory of a
    second step above the resident memory before it. NOTE: writing 5 to /proc/self/clear_refs resets the
    peak (VmHWM) to the current resident size (Linux)."""
    run = _step(impl, b, h, n, d)
    run()
    import gc  # noqa: PLC0415
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kb("VmRSS")
    run()
    print(json.dumps({"extra_mb": max(_status_kb("VmHWM") - base, 0) / 1024}))


def _extra_mb(impl, b, h, n, d):
    out = subprocess.run([sys.executable, __file__, "--measure", impl, str(b), str(h), str(n), str(d)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["extra_mb"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seqs", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--batch", type=int, nargs="+", default=[8, 1], help="one per seq")
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--measure", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.measure:
        impl, *nums = a.measure
        return _measure(impl, *map(int, nums))
    impls = [i for i in IMPLS if not i.startswith("torch") or try_torch() is not None]
    if len(impls) < len(IMPLS):
        print("PyTorch is not installed: its row is left out")
    rows = []
    for n, b in zip(a.seqs, a.batch):
        fns = [_step(i, b, a.heads, n, a.dim) for i in impls]
        times = interleaved(fns, repeat=a.repeat, warmup=1)
        del fns
        mems = {i: _extra_mb(i, b, a.heads, n, a.dim) for i in impls}
        for i, t in zip(impls, times):
            rows.append({"impl": i, "batch": b, "heads": a.heads, "seq": n, "dim": a.dim, "fwd+bwd s": t,
                         "extra MB": mems[i], "mem / materialised": mems[i] / mems["gpugrad materialised"]})
    cols = ["impl", "batch", "heads", "seq", "dim", "fwd+bwd s", "extra MB", "mem / materialised"]
    print(table(rows, cols, "attention forward+backward, float32, CPU, single-threaded"))
    print(f"results: {save('attention', rows)}")


if __name__ == "__main__":
    main()
