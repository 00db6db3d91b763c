"""gg.optim.lr_scheduler: every scheduler against its closed form over a run of steps, per group."""
import copy
import math

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.optim import SGD, Adagrad, Adam
from gpugrad.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

BASE = [0.1, 0.02]  # two parameter groups with their own lr


def _opt(cls=SGD, **kw):
    ps = [gg.tensor(np.ones(2), requires_grad=True), gg.tensor(np.ones(3), requires_grad=True)]
    kw.setdefault("lr", BASE[0])
    return cls([{"params": ps[:1]}, {"params": ps[1:], "lr": BASE[1]}], **kw)


def _lrs(opt):
    return [g["lr"] for g in opt.param_groups]


def _run(sched, n):
    """lrs at epochs 0..n-1 (epoch 0 = right after construction)."""
    out = [sched.get_last_lr()]
    for _ in range(n - 1):
        sched.optimizer.step()
        sched.step()
        out.append(sched.get_last_lr())
        assert out[-1] == _lrs(sched.optimizer)
    return np.array(out)


def _check(got, closed):
    want = np.array([[closed(b, t) for b in BASE] for t in range(len(got))])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("make,closed", [
    (lambda o: StepLR(o, step_size=3, gamma=0.5), lambda b, t: b * 0.5 ** (t // 3)),
    (lambda o: MultiStepLR(o, milestones=[5, 2, 9, 9], gamma=0.1),
     lambda b, t: b * 0.1 ** ((t >= 2) + (t >= 5) + 2 * (t >= 9))),
    (lambda o: ExponentialLR(o, gamma=0.8), lambda b, t: b * 0.8 ** t),
    (lambda o: CosineAnnealingLR(o, T_max=5, eta_min=1e-3),
     lambda b, t: 1e-3 + (b - 1e-3) * (1 + math.cos(math.pi * t / 5)) / 2),
    (lambda o: LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4),
     lambda b, t: b * (0.25 + 0.75 * min(t, 4) / 4)),
    (lambda o: LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=3),
     lambda b, t: b * (1.0 - 0.9 * min(t, 3) / 3)),
], ids=["step", "multistep", "exponential", "cosine", "linear-warmup", "linear-decay"])
def test_closed_forms(make, closed):
    opt = _opt()
    got = _run(make(opt), 16)  # cosine: three half-periods, through two minima
    _check(got, closed)
    assert [g["initial_lr"] for g in opt.param_groups] == BASE


def test_explicit_epoch_uses_closed_form():
    opt = _opt()
    s = CosineAnnealingLR(opt, T_max=10)
    s.step(7)
    np.testing.assert_allclose(s.get_last_lr(), [b * (1 + math.cos(0.7 * math.pi)) / 2 for b in BASE], rtol=1e-12)


def test_chained_schedulers_compose():
    opt = _opt()
    a, b = StepLR(opt, step_size=2, gamma=0.5), ExponentialLR(opt, gamma=0.9)
    for t in range(1, 8):
        a.step()
        b.step()
        np.testing.assert_allclose(_lrs(opt), [x * 0.5 ** (t // 2) * 0.9 ** t for x in BASE], rtol=1e-12)


def _one_cycle_ref(t, max_lr, T, pct, strategy, three_phase, div=25.0, final_div=1e4, mmax=0.95, mbase=0.85):
    init, low = max_lr / div, max_lr / div / final_div
    ann = ((lambda a, b, x: b + (a - b) * (1 + math.cos(math.pi * x)) / 2) if strategy == "cos"
           else (lambda a, b, x: a + (b - a) * x))
    e1 = pct * T - 1
    if three_phase:
        e2 = 2 * pct * T - 2
        if t <= e1:
            return ann(init, max_lr, t / e1), ann(mmax, mbase, t / e1)
        if t <= e2:
            return ann(max_lr, init, (t - e1) / (e2 - e1)), ann(mbase, mmax, (t - e1) / (e2 - e1))
        return ann(init, low, (t - e2) / (T - 1 - e2)), mmax
    if t <= e1:
        return ann(init, max_lr, t / e1), ann(mmax, mbase, t / e1)
    return ann(max_lr, low, (t - e1) / (T - 1 - e1)), ann(mbase, mmax, (t - e1) / (T - 1 - e1))


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("cls", [SGD, Adam])
def test_one_cycle(strategy, three_phase, cls):
    T, pct, max_lr = 20, 0.25, [1.0, 0.5]
    opt = _opt(cls, **({"momentum": 0.9} if cls is SGD else {}))
    s = OneCycleLR(opt, max_lr=max_lr, total_steps=T, pct_start=pct, anneal_strategy=strategy,
                   three_phase=three_phase)
    for t in range(T):
        for i, g in enumerate(opt.param_groups):
            lr, mom = _one_cycle_ref(t, max_lr[i], T, pct, strategy, three_phase)
            assert g["lr"] == pytest.approx(lr, rel=1e-12), (t, i)
            got_m = g["momentum"] if cls is SGD else g["betas"][0]
            assert got_m == pytest.approx(mom, rel=1e-12), (t, i)
            if cls is Adam:
                assert g["betas"][1] == 0.999
        if t < T - 1:
            s.step()
    # the phase boundaries: peak at pct * T - 1, minimum max_lr / 25 / 1e4 at the last step
    assert _run_peak(max_lr[0], T, pct, strategy, three_phase) == 4
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0 / 25 / 1e4, rel=1e-9)
    with pytest.raises(ValueError, match="Tried to step 21 times"):
        s.step()
        s.step()


def _run_peak(max_lr, T, pct, strategy, three_phase):
    opt = _opt(SGD, momentum=0.9)
    s = OneCycleLR(opt, max_lr=max_lr, total_steps=T, pct_start=pct, anneal_strategy=strategy,
                   three_phase=three_phase)
    lrs = [s.get_last_lr()[0]]
    for _ in range(T - 1):
        s.step()
        lrs.append(s.get_last_lr()[0])
    assert max(lrs) == pytest.approx(max_lr)
    return int(np.argmax(lrs))


def test_one_cycle_epochs_and_errors():
    s = OneCycleLR(_opt(), max_lr=0.5, epochs=3, steps_per_epoch=4)
    assert s.total_steps == 12 and s.get_last_lr()[0] == pytest.approx(0.5 / 25)
    with pytest.raises(ValueError, match="total_steps OR"):
        OneCycleLR(_opt(), max_lr=0.5, epochs=3)
    with pytest.raises(ValueError, match="pct_start"):
        OneCycleLR(_opt(), max_lr=0.5, total_steps=10, pct_start=1.5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        OneCycleLR(_opt(), max_lr=0.5, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="momentum or beta1"):
        OneCycleLR(_opt(Adagrad), max_lr=0.5, total_steps=10)
    with pytest.raises(ValueError, match="expected 2 values for max_lr"):
        OneCycleLR(_opt(), max_lr=[0.5, 0.4, 0.3], total_steps=10)
    s = OneCycleLR(_opt(Adagrad), max_lr=0.5, total_steps=10, cycle_momentum=False)
    assert s.get_last_lr() == pytest.approx([0.02, 0.02], rel=1e-12)


def _plateau_run(metrics, **kw):
    opt = _opt()
    s = ReduceLROnPlateau(opt, **kw)
    out = []
    for m in metrics:
        s.step(m)
        out.append(_lrs(opt)[0])
    return out


def test_reduce_on_plateau_patience_cooldown_min_lr():
    # patience 2: the third bad epoch in a row reduces; cooldown 2 ignores the next two bad epochs
    lrs = _plateau_run([1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95],
                       factor=0.5, patience=2, cooldown=2, min_lr=0.02)
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025])
    lrs = _plateau_run([1.0] * 40, factor=0.5, patience=0, min_lr=0.02)
    assert lrs[-1] == 0.02 and min(lrs) == 0.02  # clamped at min_lr


@pytest.mark.parametrize("mode,threshold_mode,metrics,reduced", [
    ("min", "rel", [1.0, 0.95, 0.95], True),     # needs < 1.0 * (1 - 0.1): 0.95 is not an improvement
    ("min", "abs", [1.0, 0.95, 0.95], False),    # needs < 1.0 - 0.01: 0.95 improves, then one bad epoch
    ("max", "rel", [1.0, 1.05, 1.05], True),     # needs > 1.1
    ("max", "abs", [1.0, 1.05, 1.05], False),    # needs > 1.01
    ("max", "rel", [1.0, 0.5, 0.4], True),
])
def test_reduce_on_plateau_modes(mode, threshold_mode, metrics, reduced):
    thr = 0.1 if threshold_mode == "rel" else 0.01
    lrs = _plateau_run(metrics, mode=mode, threshold_mode=threshold_mode, threshold=thr, patience=1, factor=0.1)
    assert (lrs[-1] < 0.1) is reduced
    if reduced:
        assert lrs[-1] == pytest.approx(0.01)


def test_reduce_on_plateau_eps_and_errors():
    opt = _opt(lr=1e-9)
    s = ReduceLROnPlateau(opt, patience=0, eps=1e-8)
    for m in (1.0, 2.0, 3.0):
        s.step(gg.tensor(m))  # a 0-d Tensor metric works too
    assert _lrs(opt)[0] == 1e-9  # the change (9e-10) is below eps
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        ReduceLROnPlateau(_opt(), factor=1.0)
    with pytest.raises(ValueError, match="mode 'avg' is unknown"):
        ReduceLROnPlateau(_opt(), mode="avg")
    with pytest.raises(ValueError, match="threshold mode"):
        ReduceLROnPlateau(_opt(), threshold_mode="pct")
    with pytest.raises(ValueError, match="expected 2 values for min_lr"):
        ReduceLROnPlateau(_opt(), min_lr=[0.1])


def test_sequential_warmup_then_cosine():
    opt = _opt()
    s = SequentialLR(opt, [LinearLR(opt, start_factor=0.1, total_iters=4), CosineAnnealingLR(opt, T_max=6)],
                     milestones=[4])
    got = _run(s, 14)
    _check(got, lambda b, t: b * (0.1 + 0.9 * t / 4) if t < 4 else b * (1 + math.cos(math.pi * (t - 4) / 6)) / 2)


def test_sequential_errors():
    opt, other = _opt(), _opt()
    with pytest.raises(ValueError, match="one milestone fewer"):
        SequentialLR(opt, [StepLR(opt, 2), StepLR(opt, 3)], milestones=[2, 4])
    with pytest.raises(ValueError, match="same optimizer"):
        SequentialLR(opt, [StepLR(opt, 2), StepLR(other, 3)], milestones=[2])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        SequentialLR(opt, [StepLR(opt, 2), ReduceLROnPlateau(opt)], milestones=[2])


@pytest.mark.parametrize("make", [
    lambda o: StepLR(o, step_size=2, gamma=0.5),
    lambda o: CosineAnnealingLR(o, T_max=4),
    lambda o: MultiStepLR(o, milestones=[3, 5]),
    lambda o: OneCycleLR(o, max_lr=1.0, total_steps=12, three_phase=True),
    lambda o: SequentialLR(o, [LinearLR(o, start_factor=0.5, total_iters=3), ExponentialLR(o, gamma=0.7)], [3]),
], ids=["step", "cosine", "multistep", "onecycle", "sequential"])
def test_state_dict_round_trip(make, tmp_path):
    a_opt = _opt(momentum=0.9)
    a = make(a_opt)
    for _ in range(4):
        a.step()
    gg.save({"opt": a_opt.state_dict(), "sched": a.state_dict()}, tmp_path / "ck")
    ck = gg.load(tmp_path / "ck")
    b_opt = _opt(momentum=0.9)
    b = make(b_opt)
    b_opt.load_state_dict(ck["opt"])
    b.load_state_dict(ck["sched"])
    assert b.last_epoch == a.last_epoch and b.get_last_lr() == a.get_last_lr()
    for _ in range(6):
        a.step()
        b.step()
        assert b.get_last_lr() == pytest.approx(a.get_last_lr(), rel=1e-15)
        assert _lrs(b_opt) == pytest.approx(_lrs(a_opt), rel=1e-15)
        assert b_opt.param_groups[0]["momentum"] == pytest.approx(a_opt.param_groups[0]["momentum"])


def test_plateau_state_dict_round_trip():
    a = ReduceLROnPlateau(_opt(), patience=1, factor=0.5)
    for m in (1.0, 1.0):
        a.step(m)
    b_opt = _opt()
    b = ReduceLROnPlateau(b_opt, patience=1, factor=0.5)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    assert b.num_bad_epochs == 1 and b.best == 1.0
    b.step(1.0)  # the second bad epoch in a row: only reduces because the count was restored
    assert _lrs(b_opt)[0] == pytest.approx(0.05)


def test_resume_requires_initial_lr_and_type_checks():
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(_opt(), step_size=2, last_epoch=3)
    with pytest.raises(TypeError, match="not an Optimizer"):
        StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="step_size"):
        StepLR(_opt(), step_size=0)
    with pytest.raises(ValueError, match="start_factor"):
        LinearLR(_opt(), start_factor=0)
