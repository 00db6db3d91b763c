"""gg.explain.lrp: every rule against relevances computed by hand on a tiny network, conservation,
BatchNorm folding, composites, unchanged models, and clear errors for what LRP cannot handle."""
import numpy as np
import pytest
from conftest import to_np

import gpugrad as gg
from gpugrad import explain as E
from gpugrad import nn

# The tiny network: x = [1, 2] -> Linear W1 (no bias) -> ReLU -> Linear W2 (no bias) -> 2 outputs.
# z1 = W1 x = [1*1 + 0.5*2, -1*1 + 2*2] = [2, 3] (both alive), a1 = [2, 3].
# z2[0] = 2*2 + (-1)*3 = 1: the target score, so R_out = 1 on unit 0.
X = np.array([[1.0, 2.0]])
W1 = np.array([[1.0, 0.5], [-1.0, 2.0]])
W2 = np.array([[2.0, -1.0], [1.0, 1.0]])


def _tiny(device, b1=None, b2=None):
    l1, l2 = nn.Linear(2, 2), nn.Linear(2, 2)
    with gg.no_grad():
        l1.weight.copy_(W1)
        l2.weight.copy_(W2)
        l1.bias.copy_(np.zeros(2) if b1 is None else np.asarray(b1))
        l2.bias.copy_(np.zeros(2) if b2 is None else np.asarray(b2))
    return nn.Sequential(l1, nn.ReLU(), l2).to(device, "float64")


def _run(device, rule, **kw):
    m = _tiny(device, **kw)
    R, rels = E.lrp(m, gg.tensor(X, device=device), 0, rule=rule, return_layer_relevances=True)
    return to_np(R)[0], {n: to_np(r)[0] for n, r in rels}


def test_epsilon_rule_by_hand(device):
    # eps -> 0. Layer 2: R1_i = a1_i w_0i / z * R = [2*2, 3*(-1)] / 1 = [4, -3].
    # Layer 1: neuron 0 (z=2, shares x_i w = [1, 1]) -> [2, 2]; neuron 1 (z=3, shares [-1, 4]) with R=-3 -> [1, -4].
    R, rels = _run(device, E.Epsilon(1e-12))
    np.testing.assert_allclose(rels["output"], [1.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(rels["2"], [4.0, -3.0], rtol=1e-9)
    np.testing.assert_allclose(rels["1"], [4.0, -3.0], rtol=1e-9)  # ReLU passes relevance through
    np.testing.assert_allclose(R, [3.0, -2.0], rtol=1e-9)
    # eps = 1: every denominator grows by 1 (all z > 0): layer 2: [4, -3] / 2; layer 1: neuron 0 -> [1/3, 1/3] * 2,
    # neuron 1 -> [-1/4, 4/4] * (-1.5)
    R, rels = _run(device, E.Epsilon(1.0))
    np.testing.assert_allclose(rels["2"], [2.0, -1.5], rtol=1e-12)
    np.testing.assert_allclose(R, [2 / 3 + 0.375, 2 / 3 - 1.5], rtol=1e-12)


def test_epsilon_rule_bias_absorbs_relevance(device):
    # b2 = [0.5, 0]: the score is 1.5 and the bias keeps its share: layer 2 gives [4, -3] * 1.5 / 1.5
    _, rels = _run(device, "zero", b2=[0.5, 0.0])
    np.testing.assert_allclose(rels["output"], [1.5, 0.0], rtol=1e-12)
    np.testing.assert_allclose(rels["2"], [4.0, -3.0], rtol=1e-12)
    assert rels["2"].sum() == pytest.approx(1.0)


def test_gamma_rule_by_hand(device):
    # gamma = 0.5: W2' row 0 = [2 + 1, -1] -> shares [6, -3], z' = 3 -> R1 = [2, -1].
    # W1' = [[1.5, 0.75], [-1, 3]]: neuron 0 shares [1.5, 1.5] -> [1, 1]; neuron 1 shares [-1, 6] (z' = 5)
    # with R = -1 -> [0.2, -1.2]. Total [1.2, -0.2] (conserved: zero biases).
    R, rels = _run(device, E.Gamma(0.5, epsilon=1e-12))
    np.testing.assert_allclose(rels["2"], [2.0, -1.0], rtol=1e-9)
    np.testing.assert_allclose(R, [1.2, -0.2], rtol=1e-9)


def test_alpha_beta_rule_by_hand(device):
    # alpha=2, beta=1. Layer 2: z_ij = [4, -3]: R1 = [2 * 4/4, -1 * (-3)/(-3)] * 1 = [2, -1].
    # Layer 1: neuron 0 (R=2) shares [1, 1], no negative part -> alpha * [1/2, 1/2] * 2 = [2, 2];
    # neuron 1 (R=-1) shares [-1, 4]: input 0 -> -beta * (-1/-1) * (-1) = 1, input 1 -> alpha * 4/4 * (-1) = -2.
    R, rels = _run(device, E.AlphaBeta(2, 1))
    np.testing.assert_allclose(rels["2"], [2.0, -1.0], rtol=1e-12)
    np.testing.assert_allclose(R, [3.0, 0.0], rtol=1e-12, atol=1e-12)
    R2, _ = _run(device, "alpha_beta")
    np.testing.assert_allclose(R2, R)
    with pytest.raises(ValueError, match="alpha - beta = 1"):
        E.AlphaBeta(2, 2)


def test_zplus_rule_by_hand(device):
    # only positive shares: layer 2 -> [4, 0]/4 -> R1 = [1, 0]; layer 1 neuron 0 shares [1, 1] -> [0.5, 0.5]
    R, rels = _run(device, "zplus")
    np.testing.assert_allclose(rels["2"], [1.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(R, [0.5, 0.5], rtol=1e-12)
    R1, _ = _run(device, E.AlphaBeta(1, 0))
    np.testing.assert_allclose(R1, R)


def test_zbox_rule_by_hand(device):
    # first layer z^B with x in [0, 3], epsilon (0) above: R1 = [4, -3] as for epsilon.
    # neuron 0: w = [1, .5] (all positive): shares x w - l w+ - h w- = [1, 1] - 0 - 0 -> z = 2 -> [2, 2]
    # neuron 1: w = [-1, 2]: shares [-1 - 3*(-1), 4 - 0] = [2, 4], z = 6 -> R = -3 * [1/3, 2/3] = [-1, -2]
    comp = E.Composite(first=E.ZBox(0.0, 3.0, epsilon=1e-12), default=E.Epsilon(1e-12))
    R, _ = _run(device, comp)
    np.testing.assert_allclose(R, [1.0, 0.0], rtol=1e-9, atol=1e-9)


def test_composite_chooses_rules_per_layer(device):
    # z+ on the first Linear, epsilon above: R1 = [4, -3]; neuron 0 -> [2, 2]; neuron 1 positive shares
    # [0, 4] -> [0, -3]. Total [2, -1].
    R, _ = _run(device, E.Composite(first="zplus", default=E.Epsilon(1e-12)))
    np.testing.assert_allclose(R, [2.0, -1.0], rtol=1e-9)
    by_name, _ = _run(device, E.Composite(names={"0": E.ZPlus()}, default=E.Epsilon(1e-12)))
    np.testing.assert_allclose(by_name, R)
    by_type, _ = _run(device, E.Composite(types={nn.Linear: "zplus"}))
    np.testing.assert_allclose(by_type, [0.5, 0.5], rtol=1e-12)


def test_conv_layer_and_epsilon_plus_composite_by_hand(device):
    # a 2x2 input, one 2x2 conv filter (= a dense unit over 4 pixels), then Linear(1 -> 2).
    conv, lin = nn.Conv2d(1, 1, 2, bias=False), nn.Linear(1, 2, bias=False)
    with gg.no_grad():
        conv.weight.copy_(np.array([1.0, -1.0, 2.0, 0.5]).reshape(1, 1, 2, 2))
        lin.weight.copy_(np.array([[2.0], [-1.0]]))
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), lin).to(device, "float64")
    xv = np.array([1.0, 2.0, 1.0, 2.0]).reshape(1, 1, 2, 2)
    # conv: shares [1, -2, 2, 1], z = 2; a = 2; out[0] = 4 -> R at conv output = 4.
    # EpsilonPlus: z+ on the conv: positive shares [1, 0, 2, 1] / 4 * 4 = [1, 0, 2, 1]
    R = to_np(E.lrp(model, gg.tensor(xv, device=device), 0, rule=E.EpsilonPlus()))
    np.testing.assert_allclose(R.reshape(-1), [1.0, 0.0, 2.0, 1.0], rtol=1e-6)  # epsilon 1e-6 on the Linear
    # plain epsilon on the conv: [1, -2, 2, 1] / 2 * 4
    R = to_np(E.lrp(model, gg.tensor(xv, device=device), 0, rule=E.Epsilon(1e-12)))
    np.testing.assert_allclose(R.reshape(-1), [2.0, -4.0, 4.0, 2.0], rtol=1e-9)
    # alpha2beta1 on the conv: 2 * [1, 0, 2, 1]/4 * 4 - 1 * [0, -2, 0, 0]/(-2) * 4
    R = to_np(E.lrp(model, gg.tensor(xv, device=device), 0, rule="epsilon_alpha2_beta1"))
    np.testing.assert_allclose(R.reshape(-1), [2.0, -4.0, 4.0, 2.0], rtol=1e-6)


def _deep(device, bias=False, seed=0):
    gg.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Conv2d(6, 5, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                      nn.Linear(20, 16), nn.Tanh(), nn.Dropout(0.5), nn.Linear(16, 10)).to(device, "float64")
    if not bias:
        with gg.no_grad():
            for name, p in m.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
    return m


@pytest.mark.parametrize("rule", [E.Epsilon(1e-12), E.Gamma(0.25, 1e-12), "zero"])
def test_relevance_is_conserved_layer_by_layer(device, rule):
    # zero biases, epsilon -> 0: every layer's relevance sums to the target score
    m = _deep(device)
    x = gg.tensor(np.random.rand(3, 1, 8, 8), device=device)
    tgt = [1, 4, 7]
    score = to_np(m.eval()(x).detach())[np.arange(3), tgt]  # eval: Dropout off, as inside lrp
    R, rels = E.lrp(m, x, tgt, rule=rule, return_layer_relevances=True)
    assert [n for n, _ in rels] == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "output"]
    for name, r in rels:
        np.testing.assert_allclose(to_np(r).reshape(3, -1).sum(1), score, rtol=1e-7, err_msg=name)
    assert R.shape == x.shape and R.device == x.device


def test_model_and_grads_unchanged_after_lrp(device):
    m = _deep(device, bias=True)
    m.train()
    x = gg.tensor(np.random.rand(2, 1, 8, 8), device=device)
    m.eval()
    out = to_np(m(x).detach()).copy()
    m.train()
    params = {n: to_np(p.detach()).copy() for n, p in m.named_parameters()}
    for rule in ("epsilon", "gamma", "alpha_beta", "zplus", "epsilon_plus", E.EpsilonGammaBox(0.0, 1.0)):
        E.lrp(m, x, 3, rule=rule)
    assert m.training
    for n, p in m.named_parameters():
        np.testing.assert_array_equal(to_np(p.detach()), params[n])
        assert p.grad is None
    m.eval()
    np.testing.assert_array_equal(to_np(m(x).detach()), out)


def test_batchnorm_is_folded_into_a_copy_of_the_previous_layer(device):
    gg.manual_seed(2)
    lin, bn, head = nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)
    conv, bn2 = nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3)
    with gg.no_grad():
        bn.running_mean.copy_(np.array([0.1, -0.2, 0.3, 0.0]))
        bn.running_var.copy_(np.array([0.5, 2.0, 1.0, 4.0]))
        bn.weight.copy_(np.array([1.5, -0.5, 1.0, 2.0]))
        bn.bias.copy_(np.array([0.1, 0.2, -0.3, 0.0]))
    model = nn.Sequential(lin, bn, nn.ReLU(), head).to(device, "float64")
    model.eval()
    s = to_np(bn.weight.detach()) / np.sqrt(to_np(bn.running_var) + bn.eps)
    fl = nn.Linear(3, 4).to(device, "float64")
    with gg.no_grad():
        fl.weight.copy_(to_np(lin.weight.detach()) * s[:, None])
        fl.bias.copy_((to_np(lin.bias.detach()) - to_np(bn.running_mean)) * s + to_np(bn.bias.detach()))
    folded = nn.Sequential(fl, nn.ReLU(), head)
    x = gg.tensor(np.random.randn(4, 3), device=device)
    np.testing.assert_allclose(to_np(folded(x).detach()), to_np(model(x).detach()), rtol=1e-12)
    bn_params = [to_np(t.detach()).copy() for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var, lin.weight)]
    for rule in ("epsilon", "gamma", "alpha_beta"):
        R, rels = E.lrp(model, x, 1, rule=rule, return_layer_relevances=True)
        np.testing.assert_allclose(to_np(R), to_np(E.lrp(folded, x, 1, rule=rule)), rtol=1e-10, atol=1e-14)
        assert rels[0][0] == "0+1"
    for a, t in zip(bn_params, (bn.weight, bn.bias, bn.running_mean, bn.running_var, lin.weight)):
        np.testing.assert_array_equal(to_np(t.detach()), a)
    # BatchNorm2d after a conv, and a BatchNorm with nothing to fold into (epsilon rule on its own affine map)
    model2 = nn.Sequential(nn.BatchNorm2d(1), conv, bn2, nn.ReLU(), nn.Flatten(), nn.Linear(27, 2)).to(device, "float64")
    with gg.no_grad():
        model2[0].running_var.fill_(4.0)   # standalone BN: scale 1/2, shift 0
        model2[2].running_var.fill_(0.25)  # folded BN: scale 2, shift 0 (zero bias and mean)
        for i in (1, 5):
            model2[i].bias.zero_()
    x2 = gg.tensor(np.random.rand(2, 1, 3, 3), device=device)
    R, rels = E.lrp(model2, x2, 0, rule=E.Epsilon(1e-12), return_layer_relevances=True)
    score = to_np(model2.eval()(x2).detach())[:, 0]
    assert [n for n, _ in rels] == ["0", "1+2", "3", "4", "5", "output"]
    np.testing.assert_allclose(to_np(R).reshape(2, -1).sum(1), score, rtol=1e-7)  # zero shifts: conserved


def test_final_softmax_is_skipped(device):
    m = _tiny(device)
    ms = nn.Sequential(*[m[i] for i in range(3)], nn.Softmax(dim=1))
    x = gg.tensor(X, device=device)
    np.testing.assert_allclose(to_np(E.lrp(ms, x, 0, rule="zero")), to_np(E.lrp(m, x, 0, rule="zero")))


def test_unsupported_layers_and_non_chains_are_named(device):
    m = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2)).to(device)
    with pytest.raises(NotImplementedError, match="LayerNorm"):
        E.lrp(m, gg.tensor(np.random.randn(2, 4), dtype=gg.float32, device=device), 0)  # float32, as the model

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.b(self.a(x).relu())  # a functional op between the layers

    with pytest.raises(E.LRPUnsupportedLayerError, match="chain"):
        E.lrp(Branchy().to(device), gg.tensor(np.random.randn(2, 4), dtype=gg.float32, device=device), 0)
    with pytest.raises(ValueError, match="unknown LRP rule"):
        E.lrp(m, gg.tensor(np.random.randn(2, 4), dtype=gg.float32, device=device), 0, rule="nope")


def test_lrp_runs_on_the_cli_models_with_every_rule(device):
    from gpugrad.models import build_model
    x = gg.tensor(np.random.rand(2, 1, 8, 8).astype(np.float32), device=device)
    for cfg in ({"model": "mlp"}, {"model": "cnn"}):
        m = build_model(cfg).to(device)
        for rule in ("epsilon", "gamma", "alpha_beta", "zplus", "epsilon_plus", "epsilon_alpha2_beta1"):
            R = E.lrp(m, x, [3, 5], rule=rule)
            assert R.shape == x.shape and R.dtype == x.dtype and np.isfinite(to_np(R)).all()
            assert np.abs(to_np(R)).sum() > 0
