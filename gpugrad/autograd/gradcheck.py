"""Numerical gradient checks: float64 central differences against the analytic gradients."""
from __future__ import annotations

import numpy as np
from .._dtypes import is_float as _isf


class GradcheckError(RuntimeError):
    pass


def _as_tuple(x):
    return x if isinstance(x, (tuple, list)) else (x,)


def _numpy(a):
    return a if isinstance(a, np.ndarray) else a.get()


def _jacobians(fn, inputs, eps):
    """Numerical (central difference) and analytic Jacobians, per (output, input) pair."""
    from ..autograd import grad  # noqa: PLC0415
    from ..tensor import Tensor  # noqa: PLC0415
    outs = [o for o in _as_tuple(fn(*inputs)) if isinstance(o, Tensor)]
    diff_in = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    result = []
    for oi, out in enumerate(outs):
        if not _isf(out.dtype):
            continue
        n_out = out.numel()
        for ii in diff_in:
            x = inputs[ii]
            n_in = x.numel()
            num = np.zeros((n_out, n_in))
            arr = x._data
            for k in range(n_in):
                # NOTE: index the array itself (not a reshape, which copies a non-contiguous array)
                at = np.unravel_index(k, arr.shape) if arr.ndim else ()
                orig = arr[at].copy()
                arr[at] = orig + eps
                fp = _numpy(_as_tuple(fn(*inputs))[oi]._data).astype(np.float64).reshape(-1)
                arr[at] = orig - eps
                fm = _numpy(_as_tuple(fn(*inputs))[oi]._data).astype(np.float64).reshape(-1)
                arr[at] = orig
                num[:, k] = (fp - fm) / (2 * eps)
            ana = np.zeros((n_out, n_in))
            o2 = _as_tuple(fn(*inputs))[oi]  # one forward; each Jacobian row is a backward through it
            if o2.requires_grad:  # NOTE: else a constant output (e.g. a linear op's gradient): zero Jacobian
                for r in range(n_out):
                    go = np.zeros(n_out, dtype=out.dtype)
                    go[r] = 1
                    go = Tensor(out.xp.asarray(go.reshape(out.shape)))
                    (g,) = grad(o2, x, go, retain_graph=True, allow_unused=True)
                    if g is not None:
                        ana[r] = _numpy(g._data).astype(np.float64).reshape(-1)
            result.append((oi, ii, num, ana))
    return result


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Check analytic gradients of ``fn`` against central finite differences.

    ``inputs``: a Tensor or tuple of Tensors (those with requires_grad are checked; use float64).
    Returns True, or raises GradcheckError naming the worst element (or returns False with
    ``raise_exception=False``).
    """
    from ..tensor import Tensor  # noqa: PLC0415
    inputs = tuple(_as_tuple(inputs))
    if not any(isinstance(t, Tensor) and t.requires_grad for t in inputs):
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of them have "
                         "requires_grad=True.")
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            import warnings  # noqa: PLC0415
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating point or complex. "
                          "This check will likely fail if all the inputs are not of double precision floating point "
                          "or complex. ", stacklevel=2)
    for oi, ii, num, ana in _jacobians(fn, inputs, eps):
        err = np.abs(num - ana) - (atol + rtol * np.abs(num))
        if not np.all(np.isfinite(ana) == np.isfinite(num)) or (err.size and err.max() > 0):
            bad = np.where(~np.isfinite(err), np.inf, err)
            r, k = np.unravel_index(int(np.argmax(bad)), bad.shape)
            msg = (f"Jacobian mismatch for output {oi} with respect to input {ii}: worst at output element {r}, "
                   f"input element {k}: numerical {num[r, k]:.8g} vs analytical {ana[r, k]:.8g} "
                   f"(|diff| {abs(num[r, k] - ana[r, k]):.3g} > atol {atol} + rtol {rtol} * |numerical|)")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Check second derivatives: gradcheck of the vector-Jacobian product of ``fn`` (create_graph=True).

    As PyTorch's, the output gradients (``grad_outputs``, or random ones) are differentiated too, which checks
    that each backward formula is itself recorded as a graph (linear in the incoming gradient).
    """
    from ..autograd import grad  # noqa: PLC0415
    from ..tensor import Tensor  # noqa: PLC0415
    inputs = tuple(_as_tuple(inputs))
    rng = np.random.default_rng(seed)

    def diff_outputs(xs):
        return [o for o in _as_tuple(fn(*xs)) if isinstance(o, Tensor) and _isf(o.dtype) and o.requires_grad]
    if grad_outputs is None:
        gos = tuple(Tensor(o.xp.asarray(rng.standard_normal(o.shape))).type(o.dtype).requires_grad_()
                    for o in diff_outputs(inputs))
    else:
        gos = tuple(g.detach().requires_grad_() for g in _as_tuple(grad_outputs))
    n = len(inputs)

    def vjp(*args):
        xs, gs_out = args[:n], args[n:]
        d = [t for t in xs if isinstance(t, Tensor) and t.requires_grad]
        gs = grad(diff_outputs(xs), d, list(gs_out), create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)
    return gradcheck(vjp, inputs + gos, eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception)
