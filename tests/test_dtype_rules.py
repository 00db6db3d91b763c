"""Dtype rules, as PyTorch's: type promotion (torch.result_type), no promotion (PyTorch's errors) in matmul,
linear and conv, the losses' and normalization layers' dtypes, every .grad in its tensor's dtype; and the norm /
normalize gradients at zero (finite, no warnings). Expected values are written out; PyTorch, when installed,
is asked the same questions."""
import math
import re
import warnings

import numpy as np
import pytest

import gpugrad as gg
from conftest import to_np

F = gg.nn.functional
try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


_DT = {"b": "bool", "u8": "uint8", "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64", "f16": "float16",
       "f32": "float32", "f64": "float64"}


def _args(specs, lib, device="cpu"):
    """"f32:2,3" -> float32 ones of shape (2, 3) ("f32:" is 0-d), made by gpugrad or torch; numbers stay."""
    out = []
    for sp in specs:
        if isinstance(sp, str):
            dt, shape = _DT[sp.split(":")[0]], tuple(int(n) for n in sp.split(":")[1].split(",") if n)
            sp = gg.ones(shape, dtype=dt, device=device) if lib is gg else torch.ones(shape, dtype=getattr(torch, dt))
        out.append(sp)
    return out


PROMOTION = [  # a, b, torch.result_type(a, b): dimensioned tensors > 0-d tensors > Python numbers
    ("f32:2", "f64:", "float32"), ("f32:2", "f64:2", "float64"), ("i64:2", "f64:", "float64"),
    ("i64:2", "f16:", "float16"), ("i32:2", "i64:", "int32"), ("i32:2", 5, "int32"), ("i32:2", 2 ** 40, "int32"),
    ("u8:2", "i8:2", "int16"), ("u8:2", "i8:", "uint8"), ("i16:2", "u8:", "int16"), ("i64:2", 2.5, "float32"),
    ("u8:2", 1.0, "float32"), ("i32:2", "f16:2", "float16"), ("i64:2", "f16:2", "float16"), ("b:2", True, "bool"),
    ("b:2", 2, "int64"), ("b:2", 2.5, "float32"), ("b:2", "u8:2", "uint8"), ("b:2", "i32:", "int32"),
    ("b:2", "f16:", "float16"), ("f16:2", 2.5, "float16"), ("f16:2", "f32:", "float16"), ("f16:2", "f32:2", "float32"),
    ("f64:2", 1, "float64"), ("f16:", "f64:", "float64"), ("i32:", 2.5, "float32"), ("i32:", "f16:", "float16"),
    ("i8:", 300, "int8"), ("b:", 1, "int64"), ("f64:", "i32:2", "float64"), (True, "i8:2", "int8"),
    (2.5, "i64:", "float32"), (1, 2.5, "float32"),
]


@pytest.mark.parametrize("a,b,want", PROMOTION, ids=[f"{a}-{b}" for a, b, _ in PROMOTION])
def test_result_type_and_the_ops_that_follow_it(a, b, want, device):
    x, y = _args([a, b], gg, device)
    want = np.dtype(want)
    assert gg.result_type(x, y) == want and gg.result_type(y, x) == want
    if isinstance(x, gg.Tensor) or isinstance(y, gg.Tensor):
        assert (x + y).dtype == want and (y * x).dtype == want
        assert gg.where(gg.tensor([True, False], device=device), x, y).dtype == want
        if isinstance(x, gg.Tensor) and isinstance(y, gg.Tensor):
            assert gg.maximum(x, y).dtype == want and gg.minimum(y, x).dtype == want
            assert x.clamp(min=y).dtype == want
    if torch is not None:
        assert str(torch.result_type(*_args([a, b], torch))) == f"torch.{want}"


def test_integer_wrapping_division_and_pow(device):
    i = gg.tensor([1, 2], device=device)
    assert to_np(gg.tensor([1], dtype="int8", device=device) + 1000).tolist() == [-23]  # wraps, as PyTorch
    assert to_np(gg.tensor([0], dtype="uint8", device=device) - 1).tolist() == [255]
    for y, dt in [(i / i, "float32"), (i / 2, "float32"), (gg.tensor([True], device=device) / True, "float32"),
                  (i / gg.tensor(2.0, dtype="float64", device=device), "float64"), (i ** 2.5, "float32"),
                  (i ** 2, "int64"), (2.5 ** i, "float32"), (i ** gg.tensor(2.0, dtype="float64", device=device),
                                                             "float64")]:
        assert y.dtype == np.dtype(dt)
    np.testing.assert_allclose(to_np(i / 2), [0.5, 1.0])
    b = gg.tensor([True, False], device=device)
    with pytest.raises(RuntimeError, match=re.escape("Subtraction, the `-` operator, with two bool tensors is not "
                                                     "supported. Use the `^` or `logical_xor()` operator instead.")):
        b - True


def test_promote_types_can_cast_and_cat():
    for a, b, want in [("float16", "int64", "float16"), ("uint8", "int8", "int16"), ("bool", "uint8", "uint8"),
                       ("int32", "int64", "int64"), ("float16", "float32", "float32"), ("bool", "bool", "bool")]:
        assert gg.promote_types(np.dtype(a), np.dtype(b)) == np.dtype(want) == gg.promote_types(np.dtype(b), np.dtype(a))
    for a, b, want in [("float32", "int32", False), ("int64", "float16", True), ("int8", "bool", False),
                       ("bool", "int8", True), ("float64", "float16", True), ("uint8", "int8", True)]:
        assert gg.can_cast(np.dtype(a), np.dtype(b)) is want
        if torch is not None:
            assert torch.can_cast(getattr(torch, a), getattr(torch, b)) is want
    with pytest.raises(RuntimeError, match="Promotion for uint16, uint32, uint64 types is not supported, attempted "
                                           "to promote UInt16 and Char"):
        gg.promote_types(np.dtype("uint16"), gg.int8)
    for dts, want in [(("int32", "float16"), "float16"), (("uint8", "int8", "bool"), "int16"),
                      (("float32", "float64"), "float64"), (("bool", "bool"), "bool")]:
        assert gg.cat([gg.ones(2, dtype=d) for d in dts]).dtype == np.dtype(want)
    with pytest.raises(RuntimeError, match=re.escape("zero-dimensional tensor (at position 1) cannot be concatenated")):
        gg.cat([gg.ones(1), gg.tensor(2.0)])


def _F(lib):
    return F if lib is gg else torch.nn.functional


MM, AB = "expected m1 and m2 to have the same dtype, but got: ", "mat1 and mat2 must have the same dtype, but got "
CB = "Input type ({}) and bias type ({}) should be the same"
CW = "Input type (torch.{}Tensor) and weight type (torch.{}Tensor) should be the same"
NO_PROMOTION = [  # op, operands, PyTorch's message (the kernel it dispatches to), CPU PyTorch says the same
    ("matmul", ["f32:2,3", "f64:3,2"], MM + "float != double", True),
    ("matmul", ["f32:3", "f64:3"], "dot : expected both vectors to have same dtype, but found Float and Double", True),
    ("matmul", ["f32:2,3", "f64:3"], "addmv input tensors must have the same dtype, but got Double, Float, and Double",
     True),
    ("matmul", ["f32:3", "f64:3,2"], MM + "float != double", True),
    ("matmul", ["f32:4,2,3", "f64:3,2"], MM + "float != double", True),
    ("matmul", ["f32:4,2,3", "f64:4,3,2"], "expected scalar type Float but found Double", True),
    ("matmul", ["i64:2,3", "f32:3,2"], MM + "long int != float", True),
    ("matmul", ["f16:2,3", "f32:3,2"], MM + "c10::Half != float", True),
    ("matmul", ["i32:2,3", "i64:3,2"], MM + "int != long int", True),
    ("mm", ["f32:2,3", "f64:3,2"], MM + "float != double", True),
    ("bmm", ["f32:4,2,3", "f64:4,3,2"], "expected scalar type Float but found Double", True),
    ("bmm", ["i64:4,2,3", "f32:4,3,2"], "expected scalar type Long but found Float", True),
    ("linear", ["f64:2,3", "f32:4,3"], MM + "double != float", True),
    ("linear", ["f16:2,3", "f32:4,3"], MM + "c10::Half != float", True),
    ("linear", ["f64:2,3", "f32:4,3", "f32:4"], AB + "Double and Float", True),
    ("linear", ["f64:5,2,3", "f32:4,3", "f32:4"], AB + "Double and Float", True),
    ("linear", ["i64:2,3", "f32:4,3", "f32:4"], AB + "Long and Float", True),
    ("linear", ["f32:2,3", "f32:4,3", "f64:4"], "self and mat2 must have the same dtype, but got Double and Float", True),
    ("conv2d", ["f64:1,2,5,5", "f32:3,2,3,3", "f32:3"], CB.format("double", "float"), True),
    ("conv2d", ["f32:1,2,5,5", "f32:3,2,3,3", "f64:3"], CB.format("float", "double"), True),
    ("conv2d", ["i64:1,2,5,5", "f32:3,2,3,3", "f32:3"], CB.format("long int", "float"), True),
    ("conv2d", ["f16:1,2,5,5", "f32:3,2,3,3", "f32:3"], CB.format("c10::Half", "float"), True),
    # the weight: PyTorch's CUDA/oneDNN wording (its CPU fallback says "expected scalar type Float but found Half")
    ("conv2d", ["f32:1,2,5,5", "f16:3,2,3,3"], CW.format("Float", "Half"), False),
    ("conv2d", ["f64:1,2,5,5", "f32:3,2,3,3"], CW.format("Double", "Float"), False),
]


@pytest.mark.parametrize("op,specs,msg,same", NO_PROMOTION, ids=[f"{r[0]}-{'-'.join(r[1])}" for r in NO_PROMOTION])
def test_dense_ops_never_promote(op, specs, msg, same, device):
    def call(lib, *a):
        return getattr(_F(lib) if op in ("linear", "conv2d") else lib, op)(*a)
    with pytest.raises(RuntimeError, match=f"^{re.escape(msg)}$"):
        call(gg, *_args(specs, gg, device))
    if op == "matmul":
        a, b = _args(specs, gg, device)
        with pytest.raises(RuntimeError, match=f"^{re.escape(msg)}$"):
            a @ b
    if torch is not None:
        with pytest.raises(RuntimeError) as e:
            call(torch, *_args(specs, torch))
        assert str(e.value).startswith(msg) or not same


def test_layers_refuse_other_dtypes(device):
    with pytest.raises(RuntimeError, match="^mat1 and mat2 must have the same dtype, but got Long and Float$"):
        gg.nn.Linear(3, 4, device=device)(gg.ones(2, 3, dtype="int64", device=device))
    with pytest.raises(RuntimeError, match=re.escape("Input type (double) and bias type (float) should be the same")):
        gg.nn.Conv2d(2, 3, 3, device=device)(gg.ones(1, 2, 5, 5, dtype="float64", device=device))
    y = gg.nn.Linear(3, 4, dtype="float64", device=device)(gg.ones(2, 3, dtype="float64", device=device))
    assert y.dtype == gg.float64


BCE = "binary_cross_entropy_with_logits"
LOSSES = [  # loss, input dtype, target dtype, PyTorch's result dtype (huber: the input's; bce: the target's)
    ("mse_loss", "f32", "f64", "float64"), ("mse_loss", "f16", "f32", "float32"), ("mse_loss", "i64", "f32", "float32"),
    ("l1_loss", "f64", "f32", "float64"), ("smooth_l1_loss", "f32", "f16", "float32"),
    ("huber_loss", "f32", "f64", "float32"), ("huber_loss", "f16", "f32", "float16"), (BCE, "f32", "f64", "float64"),
    (BCE, "f64", "f32", "float32"), (BCE, "f32", "f16", "float16"), ("cross_entropy", "f32", "f64", "float64"),
    ("cross_entropy", "f64", "f32", "float64"),
]


@pytest.mark.parametrize("name,dx,dt,want", LOSSES, ids=[f"{r[0]}-{r[1]}-{r[2]}" for r in LOSSES])
def test_loss_dtypes(name, dx, dt, want, device):
    r = np.random.default_rng(0)
    xa, ta = np.round(r.uniform(-2, 2, (4, 3)), 0 if dx == "i64" else 3), np.round(r.uniform(0, 1, (4, 3)), 3)
    x, t = gg.tensor(xa, dtype=_DT[dx], device=device), gg.tensor(ta, dtype=_DT[dt], device=device)
    y = getattr(F, name)(x, t)
    ref = getattr(F, name)(x.double(), t.double())  # the same inputs, all in float64
    assert y.dtype == np.dtype(want)
    tol = 2e-3 if "f16" in (dx, dt) else 1e-6
    np.testing.assert_allclose(to_np(y), to_np(ref), rtol=tol)
    if torch is not None:
        ty = getattr(torch.nn.functional, name)(torch.from_numpy(to_np(x)), torch.from_numpy(to_np(t)))
        assert str(ty.dtype) == f"torch.{want}"
        np.testing.assert_allclose(to_np(y), ty.double().numpy(), rtol=tol)


def test_loss_dtype_errors_and_gradients(device):
    x = gg.tensor(np.linspace(-1, 1, 6).reshape(2, 3), dtype="float32", device=device, requires_grad=True)
    idx = gg.tensor([0, 2], device=device)
    for fn, msg in [
        (lambda: F.binary_cross_entropy_with_logits(x, gg.ones(2, 3, dtype="int64", device=device)),
         "result type Float can't be cast to the desired output type Long"),
        (lambda: F.huber_loss(gg.ones(3, dtype="int64", device=device), gg.ones(3, device=device)),
         "result type Float can't be cast to the desired output type Long"),
        (lambda: F.cross_entropy(x, idx, weight=gg.ones(3, dtype="float64", device=device)),
         "expected scalar type Float but found Double"),
        (lambda: F.nll_loss(x, idx, weight=gg.ones(3, dtype="float64", device=device)),
         "expected scalar type Float but found Double"),
        (lambda: F.cross_entropy(x, idx.int()), "expected target dtype to be Long or Byte, but got Int"),
        (lambda: F.huber_loss(x, gg.zeros(2, 3, dtype="float64", device=device)).backward(),
         "Found dtype Double but expected Float"),  # PyTorch computes it, then refuses its gradient
    ]:
        with pytest.raises(RuntimeError, match=f"^{re.escape(msg)}$"):
            fn()
    t = gg.zeros(2, 3, dtype="float64", device=device, requires_grad=True)
    F.mse_loss(x, t).backward()
    assert (x.grad.dtype, t.grad.dtype) == (gg.float32, gg.float64)
    np.testing.assert_allclose(to_np(x.grad), to_np(x.detach()) / 3, rtol=1e-6)


def test_normalization_layers_dtypes(device):
    x64, w32 = gg.ones(2, 3, dtype="float64", device=device), gg.ones(3, device=device)
    with pytest.raises(RuntimeError, match=re.escape("mixed dtype (CPU): all inputs must share same datatype.")):
        F.layer_norm(x64, (3,), w32, w32)
    with pytest.raises(RuntimeError, match=re.escape("mixed dtype (CPU): expect parameter to have scalar type of Float")):
        F.group_norm(x64.float(), 1, x64[0], x64[0])
    with pytest.raises(RuntimeError, match="^expected scalar type Float but found Double$"):
        F.batch_norm(x64.float(), x64[0], x64[0], w32, w32, training=True)
    x16 = gg.tensor([[1.0, 2.0, 4.0], [0.0, 1.0, 2.0]], dtype="float16", device=device)
    y = F.layer_norm(x16, (3,), w32, w32 * 0)  # mixed precision: float32 parameters with a float16 input
    assert y.dtype == gg.float16
    np.testing.assert_allclose(to_np(y)[1], [-1.2247, 0, 1.2247], atol=2e-3)


def test_grad_has_its_tensors_dtype_and_shape(device):
    x = gg.ones(2, 3, device=device, requires_grad=True)
    s = gg.tensor(2.0, dtype="float64", device=device, requires_grad=True)
    h = gg.ones(3, dtype="float16", device=device, requires_grad=True)
    y = x * s + h  # 0-d float64 does not promote: float32; float16 (3,) + float32 (2, 3): float32
    assert y.dtype == gg.float32
    y.sum().backward()
    assert (x.grad.dtype, x.grad.shape, s.grad.dtype, s.grad.shape) == (gg.float32, (2, 3), gg.float64, ())
    assert (h.grad.dtype, h.grad.shape) == (gg.float16, (3,))
    assert to_np(x.grad).tolist() == [[2.0] * 3] * 2 and s.grad.item() == 6.0 and to_np(h.grad).tolist() == [2.0] * 3


X0 = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.0]])
R2 = 1 + math.sqrt(2)
NORMS = [  # p, norms of the rows of X0, gradient of their sum: 0 at the zero row (PyTorch's subgradient)
    (2, [0, math.sqrt(5)], [[0, 0, 0], [1 / math.sqrt(5), -2 / math.sqrt(5), 0]]),
    (3, [0, 9 ** (1 / 3)], [[0, 0, 0], [9 ** (-2 / 3), -4 * 9 ** (-2 / 3), 0]]),
    (0.5, [0, R2 ** 2], [[0, 0, 0], [R2, -R2 / math.sqrt(2), 0]]),
    (1, [0, 3], [[0, 0, 0], [1, -1, 0]]),
    (math.inf, [0, 2], [[0, 0, 0], [0, -1, 0]]),
    (-1, [0, 0], [[0, 0, 0], [0, 0, 0]]),
]


@pytest.mark.parametrize("p,want,grad", NORMS, ids=[str(r[0]) for r in NORMS])
def test_norm_at_zero_is_finite_and_silent(p, want, grad, device):
    x = gg.tensor(X0, dtype="float64", device=device, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NOTE: no NumPy RuntimeWarning may leak
        y = x.norm(p, dim=1)
        y.sum().backward()
    np.testing.assert_allclose(to_np(y), want, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(to_np(x.grad), grad, rtol=1e-12, atol=1e-300)
    if torch is not None:
        tx = torch.tensor(X0, requires_grad=True)
        tx.norm(p, dim=1).sum().backward()
        np.testing.assert_allclose(tx.grad.numpy(), grad, rtol=1e-12, atol=1e-300)


def test_normalize_at_zero_and_double_backward(device):
    x = gg.tensor(X0, dtype="float64", device=device, requires_grad=True)
    w = gg.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], dtype="float64", device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = F.normalize(x, dim=1)
        (g,) = gg.autograd.grad((y * w).sum(), x, create_graph=True)
        (gg2,) = gg.autograd.grad((g * g).sum(), x)
        (h,) = gg.autograd.grad(x.norm(dim=1).sum(), x, create_graph=True)
        (h2,) = gg.autograd.grad((h * h).sum(), x)
    np.testing.assert_allclose(to_np(y), [[0, 0, 0], [1 / math.sqrt(5), -2 / math.sqrt(5), 0]], rtol=1e-12)
    np.testing.assert_allclose(to_np(g)[0], [1e12, 2e12, 3e12], rtol=1e-12)  # w / eps, as PyTorch
    assert np.isfinite(to_np(gg2)).all() and np.isfinite(to_np(h2)).all()
    assert to_np(h2)[0].tolist() == [0.0, 0.0, 0.0]  # NOTE: PyTorch's second derivative of the 2-norm at 0 is NaN
    if torch is not None:
        tx = torch.tensor(X0, requires_grad=True)
        (torch.nn.functional.normalize(tx, dim=1) * torch.from_numpy(to_np(w))).sum().backward()
        np.testing.assert_allclose(tx.grad.numpy(), to_np(g), rtol=1e-12)
