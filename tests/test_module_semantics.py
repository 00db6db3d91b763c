"""nn.Module / container semantics that must equal PyTorch 2.13's (the expected values are torch's literal outputs,
checked by running torch; no torch needed here)."""
from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn


def names(m):
    return [k for k, _ in m.named_children()]


def types(m):
    return [type(c).__name__ for c in m]


# -- order kept on re-assignment --------------------------------------------------------------------------
def test_setitem_keeps_order():
    s = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    s[0] = nn.Linear(2, 2)
    assert types(s) == ["Linear", "ReLU", "Linear"]
    assert list(s.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    ml = nn.ModuleList([nn.ReLU(), nn.GELU(), nn.Tanh()])
    ml[0] = nn.Identity()
    ml[-1] = nn.ELU()
    assert types(ml) == ["Identity", "GELU", "ELU"] and names(ml) == ["0", "1", "2"]


def test_reassign_keeps_registry_position():
    lin = nn.Linear(2, 1)
    lin.weight = nn.Parameter(gg.ones(1, 2))
    lin.register_buffer("b1", gg.ones(1))
    lin.register_buffer("b2", gg.ones(1))
    lin.b1 = gg.zeros(1)
    lin.b2 = nn.Buffer(gg.zeros(1), persistent=False)
    assert [k for k, _ in lin.named_parameters()] == ["weight", "bias"]
    assert list(lin.state_dict()) == ["weight", "bias", "b1"]
    assert list(lin._buffers) == ["b1", "b2"]
    s = nn.Module()
    s.a, s.b = nn.ReLU(), nn.Tanh()
    s.a = nn.ELU()
    assert names(s) == ["a", "b"]


# -- traversal, train ----------------------------------------------------------------------------------------
def test_named_modules_memo_skips_subtree():
    n = nn.Module()
    n.a = nn.Linear(1, 1)
    n.c = nn.Sequential(nn.Linear(1, 1))
    assert [k for k, _ in n.named_modules(memo={n.c})] == ["", "a"]
    assert [k for k, _ in n.named_modules(memo={n.c}, remove_duplicate=False)] == ["", "a"]
    memo = set()
    assert [k for k, _ in n.named_modules(memo=memo, prefix="z")] == ["z", "z.a", "z.c", "z.c.0"]
    assert len(memo) == 4


def test_train_nonbool():
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        nn.Linear(1, 1).train("yes")


# -- forward hooks: always_call -----------------------------------------------------------------------------
class Boom(nn.Module):
    def forward(self, x, **kw):
        raise ValueError("boom")


def test_forward_hook_always_call():
    calls = []
    mod = Boom()
    mod.register_forward_hook(lambda m, a, o: calls.append(("always", len(a), o)), always_call=True)
    mod.register_forward_hook(lambda m, a, k, o: calls.append(("kw", k, o)), always_call=True, with_kwargs=True)
    mod.register_forward_hook(lambda m, a, o: calls.append("normal"))
    with pytest.raises(ValueError, match="boom"):
        mod(gg.ones(1), z=1)
    assert calls == [("always", 1, None), ("kw", {"z": 1}, None)]


def test_forward_hook_always_call_errors():
    mod = Boom()

    def bad(m, a, o):
        raise KeyError("hookerr")
    mod.register_forward_hook(bad, always_call=True)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="boom"):
            mod(gg.ones(1))
    assert [str(x.message) for x in w] == ["module forward hook with ``always_call=True`` raised an exception that "
                                           "was silenced as another error was raised in forward: 'hookerr'"]
    # a normal hook raising after forward: the always-call hooks not run yet get the output
    seen = []
    mod = nn.Identity()
    mod.register_forward_hook(lambda m, a, o: 1 / 0)
    mod.register_forward_hook(lambda m, a, o: seen.append(o.tolist()), always_call=True)
    with pytest.raises(ZeroDivisionError):
        mod(gg.ones(1))
    assert seen == [[1.0]]
    # a pre hook raising: args, output None
    mod = nn.Identity()
    mod.register_forward_pre_hook(lambda m, a: 1 / 0)
    h = mod.register_forward_hook(lambda m, a, o: seen.append((len(a), o)), always_call=True)
    with pytest.raises(ZeroDivisionError):
        mod(gg.ones(1))
    assert seen[-1] == (1, None)
    h.remove()
    assert not mod._forward_hooks_always_called


# -- full backward hooks ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["nonreq", "unused"])
def test_full_backward_hook_zero_grad_input(case):
    calls = []

    class M(nn.Module):
        def forward(self, a, k, b):
            return a * 2 * k if case == "unused" else a * b * k

    mod = M()
    mod.register_full_backward_hook(lambda m, gi, go: calls.append([None if g is None else g.tolist() for g in gi]))
    a = gg.tensor([1., 2.], requires_grad=True)
    b = gg.tensor([3., 4.], requires_grad=case == "unused")
    mod(a, 1.0, b).sum().backward()
    want = [[2.0, 2.0], None, [0.0, 0.0]] if case == "unused" else [[3.0, 4.0], None, [0.0, 0.0]]
    assert calls == [want]
    assert (b.grad is None) == (case == "nonreq")
    if case == "unused":
        assert b.grad.tolist() == [0.0, 0.0]


def test_register_backward_hook_refused():
    with pytest.raises(NotImplementedError, match="register_full_backward_hook"):
        nn.Linear(1, 1).register_backward_hook(lambda *a: None)


# -- containers -------------------------------------------------------------------------------------------------
def test_sequential_pop_and_delete_renumber():
    s = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 1))
    assert type(s.pop(1)).__name__ == "ReLU" and names(s) == ["0", "1"]
    s = nn.Sequential(OrderedDict(a=nn.ReLU(), b=nn.Tanh(), c=nn.ELU()))
    assert type(s.pop(1)).__name__ == "Tanh" and names(s) == ["0", "1"]
    with pytest.raises(IndexError):
        s.pop(5)
    s = nn.Sequential(OrderedDict(a=nn.ReLU(), b=nn.Tanh(), c=nn.ELU()))
    del s[0:2]
    assert names(s) == ["0"]


def test_sequential_add_mul():
    s = nn.Sequential(OrderedDict(a=nn.ReLU(), b=nn.Tanh()))
    for r in (s + s, s * 2, 2 * s):
        assert type(r) is nn.Sequential and list(r._modules) == ["0", "1", "2", "3"] and r[2] is s[0]
    with pytest.raises(ValueError, match="Non-positive multiplication factor 0 for"):
        s * 0
    with pytest.raises(TypeError, match="unsupported operand type"):
        s * 1.5
    with pytest.raises(ValueError, match="add operator supports only objects of Sequential class, but "
                                         "<class 'list'> is given."):
        s + [nn.ReLU()]
    s3 = nn.Sequential(OrderedDict(a=nn.ReLU()))
    s0 = s3
    s3 += nn.Sequential(OrderedDict(b=nn.Tanh()))
    assert s3 is s0 and names(s3) == ["a", "1"]
    s2 = nn.Sequential(nn.ReLU())
    s2 *= 3
    assert list(s2._modules) == ["0", "1", "2"] and s2[0] is s2[2]


def test_modulelist_pop_add():
    ml = nn.ModuleList([nn.ReLU(), nn.Tanh(), nn.ELU()])
    assert type(ml.pop(-1)).__name__ == "ELU" and names(ml) == ["0", "1"]
    with pytest.raises(IndexError):
        ml.pop(7)
    assert names(ml + [nn.ReLU()]) == ["0", "1", "2"]
    ml += (nn.GELU(),)
    assert types(ml) == ["ReLU", "Tanh", "GELU"]
    q = ml.pop(slice(0, 2))
    assert type(q).__name__ == "ModuleList" and types(ml) == ["GELU"] and names(ml) == ["0"]


def test_parameterlist_slice():
    pl = nn.ParameterList([gg.ones(1), gg.ones(2), gg.ones(3)])
    q = pl[1:]
    assert type(q) is nn.ParameterList and q[0] is pl[1]
    assert [k for k, _ in q.named_parameters()] == ["0", "1"]
    assert [tuple(p.shape) for p in pl[::-1]] == [(3,), (2,), (1,)]


def test_parameterdict_missing_key():
    pd = nn.ParameterDict({"a": gg.ones(1)})
    with pytest.raises(AttributeError, match="'ParameterDict' object has no attribute 'zz'"):
        pd["zz"]
    assert pd.get("zz") is None


def test_param_container_repr():
    pl = nn.ParameterList([nn.Parameter(gg.ones(2)), nn.Parameter(gg.ones(1, 3, dtype=gg.float64)),
                           nn.Parameter(gg.ones(2, dtype=gg.float16))])
    assert repr(pl) == ("ParameterList(\n"
                        "    (0): Parameter containing: [torch.float32 of size 2]\n"
                        "    (1): Parameter containing: [torch.float64 of size 1x3]\n"
                        "    (2): Parameter containing: [torch.float16 of size 2]\n"
                        ")")
    pd = nn.ParameterDict({"a": nn.Parameter(gg.ones(2)), "b": gg.ones(3, dtype=gg.bfloat16)})
    assert repr(pd) == ("ParameterDict(\n"
                        "    (a): Parameter containing: [torch.FloatTensor of size 2]\n"
                        "    (b): Parameter containing: [torch.BFloat16Tensor of size 3]\n"
                        ")")
    assert repr(nn.Sequential(nn.ParameterList([gg.ones(2)]))) == (
        "Sequential(\n  (0): ParameterList(  (0): Parameter containing: [torch.float32 of size 2])\n)")
    assert repr(nn.ParameterList()) == "ParameterList()"


# -- Module methods ---------------------------------------------------------------------------------------------
def test_set_submodule():
    s = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU()))
    cases = [("", nn.ReLU(), {}, ValueError, "Cannot set the submodule without a target name!"),
             ("5.x", nn.ReLU(), {}, AttributeError, "Sequential has no attribute `5`"),
             ("0.weight", nn.ReLU(), {}, AttributeError, "`weight` is not an nn.Module"),
             ("0.in_features", nn.ReLU(), {}, AttributeError, "`in_features` is not an nn.Module"),
             ("1.0", 3, {}, ValueError, "`module` is not an nn.Module, found <class 'int'>"),
             ("1.zz", nn.Tanh(), {"strict": True}, AttributeError, "Sequential has no attribute `zz`")]
    for target, mod, kw, exc, text in cases:
        with pytest.raises(exc) as e:
            s.set_submodule(target, mod, **kw)
        assert str(e.value) == text
    s.set_submodule("1.zz", nn.Tanh())
    assert names(s[1]) == ["0", "zz"]
    s = nn.Sequential(nn.ReLU(), nn.Tanh())
    s.set_submodule("0", nn.ELU())
    assert types(s) == ["ELU", "Tanh"]


def test_to_empty_in_place():
    lin = nn.Linear(2, 3)
    w = lin.weight
    lin(gg.ones(1, 2)).sum().backward()
    assert lin.to_empty(device="cpu") is lin and lin.weight is w
    assert lin.weight.shape == (3, 2) and lin.weight.grad.shape == (3, 2) and lin.weight.dtype == gg.float32
    with pytest.raises(TypeError):
        lin.to_empty("cpu")  # keyword-only, as PyTorch


def test_share_memory_refused():
    with pytest.raises(NotImplementedError, match="shared memory"):
        nn.Linear(1, 1).share_memory()


# -- state dict: metadata, extra state, hooks ----------------------------------------------------------------------
class WithExtra(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(1, 1)
        self.register_buffer("b", gg.ones(1))
        self.v = 5

    def get_extra_state(self):
        return {"v": self.v}

    def set_extra_state(self, state):
        self.v = state["v"]


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.e = WithExtra()
        self.p = nn.Parameter(gg.ones(1))


def test_extra_state():
    w = Outer()
    sd = w.state_dict()
    assert list(sd) == ["p", "e.b", "e._extra_state", "e.l.weight", "e.l.bias"]
    assert dict(sd._metadata) == {"": {"version": 1}, "e": {"version": 1}, "e.l": {"version": 1}}
    sd["e._extra_state"] = {"v": 9}
    assert repr(w.load_state_dict(sd)) == "<All keys matched successfully>" and w.e.v == 9
    del sd["e._extra_state"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "e._extra_state". '):
        w.load_state_dict(sd)
    assert w.load_state_dict(sd, strict=False).missing_keys == ["e._extra_state"]
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "_extra_state". '):
        nn.Linear(1, 1).load_state_dict({"weight": gg.ones(1, 1), "bias": gg.ones(1), "_extra_state": 1})
    with pytest.raises(RuntimeError, match="Module.get_extra_state"):
        nn.Module().get_extra_state()


def test_unexpected_keys_as_torch():
    net = nn.Sequential(nn.Linear(1, 1))
    r = net.load_state_dict({"0.weight": gg.ones(1, 1), "0.bias": gg.ones(1), "0": gg.ones(1),
                             "0.weight.x": gg.ones(1), "zz": gg.ones(1)}, strict=False)
    assert r.unexpected_keys == ["0", "zz", "0.weight.x"] and r.missing_keys == []
    lin = nn.Linear(1, 1)
    lin.bias = None
    assert lin.load_state_dict({"weight": gg.ones(1, 1), "bias": gg.ones(1)}, strict=False).unexpected_keys == ["bias"]


def test_state_dict_hooks():
    log = []
    s = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.Linear(1, 1)))
    for name, mod in s.named_modules():
        mod.register_state_dict_pre_hook(lambda mo, p, kv, n=name: log.append(("pre", n, p, kv)))
        mod.register_state_dict_post_hook(lambda mo, sd, p, meta, n=name: log.append(("post", n, p, dict(meta),
                                                                                       len(sd))))
        mod.register_load_state_dict_pre_hook(
            lambda mo, sd, p, meta, strict, mk, uk, em, n=name: log.append(("lpre", n, p, sorted(sd), strict,
                                                                             list(mk), list(uk))))
        mod.register_load_state_dict_post_hook(
            lambda mo, ik, n=name: log.append(("lpost", n, list(ik.missing_keys), list(ik.unexpected_keys))))
    sd = s.state_dict()
    del sd["0.bias"]
    sd["1.zz"] = gg.ones(1)
    sd["qq"] = gg.ones(1)
    s.load_state_dict(sd, strict=False)
    v = {"version": 1}
    assert log == [
        ("pre", "", "", False), ("pre", "0", "0.", False), ("post", "0", "0.", v, 2), ("pre", "1", "1.", False),
        ("pre", "1.0", "1.0.", False), ("post", "1.0", "1.0.", v, 4), ("post", "1", "1.", v, 4),
        ("post", "", "", v, 4),
        ("lpre", "", "", ["0.weight", "1.0.bias", "1.0.weight", "1.zz", "qq"], True, [], []),
        ("lpre", "0", "0.", ["0.weight"], True, [], ["qq"]),
        ("lpost", "0", ["0.bias"], ["qq"]),
        ("lpre", "1", "1.", ["1.0.bias", "1.0.weight", "1.zz"], True, ["0.bias"], ["qq"]),
        ("lpre", "1.0", "1.0.", ["1.0.bias", "1.0.weight"], True, ["0.bias"], ["qq", "1.zz"]),
        ("lpost", "1.0", ["0.bias"], ["qq", "1.zz"]), ("lpost", "1", ["0.bias"], ["qq", "1.zz"]),
        ("lpost", "", ["0.bias"], ["qq", "1.zz"])]


def test_state_dict_hook_results():
    lin = nn.Linear(1, 1)
    lin.register_state_dict_post_hook(lambda *a: {})
    with pytest.raises(RuntimeError, match="state_dict post-hook must return None"):
        lin.state_dict()
    lin = nn.Linear(1, 1)
    lin._register_state_dict_hook(lambda mo, sd, p, meta: {"new": 1})
    assert lin.state_dict() == {"new": 1}
    assert list(nn.Sequential(lin).state_dict()) == ["0.weight", "0.bias"]  # a child's replacement is dropped
    lin = nn.Linear(1, 1)
    lin._register_state_dict_hook(lambda mo, sd, p, meta: sd.__setitem__(p + "extra", gg.ones(1)))
    assert list(lin.state_dict()) == ["weight", "bias", "extra"]


def test_load_hooks_edit():
    lin = nn.Linear(1, 1)
    lin.register_load_state_dict_pre_hook(lambda mo, sd, p, *rest: sd.__setitem__(p + "bias", gg.tensor([7.])))
    given = {"weight": gg.ones(1, 1)}
    lin.load_state_dict(given)
    assert lin.bias.tolist() == [7.0] and list(given) == ["weight"]  # the hook edits a copy
    lin = nn.Linear(1, 1)
    lin.register_load_state_dict_post_hook(lambda mo, k: k.missing_keys.clear())
    assert repr(lin.load_state_dict({"weight": gg.zeros(1, 1)})) == "<All keys matched successfully>"
    assert lin.weight.item() == 0.0
    lin = nn.Linear(1, 1)
    lin.register_load_state_dict_post_hook(lambda *a: 1)
    with pytest.raises(AssertionError, match="not expected to return new values"):
        lin.load_state_dict(lin.state_dict())
    # with a post hook a strict key error is raised after loading (as PyTorch)
    lin = nn.Linear(1, 1)
    lin.register_load_state_dict_post_hook(lambda *a: None)
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "bias". '):
        lin.load_state_dict({"weight": gg.full((1, 1), 3.)})
    assert lin.weight.item() == 3.0
    # the private pre hook form: no module argument
    seen = []
    lin = nn.Linear(1, 1)
    lin._register_load_state_dict_pre_hook(lambda *a: seen.append(len(a)))
    lin.load_state_dict(lin.state_dict())
    assert seen == [7]
    np.testing.assert_array_equal(lin.weight.detach().numpy(), lin.state_dict()["weight"].numpy())
