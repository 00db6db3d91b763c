"""Mixed precision: one training step of the digits models in float32 and under autocast (bfloat16; float16
with a GradScaler), timed in turns in one process; PyTorch's CPU autocast beside them when installed.

On the CPU low precision is emulated (NumPy and ml_dtypes have no bfloat16 arithmetic: each op widens to
float32 and rounds once), so autocast costs time there; the target is "not slower than float32 by more than
3x" for the digits CNN. On a GPU (``--device cuda``) the low-precision step should be faster than float32.

    python benchmarks/run.py amp [--device cuda] [--repeat 40]
"""
from __future__ import annotations

import argparse

import numpy as np

from common import interleaved, save, table, try_torch

LIMIT = 3.0


def _batch(model_name, rng):
    x = rng.random((32, 1, 8, 8), dtype=np.float32)
    return x, rng.integers(0, 10, 32)


def gpugrad_steps(model_name, device):
    import gpugrad as gg
    from gpugrad import models
    from gpugrad.nn import functional as F
    rng = np.random.default_rng(0)
    x, y = _batch(model_name, rng)
    xt, yt = gg.tensor(x, device=device), gg.tensor(y, device=device)
    sync = gg.cuda.synchronize if device != "cpu" else (lambda: None)
    dev = "cuda" if device != "cpu" else "cpu"
    out = []
    for name, dt in (("float32", None), ("autocast bf16", getattr(gg, "bfloat16", None)), ("autocast fp16 + scaler", gg.float16)):
        if name != "float32" and dt is None:
            continue  # no ml_dtypes: no bfloat16 row
        gg.manual_seed(0)
        cfg = {"model": model_name, "in_size": 8, "in_channels": 1, "num_classes": 10}
        model = models.build_model(cfg).to(device)
        opt = gg.optim.SGD(model.parameters(), lr=0.01)
        scaler = gg.amp.GradScaler(dev) if dt == gg.float16 else None

        def step(model=model, opt=opt, dt=dt, scaler=scaler):
            opt.zero_grad()
            with gg.autocast(dev, dtype=dt or gg.float16, enabled=dt is not None):
                loss = F.cross_entropy(model(xt), yt)
            if scaler is None:
                loss.backward()
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            sync()
        out.append((f"gpugrad {name}", step))
    return out


def torch_steps(torch, model_name, device):
    if torch is None:
        return []
    tn = torch.nn
    rng = np.random.default_rng(0)
    x, y = _batch(model_name, rng)
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    out = []
    for name, dt in (("float32", None), ("autocast bf16", torch.bfloat16)):
        torch.manual_seed(0)
        if model_name == "cnn":
            m = tn.Sequential(tn.Conv2d(1, 16, 3, padding=1), tn.ReLU(), tn.Conv2d(16, 32, 3, padding=1), tn.ReLU(),
                              tn.MaxPool2d(2), tn.Flatten(), tn.Linear(512, 64), tn.ReLU(), tn.Linear(64, 10))
        else:
            m = tn.Sequential(tn.Flatten(), tn.Linear(64, 128), tn.ReLU(), tn.Linear(128, 10))
        m = m.to(device)
        opt = torch.optim.SGD(m.parameters(), lr=0.01)
        dev = "cuda" if device != "cpu" else "cpu"

        def step(m=m, opt=opt, dt=dt):
            opt.zero_grad()
            with torch.autocast(dev, dtype=dt or torch.bfloat16, enabled=dt is not None):
                loss = torch.nn.functional.cross_entropy(m(xt), yt)
            loss.backward()
            opt.step()
            if dev == "cuda":
                torch.cuda.synchronize()
        out.append((f"pytorch {name}", step))
    return out


def main(argv=()):
    ap = argparse.ArgumentParser(prog="run.py amp")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=40)
    args = ap.parse_args(list(argv))
    torch = try_torch()
    rows = []
    for model_name in ("mlp", "cnn"):
        steps = gpugrad_steps(model_name, args.device) + torch_steps(torch, model_name, args.device)
        ts = interleaved([f for _, f in steps], repeat=args.repeat, warmup=5)
        base = {"gpugrad": ts[0]}
        for (name, _), t in zip(steps, ts):
            if name.startswith("pytorch") and "pytorch" not in base:
                base["pytorch"] = t
            ref = base["pytorch" if name.startswith("pytorch") else "gpugrad"]
            rows.append({"model": f"digits {model_name} b32", "impl": name, "ms": t * 1e3, "vs_float32": t / ref})
    print(table(rows, ["model", "impl", "ms", "vs_float32"],
                title=f"training step, float32 vs autocast, {args.device} (in turns, median of {args.repeat}); "
                      f"target on the CPU: gpugrad autocast <= {LIMIT:g}x its float32 step for the CNN"))
    method = ("digits MLP (64-128-10) and CNN of `gpugrad train`, batch 32, SGD; each impl's step timed in turns "
              "(common.interleaved); vs_float32 = step time / the same library's float32 step")
    print(f"-> {save('amp' + ('' if args.device == 'cpu' else '-cuda'), rows, extra={'method': method})}")
    return rows
