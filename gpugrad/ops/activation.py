"""Fused activations: one Primitive for the whole family, one subclass per row of the table
:data:`gpugrad.fused.activation.ACTIVATIONS`.

Forward and first-order backward are the row's kernels (CUDA on CuPy arrays, the NumPy fallback
otherwise); the node keeps exactly what the row's ``saves`` names (the input or the output). Under
``create_graph=True`` the engine differentiates the row's composite: the same function written with
core Tensor ops in stable forms, so every order of derivative works without a second-order kernel.

NOTE: rows whose backward reads the output (relu, tanh, sigmoid, elu, ...) differentiate PyTorch's
formula in the output instead (``dy``: g * (1 - y*y), ...): an in-place activation has overwritten its
input, and the output's own node then carries the second-order terms, as in PyTorch.
"""
from __future__ import annotations

import sys as _sys

from .._dtypes import is_float as _isf
from .. import tensor as _tensor
from ..autograd.primitive import Primitive
from ..fused import activation as _K

__all__ = ["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "mish", "sigmoid", "tanh", "softplus", "logsigmoid"]


class Activation(Primitive):
    """``y = op(x)`` for the table row ``op`` (a class attribute of the per-row subclasses, made by :func:`node`)."""
    lowp = "native"  # NOTE: the fused kernels and fallbacks read float16/bfloat16 storage, compute in float32
    op = None          # the row of gpugrad.fused.activation.ACTIVATIONS
    p = ()             # the params tuple (class value: the defaults)
    from_y = True      # whether the backward reads the output (class value: at the default params)

    def forward(self, x, **params):
        op = self.op
        if params:
            p = self.p = op.values(params)
            self.from_y = op.saves_output(p)  # NOTE: set on the node only when parameters change it
        else:
            p = op.defaults
        y = _K.fwd(op, x, p)
        self.s = y if self.from_y else x
        return y

    @property
    def saves(self):
        return () if self.from_y else (0,)

    def reads_output(self):
        return self.from_y

    def saved_output(self):
        return self.s

    def keep_output(self, arr):
        if self.from_y:
            self.s = arr
            self.cow = False  # NOTE: an in-place activation: PyTorch's node saves the result here too

    def own_output(self):
        """Our output is about to be overwritten in place: keep a private copy (see ``cow`` in node)."""
        if self.from_y and self.inputs is not None:
            self.s = self.s.copy()
            self.yver = [self.outv]
            self.ycomposite = None  # NOTE: the output Tensor is about to change: create_graph takes the input route
        self.cow = False

    def backward(self, g):
        return _K.bwd(self.op, g, self.s, self.p)

    def output_tensor(self):
        """The saved output as a Tensor of this node (the create_graph route of ``ycomposite``). NOTE: a fresh
        Tensor over the saved array, not a weak reference to the output kept at every call (the hot path)."""
        t = _tensor.Tensor(self.s)
        t._rg, t._node = True, self
        return t


_NODES = {}


def node(name):
    """The Activation subclass of table row ``name`` (made once), named as PyTorch's nodes (ReluBackward, ...)."""
    cls = _NODES.get(name)
    if cls is None:
        op = _K.ACTIVATIONS[name]

        def composite(x, **params):
            return op.composite(x, *op.values(params))

        def ycomposite(y, g, **params):
            return op.dy(y, g, *op.values(params))
        from_y = op.saves_output(op.defaults)
        # NOTE: ``cow``: where PyTorch's node saves the INPUT and ours reads the output, a later in-place write to
        # the output must not fail backward: the node then takes a private copy of it (Activation.own_output)
        # NOTE: rows that read their output differentiate PyTorch's output formula under create_graph (``dy``)
        cls = _NODES[name] = type("".join(w.capitalize() for w in name.split("_")), (Activation,), {
            "op": op, "from_y": from_y, "cow": from_y and not op.torch_saves_output,
            "composite": staticmethod(composite),
            "ycomposite": staticmethod(ycomposite) if op.dy is not None else None})
    return cls


_RELU, _SIGMOID, _TANH = node("relu"), node("sigmoid"), node("tanh")


# -- public functions (torch.nn.functional names, arguments and defaults) -----------------------------
def _in_place(fn, input, name, **params):  # noqa: A002
    """``inplace=True``: activation ``name`` written into ``input`` (PyTorch returns the same tensor)."""
    op = _K.ACTIVATIONS[name]
    keep = not op.torch_saves_output and not op.saves_output(op.values(params))
    return input._inplace(lambda t: fn(t, **params), keep=keep)


def relu(input, inplace=False):  # noqa: A002
    if inplace:
        return _in_place(relu, input, "relu")
    if not _isf(input.dtype):
        return _tensor.Tensor(input.xp.maximum(input._data, 0))  # NOTE: integer relu, as PyTorch (no gradient)
    return _RELU.apply(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):  # noqa: A002
    if inplace:
        return _in_place(leaky_relu, input, "leaky_relu", negative_slope=negative_slope)
    return node("leaky_relu").apply(input, negative_slope=negative_slope)


def elu(input, alpha=1.0, inplace=False):  # noqa: A002
    if inplace:
        return _in_place(elu, input, "elu", alpha=alpha)
    return node("elu").apply(input, alpha=alpha)


def selu(input, inplace=False):  # noqa: A002
    if inplace:
        return _in_place(selu, input, "selu")
    return node("selu").apply(input)


def gelu(input, approximate="none"):  # noqa: A002
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return node("gelu_tanh" if approximate == "tanh" else "gelu").apply(input)


def silu(input, inplace=False):  # noqa: A002
    if inplace:
        return _in_place(silu, input, "silu")
    return node("silu").apply(input)


def mish(input, inplace=False):  # noqa: A002
    if inplace:
        return _in_place(mish, input, "mish")
    return node("mish").apply(input)


def sigmoid(input):  # noqa: A002
    return _SIGMOID.apply(_tensor._floatify(input))


def tanh(input):  # noqa: A002
    return _TANH.apply(_tensor._floatify(input))


def softplus(input, beta=1.0, threshold=20.0):  # noqa: A002
    return node("softplus").apply(input, beta=beta, threshold=threshold)


def logsigmoid(input):  # noqa: A002
    return node("log_sigmoid").apply(input)


_tensor._act = _sys.modules[__name__]  # the Tensor methods reach this family through it (see tensor.py)
