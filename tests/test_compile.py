"""gg.compile (issue 13): a replayed step computes exactly what the eager step does (CPU: bit for bit)."""
import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import models, nn, optim


def _data(n, shape, seed=0, ncls=10):
    rs = np.random.RandomState(seed)
    return [(gg.tensor(rs.randn(*shape).astype(np.float32)), gg.tensor(rs.randint(0, ncls, shape[0])))
            for _ in range(n)]


def _train(compiled, model_fn, opt_fn, batches, sched=False, extra=None):
    gg.manual_seed(0)
    model = model_fn()
    opt = opt_fn(model.parameters())
    sch = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5) if sched else None
    calls = []

    def step(x, y):
        calls.append(1)
        opt.zero_grad()
        out = model(x)
        if extra is not None:
            out = extra(out)
        loss = F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        return loss
    f = gg.compile(step) if compiled else step
    losses = []
    for x, y in batches:
        losses.append(f(x, y)._data.copy())
        if sch is not None:
            sch.step()
    return model, opt, losses, len(calls)


def _same(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _check_equal(eager, comp):
    (m1, o1, l1, _), (m2, o2, l2, n2) = eager, comp
    assert n2 == 2  # NOTE: the two recordings; every later call replayed without running the body
    assert all(_same(a, b) for a, b in zip(l1, l2))
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert _same(p._data, q._data) and _same(p.grad._data, q.grad._data)
    for p, q in zip(m1.parameters(), m2.parameters()):
        s1, s2 = o1.state[p], o2.state[q]
        assert sorted(s1) == sorted(s2)
        for k in s1:
            v1, v2 = s1[k], s2[k]
            assert _same(v1._data, v2._data) if isinstance(v1, gg.Tensor) else v1 == v2
    assert [g["lr"] for g in o1.param_groups] == [g["lr"] for g in o2.param_groups]


def _mlp(p=0.0):
    return lambda: nn.Sequential(nn.Linear(16, 32), nn.ReLU(), *([nn.Dropout(p)] if p else []), nn.Linear(32, 10))


SGD = lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9)  # noqa: E731
ADAM = lambda ps: optim.Adam(ps, lr=1e-2)  # noqa: E731


@pytest.mark.parametrize("opt_fn", [SGD, ADAM], ids=["sgd-momentum", "adam"])
@pytest.mark.parametrize("p", [0.0, 0.3], ids=["plain", "dropout"])
@pytest.mark.parametrize("sched", [False, True], ids=["fixed-lr", "steplr"])
def test_mlp_training_equals_eager(opt_fn, p, sched):
    batches = _data(7, (8, 16))
    _check_equal(_train(False, _mlp(p), opt_fn, batches, sched), _train(True, _mlp(p), opt_fn, batches, sched))


def test_cnn_training_equals_eager():
    cnn = lambda: models.build_model({"model": "cnn", "channels1": 4, "channels2": 8, "hidden": 16})  # noqa: E731
    batches = _data(4, (4, 1, 8, 8))
    _check_equal(_train(False, cnn, ADAM, batches), _train(True, cnn, ADAM, batches))


def test_inplace_ops_and_gradient_hooks_are_recorded():
    def extra(out):
        h = out * 1.0
        h.mul_(2.0)
        h.register_hook(lambda g: g * 0.5)
        return h
    batches = _data(5, (8, 16))

    def with_hook(compiled):
        gg.manual_seed(0)
        m = _mlp()()
        m[0].weight.register_hook(lambda g: g * 3.0)
        return m
    _check_equal(_train(False, lambda: with_hook(False), SGD, batches, extra=extra),
                 _train(True, lambda: with_hook(True), SGD, batches, extra=extra))


def test_train_eval_are_separate_specializations_and_inference():
    gg.manual_seed(0)
    model = _mlp(0.5)()
    f = gg.compile(model)
    x = _data(1, (8, 16))[0][0]
    with gg.no_grad():
        model.eval()
        ev = [f(x)._data.copy() for _ in range(4)]
        ref = model(x)._data
        model.train()
        gg.manual_seed(5)
        tr = [f(x)._data.copy() for _ in range(4)]
        gg.manual_seed(5)
        tr_eager = [model(x)._data.copy() for _ in range(4)]
    assert all(_same(e, ref) for e in ev)
    assert all(_same(a, b) for a, b in zip(tr, tr_eager))
    assert not _same(tr[2], tr[3])  # NOTE: a new dropout mask on every replay
    assert sum(len(v) for v in f.cache.values()) == 2


def test_module_with_grad_mode_refused():
    model = _mlp()()
    f = gg.compile(model)
    with pytest.raises(gg.CompileError, match="no_grad"):
        f(_data(1, (8, 16))[0][0])


def test_cache_by_shape_and_max_cache():
    calls = []

    def fn(x):
        calls.append(1)
        return (x * 2.0).sum()
    f = gg.compile(fn, max_cache=1)
    a, b = gg.ones(3), gg.ones(4)
    assert [f(a).item() for _ in range(3)] == [6.0] * 3
    assert len(calls) == 2
    assert [f(b).item() for _ in range(3)] == [8.0] * 3
    assert len(calls) == 4 and sum(len(v) for v in f.cache.values()) == 1  # the (3,) one was dropped
    f(a), f(a), f(a)
    assert len(calls) == 6


def test_host_read_raises_naming_the_line():
    def fn(x):
        y = x * 2.0
        if y.sum().item() > 0:  # the line named
            return y
        return -y
    f = gg.compile(fn)
    with pytest.raises(gg.CompileError, match=r"test_compile.py:\d+ in fn: if y.sum\(\).item\(\) > 0"):
        f(gg.ones(3))
    for read in (float, bool, lambda t: t.numpy(), lambda t: t.tolist()):
        g = gg.compile(lambda x, r=read: r((x * 1.0).sum()))
        with pytest.raises(gg.CompileError, match="reads a tensor's value on the host"):
            g(gg.ones(3))


def test_fallback_warns_once_and_runs_eagerly():
    calls = []

    def fn(x):
        calls.append(1)
        y = x * 2.0
        return y if float(y.sum()) > 0 else -y
    f = gg.compile(fn, fallback=True)
    with pytest.warns(RuntimeWarning, match="eagerly"):
        r = f(gg.ones(3))
    assert r.tolist() == [2.0, 2.0, 2.0]
    assert f(-gg.ones(3)).tolist() == [2.0, 2.0, 2.0]  # eager: the other branch
    assert len(calls) == 2


def test_changing_python_number_refused():
    k = [1.0]
    f = gg.compile(lambda x: x * k[0])
    f(gg.ones(2))
    k[0] = 2.0
    with pytest.raises(gg.CompileError, match="did not record the same step"):
        f(gg.ones(2))


def test_grad_set_to_none_inside_is_recorded_outside_refused():
    gg.manual_seed(0)
    m = nn.Linear(3, 2)

    def step(x):
        m.weight.grad = None  # recorded: replayed as an assignment
        m(x).sum().backward()
        return m.weight.grad * 1.0, m.bias.grad * 1.0
    f = gg.compile(step)
    x = gg.ones(1, 3)
    for i in range(4):  # the bias gradient accumulates, the weight's does not, as eager
        gw, gb = f(x)
        assert gw.tolist() == [[1.0] * 3] * 2 and gb.tolist() == [i + 1.0] * 2
    m.bias.grad = None  # outside the step: the replay cannot know
    with pytest.raises(gg.CompileError, match="was None when the step was recorded"):
        f(x)


def test_train_compile_matches_eager(tmp_path):
    import json  # noqa: PLC0415

    from gpugrad.__main__ import main  # noqa: PLC0415
    hist = []
    for i, extra in enumerate([[], ["--compile"]]):
        out = tmp_path / str(i)
        assert main(["train", "--epochs", "1", "--no-progress", "--out", str(out), *extra]) == 0
        hist.append(json.loads((out / "metrics.json").read_text())["history"])
    assert hist[0] == hist[1]


def test_comparisons_are_recorded_and_other_values_computed_outside_are_refused():
    """x > 0 is an array call outside any Primitive: it is recorded, so a replay recomputes the mask (the two
    recording calls see the same input here, so a baked-in mask would go unnoticed). A tensor made from an array
    computed outside the recorded calls (a host array here) is refused; with fallback=True the function runs eagerly
    and gives eager's numbers."""
    a, b = gg.tensor([1.0, -1.0, 1.0, -1.0]), gg.tensor([-1.0, 1.0, -1.0, 1.0])

    def run(wrap, mask):
        w = gg.nn.Parameter(gg.ones(4))
        opt = gg.optim.SGD([w], lr=0.1)

        def step(x):
            opt.zero_grad()
            y = gg.where(mask(x), x * w, w * 0.0).sum()
            y.backward()
            opt.step()
            return y
        f = wrap(step)
        return [float(f(x)) for x in (a, a, b, b, a)], w.detach().numpy().tolist()

    gt0, nan = (lambda x: x > 0), (lambda x: gg.from_numpy(np.array([True, False, False, True])) | (x > 0))
    assert run(gg.compile, gt0) == run(lambda f: f, gt0)
    with pytest.raises(gg.CompileError, match="computed outside the recorded ops"):
        run(gg.compile, nan)
    with pytest.warns(RuntimeWarning, match="computed outside the recorded ops"):
        assert run(lambda f: gg.compile(f, fallback=True), nan) == run(lambda f: f, nan)
