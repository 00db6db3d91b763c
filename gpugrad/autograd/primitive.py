"""Differentiable primitives: the Primitive base class. See docs/contracts.md.

A Primitive instance is also the graph node: ``apply`` runs ``forward`` on arrays and, when grad
mode is on and some input requires grad, records the node on the output Tensor. ``backward`` gets
the output gradient as an array (first order) or as a Tensor (``create_graph=True``), so one
formula written with operators and :meth:`Primitive.call` serves both.
"""
from __future__ import annotations

import itertools
import traceback
import weakref

import numpy as np

from .grad_mode import state

__all__ = ["Primitive"]

_Tensor = None  # set by gpugrad.tensor (avoids a circular import)
_seq = itertools.count()  # creation order of graph nodes (the backward sweep runs it in reverse)


def _check_devices(fn, datas):
    t0 = type(datas[0])
    if all(type(d) is t0 for d in datas) and (t0 is np.ndarray or len({d.device.id for d in datas}) == 1):
        return
    from ..backend import device_of  # noqa: PLC0415
    devs = [str(device_of(d)) for d in datas]
    raise RuntimeError(f"{fn.__name__}: expected all tensors on the same device, got {' and '.join(sorted(set(devs)))}"
                       f" (argument devices: {devs}); move them with .to(device) first — gpugrad never copies silently")


class Primitive:
    save_output = False   # set True to keep the forward output for backward (see result())
    composite = None      # fused ops: staticmethod(*tensors, **params) -> Tensor, used for higher order
    graph = False         # True while a differentiable (create_graph) backward runs
    hooks = None          # gradient hooks of the output tensor (Tensor.register_hook on a non-leaf)

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the primitive on Tensors and return a Tensor (recording the graph when needed)."""
        ctx = cls.__new__(cls)
        if len(inputs) == 1:
            x = inputs[0]
            y = ctx.forward(x._data, **params)
            rg = x.requires_grad
        else:
            datas = [t._data for t in inputs]
            if type(datas[0]) is not np.ndarray or any(type(d) is not np.ndarray for d in datas):
                _check_devices(cls, datas)
            y = ctx.forward(*datas, **params)
            rg = False
            for t in inputs:
                if t.requires_grad:
                    rg = True
                    break
        out = _Tensor(y)
        if rg and state.grad_enabled:
            out.requires_grad = True
            out._node = ctx
            ctx.inputs = inputs
            ctx.seq = next(_seq)
            if cls.save_output:
                ctx.y = y
                ctx.out = weakref.ref(out)
            if cls.composite is not None:
                ctx.params = params
            if state.anomaly:
                ctx.trace = traceback.extract_stack()[:-2]
        return out

    # -- to be written by subclasses ---------------------------------------------------------
    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, g):
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    # -- helpers for backward formulas ---------------------------------------------------------
    def values(self):
        """The forward inputs: arrays in a first-order backward, Tensors in a create_graph one."""
        if self.graph:
            return self.inputs
        return tuple([t._data for t in self.inputs])

    def result(self):
        """The forward output (requires ``save_output = True``), array or Tensor to match g."""
        if not self.graph:
            return self.y
        out = self.out()
        if out is None:
            # NOTE: the output tensor is always alive while its node is reachable in a retained graph;
            # falling back to a constant would silently drop second-order terms, so refuse instead.
            raise RuntimeError(f"{type(self).__name__}: forward output was freed before a create_graph backward")
        return out

    def call(self, fn, *args, **params):
        """Run primitive ``fn`` inside a backward: on arrays directly, or recorded on Tensors."""
        if self.graph:
            T = _Tensor
            return fn.apply(*[a if isinstance(a, T) else T(a) for a in args], **params)
        return fn.__new__(fn).forward(*args, **params)

    @property
    def needs_input_grad(self):
        return tuple(t.requires_grad for t in self.inputs)

    @property
    def name(self):
        return type(self).__name__

    def release(self):
        """Free what backward saved (called after a backward unless retain_graph=True)."""
        d = self.__dict__
        seq = d.get("seq")
        d.clear()
        d["inputs"] = None  # NOTE: marks the node freed; seq stays so the sweep can still order it
        d["seq"] = seq

    def __repr__(self):
        return f"<{type(self).__name__}Backward>"
