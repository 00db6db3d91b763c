"""Recurrent layers: forward + backward of nn.LSTM / nn.GRU / nn.RNN against PyTorch, timed in turns in one run.

``python benchmarks/rnn.py [--device cuda] [--repeat N] [--out DIR]``: the issue's row is LSTM (seq 128, batch 32, input and
hidden 256), float32; the ratio column is gpugrad's median time over PyTorch's (target for the LSTM: <= 1.5 on
the CPU). Also reported: gpugrad's peak extra memory of the step on the CPU (tracemalloc sees NumPy's buffers).
"""
from __future__ import annotations

import argparse
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (sets the thread counts first)
from common import interleaved, save, table, try_torch  # noqa: E402

import numpy as np  # noqa: E402

ROWS = [("LSTM", dict(), 128, 32, 256, 256), ("LSTM", dict(), 32, 64, 128, 128), ("GRU", dict(), 128, 32, 256, 256),
        ("RNN", dict(), 128, 32, 256, 256), ("LSTM", dict(num_layers=2, bidirectional=True), 64, 16, 128, 128)]


def _step(module, x, lib):
    """forward + backward of sum(output) + sum(h_n): the step a training loop runs."""
    def run():
        module.zero_grad()
        out, state = module(x)
        h = state[0] if isinstance(state, tuple) else state
        (out.sum() + h.sum()).backward()
    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--out", default=None, help="folder for the JSON (default benchmarks/results/local/)")
    args = p.parse_args(argv)
    if args.out:
        common.RESULTS = Path(args.out)
    import gpugrad as gg  # noqa: PLC0415
    torch = try_torch()
    rows = []
    for kind, kw, T, B, I, H in ROWS:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((T, B, I)).astype(np.float32)
        gm = getattr(gg.nn, kind)(I, H, **kw).to(args.device)
        gx = gg.tensor(x, device=args.device, requires_grad=True)
        fns = [_step(gm, gx, gg)]
        sync = (lambda: gg.cuda.synchronize()) if args.device.startswith("cuda") else (lambda: None)
        if torch is not None:
            tm = getattr(torch.nn, kind)(I, H, **kw).to(args.device)
            gm.load_state_dict({k: v.detach().cpu().numpy() for k, v in tm.state_dict().items()})
            tx = torch.tensor(x, device=args.device, requires_grad=True)
            tsync = (lambda: torch.cuda.synchronize()) if args.device.startswith("cuda") else (lambda: None)
            tstep = _step(tm, tx, torch)
            fns.append(lambda: (tstep(), tsync()))
        gstep = fns[0]
        fns[0] = lambda: (gstep(), sync())
        times = interleaved(fns, repeat=args.repeat, warmup=2)
        mem = None
        if not args.device.startswith("cuda"):
            tracemalloc.start()
            gstep()
            mem = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        name = f"{kind}" + "".join(f" {k}={v}" for k, v in kw.items())
        row = {"layer": name, "seq": T, "batch": B, "input": I, "hidden": H, "gpugrad_ms": times[0] * 1e3,
               "torch_ms": times[1] * 1e3 if torch is not None else None,
               "ratio": times[0] / times[1] if torch is not None else None, "gpugrad_peak_MiB": mem}
        rows.append(row)
        print(table([row], list(row)) if len(rows) == 1 else table([row], list(row)).splitlines()[1], flush=True)
    print()
    print(table(rows, list(rows[0]), title=f"forward + backward, float32, {args.device}"
                                          + ("" if torch is not None else " (PyTorch not installed)")))
    path = save("rnn", rows, {"device": args.device, "torch": getattr(torch, "__version__", None)})
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
