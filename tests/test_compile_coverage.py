"""gg.compile (issue 13): which ops a step may use. Each case runs a training step eagerly and compiled over inputs
that change every call (NaNs included): losses and the parameter after 6 steps agree bit for bit. Steps whose
shapes depend on values are refused at record time naming the user's line, or run eagerly with fallback=True."""
import re

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import nn, optim


def _run(body, compiled, n=6, fallback=False):
    gg.manual_seed(0)
    w = nn.Parameter(gg.tensor(np.linspace(-1, 1, 8).astype(np.float32)))
    opt = optim.SGD([w], lr=0.1)
    calls = []

    def step(x):
        calls.append(1)
        opt.zero_grad()
        loss = body(x, w)
        loss.backward()
        opt.step()
        return loss
    f = gg.compile(step, fallback=fallback) if compiled else step
    rs = np.random.RandomState(1)
    out = []
    for i in range(n):
        xa = rs.randn(8).astype(np.float32)
        if i % 3 == 0:
            xa[i % 8] = np.nan
        out.append(f(gg.tensor(xa))._data.copy())
    return out + [w._data.copy()], len(calls)


def _nn(x):
    return x.nan_to_num()


def _inplace(h, *ops):
    for op in ops:
        op(h)
    return h


def _no_grad_scale(x, w):
    with gg.no_grad():
        s = (w * _nn(x)).abs().sum() + 1
    return (w * _nn(x) / s).sum()


def _hooked(x, w):
    h = w * _nn(x)
    h.register_hook(lambda g: g * 2.0)
    return (h * h).sum()


def _w2(w):
    return w.reshape(2, 4)


CASES = {
    "isnan": lambda x, w: gg.where(x.isnan(), w * 0.0, x * w).sum(),
    "isinf": lambda x, w: gg.where((_nn(x) * 1e38 * 10).isinf(), w, _nn(x) * w).sum(),
    "isfinite": lambda x, w: gg.where(x.isfinite(), x * w, w * 0.0).sum(),
    "logical_and": lambda x, w: gg.where(gg.logical_and(x > 0, x < 1), _nn(x) * w, w).sum(),
    "logical_or": lambda x, w: gg.where(x.logical_or(x < -1), _nn(x) * w, w).sum(),
    "logical_not": lambda x, w: gg.where(gg.logical_not(x > 0), _nn(x) * w, w).sum(),
    "and_or_invert": lambda x, w: gg.where(~((x > 0) & (x < 1)) | (x > 1.5), _nn(x) * w, w).sum(),
    "any_all": lambda x, w: (w * (x.isnan().any().float() + (x > -3).all().float())).sum(),
    "argmax": lambda x, w: (w * _nn(x).argmax().float()).sum(),
    "argmax_dim_keepdim": lambda x, w: (_w2(w) * _w2(_nn(x)).argmax(1, keepdim=True).float()).sum(),
    "argmin_dim": lambda x, w: (_w2(w) * _w2(_nn(x)).argmin(dim=1).float().unsqueeze(1)).sum(),
    "max_dim_values_indices": lambda x, w: ((_w2(w) * _w2(_nn(x))).max(1)[0].sum()
                                            + (_w2(w) * _w2(_nn(x)).max(0).indices.float()).sum()),
    "accuracy_int_sum_and_constants": lambda x, w: ((w * _nn(x)).sum() / (x > 0).sum().clamp(min=1)
                                                    + (_w2(_nn(x)).argmax(1) == gg.tensor([0, 1])).float().mean()),
    "one_hot_long": lambda x, w: (w * F.one_hot((_nn(x).abs() * 3).long().clamp(max=3), 4).float().sum(1)).sum(),
    "where_tensor_mask": lambda x, w: gg.where(_nn(x) > w, _nn(x), w).sum(),
    "cmp_tensors_both_sides": lambda x, w: gg.where(_nn(x) <= w * 0.5, w, w * 2).sum(),
    "masked_fill": lambda x, w: (w * x).masked_fill(x.isnan(), 0.0).sum(),
    "clamp_tensor_bounds": lambda x, w: (w * 2).clamp(min=_nn(x) * 0.5, max=_nn(x).abs() + 0.5).sum(),
    "inplace_mul_add": lambda x, w: _inplace(w * 1.0, lambda h: h.mul_(_nn(x)), lambda h: h.add_(1.0)).sum(),
    "inplace_clamp": lambda x, w: _inplace(w * _nn(x), lambda h: h.clamp_(min=-0.3, max=0.4)).sum(),
    "inplace_masked_fill": lambda x, w: _inplace(w * x, lambda h: h.masked_fill_(x.isnan(), 0.0)).sum(),
    "setitem_mask": lambda x, w: _inplace(w * x, lambda h: h.__setitem__(x.isnan(), 0.0)).sum(),
    "setitem_slice": lambda x, w: _inplace(w * 1.0, lambda h: h.__setitem__(slice(0, 2), _nn(x)[:2])).sum(),
    "flip_contiguous_repeat": lambda x, w: (w * _nn(x).flip(0) + _w2(w).t().contiguous().view(8)).sum()
                                           + (w.repeat(2) * _nn(x).repeat(2)).sum(),
    "zeros_buffer_written": lambda x, w: (w * _inplace(gg.zeros(8), lambda b: b.__setitem__(0, 1.0),
                                                       lambda b: b.add_(_nn(x)))).sum(),
    "randn_noise": lambda x, w: (w * (_nn(x) + 0.1 * gg.randn(8))).sum(),
    "no_grad_region": _no_grad_scale,
    "detach_first_use": lambda x, w: (w.detach() * _nn(x) * w).sum(),
    "data_first_use": lambda x, w: (w.data * _nn(x) * w).sum(),
    "detach_scale": lambda x, w: (w * _nn(x) / (w * _nn(x)).abs().max().detach()).sum(),
    "gradient_hook": _hooked,
}


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_equals_eager(name):
    eager, _ = _run(CASES[name], False)
    comp, calls = _run(CASES[name], True)
    assert calls == 2  # recorded twice, replayed 4 times
    assert all(a.dtype == b.dtype and a.tobytes() == b.tobytes() for a, b in zip(eager, comp))


@pytest.mark.parametrize("kind", ["assign", "sub_", "no_grad"])
def test_hand_written_update_and_grad_set_to_none(kind):
    def run(compiled):
        gg.manual_seed(0)
        m = nn.Linear(4, 3)

        def step(x, y):
            for p in m.parameters():
                p.grad = None
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            with gg.no_grad():
                for p in m.parameters():
                    if kind == "assign":
                        p.data = p.data - 0.1 * p.grad.data
                    elif kind == "sub_":
                        p.data.sub_(0.1 * p.grad.data)
                    else:
                        p -= 0.1 * p.grad
            return loss
        f = gg.compile(step) if compiled else step
        rs = np.random.RandomState(0)
        ls = [f(gg.tensor(rs.randn(5, 4).astype(np.float32)), gg.tensor(rs.randint(0, 3, 5)))._data.copy()
              for _ in range(6)]
        return ls + [p._data.copy() for p in m.parameters()]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(run(False), run(True)))


DYNAMIC = {  # the line that builds a value-shaped result, and the words of the refusal
    "bool_index": (lambda x, w: w[_nn(x) > 0].sum(), "boolean mask"),
    "masked_select": (lambda x, w: w.masked_select(_nn(x) > 0).sum(), "boolean mask"),
    "nonzero": (lambda x, w: w[(_nn(x) > 0).nonzero()[:, 0]].sum(), r"nonzero\(\)"),
    "where_one_arg": (lambda x, w: w[gg.where(_nn(x) > 0)[0]].sum(), r"nonzero\(\)"),
    "unique": (lambda x, w: (w[:3] * gg.unique((_nn(x) > 0).long()).float().sum()).sum(), r"unique\(\)"),
    "bincount": (lambda x, w: (w[:2] * gg.bincount((_nn(x) > 0).long()).float().sum()).sum(), r"bincount\(\)"),
    "one_hot_inferred_classes": (lambda x, w: (w[:2] * F.one_hot((_nn(x) > 0).long()).float().sum()).sum(),
                                 r"one_hot\(\)"),
}


@pytest.mark.parametrize("name", list(DYNAMIC))
def test_value_dependent_shapes_refused_at_record_time(name):
    body, words = DYNAMIC[name]
    line = re.escape(f'"{name}": (lambda x, w:')
    with pytest.raises(gg.CompileError, match=rf"{words}.*shape that depends on .*test_compile_coverage.py:\d+ in "
                                              rf"<lambda>: +{line}"):
        _run(body, True)
    eager, _ = _run(body, False)
    with pytest.warns(RuntimeWarning, match="eagerly"):
        comp, calls = _run(body, True, fallback=True)
    assert calls == 6 and all(a.tobytes() == b.tobytes() for a, b in zip(eager, comp))
