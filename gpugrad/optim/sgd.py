"""Stochastic gradient descent (optionally with momentum / Nesterov), PyTorch semantics."""
from __future__ import annotations

from ..fused import optim as K
from ._composite import stepped
from .optimizer import Optimizer, _check_flags_unsupported, _check_nonneg, _num

__all__ = ["SGD"]


def _torch_sgd(o, w, g, buf, *, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step):
    """PyTorch's op sequence (``_single_tensor_sgd``), for float16/bfloat16 parameters."""
    g = o.grad(g, w, maximize, weight_decay)
    if momentum != 0:
        buf[...] = g if first_step else o.add(o.mul(buf, momentum), g, 1 - dampening)
        g = o.add(g, buf, momentum) if nesterov else buf
    w[...] = o.add(w, g, -lr)


class SGD(Optimizer):
    """SGD: ``g = grad (+ weight_decay * p)``; with momentum ``b = momentum * b + (1 - dampening) * g``
    (``b = g`` on the first step), ``g = g + momentum * b`` (nesterov) or ``g = b``; ``p -= lr * g``.
    ``maximize=True`` ascends the objective (the gradient is negated before weight decay).
    ``master_weights=True`` (a gpugrad extension) keeps a float32 master copy and float32 state for
    float16/bfloat16 parameters; see :mod:`gpugrad.optim.optimizer`."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None, master_weights=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=differentiable,
                        fused=fused)
        super().__init__(params, defaults, master_weights)

    def _check_group(self, group):
        super()._check_group(group)
        momentum = _check_nonneg(group, "momentum")
        _check_nonneg(group, "weight_decay")
        dampening = _num(group, "dampening")
        if group["nesterov"] and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening "
                             f"(got momentum={group['momentum']}, dampening={group['dampening']})")
        _check_flags_unsupported(group, differentiable="optimizer steps are not part of the autograd graph")

    def step(self, closure=None):
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            momentum = float(group["momentum"])
            kw = dict(lr=float(group["lr"]), momentum=momentum, dampening=float(group["dampening"]),
                      weight_decay=float(group["weight_decay"]), nesterov=bool(group["nesterov"]),
                      maximize=bool(group["maximize"]))
            for p, state, w, g, o in stepped(self, group, keep=momentum != 0):
                buf = state.get("momentum_buffer") if momentum != 0 else None
                kw["first_step"] = momentum != 0 and buf is None
                if kw["first_step"]:
                    buf = state["momentum_buffer"] = self._zeros(p)
                args = (w, g, None if buf is None else buf._data)
                _torch_sgd(o, *args, **kw) if o.lowp else K.sgd_step(*args, **kw)
        return loss
