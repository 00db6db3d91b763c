"""Per-op overhead and the small training step, for two versions of gpugrad timed in turns in one process.

    python benchmarks/before_after.py [REV]        (REV: a git revision, default HEAD~1)

The package at REV is extracted with ``git archive`` and imported as ``gpugrad_before`` next to the
working tree's ``gpugrad``, so a load change on this shared machine hits both alike. Prints a table
with the ratio after/before; records nothing (copy the figures into NOTES.md).
"""
from __future__ import annotations

import importlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, table  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_before(rev):
    tmp = Path(tempfile.mkdtemp())
    tar = tmp / "src.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(tar), rev, "gpugrad", "kernels"], check=True)
    with tarfile.open(tar) as f:
        f.extractall(tmp, filter="data")
    (tmp / "gpugrad").rename(tmp / "gpugrad_before")
    for f in (tmp / "gpugrad_before").rglob("*.py"):  # NOTE: modules that look themselves up by package name
        src = f.read_text()
        if 'modules["gpugrad.' in src:
            f.write_text(src.replace('modules["gpugrad.', 'modules["gpugrad_before.'))
    sys.path.insert(0, str(tmp))
    return importlib.import_module("gpugrad_before")


def tanh_chain(gg, n_ops=50, n=16):
    x = gg.tensor(np.random.default_rng(0).standard_normal(n).astype(np.float32), requires_grad=True)

    def step():
        x.grad = None
        y = x
        for _ in range(n_ops):
            y = y.tanh()
        y.backward(gg.ones_like(y))
    return step


def small_train_step(gg, batch=64, sizes=(64, 128, 10)):
    rng = np.random.default_rng(0)
    layers = []
    for k in range(len(sizes) - 1):
        lin = gg.nn.Linear(sizes[k], sizes[k + 1])
        with gg.no_grad():
            lin.weight.copy_(gg.tensor(rng.standard_normal((sizes[k + 1], sizes[k])).astype(np.float32) * 0.1))
            lin.bias.copy_(gg.zeros(sizes[k + 1]))
        layers += [lin, gg.nn.ReLU()]
    model = gg.nn.Sequential(*layers[:-1])
    opt = gg.optim.SGD(model.parameters(), lr=0.01)
    x = gg.tensor(rng.standard_normal((batch, sizes[0])).astype(np.float32))
    y = gg.tensor(rng.integers(0, sizes[-1], batch))

    def step():
        opt.zero_grad()
        loss = gg.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


def fused_act(name, n):
    """fwd + bwd of a fused activation on n float32 elements (the public API: both versions have it)."""
    def make(gg):
        rng = np.random.default_rng(0)
        x = gg.tensor(rng.standard_normal(n).astype(np.float32), requires_grad=True)
        g = gg.tensor(rng.standard_normal(n).astype(np.float32))
        f = getattr(gg.nn.functional, name)

        def step():
            x.grad = None
            f(x).backward(g)
        return step
    return make


def softmax_ce(gg, rows=256, ncls=1000):
    rng = np.random.default_rng(0)
    x = gg.tensor(rng.standard_normal((rows, ncls)).astype(np.float32), requires_grad=True)
    t = gg.tensor(rng.integers(0, ncls, rows))

    def step():
        x.grad = None
        (gg.nn.functional.cross_entropy(x, t) + gg.nn.functional.log_softmax(x, 1).mean()).backward()
    return step


def adam_step(gg, n=1 << 20):
    p = gg.nn.Parameter(gg.tensor(np.random.default_rng(0).standard_normal(n).astype(np.float32)))
    p.grad = gg.tensor(np.random.default_rng(1).standard_normal(n).astype(np.float32))
    opt = gg.optim.Adam([p], lr=1e-3)
    return opt.step


CASES = (("tanh chain (us/op)", tanh_chain, 50), ("train step 64-128-10 (us)", small_train_step, 1),
         ("relu fwd+bwd 2^16 (us)", fused_act("relu", 1 << 16), 1), ("silu fwd+bwd 2^16 (us)", fused_act("silu", 1 << 16), 1),
         ("gelu fwd+bwd 2^20 (us)", fused_act("gelu", 1 << 20), 1), ("mish fwd+bwd 2^20 (us)", fused_act("mish", 1 << 20), 1),
         ("ce + log_softmax fwd+bwd 256x1000 (us)", softmax_ce, 1), ("adam step 2^20 (us)", adam_step, 1))


def main(argv):
    rev = argv[0] if argv else "HEAD~1"
    before = load_before(rev)
    import gpugrad as after
    rows = []
    for name, make, per in CASES:
        fb, fa = make(before), make(after)
        big = "2^20" in name
        for _ in range(3):
            tb, ta = interleaved([fb, fa], repeat=30 if big else 300, warmup=3 if big else 30)
            rows.append({"bench": name, "before": tb / per * 1e6, "after": ta / per * 1e6, "after/before": ta / tb})
    print(table(rows, ["bench", "before", "after", "after/before"], title=f"before = {rev}, after = working tree"))


if __name__ == "__main__":
    main(sys.argv[1:])
