"""Everyday PyTorch habits, each as PyTorch does it (values written out; checked against torch when installed)."""
import math
import warnings

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import nn

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

INF, NAN = math.inf, math.nan


def _same(got, want, sign=False):
    """Equal values (nan == nan) in got's dtype; with sign, equal signs of zeros too."""
    g = got._data if isinstance(got, gg.Tensor) else np.asarray(got)
    w = np.asarray(want, dtype=g.dtype if g.dtype.kind == "f" else float)
    np.testing.assert_array_equal(g, w)
    if sign:
        np.testing.assert_array_equal(np.signbit(g) | np.isnan(g), np.signbit(w) | np.isnan(w))


def _torch_agrees(expr):
    """expr (a lambda over a namespace m: gg or torch) gives the same values and dtype in torch."""
    if torch is not None:
        g, t = expr(gg), expr(torch)
        assert str(t.dtype).replace("torch.", "") == str(g.dtype)
        np.testing.assert_array_equal(t.numpy(), g._data)


# -- 1. allclose / isclose / equal (and no builtin shadowed in gpugrad/__init__.py) --------------------
CLOSE = [  # a, b, kwargs, isclose, allclose
    ([1.0, 2.0, NAN], [1.0, 2.0000001, NAN], {}, [True, True, False], False),
    ([1.0, 2.0, NAN], [1.0, 2.0000001, NAN], {"equal_nan": True}, [True, True, True], True),
    ([INF, -INF, 1.0], [INF, INF, INF], {}, [True, False, False], False),
    ([1.0, 100.0], [1.1, 101.0], {"rtol": 0.05}, [False, True], False),
    ([1.0, 2.0], [1.0], {}, [True, False], False),  # broadcast
]


@pytest.mark.parametrize("a,b,kw,close,allc", CLOSE)
def test_isclose_allclose(a, b, kw, close, allc):
    ta, tb = gg.tensor(a), gg.tensor(b)
    got = gg.isclose(ta, tb, **kw)
    assert got.dtype == gg.bool and got._data.tolist() == close
    assert gg.allclose(ta, tb, **kw) is allc and ta.allclose(tb, **kw) is allc
    _torch_agrees(lambda m: m.isclose(m.tensor(a), m.tensor(b), **kw))


def test_isclose_refusals_and_equal():
    assert gg.isclose(gg.tensor([2**40 + 1]), gg.tensor([2**40]), rtol=0, atol=0.5)._data.tolist() == [True]
    with pytest.raises(RuntimeError, match="^Float did not match Double$"):
        gg.isclose(gg.ones(2), gg.ones(2, dtype=gg.float64))
    with pytest.raises(TypeError, match=r"allclose\(\): argument 'other' \(position 2\) must be Tensor, not float"):
        gg.allclose(gg.ones(2), 1.0)
    with pytest.raises(RuntimeError, match="rtol must be greater than or equal to zero, but got -1"):
        gg.ones(1).isclose(gg.ones(1), rtol=-1)
    with pytest.raises(RuntimeError, match=r"size of tensor a \(2\) must match the size of tensor b \(3\)"):
        gg.allclose(gg.ones(2), gg.ones(3))
    assert gg.equal(gg.tensor([1, 2]), gg.tensor([1.0, 2.0])) is True
    assert gg.tensor([1.0, NAN]).equal(gg.tensor([1.0, NAN])) is False
    assert gg.equal(gg.ones(2), gg.ones(1, 2)) is False
    import builtins
    assert not [k for k in vars(gg) if hasattr(builtins, k) and not k.startswith("_")]
    assert (gg.float, gg.int, gg.bool, gg.round.__name__) == (gg.float32, gg.int32, gg.bool_, "round")


# -- 2. format / round / floor / ceil / trunc / frac -----------------------------------------------
def test_format_round_and_integer_rounding():
    assert f"{gg.tensor(1.23456):.4f}" == "1.2346" and format(gg.tensor(1.5), ".2e") == "1.50e+00"
    assert f"{gg.tensor(3)}" == "3" and f"{gg.tensor(2.5)}" == "2.5"  # a 0-d tensor formats as its number
    assert f"{gg.tensor([1.0, 2.0])}" == str(gg.tensor([1.0, 2.0]))
    for t in (gg.tensor([1.0, 2.0]), gg.tensor([1.5])):
        with pytest.raises(TypeError, match="unsupported format string passed to Tensor.__format__"):
            format(t, ".2f")
    with pytest.raises(TypeError, match="doesn't define __round__"):
        round(gg.tensor(2.5))  # NOTE: as torch.Tensor: use t.round(decimals=n) or round(t.item(), n)
    assert gg.tensor([7, -7]).round()._data.tolist() == [7, -7] and gg.tensor([3]).floor().dtype == gg.int64
    for f in (lambda: gg.tensor([True]).floor(), lambda: gg.tensor([3]).frac(),
              lambda: gg.tensor([3]).round(decimals=1)):
        with pytest.raises(NotImplementedError, match="not implemented for"):
            f()
    if torch is not None:
        assert f"{torch.tensor(1.23456):.4f}" == "1.2346"
        with pytest.raises(TypeError):
            round(torch.tensor(2.5))


ROUNDING = [  # method, kwargs, input, output, gradient
    ("round", {}, [1.5, 2.5, -0.5, 1.2], [2.0, 2.0, -0.0, 1.0], 0),
    ("round", {"decimals": 1}, [1.25, 1.26, -0.125], [1.2, 1.3, -0.1], 0),
    ("round", {"decimals": -2}, [1234.5678], [1200.0], 0),
    ("floor", {}, [1.5, -2.5], [1.0, -3.0], 0),
    ("ceil", {}, [1.5, -2.5], [2.0, -2.0], 0),
    ("trunc", {}, [1.5, -2.5], [1.0, -2.0], 0),
    ("frac", {}, [1.5, -2.5, INF], [0.5, -0.5, NAN], 1),
]


@pytest.mark.parametrize("op,kw,x,out,grad", ROUNDING)
def test_rounding_values_and_gradients(op, kw, x, out, grad):
    t = gg.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = getattr(t, op)(**kw)
        y.sum().backward()
    _same(y, out)
    _same(t.grad, [grad] * len(x))
    _torch_agrees(lambda m: getattr(m.tensor(x), op)(**kw))


# -- 3. // % fmod div --------------------------------------------------------------------------------
A, B = [7, -7, 7, -7], [2, 2, -2, -2]
DIVISION = [  # expression over a namespace m (gg or torch), values, dtype
    (lambda m: m.tensor(A) // m.tensor(B), [3, -4, -4, 3], "int64"),
    (lambda m: m.tensor(A) % m.tensor(B), [1, 1, -1, -1], "int64"),
    (lambda m: m.fmod(m.tensor(A), m.tensor(B)), [1, -1, 1, -1], "int64"),
    (lambda m: m.tensor(A) / m.tensor(B), [3.5, -3.5, -3.5, 3.5], "float32"),
    (lambda m: m.div(m.tensor(A), m.tensor(B), rounding_mode="trunc"), [3, -3, -3, 3], "int64"),
    (lambda m: m.tensor(A).div(m.tensor(B), rounding_mode="floor"), [3, -4, -4, 3], "int64"),
    (lambda m: m.tensor(A).float() // m.tensor(B).float(), [3, -4, -4, 3], "float32"),
    (lambda m: m.tensor(A) // 2.5, [2, -3, 2, -3], "float32"),
    (lambda m: 3 // m.tensor(A), [0, -1, 0, -1], "int64"),
    (lambda m: 5 % m.tensor(A), [5, -2, 5, -2], "int64"),
    (lambda m: m.remainder(m.tensor([-0.0, 0.0, 3.0]), m.tensor([2.0, -2.0, -3.0])), [-0.0, 0.0, 0.0], "float32"),
    (lambda m: m.tensor([5.0, -5.0, 0.0]) // 0.0, [INF, -INF, NAN], "float32"),
    (lambda m: m.tensor([5.0, -1.0]) % m.tensor([0.0, INF]), [NAN, INF], "float32"),
    (lambda m: m.floor_divide(m.tensor([5], dtype=m.int32), m.tensor([-2])), [-3], "int64"),
]


@pytest.mark.parametrize("i", range(len(DIVISION)))
def test_division_family(i):
    expr, want, dtype = DIVISION[i]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = expr(gg)
    assert str(got.dtype) == dtype
    _same(got, want, sign=True)
    _torch_agrees(expr)


def test_division_errors_and_gradients():
    a = gg.tensor(A)
    for f in (lambda: a // 0, lambda: a % gg.tensor(0), lambda: a.fmod(0), lambda: a.div(0, rounding_mode="trunc")):
        with pytest.raises(RuntimeError, match="^ZeroDivisionError$"):
            f()
    with pytest.raises(RuntimeError, match="rounding_mode to be one of None, 'trunc', or 'floor' but found 'x'"):
        a.div(2, rounding_mode="x")
    with pytest.raises(TypeError, match=r"unsupported operand type\(s\) for divmod\(\)"):
        divmod(a, 2)  # NOTE: torch.Tensor has no __divmod__ either
    x = gg.tensor([7.0, -7.0, 5.5], requires_grad=True)
    d = gg.tensor([2.0, 2.0, -2.0], requires_grad=True)
    for f, gx, gd in [(lambda: x % d, [1, 1, 1], [-3, 4, 3]), (lambda: x.fmod(d), [1, 1, 1], [-3, 3, 2]),
                      (lambda: x.div(d, rounding_mode="floor"), [0, 0, 0], [0, 0, 0])]:
        x.grad = d.grad = None
        f().sum().backward()
        _same(x.grad, gx)
        _same(d.grad, gd)
    for f, name in [(lambda: x // d, "floor_divide"), (lambda: 5.0 % x, "remainder")]:
        with pytest.raises(RuntimeError, match=f"derivative for aten::{name} is not implemented"):
            f().sum().backward()


# -- 4. randint / randint_like / randperm / normal ----------------------------------------------------
def test_randint_signatures_and_stream():
    gg.manual_seed(0)
    t = gg.randint(0, 10, (5,))
    assert t.dtype == gg.int64 and t._data.tolist() == [8, 6, 5, 2, 3]  # = numpy default_rng(0).integers
    gg.manual_seed(0)
    assert gg.randint(10, (5,))._data.tolist() == [8, 6, 5, 2, 3]  # randint(high, size)
    assert gg.randint(10, size=(2, 3)).shape == (2, 3) and gg.randint(low=2, high=3, size=[2])._data.tolist() == [2, 2]
    assert gg.randint(3, 4, (2,), dtype=gg.float32)._data.tolist() == [3.0, 3.0]
    x = gg.randint_like(gg.zeros(2, 3, dtype=gg.int32), 5)
    assert x.shape == (2, 3) and x.dtype == gg.int32 and 0 <= int(x.min()) and int(x.max()) < 5
    assert sorted(gg.randperm(5, dtype=gg.int32)._data.tolist()) == [0, 1, 2, 3, 4]
    for call, err, msg in [(lambda: gg.randint(10), TypeError, "missing the required argument 'size'"),
                           (lambda: gg.randint(10, 3), TypeError, r"'size' \(position 2\) must be tuple of ints"),
                           (lambda: gg.randint(2.5, (2,)), TypeError, "'high' .* must be int, not float"),
                           (lambda: gg.randint(5, 5, (2,)), RuntimeError, "from=5 >= to=5"),
                           (lambda: gg.randint(257, (2,), dtype=gg.uint8), RuntimeError,
                            "to - 1 is out of bounds for unsigned char"),
                           (lambda: gg.randint(10, (2,), requires_grad=True), RuntimeError, "floating point")]:
        with pytest.raises(err, match=msg):
            call()
    m = gg.zeros(3, requires_grad=True)
    y = gg.normal(m, 1.0)
    y.sum().backward()
    assert m.grad._data.tolist() == [0.0, 0.0, 0.0]  # as PyTorch: no gradient through the sample
    gg.manual_seed(0)
    a = gg.normal(0.0, 1.0, (3,))
    gg.manual_seed(0)
    np.testing.assert_array_equal(a._data, gg.randn(3)._data)


# -- 5. type() -------------------------------------------------------------------------------------------
def test_type_strings_and_casts():
    for dtype, name in [("float16", "Half"), ("float32", "Float"), ("float64", "Double"), ("int8", "Char"),
                        ("uint8", "Byte"), ("int16", "Short"), ("int32", "Int"), ("int64", "Long"), ("bool", "Bool")]:
        assert gg.zeros(2, dtype=dtype).type() == f"torch.{name}Tensor"
        assert gg.ones(2, dtype=gg.float64).type(f"torch.{name}Tensor").dtype == gg.zeros(1, dtype=dtype).dtype
        assert torch is None or torch.zeros(2, dtype=getattr(torch, dtype)).type() == f"torch.{name}Tensor"
    x = gg.tensor([1.5], requires_grad=True)
    assert x.type("torch.FloatTensor") is x
    y = x.type("torch.DoubleTensor")
    y.sum().backward()
    assert y.dtype == gg.float64 and x.grad._data.tolist() == [1.0]
    with pytest.raises(ValueError, match="invalid type: 'torch.QuadTensor'"):
        x.type("torch.QuadTensor")


# -- 6. inference_mode ----------------------------------------------------------------------------------
def test_inference_mode():
    assert gg.autograd.inference_mode is gg.inference_mode
    x = gg.ones(2, requires_grad=True)
    with gg.inference_mode():
        y = x * 2
        assert gg.is_inference_mode_enabled() and not gg.is_grad_enabled()
        with gg.inference_mode(False):
            z = x * 2
            assert not gg.is_inference_mode_enabled() and gg.is_grad_enabled()
    assert (y.is_inference(), y.requires_grad, z.is_inference(), z.requires_grad) == (True, False, False, True)
    assert not gg.is_inference_mode_enabled() and not gg.ones(1).is_inference() and not x.is_inference()

    f, g = gg.inference_mode(lambda a: a * 2), gg.inference_mode(mode=True)(lambda a: a * 2)  # bare / called
    assert f(x).is_inference() and g(x).is_inference() and not f(x).requires_grad and gg.is_grad_enabled()


# -- 7. Generator, default generator, RNG state ---------------------------------------------------------
def test_generator_api_and_state_round_trip(tmp_path):
    g = gg.Generator(device="cpu")
    assert g.manual_seed(3) is g and g.initial_seed() == 3 and str(g.device) == "cpu"
    assert gg.Generator().initial_seed() == 67280421310721  # PyTorch's default seed
    assert gg.manual_seed(-1) is gg.default_generator and gg.initial_seed() == 2**64 - 1
    with pytest.raises(RuntimeError, match="manual_seed expected a long, but got float"):
        g.manual_seed(1.5)
    s = g.seed()
    assert g.initial_seed() == s
    g.manual_seed(0)
    want = np.random.default_rng(0).standard_normal(3, np.float32)  # today's stream, bit for bit
    np.testing.assert_array_equal(gg.randn(3, generator=g)._data, want)
    state = g.get_state()
    assert state.dtype == gg.uint8 and state.ndim == 1
    gg.save({"rng": state}, tmp_path / "s.ggt")
    draw = lambda: [gg.rand(4, generator=g), gg.randint(0, 100, (4,), generator=g),  # noqa: E731
                    gg.randperm(6, generator=g), gg.normal(gg.zeros(3), 1.0, generator=g)]
    first = draw()
    assert g.set_state(gg.load(tmp_path / "s.ggt")["rng"]) is g
    for a, b in zip(first, draw()):
        np.testing.assert_array_equal(a._data, b._data)
    with pytest.raises(TypeError, match="uint8"):
        g.set_state(gg.zeros(3))
    with pytest.raises(RuntimeError, match="not a gpugrad RNG state"):
        g.set_state(gg.zeros(8, dtype=gg.uint8))


def test_generator_everywhere_and_global_state():
    w1, w2 = gg.zeros(3, 4), gg.zeros(3, 4)
    nn.init.kaiming_uniform_(w1, generator=gg.Generator().manual_seed(5))
    nn.init.kaiming_uniform_(w2, generator=gg.Generator().manual_seed(5))
    np.testing.assert_array_equal(w1._data, w2._data)
    ds = gg.data.TensorDataset(gg.arange(10))
    order = [gg.data.DataLoader(ds, batch_size=10, shuffle=True, generator=gg.Generator().manual_seed(1)) for _ in "ab"]
    assert next(iter(order[0]))[0]._data.tolist() == next(iter(order[1]))[0]._data.tolist()
    parts = gg.data.random_split(ds, [4, 6], generator=gg.Generator().manual_seed(2))
    assert sorted(list(parts[0].indices) + list(parts[1].indices)) == list(range(10))
    gg.manual_seed(11)
    st = gg.get_rng_state()
    a = F.dropout(gg.ones(20), 0.5)
    gg.set_rng_state(st)
    np.testing.assert_array_equal(a._data, F.dropout(gg.ones(20), 0.5)._data)


# -- 8. train --resume restores the RNG: dropout runs resume bit-for-bit ----------------------------------
def test_resume_with_dropout_is_bit_for_bit(tmp_path, monkeypatch):
    from gpugrad.__main__ import main
    args = ["train", "--device", "cpu", "--no-progress", "--dropout", "0.3", "--seed", "2"]
    assert main(args + ["--epochs", "3", "--out", str(tmp_path / "full")]) == 0
    assert main(args + ["--epochs", "1", "--out", str(tmp_path / "part")]) == 0
    ck = str(tmp_path / "part" / "checkpoint.ggt")
    assert gg.load(ck)["rng_state"].dtype == gg.uint8
    assert main(args + ["--epochs", "3", "--out", str(tmp_path / "part"), "--resume", ck]) == 0
    full, part = (gg.load(tmp_path / d / "checkpoint.ggt")["model_state"] for d in ("full", "part"))
    assert list(full) == ["1.weight", "1.bias", "4.weight", "4.bias"]  # the Dropout sits at index 3
    assert all(np.array_equal(full[k]._data, part[k]._data) for k in full)
    # the check can fail: without restoring the RNG state the resumed weights differ
    assert main(args + ["--epochs", "1", "--out", str(tmp_path / "x")]) == 0
    monkeypatch.setattr(gg, "set_rng_state", lambda s: None)
    resume = ["--resume", str(tmp_path / "x" / "checkpoint.ggt")]
    assert main(args + ["--epochs", "3", "--out", str(tmp_path / "x"), *resume]) == 0
    other = gg.load(tmp_path / "x" / "checkpoint.ggt")["model_state"]
    assert not all(np.array_equal(full[k]._data, other[k]._data) for k in full)


# -- 9. NumPy arrays / torch.Tensors where a gpugrad Tensor is needed -------------------------------------
FOREIGN = [  # call, message start (then: "got numpy.ndarray; convert it with gg.from_numpy(x) ...")
    (lambda x: F.relu(x), "relu(): expected a gpugrad Tensor, "),
    (lambda x: F.log_softmax(x, 0), "log_softmax(): expected a gpugrad Tensor, "),
    (lambda x: gg.exp(x), "exp(): expected a gpugrad Tensor, "),
    (lambda x: nn.Linear(3, 2)(x), "Linear.forward(): expected a gpugrad Tensor, "),
    (lambda x: nn.Sequential(nn.ReLU(), nn.Linear(3, 2))(x), "ReLU.forward(): expected a gpugrad Tensor, "),
    (lambda x: nn.LayerNorm(3)(x), "LayerNorm.forward(): expected a gpugrad Tensor, "),
    (lambda x: F.cross_entropy(gg.ones(3, 3), x), "cross_entropy(): target must be a Tensor, "),
    (lambda x: nn.MSELoss()(gg.ones(3), x), "mse_loss(): target must be a Tensor, "),
]
HINTS = {"numpy": "got numpy.ndarray; convert it with gg.from_numpy(x) (shares memory) or gg.tensor(x)",
         "torch": "got torch.Tensor; convert it with gg.tensor(t.detach().cpu().numpy()) (a copy) or "
                  "gg.from_numpy(t.detach().cpu().numpy()) (shares the CPU memory)"}


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("i", range(len(FOREIGN)))
def test_foreign_input_gets_a_clear_type_error(i, kind):
    if kind == "torch" and torch is None:
        pytest.skip("torch is not installed")
    call, msg = FOREIGN[i]
    x = np.ones(3, np.float32) if kind == "numpy" else torch.ones(3)
    with pytest.raises(TypeError) as e:
        call(x)
    assert str(e.value) == msg + HINTS[kind]


# -- 10. no NumPy RuntimeWarning where PyTorch is silent (forward and backward) -----------------------------
SILENT = [  # fn, input, output, gradient of output.sum() (PyTorch's values)
    (lambda x: gg.where(x > 0, x.sqrt(), 0.0), [-1.0, 4.0], [0.0, 2.0], [NAN, 0.25]),
    (lambda x: x.sqrt(), [-1.0, 0.0], [NAN, 0.0], [NAN, INF]),
    (lambda x: x.log(), [0.0, -1.0], [-INF, NAN], [INF, -1.0]),
    (lambda x: 1 / x, [0.0, -0.0], [INF, -INF], [-INF, -INF]),
    (lambda x: x ** -1, [0.0], [INF], [-INF]),
    (lambda x: x * INF, [0.0, 2.0], [NAN, INF], [INF, INF]),
    (lambda x: (x * 1000).exp(), [1.0], [INF], [INF]),
    (lambda x: (x * INF).sin(), [1.0], [NAN], [NAN]),
    (lambda x: x % 0.0, [1.0], [NAN], [1.0]),
    (lambda x: x.fmod(0.0), [1.0], [NAN], [1.0]),
    (lambda x: (x * INF).sum(), [1.0, -1.0], NAN, [INF, INF]),
    (lambda x: (x * -INF).softmax(0), [1.0, 1.0], [NAN, NAN], [NAN, NAN]),
]


@pytest.mark.parametrize("i", range(len(SILENT)))
def test_no_numpy_warnings(i):
    fn, x, want, grad = SILENT[i]
    t = gg.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fn(t)
        y.sum().backward()
        assert (t / 0).long().dtype == gg.int64  # a nan/inf cast to int: garbage, silently, as PyTorch
    _same(y, want)
    _same(t.grad, grad)
