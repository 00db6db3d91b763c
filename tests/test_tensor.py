"""Tensors: creation, dtypes and promotion (PyTorch's rules), conversions, reductions' return types,
shape errors, and the numpy interop."""
import numpy as np
import pytest

import gpugrad as gg

from conftest import to_np


# -- dtypes -----------------------------------------------------------------------------------------
def test_dtype_names_are_numpy_dtypes():
    assert gg.float16 is np.dtype("float16") and gg.float32 is np.dtype("float32")
    assert gg.float64 == np.float64 and gg.int64 == np.int64 and gg.bool == np.bool_
    assert gg.float is gg.float32 and gg.double is gg.float64 and gg.half is gg.float16 and gg.long is gg.int64


@pytest.mark.parametrize("data,dtype", [
    ([1.0, 2.0], gg.float32), (2.5, gg.float32), ([[1, 2], [3, 4]], gg.int64), (3, gg.int64),
    ([1, 2.5], gg.float32), ([True, False], gg.bool), ([], gg.float32)])
def test_inferred_dtype_from_python_data(data, dtype, device):
    t = gg.tensor(data, device=device)
    assert t.dtype == dtype
    assert t.device == device
    np.testing.assert_array_equal(to_np(t), np.asarray(data, dtype=dtype))


@pytest.mark.parametrize("np_dtype", [np.float64, np.float16, np.int32, np.uint8, np.bool_])
def test_numpy_arrays_keep_their_dtype_unless_given(np_dtype):
    a = np.arange(4).astype(np_dtype)
    assert gg.tensor(a).dtype == np_dtype
    assert gg.tensor(a, dtype=gg.float32).dtype == gg.float32
    assert gg.tensor(a, dtype="float64").dtype == gg.float64
    assert gg.tensor(np.float64(1.5)).dtype == gg.float64


def test_tensor_copies_but_from_numpy_shares():
    a = np.array([1.0, 2.0])
    t, s = gg.tensor(a), gg.from_numpy(a)
    a[0] = 9.0
    assert t.tolist() == [1.0, 2.0] and s.tolist() == [9.0, 2.0]
    with pytest.raises(TypeError, match="unknown dtype"):
        gg.tensor([1.0], dtype="float128x")


def test_default_dtype_can_be_changed():
    try:
        gg.set_default_dtype(gg.float64)
        assert gg.tensor([1.0]).dtype == gg.float64 and gg.zeros(2).dtype == gg.float64
        with pytest.raises(TypeError, match="floating"):
            gg.set_default_dtype(gg.int64)
    finally:
        gg.set_default_dtype(gg.float32)
    assert gg.get_default_dtype() == gg.float32


@pytest.mark.parametrize("dt", ["float16", "float32", "float64"])
def test_python_scalars_do_not_promote_float_tensors(dt, device):
    x = gg.tensor([1.0, 2.0], dtype=dt, device=device)
    for y in (x * 2.5, x + 1, 2.5 - x, 3 / x, x / 2, x ** 2.0, 2.0 ** x, gg.maximum(x, 0.5), gg.where(x > 1, x, 0.0)):
        assert y.dtype == np.dtype(dt)


def test_integer_promotion_rules(device):
    i = gg.tensor([1, 2, 3], device=device)
    assert (i + 1).dtype == gg.int64 and (i * i).dtype == gg.int64
    assert (i / 2).dtype == gg.float32 and (i / i).dtype == gg.float32
    np.testing.assert_allclose(to_np(i / 2), [0.5, 1.0, 1.5])
    assert (i * 2.5).dtype == gg.float32
    assert (gg.tensor([1, 2], dtype="int32", device=device) + 1).dtype == gg.int32
    assert (i[:2] + gg.tensor([1.0, 2.0], device=device)).dtype == gg.float32
    f64 = gg.tensor([1.0, 2.0], dtype=gg.float64, device=device)
    assert (gg.tensor([1.0, 2.0], device=device) + f64).dtype == gg.float64
    assert (i.float()).dtype == gg.float32 and i.exp().dtype == gg.float32
    assert to_np(2 ** i).tolist() == [2, 4, 8] and (2 ** i).dtype == gg.int64 and (2.0 ** i).dtype == gg.float32
    assert (i ** 2).dtype == gg.int64 and (i ** 0.5).dtype == gg.float32
    assert i.sum().dtype == gg.int64 and int(i.sum()) == 6
    with pytest.raises(RuntimeError, match="mean"):
        i.mean()


def test_casts():
    x = gg.tensor([1.7, -2.2])
    assert x.double().dtype == gg.float64 and x.half().dtype == gg.float16
    assert x.long().tolist() == [1, -2] and x.bool().tolist() == [True, True]
    assert x.to(gg.float64).dtype == gg.float64 and x.to("float16").dtype == gg.float16
    assert x.to("cpu") is x and x.to(gg.float32) is x and x.type(gg.float32) is x
    assert x.to(gg.tensor([1], dtype=gg.int32)).dtype == gg.int32
    assert x.to(dtype=gg.float64, device="cpu").dtype == gg.float64


# -- conversions ------------------------------------------------------------------------------------
def test_item_float_int_on_one_element_tensors(device):
    assert gg.tensor(2.5, device=device).item() == 2.5
    assert isinstance(gg.tensor([[3]], device=device).item(), int)
    assert float(gg.tensor([1.5], device=device)) == 1.5 and int(gg.tensor([[7.9]], device=device)) == 7
    t = gg.tensor([1.0, 2.0], device=device)
    with pytest.raises(RuntimeError, match="2 elements"):
        t.item()
    with pytest.raises(ValueError, match="only one element"):
        float(t)
    with pytest.raises(ValueError, match="only one element"):
        int(t)
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t > 0)
    assert bool(gg.tensor(1.0) > 0)


def test_numpy_tolist_and_requires_grad():
    x = gg.tensor([[1.0, 2.0]], requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    assert x.detach().numpy().tolist() == [[1.0, 2.0]] and x.tolist() == [[1.0, 2.0]]
    assert np.asarray(x.detach()).dtype == np.float32


def test_numpy_arrays_on_the_left_defer_to_the_tensor():
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([2.0, 3.0], dtype=np.float32) * x
    assert isinstance(y, gg.Tensor) and y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [2.0, 3.0])


def test_clone_owns_memory_and_is_differentiable():
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert not np.shares_memory(c._data, x._data) and c.requires_grad and not c.is_leaf
    (c * 3).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [3.0, 3.0])
    p = gg.tensor([1.0])
    q = p.clone()
    q[0] = 5.0
    assert p.item() == 1.0 and not q.requires_grad


# -- creation -----------------------------------------------------------------------------------------
def test_creation_functions(device):
    assert gg.zeros(2, 3, device=device).shape == (2, 3) and gg.ones((4,), device=device).dtype == gg.float32
    assert to_np(gg.full((2,), 7, device=device)).tolist() == [7, 7] and gg.full((2,), 7).dtype == gg.int64
    assert gg.full((1,), 0.5).dtype == gg.float32 and gg.full((1,), True).dtype == gg.bool
    assert gg.arange(5, device=device).dtype == gg.int64 and gg.arange(0, 1, 0.25).tolist() == [0, 0.25, 0.5, 0.75]
    np.testing.assert_allclose(to_np(gg.linspace(0, 1, 5, device=device)), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(to_np(gg.eye(2, 3, device=device)), np.eye(2, 3))
    like = gg.zeros_like(gg.tensor([1, 2], device=device))
    assert like.dtype == gg.int64 and like.device == device
    assert gg.ones_like(like, dtype=gg.float64).dtype == gg.float64
    r = gg.randn(3, 4, device=device)
    assert r.shape == (3, 4) and r.dtype == gg.float32
    assert gg.rand(2, dtype=gg.float64).dtype == gg.float64
    assert gg.zeros(2, requires_grad=True).requires_grad


def test_manual_seed_makes_random_tensors_reproducible(device):
    gg.manual_seed(123)
    a = to_np(gg.randn(5, device=device))
    gg.manual_seed(123)
    b = to_np(gg.randn(5, device=device))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, to_np(gg.randn(5, device=device)))
    u = to_np(gg.rand(1000))
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.05


# -- reductions: PyTorch's return types and corrections -------------------------------------------------
def test_max_min_with_dim_return_values_and_indices(device):
    x = gg.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]], device=device)
    values, indices = x.max(dim=1)
    r = x.max(dim=1)
    assert r.values is r[0] and r.indices is r[1]
    np.testing.assert_array_equal(to_np(values), [5.0, 6.0])
    np.testing.assert_array_equal(to_np(indices), [1, 2])
    assert indices.dtype == gg.int64
    mv, mi = x.min(0, keepdim=True)
    assert mv.shape == (1, 3) and to_np(mi).tolist() == [[0, 1, 0]]
    assert x.max().item() == 6.0 and x.min().item() == 1.0
    assert to_np(x.argmax()).item() == 5 and to_np(x.argmin(dim=1)).tolist() == [0, 1]
    assert gg.max(x, 0).values.tolist() == [4.0, 5.0, 6.0]
    with pytest.raises(RuntimeError, match=r"max\(\): Expected reduction dim to be specified for input.numel\(\) == 0"):
        gg.zeros(0).max()


def test_var_std_are_bessel_corrected_by_default(device):
    x = gg.tensor([1.0, 2.0, 3.0, 4.0], device=device)
    assert x.var().item() == pytest.approx(5 / 3) and x.std().item() == pytest.approx(np.sqrt(5 / 3))
    assert x.var(unbiased=False).item() == pytest.approx(1.25)
    assert x.var(correction=0).item() == pytest.approx(1.25) and x.std(correction=0).item() == pytest.approx(np.sqrt(1.25))
    m = gg.tensor([[1.0, 3.0], [2.0, 6.0]], device=device)
    np.testing.assert_allclose(to_np(m.var(0)), [0.5, 4.5])
    assert m.std(1, keepdim=True).shape == (2, 1)


def test_sum_mean_dims_and_keepdim(device):
    x = gg.arange(24, device=device).float().reshape(2, 3, 4)
    assert x.sum().item() == 276 and x.sum((0, 2)).tolist() == [60.0, 92.0, 124.0]
    assert x.sum(-1, keepdim=True).shape == (2, 3, 1) and x.mean(dim=1).shape == (2, 4)
    assert x.sum(axis=0).shape == (3, 4)
    assert gg.tensor(3.0).sum(0).item() == 3.0 and gg.tensor(3.0).mean(-1).item() == 3.0
    with pytest.raises(IndexError, match="out of range"):
        x.sum(3)
    with pytest.raises(RuntimeError, match="dim 1 appears multiple times in the list of dims"):
        x.sum((1, -2))
    assert gg.tensor([True, True, False]).sum().item() == 2


def test_float16_sum_accumulates_in_float32():
    x = gg.full((4096,), 1.0, dtype=gg.float16) + gg.tensor(np.linspace(0, 1e-3, 4096).astype(np.float16))
    exact = np.float32(x._data.astype(np.float64).sum())
    s = x.sum()
    assert s.dtype == gg.float16 and abs(float(s) - exact) <= 4  # float16 spacing at 4096 is 4


# -- shapes ---------------------------------------------------------------------------------------------
def test_shape_ops_values_and_errors():
    x = gg.arange(6).reshape(2, 3)
    assert x.view(3, 2).tolist() == [[0, 1], [2, 3], [4, 5]] and x.reshape(-1).shape == (6,)
    assert x.T.tolist() == [[0, 3], [1, 4], [2, 5]] and x.permute(1, 0).shape == (3, 2)
    assert x.unsqueeze(0).shape == (1, 2, 3) and x.unsqueeze(-1).shape == (2, 3, 1)
    assert x[None].squeeze().shape == (2, 3) and x.flatten().tolist() == list(range(6))
    assert x[:, :1].expand(2, 4).tolist() == [[0] * 4, [3] * 4] and len(x) == 2
    assert [r.tolist() for r in x] == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(RuntimeError, match="invalid for input of size 6"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="permutation"):
        x.permute(0, 0)
    with pytest.raises(RuntimeError, match="expand"):
        x.expand(3, 3)
    with pytest.raises(RuntimeError, match=r"\(2, 3\) and \(2, 3\) cannot be multiplied"):
        gg.matmul(x.float(), x.float())
    with pytest.raises(RuntimeError, match="at least 1D"):
        gg.tensor(1.0) @ gg.tensor(1.0)
    with pytest.raises(RuntimeError, match="sizes must match"):
        gg.cat([x, gg.zeros(3, 2, dtype=gg.int64)], dim=0)
    with pytest.raises(RuntimeError, match="equal size"):
        gg.stack([x, x.T])
    with pytest.raises(TypeError, match="0-d"):
        len(gg.tensor(1.0))


def test_split_chunk_pad_cat_values():
    x = gg.arange(7)
    assert [t.tolist() for t in x.split(3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [t.tolist() for t in x.chunk(3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [t.shape[0] for t in gg.split(x, [2, 5])] == [2, 5]
    with pytest.raises(RuntimeError, match="sum to"):
        x.split([2, 2])
    assert gg.pad(gg.ones(1, 2), (1, 1, 1, 0), value=9.0).tolist() == [[9, 9, 9, 9], [9, 1, 1, 9]]
    assert gg.cat([gg.tensor([1]), gg.tensor([2.5])]).dtype == gg.float32


def test_comparisons_give_bool_tensors(device):
    x = gg.tensor([1.0, 2.0, 3.0], device=device)
    assert (x > 1.5).dtype == gg.bool and to_np(x > 1.5).tolist() == [False, True, True]
    assert to_np(x == gg.tensor([1.0, 0.0, 3.0], device=device)).tolist() == [True, False, True]
    assert to_np((x >= 2) & (x <= 2)).tolist() == [False, True, False] and to_np(~(x < 2)).tolist() == [False, True, True]
    assert to_np(x != 2).tolist() == [True, False, True] and not (x > 5).any().item() and (x > 0).all().item()
    with pytest.raises(TypeError, match="Boolean"):
        _ = ~x


def test_indexing_values_and_setitem(device):
    x = gg.arange(12, device=device).reshape(3, 4)
    assert to_np(x[1]).tolist() == [4, 5, 6, 7] and to_np(x[:, -1]).tolist() == [3, 7, 11]
    assert to_np(x[gg.tensor([2, 0], device=device)])[:, 0].tolist() == [8, 0]
    assert to_np(x[x > 9]).tolist() == [10, 11] and to_np(x[[0, 0], [1, 2]]).tolist() == [1, 2]
    x[0, 0] = 100
    assert to_np(x)[0, 0] == 100


def test_repr_shows_grad_state():
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    assert "requires_grad=True" in repr(x) and "grad_fn=<MulBackward>" in repr(x * 2)
    assert "dtype=float64" in repr(gg.tensor([1.0], dtype=gg.float64)) and repr(gg.tensor([1])) == "tensor([1])"


def test_amax_amin_over_several_dims_match_numpy_and_pass_gradcheck():
    a = np.random.default_rng(3).standard_normal((2, 3, 4))
    x = gg.tensor(a, requires_grad=True)
    np.testing.assert_array_equal(to_np(x.amax((0, 2)).detach()), a.max((0, 2)))
    np.testing.assert_array_equal(to_np(x.amin(-1, keepdim=True).detach()), a.min(-1, keepdims=True))
    assert x.amax().item() == a.max()
    assert gg.autograd.gradcheck(lambda t: t.amax((0, 2)), (x,))
