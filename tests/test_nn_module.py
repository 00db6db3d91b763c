"""gg.nn.Module / Parameter: registration, traversal, modes, in-place moves, state_dict, hooks, repr."""
import copy
from collections import OrderedDict

import numpy as np
import pytest
from conftest import to_np

import gpugrad as gg
from gpugrad import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(3, 2)
        self.scale = nn.Parameter(gg.ones(1))
        self.register_buffer("steps", gg.zeros((), dtype="int64"))
        self.register_buffer("cache", gg.zeros(2), persistent=False)
        self.note = "plain attribute"

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale


# ------------------------------------------------------------------------------------------ Parameter
def test_parameter_basics():
    p = nn.Parameter(gg.tensor([1.0, 2.0]))
    assert isinstance(p, gg.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.]")
    t = gg.zeros(3)
    assert nn.Parameter(t)._data is t._data  # shares, no copy
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q._data is not p._data and q.requires_grad
    assert type(p * 2) is gg.Tensor


# ---------------------------------------------------------------------------------------- registration
def test_registration_and_traversal():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in net.named_parameters(prefix="model")][1] == "model.fc1.weight"
    assert [n for n, _ in net.named_buffers()] == ["steps", "cache"]
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "fc2"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "act", "fc2"]
    assert next(net.children()) is net.fc1 and len(list(net.modules())) == 4
    assert net.get_submodule("fc2") is net.fc2 and net.get_parameter("fc1.bias") is net.fc1.bias
    assert net.note == "plain attribute" and "note" not in net._parameters
    # reassigning an attribute moves it between registries
    net.act = nn.Parameter(gg.zeros(2))
    assert "act" not in net._modules and "act" in net._parameters
    del net.act
    assert not hasattr(net, "act")
    with pytest.raises(TypeError, match="parameter"):
        net.scale = gg.ones(1)  # a plain Tensor cannot replace a Parameter
    net.scale = None
    assert "scale" not in dict(net.named_parameters())
    with pytest.raises(AttributeError, match="no attribute"):
        net.missing  # noqa: B018
    with pytest.raises(KeyError):
        net.register_buffer("fc1", gg.zeros(1))
    net.extra = nn.Buffer(gg.ones(2), persistent=False)
    assert "extra" in dict(net.named_buffers()) and "extra" not in net.state_dict()
    assert type(net.extra) is gg.Tensor


def test_no_duplicates_for_shared_parameters_and_modules():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(seq.parameters())) == 2
    tied = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    tied[1].weight = tied[0].weight
    assert [n for n, _ in tied.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    assert len(list(seq.modules())) == 3  # Sequential, Linear (once), ReLU


def test_init_must_be_called_first():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(gg.zeros(1))
    with pytest.raises(AttributeError, match="__init__"):
        Bad()
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


# -------------------------------------------------------------------------------------- modes and moves
def test_train_eval_requires_grad_zero_grad_apply():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.BatchNorm1d(2)))
    assert net.training and all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    assert net[2][0].training
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    net.requires_grad_()
    net(gg.randn(4, 2)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(float(abs(p.grad).sum().item()) == 0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "Dropout", "BatchNorm1d", "Sequential", "Sequential"]


def test_to_dtype_in_place_keeps_parameter_identity(device):
    net = Net()
    params = list(net.parameters())
    net(gg.randn(2, 4)).sum().backward()
    assert net.to(device=device, dtype=gg.float64) is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == gg.float64 and p.grad.dtype == gg.float64 and p.device == device for p in params)
    assert net.steps.dtype == gg.int64 and net.cache.dtype == gg.float64  # integer buffers keep their dtype
    net.float()
    assert net.fc1.weight.dtype == gg.float32
    net.double().cpu()
    assert net.fc2.bias.dtype == gg.float64 and str(net.fc2.bias.device) == "cpu"
    with pytest.raises(TypeError, match="floating"):
        net.to(gg.int32)


# ------------------------------------------------------------------------------------------ state dict
def test_state_dict_round_trip(tmp_path):
    a, b = Net(), Net()
    a.steps._data[...] = 5
    sd = a.state_dict()
    assert isinstance(sd, OrderedDict)
    assert list(sd) == ["scale", "steps", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]  # 'cache' not persistent
    assert all(not v.requires_grad for v in sd.values())
    assert sd["fc1.weight"]._data is a.fc1.weight._data  # detached, shared
    w_before = b.fc1.weight
    res = b.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == [] and "All keys matched" in repr(res)
    assert b.fc1.weight is w_before  # loaded in place
    for k in sd:
        np.testing.assert_array_equal(to_np(b.state_dict()[k]), to_np(sd[k]))
    x = gg.randn(3, 4)
    np.testing.assert_array_equal(to_np(a(x).detach()), to_np(b(x).detach()))
    if hasattr(gg, "save"):
        gg.save(a.state_dict(), tmp_path / "ckpt.gg")
        c = Net()
        c.load_state_dict(gg.load(tmp_path / "ckpt.gg"))
        np.testing.assert_array_equal(to_np(c(x).detach()), to_np(a(x).detach()))
    # numpy arrays and other dtypes are accepted and cast to the parameter's dtype
    d = Net()
    d.load_state_dict({k: to_np(v).astype(np.float64) if v.dtype.kind == "f" else to_np(v) for k, v in sd.items()})
    assert d.fc1.weight.dtype == gg.float32
    np.testing.assert_allclose(to_np(d.fc1.weight.detach()), to_np(sd["fc1.weight"]))


def test_load_state_dict_errors_change_nothing():
    net = Net()
    before = {k: to_np(v).copy() for k, v in net.state_dict().items()}
    good = {k: v.detach() + 1 for k, v in Net().state_dict().items()}
    bad = dict(good)
    del bad["fc2.bias"]
    bad["extra.weight"] = gg.zeros(1)
    bad["fc1.weight"] = gg.zeros(5, 4)
    with pytest.raises(RuntimeError) as e:
        net.load_state_dict(bad)
    msg = str(e.value)
    assert 'Missing key(s) in state_dict: "fc2.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in msg
    assert "size mismatch for fc1.weight: copying a param with shape (5, 4) from checkpoint, " \
           "the shape in current model is (3, 4)" in msg
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(to_np(v), before[k])  # nothing half-loaded
    # strict=False tolerates missing/unexpected keys but never a shape mismatch
    with pytest.raises(RuntimeError, match="size mismatch"):
        net.load_state_dict(bad, strict=False)
    np.testing.assert_array_equal(to_np(net.fc1.bias.detach()), before["fc1.bias"])
    del bad["fc1.weight"]
    res = net.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["fc1.weight", "fc2.bias"] and res.unexpected_keys == ["extra.weight"]
    np.testing.assert_array_equal(to_np(net.fc1.bias.detach()), to_np(good["fc1.bias"]))
    np.testing.assert_array_equal(to_np(net.fc1.weight.detach()), before["fc1.weight"])


# ------------------------------------------------------------------------------------------- hooks
def test_forward_hooks_capture_activation_and_gradient():
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    acts, grads = {}, {}

    def fwd(module, args, out):
        acts["out"] = out
        out.register_hook(lambda g: grads.__setitem__("out", g))
    h = net[1].register_forward_hook(fwd)
    x = gg.randn(2, 3)
    net(x).sum().backward()
    a = to_np(acts["out"].detach())
    np.testing.assert_allclose(a, np.tanh(to_np(net[0](x).detach())), rtol=1e-6)
    # dL/d(tanh output) = W2 for each row, since L = sum(out @ W2.T + b2)
    np.testing.assert_allclose(to_np(grads["out"]), np.repeat(to_np(net[2].weight.detach()), 2, 0), rtol=1e-6)
    h.remove()
    acts.clear()
    net(x)
    assert acts == {}


def test_hooks_modify_inputs_and_outputs_and_order():
    lin = nn.Linear(2, 2)
    order = []
    h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    h2 = lin.register_forward_hook(lambda m, args, out: order.append("a") or out + 1)
    lin.register_forward_hook(lambda m, args, out: order.append("b"))
    lin.register_forward_hook(lambda m, args, out: order.append("first"), prepend=True)
    y = lin(gg.ones(1, 2))
    np.testing.assert_allclose(to_np(y.detach()), to_np(lin.bias.detach())[None] + 1, rtol=1e-6)
    assert order == ["first", "a", "b"]
    with h1, h2:
        pass  # handles are context managers that remove their hook on exit
    y = lin(gg.ones(1, 2))
    expect = to_np(lin.weight.detach()).sum(1) + to_np(lin.bias.detach())
    np.testing.assert_allclose(to_np(y.detach())[0], expect, rtol=1e-6)
    seen = []
    lin.register_forward_pre_hook(lambda m, args, kwargs: seen.append(sorted(kwargs)), with_kwargs=True)
    lin(input=gg.ones(1, 2))
    assert seen == [["input"]]


# --------------------------------------------------------------------------------------- containers
def test_sequential_module_list_dict():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    seq.append(nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and isinstance(seq[1:], nn.Sequential)
    assert len(seq[1:]) == 2 and [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    assert seq(gg.randn(4, 2)).shape == (4, 1)
    del seq[1]
    assert list(seq._modules) == ["0", "1"]
    named = nn.Sequential(OrderedDict([("enc", nn.Linear(2, 2)), ("dec", nn.Linear(2, 2))]))
    assert [n for n, _ in named.named_parameters()][:2] == ["enc.weight", "enc.bias"]
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    ml += [nn.Identity()]
    assert len(ml) == 4 and len(list(ml.parameters())) == 6 and isinstance(ml[-1], nn.Identity)
    del ml[0]
    assert list(ml._modules) == ["0", "1", "2"]
    md = nn.ModuleDict({"a": nn.Linear(1, 2), "b": nn.ReLU()})
    md["c"] = nn.Tanh()
    assert list(md) == ["a", "b", "c"] and "b" in md and len(md) == 3
    assert [n for n, _ in md.named_parameters()] == ["a.weight", "a.bias"]
    pl = nn.ParameterList([gg.zeros(2), nn.Parameter(gg.ones(1))])
    assert all(isinstance(p, nn.Parameter) for p in pl) and len(list(pl.parameters())) == 2


# -------------------------------------------------------------------------------------------- repr
def test_nested_repr():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU(), nn.Flatten()), nn.Linear(4, 2))
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))\n"
        "  (1): Sequential(\n"
        "    (0): ReLU()\n"
        "    (1): Flatten(start_dim=1, end_dim=-1)\n"
        "  )\n"
        "  (2): Linear(in_features=4, out_features=2, bias=True)\n"
        ")")
    assert repr(Net()).startswith("Net(\n  (fc1): Linear(in_features=4, out_features=3, bias=True)")


def test_deepcopy_module():
    a = Net()
    b = copy.deepcopy(a)
    assert b.fc1.weight is not a.fc1.weight and isinstance(b.fc1.weight, nn.Parameter)
    b.fc1.weight._data[...] = 0
    assert float(abs(a.fc1.weight).sum().item()) > 0
