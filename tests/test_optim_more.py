"""gg.optim.Rprop and gg.optim.Adafactor (issue 11): step for step against torch 2.13 CPU (float64 and float32,
20 steps, several shapes and options), state_dict round trips, argument errors, low precision; and the issue's
datasets gg.data.ChainDataset / StackDataset (PyTorch semantics and errors)."""
import copy

import numpy as np
import pytest

import gpugrad as gg

SHAPES = ((5, 7), (3,), (2, 3, 4), (), (1, 6))
CASES = [("Rprop", {}), ("Rprop", dict(lr=0.1, maximize=True, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2))),
         ("Adafactor", {}), ("Adafactor", dict(lr=0.1, weight_decay=0.1, maximize=True, d=2.0, eps=(1e-3, 1e-2),
                                               beta2_decay=-0.5))]


def _grad(p, a, k):
    # NOTE: the gradient depends on the parameter, so that signs flip and the moments evolve as in training
    return a + np.sin(3 * p + k).astype(p.dtype)


def _run_gg(name, kw, dt, steps=20, split=None):
    rng = np.random.default_rng(0)
    ps = [gg.nn.Parameter(gg.tensor(rng.standard_normal(s).astype(dt))) for s in SHAPES]
    gs = [[rng.standard_normal(s).astype(dt) for s in SHAPES] for _ in range(steps)]
    opt = getattr(gg.optim, name)(ps, **kw)
    for k in range(steps):
        if k == split:  # a state_dict round trip through a fresh optimizer, mid-run
            sd = copy.deepcopy(opt.state_dict())
            opt = getattr(gg.optim, name)(ps, **kw)
            opt.load_state_dict(sd)
        for p, a in zip(ps, gs[k]):
            p.grad = gg.tensor(_grad(p.detach().numpy(), a, k))
        opt.step()
    return [p.detach().numpy() for p in ps], opt


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("name,kw", CASES)
def test_matches_torch(name, kw, dt):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    tp = [torch.tensor(rng.standard_normal(s).astype(dt), requires_grad=True) for s in SHAPES]
    gs = [[rng.standard_normal(s).astype(dt) for s in SHAPES] for _ in range(20)]
    opt = getattr(torch.optim, name)(tp, **kw)
    for k in range(20):
        for p, a in zip(tp, gs[k]):
            p.grad = torch.tensor(_grad(p.detach().numpy(), a, k))
        opt.step()
    ours, gopt = _run_gg(name, kw, dt)
    # Rprop is elementwise and exact; Adafactor's norms sum in a different order (a few ulps)
    tol = 0 if name == "Rprop" else (1e-13 if dt == np.float64 else 1e-6)
    for t, o in zip(tp, ours):
        scale = max(1.0, float(np.abs(o).max(initial=0)))
        np.testing.assert_allclose(o, t.detach().numpy(), rtol=0, atol=tol * scale)
    for t, g in zip(tp, [p for grp in gopt.param_groups for p in grp["params"]]):
        ts, gs_ = opt.state[t], gopt.state[g]
        assert set(ts) == set(gs_)
        for key in ts:
            if key != "step":
                assert gs_[key].shape == tuple(ts[key].shape) and gs_[key].dtype == dt
                np.testing.assert_allclose(gs_[key].numpy(), ts[key].numpy(), rtol=1e-5, atol=1e-12)
        assert int(ts["step"]) == gs_["step"]


@pytest.mark.parametrize("name,kw", CASES)
def test_state_dict_round_trip(name, kw):
    ref, _ = _run_gg(name, kw, np.float64)
    resumed, opt = _run_gg(name, kw, np.float64, split=9)
    for a, b in zip(ref, resumed):
        np.testing.assert_array_equal(a, b)
    st = opt.state_dict()["state"]
    if name == "Adafactor":
        assert set(st[0]) == {"step", "row_var", "col_var"} and tuple(st[0]["row_var"].shape) == (5, 1)
        assert tuple(st[2]["col_var"].shape) == (2, 1, 4) and set(st[1]) == {"step", "variance"}
    else:
        assert set(st[0]) == {"step", "prev", "step_size"}


def test_defaults_and_errors():
    p = [gg.nn.Parameter(gg.zeros(2))]
    r = gg.optim.Rprop(p)
    assert r.defaults == dict(lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), foreach=None, maximize=False,
                              differentiable=False, capturable=False)
    a = gg.optim.Adafactor(p)
    assert a.defaults == dict(lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, foreach=None,
                              maximize=False)
    for kw, msg in [(dict(lr=-1), "Invalid learning rate: -1"), (dict(etas=(1.5, 2)), "Invalid eta values: 1.5, 2")]:
        with pytest.raises(ValueError, match=msg):
            gg.optim.Rprop(p, **kw)
    for kw, msg in [(dict(lr=-1), "Learning rate should be >= 0 but is: -1"),
                    (dict(beta2_decay=0.1), "beta2_decay should be <= 0"), (dict(eps=(-1, 1e-3)), "epsilon1"),
                    (dict(eps=(None, -1)), "epsilon2"), (dict(d=0.5), "Clipping threshold d should be >= 1"),
                    (dict(weight_decay=-1), "weight_decay should be >= 0")]:
        with pytest.raises(ValueError, match=msg):
            gg.optim.Adafactor(p, **kw)
    with pytest.raises(TypeError):
        gg.optim.Adafactor(p, 1e-2, -0.8, (None, 1e-3), 1.0, 0.0, None)  # foreach is keyword-only
    with pytest.raises(NotImplementedError, match="capturable"):
        gg.optim.Rprop(p, capturable=True)


@pytest.mark.parametrize("name", ["Rprop", "Adafactor"])
def test_low_precision(name):
    p = gg.nn.Parameter(gg.ones(4, 3, dtype=gg.float16))
    p.grad = gg.ones(4, 3, dtype=gg.float16)
    with pytest.raises(NotImplementedError, match="master_weights=True"):
        getattr(gg.optim, name)([p]).step()
    opt = getattr(gg.optim, name)([p], master_weights=True)
    opt.step()
    assert p.dtype == gg.float16 and opt.state[p]["master_param"].dtype == np.float32
    assert np.all(p.detach().numpy().astype(np.float32) < 1)


def test_rprop_closed_form():
    # one element, gradient of constant sign: the step grows by etaplus each step, capped at step_sizes[1]
    p = gg.nn.Parameter(gg.tensor([0.0], dtype=gg.float64))
    opt = gg.optim.Rprop([p], lr=0.1, step_sizes=(1e-6, 0.2))
    for _ in range(6):  # the first step has no previous gradient: factor 1
        p.grad = gg.tensor([1.0], dtype=gg.float64)
        opt.step()
    np.testing.assert_allclose(p.item(), -(0.1 + 0.12 + 0.144 + 0.1728 + 0.2 + 0.2))


# -- gg.data.ChainDataset / StackDataset -----------------------------------------------------------------

class _Stream(gg.data.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


def test_chain_dataset():
    c = gg.data.ChainDataset([_Stream(2), _Stream(3)])
    assert list(c) == [0, 1, 0, 1, 2] and len(c) == 5
    s = _Stream(1) + _Stream(2)  # IterableDataset.__add__ chains, as PyTorch's
    assert isinstance(s, gg.data.ChainDataset) and list(s) == [0, 0, 1]
    with pytest.raises(AssertionError, match="ChainDataset only supports IterableDataset"):
        list(gg.data.ChainDataset([[1, 2]]))
    assert list(gg.data.DataLoader(c, batch_size=2)) and sum(len(b) for b in gg.data.DataLoader(c, batch_size=2)) == 5


def test_stack_dataset():
    x = gg.data.TensorDataset(gg.arange(4))
    t = gg.data.StackDataset(x, [10, 11, 12, 13])
    assert len(t) == 4 and t[1][1] == 11 and t[1][0][0].item() == 1
    d = gg.data.StackDataset(a=[1, 2], b=[3, 4])
    assert d[0] == {"a": 1, "b": 3} and d.__getitems__([1, 0]) == [{"a": 2, "b": 4}, {"a": 1, "b": 3}]
    assert gg.data.StackDataset([1, 2], [3, 4]).__getitems__([1]) == [(2, 4)]
    for args, kwargs, msg in [((), {}, "At least one dataset should be passed"),
                              (([1],), {"a": [1]}, "Supported either"), (([1], [1, 2]), {}, "Size mismatch")]:
        with pytest.raises(ValueError, match=msg):
            gg.data.StackDataset(*args, **kwargs)
    batch = next(iter(gg.data.DataLoader(d, batch_size=2)))
    assert batch["a"].tolist() == [1, 2]


def test_stack_dataset_matches_torch():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError) as ours:
        gg.data.StackDataset([1], b=[1])
    with pytest.raises(ValueError) as theirs:
        torch.utils.data.StackDataset([1], b=[1])
    assert str(ours.value) == str(theirs.value)


def test_adafactor_mixed_dtype_group_matches_torch():
    # PyTorch takes eps1=None from the group's first parameter (float32 here) also for the float64 one
    torch = pytest.importorskip("torch")
    shapes, dts = ((3,), (2, 2)), (np.float32, np.float64)
    tp = [torch.full(s, 1e-9, dtype=getattr(torch, np.dtype(d).name), requires_grad=True) for s, d in zip(shapes, dts)]
    gp = [gg.nn.Parameter(gg.tensor(np.full(s, 1e-9, d))) for s, d in zip(shapes, dts)]
    to, go = torch.optim.Adafactor(tp), gg.optim.Adafactor(gp)
    for k in range(3):
        for t, g, s, d in zip(tp, gp, shapes, dts):
            t.grad, g.grad = torch.tensor(np.full(s, 1e-9 * (k + 1), d)), gg.tensor(np.full(s, 1e-9 * (k + 1), d))
        to.step()
        go.step()
    for t, g in zip(tp, gp):
        np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-6)
