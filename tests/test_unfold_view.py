"""Tensor.unfold is a view, as PyTorch's: shared memory and version counter, ``_base``, strides, gradients that
add overlapping windows back, double backward, in-place writes through it differentiated via the base."""
import itertools

import numpy as np
import pytest

import gpugrad as gg
from conftest import to_np

# (shape, dim, size, step) -> (result shape, stride(), is_contiguous()): PyTorch 2.13's answers
LAYOUTS = [
    ((6,), 0, 3, 1, (4, 3), (1, 1), False),
    ((6,), 0, 6, 1, (1, 6), (1, 1), True),
    ((6,), 0, 1, 1, (6, 1), (1, 1), True),
    ((4, 6), 1, 2, 2, (4, 3, 2), (6, 2, 1), True),
    ((4, 6), 0, 4, 1, (1, 6, 4), (6, 1, 6), False),
    ((4, 6), 0, 1, 1, (4, 6, 1), (6, 1, 6), True),
    ((4, 6), 1, 6, 1, (4, 1, 6), (6, 1, 1), True),
    ((2, 3), 1, 3, 5, (2, 1, 3), (3, 5, 1), True),
    ((4,), 0, 1, 2, (2, 1), (2, 1), False),
    ((5,), 0, 0, 1, (6, 0), (1, 1), True),
    ((5,), 0, 0, 2, (3, 0), (2, 1), True),
    ((0,), 0, 0, 1, (1, 0), None, True),  # NOTE: gpugrad's stride() of an empty tensor is NumPy's (0), not 1
    ((), 0, 1, 1, (1,), (1,), True),
    ((), -1, 0, 3, (0,), (1,), True),
]


@pytest.mark.parametrize("shape,dim,size,step,out,stride,contig", LAYOUTS)
def test_layout(device, shape, dim, size, step, out, stride, contig):
    x = gg.arange(float(np.prod(shape)), device=device).reshape(shape)
    v = x.unfold(dim, size, step)
    assert tuple(v.shape) == out and v.stride() == (stride or v.stride()) and v.is_contiguous() is contig
    assert v._base is (x if x._base is None else x._base)
    assert v.storage_offset() == 0


def test_values_and_view_of_views(device):
    x = gg.arange(24.0, device=device).reshape(4, 6)
    root = x._base
    assert x.unfold(1, 3, 2).tolist()[1] == [[6, 7, 8], [8, 9, 10]]
    v = x.t().unfold(0, 2, 1)  # a transposed source: its own strides are used
    assert tuple(v.shape) == (5, 4, 2) and v.stride() == (1, 6, 1) and not v.is_contiguous() and v._base is root
    assert v[1, 2].tolist() == [13.0, 14.0]
    v = x[:, 1:].unfold(1, 3, 2)
    assert tuple(v.shape) == (4, 2, 3) and v.stride() == (6, 2, 1) and v.storage_offset() == 1 and v._base is root
    w = v.unfold(0, 2, 1)
    assert tuple(w.shape) == (3, 2, 3, 2) and w.stride() == (6, 2, 1, 6) and w._base is root
    assert w[2, 1, 0].tolist() == [15.0, 21.0]
    f = gg.arange(6.0, device=device)[1:].unfold(0, 2, 2)
    assert f.tolist() == [[1, 2], [3, 4]] and f.storage_offset() == 1


def test_writes_both_ways_and_versions(device):
    x = gg.arange(6.0, device=device)
    v = x.unfold(0, 3, 1)
    assert v._version == x._version == 0
    x[2] = 10.0  # the source's write shows through the view
    assert v.tolist() == [[0, 1, 10], [1, 10, 3], [10, 3, 4], [3, 4, 5]] and v._version == 1
    v[3, 2] = -1.0  # and the view's reaches the source
    assert x.tolist() == [0, 1, 10, 3, 4, -1] and x._version == 2
    v.fill_(7.0)  # a fill of overlapping windows is well defined
    assert x.tolist() == [7.0] * 6 and x._version == 3
    x = gg.arange(7.0, device=device)
    v = x.unfold(0, 2, 3)  # gaps between the windows stay untouched
    v.add_(1.0)
    assert x.tolist() == [1, 2, 2, 4, 5, 5, 6] and x._version == v._version == 1
    v.mul_(gg.tensor([[2.0], [3.0]], device=device))
    assert x.tolist() == [2, 4, 2, 12, 15, 5, 6]


def test_writes_into_overlapping_windows_are_refused(device):
    # NOTE: PyTorch 2.13 (one thread) applies an in-place op once per window covering an element (add_(1) on
    # arange(6).unfold(0, 3, 1) gives [1, 3, 5, 6, 6, 6]; with threads the result depends on the schedule);
    # gpugrad refuses such writes, as PyTorch refuses writes into expanded tensors
    for op, args in (("add_", (1.0,)), ("mul_", (2.0,)), ("copy_", (gg.ones(4, 3, device=device),)),
                     ("__setitem__", (slice(0, 2), 5.0)), ("masked_fill_", (gg.ones(4, 3, dtype=gg.bool, device=device), 1.0))):
        x = gg.arange(6.0, device=device)
        with pytest.raises(RuntimeError, match="more than one element of the written-to tensor refers to a single "
                                               "memory location. Please clone"):
            getattr(x.unfold(0, 3, 1), op)(*args)
        assert x.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] and x._version == 0
    # fill_/zero_ write one value: allowed, as in PyTorch
    x = gg.arange(6.0, device=device)
    x.unfold(0, 3, 1).fill_(7.0)
    assert x.tolist() == [7.0] * 6
    x.unfold(0, 3, 2).zero_()
    assert x.tolist() == [0.0] * 5 + [7.0]
    # non-overlapping windows (step >= size) take every write
    x = gg.arange(6.0, device=device)
    x.unfold(0, 2, 3).add_(1.0)
    assert x.tolist() == [1.0, 2.0, 2.0, 4.0, 5.0, 5.0]
    # one window, or one element of it, shares no memory with itself
    x.unfold(0, 3, 1)[1, 2] = 9.0
    assert x[3].item() == 9.0
    x.unfold(0, 3, 1)[0] = 5.0
    assert x.tolist() == [5.0, 5.0, 5.0, 9.0, 5.0, 5.0]


def test_copies_and_view():
    v = gg.arange(6.0).unfold(0, 3, 1)
    c = v.contiguous()
    assert c.is_contiguous() and c._base is None and c.tolist() == v.tolist()
    assert v.reshape(-1)._base is None  # overlapping windows cannot be flattened in place: a copy
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        v.view(-1)
    x = gg.arange(6.0)
    f = x.unfold(0, 2, 2).view(-1)
    assert f._base is x
    f[0] = 5.0
    assert x[0].item() == 5.0


def test_gradient_adds_overlapping_windows(device):
    x = gg.arange(6.0, device=device, requires_grad=True)
    y = x.unfold(0, 3, 1)
    assert "Unfold" in y.grad_fn.name
    (y * gg.arange(12.0, device=device).reshape(4, 3)).sum().backward()
    assert x.grad.tolist() == [0, 4, 12, 21, 18, 11]
    x.grad = None
    x.unfold(0, 2, 3).sum().backward()  # step > size: the gaps get zero
    assert x.grad.tolist() == [1, 1, 0, 1, 1, 0]
    x = gg.ones(2, 7, device=device, requires_grad=True)
    x.unfold(1, 5, 2).sum().backward()
    assert x.grad.tolist() == [[1, 1, 2, 2, 2, 1, 1]] * 2
    s = gg.tensor(3.0, device=device, requires_grad=True)
    (s.unfold(0, 1, 1) * 4).sum().backward()
    assert s.grad.item() == 4.0
    s.grad = None
    s.unfold(0, 0, 1).sum().backward()
    assert s.grad.item() == 0.0


def test_double_backward(device):
    x = gg.arange(6.0, device=device, dtype="float64", requires_grad=True)
    (g,) = gg.autograd.grad((x.unfold(0, 3, 2) ** 2).sum(), x, create_graph=True)
    assert g.tolist() == [0, 2, 8, 6, 8, 0]
    g.sum().backward()
    assert x.grad.tolist() == [2, 2, 4, 2, 2, 0]
    x = gg.randn(3, 5, dtype="float64", requires_grad=True)
    assert gg.autograd.gradcheck(lambda a: a.unfold(1, 3, 1) ** 2, (x,))
    assert gg.autograd.gradcheck(lambda a: a.unfold(0, 2, 1).unfold(1, 2, 2) * a.sum(), (x,))


def test_inplace_on_view_is_differentiated_through_base(device):
    x = gg.arange(6.0, device=device, requires_grad=True)
    b = x * 1
    v = b.unfold(0, 2, 2)
    v.mul_(gg.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], device=device))
    assert b._version == v._version == 1 and b.tolist() == [0, 2, 6, 12, 20, 30]
    assert "CopySlices" in b.grad_fn.name
    (b * gg.arange(6.0, device=device)).sum().backward()
    assert x.grad.tolist() == [0, 2, 6, 12, 20, 30]
    # the base written in place after the view was made: the view follows it
    x = gg.arange(6.0, device=device, requires_grad=True)
    b = x * 1
    v = b.unfold(0, 3, 1)
    b.mul_(2)
    assert v.tolist()[3] == [6, 8, 10]
    (v * gg.arange(12.0, device=device).reshape(4, 3)).sum().backward()
    assert x.grad.tolist() == [0, 8, 24, 42, 36, 22]


def test_low_precision_and_integer(device):
    x = gg.arange(6.0, device=device, dtype="float16", requires_grad=True)
    y = x.unfold(0, 4, 1)
    assert y.dtype == gg.float16 and y._base is x
    y.sum().backward()
    assert x.grad.dtype == gg.float16 and x.grad.tolist() == [1, 2, 3, 3, 2, 1]
    i = gg.arange(5, device=device)
    assert i.unfold(0, 2, 1).tolist() == [[0, 1], [1, 2], [2, 3], [3, 4]]
    assert (i > 2).unfold(0, 3, 2).tolist() == [[False, False, False], [False, True, True]]


ERRORS = [
    (lambda: gg.arange(5.0).unfold(0, 6, 1), RuntimeError, "maximum size for tensor at dimension 0 is 5 but size is 6"),
    (lambda: gg.arange(5.0).unfold(0, -1, 2), RuntimeError, "size is -1 but must be >= 0"),
    (lambda: gg.arange(5.0).unfold(0, 2, 0), RuntimeError, "step is 0 but must be > 0"),
    (lambda: gg.arange(5.0).unfold(0, 2, -1), RuntimeError, "step is -1 but must be > 0"),
    (lambda: gg.arange(5.0).unfold(2, 2, 1), IndexError,
     r"Dimension out of range \(expected to be in range of \[-1, 0\], but got 2\)"),
    (lambda: gg.tensor(5.0).unfold(1, 1, 1), IndexError,
     r"Dimension out of range \(expected to be in range of \[-1, 0\], but got 1\)"),
    (lambda: gg.tensor(5.0).unfold(0, 2, 1), RuntimeError, "maximum size for tensor at dimension 0 is 1 but size is 2"),
]


@pytest.mark.parametrize("fn,err,msg", ERRORS)
def test_errors(fn, err, msg):
    with pytest.raises(err, match=msg):
        fn()


# -- against PyTorch --------------------------------------------------------------------------------------
CASES = [((7,), 0, 3, 1), ((7,), 0, 3, 2), ((7,), -1, 2, 4), ((3, 8), 1, 4, 1), ((3, 8), 1, 5, 3), ((3, 8), 0, 2, 1),
         ((2, 5, 4), 1, 3, 1), ((2, 5, 4), -1, 4, 2), ((2, 5, 4), 0, 1, 3), ((), 0, 1, 1), ((4,), 0, 0, 2)]


@pytest.mark.parametrize("shape,dim,size,step", CASES)
@pytest.mark.parametrize("src", ["plain", "transposed", "sliced"])
def test_against_torch(shape, dim, size, step, src):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape)
    if src != "plain" and a.ndim < 2:
        pytest.skip("needs two dims")

    def prep(t):  # the same source layout on both sides: C order, a transposed copy, or a slice
        return t if src == "plain" else t.transpose(0, 1).contiguous().transpose(0, 1) if src == "transposed" else t

    xt, xg = torch.tensor(a, requires_grad=True), gg.tensor(a, requires_grad=True)
    bt, bg = prep(xt * 1), prep(xg * 1)
    if src == "sliced":
        bt, bg = bt[:, 1:], bg[:, 1:]
    vt, vg = bt.unfold(dim, size, step), bg.unfold(dim, size, step)
    np.testing.assert_array_equal(to_np(vg), vt.detach().numpy())
    assert vg.stride() == vt.stride() and vg.is_contiguous() == vt.is_contiguous()
    assert vg.storage_offset() - bg.storage_offset() == vt.storage_offset() - bt.storage_offset()
    w = rng.standard_normal(tuple(vt.shape))
    (gx,) = torch.autograd.grad((vt * torch.tensor(w)).square().sum(), xt, create_graph=True)
    (gg_x,) = gg.autograd.grad((vg * gg.tensor(w)).square().sum(), xg, create_graph=True)
    np.testing.assert_allclose(to_np(gg_x), gx.detach().numpy(), rtol=1e-12, atol=1e-12)
    (ht,) = torch.autograd.grad(gx.sin().sum(), xt)
    (hg,) = gg.autograd.grad(gg_x.sin().sum(), xg)
    np.testing.assert_allclose(to_np(hg), ht.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size,step,op", itertools.product([2, 3], [3, 4], ["mul", "add", "copy", "sin", "fill"]))
def test_inplace_against_torch(size, step, op):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    a, o = rng.standard_normal((3, 10)), rng.standard_normal((3, (10 - size) // step + 1, size))
    res = []
    for m in (torch, gg):
        x, other = m.tensor(a, requires_grad=True), m.tensor(o, requires_grad=True)
        b = x * 1
        v = b.unfold(1, size, step)
        keep = b.unfold(0, 2, 1)  # another view of the base, made before the write
        {"mul": lambda: v.mul_(other), "add": lambda: v.add_(other, alpha=2), "copy": lambda: v.copy_(other),
         "sin": lambda: v.sin_(), "fill": lambda: v.fill_(0.5)}[op]()
        loss = (b * m.tensor(a)).sum() + (v * v).sum() + keep.sum() * 3
        loss.backward()
        res.append((b, v, keep, x.grad, other.grad, b._version, v._version))
    for r_t, r_g in zip(*res):
        if isinstance(r_t, int):
            assert r_t == r_g
        elif r_t is None:
            assert r_g is None
        else:
            np.testing.assert_allclose(to_np(r_g), r_t.detach().numpy(), rtol=1e-12, atol=1e-12)
