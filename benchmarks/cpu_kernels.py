"""Issue 14's CPU kernels against PyTorch CPU (one thread): convolution, exact GELU, the normalisation
layers, the backward of indexing with repeated indices, and the digits CNN training step.

Targets: every row at most 1.5x PyTorch forward+backward (the digits CNN step at most 1.2x). Rows are
``ops_vs_torch.Case``s run by the same runner (gpugrad and torch in turns, medians, fixed random output
gradients); the CNN step comes from ``train_step.cnn_steps`` (the `train --model cnn` model, batch 32).

    python benchmarks/run.py cpu [--budget 2] [--only conv2d,gelu]
"""
from __future__ import annotations

import time

import numpy as np

from common import interleaved, save, table
from ops_vs_torch import Case, bench_ops, engines, setup

LIMIT = 1.5
CNN_LIMIT = 1.2
_rng = np.random.default_rng(0)


def _f32(*shape):
    return _rng.standard_normal(shape).astype(np.float32)


def _conv_cases():
    out = []
    for shape in ((64, 32, 32, 32), (32, 3, 64, 64)):
        x = _f32(*shape)
        c = shape[1]
        for stride in (1, 2):
            for groups in (1, c):
                if groups == c == 3:
                    continue  # NOTE: depthwise rows on the 32-channel shape only (3 channels: the same op as groups=1 x3)
                w = (_f32(c if groups == 1 else c, 1 if groups == c else c, 3, 3) * 0.1).astype(np.float32)
                b = _f32(w.shape[0])
                tag = f"conv2d s{stride} {'dw' if groups > 1 else 'g1'}"
                out.append(Case(tag, "x".join(map(str, shape)), [x, w, b],
                                lambda m, a, w_, b_, s=stride, g=groups: m.nn.functional.conv2d(
                                    a, w_, b_, stride=s, padding=1, groups=g), diff=(0, 1, 2)))
    return out


def _norm_cases():
    x = _f32(64, 32, 32, 32)
    w, b = _f32(32), _f32(32)
    F = lambda m: m.nn.functional  # noqa: E731
    return [
        Case("group_norm", "64x32x32x32 g8 affine", [x, w, b],
             lambda m, a, w_, b_: F(m).group_norm(a, 8, w_, b_), diff=(0, 1, 2)),
        Case("layer_norm", "64x32x32x32 last 32 affine", [x, w, b],
             lambda m, a, w_, b_: F(m).layer_norm(a, (32,), w_, b_), diff=(0, 1, 2)),
        Case("batch_norm", "64x32x32x32 train affine", [x, w, b],
             lambda m, a, w_, b_: F(m).batch_norm(a, None, None, w_, b_, training=True), diff=(0, 1, 2)),
    ]


def _gelu_cases():
    x = _f32(1 << 22)
    return [Case("gelu exact", "2^22", [x], lambda m, a: m.nn.functional.gelu(a)),
            Case("gelu tanh", "2^22", [x], lambda m, a: m.nn.functional.gelu(a, approximate="tanh"))]


def _index_cases():
    src = _f32(1000, 64)
    rows = _rng.integers(0, 1000, 20000).astype(np.int64)  # 20k rows drawn from 1000: every row repeated
    g_idx = np.broadcast_to(rows[:, None], (20000, 64)).copy()
    F = lambda m: m.nn.functional  # noqa: E731
    return [
        Case("x[idx] repeated", "1000x64, 20k rows", [src, rows], lambda m, a, i: a[i]),
        Case("embedding repeated", "1000x64, 20k rows", [src, rows], lambda m, a, i: F(m).embedding(i, a)),
        Case("index_select repeated", "1000x64, 20k rows", [src, rows], lambda m, a, i: m.index_select(a, 0, i)),
        Case("gather repeated", "1000x64, 20k rows", [src, g_idx], lambda m, a, i: m.gather(a, 0, i)),
        Case("scatter_add repeated", "20k rows into 1000x64", [np.zeros((1000, 64), np.float32), g_idx,
                                                               _f32(20000, 64)],
             lambda m, z, i, s: z.scatter_add(0, i, s), diff=(0, 2)),
    ]


def cases():
    return _conv_cases() + _gelu_cases() + _norm_cases() + _index_cases()


def cnn_row(torch, repeat):
    from train_step import cnn_steps
    steps = cnn_steps("cpu", torch)
    ts = interleaved([f for _, f in steps], repeat=repeat, warmup=5)
    row = {"op": "digits CNN train step", "shape": "b32 1x8x8", "check": "-"}
    for (name, _), t in zip(steps, ts):
        row[{"gpugrad": "fb_gg_ms", "gpugrad compiled": "fb_compiled_ms"}.get(name, "fb_torch_ms")] = t * 1e3
    row["fb_ratio"] = row["fb_gg_ms"] / row["fb_torch_ms"]
    row["compiled_ratio"] = row["fb_compiled_ms"] / row["fb_torch_ms"]
    print(f"{row['op']:24s} eager {row['fb_ratio']:6.2f}x   compiled {row['compiled_ratio']:6.2f}x", flush=True)
    return row


def main(argv=()):
    run = setup("run.py cpu", argv, "cpu_kernels")  # --only cnn: the CNN step row
    if run is None:
        return []
    args, gg, torch, only = run
    t0 = time.perf_counter()
    rows = bench_ops(gg, torch, args.budget, args.min_repeat, args.max_repeat, only, cases(), LIMIT)
    if not only or any(o.lower() in "digits cnn train step" for o in only):
        rows.append(cnn_row(torch, repeat=max(args.min_repeat, 40)))
    wall = time.perf_counter() - t0
    for r in rows:
        lim = CNN_LIMIT if r["op"].startswith("digits") else LIMIT
        r["over_target"] = (r.get("fb_ratio") or 0) > lim
    print()
    print(table(rows, ["op", "shape", "fwd_gg_ms", "fwd_torch_ms", "fwd_ratio", "fb_gg_ms", "fb_torch_ms",
                       "fb_ratio", "check"],
                title=f"{engines(gg, torch)}, float32; ratio = gpugrad/torch "
                      f"(median, interleaved); fb = forward+backward; target fb <= {LIMIT:g}x "
                      f"(CNN step <= {CNN_LIMIT:g}x); run {wall:.0f} s"))
    over = [r["op"] for r in rows if r["over_target"]]
    print("\nover target (fwd+bwd): " + (", ".join(over) or "none"))
    method = (f"as benchmarks/ops_vs_torch.py (float32, torch.set_num_threads(1), BLAS threads 1, "
              f"gg.set_num_threads({gg.get_num_threads()}), in turns, "
              "median); the CNN step: train_step.cnn_steps, SGD, batch 32, gpugrad eager / compiled / torch in turns.")
    if only:
        print("(subset of the rows: results not saved)")
    else:
        print(f"-> {save('cpu_kernels', rows, extra={'method': method, 'limit_ratio': LIMIT, 'wall_s': wall})}")
    return rows
