"""DLPack interop (gpugrad/utils/dlpack.py): zero-copy both ways with NumPy always, with PyTorch, JAX and
CuPy when installed; strides, read-only memory, legacy capsules, gradients not crossing."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.utils import dlpack as D


def test_numpy_both_ways_share_memory():
    a = np.arange(6.0).reshape(2, 3)
    t = gg.from_dlpack(a)
    assert t.shape == (2, 3) and t.dtype == gg.float64
    t[0, 0] = 9.0                      # gpugrad -> numpy
    a[1, 2] = -4.0                     # numpy -> gpugrad
    assert a[0, 0] == 9.0 and t[1, 2].item() == -4.0
    b = np.from_dlpack(t)
    b[0, 1] = 7.0
    assert t[0, 1].item() == 7.0 and np.shares_memory(b, a)
    assert t.__dlpack_device__() == (1, 0)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"])
def test_dtypes_round_trip(dtype):
    a = (np.arange(5) % 2).astype(dtype)
    t = gg.from_dlpack(a)
    assert t.dtype == np.dtype(dtype)
    back = np.from_dlpack(t)
    assert back.dtype == np.dtype(dtype) and np.shares_memory(back, a)
    np.testing.assert_array_equal(back, a)


def test_zero_dim_and_empty():
    t = gg.from_dlpack(np.array(3.5, np.float32))
    assert t.shape == () and t.item() == 3.5
    e = np.from_dlpack(gg.zeros(0, 4))
    assert e.shape == (0, 4)


def test_strided_views_keep_their_strides():
    base = np.arange(24.0).reshape(4, 6)
    v = base[::2, 1::2]                 # non-contiguous, positive strides
    t = gg.from_dlpack(v)
    assert not t.is_contiguous() and t.tolist() == v.tolist()
    t[1, 2] = 100.0
    assert base[2, 5] == 100.0
    r = base[:, ::-1]                   # negative strides (DLPack strides are signed)
    tr = gg.from_dlpack(r)
    assert tr[0, 0].item() == base[0, 5]
    # export of a transposed gpugrad view
    g = gg.arange(12.0).reshape(3, 4)
    n = np.from_dlpack(g.T)
    assert n.shape == (4, 3) and n.strides == (4, 16) and n[3, 2] == 11.0
    n[0, 1] = -1.0
    assert g[1, 0].item() == -1.0


def test_strides_not_in_whole_elements_are_refused():
    raw = np.zeros(17, np.uint8)
    odd = np.ndarray((2,), np.float32, raw.data, offset=0, strides=(6,))
    with pytest.raises(BufferError):
        gg.from_dlpack(odd)


def test_read_only_memory():
    a = np.arange(4.0)
    a.flags.writeable = False
    t = gg.from_dlpack(a)              # NOTE: NumPy exports the read-only flag to a versioned consumer
    assert not np.from_dlpack(t).flags.writeable
    with pytest.raises(RuntimeError, match="read-only"):
        t.add_(1.0)
    assert a.tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(BufferError, match="readonly"):
        t.__dlpack__()                 # a legacy capsule cannot carry the flag: refused, not made writable
    assert t.__dlpack__(max_version=(1, 0)) is not None


def test_copy_argument():
    t = gg.arange(3.0)
    c = np.from_dlpack(t, copy=True)
    c[0] = 5.0
    assert t[0].item() == 0.0
    s = np.from_dlpack(t, copy=False)
    s[0] = 5.0
    assert t[0].item() == 5.0


def test_stream_must_be_none_on_cpu():
    with pytest.raises(RuntimeError, match="stream"):
        gg.ones(2).__dlpack__(stream=1)


def test_gradients_do_not_cross():
    w = gg.ones(3, requires_grad=True)
    with pytest.raises(BufferError, match="require gradient"):
        w.__dlpack__()
    n = np.from_dlpack(w.detach())
    assert np.shares_memory(n, w.detach().numpy())
    cap = D.to_dlpack(w)               # NOTE: torch.utils.dlpack.to_dlpack exports it too
    back = D.from_dlpack(cap)
    assert back.is_leaf and not back.requires_grad and back.grad_fn is None
    y = gg.from_dlpack(np.array([1.0, 2.0])).requires_grad_()
    (y * y).sum().backward()
    assert y.grad.tolist() == [2.0, 4.0]


def test_legacy_capsule():
    t = gg.arange(4.0)
    cap = D.to_dlpack(t)
    assert "dltensor" in repr(cap)
    u = D.from_dlpack(cap)
    u[0] = 3.0
    assert t[0].item() == 3.0
    with pytest.raises(ValueError, match="only once"):
        D.from_dlpack(cap)
    u2 = gg.from_dlpack(t.__dlpack__(max_version=(1, 0)))   # a versioned capsule
    assert u2.tolist() == [3.0, 1.0, 2.0, 3.0]


def test_bad_inputs():
    with pytest.raises(TypeError, match="__dlpack__"):
        gg.from_dlpack([1, 2])
    with pytest.raises(TypeError):
        D.to_dlpack(np.ones(2))


# -- other frameworks (skipped when absent) ----------------------------------------------------------

def test_torch_both_ways():
    torch = pytest.importorskip("torch")
    x = torch.arange(6.0).reshape(2, 3)
    t = gg.from_dlpack(x)
    t[0, 0] = 10.0
    assert x[0, 0].item() == 10.0
    x[1, 1] = -2.0
    assert t[1, 1].item() == -2.0
    y = torch.from_dlpack(t)
    y[0, 2] = 5.0
    assert t[0, 2].item() == 5.0 and y.data_ptr() == x.data_ptr()
    s = torch.arange(10.0)[::3]                     # a strided torch view
    ts = gg.from_dlpack(s)
    assert ts.tolist() == [0.0, 3.0, 6.0, 9.0]
    g = gg.arange(12.0).reshape(3, 4).T             # a strided gpugrad view
    tg = torch.from_dlpack(g)
    assert tg.stride() == (1, 4) and tg[3, 2].item() == 11.0
    # legacy capsules both ways
    src = torch.ones(2)
    leg = gg.utils.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(src))
    leg[1] = 4.0                        # NOTE: a legacy capsule's memory is writable (DLPack < 1.0), as in PyTorch
    assert src.tolist() == [1.0, 4.0]
    assert torch.utils.dlpack.from_dlpack(D.to_dlpack(gg.full((2,), 3.0))).tolist() == [3.0, 3.0]


def test_bfloat16_both_ways_shares_memory():
    """NumPy has no DLPack bfloat16: gpugrad sends and reads the uint16 bits with the dtype field retagged."""
    pytest.importorskip("ml_dtypes")
    g = gg.arange(12.0).reshape(3, 4).bfloat16()
    back = gg.from_dlpack(g[:, ::2])                  # through a capsule, strided
    assert back.dtype == gg.bfloat16 and back.tolist() == [[0.0, 2.0], [4.0, 6.0], [8.0, 10.0]]
    back[0, 1] = 7.0
    assert g[0, 2].item() == 7.0
    leg = D.from_dlpack(D.to_dlpack(g))                # legacy capsules too
    assert leg.dtype == gg.bfloat16 and leg.data_ptr() == g.data_ptr()
    torch = pytest.importorskip("torch")
    x = torch.arange(4.0).bfloat16()
    t = gg.from_dlpack(x)
    assert t.dtype == gg.bfloat16 and t.data_ptr() == x.data_ptr()
    t[0] = 3.0
    assert x[0].item() == 3.0
    y = torch.from_dlpack(g)
    assert y.dtype == torch.bfloat16 and y.stride() == (4, 1) and y.data_ptr() == g.data_ptr()
    y[2, 3] = -1.0
    assert g[2, 3].item() == -1.0
    assert torch.utils.dlpack.from_dlpack(D.to_dlpack(g)).dtype == torch.bfloat16


def test_jax_both_ways():
    jnp = pytest.importorskip("jax.numpy")
    j = jnp.arange(4.0)
    t = gg.from_dlpack(j)
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0]
    import jax  # noqa: PLC0415
    back = jax.dlpack.from_dlpack(gg.arange(3.0))
    assert back.tolist() == [0.0, 1.0, 2.0]


def test_cupy_both_ways():
    cp = pytest.importorskip("cupy")
    try:
        cp.cuda.runtime.getDeviceCount()
        a = cp.arange(6.0)
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"CuPy without a usable GPU: {e}")
    t = gg.from_dlpack(a)
    assert t.device == gg.device("cuda:0")
    t[0] = 9.0
    assert float(a[0]) == 9.0
    b = cp.from_dlpack(t)
    b[1] = -1.0
    assert t[1].item() == -1.0 and b.data.ptr == a.data.ptr
