"""gg.nn.init: gains, fans, bounds and statistics of the initialisers; in place and seeded."""
import math

import numpy as np
import pytest
from conftest import to_np

import gpugrad as gg
from gpugrad import nn
from gpugrad.nn import init


def test_calculate_gain():
    assert init.calculate_gain("linear") == init.calculate_gain("conv2d") == init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="Unsupported"):
        init.calculate_gain("swish")


def test_fan_in_and_fan_out():
    assert init._calculate_fan_in_and_fan_out(gg.empty(7, 5)) == (5, 7)
    assert init._calculate_fan_in_and_fan_out(gg.empty(8, 3, 5, 2)) == (30, 80)
    with pytest.raises(ValueError, match="fewer than 2"):
        init._calculate_fan_in_and_fan_out(gg.empty(4))


def test_kaiming_uniform_bound_and_std(device):
    w = gg.empty(256, 64, 3, 3, device=device)
    data_obj = w._data
    assert init.kaiming_uniform_(w, a=0.1, nonlinearity="leaky_relu") is w
    assert w._data is data_obj  # in place
    bound = init.calculate_gain("leaky_relu", 0.1) * math.sqrt(3 / (64 * 9))
    v = to_np(w)
    assert np.abs(v).max() <= bound and np.abs(v).max() > 0.99 * bound
    assert v.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)
    assert abs(v.mean()) < 0.01 * bound
    init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu")
    assert np.abs(to_np(w)).max() <= math.sqrt(2) * math.sqrt(3 / (256 * 9))
    with pytest.raises(ValueError, match="Mode"):
        init.kaiming_uniform_(w, mode="fan_avg")


def test_kaiming_normal_and_xavier(device):
    w = gg.empty(300, 200, device=device)
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert to_np(w).std() == pytest.approx(math.sqrt(2 / 300), rel=0.01)
    init.xavier_uniform_(w, gain=2.0)
    a = 2.0 * math.sqrt(6 / 500)
    assert np.abs(to_np(w)).max() <= a and to_np(w).std() == pytest.approx(a / math.sqrt(3), rel=0.01)
    init.xavier_normal_(w, gain=0.5)
    assert to_np(w).std() == pytest.approx(0.5 * math.sqrt(2 / 500), rel=0.01)


def test_simple_fills(device):
    w = gg.empty(400, 250, device=device)
    init.uniform_(w, -2.0, 3.0)
    v = to_np(w)
    assert v.min() >= -2 and v.max() < 3 and v.mean() == pytest.approx(0.5, abs=0.02)
    init.normal_(w, mean=1.0, std=0.1)
    assert to_np(w).mean() == pytest.approx(1.0, abs=1e-3) and to_np(w).std() == pytest.approx(0.1, rel=0.01)
    init.trunc_normal_(w, std=1.0, a=-1.0, b=1.0)
    assert np.abs(to_np(w)).max() <= 1.0 and to_np(w).std() == pytest.approx(0.5399, rel=0.02)
    init.constant_(w, 0.3)
    np.testing.assert_allclose(to_np(w), 0.3, rtol=1e-6)
    init.zeros_(w)
    assert not to_np(w).any()
    init.ones_(w)
    assert (to_np(w) == 1).all()
    e = init.eye_(gg.empty(3, 4, device=device))
    np.testing.assert_array_equal(to_np(e), np.eye(3, 4))
    q = init.orthogonal_(gg.empty(4, 6, dtype="float64", device=device))
    np.testing.assert_allclose(to_np(q) @ to_np(q).T, np.eye(4), atol=1e-12)


def test_seeded_and_on_parameters_without_graph():
    p = nn.Parameter(gg.empty(10, 10))
    gg.manual_seed(3)
    init.kaiming_normal_(p)
    first = to_np(p.detach()).copy()
    gg.manual_seed(3)
    init.kaiming_normal_(p)
    np.testing.assert_array_equal(to_np(p.detach()), first)
    assert p.is_leaf and p.requires_grad and p.grad is None
    gg.manual_seed(3)
    a = nn.Linear(5, 5)
    gg.manual_seed(3)
    b = nn.Linear(5, 5)
    np.testing.assert_array_equal(to_np(a.weight.detach()), to_np(b.weight.detach()))
