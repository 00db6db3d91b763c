"""Differential tests of gg.nn.functional, gg.nn modules, gg.optim and gg.optim.lr_scheduler against torch 2.13 CPU.

Each case runs the same code through both libraries (the code takes the module `m`: gg or torch) on the same seeded
random float64 (some float32) inputs, then compares raise/no-raise, the result's structure, dtype, shape and values,
and the gradients of a random weighting of the outputs with respect to every float64 input. Module cases copy torch's
state_dict into gpugrad; optimizer cases run 20 steps from the same start; scheduler cases compare get_last_lr().
Known differences are `xfail(strict=True)` with the reason (see XFAIL). Skipped without torch; random streams are
compared by distribution only.
"""
from __future__ import annotations

import math
import re
import warnings
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import gpugrad as gg  # noqa: E402

torch.set_num_threads(1)
TOL = {np.dtype(np.float64): (1e-9, 1e-11), np.dtype(np.float32): (3e-5, 3e-6)}


# -- machinery -----------------------------------------------------------------------------------------------
class T:
    """An array passed as a non-contiguous view: stored with its last two dims swapped, then transposed back."""

    def __init__(self, a):
        self.a = a


class NG:
    """An array passed without requires_grad (targets, indices, masks)."""

    def __init__(self, a):
        self.a = a


def _tensor(m, x, leaves):
    if isinstance(x, (T, NG)):
        a = x.a
    else:
        a = x
    rg = not isinstance(x, NG) and a.dtype == np.float64
    if isinstance(x, T):
        leaf = m.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2)), requires_grad=rg)
        t = leaf.transpose(-1, -2)
    else:
        leaf = t = m.tensor(np.array(a, copy=True), requires_grad=rg)
    if rg:
        leaves.append(leaf)
    return t


def _conv(m, x, leaves):
    if isinstance(x, (np.ndarray, T, NG)):
        return _tensor(m, x, leaves)
    if isinstance(x, (list, tuple)):
        return type(x)(_conv(m, y, leaves) for y in x)
    if isinstance(x, dict):
        return {k: _conv(m, v, leaves) for k, v in x.items()}
    return x


def _outs(o, acc):
    if isinstance(o, (torch.Tensor, gg.Tensor)):
        acc.append(o)
    elif isinstance(o, (tuple, list)):
        for y in o:
            _outs(y, acc)
    return acc


def _cmp(g, t, where, tol=None):
    if isinstance(t, torch.Tensor):
        assert isinstance(g, gg.Tensor), f"{where}: gg gave {type(g).__name__}"
        gn, tn = g.detach().numpy(), t.detach().numpy()
        assert gn.dtype == tn.dtype, f"{where}: dtype gg {gn.dtype} torch {tn.dtype}"
        assert gn.shape == tn.shape, f"{where}: shape gg {gn.shape} torch {tn.shape}"
        if tn.dtype.kind == "f":
            rt, at = tol or TOL[tn.dtype]
            np.testing.assert_allclose(gn, tn, rtol=rt, atol=at, equal_nan=True, err_msg=where)
        else:
            np.testing.assert_array_equal(gn, tn, err_msg=where)
    elif isinstance(t, (tuple, list)):
        assert isinstance(g, (tuple, list)) and len(g) == len(t), f"{where}: gg {g!r} torch {t!r}"
        for i, (a, b) in enumerate(zip(g, t)):
            _cmp(a, b, f"{where}[{i}]", tol)
    elif t is None:
        assert g is None, f"{where}: gg {g!r}, torch None"
    elif isinstance(t, float):
        assert isinstance(g, float) and (math.isclose(g, t, rel_tol=1e-9, abs_tol=1e-12) or g == t), \
            f"{where}: gg {g!r} torch {t!r}"
    else:
        assert g == t, f"{where}: gg {g!r} torch {t!r}"


def _run(m, fn, args, kw):
    leaves = []
    a = _conv(m, args, leaves)
    k = _conv(m, kw, leaves)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(m, *a, **k), leaves


def check(fn, args=(), kw=None, tol=None, grad=True, where="", same_type=False):
    """Run fn(m, *args, **kw) in torch and gg; compare raise/no-raise, outputs and input gradients."""
    kw = kw or {}
    terr = gerr = None
    try:
        to, tl = _run(torch, fn, args, kw)
    except Exception as e:  # noqa: BLE001
        terr = e
    try:
        go, gl = _run(gg, fn, args, kw)
    except Exception as e:  # noqa: BLE001
        gerr = e
    assert (terr is None) == (gerr is None), f"{where}: torch {terr!r}, gg {gerr!r}"
    if terr is not None:
        if same_type:
            assert isinstance(gerr, type(terr)), f"{where}: torch {terr!r}, gg {gerr!r}"
        return None
    _cmp(go, to, where, tol)
    if not grad:
        return go
    touts, gouts = _outs(to, []), _outs(go, [])
    rng = np.random.default_rng(zlib.crc32(where.encode()))
    pairs = [(a, b) for a, b in zip(gouts, touts) if b.requires_grad and b.dtype == torch.float64]
    if not pairs:
        return go
    tloss = gloss = 0
    for a, b in pairs:
        w = rng.standard_normal(tuple(b.shape))
        tloss = tloss + (b * torch.tensor(w)).sum()
        gloss = gloss + (a * gg.tensor(w)).sum()
    tloss.backward()
    gloss.backward()
    rt, at = tol or TOL[np.dtype(np.float64)]
    for i, (a, b) in enumerate(zip(gl, tl)):
        tg = b.grad if b.grad is not None else torch.zeros(tuple(b.shape), dtype=torch.float64)
        tg = (tg.to_dense() if tg.is_sparse else tg).numpy()
        ga = a.grad.numpy() if a.grad is not None else np.zeros(tuple(b.shape))  # NOTE: no sparse grads in gg
        np.testing.assert_allclose(ga, tg, rtol=rt * 10, atol=at * 10, equal_nan=True,
                                   err_msg=f"{where}: grad of input {i}")
    return go


CASES = {}  # id -> (fn, args, kw, tol, grad)
XFAIL = {}  # id -> reason (known differences, strict)


def case(cid, fn, args=(), kw=None, tol=None, grad=True):
    assert cid not in CASES, cid
    CASES[cid] = (fn, args, kw or {}, tol, grad)


def _params(d):
    return [pytest.param(k, id=k, marks=pytest.mark.xfail(strict=True, reason=XFAIL[k])) if k in XFAIL
            else pytest.param(k, id=k) for k in d]


R = np.random.default_rng(20240613)


def rn(*s, dt=np.float64, scale=1.0):
    return (R.standard_normal(s) * scale).astype(dt)


def ru(lo, hi, *s):
    return R.uniform(lo, hi, s)


def ri(lo, hi, *s):
    return R.integers(lo, hi, s).astype(np.int64)


def F(name):
    """A call of m.nn.functional.<name>(*args, **kw)."""
    return lambda m, *a, **k: getattr(m.nn.functional, name)(*a, **k)


# -- 1. nn.functional: losses --------------------------------------------------------------------------------
REDS = ("none", "mean", "sum")
for r in REDS:
    x, y = rn(3, 4), rn(3, 4)
    case(f"l1_{r}", F("l1_loss"), (T(x), y), {"reduction": r})
    case(f"mse_{r}", F("mse_loss"), (x, T(y)), {"reduction": r})
    for beta in (1.0, 0.3, 0.0):
        case(f"smooth_l1_{r}_b{beta}", F("smooth_l1_loss"), (x, y), {"reduction": r, "beta": beta})
    for delta in (1.0, 0.4, 2.5):
        case(f"huber_{r}_d{delta}", F("huber_loss"), (x, y), {"reduction": r, "delta": delta})
    p, t = ru(0.05, 0.95, 3, 4), ru(0, 1, 3, 4)
    case(f"bce_{r}", F("binary_cross_entropy"), (p, t), {"reduction": r})
    case(f"bce_w_{r}", F("binary_cross_entropy"), (p, t), {"reduction": r, "weight": ru(0, 2, 4)})
    case(f"bce_edge_{r}", F("binary_cross_entropy"), (np.array([0.0, 1.0, 0.5, 1e-20]), np.array([0.0, 1.0, 1.0, 1.0])),
         {"reduction": r})
    case(f"bcel_{r}", F("binary_cross_entropy_with_logits"), (rn(3, 4, scale=3), t), {"reduction": r})
    case(f"bcel_w_pw_{r}", F("binary_cross_entropy_with_logits"), (rn(3, 4, scale=3), t),
         {"reduction": r, "weight": ru(0, 2, 3, 1), "pos_weight": ru(0.5, 3, 4)})
    case(f"bcel_pw_bcast_{r}", F("binary_cross_entropy_with_logits"), (rn(2, 3, 4), ru(0, 1, 2, 3, 4)),
         {"reduction": r, "pos_weight": ru(0.5, 3, 4)})
    lg = rn(5, 4)
    tg = NG(np.array([0, 3, 1, 1, 2]))
    w = ru(0.2, 2, 4)
    case(f"ce_{r}", F("cross_entropy"), (lg, tg), {"reduction": r})
    case(f"ce_w_{r}", F("cross_entropy"), (lg, tg), {"reduction": r, "weight": NG(w)})
    case(f"ce_ign_{r}", F("cross_entropy"), (lg, tg), {"reduction": r, "ignore_index": 1})
    case(f"ce_ign_w_{r}", F("cross_entropy"), (lg, tg), {"reduction": r, "ignore_index": 1, "weight": NG(w)})
    case(f"ce_ls_{r}", F("cross_entropy"), (lg, tg), {"reduction": r, "label_smoothing": 0.2})
    case(f"ce_ls_w_ign_{r}", F("cross_entropy"), (lg, tg),
         {"reduction": r, "label_smoothing": 0.15, "weight": NG(w), "ignore_index": 3})
    case(f"ce_prob_{r}", F("cross_entropy"), (lg, ru(0, 1, 5, 4)), {"reduction": r})
    case(f"ce_prob_w_ls_{r}", F("cross_entropy"), (lg, ru(0, 1, 5, 4)),
         {"reduction": r, "weight": NG(w), "label_smoothing": 0.1})
    case(f"ce_1d_{r}", F("cross_entropy"), (rn(4), NG(np.array(2))), {"reduction": r})
    case(f"ce_kdim_{r}", F("cross_entropy"), (rn(2, 4, 3, 2), NG(ri(0, 4, 2, 3, 2))),
         {"reduction": r, "weight": NG(w), "ignore_index": 0, "label_smoothing": 0.05})
    case(f"ce_empty_{r}", F("cross_entropy"), (rn(0, 4), NG(ri(0, 4, 0))), {"reduction": r})
    case(f"ce_allign_{r}", F("cross_entropy"), (lg, NG(np.full(5, -100))), {"reduction": r})
    case(f"nll_{r}", F("nll_loss"), (lg, tg), {"reduction": r})
    case(f"nll_w_ign_{r}", F("nll_loss"), (lg, tg), {"reduction": r, "weight": NG(w), "ignore_index": 0})
    case(f"nll_kdim_{r}", F("nll_loss"), (rn(2, 4, 3), NG(ri(0, 4, 2, 3))), {"reduction": r, "weight": NG(w)})
    case(f"nll_1d_{r}", F("nll_loss"), (rn(4), NG(np.array(1))), {"reduction": r})
    for lt in (False, True):
        case(f"kl_{r}_lt{lt}", F("kl_div"), (rn(3, 4), ru(0, 1, 3, 4) if not lt else rn(3, 4)),
             {"reduction": r, "log_target": lt})
    case(f"kl_batchmean_{r}", F("kl_div"), (rn(3, 4), ru(0, 1, 3, 4)), {"reduction": "batchmean"})
    for li in (True, False):
        for full in (False, True):
            inp = rn(3, 4) if li else ru(0.01, 3, 3, 4)
            case(f"poisson_{r}_li{li}_f{full}", F("poisson_nll_loss"), (inp, NG(ru(0, 5, 3, 4))),
                 {"reduction": r, "log_input": li, "full": full, "eps": 1e-6 if li else 0.1})
    for full in (False, True):
        case(f"gauss_{r}_f{full}", F("gaussian_nll_loss"), (rn(3, 4), rn(3, 4), ru(0.1, 2, 3, 4)),
             {"reduction": r, "full": full})
        case(f"gauss_var1_{r}_f{full}", F("gaussian_nll_loss"), (rn(3, 4), rn(3, 4), ru(0.1, 2, 3, 1)),
             {"reduction": r, "full": full, "eps": 0.5})
        case(f"gauss_var_nodim_{r}", F("gaussian_nll_loss"), (rn(3, 4), rn(3, 4), ru(0.1, 2, 3)),
             {"reduction": r}) if not full else None
    case(f"gauss_neg_var_{r}", F("gaussian_nll_loss"), (rn(3), rn(3), np.array([1.0, -1.0, 1.0])), {"reduction": r})
    for mg in (1.0, 0.3):
        case(f"hinge_{r}_m{mg}", F("hinge_embedding_loss"), (rn(3, 4), NG(np.sign(rn(3, 4)))),
             {"reduction": r, "margin": mg})
        case(f"ranking_{r}_m{mg}", F("margin_ranking_loss"), (rn(5), rn(5), NG(np.sign(rn(5)))),
             {"reduction": r, "margin": mg})
        case(f"cosemb_{r}_m{mg}", F("cosine_embedding_loss"), (rn(5, 3), rn(5, 3), NG(np.sign(rn(5)))),
             {"reduction": r, "margin": mg - 0.8})
    case(f"cosemb_1d_{r}", F("cosine_embedding_loss"), (rn(3), rn(3), NG(np.array(-1.0))), {"reduction": r})
    for p in (1, 2):
        case(f"multimargin_{r}_p{p}", F("multi_margin_loss"), (rn(5, 4), tg),
             {"reduction": r, "p": p, "margin": 0.7, "weight": NG(w)})
    case(f"multimargin_1d_{r}", F("multi_margin_loss"), (rn(4), NG(np.array(2))), {"reduction": r})
    mlt = NG(np.array([[3, 0, -1, 1], [1, 2, 3, -1], [-1, 0, 0, 0]]))
    case(f"multilabel_margin_{r}", F("multilabel_margin_loss"), (rn(3, 4), mlt), {"reduction": r})
    case(f"multilabel_margin_1d_{r}", F("multilabel_margin_loss"), (rn(4), NG(np.array([2, 0, -1, 1]))),
         {"reduction": r})
    case(f"multilabel_soft_{r}", F("multilabel_soft_margin_loss"), (rn(3, 4), NG((rn(3, 4) > 0) * 1.0)),
         {"reduction": r, "weight": NG(w)})
    case(f"soft_margin_{r}", F("soft_margin_loss"), (rn(3, 4), NG(np.sign(rn(3, 4)))), {"reduction": r})
    for swap in (False, True):
        for p in (1.0, 2.0, 3.0):
            case(f"triplet_{r}_s{swap}_p{p}", F("triplet_margin_loss"), (rn(4, 3), rn(4, 3), rn(4, 3)),
                 {"reduction": r, "margin": 0.8, "p": p, "eps": 1e-6, "swap": swap})
        case(f"triplet_dist_{r}_s{swap}", F("triplet_margin_with_distance_loss"), (rn(4, 3), rn(4, 3), rn(4, 3)),
             {"reduction": r, "margin": 1.5, "swap": swap})
    case(f"triplet_1d_{r}", F("triplet_margin_loss"), (rn(3), rn(3), rn(3)), {"reduction": r})
    case(f"triplet_dist_fn_{r}", lambda m, a, p_, n, **k: m.nn.functional.triplet_margin_with_distance_loss(
        a, p_, n, distance_function=lambda u, v: 1 - m.nn.functional.cosine_similarity(u, v), **k),
        (rn(4, 3), rn(4, 3), rn(4, 3)), {"reduction": r, "swap": True})
    case(f"l1_bcast_{r}", F("l1_loss"), (rn(3, 1), rn(4)), {"reduction": r})
    case(f"mse_empty_{r}", F("mse_loss"), (rn(0, 3), rn(0, 3)), {"reduction": r})
    case(f"l1_f32_{r}", F("l1_loss"), (rn(3, 4, dt=np.float32), rn(3, 4, dt=np.float32)), {"reduction": r})
    case(f"ce_f32_{r}", F("cross_entropy"), (rn(5, 4, dt=np.float32), tg), {"reduction": r, "label_smoothing": 0.1})


# -- activations ---------------------------------------------------------------------------------------------
X = np.concatenate([rn(20, scale=3), [0.0, -0.0, 1.0, -1.0, 6.0, 20.0, -20.0, 0.5, -0.5, 3.0]]).reshape(5, 6)
ACTS = {
    "relu": {}, "relu6": {}, "sigmoid": {}, "tanh": {}, "silu": {}, "mish": {}, "selu": {}, "softsign": {},
    "tanhshrink": {}, "logsigmoid": {}, "hardsigmoid": {}, "hardswish": {},
    "elu": [{}, {"alpha": 0.5}], "celu": [{}, {"alpha": 2.0}, {"alpha": 1.2}], "leaky_relu": [{}, {"negative_slope": 0.2}],
    "gelu": [{}, {"approximate": "tanh"}], "softplus": [{}, {"beta": 2.0, "threshold": 3.0}, {"beta": 0.5}],
    "hardtanh": [{}, {"min_val": -0.5, "max_val": 2.0}], "hardshrink": [{}, {"lambd": 1.0}],
    "softshrink": [{}, {"lambd": 1.0}], "threshold": [{"threshold": 0.5, "value": -2.0}],
    "softmax": [{"dim": 0}, {"dim": -1}, {"dim": 1, "dtype": None}], "log_softmax": [{"dim": 1}, {"dim": 0}],
    "softmin": [{"dim": 1}], "glu": [{"dim": -1}, {"dim": 1}], "normalize": [{}, {"p": 1.0, "dim": 0},
                                                                          {"p": 3.0, "eps": 0.5}],
    "rrelu": [{"training": False}, {"lower": 0.1, "upper": 0.2, "training": False}],
}
for name, kws in ACTS.items():
    for i, k in enumerate(kws if isinstance(kws, list) else [kws]):
        case(f"act_{name}_{i}", F(name), (X,), k)
        case(f"act_{name}_{i}_t", F(name), (T(X[:, :4].copy()),), k)
        case(f"act_{name}_{i}_f32", F(name), (X.astype(np.float32),), k)
case("act_softmax_dtype", F("softmax"), (X.astype(np.float32),), {"dim": 1, "dtype": gg.float64})
case("act_prelu", F("prelu"), (rn(2, 3, 4), ru(0, 0.5, 3)))
case("act_prelu_1", F("prelu"), (rn(2, 3, 4), ru(0, 0.5, 1)))
case("act_gelu_1d", F("gelu"), (rn(0),))
case("act_softmax_0d", F("softmax"), (np.array(1.5),), {"dim": 0})
case("act_elu_inplace", lambda m, x: m.nn.functional.elu(x * 1, inplace=True), (X,))
case("act_relu_inplace", lambda m, x: m.nn.functional.relu(x * 1, inplace=True), (X,))
case("act_logsumexp", lambda m, x: m.logsumexp(x, 1), (X,))


def _softmax_dtype(m, x):
    return m.nn.functional.softmax(x, 1, dtype=m.float64)


CASES["act_softmax_dtype"] = (_softmax_dtype,) + CASES["act_softmax_dtype"][1:]


# -- normalization -------------------------------------------------------------------------------------------
def _bn(m, x, rm, rv, *wb, **k):
    out = m.nn.functional.batch_norm(x, rm, rv, *wb, **k)
    return out, rm, rv  # NOTE: the running stats are updated in place; compare them too


for shp in ((4, 3), (2, 3, 5), (2, 3, 2, 2), (1, 3, 4), (5, 3, 1, 2, 2)):
    C = shp[1]
    for tr in (True, False):
        for mom in (0.1, None, 0.0):
            for aff in (False, True):
                wb = (ru(0.5, 1.5, C), rn(C)) if aff else ()
                case(f"bn_{'x'.join(map(str, shp))}_tr{tr}_m{mom}_a{aff}", _bn,
                     (rn(*shp), NG(rn(C)), NG(ru(0.5, 2, C))) + wb, {"training": tr, "momentum": mom, "eps": 1e-3})
case("bn_nostats_train", lambda m, x: m.nn.functional.batch_norm(x, None, None, training=True), (rn(4, 3),))
case("bn_nostats_eval", lambda m, x: m.nn.functional.batch_norm(x, None, None, training=False), (rn(4, 3),))
case("bn_novar_train", lambda m, x, r: m.nn.functional.batch_norm(x, r, None, training=True), (rn(4, 3), NG(rn(3))))
case("bn_novar_eval", lambda m, x, r: m.nn.functional.batch_norm(x, r, None, training=False), (rn(4, 3), NG(rn(3))))
case("bn_one_per_channel", _bn, (rn(1, 3), NG(rn(3)), NG(ru(0.5, 2, 3))), {"training": True})
case("bn_t", _bn, (T(rn(2, 3, 4)), NG(rn(4)), NG(ru(0.5, 2, 4))), {"training": True})
case("bn_f32", _bn, (rn(4, 3, 2, dt=np.float32), NG(rn(3, dt=np.float32)), NG(ru(0.5, 2, 3).astype(np.float32))),
     {"training": True})
for ns in ((4,), (3, 4), [4]):
    for aff in (0, 1, 2):
        wb = {} if not aff else {"weight": ru(0.5, 1.5, *ns)} if aff == 1 else {"weight": rn(*ns), "bias": rn(*ns)}
        case(f"ln_{len(ns)}_{aff}_{type(ns).__name__}", F("layer_norm"), (rn(2, 3, 4), ns), dict(wb, eps=1e-4))
case("ln_t", F("layer_norm"), (T(rn(2, 4, 3)), (3,)))
case("ln_int_shape", F("layer_norm"), (rn(2, 4), 4))
case("rms_int_shape", F("rms_norm"), (rn(2, 4), 4))
case("ln_empty", F("layer_norm"), (rn(0, 4), (4,)))
case("bn_empty_train", _bn, (rn(0, 3, 2), NG(rn(3)), NG(ru(0.5, 2, 3))), {"training": True})
case("in_empty", F("instance_norm"), (rn(0, 3, 2),))
case("rms", F("rms_norm"), (rn(2, 3, 4), (4,)), {"weight": rn(4)})
case("rms_eps", F("rms_norm"), (rn(2, 3, 4), (3, 4)), {"eps": 0.1})
case("rms_f32", F("rms_norm"), (rn(2, 3, 4, dt=np.float32), (4,)))
for g_ in (1, 2, 4):
    case(f"gn_{g_}", F("group_norm"), (rn(2, 4, 3), g_), {"weight": rn(4), "bias": rn(4), "eps": 1e-3})
case("gn_4d", F("group_norm"), (rn(2, 6, 2, 2), 3))
case("gn_2d", F("group_norm"), (rn(3, 4), 2))
case("gn_bad", F("group_norm"), (rn(2, 6, 3), 4))


def _in(m, x, rm, rv, *wb, **k):
    return m.nn.functional.instance_norm(x, rm, rv, *wb, **k), rm, rv


for uis in (True, False):
    for mom in (0.1, 0.5):
        case(f"in_uis{uis}_m{mom}", _in, (rn(2, 3, 4), NG(rn(3)), NG(ru(0.5, 2, 3)), rn(3), rn(3)),
             {"use_input_stats": uis, "momentum": mom})
        case(f"in4d_uis{uis}_m{mom}", _in, (rn(2, 3, 2, 3), NG(rn(3)), NG(ru(0.5, 2, 3))),
             {"use_input_stats": uis, "momentum": mom})
case("in_nostats", F("instance_norm"), (rn(2, 3, 4),))
case("in_nostats_uisF", F("instance_norm"), (rn(2, 3, 4),), {"use_input_stats": False})
for sz in (1, 2, 3, 5):
    case(f"lrn_{sz}", F("local_response_norm"), (rn(2, 5, 3), sz), {"alpha": 0.3, "beta": 0.6, "k": 2.0})
    case(f"lrn4d_{sz}", F("local_response_norm"), (rn(2, 4, 3, 2), sz))
case("lrn5d", F("local_response_norm"), (rn(1, 4, 2, 2, 2), 3))
case("lrn2d", F("local_response_norm"), (rn(2, 5), 3))


# -- pooling -------------------------------------------------------------------------------------------------
POOL_RNG = np.random.default_rng(7)
for nd, hw in ((1, (7,)), (2, (6, 5)), (3, (4, 5, 3))):
    for j in range(14):
        k = int(POOL_RNG.integers(1, 4))
        s = [None, 1, 2, 3][int(POOL_RNG.integers(4))]
        pd = int(POOL_RNG.integers(0, k // 2 + 1))
        cm = bool(POOL_RNG.integers(2))
        dil = int(POOL_RNG.integers(1, 3))
        x = rn(2, 3, *hw) if j % 3 else rn(3, *hw)  # NOTE: every third example the unbatched form
        ri_ = bool(POOL_RNG.integers(2))
        case(f"maxpool{nd}d_{j}", F(f"max_pool{nd}d"), (x, k),
             {"stride": s, "padding": pd, "dilation": dil, "ceil_mode": cm, "return_indices": ri_})
        cip = bool(POOL_RNG.integers(2))
        dov = [None, None, 2][int(POOL_RNG.integers(3))] if nd > 1 else None
        kw = {"stride": s, "padding": pd, "ceil_mode": cm, "count_include_pad": cip}
        if nd > 1:
            kw["divisor_override"] = dov
        case(f"avgpool{nd}d_{j}", F(f"avg_pool{nd}d"), (x, k), kw)
        if j < 5:
            case(f"lppool{nd}d_{j}", F(f"lp_pool{nd}d"), (np.abs(x) + 0.1, [1.0, 2.0, 3.0][j % 3], k),
                 {"stride": s, "ceil_mode": cm})
            osz = tuple(int(POOL_RNG.integers(1, d + 2)) for d in hw)
            case(f"adaavg{nd}d_{j}", F(f"adaptive_avg_pool{nd}d"), (x, osz))
            case(f"adamax{nd}d_{j}", F(f"adaptive_max_pool{nd}d"), (x, osz), {"return_indices": bool(j % 2)})
    case(f"maxpool{nd}d_t", F(f"max_pool{nd}d"), (T(rn(2, 3, *hw)) if nd == 1 else rn(2, 3, *hw), 2))
    case(f"maxpool{nd}d_ties", F(f"max_pool{nd}d"), (np.round(rn(2, 3, *hw)), 2), {"stride": 1})
    case(f"maxpool{nd}d_f32", F(f"max_pool{nd}d"), (rn(2, 3, *hw, dt=np.float32), 2))
    case(f"avgpool{nd}d_f32", F(f"avg_pool{nd}d"), (rn(2, 3, *hw, dt=np.float32), 2), {"padding": 1})
    case(f"adaavg{nd}d_none", F(f"adaptive_avg_pool{nd}d"), (rn(2, 3, *hw), (None,) * (nd - 1) + (2,))) \
        if nd > 1 else None
    case(f"maxpool{nd}d_badpad", F(f"max_pool{nd}d"), (rn(2, 3, *hw), 2), {"padding": 2})
    case(f"maxpool{nd}d_empty", F(f"max_pool{nd}d"), (rn(0, 3, *hw), 2))
    case(f"maxpool{nd}d_empty_idx", F(f"max_pool{nd}d"), (rn(0, 3, *hw), 2), {"padding": 1, "return_indices": True})
    case(f"avgpool{nd}d_empty", F(f"avg_pool{nd}d"), (rn(0, 3, *hw), 2))
    case(f"lppool{nd}d_empty", F(f"lp_pool{nd}d"), (rn(0, 3, *hw), 2, 2))
    case(f"adamax{nd}d_empty", F(f"adaptive_max_pool{nd}d"), (rn(0, 3, *hw), 2), {"return_indices": True})
    case(f"maxpool{nd}d_neginf", F(f"max_pool{nd}d"), (np.full((1, 1) + hw, -np.inf), 2), {"padding": 1})


def _unpool(nd):
    def f(m, x, **k):
        o, i = getattr(m.nn.functional, f"max_pool{nd}d")(x, 2, return_indices=True)
        return getattr(m.nn.functional, f"max_unpool{nd}d")(o, i, 2, **k)
    return f


for nd, hw in ((1, (7,)), (2, (5, 4)), (3, (4, 3, 5))):
    case(f"unpool{nd}d", _unpool(nd), (rn(2, 3, *hw),))
    case(f"unpool{nd}d_os", _unpool(nd), (rn(2, 3, *hw),), {"output_size": hw})
    case(f"unpool{nd}d_empty", _unpool(nd), (rn(0, 3, *hw),))


# -- conv ----------------------------------------------------------------------------------------------------
CONV_RNG = np.random.default_rng(11)
for nd, hw in ((1, (8,)), (2, (6, 5)), (3, (4, 4, 3))):
    for j in range(10):
        g = [1, 1, 2, 3][int(CONV_RNG.integers(4))]
        cin, cout = g * int(CONV_RNG.integers(1, 3)), g * int(CONV_RNG.integers(1, 3))
        k = int(CONV_RNG.integers(1, 4))
        s = int(CONV_RNG.integers(1, 3))
        d = int(CONV_RNG.integers(1, 3))
        pd = ["same", "valid", 0, 1, 2][int(CONV_RNG.integers(5))]
        if pd == "same":
            s = 1
        x = rn(2, cin, *hw) if j % 4 else rn(cin, *hw)
        b = rn(cout) if j % 2 else None
        case(f"conv{nd}d_{j}", F(f"conv{nd}d"), (x, rn(cout, cin // g, *(k,) * nd), b),
             {"stride": s, "padding": pd, "dilation": d, "groups": g})
        if nd < 4:
            op = int(CONV_RNG.integers(0, max(s, d)))
            pdt = int(CONV_RNG.integers(0, 2))
            case(f"convT{nd}d_{j}", F(f"conv_transpose{nd}d"), (x, rn(cin, cout // g, *(k,) * nd), b),
                 {"stride": s, "padding": pdt, "output_padding": op, "groups": g, "dilation": d})
    case(f"conv{nd}d_f32", F(f"conv{nd}d"), (rn(2, 2, *hw, dt=np.float32), rn(3, 2, *(2,) * nd, dt=np.float32)))
    case(f"conv{nd}d_t", F(f"conv{nd}d"), (T(rn(2, 2, *hw)), rn(3, 2, *(2,) * nd)))
    case(f"conv{nd}d_same_even", F(f"conv{nd}d"), (rn(1, 2, *hw), rn(3, 2, *(4,) * nd)), {"padding": "same",
                                                                                      "dilation": 2})
    case(f"conv{nd}d_same_stride", F(f"conv{nd}d"), (rn(1, 2, *hw), rn(3, 2, *(3,) * nd)),
         {"padding": "same", "stride": 2})
    case(f"conv{nd}d_tuplepad", F(f"conv{nd}d"), (rn(1, 2, *hw), rn(3, 2, *(3,) * nd)),
         {"padding": tuple(range(nd)), "stride": tuple(range(1, nd + 1))})
    case(f"conv{nd}d_empty", F(f"conv{nd}d"), (rn(0, 2, *hw), rn(3, 2, *(2,) * nd)))
    case(f"conv{nd}d_empty_g", F(f"conv{nd}d"), (rn(0, 4, *hw), rn(4, 2, *(2,) * nd), rn(4)), {"groups": 2, "padding": 1})
    if nd < 3:
        case(f"convT{nd}d_empty", F(f"conv_transpose{nd}d"), (rn(0, 2, *hw), rn(2, 3, *(2,) * nd), rn(3)),
             {"stride": 2, "output_padding": 1})
    case(f"conv{nd}d_bigk", F(f"conv{nd}d"), (rn(1, 2, *hw), rn(3, 2, *(9,) * nd)))
    case(f"convT{nd}d_badop", F(f"conv_transpose{nd}d"), (rn(1, 2, *hw), rn(2, 3, *(2,) * nd)),
         {"stride": 2, "output_padding": 2})


# -- interpolate ---------------------------------------------------------------------------------------------
for nd, hw in ((1, (5,)), (2, (4, 5)), (3, (3, 4, 2))):
    modes = ["nearest", "nearest-exact", "area"] + {1: ["linear"], 2: ["bilinear", "bicubic"], 3: ["trilinear"]}[nd]
    for mode in modes:
        lin = mode in ("linear", "bilinear", "bicubic", "trilinear")
        for j, kw in enumerate([{"size": tuple(d * 2 - 1 for d in hw)}, {"size": 3}, {"scale_factor": 2.0},
                                {"scale_factor": 0.6}, {"scale_factor": 1.7, "recompute_scale_factor": True},
                                {"scale_factor": tuple([1.5, 2.3, 0.7][:nd])}]):
            for ac in ((None, False, True) if lin else (None,)):
                case(f"interp{nd}d_{mode}_{j}_ac{ac}", F("interpolate"), (rn(2, 2, *hw),),
                     dict(kw, mode=mode, align_corners=ac))
        if mode in ("bilinear", "bicubic"):
            for kw in ({"size": (2, 3)}, {"scale_factor": 0.5}, {"size": (7, 8)}):
                case(f"interp_aa_{mode}_{kw}", F("interpolate"), (rn(1, 2, *hw),), dict(kw, mode=mode, antialias=True))
    case(f"interp{nd}d_f32", F("interpolate"), (rn(1, 2, *hw, dt=np.float32),), {"scale_factor": 2, "mode": "nearest"})
case("interp_nearest_ac", F("interpolate"), (rn(1, 1, 4),), {"size": 6, "align_corners": True})
case("interp_both", F("interpolate"), (rn(1, 1, 4),), {"size": 6, "scale_factor": 2.0})
case("interp_none", F("interpolate"), (rn(1, 1, 4),))
case("interp_t", F("interpolate"), (T(rn(1, 3, 4, 5)),), {"size": (5, 7), "mode": "bilinear"})
case("interp_bicubic_ac", F("interpolate"), (rn(1, 1, 3, 4),), {"size": (6, 5), "mode": "bicubic",
                                                                 "align_corners": True})
case("interp_aa_nearest", F("interpolate"), (rn(1, 1, 4, 4),), {"size": 2, "mode": "nearest", "antialias": True})
case("interp_1x1_ac", F("interpolate"), (rn(1, 1, 1, 1),), {"size": (3, 2), "mode": "bilinear", "align_corners": True})
case("interp_to1_ac", F("interpolate"), (rn(1, 1, 4, 3),), {"size": (1, 1), "mode": "bilinear", "align_corners": True})


# -- embedding, dropout, one_hot, pad ------------------------------------------------------------------------
def _emb(m, idx, w, **k):
    out = m.nn.functional.embedding(idx, w, **k)
    return out, w.detach() * 1  # NOTE: max_norm renormalises the looked-up rows of the weight in place


IDX = NG(np.array([[0, 2, 4, 2], [1, 2, 0, 0]]))
for k in ({}, {"padding_idx": 0}, {"padding_idx": -1}, {"max_norm": 1.0}, {"max_norm": 0.5, "norm_type": 1.0},
          {"scale_grad_by_freq": True}, {"scale_grad_by_freq": True, "padding_idx": 2}, {"sparse": True},
          {"max_norm": 2.0, "padding_idx": 0}):
    case(f"emb_{k}", _emb, (IDX, rn(5, 3, scale=2)), k)
case("emb_0d", _emb, (NG(np.array(3)), rn(5, 3)))
case("emb_empty", _emb, (NG(np.zeros((0, 2), np.int64)), rn(5, 3)))
case("emb_oob", _emb, (NG(np.array([5])), rn(5, 3)))
case("emb_badpad", _emb, (IDX, rn(5, 3)), {"padding_idx": 5})
case("emb_badpad_neg", _emb, (IDX, rn(5, 3)), {"padding_idx": -6})
case("emb_pad_neg", _emb, (IDX, rn(5, 3)), {"padding_idx": -5})
for fn_ in ("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"):
    shp = {"dropout1d": (2, 3, 4), "dropout2d": (2, 3, 4, 2), "dropout3d": (2, 3, 2, 2, 2)}.get(fn_, (3, 4))
    for tr, p in ((False, 0.5), (True, 0.0), (False, 1.0)):
        case(f"{fn_}_tr{tr}_p{p}", F(fn_), (rn(*shp),), {"p": p, "training": tr})
    case(f"{fn_}_p1_train", lambda m, x, f=fn_: getattr(m.nn.functional, f)(x, p=1.0, training=True), (rn(*shp),))
    case(f"{fn_}_badp", F(fn_), (rn(*shp),), {"p": 1.5})
case("dropout1d_unbatched", F("dropout1d"), (rn(3, 4),), {"p": 0.5, "training": False})
case("dropout2d_unbatched", F("dropout2d"), (rn(3, 4, 2),), {"p": 0.0, "training": True})
case("dropout_default_training", lambda m, x: m.nn.functional.dropout(x, p=0.0), (rn(3, 4),))
for k in ({}, {"num_classes": 6}, {"num_classes": -1}):
    case(f"onehot_{k}", F("one_hot"), (NG(np.array([[0, 3], [2, 1]])),), k, grad=False)
case("onehot_small", F("one_hot"), (NG(np.array([0, 3])),), {"num_classes": 3}, grad=False)
case("onehot_empty", F("one_hot"), (NG(np.zeros(0, np.int64)),), {"num_classes": 3}, grad=False)
case("onehot_empty_nocls", F("one_hot"), (NG(np.zeros(0, np.int64)),), {}, grad=False)
case("onehot_neg", F("one_hot"), (NG(np.array([-1, 2])),), {}, grad=False)
for mode in ("constant", "reflect", "replicate", "circular"):
    for j, pd in enumerate([(1, 2), (2, 0, 1, 1), (1, 1, 0, 2, 1, 0), (-1, 1), (0, 0, -1, 2)]):
        nd = len(pd) // 2
        for shp in ((2, 3, 4, 5, 3)[:2 + nd], (3, 4, 5, 3)[:1 + nd]):
            kw = {"mode": mode} if mode != "constant" else {"mode": mode, "value": 1.5}
            case(f"pad_{mode}_{j}_{len(shp)}", F("pad"), (rn(*shp), pd), kw)
    case(f"pad_{mode}_toolarge", F("pad"), (rn(1, 2, 3), (3, 3)), {"mode": mode})
    case(f"pad_{mode}_t", F("pad"), (T(rn(1, 3, 4)), (1, 2)), {"mode": mode})
case("pad_const_2d_any", F("pad"), (rn(3, 4), (1, 1, 2, 0, )))
case("pad_const_6dim", F("pad"), (rn(2, 2, 2), (1, 0, 0, 1, 1, 1)))
case("pad_const_f32", F("pad"), (rn(2, 3, dt=np.float32), (1, 1)), {"value": -2.0})


# -- attention -----------------------------------------------------------------------------------------------
SD = F("scaled_dot_product_attention")
for L, S in ((3, 3), (2, 4), (4, 1)):
    q, k_, v = rn(2, 3, L, 4), rn(2, 3, S, 4), rn(2, 3, S, 5)
    case(f"sdpa_{L}{S}", SD, (q, k_, v))
    case(f"sdpa_{L}{S}_scale", SD, (q, k_, v), {"scale": 0.3})
    case(f"sdpa_{L}{S}_causal", SD, (q, k_, v), {"is_causal": True})
    bm = R.random((L, S)) < 0.7
    bm[:, 0] = True
    case(f"sdpa_{L}{S}_bool", SD, (q, k_, v), {"attn_mask": NG(bm)})
    case(f"sdpa_{L}{S}_boolrow_allfalse", SD, (q, k_, v), {"attn_mask": NG(np.zeros((L, S), bool))})
    case(f"sdpa_{L}{S}_float", SD, (q, k_, v), {"attn_mask": rn(2, 1, L, S)})
    case(f"sdpa_{L}{S}_causal_mask", SD, (q, k_, v), {"attn_mask": NG(bm), "is_causal": True})
case("sdpa_3d", SD, (rn(2, 3, 4), rn(2, 5, 4), rn(2, 5, 4)))
case("sdpa_gqa", SD, (rn(1, 4, 3, 2), rn(1, 2, 3, 2), rn(1, 2, 3, 2)), {"enable_gqa": True})
case("sdpa_gqa_off", SD, (rn(1, 4, 3, 2), rn(1, 2, 3, 2), rn(1, 2, 3, 2)))
case("sdpa_f32", SD, (rn(1, 2, 3, 4, dt=np.float32),) * 3)
case("sdpa_t", SD, (T(rn(1, 2, 4, 3)), rn(1, 2, 3, 4), rn(1, 2, 3, 4)))
case("sdpa_ninf_mask", SD, (rn(1, 3, 4), rn(1, 3, 4), rn(1, 3, 4)),
     {"attn_mask": NG(np.array([[0.0, -np.inf, 0.0]] * 3))})

case("maxpool1d_neginf_idx", F("max_pool1d"), (np.full((1, 1, 3), -np.inf), 2), {"padding": 1, "return_indices": True})
case("maxpool2d_nan_idx", F("max_pool2d"), (np.array([[[[1.0, np.nan, 2.0], [np.nan, -np.inf, 0.0], [5.0, 0.0, np.nan]]]]),
     3), {"padding": 1, "stride": 1, "return_indices": True})
case("maxpool3d_neginf_idx", F("max_pool3d"), (np.full((1, 1, 3, 3, 3), -np.inf), 2),
     {"padding": 1, "return_indices": True})
case("adamaxpool2d_nan_idx", F("adaptive_max_pool2d"), (np.array([[[[1.0, np.nan], [np.nan, 2.0]]]]), 1),
     {"return_indices": True})


def xfail(pattern, reason, cases=None, marks=None):
    """Mark every case id matching the regex pattern (full match) as a known difference."""
    cases, marks = (CASES if cases is None else cases), (XFAIL if marks is None else marks)
    hits = [k for k in cases if re.fullmatch(pattern, k)]
    assert hits, pattern
    for k in hits:
        marks[k] = reason


xfail(r"act_hardsigmoid_0(_t)?", "float64 hardsigmoid gradient: torch multiplies by float32(1/6) (rel. 3e-8), gg exact")
xfail(r"act_celu_2(_t)?", "float64 celu gradient with alpha=1.2: torch's is off by ~3e-8 relative (float32 1/alpha), gg exact")
xfail(r"conv3d_(0|4|6|8|same_even)", "conv3d padding='same'/'valid': gg NotImplementedError")
xfail(r"convT3d_\d", "gg has no F.conv_transpose3d")
xfail(r"interp_aa_b.*", "interpolate(antialias=True): gg NotImplementedError")
xfail(r"interp3d_area_.*", "interpolate(mode='area') of 5-D input: gg NotImplementedError")
xfail(r"emb_.*(scale_grad_by_freq|sparse).*", "embedding scale_grad_by_freq/sparse: gg NotImplementedError")


FUNC_CASES = dict(CASES)


@pytest.mark.parametrize("cid", _params(FUNC_CASES))
def test_functional(cid):
    fn, args, kw, tol, grad = FUNC_CASES[cid]
    check(fn, args, kw, tol=tol, grad=grad, where=cid)


# -- 2. nn modules -------------------------------------------------------------------------------------------
MODS = {}  # id -> (ctor(m) -> module, args, call(module, *args) or None, f64)


def mod(cid, ctor, args=(), call=None, f64=True):
    assert cid not in MODS, cid
    MODS[cid] = (ctor, args, call, f64)


def N(name, *a, **k):
    return lambda m: getattr(m.nn, name)(*a, **k)


def _names(mod_):
    return ([n for n, _ in mod_.named_parameters()], [n for n, _ in mod_.named_buffers()],
            [n for n, _ in mod_.named_modules()], list(mod_.state_dict()),
            sum(1 for _ in mod_.parameters()), [tuple(p.shape) for p in mod_.parameters()])


def _build_pair(ctor, f64):
    torch.manual_seed(0)
    gg.manual_seed(0)  # NOTE: the streams differ by design; seeded only so that the statistical checks are repeatable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm, gm = ctor(torch), ctor(gg)
    if f64:
        tm, gm = tm.double(), gm.double()
    return tm, gm


def mod_check(cid):
    ctor, args, call, f64 = MODS[cid]
    tm, gm = _build_pair(ctor, f64)
    tn, gn = _names(tm), _names(gm)
    for what, a, b in zip(("named_parameters", "named_buffers", "named_modules", "state_dict", "parameter count",
                           "parameter shapes"), gn, tn):
        assert a == b, f"{cid}: {what} gg {a} torch {b}"
    gm.load_state_dict({k: gg.tensor(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    call = call or (lambda mod_, *a: mod_(*a))
    tol = None if f64 else TOL[np.dtype(np.float32)]
    for mode in (True, False):
        tm.train(mode)
        gm.train(mode)
        assert gm.training == tm.training and [x.training for x in gm.modules()] == [x.training for x in tm.modules()]
        for p in list(tm.parameters()) + list(gm.parameters()):
            p.grad = None
        check(lambda m, *a: call(tm if m is torch else gm, *a), args, tol=tol, where=f"{cid}[train={mode}]")
        for (n, tp), (_, gp) in zip(tm.named_parameters(), gm.named_parameters()):
            if tp.grad is None:
                assert gp.grad is None or not np.any(gp.grad.numpy()), f"{cid}: grad of {n}: torch None"
                continue
            assert gp.grad is not None, f"{cid}: grad of {n}: gg None"
            rt, at = tol or TOL[np.dtype(np.float64)]
            np.testing.assert_allclose(gp.grad.numpy(), tp.grad.numpy(), rtol=rt * 10, atol=at * 10,
                                       err_msg=f"{cid}[train={mode}]: grad of {n}")
        for (n, tb), (_, gb) in zip(tm.named_buffers(), gm.named_buffers()):
            np.testing.assert_allclose(gb.numpy(), tb.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=f"{cid}[train={mode}]: buffer {n}")


for k in ({}, {"bias": False}):
    mod(f"Linear_{k}", N("Linear", 4, 3, **k), (rn(2, 4),))
    mod(f"Linear_1d_{k}", N("Linear", 4, 3, **k), (rn(4),))
    mod(f"Bilinear_{k}", N("Bilinear", 3, 4, 2, **k), (rn(5, 3), rn(5, 4)))
mod("Linear_empty", N("Linear", 4, 3), (rn(0, 4),))
mod("Linear_f32", N("Linear", 4, 3), (rn(2, 4, dt=np.float32),), f64=False)
mod("Identity", N("Identity", 3, foo=1), (rn(2),))
for pm in ("zeros", "reflect", "replicate", "circular"):
    mod(f"Conv1d_{pm}", N("Conv1d", 2, 4, 3, padding=1, padding_mode=pm), (rn(2, 2, 6),))
    mod(f"Conv2d_{pm}", N("Conv2d", 4, 2, (3, 2), stride=2, padding=(1, 2), groups=2, padding_mode=pm),
        (rn(1, 4, 5, 6),))
    mod(f"Conv2d_same_{pm}", N("Conv2d", 2, 3, 4, padding="same", dilation=1, padding_mode=pm), (rn(1, 2, 5, 6),))
    mod(f"Conv3d_{pm}", N("Conv3d", 2, 2, 2, padding=1, bias=False, padding_mode=pm), (rn(1, 2, 3, 4, 3),))
mod("Conv2d_unbatched", N("Conv2d", 2, 3, 3), (rn(2, 5, 5),))
mod("Conv2d_t", N("Conv2d", 2, 3, 3), (T(rn(1, 2, 5, 4)),))
mod("Conv2d_f32", N("Conv2d", 2, 3, 3, padding=1), (rn(1, 2, 5, 4, dt=np.float32),), f64=False)
mod("ConvT1d", N("ConvTranspose1d", 2, 4, 3, stride=2, padding=1, output_padding=1), (rn(2, 2, 5),))
mod("ConvT2d", N("ConvTranspose2d", 4, 2, 3, stride=2, groups=2, dilation=2, bias=False), (rn(1, 4, 3, 3),))
mod("ConvT2d_outsize", N("ConvTranspose2d", 2, 2, 3, stride=2, padding=1), (rn(1, 2, 3, 3),),
    lambda mod_, x: mod_(x, output_size=[6, 6]))
mod("ConvT2d_unbatched", N("ConvTranspose2d", 2, 3, 2), (rn(2, 3, 3),))
for cls, shp in (("BatchNorm1d", (4, 3)), ("BatchNorm1d", (2, 3, 4)), ("BatchNorm2d", (2, 3, 2, 2)),
                 ("BatchNorm3d", (2, 3, 2, 1, 2))):
    for k in ({}, {"momentum": None}, {"affine": False}, {"track_running_stats": False}, {"eps": 0.1, "momentum": 0.5}):
        mod(f"{cls}_{len(shp)}_{k}", N(cls, 3, **k), (rn(*shp),),
            lambda mod_, x: [mod_(x), mod_(x * 2 + 1)])  # NOTE: two calls: the running stats' second update
for cls, shp in (("InstanceNorm1d", (2, 3, 4)), ("InstanceNorm1d", (3, 4)), ("InstanceNorm2d", (2, 3, 2, 3)),
                 ("InstanceNorm3d", (1, 3, 2, 2, 2))):
    for k in ({}, {"affine": True}, {"track_running_stats": True}, {"affine": True, "track_running_stats": True,
                                                                    "momentum": 0.3}):
        mod(f"{cls}_{len(shp)}_{k}", N(cls, 3, **k), (rn(*shp),), lambda mod_, x: [mod_(x), mod_(x * 2 + 1)])
for k in ({}, {"affine": False}, {"eps": 1e-3}):
    mod(f"GroupNorm_{k}", N("GroupNorm", 2, 4, **k), (rn(2, 4, 3),))
for k in ({}, {"elementwise_affine": False}, {"bias": False}, {"eps": 1e-3}):
    mod(f"LayerNorm_{k}", N("LayerNorm", 4, **k), (rn(2, 3, 4),))
    mod(f"LayerNorm2_{k}", N("LayerNorm", [3, 4], **k), (rn(2, 3, 4),))
mod("RMSNorm", N("RMSNorm", 4), (rn(2, 4),))
mod("RMSNorm_eps", N("RMSNorm", [2, 4], eps=1e-2, elementwise_affine=False), (rn(3, 2, 4),))
mod("LocalResponseNorm", N("LocalResponseNorm", 3, alpha=0.1, beta=0.5, k=2.0), (rn(2, 4, 3),))
for k in ({}, {"padding_idx": 1}, {"max_norm": 1.0}, {"padding_idx": -2, "max_norm": 0.8, "norm_type": 3.0}):
    mod(f"Embedding_{k}", N("Embedding", 6, 3, **k), (NG(np.array([[0, 1, 5], [1, 1, 2]])),))
BAG_IDX = NG(np.array([0, 2, 1, 4, 4, 3]))
for md in ("sum", "mean", "max"):
    mod(f"EmbeddingBag_{md}", N("EmbeddingBag", 5, 3, mode=md), (BAG_IDX, NG(np.array([0, 2, 2, 5]))))
    mod(f"EmbeddingBag_2d_{md}", N("EmbeddingBag", 5, 3, mode=md), (NG(np.array([[0, 2, 1], [4, 4, 3]])),))
    mod(f"EmbeddingBag_last_{md}", N("EmbeddingBag", 5, 3, mode=md, include_last_offset=True),
        (BAG_IDX, NG(np.array([0, 2, 5, 6]))))
    mod(f"EmbeddingBag_pad_{md}", N("EmbeddingBag", 5, 3, mode=md, padding_idx=4),
        (BAG_IDX, NG(np.array([0, 3]))))
mod("EmbeddingBag_psw", N("EmbeddingBag", 5, 3, mode="sum"), (BAG_IDX, NG(np.array([0, 3]))),
    lambda mod_, i, o: mod_(i, o, per_sample_weights=(i * 0 + 1).double() * 0.5))
for k in ({}, {"num_parameters": 3}, {"init": 0.1}):
    mod(f"PReLU_{k}", N("PReLU", **k), (rn(2, 3, 4),))
mod("PReLU_1d", N("PReLU", 3), (rn(3),))
for cls in ("RNN", "LSTM", "GRU"):
    for k in ({}, {"num_layers": 2}, {"bidirectional": True}, {"batch_first": True}, {"bias": False},
              {"num_layers": 2, "bidirectional": True, "batch_first": True}):
        mod(f"{cls}_{k}", N(cls, 3, 4, **k), (rn(5, 2, 3),))
    mod(f"{cls}_unbatched", N(cls, 3, 4), (rn(5, 3),))
    mod(f"{cls}_h0", N(cls, 3, 4, num_layers=2), (rn(5, 2, 3), rn(2, 2, 4)) if cls != "LSTM" else
        (rn(5, 2, 3), (rn(2, 2, 4), rn(2, 2, 4))))
    mod(f"{cls}Cell", N(cls + "Cell", 3, 4), (rn(2, 3),))
    mod(f"{cls}Cell_nobias", N(cls + "Cell", 3, 4, bias=False), (rn(3),))
    mod(f"{cls}Cell_h", N(cls + "Cell", 3, 4), (rn(2, 3), rn(2, 4)) if cls != "LSTM" else
        (rn(2, 3), (rn(2, 4), rn(2, 4))))
mod("RNN_relu", N("RNN", 3, 4, nonlinearity="relu", num_layers=2), (rn(4, 2, 3),))
mod("RNNCell_relu", N("RNNCell", 3, 4, nonlinearity="relu"), (rn(2, 3),))
mod("LSTM_proj", N("LSTM", 3, 4, proj_size=2), (rn(4, 2, 3),))
mod("LSTM_proj_bi2", N("LSTM", 3, 4, proj_size=2, num_layers=2, bidirectional=True), (rn(4, 2, 3),))
mod("LSTM_f32", N("LSTM", 3, 4), (rn(4, 2, 3, dt=np.float32),), f64=False)
mod("GRU_empty_batch", N("GRU", 3, 4), (rn(4, 0, 3),))

# multi_head_attention_forward through nn.MultiheadAttention
KPM = np.array([[False, False, True, False], [False, True, True, False]])
for k in ({}, {"batch_first": True}, {"kdim": 3, "vdim": 5}, {"bias": False}, {"add_bias_kv": True},
          {"add_zero_attn": True}, {"kdim": 3, "vdim": 5, "batch_first": True, "add_bias_kv": True}):
    bf = k.get("batch_first", False)
    sh = (lambda L: (2, L, 4)) if bf else (lambda L: (L, 2, 4))
    q, key = rn(*sh(3)), rn(*sh(4))[..., :k.get("kdim", 4)] if "kdim" not in k else rn(*sh(4)[:-1], 3)
    val = rn(*sh(4)[:-1], k.get("vdim", 4))
    for j, kw in enumerate([{}, {"need_weights": False}, {"average_attn_weights": False},
                            {"key_padding_mask": NG(KPM)}, {"attn_mask": NG(np.triu(np.ones((3, 4), bool), 1))},
                            {"key_padding_mask": NG(np.where(KPM, -np.inf, 0.0)), "attn_mask": rn(3, 4)},
                            {"attn_mask": rn(4, 3, 4)}]):
        mod(f"MHA_{k}_{j}", N("MultiheadAttention", 4, 2, **k), (q, key, val),
            lambda mod_, a, b, c, kw=kw: mod_(a, b, c, **{n: _conv(gg if isinstance(mod_, gg.nn.Module) else torch,
                                                                    v, []) for n, v in kw.items()}))
mod("MHA_self_causal", N("MultiheadAttention", 4, 1), (rn(3, 2, 4),),
    lambda mod_, x: mod_(x, x, x, attn_mask=_conv(gg if isinstance(mod_, gg.nn.Module) else torch,
                                                  NG(np.triu(np.full((3, 3), -np.inf), 1)), []), is_causal=True))
mod("MHA_unbatched", N("MultiheadAttention", 4, 2), (rn(3, 4), rn(5, 4), rn(5, 4)))
mod("TEL", N("TransformerEncoderLayer", 4, 2, dim_feedforward=6, dropout=0.0), (rn(3, 2, 4),))
mod("TEL_nf_gelu_bf", N("TransformerEncoderLayer", 4, 2, dim_feedforward=6, dropout=0.0, norm_first=True,
                        activation="gelu", batch_first=True), (rn(2, 3, 4),))
mod("TDL", N("TransformerDecoderLayer", 4, 2, dim_feedforward=6, dropout=0.0), (rn(3, 2, 4), rn(5, 2, 4)))
mod("TDL_nf", N("TransformerDecoderLayer", 4, 2, dim_feedforward=6, dropout=0.0, norm_first=True, bias=False),
    (rn(3, 2, 4), rn(5, 2, 4)))
mod("TE", lambda m: m.nn.TransformerEncoder(m.nn.TransformerEncoderLayer(4, 2, 6, 0.0), 2, enable_nested_tensor=False),
    (rn(3, 2, 4),))
mod("Transformer", N("Transformer", 4, 2, 1, 1, 6, 0.0), (rn(3, 2, 4), rn(2, 2, 4)))

# parameter-free modules: forward/backward, repr and names
for cid, ctor, shp in [
        ("MaxPool2d", N("MaxPool2d", 2, stride=1, padding=1, dilation=1, ceil_mode=True), (1, 2, 4, 4)),
        ("MaxPool1d_idx", N("MaxPool1d", 3, return_indices=True), (1, 2, 7)),
        ("AvgPool2d", N("AvgPool2d", 3, 2, 1, count_include_pad=False, divisor_override=2), (1, 2, 5, 5)),
        ("AvgPool1d", N("AvgPool1d", 2, ceil_mode=True), (1, 2, 5)), ("AvgPool3d", N("AvgPool3d", 2), (1, 1, 2, 4, 2)),
        ("MaxPool3d", N("MaxPool3d", (1, 2, 2)), (1, 1, 2, 4, 2)), ("LPPool1d", N("LPPool1d", 2, 3), (1, 2, 7)),
        ("LPPool2d", N("LPPool2d", 1.5, 2), (1, 2, 4, 4)), ("AdaptiveAvgPool2d", N("AdaptiveAvgPool2d", (3, None)),
                                                            (1, 2, 5, 4)),
        ("AdaptiveMaxPool1d", N("AdaptiveMaxPool1d", 3, return_indices=True), (1, 2, 7)),
        ("Upsample", N("Upsample", scale_factor=2, mode="bilinear"), (1, 1, 2, 3)),
        ("Upsample_size", N("Upsample", size=5), (1, 1, 3)),
        ("UpsamplingNearest2d", N("UpsamplingNearest2d", scale_factor=2), (1, 1, 2, 2)),
        ("UpsamplingBilinear2d", N("UpsamplingBilinear2d", size=(3, 5)), (1, 1, 2, 2)),
        ("PixelShuffle", N("PixelShuffle", 2), (1, 8, 2, 3)), ("PixelUnshuffle", N("PixelUnshuffle", 2), (1, 2, 4, 2)),
        ("ChannelShuffle", N("ChannelShuffle", 2), (1, 4, 2, 2)), ("Flatten", N("Flatten"), (2, 3, 4)),
        ("Flatten_args", N("Flatten", 0, -2), (2, 3, 4)), ("Unflatten", N("Unflatten", 1, (2, 2)), (3, 4)),
        ("Fold", N("Fold", (3, 4), 2), (1, 8, 6)), ("Unfold", N("Unfold", 2, dilation=1, padding=1, stride=2),
                                                      (1, 2, 3, 4)),
        ("Softmax2d", N("Softmax2d"), (2, 3, 2, 2)), ("Softmax", N("Softmax", dim=1), (2, 3)),
        ("LogSoftmax", N("LogSoftmax", 0), (2, 3)), ("Softmin", N("Softmin", -1), (2, 3)), ("GLU", N("GLU"), (2, 4)),
        ("CosineSimilarity", N("CosineSimilarity", dim=0, eps=1e-3), (3, 2)),
        ("ZeroPad2d", N("ZeroPad2d", (1, 0, 2, 1)), (1, 2, 3)), ("ConstantPad1d", N("ConstantPad1d", 2, 3.5), (2, 3)),
        ("ConstantPad3d", N("ConstantPad3d", (1, 0, 0, 1, 1, 0), -1.0), (1, 1, 2, 2, 2)),
        ("ReflectionPad1d", N("ReflectionPad1d", (2, 1)), (1, 2, 4)), ("ReflectionPad2d", N("ReflectionPad2d", 1),
                                                                          (1, 1, 3, 3)),
        ("ReplicationPad3d", N("ReplicationPad3d", 1), (1, 1, 2, 2, 2)), ("CircularPad2d", N("CircularPad2d", (1, 2, 0,
                                                                                                             1)),
                                                                          (1, 1, 3, 3)),
        ("Dropout", N("Dropout", 0.0), (3, 4)), ("Dropout2d", N("Dropout2d", 0.0), (2, 3, 2)),
        ("AlphaDropout", N("AlphaDropout", 0.0), (3, 4)), ("Threshold", N("Threshold", 0.1, 20.0), (3, 4)),
        ("Hardtanh", N("Hardtanh", -2.0, 2.0), (3, 4)), ("ReLU6", N("ReLU6"), (3, 4)), ("ELU", N("ELU", 0.7), (3, 4)),
        ("CELU", N("CELU", 1.2), (3, 4)), ("GELU", N("GELU", approximate="tanh"), (3, 4)),
        ("Softplus", N("Softplus", 2, 10), (3, 4)), ("Softshrink", N("Softshrink", 0.3), (3, 4)),
        ("Hardshrink", N("Hardshrink"), (3, 4)), ("LeakyReLU", N("LeakyReLU", 0.1), (3, 4)),
        ("SiLU", N("SiLU"), (3, 4)), ("Mish", N("Mish"), (3, 4)),
        ("Hardswish", N("Hardswish"), (3, 4)), ("Tanhshrink", N("Tanhshrink"), (3, 4)), ("SELU", N("SELU"), (3, 4)),
        ("LogSigmoid", N("LogSigmoid"), (3, 4)), ("Sigmoid", N("Sigmoid"), (3, 4)), ("Tanh", N("Tanh"), (3, 4)),
        ("Softsign", N("Softsign"), (3, 4)), ("ReLU", N("ReLU", inplace=False), (3, 4))]:
    mod(cid, ctor, (rn(*shp),))
mod("PairwiseDistance", N("PairwiseDistance", p=1.5, keepdim=True), (rn(3, 4), rn(3, 4)))
mod("MaxUnpool2d", N("MaxUnpool2d", 2), (rn(1, 1, 2, 2), NG(np.array([[[[0, 3], [9, 14]]]]))))
mod("RReLU_eval", N("RReLU", 0.1, 0.3), (rn(3, 4),), lambda mod_, x: mod_.eval()(x))  # NOTE: training is random
TG5 = NG(np.array([0, 3, 1, 1, 2]))
for cid, ctor, args in [
        ("L1Loss", N("L1Loss", reduction="sum"), (rn(3), rn(3))), ("MSELoss", N("MSELoss"), (rn(3), rn(3))),
        ("SmoothL1Loss", N("SmoothL1Loss", beta=0.5), (rn(3), rn(3))),
        ("HuberLoss", N("HuberLoss", "none", 0.5), (rn(3), rn(3))),
        ("BCELoss", N("BCELoss", weight=None), (ru(0.1, 0.9, 3), ru(0, 1, 3))),
        ("BCEWithLogitsLoss", lambda m: m.nn.BCEWithLogitsLoss(pos_weight=m.tensor([2.0, 1.0, 0.5])),
         (rn(2, 3), ru(0, 1, 2, 3))),
        ("CrossEntropyLoss", lambda m: m.nn.CrossEntropyLoss(weight=m.tensor([1.0, 2, 3, 4]), ignore_index=2,
                                                             label_smoothing=0.1), (rn(5, 4), TG5)),
        ("NLLLoss", N("NLLLoss", ignore_index=1), (rn(5, 4), TG5)), ("KLDivLoss", N("KLDivLoss", "batchmean", True),
                                                                   (rn(2, 3), rn(2, 3))),
        ("PoissonNLLLoss", N("PoissonNLLLoss", False, True, eps=1e-3), (ru(0.1, 2, 3), ru(0, 3, 3))),
        ("GaussianNLLLoss", N("GaussianNLLLoss", full=True, eps=1e-3), (rn(3), rn(3), ru(0.1, 1, 3))),
        ("HingeEmbeddingLoss", N("HingeEmbeddingLoss", 0.5), (rn(4), NG(np.array([1.0, -1, 1, -1])))),
        ("MarginRankingLoss", N("MarginRankingLoss", 0.2), (rn(4), rn(4), NG(np.array([1.0, -1, 1, -1])))),
        ("CosineEmbeddingLoss", N("CosineEmbeddingLoss", 0.1), (rn(2, 3), rn(2, 3), NG(np.array([1.0, -1])))),
        ("MultiMarginLoss", N("MultiMarginLoss", 2, 0.5), (rn(5, 4), TG5)),
        ("MultiLabelMarginLoss", N("MultiLabelMarginLoss"), (rn(2, 3), NG(np.array([[2, -1, 0], [0, 1, 2]])))),
        ("MultiLabelSoftMarginLoss", N("MultiLabelSoftMarginLoss"), (rn(2, 3), NG(np.array([[1.0, 0, 1], [0, 0, 1]])))),
        ("SoftMarginLoss", N("SoftMarginLoss"), (rn(4), NG(np.array([1.0, -1, 1, -1])))),
        ("TripletMarginLoss", N("TripletMarginLoss", 0.5, 1.0, swap=True), (rn(2, 3), rn(2, 3), rn(2, 3))),
        ("TripletMarginWithDistanceLoss", N("TripletMarginWithDistanceLoss", margin=0.3),
         (rn(2, 3), rn(2, 3), rn(2, 3)))]:
    mod(cid, ctor, args)
# containers: names of nested modules and parameters
mod("Sequential", lambda m: m.nn.Sequential(m.nn.Linear(3, 4), m.nn.ReLU(), m.nn.Sequential(m.nn.Linear(4, 2))),
    (rn(2, 3),))
mod("ModuleList", lambda m: m.nn.Sequential(m.nn.ModuleList([m.nn.Linear(3, 3), m.nn.Tanh()])), (rn(2, 3),),
    lambda mod_, x: mod_[0][1](mod_[0][0](x)))
mod("ModuleDict", lambda m: m.nn.ModuleDict({"b": m.nn.Linear(3, 2), "a": m.nn.BatchNorm1d(2)}), (rn(2, 3),),
    lambda mod_, x: mod_["a"](mod_["b"](x)))
mod("ParameterList", lambda m: m.nn.ParameterList([m.nn.Parameter(m.ones(2)), m.nn.Parameter(m.zeros(3))]), (),
    lambda mod_: mod_[0] * 2)
mod("ParameterDict", lambda m: m.nn.ParameterDict({"w": m.nn.Parameter(m.ones(2))}), (), lambda mod_: mod_["w"] * 2)
mod("Shared", lambda m: (lambda lin: m.nn.Sequential(lin, m.nn.ReLU(), lin))(m.nn.Linear(3, 3)), (rn(2, 3),))


REPR_XFAIL = {}  # id -> reason: repr(module) differs
xfail(r"Conv3d_(reflect|replicate|circular)", "Conv3d(padding_mode!='zeros'): gg NotImplementedError", MODS)
xfail(r"CELU", "float64 CELU(1.2) gradient: torch's is off by ~3e-8 relative, gg exact", MODS)
xfail(r"Conv3d_(reflect|replicate|circular)", "Conv3d(padding_mode!='zeros'): gg NotImplementedError", MODS, REPR_XFAIL)


@pytest.mark.parametrize("cid", _params(MODS))
def test_module(cid):
    mod_check(cid)


@pytest.mark.parametrize("cid", [pytest.param(k, id=k, marks=pytest.mark.xfail(strict=True, reason=REPR_XFAIL[k]))
                                 if k in REPR_XFAIL else k for k in MODS])
def test_module_repr(cid):
    tm, gm = _build_pair(MODS[cid][0], True)
    assert repr(gm) == repr(tm)


# default initialisation: distribution family and bounds, from large layers (quantiles relative to torch's)
def _q(a):
    a = np.sort(np.ravel(a))
    return np.quantile(a, [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]), a.std()


INITS = {
    "Linear": N("Linear", 300, 200), "Conv2d": N("Conv2d", 16, 32, 3), "Conv1d_groups": N("Conv1d", 8, 64, 5, groups=4),
    "ConvT2d": N("ConvTranspose2d", 16, 24, 3), "Bilinear": N("Bilinear", 20, 30, 40), "Embedding": N("Embedding", 300, 200),
    "Embedding_pad": N("Embedding", 400, 50, padding_idx=3), "LSTM": N("LSTM", 30, 64), "GRU": N("GRU", 20, 50),
    "RNNCell": N("RNNCell", 20, 80), "MHA": N("MultiheadAttention", 64, 4), "MHA_kv": N("MultiheadAttention", 64, 4,
                                                                                        kdim=32, vdim=16,
                                                                                        add_bias_kv=True),
    "BatchNorm2d": N("BatchNorm2d", 50), "LayerNorm": N("LayerNorm", 50), "PReLU": N("PReLU", 10),
    "GroupNorm": N("GroupNorm", 2, 10), "TEL": N("TransformerEncoderLayer", 32, 4, 64),
}


@pytest.mark.parametrize("cid", _params(INITS))
def test_default_init(cid):
    tm, gm = _build_pair(INITS[cid], False)
    for (n, tp), (gn, gp) in zip(tm.state_dict().items(), gm.state_dict().items()):
        assert n == gn
        t, g = tp.numpy().astype(np.float64), gp.numpy().astype(np.float64)
        assert g.shape == t.shape and str(gp.dtype) == str(tp.dtype).replace("torch.", ""), n
        if cid == "Embedding_pad":
            assert not np.any(g[3]), "the padding row starts at zero"
        if t.size < 200 or t.std() == 0:
            np.testing.assert_array_equal(g if t.std() == 0 else np.sort(t) * 0, t if t.std() == 0 else np.sort(t) * 0,
                                          err_msg=f"{cid}: {n}")
            if t.std() != 0:
                assert np.abs(g).max() <= np.abs(t).max() * 1.5 + 1e-6 and g.std() > 0, f"{cid}: {n}"
            continue
        (tq, ts), (gq, gs) = _q(t), _q(g)
        assert abs(gs / ts - 1) < 0.08, f"{cid}: {n} std gg {gs} torch {ts}"
        np.testing.assert_allclose(gq[1:-1], tq[1:-1], atol=ts * (0.04 + 4 / math.sqrt(t.size)),
                                   err_msg=f"{cid}: {n} quantiles")
        if abs(tq[-1]) < 3 * ts:  # NOTE: a bounded (uniform) family: the same bound (within the sample's spread)
            b, gb = np.abs(t).max(), np.abs(g).max()
            assert b * (1 - 10 / t.size) <= gb <= b * (1 + 10 / t.size), f"{cid}: {n} bound gg {gb} torch {b}"


# -- 3. optimizers -------------------------------------------------------------------------------------------
OPT_X, OPT_Y = rn(6, 3), rn(6, 2)
OPT_W0, OPT_B0 = rn(3, 2), rn(2)


def _objective(m, w, b):
    # NOTE: a nonconvex least-squares objective; sin keeps the Hessian indefinite
    r = m.tensor(OPT_X) @ w + b - m.tensor(OPT_Y)
    return (r * r).mean() + m.sin(3 * w).sum() * 0.3 + (b * b * b * b).sum() * 0.1 - b.sum() * 0.2


def _sd_plain(sd):
    """An optimizer state_dict with tensors as numpy arrays (for comparison)."""
    def cv(v):
        if isinstance(v, (torch.Tensor, gg.Tensor)):
            return ("T", v.detach().numpy().astype(np.float64).tolist(), str(v.dtype).replace("torch.", ""))
        if isinstance(v, dict):
            return {k: cv(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(cv(x) for x in v)
        return v
    return cv(sd)


def _close(a, b, where, loose_step=False):
    if loose_step and isinstance(b, tuple) and b[0] == "T" and not isinstance(a, tuple) and np.ndim(b[1]) == 0:
        # NOTE: scalar state stored as a Python number here, as a 0-d tensor (float32) in torch: the type is checked
        # in test_optimizer_state_types; here only the value (to float32 precision)
        assert math.isclose(a, b[1], rel_tol=1e-6), f"{where}: gg {a!r} torch {b!r}"
        return
    if isinstance(b, dict):
        ka, kb = (sorted(a), sorted(b)) if loose_step and isinstance(a, dict) else (list(a), list(b))
        assert isinstance(a, dict) and ka == kb, f"{where}: keys gg {list(a)} torch {list(b)}"
        for k in b:
            _close(a[k], b[k], f"{where}.{k}", loose_step)
    elif isinstance(b, (list, tuple)):
        assert isinstance(a, (list, tuple)) and len(a) == len(b), f"{where}: gg {a!r} torch {b!r}"
        if len(b) == 3 and b[0] == "T":
            assert a[0] == "T" and a[2] == b[2], f"{where}: gg {a!r} torch {b!r}"
            np.testing.assert_allclose(a[1], b[1], rtol=1e-8, atol=1e-10, err_msg=where)
            return
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{where}[{i}]", loose_step)
    elif isinstance(b, float) or (loose_step and isinstance(b, int) and isinstance(a, float)):
        # NOTE: loosely, an int in torch (ReduceLROnPlateau's default min_lr 0) equals the float here
        assert isinstance(a, (float, int)) and math.isclose(a, b, rel_tol=1e-9), f"{where}: gg {a!r} torch {b!r}"
    else:
        assert a == b and type(a) is type(b), f"{where}: gg {a!r} torch {b!r}"


OPTS = {}  # id -> (class name, kwargs, steps, closure-based)


def opt(cid, name, steps=20, **kw):
    OPTS[cid] = (name, kw, steps)


for k in ({}, {"momentum": 0.9}, {"momentum": 0.9, "dampening": 0.3}, {"momentum": 0.9, "nesterov": True},
          {"weight_decay": 0.1, "momentum": 0.5}, {"maximize": True}, {"foreach": True, "momentum": 0.9},
          {"fused": True, "momentum": 0.9}, {"nesterov": True}):
    opt(f"SGD_{k}", "SGD", lr=0.05, **k)
for name in ("Adam", "AdamW"):
    for k in ({}, {"amsgrad": True}, {"maximize": True}, {"weight_decay": 0.1}, {"amsgrad": True, "weight_decay": 0.1,
                                                                               "maximize": True},
              {"foreach": True}, {"fused": True}, {"capturable": True}, {"betas": (0.5, 0.9), "eps": 1e-3}):
        opt(f"{name}_{k}", name, lr=0.05, **k)
opt("Adam_decoupled", "Adam", lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)
opt("Adam_lr_tensor", "Adam", lr=0.05)
# NOTE: a Tensor lr (float32, as torch.tensor(0.05)); "_lr_tensor" ids get it in _opt_run
for _n, _k in (("SGD", {"momentum": 0.9}), ("Adam", {"fused": True}), ("Adam", {"foreach": True}),
               ("AdamW", {"weight_decay": 0.0}), ("AdamW", {}), ("RMSprop", {"momentum": 0.5}), ("Adagrad", {}),
               ("Adamax", {}), ("NAdam", {}), ("RAdam", {}), ("RAdam", {"foreach": True}), ("Adadelta", {}),
               ("ASGD", {}), ("Rprop", {}), ("SGD", {"foreach": True})):
    opt(f"{_n}_{_k}_lr_tensor", _n, lr=0.05, **_k)
opt("LBFGS_lr_tensor", "LBFGS", steps=5, lr=0.5)
for k in ({}, {"centered": True}, {"momentum": 0.9}, {"centered": True, "momentum": 0.5, "weight_decay": 0.1},
          {"maximize": True, "alpha": 0.9}):
    opt(f"RMSprop_{k}", "RMSprop", lr=0.01, **k)
for k in ({}, {"lr_decay": 0.1}, {"initial_accumulator_value": 0.5}, {"weight_decay": 0.1, "maximize": True},
          {"eps": 1e-3}, {"fused": True}):
    opt(f"Adagrad_{k}", "Adagrad", lr=0.1, **k)
for k in ({}, {"weight_decay": 0.1}, {"maximize": True}):
    opt(f"Adamax_{k}", "Adamax", lr=0.05, **k)
for k in ({}, {"momentum_decay": 0.1}, {"weight_decay": 0.1}, {"weight_decay": 0.1, "decoupled_weight_decay": True},
          {"maximize": True}):
    opt(f"NAdam_{k}", "NAdam", lr=0.05, **k)
for k in ({}, {"weight_decay": 0.1}, {"weight_decay": 0.1, "decoupled_weight_decay": True}, {"maximize": True}):
    opt(f"RAdam_{k}", "RAdam", lr=0.05, **k)
for k in ({}, {"rho": 0.5, "weight_decay": 0.1}, {"maximize": True}):
    opt(f"Adadelta_{k}", "Adadelta", **k)
for k in ({}, {"t0": 5}, {"t0": 3, "lambd": 0.1, "alpha": 0.5, "weight_decay": 0.1}, {"maximize": True, "t0": 2}):
    opt(f"ASGD_{k}", "ASGD", lr=0.05, **k)
for k in ({}, {"etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2)}, {"maximize": True}):
    opt(f"Rprop_{k}", "Rprop", lr=0.05, **k)
for k in ({}, {"line_search_fn": "strong_wolfe"}, {"history_size": 3, "max_iter": 4},
          {"line_search_fn": "strong_wolfe", "max_iter": 3, "max_eval": 5, "lr": 0.5}):
    opt(f"LBFGS_{k}", "LBFGS", steps=5, **k)


xfail(r"Adam_lr_tensor|(AdamW_.*|ASGD_\{\}|RAdam_\{'foreach': True\}|Adamax_\{\}|NAdam_\{\})_lr_tensor",
      "a float32 Tensor lr: torch computes lr-derived scalars (Adam's lr / bias correction, AdamW's 1 - lr*wd, ASGD's "
      "eta, ...) in float32 tensor ops, gg in float64 (rel. 1e-8..1e-7)", OPTS)


def _opt_run(m, cid):
    name, kw, steps = OPTS[cid]
    w = m.tensor(OPT_W0.copy(), requires_grad=True)
    b = m.tensor(OPT_B0.copy(), requires_grad=True)
    kw = dict(kw)
    if cid.endswith("_lr_tensor"):
        kw["lr"] = m.tensor(kw["lr"])
    o = getattr(m.optim, name)([{"params": [w]}, {"params": [b], "lr": kw.get("lr", 0.01) * 0.5}]
                               if name not in ("LBFGS",) else [w, b], **kw)
    losses = []

    def closure():
        o.zero_grad()
        loss = _objective(m, w, b)
        loss.backward()
        return loss
    for _ in range(steps):
        r = o.step(closure)
        losses.append(float(r))
    return w.detach().numpy(), b.detach().numpy(), losses, o


@pytest.mark.parametrize("cid", _params(OPTS))
def test_optimizer(cid):
    terr = gerr = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tw, tb, tls, to = _opt_run(torch, cid)
        except Exception as e:  # noqa: BLE001
            terr = e
        try:
            gw, gb, gls, go = _opt_run(gg, cid)
        except Exception as e:  # noqa: BLE001
            gerr = e
    assert (terr is None) == (gerr is None), f"torch {terr!r}, gg {gerr!r}"
    if terr is not None:
        return
    np.testing.assert_allclose(gls, tls, rtol=1e-8, atol=1e-10, err_msg="losses")
    np.testing.assert_allclose(gw, tw, rtol=1e-8, atol=1e-10, err_msg="w")
    np.testing.assert_allclose(gb, tb, rtol=1e-8, atol=1e-10, err_msg="b")
    tsd = _sd_plain(to.state_dict())
    for st in tsd["state"].values():
        st.pop("al", None)  # NOTE: LBFGS's scratch list; its absence here is checked in test_optimizer_state_types
    _close(_sd_plain(go.state_dict()), tsd, "state_dict", loose_step=True)
    assert set(go.defaults) == set(to.defaults), f"defaults gg {sorted(go.defaults)} torch {sorted(to.defaults)}"


STRUCT = {n: k for n, k in [("SGD", "SGD_{'momentum': 0.9}"), ("Adam", "Adam_{'amsgrad': True}"), ("AdamW", "AdamW_{}"),
                             ("RMSprop", "RMSprop_{'centered': True}"), ("Adagrad", "Adagrad_{}"),
                             ("Adamax", "Adamax_{}"), ("NAdam", "NAdam_{}"), ("RAdam", "RAdam_{}"),
                             ("Adadelta", "Adadelta_{}"), ("ASGD", "ASGD_{}"), ("Rprop", "Rprop_{}"),
                             ("LBFGS", "LBFGS_{}")]}
STRUCT_XFAIL = {}
for _n in ("Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam", "Adadelta", "ASGD", "Rprop"):
    STRUCT_XFAIL[_n] = "state 'step' is a Python int in gg, a float32 0-d tensor in torch"
for _n in ("RMSprop", "Adagrad", "NAdam", "RAdam", "Adadelta"):
    STRUCT_XFAIL[_n] = STRUCT_XFAIL.get(_n, "") + "; param_groups key order differs"
STRUCT_XFAIL["LBFGS"] = "LBFGS state lacks torch's 'al' entry"
STRUCT_XFAIL["NAdam"] += "; mu_product a float (torch: float32 tensor)"
STRUCT_XFAIL["ASGD"] += "; eta/mu floats (torch: float32 tensors)"


@pytest.mark.parametrize("name", [
    pytest.param(n, id=n, marks=pytest.mark.xfail(strict=True, reason=STRUCT_XFAIL[n])) if n in STRUCT_XFAIL else n
    for n in STRUCT])
def test_optimizer_state_types(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        go, to = _opt_run(gg, STRUCT[name])[3], _opt_run(torch, STRUCT[name])[3]
    _close(_sd_plain(go.state_dict()), _sd_plain(to.state_dict()), "state_dict")
    assert list(go.defaults) == list(to.defaults), f"defaults order gg {list(go.defaults)} torch {list(to.defaults)}"


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam", "Adadelta",
                                  "ASGD", "Rprop"])
def test_optimizer_groups_and_zero_grad(name):
    res = []
    for m in (torch, gg):
        w, b = m.tensor(OPT_W0.copy(), requires_grad=True), m.tensor(OPT_B0.copy(), requires_grad=True)
        o = getattr(m.optim, name)([w], lr=0.01)
        o.add_param_group({"params": [b], "lr": 0.3})
        dup = None
        try:
            o.add_param_group({"params": [w]})
        except Exception as e:  # noqa: BLE001
            dup = type(e).__name__
        _objective(m, w, b).backward()
        o.step()
        o.zero_grad()
        none_after = (w.grad is None, b.grad is None)
        _objective(m, w, b).backward()
        o.zero_grad(set_to_none=False)
        zeros = (w.grad is not None and not np.any(w.grad.numpy()))
        res.append(([sorted(g) for g in o.param_groups], [g["lr"] for g in o.param_groups], dup, none_after, zeros,
                    w.detach().numpy().tolist(), b.detach().numpy().tolist()))
    t, g = res
    assert g[:5] == t[:5], f"gg {g[:5]} torch {t[:5]}"
    np.testing.assert_allclose(g[5], t[5], rtol=1e-9)
    np.testing.assert_allclose(g[6], t[6], rtol=1e-9)


# -- 4. lr schedulers ----------------------------------------------------------------------------------------
def _L(name, *a, **k):
    return lambda m, o: getattr(m.optim.lr_scheduler, name)(o, *a, **k)


SCHED = {
    "StepLR": _L("StepLR", 3, gamma=0.5), "StepLR_default": _L("StepLR", 4),
    "MultiStepLR": _L("MultiStepLR", [3, 7, 7, 12], 0.3), "ConstantLR": _L("ConstantLR", factor=0.3, total_iters=5),
    "ConstantLR_default": _L("ConstantLR"), "LinearLR": _L("LinearLR", start_factor=0.2, end_factor=0.9, total_iters=7),
    "LinearLR_default": _L("LinearLR"), "ExponentialLR": _L("ExponentialLR", 0.9),
    "PolynomialLR": _L("PolynomialLR", total_iters=10, power=2.0), "PolynomialLR_default": _L("PolynomialLR"),
    "CosineAnnealingLR": _L("CosineAnnealingLR", 7, eta_min=0.01),
    "CosineAnnealingWarmRestarts": _L("CosineAnnealingWarmRestarts", 4, T_mult=2, eta_min=0.001),
    "CosineAnnealingWarmRestarts_1": _L("CosineAnnealingWarmRestarts", 5),
    "LambdaLR": _L("LambdaLR", lambda e: 0.95 ** e),
    "LambdaLR_list": _L("LambdaLR", [lambda e: 0.95 ** e, lambda e: 1.0 / (e + 1)]),
    "MultiplicativeLR": _L("MultiplicativeLR", lambda e: 0.9),
    "SequentialLR": lambda m, o: m.optim.lr_scheduler.SequentialLR(
        o, [m.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=3), m.optim.lr_scheduler.ExponentialLR(o, 0.8),
            m.optim.lr_scheduler.StepLR(o, 2)], milestones=[5, 12]),
    "ChainedScheduler": lambda m, o: m.optim.lr_scheduler.ChainedScheduler(
        [m.optim.lr_scheduler.StepLR(o, 3, 0.5), m.optim.lr_scheduler.ExponentialLR(o, 0.95)]),
    "ChainedScheduler_opt": lambda m, o: m.optim.lr_scheduler.ChainedScheduler(
        [m.optim.lr_scheduler.LinearLR(o, 0.1, total_iters=4), m.optim.lr_scheduler.MultiStepLR(o, [6, 9])], optimizer=o),
}
for mode in ("triangular", "triangular2", "exp_range"):
    SCHED[f"CyclicLR_{mode}"] = _L("CyclicLR", 0.01, [0.1, 0.2], step_size_up=3, step_size_down=5, mode=mode, gamma=0.9)
SCHED["CyclicLR_nomom"] = _L("CyclicLR", 0.01, 0.1, step_size_up=4, cycle_momentum=False)
SCHED["CyclicLR_scale_fn"] = _L("CyclicLR", 0.01, 0.1, step_size_up=2, scale_fn=lambda x: 0.5 ** x, scale_mode="iterations")
for k in ({}, {"anneal_strategy": "linear"}, {"three_phase": True}, {"div_factor": 5.0, "final_div_factor": 100.0,
                                                                      "pct_start": 0.2},
          {"epochs": 3, "steps_per_epoch": 10}, {"cycle_momentum": False}):
    SCHED[f"OneCycleLR_{k}"] = (lambda kk: lambda m, o: m.optim.lr_scheduler.OneCycleLR(
        o, [0.1, 0.3], **(dict(kk) if "epochs" in kk else dict(kk, total_steps=30))))(k)
METRICS = [1.0, 0.9, 0.95, 0.95, 0.95, 0.94, 0.96, 0.97, 0.5, 0.5, 0.5, 0.5, 0.5, 0.49999, 0.5, 0.6, 0.6, 0.6, 0.6,
           0.6, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
for k in ({}, {"mode": "max"}, {"threshold_mode": "abs", "threshold": 0.05}, {"mode": "max", "threshold_mode": "abs"},
          {"patience": 1, "cooldown": 2, "factor": 0.5}, {"patience": 0, "min_lr": [0.02, 0.04], "factor": 0.3},
          {"patience": 0, "eps": 0.02, "factor": 0.9}, {"patience": 0, "min_lr": 0.03}):
    SCHED[f"Plateau_{k}"] = (lambda kk: lambda m, o: m.optim.lr_scheduler.ReduceLROnPlateau(o, **kk))(k)


def _sched_run(m, cid):
    w, b = m.zeros(2, requires_grad=True), m.zeros(1, requires_grad=True)
    o = m.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.05}], lr=0.1, momentum=0.9)
    s = SCHED[cid](m, o)
    lrs = [list(s.get_last_lr()) if hasattr(s, "get_last_lr") and not cid.startswith("Plateau") else
           [g["lr"] for g in o.param_groups]]
    for e in range(30):
        o.step()
        if cid.startswith("Plateau"):
            s.step(METRICS[e])
        else:
            s.step()
        lrs.append(list(s.get_last_lr()) + [g["lr"] for g in o.param_groups] +
                   [g.get("momentum") for g in o.param_groups])
    return lrs, s


@pytest.mark.parametrize("cid", _params(SCHED))
def test_scheduler(cid):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl, ts = _sched_run(torch, cid)
        gl, gs = _sched_run(gg, cid)
    assert len(gl) == len(tl)
    for e, (a, b) in enumerate(zip(gl, tl)):
        np.testing.assert_allclose(np.array(a, float), np.array(b, float), rtol=1e-10, atol=1e-14, err_msg=f"epoch {e}")

    # NOTE: torch's private bookkeeping keys are compared (strictly, with key order) in test_scheduler_state_keys
    private = {"_get_lr_called_within_step", "_anneal_func_type", "anneal_strategy", "default_min_lr",
               "_scale_fn_custom", "_scale_fn_ref"}

    def plain(sd):
        return {k: v for k, v in _sd_plain(sd).items() if not callable(v) and k not in private | {"_schedulers"}}
    _close(plain(gs.state_dict()), plain(ts.state_dict()), "state_dict", loose_step=True)


SCHED_KEYS_XFAIL = "state_dict lacks torch's '_get_lr_called_within_step' key"


@pytest.mark.parametrize("cid", [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=SCHED_KEYS_XFAIL + {
    "OneCycleLR_{}": "; 'anneal_strategy' where torch has '_anneal_func_type'",
    "Plateau_{}": "; Plateau lacks 'default_min_lr' and orders keys differently"}.get(k, "")))
    for k in ("StepLR", "CosineAnnealingWarmRestarts", "LambdaLR", "CyclicLR_triangular", "OneCycleLR_{}", "Plateau_{}")]
    + ["SequentialLR", "ChainedScheduler"])
def test_scheduler_state_keys(cid):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts, gs = _sched_run(torch, cid)[1], _sched_run(gg, cid)[1]
    assert list(gs.state_dict()) == list(ts.state_dict())
