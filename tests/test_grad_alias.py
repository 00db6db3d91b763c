"""backward(gradient) uses the user's gradient array without copying it, yet no .grad, autograd.grad result or
hook argument ever aliases it: writing into any of them later leaves the user's gradient as it was."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as gg


def _user(shape=(2, 3)):
    a = np.arange(1, 1 + int(np.prod(shape)), dtype=np.float32).reshape(shape).copy()  # owns its memory
    return a, a.copy()


def _check(grad, ug, ref):
    d = grad._data
    assert not np.shares_memory(d, ug)
    d += 100  # NOTE: in place, as optimizers and gradient accumulation write .grad
    np.testing.assert_array_equal(ug, ref)


PATHS = {
    "leaf": lambda x: x,
    "mul1": lambda x: x * 1,
    "reshape": lambda x: x.reshape(3, 2),
    "transpose": lambda x: x.T,
    "view_chain": lambda x: x.reshape(6).reshape(3, 2)[:, :],
    "add_self": lambda x: x + x,
    "clone": lambda x: x.clone(),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("as_tensor", [False, True])
def test_grad_never_aliases_user_gradient(path, as_tensor):
    x = gg.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    y = PATHS[path](x)
    ug, ref = _user(tuple(y.shape))
    y.backward(gg.from_numpy(ug) if as_tensor else ug)  # from_numpy shares ug's memory
    _check(x.grad, ug, ref)
    y2 = PATHS[path](x)  # a second backward accumulates into .grad in place: still not into ug
    y2.backward(ug)
    np.testing.assert_array_equal(ug, ref)


def test_two_leaves_one_gradient():
    a = gg.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    b = gg.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    ug, ref = _user()
    (a + b).backward(ug)
    assert not np.shares_memory(a.grad._data, b.grad._data)
    _check(a.grad, ug, ref)
    _check(b.grad, ug, ref)


def test_user_view_and_read_only_gradient():
    x = gg.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    big = np.arange(12, dtype=np.float32).reshape(2, 6)
    ref = big.copy()
    x.reshape(2, 3).backward(big[:, ::2])  # a strided view of a larger user array
    _check(x.grad, big, ref)
    x.grad = None
    ro = np.broadcast_to(np.float32(2), (2, 3))  # read-only
    (x * 1).backward(ro)
    x.grad._data += 1
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 3, np.float32))


@pytest.mark.parametrize("where", ["output", "input", "leaf"])
def test_hooks_cannot_write_into_user_gradient(where):
    x = gg.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    y = x.reshape(2, 3)
    out = y.reshape(3, 2)
    seen = []

    def hook(g):
        seen.append(g.numpy().copy())
        g._data *= 10  # an in-place hook: its effect still reaches the gradient downstream
    {"output": out, "input": y, "leaf": x}[where].register_hook(hook)
    ug, ref = _user((3, 2))
    out.backward(ug)
    np.testing.assert_array_equal(ug, ref)
    np.testing.assert_array_equal(x.grad.numpy(), ref.reshape(2, 3) * 10)


def test_retain_graph_twice_and_autograd_grad():
    x = gg.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    y = x.reshape(3, 2)
    ug, ref = _user((3, 2))
    y.backward(ug, retain_graph=True)
    y.backward(ug)
    np.testing.assert_array_equal(x.grad.numpy(), 2 * ref.reshape(2, 3))
    _check(x.grad, ug, ref)
    z = x * 2
    ug, ref = _user()
    gz, gx = gg.autograd.grad(z, [z, x], gg.from_numpy(ug))  # a non-leaf input's result is the user's array
    for r in (gz, gx):
        _check(r, ug, ref)


def test_dtype_conversion_still_copies():
    x = gg.tensor(np.zeros(3, np.float64), requires_grad=True)
    ug = np.ones(3, np.float32)
    (x * 1).backward(ug)
    assert x.grad.dtype == gg.float64
    (x * 1).backward([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 3.0, 4.0])
