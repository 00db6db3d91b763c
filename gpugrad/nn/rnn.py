"""Recurrent layers with PyTorch's names, arguments, parameters and semantics: RNN, LSTM, GRU and their cells.

Parameters are PyTorch's (``weight_ih_l{k}[_reverse]`` (gates, in), ``weight_hh_l{k}`` (gates, hidden or
proj_size), ``bias_ih_l{k}``, ``bias_hh_l{k}``, LSTM's ``weight_hr_l{k}`` (proj_size, hidden)), in its gate
order (LSTM i, f, g, o; GRU r, z, n) and its registration order, so a PyTorch ``state_dict`` loads as it is.
Initialisation: every parameter ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).

Per layer and direction the input projection of all steps is one matmul, and the time loop is one graph
node (:mod:`gpugrad.ops.rnn`): per step a recurrent matmul and one fused cell op. The cells run the same
node with one step.
"""
from __future__ import annotations

import math
import numbers
import warnings

from ..ops import rnn as _R
from ..tensor import cat, empty, stack, zeros
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter
from .rnn_utils import PackedSequence

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _param(shape, device, dtype):
    return Parameter(empty(*shape, dtype=dtype, device=device))


def _check_dtype(input, weight):  # noqa: A002
    if input.dtype != weight.dtype:
        raise ValueError(f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight.dtype}). Convert "
                         f"input: input.to({weight.dtype}), or convert model: model.to({input.dtype})")


def _zeros(shape, like):
    return zeros(*shape, dtype=like.dtype, device=like.device)


def _layer(mode, xg, w_hh, b_hh, h0, c0, w_hr, reverse):
    """(hs, cs or None) of one layer and direction, from the projected input xg (T, B, gates)."""
    if mode == "LSTM":
        return _R.lstm_layer(xg, w_hh, h0, c0, w_hr, reverse)
    if mode == "GRU":
        return _R.gru_layer(xg, w_hh, h0, b_hh, reverse), None
    return _R.rnn_layer(xg, w_hh, h0, "tanh" if mode == "RNN_TANH" else "relu", reverse), None


def _project(mode, x, w_ih, b_ih, b_hh):
    """x (T, B, in) (or packed (N, in)) @ w_ih^T + biases as ONE matmul over all steps: (T, B, gates).
    NOTE: the LSTM and Elman cells add both biases, so they are summed once here; the GRU keeps b_hh for the
    cell (b_hn is inside the reset product)."""
    bias = b_ih if (b_ih is None or mode == "GRU") else b_ih + b_hh
    return F.linear(x.reshape(-1, x.shape[-1]), w_ih, bias).view(*x.shape[:-1], w_ih.shape[0])


def _packed_layer(mode, xg, runs, w_hh, b_hh, h0, c0, w_hr, reverse):
    """(out (N, P), h_n (B, P), c_n or None) of one layer and direction over packed steps xg (N, gates).
    ``runs``: (steps, batch) of each run of consecutive steps with the same batch size. Each run is one fused
    layer call on its shrinking batch (the first ``batch`` sorted sequences). Forward, the sequences that end
    before the next run leave their state behind (rows batch_next..batch); in reverse, the runs go from the last
    one back and the sequences that start there (in reverse) join with their h0 rows: each sequence's reverse
    pass begins at its own last step.
    NOTE: one node per run, not per step: the runs are at most min(T, B) (one per distinct length)."""
    xs = xg.split([n * b for n, b in runs]) if len(runs) > 1 else (xg,)
    outs, ends_h, ends_c = [None] * len(runs), [], []
    h, c = (h0[:runs[-1][1]], None if c0 is None else c0[:runs[-1][1]]) if reverse else (h0, c0)
    for i in (range(len(runs) - 1, -1, -1) if reverse else range(len(runs))):
        n, b = runs[i]
        m = h.shape[0]
        if reverse and b > m:
            h, c = cat([h, h0[m:b]]), None if c is None else cat([c, c0[m:b]])
        elif b < m:
            ends_h.append(h[b:])
            ends_c.append(None if c is None else c[b:])
            h, c = h[:b], None if c is None else c[:b]
        hs, cs = _layer(mode, xs[i].view(n, b, xg.shape[-1]), w_hh, b_hh, h, c, w_hr, reverse)
        outs[i] = hs.reshape(n * b, hs.shape[-1])
        h, c = hs[0 if reverse else n - 1], None if cs is None else cs[0 if reverse else n - 1]
    out = outs[0] if len(outs) == 1 else cat(outs)
    if reverse:
        return out, h, c
    # NOTE: the runs end in order of decreasing batch index; h_n is in sorted order (row j = sorted sequence j)
    ends_h, ends_c = [h, *ends_h[::-1]], [c, *ends_c[::-1]]
    return out, cat(ends_h) if len(ends_h) > 1 else h, None if c is None else (cat(ends_c) if len(ends_c) > 1 else c)


class RNNBase(Module):
    """The shared body of RNN, LSTM and GRU (``mode``: "LSTM", "GRU", "RNN_TANH", "RNN_RELU")."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          UserWarning, stacklevel=2)
        for name, v in (("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} should be of type int, got: {type(v).__name__}")
            if v <= 0:
                raise ValueError(f"{name} must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode, self.input_size, self.hidden_size = mode, int(input_size), int(hidden_size)
        self.num_layers, self.bias, self.batch_first = num_layers, bool(bias), bool(batch_first)
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bool(bidirectional), int(proj_size)
        gates = _GATES[mode] * hidden_size
        real = proj_size or hidden_size
        dirs = 2 if bidirectional else 1
        self._flat_weights_names = []
        for layer in range(num_layers):
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                shapes = [("weight_ih", (gates, input_size if layer == 0 else real * dirs)),
                          ("weight_hh", (gates, real))]
                if bias:
                    shapes += [("bias_ih", (gates,)), ("bias_hh", (gates,))]
                if proj_size:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                for name, shape in shapes:  # NOTE: PyTorch's registration order (state_dict and parameters())
                    setattr(self, name + sfx, _param(shape, device, dtype))
                    self._flat_weights_names.append(name + sfx)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def flatten_parameters(self):
        """Nothing to do (PyTorch compacts its cuDNN weight buffer here); kept so PyTorch code runs unchanged."""

    @property
    def all_weights(self):
        """[[the parameters of one layer and direction], ...] in PyTorch's order."""
        per = len(self._flat_weights_names) // (self.num_layers * (2 if self.bidirectional else 1))
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[i:i + per]] for i in range(0, len(names), per)]

    def _weights(self, layer, d):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        get = lambda n: getattr(self, n + sfx, None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr")

    def _check_input(self, input):  # noqa: A002
        if input.ndim not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {input.shape[-1]}")
        _check_dtype(input, self.weight_ih_l0)

    def _check_hidden(self, hx, expected, which=None):
        if tuple(hx.shape) != expected:
            what = "hidden" if which is None else f"hidden[{which}]"
            raise RuntimeError(f"Expected {what} size {expected}, got {list(hx.shape)}")

    def forward(self, input, hx=None):  # noqa: A002
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        self._check_input(input)
        lstm = self.mode == "LSTM"
        batched = input.ndim == 3
        if hx is not None:
            hs_in = tuple(hx) if lstm else (hx,)
            want = 3 if batched else 2
            if any(h.ndim != want for h in hs_in):
                got = ", ".join(f"{h.ndim}-D" for h in hs_in)
                names = "hx and cx" if lstm else "hx"
                kind = f"({got}) tensors" if lstm else f"{got} tensor"
                raise RuntimeError(f"For {'batched 3-D' if batched else 'unbatched 2-D'} input, {names} should also be "
                                   f"{want}-D but got {kind}")
        if not batched:
            input = input.unsqueeze(1)
            if hx is not None:
                hs_in = tuple(h.unsqueeze(1) for h in hs_in)
        elif self.batch_first:
            input = input.transpose(0, 1)
        T, B = input.shape[0], input.shape[1]
        if T == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        dirs = 2 if self.bidirectional else 1
        real = self.proj_size or self.hidden_size
        if hx is None:
            h0 = _zeros((self.num_layers * dirs, B, real), input)
            c0 = _zeros((self.num_layers * dirs, B, self.hidden_size), input) if lstm else None
        else:
            h0, c0 = (hs_in[0], hs_in[1]) if lstm else (hs_in[0], None)
            self._check_hidden(h0, (self.num_layers * dirs, B, real), 0 if lstm else None)
            if lstm:
                self._check_hidden(c0, (self.num_layers * dirs, B, self.hidden_size), 1)
        x, h_n, c_n = input, [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, d)
                k = layer * dirs + d
                xg = _project(self.mode, x, w_ih, b_ih, b_hh)
                hs, cs = _layer(self.mode, xg, w_hh, b_hh, h0[k], None if c0 is None else c0[k], w_hr, bool(d))
                last = 0 if d else T - 1  # NOTE: the reverse direction ends at step 0
                outs.append(hs)
                h_n.append(hs[last])
                if lstm:
                    c_n.append(cs[last])
            x = outs[0] if dirs == 1 else cat(outs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)  # NOTE: between layers only, as PyTorch
        h_n = stack(h_n)
        c_n = stack(c_n) if lstm else None
        if not batched:
            x, h_n = x.squeeze(1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if lstm else None
        elif self.batch_first:
            x = x.transpose(0, 1)
        return (x, (h_n, c_n)) if lstm else (x, h_n)

    def _forward_packed(self, packed, hx):
        """PyTorch's PackedSequence path: hx (and h_n, c_n) in the ORIGINAL batch order (permuted by
        sorted_indices / unsorted_indices), output a PackedSequence with the input's batch_sizes and indices."""
        x, batch_sizes, sorted_indices, unsorted_indices = packed
        _check_dtype(x, self.weight_ih_l0)
        if x.ndim != 2:
            raise RuntimeError(f"input must have 2 dimensions, got {x.ndim}")
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {x.shape[-1]}")
        lstm = self.mode == "LSTM"
        sizes = [int(b) for b in batch_sizes.tolist()]
        runs = []
        for b in sizes:
            if runs and runs[-1][1] == b:
                runs[-1][0] += 1
            else:
                runs.append([1, b])
        dirs, B = 2 if self.bidirectional else 1, sizes[0]
        shapes = [(self.num_layers * dirs, B, self.proj_size or self.hidden_size)]
        shapes += [(self.num_layers * dirs, B, self.hidden_size)] if lstm else []
        if hx is None:
            states = [_zeros(s, x) for s in shapes]
        else:
            states = list(hx) if lstm else [hx]
            if sorted_indices is not None:
                states = [h.index_select(1, sorted_indices) for h in states]
            for i, (h, s) in enumerate(zip(states, shapes)):
                self._check_hidden(h, s, i if lstm else None)
        h0, c0 = states[0], states[1] if lstm else None
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, d)
                k = layer * dirs + d
                out, h, c = _packed_layer(self.mode, _project(self.mode, x, w_ih, b_ih, b_hh), runs, w_hh, b_hh,
                                          h0[k], None if c0 is None else c0[k], w_hr, bool(d))
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            x = outs[0] if dirs == 1 else cat(outs, dim=1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        hidden = [stack(h_n)] + ([stack(c_n)] if lstm else [])
        if unsorted_indices is not None:
            hidden = [h.index_select(1, unsorted_indices) for h in hidden]
        out = PackedSequence(x, batch_sizes, sorted_indices, unsorted_indices)
        return (out, tuple(hidden)) if lstm else (out, hidden[0])

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        for name, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False)):
            v = getattr(self, name)
            if v != default:
                s += f", {name}={v}"
        return s


class RNN(RNNBase):
    """Elman RNN: h_t = nonlinearity(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), nonlinearity 'tanh' or 'relu'."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, 0, device, dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory; ``proj_size > 0`` projects h_t to proj_size features (weight_hr)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit: PyTorch's formulation, with b_hn inside the reset gate's product."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         device, dtype)


# -- cells: one step, through the same node with T = 1 ----------------------------------------------------------
class RNNCellBase(Module):
    def __init__(self, mode, input_size, hidden_size, bias, device=None, dtype=None):
        super().__init__()
        self.mode, self.input_size, self.hidden_size, self.bias = mode, int(input_size), int(hidden_size), bool(bias)
        gates = _GATES[mode] * hidden_size
        self.weight_ih = _param((gates, input_size), device, dtype)
        self.weight_hh = _param((gates, hidden_size), device, dtype)
        if bias:
            self.bias_ih = _param((gates,), device, dtype)
            self.bias_hh = _param((gates,), device, dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def forward(self, input, hx=None):  # noqa: A002
        return self._step(input, hx, self.mode)

    def _step(self, input, hx, mode):  # noqa: A002
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        lstm = mode == "LSTM"
        states = () if hx is None else (tuple(hx) if lstm else (hx,))
        for h in states:
            if h.ndim != input.ndim:
                raise RuntimeError(f"{name}: Expected hidden to be {input.ndim}D, got {h.ndim}D instead")
        batched = input.ndim == 2
        if not batched:
            input = input.unsqueeze(0)
            states = tuple(h.unsqueeze(0) for h in states)
        if input.shape[1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.shape[1]} expected {self.input_size}")
        _check_dtype(input, self.weight_ih)
        B = input.shape[0]
        if not states:
            states = tuple(_zeros((B, self.hidden_size), input) for _ in range(2 if lstm else 1))
        for i, h in enumerate(states):
            if h.shape[0] != B:
                raise RuntimeError(f"Input batch size {B} doesn't match hidden{i} batch size {h.shape[0]}")
            if h.shape[1] != self.hidden_size:
                raise RuntimeError(f"hidden{i} has inconsistent hidden_size: got {h.shape[1]}, expected "
                                   f"{self.hidden_size}")
        xg = _project(mode, input.unsqueeze(0), self.weight_ih, self.bias_ih, self.bias_hh)
        hs, cs = _layer(mode, xg, self.weight_hh, self.bias_hh, states[0], states[1] if lstm else None, None,
                        False)
        out = (hs[0], cs[0]) if lstm else (hs[0],)
        if not batched:
            out = tuple(o.squeeze(0) for o in out)
        return out if lstm else out[0]

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        super().__init__("RNN_TANH", input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):  # noqa: A002
        if self.nonlinearity not in ("tanh", "relu"):  # NOTE: checked here, not in __init__, as PyTorch
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        return self._step(input, hx, "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU")


class LSTMCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)


class GRUCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)
