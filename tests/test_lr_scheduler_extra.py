"""gg.optim.lr_scheduler: LambdaLR, MultiplicativeLR, ConstantLR, PolynomialLR, CosineAnnealingWarmRestarts,
CyclicLR, ChainedScheduler: literal lr sequences, PyTorch's sequences (when torch is importable), the
step-order warning, state_dict round trips (also through gg.save / gg.load)."""
import math
import warnings

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.optim import SGD, Adam
from gpugrad.optim import lr_scheduler as S

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


class Halve:  # a callable object: its __dict__ goes into state_dict
    def __init__(self):
        self.k = 0.5

    def __call__(self, e):
        return self.k ** e


CASES = {
    "lambda": (SGD, {}, lambda m, o: m.LambdaLR(o, lambda e: 1.0 / (e + 1))),
    "lambda_obj": (SGD, {}, lambda m, o: m.LambdaLR(o, Halve())),
    "multiplicative": (SGD, {}, lambda m, o: m.MultiplicativeLR(o, lambda e: 0.9)),
    "constant": (SGD, {}, lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=3)),
    "constant_default": (SGD, {}, lambda m, o: m.ConstantLR(o)),
    "poly": (SGD, {}, lambda m, o: m.PolynomialLR(o, total_iters=4, power=2.0)),
    "poly_default": (SGD, {}, lambda m, o: m.PolynomialLR(o)),
    "cawr": (SGD, {}, lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3)),
    "cawr_mult": (SGD, {}, lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2, eta_min=0.01)),
    "cyclic": (SGD, {"momentum": 0.9}, lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=3)),
    "cyclic2": (SGD, {"momentum": 0.9}, lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=2, step_size_down=3,
                                                                   mode="triangular2")),
    "cyclic_exp": (Adam, {}, lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=2, mode="exp_range", gamma=0.9)),
    "cyclic_fn": (SGD, {}, lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=2, scale_fn=lambda x: 1 / (1 + x),
                                                       scale_mode="iterations", cycle_momentum=False)),
    "chained": (SGD, {}, lambda m, o: m.ChainedScheduler([m.ConstantLR(o, factor=0.1, total_iters=2),
                                                          m.ExponentialLR(o, gamma=0.9)])),
}

EXPECTED = {  # the first 8 lrs (base lr 1.0), from PyTorch 2.x
    "lambda": [1.0, 0.5, 1 / 3, 0.25, 0.2, 1 / 6, 1 / 7, 0.125],
    "multiplicative": [1.0, 0.9, 0.81, 0.729, 0.6561, 0.59049, 0.531441, 0.4782969],
    "constant": [0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0],
    "poly": [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0, 0.0, 0.0],
    "cawr": [1.0, 0.75, 0.25, 1.0, 0.75, 0.25, 1.0, 0.75],
    "cawr_mult": [1.0, 0.505, 1.0, 0.855017857, 0.505, 0.154982143, 1.0, 0.962320369],
    "cyclic": [0.01, 0.04, 0.07, 0.1, 0.07, 0.04, 0.01, 0.04],
    "cyclic2": [0.01, 0.055, 0.1, 0.07, 0.04, 0.01, 0.0325, 0.055],
    "chained": [0.1, 0.09, 0.81, 0.729, 0.6561, 0.59049, 0.531441, 0.4782969],
}


def _lrs(mod, name, n=25):
    opt_cls, kw, make = CASES[name]
    if mod is S:
        p = gg.tensor(np.zeros(2, np.float32), requires_grad=True)
        opt = opt_cls([{"params": [p]}, {"params": [gg.tensor(np.zeros(1, np.float32), requires_grad=True)], "lr": 0.5}],
                      lr=1.0, **kw)
    else:
        topt = getattr(torch.optim, opt_cls.__name__)
        opt = topt([{"params": [torch.zeros(2, requires_grad=True)]},
                    {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.5}], lr=1.0, **kw)
    sched = make(mod, opt)
    out, mom = [], []
    for _ in range(n):
        out.append(list(sched.get_last_lr()))
        g = opt.param_groups[0]
        mom.append(g["betas"][0] if "betas" in g else g.get("momentum", 0))
        opt.step()
        sched.step()
    return np.array(out), np.array(mom), sched, opt


@pytest.mark.parametrize("name", sorted(CASES))
def test_lr_sequences(name):
    lrs, mom, _, _ = _lrs(S, name)
    if name in EXPECTED:
        np.testing.assert_allclose(lrs[:8, 0], EXPECTED[name], rtol=1e-4, atol=1e-12)
    if torch is not None:
        tl, tm, _, _ = _lrs(torch.optim.lr_scheduler, name)
        np.testing.assert_allclose(lrs, tl, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(mom, tm, rtol=1e-12)


def test_cyclic_momentum_values():
    _, mom, _, opt = _lrs(S, "cyclic", n=5)
    np.testing.assert_allclose(mom, [0.9, 0.8666666666666667, 0.8333333333333334, 0.8, 0.8333333333333334])
    assert opt.param_groups[0]["max_momentum"] == 0.9 and opt.param_groups[0]["base_momentum"] == 0.8


@pytest.mark.parametrize("T_mult", [1, 2])
def test_cawr_fractional_epochs(T_mult):
    p = gg.tensor(np.zeros(1, np.float32), requires_grad=True)
    opt = SGD([p], lr=0.1)
    sched = S.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=T_mult, eta_min=0.001)
    epochs = [0.5, 1.25, 2.0, 2.5, 3.75, 5.5, 6.0]
    got = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NOTE: CAWR.step(epoch) does not warn, as in PyTorch
        for e in epochs:
            opt.step()
            sched.step(e)
            got.append(sched.get_last_lr()[0])
    assert sched.last_epoch == 6
    if T_mult == 1:
        ref = [0.001 + 0.099 * (1 + math.cos(math.pi * (e % 2) / 2)) / 2 for e in epochs]
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert got[2] == pytest.approx(0.1)  # a restart at epoch 2
    if torch is not None:
        q = torch.zeros(1, requires_grad=True)
        to = torch.optim.SGD([q], lr=0.1)
        ts = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(to, T_0=2, T_mult=T_mult, eta_min=0.001)
        ref = []
        for e in epochs:
            to.step()
            ts.step(e)
            ref.append(ts.get_last_lr()[0])
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    with pytest.raises(ValueError, match="non-negative epoch"):
        sched.step(-1)


@pytest.mark.parametrize("make", [lambda o: S.StepLR(o, 2), lambda o: S.LambdaLR(o, lambda e: 1.0),
                                  lambda o: S.ConstantLR(o), lambda o: S.CosineAnnealingLR(o, 5),
                                  lambda o: S.CyclicLR(o, 0.1, 1.0, cycle_momentum=False)])
def test_step_before_optimizer_step_warns(make):
    p = gg.tensor(np.zeros(1, np.float32), requires_grad=True)
    opt = SGD([p], lr=1.0)
    sched = make(opt)
    with pytest.warns(UserWarning, match=r"lr_scheduler.step\(\)` before `optimizer.step\(\)"):
        sched.step()
    opt2 = SGD([gg.tensor(np.zeros(1, np.float32), requires_grad=True)], lr=1.0)
    sched2 = make(opt2)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()
        sched2.step()


def test_step_with_epoch_warns_deprecated():
    opt = SGD([gg.tensor(np.zeros(1, np.float32), requires_grad=True)], lr=1.0)
    sched = S.ConstantLR(opt, factor=0.5, total_iters=3)
    opt.step()
    with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)` was not necessary"):
        sched.step(4)
    assert sched.get_last_lr() == [1.0]


@pytest.mark.parametrize("name", ["lambda_obj", "multiplicative", "constant", "poly", "cawr_mult", "cyclic2",
                                  "cyclic_exp", "chained"])
def test_state_dict_round_trip(name, tmp_path):
    full, _, _, _ = _lrs(S, name, n=12)
    _, _, sched, opt = _lrs(S, name, n=5)
    if name == "lambda_obj":
        sched.lr_lambdas[0].k = 0.25
    sd = sched.state_dict()
    gg.save(sd, tmp_path / "s.gg")
    sd = gg.load(tmp_path / "s.gg")
    _, _, fresh, opt2 = _lrs(S, name, n=0)
    if name == "lambda_obj":
        assert fresh.lr_lambdas[0].k == 0.5
    fresh.load_state_dict(sd)
    if name == "lambda_obj":
        assert fresh.lr_lambdas[0].k == 0.25
        return
    opt2.load_state_dict(opt.state_dict())
    got = []
    for _ in range(7):
        got.append(list(fresh.get_last_lr()))
        opt2.step()
        fresh.step()
    np.testing.assert_allclose(got, full[5:12], rtol=1e-12)


def test_argument_errors():
    opt = SGD([gg.tensor(np.zeros(1, np.float32), requires_grad=True)], lr=1.0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        S.ConstantLR(opt, factor=1.5)
    with pytest.raises(ValueError, match="Expected positive integer T_0"):
        S.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="Expected integer T_mult >= 1"):
        S.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=0)
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas, but got 2"):
        S.LambdaLR(opt, [lambda e: 1, lambda e: 1])
    with pytest.raises(TypeError, match="lr_lambda should be a function"):
        S.MultiplicativeLR(opt, 3)
    with pytest.raises(ValueError, match="mode is invalid"):
        S.CyclicLR(opt, 0.1, 1.0, mode="sine")
    with pytest.raises(ValueError, match="must support momentum"):
        S.CyclicLR(gg.optim.Adagrad([gg.tensor(np.zeros(1, np.float32), requires_grad=True)]), 0.1, 1.0)
    with pytest.raises(ValueError, match="at least one scheduler"):
        S.ChainedScheduler([])
    other = SGD([gg.tensor(np.zeros(1, np.float32), requires_grad=True)], lr=1.0)
    with pytest.raises(ValueError, match="same optimizer"):
        S.ChainedScheduler([S.ConstantLR(opt), S.ConstantLR(other)])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        S.ChainedScheduler([S.ReduceLROnPlateau(opt)])
