"""gg.explain.GradientMonitor: recorded norms are the right numbers; exploding and vanishing networks are flagged."""
import json
import math
import warnings

import numpy as np
import pytest
from conftest import to_np

import gpugrad as gg
from gpugrad import nn
from gpugrad.explain import GradientMonitor, GradientWarning


def _chain(device, n, width, scale, act=None, seed=0):
    """n Linear layers (width x width), weights = scale * orthogonal, zero biases, optional activation."""
    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(n):
        lin = nn.Linear(width, width)
        q, _ = np.linalg.qr(rng.standard_normal((width, width)))
        with gg.no_grad():
            lin.weight.copy_(scale * q)
            lin.bias.zero_()
        layers += [lin] + ([act()] if act else [])
    return nn.Sequential(*layers).to(device, "float64")


def _backward(model, x):
    out = model(x)
    (out * out).sum().backward()


def test_recorded_norms_are_the_numbers(device):
    gg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).to(device, "float64")
    opt = gg.optim.SGD(model.parameters(), lr=0.1)
    x = gg.tensor(np.random.randn(5, 3), device=device)
    mon = GradientMonitor(model)
    for step in range(3):
        opt.zero_grad()
        before = {n: to_np(p.detach()).copy() for n, p in model.named_parameters()}
        _backward(model, x)
        grads = {n: to_np(p.grad).copy() for n, p in model.named_parameters()}
        opt.step()
        rec = mon.step()
        for layer in ("0", "2"):
            names = [f"{layer}.weight", f"{layer}.bias"]
            gn = math.sqrt(sum((grads[n] ** 2).sum() for n in names))
            pn = math.sqrt(sum((to_np(model.get_parameter(n).detach()) ** 2).sum() for n in names))
            # plain SGD: the update is lr * grad, relative to the parameters before it
            ur = 0.1 * gn / math.sqrt(sum((before[n] ** 2).sum() for n in names))
            assert rec[layer]["grad_norm"] == pytest.approx(gn, rel=1e-12)
            assert rec[layer]["param_norm"] == pytest.approx(pn, rel=1e-12)
            assert rec[layer]["update_ratio"] == pytest.approx(ur, rel=1e-9)
            assert mon.grad_norm[layer][step] == rec[layer]["grad_norm"]
    assert mon.steps == [0, 1, 2] and list(mon.layers) == ["0", "2"] and not mon.events
    mon.remove()


def test_several_backward_passes_per_step_are_summed(device):
    model = nn.Linear(3, 2).to(device, "float64")
    x = gg.tensor(np.random.randn(4, 3), device=device)
    mon = GradientMonitor(model, track_updates=False)
    _backward(model, x)
    _backward(model, 2 * x)
    rec = mon.step()
    total = math.sqrt(sum((to_np(p.grad) ** 2).sum() for p in model.parameters()))
    assert rec["(model)"]["grad_norm"] == pytest.approx(total, rel=1e-12)
    assert rec["(model)"]["update_ratio"] is None
    # in-place changes to .grad after backward (zeroing, clipping) do not alter what was recorded
    _backward(model, x)
    for p in model.parameters():
        p.grad._data[...] = 0
    assert mon.step()["(model)"]["grad_norm"] > 0


def test_exploding_network_is_flagged(device):
    # 6 layers with weights 10 * orthogonal: the gradient reaching layer 0 is ~10^5 times the output's
    model = _chain(device, 6, 4, 10.0)
    x = gg.tensor(np.random.randn(2, 4), device=device)
    mon = GradientMonitor(model, explode_threshold=1e3)
    for step in range(2):
        model.zero_grad()
        _backward(model, x)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mon.step()
        msgs = [str(w.message) for w in caught if issubclass(w.category, GradientWarning)]
        assert any(m.startswith(f"exploding gradient in layer '0' at step {step}: gradient norm") for m in msgs)
    flagged = {(e["layer"], e["step"]) for e in mon.flagged("exploding")}
    assert ("0", 0) in flagged and ("0", 1) in flagged
    assert not mon.flagged("vanishing")
    assert all(e["grad_norm"] > 1e3 for e in mon.events)
    assert mon.grad_norm["0"][0] > 1e8  # the flag is real: five 10x layers above layer 0, squared loss


def test_non_finite_gradients_are_flagged_as_exploding(device):
    model = _chain(device, 2, 3, 1.0)
    with gg.no_grad():
        model[1].weight._data[0, 0] = np.inf
    mon = GradientMonitor(model, warn=False)
    _backward(model, gg.tensor(np.ones((1, 3)), device=device))
    mon.step()
    ev = mon.flagged("exploding")
    assert ev and all("not finite" in e["message"] for e in ev)
    # strict JSON: non-finite numbers become strings and come back as floats
    text = mon.to_json()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    h = GradientMonitor.load_history(text)
    assert any(isinstance(v, float) and not math.isfinite(v) for v in h["grad_norm"]["0"] + h["grad_norm"]["1"])


def test_vanishing_network_is_flagged(device):
    # 8 sigmoid layers with weights 0.05 * orthogonal: each layer scales the gradient by <= 0.25 * 0.05
    model = _chain(device, 8, 4, 0.05, act=nn.Sigmoid)
    x = gg.tensor(np.random.randn(3, 4), device=device)
    mon = GradientMonitor(model, vanish_threshold=1e-9)
    _backward(model, x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mon.step()
    assert any(str(w.message).startswith("vanishing gradient in layer '0' at step 0") for w in caught)
    van = {e["layer"] for e in mon.flagged("vanishing")}
    assert "0" in van and "14" not in van  # the first layer vanishes, the last one does not
    assert mon.grad_norm["0"][0] < 1e-9 < mon.grad_norm["14"][0]
    assert not mon.flagged("exploding")


def test_healthy_network_is_not_flagged_and_history_roundtrips(device, tmp_path):
    gg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).to(device)
    opt = gg.optim.Adam(model.parameters(), lr=1e-2)
    x = gg.tensor(np.random.randn(16, 4).astype(np.float32), device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientWarning)
        with GradientMonitor(model, every=2) as mon:
            for _ in range(5):
                opt.zero_grad()
                _backward(model, x)
                opt.step()
                mon.step()
    assert mon.steps == [0, 2, 4] and not mon.events
    path = tmp_path / "grads.json"
    mon.to_json(path)
    h = GradientMonitor.load_history(path)
    assert h["steps"] == [0, 2, 4] and h["layers"] == ["0", "2"]
    assert h["grad_norm"]["0"] == pytest.approx(mon.grad_norm["0"])
    assert h["params"]["2"] == ["2.weight", "2.bias"]
    # after the context manager the hooks are gone: further backward passes are not recorded
    _backward(model, x)
    assert mon._pending == {}


def test_autograd_grad_calls_are_not_recorded(device):
    from gpugrad import explain as E
    model = nn.Sequential(nn.Linear(3, 2)).to(device, "float64")
    mon = GradientMonitor(model)
    E.saliency(model, gg.tensor(np.random.randn(2, 3), device=device), 0)
    rec = mon.step()
    assert rec["0"]["grad_norm"] is None and not mon.events


def test_gradient_norm_plot(tmp_path):
    pytest.importorskip("matplotlib")
    model = _chain("cpu", 3, 3, 10.0)
    mon = GradientMonitor(model, explode_threshold=50.0, warn=False)
    for _ in range(4):
        model.zero_grad()
        _backward(model, gg.ones(2, 3, dtype="float64"))
        mon.step()
    assert mon.events
    p = mon.plot(tmp_path / "g.png")
    with open(p, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
