"""Every CUDA kernel of kernels/*.cu, executed on the CPU under an emulated CUDA thread model.

The unchanged .cu files are built with the host compiler against tests/cudaemu/cuda_emu.h
(ASan + UBSan), and run through gpugrad's real bridge (gpugrad/fused/*.py) with a CuPy
stand-in: the grid, block and argument lists the bridge computes are what runs, and each
argument is checked against the kernel's C++ parameter types. Each array-level function is
called with NumPy arrays (the fallback) and with device arrays (the kernels); results must agree
to the dtype's rounding; reductions must give the same bits under three thread schedules.
``test_mutation_*`` show the layer is sharp: deliberately broken kernels or launches fail it.

``case_*`` functions run inside the emulator's worker process (see tests/cudaemu/worker.py);
the ``test_*`` functions drive them. Without a C++ compiler everything here skips.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
for p in (str(TESTS), str(TESTS.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from cudaemu import harness  # noqa: E402
from cudaemu.harness import View, dev  # noqa: E402
from cudaemu.harness import compare as cmp  # noqa: E402
from gpugrad.fused import activation as A  # noqa: E402
from gpugrad.fused import cuda as loader  # noqa: E402
from gpugrad.fused import loss as L  # noqa: E402
from gpugrad.fused import optim as O  # noqa: E402
from gpugrad.fused import softmax as S  # noqa: E402
from test_kernels_host import CE_OPTS, GRID, _ce_inputs, _row_matrix  # noqa: E402

DTYPES = list(harness.DTYPES)  # float16, float32, float64 and bfloat16 (with ml_dtypes)


def _rand(shape, dt, scale=3.0, seed=0):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale).astype(dt)


@pytest.fixture(scope="module")
def emu():
    extra = []
    if harness.skip_reason() is None:
        for m in KERNEL_MUTATIONS.values():
            kdir = harness.mutated_kernels(m["name"], m["file"], m["old"], m["new"])
            extra.append(harness.module_args(m["source"], m.get("dtype", "float32"), kdir))
    with harness.session(__name__, extra_builds=extra) as e:
        yield e


# -- activations ------------------------------------------------------------------------------------

ACT_CASES = [(op.name, params) for op, params in A.table_cases()]  # every row, defaults and cases
ACT_IDS = [A.case_id(*c) for c in A.table_cases()]
SIZES = (0, 1, 3, 7, 8, 9, 31, 33, 1000, 1027, 4101)


def case_activation(name, params, dtype):
    dt = np.dtype(dtype)
    op = A.ACTIVATIONS[name]
    p = op.values(params)
    saves = "output" if op.saves_output(p) else "input"
    fwd = lambda a: A.fwd(op, a, p)  # noqa: E731
    bwd = lambda g, x=None, y=None: A.bwd(op, g, y if saves == "output" else x, p)  # noqa: E731
    for n in SIZES:
        base = _rand(n + 1, dt, seed=n)
        base[:3] = [0.0, 88.0, -1e4][:min(3, n + 1)]
        for off in (0, 1):  # NOTE: 0: 16-byte aligned (vector loads + tail), 1: misaligned (scalar loop)
            x = View(base, slice(off, off + n))
            cmp(fwd, (x,), what=f"{name} fwd n={n} offset={off}")
            g = View(_rand(n + 1, dt, 1.0, seed=7), slice(off, off + n))
            xs = base[off:off + n]
            s = {"y": View(np.concatenate([[0], fwd(xs)]).astype(dt), slice(1, n + 1)) if off else fwd(xs)} \
                if saves == "output" else {"x": x}
            # NOTE: derivatives cross zero (gelu' at x = -0.75): an absolute tolerance scaled by |max|
            cmp(bwd, (g,), s, what=f"{name} bwd n={n} offset={off}", scaled=True)
    for x in (GRID.astype(dt), _rand((3, 5, 7), dt)):  # extremes, n-d
        y = fwd(x)
        cmp(fwd, (x,), what=f"{name} fwd shape {x.shape}")
        g = np.linspace(-2, 2, x.size).astype(dt).reshape(x.shape)
        cmp(bwd, (g,), {"y": y} if saves == "output" else {"x": x}, what=f"{name} bwd shape {x.shape}", scaled=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,params", ACT_CASES, ids=ACT_IDS)
def test_activation(emu, name, params, dtype):
    emu.check("case_activation", name=name, params=params, dtype=dtype)


def case_activation_0d(name):
    x = np.array(0.5, np.float32)
    cmp(lambda a: A.activation_fwd(name, a), (x,), what=f"{name} fwd 0-d")
    cmp(lambda g, a: A.activation_bwd(name, g, x=a, y=a), (np.array(1.5, np.float32), x), what=f"{name} bwd 0-d")


def _passed(res):
    if not res["ok"]:
        pytest.fail(res["error"], pytrace=False)


@pytest.mark.parametrize("name", ["relu", "gelu"])
def test_activation_0d_keeps_shape(emu, name):
    _passed(emu.run("case_activation_0d", name=name))


# -- softmax family ---------------------------------------------------------------------------------

SOFTMAX_SHAPES = [((5, 1), -1), ((4, 7), -1), ((9, 31), -1), ((3, 32), -1), ((9, 33), -1), ((33, 100), -1),
                  ((3, 1024), -1), ((3, 1025), -1), ((2, 5000), -1), ((1, 20000), -1), ((6, 5, 4), 1), ((7, 3), 0),
                  ((), -1), ((0, 5), -1), ((5, 0), -1)]


def case_softmax(dtype, shape, axis):
    dt = np.dtype(dtype)
    x = _rand(tuple(shape), dt)
    big = x.size > 20000 or dt.itemsize == 2  # NOTE: the 4 schedule runs only where they add code paths: time
    for fwd, bwd in ((S.softmax_fwd, S.softmax_bwd), (S.log_softmax_fwd, S.log_softmax_bwd)):
        cmp(lambda a: fwd(a, axis), (x,), what=f"{fwd.__name__} {x.shape}", schedules=not big)
        g = _rand(x.shape, dt, 1.0, seed=3)
        cmp(lambda gg, yy: bwd(gg, yy, axis), (g, fwd(x, axis)), what=f"{bwd.__name__} {x.shape}", scaled=True,
            schedules=not big)
    for keepdims in (False, True):
        cmp(lambda a: S.logsumexp_fwd(a, axis, keepdims), (x,), what=f"logsumexp {x.shape}", schedules=not big)
        lse = S.logsumexp_fwd(x, axis, keepdims)
        gl = _rand(lse.shape, dt, 1.0, seed=4)
        cmp(lambda gg, a, ll: S.logsumexp_bwd(gg, a, ll, axis, keepdims), (gl, x, lse), what=f"logsumexp bwd {x.shape}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", SOFTMAX_SHAPES, ids=[f"{s}-ax{a}" for s, a in SOFTMAX_SHAPES])
def test_softmax_family(emu, dtype, shape, axis):
    emu.check("case_softmax", dtype=dtype, shape=list(shape), axis=axis)


def case_softmax_special_rows(dtype, n):
    dt = np.dtype(dtype)
    x = _rand((6, n), dt)
    x[1, n // 2] = np.inf              # +inf in one thread's share: NaN row (softmax), +inf (logsumexp)
    x[2, :] = -np.inf                  # all -inf
    x[3, 0] = np.nan
    x[4, :] = 1e4
    x[5, ::2] = -np.inf
    rows = [x] + ([_row_matrix(dt)] if dt != np.float16 else [])
    for xx in rows:
        for fn in (S.softmax_fwd, S.log_softmax_fwd, S.logsumexp_fwd):
            cmp(fn, (xx,), what=f"{fn.__name__} special rows n={xx.shape[1]}", schedules=True)
        g = np.cos(np.arange(xx.size)).reshape(xx.shape).astype(dt)
        for fwd, bwd in ((S.softmax_fwd, S.softmax_bwd), (S.log_softmax_fwd, S.log_softmax_bwd)):
            cmp(bwd, (g, fwd(xx)), what=f"{bwd.__name__} special rows", scaled=True)
        lse = S.logsumexp_fwd(xx)
        cmp(S.logsumexp_bwd, (np.linspace(-1, 1, xx.shape[0]).astype(dt), xx, lse), what="logsumexp bwd special")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [7, 3000])
def test_softmax_special_rows(emu, dtype, n):
    emu.check("case_softmax_special_rows", dtype=dtype, n=n)


# -- losses -----------------------------------------------------------------------------------------

CE = [dict(), dict(label_smoothing=0.1), dict(weight=True), dict(weight=True, label_smoothing=0.2, ignore_index=3),
      dict(ignore_index=2), dict(probs=True), dict(probs=True, weight=True, label_smoothing=0.1)]


def case_cross_entropy(dtype, reduction, opts, ncls_list):
    dt = np.dtype(dtype)
    for ncls in ncls_list:
        rng = np.random.default_rng(ncls)
        rows = 37
        x = _rand((rows, ncls), dt, 4.0, seed=ncls)
        if opts.get("probs"):
            t = rng.random((rows, ncls))
            t = (t / t.sum(axis=1, keepdims=True)).astype(dt)
        else:
            t = rng.integers(0, ncls, rows)
            t[::5] = opts.get("ignore_index", -100)
        kw = dict(weight=(rng.random(ncls) + 0.5).astype(dt) if opts.get("weight") else None,
                  ignore_index=opts.get("ignore_index", -100), label_smoothing=opts.get("label_smoothing", 0.0),
                  reduction=reduction)
        what = f"cross_entropy {opts} {reduction} ncls={ncls}"
        cmp(lambda a, tt, **k: L.cross_entropy_fwd(a, tt, **k), (x, t), kw, what=what + " fwd", scaled=True,
            schedules=ncls > 1024 and dt == np.float32, tol_as=harness.compute(dt))
        _, lse = L.cross_entropy_fwd(x, t, **kw)
        g = _rand((rows,), dt, 1.0, seed=5) if reduction == "none" else np.array(1.3, dt)
        cmp(lambda gg, a, tt, ll, **k: L.cross_entropy_bwd(gg, a, tt, ll, **k), (g, x, t, lse), kw,
            what=what + " bwd", scaled=True, schedules=ncls > 1024 and dt == np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("opts", CE, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()) or "plain")
def test_cross_entropy(emu, dtype, reduction, opts):
    emu.check("case_cross_entropy", dtype=dtype, reduction=reduction, opts=opts, ncls_list=[5, 33, 1000, 1500])


def case_cross_entropy_extremes(dtype):
    dt = np.dtype(dtype)
    for opts in CE_OPTS:  # the host test's inputs: logits at +-1e4, 88, 1e-30, an ignored row
        x, t = _ce_inputs(dt)
        w = np.linspace(0.5, 2.0, x.shape[1]).astype(dt) if opts.get("weight") else None
        ig, eps = opts.get("ignore_index", -100), opts.get("label_smoothing", 0.0)
        t[t == -100] = ig
        for red in ("none", "mean", "sum"):
            kw = dict(weight=w, ignore_index=ig, label_smoothing=eps, reduction=red)
            cmp(lambda a, tt, **k: L.cross_entropy_fwd(a, tt, **k), (x, t), kw, what=f"ce extremes {opts} {red}",
                scaled=True, tol_as=harness.compute(dt))
            _, lse = L.cross_entropy_fwd(x, t, **kw)
            g = np.linspace(0.5, 1.5, x.shape[0]).astype(dt) if red == "none" else np.array(0.7, dt)
            cmp(lambda gg, a, tt, ll, **k: L.cross_entropy_bwd(gg, a, tt, ll, **k), (g, x, t, lse), kw,
                what=f"ce extremes bwd {opts} {red}", scaled=True)
    # k-dim layout (N, C, d1, d2), a single sample (C,) with a 0-d target, probabilities in k-dim
    x = _rand((4, 6, 3, 2), dt)
    t = np.random.default_rng(0).integers(0, 6, (4, 3, 2))
    q = np.random.default_rng(1).random((4, 6, 3, 2)).astype(dt)
    for tt in (t, q / q.sum(axis=1, keepdims=True)):
        for red in ("none", "mean"):
            cmp(lambda a, b: L.cross_entropy_fwd(a, b, reduction=red), (x, tt), what=f"ce kdim {red}", scaled=True,
                tol_as=harness.compute(dt))
            lse = L.cross_entropy_fwd(x, tt, reduction=red)[1]
            g = np.linspace(0.5, 1.5, 24).astype(dt).reshape(4, 3, 2) if red == "none" else np.array(1.0, dt)
            cmp(lambda gg, a, b, ll: L.cross_entropy_bwd(gg, a, b, ll, reduction=red), (g, x, tt, lse),
                what=f"ce kdim bwd {red}", scaled=True)
    x1 = _rand((7,), dt)
    cmp(lambda a, b: L.cross_entropy_fwd(a, b), (x1, np.array(3)), what="ce single sample", scaled=True,
        tol_as=harness.compute(dt))
    cmp(lambda g, a, b, ll: L.cross_entropy_bwd(g, a, b, ll), (np.array(1.0, dt), x1, np.array(3),
                                                              L.cross_entropy_fwd(x1, np.array(3))[1]),
        what="ce single sample bwd", scaled=True)
    xs = View(_rand((8, 12), dt), np.s_[:, ::2])  # non-contiguous logits (every other class column)
    ts = np.random.default_rng(3).integers(0, 6, 8)
    cmp(lambda a, b: L.cross_entropy_fwd(a, b, reduction="sum"), (xs, ts), what="ce strided", scaled=True,
        tol_as=harness.compute(dt))
    for red in ("none", "sum"):  # no rows
        cmp(lambda a, b: L.cross_entropy_fwd(a, b, reduction=red), (_rand((0, 5), dt), np.zeros(0, np.int64)),
            what=f"ce no rows {red}", tol_as=harness.compute(dt))
    # every target ignored: 'mean' is 0/0 = NaN, as PyTorch
    t_ig = np.full(5, -100)
    cmp(lambda a, b: L.cross_entropy_fwd(a, b), (_rand((5, 4), dt), t_ig), what="ce all ignored",
        tol_as=harness.compute(dt))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_extremes_and_layouts(emu, dtype):
    emu.check("case_cross_entropy_extremes", dtype=dtype)


def case_bad_target_sets_the_device_flag():
    cp = harness.cupy()
    x = cp.zeros((4, 3), cp.float32)
    for fn, t, bad in ((L.cross_entropy_fwd, [0, 5, 1, -100], 5), (L.nll_loss_fwd, [0, -2, 1, 2], -2)):
        try:
            fn(x, cp.asarray(np.array(t)))
        except ValueError as e:
            assert f"target {bad} is out of bounds" in str(e) and "[0, 3)" in str(e), str(e)
        else:
            raise AssertionError(f"{fn.__name__}: an out-of-range target was not reported")
    loss, _ = L.cross_entropy_fwd(x, cp.asarray(np.array([0, 2, 1, -100])), reduction="none")  # no false alarm
    np.testing.assert_allclose(loss.get(), [np.log(3)] * 3 + [0], rtol=1e-6)
    L.nll_loss_fwd(x, cp.asarray(np.array([0, 2, -100, 1])))


def test_bad_target_sets_the_device_flag(emu):
    emu.check("case_bad_target_sets_the_device_flag")


def case_nll_loss(dtype, reduction, weighted):
    dt = np.dtype(dtype)
    rng = np.random.default_rng(1)
    for rows, ncls in ((29, 7), (3, 40), (5, 1100), (0, 4)):
        x = _rand((rows, ncls), dt) - 2
        t = rng.integers(0, ncls, rows)
        t[::4] = -100
        w = (rng.random(ncls) + 0.5).astype(dt) if weighted else None
        if rows == 0 and reduction == "mean":
            continue  # NOTE: mean over no rows is 0/0 on both paths (checked for cross-entropy)
        cmp(lambda a, tt, ww: L.nll_loss_fwd(a, tt, ww, reduction=reduction), (x, t, w), what="nll fwd", scaled=True)
        g = _rand((rows,), dt, 1.0) if reduction == "none" else np.array(0.7, dt)
        cmp(lambda gg, a, tt, ww: L.nll_loss_bwd(gg, a, tt, ww, reduction=reduction), (g, x, t, w), what="nll bwd")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(emu, dtype, reduction, weighted):
    emu.check("case_nll_loss", dtype=dtype, reduction=reduction, weighted=weighted)


POINTWISE = {"mse": (L.mse_loss_fwd, L.mse_loss_bwd, {}), "l1": (L.l1_loss_fwd, L.l1_loss_bwd, {}),
             "huber": (L.huber_loss_fwd, L.huber_loss_bwd, {"delta": 0.7}),
             "smooth_l1": (L.smooth_l1_loss_fwd, L.smooth_l1_loss_bwd, {"beta": 0.5}),
             "smooth_l1_0": (L.smooth_l1_loss_fwd, L.smooth_l1_loss_bwd, {"beta": 0.0})}


def case_pointwise(name, dtype, reduction):
    dt = np.dtype(dtype)
    fwd, bwd, kw = POINTWISE[name]
    for n in (0, 1, 7, 8, 1001):
        base, t = _rand(n + 1, dt, 1.0), _rand(n + 1, dt, 1.0, seed=9)
        t[0] = base[0]  # an exact zero of x - t
        for off in (0, 1):
            x, tt = View(base, slice(off, off + n)), View(t, slice(off, off + n))
            cmp(lambda a, b: fwd(a, b, reduction=reduction, **kw), (x, tt), what=f"{name} fwd n={n} off={off}",
                scaled=reduction != "none")
            g = _rand(n, dt, 1.0, seed=4) if reduction == "none" else np.array(2.0, dt)
            cmp(lambda gg, a, b: bwd(gg, a, b, reduction=reduction, **kw), (g, x, tt), what=f"{name} bwd n={n} off={off}")
    x0, t0 = np.array(0.75, dt), np.array(-0.5, dt)  # 0-d
    cmp(lambda a, b: fwd(a, b, reduction=reduction, **kw), (x0, t0), what=f"{name} fwd 0-d")
    cmp(lambda gg, a, b: bwd(gg, a, b, reduction=reduction, **kw), (np.array(1.5, dt), x0, t0), what=f"{name} bwd 0-d")
    x = GRID.astype(dt)  # the host test's extremes against a rolled copy (and some exact zeros)
    t = np.roll(GRID, 3).astype(dt)
    t[::4] = x[::4]
    cmp(lambda a, b: fwd(a, b, reduction=reduction, **kw), (x, t), what=f"{name} extremes", scaled=True)
    g = np.ones_like(x) if reduction == "none" else np.array(1.0, dt)
    cmp(lambda gg, a, b: bwd(gg, a, b, reduction=reduction, **kw), (g, x, t), what=f"{name} extremes bwd")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name", sorted(POINTWISE))
def test_pointwise_loss(emu, name, dtype, reduction):
    emu.check("case_pointwise", name=name, dtype=dtype, reduction=reduction)


def case_bce(dtype, reduction):
    dt = np.dtype(dtype)
    x = _rand((33, 4), dt, 5.0)
    x[0] = [1e4, -1e4, 0, 88] if dt != np.float16 else [6e4, -6e4, 0, 88]
    t = np.random.default_rng(2).random((33, 4)).astype(dt)
    for w, pw in ((None, None), (_rand((33, 1), dt, 0.3) + 1, np.array([0.5, 1, 2, 3], dt)),
                  (None, np.array([2.0, 1, 1, 0.5], dt)), (_rand((4,), dt, 0.2) + 1, None)):
        cmp(lambda a, b, ww, pp: L.bce_with_logits_fwd(a, b, ww, pp, reduction=reduction), (x, t, w, pw),
            what=f"bce fwd w={w is not None} pw={pw is not None}", scaled=True)
        g = _rand(x.shape, dt, 1.0) if reduction == "none" else np.array(1.0, dt)
        cmp(lambda gg, a, b, ww, pp: L.bce_with_logits_bwd(gg, a, b, ww, pp, reduction=reduction), (g, x, t, w, pw),
            what=f"bce bwd w={w is not None} pw={pw is not None}", scaled=True)
    cmp(lambda a, b: L.bce_with_logits_fwd(a, b, reduction=reduction), (np.array(-2.5, dt), np.array(0.25, dt)),
        what="bce 0-d")
    xg = GRID.astype(dt)
    tg = (np.arange(xg.size) % 3 / 2).astype(dt)
    cmp(lambda a, b: L.bce_with_logits_fwd(a, b, reduction=reduction), (xg, tg), what="bce extremes", scaled=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_bce_with_logits(emu, dtype, reduction):
    emu.check("case_bce", dtype=dtype, reduction=reduction)


# -- optimizers -------------------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": (O.sgd_step, ["momentum_buffer"], [dict(lr=0.1), dict(lr=0.1, weight_decay=0.01, maximize=True),
                                              dict(lr=0.05, momentum=0.9), dict(lr=0.05, momentum=0.9, dampening=0.1),
                                              dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)]),
    "adam": (O.adam_step, ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
             [dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8), dict(lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-6, amsgrad=True),
              dict(lr=1e-2, beta1=0.8, beta2=0.999, eps=1e-8, weight_decay=0.1, decoupled_weight_decay=True),
              dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1, maximize=True, amsgrad=True)]),
    "rmsprop": (O.rmsprop_step, ["square_avg", "grad_avg", "momentum_buffer"],
                [dict(lr=1e-2, alpha=0.99, eps=1e-8), dict(lr=1e-2, alpha=0.9, eps=1e-8, centered=True),
                 dict(lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.9, weight_decay=0.1),
                 dict(lr=1e-2, alpha=0.99, eps=1e-8, centered=True, momentum=0.5, maximize=True)]),
    "adagrad": (O.adagrad_step, ["state_sum"], [dict(lr=0.1, eps=1e-10), dict(lr=0.1, eps=1e-10, lr_decay=0.01),
                                                dict(lr=0.1, eps=1e-10, weight_decay=0.1, maximize=True)]),
}


def case_optimizer(opt, config, dtype):
    cp = harness.cupy()
    fn, state_names, configs = OPTIMIZERS[opt]
    hp = dict(configs[config])
    dt, sdt = np.dtype(dtype), O.state_dtype(dtype)
    for n, strided in ((1, False), (7, False), (1000, False), (4097, False), (600, True)):
        rng = np.random.default_rng(n)
        p0 = rng.standard_normal(2 * n if strided else n).astype(dt)
        host_p = p0[::2].copy() if strided else p0.copy()
        dev_base = cp.asarray(p0)
        dev_p = dev_base[::2] if strided else dev_base   # NOTE: a strided parameter: copy + write back
        states = {k: rng.random(n).astype(sdt) * (k != "momentum_buffer") for k in state_names}
        host_s = {k: v.copy() for k, v in states.items()}
        # NOTE: strided states (views of every other element) go through the copy + write-back path too
        dev_s = {k: (cp.asarray(np.repeat(v, 2))[::2] if strided else cp.asarray(v)) for k, v in states.items()}
        for step in (1, 2, 3):
            g = rng.standard_normal(n).astype(dt)
            kw = dict(hp)
            if opt in ("adam", "adagrad"):
                kw["step"] = step
            if opt == "sgd" and hp.get("momentum"):
                kw["first_step"] = step == 1
            dg = cp.asarray(np.repeat(g, 2))[::2] if strided else cp.asarray(g)
            for p, s, gg in ((host_p, host_s, g), (dev_p, dev_s, dg)):
                fn(p, gg, *(s[k] for k in state_names), **kw)
            assert_pair = lambda h, d, what: harness.assert_agree(  # noqa: E731
                d.get() if hasattr(d, "get") else d, h, f"{opt} {hp} n={n} step {step} {what}", scaled=True)
            assert_pair(host_p, dev_p, "param")
            for k in state_names:
                assert_pair(host_s[k], dev_s[k], k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt,config", [(o, i) for o, v in OPTIMIZERS.items() for i in range(len(v[2]))])
def test_optimizer(emu, opt, config, dtype):
    emu.check("case_optimizer", opt=opt, config=config, dtype=dtype)


def case_optimizer_mixed_grad_dtype():
    """A float16 parameter with a float32 gradient: both paths must update with the same gradient."""
    cp = harness.cupy()
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal(1000).astype(np.float16), rng.standard_normal(1000).astype(np.float32)
    hs = [np.zeros(1000, np.float32) for _ in range(2)]
    ds = [cp.asarray(v) for v in hs]
    hp, dp = p.copy(), cp.asarray(p)
    O.adam_step(hp, g, *hs, step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    O.adam_step(dp, cp.asarray(g), *ds, step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    harness.assert_agree(ds[0].get(), hs[0], "adam exp_avg, float16 param with float32 grad")


def test_optimizer_mixed_grad_dtype(emu):
    _passed(emu.run("case_optimizer_mixed_grad_dtype"))


# -- grid caps: every kernel grid-strides ----------------------------------------------------------

def case_capped_grids():
    """The bridge caps grids (loader._MAX_GRID, row_launch's 65535 * 4);
    sizes that reach those caps cannot be emulated in CI time, so the caps are lowered here to
    1-2 blocks: every kernel's grid-stride loop then does several rounds."""
    from cudaemu.harness import patched
    row = loader.row_launch

    def row_capped(rows, n):
        g, b = row(rows, n)
        return (min(g[0], 2), 1, 1), b

    with patched(loader, _MAX_GRID=2, row_launch=row_capped):
        for dt in (np.float16, np.float32, np.float64):
            x = _rand(5000, dt)
            for name in ("relu", "gelu", "silu"):
                cmp(lambda a: A.activation_fwd(name, a), (x,), what=f"capped {name}")
                cmp(lambda g, a: A.activation_bwd(name, g, x=a, y=a), (_rand(5000, dt, 1.0, 1), x), what=f"capped {name} bwd",
                    scaled=True)
            for shape in ((37, 100), (9, 3000)):
                xs = _rand(shape, dt)
                cmp(S.softmax_fwd, (xs,), what="capped softmax", schedules=True)
                cmp(S.logsumexp_fwd, (xs,), what="capped logsumexp")
                cmp(S.log_softmax_bwd, (_rand(shape, dt, 1.0), S.log_softmax_fwd(xs)), what="capped lsm bwd", scaled=True)
            xc = _rand((37, 1500), dt)
            t = np.random.default_rng(0).integers(0, 1500, 37)
            cmp(lambda a, tt: L.cross_entropy_fwd(a, tt, reduction="none", label_smoothing=0.1), (xc, t),
                what="capped ce", scaled=True, tol_as=harness.compute(dt))
            lse = L.cross_entropy_fwd(xc, t, reduction="none")[1]
            cmp(lambda gg, a, tt, ll: L.cross_entropy_bwd(gg, a, tt, ll, reduction="none"), (np.ones(37, dt), xc, t, lse),
                what="capped ce bwd", scaled=True)
            cmp(lambda a, tt: L.nll_loss_fwd(a, tt, reduction="sum"), (xc, t), what="capped nll", scaled=True)
            cmp(lambda a, b2: L.mse_loss_fwd(a, b2, reduction="none"), (x, _rand(5000, dt, 1.0, 3)), what="capped mse")
            p, g2 = _rand(5000, dt), _rand(5000, dt, 1.0, 5)
            hp, dp = p.copy(), dev(p)
            for pp, gg in ((hp, g2), (dp, dev(g2))):
                O.adagrad_step(pp, gg, (np.zeros if pp is hp else harness.cupy().zeros)(5000, O.state_dtype(dt)),
                               step=1, lr=0.1, eps=1e-10)
            harness.assert_agree(dp.get(), hp, "capped adagrad")


def test_capped_grids(emu):
    emu.check("case_capped_grids")


@pytest.mark.parametrize("n", [1, 10**6, 2**31, 10**12])
def test_launch_shapes_respect_cuda_limits(n):
    """What the bridge would launch at sizes the emulator cannot run: within CUDA's limits."""
    for itemsize in (2, 4, 8):
        assert 1 <= loader.elementwise_grid(n, itemsize) <= 2**31 - 1
    for rows, cols in ((n, 1), (1, n), (n, 1025), (7, n)):
        (gx, gy, gz), (bx, by, bz) = loader.row_launch(rows, cols)
        assert 1 <= gx <= 2**31 - 1 and gy == gz == 1 and bx * by * bz <= 1024 and bx % 32 == 0


# -- sharpness: broken kernels and launches must fail ---------------------------------------------

KERNEL_MUTATIONS = {
    # (a) the scalar tail of every elementwise kernel runs one element too far
    "tail_off_by_one": dict(file="common.cuh", source="activation.cu",
                            old="for (i64 i = nvec * W + tid; i < n; i += nth)",
                            new="for (i64 i = nvec * W + tid; i <= n; i += nth)"),
    # ... and the 16-byte vector loop one pack too far
    "vector_loop_off_by_one": dict(file="common.cuh", source="activation.cu",
                                   old="for (i64 j = tid; j < nvec; j += nth)", new="for (i64 j = tid; j <= nvec; j += nth)"),
    # (b) the block reduction reads the per-warp partials without waiting for them
    "missing_syncthreads": dict(file="common.cuh", source="softmax.cu",
                                old="  if ((threadIdx.x & 31) == 0) buf[threadIdx.x >> 5] = v;\n  __syncthreads();\n",
                                new="  if ((threadIdx.x & 31) == 0) buf[threadIdx.x >> 5] = v;\n"),
    # a barrier moved into code only the warp leaders run
    "divergent_syncthreads": dict(file="common.cuh", source="softmax.cu",
                                  old="  if ((threadIdx.x & 31) == 0) buf[threadIdx.x >> 5] = v;\n  __syncthreads();\n",
                                  new="  if ((threadIdx.x & 31) == 0) {\n    buf[threadIdx.x >> 5] = v;\n"
                                      "    __syncthreads();\n  }\n"),
    # the vector path taken without checking alignment
    "unchecked_alignment": dict(file="common.cuh", source="activation.cu",
                                old="return p == nullptr || (reinterpret_cast<unsigned long long>(p) & 15ull) == 0;",
                                new="return true;"),
    # the device-side flag for an out-of-range target never raised
    "lost_error_flag": dict(file="loss.cu", source="loss.cu", old="        *err = 1;\n        loss[r] = gg::nan_<C>();",
                            new="        loss[r] = gg::nan_<C>();"),
}
if harness.BF16 is not None:
    # a bfloat16 store that truncates instead of rounding to nearest even (within the tolerance: see its check)
    KERNEL_MUTATIONS["bf16_store_truncates"] = dict(
        file="common.cuh", source="activation.cu", dtype="bfloat16", old="return __float2bfloat16_rn(v);",
        new="return __ushort_as_bfloat16((unsigned short)(__float_as_uint(v) >> 16));")
for _k, _m in KERNEL_MUTATIONS.items():
    _m["name"] = _k

BRIDGE_MUTATIONS = {
    # (c) two arguments of the same type swapped in a launch
    "swapped_rows_n": (loader, "rows_launch", "(*lead, np.int64(rows), np.int64(n), *tail)",
                       "(*lead, np.int64(n), np.int64(rows), *tail)"),
    "swapped_in_out": (A, "fwd", "x.size, (x, out), _kernel_scalars(p)", "x.size, (out, x), _kernel_scalars(p)"),
    # two arguments of different types swapped: CuPy would pass the bytes, the checker refuses
    "swapped_n_p0": (loader, "map_launch", "(*lead, np.int64(n), *tail)", "(*lead, *tail[:1], np.int64(n), *tail[1:])"),
    # (d) an output buffer one row short: the per-sample log-sum-exp of cross-entropy
    "output_one_row_short": (L, "_gpu_ce_index_fwd", "lse = cp.empty(R.rows, ldt)", "lse = cp.empty(R.rows - 1, ldt)"),
}

CHECKS = {  # the check each mutation must fail
    "tail_off_by_one": lambda: cmp(lambda a: A.activation_fwd("relu", a), (_rand(1001, np.float32),), what="relu"),
    "vector_loop_off_by_one": lambda: cmp(lambda a: A.activation_fwd("relu", a), (_rand(1001, np.float32),), what="relu"),
    "missing_syncthreads": lambda: cmp(S.softmax_fwd, (_rand((5, 3000), np.float32),), what="softmax", schedules=True),
    "divergent_syncthreads": lambda: cmp(S.softmax_fwd, (_rand((5, 3000), np.float32),), what="softmax"),
    "unchecked_alignment": lambda: cmp(lambda a: A.activation_fwd("relu", a),
                                       (View(_rand(1001, np.float32), slice(1, None)),), what="relu offset"),
    "lost_error_flag": lambda: case_bad_target_sets_the_device_flag(),
    "swapped_rows_n": lambda: cmp(S.softmax_fwd, (_rand((3, 50), np.float32),), what="softmax"),
    "swapped_in_out": lambda: cmp(lambda a: A.activation_fwd("tanh", a), (_rand(100, np.float32),), what="tanh"),
    "swapped_n_p0": lambda: cmp(lambda a: A.activation_fwd("tanh", a), (_rand(100, np.float32),), what="tanh"),
    "output_one_row_short": lambda: cmp(lambda a, t: L.cross_entropy_fwd(a, t, reduction="none"),
                                        (_rand((300, 40), np.float32), np.arange(300) % 40), what="ce fwd", scaled=True,
                                        tol_as=np.dtype(np.float32)),
}


def _bf16_rounds_once():
    """bfloat16 tanh: kernel and fallback both round the float32 tanh once (RN), so their bits agree except where
    libm and NumPy differ by a float32 ulp next to a bfloat16 tie; a store that truncates differs in ~half."""
    x = _rand(4101, harness.BF16)
    got = cmp(lambda a: A.activation_fwd("tanh", a), (x,), what="bf16 tanh")[0]
    same = got.view(np.uint16) == A.activation_fwd("tanh", x).view(np.uint16)
    assert same.mean() > 0.99, f"bf16 tanh: {same.mean():.1%} of the kernel's results have the fallback's bits"


if harness.BF16 is not None:
    CHECKS["bf16_store_truncates"] = _bf16_rounds_once


def case_mutation(name):
    if name in KERNEL_MUTATIONS:
        m = KERNEL_MUTATIONS[name]
        with harness.kernels_from(harness.mutated_kernels(name, m["file"], m["old"], m["new"])):
            CHECKS[name]()
    else:
        mod, func, old, new = BRIDGE_MUTATIONS[name]
        with harness.patched_function(mod, func, old, new):
            CHECKS[name]()


MUTATION_EXPECT = {  # how each must fail: (kind, text in the report)
    "tail_off_by_one": ("crash", "AddressSanitizer: heap-buffer-overflow"),
    "vector_loop_off_by_one": ("crash", "AddressSanitizer: heap-buffer-overflow"),
    "missing_syncthreads": ("AssertionError", ""),
    "divergent_syncthreads": ("EmulatorError", "barrier divergence"),
    "unchecked_alignment": ("crash", "misaligned address"),
    "lost_error_flag": ("AssertionError", "an out-of-range target was not reported"),
    "swapped_rows_n": ("AssertionError", "softmax"),
    "swapped_in_out": ("AssertionError", "tanh"),
    "swapped_n_p0": ("ArgumentError", "argument 2 (n: long long): got a float64 value"),
    "output_one_row_short": ("crash", "AddressSanitizer: heap-buffer-overflow"),
}
if harness.BF16 is not None:
    MUTATION_EXPECT["bf16_store_truncates"] = ("AssertionError", "of the kernel's results have the fallback's bits")


def case_unmutated_checks_pass():
    for check in CHECKS.values():
        check()


def test_mutation_checks_pass_unmutated(emu):
    """The checks the mutations must fail pass on the real kernels and bridge."""
    emu.check("case_unmutated_checks_pass")


@pytest.mark.parametrize("name", list(MUTATION_EXPECT))
def test_mutation_is_caught(emu, name):
    kind, text = MUTATION_EXPECT[name]
    res = emu.run("case_mutation", name=name)
    assert not res["ok"], f"mutation {name} was NOT caught: the check passed"
    got = "crash" if res.get("crashed") else res.get("type")
    assert got == kind and text in res["error"], f"mutation {name}: expected {kind} ({text!r}), got {got}:\n" \
                                                 f"{res['error'][-4000:]}"


# -- coverage: every kernel of the .cu files this module covers ran, for every dtype -----------------
COVERS = ("activation.cu", "loss.cu", "optim.cu", "softmax.cu")  # the other emulated modules cover the rest


def test_every_kernel_ran_for_every_dtype(emu):
    """Every __global__ kernel of COVERS (found by the build's scan, registered or not) was launched for
    every dtype of DTYPES by the tests above (skipped when a -k selection ran only some of them)."""
    harness.assert_every_kernel_ran(emu, __name__, globals(), COVERS, DTYPES, exclude={"case_mutation"})


def test_every_cu_file_is_covered_by_one_emulated_module():
    """Each kernels/*.cu is claimed (COVERS) by exactly one tests/test_kernels_emulated*.py module."""
    import ast  # noqa: PLC0415
    claims = []
    for f in sorted(Path(__file__).parent.glob("test_kernels_emulated*.py")):
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "COVERS" for t in node.targets):
                claims += list(ast.literal_eval(node.value))
    assert sorted(claims) == sorted(harness.SOURCES), f"claimed {sorted(claims)}, kernels/ has {harness.SOURCES}"
