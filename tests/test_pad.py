"""F.pad / gg.pad with negative widths crop, as PyTorch's constant pad (values and gradients written out)."""
import numpy as np
import pytest

import gpugrad as gg
from gpugrad.autograd import gradcheck, gradgradcheck

from conftest import to_np


def test_negative_widths_crop_then_pad(device):
    x = gg.arange(12.0, device=device).reshape(3, 4).requires_grad_()
    y = gg.nn.functional.pad(x, (-1, 2, 1, -2), value=7.0)
    # PyTorch 2.13: tensor([[7, 7, 7, 7, 7], [1, 2, 3, 7, 7]])
    assert to_np(y).tolist() == [[7.0] * 5, [1.0, 2.0, 3.0, 7.0, 7.0]]
    (y * gg.arange(10.0, device=device).reshape(2, 5)).sum().backward()
    assert to_np(x.grad).tolist() == [[0.0, 5.0, 6.0, 7.0]] + [[0.0] * 4] * 2


def test_crop_only_is_a_copy_and_differentiable_twice(device):
    x = gg.tensor(np.random.default_rng(0).standard_normal((3, 5)), device=device, requires_grad=True)
    y = gg.pad(x, (-1, -2))
    assert tuple(y.shape) == (3, 2) and y._base is None
    assert gradcheck(lambda a: gg.pad(a, (-1, -2, 1, 0)) ** 2, (x,))
    assert gradgradcheck(lambda a: gg.pad(a, (-1, -2, 1, 0)) ** 2, (x,))


def test_negative_output_size_raises():
    with pytest.raises(RuntimeError, match=r"narrow\(\): length must be non-negative"):
        gg.nn.functional.pad(gg.ones(2, 3), (-2, -2))
