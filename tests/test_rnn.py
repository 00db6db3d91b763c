"""nn.RNN / LSTM / GRU and their cells: a plain NumPy reference written here (every flag combination), float64
gradchecks, the fused time loop against its composite (create_graph), the cell functions against their composites,
PyTorch's parameter layout, state_dict round trips and errors; and, where PyTorch is installed, outputs and
gradients against PyTorch with its state_dict loaded."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn
from gpugrad.autograd import gradcheck
from gpugrad.fused import rnn as K
from gpugrad.nn.rnn import RNNBase

try:
    import torch
except ImportError:  # the torch comparisons skip; everything else runs
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the comparison with it skips)")
MODES = ("LSTM", "GRU", "RNN")
FLAGS = list(itertools.product((1, 2), (False, True), (False, True), (True, False)))  # layers, bidir, batch_first, bias


def _sig(x):
    return 1 / (1 + np.exp(-x))


# -- a plain reference: the recurrences as the PyTorch docs write them, in float64 NumPy -----------------------
def _ref_cell(mode, x, h, c, w, nonlin):
    w_ih, w_hh, b_ih, b_hh, w_hr = w
    gi = x @ w_ih.T + (0 if b_ih is None else b_ih)
    gh = h @ w_hh.T + (0 if b_hh is None else b_hh)
    if mode == "LSTM":
        i, f, g, o = np.split(gi + gh, 4, axis=-1)
        c = _sig(f) * c + _sig(i) * np.tanh(g)
        h = _sig(o) * np.tanh(c)
        return (h if w_hr is None else h @ w_hr.T), c
    if mode == "GRU":
        ir, iz, in_ = np.split(gi, 3, axis=-1)
        hr, hz, hn = np.split(gh, 3, axis=-1)
        r, z = _sig(ir + hr), _sig(iz + hz)
        n = np.tanh(in_ + r * hn)
        return (1 - z) * n + z * h, None
    pre = gi + gh
    return (np.tanh(pre) if nonlin == "tanh" else np.maximum(pre, 0)), None


def _ref(m, x, h0, c0):
    """(output, h_n, c_n) of module m on x (T, B, in), from its parameters, step by step."""
    D = 2 if m.bidirectional else 1
    mode = m.mode if m.mode in ("LSTM", "GRU") else "RNN"
    hn, cn = [], []
    for layer in range(m.num_layers):
        outs = []
        for d in range(D):
            w = [None if p is None else p.detach().numpy() for p in m._weights(layer, d)]
            k = layer * D + d
            h, c = h0[k], None if c0 is None else c0[k]
            ys = [None] * x.shape[0]
            for t in (reversed(range(x.shape[0])) if d else range(x.shape[0])):
                h, c = _ref_cell(mode, x[t], h, c, w, getattr(m, "nonlinearity", "tanh"))
                ys[t] = h
            outs.append(np.stack(ys))
            hn.append(h)
            cn.append(c)
        x = np.concatenate(outs, axis=-1)
    return x, np.stack(hn), (np.stack(cn) if mode == "LSTM" else None)


def _module(mode, layers, bidir, bf, bias, extra=None, seed=0):
    gg.manual_seed(seed)
    cls = getattr(nn, mode)
    return cls(3, 4, num_layers=layers, bidirectional=bidir, batch_first=bf, bias=bias, dtype=gg.float64, **(extra or {}))


def _variants(mode):
    return [{}] + ([{"proj_size": 2}] if mode == "LSTM" else []) + ([{"nonlinearity": "relu"}] if mode == "RNN" else [])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layers,bidir,bf,bias", FLAGS)
def test_forward_matches_the_reference_for_every_flag(mode, layers, bidir, bf, bias):
    rng = np.random.default_rng(1)
    T, B = 4, 2
    for extra in _variants(mode):
        m = _module(mode, layers, bidir, bf, bias, extra)
        D, P = (2 if bidir else 1), extra.get("proj_size") or 4
        x = rng.standard_normal((T, B, 3))
        h0, c0 = rng.standard_normal((layers * D, B, P)), rng.standard_normal((layers * D, B, 4))
        want = _ref(m, x, h0, c0 if mode == "LSTM" else None)
        for given in (True, False):  # initial states given, or zeros by default
            xi = gg.tensor(x.transpose(1, 0, 2) if bf else x)
            hx = (gg.tensor(h0), gg.tensor(c0)) if mode == "LSTM" else gg.tensor(h0)
            out, st = m(xi, hx) if given else m(xi)
            w = want if given else _ref(m, x, 0 * h0, 0 * c0 if mode == "LSTM" else None)
            got_out = out.detach().numpy().transpose(1, 0, 2) if bf else out.detach().numpy()
            np.testing.assert_allclose(got_out, w[0], rtol=1e-12, atol=1e-12)
            hn, cn = st if mode == "LSTM" else (st, None)
            np.testing.assert_allclose(hn.detach().numpy(), w[1], rtol=1e-12, atol=1e-12)
            if mode == "LSTM":
                np.testing.assert_allclose(cn.detach().numpy(), w[2], rtol=1e-12, atol=1e-12)
        # unbatched (2-D) input: the batched result of a batch of one, squeezed
        out1, st1 = m(gg.tensor(x[:, 0]), (gg.tensor(h0[:, 0]), gg.tensor(c0[:, 0])) if mode == "LSTM"
                      else gg.tensor(h0[:, 0]))
        np.testing.assert_allclose(out1.detach().numpy(), want[0][:, 0], rtol=1e-12, atol=1e-12)
        assert (st1[0] if mode == "LSTM" else st1).shape == (layers * D, P)


@pytest.mark.parametrize("mode,extra", [(m, e) for m in MODES for e in _variants(m)])
@pytest.mark.parametrize("bidir", [False, True])
def test_gradcheck_float64(mode, extra, bidir):
    L = 1 if bidir else 2  # NOTE: two layers (the inter-layer path) unidirectional only: finite differences cost time
    m = _module(mode, L, bidir, False, True, extra)
    rng = np.random.default_rng(2)
    D, P = (2 if bidir else 1), extra.get("proj_size") or 4
    x = gg.tensor(rng.standard_normal((3, 2, 3)), requires_grad=True)
    h0 = gg.tensor(rng.standard_normal((L * D, 2, P)), requires_grad=True)
    c0 = gg.tensor(rng.standard_normal((L * D, 2, 4)), requires_grad=True)

    def f(x, h0, c0, *ps):
        out, st = m(x, (h0, c0)) if mode == "LSTM" else m(x, h0)
        st = st if isinstance(st, tuple) else (st,)
        return (out * out).sum() + sum((s * s * 0.5).sum() for s in st)
    assert gradcheck(f, (x, h0, c0, *m.parameters()))


def test_relu_rnn_gradient_at_the_kink_and_cells_gradcheck():
    for cls, kw in ((nn.LSTMCell, {}), (nn.GRUCell, {}), (nn.RNNCell, {"nonlinearity": "relu"}),
                    (nn.GRUCell, {"bias": False})):
        gg.manual_seed(0)
        cell = cls(3, 4, dtype=gg.float64, **kw)
        x = gg.tensor(np.random.default_rng(3).standard_normal((2, 3)), requires_grad=True)
        h = gg.tensor(np.random.default_rng(4).standard_normal((2, 4)), requires_grad=True)
        hx = (h, h * 0.5) if cls is nn.LSTMCell else h
        assert gradcheck(lambda x, h, *ps: sum((o * o).sum() for o in (cell(x, (h, h * 0.5)) if cls is nn.LSTMCell
                                                                          else (cell(x, h),))), (x, h, *cell.parameters()))
        out = cell(x, hx)
        assert (out[0] if isinstance(out, tuple) else out).shape == (2, 4)
    # relu'(0) = 0: a pre-activation of exactly 0 passes no gradient
    cell = nn.RNNCell(1, 1, nonlinearity="relu", bias=False, dtype=gg.float64)
    with gg.no_grad():
        cell.weight_ih.fill_(1.0)
    x = gg.tensor([[0.0]], dtype=gg.float64, requires_grad=True)
    cell(x).sum().backward()
    assert x.grad.item() == 0.0


@pytest.mark.parametrize("mode,extra", [(m, e) for m in MODES for e in _variants(m)])
def test_fused_loop_equals_its_composite_to_second_order(mode, extra):
    """create_graph=True differentiates the composite loop: its first derivatives equal the fused backward's,
    and a second derivative exists (checked against finite differences of the first)."""
    m = _module(mode, 1, True, False, True, extra)
    x = gg.tensor(np.random.default_rng(5).standard_normal((3, 2, 3)), requires_grad=True)

    def loss(x):
        out, st = m(x)
        return (out * out).sum()
    g_fused, = gg.autograd.grad(loss(x), [x])
    g_comp, = gg.autograd.grad(loss(x), [x], create_graph=True)
    np.testing.assert_allclose(g_comp.detach().numpy(), g_fused.detach().numpy(), rtol=1e-12, atol=1e-13)
    assert g_comp.requires_grad
    assert gradcheck(lambda x: gg.autograd.grad(loss(x), [x], create_graph=True)[0].sum(), (x,))


def test_cell_functions_equal_their_composites():
    """The array-level cells (NumPy fallback) against the composites in Tensor ops: values and gradients."""
    rng = np.random.default_rng(6)
    B, H = 3, 5
    xg, hg, c0 = rng.standard_normal((B, 4 * H)) * 3, rng.standard_normal((B, 4 * H)), rng.standard_normal((B, H))
    dh, dc, dhr = rng.standard_normal((3, B, H))
    act, c, h = K.lstm_cell_fwd(xg, hg, c0)
    ts = [gg.tensor(a, requires_grad=True) for a in (xg, hg, c0)]
    cc, hh = K.c_lstm_cell(*ts)
    np.testing.assert_allclose(c, cc.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(h, hh.detach().numpy(), rtol=1e-13)
    ((hh * gg.tensor(dh + dhr)).sum() + (cc * gg.tensor(dc)).sum()).backward()
    dg, dc0 = K.lstm_cell_bwd(act, c, c0, dh, dc, dhr=dhr)
    np.testing.assert_allclose(dg, ts[0].grad.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dc0, ts[2].grad.detach().numpy(), rtol=1e-12, atol=1e-14)

    xg3, hg3, h0, b = rng.standard_normal((B, 3 * H)), rng.standard_normal((B, 3 * H)), rng.standard_normal((B, H)), \
        rng.standard_normal(3 * H)
    saved, h = K.gru_cell_fwd(xg3, hg3, h0, b)
    ts = [gg.tensor(a, requires_grad=True) for a in (xg3, hg3, h0, b)]
    hh = K.c_gru_cell(*ts)
    np.testing.assert_allclose(h, hh.detach().numpy(), rtol=1e-13)
    (hh * gg.tensor(dh)).sum().backward()
    dxg, dhg, dh0 = K.gru_cell_bwd(saved, h0, dh)
    np.testing.assert_allclose(dxg, ts[0].grad.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dhg, ts[1].grad.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dh0, ts[2].grad.detach().numpy(), rtol=1e-14)  # hg is an input of its own: dh0 = dh * z
    np.testing.assert_allclose(ts[3].grad.detach().numpy(), dhg.sum(0), rtol=1e-12)

    for kind in ("tanh", "relu"):
        x1, x2 = rng.standard_normal((2, B, H))
        y = K.rnn_cell_fwd(kind, x1, x2)
        t1, t2 = gg.tensor(x1, requires_grad=True), gg.tensor(x2)
        yy = K.c_rnn_cell(kind, t1, t2)
        np.testing.assert_allclose(y, yy.detach().numpy(), rtol=1e-15)
        (yy * gg.tensor(dh)).sum().backward()
        np.testing.assert_allclose(K.rnn_cell_bwd(kind, y, dh), t1.grad.detach().numpy(), rtol=1e-14)


def test_cells_float16_compute_in_float32_and_extremes():
    rng = np.random.default_rng(7)
    xg = (rng.standard_normal((4, 24)) * 4).astype(np.float16)
    xg[0, :3] = [60000, -60000, 0]
    hg, c0 = np.zeros_like(xg), rng.standard_normal((4, 6)).astype(np.float16)
    act, c, h = K.lstm_cell_fwd(xg, hg, c0)
    a32, c32, h32 = K.lstm_cell_fwd(xg.astype(np.float32), hg.astype(np.float32), c0.astype(np.float32))
    assert act.dtype == c.dtype == h.dtype == np.float16
    np.testing.assert_array_equal(act, a32.astype(np.float16))  # one rounding of the float32 result
    np.testing.assert_array_equal(h, h32.astype(np.float16))
    assert act[0, 0] == 1 and act[0, 1] == 0 and np.isfinite(act).all()  # saturated gates, no overflow
    with pytest.raises(TypeError, match="dtype"):
        K.lstm_cell_fwd(xg, hg.astype(np.float32), c0)
    with pytest.raises(ValueError, match="shape"):
        K.lstm_cell_fwd(xg, hg, c0[:, :5])


def test_float32_module_matches_float64():
    m64 = _module("LSTM", 2, True, True, True)
    m32 = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    m32.load_state_dict({k: v.detach().numpy().astype(np.float32) for k, v in m64.state_dict().items()})
    x = np.random.default_rng(8).standard_normal((2, 5, 3))
    out32, _ = m32(gg.tensor(x.astype(np.float32)))
    out64, _ = m64(gg.tensor(x))
    assert out32.dtype == gg.float32
    np.testing.assert_allclose(out32.detach().numpy(), out64.detach().numpy(), rtol=1e-5, atol=1e-6)


# -- parameters, init, state_dict, train/eval, errors -----------------------------------------------------------
def test_parameter_names_shapes_and_init():
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    names = [(n, tuple(p.shape)) for n, p in m.named_parameters()]
    want = []
    for layer, sfx in itertools.product((0, 1), ("", "_reverse")):
        inp = 3 if layer == 0 else 4
        want += [(f"weight_ih_l{layer}{sfx}", (16, inp)), (f"weight_hh_l{layer}{sfx}", (16, 2)),
                 (f"bias_ih_l{layer}{sfx}", (16,)), (f"bias_hh_l{layer}{sfx}", (16,)), (f"weight_hr_l{layer}{sfx}", (2, 4))]
    assert names == want  # PyTorch's names, shapes and order
    assert [n for n, _ in nn.GRU(3, 5, bias=False).named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    assert nn.GRU(3, 5).weight_ih_l0.shape == (15, 3) and nn.RNN(3, 5).weight_hh_l0.shape == (5, 5)
    bound = 1 / math.sqrt(4)
    vals = np.concatenate([p.detach().numpy().ravel() for p in m.parameters()])
    assert np.abs(vals).max() <= bound and np.abs(vals).max() > 0.9 * bound and vals.std() > 0.25
    assert len(m.all_weights) == 4 and len(m.all_weights[0]) == 5
    assert repr(m) == "LSTM(3, 4, proj_size=2, num_layers=2, bidirectional=True)"
    assert repr(nn.RNNCell(3, 4, nonlinearity="relu")) == "RNNCell(3, 4, nonlinearity=relu)"
    assert repr(nn.GRUCell(3, 4, bias=False)) == "GRUCell(3, 4, bias=False)"


def test_state_dict_round_trip(tmp_path):
    m = _module("GRU", 2, True, False, True, seed=3)
    x = gg.tensor(np.random.default_rng(9).standard_normal((4, 2, 3)))
    want = m(x)[0].detach().numpy()
    gg.save(m.state_dict(), tmp_path / "gru.ggt")
    m2 = _module("GRU", 2, True, False, True, seed=4)
    assert not np.allclose(m2(x)[0].detach().numpy(), want)
    m2.load_state_dict(gg.load(tmp_path / "gru.ggt"))
    np.testing.assert_array_equal(m2(x)[0].detach().numpy(), want)


def test_dropout_between_layers_in_train_mode_only():
    m = _module("LSTM", 2, False, False, True, {"dropout": 1.0})
    x = gg.tensor(np.random.default_rng(10).standard_normal((3, 2, 3)))
    top = nn.LSTM(4, 4, dtype=gg.float64)  # the second layer alone, fed what dropout(p=1) leaves: zeros
    top.load_state_dict({k.replace("l1", "l0"): v for k, v in m.state_dict().items() if "l1" in k})
    m.train()
    np.testing.assert_allclose(m(x)[0].detach().numpy(), top(gg.zeros(3, 2, 4, dtype=gg.float64))[0].detach().numpy(), rtol=1e-14)
    m.eval()
    np.testing.assert_allclose(m(x)[0].detach().numpy(), _ref(m, x.detach().numpy(), np.zeros((2, 2, 4)), np.zeros((2, 2, 4)))[0],
                               rtol=1e-12)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.GRU(3, 4, dropout=0.5)


@pytest.mark.parametrize("make,call,exc,text", [
    (lambda: nn.LSTM(3, 4), lambda m: m(gg.zeros(5, 2, 2)), RuntimeError,
     "input.size(-1) must be equal to input_size. Expected 3, got 2"),
    (lambda: nn.LSTM(3, 4), lambda m: m(gg.zeros(5, 2, 3, 1)), ValueError, "LSTM: Expected input to be 2D or 3D, got 4D instead"),
    (lambda: nn.LSTM(3, 4), lambda m: m(gg.zeros(0, 2, 3)), RuntimeError, "Expected sequence length to be larger than 0"),
    (lambda: nn.LSTM(3, 4), lambda m: m(gg.zeros(5, 2, 3), (gg.zeros(1, 2, 5), gg.zeros(1, 2, 4))), RuntimeError,
     "Expected hidden[0] size (1, 2, 4), got [1, 2, 5]"),
    (lambda: nn.LSTM(3, 4), lambda m: m(gg.zeros(5, 3), (gg.zeros(1, 2, 4), gg.zeros(1, 2, 4))), RuntimeError,
     "For unbatched 2-D input, hx and cx should also be 2-D but got (3-D, 3-D) tensors"),
    (lambda: nn.GRU(3, 4), lambda m: m(gg.zeros(5, 2, 3), gg.zeros(1, 3, 4)), RuntimeError,
     "Expected hidden size (1, 2, 4), got [1, 3, 4]"),
    (lambda: nn.GRU(3, 4), lambda m: m(gg.zeros(5, 2, 3), gg.zeros(1, 4)), RuntimeError,
     "For batched 3-D input, hx should also be 3-D but got 2-D tensor"),
    (lambda: nn.LSTM(3, 4), lambda m: m(gg.zeros(5, 2, 3, dtype=gg.float64)), ValueError, "does not match weight dtype"),
    (lambda: nn.LSTMCell(3, 4), lambda m: m(gg.zeros(2, 3), (gg.zeros(3, 4), gg.zeros(3, 4))), RuntimeError,
     "Input batch size 2 doesn't match hidden0 batch size 3"),
    (lambda: nn.GRUCell(3, 4), lambda m: m(gg.zeros(2, 2)), RuntimeError, "input has inconsistent input_size: got 2 expected 3"),
    (lambda: nn.RNNCell(3, 4, nonlinearity="gelu"), lambda m: m(gg.zeros(2, 3)), RuntimeError, "Unknown nonlinearity: gelu"),
    (lambda: nn.LSTM(3, 4, proj_size=4), None, ValueError, "proj_size has to be smaller than hidden_size"),
    (lambda: RNNBase("GRU", 3, 4, proj_size=2), None, ValueError, "proj_size argument is only supported for LSTM"),
    (lambda: nn.RNN(3, 4, nonlinearity="gelu"), None, ValueError, "Unknown nonlinearity 'gelu'"),
    (lambda: nn.LSTM(3, 0), None, ValueError, "hidden_size must be greater than zero"),
    (lambda: nn.LSTM(3, 4, dropout=1.5), None, ValueError, "dropout should be a number in range [0, 1]"),
])
def test_errors_are_pytorchs(make, call, exc, text):
    with pytest.raises(exc) as e:
        m = make()
        call(m)
    assert text in str(e.value)


def test_empty_batch_and_inplace_write_to_saved_output():
    m = nn.LSTM(3, 4)
    out, (h, c) = m(gg.zeros(5, 0, 3))
    assert out.shape == (5, 0, 4) and h.shape == (1, 0, 4)
    out, _ = nn.GRU(3, 4)(gg.ones(2, 1, 3, requires_grad=True))
    out.mul_(2)  # the node saved its output (the states it produced): PyTorch's error, not a wrong gradient
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


# -- against PyTorch ----------------------------------------------------------------------------------------------
def _torch_pair(mode, kw, cell=False):
    torch.manual_seed(0)
    tm = getattr(torch.nn, mode)(3, 4, **kw).double()
    gm = getattr(nn, mode)(3, 4, dtype=gg.float64, **kw)
    gm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    return tm, gm


def _grads_match(tm, gm, tl, gl, pairs):
    tl.backward()
    gl.backward()
    for t, g in pairs:
        np.testing.assert_allclose(g.grad.detach().numpy(), t.grad.detach().numpy(), rtol=1e-10, atol=1e-12)
    for n, p in tm.named_parameters():
        np.testing.assert_allclose(getattr(gm, n).grad.detach().numpy(), p.grad.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=n)


@needs_torch
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layers,bidir,bf,bias", FLAGS[::3] + [(2, True, True, True)])
def test_against_pytorch(mode, layers, bidir, bf, bias):
    rng = np.random.default_rng(11)
    for extra in _variants(mode):
        kw = dict(num_layers=layers, bidirectional=bidir, batch_first=bf, bias=bias, **extra)
        tm, gm = _torch_pair(mode, kw)
        D, P = (2 if bidir else 1), extra.get("proj_size") or 4
        x = rng.standard_normal((2, 5, 3) if bf else (5, 2, 3))
        h0, c0 = rng.standard_normal((layers * D, 2, P)), rng.standard_normal((layers * D, 2, 4))
        tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
        gx, gh, gc = (gg.tensor(a, requires_grad=True) for a in (x, h0, c0))
        to, ts = tm(tx, (th, tc) if mode == "LSTM" else th)
        go, gs = gm(gx, (gh, gc) if mode == "LSTM" else gh)
        ts, gs = (ts, gs) if mode == "LSTM" else ((ts,), (gs,))
        np.testing.assert_allclose(go.detach().numpy(), to.detach().numpy(), rtol=1e-12, atol=1e-13)
        for a, b in zip(ts, gs):
            np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-12, atol=1e-13)
        w = rng.standard_normal(to.shape)
        tl = (to * torch.tensor(w)).sum() + sum((s ** 2).sum() for s in ts)
        gl = (go * gg.tensor(w)).sum() + sum((s ** 2).sum() for s in gs)
        _grads_match(tm, gm, tl, gl, [(tx, gx), (th, gh)] + ([(tc, gc)] if mode == "LSTM" else []))


@needs_torch
@pytest.mark.parametrize("mode,kw", [("LSTMCell", {}), ("GRUCell", {}), ("RNNCell", {}),
                                     ("RNNCell", {"nonlinearity": "relu"}), ("GRUCell", {"bias": False})])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_against_pytorch(mode, kw, batched):
    tm, gm = _torch_pair(mode, kw)
    rng = np.random.default_rng(12)
    shp = (2,) if batched else ()
    x, h, c = rng.standard_normal(shp + (3,)), rng.standard_normal(shp + (4,)), rng.standard_normal(shp + (4,))
    tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
    gx, gh, gc = (gg.tensor(a, requires_grad=True) for a in (x, h, c))
    lstm = mode == "LSTMCell"
    to = tm(tx, (th, tc)) if lstm else (tm(tx, th),)
    go = gm(gx, (gh, gc)) if lstm else (gm(gx, gh),)
    for a, b in zip(to, go):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-12, atol=1e-13)
    _grads_match(tm, gm, sum((o ** 2).sum() for o in to), sum((o ** 2).sum() for o in go),
                 [(tx, gx), (th, gh)] + ([(tc, gc)] if lstm else []))
