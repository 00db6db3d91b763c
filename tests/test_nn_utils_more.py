"""gg.nn.utils additions of issue 11: get_total_norm / clip_grads_with_norm_, weight_norm and spectral_norm (the
hook API), parametrize and parametrizations.weight_norm, conv/linear-bn fusion, skip_init and
stateless.functional_call; against torch 2.13 where it is installed, plus torch-free checks."""
import copy
import warnings

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.nn import utils as U


def _copy(gm, tm):
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})


def _torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch


# -- norms and clipping -----------------------------------------------------------------------------------

@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.0, float("inf"), -float("inf")])
def test_get_total_norm_and_clip_match_torch(norm_type):
    torch = _torch()
    arrs = [np.random.default_rng(i).standard_normal(s) for i, s in enumerate([(3, 4), (5,), ()])]
    ours = U.get_total_norm([gg.tensor(a) for a in arrs], norm_type)
    theirs = torch.nn.utils.get_total_norm([torch.tensor(a) for a in arrs], norm_type)
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-12)
    gp = [gg.nn.Parameter(gg.zeros(a.shape, dtype=gg.float64)) for a in arrs]
    tp = [torch.zeros(a.shape, dtype=torch.float64, requires_grad=True) for a in arrs]
    for g, t, a in zip(gp, tp, arrs):
        g.grad, t.grad = gg.tensor(a), torch.tensor(a)
    U.clip_grads_with_norm_(gp, 0.5, ours)
    torch.nn.utils.clip_grads_with_norm_(tp, 0.5, theirs)
    for g, t in zip(gp, tp):
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_get_total_norm_float16_matches_torch():
    torch = _torch()
    arrs = [np.random.default_rng(i).standard_normal(50).astype(np.float16) for i in range(3)]
    for nt in (2.0, 1.0, float("inf")):
        ours = U.get_total_norm([gg.tensor(a) for a in arrs], nt)
        theirs = torch.nn.utils.get_total_norm([torch.tensor(a) for a in arrs], nt)
        assert ours.dtype == np.float16 and ours.numpy() == theirs.numpy()


def test_get_total_norm_edges():
    assert U.get_total_norm([]).item() == 0.0
    assert U.get_total_norm(gg.tensor([3.0, 4.0])).item() == 5.0
    with pytest.raises(RuntimeError, match="is non-finite, so it cannot be clipped"):
        U.get_total_norm([gg.tensor([float("inf")])], error_if_nonfinite=True)
    p = gg.nn.Parameter(gg.ones(4))
    p.grad = gg.ones(4)
    U.clip_grads_with_norm_(p, 1.0, gg.tensor(4.0))
    np.testing.assert_allclose(p.grad.numpy(), 1 / (4 + 1e-6))
    U.clip_grad_value_([p], 0.1)
    assert p.grad.numpy().max() == np.float32(0.1)


# -- weight_norm / spectral_norm (hook API) ----------------------------------------------------------------

@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_matches_torch(dim):
    torch = _torch()
    tm, gm = torch.nn.Linear(4, 3).double(), gg.nn.Linear(4, 3).double()
    _copy(gm, tm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.nn.utils.weight_norm(tm, dim=dim)
    with pytest.warns(FutureWarning, match="parametrizations.weight_norm"):
        U.weight_norm(gm, dim=dim)
    assert list(gm.state_dict()) == list(tm.state_dict()) == ["bias", "weight_g", "weight_v"]
    assert gm.weight_g.shape == tuple(tm.weight_g.shape)
    np.testing.assert_allclose(gm.weight_g.detach().numpy(), tm.weight_g.detach().numpy(), rtol=1e-14)
    with torch.no_grad():
        tm.weight_g.mul_(2.0)
    gm.weight_g._data *= 2.0  # the weight is recomputed before each forward
    x = np.random.default_rng(1).standard_normal((2, 4))
    to, go = tm(torch.tensor(x)), gm(gg.tensor(x))
    np.testing.assert_allclose(go.detach().numpy(), to.detach().numpy(), rtol=1e-13)
    to.sum().backward()
    go.sum().backward()
    for n in ("weight_g", "weight_v"):
        np.testing.assert_allclose(getattr(gm, n).grad.numpy(), getattr(tm, n).grad.numpy(), rtol=1e-12, atol=1e-14)
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks on the same parameter weight"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            U.weight_norm(gm)
    U.remove_weight_norm(gm)
    torch.nn.utils.remove_weight_norm(tm)
    assert list(gm.state_dict()) == ["bias", "weight"] and isinstance(gm.weight, gg.nn.Parameter)
    np.testing.assert_allclose(gm.weight.detach().numpy(), tm.weight.detach().numpy(), rtol=1e-13)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found in"):
        U.remove_weight_norm(gm)


def test_spectral_norm_matches_torch():
    torch = _torch()
    tm, gm = torch.nn.Linear(5, 3).double(), gg.nn.Linear(5, 3).double()
    _copy(gm, tm)
    torch.nn.utils.spectral_norm(tm)
    U.spectral_norm(gm)
    assert list(gm.state_dict()) == list(tm.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    u0 = gm.weight_u.numpy().copy()
    np.testing.assert_allclose(np.linalg.norm(u0), 1.0)
    _copy(gm, tm)  # the same random start vectors as torch's
    x = np.random.default_rng(2).standard_normal((2, 5))
    for _ in range(3):  # training: one power iteration per forward
        to, go = tm(torch.tensor(x)), gm(gg.tensor(x))
    np.testing.assert_allclose(go.detach().numpy(), to.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(gm.weight_u.numpy(), tm.weight_u.numpy(), rtol=1e-12)
    to.sum().backward()
    go.sum().backward()
    np.testing.assert_allclose(gm.weight_orig.grad.numpy(), tm.weight_orig.grad.numpy(), rtol=1e-11, atol=1e-13)
    gm.eval()
    tm.eval()
    u = gm.weight_u.numpy().copy()
    np.testing.assert_allclose(gm(gg.tensor(x)).detach().numpy(), tm(torch.tensor(x)).detach().numpy(), rtol=1e-12)
    np.testing.assert_array_equal(gm.weight_u.numpy(), u)  # eval: no power iteration
    U.remove_spectral_norm(gm)
    torch.nn.utils.remove_spectral_norm(tm)
    assert list(gm.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(gm.weight.detach().numpy(), tm.weight.detach().numpy(), rtol=1e-12)


def test_spectral_norm_torch_free():
    gg.manual_seed(0)
    m = U.spectral_norm(gg.nn.Conv2d(2, 4, 3), n_power_iterations=20)
    assert m.weight_u.shape == (4,) and m.weight_v.shape == (18,)
    m(gg.randn(1, 2, 5, 5))
    sigma = np.linalg.svd(m.weight.detach().numpy().reshape(4, -1), compute_uv=False)[0]
    np.testing.assert_allclose(sigma, 1.0, rtol=1e-4)
    with pytest.raises(ValueError, match="n_power_iterations to be positive"):
        U.spectral_norm(gg.nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks"):
        U.spectral_norm(m)
    with pytest.raises(ValueError, match="spectral_norm of 'bias' not found"):
        U.remove_spectral_norm(m, "bias")


# -- parametrize ---------------------------------------------------------------------------------------------

class Symmetric(gg.nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(0, 1)


class Double(gg.nn.Module):
    def forward(self, x):
        return x * 2

    def right_inverse(self, x):
        return x / 2


def test_parametrize_layout_and_semantics():
    m = gg.nn.Linear(3, 3)
    w = m.weight.detach().numpy().copy()
    orig = m.weight
    P = gg.nn.utils.parametrize
    P.register_parametrization(m, "weight", Symmetric())
    assert type(m).__name__ == "ParametrizedLinear" and P.type_before_parametrizations(m) is gg.nn.Linear
    assert P.is_parametrized(m) and P.is_parametrized(m, "weight") and not P.is_parametrized(m, "bias")
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original"]
    assert m.parametrizations.weight.original is orig  # the same Parameter object, as PyTorch
    assert [n for n, _ in m.named_parameters()] == ["bias", "parametrizations.weight.original"]
    s = m.weight.detach().numpy()
    np.testing.assert_allclose(s, np.triu(w) + np.triu(w, 1).T)
    with P.cached():
        assert m.weight is m.weight
    assert m.weight is not m.weight
    P.register_parametrization(m, "weight", Double())  # chained: Double(Symmetric(original))
    np.testing.assert_allclose(m.weight.detach().numpy(), 2 * s, rtol=1e-6)
    with pytest.raises(RuntimeError, match="parametrization Symmetric does not implement right_inverse"):
        m.weight = gg.zeros(3, 3)
    x = gg.randn(2, 3)
    m(x).sum().backward()
    assert m.parametrizations.weight.original.grad is not None
    P.remove_parametrizations(m, "weight")
    assert type(m) is gg.nn.Linear and not hasattr(m, "parametrizations")
    assert list(m.state_dict()) == ["bias", "weight"] and m.weight is orig
    np.testing.assert_allclose(m.weight.detach().numpy(), 2 * s, rtol=1e-6)
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        P.remove_parametrizations(m, "weight")
    with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a parametrized element"):
        P.register_parametrization(m, "nope", Double())


def test_parametrize_right_inverse_and_leave():
    P = gg.nn.utils.parametrize
    m = P.register_parametrization(gg.nn.Linear(2, 2), "weight", Double())
    w = m.weight.detach().numpy().copy()  # right_inverse ran at registration: the weight is unchanged
    m.weight = gg.ones(2, 2)
    np.testing.assert_allclose(m.parametrizations.weight.original.detach().numpy(), 0.5)
    np.testing.assert_allclose(m.weight.detach().numpy(), 1.0)
    P.remove_parametrizations(m, "weight", leave_parametrized=False)
    np.testing.assert_allclose(m.weight.detach().numpy(), 0.5)
    assert w.shape == (2, 2)

    class Bad(gg.nn.Module):
        def forward(self, x):
            return x[0]
    with pytest.raises(ValueError, match="may not change the shape of the tensor"):
        P.register_parametrization(gg.nn.Linear(2, 2), "weight", Bad())
    m = P.register_parametrization(gg.nn.Linear(2, 2), "weight", Bad(), unsafe=True)
    assert m.weight.shape == (2,)
    with pytest.raises(RuntimeError, match="Serialization of parametrized modules"):
        m.__getstate__()
    c = copy.deepcopy(m)
    assert type(c).__name__ == "ParametrizedLinear" and c.weight.shape == (2,)


def test_parametrize_matches_torch():
    torch = _torch()

    class TSym(torch.nn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).transpose(0, 1)
    tm, gm = torch.nn.Linear(3, 3).double(), gg.nn.Linear(3, 3).double()
    _copy(gm, tm)
    torch.nn.utils.parametrize.register_parametrization(tm, "weight", TSym())
    gg.nn.utils.parametrize.register_parametrization(gm, "weight", Symmetric())
    assert list(gm.state_dict()) == list(tm.state_dict())
    x = np.random.default_rng(3).standard_normal((2, 3))
    to, go = tm(torch.tensor(x)), gm(gg.tensor(x))
    np.testing.assert_allclose(go.detach().numpy(), to.detach().numpy(), rtol=1e-14)
    to.sum().backward()
    go.sum().backward()
    np.testing.assert_allclose(gm.parametrizations.weight.original.grad.numpy(),
                               tm.parametrizations.weight.original.grad.numpy(), rtol=1e-14)


def test_parametrizations_weight_norm():
    torch = _torch()
    tm, gm = torch.nn.Linear(4, 3).double(), gg.nn.Linear(4, 3).double()
    _copy(gm, tm)
    torch.nn.utils.parametrizations.weight_norm(tm)
    gg.nn.utils.parametrizations.weight_norm(gm)
    keys = ["bias", "parametrizations.weight.original0", "parametrizations.weight.original1"]
    assert list(gm.state_dict()) == list(tm.state_dict()) == keys
    for k in keys:
        np.testing.assert_allclose(gm.state_dict()[k].numpy(), tm.state_dict()[k].numpy(), rtol=1e-14)
    x = np.random.default_rng(4).standard_normal((2, 4))
    to, go = tm(torch.tensor(x)), gm(gg.tensor(x))
    np.testing.assert_allclose(go.detach().numpy(), to.detach().numpy(), rtol=1e-13)
    (to ** 2).sum().backward()
    (go ** 2).sum().backward()
    for i in (0, 1):
        a = getattr(gm.parametrizations.weight, f"original{i}").grad.numpy()
        np.testing.assert_allclose(a, getattr(tm.parametrizations.weight, f"original{i}").grad.numpy(), rtol=1e-12)
    gg.nn.utils.parametrize.remove_parametrizations(gm, "weight")
    assert list(gm.state_dict()) == ["bias", "weight"] and isinstance(gm.weight, gg.nn.Parameter)
    with pytest.raises(ValueError, match="Cannot leave unparametrized"):
        gg.nn.utils.parametrize.remove_parametrizations(gg.nn.utils.parametrizations.weight_norm(gg.nn.Linear(2, 2)),
                                                        "weight", leave_parametrized=False)


# -- fusion, skip_init ---------------------------------------------------------------------------------------

def test_fuse_conv_and_linear_bn_match_torch():
    torch = _torch()
    tc, gc = torch.nn.Conv2d(2, 3, 3).double().eval(), gg.nn.Conv2d(2, 3, 3).double().eval()
    tb, gb = torch.nn.BatchNorm2d(3).double().eval(), gg.nn.BatchNorm2d(3).double().eval()
    with torch.no_grad():
        tb.running_mean.normal_()
        tb.running_var.uniform_(0.5, 2)
        tb.weight.normal_()
    _copy(gc, tc)
    _copy(gb, tb)
    tf, gf = torch.nn.utils.fuse_conv_bn_eval(tc, tb), U.fuse_conv_bn_eval(gc, gb)
    np.testing.assert_allclose(gf.weight.detach().numpy(), tf.weight.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(gf.bias.detach().numpy(), tf.bias.detach().numpy(), rtol=1e-14)
    x = np.random.default_rng(5).standard_normal((1, 2, 5, 5))
    np.testing.assert_allclose(gf(gg.tensor(x)).detach().numpy(), gb(gc(gg.tensor(x))).detach().numpy(), atol=1e-12)
    assert gf is not gc and isinstance(gf.weight, gg.nn.Parameter)
    tl, gl = torch.nn.Linear(4, 3).double().eval(), gg.nn.Linear(4, 3).double().eval()
    tb1, gb1 = torch.nn.BatchNorm1d(3).double().eval(), gg.nn.BatchNorm1d(3).double().eval()
    with torch.no_grad():
        tb1.running_mean.normal_()
    _copy(gl, tl)
    _copy(gb1, tb1)
    tf, gf = torch.nn.utils.fuse_linear_bn_eval(tl, tb1), U.fuse_linear_bn_eval(gl, gb1)
    np.testing.assert_allclose(gf.weight.detach().numpy(), tf.weight.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(gf.bias.detach().numpy(), tf.bias.detach().numpy(), rtol=1e-14)
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        U.fuse_linear_bn_eval(gl.train(), gb1)
    with pytest.raises(AssertionError, match="linear.out_features == bn.num_features"):
        U.fuse_linear_bn_eval(gg.nn.Linear(4, 3).eval(), gg.nn.BatchNorm1d(2).eval())


def test_skip_init():
    m = U.skip_init(gg.nn.Linear, 3, 2)
    assert isinstance(m, gg.nn.Linear) and m.weight.shape == (2, 3)
    with pytest.raises(RuntimeError, match="Expected a Module"):
        U.skip_init(int)
    with pytest.raises(RuntimeError, match="Module must support a 'device' arg"):
        U.skip_init(gg.nn.ReLU)


# -- stateless.functional_call -----------------------------------------------------------------------------

def test_functional_call():
    fc = gg.nn.utils.stateless.functional_call
    m = gg.nn.Linear(2, 2)
    w = m.weight
    x = gg.ones(1, 2)
    new = {"weight": gg.zeros(2, 2), "bias": gg.tensor([1.0, 2.0])}
    with pytest.warns(FutureWarning, match="torch.func.functional_call"):
        out = fc(m, new, x)
    assert out.tolist() == [[1.0, 2.0]] and m.weight is w and "weight" in m._parameters

    class Boom(gg.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = gg.nn.Linear(2, 2)
            self.register_buffer("buf", gg.zeros(2))

        def forward(self, x):
            raise KeyError("boom")
    b = Boom()
    orig = (b.lin.weight, b.buf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with pytest.raises(KeyError, match="boom"):
            fc(b, {"lin.weight": gg.zeros(2, 2), "buf": gg.ones(2)}, (x,))
        assert (b.lin.weight, b.buf) == orig  # restored even on error
        with pytest.raises(RuntimeError, match="Unexpected key\\(s\\): 'nope'.\n\tMissing key\\(s\\): 'buf', "):
            fc(b, {"nope": gg.zeros(1), "lin.weight": gg.zeros(2, 2)}, (x,), strict=True)
        tied = gg.nn.Sequential(gg.nn.Linear(2, 2, bias=False), gg.nn.Linear(2, 2, bias=False))
        tied[1].weight = tied[0].weight
        out = fc(tied, {"0.weight": gg.eye(2) * 2}, x)
        assert out.tolist() == [[4.0, 4.0]]  # both tied names take the one value
        with pytest.raises(ValueError, match="which are tied. Consider using tie_weights=False"):
            fc(tied, {"0.weight": gg.eye(2), "1.weight": gg.eye(2) * 3}, x)
        assert fc(tied, {"0.weight": gg.eye(2)}, x, tie_weights=False).shape == (1, 2)


def test_functional_call_matches_torch():
    torch = _torch()
    tm, gm = torch.nn.Linear(3, 2).double(), gg.nn.Linear(3, 2).double()
    _copy(gm, tm)
    wt = np.random.default_rng(6).standard_normal((2, 3))
    x = np.random.default_rng(7).standard_normal((4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        to = torch.nn.utils.stateless.functional_call(tm, {"weight": torch.tensor(wt)}, (torch.tensor(x),))
        go = gg.nn.utils.stateless.functional_call(gm, {"weight": gg.tensor(wt)}, (gg.tensor(x),))
    np.testing.assert_allclose(go.detach().numpy(), to.detach().numpy(), rtol=1e-14)


def test_parametrizations_spectral_norm():
    torch = _torch()
    tm, gm = torch.nn.Linear(5, 3).double(), gg.nn.Linear(5, 3).double()
    _copy(gm, tm)
    torch.nn.utils.parametrizations.spectral_norm(tm)
    gg.nn.utils.parametrizations.spectral_norm(gm)
    assert list(gm.state_dict()) == list(tm.state_dict()) == [
        "bias", "parametrizations.weight.original", "parametrizations.weight.0._u", "parametrizations.weight.0._v"]
    _copy(gm, tm)  # torch's random start vectors
    x = np.random.default_rng(8).standard_normal((2, 5))
    for _ in range(3):
        to, go = tm(torch.tensor(x)), gm(gg.tensor(x))
    np.testing.assert_allclose(go.detach().numpy(), to.detach().numpy(), rtol=1e-12)
    to.sum().backward()
    go.sum().backward()
    np.testing.assert_allclose(gm.parametrizations.weight.original.grad.numpy(),
                               tm.parametrizations.weight.original.grad.numpy(), rtol=1e-11, atol=1e-14)
    gm.eval()
    u = gm.parametrizations.weight[0]._u.numpy().copy()
    gm(gg.tensor(x))
    np.testing.assert_array_equal(gm.parametrizations.weight[0]._u.numpy(), u)


def test_parametrizations_spectral_norm_torch_free():
    gg.manual_seed(0)
    m = gg.nn.utils.parametrizations.spectral_norm(gg.nn.Linear(6, 4))
    for _ in range(30):
        m(gg.randn(1, 6))
    np.testing.assert_allclose(np.linalg.svd(m.weight.detach().numpy(), compute_uv=False)[0], 1.0, rtol=1e-4)
    v = gg.nn.utils.parametrizations.spectral_norm(gg.nn.Linear(3, 1), "bias")  # 1-D: normalized
    np.testing.assert_allclose(np.abs(v.bias.detach().numpy()), 1.0, rtol=1e-6)
    with pytest.raises(IndexError, match="Dimension out of range"):
        gg.nn.utils.parametrizations.spectral_norm(gg.nn.Linear(3, 3), dim=2)
    with pytest.raises(ValueError, match="has no parameter or buffer with name 'nope'"):
        gg.nn.utils.parametrizations.spectral_norm(gg.nn.Linear(3, 3), "nope")


def test_func_functional_call_no_warning_and_dict_sequence():
    """gg.func.functional_call: torch.func's form (no deprecation warning; a sequence of dicts with disjoint keys)."""
    import warnings
    m = gg.nn.Linear(2, 2)
    w, b = gg.ones(2, 2), gg.zeros(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = gg.func.functional_call(m, ({"weight": w}, {"bias": b}), gg.tensor([1.0, 2.0]))
    assert y.tolist() == [3.0, 3.0] and not np.array_equal(m.weight.detach().numpy(), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"\['weight'\] appeared in multiple dictionaries"):
        gg.func.functional_call(m, ({"weight": w}, {"weight": w}), (gg.ones(2),))
