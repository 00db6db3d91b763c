"""Linear algebra beyond matmul: einsum, products (addmm, dot, outer, kron, tensordot), triangles and
diagonals, and the factorizations behind ``gg.linalg`` (inv, det, slogdet, solve, cholesky, qr, eigh, svd).

Primitives work on arrays; their backward formulas are written once with operators and ``self.call`` so
that they are differentiable again (create_graph=True). Factorizations with several outputs (qr, eigh,
svd) are one primitive whose output packs the flattened results along the last axis; the public function
slices them out again (differentiable views), so the engine keeps one output per node. The formulas are
PyTorch's (FunctionsManual.cpp): a gradient of an unused output is zero here where PyTorch has "undefined";
an all-zero gradient part is treated as undefined, so e.g. eigenvalues alone stay finite at repeated ones.
"""
from __future__ import annotations

import math
import sys as _sys
from collections import namedtuple

import numpy as np

from .._dtypes import LOWP as _LOWP, is_float as _isf
from .. import tensor as _tensor
from .._promotion import short_name
from ..autograd.primitive import Primitive
from ..backend import xp_of
from ._util import one_dim, quiet, quiet_family
from .shape import Diagonal, DiagonalScatter

Tensor = _tensor.Tensor


class LinAlgError(RuntimeError):
    """A matrix the factorization cannot handle (singular, not positive-definite), as torch.linalg.LinAlgError."""


# -- helpers usable on arrays and Tensors ------------------------------------------------------------
def _arr(x):
    return x._data if isinstance(x, Tensor) else x


def _mT(x):
    return x.swapaxes(-1, -2)


def _const(node, arr):
    return Tensor(arr) if node.graph else arr


def _where(node, mask, a, b):
    if node.graph:
        return _tensor.where(Tensor(mask), a, b)
    return xp_of(mask).where(mask, a, b)


def _cat(node, parts, axis):
    if node.graph:
        return _tensor.cat(list(parts), axis)
    return xp_of(parts[0]).concatenate(parts, axis=axis)


def _diag_embed(node, v):
    n = v.shape[-1]
    return node.call(DiagonalScatter, v, shape=tuple(v.shape) + (n,), arg=(0, v.ndim - 1, v.ndim))


def _empty_grad(g):
    return not bool(_arr(g).any())


# -- einsum ---------------------------------------------------------------------------------------------
class Einsum(Primitive):
    """einsum on a normalized equation: letters only, explicit output, every letter one size (no broadcast)."""

    def forward(self, *ops, eq):
        self.eq = eq
        self.sizes = {c: s for term, op in zip(eq.split("->")[0].split(","), ops) for c, s in zip(term, op.shape)}
        xp = xp_of(ops[0])
        lhs, out = eq.split("->")
        # NOTE: numpy's optimizer pays off for contractions (it hands them to BLAS); without a summed letter
        # (outer products, broadcasts) its path search only adds ~0.1 ms to the plain loop
        opt = len(ops) > 1 and bool(set(lhs) - set(out) - {","})
        y = np.einsum(eq, *ops, optimize=opt) if xp is np else xp.einsum(eq, *ops)
        y = xp.asarray(y)
        if len(ops) == 1 or not y.flags.owndata:
            y = y.copy()  # NOTE: numpy returns views (transposes, diagonals) and scalars; results own their memory
        return y

    def backward(self, g):
        ins, out = self.eq.split("->")
        ins = ins.split(",")
        vals = self.values()
        dt, xp = _arr(g).dtype, xp_of(_arr(g))
        free = iter(c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in self.sizes)
        grads = []
        for i, need in enumerate(self.needs_input_grad):
            if not need:
                grads.append(None)
                continue
            ops = [g] + [v for j, v in enumerate(vals) if j != i]
            subs = [out] + [t for j, t in enumerate(ins) if j != i]
            have = set("".join(subs))
            # NOTE: a repeated letter ('ii'): the gradient sits on that diagonal. Without a graph to build, it is
            # computed on the diagonal only and written into zeros (_on_diagonals); else as a product with eye
            diag = not self.graph and len(set(ins[i])) < len(ins[i])
            target, seen = [], set()
            for c in ins[i]:
                if c not in have:  # NOTE: a letter summed only inside this operand: its gradient is broadcast
                    ops.append(_const(self, xp.ones(self.sizes[c], dt)))
                    subs.append(c)
                    have.add(c)
                if c in seen and diag:
                    continue
                if c in seen:
                    f = next(free)
                    ops.append(_const(self, xp.eye(self.sizes[c], dtype=dt)))
                    subs.append(c + f)
                    target.append(f)
                else:
                    seen.add(c)
                    target.append(c)
            gi = self.call(Einsum, *ops, eq=",".join(subs) + "->" + "".join(target))
            grads.append(_on_diagonals(gi, ins[i], self.sizes) if diag else gi)
        return tuple(grads) if len(grads) > 1 else grads[0]


def _on_diagonals(d, term, sizes):
    """zeros of ``term``'s shape holding array d (indexed by term's letters once each, first-seen order) on its
    diagonals, written through a strided view (a letter's stride: the sum of its axes' strides)."""
    xp = xp_of(d)
    z = xp.zeros(tuple(sizes[c] for c in term), d.dtype)
    strides = [sum(z.strides[k] for k, t in enumerate(term) if t == c) for c in dict.fromkeys(term)]
    xp.lib.stride_tricks.as_strided(z, d.shape, strides)[...] = d
    return z


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _same_dtype(ops):
    d0 = ops[0].dtype
    for o in ops[1:]:
        if o.dtype != d0:
            raise RuntimeError(f"expected scalar type {short_name(d0)} but found {short_name(o.dtype)}")


def einsum(equation, *operands):
    """torch.einsum: implicit or explicit output, '...', repeated letters, size-1 broadcasting; operands as
    varargs or one list."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): argument 'equation' (position 1) must be str, not {type(equation).__name__}")
    for o in operands:
        if not isinstance(o, Tensor):
            raise TypeError(f"einsum(): operands must be Tensors, got {type(o).__name__}")
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    for k, c in enumerate(eq):
        if not (c in _LETTERS or c in ".,-> "):
            raise RuntimeError(f"einsum(): invalid subscript given at index {k} in the equation string, subscripts "
                               "must be in [a-zA-Z]")
    terms = lhs.split(",")
    if len(terms) < len(operands):
        raise RuntimeError("einsum(): more operands were provided than specified in the equation")
    if len(terms) > len(operands):
        raise RuntimeError("einsum(): fewer operands were provided than specified in the equation")
    _same_dtype(operands)
    used = set(eq) & set(_LETTERS)
    spare = [c for c in _LETTERS if c not in used]
    parsed, ell = [], 0
    for i, (t, op) in enumerate(zip(terms, operands)):
        has = "..." in t
        core = t.replace("...", "", 1)
        if "." in core:
            raise RuntimeError(f"einsum(): found '.' for operand {i} that is not part of any ellipsis")
        if has:
            if len(core) > op.ndim:
                raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(core)}) is more than "
                                   f"the number of dimensions ({op.ndim}) for operand {i}")
            ell = max(ell, op.ndim - len(core))
        elif len(core) != op.ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(core)}) does not match the "
                               f"number of dimensions ({op.ndim}) for operand {i} and no ellipsis was given")
        parsed.append((t, has, op.ndim - len(core)))
    if ell > len(spare):
        raise RuntimeError("einsum(): too many dimensions under the ellipsis (at most 52 subscripts in all)")
    ell_letters = "".join(spare[:ell])
    new_terms = []
    for t, has, ne in parsed:
        new_terms.append(t.replace("...", ell_letters[ell - ne:] if ne else "", 1) if has else t)
    any_ell = any(p[1] for p in parsed)
    if arrow:
        if "." in rhs.replace("...", "", 1):
            raise RuntimeError("einsum(): found '.' for output but it is not part of any ellipsis")
        out = rhs.replace("...", ell_letters, 1)
        have = set("".join(new_terms))
        seen = set()
        for c in rhs.replace("...", ""):
            if c not in have:
                raise RuntimeError(f"einsum(): output subscript {c} does not appear in the equation for any input "
                                   "operand")
            if c in seen:
                raise RuntimeError(f"einsum(): output subscript {c} appears more than once in the output")
            seen.add(c)
    else:
        counts = {}
        for c in "".join(terms).replace(".", ""):
            counts[c] = counts.get(c, 0) + 1
        out = (ell_letters if any_ell else "") + "".join(sorted(c for c, n in counts.items() if n == 1))
    # sizes, with size-1 broadcasting (as PyTorch): a size-1 dim against a larger one is squeezed away
    size, where = {}, {}
    for i, (t, op) in enumerate(zip(new_terms, operands)):
        mine = {}
        for c, s in zip(t, op.shape):
            if c in mine and mine[c] != s:
                raise RuntimeError(f"einsum(): subscript {c} is repeated for operand {i} but the sizes don't match, "
                                   f"{s} != {mine[c]}")
            mine[c] = s
            if c in size and s != size[c] and s != 1 and size[c] != 1:
                if c in ell_letters:
                    raise RuntimeError(f"einsum(): dimension {ell_letters.index(c) - (ell - parsed[i][2])} covered "
                                       f"by ellipsis in operand {i} has size {s} which does not broadcast with "
                                       f"previously seen ellipsis with size {size[c]} for the respective dimension")
                raise RuntimeError(f"einsum(): subscript {c} has size {s} for operand {i} which does not broadcast "
                                   f"with previously seen size {size[c]}")
            if c not in size or size[c] == 1:
                size[c], where[c] = s, i
    ops, final = [], []
    for t, op in zip(new_terms, operands):
        drop = [k for k, c in enumerate(t) if op.shape[k] == 1 and size[c] != 1]
        if drop:
            op = op.reshape(tuple(s for k, s in enumerate(op.shape) if k not in drop))
            t = "".join(c for k, c in enumerate(t) if k not in drop)
        ops.append(op)
        final.append(t)
    lost = [c for c in out if not any(c in t for t in final)]  # every operand had size 1 there
    if lost:
        out_shape = tuple(size[c] for c in out)
        y = Einsum.apply(*ops, eq=",".join(final) + "->" + "".join(c for c in out if c not in lost))
        return y.reshape(tuple(1 if c in lost else size[c] for c in out)).expand(out_shape)
    return Einsum.apply(*ops, eq=",".join(final) + "->" + out)


# -- products -------------------------------------------------------------------------------------------
def _need(x, fname, arg, pos):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fname}(): argument '{arg}' (position {pos}) must be Tensor, not {type(x).__name__}")


def dot(input, tensor):  # noqa: A002
    _need(input, "dot", "input", 1)
    _need(tensor, "dot", "tensor", 2)
    if input.ndim != 1 or tensor.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {tensor.ndim}D tensors")
    if input.dtype != tensor.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found {short_name(input.dtype)} "
                           f"and {short_name(tensor.dtype)}")
    n, m = input.shape[0], tensor.shape[0]
    if n != m:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{n}] and src [{m}] to have the same number "
                           f"of elements, but got {n} and {m} elements respectively")
    return Einsum.apply(input, tensor, eq="i,i->")


vdot = dot  # NOTE: real tensors only in gpugrad, where vdot (conjugating the first) is dot


def outer(input, vec2):  # noqa: A002
    _need(input, "outer", "input", 1)
    _need(vec2, "outer", "vec2", 2)
    if input.ndim != 1:
        raise RuntimeError(f"outer: Expected 1-D argument self, but got {input.ndim}-D")
    if vec2.ndim != 1:
        raise RuntimeError(f"outer: Expected 1-D argument vec2, but got {vec2.ndim}-D")
    if input.dtype == vec2.dtype and input.dtype in (np.float32, np.float64):
        return Einsum.apply(input, vec2, eq="i,j->ij")  # NOTE: one pass; a broadcast multiply costs ~1.6x more
    return input.reshape((-1, 1)) * vec2  # NOTE: promotes dtypes, as PyTorch's outer


ger = outer


def _scal(v, dt):
    # NOTE: PyTorch casts alpha / beta to an integer tensor's dtype (0.5 -> 0)
    return int(v) if dt.kind in "iub" else v


def _expand_to(t, shape):
    if t.ndim > len(shape):
        raise RuntimeError(f"expand({_tensor._promo.tensor_type_name(t.dtype, t.is_cuda)}{{{list(t.shape)}}}, "
                           f"size={list(shape)}): the number of sizes provided ({len(shape)}) must be greater or "
                           f"equal to the number of dimensions in the tensor ({t.ndim})")
    lead = len(shape) - t.ndim
    for i, s in enumerate(t.shape):
        if s != 1 and s != shape[lead + i]:
            raise RuntimeError(f"The expanded size of the tensor ({shape[lead + i]}) must match the existing size "
                               f"({s}) at non-singleton dimension {lead + i}.  Target sizes: {list(shape)}.  Tensor "
                               f"sizes: {list(t.shape)}")
    return t.expand(shape)


def _add_scaled(input, prod, beta, alpha):  # noqa: A002
    dt = prod.dtype
    beta, alpha = _scal(beta, dt), _scal(alpha, dt)
    if alpha != 1:
        prod = prod * alpha
    inp = _expand_to(input, tuple(prod.shape))
    if beta == 0:
        return prod  # NOTE: beta=0 ignores input (nan and inf in it do not propagate), as PyTorch
    return prod + (inp if beta == 1 else inp * beta)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):  # noqa: A002
    """beta * input + alpha * (mat1 @ mat2), input broadcast to the product's shape (torch.addmm)."""
    _need(input, "addmm", "input", 1)
    _need(mat1, "addmm", "mat1", 2)
    _need(mat2, "addmm", "mat2", 3)
    for m, nm in ((mat1, "mat1"), (mat2, "mat2")):
        if m.ndim != 2:
            raise RuntimeError(f"{nm} must be a matrix, got {m.ndim}-D tensor")
    if mat1.dtype != mat2.dtype:
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {short_name(mat1.dtype)} and "
                           f"{short_name(mat2.dtype)}")
    if input.dtype != mat2.dtype:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got {short_name(input.dtype)} and "
                           f"{short_name(mat2.dtype)}")
    (a, b), (c, d) = mat1.shape, mat2.shape
    if b != c:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({a}x{b} and {c}x{d})")
    return _add_scaled(input, _tensor.matmul(mat1, mat2), beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):  # noqa: A002
    """beta * input + alpha * (batch1 @ batch2) for (b, n, m) @ (b, m, p) (torch.baddbmm)."""
    _need(input, "baddbmm", "input", 1)
    _need(batch1, "baddbmm", "batch1", 2)
    _need(batch2, "baddbmm", "batch2", 3)
    for m, nm in ((batch1, "batch1"), (batch2, "batch2")):
        if m.ndim != 3:
            raise RuntimeError(f"{nm} must be a 3D tensor")
    if not input.dtype == batch1.dtype == batch2.dtype:
        c = _tensor._promo.cpp_name
        raise RuntimeError(f"Input dtypes must be the same, got: input {c(input.dtype)}, batch1: {c(batch1.dtype)}, "
                           f"batch2: {c(batch2.dtype)}")
    if (batch2.shape[0], batch2.shape[1]) != (batch1.shape[0], batch1.shape[2]):
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: [{batch1.shape[0]}, "
                           f"{batch1.shape[2]}] but got: [{batch2.shape[0]}, {batch2.shape[1]}].")
    return _add_scaled(input, _tensor.matmul(batch1, batch2), beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1):  # noqa: A002
    """beta * input + alpha * (mat @ vec) (torch.addmv)."""
    _need(input, "addmv", "input", 1)
    _need(mat, "addmv", "mat", 2)
    _need(vec, "addmv", "vec", 3)
    if mat.ndim != 2 or vec.ndim != 1 or input.ndim > 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got {input.ndim}, {mat.ndim}, {vec.ndim}")
    if not input.dtype == mat.dtype == vec.dtype:
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got {short_name(input.dtype)}, "
                           f"{short_name(mat.dtype)}, and {short_name(vec.dtype)}")
    if mat.shape[1] != vec.shape[0] or (input.ndim == 1 and input.shape[0] not in (1, mat.shape[0])):
        ins = "x".join(str(s) for s in input.shape)
        raise RuntimeError(f"size mismatch, got input ({ins}), mat ({mat.shape[0]}x{mat.shape[1]}), vec "
                           f"({vec.shape[0]})")
    return _add_scaled(input, _tensor.matmul(mat, vec), beta, alpha)


def tensordot(a, b, dims=2, out=None):
    """torch.tensordot: contract the last ``dims`` dims of a with the first of b, or the listed pairs."""
    _need(a, "tensordot", "a", 1)
    _need(b, "tensordot", "b", 2)
    if out is not None:
        raise NotImplementedError("tensordot: out= is not supported by gpugrad")
    if a.dtype != b.dtype:
        raise RuntimeError("both inputs should have same dtype")
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, (int, np.integer)):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > a.ndim or dims > b.ndim:
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims}")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = dims
        da = [da] if isinstance(da, int) else list(da)
        db = [db] if isinstance(db, int) else list(db)
        if len(da) != len(db):
            raise RuntimeError("both dimension lists should have same length")
        da, db = [one_dim(d, a.ndim) for d in da], [one_dim(d, b.ndim) for d in db]
    for x, y in zip(da, db):
        if a.shape[x] != b.shape[y]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size {a.shape[x]} in dim {x} and "
                               f"second has size {b.shape[y]} in dim {y}")
    la = list(_LETTERS[:a.ndim])
    lb = list(_LETTERS[a.ndim:a.ndim + b.ndim])
    for x, y in zip(da, db):
        lb[y] = la[x]
    out_s = [c for k, c in enumerate(la) if k not in da] + [c for k, c in enumerate(lb) if k not in db]
    return Einsum.apply(a, b, eq=f"{''.join(la)},{''.join(lb)}->{''.join(out_s)}")


def kron(input, other):  # noqa: A002
    _need(input, "kron", "input", 1)
    _need(other, "kron", "other", 2)
    dt = _tensor._result_type(input, other)
    a, b = input.type(dt), other.type(dt)
    nd = max(a.ndim, b.ndim)
    a = a.reshape((1,) * (nd - a.ndim) + tuple(a.shape))
    b = b.reshape((1,) * (nd - b.ndim) + tuple(b.shape))
    la, lb = _LETTERS[:nd], _LETTERS[nd:2 * nd]
    y = Einsum.apply(a, b, eq=f"{la},{lb}->{''.join(x + y for x, y in zip(la, lb))}")
    return y.reshape(tuple(p * q for p, q in zip(a.shape, b.shape)))


# -- triangles and diagonals -------------------------------------------------------------------------------
class Tri(Primitive):
    """tril / triu of the last two dims (a mask: its own adjoint)."""
    saves = ()

    def forward(self, x, k, upper):
        self.k, self.upper = k, upper
        xp = xp_of(x)
        return xp.triu(x, k) if upper else xp.tril(x, k)

    def backward(self, g):
        return self.call(Tri, g, k=self.k, upper=self.upper)


def tril(input, diagonal=0):  # noqa: A002
    _need(input, "tril", "input", 1)
    if input.ndim < 2:
        raise RuntimeError("tril: input tensor must have at least 2 dimensions")
    return Tri.apply(input, k=int(diagonal), upper=False)


def triu(input, diagonal=0):  # noqa: A002
    _need(input, "triu", "input", 1)
    if input.ndim < 2:
        raise RuntimeError("triu: input tensor must have at least 2 dimensions")
    return Tri.apply(input, k=int(diagonal), upper=True)


def trace(input):  # noqa: A002
    _need(input, "trace", "input", 1)
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    if input.dtype == np.bool_:
        raise NotImplementedError("\"trace\" not implemented for 'Bool'")
    return input.diagonal().sum()  # NOTE: integer traces are int64, as PyTorch's (a sum)


def diag_embed(input, offset=0, dim1=-2, dim2=-1):  # noqa: A002
    _need(input, "diag_embed", "input", 1)
    nd = input.ndim + 1
    for d in (dim1, dim2):
        if not -nd <= d < nd:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {d})")
    a, b = dim1 % nd, dim2 % nd
    if a == b:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    n = (input.shape[-1] if input.ndim else 1) + abs(int(offset))
    x = input if input.ndim else input.reshape((1,))
    rest = iter(x.shape[:-1])
    shape = tuple(n if i in (a, b) else next(rest) for i in range(nd))
    return DiagonalScatter.apply(x, shape=shape, arg=(int(offset), a, b))


def diag(input, diagonal=0):  # noqa: A002
    _need(input, "diag", "input", 1)
    if input.ndim == 1:
        n = input.shape[0] + abs(int(diagonal))
        return DiagonalScatter.apply(input, shape=(n, n), arg=(int(diagonal), 0, 1))
    if input.ndim == 2:
        return Diagonal.apply(input, arg=(int(diagonal), 0, 1)).clone()  # NOTE: a copy, as torch.diag
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


# -- square-matrix checks and LAPACK-style errors ---------------------------------------------------------
def _check_float(A, fname):
    if not isinstance(A, Tensor):
        raise TypeError(f"{fname}(): argument 'A' (position 1) must be Tensor, not {type(A).__name__}")
    if not _isf(A.dtype):
        raise RuntimeError(f"{fname}: Expected a floating point or complex tensor as input. Got {short_name(A.dtype)}")
    if A.dtype == np.float16:
        raise RuntimeError(f"{fname}: Low precision dtypes not supported. Got Half")


def _check_square(A, fname):
    _check_float(A, fname)
    _square_shape(A, fname)


def _first_zero_pivot(a):
    """1-based index of the first zero pivot of LU with partial pivoting (LAPACK getrf's info), 0 if none."""
    a = np.array(a, copy=True)
    n = a.shape[0]
    for k in range(n):
        p = k + int(np.argmax(np.abs(a[k:, k])))
        if a[p, k] == 0:
            return k + 1
        a[[k, p]] = a[[p, k]]
        a[k + 1:, k] /= a[k, k]
        a[k + 1:, k + 1:] -= np.outer(a[k + 1:, k], a[k, k + 1:])
    return 0


def _batch_error(arr, fname, fails, text):
    """Raise LinAlgError for the first matrix of ``arr`` (numpy, (..., n, n)) on which ``fails`` gives an info."""
    flat = arr.reshape((-1,) + arr.shape[-2:])
    for b in range(flat.shape[0]):
        info = fails(flat[b])
        if info:
            where = f"(Batch element {b}): " if arr.ndim > 2 else ""
            raise LinAlgError(f"{fname}: {where}{text(info)}")
    raise LinAlgError(f"{fname}: {text(1)}")


def _singular(arr, fname, text=None):
    text = text or (lambda i: f"The diagonal element {i} is zero, the inversion could not be completed because the "
                              "input matrix is singular.")
    _batch_error(_host(arr), fname, _first_zero_pivot, text)


def _raising(xp):
    """NOTE: CuPy's inv/solve/cholesky return NaN or garbage for a singular or non-positive-definite input unless
    cuSOLVER's info is checked (``cupyx.errstate(linalg="raise")``: a device sync, as PyTorch's CUDA linalg.inv
    also syncs to raise); NumPy raises anyway. Not yet run on a GPU."""
    if xp is np:
        return _NO_CONTEXT
    import cupyx  # noqa: PLC0415  (CuPy's own extension package; present whenever CuPy is)
    return cupyx.errstate(linalg="raise")


_NO_CONTEXT = __import__("contextlib").nullcontext()


# -- inv, det, slogdet, solve -----------------------------------------------------------------------------------
class Inv(Primitive):
    save_output = True

    def forward(self, a):
        xp = xp_of(a)
        try:
            with _raising(xp):
                return xp.linalg.inv(a)
        except np.linalg.LinAlgError:
            _singular(a, "linalg.inv")

    def backward(self, g):
        yt = _mT(self.result())
        return -(yt @ g @ yt)


def inv(A):
    _check_square(A, "linalg.inv")
    return Inv.apply(A)


class Det(Primitive):
    save_output = True

    def forward(self, a):
        return xp_of(a).asarray(xp_of(a).linalg.det(a))

    def backward(self, g):
        # NOTE: PyTorch's linalg_det_backward. First order: g * det * A^{-T} from an LU whose zero pivots are
        # nudged, so an exactly singular A (det == 0) gets a zero gradient. create_graph: where |det| < 100 eps
        # the SVD form of the adjugate, U diag(g det(U) det(Vh) prod_{j != i} S_j) Vh, elsewhere solve(A^T, g det)
        (a,) = self.values()
        d = self.result()
        ad, dd = _arr(a), _arr(d)
        xp = xp_of(ad)
        if ad.shape[-1] == 1:  # NOTE: det of a 1x1 is its entry: gradient g, also at 0 (PyTorch's 1 at [[0]])
            return g[..., None, None] * _const(self, xp.ones(ad.shape, ad.dtype))
        eye = xp.eye(ad.shape[-1], dtype=ad.dtype)
        gd = (g * d)[..., None, None]
        small = (xp.abs(dd) < 100 * np.finfo(ad.dtype).eps) if self.graph else (dd == 0)
        if not bool(small.any()):
            return gd * _mT(self.call(Inv, a))
        m = small[..., None, None]
        nons = gd * _mT(self.call(Inv, _where(self, m, _const(self, eye + 0 * ad), a)))
        if not self.graph:
            return xp.where(m, 0, nons)
        U, S, Vh = svd(a, full_matrices=False)
        alpha = det(U) * det(Vh)
        k = S.shape[-1]
        ones = Tensor(xp.ones(S.shape, dtype=ad.dtype))
        D = g * alpha
        D = D[..., None] * ones
        for j in range(k):  # D_i *= S_j for j != i (a product that is safe at zeros)
            D = D * _tensor.where(Tensor(xp.arange(k) == j), ones, S[..., j:j + 1])
        return _tensor.where(Tensor(m), (U * D[..., None, :]) @ Vh, nons)


def det(A):
    if isinstance(A, Tensor) and A.dtype == np.float16:
        raise NotImplementedError("\"lu_cpu\" not implemented for 'Half'")
    _check_square(A, "linalg.det")
    return Det.apply(A)


class LogAbsDet(Primitive):
    def forward(self, a):
        xp = xp_of(a)
        s, ld = xp.linalg.slogdet(a)
        self.sign = s
        return xp.asarray(ld)

    def backward(self, g):
        (a,) = self.values()
        return g[..., None, None] * _mT(self.call(Inv, a))


SlogdetResult = namedtuple("linalg_slogdet", ["sign", "logabsdet"])


def slogdet(A):
    _check_square(A, "linalg.slogdet")
    ld = LogAbsDet.apply(A)
    xp = A.xp
    node = getattr(ld, "_node", None)
    s = node.sign if isinstance(node, LogAbsDet) else xp.linalg.slogdet(A._data)[0]
    return SlogdetResult(Tensor(xp.asarray(s).astype(A.dtype, copy=False)), ld)


class Solve(Primitive):
    """X = A^{-1} B for A (..., n, n), B (..., n, k) with equal batch shapes."""
    save_output = True
    saves = (0,)

    def forward(self, a, b):
        xp = xp_of(a)
        try:
            with _raising(xp):
                return xp.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            _singular(a, "torch.linalg.solve", lambda i: "The solver failed because the input matrix is singular.")

    def backward(self, g):
        a, b = self.values()
        gb = self.call(Solve, _mT(a), g)
        ga = -(gb @ _mT(self.result())) if self.needs_input_grad[0] else None
        return ga, (gb if self.needs_input_grad[1] else None)


def solve(A, B, *, left=True, out=None):
    if out is not None:
        raise NotImplementedError("linalg.solve: out= is not supported by gpugrad")
    _check_square(A, "linalg.solve")
    _need(B, "linalg.solve", "B", 2)
    if A.dtype != B.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A of type "
                           f"{short_name(A.dtype)} and B of type {short_name(B.dtype)} instead")
    n = A.shape[-1]
    vector = left and (B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1])))
    Bm = B.unsqueeze(-1) if vector else B
    r, c = (Bm.shape[-2], Bm.shape[-1]) if Bm.ndim >= 2 else (Bm.shape[0], 1)
    if Bm.ndim < 2 or (r if left else c) != n:
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation {'AX' if left else 'XA'} = B "
                           f"({n}x{n} and {r}x{c})")
    if not left:
        return solve(A.mT, Bm.mT).mT
    batch = tuple(np.broadcast_shapes(tuple(A.shape[:-2]), tuple(Bm.shape[:-2])))
    X = Solve.apply(A.expand(batch + (n, n)), Bm.expand(batch + tuple(Bm.shape[-2:])))
    return X.squeeze(-1) if vector else X


# -- cholesky -------------------------------------------------------------------------------------------------
def _not_pd(a):
    n = a.shape[-1]
    for k in range(1, n + 1):
        try:
            np.linalg.cholesky(a[:k, :k])
        except np.linalg.LinAlgError:
            return k
    return 0


class Cholesky(Primitive):
    """Lower Cholesky factor (reads the lower triangle), PyTorch's cholesky_backward."""
    save_output = True
    saves = ()

    def forward(self, a):
        xp = xp_of(a)
        try:
            with _raising(xp):
                return xp.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            _batch_error(_host(a), "linalg.cholesky", _not_pd,
                         lambda k: "The factorization could not be completed because the input is not positive-"
                                   f"definite (the leading minor of order {k} is not positive-definite).")

    def backward(self, g):
        L = self.result()
        Lh = _mT(L)
        ga = self.call(Tri, Lh @ g, k=0, upper=False)
        ga = 0.5 * (ga + _mT(self.call(Tri, ga, k=-1, upper=False)))
        ga = self.call(Solve, Lh, ga)                  # L^{-H} ga
        return _mT(self.call(Solve, Lh, _mT(ga)))      # ... L^{-1}


def cholesky(A, *, upper=False, out=None):
    if out is not None:
        raise NotImplementedError("linalg.cholesky: out= is not supported by gpugrad")
    _check_square(A, "linalg.cholesky")
    if upper:  # NOTE: PyTorch reads the upper triangle then
        return Cholesky.apply(A.mT).mT
    return Cholesky.apply(A)


# -- multi-output factorizations: one packed output -----------------------------------------------------------
class _Packed(Primitive):
    save_output = True
    saves = ()

    @staticmethod
    def parts(shape, **params):
        raise NotImplementedError

    def pack(self, arrs):
        xp = xp_of(arrs[0])
        bd = arrs[1].ndim - len(self.pshapes[1])
        return xp.concatenate([a.reshape(a.shape[:bd] + (-1,)) for a in arrs], axis=-1)

    def split(self, y):
        return _split(y, self.pshapes)


def _split(y, pshapes):
    out, o = [], 0
    for s in pshapes:
        n = int(np.prod(s))
        out.append(y[..., o:o + n].reshape(tuple(y.shape[:-1]) + tuple(s)))
        o += n
    return out


class QR(_Packed):
    saves = None  # NOTE: the wide case reads the input's trailing columns

    @staticmethod
    def parts(shape, mode):
        m, n = shape[-2:]
        k = min(m, n)
        return ((m, m) if mode == "complete" else (m, k)), ((m, n) if mode == "complete" else (k, n))

    def forward(self, a, mode):
        self.mode, self.pshapes = mode, QR.parts(a.shape, mode)
        q, r = xp_of(a).linalg.qr(a, mode=mode)
        return self.pack([q, r])

    def backward(self, g):
        m, n = self.pshapes[1]
        if self.mode == "complete" and m > n:
            raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")
        q, r = self.split(self.result())
        gq, gr = self.split(g)
        if m >= n:
            return self._square(q, r, gq, gr)
        # NOTE: m < n: A = [X | Y], R = [U | V] with X = Q U square, Y = Q V
        u = r[..., :, :m]
        gu, gv = gr[..., :, :m], gr[..., :, m:]
        y = self.values()[0][..., :, m:]
        gy = q @ gv
        gx = self._square(q, u, gq + y @ _mT(gv), gu)
        return _cat(self, [gx, gy], -1)

    def _square(self, q, r, gq, gr):
        # NOTE: m >= n: gA = (gQ + Q copyltu(M)) R^{-T}, M = R gR^T - gQ^T Q
        M = r @ _mT(gr) - _mT(gq) @ q
        low = self.call(Tri, M, k=-1, upper=False)
        b = gq + q @ (self.call(Tri, M, k=0, upper=False) + _mT(low))
        return _mT(self.call(Solve, r, _mT(b)))


QRResult = namedtuple("linalg_qr", ["Q", "R"])


class _RNoGrad(Primitive):
    saves = ()

    def forward(self, a):
        return xp_of(a).linalg.qr(a, mode="r")

    def backward(self, g):
        raise RuntimeError("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. Please use "
                           "linalg.qr(A, mode='reduced') if you are going to differentiate through linalg.qr.")


def qr(A, mode="reduced", *, out=None):
    if out is not None:
        raise NotImplementedError("linalg.qr: out= is not supported by gpugrad")
    _check_float(A, "linalg.qr")
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), 'r', or "
                           "'complete'")
    if A.ndim < 2:
        raise RuntimeError("linalg.qr: The input tensor A must have at least 2 dimensions.")
    if mode == "r":
        return QRResult(Tensor(A.xp.zeros((0,), dtype=A.dtype)), _RNoGrad.apply(A))
    y = QR.apply(A, mode=mode)
    return QRResult(*_split(y, QR.parts(A.shape, mode)))


class Eigh(_Packed):
    @staticmethod
    def parts(shape):
        n = shape[-1]
        return (n,), (n, n)

    def forward(self, a, uplo):
        self.pshapes = Eigh.parts(a.shape)
        w, v = xp_of(a).linalg.eigh(a, UPLO=uplo)
        return self.pack([w, v])

    def backward(self, g):
        L, V = self.split(self.result())
        gL, gV = self.split(g)
        xp = xp_of(_arr(L))
        n = L.shape[-1]
        if _empty_grad(gV):
            inner = _diag_embed(self, gL)
        else:
            # NOTE: PyTorch's linalg_eig_backward (Hermitian): V (skew(V^H gV) / E + diag(gL)) V^H,
            # E_ij = L_j - L_i (1 on the diagonal); repeated eigenvalues give inf / nan, as in PyTorch
            vg = _mT(V) @ gV
            vg = 0.5 * (vg - _mT(vg))
            E = L[..., None, :] - L[..., :, None] + _const(self, xp.eye(n, dtype=_arr(L).dtype))
            inner = vg / E + _diag_embed(self, gL)
        return V @ inner @ _mT(V)


EighResult = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])


def eigh(A, UPLO="L", *, out=None):
    if out is not None:
        raise NotImplementedError("linalg.eigh: out= is not supported by gpugrad")
    _check_square(A, "linalg.eigh")
    if UPLO not in ("L", "U", "l", "u"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    y = Eigh.apply(A, uplo=UPLO.upper())
    return EighResult(*_split(y, Eigh.parts(A.shape)))


def eigvalsh(A, UPLO="L", *, out=None):
    _check_square(A, "linalg.eigvalsh")
    return eigh(A, UPLO, out=out).eigenvalues


class SVD(_Packed):
    @staticmethod
    def parts(shape, full):
        m, n = shape[-2:]
        k = min(m, n)
        return ((m, m) if full else (m, k)), (k,), ((n, n) if full else (k, n))

    def forward(self, a, full):
        self.pshapes = SVD.parts(a.shape, full)
        u, s, vh = xp_of(a).linalg.svd(a, full_matrices=full)
        return self.pack([u, s, vh])

    def backward(self, g):
        U, S, Vh = self.split(self.result())
        gU, gS, gVh = self.split(g)
        m, n = U.shape[-2], Vh.shape[-1]
        k = S.shape[-1]
        # NOTE: full_matrices=True: only the first k singular vectors enter the gradient, as PyTorch
        U, Vh, gU, gVh = U[..., :, :k], Vh[..., :k, :], gU[..., :, :k], gVh[..., :k, :]
        hu, hv = not _empty_grad(gU), not _empty_grad(gVh)
        if not hu and not hv:
            return U @ (gS[..., :, None] * Vh) if m >= n else (U * gS[..., None, :]) @ Vh
        xp = xp_of(_arr(S))
        S2 = S * S
        E = S2[..., None, :] - S2[..., :, None] + _const(self, xp.eye(k, dtype=_arr(S).dtype))
        if hu:
            uhu = _mT(U) @ gU
            uhu = uhu - _mT(uhu)
        if hv:
            vhv = Vh @ _mT(gVh)
            vhv = vhv - _mT(vhv)
        if hu and hv:
            gA = (uhu * S[..., None, :] + S[..., :, None] * vhv) / E
        elif hu:
            gA = uhu * (S[..., None, :] / E)
        else:
            gA = S[..., :, None] * (vhv / E)
        gA = gA + _diag_embed(self, gS)
        if m > n and hu:
            gA = U @ gA
            gus = gU / S[..., None, :]
            gA = gA + gus - U @ (_mT(U) @ gus)
            return gA @ Vh
        if m < n and hv:
            gA = gA @ Vh
            sgv = gVh / S[..., :, None]
            gA = gA + sgv - (sgv @ _mT(Vh)) @ Vh
            return U @ gA
        return U @ (gA @ Vh) if m >= n else (U @ gA) @ Vh


SVDResult = namedtuple("linalg_svd", ["U", "S", "Vh"])


def svd(A, full_matrices=True, *, driver=None, out=None):
    if out is not None:
        raise NotImplementedError("linalg.svd: out= is not supported by gpugrad")
    if driver is not None:
        raise NotImplementedError("linalg.svd: driver= (a cuSOLVER choice) is not supported by gpugrad")
    _check_float(A, "linalg.svd")
    if A.ndim < 2:
        raise RuntimeError("linalg.svd: The input tensor A must have at least 2 dimensions.")
    y = SVD.apply(A, full=bool(full_matrices))
    return SVDResult(*_split(y, SVD.parts(A.shape, bool(full_matrices))))


def svdvals(A, *, driver=None, out=None):
    _check_float(A, "linalg.svdvals")
    if A.ndim < 2:
        raise RuntimeError("linalg.svdvals: The input tensor A must have at least 2 dimensions.")
    return svd(A, False, driver=driver, out=out).S


# -- norms --------------------------------------------------------------------------------------------------
def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):  # noqa: A002
    _need(x, "linalg_vector_norm", "input", 1)
    if out is not None:
        raise NotImplementedError("linalg.vector_norm: out= is not supported by gpugrad")
    if isinstance(ord, (str, bool)) or not isinstance(ord, (int, float, np.number)):
        raise TypeError(f"linalg_vector_norm(): argument 'ord' (position 2) must be Number, not {type(ord).__name__}")
    if isinstance(dim, int):
        dim = (dim,)
    return x.norm(float(ord), None if dim is None else tuple(dim), keepdim, dtype)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None, out=None):  # noqa: A002
    if out is not None:
        raise NotImplementedError("linalg.matrix_norm: out= is not supported by gpugrad")
    _need(A, "linalg_matrix_norm", "input", 1)
    if A.ndim < 2:
        raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 dimensions.")
    if not _isf(A.dtype):
        raise RuntimeError(f"linalg.matrix_norm: Expected a floating point or complex tensor as input. Got "
                           f"{short_name(A.dtype)}")
    dim = (dim,) if isinstance(dim, int) else tuple(dim)
    if len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {' '.join(str(d) for d in dim)}")
    d0, d1 = one_dim(dim[0], A.ndim), one_dim(dim[1], A.ndim)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({dim[0]}, {dim[1]})")
    ok = ("fro", "nuc") if isinstance(ord, str) else (1, -1, 2, -2, math.inf, -math.inf)
    if ord not in ok:
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim, dtype=dtype)
    if dtype is not None:
        A = A.type(dtype)  # NOTE: the same narrowing checks as vector_norm's
        vector_norm(A[..., :0], 2, dtype=dtype)
    if ord in ("nuc", 2, -2):
        rest = [i for i in range(A.ndim) if i not in (d0, d1)]
        s = svdvals(A.permute(rest + [d0, d1]))
        y = s.sum(-1) if ord == "nuc" else (s.amax(-1) if ord == 2 else s.amin(-1))
        if keepdim:
            for d in sorted((d0, d1)):
                y = y.unsqueeze(d)
        return y
    a = A.abs()
    inner, outer_ = (d0, d1) if abs(ord) == 1 else (d1, d0)
    s = a.sum(inner, keepdim=True)
    y = s.amax(outer_, keepdim=True) if ord > 0 else s.amin(outer_, keepdim=True)
    return y if keepdim else y.squeeze((d0, d1))


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None, out=None):  # noqa: A002
    if out is not None:
        raise NotImplementedError("linalg.norm: out= is not supported by gpugrad")
    _need(A, "linalg_norm", "input", 1)
    if dim is not None:
        dim = (dim,) if isinstance(dim, int) else tuple(dim)
        if len(dim) not in (1, 2):
            raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got {list(dim)}")
    if ord is None:
        if dim is not None and len(dim) == 2:
            return matrix_norm(A, "fro", dim, keepdim, dtype=dtype)
        return vector_norm(A, 2, dim, keepdim, dtype=dtype)
    if dim is None:
        if A.ndim not in (1, 2):
            raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got "
                               f"{A.ndim}D.")
        dim = tuple(range(A.ndim))
    if isinstance(ord, str) or len(dim) == 2:
        return matrix_norm(A, ord, dim, keepdim, dtype=dtype)
    return vector_norm(A, ord, dim, keepdim, dtype=dtype)


# -- more of torch.linalg (issue 11): products, powers, pseudo-inverses, least squares, triangular solves, LU, *_ex ---
_REAL = (np.float32, np.float64)


def _no_out(out, fname):
    if out is not None:
        raise NotImplementedError(f"{fname}: out= is not supported by gpugrad")


def _host(x):
    x = _arr(x)
    return np.asarray(x.get() if hasattr(x, "get") else x)


def _finite(t):  # NOTE: NumPy raises on a singular input; CuPy returns inf/nan, which sends it to the slow path
    return t.xp is np or bool(t.xp.isfinite(t._data).all())


def _info0(t, batch):
    return Tensor(t.xp.zeros(tuple(batch), np.int32))


def _check_info(info, fname, text, err=LinAlgError):
    """Raise PyTorch's error for the first batch element whose LAPACK-style info is non-zero."""
    flat = _host(info).reshape(-1)
    bad = np.flatnonzero(flat)
    if bad.size:
        where = f"(Batch element {bad[0]}): " if _arr(info).ndim else ""
        raise err(f"{fname}: {where}{text(int(flat[bad[0]]))}")


_INV_TEXT = "The diagonal element {} is zero, the inversion could not be completed because the input matrix is singular."
_CHOL_TEXT = ("The factorization could not be completed because the input is not positive-definite (the leading minor "
              "of order {} is not positive-definite).")
_LU_TEXT = ("U[{0},{0}] is zero and using it on lu_solve would result in a division by zero. If you still want to "
            "perform the factorization, consider calling linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")


def _square_shape(A, fname):
    if A.ndim < 2:
        raise RuntimeError(f"{fname}: The input tensor A must have at least 2 dimensions.")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{fname}: A must be batches of square matrices, but they are {A.shape[-2]} by "
                           f"{A.shape[-1]} matrices")


def _eye_like(A):
    xp, n = A.xp, A.shape[-1]
    return Tensor(xp.broadcast_to(xp.eye(n, dtype=A.dtype), tuple(A.shape)).copy())


def _bshape(*shapes):
    return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))


def cross(input, other, *, dim=-1, out=None):  # noqa: A002
    _no_out(out, "linalg.cross")
    _need(input, "linalg_cross", "input", 1)
    _need(other, "linalg_cross", "other", 2)
    if input.ndim != other.ndim:
        raise RuntimeError("linalg.cross: inputs must have the same number of dimensions.")
    if input.dtype != other.dtype:
        raise RuntimeError(f"expected scalar type {short_name(input.dtype)} but found {short_name(other.dtype)}")
    nd = max(input.ndim, 1)
    if not -nd <= dim < nd:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim})")
    d = dim % nd
    if input.shape[d] != 3 or other.shape[d] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got {input.shape[d]} and "
                           f"{other.shape[d]}")
    a, b = [input.select(d, i) for i in range(3)], [other.select(d, i) for i in range(3)]
    return _tensor.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]], d)


def vecdot(x, y, *, dim=-1, out=None):
    _no_out(out, "linalg.vecdot")
    _need(x, "linalg_vecdot", "x", 1)
    _need(y, "linalg_vecdot", "y", 2)
    if not _isf(x.dtype):
        raise RuntimeError(f"linalg.vecdot: Expected a floating point or complex tensor as input. Got "
                           f"{short_name(x.dtype)}")
    if x.dtype != y.dtype:
        raise RuntimeError(f"linalg.vecdot: Expected x and y to have the same dtype, but found x of type "
                           f"{short_name(x.dtype)} and y of type {short_name(y.dtype)} instead")
    if x.ndim == y.ndim == 1 and x.shape != y.shape:  # NOTE: PyTorch's 1-D case is a dot (no broadcasting)
        sx, sy = x.shape[0], y.shape[0]
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{sx}] and src [{sy}] to have the same number "
                           f"of elements, but got {sx} and {sy} elements respectively")
    if x.dtype in _LOWP:  # NOTE: products and their sum in float32, one rounding (PyTorch's opmath)
        return (x.float() * y.float()).sum(dim).type(x.dtype)
    return (x * y).sum(dim)


def multi_dot(tensors, *, out=None):
    """torch.linalg.multi_dot: the chain product in PyTorch's order (the cheaper of two for three matrices, the
    matrix-chain program for more); a 1-D first / last operand is a row / column vector."""
    _no_out(out, "linalg.multi_dot")
    ts = list(tensors)
    n = len(ts)
    if n < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {n}")
    for t in ts:
        _need(t, "linalg_multi_dot", "tensors", 1)
    for i, t, what in ((0, ts[0], "first"), (n - 1, ts[-1], "last")):
        if t.ndim not in (1, 2):
            raise RuntimeError(f"multi_dot(): the {what} tensor must be 1D or 2D but got {t.ndim}D")
    for i in range(1, n - 1):
        if ts[i].ndim != 2:
            raise RuntimeError(f"multi_dot(): tensor {i} must be 2D but got {ts[i].ndim}D")
    c = _tensor._promo.cpp_name
    for i, t in enumerate(ts):
        if t.dtype != ts[0].dtype:
            raise RuntimeError(f"multi_dot(): all tensors must have be the same dtype but tensor 0 is "
                               f"{c(ts[0].dtype)} and tensor {i} {c(t.dtype)}")
    v0, v1 = ts[0].ndim == 1, ts[-1].ndim == 1
    mats = [ts[0].unsqueeze(0) if v0 else ts[0], *ts[1:-1], ts[-1].unsqueeze(-1) if v1 else ts[-1]]
    for i in range(n - 1):
        if mats[i].shape[1] != mats[i + 1].shape[0]:
            raise RuntimeError(f"multi_dot(): tensors {i} and {i + 1} with shapes {list(ts[i].shape)} and "
                               f"{list(ts[i + 1].shape)} cannot be multiplied")
    dims = [mats[0].shape[0]] + [m.shape[1] for m in mats]
    cost, split = {(i, i): 0 for i in range(n)}, {}
    for span in range(1, n):
        for i in range(n - span):
            j = i + span
            # NOTE: ties: the first split (PyTorch's strict '<'), but (AB)C for three (its 'cost_1 > cost_2' test)
            cost[i, j], _, split[i, j] = min((cost[i, k] + cost[k + 1, j] + dims[i] * dims[k + 1] * dims[j + 1],
                                              -k if n == 3 else k, k) for k in range(i, j))

    def chain(i, j):
        return mats[i] if i == j else _tensor.matmul(chain(i, split[i, j]), chain(split[i, j] + 1, j))
    y = chain(0, n - 1)
    y = y.squeeze(0) if v0 else y
    return y.squeeze(-1) if v1 else y


def matrix_power(A, n, *, out=None):
    _no_out(out, "linalg.matrix_power")
    _need(A, "linalg_matrix_power", "input", 1)
    if not isinstance(n, (int, np.integer)):
        raise TypeError(f"linalg_matrix_power(): argument 'n' (position 2) must be int, not {type(n).__name__}")
    _square_shape(A, "linalg.matrix_power")
    if n == 0:  # NOTE: the identity, with a zero gradient (PyTorch copies eye into a clone)
        return _tensor.where(Tensor(A.xp.ones(tuple(A.shape), bool)), _eye_like(A), A)
    if n < 0:
        A, n = inv(A), -n
    if n == 1:
        return A.clone()
    if n == 3:
        return (A @ A) @ A
    z = res = None
    while n:  # NOTE: PyTorch's binary decomposition, least significant bit first
        n, bit = divmod(n, 2)
        z = A if z is None else z @ z
        if bit:
            res = z if res is None else res @ z
    return res


def _cutoff(A, atol, rtol, S):
    """max(atol, rtol * max(S)) per matrix (..., 1), PyTorch's defaults: rtol = eps * max(m, n) unless atol > 0."""
    xp = xp_of(S)
    a = xp.asarray(_arr(atol) if atol is not None else 0.0, dtype=np.float64)
    if rtol is not None:
        r = xp.asarray(_arr(rtol), dtype=np.float64)
    else:
        r = xp.asarray(np.finfo(A.dtype).eps * max(A.shape[-2:]))
        r = xp.where(a > 0, 0.0, r) if atol is not None else r
    return xp.maximum(a[..., None], r[..., None] * S.max(-1, keepdims=True))


def _legacy_tol(fname, tol, atol, rtol):
    if tol is None:
        return atol, rtol
    if atol is not None or rtol is not None:
        raise TypeError(f"{fname}() received an invalid combination of arguments: a positional tolerance together "
                        "with atol= or rtol=")
    return 0.0 if fname == "linalg_pinv" else tol, tol if fname == "linalg_pinv" else 0.0


class Pinv(Primitive):
    """V diag(1/S where S > tol) U^T from svd (U diag(1/L where |L| > tol) U^T from eigh when hermitian); the singular
    values and the kept mask go to ``box``. PyTorch's pinv_backward."""
    save_output = True

    def forward(self, a, atol, rtol, hermitian, box):
        xp = xp_of(a)
        if hermitian:
            s, u = xp.linalg.eigh(a)
            vt, mag = _mT(u), xp.abs(s)
        else:
            u, s, vt = xp.linalg.svd(a, full_matrices=False)
            mag = s
        keep = mag > _cutoff(a, atol, rtol, mag)
        box[:] = [s, keep]
        return (_mT(vt) * xp.where(keep, 1 / xp.where(keep, s, 1), 0)[..., None, :]) @ _mT(u)

    def backward(self, g):
        a, p = self.values()[0], self.result()
        ph, gh = _mT(p), _mT(g)
        if a.shape[-2] <= a.shape[-1]:
            K = gh @ p
            Kph = K @ ph
            return -_mT(p @ K) + Kph - (a @ p) @ Kph + (ph @ p) @ (gh - K @ a)
        K = p @ gh
        phK = ph @ K
        return -_mT(K @ p) + ((gh - a @ K) @ p) @ ph + phK - (phK @ p) @ a


def _pinv(A, atol, rtol, hermitian=False):
    xp = A.xp
    atol, rtol = [None if t is None else xp.asarray(_arr(t), dtype=np.float64) for t in (atol, rtol)]
    batch = _bshape(A.shape[:-2], *[t.shape for t in (atol, rtol) if t is not None])
    box = []
    y = Pinv.apply(A.expand(batch + tuple(A.shape[-2:])), atol=atol, rtol=rtol, hermitian=bool(hermitian), box=box)
    return y, box


def pinv(A, rcond=None, hermitian=False, *, atol=None, rtol=None, out=None):
    _no_out(out, "linalg.pinv")
    if not isinstance(A, Tensor) or A.ndim < 2 or A.dtype not in _REAL:
        d = f"{short_name(A.dtype)}{{{list(A.shape)}}}" if isinstance(A, Tensor) else type(A).__name__
        raise RuntimeError(f"linalg.pinv({d}): expected a tensor with 2 or more dimensions of float, double, cfloat "
                           "or cdouble types")
    atol, rtol = _legacy_tol("linalg_pinv", rcond, atol, rtol)
    return A.mT * 0 if A.numel() == 0 else _pinv(A, atol, rtol, hermitian)[0]


def matrix_rank(A, tol=None, hermitian=False, *, atol=None, rtol=None, out=None):
    """torch.linalg.matrix_rank: the singular values (|eigenvalues| when hermitian) above the cut-off (int64)."""
    _no_out(out, "linalg.matrix_rank")
    _need(A, "linalg_matrix_rank", "input", 1)
    if A.ndim < 2:
        raise RuntimeError("torch.linalg.matrix_rank: The input tensor input must have at least 2 dimensions.")
    if A.dtype not in _REAL:
        raise RuntimeError("This function doesn't handle types other than float and double")
    atol, rtol = _legacy_tol("linalg_matrix_rank", tol, atol, rtol)
    xp, a = A.xp, A._data
    if 0 in a.shape[-2:]:
        return Tensor(xp.zeros(a.shape[:-2], np.int64))
    S = xp.abs(xp.linalg.eigvalsh(a)) if hermitian else xp.linalg.svd(a, compute_uv=False)
    return Tensor((S > _cutoff(A, atol, rtol, S)).sum(-1).astype(np.int64))


LstsqResult = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])


def lstsq(A, B, rcond=None, *, driver=None):
    """torch.linalg.lstsq. Every driver computes the minimum-norm solution through the SVD, singular values at most
    rcond * max(S) cut (gels: none); what each returns besides follows PyTorch (CPU default gelsy, CUDA gels)."""
    _need(A, "linalg_lstsq", "self", 1)
    _need(B, "linalg_lstsq", "b", 2)
    pre = "torch.linalg.lstsq: "
    if A.ndim < 2:
        raise RuntimeError(pre + "input must have at least 2 dimensions.")
    if B.ndim < 1:
        raise RuntimeError(pre + "other must have at least 1 dimension.")
    if A.dtype != B.dtype:
        raise RuntimeError(f"{pre}Expected input and other to have the same dtype, but got input's dtype "
                           f"{short_name(A.dtype)} and other's dtype {short_name(B.dtype)}")
    vector = A.ndim - B.ndim == 1
    if not 0 <= A.ndim - B.ndim <= 1:
        raise RuntimeError(pre + "input.dim() must be greater or equal to other.dim() and (input.dim() - other.dim()) "
                                 "<= 1")
    Bm = B.unsqueeze(-1) if vector else B
    m, n = A.shape[-2:]
    if Bm.shape[-2] != m:
        raise RuntimeError(f"{pre}input.size(-2) should match other.size({-1 if vector else -2})")
    if A.dtype not in _REAL:
        raise RuntimeError("This function doesn't handle types other than float and double")
    driver = driver or ("gels" if A.is_cuda else "gelsy")
    if driver not in ("gels", "gelsy", "gelsd", "gelss"):
        raise RuntimeError(pre + "parameter `driver` should be one of (gels, gelsy, gelsd, gelss)")
    if A.is_cuda and driver != "gels":
        raise RuntimeError(pre + "`driver` other than `gels` is not supported on CUDA")
    eps = float(np.finfo(A.dtype).eps)
    rc = eps * max(m, n) if rcond is None else (rcond if rcond >= 0 else eps)  # NOTE: LAPACK: rcond < 0 means eps
    batch = _bshape(A.shape[:-2], Bm.shape[:-2])
    A, Bm = A.expand(batch + (m, n)), Bm.expand(batch + tuple(Bm.shape[-2:]))
    # NOTE: gels assumes full rank (no cut-off); the gradient is PyTorch's (pinv_backward and pinv(A)^T gX)
    P, (s, keep) = _pinv(A, 0.0, 0.0 if driver == "gels" else rc)
    X, xp = P @ Bm, A.xp
    empty = Tensor(xp.zeros((0,), A.dtype))
    rank = Tensor(xp.zeros((0,), np.int64)) if driver == "gels" else Tensor(keep.sum(-1).astype(np.int64))
    full = driver == "gels" or bool((rank._data == n).all())
    res = ((A @ X - Bm) ** 2).sum(-2) if m > n and driver != "gelsy" and full else empty
    return LstsqResult(X.squeeze(-1) if vector else X, res, rank, Tensor(s.copy()) if driver in ("gelsd", "gelss") else empty)


@quiet
def _subst(t, b, upper):
    """Row-by-row substitution on triangular t (..., n, n): zeros on the diagonal give inf/nan, as PyTorch's trsm."""
    n, xp = t.shape[-1], xp_of(t)  # NOTE: on t's device (CuPy's solve raises LinAlgError under cupyx.errstate)
    x = xp.zeros(_bshape(t.shape[:-2], b.shape[:-2]) + b.shape[-2:], xp.result_type(t, b))
    for i in range(n - 1, -1, -1) if upper else range(n):
        s = slice(i + 1, n) if upper else slice(0, i)
        x[..., i, :] = (b[..., i, :] - (t[..., i, None, s] @ x[..., s, :])[..., 0, :]) / t[..., i, i, None]
    return x


class _TriSolve(Solve):
    """Solve for a triangular A (Solve's gradient); a singular A gives inf/nan instead of an error."""

    def forward(self, a, b, upper):
        try:
            return xp_of(a).linalg.solve(a, b)
        except np.linalg.LinAlgError:
            return _subst(a, b, upper)


def _tri_solve(M, B, upper):
    n, batch = M.shape[-1], _bshape(M.shape[:-2], B.shape[:-2])
    return _TriSolve.apply(M.expand(batch + (n, n)), B.expand(batch + tuple(B.shape[-2:])), upper=bool(upper))


def solve_triangular(A, B, *, upper, left=True, unitriangular=False, out=None):
    _no_out(out, "linalg.solve_triangular")
    _need(A, "linalg_solve_triangular", "input", 1)
    _need(B, "linalg_solve_triangular", "B", 2)
    if A.dtype not in _REAL:
        raise NotImplementedError(f"\"triangular_solve_{'cuda' if A.is_cuda else 'cpu'}\" not implemented for "
                                  f"'{short_name(A.dtype)}'")
    B = B.type(A.dtype)  # NOTE: PyTorch casts B to A's dtype here (linalg.solve refuses mixed dtypes)
    _square_shape(A, "linalg.solve_triangular")
    if B.ndim < 2:
        raise RuntimeError("linalg.solve_triangular: The input tensor B must have at least 2 dimensions.")
    n, (r, c) = A.shape[-1], B.shape[-2:]
    if (r if left else c) != n:
        raise RuntimeError(f"linalg.solve_triangular: Incompatible shapes of A and B for the equation "
                           f"{'AX' if left else 'XA'} = B ({n}x{n} and {r}x{c})")
    if not left:
        return solve_triangular(A.mT, B.mT, upper=not upper, unitriangular=unitriangular).mT
    tri = triu if upper else tril
    M = tri(A, (1 if upper else -1)) + _eye_like(A) if unitriangular else tri(A, 0)
    return _tri_solve(M, B, upper)


class MatrixExp(Primitive):
    """exp(A) by scaling and squaring with the [13/13] Pade approximant (Higham 2005); PyTorch's backward: the
    top-right block of exp([[A^T, G], [0, A^T]])."""
    saves = None

    def forward(self, a):
        return _expm(a)

    def backward(self, g):
        (a,) = self.values()
        n, at = a.shape[-1], _mT(a)
        z = _const(self, xp_of(_arr(a)).zeros(a.shape, _arr(a).dtype))
        big = _cat(self, [_cat(self, [at, g], -1), _cat(self, [z, at], -1)], -2)
        return self.call(MatrixExp, big)[..., :n, n:]


_PADE13 = (64764752532480000., 32382376266240000., 7771770303897600., 1187353796428800., 129060195264000.,
           10559470521600., 670442572800., 33522128640., 1323241920., 40840800., 960960., 16380., 182., 1.)


def _expm(a):
    xp, dt = xp_of(a), a.dtype
    if a.size == 0:
        return a.copy()
    a = a.astype(np.float64)  # NOTE: float32 computes in float64 and rounds once
    nrm = xp.abs(a).sum(-2).max(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = xp.ceil(xp.log2(nrm / 5.371920351148152))
    s = xp.where(xp.isfinite(s) & (s > 0), s, 0).astype(np.int64)
    a = a * (0.5 ** s)[..., None, None]
    b, eye = _PADE13, xp.eye(a.shape[-1])
    a2 = a @ a
    a4 = a2 @ a2
    a6 = a4 @ a2
    u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 + b[3] * a2 + b[1] * eye)
    v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 + b[0] * eye
    r = xp.linalg.solve(v - u, v + u)
    for k in range(int(s.max()) if s.size else 0):
        r = xp.where((k < s)[..., None, None], r @ r, r)
    return r.astype(dt, copy=False)


def matrix_exp(A):
    _check_square(A, "linalg.matrix_exp")
    return MatrixExp.apply(A)


# -- LU (LAPACK getrf in array code: NumPy has none; the same loop runs on CuPy) ------------------------------
def _getrf(a, pivot=True):
    """(LU packed, 1-based int32 pivots, int32 info = first zero pivot) of (..., m, n), as LAPACK's getrf."""
    xp = xp_of(a)
    shape, (m, n) = a.shape, a.shape[-2:]
    k = min(m, n)
    a = a.reshape((-1, m, n)).copy()
    nb = a.shape[0]
    r = xp.arange(nb)
    piv, info = xp.empty((nb, k), np.int32), xp.zeros(nb, np.int32)
    for j in range(k):
        p = j + xp.argmax(xp.abs(a[:, j:, j]), axis=-1) if pivot else xp.full(nb, j)
        piv[:, j] = p + 1
        row = a[r, p].copy()
        a[r, p] = a[:, j]
        a[:, j] = row
        d = a[:, j, j]
        z = d == 0
        info = xp.where((info == 0) & z, j + 1, info)
        # NOTE: a zero pivot leaves its column (all zero when pivoting) unscaled, as getrf
        a[:, j + 1:, j] /= xp.where(z, 1, d)[:, None]
        a[:, j + 1:, j + 1:] -= a[:, j + 1:, j, None] * a[:, j, None, j + 1:]
    return a.reshape(shape), piv.reshape(shape[:-2] + (k,)), info.reshape(shape[:-2])


def _pmat(piv, m, dt):
    """P (..., m, m) with A = P L U, from LAPACK's row interchanges."""
    xp = xp_of(piv)
    b = piv.reshape((-1, piv.shape[-1])).astype(np.int64) - 1
    perm, r = xp.tile(xp.arange(m), (b.shape[0], 1)), xp.arange(b.shape[0])
    for j in range(b.shape[1]):
        t = perm[r, b[:, j]].copy()
        perm[r, b[:, j]] = perm[:, j]
        perm[:, j] = t
    return _mT(xp.eye(m, dtype=dt)[perm.reshape(piv.shape[:-1] + (m,))])


class LUFactor(Primitive):
    """The packed LU factor (pivots and info go to ``box``); PyTorch's lu_factor_ex_backward (linalg_lu_backward)."""
    save_output = True
    saves = ()

    def forward(self, a, pivot, box):
        y, self.piv, info = _getrf(a, pivot)
        self.pivot = pivot
        box[:] = [self.piv, info]
        return y

    def backward(self, g):
        LU = self.result()
        m, n = LU.shape[-2:]
        k, xp, dt = min(m, n), xp_of(_arr(LU)), _arr(LU).dtype

        def tri(x, d, up):
            return self.call(Tri, x, k=d, upper=up)
        L = tri(LU[..., :, :k], -1, False) + _const(self, xp.eye(m, k, dtype=dt))
        U = tri(LU[..., :k, :], 0, True)
        gL, gU = g[..., :, :k], g[..., :k, :]
        if m <= n:  # NOTE: the wide case; the square one is the same formula without U2
            X = tri(_mT(L) @ gL - tri(gU, 0, True) @ _mT(U), -1, False)
            X = _mT(self.call(Solve, U[..., :, :k], _mT(X))) + tri(gU[..., :, :k], 0, True)
            X = _cat(self, [X, gU[..., :, k:]], -1) if n > m else X
            X = self.call(Solve, _mT(L), X)
        else:
            X = tri(gU @ _mT(U) - _mT(L) @ tri(gL, -1, False), 0, True)
            X = self.call(Solve, _mT(L[..., :k, :]), X)
            X = _cat(self, [X + tri(gL[..., :k, :], -1, False), gL[..., k:, :]], -2)
            X = _mT(self.call(Solve, U, _mT(X)))
        return _const(self, _pmat(self.piv, m, dt)) @ X if self.pivot else X


LUFactorResult = namedtuple("linalg_lu_factor", ["LU", "pivots"])
LUFactorExResult = namedtuple("linalg_lu_factor_ex", ["LU", "pivots", "info"])
LUResult = namedtuple("linalg_lu", ["P", "L", "U"])


def lu_factor_ex(A, *, pivot=True, check_errors=False, out=None):
    _no_out(out, "linalg.lu_factor_ex")
    _need(A, "linalg_lu_factor_ex", "A", 1)
    if A.ndim < 2:
        raise RuntimeError(f"torch.lu_factor: Expected tensor with 2 or more dimensions. Got size: {list(A.shape)} "
                           "instead")
    if A.dtype not in _REAL:
        raise NotImplementedError(f"\"lu_{'cuda' if A.is_cuda else 'cpu'}\" not implemented for '{short_name(A.dtype)}'")
    if not pivot and not A.is_cuda:
        raise RuntimeError("linalg.lu_factor: LU without pivoting is not implemented on the CPU")
    box = []
    LU = LUFactor.apply(A, pivot=bool(pivot), box=box)
    # NOTE: copies: the box arrays are also the op's recorded parameters, so gg.compile would bake them in as
    # constants; fresh arrays are tensors made outside the recorded ops, which it refuses when they feed a step
    piv, info = Tensor(box[0].copy()), Tensor(box[1].copy())
    if check_errors:
        _check_info(info, "torch.linalg.lu_factor_ex", _LU_TEXT.format, RuntimeError)
    return LUFactorExResult(LU, piv, info)


def lu_factor(A, *, pivot=True, out=None):
    _no_out(out, "linalg.lu_factor")
    LU, piv, info = lu_factor_ex(A, pivot=pivot)
    _check_info(info, "torch.linalg.lu_factor", _LU_TEXT.format, RuntimeError)
    return LUFactorResult(LU, piv)


def lu(A, *, pivot=True, out=None):
    """torch.linalg.lu: P, L (unit lower, m x k), U (k x n) with A = P L U, differentiable through the packed LU."""
    _no_out(out, "linalg.lu")
    LU, piv, _ = lu_factor_ex(A, pivot=pivot)
    m, n = A.shape[-2:]
    k = min(m, n)
    L = tril(LU[..., :, :k], -1) + Tensor(A.xp.eye(m, k, dtype=A.dtype))
    P = Tensor(_pmat(piv._data, m, A.dtype)) if pivot else Tensor(A.xp.zeros((0,), A.dtype))
    return LUResult(P, L, triu(LU[..., :k, :]))


def lu_solve(LU, pivots, B, *, left=True, adjoint=False, out=None):
    """torch.linalg.lu_solve as two triangular solves (differentiable in LU and B)."""
    _no_out(out, "linalg.lu_solve")
    _check_square(LU, "torch.linalg.lu_solve")
    _need(pivots, "linalg_lu_solve", "pivots", 2)
    _need(B, "linalg_lu_solve", "B", 3)
    n = LU.shape[-1]
    if B.ndim < 2:
        raise RuntimeError("linalg.lu_solve: The input tensor B must have at least 2 dimensions.")
    if LU.dtype != B.dtype:
        raise RuntimeError(f"linalg.lu_solve: Expected LU and B to have the same dtype, but found LU of type "
                           f"{short_name(LU.dtype)} and B of type {short_name(B.dtype)} instead")
    if pivots.dtype != np.int32:
        raise RuntimeError("linalg.lu_solve: pivots should be a Tensor of scalar type torch.int32")
    if pivots.ndim < 1 or pivots.shape[-1] != n:
        raise RuntimeError("linalg.lu_solve: Number of pivots per batch should be same as the dimension of the matrix")
    if tuple(pivots.shape) != tuple(LU.shape[:-1]):
        raise RuntimeError(f"linalg.lu_solve: Expected LU.shape[:-1] and pivots.shape to be the same, but got pivots "
                           f"with shape {list(pivots.shape)} instead")
    r, c = B.shape[-2:]
    if (r if left else c) != n:
        raise RuntimeError(f"linalg.lu_solve: Incompatible shapes of A and B for the equation {'AX' if left else 'XA'}"
                           f" = B ({n}x{n} and {r}x{c})")
    if not left:  # NOTE: X A = B is A^T X^T = B^T
        return lu_solve(LU, pivots, B.mT, adjoint=not adjoint).mT
    batch = _bshape(LU.shape[:-2], B.shape[:-2])
    LU, B = LU.expand(batch + (n, n)), B.expand(batch + (r, c))
    P = Tensor(_pmat(LU.xp.broadcast_to(pivots._data, batch + (n,)), n, LU.dtype))
    L, U = tril(LU, -1) + _eye_like(LU), triu(LU)
    if adjoint:  # NOTE: A^T = U^T L^T P^T; P @ (inf/nan of a singular A) must not warn
        with np.errstate(invalid="ignore"):
            return P @ _tri_solve(L.mT, _tri_solve(U.mT, B, False), True)
    return _tri_solve(U, _tri_solve(L, P.mT @ B, False), True)


# -- the *_ex variants: info instead of an error ------------------------------------------------------------------
InvExResult = namedtuple("linalg_inv_ex", ["inverse", "info"])
CholeskyExResult = namedtuple("linalg_cholesky_ex", ["L", "info"])
SolveExResult = namedtuple("linalg_solve_ex", ["result", "info"])


def inv_ex(A, *, check_errors=False, out=None):
    """torch.linalg.inv_ex: linalg.inv when A is invertible, else LU and two solves (inf/nan, as PyTorch's)."""
    _no_out(out, "linalg.inv_ex")
    _check_square(A, "linalg.inv")
    try:
        Y = Inv.apply(A)
        if _finite(Y):
            return InvExResult(Y, _info0(A, A.shape[:-2]))
    except LinAlgError:
        pass
    LU, piv, info = lu_factor_ex(A)
    if check_errors:
        _check_info(info, "linalg.inv_ex", _INV_TEXT.format)
    return InvExResult(lu_solve(LU, piv, _eye_like(A)), info)


def solve_ex(A, B, *, left=True, check_errors=False, out=None):
    _no_out(out, "linalg.solve_ex")
    try:
        X = solve(A, B, left=left)
        if _finite(X):
            return SolveExResult(X, _info0(A, _bshape(A.shape[:-2], X.shape[:-1 if X.ndim < A.ndim else -2])))
    except LinAlgError:
        pass
    vector = left and (B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1])))
    Bm = B.unsqueeze(-1) if vector else (B if left else B.mT)
    n, A = A.shape[-1], A if left else A.mT  # NOTE: X A = B: the LU of A^T, as PyTorch
    LU, piv, info = lu_factor_ex(A.expand(_bshape(A.shape[:-2], Bm.shape[:-2]) + (n, n)))
    if check_errors:
        _check_info(info, "torch.linalg.solve_ex", lambda i: "The solver failed because the input matrix is singular.")
    X = lu_solve(LU, piv, Bm)
    return SolveExResult(X.squeeze(-1) if vector else (X if left else X.mT), info)


@quiet
def _potf2(a):
    """LAPACK potf2 (lower) over a batch: stops at the first non-positive pivot, stores it, leaves the rest."""
    xp = xp_of(a)
    a = xp.tril(a)
    info = xp.zeros(a.shape[:-2], np.int32)
    for j in range(a.shape[-1]):
        live = info == 0
        d = a[..., j, j] - (a[..., j, :j] ** 2).sum(-1)
        bad = live & ~(d > 0)
        info = xp.where(bad, j + 1, info)
        a[..., j, j] = xp.where(live, xp.where(bad, d, xp.sqrt(xp.abs(d))), a[..., j, j])
        col = (a[..., j + 1:, j] - (a[..., j + 1:, :j] @ a[..., j, :j, None])[..., 0]) / a[..., j, j, None]
        a[..., j + 1:, j] = xp.where((info == 0)[..., None], col, a[..., j + 1:, j])
    return a, info


class CholeskyEx(Cholesky):
    def forward(self, a, box):
        y, info = _potf2(a)
        box[:] = [info]
        return y


def cholesky_ex(A, *, upper=False, check_errors=False, out=None):
    _no_out(out, "linalg.cholesky_ex")
    _check_square(A, "linalg.cholesky")
    if upper:
        L, info = cholesky_ex(A.mT, check_errors=check_errors)
        return CholeskyExResult(L.mT, info)
    try:
        L = Cholesky.apply(A)
        if _finite(L):
            return CholeskyExResult(L, _info0(A, A.shape[:-2]))
    except LinAlgError:
        pass
    box = []
    L = CholeskyEx.apply(A, box=box)
    if check_errors:
        _check_info(box[0], "linalg.cholesky_ex", _CHOL_TEXT.format)
    return CholeskyExResult(L, Tensor(box[0].copy()))  # NOTE: a copy, as in lu_factor_ex


# -- built from the above ------------------------------------------------------------------------------------------
def cond(A, p=None, *, out=None):
    """torch.linalg.cond: S_max / S_min for p in (None, 2, -2) (any shape), else norm(A, p) * norm(inv(A), p) with
    inf for a singular A."""
    _no_out(out, "linalg.cond")
    _need(A, "linalg_cond", "input", 1)
    if A.ndim < 2:
        raise RuntimeError("linalg.cond: The input tensor must have at least 2 dimensions.")
    ok = p in ("fro", "nuc") if isinstance(p, str) else p is None or p in (1, -1, 2, -2, math.inf, -math.inf)
    if not ok:
        raise RuntimeError(f"linalg.cond got an invalid norm type: {p}")
    if p is None or p in (2, -2):
        _check_float(A, "linalg.svd")
        if A.numel() == 0:
            return Tensor(A.xp.zeros(tuple(A.shape[:-2]), A.dtype))
        S = svdvals(A)
        return S[..., -1] / S[..., 0] if p == -2 else S[..., 0] / S[..., -1]
    _square_shape(A, f"linalg.cond(ord={p if isinstance(p, str) else format(p, 'g')})")
    _check_float(A, "linalg.inv")
    if A.numel() == 0:
        return Tensor(A.xp.zeros(tuple(A.shape[:-2]), A.dtype))
    Y, info = inv_ex(A)
    bad = info._data > 0  # NOTE: a singular A: inf, as PyTorch (0 * inf would be nan)
    Y = _tensor.where(Tensor(bad[..., None, None]), 1.0, Y) if bad.any() else Y
    y = matrix_norm(A, p) * matrix_norm(Y, p)
    return _tensor.where(Tensor(bad), math.inf, y) if bad.any() else y


def vander(x, *, N=None):
    _need(x, "linalg_vander", "x", 1)
    if x.dtype == np.bool_ or x.dtype.kind not in "iuf" or x.dtype in _LOWP:
        raise RuntimeError(f"linalg.vander supports floating point, complex, and integer tensors, but got "
                           f"{short_name(x.dtype)}")
    x = x.unsqueeze(-1) if x.ndim == 0 else x
    n = x.shape[-1] if N is None else N
    if n <= 1:
        raise RuntimeError("N must be greater than 1.")
    y = x.unsqueeze(-1).expand(tuple(x.shape) + (n - 1,)).cumprod(-1)  # NOTE: integers become int64, as cumprod
    return _tensor.cat([Tensor(x.xp.ones(tuple(x.shape) + (1,), y.dtype)), y], -1)


def tensorinv(A, ind=2, *, out=None):
    _no_out(out, "linalg.tensorinv")
    _need(A, "linalg_tensorinv", "input", 1)
    if ind <= 0:
        raise RuntimeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    a, b = int(np.prod(A.shape[:ind])), int(np.prod(A.shape[ind:]))
    if a != b:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[ind:]) == "
                           f"prod(self.shape[:ind]), but got {b} != {a}")
    _check_float(A, "linalg.inv")
    Y, info = inv_ex(A.reshape((a, a)))
    _check_info(info, "inv", _INV_TEXT.format)
    return Y.reshape(tuple(A.shape[ind:]) + tuple(A.shape[:ind]))


def tensorsolve(A, B, dims=None, *, out=None):
    _no_out(out, "linalg.tensorsolve")
    _need(A, "linalg_tensorsolve", "input", 1)
    _need(B, "linalg_tensorsolve", "other", 2)
    if dims is not None:
        dims = [dims] if isinstance(dims, int) else list(dims)
        A = A.movedim(dims, list(range(A.ndim - len(dims), A.ndim)))
    rs = tuple(A.shape[B.ndim:])
    rp, op = int(np.prod(rs)), int(np.prod(B.shape))
    if rp != op:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[other.ndim:]) == "
                           f"prod(self.shape[:other.ndim]), but got {rp} != {op}")
    return solve(A.reshape((rp, rp)), B.reshape((-1,))).reshape(rs)


def householder_product(A, tau, *, out=None):
    """torch.linalg.householder_product: the first n columns of H_1 ... H_k, H_i = I - tau_i v_i v_i^T."""
    _no_out(out, "linalg.householder_product")
    _need(A, "linalg_householder_product", "input", 1)
    _need(tau, "linalg_householder_product", "tau", 2)
    pre = "torch.linalg.householder_product: "
    if A.ndim < 2:
        raise RuntimeError(pre + "input must have at least 2 dimensions.")
    m, n = A.shape[-2:]
    if m < n:
        raise RuntimeError(pre + "input.shape[-2] must be greater than or equal to input.shape[-1]")
    if tau.ndim == 0:
        raise IndexError("Dimension specified as -1 but tensor has no dimensions")
    if n < tau.shape[-1]:
        raise RuntimeError(pre + "input.shape[-1] must be greater than or equal to tau.shape[-1]")
    if A.ndim - tau.ndim != 1:
        raise RuntimeError(f"{pre}Expected tau to have one dimension less than input, but got tau.ndim equal to "
                           f"{tau.ndim} and input.ndim is equal to {A.ndim}")
    if tuple(tau.shape[:-1]) != tuple(A.shape[:-2]):
        raise RuntimeError(f"{pre}Expected batch dimensions of tau to be equal to input.shape[:-2], but got "
                           f"{list(tau.shape[:-1])}")
    if tau.dtype != A.dtype:
        raise RuntimeError(f"{pre}tau dtype {short_name(tau.dtype)} does not match input dtype {short_name(A.dtype)}")
    if A.dtype not in _REAL:
        raise NotImplementedError(f"\"orgqr_{'cuda' if A.is_cuda else 'cpu'}\" not implemented for "
                                  f"'{short_name(A.dtype)}'")
    eye = Tensor(A.xp.broadcast_to(A.xp.eye(m, n, dtype=A.dtype), tuple(A.shape)).copy())
    V, Q = tril(A, -1) + eye, eye
    for i in reversed(range(tau.shape[-1])):
        v = V[..., :, i:i + 1]
        Q = Q - (tau[..., i:i + 1, None] * v) @ (v.mT @ Q)
    return Q


def _no_complex(A, fname):
    _check_square(A, fname)
    raise NotImplementedError(f"{fname}: complex tensors are not supported by gpugrad (the eigenvalues and "
                              "eigenvectors of a general real matrix are complex); use linalg.eigh for a symmetric one")


def eig(A, *, out=None):
    _no_complex(A, "linalg.eig")


def eigvals(A, *, out=None):
    _no_complex(A, "linalg.eigvals")


quiet_family(Einsum, Inv, Det, LogAbsDet, Solve, Cholesky, QR, Eigh, SVD, _TriSolve, MatrixExp, LUFactor, Pinv)


def inner(input, other):  # noqa: A002
    """torch.inner: the sum over the last dims (a product when either is 0-d)."""
    _need(input, "inner", "input", 1)
    _need(other, "inner", "other", 2)
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but got shapes "
                           f"{list(input.shape)} and {list(other.shape)}")
    return tensordot(input, other, ([-1], [-1]))


_tensor._la2 = _sys.modules[__name__]  # the Tensor methods reach this family through it (see tensor.py)


# -- issue 11 leftovers: ldl_factor / ldl_factor_ex / ldl_solve (Bunch-Kaufman, LAPACK ?sytrf / ?sytrs) ------------
LDLFactorResult = namedtuple("linalg_ldl_factor", ["LD", "pivots"])
LDLFactorExResult = namedtuple("linalg_ldl_factor_ex", ["LD", "pivots", "info"])


def _lapack(A, fname, which):
    """scipy.linalg.lapack's ?sytrf / ?sytrs for A's dtype; a clear error on CuPy or without SciPy."""
    if A.xp is not np:
        raise NotImplementedError(f"{fname}: not supported on CUDA tensors by gpugrad (CuPy has no Bunch-Kaufman "
                                  "factorization); move the tensors to the CPU")
    try:
        from scipy.linalg import lapack  # noqa: PLC0415
    except ImportError:
        raise RuntimeError(f"{fname} needs SciPy (scipy.linalg.lapack.?{which}, LAPACK's Bunch-Kaufman "
                           "factorization) on the CPU: pip install scipy") from None
    return getattr(lapack, ("s" if A.dtype == np.float32 else "d") + which)


def ldl_factor_ex(A, *, hermitian=False, check_errors=False, out=None):
    """LD (the packed L and block-diagonal D of A = L D L^T, LAPACK's lower ?sytrf layout, upper triangle zero),
    pivots (LAPACK's 1-based int32 ipiv, negative for 2x2 blocks) and info. Not differentiable, as PyTorch's:
    LD requires grad when A does and its backward raises."""
    _no_out(out, "linalg.ldl_factor_ex")
    fname = "torch.linalg.ldl_factor_ex"
    _need(A, "linalg_ldl_factor_ex", "A", 1)
    if not _isf(A.dtype):
        raise RuntimeError(f"{fname}: Expected a floating point or complex tensor as input. Got {short_name(A.dtype)}")
    _square_shape(A, fname)
    if A.dtype not in (np.float32, np.float64):
        raise NotImplementedError(f"\"ldl_factor_kernel_{'cuda' if A.is_cuda else 'cpu'}\" not implemented for "
                                  f"'{short_name(A.dtype)}'")
    sytrf = _lapack(A, fname, "sytrf")
    batch, n = tuple(A.shape[:-2]), A.shape[-1]
    a = A._data.reshape((math.prod(batch), n, n))
    ld, piv, info = np.zeros_like(a), np.zeros(a.shape[:2], np.int32), np.zeros(a.shape[0], np.int32)
    for i in range(a.shape[0]):
        if n:  # NOTE: hermitian is sytrf for real input (hetrf = sytrf)
            lu, ip, inf = sytrf(a[i], lower=1)
            ld[i], piv[i], info[i] = np.tril(lu), ip, inf
    LD = _math_nograd().apply(A, fn=lambda _: ld.reshape(A.shape), opname="linalg_ldl_factor_ex")
    info_t = Tensor(info.reshape(batch))
    if check_errors:
        _check_info(info_t, fname, lambda k: f"Unknown error code: {k}.", RuntimeError)
    return LDLFactorExResult(LD, Tensor(piv.reshape(batch + (n,))), info_t)


def _math_nograd():
    from . import math as _m  # noqa: PLC0415
    return _m.NoGrad


def ldl_factor(A, *, hermitian=False, out=None):
    """torch.linalg.ldl_factor: ldl_factor_ex, raising for a singular D (info > 0) as PyTorch does (its message)."""
    _no_out(out, "linalg.ldl_factor")
    LD, piv, info = ldl_factor_ex(A, hermitian=hermitian)
    _check_info(info, "torch.linalg.ldl_factor", lambda k: f"Unknown error code: {k}.", RuntimeError)
    return LDLFactorResult(LD, piv)


def ldl_solve(LD, pivots, B, *, hermitian=False, out=None):
    """X with A X = B from ldl_factor's (LD, pivots) (LAPACK ?sytrs), batch dims broadcast. Not differentiable."""
    _no_out(out, "linalg.ldl_solve")
    fname = "torch.linalg.ldl_solve"
    _need(LD, "linalg_ldl_solve", "LD", 1)
    _need(B, "linalg_ldl_solve", "B", 3)
    _square_shape(LD, fname)
    if B.ndim < 2:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-max(B.ndim, 1)}, "
                         f"{max(B.ndim, 1) - 1}], but got -2)")
    if B.dtype != LD.dtype:
        raise RuntimeError(f"Expected b and A to have the same dtype, but found b of type {short_name(B.dtype)} and A "
                           f"of type {short_name(LD.dtype)} instead.")
    n = LD.shape[-1]
    if B.shape[-2] != n:
        raise RuntimeError(f"Incompatible matrix sizes for {fname}: each A matrix is {n} by {n} but each b matrix is "
                           f"{B.shape[-2]} by {B.shape[-1]}")
    if tuple(pivots.shape) != tuple(LD.shape[:-1]):
        raise RuntimeError(f"{fname}: Expected LD.shape[:-1] and pivots.shape to be the same, but got pivots with "
                           f"shape {list(pivots.shape)} instead")
    if LD.dtype not in (np.float32, np.float64):
        raise NotImplementedError(f"\"ldl_solve_{'cuda' if LD.is_cuda else 'cpu'}\" not implemented for "
                                  f"'{short_name(LD.dtype)}'")
    sytrs = _lapack(LD, fname, "sytrs")
    for t in (pivots, B):  # NOTE: LD is on the CPU (checked above): host arrays only below
        _tensor._check_same_device(LD, t, fname)
    batch = _bshape(LD.shape[:-2], B.shape[:-2])
    k = math.prod(batch)
    ld = np.broadcast_to(LD._data, batch + (n, n)).reshape((k, n, n))
    pv = np.broadcast_to(pivots._data.astype(np.int32), batch + (n,)).reshape((k, n))
    b = np.broadcast_to(B._data, batch + tuple(B.shape[-2:])).reshape((k,) + tuple(B.shape[-2:]))
    x = np.zeros(b.shape, LD.dtype)
    for i in range(x.shape[0]):
        if n and b.shape[-1]:
            x[i] = sytrs(ld[i], pv[i], b[i], lower=1)[0]
    return _math_nograd().apply(LD, B, fn=lambda *_: x.reshape(batch + tuple(B.shape[-2:])), opname="linalg_ldl_solve")
