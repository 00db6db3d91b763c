"""Fused kernels against the same math composed from plain array ops, and against PyTorch.

For each activation (forward and backward), softmax and cross-entropy: time and effective
bandwidth (bytes each kernel must read + write, over time); on a GPU also the fraction of the
measured device-to-device copy bandwidth (the ceiling for memory-bound kernels). On the CPU the
"fused" column is gpugrad's NumPy fallback, which must be no slower than the composite.

    python benchmarks/run.py kernels [--device cuda] [--min-log2 16] [--max-log2 26]
"""
from __future__ import annotations

import argparse
import math
import tracemalloc

import numpy as np

from common import median_time, save, table, try_torch

# name -> (params, composed forward, composed backward from (g, x, y)); xp is numpy or cupy
def _sig(xp, x):
    return 1 / (1 + xp.exp(-x))


def _composites(xp):
    # NOTE: gelu's composite is the kernel's formula, Phi(x) = erfc(-x/sqrt2)/2: PyTorch's
    # (1 + erf(x/sqrt2))/2 is the same function but cancels to 0 below x ~ -5.5 in float32, so it
    # would not compute the same thing. NumPy has no erfc: SciPy's when installed, else no CPU peer.
    erfc = None
    if xp is not np:
        import cupyx.scipy.special as sp  # noqa: PLC0415
        erfc = sp.erfc
    else:
        try:
            from scipy.special import erfc  # noqa: PLC0415
        except ImportError:
            erfc = None
    c = math.sqrt(2 / math.pi)
    sa, ss = 1.6732632423543772, 1.0507009873554805
    # NOTE: written as a careful NumPy user would: x * x * x, not x ** 3 (np.power has no fast
    # path for 3: ~20x a multiply), and no float64 mask for leaky_relu's backward.
    comp = {
        "relu": (lambda x: xp.maximum(x, 0), lambda g, x, y: g * (x > 0)),
        "leaky_relu": (lambda x: xp.where(x > 0, x, 0.01 * x),
                       lambda g, x, y: xp.where(x > 0, g, 0.01 * g)),
        "elu": (lambda x: xp.where(x > 0, x, xp.expm1(x)),
                lambda g, x, y: g * xp.where(x > 0, 1.0, y + 1).astype(x.dtype)),
        "selu": (lambda x: ss * xp.where(x > 0, x, sa * xp.expm1(x)),
                 lambda g, x, y: g * ss * xp.where(x > 0, 1.0, sa * xp.exp(x)).astype(x.dtype)),
        "gelu": ((lambda x: 0.5 * x * erfc(-x / math.sqrt(2))) if erfc else None,
                 (lambda g, x, y: g * (0.5 * erfc(-x / math.sqrt(2)) + x * xp.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)))
                 if erfc else None),
        "gelu_tanh": (lambda x: 0.5 * x * (1 + xp.tanh(c * (x + 0.044715 * x * x * x))),
                      lambda g, x, y: g * (0.5 * (1 + xp.tanh(c * (x + 0.044715 * x * x * x))) + 0.5 * x * (
                          1 - xp.tanh(c * (x + 0.044715 * x * x * x)) ** 2) * c * (1 + 3 * 0.044715 * x * x))),
        "silu": (lambda x: x * _sig(xp, x), lambda g, x, y: g * _sig(xp, x) * (1 + x * (1 - _sig(xp, x)))),
        "mish": (lambda x: x * xp.tanh(xp.logaddexp(0, x)),
                 lambda g, x, y: g * (xp.tanh(xp.logaddexp(0, x)) + x * _sig(xp, x) * (1 - xp.tanh(xp.logaddexp(0, x)) ** 2))),
        "sigmoid": (lambda x: _sig(xp, x), lambda g, x, y: g * y * (1 - y)),
        "tanh": (xp.tanh, lambda g, x, y: g * (1 - y * y)),
        "softplus": (lambda x: xp.logaddexp(0, x), lambda g, x, y: g * _sig(xp, x)),
        "log_sigmoid": (lambda x: -xp.logaddexp(0, -x), lambda g, x, y: g * _sig(xp, -x)),
    }
    return comp


class _Timer:
    """Median time of a callable on the device: CUDA events on the GPU, perf_counter on the CPU."""

    def __init__(self, xp, repeat):
        self.xp, self.repeat = xp, repeat

    def __call__(self, fn):
        if self.xp is np:
            return median_time(fn, repeat=self.repeat, warmup=2)
        cp = self.xp
        for _ in range(3):
            fn()
        start, end = cp.cuda.Event(), cp.cuda.Event()
        ts = []
        for _ in range(self.repeat):
            start.record()
            fn()
            end.record()
            end.synchronize()
            ts.append(cp.cuda.get_elapsed_time(start, end) / 1e3)
        return float(np.median(ts))


def _torch_timer(torch, device, repeat):
    if device == "cpu":
        return lambda fn: median_time(fn, repeat=repeat, warmup=2)

    def t(fn):
        for _ in range(3):
            fn()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        ts = []
        for _ in range(repeat):
            s.record()
            fn()
            e.record()
            e.synchronize()
            ts.append(s.elapsed_time(e) / 1e3)
        return float(np.median(ts))
    return t


def copy_bandwidth(xp, timer, n):
    """Device copy bandwidth in GB/s (bytes read + written)."""
    a = xp.ones(n, dtype=np.float32)
    b = xp.empty_like(a)
    t = timer(lambda: xp.copyto(b, a))
    return 2 * a.nbytes / t / 1e9


def bench_activations(xp, sizes, timer, torch, tdev, ttimer, dtype=np.float32):
    from gpugrad.fused import activation as KA
    rows = []
    comp = _composites(xp)
    rng = np.random.default_rng(0)
    for n in sizes:
        x = xp.asarray(rng.standard_normal(n).astype(dtype))
        g = xp.asarray(rng.standard_normal(n).astype(dtype))
        item = np.dtype(dtype).itemsize
        tx = tg = None
        if torch is not None:
            tx = torch.from_numpy(x if xp is np else x.get()).to(tdev).requires_grad_()
            tg = torch.from_numpy(g if xp is np else g.get()).to(tdev)
        for op in KA.ACTIVATIONS.values():  # every row of the table, at its default params
            key, p = op.name, op.defaults
            cf, cb = comp.get(key, (None, None))  # NOTE: a row without a plain-array peer is timed without one
            y = KA.fwd(op, x, p)
            s = y if op.saves_output(p) else x
            res = {"op": key, "n": f"2^{int(math.log2(n))}"}
            for direction, nbytes, fused, composed in (
                    ("fwd", 2 * n * item, lambda: KA.fwd(op, x, p), (lambda: cf(x)) if cf else None),
                    ("bwd", 3 * n * item, lambda: KA.bwd(op, g, s, p), (lambda: cb(g, x, y)) if cb else None)):
                tf = timer(fused)
                r = dict(res, dir=direction, fused_us=tf * 1e6, fused_GBs=nbytes / tf / 1e9)
                if composed is not None:
                    tc = timer(composed)
                    r.update(composed_us=tc * 1e6, composed_GBs=nbytes / tc / 1e9, fused_speedup=tc / tf)
                if torch is not None:
                    tname, kw = op.torch
                    fn = getattr(torch, tname) if tname in ("sigmoid", "tanh") else getattr(torch.nn.functional, tname)
                    if direction == "fwd":
                        def tf_(fn=fn, kw=kw):
                            with torch.no_grad():
                                return fn(tx, **kw)
                        tt = ttimer(tf_)
                    else:
                        ty = fn(tx, **kw)
                        tt = ttimer(lambda ty=ty: torch.autograd.grad(ty, tx, tg, retain_graph=True))
                    r.update(torch_us=tt * 1e6, torch_GBs=nbytes / tt / 1e9)
                rows.append(r)
    return rows


def bench_softmax(xp, shapes, timer, torch, tdev, ttimer):
    from gpugrad.fused import softmax as KS
    rows = []
    rng = np.random.default_rng(0)
    for (r_, c_) in shapes:
        x = xp.asarray(rng.standard_normal((r_, c_)).astype(np.float32))
        g = xp.asarray(rng.standard_normal((r_, c_)).astype(np.float32))
        y = KS.softmax_fwd(x)

        def comp_f():
            e = xp.exp(x - x.max(1, keepdims=True))
            return e / e.sum(1, keepdims=True)

        def comp_b():
            return y * (g - (g * y).sum(1, keepdims=True))
        for direction, nbytes, fused, composed in (("fwd", 2 * x.nbytes, lambda: KS.softmax_fwd(x), comp_f),
                                                   ("bwd", 3 * x.nbytes, lambda: KS.softmax_bwd(g, y), comp_b)):
            tf, tc = timer(fused), timer(composed)
            r = {"op": "softmax", "n": f"{r_}x{c_}", "dir": direction, "fused_us": tf * 1e6,
                 "fused_GBs": nbytes / tf / 1e9, "composed_us": tc * 1e6, "composed_GBs": nbytes / tc / 1e9,
                 "fused_speedup": tc / tf}
            if torch is not None:
                tx = torch.from_numpy(x if xp is np else x.get()).to(tdev).requires_grad_()
                tg = torch.from_numpy(g if xp is np else g.get()).to(tdev)
                if direction == "fwd":
                    def f():
                        with torch.no_grad():
                            return torch.softmax(tx, 1)
                    tt = ttimer(f)
                else:
                    ty = torch.softmax(tx, 1)
                    tt = ttimer(lambda: torch.autograd.grad(ty, tx, tg, retain_graph=True))
                r.update(torch_us=tt * 1e6, torch_GBs=nbytes / tt / 1e9)
            rows.append(r)
    return rows


class _GpuPeak:
    """Peak bytes allocated through CuPy's memory pool while active (a CuPy MemoryHook)."""

    def __init__(self, cp):
        self.cp = cp
        base = cp.cuda.MemoryHook

        class Hook(base):
            name = "gpugrad_peak"

            def __init__(h):
                super().__init__()
                h.cur = h.peak = 0

            def malloc_postprocess(h, device_id, size, mem_size, mem_ptr, pmem_id):
                h.cur += mem_size
                h.peak = max(h.peak, h.cur)

            def free_postprocess(h, device_id, mem_size, mem_ptr, pmem_id):
                h.cur -= mem_size
        self.hook = Hook()

    def measure(self, fn):
        self.cp.cuda.Device().synchronize()
        with self.hook:
            self.hook.cur = self.hook.peak = 0
            out = fn()
            self.cp.cuda.Device().synchronize()
            peak = self.hook.peak
        del out
        return peak


def _cpu_peak(fn):
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del out
    return peak


def bench_cross_entropy(xp, shapes, timer, torch, tdev, ttimer):
    from gpugrad.fused import loss as KL
    rows = []
    rng = np.random.default_rng(0)
    for (b, c) in shapes:
        x = xp.asarray(rng.standard_normal((b, c), dtype=np.float32))
        t = xp.asarray(rng.integers(0, c, b))
        g1 = xp.asarray(np.float32(1.0))

        def fused():
            loss, lse = KL.cross_entropy_fwd(x, t)
            return loss, KL.cross_entropy_bwd(g1, x, t, lse)

        def composed():
            m = x.max(1, keepdims=True)
            e = xp.exp(x - m)
            s = e.sum(1, keepdims=True)
            lse = xp.log(s) + m
            loss = (lse[:, 0] - x[xp.arange(b), t]).mean()
            p = e / s
            p[xp.arange(b), t] -= 1
            p /= b
            return loss, p
        peak = (lambda f: _GpuPeak(xp).measure(f)) if xp is not np else _cpu_peak
        nbytes = 3 * x.nbytes  # read logits (fwd), read logits + write grad (bwd)
        tf, tc = timer(fused), timer(composed)
        r = {"op": "cross_entropy", "n": f"{b}x{c}", "dir": "fwd+bwd", "fused_us": tf * 1e6,
             "fused_GBs": nbytes / tf / 1e9, "composed_us": tc * 1e6, "fused_speedup": tc / tf,
             "fused_extra_MB": (peak(fused) - x.nbytes * 0) / 2**20, "composed_extra_MB": peak(composed) / 2**20}
        if torch is not None:
            tx = torch.from_numpy(x if xp is np else x.get()).to(tdev).requires_grad_()
            tt_ = torch.from_numpy(t if xp is np else t.get()).to(tdev)

            def tstep():
                return torch.autograd.grad(torch.nn.functional.cross_entropy(tx, tt_), tx)
            r.update(torch_us=ttimer(tstep) * 1e6)
            if tdev != "cpu":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                out = tstep()
                torch.cuda.synchronize()
                r["torch_extra_MB"] = (torch.cuda.max_memory_allocated() - base) / 2**20
                del out
        rows.append(r)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--min-log2", type=int, default=16)
    ap.add_argument("--max-log2", type=int, default=None, help="default 26 on cuda, 22 on cpu")
    ap.add_argument("--repeat", type=int, default=None)
    args = ap.parse_args(argv)
    import gpugrad as gg
    dev = gg.device(args.device)
    xp = dev.xp
    cpu = xp is np
    hi = args.max_log2 or (22 if cpu else 26)
    sizes = [2 ** k for k in range(args.min_log2, hi + 1, 2 if cpu else 1)]
    repeat = args.repeat or (5 if cpu else 50)
    timer = _Timer(xp, repeat)
    torch = try_torch()
    tdev = "cpu" if cpu else "cuda"
    if torch is not None and not cpu and not torch.cuda.is_available():
        torch = None
    ttimer = _torch_timer(torch, tdev, repeat) if torch else None
    bw = copy_bandwidth(xp, timer, 2 ** 26 if not cpu else 2 ** 24)
    rows = bench_activations(xp, sizes, timer, torch, tdev, ttimer)
    rows += bench_softmax(xp, [(4096, 1024)] if cpu else [(8192, 4096), (65536, 1024)], timer, torch, tdev, ttimer)
    rows += bench_cross_entropy(xp, [(1024, 8192)] if cpu else [(8192, 32768), (4096, 128256)], timer, torch,
                                tdev, ttimer)
    for r in rows:
        if "fused_GBs" in r:
            r["fused_of_copy"] = r["fused_GBs"] / bw
    cols = ["op", "n", "dir", "fused_us", "fused_GBs", "fused_of_copy", "composed_us", "fused_speedup", "torch_us"]
    big = [r for r in rows if r["n"] in (f"2^{hi}",) or r["op"] in ("softmax", "cross_entropy")]
    print(table(big, cols, title=f"kernels on {dev} (copy bandwidth {bw:.1f} GB/s; largest size shown, all in JSON)"))
    ce = [r for r in rows if r["op"] == "cross_entropy"]
    print(table(ce, ["n", "fused_us", "composed_us", "torch_us", "fused_extra_MB", "composed_extra_MB",
                     "torch_extra_MB"], title="cross_entropy forward+backward: time and peak extra memory"))
    if torch is None:
        print("pytorch: not installed (peer columns empty)")
    print(f"-> {save('kernels' + ('' if cpu else '-cuda'), rows, {'copy_GBs': bw})}")
    return rows


if __name__ == "__main__":
    main()
