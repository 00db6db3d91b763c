"""The blocked NumPy path of the normalisation node (ops.nnops: blocks of whole groups, BLAS sums, expanded
short rows): values and gradients against a float64 NumPy reference for every layout, with blocks forced small;
the float32 mean keeps NumPy's pairwise accuracy on long rows."""
import numpy as np
import pytest

import gpugrad as gg
from gpugrad.nn import functional as F
from gpugrad.ops import nnops

RNG = np.random.default_rng(0)
CASES = {  # name: (input shape, op, reduced axes of the reference, affine shape for the reference)
    "layer_norm": ((16, 5, 8, 32), lambda x, w, b: F.layer_norm(x, (32,), w, b), (3,), (32,)),
    "layer_norm_2d": ((16, 40, 4, 8), lambda x, w, b: F.layer_norm(x, (4, 8), w, b), (2, 3), (4, 8)),
    "layer_norm_w": ((16, 5, 8, 32), lambda x, w, b: F.layer_norm(x, (32,), w, None), (3,), (32,)),
    "group_norm": ((16, 8, 4, 80), lambda x, w, b: F.group_norm(x, 4, w, b), None, None),
    # NOTE: groups of 1024 (a multiple of 128: chunked BLAS sums) in channels of 512 (>= 256: np.vecdot sums)
    "group_norm_long": ((16, 8, 16, 32), lambda x, w, b: F.group_norm(x, 4, w, b), None, None),
    "layer_norm_plain": ((16, 5, 8, 32), lambda x, w, b: F.layer_norm(x, (32,)), (3,), None),
    "batch_norm": ((16, 8, 4, 80), lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (0, 2, 3),
                   (1, 8, 1, 1)),
    "instance_norm_b": ((16, 8, 4, 80), lambda x, w, b: F.instance_norm(x, bias=b), (2, 3), (1, 8, 1, 1)),
}


def _reference(name, x, w, b, g):
    """y and the gradients of sum(y * g) (float64, the textbook formulas)."""
    shape, _, axes, ashape = CASES[name]
    if name.startswith("group_norm"):
        xs = x.reshape(shape[0], 4, -1)
        y, (gx,) = _std(xs, g.reshape(xs.shape) * np.repeat(w, shape[2] * shape[3]).reshape(1, 4, -1), (2,))
        y = y.reshape(shape)
        yhat = y
        y = y * w.reshape(1, 8, 1, 1) + b.reshape(1, 8, 1, 1)
        return y, gx.reshape(shape), (g * yhat).sum((0, 2, 3)), g.sum((0, 2, 3))
    wr = w.reshape(ashape) if "w" in name or name in ("layer_norm", "layer_norm_2d", "batch_norm") else None
    br = b.reshape(ashape) if name in ("layer_norm", "layer_norm_2d", "batch_norm", "instance_norm_b") else None
    yhat, (gx,) = _std(x, g if wr is None else g * wr, axes)
    y = yhat * (1 if wr is None else wr) + (0 if br is None else br)
    red = tuple(i for i in range(4) if ashape is None or (1,) * (4 - len(ashape)) + ashape != shape and
                ((1,) * (4 - len(ashape)) + ashape)[i] == 1)
    gw = None if wr is None else (g * yhat).sum(red).reshape(w.shape)
    gb = None if br is None else g.sum(red).reshape(b.shape)
    return y, gx, gw, gb


def _std(x, gh, axes):
    m = x.mean(axes, keepdims=True)
    r = 1 / np.sqrt(((x - m) ** 2).mean(axes, keepdims=True) + 1e-5)
    xh = (x - m) * r
    return xh, (r * (gh - gh.mean(axes, keepdims=True) - xh * (gh * xh).mean(axes, keepdims=True)),)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("name", list(CASES))
def test_blocked_norms_match_the_reference(name, contiguous, dt, monkeypatch):
    monkeypatch.setattr(nnops, "_CHUNK", 8192)  # NOTE: blocks of ~8k elements (BLAS sums), a ragged last one
    shape, op, _, ashape = CASES[name]
    x64 = RNG.standard_normal(shape) * 2 + 3
    if not contiguous:  # a transposed view: the blocks are strided
        x64 = np.ascontiguousarray(np.swapaxes(x64, 0, 1)).swapaxes(0, 1)
    n = int(np.prod(ashape)) if ashape else 8
    w64, b64, g = RNG.standard_normal(n), RNG.standard_normal(n), RNG.standard_normal(shape)
    if ashape and len(ashape) == 2:
        w64, b64 = w64.reshape(ashape), b64.reshape(ashape)
    x, w, b = (gg.tensor(a.astype(dt), requires_grad=True) for a in (x64, w64, b64))
    y = op(x, w, b)
    y.backward(gg.tensor(g.astype(dt)))
    ref = _reference(name, x.detach().numpy().astype(np.float64), w64.astype(dt).astype(np.float64),
                     b64.astype(dt).astype(np.float64), g.astype(dt).astype(np.float64))
    tol = 1e-10 if dt == np.float64 else 5e-4
    for got, want in zip((y, x.grad, w.grad, b.grad), ref):
        if want is None:
            continue
        got = got.detach().numpy() if hasattr(got, "detach") else got.numpy()
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, float(np.abs(want).max())))


@pytest.mark.parametrize("blocked", [False, True])
def test_float32_mean_of_long_rows_is_pairwise(blocked, monkeypatch):
    """group_norm with |mean| >> std: the error of y stays at NumPy's pairwise-sum level (a BLAS row sum of the
    4096-element groups doubles it); blocked: the fused blocks' chunked sums (ops.nnops._fused_forward)."""
    if blocked:
        monkeypatch.setattr(nnops, "_CHUNK", 8192)
    x = (300 + RNG.standard_normal((8, 32, 32, 32))).astype(np.float32)
    y = F.group_norm(gg.tensor(x), 8).numpy()
    x64 = x.astype(np.float64).reshape(8, 8, -1)
    m = x64.mean(2, keepdims=True)
    ref = ((x64 - m) / np.sqrt(((x64 - m) ** 2).mean(2, keepdims=True) + 1e-5)).reshape(x.shape)
    assert np.abs(y - ref).max() < 6e-5


@pytest.mark.parametrize("name", ["layer_norm", "group_norm_long"])
@pytest.mark.parametrize("blocked", [False, True])
def test_compiled_norm_replays_eager(name, blocked, monkeypatch):
    """layer_norm / group_norm take their moments inside the node, so gg.compile records them: replays match
    eager values and gradients exactly (a replay reruns the node's forward and backward on a bare node)."""
    if blocked:
        monkeypatch.setattr(nnops, "_CHUNK", 8192)
    shape, op, _, ashape = CASES[name]
    n = int(np.prod(ashape)) if ashape else 8
    w = gg.nn.Parameter(gg.tensor(RNG.standard_normal(n).astype(np.float32)))
    b = gg.nn.Parameter(gg.tensor(RNG.standard_normal(n).astype(np.float32)))

    def step(x):
        loss = (op(x, w, b) ** 2 * x).sum()
        loss.backward()
        return loss
    compiled = gg.compile(step)
    for i in range(3):
        x = gg.tensor((RNG.standard_normal(shape) * (i + 1)).astype(np.float32))
        got = []
        for f in (compiled, step):
            w.grad = b.grad = None
            got.append((f(x).item(), w.grad.numpy().copy(), b.grad.numpy().copy()))
        assert got[0][0] == got[1][0]
        np.testing.assert_array_equal(got[0][1], got[1][1])
        np.testing.assert_array_equal(got[0][2], got[1][2])
