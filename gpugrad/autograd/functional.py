"""``gg.autograd.functional``: jacobian, hessian, vjp, jvp, hvp, vhp with the signatures and return
structures of ``torch.autograd.functional``, computed with ``gg.autograd.grad``.

A Tensor argument (inputs, v, outputs) gives a Tensor back, a tuple gives a tuple. The function runs on
fresh leaves that require grad (graph-connected aliases of inputs that require grad when
``create_graph=True``, so the results stay differentiable in them); without ``create_graph`` the
results are detached. ``strict=True`` raises where a result would be identically zero because an
output does not depend on an input; otherwise such entries are zeros.
NOTE: jvp and hvp use the double-vjp trick (the vjp is linear in its cotangent u, so its vjp with
respect to u is the jvp); ``vectorize=True`` is accepted and runs the same per-row loop.
"""
from __future__ import annotations

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


def _T():
    from ..tensor import Tensor  # noqa: PLC0415  (autograd is imported by tensor.py)
    return Tensor


def _seq(x, name, fn):
    """(tuple of Tensors, whether x was a tuple), with PyTorch's TypeError for anything else."""
    tup = isinstance(x, tuple)
    for i, t in enumerate(x if tup else (x,)):
        if not isinstance(t, _T()):
            where = f"the value at index {i} has type" if tup else f"the given {name} has type"
            raise TypeError(f"The {name} given to {fn} must be either a Tensor or a tuple of Tensors but {where} "
                            f"{type(t)}.")
    return (x if tup else (x,)), tup


def _one(seq, tup):
    return seq if tup else seq[0]


def _leaves(inputs, create_graph):
    return tuple(t.view_as(t) if create_graph and t.requires_grad else t.detach().requires_grad_(True)
                 for t in inputs)


def _out(ts, create_graph):
    return tuple(t if create_graph else t.detach() for t in ts)


def _call(func, xs, fn):
    return _seq(func(*xs), "outputs of the user-provided function", fn)


def _grads(outs, xs, cots, create_graph, strict, what):
    """grad(outs, xs, cots) with zeros (or, strict, an error naming ``what``) for inputs not reached."""
    from . import grad  # noqa: PLC0415
    from ..tensor import zeros_like  # noqa: PLC0415
    pairs = [(o, c) for o, c in zip(outs, cots) if o.requires_grad]
    got = grad([o for o, _ in pairs], xs, [c for _, c in pairs], create_graph=create_graph, retain_graph=True,
               allow_unused=True) if pairs else (None,) * len(xs)
    res = []
    for i, (g, x) in enumerate(zip(got, xs)):
        if g is None:
            if strict:
                raise RuntimeError(what.format(i=i))
            g = zeros_like(x)
        res.append(g)
    return tuple(res)


def _strict_outputs(outs, strict, fn):
    if strict:
        for i, o in enumerate(outs):
            if not o.requires_grad:
                raise RuntimeError(f"Output {i} of the user-provided function does not require gradients. The "
                                   f"outputs must be computed in a differentiable manner from the input when running "
                                   f"in strict mode.")


def _vector(v, like, tup, fn, none_ok_msg):
    if v is None:
        if len(like) != 1 or like[0].numel() != 1:
            raise RuntimeError(none_ok_msg)
        from ..tensor import ones_like  # noqa: PLC0415
        return (ones_like(like[0]),)
    vs, _ = _seq(v, "v", fn)
    if len(vs) != len(like):
        raise RuntimeError(f"v is a tuple of invalid length: should be {len(like)} but got {len(vs)}."
                           if tup else "The given v should contain a single Tensor.")
    for i, (a, b) in enumerate(zip(vs, like)):
        if tuple(a.shape) != tuple(b.shape):
            pre = f"Entry {i} in " if tup else ""
            raise RuntimeError(f"{pre}v has invalid size: should be {tuple(b.shape)} but got {tuple(a.shape)}.")
    return vs


_NONE_V = ("The vector v can only be None if the user-provided function returns a single Tensor with a single "
           "element.")
_INDEP = ("The output of the user-provided function is independent of input {i}. This is not allowed in strict "
          "mode.")


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): the vector-Jacobian product, shaped like the inputs."""
    from .grad_mode import enable_grad  # noqa: PLC0415
    ins, in_tup = _seq(inputs, "inputs", "vjp")
    with enable_grad():
        xs = _leaves(ins, create_graph)
        outs, out_tup = _call(func, xs, "vjp")
        _strict_outputs(outs, strict, "vjp")
        vs = _vector(v, outs, out_tup, "vjp", _NONE_V)
        g = _grads(outs, xs, vs, create_graph, strict, _INDEP)
    return _one(_out(outs, create_graph), out_tup), _one(_out(g, create_graph), in_tup)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v): the Jacobian-vector product, shaped like the outputs."""
    from .grad_mode import enable_grad  # noqa: PLC0415
    from ..tensor import zeros_like  # noqa: PLC0415
    ins, in_tup = _seq(inputs, "inputs", "jvp")
    with enable_grad():
        xs = _leaves(ins, create_graph)
        vs = _vector(v, ins, in_tup, "jvp", "The vector v can only be None if the input to the user-provided "
                     "function is a single Tensor with a single element.")
        outs, out_tup = _call(func, xs, "jvp")
        _strict_outputs(outs, strict, "jvp")
        us = tuple(zeros_like(o).requires_grad_(True) for o in outs)
        gx = _grads(outs, xs, us, True, strict, _INDEP)
        # NOTE: gx is linear in u; an entry that does not depend on u comes from an output not reaching x
        jv = _grads([g for g in gx], us, vs, create_graph, strict,
                    "The gradient with respect to the input is independent of entry {i} in the grad_outputs when "
                    "using the double backward trick to compute forward mode gradients. This is not allowed in strict "
                    "mode.")
    return _one(_out(outs, create_graph), out_tup), _one(_out(jv, create_graph), out_tup)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """J[i][j] = d outputs[i] / d inputs[j], of shape outputs[i].shape + inputs[j].shape (a Tensor where both
    are single Tensors)."""
    from .grad_mode import enable_grad  # noqa: PLC0415
    from ..tensor import stack, zeros  # noqa: PLC0415
    if strategy not in ("reverse-mode", "forward-mode"):
        raise RuntimeError('Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
                           'function has more outputs than inputs, "forward-mode" tends to be more performant. '
                           'Otherwise, prefer to use "reverse-mode".')
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError("torch.autograd.functional.jacobian: `create_graph=True` and "
                                      "`strategy=\"forward-mode\"` are not supported together (yet). Please either "
                                      "set `create_graph=False` or `strategy=\"reverse-mode\"`.")
        if not vectorize:
            raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-reverse Hessian is only "
                                      "implemented for `vectorize=True`.")
    if strict and vectorize:
        raise RuntimeError("torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
                           "supported together. Please either set `strict=False` or `vectorize=False`.")
    ins, in_tup = _seq(inputs, "inputs", "jacobian")
    # NOTE: PyTorch's forward-mode path returns lists (not tuples) when the inputs are a tuple
    seq = list if strategy == "forward-mode" and in_tup else tuple
    with enable_grad():
        xs = _leaves(ins, create_graph)
        outs, out_tup = _call(func, xs, "jacobian")
        _strict_outputs(outs, strict, "jacobian")
        rows = []
        for i, o in enumerate(outs):
            per_in = [[] for _ in xs]
            flat = o.reshape(-1)
            for k in range(flat.numel()):
                seed = zeros(flat.numel(), dtype=o.dtype, device=o.device)
                seed[k] = 1
                g = _grads((o,), xs, (seed.reshape(o.shape),), create_graph, strict,
                           f"Output {i} of the user-provided function is independent of input {{i}}. This is not "
                           f"allowed in strict mode.")
                for j, gj in enumerate(g):
                    per_in[j].append(gj)
            block = []
            for j, x in enumerate(xs):
                part = stack(per_in[j]) if per_in[j] else zeros(0, *x.shape, dtype=x.dtype, device=x.device)
                part = part.reshape(tuple(o.shape) + tuple(x.shape))
                block.append(part if create_graph else part.detach())
            rows.append(_one(seq(block), in_tup))
    return _one(seq(rows), out_tup)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """H[i][j] = d^2 func / d inputs[i] d inputs[j] for a function returning a single element: the Jacobian
    of the (differentiable) gradient."""
    ins, in_tup = _seq(inputs, "inputs", "hessian")

    def gradient(*xs):
        out = _single(func, xs, "hessian")
        _strict_outputs((out,), strict, "hessian")
        g = _grads((out.reshape(()),), xs, (None,), True, strict, _INDEP)
        for i, gi in enumerate(g):
            if strict and not gi.requires_grad:
                raise RuntimeError(_JAC_INDEP.format(i=i))
        return _one(g, in_tup)
    return jacobian(gradient, _one(ins, in_tup), create_graph=create_graph, strict=strict, vectorize=vectorize,
                    strategy=outer_jacobian_strategy)


def _single(func, xs, fn):
    outs, tup = _call(func, xs, fn)
    if tup:
        raise RuntimeError(f"The function given to {fn} should return a single Tensor")
    if outs[0].numel() != 1:
        raise RuntimeError(f"The Tensor returned by the function given to {fn} should contain a single element")
    return outs[0]


_JAC_INDEP = ("The jacobian of the user-provided function with respect to input {i} is independent of the input. "
              "This is not allowed in strict mode. You should ensure that your function is twice differentiable and "
              "that the jacobian depends on the inputs (this would be violated by a linear function for example).")


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H)."""
    return _hessian_product(func, inputs, v, create_graph, strict, "vhp", transpose=False)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v) (equal to vhp for twice continuously differentiable functions)."""
    return _hessian_product(func, inputs, v, create_graph, strict, "hvp", transpose=True)


def _hessian_product(func, inputs, v, create_graph, strict, fn, transpose):
    from .grad_mode import enable_grad  # noqa: PLC0415
    from ..tensor import zeros_like  # noqa: PLC0415
    ins, in_tup = _seq(inputs, "inputs", fn)
    with enable_grad():
        xs = _leaves(ins, create_graph)
        vs = _vector(v, ins, in_tup, fn, "The vector v can only be None if the input to the user-provided "
                     "function is a single Tensor with a single element.")
        out = _single(func, xs, fn)
        _strict_outputs((out,), strict, fn)
        g = _grads((out.reshape(()),), xs, (None,), True, strict, _INDEP)
        msg = ("The hessian of the user-provided function with respect to input {i} is independent of the input. "
               "This is not allowed in strict mode. You should ensure that your function is thrice differentiable "
               "and that the hessian depends on the inputs.")
        if not transpose:
            res = _grads(g, xs, vs, create_graph, strict, msg)
        else:  # NOTE: H v by the double-vjp trick: u -> u^T H is linear in u, its vjp with v is H v
            us = tuple(zeros_like(x).requires_grad_(True) for x in xs)
            uh = _grads(g, xs, us, True, strict, msg)
            res = _grads(uh, us, vs, create_graph, strict, msg)
    return _out((out,), create_graph)[0], _one(_out(res, create_graph), in_tup)
