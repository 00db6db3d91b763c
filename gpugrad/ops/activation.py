"""Fused activations: one Primitive for the whole family, parametrised by the activation's name.

Forward and first-order backward are the array kernels of :mod:`gpugrad.kernels.activation`
(CUDA on CuPy arrays, the NumPy fallback otherwise); the node keeps exactly what
``activation_saves`` names (the input or the output). Under ``create_graph=True`` the engine
differentiates ``Activation.composite``: the same function written with core Tensor ops in stable
forms (softplus as max(x, 0) + log1p(exp(-|x|)), sigmoid and tanh from exp(-|x|), exact GELU from
the Erfc primitive), so every order of derivative works without a second-order kernel.

NOTE: tanh, sigmoid and relu take the composite route too, although their first-order formulas
(g * (1 - y*y), ...) are Tensor expressions of the output: Primitive.result() hands the output
Tensor back only for a class-level ``save_output``, which would keep the output of every
activation alive, including those that must save only the input. One route for all; it costs a
few more graph nodes, and only while a create_graph backward runs.
"""
from __future__ import annotations

import math

import sys as _sys

from .. import tensor as _tensor
from ..autograd.primitive import Primitive
from ..kernels import activation as _K
from .elementwise import Erfc

__all__ = ["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "mish", "sigmoid", "tanh", "softplus", "logsigmoid",
           "bias_act"]

_SAVES_OUTPUT = {}  # (name, params) -> bool: memo of kernels.activation_saves (it parses params each call)


def _saves_output(name, params):
    key = (name, *sorted(params.items())) if params else name
    r = _SAVES_OUTPUT.get(key)
    if r is None:
        r = _SAVES_OUTPUT[key] = _K.activation_saves(name, **params) == "output"
    return r


class Activation(Primitive):
    """``y = act(x)``, or ``y = act(x + b)`` when a bias ``b`` of shape (x.shape[-1],) is given.

    One subclass per activation (made by :func:`_op`) carries the name as a class attribute, so
    the common call without parameters passes no keyword arguments through the hot path.
    """
    act = "relu"       # the activation (set on the per-activation subclasses)
    from_y = True      # whether the backward reads the output (class value: default parameters)
    kp = {}            # keyword parameters of this call, when given

    def forward(self, x, b=None, **params):
        name = self.act
        if params:
            self.kp = params
            self.from_y = _saves_output(name, params)  # NOTE: set on the node only when parameters change it
            y = _K.activation_fwd(name, x, **params) if b is None else _K.bias_act_fwd(name, x, b, **params)
        else:
            y = _K.activation_fwd(name, x) if b is None else _K.bias_act_fwd(name, x, b)
        self.s = y if self.from_y else x
        return y

    @property
    def saves(self):
        return ((1,) if self.from_y else (0, 1)) if len(self.inputs) == 2 else (() if self.from_y else (0,))

    def reads_output(self):
        return self.from_y

    def saved_output(self):
        return self.s

    def keep_output(self, arr):
        if self.from_y:
            self.s = arr
            self.cow = False  # NOTE: an in-place activation: PyTorch's node saves the result here too

    def own_output(self):
        """Our output is about to be overwritten in place: keep a private copy (see ``cow`` in _op)."""
        if self.from_y and self.inputs is not None:
            self.s = self.s.copy()
            self.yver = [self.outv]
        self.cow = False

    def backward(self, g):
        x, y = (None, self.s) if self.from_y else (self.s, None)
        if len(self.inputs) == 1:
            kp = self.kp
            return _K.activation_bwd(self.act, g, x, y, **kp) if kp else _K.activation_bwd(self.act, g, x, y)
        gx, gb = _K.bias_act_bwd(self.act, g, self.inputs[1]._data, x, y, **self.kp)
        nx, nb = self.needs_input_grad
        return (gx if nx else None), (gb if nb else None)


_OPS = {}


def _op(name):
    """The Activation subclass of ``name`` (made once), whose composite is that activation's."""
    cls = _OPS.get(name)
    if cls is None:
        if name not in _COMPOSITES:
            raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(sorted(_COMPOSITES))}")
        comp = _COMPOSITES[name]

        def composite(x, b=None, **params):
            return comp(x if b is None else x + b, **params)
        from_y = _K.activation_saves(name) == "output"
        # NOTE: named as PyTorch's nodes (ReluBackward, LeakyReluBackward, ...); ``cow``: PyTorch's node saves
        # the INPUT where ours reads the output, so a later in-place write to the output must not fail
        # backward: the node then takes a private copy of it (Activation.own_output)
        cls = _OPS[name] = type("".join(w.capitalize() for w in name.split("_")), (Activation,), {
            "act": name, "from_y": from_y, "cow": from_y and name not in ("relu", "sigmoid", "tanh"),
            "composite": staticmethod(composite)})
    return cls


# -- composites: core Tensor ops in stable forms (used for create_graph) ---------------------------
def _const(x, arr):
    return _tensor.Tensor(arr.astype(x.dtype, copy=False))


def _sign_abs(x):
    """(s, |x|) with s = +-1 a constant (+1 at 0), so that d|x|/dx = s is never 0 (kinks stay exact)."""
    s = _const(x, x.xp.where(x._data >= 0, 1, -1))
    return s, x * s


def _pos(x):
    return x._data > 0


def _c_relu(x):
    # NOTE: NaN passes through (as the kernel); relu'(0) = 0
    return _tensor.where(_tensor.Tensor(_pos(x) | x.xp.isnan(x._data)), x, 0.0)


def _c_leaky_relu(x, negative_slope=0.01):
    return _tensor.where(_tensor.Tensor(_pos(x)), x, x * negative_slope)


def _expm1_neg(x):
    """exp(min(x, 0)) - 1: the clamp keeps exp finite in the branch where() discards (no 0 * inf)."""
    return x.clamp(max=0.0).exp() - 1


def _c_elu(x, alpha=1.0):
    return _tensor.where(_tensor.Tensor(_pos(x)), x, _expm1_neg(x) * alpha)


_SELU_SCALE, _SELU_ALPHA = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717


def _c_selu(x):
    return _tensor.where(_tensor.Tensor(_pos(x)), x, _expm1_neg(x) * _SELU_ALPHA) * _SELU_SCALE


def _c_softplus1(x):
    """log(1 + e^x) = max(x, 0) + log1p(exp(-|x|)); (x + |x|) / 2 is max(x, 0) exactly."""
    _, a = _sign_abs(x)
    return (x + a) * 0.5 + (-a).exp().log1p()


def _c_sigmoid(x):
    # NOTE: exp(-|x|) never overflows: 1 / (1 + e) for x >= 0, e / (1 + e) below
    _, a = _sign_abs(x)
    e = (-a).exp()
    return _tensor.where(_tensor.Tensor(x._data >= 0), 1.0, e) / (e + 1)


def _c_tanh(x):
    s, a = _sign_abs(x)
    e = (a * -2).exp()
    return s * (1 - e) / (1 + e)


def _c_gelu(x, approximate="none"):
    if approximate == "tanh":
        # NOTE: 0.5 (1 + tanh(u)) = sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
        return x * _c_sigmoid((x + x * x * x * 0.044715) * (2 * math.sqrt(2 / math.pi)))
    # NOTE: Phi(x) = erfc(-x / sqrt 2) / 2 keeps the relative precision of the negative tail
    return x * Erfc.apply(x * -math.sqrt(0.5)) * 0.5


def _c_silu(x):
    return x * _c_sigmoid(x)


def _c_mish(x):
    e = (_c_softplus1(x) * -2).exp()  # NOTE: softplus >= 0, so tanh = (1 - e) / (1 + e) with no sign
    return x * (1 - e) / (1 + e)


def _c_softplus(x, beta=1.0, threshold=20.0):
    z = x * beta
    return _tensor.where(_tensor.Tensor(z._data > threshold), x, _c_softplus1(z) / beta)


def _c_log_sigmoid(x):
    return -_c_softplus1(-x)


_COMPOSITES = {"relu": _c_relu, "leaky_relu": _c_leaky_relu, "elu": _c_elu, "selu": _c_selu, "gelu": _c_gelu,
               "silu": _c_silu, "mish": _c_mish, "sigmoid": _c_sigmoid, "tanh": _c_tanh, "softplus": _c_softplus,
               "log_sigmoid": _c_log_sigmoid}
assert set(_COMPOSITES) == set(_K.ACTIVATIONS)
_RELU, _SIGMOID, _TANH = _op("relu"), _op("sigmoid"), _op("tanh")


# -- public functions (torch.nn.functional names, arguments and defaults) -----------------------------
def _in_place(fn, input, **params):  # noqa: A002
    """``inplace=True``: the activation written into ``input`` (PyTorch returns the same tensor)."""
    name = fn.__name__
    keep = not _saves_output(name if name != "logsigmoid" else "log_sigmoid", params) if name != "relu" else False
    return input._inplace(lambda t: fn(t, **params), keep=keep)


def relu(input, inplace=False):  # noqa: A002
    if inplace:
        return _in_place(relu, input)
    if input.dtype.kind != "f":
        return _tensor.Tensor(input.xp.maximum(input._data, 0))  # NOTE: integer relu, as PyTorch (no gradient)
    return _RELU.apply(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):  # noqa: A002
    if inplace:
        return _in_place(leaky_relu, input, negative_slope=negative_slope)
    return _op("leaky_relu").apply(input, negative_slope=negative_slope)


def elu(input, alpha=1.0, inplace=False):  # noqa: A002
    if inplace:
        return _in_place(elu, input, alpha=alpha)
    return _op("elu").apply(input, alpha=alpha)


def selu(input, inplace=False):  # noqa: A002
    if inplace:
        return _in_place(selu, input)
    return _op("selu").apply(input)


def gelu(input, approximate="none"):  # noqa: A002
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _op("gelu").apply(input, approximate=approximate)


def silu(input, inplace=False):  # noqa: A002
    if inplace:
        return _in_place(silu, input)
    return _op("silu").apply(input)


def mish(input, inplace=False):  # noqa: A002
    if inplace:
        return _in_place(mish, input)
    return _op("mish").apply(input)


def sigmoid(input):  # noqa: A002
    return _SIGMOID.apply(_tensor._floatify(input))


def tanh(input):  # noqa: A002
    return _TANH.apply(_tensor._floatify(input))


def softplus(input, beta=1.0, threshold=20.0):  # noqa: A002
    return _op("softplus").apply(input, beta=beta, threshold=threshold)


def logsigmoid(input):  # noqa: A002
    return _op("log_sigmoid").apply(input)


def bias_act(input, bias, activation="relu", **params):  # noqa: A002
    """``activation(input + bias)`` in one fused pass (a linear layer's epilogue); bias: (input.shape[-1],).

    ``activation`` is a name of :data:`gpugrad.kernels.activation.ACTIVATIONS` (``'logsigmoid'`` is
    accepted for ``'log_sigmoid'``); ``params`` are that activation's (e.g. ``negative_slope=0.2``).
    """
    name = "log_sigmoid" if activation == "logsigmoid" else activation
    return _op(name).apply(input, bias, **params)


_tensor._act = _sys.modules[__name__]  # the Tensor methods reach this family through it (see tensor.py)
