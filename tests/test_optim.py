"""gg.optim: every optimizer against an independent float64 NumPy reference of PyTorch's algorithm,
closed forms, param groups, state_dict round trips, argument errors; the fused kernels' math
(kernels/optim.cu) against the NumPy fallback, on the host here and on the GPU when there is one."""
import copy
import os
import shutil
import subprocess

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.backend import cuda
from gpugrad.fused import optim as K
from gpugrad.optim import SGD, Adagrad, Adam, AdamW, RMSprop

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPTIM_CU = os.path.join(REPO, "kernels", "optim.cu")
_CUDA_WHY = cuda.why_unavailable()
needs_cuda = pytest.mark.skipif(_CUDA_WHY is not None, reason=f"no CUDA: {_CUDA_WHY}")


# -- float64 references, written from the documented algorithms (textbook forms, new arrays) ----------

def ref_sgd(p, g, st, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False):
    g = -g if maximize else g
    g = g + weight_decay * p
    if momentum:
        b = st["b"] = g.copy() if "b" not in st else momentum * st["b"] + (1 - dampening) * g
        g = g + momentum * b if nesterov else b
    return p - lr * g


def ref_adam(p, g, st, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False,
             decoupled=False):
    b1, b2 = betas
    t = st["t"] = st.get("t", 0) + 1
    g = -g if maximize else g
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    m = st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
    v = st["v"] = b2 * st.get("v", 0) + (1 - b2) * g * g
    if amsgrad:
        v = st["vmax"] = np.maximum(st.get("vmax", 0), v)
    mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return p - lr * mhat / (np.sqrt(vhat) + eps)


def ref_adamw(p, g, st, weight_decay=1e-2, **kw):
    return ref_adam(p, g, st, weight_decay=weight_decay, decoupled=True, **kw)


def ref_rmsprop(p, g, st, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                maximize=False):
    g = -g if maximize else g
    g = g + weight_decay * p
    v = st["v"] = alpha * st.get("v", 0) + (1 - alpha) * g ** 2
    if centered:
        ga = st["ga"] = alpha * st.get("ga", 0) + (1 - alpha) * g
        v = v - ga ** 2
    step = g / (np.sqrt(v) + eps)
    if momentum > 0:
        step = st["b"] = momentum * st.get("b", 0) + step
    return p - lr * step


def ref_adagrad(p, g, st, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                maximize=False):
    t = st["t"] = st.get("t", 0) + 1
    g = -g if maximize else g
    g = g + weight_decay * p
    s = st["s"] = st.get("s", initial_accumulator_value) + g * g
    return p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)


CASES = [
    (SGD, ref_sgd, dict(lr=0.1)),
    (SGD, ref_sgd, dict(lr=0.1, weight_decay=0.1)),
    (SGD, ref_sgd, dict(lr=0.05, momentum=0.9)),
    (SGD, ref_sgd, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    (SGD, ref_sgd, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (SGD, ref_sgd, dict(lr=0.05, momentum=0.5, maximize=True, weight_decay=0.1)),
    (Adam, ref_adam, dict(lr=0.01)),
    (Adam, ref_adam, dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
    (Adam, ref_adam, dict(lr=0.01, amsgrad=True)),
    (Adam, ref_adam, dict(lr=0.01, maximize=True, weight_decay=0.05, amsgrad=True, eps=1e-3)),
    (AdamW, ref_adamw, dict(lr=0.01)),
    (AdamW, ref_adamw, dict(lr=0.01, weight_decay=0.5, amsgrad=True, maximize=True)),
    (RMSprop, ref_rmsprop, dict(lr=0.01)),
    (RMSprop, ref_rmsprop, dict(lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.8)),
    (RMSprop, ref_rmsprop, dict(lr=0.01, centered=True)),
    (RMSprop, ref_rmsprop, dict(lr=0.01, centered=True, momentum=0.9, maximize=True)),
    (Adagrad, ref_adagrad, dict(lr=0.1)),
    (Adagrad, ref_adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.5)),
    (Adagrad, ref_adagrad, dict(lr=0.1, maximize=True, eps=1e-3)),
]
SHAPES = [(3, 4), (5,), ()]
STEPS = 6


def _grad_fn(gk, p):
    return gk + 0.5 * p  # gradient depends on the parameter, so the trajectories must really agree


def _problem(seed=1):
    rng = np.random.default_rng(seed)
    p0 = [rng.normal(size=s) for s in SHAPES]
    G = [[rng.normal(size=s) for s in SHAPES] for _ in range(STEPS)]
    return p0, G


def _run(cls, kw, dtype, p0, G, device="cpu"):
    params = [gg.tensor(x, dtype=dtype, device=device, requires_grad=True) for x in p0]
    opt = cls(params, **kw)
    traj = []
    for gk in G:
        for p, g in zip(params, gk):
            cur = gg.tensor(p._data).numpy().astype(np.float64) if device == "cpu" else p._data.get().astype(np.float64)
            p.grad = gg.tensor(_grad_fn(g, cur), dtype=dtype, device=device)
        opt.step()
        traj.append([np.array(p._data.get() if device != "cpu" else p._data, dtype=np.float64) for p in params])
    return params, opt, traj


def _ref_traj(ref, kw, p0, G):
    ps, sts, traj = [x.copy() for x in p0], [{} for _ in p0], []
    for gk in G:
        ps = [ref(p, _grad_fn(g, p), st, **kw) for p, g, st in zip(ps, gk, sts)]
        traj.append(ps)
    return traj


@pytest.mark.parametrize("dtype,rtol,atol", [("float64", 1e-12, 1e-13), ("float32", 2e-5, 2e-6)])
@pytest.mark.parametrize("cls,ref,kw", CASES, ids=lambda c: getattr(c, "__name__", None))
def test_matches_reference(cls, ref, kw, dtype, rtol, atol):
    p0, G = _problem()
    params, _, traj = _run(cls, kw, dtype, p0, G)
    want = _ref_traj(ref, kw, p0, G)
    for k, (got_k, want_k) in enumerate(zip(traj, want)):
        for got, exp in zip(got_k, want_k):
            np.testing.assert_allclose(got, exp, rtol=rtol, atol=atol, err_msg=f"step {k + 1}")
    assert all(p.dtype == np.dtype(dtype) for p in params)
    assert not np.allclose(traj[-1][0], p0[0])  # the parameters did move


def _const_grad_closed_form(name, g, K_, lr):
    t = np.arange(1, K_ + 1, dtype=np.float64)[:, None]  # steps along axis 0
    if name == "sgd":               # momentum 0.9: b_t = g (1 - mu^t) / (1 - mu)
        return lr * g * np.sum((1 - 0.9 ** t) / 0.1, axis=0)
    if name == "nesterov":          # step uses g + mu * b_t
        return lr * g * np.sum(1 + 0.9 * (1 - 0.9 ** t) / 0.1, axis=0)
    if name == "adam":              # mhat = g, vhat = g^2 exactly
        return K_ * lr * g / (np.abs(g) + 1e-8)
    if name == "rmsprop":           # v_t = (1 - alpha^t) g^2
        return lr * g * np.sum(1 / (np.abs(g) * np.sqrt(1 - 0.99 ** t) + 1e-8), axis=0)
    if name == "adagrad":           # sum_t = t g^2, lr_decay 0.1
        return np.sum(lr / (1 + (t - 1) * 0.1) * g / (np.sqrt(t) * np.abs(g) + 1e-10), axis=0)
    raise AssertionError(name)


@pytest.mark.parametrize("name,make", [
    ("sgd", lambda ps: SGD(ps, lr=0.1, momentum=0.9)),
    ("nesterov", lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True)),
    ("adam", lambda ps: Adam(ps, lr=0.1)),
    ("rmsprop", lambda ps: RMSprop(ps, lr=0.1)),
    ("adagrad", lambda ps: Adagrad(ps, lr=0.1, lr_decay=0.1)),
])
def test_constant_gradient_closed_form(name, make):
    g = np.array([0.5, -2.0, 1e-3, 3.0])
    p0 = np.array([1.0, -1.0, 0.25, 0.0])
    p = gg.tensor(p0, dtype="float64", requires_grad=True)
    opt = make([p])
    for _ in range(7):
        p.grad = gg.tensor(g, dtype="float64")
        opt.step()
    np.testing.assert_allclose(p._data, p0 - _const_grad_closed_form(name, g, 7, 0.1), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls,kw", [(SGD, dict(lr=0.05, momentum=0.9)), (Adam, dict(lr=0.05)),
                                    (AdamW, dict(lr=0.05, amsgrad=True)), (RMSprop, dict(lr=0.01, centered=True)),
                                    (Adagrad, dict(lr=0.05))])
def test_float16_params_with_master_weights_keep_float32_state(cls, kw):
    p0, G = _problem(3)
    params, opt, traj = _run(cls, dict(kw, master_weights=True), "float16", p0, G)
    ref = {SGD: ref_sgd, Adam: ref_adam, AdamW: ref_adamw, RMSprop: ref_rmsprop, Adagrad: ref_adagrad}[cls]
    want = _ref_traj(ref, kw, p0, G)
    for got, exp in zip(traj[-1], want[-1]):
        np.testing.assert_allclose(got, exp, rtol=5e-3, atol=5e-3)
    for p in params:
        assert p.dtype == np.float16
        assert all(v.dtype == np.float32 for v in opt.state[p].values() if isinstance(v, gg.Tensor))


@pytest.mark.parametrize("opt_name", ["sgd", "adam", "rmsprop", "adagrad"])
def test_optimizer_equals_array_functions(opt_name):
    """The optimizer is exactly the array-level function plus state bookkeeping (bitwise)."""
    rng = np.random.default_rng(5)
    x0 = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(4)]
    p = gg.tensor(x0, requires_grad=True)
    make = dict(sgd=lambda: SGD([p], lr=0.1, momentum=0.9, dampening=0.1),
                adam=lambda: Adam([p], lr=0.01, amsgrad=True, weight_decay=0.1),
                rmsprop=lambda: RMSprop([p], lr=0.01, momentum=0.5, centered=True),
                adagrad=lambda: Adagrad([p], lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1))[opt_name]
    opt = make()
    data_id = id(p._data)
    x = x0.copy()
    z = lambda v=0.0: np.full_like(x0, v)
    st = dict(sgd=[z()], adam=[z(), z(), z()], rmsprop=[z(), z(), z()], adagrad=[z(0.1)])[opt_name]
    for t, g in enumerate(grads, 1):
        p.grad = gg.tensor(g)
        opt.step()
        if opt_name == "sgd":
            K.sgd_step(x, g, st[0], lr=0.1, momentum=0.9, dampening=0.1, first_step=t == 1)
        elif opt_name == "adam":
            K.adam_step(x, g, *st, step=t, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1, amsgrad=True)
        elif opt_name == "rmsprop":
            K.rmsprop_step(x, g, st[0], st[1], st[2], lr=0.01, alpha=0.99, eps=1e-8, momentum=0.5, centered=True)
        else:
            K.adagrad_step(x, g, st[0], step=t, lr=0.1, lr_decay=0.01, eps=1e-10)
        np.testing.assert_array_equal(p._data, x)
    assert id(p._data) == data_id  # updated in place, not reassigned


def test_centered_rmsprop_clamps_negative_variance():
    # sq - gavg^2 < 0 (as rounding can make it): the variance is clamped to 0, so avg = eps, not NaN
    p, g = np.array([1.0, 1.0]), np.array([0.5, 0.5])
    sq, ga = np.array([0.2499, 0.3]), np.array([0.5, 0.5])
    K.rmsprop_step(p, g, sq, ga, lr=1e-3, alpha=0.5, eps=1e-4, centered=True)
    var1 = 0.5 * 0.3 + 0.5 * 0.25 - 0.25
    np.testing.assert_allclose(p, [1.0 - 1e-3 * 0.5 / 1e-4, 1.0 - 1e-3 * 0.5 / (np.sqrt(var1) + 1e-4)], rtol=1e-12)


def test_fallback_updates_strided_views_in_place():
    base = np.arange(24, dtype=np.float32).reshape(4, 6) / 10
    view = base[:, ::2]
    g = np.ones_like(view)
    K.sgd_step(view, g, lr=0.5)
    np.testing.assert_allclose(base[:, ::2], np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2] / 10 - 0.5)
    np.testing.assert_allclose(base[:, 1::2], np.arange(24, dtype=np.float32).reshape(4, 6)[:, 1::2] / 10)


def test_param_groups_have_their_own_options():
    body = [gg.tensor(np.ones(3), requires_grad=True), gg.tensor(np.ones(2), requires_grad=True)]
    head = gg.tensor(np.ones(4), requires_grad=True)
    opt = SGD([{"params": body, "lr": 1e-4}, {"params": head, "momentum": 0.5}], lr=1e-2)
    assert opt.param_groups[0]["lr"] == 1e-4 and opt.param_groups[0]["momentum"] == 0
    assert opt.param_groups[1]["lr"] == 1e-2 and opt.param_groups[1]["momentum"] == 0.5
    for _ in range(2):
        for q in (*body, head):
            q.grad = gg.tensor(np.full(q.shape, 2.0, dtype=q.dtype))
        opt.step()
    np.testing.assert_allclose(body[0]._data, 1 - 2 * 1e-4 * 2, rtol=1e-6)
    np.testing.assert_allclose(head._data, 1 - 1e-2 * 2 - 1e-2 * (0.5 * 2 + 2), rtol=1e-6)  # b1 = g, b2 = 0.5 g + g
    extra = gg.tensor(np.zeros(2), requires_grad=True)
    opt.add_param_group({"params": [extra], "lr": 0.5})
    extra.grad = gg.tensor(np.ones(2))
    opt.step()
    np.testing.assert_allclose(extra._data, -0.5)


def test_skips_params_without_grad_and_zero_grad():
    a, b = gg.tensor([1.0, 2.0], requires_grad=True), gg.tensor([3.0], requires_grad=True)
    opt = Adam([a, b], lr=0.1)
    a.grad = gg.tensor([1.0, -1.0])
    opt.step()
    np.testing.assert_allclose(a._data, [0.9, 2.1], rtol=1e-6)
    np.testing.assert_array_equal(b._data, [3.0])
    assert b not in opt.state and opt.state[a]["step"] == 1
    g_arr = a.grad._data
    opt.zero_grad(set_to_none=False)
    assert a.grad._data is g_arr and np.all(g_arr == 0) and b.grad is None
    opt.zero_grad()
    assert a.grad is None


def test_step_closure_reevaluates_loss_with_grad_enabled():
    p = gg.tensor([3.0, -1.0], requires_grad=True)
    opt = SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with gg.no_grad():
        loss = opt.step(closure)
    assert float(loss.item()) == pytest.approx(10.0)
    np.testing.assert_allclose(p._data, [1.5, -0.5])  # p - 0.25 * 2p


@pytest.mark.parametrize("cls,kw", [(SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
                                    (Adam, dict(lr=0.01, amsgrad=True)), (AdamW, dict(lr=0.01)),
                                    (RMSprop, dict(lr=0.01, centered=True, momentum=0.5)),
                                    (Adagrad, dict(lr=0.1, lr_decay=0.01))])
@pytest.mark.parametrize("via", ["deepcopy", "gg.save"])
def test_state_dict_round_trip_continues_identically(cls, kw, via, tmp_path):
    p0, G = _problem(7)
    pa = [gg.tensor(x, dtype="float32", requires_grad=True) for x in p0]
    a = cls([{"params": pa[:2]}, {"params": pa[2:], "lr": kw["lr"] / 2}], **kw)

    def step(opt, params, gk):
        for p, g in zip(params, gk):
            p.grad = gg.tensor(_grad_fn(g, p._data.astype(np.float64)), dtype="float32")
        opt.step()

    for gk in G[:3]:
        step(a, pa, gk)
    sd = a.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2] and [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    if via == "gg.save":
        gg.save(sd, tmp_path / "opt.ckpt")
        sd = gg.load(tmp_path / "opt.ckpt")
    else:
        sd = copy.deepcopy(sd)
    pb = [gg.tensor(p._data.copy(), requires_grad=True) for p in pa]
    b = cls([{"params": pb[:2]}, {"params": pb[2:]}], **kw)
    b.load_state_dict(sd)
    assert b.param_groups[1]["lr"] == kw["lr"] / 2
    for gk in G[3:]:
        step(a, pa, gk)
        step(b, pb, gk)
    for x, y in zip(pa, pb):
        np.testing.assert_array_equal(x._data, y._data)
    some = next(v for v in a.state[pa[0]].values() if isinstance(v, gg.Tensor))
    other = next(v for v in b.state[pb[0]].values() if isinstance(v, gg.Tensor))
    assert some._data is not other._data  # loading copies the state


def test_load_state_dict_errors():
    ps = [gg.tensor(np.ones(3), requires_grad=True), gg.tensor(np.ones(2), requires_grad=True)]
    a = Adam(ps, lr=0.1)
    for p in ps:
        p.grad = gg.tensor(np.ones(p.shape, dtype=p.dtype))  # NOTE: as PyTorch, a grad of the param's dtype
    a.step()
    sd = a.state_dict()
    with pytest.raises(ValueError, match="parameter group"):
        Adam([{"params": ps[:1]}, {"params": ps[1:]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="doesn't match the size"):
        Adam(ps[:1]).load_state_dict(dict(sd, param_groups=sd["param_groups"]))
    q = [gg.tensor(np.ones(4), requires_grad=True), gg.tensor(np.ones(2), requires_grad=True)]
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(4,\)"):
        Adam(q).load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        Adam(ps).load_state_dict({"state": {}})


_P = lambda: [gg.tensor(np.ones(2), requires_grad=True)]


@pytest.mark.parametrize("make,exc,match", [
    (lambda: SGD(_P(), lr=-0.1), ValueError, "learning rate"),
    (lambda: SGD(_P(), lr=0.1, momentum=-0.5), ValueError, "momentum"),
    (lambda: SGD(_P(), lr=0.1, weight_decay=-1), ValueError, "weight_decay"),
    (lambda: SGD(_P(), lr=0.1, nesterov=True), ValueError, "Nesterov momentum requires"),
    (lambda: SGD(_P(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError, "zero dampening"),
    (lambda: SGD(_P(), lr="fast"), TypeError, "real number"),
    (lambda: Adam(_P(), betas=(1.0, 0.999)), ValueError, "beta parameter at index 0"),
    (lambda: Adam(_P(), betas=(0.9, -0.1)), ValueError, "beta parameter at index 1"),
    (lambda: Adam(_P(), betas=(0.9,)), ValueError, "pair"),
    (lambda: AdamW(_P(), eps=-1e-8), ValueError, "epsilon"),
    (lambda: Adam(_P(), lr=float("nan")), ValueError, "learning rate"),
    (lambda: RMSprop(_P(), alpha=1.5), ValueError, "alpha"),
    (lambda: RMSprop(_P(), momentum=-0.1), ValueError, "momentum"),
    (lambda: Adagrad(_P(), lr_decay=-0.1), ValueError, "lr_decay"),
    (lambda: Adagrad(_P(), initial_accumulator_value=-1), ValueError, "initial_accumulator_value"),
    (lambda: Adam(_P(), differentiable=True), NotImplementedError, "differentiable"),
    (lambda: SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda: SGD(_P()[0], lr=0.1), TypeError, "iterable of Tensors"),
    (lambda: SGD(set(_P()), lr=0.1), TypeError, "ordered collections"),
    (lambda: SGD([np.ones(2)], lr=0.1), TypeError, "only optimize Tensors"),
    (lambda: SGD([gg.tensor([1, 2])], lr=0.1), TypeError, "floating-point"),
    (lambda: SGD([{"params": _P(), "lr": 0.1, "betas": (0.9, 0.99)}]), ValueError, "unknown option.*'betas'"),
    (lambda: SGD([{"params": _P(), "lr": -1.0}]), ValueError, "learning rate"),
])
def test_argument_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_duplicate_and_non_leaf_parameters():
    p = gg.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="duplicate parameters"):
        SGD([p, p], lr=0.1)
    opt = SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [p]})
    with pytest.raises(ValueError, match="non-leaf"):
        SGD([p * 2], lr=0.1)
    assert len(opt.param_groups) == 1


def test_end_to_end_adam_on_device(device):
    """The same Adam run on the test device and in float64 NumPy."""
    p0, G = _problem(11)
    kw = dict(lr=0.01, amsgrad=True, weight_decay=0.1)
    _, _, traj = _run(Adam, kw, "float32", p0, G, device=device)
    want = _ref_traj(ref_adam, kw, p0, G)
    for got, exp in zip(traj[-1], want[-1]):
        np.testing.assert_allclose(got, exp, rtol=2e-5, atol=2e-6)


# -- the CUDA source: per-element math on the host vs the NumPy fallback; nvcc compile; GPU ----------

FNS = dict(sgd=K.sgd_step, adam=K.adam_step, rmsprop=K.rmsprop_step, adagrad=K.adagrad_step)
KERNEL_CASES = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True, first_step=True)),
    ("adam", dict(step=3, lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8)),
    ("adam", dict(step=1, lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("adam", dict(step=7, lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1, decoupled_weight_decay=True)),
    ("rmsprop", dict(lr=1e-2, alpha=0.99, eps=1e-8)),
    ("rmsprop", dict(lr=1e-2, alpha=0.9, eps=1e-8, weight_decay=0.1, momentum=0.9, centered=True)),
    ("rmsprop", dict(lr=1e-2, alpha=0.95, eps=1e-6, momentum=0.5, maximize=True)),
    ("adagrad", dict(step=4, lr=0.1, eps=1e-10, lr_decay=0.01)),
    ("adagrad", dict(step=1, lr=0.1, eps=1e-10, weight_decay=0.1, maximize=True)),
]


def _kernel_args(opt, kw, dtype, n, seed=0):
    """param, grad, then every state slot of the kernel (None where the configuration has none)."""
    rng = np.random.default_rng(seed)
    sdt = K.state_dtype(dtype)
    nrm = lambda s=1.0: (s * rng.normal(size=n)).astype(sdt)
    pos = lambda: np.abs(rng.normal(size=n)).astype(sdt)
    p, g = rng.normal(size=n).astype(dtype), rng.normal(size=n).astype(dtype)
    if opt == "sgd":
        st = [nrm() if kw.get("momentum") else None]
    elif opt == "adam":
        st = [nrm(), pos(), pos() if kw.get("amsgrad") else None]
    elif opt == "rmsprop":
        st = [pos() + 0.5, nrm(0.1) if kw.get("centered") else None, nrm() if kw.get("momentum") else None]
        if kw.get("centered"):  # every 4th element: sq < gavg^2 and g = gavg, so the clamp at 0 is taken
            g[::4] = st[1][::4] * (-1 if kw.get("maximize") else 1)
            st[0][::4] = 0.5 * st[1][::4] ** 2
    else:
        st = [pos()]
    return [p, g, *st]


def _launch_args(monkeypatch, opt, kw, arrays):
    """What the bridge would hand to the CUDA kernel (scalars and flags, in kernel order)."""
    calls = []
    with monkeypatch.context() as m:
        fake = object()
        m.setattr(K, "xp_of", lambda a: fake)
        m.setattr(K.cuda, "update_launch", lambda *a: calls.append(a))
        FNS[opt](*arrays, **kw)
    (source, name, _, _, _, scalars, flags), = calls
    assert source == "optim.cu" and name == f"gpugrad_{opt}_step"
    return scalars, flags


HARNESS = r"""
#include "optim.cu"
#include <cstdio>
#include <cstring>
#include <vector>
// Reads cases from stdin, applies the host/device math of kernels/optim.cu elementwise, prints the arrays.
template <typename S> static void run_case(const char* opt) {
    int n, ns, ni, na;
    if (scanf("%d %d %d %d", &n, &ns, &ni, &na) != 4) return;
    std::vector<double> c(ns); std::vector<int> f(ni);
    for (double& x : c) if (scanf("%lf", &x) != 1) return;
    for (int& x : f) if (scanf("%d", &x) != 1) return;
    std::vector<std::vector<S> > a(na, std::vector<S>(n));
    for (auto& v : a) for (S& x : v) { double d; if (scanf("%lf", &d) != 1) return; x = (S)d; }
    for (int i = 0; i < n; ++i) {
        S& p = a[0][i]; S g = a[1][i];
        if (!strcmp(opt, "sgd")) gg::sgd_update<S>(p, g, a[2][i], (S)c[0], (S)c[1], (S)c[2], (S)c[3], f[0], f[1], f[2], f[3]);
        else if (!strcmp(opt, "adam")) gg::adam_update<S>(p, g, a[2][i], a[3][i], a[4][i], (S)c[0], (S)c[1], (S)c[2], (S)c[3], (S)c[4], (S)c[5], (S)c[6], (S)c[7], (S)c[8], f[0], f[1]);
        else if (!strcmp(opt, "rmsprop")) gg::rmsprop_update<S>(p, g, a[2][i], a[3][i], a[4][i], (S)c[0], (S)c[1], (S)c[2], (S)c[3], (S)c[4], (S)c[5], f[0], f[1], f[2]);
        else gg::adagrad_update<S>(p, g, a[2][i], (S)c[0], (S)c[1], (S)c[2], f[0]);
    }
    for (auto& v : a) for (S& x : v) printf("%.17g ", (double)x);
    printf("\n");
}
int main() {
    char opt[16], dt[4];
    while (scanf("%15s %3s", opt, dt) == 2) { if (dt[0] == 'f') run_case<float>(opt); else run_case<double>(opt); }
    return 0;
}
"""


@pytest.fixture(scope="module")
def host_harness(tmp_path_factory):
    """kernels/optim.cu's host-side math compiled into a small program (nvcc, else the C++ compiler)."""
    nvcc, cxx = shutil.which("nvcc"), shutil.which("c++") or shutil.which("g++")
    if not (nvcc or cxx):
        pytest.skip("neither nvcc nor a C++ compiler is on PATH")
    d = tmp_path_factory.mktemp("optim_host")
    src, exe = d / "harness.cpp", d / "harness"
    src.write_text(HARNESS)
    cmd = ([nvcc, "-x", "cu", "-std=c++17"] if nvcc else [cxx, "-x", "c++", "-std=c++17"])
    r = subprocess.run([*cmd, "-O1", "-I", os.path.dirname(OPTIM_CU), "-o", str(exe), str(src)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    return str(exe)


def test_cuda_source_math_on_host_matches_fallback(host_harness, monkeypatch):
    n = 97
    lines, expected = [], []
    for dtype in ("float32", "float64"):
        for i, (opt, kw) in enumerate(KERNEL_CASES):
            arrays = _kernel_args(opt, kw, dtype, n, seed=i)
            scalars, flags = _launch_args(monkeypatch, opt, kw, [a.copy() if a is not None else None for a in arrays])
            full = [a if a is not None else np.zeros(n, K.state_dtype(dtype)) for a in arrays]
            lines.append(f"{opt} {'f' if dtype == 'float32' else 'd'} {n} {len(scalars)} {len(flags)} {len(full)}")
            lines.append(" ".join(repr(float(s)) for s in scalars) + " " + " ".join(str(int(bool(f))) for f in flags))
            lines += [" ".join(repr(float(x)) for x in a) for a in full]
            FNS[opt](*arrays, **kw)  # the NumPy fallback, in place
            expected.append((opt, kw, dtype, [a if a is not None else z for a, z in zip(arrays, full)]))
    out = subprocess.run([host_harness], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    rows = out.stdout.strip().split("\n")
    assert len(rows) == len(expected)
    for row, (opt, kw, dtype, want) in zip(rows, expected):
        got = np.array(row.split(), dtype=np.float64).reshape(len(want), n)
        rtol = 2e-6 if dtype == "float32" else 1e-13
        for j, w in enumerate(want):
            if j == 1:
                continue  # the gradient is an input only
            np.testing.assert_allclose(got[j], w.astype(np.float64), rtol=rtol, atol=rtol,
                                       err_msg=f"{opt} {kw} {dtype} array {j}")


# NOTE: the bridge's argument lists (arity, C types, order) are checked against each kernel's C++
# signature by the emulated-CUDA layer (tests/test_kernels_emulated.py runs every optimizer kernel).


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_optim_cu_compiles_with_nvcc(arch, tmp_path):
    """Every registered kernel, instantiated for float, double and __half, compiles for the target."""
    from gpugrad.fused.cuda import registered_kernels
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not on PATH")
    names = registered_kernels("optim.cu")
    assert sorted(names) == sorted(f"gpugrad_{o}_step" for o in ("sgd", "adam", "rmsprop", "adagrad"))
    inst = [f"(void*)&{k}<{t}>" for k in names for t in ("float", "double", "__half")]
    src = tmp_path / "inst.cu"
    src.write_text('#include "optim.cu"\nvoid* gpugrad_optim_instances[] = {' + ", ".join(inst) + "};\n")
    out = tmp_path / f"optim_{arch}.cubin"
    r = subprocess.run([nvcc, f"-arch={arch}", "-cubin", "-std=c++17", "--Werror", "all-warnings",
                        "-I", os.path.dirname(OPTIM_CU), "-o", str(out), str(src)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    blob = out.read_bytes()
    for k in names:
        for mangled in ("IfE", "IdE", "I6__halfE"):
            assert f"{k}{mangled}".encode() in blob, f"{k}{mangled} missing from the {arch} cubin"


@needs_cuda
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("opt,kw", KERNEL_CASES, ids=[f"{o}{i}" for i, (o, _) in enumerate(KERNEL_CASES)])
def test_gpu_kernel_matches_fallback(opt, kw, dtype):
    import cupy as cp
    host = _kernel_args(opt, kw, dtype, 100_003)
    dev = [None if a is None else cp.asarray(a) for a in host]
    FNS[opt](*host, **kw)
    FNS[opt](*dev, **kw)
    tol = dict(float16=1e-3, float32=1e-5, float64=1e-12)[dtype]
    for j, (h, d) in enumerate(zip(host, dev)):
        if h is not None:
            np.testing.assert_allclose(d.get().astype(np.float64), h.astype(np.float64), rtol=tol, atol=tol,
                                       err_msg=f"array {j}")


@needs_cuda
def test_gpu_kernel_handles_strided_and_empty_params():
    import cupy as cp
    base = cp.arange(40, dtype=cp.float32).reshape(5, 8) / 10
    view = base[:, ::2]
    m, v = cp.zeros(view.shape, cp.float32), cp.zeros(view.shape, cp.float32)
    K.adam_step(view, cp.ones_like(view), m, v, step=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    want = np.arange(40, dtype=np.float32).reshape(5, 8) / 10
    want[:, ::2] -= 0.1 / (1 + 1e-8)
    np.testing.assert_allclose(base.get(), want, rtol=1e-6)
    e = cp.zeros(0, cp.float32)
    K.sgd_step(e, e, lr=0.1)  # no launch for an empty parameter


def test_training_a_linear_model_converges():
    """Parameters from gg.nn modules, a backward pass, clipping, a scheduler and AdamW together."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5)).astype(np.float32)
    w_true = np.array([[1.0], [-2.0], [0.5], [3.0], [0.0]], dtype=np.float32)
    y = X @ w_true + 0.25
    model = gg.nn.Linear(5, 1)
    opt = AdamW(model.parameters(), lr=0.1, weight_decay=0.0)
    sched = gg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=150, eta_min=1e-3)
    xs, ys = gg.tensor(X), gg.tensor(y)
    for _ in range(150):
        opt.zero_grad()
        loss = ((model(xs) - ys) ** 2).mean()
        loss.backward()
        gg.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        sched.step()
    np.testing.assert_allclose(model.weight._data.reshape(-1), w_true.reshape(-1), atol=2e-2)
    np.testing.assert_allclose(model.bias._data, [0.25], atol=2e-2)
