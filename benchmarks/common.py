"""Shared helpers for the benchmarks: timing, machine description, result files."""
from __future__ import annotations

import datetime as _dt
import json
import os

# NOTE: one thread for every BLAS/OpenMP pool (NumPy's OpenBLAS, PyTorch's): on a shared 2-core
# machine, pools that spin after each call fight each other when implementations are timed in
# turns. Single-threaded numbers compare the engines, not the thread pools. Set the variables
# yourself before running to override.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
import platform
import statistics
import time
from pathlib import Path

import numpy as np

# NOTE: results go to a folder ignored by git unless a run names another (run.py --out DIR): a local run never
# writes over the recorded tables in results/
RESULTS = Path(__file__).resolve().parent / "results" / "local"


def median_time(fn, repeat=200, warmup=20, min_time=0.0):
    """Median wall time of fn() in seconds (CPU work; for GPU work fn must synchronize)."""
    for _ in range(warmup):
        fn()
    times = []
    t_end = time.perf_counter() + min_time
    while len(times) < repeat or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(fns, repeat=200, warmup=20):
    """Median wall time (s) of each callable, timed in turns (A, B, C, A, B, C, ...) so that a change
    in machine load affects all of them alike: ratios from one call are comparable."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for ts, fn in zip(times, fns):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def try_torch():
    """PyTorch if installed (a peer for comparison only; never a dependency), else None."""
    try:
        import torch  # noqa: PLC0415
    except Exception:
        return None
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    return torch


def machine():
    """A description of where the numbers came from."""
    info = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "platform": platform.platform(), "python": platform.python_version(), "numpy": np.__version__,
            "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "threads": {v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    torch = try_torch()
    info["torch"] = torch.__version__ if torch else None
    import gpugrad as gg  # noqa: PLC0415
    info["gpugrad"] = gg.__version__
    if gg.cuda.is_available():
        import cupy as cp  # noqa: PLC0415
        p = cp.cuda.runtime.getDeviceProperties(0)
        info.update(gpu=p["name"].decode(), cupy=cp.__version__, cuda_driver=cp.cuda.runtime.driverGetVersion(),
                    cuda_runtime=cp.cuda.runtime.runtimeGetVersion())
    return info


def save(name, rows, extra=None):
    """Write rows (list of dicts) and the machine description to RESULTS/<name>-<device>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    m = machine()
    tag = "gpu" if "gpu" in m else "cpu"
    path = RESULTS / f"{name}-{tag}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": m, "rows": rows, **(extra or {})}, indent=2))
    return path


def table(rows, cols, title=None):
    """Format rows as a fixed-width text table."""
    out = []
    if title:
        out.append(title)
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
    out.append("  ".join(c.rjust(widths[c]) for c in cols))
    for r in rows:
        out.append("  ".join(_fmt(r.get(c)).rjust(widths[c]) for c in cols))
    return "\n".join(out)


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)
