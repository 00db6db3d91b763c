"""Matrix products: matmul (batched, broadcasting) and the fused linear layer x @ W.T + b."""
from __future__ import annotations

from ..autograd.primitive import Primitive, cross
from .shape import sum_to


class MatMul(Primitive):
    """a @ b for a.ndim >= 2 and b.ndim >= 2 (batch dims broadcast); 1-D cases are handled by matmul()."""
    saves = cross

    def forward(self, a, b):
        return a @ b

    def backward(self, g):
        a, b = self.values()
        na, nb = self.needs_input_grad
        return (sum_to(self, g @ b.swapaxes(-1, -2), a.shape) if na else None,
                sum_to(self, a.swapaxes(-1, -2) @ g, b.shape) if nb else None)


class Linear(Primitive):
    """y = x @ W.T (+ b): one node for a linear layer (x: (..., in), W: (out, in), b: (out,))."""
    saves = cross  # x is read iff W needs a gradient and vice versa; b never

    def forward(self, x, w, b=None):
        y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, g):
        vals = self.values()
        x, w = vals[0], vals[1]
        needs = self.needs_input_grad
        gx = g @ w if needs[0] else None
        g2 = g.reshape((-1, g.shape[-1])) if g.ndim != 2 else g
        gw = g2.T @ x.reshape((-1, x.shape[-1])) if needs[1] else None
        if len(vals) == 2:
            return gx, gw
        gb = g2.sum(0) if needs[2] else None
        return gx, gw, gb
