"""Operator, elementwise-dtype and in-place metadata semantics, pinned to PyTorch 2.13's outputs (written here as
literals, so no torch is needed): integer powers, NumPy-scalar exponents, bitwise/shift operators, bool refusals,
lerp/clamp argument rules, integer division of empty tensors, t_/transpose_/squeeze_/unsqueeze_ under autograd and
on views, resize_, and in-place comparisons with an operand that requires grad."""
import numpy as np
import pytest

import gpugrad as gg


def _eq(t, values, dtype):
    assert t.dtype == dtype, (t.dtype, dtype)
    np.testing.assert_array_equal(t.numpy(), np.asarray(values))


# -- powers -------------------------------------------------------------------------------------------------------
def test_int_tensor_to_negative_int_tensor():
    # torch: 1 for a base of 1, +-1 for -1 by parity, else 0 (a base of 0 too)
    r = gg.pow(gg.tensor([2, -1, 1, 0, 3, -2]), gg.tensor([-2, -3, -1, -1, 0, -2]))
    _eq(r, [0, -1, 1, 0, 1, 0], gg.int64)
    _eq(gg.tensor([2, -1, 1, -1], dtype=gg.int32) ** gg.tensor([-2, -4, -1, -2], dtype=gg.int32), [0, 1, 1, 1],
        gg.int32)
    _eq(gg.tensor([1, 2]) ** gg.tensor(-1), [1, 0], gg.int64)
    _eq(2 ** gg.tensor([-1, 2]), [0, 4], gg.int64)
    _eq((-1) ** gg.tensor([-1, -2]), [-1, 1], gg.int64)
    _eq(gg.tensor([True, False]) ** gg.tensor([-1, 1]), [1, 0], gg.int64)
    x = gg.tensor([1, 2])
    x.pow_(gg.tensor([-1, -1]))
    _eq(x, [1, 0], gg.int64)


def test_int_to_negative_python_int_is_runtime_error():
    for f in (lambda: gg.tensor([1, 2]) ** -1, lambda: gg.tensor([1, 2]).pow_(-1),
              lambda: gg.tensor([True]) ** -1, lambda: gg.tensor([1, 2]) ** np.int64(-1)):
        with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed."):
            f()
    with pytest.raises(NotImplementedError, match="\"pow\" not implemented for 'Bool'"):
        gg.tensor([True]) ** gg.tensor([True])


def test_numpy_scalar_exponent_is_a_python_number():
    assert (gg.ones(2) ** np.int64(2)).dtype == gg.float32
    assert (gg.ones(2) ** np.float64(2)).dtype == gg.float32
    assert (gg.ones(2, dtype=gg.int32) ** np.int64(2)).dtype == gg.int32
    assert (gg.ones(2, dtype=gg.int32) ** np.float64(2)).dtype == gg.float32
    assert (gg.ones(2, dtype=gg.float16) ** np.float64(2)).dtype == gg.float16
    _eq(np.int64(2) ** gg.ones(2, dtype=gg.int32), [2, 2], gg.int32)
    _eq(np.float64(2) ** gg.ones(2, dtype=gg.int32), [2.0, 2.0], gg.float32)


# -- bitwise operators -----------------------------------------------------------------------------------------------
def test_invert_and_reflected_shifts():
    _eq(~gg.tensor([1, -2]), [-2, 1], gg.int64)
    _eq(~gg.tensor([1, 255], dtype=gg.uint8), [254, 0], gg.uint8)
    _eq(~gg.tensor([True]), [False], gg.bool)
    with pytest.raises(TypeError, match=r"~ \(operator.invert\) is only implemented on integer and Boolean-type"):
        ~gg.tensor([1.5])
    _eq(2 << gg.tensor([1, 2]), [4, 8], gg.int64)
    _eq(2 >> gg.tensor([1, 2]), [1, 0], gg.int64)
    _eq(True << gg.tensor([1, 2]), [2, 4], gg.int64)
    _eq(2 << gg.tensor([1, 2], dtype=gg.int32), [4, 8], gg.int32)
    _eq(2 << gg.tensor([True]), [4], gg.int64)


@pytest.mark.parametrize("expr,kernel,name", [
    ("gg.ones(2) & gg.ones(2)", "bitwise_and", "Float"), ("gg.ones(2) | 1", "bitwise_or", "Float"),
    ("True ^ gg.ones(2)", "bitwise_xor", "Float"), ("gg.tensor([1, 2]) & 1.5", "bitwise_and", "Float"),
    ("gg.tensor([1, 2]) << 1.5", "lshift", "Float"), ("2.5 << gg.tensor([1, 2])", "lshift", "Float"),
    ("gg.ones(2) >> 1", "rshift", "Float"), ("gg.ones(2, dtype=gg.float64).bitwise_not()", "bitwise_not", "Double"),
])
def test_bitwise_on_floats(expr, kernel, name):
    with pytest.raises(NotImplementedError, match=f"\"{kernel}_cpu\" not implemented for '{name}'"):
        eval(expr)  # noqa: S307


@pytest.mark.parametrize("expr,msg", [
    ("gg.ones(2, dtype=gg.int64) & gg.ones(3, dtype=gg.int64)", "a (2) must match the size of tensor b (3) at "
     "non-singleton dimension 0"),
    ("gg.ones(2, 3, dtype=gg.int64) | gg.ones(3, 2, dtype=gg.int64)", "a (3) must match the size of tensor b (2) at "
     "non-singleton dimension 1"),
    ("gg.ones(2, 3).masked_fill_(gg.ones(4, 3, dtype=gg.bool), 1.)", "a (2) must match the size of tensor b (4)"),
    ("gg.ones(2, 3).masked_fill(gg.ones(4, 3, dtype=gg.bool), 1.)", "a (4) must match the size of tensor b (2)"),
    ("gg.ones(2, 3).masked_fill_(gg.ones(2, dtype=gg.bool), 1.)", "a (3) must match the size of tensor b (2) at "
     "non-singleton dimension 1"),
    ("gg.clamp(gg.ones(2, 3), min=gg.ones(4, 3))", "a (2) must match the size of tensor b (4)"),
    ("gg.clamp(gg.ones(2, 3), min=gg.ones(3, 2), max=gg.ones(2, 1))", "a (3) must match the size of tensor b (2) at "
     "non-singleton dimension 1"),
    ("gg.where(gg.ones(2, 3, dtype=gg.bool), gg.ones(4, 3), 1.)", "a (2) must match the size of tensor b (4)"),
    ("gg.where(gg.ones(2, dtype=gg.bool), gg.ones(1), gg.ones(3))", "a (2) must match the size of tensor b (3)"),
    ("gg.where(gg.ones(2, dtype=gg.bool), 1., gg.ones(3))", "a (2) must match the size of tensor b (3)"),
])
def test_broadcast_errors(expr, msg):
    with pytest.raises(RuntimeError, match="The size of tensor " + msg.replace("(", r"\(").replace(")", r"\)")):
        eval(expr)  # noqa: S307


# -- bool refusals ---------------------------------------------------------------------------------------------------
_SUB_BOOL = "Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a mask"


@pytest.mark.parametrize("expr", [
    "gg.tensor([1., 2]) - True", "True - gg.tensor([1., 2])", "gg.tensor([1., 2]) - gg.tensor([True])",
    "gg.tensor([True]) - 1", "gg.tensor([1, 2]) - gg.tensor([1, 2], dtype=gg.bool)", "gg.sub(gg.tensor([1., 2]), True)",
    "gg.tensor([1., 2]).sub_(gg.tensor(True))", "gg.tensor([1.]).sub_(gg.tensor([True]), alpha=2)",
    "gg.rsub(gg.tensor([1., 2]), True)", "gg.rsub(gg.tensor([True]), 1)",
])
def test_subtraction_with_bool(expr):
    with pytest.raises(RuntimeError, match=_SUB_BOOL.replace("(", r"\(").replace(")", r"\)")):
        eval(expr)  # noqa: S307


def test_bool_sub_alpha_neg_abs_pos():
    with pytest.raises(RuntimeError, match="with two bool tensors is not supported"):
        gg.tensor([True]) - gg.tensor([True])
    with pytest.raises(RuntimeError, match="Boolean alpha only supported for Boolean results."):
        gg.tensor([1., 2]).sub_(1, alpha=True)
    _eq(gg.tensor([1., 2]) - np.bool_(True), [0.0, 1.0], gg.float32)  # torch computes this one
    with pytest.raises(RuntimeError, match="Negation, the `-` operator, on a bool tensor is not supported."):
        -gg.tensor([True])
    with pytest.raises(RuntimeError, match="Negation, the `-` operator"):
        gg.tensor([True]).neg_()
    for f in (lambda: abs(gg.tensor([True])), lambda: gg.abs(gg.tensor([True])), lambda: gg.tensor([True]).abs_(),
              lambda: gg.tensor([True]).absolute()):
        with pytest.raises(NotImplementedError, match="\"abs_cpu\" not implemented for 'Bool'"):
            f()
    with pytest.raises(RuntimeError, match=r"The `\+` operator, on a bool tensor is not supported."):
        +gg.tensor([True])
    _eq(+gg.tensor([1]), [1], gg.int64)


# -- lerp, clamp ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("expr,exc,msg", [
    ("gg.lerp(gg.tensor([1.]), gg.tensor([2.], dtype=gg.float64), 0.5)", RuntimeError,
     "expected dtype float for `end` but got dtype double"),
    ("gg.lerp(gg.tensor([1.]), gg.tensor(2., dtype=gg.float64), 0.5)", RuntimeError,
     "expected dtype float for `end` but got dtype double"),
    ("gg.lerp(gg.tensor([1.], dtype=gg.float64), gg.tensor([2.]), 0.5)", RuntimeError,
     "expected dtype double for `end` but got dtype float"),
    ("gg.lerp(gg.tensor([1.]), gg.tensor([2.]), gg.tensor([0.5], dtype=gg.float64))", RuntimeError,
     "expected dtype float for `weight` but got dtype double"),
    ("gg.lerp(gg.tensor([1.]), gg.tensor([3]), 0.5)", RuntimeError,
     "expected dtype float for `end` but got dtype long int"),
    ("gg.lerp(gg.tensor([1.]), gg.tensor([3.]).half(), 0.5)", RuntimeError,
     "expected dtype float for `end` but got dtype c10::Half"),
    ("gg.lerp(gg.tensor([1]), gg.tensor([3]), 0.5)", NotImplementedError,
     "\"lerp_kernel_scalar\" not implemented for 'Long'"),
    ("gg.lerp(gg.tensor([1]), gg.tensor([3]), gg.tensor([1]))", NotImplementedError,
     "\"lerp_kernel_tensor\" not implemented for 'Long'"),
    ("gg.lerp(gg.tensor([1]), gg.tensor([3]), gg.tensor([0.5]))", RuntimeError,
     "expected dtype long int for `weight` but got dtype float"),
    ("gg.tensor([1]).lerp_(gg.tensor([2]), 0.5)", NotImplementedError,
     "\"lerp_kernel_scalar\" not implemented for 'Long'"),
    ("gg.clamp(gg.tensor([1., 2]), min=gg.tensor([0., 0]), max=1)", TypeError,
     "clamp\\(\\) received an invalid combination of arguments"),
    ("gg.tensor([1., 2]).clamp_(min=0, max=gg.tensor([1., 1.]))", TypeError,
     "received an invalid combination of arguments"),
    ("gg.clamp(gg.tensor([0., 2.]), min=gg.tensor(0.5, requires_grad=True), max=1)", TypeError,
     "received an invalid combination of arguments"),
])
def test_lerp_clamp_refusals(expr, exc, msg):
    with pytest.raises(exc, match=msg.replace("`", ".")):
        eval(expr)  # noqa: S307


def test_lerp_clamp_allowed_forms():
    _eq(gg.lerp(gg.tensor([1.]), gg.tensor([2.]), gg.tensor(0.5, dtype=gg.float64)), [1.5], gg.float32)
    _eq(gg.lerp(gg.tensor([1.]), gg.tensor([2.]), gg.tensor(1)), [2.0], gg.float32)
    _eq(gg.lerp(gg.tensor([1.]), gg.tensor([3.]), True), [3.0], gg.float32)
    _eq(gg.clamp(gg.tensor([1., 2]), min=gg.tensor(0.), max=1), [1.0, 1.0], gg.float32)
    _eq(gg.clamp(gg.tensor([1, 2]), min=gg.tensor(0.5), max=1), [1.0, 1.0], gg.float32)
    _eq(gg.clamp(gg.tensor([1., 2]), min=gg.tensor([0., 0]), max=None), [1.0, 2.0], gg.float32)
    _eq(gg.clamp(gg.tensor([1., 5]), min=gg.tensor([2, 2]), max=gg.tensor(3)), [2.0, 3.0], gg.float32)


# -- integer division by zero ----------------------------------------------------------------------------------------
def test_integer_division_of_empty_by_zero():
    e = gg.ones(0, dtype=gg.int64)
    for r in (e // 0, e % gg.tensor(0), e.fmod(0), e.div(0, rounding_mode="trunc"), e.div(0, rounding_mode="floor"),
              0 // e, e.clone().remainder_(0), e.clone().floor_divide_(0)):
        assert r.shape == (0,) and r.dtype == gg.int64
    r = gg.ones(2, 0, dtype=gg.int64) // gg.zeros(2, 1, dtype=gg.int64)
    assert r.shape == (2, 0) and r.dtype == gg.int64
    with pytest.raises(RuntimeError, match="^ZeroDivisionError$"):
        gg.tensor([1, 2]) // 0


# -- in-place metadata ops ---------------------------------------------------------------------------------------------
def test_metadata_ops_bump_the_version():
    y = gg.ones(2, 3) * 1
    y.t_()
    assert y._version == 1 and y.shape == (3, 2) and not y.is_contiguous()
    y.unsqueeze_(0)
    assert y._version == 2 and y.shape == (1, 3, 2)
    c = gg.ones(1, 3)
    c.squeeze_(1)  # a no-op bumps too (torch: 1)
    assert c._version == 1
    c = gg.ones(2, 3)
    c.transpose_(0, 0)
    c.swapdims_(1, 1)
    c.swapaxes_(0, 1)
    assert c._version == 3 and c.shape == (3, 2)
    c = gg.ones(3)
    c.t_()
    assert c._version == 1
    with pytest.raises(RuntimeError, match=r"^t_\(\) expects a tensor with <= 2 dimensions, but self is 3D$"):
        gg.ones(2, 3, 4).t_()
    with pytest.raises(RuntimeError, match=r"^t\(\) expects a tensor with <= 2 dimensions, but self is 3D$"):
        gg.ones(2, 3, 4).t()


def test_metadata_ops_under_autograd():
    x = gg.arange(6., dtype=gg.float64).reshape(2, 3).requires_grad_()
    y = x * 1
    y.t_()
    y.unsqueeze_(0)
    assert y.shape == (1, 3, 2) and y.requires_grad and y.grad_fn is not None
    (y * gg.arange(6., dtype=gg.float64).reshape(1, 3, 2)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0., 2., 4.], [1., 3., 5.]])  # torch's
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        gg.ones(2, requires_grad=True).unsqueeze_(0)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is being used"):
        gg.ones(2, 3, requires_grad=True)[0].unsqueeze_(0)
    leaf = gg.ones(2, 3, requires_grad=True)
    with gg.no_grad():
        leaf.t_()
    assert leaf.shape == (3, 2) and leaf.is_leaf


def test_metadata_ops_on_views():
    b = gg.arange(6.).reshape(2, 3) * 1
    v = b[0]
    v.unsqueeze_(0)
    assert v.shape == (1, 3) and v._base is b and v._version == 1 and b._version == 1
    v.mul_(2)
    np.testing.assert_array_equal(b.numpy(), [[0., 2., 4.], [3., 4., 5.]])
    w = b.t()
    w.t_()
    assert w.shape == (2, 3) and w._base is b
    w[0, 0] = 100
    assert b[0, 0].item() == 100
    # the gradient through a reshaped view reaches its base's region (torch: [[1, 2, 3], [0, 0, 0]])
    x = gg.ones(2, 3, requires_grad=True)
    v = (x * 1)[0]
    v.unsqueeze_(0)
    (v * gg.tensor([[1., 2, 3]])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1., 2., 3.], [0., 0., 0.]])
    # an in-place write after t_ on a view goes back to the base (torch: all 2)
    x = gg.ones(2, 3, requires_grad=True)
    b = x * 1
    v = b.t()
    v.t_()
    v.mul_(2)
    (b * 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.))


def test_metadata_op_of_a_base_with_views_is_refused():
    b = gg.ones(2, 3)
    b.t()  # a view of b (PyTorch would keep it viewing b's memory; gpugrad cannot follow)
    with pytest.raises(RuntimeError, match="cannot change the shape of a tensor in place once views of it were made"):
        b.t_()


# -- resize_ ------------------------------------------------------------------------------------------------------------
def test_resize_shrink_same_memory_and_version():
    x = gg.arange(6.).reshape(2, 3)  # a view of the arange: resized in its memory, and no longer a view
    r = x.resize_(3, 2)
    assert r is x and x._version == 1 and x.is_contiguous() and x._base is None
    np.testing.assert_array_equal(x.numpy(), [[0., 1.], [2., 3.], [4., 5.]])
    x.resize_(3, 2)
    assert x._version == 1  # same shape: no bump (torch: 0 for an untouched tensor)
    x = gg.arange(6.) * 1
    x.resize_(4)
    np.testing.assert_array_equal(x.numpy(), [0., 1., 2., 3.])
    assert x._version == 1
    b = gg.arange(6.).reshape(2, 3) * 1
    v = b[1]
    v.resize_(2)
    np.testing.assert_array_equal(v.numpy(), [3., 4.])
    assert v._base is None and b._version == 1
    v[0] = 100  # still b's memory
    assert b[1, 0].item() == 100
    x = gg.arange(6.)
    x.resize_as_(gg.ones(3, 2))
    assert x.shape == (3, 2)
    x.resize_([2, 3])
    assert x.shape == (2, 3)


def test_resize_grows_only_an_empty_tensor():
    e = gg.empty(0)
    e.resize_(2, 3)
    assert e.shape == (2, 3) and e._version == 1
    # NOTE: PyTorch grows the shared storage (detach()/.data/numpy() views follow); gpugrad's new memory would not
    x = gg.arange(6.) * 1
    y = x.detach()
    with pytest.raises(RuntimeError, match="resize_: gpugrad grows only an empty tensor"):
        x.resize_(10)
    assert x.shape == (6,) and x._version == 0 and y.shape == (6,)


def test_resize_refusals():
    for f in (lambda: gg.ones(2, requires_grad=True).resize_(3), lambda: gg.ones(2, requires_grad=True).resize_(2),
              lambda: (gg.ones(2, requires_grad=True) * 1).resize_(1)):
        with pytest.raises(RuntimeError, match="^cannot resize variables that require grad$"):
            f()
    with pytest.raises(TypeError, match="resize_\\(\\) missing 1 required positional arguments"):
        gg.ones(2).resize_()
    # where gpugrad's arrays cannot share memory as PyTorch's storage does: clear errors
    with pytest.raises(RuntimeError, match="non-contiguous"):
        (gg.arange(6.).reshape(2, 3) * 1).t().resize_(6)
    with pytest.raises(RuntimeError, match="cannot grow a view"):
        (gg.arange(6.).reshape(2, 3) * 1)[1].resize_(5)
    b = gg.arange(6.) * 1
    b.resize_(2)
    with pytest.raises(RuntimeError, match="part of a larger buffer"):
        b.resize_(6)  # PyTorch restores the old storage's [0, ..., 5]
    b = gg.ones(2, 3) * 1
    b[0]
    with pytest.raises(RuntimeError, match="once views of its memory were made"):
        b.resize_(6)


# -- in-place comparisons with an operand that requires grad -------------------------------------------------------------
def test_inplace_comparison_requires_grad():
    o = gg.tensor([1., 3], requires_grad=True)
    r = (gg.tensor([1., 2]) * 1).eq_(o)
    assert r.requires_grad
    np.testing.assert_array_equal(r.detach().numpy(), [1., 0.])
    r.sum().backward()
    np.testing.assert_array_equal(o.grad.numpy(), [0., 0.])
    a = gg.tensor([1., 2], requires_grad=True)
    o = gg.tensor([1., 3], dtype=gg.float64, requires_grad=True)
    r = (a * 1).lt_(o)
    (r * gg.tensor([2., 3])).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0., 0.])
    assert o.grad.dtype == gg.float64
    np.testing.assert_array_equal(o.grad.numpy(), [0., 0.])
    assert gg.tensor([1., 2]).ge_(o).requires_grad  # a leaf that does not require grad (torch: True too)
    assert not gg.tensor([1., 2]).ge_(1.5).requires_grad
    r = gg.tensor([1, 2]).masked_fill_(gg.tensor([True, False]), gg.tensor(1.5, requires_grad=True))
    assert r.requires_grad and r.dtype == gg.int64
    np.testing.assert_array_equal(r.detach().numpy(), [1, 2])
    assert gg.tensor([True, False]).masked_fill_(gg.tensor([True, False]), gg.tensor(1.5, requires_grad=True)) \
        .requires_grad
