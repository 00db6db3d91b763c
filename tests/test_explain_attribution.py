"""gg.explain attributions: saliency, gradient x input, SmoothGrad, integrated gradients, Grad-CAM,
guided backprop, and the `explain` command's entry point. Numbers, not shapes."""
import numpy as np
import pytest
from conftest import to_np

import gpugrad as gg
from gpugrad import explain as E
from gpugrad import nn



def _linear_model(device, dtype="float64"):
    m = nn.Linear(4, 3)
    w = np.array([[1.0, -2.0, 0.5, 0.0], [0.0, 3.0, -1.0, 2.0], [-0.5, 0.25, 4.0, -3.0]])
    with gg.no_grad():
        m.weight.copy_(w)
        m.bias.copy_(np.array([0.1, -0.2, 0.3]))
    return m.to(device, dtype), w


def _mlp(device, act=nn.Tanh, dtype="float64", seed=0):
    gg.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), act(), nn.Linear(8, 3)).to(device, dtype)


class Square(nn.Module):
    """f(x) = sum of x^2 per sample: one output per sample, gradient 2x."""

    def forward(self, x):
        return (x * x).reshape(x.shape[0], -1).sum(1)


# -- saliency and gradient x input ------------------------------------------------------------------------
def test_saliency_of_linear_model_is_the_weight_row(device):
    m, w = _linear_model(device)
    x = gg.tensor(np.random.randn(3, 4), device=device)
    tgt = [0, 2, 1]
    s = E.saliency(m, x, tgt, abs=False)
    assert s.device == x.device and s.shape == x.shape
    np.testing.assert_allclose(to_np(s), w[tgt], rtol=1e-12)
    np.testing.assert_allclose(to_np(E.saliency(m, x, tgt)), np.abs(w[tgt]), rtol=1e-12)
    np.testing.assert_allclose(to_np(E.saliency(m, x, 1, abs=False)), np.tile(w[1], (3, 1)), rtol=1e-12)
    np.testing.assert_allclose(to_np(E.gradient_x_input(m, x, tgt)), w[tgt] * to_np(x), rtol=1e-12)


def test_target_none_is_the_predicted_class(device):
    m, w = _linear_model(device)
    x = gg.tensor(np.random.randn(5, 4), device=device)
    pred = to_np(m(x).detach()).argmax(1)
    np.testing.assert_allclose(to_np(E.saliency(m, x, abs=False)), w[pred], rtol=1e-12)
    np.testing.assert_allclose(to_np(E.saliency(m, x, gg.tensor(pred, device=device), abs=False)), w[pred])


def test_saliency_scalar_output_model_and_bad_targets(device):
    x = gg.tensor(np.random.randn(2, 3, 2), device=device)
    np.testing.assert_allclose(to_np(E.saliency(Square(), x, abs=False)), 2 * to_np(x), rtol=1e-6)
    m, _ = _linear_model(device)
    x4 = gg.tensor(np.random.randn(2, 4), device=device)
    with pytest.raises(IndexError, match="out of range"):
        E.saliency(m, x4, 3)
    with pytest.raises(ValueError, match="one class index per sample"):
        E.saliency(m, x4, [0, 1, 2])


def test_explaining_leaves_grads_and_train_mode_alone(device):
    m = _mlp(device, nn.ReLU)
    m.train()
    m[1].eval()  # a module with its own flag must get it back
    x = gg.tensor(np.random.randn(3, 4), device=device)
    loss = m(x).sum()
    loss.backward()
    before = [to_np(p.grad).copy() for p in m.parameters()]
    for fn in (lambda: E.saliency(m, x, 0), lambda: E.smoothgrad(m, x, 0, n_samples=3, seed=1),
               lambda: E.integrated_gradients(m, x, 0, n_steps=5), lambda: E.guided_backprop(m, x, 0),
               lambda: E.lrp(m, x, 0)):
        fn()
        for b, p in zip(before, m.parameters()):
            np.testing.assert_array_equal(to_np(p.grad), b)
        assert m.training and m[0].training and not m[1].training and m[2].training


# -- SmoothGrad -------------------------------------------------------------------------------------------
def test_smoothgrad_with_zero_noise_equals_saliency(device):
    m = _mlp(device, nn.Tanh)
    x = gg.tensor(np.random.randn(4, 4), device=device)
    g = to_np(E.saliency(m, x, [0, 1, 2, 0], abs=False))
    sg = E.smoothgrad(m, x, [0, 1, 2, 0], n_samples=7, noise_level=0.0, seed=3)
    np.testing.assert_allclose(to_np(sg), g, rtol=1e-12, atol=1e-15)
    sq = E.smoothgrad(m, x, [0, 1, 2, 0], n_samples=7, noise_level=0.0, variant="smoothgrad_sq")
    np.testing.assert_allclose(to_np(sq), g * g, rtol=1e-12, atol=1e-15)
    vg = E.smoothgrad(m, x, [0, 1, 2, 0], n_samples=7, noise_level=0.0, variant="vargrad")
    np.testing.assert_allclose(to_np(vg), 0, atol=1e-14)


def test_smoothgrad_statistics_on_a_quadratic(device):
    # f = sum x^2: the gradient at x + e is 2x + 2e, so SmoothGrad -> 2x, SmoothGrad^2 -> 4x^2 + 4 s^2,
    # VarGrad -> 4 s^2 with s = noise_level * (max x - min x) per sample.
    x = gg.tensor(np.array([[0.0, 1.0, 2.0, -2.0], [1.0, 1.5, 2.0, 0.5]]), device=device)
    level, n = 0.1, 4000
    s2 = np.array([(0.1 * 4.0) ** 2, (0.1 * 1.5) ** 2])[:, None]
    sg = to_np(E.smoothgrad(Square(), x, None, n_samples=n, noise_level=level, seed=0))
    # NOTE: the mean of n Gaussians of std 2s is within 5 standard errors of 2x
    assert np.all(np.abs(sg - 2 * to_np(x)) < 5 * 2 * np.sqrt(s2) / np.sqrt(n))
    vg = to_np(E.smoothgrad(Square(), x, None, n_samples=n, noise_level=level, seed=0, variant="vargrad"))
    np.testing.assert_allclose(vg, np.broadcast_to(4 * s2, vg.shape), rtol=0.15)
    sq = to_np(E.smoothgrad(Square(), x, None, n_samples=n, noise_level=level, seed=0, variant="smoothgrad_sq",
                            internal_batch_size=64))
    np.testing.assert_allclose(sq - sg ** 2, vg, rtol=1e-6, atol=1e-9)  # same seed, same noise, any chunking


def test_smoothgrad_seed_and_chunking(device):
    m = _mlp(device, nn.Tanh)
    x = gg.tensor(np.random.randn(3, 4), device=device)
    a = to_np(E.smoothgrad(m, x, 1, n_samples=10, seed=5))
    b = to_np(E.smoothgrad(m, x, 1, n_samples=10, seed=5, internal_batch_size=7))
    c = to_np(E.smoothgrad(m, x, 1, n_samples=10, seed=6))
    np.testing.assert_allclose(a, b, rtol=1e-10)
    assert np.abs(a - c).max() > 1e-6
    with pytest.raises(ValueError, match="variant"):
        E.smoothgrad(m, x, 1, variant="nope")


# -- integrated gradients ---------------------------------------------------------------------------------
def test_gradient_x_input_equals_one_step_ig_from_zero(device):
    m = _mlp(device, nn.ReLU)
    x = gg.tensor(np.random.randn(5, 4), device=device)
    ig = E.integrated_gradients(m, x, [0, 1, 2, 1, 0], baseline=None, n_steps=1, method="riemann_right")
    np.testing.assert_allclose(to_np(ig), to_np(E.gradient_x_input(m, x, [0, 1, 2, 1, 0])), rtol=1e-12)


@pytest.mark.parametrize("method,scale", [("riemann_trapezoid", 1.0), ("riemann_middle", 1.0),
                                          ("gausslegendre", 1.0), ("riemann_left", 5 / 6), ("riemann_right", 7 / 6)])
def test_ig_of_square_by_hand(device, method, scale):
    # f = sum x^2, baseline 0: IG_i = x_i * sum_k w_k 2 a_k x_i = 2 x_i^2 sum_k w_k a_k; the exact integral
    # (sum w a = 1/2) gives x_i^2; left/right Riemann with n=6 give sum w a = 5/12 and 7/12.
    x = gg.tensor(np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]]), device=device)
    ig, delta = E.integrated_gradients(Square(), x, None, n_steps=6, method=method, return_convergence_delta=True)
    np.testing.assert_allclose(to_np(ig), scale * to_np(x) ** 2, rtol=1e-12)
    np.testing.assert_allclose(to_np(delta), abs(scale - 1) * (to_np(x) ** 2).sum(1), atol=1e-12)


def test_ig_baseline_and_delta_definition(device):
    m = _mlp(device, nn.Tanh)
    x = gg.tensor(np.random.randn(3, 4), device=device)
    b = gg.tensor(np.random.randn(4), device=device)  # broadcast to every sample
    ig, delta = E.integrated_gradients(m, x, 2, baseline=b, n_steps=20, method="riemann_left",
                                       return_convergence_delta=True)
    fx, fb = to_np(m(x).detach())[:, 2], to_np(m(b.reshape(1, 4)).detach())[0, 2]
    np.testing.assert_allclose(to_np(delta), np.abs(to_np(ig).sum(1) - (fx - fb)), rtol=1e-10, atol=1e-14)
    assert to_np(delta).max() > 1e-6  # 20 left steps are not exact: the delta is a real measurement


@pytest.mark.parametrize("method", E.IG_METHODS)
def test_ig_completeness_on_a_small_relu_network(device, method):
    # BOUND: on this 4-8-3 ReLU network (outputs of size ~1) every quadrature with 256 steps has
    # |sum(IG) - (f(x) - f(0))| < 5e-3 for every sample (the integrand is piecewise constant along the path).
    m = _mlp(device, nn.ReLU)
    x = gg.tensor(np.random.randn(6, 4), device=device)
    _, delta = E.integrated_gradients(m, x, 1, n_steps=256, method=method, return_convergence_delta=True)
    assert to_np(delta).max() < 5e-3


# BOUNDS on the smooth (tanh) network, 64 steps: left/right Riemann O(1/n) < 1e-2, trapezoid/midpoint
# O(1/n^2) < 1e-4; Gauss-Legendre converges exponentially: < 1e-10 from 16 points.
_IG_BOUND = {"riemann_left": 1e-2, "riemann_right": 1e-2, "riemann_trapezoid": 1e-4, "riemann_middle": 1e-4,
             "gausslegendre": 1e-10}


@pytest.mark.parametrize("method", E.IG_METHODS)
def test_ig_delta_decreases_with_steps_on_a_smooth_model(device, method):
    m = _mlp(device, nn.Tanh)
    x = gg.tensor(np.random.randn(5, 4), device=device)
    deltas = []
    for n in (4, 8, 16, 32, 64):
        _, d = E.integrated_gradients(m, x, 1, n_steps=n, method=method, return_convergence_delta=True)
        deltas.append(float(to_np(d).max()))
    for a, b in zip(deltas, deltas[1:]):
        assert b < a or b < 1e-12, deltas
    assert deltas[-1] < _IG_BOUND[method]
    if method == "gausslegendre":
        assert deltas[2] < 1e-10


@pytest.mark.parametrize("bs", [1, 3, 5, 17, 1000])
def test_ig_chunking_gives_the_same_attributions(device, bs):
    m = _mlp(device, nn.Tanh)
    x = gg.tensor(np.random.randn(5, 4), device=device)
    full = to_np(E.integrated_gradients(m, x, [0, 1, 2, 0, 1], n_steps=9, method="gausslegendre"))
    part = to_np(E.integrated_gradients(m, x, [0, 1, 2, 0, 1], n_steps=9, method="gausslegendre",
                                        internal_batch_size=bs))
    np.testing.assert_allclose(part, full, rtol=1e-12, atol=1e-15)


def test_ig_rejects_bad_arguments():
    m = _mlp("cpu")
    x = gg.randn(2, 4, dtype="float64")
    with pytest.raises(ValueError, match="method"):
        E.integrated_gradients(m, x, 0, method="simpson")
    with pytest.raises(ValueError, match="n_steps >= 2"):
        E.integrated_gradients(m, x, 0, n_steps=1, method="riemann_trapezoid")
    with pytest.raises(ValueError, match="broadcast"):
        E.integrated_gradients(m, x, 0, baseline=gg.zeros(3, dtype="float64"))


# -- Grad-CAM and guided backprop -------------------------------------------------------------------------
def _two_region_net(device):
    """Input channel c has a blob in region c; a 1x1 conv copies channels; GAP + Linear: class c reads
    feature channel c only, so only region c can drive class c."""
    conv = nn.Conv2d(2, 2, 1, bias=False)
    lin = nn.Linear(2, 2, bias=False)
    with gg.no_grad():
        conv.weight.copy_(np.eye(2).reshape(2, 2, 1, 1))
        lin.weight.copy_(np.array([[3.0, 0.0], [0.0, 5.0]]))
    model = nn.Sequential(conv, nn.ReLU(), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), lin)
    return model.to(device, "float64")


def _two_region_input(device):
    x = np.zeros((1, 2, 8, 8))
    x[0, 0, 1:3, 1:3] = 1.0   # region of class 0: top-left
    x[0, 1, 5:7, 4:7] = 2.0   # region of class 1: bottom-right
    return gg.tensor(x, device=device)


def test_grad_cam_peaks_in_the_only_region_that_drives_the_target(device):
    model = _two_region_net(device)
    x = _two_region_input(device)
    # at the ReLU layer (8x8): d score_c / dA_c = w_cc / 64 everywhere, so the map is (w_cc / 64) * A_c exactly
    cam0 = to_np(E.grad_cam(model, x, 0, layer="1", upsample=False))
    expect0 = 3.0 / 64 * to_np(x)[:, :1]
    np.testing.assert_allclose(cam0, expect0, rtol=1e-12, atol=1e-15)
    cam1 = to_np(E.grad_cam(model, x, 1, layer=model[1]))
    np.testing.assert_allclose(cam1, 5.0 / 64 * to_np(x)[:, 1:], rtol=1e-12, atol=1e-15)
    # at the pooled layer (4x4), upsampled to 8x8: the peak lies in the target's region, zero far from it
    for c, (rows, cols) in ((0, (slice(1, 3), slice(1, 3))), (1, (slice(5, 7), slice(4, 7)))):
        cam = to_np(E.grad_cam(model, x, c, layer="2"))[0, 0]
        assert cam.shape == (8, 8)
        i, j = np.unravel_index(cam.argmax(), cam.shape)
        assert rows.start - 1 <= i <= rows.stop and cols.start - 1 <= j <= cols.stop, (c, i, j)
        other = (slice(5, 8), slice(5, 8)) if c == 0 else (slice(0, 3), slice(0, 3))
        assert cam[other].max() < 1e-12


def test_grad_cam_channel_weights_by_hand(device):
    # two feature channels both active everywhere-ish; class 0 = 2*mean(A0) - 1*mean(A1): weights 2/16, -1/16
    conv = nn.Conv2d(1, 2, 1)
    lin = nn.Linear(2, 1, bias=False)
    with gg.no_grad():
        conv.weight.copy_(np.array([1.0, -1.0]).reshape(2, 1, 1, 1))
        conv.bias.copy_(np.array([0.0, 0.5]))
        lin.weight.copy_(np.array([[2.0, -1.0]]))
    model = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), lin).to(device, "float64")
    xv = np.random.randn(2, 1, 4, 4)
    x = gg.tensor(xv, device=device)
    a0, a1 = xv[:, 0], -xv[:, 0] + 0.5
    raw = 2 / 16 * a0 - 1 / 16 * a1
    got = to_np(E.grad_cam(model, x, 0, layer="0", relu=False))[:, 0]
    np.testing.assert_allclose(got, raw, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(to_np(E.grad_cam(model, x, 0, relu=False))[:, 0], got)  # default: last Conv2d
    np.testing.assert_allclose(to_np(E.grad_cam(model, x, 0, layer="0"))[:, 0], np.maximum(raw, 0), atol=1e-15)
    with pytest.raises(ValueError, match="no layer named"):
        E.grad_cam(model, x, 0, layer="nope")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        E.grad_cam(model, x, 0, layer="2")


def test_upsample_bilinear_by_hand():
    up = to_np(E.upsample_bilinear(np.array([[0.0, 1.0], [2.0, 3.0]]), (4, 4)))
    # half-pixel centres: rows/cols weights [1,0], [.75,.25], [.25,.75], [0,1]
    r = np.array([[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    np.testing.assert_allclose(up, r @ np.array([[0.0, 1.0], [2.0, 3.0]]) @ r.T)
    assert up[1, 1] == pytest.approx(0.75)
    np.testing.assert_allclose(to_np(E.upsample_bilinear(np.full((3, 5), 2.5), (7, 4))), 2.5)


def test_guided_backprop_by_hand(device):
    w1 = np.array([[1.0, -1.0], [2.0, 1.0], [-1.0, 0.5]])
    w2 = np.array([[1.0, -2.0, 3.0]])
    l1, l2 = nn.Linear(2, 3, bias=False), nn.Linear(3, 1, bias=False)
    with gg.no_grad():
        l1.weight.copy_(w1)
        l2.weight.copy_(w2)
    model = nn.Sequential(l1, nn.ReLU(), l2).to(device, "float64")
    xv = np.array([[1.0, 0.5], [-1.0, 2.0]])
    x = gg.tensor(xv, device=device)
    z = xv @ w1.T
    mask = (z > 0).astype(float)
    plain = (mask * w2) @ w1
    guided = (mask * np.maximum(w2, 0)) @ w1
    np.testing.assert_allclose(to_np(E.guided_backprop(model, x, 0)), guided, rtol=1e-12)
    # nothing stays patched: plain gradients afterwards are the ordinary ones
    np.testing.assert_allclose(to_np(E.saliency(model, x, 0, abs=False)), plain, rtol=1e-12)
    assert not any(m._forward_hooks for m in model.modules())


def test_guided_grad_cam_is_the_product(device):
    gg.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(48, 4)).to(device, "float64")
    x = gg.tensor(np.random.rand(2, 1, 8, 8), device=device)
    ggc = to_np(E.guided_grad_cam(model, x, [1, 3], layer="1"))
    prod = to_np(E.guided_backprop(model, x, [1, 3])) * to_np(E.grad_cam(model, x, [1, 3], layer="1"))
    np.testing.assert_allclose(ggc, prod, rtol=1e-12)
    assert np.abs(ggc).max() > 0


# -- the `explain` command's entry point ------------------------------------------------------------------
@pytest.mark.parametrize("method", ["saliency", "smoothgrad", "ig", "gradcam", "lrp"])
def test_explain_main_writes_a_png(tmp_path, method):
    pytest.importorskip("matplotlib")
    from gpugrad.explain.cli import explain_main
    from gpugrad.models import build_model
    gg.manual_seed(0)
    cfg = {"model": "cnn"}
    model = build_model(cfg)
    ck = tmp_path / "checkpoint.ggt"
    gg.save({"model_config": cfg, "model_state": model.state_dict()}, ck)
    out = tmp_path / f"{method}.png"
    info = explain_main(ck, method, index=7, out_png=out, device="cpu", n_steps=8, n_samples=4)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    x = gg.data.load_digits("test")[7][0].reshape(1, 1, 8, 8)
    assert info["target"] == info["prediction"] == int(model(x).detach().numpy().argmax())
    if method == "saliency":
        np.testing.assert_allclose(info["attribution"], E.saliency(model, x, info["target"]).numpy()[0], rtol=1e-6)
    assert np.abs(info["attribution"]).sum() > 0


def test_explain_main_gradcam_needs_a_conv(tmp_path):
    pytest.importorskip("matplotlib")
    from gpugrad.explain.cli import explain_main
    from gpugrad.models import build_model
    cfg = {"model": "mlp"}
    gg.save({"model_config": cfg, "model_state": build_model(cfg).state_dict()}, tmp_path / "c.ggt")
    with pytest.raises(ValueError, match="convolutional"):
        explain_main(tmp_path / "c.ggt", "gradcam", 0, tmp_path / "x.png")
    info = explain_main(tmp_path / "c.ggt", "lrp", 0, tmp_path / "x.png")
    assert info["attribution"].shape == (1, 8, 8)


def test_importing_explain_does_not_import_matplotlib():
    import subprocess
    import sys
    from pathlib import Path
    code = "import sys, gpugrad.explain; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 0, r.stderr
