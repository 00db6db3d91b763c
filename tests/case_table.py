"""The run of one row of a name table (tests/test_tensor_more.py, tests/test_torch_names.py): the row's function
on ``m`` (gpugrad or torch) with its inputs, and the gradients of a fixed weighted sum of squares of its float
outputs (sign-invariant, so decompositions' factor signs do not matter; NaN outputs count as 0)."""
from __future__ import annotations

import warnings

import numpy as np


def flat(y):
    return [t for v in y for t in flat(v)] if isinstance(y, (tuple, list)) else [y]


def run_case(m, case, grad):
    """``case`` = (fn(m, *tensors), input arrays, positions of the differentiable inputs): (outputs, gradients)."""
    fn, arrays, diff = case
    xs = [m.tensor(a, requires_grad=grad and k in diff) for k, a in enumerate(arrays)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation warnings (chain_matmul, cholesky/qr/svd, ...)
        ys = flat(fn(m, *xs))
    if not (grad and diff):
        return [np.asarray(y.detach().numpy()) for y in ys], []
    fl = [y for y in ys if y.is_floating_point() and y.requires_grad]
    w = [m.tensor(np.linspace(0.5, 1.5, y.numel()).reshape(tuple(y.shape)), dtype=y.dtype) for y in fl]
    loss = sum(((y * y).nan_to_num() * c).sum() for y, c in zip(fl, w))
    loss.backward()
    return [np.asarray(y.detach().numpy()) for y in ys], [np.asarray(xs[k].grad.numpy()) for k in diff]
