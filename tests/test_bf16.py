"""bfloat16 tensors on the CPU (ml_dtypes): dtype rules, one float32 computation per op rounded once,
views, gradients, autocast, checkpoints; against PyTorch when it is installed."""
import subprocess
import sys

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import _dtypes
from gpugrad.nn import functional as F

ml_dtypes = pytest.importorskip("ml_dtypes")
BF = np.dtype(ml_dtypes.bfloat16)
rng = np.random.default_rng(0)


def bf(a):
    """An array rounded to bfloat16 (round to nearest even, as PyTorch's .bfloat16())."""
    return np.asarray(a, np.float32).astype(BF)


def f32(t):
    return t.detach().float().numpy()


def test_dtype_names_and_predicates():
    x = gg.ones(3, dtype=gg.bfloat16)
    assert gg.bfloat16 == BF and x.dtype == gg.bfloat16 and x.is_floating_point()
    assert gg.tensor([1.5], dtype="bfloat16").dtype == BF and gg.ones(2).bfloat16().dtype == BF
    assert gg.nn.Linear(2, 2).bfloat16().weight.dtype == BF
    v = gg.tensor([1.0, -2.5, 0.1])
    assert repr(v.bfloat16()) == repr(v.bfloat16().float())[:-1] + ", dtype=bfloat16)"  # its float32 values
    assert gg.zeros(2, dtype=BF).requires_grad_().requires_grad  # a float dtype: may require grad


@pytest.mark.parametrize("other, want", [
    ("float16", "float32"), ("float32", "float32"), ("float64", "float64"), ("int64", "bfloat16"),
    ("uint8", "bfloat16"), ("bool", "bfloat16"), ("bfloat16", "bfloat16")])
def test_promotion_as_pytorch(other, want):
    o = gg.bfloat16 if other == "bfloat16" else np.dtype(other)
    assert str(gg.promote_types(BF, o)) == want
    a = gg.ones(2, dtype=BF)
    assert str((a + gg.ones(2, dtype=o)).dtype) == want


def test_scalars_and_zero_dim_keep_bfloat16():
    a = gg.ones(2, dtype=BF)
    assert (a * 2.5).dtype == BF and (a + 1).dtype == BF and (2 ** a).dtype == BF
    assert (a * gg.tensor(3.0, dtype=gg.float64)).dtype == BF  # a 0-d tensor of the same category
    assert (gg.arange(3) * a[0]).dtype == BF                   # int tensor * 0-d bfloat16


def test_sums_accumulate_in_float32():
    x = gg.full((1000,), 0.01, dtype=BF)
    want = bf(np.float32(bf(0.01).astype(np.float32)) * 1000)  # one rounding of the float32 sum
    assert x.sum().item() == float(want)                        # NumPy's bfloat16 add.reduce gives 4.0
    assert x.mean().dtype == BF and abs(x.mean().item() - 0.01) < 1e-4


@pytest.mark.parametrize("name", ["exp", "log1p", "tanh", "sigmoid", "sin", "sqrt", "erf", "reciprocal", "relu"])
def test_elementwise_is_float32_rounded_once(name):
    x0 = bf(rng.uniform(0.1, 3.0, 257))
    got = getattr(gg.tensor(x0), name)()
    ref = {"relu": lambda v: np.maximum(v, 0), "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
           "reciprocal": lambda v: 1 / v, "erf": None}.get(name, getattr(np, name, None))
    if ref is None:  # erf: the float32 path of gpugrad itself
        want = getattr(gg.tensor(x0.astype(np.float32)), name)().numpy().astype(BF)
    else:
        want = ref(x0.astype(np.float32)).astype(np.float32).astype(BF)
    assert got.dtype == BF
    np.testing.assert_array_equal(got.numpy().view(np.uint16), want.view(np.uint16))


def test_matmul_and_linear_round_the_float32_product():
    a, b = bf(rng.standard_normal((5, 7))), bf(rng.standard_normal((7, 3)))
    y = gg.tensor(a) @ gg.tensor(b)
    assert y.dtype == BF
    np.testing.assert_array_equal(f32(y), (a.astype(np.float32) @ b.astype(np.float32)).astype(BF).astype(np.float32))
    lin = gg.nn.Linear(7, 3).bfloat16()
    assert lin(gg.tensor(a)).dtype == BF


def test_views_share_memory_and_inplace_writes_show():
    x = gg.zeros(4, 3, dtype=BF)
    v = x.t()
    r = x.reshape(12)
    s = x[1]
    v[0, 2] = 5.0
    assert x[2, 0].item() == 5.0 and r[6].item() == 5.0
    s.add_(1.0)
    assert f32(x[1]).tolist() == [1.0, 1.0, 1.0]
    assert x.dtype == v.dtype == r.dtype == BF


def test_gradients_are_bfloat16_and_the_float32_computation():
    x0 = bf(rng.standard_normal((4, 6)))
    w0 = bf(rng.standard_normal((6, 3)))
    x, w = gg.tensor(x0).requires_grad_(), gg.tensor(w0).requires_grad_()
    (x @ w).tanh().sum().backward()
    assert x.grad.dtype == BF and w.grad.dtype == BF
    x32, w32 = gg.tensor(x0.astype(np.float32)).requires_grad_(), gg.tensor(w0.astype(np.float32)).requires_grad_()
    y32 = (x32 @ w32).tanh()
    y32.sum().backward()
    # NOTE: bfloat16 rounds each op's result (the product, tanh's output): within a few bfloat16 ulps
    np.testing.assert_allclose(f32(w.grad), w32.grad.numpy(), rtol=3e-2, atol=3e-2)


def test_broadcast_gradient_sums_in_float32():
    b = gg.zeros(1, dtype=BF).requires_grad_()
    (b.expand(1000) * gg.full((1000,), 0.01, dtype=BF)).sum().backward()
    assert b.grad.dtype == BF and abs(b.grad.item() - 10.0) < 0.05


def test_norm_layers_keep_bfloat16_with_float32_parameters():
    x = gg.tensor(rng.standard_normal((2, 4, 3, 3)).astype(np.float32)).bfloat16().requires_grad_()
    for y in (F.layer_norm(x, (3, 3)), F.group_norm(x, 2, gg.ones(4), gg.zeros(4)),
              F.batch_norm(x, None, None, gg.ones(4), gg.zeros(4), training=True)):
        assert y.dtype == BF
        y.float().square().sum().backward()
        assert x.grad.dtype == BF
        x.grad = None


def test_create_graph_runs_on_bfloat16():
    x = gg.tensor([0.5, -1.0, 2.0]).bfloat16().requires_grad_()
    (g,) = gg.autograd.grad((x * x * x).sum(), x, create_graph=True)
    (h,) = gg.autograd.grad(g.sum(), x)
    assert g.dtype == h.dtype == BF
    np.testing.assert_allclose(f32(h), 6 * f32(x), rtol=1e-2)


def test_autocast_cpu_default_is_bfloat16_and_trains():
    gg.manual_seed(0)
    model = gg.nn.Sequential(gg.nn.Linear(8, 16), gg.nn.ReLU(), gg.nn.Linear(16, 3))
    opt = gg.optim.SGD(model.parameters(), lr=0.2)
    x = gg.tensor(rng.standard_normal((64, 8)).astype(np.float32))
    y = gg.tensor((x.numpy()[:, :3].argmax(1)).astype(np.int64))
    losses = []
    for _ in range(60):
        opt.zero_grad()
        with gg.autocast("cpu"):
            out = model(x)
            loss = F.cross_entropy(out, y)
        assert out.dtype == BF and loss.dtype == gg.float32
        loss.backward()
        assert model[0].weight.grad.dtype == gg.float32
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_checkpoint_round_trip(tmp_path):
    t = gg.tensor(rng.standard_normal(5).astype(np.float32)).bfloat16()
    gg.save({"t": t, "sd": gg.nn.Linear(2, 2).bfloat16().state_dict()}, tmp_path / "c.ggt")
    back = gg.load(tmp_path / "c.ggt")
    assert back["t"].dtype == BF and back["sd"]["weight"].dtype == BF
    np.testing.assert_array_equal(back["t"].numpy().view(np.uint16), t.numpy().view(np.uint16))


def test_without_ml_dtypes_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setattr(_dtypes, "BF16", None)
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # NOTE: makes `import ml_dtypes` raise ImportError
    with pytest.raises(TypeError, match=r"pip install 'gpugrad\[bf16\]'"):
        _dtypes.bfloat16()


def test_ml_dtypes_loads_lazily_and_when_anyone_imports_it():
    """`import gpugrad` does not import ml_dtypes (~0.6 s); a bfloat16 array made after the user imports it is
    still computed through the float32 choke point (no bfloat16 accumulation)."""
    code = ("import sys, numpy as np, gpugrad as gg; assert 'ml_dtypes' not in sys.modules; import ml_dtypes; "
            "x = gg.from_numpy(np.full(1000, 0.01, ml_dtypes.bfloat16)); s = x.sum().item(); "
            "assert abs(s - 10) < 0.05, s; assert (x * 2.5).dtype == gg.bfloat16; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


# -- against PyTorch ---------------------------------------------------------------------------------

UNARY = {
    "exp": lambda m, a: a.exp(), "tanh": lambda m, a: a.tanh(), "sigmoid": lambda m, a: a.sigmoid(),
    "gelu": lambda m, a: m.nn.functional.gelu(a), "silu": lambda m, a: m.nn.functional.silu(a),
    "softplus": lambda m, a: m.nn.functional.softplus(a), "mish": lambda m, a: m.nn.functional.mish(a),
    "sqrt": lambda m, a: (a * a + 1).sqrt(), "sum": lambda m, a: a.sum(1), "max": lambda m, a: a.amax(1),
    "softmax": lambda m, a: m.nn.functional.softmax(a, dim=1), "matmul": lambda m, a: a @ a.T,
    "clamp": lambda m, a: a.clamp(-0.5, 0.5), "where": lambda m, a: m.where(a > 0, a, 0.5 * a),
    "cat": lambda m, a: m.cat([a, a[:2]]), "index": lambda m, a: a[m.tensor([0, 0, 3])],
    "mse": lambda m, a: m.nn.functional.mse_loss(a, a.flip(0)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_forward_matches_pytorch_bit_for_bit(name):
    torch = pytest.importorskip("torch")
    x0 = rng.standard_normal((6, 40)).astype(np.float32)
    g = UNARY[name](gg, gg.tensor(x0).bfloat16())
    t = UNARY[name](torch, torch.tensor(x0).bfloat16())
    assert str(g.dtype) == str(t.dtype).replace("torch.", "")
    np.testing.assert_array_equal(f32(g), t.float().numpy())


@pytest.mark.parametrize("name", sorted(UNARY))
def test_backward_as_accurate_as_pytorch(name):
    """Gradients: PyTorch rounds each sub-op of a backward formula to bfloat16, gpugrad rounds the formula's
    float32 result once; both are compared with the float64 gradient at the same bfloat16 inputs."""
    torch = pytest.importorskip("torch")
    x0 = bf(rng.standard_normal((6, 40))).astype(np.float32)
    xs = [torch.tensor(x0).bfloat16().requires_grad_(), gg.tensor(x0).bfloat16().requires_grad_(),
          torch.tensor(x0.astype(np.float64)).requires_grad_()]
    for m, x in zip((torch, gg, torch), xs):
        y = UNARY[name](m, x)
        gy = np.linspace(-1, 1, int(np.prod(y.shape)), dtype=np.float32).reshape(tuple(y.shape))
        y.backward(m.tensor(gy).to(y.dtype) if m is gg else torch.tensor(gy).to(y.dtype))
    gt, gg_, ref = xs[0].grad.float().numpy(), f32(xs[1].grad), xs[2].grad.numpy()
    scale = np.abs(ref).max() + 1e-30
    err_torch, err_gg = np.abs(gt - ref).max() / scale, np.abs(gg_ - ref).max() / scale
    assert err_gg <= max(err_torch, 2 ** -8) * 1.01, (err_gg, err_torch)


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "RNN"])
def test_recurrent_layers_run_in_bfloat16(cls):
    gg.manual_seed(0)
    layer = getattr(gg.nn, cls)(4, 8, batch_first=True)
    x = gg.tensor(rng.standard_normal((2, 5, 4)).astype(np.float32))
    want = layer(x)[0]
    low = layer.bfloat16()
    xb = x.bfloat16().requires_grad_()
    got = low(xb)[0]
    assert got.dtype == BF
    np.testing.assert_allclose(f32(got), want.detach().numpy(), atol=3e-2)
    got.float().sum().backward()
    assert xb.grad.dtype == BF and low.weight_hh_l0.grad.dtype == BF


@pytest.mark.parametrize("low", ["bfloat16", "float16"])
@pytest.mark.parametrize("how", ["params", "autocast"])
def test_compiled_low_precision_step_is_eager_bit_for_bit(low, how):
    """gg.compile replays float16/bfloat16 ops through the same float32 choke point as eager."""
    dt = getattr(gg, low)

    def run(compiled):
        gg.manual_seed(0)
        m = gg.nn.Sequential(gg.nn.Linear(8, 32), gg.nn.ReLU(), gg.nn.Linear(32, 4))
        if how == "params":
            m = m.to(dtype=dt)
        opt = gg.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            with gg.autocast("cpu", dtype=dt, enabled=how == "autocast"):
                out = m(x)
                loss = F.cross_entropy(out.float(), y) + 1e-3 * out.sum().float()
            loss.backward()
            opt.step()
            return loss
        f = gg.compile(step) if compiled else step
        r = np.random.default_rng(1)
        for _ in range(5):
            x = gg.tensor(r.standard_normal((16, 8)).astype(np.float32))
            f(x.to(dt) if how == "params" else x, gg.tensor(r.integers(0, 4, 16)))
        return [f32(p) for p in m.parameters()]
    for a, b in zip(run(False), run(True)):
        np.testing.assert_array_equal(a, b)


def test_float64_is_not_bfloat16_before_ml_dtypes_loads(tmp_path):
    """Until ml_dtypes is imported, bfloat16 is a placeholder equal to no dtype (NumPy's float64 == None is True:
    checkpoints stored float64 tensors as bfloat16 bits, DLPack and printing took the bfloat16 paths)."""
    code = f"""
import sys, numpy as np, gpugrad as gg
assert "ml_dtypes" not in sys.modules
vals = [1.123456789012345, -2.5, 3e-300]
t = gg.tensor(np.array(vals), dtype=gg.float64)
gg.save({{"t": t, "s": gg.tensor(2.0, dtype=gg.float64)}}, {str(tmp_path / "c.gg")!r})
back = gg.load({str(tmp_path / "c.gg")!r})
assert back["t"].dtype == gg.float64 and back["t"].tolist() == vals and back["s"].item() == 2.0
d = gg.from_dlpack(t.__dlpack__())
assert d.dtype == gg.float64 and d.tolist() == vals
assert "1.1235" in repr(t) and "float64" in repr(t)
assert "ml_dtypes" not in sys.modules
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
