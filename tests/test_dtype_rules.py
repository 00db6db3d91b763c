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


def _make(spec, device, lib=gg):
    """("t", dtype): a (2,) tensor; ("z", dtype): a 0-d tensor; anything else: that Python number."""
    if not isinstance(spec, tuple):
        return spec
    shape, dt = (2,) if spec[0] == "t" else (), spec[1]
    return gg.ones(shape, dtype=dt, device=device) if lib is gg else torch.ones(shape, dtype=getattr(torch, dt))


def T(dt): return ("t", dt)  # noqa: E704
def Z(dt): return ("z", dt)  # noqa: E704


PROMOTION = [  # a, b, torch.result_type(a, b)
    (T("float32"), Z("float64"), "float32"), (T("float32"), T("float64"), "float64"),
    (T("int64"), Z("float64"), "float64"), (T("int64"), Z("float16"), "float16"), (T("int32"), Z("int64"), "int32"),
    (T("int32"), 5, "int32"), (T("int32"), 2 ** 40, "int32"), (T("uint8"), T("int8"), "int16"),
    (T("uint8"), Z("int8"), "uint8"), (T("int16"), Z("uint8"), "int16"), (T("int64"), 2.5, "float32"),
    (T("uint8"), 1.0, "float32"), (T("int32"), T("float16"), "float16"), (T("int64"), T("float16"), "float16"),
    (T("bool"), True, "bool"), (T("bool"), 2, "int64"), (T("bool"), 2.5, "float32"), (T("bool"), T("uint8"), "uint8"),
    (T("bool"), Z("int32"), "int32"), (T("bool"), Z("float16"), "float16"), (T("float16"), 2.5, "float16"),
    (T("float16"), Z("float32"), "float16"), (T("float16"), T("float32"), "float32"), (T("float64"), 1, "float64"),
    (Z("float16"), Z("float64"), "float64"), (Z("int32"), 2.5, "float32"), (Z("int32"), Z("float16"), "float16"),
    (Z("int8"), 300, "int8"), (Z("bool"), 1, "int64"), (Z("float64"), T("int32"), "float64"),
    (True, T("int8"), "int8"), (2.5, Z("int64"), "float32"), (1, 2.5, "float32"),
]


@pytest.mark.parametrize("a,b,want", PROMOTION, ids=[f"{a}-{b}" for a, b, _ in PROMOTION])
def test_result_type_and_the_ops_that_follow_it(a, b, want, device):
    x, y = _make(a, device), _make(b, device)
    want = np.dtype(want)
    assert gg.result_type(x, y) == want and gg.result_type(y, x) == want
    if isinstance(x, gg.Tensor) or isinstance(y, gg.Tensor):
        assert (x + y).dtype == want and (y * x).dtype == want
        assert gg.where(gg.tensor([True, False], device=device), x, y).dtype == want
        if isinstance(x, gg.Tensor) and isinstance(y, gg.Tensor):
            assert gg.maximum(x, y).dtype == want and gg.minimum(y, x).dtype == want
            assert x.clamp(min=y).dtype == want
    if torch is not None:
        assert str(torch.result_type(_make(a, "cpu", torch), _make(b, "cpu", torch))) == f"torch.{want}"


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


def _raises_as_torch(fn, args, msg, torch_same=True):
    """fn(*gg tensors) raises RuntimeError(msg); PyTorch raises a RuntimeError too (with msg when torch_same)."""
    with pytest.raises(RuntimeError, match=f"^{re.escape(msg)}$"):
        fn(gg, *args)
    if torch is not None:
        targs = [torch.from_numpy(np.asarray(to_np(a))) if isinstance(a, gg.Tensor) else a for a in args]
        with pytest.raises(RuntimeError) as e:
            fn(torch, *targs)
        if torch_same:
            assert str(e.value).splitlines()[0].startswith(msg)


MM = "expected m1 and m2 to have the same dtype, but got: "
MATMUL = [  # op, a shape, a dtype, b shape, b dtype, PyTorch's message (CPU, the kernel matmul dispatches to)
    ("matmul", (2, 3), "float32", (3, 2), "float64", MM + "float != double"),
    ("matmul", (2, 3), "float64", (3, 2), "float32", MM + "double != float"),
    ("matmul", (3,), "float32", (3,), "float64", "dot : expected both vectors to have same dtype, but found Float and Double"),
    ("matmul", (2, 3), "float32", (3,), "float64", "addmv input tensors must have the same dtype, but got Double, "
                                                   "Float, and Double"),
    ("matmul", (3,), "float32", (3, 2), "float64", MM + "float != double"),
    ("matmul", (4, 2, 3), "float32", (3, 2), "float64", MM + "float != double"),
    ("matmul", (4, 2, 3), "float32", (4, 3, 2), "float64", "expected scalar type Float but found Double"),
    ("matmul", (2, 3), "int64", (3, 2), "float32", MM + "long int != float"),
    ("matmul", (2, 3), "float16", (3, 2), "float32", MM + "c10::Half != float"),
    ("matmul", (2, 3), "int32", (3, 2), "int64", MM + "int != long int"),
    ("mm", (2, 3), "float32", (3, 2), "float64", MM + "float != double"),
    ("bmm", (4, 2, 3), "float32", (4, 3, 2), "float64", "expected scalar type Float but found Double"),
    ("bmm", (4, 2, 3), "int64", (4, 3, 2), "float32", "expected scalar type Long but found Float"),
]


@pytest.mark.parametrize("op,sa,da,sb,db,msg", MATMUL, ids=[f"{r[0]}{r[1]}{r[2]}-{r[3]}{r[4]}" for r in MATMUL])
def test_matmul_never_promotes(op, sa, da, sb, db, msg, device):
    a, b = gg.ones(*sa, dtype=da, device=device), gg.ones(*sb, dtype=db, device=device)
    _raises_as_torch(lambda m, x, y: getattr(m, op)(x, y), (a, b), msg)
    if op == "matmul":
        with pytest.raises(RuntimeError, match=f"^{re.escape(msg)}$"):
            a @ b


LINEAR = [  # input shape, input dtype, bias dtype (weight: float32 (4, 3)), PyTorch's message
    ((2, 3), "float64", None, MM + "double != float"),
    ((2, 3), "float64", "float32", "mat1 and mat2 must have the same dtype, but got Double and Float"),
    ((2, 3), "float32", "float64", "self and mat2 must have the same dtype, but got Double and Float"),
    ((5, 2, 3), "float64", "float32", "mat1 and mat2 must have the same dtype, but got Double and Float"),
    ((3,), "float64", None, MM + "double != float"),
    ((2, 3), "int64", "float32", "mat1 and mat2 must have the same dtype, but got Long and Float"),
    ((2, 3), "float32", "float16", "self and mat2 must have the same dtype, but got Half and Float"),
    ((2, 3), "float16", None, MM + "c10::Half != float"),
]


@pytest.mark.parametrize("shape,dt,bdt,msg", LINEAR, ids=[f"{r[0]}{r[1]}-{r[2]}" for r in LINEAR])
def test_linear_never_promotes(shape, dt, bdt, msg, device):
    x, w = gg.ones(*shape, dtype=dt, device=device), gg.ones(4, 3, device=device)
    args = (x, w) if bdt is None else (x, w, gg.ones(4, dtype=bdt, device=device))
    _raises_as_torch(lambda m, *a: (F if m is gg else torch.nn.functional).linear(*a), args, msg)


def test_layers_refuse_other_dtypes(device):
    msg = "mat1 and mat2 must have the same dtype, but got Long and Float"
    with pytest.raises(RuntimeError, match=f"^{msg}$"):
        gg.nn.Linear(3, 4, device=device)(gg.ones(2, 3, dtype="int64", device=device))
    with pytest.raises(RuntimeError, match=re.escape("Input type (double) and bias type (float) should be the same")):
        gg.nn.Conv2d(2, 3, 3, device=device)(gg.ones(1, 2, 5, 5, dtype="float64", device=device))
    assert gg.nn.Linear(3, 4, dtype="float64", device=device)(gg.ones(2, 3, dtype="float64", device=device)).dtype \
        == gg.float64


CONV = [  # input dtype, weight dtype, bias dtype, PyTorch's message (the bias is checked first), same on CPU torch
    ("float64", "float32", "float32", "Input type (double) and bias type (float) should be the same", True),
    ("float32", "float32", "float64", "Input type (float) and bias type (double) should be the same", True),
    ("int64", "float32", "float32", "Input type (long int) and bias type (float) should be the same", True),
    ("float16", "float32", "float32", "Input type (c10::Half) and bias type (float) should be the same", True),
    # the weight: PyTorch's CUDA/oneDNN wording (its CPU fallback says "expected scalar type Float but found Half")
    ("float32", "float16", None, "Input type (torch.FloatTensor) and weight type (torch.HalfTensor) should be the "
                                 "same", False),
    ("float64", "float32", None, "Input type (torch.DoubleTensor) and weight type (torch.FloatTensor) should be the "
                                 "same", False),
]


@pytest.mark.parametrize("dt,wdt,bdt,msg,same", CONV, ids=[f"{r[0]}-{r[1]}-{r[2]}" for r in CONV])
def test_conv2d_never_promotes(dt, wdt, bdt, msg, same):
    x, w = gg.ones(1, 2, 5, 5, dtype=dt), gg.ones(3, 2, 3, 3, dtype=wdt)
    args = (x, w) if bdt is None else (x, w, gg.ones(3, dtype=bdt))
    _raises_as_torch(lambda m, *a: (F if m is gg else torch.nn.functional).conv2d(*a), args, msg, torch_same=same)


LOSSES = [  # loss, input dtype, target dtype, PyTorch's result dtype
    ("mse_loss", "float32", "float64", "float64"), ("mse_loss", "float16", "float32", "float32"),
    ("mse_loss", "int64", "float32", "float32"), ("l1_loss", "float64", "float32", "float64"),
    ("smooth_l1_loss", "float32", "float16", "float32"), ("huber_loss", "float32", "float64", "float32"),
    ("huber_loss", "float16", "float32", "float16"), ("binary_cross_entropy_with_logits", "float32", "float64", "float64"),
    ("binary_cross_entropy_with_logits", "float64", "float32", "float32"),
    ("binary_cross_entropy_with_logits", "float32", "float16", "float16"), ("cross_entropy", "float32", "float64", "float64"),
    ("cross_entropy", "float64", "float32", "float64"),
]


@pytest.mark.parametrize("name,dx,dt,want", LOSSES, ids=[f"{r[0]}-{r[1]}-{r[2]}" for r in LOSSES])
def test_loss_dtypes(name, dx, dt, want, device):
    r = np.random.default_rng(0)
    xa, ta = r.uniform(-2, 2, (4, 3)), r.uniform(0, 1, (4, 3))
    if dx == "int64":
        xa = np.round(xa)
    x, t = gg.tensor(xa, dtype=dx, device=device), gg.tensor(ta, dtype=dt, device=device)
    y = getattr(F, name)(x, t)
    ref = getattr(F, name)(x.double(), t.double())  # the same inputs, all in float64
    assert y.dtype == np.dtype(want)
    np.testing.assert_allclose(to_np(y), to_np(ref), rtol=2e-3 if "float16" in (dx, dt) else 1e-6)
    if torch is not None:
        tx, tt = torch.from_numpy(to_np(x)), torch.from_numpy(to_np(t))
        assert str(getattr(torch.nn.functional, name)(tx, tt).dtype) == f"torch.{want}"


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
