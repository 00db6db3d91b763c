"""Per-node overhead: a chain of 50 tanh on a 16-element float32 vector, forward + backward.

Side by side in one run: gpugrad, the same math written by hand in NumPy (the floor for any
NumPy-based engine), and PyTorch CPU when installed. Reports microseconds per op.
"""
from __future__ import annotations

import numpy as np

from common import interleaved, save, table, try_torch

N_OPS, N = 50, 16


def bench_numpy(x0):
    def step():
        ys = []
        y = x0
        for _ in range(N_OPS):
            y = np.tanh(y)
            ys.append(y)
        g = np.ones_like(y)
        for y in reversed(ys):
            g = g * (1 - y * y)
        return g
    return step


def bench_gpugrad(x0):
    import gpugrad as gg
    x = gg.tensor(x0, requires_grad=True)

    def step():
        x.grad = None
        y = x
        for _ in range(N_OPS):
            y = y.tanh()
        y.backward(gg.ones_like(y))
    return step


def bench_torch(torch, x0):
    x = torch.tensor(x0, requires_grad=True)

    def step():
        x.grad = None
        y = x
        for _ in range(N_OPS):
            y = y.tanh()
        y.backward(torch.ones_like(y))
    return step


def main(repeat=300):
    x0 = np.random.default_rng(0).standard_normal(N).astype(np.float32)
    impls = [("numpy by hand", bench_numpy(x0)), ("gpugrad", bench_gpugrad(x0))]
    torch = try_torch()
    if torch is not None:
        impls.append((f"pytorch {torch.__version__}", bench_torch(torch, x0)))
    rows = []
    for (name, _), t in zip(impls, interleaved([f for _, f in impls], repeat=repeat, warmup=30)):
        rows.append({"impl": name, "us_per_op": t / N_OPS * 1e6, "total_us": t * 1e6})
    base = rows[0]["us_per_op"]
    for r in rows:
        r["vs_numpy"] = r["us_per_op"] / base
    if torch is None:
        rows.append({"impl": "pytorch (not installed)"})
    print(table(rows, ["impl", "us_per_op", "vs_numpy", "total_us"],
                title=f"overhead: chain of {N_OPS} tanh on {N} float32, forward+backward (median of {repeat})"))
    print(f"-> {save('overhead', rows)}")
    return rows


if __name__ == "__main__":
    main()
