"""Adam and AdamW (decoupled weight decay), with AMSGrad, PyTorch semantics."""
from __future__ import annotations

from ..fused import optim as K
from ..tensor import Tensor
from ._composite import check_betas, check_flags, stepped
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


def _torch_adam(o, w, g, m, v, vmax, *, step, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay,
                amsgrad, maximize):
    """PyTorch's op sequence (``_single_tensor_adam``), for float16/bfloat16 parameters."""
    if decoupled_weight_decay and weight_decay != 0:
        w[...] = o.mul(w, 1 - lr * weight_decay)
    g = o.grad(g, w, maximize, 0 if decoupled_weight_decay else weight_decay)
    m[...] = o.lerp(m, g, 1 - beta1)
    v[...] = o.addcmul(o.mul(v, beta2), g, g, 1 - beta2)
    if amsgrad:
        vmax[...] = v = o.maximum(vmax, v)
    denom = o.add(o.div(o.sqrt(v), (1 - beta2 ** step) ** 0.5), eps)
    w[...] = o.addcdiv(w, m, denom, -(lr / (1 - beta1 ** step)))


class Adam(Optimizer):
    """Adam: ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2`` (``vmax = max(vmax, v)`` with amsgrad),
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.

    ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2), or, with
    ``decoupled_weight_decay=True`` (= :class:`AdamW`), multiplies ``p`` by ``1 - lr * weight_decay``.
    ``master_weights=True`` (a gpugrad extension) keeps a float32 master copy and float32 state for
    float16/bfloat16 parameters; see :mod:`gpugrad.optim.optimizer`.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False, master_weights=False):
        if isinstance(lr, Tensor) and foreach and not capturable:  # NOTE: PyTorch's check, at construction only
            raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults, master_weights)

    def _check_group(self, group):
        super()._check_group(group)
        check_betas(group)
        check_flags(group)

    def step(self, closure=None):
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            amsgrad = bool(group["amsgrad"])
            init = lambda p: dict(exp_avg=self._zeros(p), exp_avg_sq=self._zeros(p))  # noqa: E731
            kw = dict(lr=float(group["lr"]), beta1=float(beta1), beta2=float(beta2), eps=float(group["eps"]),
                      weight_decay=float(group["weight_decay"]), amsgrad=amsgrad,
                      decoupled_weight_decay=bool(group["decoupled_weight_decay"]), maximize=bool(group["maximize"]))
            for p, state, w, g, o in stepped(self, group, init):
                if amsgrad and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = self._zeros(p)
                args = (w, g, state["exp_avg"]._data, state["exp_avg_sq"]._data,
                        state["max_exp_avg_sq"]._data if amsgrad else None)
                kw["step"] = state["step"]
                _torch_adam(o, *args, **kw) if o.lowp else K.adam_step(*args, **kw)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr * weight_decay`` before the Adam update."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None,
                 master_weights=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True, master_weights=master_weights)
