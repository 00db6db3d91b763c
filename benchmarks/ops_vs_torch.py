"""The ops added in issue 11 against PyTorch CPU, forward and forward + backward.

Quality bar: no op slower than 3x PyTorch CPU (single thread) on a 2^20-element input or a
comparable shape (1024x1024 matmul-like, 256 batched 64x64 for linalg, (8, 16, 64, 64) for
conv/interpolate). For each op: a forward case (inputs without requires_grad, no graph) and a
forward + backward case (leaves with requires_grad, ``.grad = None``, forward, then
``autograd.backward(outputs, fixed random output gradients)``), the same sequence in both
engines. gpugrad and torch are timed in turns (``common.interleaved``), median per case; the
repeat count is chosen per case from a first call so that each case takes about ``--budget``
seconds (at least ``--min-repeat`` timed calls). Optimizers: one ``step()`` on a 2^20-element
parameter with a fixed gradient (the "fwd" column). Ratios are gpugrad / torch; > 3 is flagged.
The "check" column compares the first compared output (values; for decompositions only the
basis-independent part) with PyTorch's.

    python benchmarks/run.py ops [--budget 2] [--only cumsum,sort] [--min-repeat 7]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from common import interleaved, save, table, try_torch

LIMIT = 3.0
N = 1 << 20
_rng = np.random.default_rng(0)


def _f32(*shape, lo=None, hi=None):
    if lo is None:
        return _rng.standard_normal(shape).astype(np.float32)
    return _rng.uniform(lo, hi, shape).astype(np.float32)


def _i64(hi, *shape):
    return _rng.integers(0, hi, shape).astype(np.int64)


def _spd(b, n):
    a = _f32(b, n, n)
    return (a @ a.transpose(0, 2, 1) / n + np.eye(n, dtype=np.float32)).astype(np.float32)


def _sym(b, n):
    a = _f32(b, n, n)
    return ((a + a.transpose(0, 2, 1)) / 2).astype(np.float32)


class Case:
    """op(m, *inputs) with m = gpugrad or torch; diff: positions of the differentiable inputs
    (None: forward only); check: index of the output compared with torch (None: no check);
    compare(inputs, output) -> what is compared (default: the output itself)."""

    def __init__(self, name, shape, inputs, op, diff=(0,), check=0, compare=None):
        self.name, self.shape, self.inputs, self.op = name, shape, inputs, op
        self.diff, self.check, self.compare = diff, check, compare


def _outs(y):
    """The outputs of an op as a list (namedtuples and tuples flattened)."""
    return list(y) if isinstance(y, (tuple, list)) else [y]


def _is_float(t):
    return t.dtype.is_floating_point if hasattr(t.dtype, "is_floating_point") else \
        np.issubdtype(np.dtype(str(t.dtype).replace("torch.", "").replace("gpugrad.", "")), np.floating)


def cases():
    F = lambda m: m.nn.functional  # noqa: E731
    x = _f32(1024, 1024)
    pos = _f32(1024, 1024, lo=0.1, hi=10.0)
    near1 = (1 + 1e-3 * _rng.standard_normal((1024, 1024))).astype(np.float32)
    y2 = _f32(1024, 1024)
    idx_row = _i64(1024, 1024, 1024)
    mask = _rng.random((1024, 1024)) < 0.5
    half0 = np.where(mask, x, 0).astype(np.float32)
    img = _f32(8, 16, 64, 64)
    probs = _f32(1024, 1024, lo=0.01, hi=0.99)
    tgt = (probs / probs.sum(1, keepdims=True)).astype(np.float32)
    logp = np.log(tgt[:, ::-1]).astype(np.float32)  # another distribution: KL well away from 0
    nanx = x.copy()
    nanx.reshape(-1)[_i64(N, 1 << 14)] = np.nan
    nanx.reshape(-1)[_i64(N, 1 << 12)] = np.inf
    A, B, spd, sym = _f32(256, 64, 64), _f32(256, 64, 64), _spd(256, 64), _sym(256, 64)
    A = (A + 8 * np.eye(64, dtype=np.float32)).astype(np.float32)  # well conditioned
    bmm_a, bmm_b = _f32(16, 256, 256), _f32(16, 256, 256)
    return [
        # indexing (ops/index.py)
        Case("gather", "1024x1024 dim1", [x, idx_row], lambda m, a, i: m.gather(a, 1, i)),
        Case("index_select", "1024x1024 dim0", [x, _i64(1024, 1024)], lambda m, a, i: m.index_select(a, 0, i)),
        Case("scatter_reduce sum", "1024x1024 dim1", [x, idx_row, y2],
             lambda m, a, i, s: m.scatter_reduce(a, 1, i, s, "sum"), diff=(0, 2)),
        Case("scatter_reduce amax", "1024x1024 dim1", [x, idx_row, y2],
             lambda m, a, i, s: m.scatter_reduce(a, 1, i, s, "amax"), diff=(0, 2)),
        Case("take_along_dim", "1024x1024 dim1", [x, idx_row], lambda m, a, i: m.take_along_dim(a, i, 1)),
        Case("masked_select", "2^20, 50%", [x, mask], lambda m, a, k: m.masked_select(a, k)),
        Case("nonzero", "2^20, 50%", [half0], lambda m, a: m.nonzero(a), diff=None),
        # sorts, scans, reductions (ops/scan.py)
        Case("sort", "1024x1024 dim-1", [x], lambda m, a: m.sort(a, -1)),
        Case("argsort", "1024x1024 dim-1", [x], lambda m, a: m.argsort(a, -1), diff=None,
             compare=lambda ins, i: np.take_along_axis(ins[0], i, -1)),  # ties: compare the values
        Case("topk k=16", "1024x1024 dim-1", [x], lambda m, a: m.topk(a, 16, -1)),
        Case("cumsum", "1024x1024 dim1", [x], lambda m, a: m.cumsum(a, 1)),
        Case("cumprod", "1024x1024 dim1", [near1], lambda m, a: m.cumprod(a, 1)),
        Case("logcumsumexp", "1024x1024 dim1", [x], lambda m, a: m.logcumsumexp(a, 1)),
        Case("prod", "1024x1024 dim1", [near1], lambda m, a: m.prod(a, 1)),
        Case("median", "1024x1024 dim-1", [x], lambda m, a: m.median(a, -1)),
        Case("median (all)", "2^20", [x], lambda m, a: m.median(a)),
        Case("quantile q=.5", "1024x1024 dim-1", [x], lambda m, a: m.quantile(a, 0.5, dim=-1)),
        Case("unique", "2^20 int64 <1000", [_i64(1000, N)], lambda m, a: m.unique(a), diff=None),
        Case("bincount", "2^20 int64 <1024", [_i64(1024, N)], lambda m, a: m.bincount(a), diff=None),
        # elementwise math (ops/math.py)
        Case("expm1", "2^20", [x], lambda m, a: m.expm1(a)),
        Case("log2", "2^20", [pos], lambda m, a: m.log2(a)),
        Case("atan2", "2^20", [x, y2], lambda m, a, b: m.atan2(a, b), diff=(0, 1)),
        Case("erf", "2^20", [x], lambda m, a: m.erf(a)),
        Case("erfinv", "2^20", [_f32(1024, 1024, lo=-0.99, hi=0.99)], lambda m, a: m.erfinv(a)),
        Case("lgamma", "2^20", [pos], lambda m, a: m.lgamma(a)),
        Case("digamma", "2^20", [pos], lambda m, a: m.digamma(a)),
        Case("logaddexp", "2^20", [x, y2], lambda m, a, b: m.logaddexp(a, b), diff=(0, 1)),
        Case("hypot", "2^20", [x, y2], lambda m, a, b: m.hypot(a, b), diff=(0, 1)),
        Case("nan_to_num", "2^20, 1.6% nan/inf", [nanx], lambda m, a: m.nan_to_num(a)),
        Case("hardswish", "2^20", [x], lambda m, a: F(m).hardswish(a)),
        # shape ops (ops/math.py)
        Case("repeat (2,1)", "1024x1024", [x], lambda m, a: a.repeat(2, 1)),
        Case("repeat_interleave 2", "1024x1024 dim0", [x], lambda m, a: m.repeat_interleave(a, 2, dim=0)),
        Case("roll", "1024x1024 (3,5)", [x], lambda m, a: m.roll(a, (3, 5), (0, 1))),
        Case("tile (1,2)", "1024x1024", [x], lambda m, a: m.tile(a, (1, 2))),
        Case("tril", "1024x1024", [x], lambda m, a: m.tril(a)),
        # contractions (ops/linalg2.py)
        Case("einsum bij,bjk->bik", "16x256x256", [bmm_a, bmm_b],
             lambda m, a, b: m.einsum("bij,bjk->bik", a, b), diff=(0, 1)),
        Case("einsum ii-> (trace)", "1024x1024", [x], lambda m, a: m.einsum("ii->", a)),
        Case("tensordot dims=1", "1024x1024 @ 1024x1024", [x, y2],
             lambda m, a, b: m.tensordot(a, b, dims=([1], [0])), diff=(0, 1)),
        Case("outer", "1024 x 1024", [_f32(1024), _f32(1024)], lambda m, a, b: m.outer(a, b), diff=(0, 1)),
        # gg.linalg
        Case("linalg.inv", "256x64x64", [A], lambda m, a: m.linalg.inv(a)),
        Case("linalg.det", "256x64x64", [A], lambda m, a: m.linalg.det(a)),
        Case("linalg.solve", "256x64x64, B 256x64x64", [A, B], lambda m, a, b: m.linalg.solve(a, b), diff=(0, 1)),
        Case("linalg.cholesky", "256x64x64 SPD", [spd], lambda m, a: m.linalg.cholesky(a)),
        Case("linalg.qr", "256x64x64", [A], lambda m, a: m.linalg.qr(a), check=None),
        Case("linalg.svd", "256x64x64 reduced", [A], lambda m, a: m.linalg.svd(a, full_matrices=False), check=1),
        Case("linalg.eigh", "256x64x64 sym", [sym], lambda m, a: m.linalg.eigh(a), check=0),
        # nn.functional
        Case("conv1d 16->16 k3", "8x16x8192", [_f32(8, 16, 8192), _f32(16, 16, 3), _f32(16)],
             lambda m, a, w, b: F(m).conv1d(a, w, b, padding=1), diff=(0, 1, 2)),
        Case("conv_transpose2d k4 s2", "8x16x64x64 -> 128x128", [img, _f32(16, 16, 4, 4) * 0.1, _f32(16)],
             lambda m, a, w, b: F(m).conv_transpose2d(a, w, b, stride=2, padding=1), diff=(0, 1, 2)),
        Case("interpolate bilinear x2", "8x16x64x64", [img],
             lambda m, a: F(m).interpolate(a, scale_factor=2, mode="bilinear", align_corners=False)),
        Case("interpolate nearest x2", "8x16x64x64", [img],
             lambda m, a: F(m).interpolate(a, scale_factor=2, mode="nearest")),
        Case("pixel_shuffle 2", "8x16x64x64", [img], lambda m, a: F(m).pixel_shuffle(a, 2)),
        Case("binary_cross_entropy", "2^20 mean", [probs, _f32(1024, 1024, lo=0, hi=1)],
             lambda m, p, t: F(m).binary_cross_entropy(p, t)),
        Case("kl_div batchmean", "1024x1024", [logp, tgt],
             lambda m, a, t: F(m).kl_div(a, t, reduction="batchmean")),
        Case("cosine_similarity", "1024x1024 dim1", [x, y2],
             lambda m, a, b: F(m).cosine_similarity(a, b, dim=1), diff=(0, 1)),
        Case("rms_norm", "1024x1024, w 1024", [x, _f32(1024)],
             lambda m, a, w: F(m).rms_norm(a, (1024,), w), diff=(0, 1)),
        Case("instance_norm", "8x16x64x64 affine", [img, _f32(16), _f32(16)],
             lambda m, a, w, b: F(m).instance_norm(a, weight=w, bias=b), diff=(0, 1, 2)),
    ]


OPTIMIZERS = ("NAdam", "RAdam", "Adamax")


class _Engine:
    def __init__(self, m, name):
        self.m, self.name = m, name

    def leaf(self, a, grad):
        t = self.m.from_numpy(np.array(a, copy=True))
        return t.requires_grad_() if grad else t

    def to_np(self, t):
        return np.asarray(t.detach().numpy() if hasattr(t, "detach") else t)


def _prepare(case, eng):
    """(forward callable, forward+backward callable or None, first forward's outputs)."""
    m = eng.m
    fwd_in = [eng.leaf(a, False) for a in case.inputs]

    def fwd():
        with m.no_grad():
            return case.op(m, *fwd_in)
    outs = _outs(fwd())
    if case.diff is None:
        return fwd, None, outs
    fb_in = [eng.leaf(a, k in case.diff) for k, a in enumerate(case.inputs)]
    leaves = [fb_in[k] for k in case.diff]
    y = _outs(case.op(m, *fb_in))
    keep = [k for k, t in enumerate(y) if _is_float(t) and t.requires_grad]
    rng = np.random.default_rng(1)
    gs = [m.from_numpy(rng.standard_normal(tuple(y[k].shape)).astype(np.float32)) for k in keep]

    def fb():
        for t in leaves:
            t.grad = None
        ys = _outs(case.op(m, *fb_in))
        m.autograd.backward([ys[k] for k in keep], gs)
    return fwd, fb, outs


def _check(case, eng_g, eng_t, og, ot):
    if case.check is None:
        return "-"
    a, b = eng_g.to_np(og[case.check]), eng_t.to_np(ot[case.check])
    if case.compare is not None:
        a, b = case.compare(case.inputs, a), case.compare(case.inputs, b)
    if a.shape != b.shape:
        return "SHAPE"
    if not np.issubdtype(a.dtype, np.floating):
        return "ok" if np.array_equal(a, b) else "DIFF"
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    scale = max(float(np.nanmax(np.abs(b64))) if b64.size else 0.0, 1e-30)
    ok = np.allclose(a64, b64, rtol=1e-3, atol=1e-4 * scale, equal_nan=True)
    return "ok" if ok else f"DIFF {float(np.nanmax(np.abs(a64 - b64))) / scale:.1e}"


def _time_pair(fg, ft, budget, min_repeat, max_repeat):
    """Median (gpugrad, torch) seconds, in turns; repeat count from one probe call each."""
    t0 = time.perf_counter()
    fg()
    t1 = time.perf_counter()
    ft()
    t2 = time.perf_counter()
    per_round = (t1 - t0) + (t2 - t1)
    repeat = int(min(max_repeat, max(min_repeat, budget / max(per_round, 1e-6))))
    warmup = 1 if per_round > 0.05 else 3
    tg, tt = interleaved([fg, ft], repeat=repeat, warmup=warmup)
    return tg, tt, repeat


def _flag(r, limit=LIMIT):
    return f"  <-- >{limit:g}x" if r is not None and r > limit else ""


def bench_ops(gg, torch, budget, min_repeat, max_repeat, only, case_list=None, limit=LIMIT):
    """One row per case of ``case_list`` (default: this module's cases()) whose name contains an ``only``."""
    eg, et = _Engine(gg, "gpugrad"), _Engine(torch, "torch")
    rows = []
    for c in cases() if case_list is None else case_list:
        if only and not any(o in c.name for o in only):
            continue
        try:
            gf, gb, og = _prepare(c, eg)
            tf, tb, ot = _prepare(c, et)
        except Exception as e:  # a failing op is a row, not the end of the run
            rows.append({"op": c.name, "shape": c.shape, "error": f"{type(e).__name__}: {e}"[:200]})
            print(f"{c.name}: {rows[-1]['error']}", flush=True)
            continue
        r = {"op": c.name, "shape": c.shape, "check": _check(c, eg, et, og, ot)}
        tg, tt, n = _time_pair(gf, tf, budget, min_repeat, max_repeat)
        r.update(fwd_gg_ms=tg * 1e3, fwd_torch_ms=tt * 1e3, fwd_ratio=tg / tt, fwd_repeat=n)
        if gb is not None:
            try:
                tg, tt, n = _time_pair(gb, tb, budget, min_repeat, max_repeat)
                r.update(fb_gg_ms=tg * 1e3, fb_torch_ms=tt * 1e3, fb_ratio=tg / tt, fb_repeat=n)
            except Exception as e:
                r["error"] = f"backward: {type(e).__name__}: {e}"[:200]
        rows.append(r)
        fb = f"{r['fb_ratio']:6.2f}x{_flag(r['fb_ratio'], limit)}" if "fb_ratio" in r else "     -"
        print(f"{c.name:24s} fwd {r['fwd_ratio']:6.2f}x{_flag(r['fwd_ratio'], limit)}   fwd+bwd {fb}   {r['check']}",
              flush=True)
    return rows


def bench_optimizers(gg, torch, budget, min_repeat, max_repeat, only):
    rows = []
    p0 = _f32(N)
    g0 = (0.01 * _f32(N)).astype(np.float32)
    for name in OPTIMIZERS:
        if only and not any(o in name for o in only):
            continue
        steps = []
        for m in (gg, torch):
            p = m.nn.Parameter(m.from_numpy(p0.copy()))
            p.grad = m.from_numpy(g0.copy())
            opt = getattr(m.optim, name)([p], lr=1e-3)
            for _ in range(6):  # past RAdam's first (unrectified) steps
                opt.step()
            steps.append(opt.step)
        tg, tt, n = _time_pair(steps[0], steps[1], budget, min_repeat, max_repeat)
        rows.append({"op": f"optim.{name}.step", "shape": "2^20 param", "check": "-", "fwd_gg_ms": tg * 1e3,
                     "fwd_torch_ms": tt * 1e3, "fwd_ratio": tg / tt, "fwd_repeat": n})
        print(f"{'optim.' + name + '.step':24s} step {tg / tt:6.2f}x{_flag(tg / tt)}", flush=True)
    return rows


def engines(gg, torch):
    """What a table compares: gpugrad's intra-op threads (--threads) against single-threaded PyTorch."""
    n = gg.get_num_threads()
    return f"gpugrad ({n} thread{'s' if n > 1 else ''}) vs torch {torch.__version__} CPU (1 thread)"


def setup(prog, argv, what):
    """(args, gpugrad, torch, the --only substrings) of a comparison run, or None without PyTorch."""
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds of timed calls per case (both engines)")
    ap.add_argument("--min-repeat", type=int, default=7)
    ap.add_argument("--max-repeat", type=int, default=200)
    ap.add_argument("--only", default="", help="comma-separated substrings of case names")
    ap.add_argument("--threads", type=int, default=1,
                    help="gpugrad's intra-op threads (gg.set_num_threads; PyTorch keeps one)")
    args = ap.parse_args(list(argv))
    torch = try_torch()
    if torch is None:
        print(f"{what}: PyTorch is not installed: nothing to compare against (skipped)")
        return None
    import gpugrad as gg
    gg.set_num_threads(args.threads)
    return args, gg, torch, [s for s in args.only.split(",") if s]


def main(argv=()):
    run = setup("run.py ops", argv, "ops_vs_torch")
    if run is None:
        return []
    args, gg, torch, only = run
    t0 = time.perf_counter()
    rows = bench_ops(gg, torch, args.budget, args.min_repeat, args.max_repeat, only)
    rows += bench_optimizers(gg, torch, args.budget, args.min_repeat, args.max_repeat, only)
    wall = time.perf_counter() - t0
    for r in rows:
        r["over_3x"] = [k for k in ("fwd", "fb") if (r.get(f"{k}_ratio") or 0) > LIMIT]
    print()
    print(table(rows, ["op", "shape", "fwd_gg_ms", "fwd_torch_ms", "fwd_ratio", "fb_gg_ms", "fb_torch_ms",
                       "fb_ratio", "check"],
                title=f"{engines(gg, torch)}, float32; ratio = gpugrad/torch "
                      f"(median, interleaved); fb = forward+backward; run {wall:.0f} s"))
    over = [(r["op"], k, r[f"{k}_ratio"]) for r in rows for k in r["over_3x"]]
    errs = [r for r in rows if "error" in r]
    print(f"\nover {LIMIT:g}x: " + (", ".join(f"{o} {'fwd' if k == 'fwd' else 'fwd+bwd'} {v:.1f}x"
                                              for o, k, v in over) or "none"))
    for r in errs:
        print(f"error: {r['op']}: {r['error']}")
    method = ("float32 inputs; forward: inputs without requires_grad under no_grad(); fwd+bwd: leaves with "
              "requires_grad, .grad=None, forward, autograd.backward(float outputs, fixed random grads); "
              "gpugrad and torch timed in turns (common.interleaved), median; repeat per case from a probe "
              f"call to fill ~{args.budget:g} s (min {args.min_repeat}); torch.set_num_threads(1), "
              f"gg.set_num_threads({gg.get_num_threads()}), "
              "OPENBLAS/OMP/MKL_NUM_THREADS=1; optimizers: step() on a 2^20 parameter with a fixed gradient "
              "after 6 warm steps.")
    if only:  # a subset must not overwrite the full table
        print("(subset of the ops: results not saved)")
    else:
        print(f"-> {save('ops_vs_torch', rows, extra={'method': method, 'limit_ratio': LIMIT, 'wall_s': wall})}")
    return rows


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
