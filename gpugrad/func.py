"""``gg.func``: function transforms built on autograd.grad (JAX/functorch style).

Each transform makes differentiable copies of the arguments it differentiates, so the transforms
nest: ``hessian(f) = jacrev(grad(f))``; ``jacrev`` of a vector-valued function is the gradient of
a vector field (its Jacobian).
"""
from __future__ import annotations

from .autograd import grad as _grad
from .autograd.grad_mode import enable_grad
from .tensor import Tensor, stack, zeros_like

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacrev", "jacobian", "hessian"]


def _prep(args, argnums):
    """Arguments with the differentiated ones made into graph inputs; whether an outer graph exists."""
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    args = list(args)
    outer = False
    for i in nums:
        a = args[i]
        if not isinstance(a, Tensor):
            raise TypeError(f"argument {i} is differentiated but is a {type(a).__name__}, not a Tensor")
        if a.dtype.kind != "f":
            raise TypeError(f"argument {i} is differentiated but has dtype {a.dtype}; use a floating point tensor")
        if a.requires_grad:
            outer = True  # part of an enclosing graph: differentiate through it, keep the graph
            args[i] = a
        else:
            args[i] = a.detach().requires_grad_()
    return args, nums, outer


def value_and_grad(f, argnums=0, has_aux=False):
    """``f(*args) -> (value, grad)`` where grad is w.r.t. args[argnums] (a tuple if argnums is a tuple)."""
    def wrapped(*args):
        with enable_grad():
            xs, nums, outer = _prep(args, argnums)
            out = f(*xs)
            aux = None
            if has_aux:
                out, aux = out
            if not isinstance(out, Tensor) or out.numel() != 1:
                raise RuntimeError("grad: f must return a one-element Tensor (use jacrev for vector outputs)")
            if not out.requires_grad:
                gs = tuple(zeros_like(xs[i]) for i in nums)
            else:
                gs = _grad(out, [xs[i] for i in nums], create_graph=outer, allow_unused=True,
                           materialize_grads=True)
        value = out if outer else out.detach()
        g = gs[0] if isinstance(argnums, int) else tuple(gs)
        return ((value, aux), g) if has_aux else (value, g)
    return wrapped


def grad(f, argnums=0, has_aux=False):
    """The gradient function of a scalar function ``f``."""
    vg = value_and_grad(f, argnums, has_aux)

    def wrapped(*args):
        (v, g) = vg(*args)
        return (g, v[1]) if has_aux else g
    return wrapped


def vjp(f, *primals):
    """``(f(*primals), vjp_fn)``; ``vjp_fn(cotangent)`` returns one gradient per primal."""
    with enable_grad():
        xs, nums, outer = _prep(primals, tuple(range(len(primals))))
        out = f(*xs)

    def vjp_fn(cotangent):
        if not out.requires_grad:  # f does not depend on its arguments: zero gradients
            return tuple(zeros_like(x) for x in xs)
        with enable_grad():
            return tuple(_grad(out, xs, cotangent, retain_graph=True, create_graph=outer, allow_unused=True,
                               materialize_grads=True))
    return (out if outer else out.detach()), vjp_fn


def jvp(f, primals, tangents):
    """``(f(*primals), J @ tangents)`` by the double-vjp trick (the vjp is linear in its cotangent)."""
    primals, tangents = tuple(primals), tuple(tangents)
    with enable_grad():
        xs, nums, outer = _prep(primals, tuple(range(len(primals))))
        out = f(*xs)
        if not out.requires_grad:  # f does not depend on its arguments: zero tangent
            return (out if outer else out.detach()), zeros_like(out)
        u = zeros_like(out).requires_grad_()
        gx = _grad(out, xs, u, create_graph=True, allow_unused=True, materialize_grads=True)
        pairs = [(g, t) for g, t in zip(gx, tangents) if g.requires_grad]
        if not pairs:
            jv = zeros_like(out)
        else:
            (jv,) = _grad([g for g, _ in pairs], u, [t for _, t in pairs], create_graph=outer, allow_unused=True,
                          materialize_grads=True)
    return (out if outer else out.detach()), jv


def jacrev(f, argnums=0):
    """Jacobian of ``f`` by reverse mode, one row per output element: shape out.shape + arg.shape."""
    def wrapped(*args):
        with enable_grad():
            xs, nums, outer = _prep(args, argnums)
            out = f(*xs)
            flat = out.reshape(-1)
            jacs = [[] for _ in nums]
            for k in range(flat.shape[0]):
                if not flat.requires_grad:
                    gs = [zeros_like(xs[i]) for i in nums]
                else:
                    gs = _grad(flat[k], [xs[i] for i in nums], retain_graph=True, create_graph=outer,
                               allow_unused=True, materialize_grads=True)
                for j, g in enumerate(gs):
                    jacs[j].append(g)
            res = tuple(stack(js).reshape(tuple(out.shape) + tuple(xs[i].shape)) for js, i in zip(jacs, nums))
        if not outer:
            res = tuple(r.detach() for r in res)
        return res[0] if isinstance(argnums, int) else res
    return wrapped


jacobian = jacrev


def hessian(f, argnums=0):
    """Hessian of a scalar function: the Jacobian of its gradient."""
    return jacrev(grad(f, argnums), argnums)
