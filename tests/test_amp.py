"""Mixed precision: gg.amp.GradScaler, gg.autocast, bfloat16, low-precision parameters (master weights).

Each behaviour is asserted with numbers; where PyTorch is installed the same script runs on torch and
the results must be equal (skipped otherwise)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import nn, optim

# -- GradScaler -----------------------------------------------------------------------------------------

# a scripted run: at which steps a gradient is inf (True) / NaN ("nan") / finite (False)
SCRIPT = [False, False, True, False, False, False, "nan", True, False, False, False, False]


def _expected_scales(init, growth, backoff, interval, script):
    """PyTorch's rules written out: back off on a bad step, grow after `interval` clean steps in a row."""
    scale, tracker, out = init, 0, []
    for bad in script:
        if bad:
            scale, tracker = scale * backoff, 0
        else:
            tracker += 1
            if tracker == interval:
                scale, tracker = scale * growth, 0
        out.append((scale, tracker))
    return out


def _run_script(lib, script, **kw):
    """(scale, tracker, params, optimizer step count) after each step of ``script`` on gg or torch."""
    w = lib.nn.Parameter(lib.ones(3))
    opt = lib.optim.Adam([w], lr=0.1)
    scaler = lib.amp.GradScaler("cpu", **kw)
    out = []
    for bad in script:
        opt.zero_grad()
        scaler.scale((w * lib.tensor([1.0, 2.0, 3.0])).sum()).backward()
        if bad:
            w.grad[1] = float("nan") if bad == "nan" else float("inf")
        scaler.step(opt)
        scaler.update()
        st = opt.state[w] if w in opt.state else {}
        step = st.get("step", 0)
        out.append((scaler.get_scale(), scaler._get_growth_tracker(), w.detach().tolist(), float(step)))
    return out


@pytest.mark.parametrize("kw", [dict(init_scale=8.0, growth_interval=2), dict(init_scale=2.0 ** 16, growth_interval=3,
                                                                             growth_factor=4.0, backoff_factor=0.25)])
def test_scale_sequence_follows_pytorchs_rules(kw):
    got = _run_script(gg, SCRIPT, **kw)
    want = _expected_scales(kw["init_scale"], kw.get("growth_factor", 2.0), kw.get("backoff_factor", 0.5),
                            kw["growth_interval"], SCRIPT)
    assert [(s, t) for s, t, _, _ in got] == want
    # a skipped step leaves the parameters and the optimizer's step count alone
    steps = [n for _, _, _, n in got]
    clean = np.cumsum([not b for b in SCRIPT]).tolist()
    assert steps == clean
    for i, bad in enumerate(SCRIPT):
        if bad and i:
            assert got[i][2] == got[i - 1][2]


def test_scale_sequence_matches_torch():
    torch = pytest.importorskip("torch")
    kw = dict(init_scale=8.0, growth_interval=2)
    got, want = _run_script(gg, SCRIPT, **kw), _run_script(torch, SCRIPT, **kw)
    for g, w in zip(got, want):
        assert g[:2] == w[:2] and g[3] == w[3]
        np.testing.assert_allclose(g[2], w[2], rtol=1e-6)


def test_defaults_and_accessors():
    s = gg.amp.GradScaler("cpu")
    assert (s.get_scale(), s.get_growth_factor(), s.get_backoff_factor(), s.get_growth_interval()) == \
        (65536.0, 2.0, 0.5, 2000)
    assert s.is_enabled() and s._get_growth_tracker() == 0
    s.set_growth_factor(3.0), s.set_backoff_factor(0.25), s.set_growth_interval(7)
    assert (s.get_growth_factor(), s.get_backoff_factor(), s.get_growth_interval()) == (3.0, 0.25, 7)
    with pytest.raises(AssertionError, match="growth factor"):
        gg.amp.GradScaler("cpu", growth_factor=1.0)
    with pytest.raises(AssertionError, match="backoff factor"):
        gg.amp.GradScaler("cpu", backoff_factor=1.0)


def test_cuda_scaler_without_cuda_disables_itself():
    if gg.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.warns(UserWarning, match="CUDA is not available"):
        s = gg.amp.GradScaler()
    assert not s.is_enabled() and s.get_scale() == 1.0 and s.state_dict() == {}
    x = gg.ones(2)
    assert s.scale(x) is x


def test_disabled_scaler_passes_through():
    s = gg.amp.GradScaler("cpu", enabled=False)
    w = nn.Parameter(gg.ones(2))
    opt = optim.SGD([w], lr=1.0)
    loss = s.scale((w * 3).sum())
    loss.backward()
    s.step(opt)
    s.update()
    assert w.tolist() == [-2.0, -2.0] and s.get_scale() == 1.0


def test_scale_values_and_nesting():
    s = gg.amp.GradScaler("cpu", init_scale=4.0)
    a, b = gg.tensor([1.0, 2.0]), gg.tensor([3.0], dtype=gg.float16)
    out = s.scale([a, (b, a)])
    assert isinstance(out, list) and isinstance(out[1], tuple)
    assert out[0].tolist() == [4.0, 8.0] and out[1][0].tolist() == [12.0]
    assert out[1][0].dtype == gg.float16  # NOTE: 0-d float32 scale: the float16 output stays float16
    with pytest.raises(ValueError, match="Tensor or an iterable"):
        s.scale(3.0)


def test_unscale_then_clip_then_step():
    s = gg.amp.GradScaler("cpu", init_scale=1024.0)
    w = nn.Parameter(gg.tensor([3.0, 4.0]))
    opt = optim.SGD([w], lr=1.0)
    s.scale((w * w).sum() / 2).backward()
    assert w.grad.tolist() == [3072.0, 4096.0]
    s.unscale_(opt)
    assert w.grad.tolist() == [3.0, 4.0]
    nn.utils.clip_grad_norm_([w], 1.0)
    s.step(opt)                           # no second unscale
    np.testing.assert_allclose(w.tolist(), [3.0 - 0.6, 4.0 - 0.8], rtol=1e-5)
    with pytest.raises(RuntimeError, match="already been called since the last update"):
        s.step(opt)
    with pytest.raises(RuntimeError, match="after step"):
        s.unscale_(opt)
    s.update()
    s.scale((w * w).sum()).backward()
    s.unscale_(opt)
    with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called"):
        s.unscale_(opt)


def test_errors_like_pytorch():
    s = gg.amp.GradScaler("cpu")
    w = nn.Parameter(gg.ones(2))
    opt = optim.SGD([w], lr=1.0)
    with pytest.raises(AssertionError, match="_scale is None"):
        s.step(opt)
    s.scale(w.sum())
    with pytest.raises(AssertionError, match="No inf checks were recorded for this optimizer"):
        s.step(opt)                        # no parameter has a gradient
    with pytest.raises(RuntimeError, match="Closure"):
        s.step(opt, closure=lambda: 0)
    h = nn.Parameter(gg.ones(2, dtype=gg.float16))
    oh = optim.SGD([h], lr=1.0)
    s.scale(h.float().sum()).backward()
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients"):
        s.step(oh)
    s2 = gg.amp.GradScaler("cpu")
    s2.scale(w.sum())
    with pytest.raises(AssertionError, match="No inf checks were recorded prior to update"):
        s2.update()


def test_update_with_new_scale_and_state_dict():
    s = gg.amp.GradScaler("cpu", init_scale=8.0, growth_interval=3)
    w = nn.Parameter(gg.ones(2))
    opt = optim.SGD([w], lr=0.1)
    s.scale(w.sum()).backward()
    s.step(opt)
    s.update(100.0)
    assert s.get_scale() == 100.0
    s.update(gg.tensor(0.5))
    assert s.get_scale() == 0.5
    with pytest.raises(AssertionError, match="new_scale should be a float"):
        s.update(gg.tensor([1.0, 2.0]))
    for _ in range(2):
        opt.zero_grad()
        s.scale(w.sum()).backward()
        s.step(opt)
        s.update()
    sd = s.state_dict()
    assert sd == {"scale": 0.5, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 3, "_growth_tracker": 2}
    t = gg.amp.GradScaler("cpu")
    t.load_state_dict(sd)
    assert t.get_scale() == 0.5 and t._get_growth_tracker() == 2
    t.scale(w.sum())                       # lazily made from the loaded values
    assert t._scale.item() == 0.5 and t._growth_tracker.item() == 2
    with pytest.raises(RuntimeError, match="source state dict is empty"):
        t.load_state_dict({})


def test_growth_stops_at_float32_max():
    s = gg.amp.GradScaler("cpu", init_scale=2.0 ** 127, growth_interval=1)
    w = nn.Parameter(gg.ones(1))
    opt = optim.SGD([w], lr=0.0)
    s.scale(w.sum()).backward()
    s.step(opt)
    s.update()
    assert s.get_scale() == 2.0 ** 127 and s._get_growth_tracker() == 0   # 2^128 is inf in float32: kept


def test_skipped_first_step_keeps_the_scheduler_warning():
    w = nn.Parameter(gg.ones(2))
    opt = optim.SGD([w], lr=1.0)
    sched = optim.lr_scheduler.StepLR(opt, 1)
    s = gg.amp.GradScaler("cpu")
    s.scale(w.sum()).backward()
    w.grad[0] = float("inf")
    s.step(opt)
    s.update()
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    assert w.tolist() == [1.0, 1.0] and s.get_scale() == 32768.0


def test_multiple_optimizers_share_one_update():
    s = gg.amp.GradScaler("cpu", init_scale=16.0)
    a, b = nn.Parameter(gg.ones(1)), nn.Parameter(gg.ones(1, dtype=gg.float64))
    oa, ob = optim.SGD([a], lr=1.0), optim.SGD([b], lr=1.0)
    s.scale(a.sum() + b.sum()).backward()
    b.grad[0] = float("nan")
    s.step(oa)
    s.step(ob)
    s.update()
    assert a.tolist() == [0.0] and b.tolist() == [1.0] and s.get_scale() == 8.0


def test_loss_scaling_rescues_underflowing_float16_gradients():
    """A float16 backward whose gradients underflow to 0 unscaled; with the scaler they survive."""
    c = gg.full((4,), 1e-3, dtype=gg.float16)

    def grads(scaler):
        w = nn.Parameter(gg.ones(4))
        # d loss / d w = 1e-8 per element: below float16's range (the loss itself in float32, as autocast gives)
        loss = (w.half() * c).sum().float() * 1e-5
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.unscale_(optim.SGD([w], lr=1.0))
        return w.grad.numpy()

    assert (grads(None) == 0).all()
    g = grads(gg.amp.GradScaler("cpu"))
    np.testing.assert_allclose(g, 1e-8, rtol=2e-3)


# -- autocast -------------------------------------------------------------------------------------------

def _ops(lib, Fn):
    """op name -> fn(a) with a the (4, 4) input in the dtype under test; x, w float32 constants."""
    x = lib.tensor(np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4))
    w = lib.tensor(np.linspace(0.5, -0.5, 16, dtype=np.float32).reshape(4, 4))
    t = lib.tensor([0, 1, 2, 3])
    return {
        "mm": lambda a: a @ w, "linear": lambda a: Fn.linear(a, w), "matmul": lambda a: lib.matmul(a, w),
        "bmm": lambda a: lib.bmm(a[None], w[None]), "addmm": lambda a: lib.addmm(x, a, w),
        "baddbmm": lambda a: lib.baddbmm(x[None], a[None], w[None]),
        "conv2d": lambda a: Fn.conv2d(a[None, None], w[None, None]),
        "conv_transpose2d": lambda a: Fn.conv_transpose2d(a[None, None], w[None, None]),
        "prelu": lambda a: Fn.prelu(a, lib.tensor([0.1])),
        "exp": lambda a: a.exp(), "sum": lambda a: a.sum(), "mean": lambda a: a.mean(), "tanh": lambda a: a.tanh(),
        "softmax": lambda a: a.softmax(-1), "log_softmax": lambda a: Fn.log_softmax(a, -1),
        "layer_norm": lambda a: Fn.layer_norm(a, (4,)), "group_norm": lambda a: Fn.group_norm(a, 2),
        "pow": lambda a: a ** 2, "cumsum": lambda a: a.cumsum(0), "relu": lambda a: a.relu(),
        "add": lambda a: a + x, "where": lambda a: lib.where(x > 0, a, x),
        "cat": lambda a: lib.cat([a, x]), "stack": lambda a: lib.stack([a, x]), "prod": lambda a: a.prod(),
        "trace": lambda a: a.trace(), "cdist": lambda a: lib.cdist(a, x),
        "mse_loss": lambda a: Fn.mse_loss(a, x), "l1_loss": lambda a: Fn.l1_loss(a, x),
        "smooth_l1_loss": lambda a: Fn.smooth_l1_loss(a, x), "huber_loss": lambda a: Fn.huber_loss(a, x),
        "cross_entropy": lambda a: Fn.cross_entropy(a, t), "nll_loss": lambda a: Fn.nll_loss(a, t),
        "bce_with_logits": lambda a: Fn.binary_cross_entropy_with_logits(a, x.sigmoid()),
        "bce": lambda a: Fn.binary_cross_entropy(a.sigmoid(), x.sigmoid()),
        "kl_div": lambda a: Fn.kl_div(a, x.softmax(-1), reduction="batchmean"),
    }


# PyTorch 2.13, torch.autocast("cpu", dtype=torch.float16): output dtype for a float32 input, a float16 input
H, S = "float16", "float32"
CPU_FP16_TABLE = {
    "mm": (H, H), "linear": (H, H), "matmul": (H, H), "bmm": (H, H), "addmm": (H, H), "baddbmm": (H, H),
    "conv2d": (H, H), "conv_transpose2d": (H, H), "prelu": (H, H),
    "exp": (S, H), "sum": (S, H), "mean": (S, H), "tanh": (S, H), "softmax": (S, H), "log_softmax": (S, H),
    "layer_norm": (S, H), "group_norm": (S, H), "pow": (S, H), "cumsum": (S, H), "relu": (S, H),
    "add": (S, S), "where": (S, S), "cat": (S, S), "stack": (S, S), "prod": (S, S), "trace": (S, S), "cdist": (S, S),
    "mse_loss": (S, S), "l1_loss": (S, S), "smooth_l1_loss": (S, S), "huber_loss": (S, S), "cross_entropy": (S, S),
    "nll_loss": (S, S), "bce_with_logits": (S, S), "bce": (S, S), "kl_div": (S, S),
}


def _dtypes(lib, Fn, name, low):
    f = _ops(lib, Fn)[name]
    x = lib.tensor(np.linspace(-0.9, 0.9, 16, dtype=np.float32).reshape(4, 4))
    with lib.autocast("cpu", dtype=low):
        return tuple(str(f(a).dtype).replace("torch.", "") for a in (x, x.to(low)))


LOW = ["float16", "bfloat16"]


@pytest.mark.parametrize("low", LOW)
@pytest.mark.parametrize("name", sorted(CPU_FP16_TABLE))
def test_cpu_autocast_table(name, low):
    # NOTE: the bfloat16 table is the float16 one with the names swapped (checked against torch below)
    want = tuple(low if d == H else d for d in CPU_FP16_TABLE[name])
    assert _dtypes(gg, F, name, getattr(gg, low)) == want
    f = _ops(gg, F)[name]
    x = gg.tensor(np.linspace(-0.9, 0.9, 16, dtype=np.float32).reshape(4, 4))
    assert str(f(x).dtype) == "float32"          # outside autocast: float32 in, float32 out


@pytest.mark.parametrize("low", LOW)
@pytest.mark.parametrize("name", sorted(CPU_FP16_TABLE))
def test_cpu_autocast_matches_torch(name, low):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF  # noqa: PLC0415
    assert _dtypes(gg, F, name, getattr(gg, low)) == _dtypes(torch, TF, name, getattr(torch, low))


def test_autocast_values_are_the_float16_computation():
    x, w = gg.randn(8, 16), gg.randn(16, 4)
    with gg.autocast("cpu", dtype=gg.float16):
        y = x @ w
    want = (x.half().numpy().astype(np.float32) @ w.half().numpy().astype(np.float32)).astype(np.float16)
    np.testing.assert_allclose(y.numpy().astype(np.float32), want.astype(np.float32), rtol=2e-3, atol=2e-3)


def test_nesting_disabled_regions_and_decorator():
    x = gg.ones(2, 2)
    assert not gg.amp.is_autocast_enabled("cpu")
    with gg.autocast("cpu", dtype=gg.float16):
        assert gg.amp.is_autocast_enabled("cpu") and gg.amp.get_autocast_dtype("cpu") == gg.float16
        with gg.autocast("cpu", enabled=False):
            assert (x @ x).dtype == gg.float32 and not gg.amp.is_autocast_enabled("cpu")
            with gg.autocast("cpu", dtype=gg.float16):
                assert (x @ x).dtype == gg.float16
        assert (x @ x).dtype == gg.float16
        with gg.autocast("cuda"):              # another device type's region: CPU ops unaffected by it
            assert (x @ x).dtype == gg.float16
    assert (x @ x).dtype == gg.float32 and not gg.amp.is_autocast_enabled("cpu")

    @gg.autocast("cpu", dtype=gg.float16)
    def f(a):
        return a @ a
    assert f(x).dtype == gg.float16 and (x @ x).dtype == gg.float32


def test_autocast_state_is_per_thread():
    import threading  # noqa: PLC0415
    seen = {}
    x = gg.ones(2, 2)
    started, release = threading.Event(), threading.Event()

    def other():
        started.wait()
        seen["other"] = ((x @ x).dtype, gg.amp.is_autocast_enabled("cpu"))
        release.set()

    th = threading.Thread(target=other)
    th.start()
    with gg.autocast("cpu", dtype=gg.float16):
        started.set()
        release.wait()
        seen["main"] = (x @ x).dtype
    th.join()
    assert seen == {"other": (gg.float32, False), "main": gg.float16}


def test_explicit_dtype_and_float64_are_not_cast():
    x = gg.ones(2, 2, dtype=gg.float64)
    with gg.autocast("cpu", dtype=gg.float16):
        assert (x @ x).dtype == gg.float64          # float64 is not eligible
        h = gg.ones(3, dtype=gg.float16)
        assert F.softmax(h, 0, dtype=gg.float32).dtype == gg.float32


def test_gradients_come_back_in_the_parameter_dtype_and_the_cache():
    lin = nn.Linear(4, 3)
    x = gg.randn(5, 4)
    from gpugrad.amp.autocast_mode import _tls  # noqa: PLC0415
    with gg.autocast("cpu", dtype=gg.float16):
        y1, y2 = lin(x), lin(x)
        cached = {k: v[2] for k, v in _tls.cache.items() if v[0] is lin.weight}
        loss = F.mse_loss(y1 + y2, gg.zeros(5, 3))
    assert len(cached) == 1 and next(iter(cached.values())).dtype == gg.float16   # one cast of the weight
    assert _tls.cache == {}                        # dropped when the region ends
    assert y1.dtype == gg.float16 and loss.dtype == gg.float32
    loss.backward()
    assert lin.weight.grad.dtype == gg.float32 and lin.weight.grad.shape == (3, 4)
    np.testing.assert_allclose(lin.weight.grad.numpy(), (4 * (y1 + y2).float().detach().T @ x / 15).numpy(),
                               rtol=1e-2, atol=1e-3)


def test_unsupported_autocast_arguments():
    with gg.autocast("cpu") as ac:               # PyTorch's CPU default
        assert ac.fast_dtype == gg.bfloat16 and gg.amp.get_autocast_dtype("cpu") == gg.bfloat16
    with pytest.raises(RuntimeError, match="supports float16 and bfloat16, got float64"):
        gg.autocast("cpu", dtype=gg.float64)
    with pytest.raises(RuntimeError, match="unsupported autocast device_type"):
        gg.autocast("xpu")
    with gg.autocast("cpu", enabled=False):      # a disabled region needs no dtype
        pass


def test_cuda_lists_follow_pytorchs_documentation():
    from gpugrad.amp.autocast_mode import POLICIES  # noqa: PLC0415
    cuda, cpu = POLICIES["cuda"], POLICIES["cpu"]
    assert cuda["binary_cross_entropy"] == "banned" and cpu["binary_cross_entropy"] == "fp32"
    assert all(cuda[n] == "fp32" for n in ("exp", "log", "softmax", "log_softmax", "sum", "layer_norm", "mse_loss"))
    assert all(n not in cpu for n in ("exp", "softmax", "sum", "layer_norm"))
    assert cuda["matmul"] == cpu["matmul"] == "lower" and cpu["cat"] == "promote"
    assert "batch_norm" not in cuda              # NOTE: PyTorch runs batch_norm in the input's dtype


def test_float16_autocast_training_with_scaler():
    gg.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    scaler = gg.amp.GradScaler("cpu")
    x = gg.randn(64, 8)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    losses = []
    for _ in range(60):
        opt.zero_grad()
        with gg.autocast("cpu", dtype=gg.float16):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]
    assert all(p.dtype == gg.float32 for p in model.parameters())
