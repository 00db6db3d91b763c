"""Optimizers on float16/bfloat16 parameters: by default PyTorch's per-op rounding, bit for bit against
torch's CPU single-tensor optimizers (when torch is installed) and against a hand-written one-step
reference (always); with master_weights=True a float32 master copy updated exactly as a float32 run."""
import copy

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import optim
from gpugrad.optim._composite import Ops, _lanes

try:
    import torch
    torch.set_num_threads(1)  # NOTE: PyTorch splits large tensors across threads, each chunk with its own tail
except ImportError:  # pragma: no cover
    torch = None
try:
    import ml_dtypes
    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover
    BF16 = None

F16, F32 = np.dtype(np.float16), np.dtype(np.float32)
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
HAS_BF16_TENSORS = hasattr(gg, "bfloat16")
DTYPES = [F16, pytest.param(BF16, marks=pytest.mark.skipif(
    BF16 is None or not HAS_BF16_TENSORS, reason="bfloat16 tensors need ml_dtypes and gg.bfloat16"))]
ARRAY_DTYPES = [F16, pytest.param(BF16, marks=pytest.mark.skipif(BF16 is None, reason="ml_dtypes is not installed"))]


def _bits_equal(a, b):
    """Bitwise equal, any NaN equal to any NaN (PyTorch's and NumPy's NaN payloads differ)."""
    a, b = np.asarray(a), np.asarray(b)
    fa, fb = a.astype(F32), b.astype(F32)
    return bool(np.all((a.view(np.uint16) == b.view(np.uint16)) | (np.isnan(fa) & np.isnan(fb))))


def _t(a):
    return torch.from_numpy(np.asarray(a, F32)).to(torch.float16 if a.dtype == F16 else torch.bfloat16)


def _n(t, dt):
    return t.detach().float().numpy().astype(dt)


# -- the op emulator against torch's CPU kernels -----------------------------------------------------------

@needs_torch
@pytest.mark.parametrize("n", [7, 64, 100, 4099])
@pytest.mark.parametrize("dt", ARRAY_DTYPES)
def test_ops_equal_torch_cpu_kernels(dt, n):
    rng = np.random.default_rng(n)
    o = Ops(dt)
    a, b = ((rng.normal(size=n) * np.exp(rng.uniform(-8, 3, n))).astype(dt) for _ in range(2))
    c = (np.abs(b.astype(F32)) + 0.5).astype(dt)
    A, B, C = _t(a), _t(b), _t(c)
    for s in (0.0123, -0.7, 0.999, 1e-8, 1.0, -1.0):
        cases = {"add_alpha": (o.add(a, b, s), A.add(B, alpha=s)), "add_scalar": (o.add(a, s), A.add(s)),
                 "mul": (o.mul(a, s), A.mul(s)), "div": (o.div(a, abs(s)), A.div(abs(s))),
                 "lerp": (o.lerp(a, b, abs(s) % 1), A.lerp(B, abs(s) % 1)),
                 "addcmul": (o.addcmul(a, b, b, s), A.addcmul(B, B, value=s)),
                 "addcdiv": (o.addcdiv(a, b, c, s), A.addcdiv(B, C, value=s)), "rdiv": (o.rdiv(s, c), s / C)}
        for name, (got, want) in cases.items():
            assert _bits_equal(got, _n(want, dt)), f"{name} with scalar {s}"
    for name, got, want in [("sqrt", o.sqrt(c), C.sqrt()), ("sub", o.sub(a, b), A - B), ("mul_t", o.mul(a, b), A * B),
                            ("div_t", o.div(a, c), A / C), ("maximum", o.maximum(a, b), torch.maximum(A, B))]:
        assert _bits_equal(got, _n(want, dt)), name


@needs_torch
def test_vector_lanes_match_torch_capability():
    cap = torch.backends.cpu.get_cpu_capability().lower()
    assert _lanes() == (32 if cap in ("avx2", "avx512") else 1 << 62)


def test_one_step_against_a_hand_written_reference():
    """SGD (vector part and scalar tail) and Adam step 1 in float16, each rounding written out by hand."""
    h = lambda x: np.asarray(x, F32).astype(F16).astype(F32)  # noqa: E731  round to float16, compute in float32
    rng = np.random.default_rng(0)
    n = min(_lanes(), 32) + 5
    p0, g = rng.normal(size=n).astype(F16), rng.normal(size=n).astype(F16)
    p = gg.nn.Parameter(gg.tensor(p0))
    p.grad = gg.tensor(g)
    optim.SGD([p], lr=0.1).step()
    alpha = h(-0.1)
    want = h(p0.astype(F32) + alpha * g.astype(F32))                                # the vector loop
    if _lanes() > n:
        want[:] = h(p0.astype(F32) + h(alpha * g.astype(F32)))                      # no vector loop
    want[-5:] = h(p0[-5:].astype(F32) + h(alpha * g[-5:].astype(F32)))             # the scalar tail
    np.testing.assert_array_equal(p._data.astype(F32), want)
    q = gg.nn.Parameter(gg.tensor(p0))
    q.grad = gg.tensor(g)
    opt = optim.Adam([q], lr=0.01, eps=1e-3)
    opt.step()
    g32 = g.astype(np.float64)
    m = h(np.float32(0.1) * g32)                                            # lerp(0, g, 0.1) = 0.1 * g
    v = h(np.float32(0.001) * g32 * g32)                                    # 0 * 0.999 + 0.001 * g * g
    denom = h(h(h(np.sqrt(v)) / np.float32(np.sqrt(0.001))) + h(1e-3))    # sqrt, / sqrt(bc2), + eps
    want = h(p0.astype(F32) + (np.float32(-0.01 / 0.1) * m) / denom)       # addcdiv
    np.testing.assert_array_equal(opt.state[q]["exp_avg"]._data.astype(F32), m)
    np.testing.assert_array_equal(opt.state[q]["exp_avg_sq"]._data.astype(F32), v)
    np.testing.assert_array_equal(q._data.astype(F32), want)


# -- 20 steps against torch, every optimizer and option ------------------------------------------------------

CASES = [
    ("SGD", dict(lr=0.01)), ("SGD", dict(lr=0.01, momentum=0.9)),
    ("SGD", dict(lr=0.03, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True, maximize=True, weight_decay=1e-3)),
    ("Adam", dict(lr=1e-2)), ("Adam", dict(lr=1e-2, amsgrad=True, weight_decay=0.1)),
    ("Adam", dict(lr=1e-2, eps=1e-4, maximize=True)), ("Adam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=1e-2)), ("AdamW", dict(lr=1e-2, amsgrad=True, eps=1e-3)),
    ("RMSprop", dict(lr=1e-2)), ("RMSprop", dict(lr=1e-2, centered=True, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=1e-2, momentum=0.5, maximize=True)), ("RMSprop", dict(lr=1e-2, centered=True, eps=1e-3)),
    ("Adagrad", dict(lr=1e-2)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1, maximize=True)),
    ("Adamax", {}), ("Adamax", dict(lr=0.05, weight_decay=0.1, maximize=True)),
    ("Adadelta", {}), ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True)),
    ("NAdam", {}), ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("NAdam", dict(weight_decay=0.1, momentum_decay=0.01, maximize=True)),
    ("RAdam", dict(lr=0.05)), ("RAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.2, betas=(0.8, 0.9))),
    ("ASGD", {}), ("ASGD", dict(lr=0.02, t0=5, lambd=0.01, alpha=0.5, weight_decay=0.05, maximize=True)),
]
SHAPES = [(5, 37), (64,), (3,), ()]


def _problem(dt, steps, seed=0):
    rng = np.random.default_rng(seed)
    p0 = [(rng.normal(size=s) * 2).astype(dt) for s in SHAPES]
    grads = [[(rng.normal(size=s) * np.exp(rng.uniform(-6, 1, size=s))).astype(dt) for s in SHAPES]
             for _ in range(steps)]
    return p0, grads


@needs_torch
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}{i}" for i, (n, _) in enumerate(CASES)])
def test_twenty_steps_bit_for_bit_with_torch(name, kw, dt):
    p0, grads = _problem(dt, 20)
    tp = [torch.nn.Parameter(_t(a)) for a in p0]
    gp = [gg.nn.Parameter(gg.tensor(a)) for a in p0]
    to, go = getattr(torch.optim, name)(tp, **kw), getattr(optim, name)(gp, **kw)
    for k, gs in enumerate(grads):
        for t, p, g in zip(tp, gp, gs):
            t.grad, p.grad = _t(g), gg.tensor(g)
        to.step()
        go.step()
        for i, (t, p) in enumerate(zip(tp, gp)):
            assert p.dtype == dt and _bits_equal(p._data, _n(t, dt)), f"parameter {i} after step {k + 1}"
    for t, p in zip(tp, gp):
        for key, v in to.state[t].items():
            if isinstance(v, torch.Tensor) and v.dim() > 0 or key in ("momentum_buffer", "exp_avg", "ax"):
                assert go.state[p][key].dtype == dt and _bits_equal(go.state[p][key]._data, _n(v, dt)), key


@pytest.mark.parametrize("flag", ["foreach", "fused"])
def test_foreach_and_fused_refuse_low_precision(flag):
    p = gg.nn.Parameter(gg.ones(3, dtype=gg.float16))
    p.grad = gg.ones(3, dtype=gg.float16)
    with pytest.raises(NotImplementedError, match=f"{flag}=True with float16 parameters.*master_weights=True"):
        optim.Adam([p], **{flag: True}).step()
    optim.Adam([p], master_weights=True, **{flag: True}).step()   # the float32 update: the flags do not matter
    q = gg.nn.Parameter(gg.ones(3))
    q.grad = gg.ones(3)
    optim.Adam([q], **{flag: True}).step()


def test_lbfgs_refuses_low_precision_without_master_weights():
    p = gg.nn.Parameter(gg.tensor([1.0, -2.0], dtype=gg.float16))
    with pytest.raises(NotImplementedError, match="master_weights=True.*float32"):
        optim.LBFGS([p])
    opt = optim.LBFGS([p], master_weights=True, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((p.float() - gg.tensor([0.3, 0.7])) ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    m = opt.state[p]["master_param"]._data
    assert m.dtype == F32 and p.dtype == gg.float16
    np.testing.assert_array_equal(p._data, m.astype(F16))
    np.testing.assert_allclose(m, [0.3, 0.7], atol=2e-3)


# -- master weights -------------------------------------------------------------------------------------------

MASTER_CASES = [("SGD", dict(lr=1e-4, momentum=0.9)), ("Adam", dict(lr=1e-5, amsgrad=True)), ("AdamW", dict(lr=1e-5)),
                ("RMSprop", dict(lr=1e-5, centered=True, momentum=0.5)), ("Adagrad", dict(lr=1e-4)),
                ("Adamax", dict(lr=1e-5)), ("Adadelta", dict(lr=1e-3)), ("NAdam", dict(lr=1e-5)),
                ("RAdam", dict(lr=1e-5)), ("ASGD", dict(lr=1e-4, t0=50))]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name,kw", MASTER_CASES)
def test_master_weights_follow_the_float32_run_exactly(name, kw, dt):
    """200 tiny-lr steps: the master is bit for bit a float32 run of the same gradients; the parameter is the
    rounded master; the default mode's parameter moves less (updates below half an ulp are lost)."""
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=(7, 9)).astype(dt)
    mw, f32, dflt = (gg.nn.Parameter(gg.tensor(p0.astype(d))) for d in (dt, F32, dt))
    om, of, od = (getattr(optim, name)([p], master_weights=m, **kw) for p, m in ((mw, True), (f32, True), (dflt, False)))
    for _ in range(200):
        g = rng.normal(size=(7, 9)).astype(dt)
        mw.grad, f32.grad, dflt.grad = gg.tensor(g), gg.tensor(g.astype(F32)), gg.tensor(g)
        om.step(), of.step(), od.step()
    master = om.state[mw]["master_param"]._data
    assert master.dtype == F32 and "master_param" not in of.state[f32]   # float32 parameters: the flag does nothing
    np.testing.assert_array_equal(master, f32._data)
    np.testing.assert_array_equal(mw._data, master.astype(dt))
    assert all(v.dtype == F32 for v in om.state[mw].values() if isinstance(v, gg.Tensor))
    assert all(v.dtype == dt for v in od.state[dflt].values() if isinstance(v, gg.Tensor))
    assert (mw._data != p0).sum() >= (dflt._data != p0).sum()


@pytest.mark.parametrize("dt", DTYPES)
def test_stagnation_default_versus_master_weights(dt):
    """p = 1 and lr * grad below half an ulp: PyTorch's rounding never moves p; the master does."""
    lr = float(gg.finfo(gg.float16).eps if dt == F16 else 2.0 ** -7) / 4 / 3   # the gap below 1 is eps / 2
    ps = {}
    for m, d in ((False, dt), (True, dt), (True, F32)):
        p = ps[m, d] = gg.nn.Parameter(gg.tensor(np.ones(4, d)))
        opt = optim.SGD([p], lr=lr, master_weights=m)
        for _ in range(200):
            p.grad = gg.tensor(np.ones(4, d))
            opt.step()
    assert ps[False, dt].tolist() == [1.0] * 4
    np.testing.assert_array_equal(ps[True, dt]._data, ps[True, F32]._data.astype(dt))
    assert ps[True, dt].tolist()[0] < 1
    if torch is not None:
        t = torch.nn.Parameter(torch.ones(4, dtype=torch.float16 if dt == F16 else torch.bfloat16))
        topt = torch.optim.SGD([t], lr=lr)
        for _ in range(200):
            t.grad = torch.ones_like(t)
            topt.step()
        assert t.tolist() == [1.0] * 4


def _steps(opt, p, grads):
    for g in grads:
        p.grad = gg.tensor(g)
        opt.step()


@pytest.mark.parametrize("dt", DTYPES)
def test_master_state_dict_round_trip_and_mode_changes(dt):
    rng = np.random.default_rng(2)
    p0, grads = rng.normal(size=40).astype(dt), [rng.normal(size=40).astype(dt) for _ in range(10)]
    a = gg.nn.Parameter(gg.tensor(p0))
    oa = optim.Adam([a], lr=1e-3, master_weights=True)
    _steps(oa, a, grads)
    b = gg.nn.Parameter(gg.tensor(p0))
    ob = optim.Adam([b], lr=1e-3, master_weights=True)
    _steps(ob, b, grads[:5])
    sd = copy.deepcopy(ob.state_dict())
    assert sd["state"][0]["master_param"].dtype == F32
    c = gg.nn.Parameter(gg.tensor(b._data.copy()))
    oc = optim.Adam([c], lr=1e-3, master_weights=True)
    oc.load_state_dict(sd)
    _steps(oc, c, grads[5:])
    np.testing.assert_array_equal(oc.state[c]["master_param"]._data, oa.state[a]["master_param"]._data)
    np.testing.assert_array_equal(c._data, a._data)
    d = gg.nn.Parameter(gg.tensor(b._data.copy()))           # master-weights state into a default optimizer
    od = optim.Adam([d], lr=1e-3)
    od.load_state_dict(sd)
    assert "master_param" not in od.state[d] and od.state[d]["exp_avg"].dtype == dt
    _steps(od, d, grads[5:6])
    e = gg.nn.Parameter(gg.tensor(d._data.copy()))           # default state into a master-weights optimizer
    oe = optim.Adam([e], lr=1e-3, master_weights=True)
    oe.load_state_dict(od.state_dict())
    assert oe.state[e]["exp_avg"].dtype == F32
    _steps(oe, e, grads[6:7])
    np.testing.assert_array_equal(oe.state[e]["master_param"]._data.astype(dt), e._data)


def test_a_write_into_the_parameter_reseeds_the_master():
    p = gg.nn.Parameter(gg.ones(3, dtype=gg.float16))
    opt = optim.SGD([p], lr=1e-4, master_weights=True)
    _steps(opt, p, [np.ones(3, F16)] * 3)
    x = np.float32(1)
    for _ in range(3):
        x -= np.float32(1e-4)
    assert opt.state[p]["master_param"]._data[0] == x
    with gg.no_grad():
        p.fill_(2.0)
    _steps(opt, p, [np.ones(3, F16)])
    assert opt.state[p]["master_param"]._data[0] == np.float32(2) - np.float32(1e-4)
    np.testing.assert_array_equal(p._data, np.full(3, 2 - 1e-4, F16))


# -- GradScaler ---------------------------------------------------------------------------------------------

@pytest.mark.skipif(not HAS_BF16_TENSORS, reason="bfloat16 tensors need gg.bfloat16")
@pytest.mark.parametrize("master", [False, True])
def test_grad_scaler_steps_bfloat16_parameters_in_both_modes(master):
    rng = np.random.default_rng(3)
    p0, g = rng.normal(size=50).astype(BF16), rng.normal(size=50).astype(BF16)
    p = gg.nn.Parameter(gg.tensor(p0))
    opt = optim.Adam([p], lr=1e-2, master_weights=master)
    s = gg.amp.GradScaler("cpu", init_scale=1024.0)
    s.scale(gg.tensor(1.0))                                   # makes the scale (a loss would be scaled here)
    p.grad = gg.tensor((g.astype(F32) * 1024).astype(BF16))
    s.step(opt)
    s.update()
    ref = gg.nn.Parameter(gg.tensor(p0))
    oref = optim.Adam([ref], lr=1e-2, master_weights=master)
    _steps(oref, ref, [g])                                    # the same step on the unscaled gradient
    np.testing.assert_array_equal(p._data, ref._data)
    if torch is not None and not master:
        t = torch.nn.Parameter(_t(p0))
        topt, ts = torch.optim.Adam([t], lr=1e-2), torch.amp.GradScaler("cpu", init_scale=1024.0)
        ts.scale(torch.tensor(1.0))
        t.grad = _t((g.astype(F32) * 1024).astype(BF16))
        ts.step(topt)
        assert _bits_equal(p._data, _n(t, BF16))
    h = gg.nn.Parameter(gg.ones(2, dtype=gg.float16))     # float16 gradients: PyTorch's refusal, in both modes
    h.grad = gg.ones(2, dtype=gg.float16)
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients"):
        s.step(optim.SGD([h], lr=1.0, master_weights=master))
