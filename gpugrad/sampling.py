"""Random sampling, PyTorch's names: ``gg.bernoulli``, ``gg.multinomial``, ``gg.poisson`` and the Tensor methods
``bernoulli``, ``multinomial`` and the in-place fills ``bernoulli_``, ``random_``, ``exponential_``,
``geometric_``, ``cauchy_``, ``log_normal_``.

Every draw comes from the generator of the tensor's device (``generator=``, a gg.Generator, or the device's
default one, seeded by gg.manual_seed: see random.py) through that generator's array module, so the same code
runs on NumPy and CuPy. The streams differ from PyTorch's for the same seed, as gg.rand's do.

Autograd as PyTorch: ``bernoulli(p)`` and ``poisson(rates)`` give a result that requires grad when the input does,
with a zero gradient; ``bernoulli(x, p_float)`` too, but its backward raises PyTorch's "derivative ... is not
implemented"; the in-place fills write through ``copy_`` (version bumped, a leaf that requires grad refused, a
zero gradient for the overwritten values, and for a Tensor ``p`` of ``bernoulli_``); ``multinomial`` gives int64.
"""
from __future__ import annotations

import math
import numbers
import operator
import warnings

import numpy as np

from . import random as _random
from ._dtypes import is_float as _isf
from ._errors import not_a_tensor
from ._promotion import cpp_name, short_name
from .autograd.primitive import recorded
from .backend import xp_of
from .ops.elementwise import Sampled
from .ops.math import NoGrad
from .tensor import Tensor

__all__ = ["bernoulli", "multinomial", "poisson"]

# float dtype -> (mantissa digits: random_'s exact integer range is [-2**d, 2**d], largest finite value)
_FLOATS = {"float16": (11, 65504.0), "bfloat16": (8, 3.3895313892515355e38), "float32": (24, 3.4028234663852886e38),
           "float64": (53, 1.7976931348623157e308)}
_P_RANGE = ("Expected p_in >= 0 && p_in <= 1 to be true, but got false.  (Could this error message be improved?  "
            "If so, please report an enhancement request to PyTorch.)")
_POISSON_MAX = 9.2e18  # NOTE: a larger rate's samples overflow int64: PyTorch returns -2**63 there, we raise


def _need(x, fname):
    if not isinstance(x, Tensor):
        if type(x).__module__.split(".")[0] in ("numpy", "torch", "cupy"):
            raise not_a_tensor(x, fname)
        raise TypeError(f"{fname}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")


def _real(v, fname, name):
    """A float argument, as PyTorch's parser takes it (a number, a bool, or a 0-d Tensor)."""
    if isinstance(v, Tensor) and v.ndim == 0:
        return float(v.item())
    if isinstance(v, numbers.Real):
        return float(v)
    raise TypeError(f"{fname}(): argument '{name}' must be float, not {type(v).__name__}")


def _int(v, fname, name):
    """An int argument: an integer (not a bool) or a 0-d integer Tensor, within int64."""
    if isinstance(v, Tensor) and v.ndim == 0 and v.dtype.kind in "iu":
        v = int(v.item())
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{fname}(): argument '{name}' must be int, not bool")
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError(f"{fname}(): argument '{name}' must be int, not {type(v).__name__}") from None
    if not -(1 << 63) <= v < (1 << 63):
        raise ValueError("Overflow when unpacking long long")
    return v


def _work(dt):
    """The float dtype a draw is made in: float64 for float64, else float32 (PyTorch's opmath type)."""
    return np.float64 if dt == np.float64 else np.float32


@recorded
def _draw(sampler, ref, arg, generator):
    """``sampler(g, xp, shape, dtype, arg)``: a Tensor of ref's shape and dtype (no graph) drawn from
    ``generator`` with ref's array module. NOTE: recorded, so gg.compile draws anew on every replay, as eager."""
    g = _random.rng(generator, ref.device)
    with np.errstate(all="ignore"):  # NOTE: float16 overflow to inf is PyTorch's result too
        return Tensor(sampler(g, ref.xp, tuple(ref.shape), ref.dtype, arg))


# -- the samplers: (generator, array module, shape, dtype, parameter) -> array ---------------------------------
def _s_bernoulli(g, xp, shape, dt, p):
    if isinstance(p, Tensor):
        w = _work(p.dtype)
        return (g.random(shape, dtype=w) < p._data.astype(w)).astype(dt)
    return (g.random(shape, dtype=_work(dt)) < p).astype(dt)


def _s_poisson(g, xp, shape, dt, rates):
    return g.poisson(rates._data.astype(np.float64), size=shape).astype(dt)


def _s_integers(g, xp, shape, dt, bounds):
    lo, hi = bounds  # NOTE: inclusive; hi + 1 may be 2**63 (int64's whole range), which numpy takes
    return g.integers(lo, hi + 1, size=shape).astype(dt)


def _s_exponential(g, xp, shape, dt, lambd):
    return (g.standard_exponential(shape, dtype=_work(dt)) / lambd).astype(dt)


def _s_geometric(g, xp, shape, dt, p):
    # NOTE: floor(log(U) / log(1 - p)) + 1 with U uniform in (0, 1]: PyTorch's support {1, 2, ...}; in float64
    k = xp.floor(xp.log(1.0 - g.random(shape)) / math.log1p(-p)) + 1.0
    if dt.kind in "iu":  # NOTE: counts past the integer dtype saturate (PyTorch's cast wraps them)
        k = xp.minimum(k, float(np.iinfo(dt).max))
    return k.astype(dt)


def _s_cauchy(g, xp, shape, dt, ms):
    median, sigma = ms
    w = _work(dt)
    return (median + sigma * xp.tan(w(math.pi) * (g.random(shape, dtype=w) - w(0.5)))).astype(dt)


def _s_log_normal(g, xp, shape, dt, ms):
    mean, std = ms
    return xp.exp(mean + std * g.standard_normal(shape, dtype=_work(dt))).astype(dt)


# -- bernoulli, poisson ----------------------------------------------------------------------------------------
def _check_p(p):
    if not 0 <= p <= 1:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p:g}")


def _check_probs(p):
    if not _isf(p.dtype):
        raise NotImplementedError(f"\"bernoulli_tensor_cpu_p_\" not implemented for '{short_name(p.dtype)}'")
    a = p._data
    if a.size and not bool(((a >= 0) & (a <= 1)).all()):
        raise RuntimeError(_P_RANGE)


def _last(*xs):
    return xs[-1]


def bernoulli(input, p=None, *, generator=None):  # noqa: A002
    """0/1 draws, each 1 with probability ``input[i]`` (``input`` a float Tensor of probabilities), or with
    probability ``p`` for every element (a float; then ``input`` gives only the shape and dtype). As
    torch.bernoulli: the result has input's dtype; it requires grad when input does, with a zero gradient
    (with ``p``, its backward raises PyTorch's error)."""
    _need(input, "bernoulli")
    if p is None:
        _check_probs(input)
        return Sampled.apply(input, value=_draw(_s_bernoulli, input, input, generator)._data)
    if isinstance(p, Tensor) or not isinstance(p, numbers.Real):
        raise TypeError(f"bernoulli() received an invalid combination of arguments - got (Tensor, "
                        f"{type(p).__name__}): p must be a float (a Tensor of probabilities is bernoulli(p) or "
                        "x.bernoulli_(p))")
    _check_p(float(p))
    # NOTE: the draw is an input (not a closure), so a gg.compile replay reads the fresh one
    return NoGrad.apply(input, _draw(_s_bernoulli, input, float(p), generator), fn=_last, opname="bernoulli")


def _bernoulli_(self, p=0.5, *, generator=None):
    """Fill with 0/1 draws, 1 with probability ``p``: a float, or a float Tensor broadcastable to self's shape."""
    if isinstance(p, Tensor):
        _check_probs(p)
        p.expand(self.shape)  # NOTE: PyTorch's broadcast errors
        return self.copy_(Sampled.apply(p, value=_draw(_s_bernoulli, self, p, generator)._data))
    p = _real(p, "bernoulli_", "p")
    _check_p(p)
    return self.copy_(_draw(_s_bernoulli, self, p, generator))


def poisson(input, generator=None):  # noqa: A002
    """Poisson counts with rates ``input`` (a float Tensor of non-negative rates), in input's dtype, as
    torch.poisson (the result requires grad when input does, with a zero gradient)."""
    _need(input, "poisson")
    if not _isf(input.dtype):
        raise NotImplementedError(f"\"poisson_cpu\" not implemented for '{short_name(input.dtype)}'")
    a = input._data.astype(np.float64)  # NOTE: compared in float64 (9.2e18 overflows float16)
    if a.size and not bool((a >= 0).all()):
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
    if a.size and bool((a > _POISSON_MAX).any()):
        raise RuntimeError(f"poisson: rates above {_POISSON_MAX:g} are not supported (their counts overflow int64)")
    return Sampled.apply(input, value=_draw(_s_poisson, input, input, generator)._data)


# -- multinomial -----------------------------------------------------------------------------------------------
@recorded
def _multinomial(input, n, replacement, generator):  # noqa: A002
    a = input._data
    xp = xp_of(a)
    if not _isf(a.dtype):
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: {short_name(a.dtype)}")
    if a.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if n <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    k = a.shape[-1]
    if not replacement and n > k:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    if k > 1 << 24:
        raise RuntimeError("number of categories cannot exceed 2^24")
    rows = math.prod(a.shape[:-1])
    if rows == 0:
        return Tensor(xp.zeros(a.shape[:-1] + (n,), dtype=np.int64))
    if k == 0:
        raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as the operation has no "
                           "identity.")
    # NOTE: float64 for the CDF (its sums need it), the input's opmath type for the keys of the race (as PyTorch)
    p = a.reshape(rows, k).astype(np.float64 if replacement else _work(a.dtype))
    if not bool((xp.isfinite(p) & (p >= 0)).all()):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    top = p.max(axis=1, keepdims=True)
    if not bool((top > 0).all()):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    g = _random.rng(generator, input.device)
    if replacement:
        # NOTE: inverse CDF for all rows in one searchsorted: row r's CDF (scaled to end at exactly 1) and its
        # uniforms are shifted by r, so the rows' bins follow each other on one sorted axis. A zero-probability
        # bin has zero width, and an index past the last positive bin (rounding) is clipped back to it.
        c = xp.cumsum(p / top, axis=1)
        c = c / c[:, -1:]
        off = xp.arange(rows, dtype=np.float64)[:, None]
        i = xp.searchsorted((c + off).ravel(), (g.random((rows, n)) + off).ravel(), side="right").reshape(rows, n)
        last = k - 1 - xp.argmax(p[:, ::-1] > 0, axis=1)
        out = xp.minimum(i - xp.arange(rows)[:, None] * k, last[:, None])
    else:
        # NOTE: the exponential race: the order of E_j / p_j (E_j ~ Exp(1)) is a draw without replacement; in log
        # space, where positive keys are below ~800 (float64; ~130 in float32). Zero-probability categories get
        # keys 2000 + E_j: drawn only once every positive one is, in random order, as PyTorch's CPU kernel does.
        e = g.standard_exponential((rows, k), dtype=p.dtype)
        pos = p > 0
        with np.errstate(divide="ignore"):
            key = xp.where(pos, xp.log(e) - xp.log(xp.where(pos, p, 1.0)), 2000.0 + e)
        if n < k:  # NOTE: the n smallest keys first (a partition), then their order
            part = xp.argpartition(key, n - 1, axis=1)[:, :n]
            out = xp.take_along_axis(part, xp.argsort(xp.take_along_axis(key, part, 1), axis=1), 1)
        else:
            out = xp.argsort(key, axis=1)
    return Tensor(out.astype(np.int64).reshape(a.shape[:-1] + (n,)))


def multinomial(input, num_samples, replacement=False, *, generator=None):  # noqa: A002
    """``num_samples`` category indices (int64) per row of ``input`` (1-D, or 2-D: one row per distribution),
    drawn with probabilities proportional to the row's non-negative weights, as torch.multinomial; without
    ``replacement`` a row never repeats an index."""
    _need(input, "multinomial")
    if isinstance(num_samples, Tensor) and num_samples.ndim == 0 and num_samples.dtype.kind in "iu":
        num_samples = int(num_samples.item())
    if isinstance(num_samples, (bool, np.bool_)) or not isinstance(num_samples, numbers.Integral):
        raise TypeError(f"multinomial(): argument 'num_samples' (position 2) must be int, not "
                        f"{type(num_samples).__name__}")
    return _multinomial(input, int(num_samples), bool(replacement), generator)


# -- the in-place fills ----------------------------------------------------------------------------------------
_RANDOM_FORMS = ("random_() received an invalid combination of arguments - got {}, but expected one of:\n"
                 " * (*, torch.Generator generator = None)\n"
                 " * (int from, int to, *, torch.Generator generator = None)\n"
                 " * (int to, *, torch.Generator generator = None)")


def _random_(self, *args, generator=None, **kw):
    """``random_()``, ``random_(to)``, ``random_(from, to)`` (``from`` is a keyword too; ``to=None``: no upper
    bound): integers uniform in [from, to), without ``to`` in [from, 2**digits] for a float dtype (float32:
    2**24, float64: 2**53, float16: 2**11, bfloat16: 2**8) and [from, max] for an integer dtype, as PyTorch."""
    got = dict(zip(("from", "to") if len(args) == 2 or (args and "to" in kw) else ("to",), args))
    if len(args) > 2 or set(kw) - {"from", "to"} or set(kw) & set(got) or ("from" in kw and "to" not in kw) or \
            args == (None,) and not kw:
        given = [type(a).__name__ for a in args] + [f"{k}={type(v).__name__}" for k, v in kw.items()]
        raise TypeError(_RANDOM_FORMS.format(f"({', '.join(given)})"))
    got.update(kw)
    try:
        frm, to = _int(got.get("from", 0), "random_", "from"), got.get("to")
        to = None if to is None else _int(to, "random_", "to")
    except TypeError:
        raise TypeError(_RANDOM_FORMS.format(f"({', '.join(type(v).__name__ for v in got.values())})")) from None
    dt = self.dtype
    fl = _FLOATS.get(dt.name) if _isf(dt) else None
    if to is not None:
        if frm >= to:
            raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={frm} >= to={to}")
        hi = to - 1
    else:
        hi = 1 if dt == np.bool_ else (1 << fl[0]) if fl else int(np.iinfo(dt).max)
    lo_ok, hi_ok = (-fl[1], fl[1]) if fl else (0, 1) if dt == np.bool_ else (np.iinfo(dt).min, np.iinfo(dt).max)
    if not lo_ok <= frm <= hi_ok:
        raise RuntimeError(f"from is out of bounds for {cpp_name(dt)}")
    if not lo_ok <= hi <= hi_ok:
        raise RuntimeError(f"to - 1 is out of bounds for {cpp_name(dt)}")
    if frm > hi:
        raise RuntimeError(f"random_ expects 'from' casted to dtype to be less than or equal to 'to_inc' casted to "
                           f"dtype, but got from={frm} > to_inc={hi}")
    if fl:  # NOTE: PyTorch warns (does not refuse) past the range where the float dtype holds every integer
        d = fl[0]
        for what, v in (("from", frm), ("to - 1", hi)):
            if not -(1 << d) <= v <= 1 << d:
                warnings.warn(f"{what} is out of bounds [-(2^{d}), 2^{d}]. Due to precision limitations {cpp_name(dt)} "
                              "can support discrete uniform distribution only within this range. This warning will "
                              "become an error in version 1.7 release, please fix the code in advance", UserWarning,
                              stacklevel=2)
    return self.copy_(_draw(_s_integers, self, (frm, hi), generator))


def _continuous(self, dist, names=short_name):
    if not _isf(self.dtype):
        raise RuntimeError(f"{dist} distribution is a continuous probability distribution. dtype must be a floating "
                           f"point but you specified {names(self.dtype)}")


def _exponential_(self, lambd=1, *, generator=None):
    """Fill with draws from the exponential distribution of rate ``lambd`` (density lambd * exp(-lambd * x))."""
    lambd = _real(lambd, "exponential_", "lambd")
    if not lambd > 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd:g}")
    _continuous(self, "Exponential")
    return self.copy_(_draw(_s_exponential, self, lambd, generator))


def _geometric_(self, p, *, generator=None):
    """Fill with draws from the geometric distribution: the number of Bernoulli(p) trials up to and including the
    first success (support 1, 2, ..., as PyTorch)."""
    p = _real(p, "geometric_", "p")
    if not 0 < p < 1:
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p:g}")
    if self.dtype == np.bool_:
        raise NotImplementedError("\"geometric_cpu\" not implemented for 'Bool'")
    return self.copy_(_draw(_s_geometric, self, p, generator))


def _cauchy_(self, median=0, sigma=1, *, generator=None):
    """Fill with draws from the Cauchy distribution: median + sigma * tan(pi * (U - 1/2))."""
    median, sigma = _real(median, "cauchy_", "median"), _real(sigma, "cauchy_", "sigma")
    if not sigma > 0:
        raise RuntimeError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma:g}")
    _continuous(self, "Cauchy", cpp_name)
    return self.copy_(_draw(_s_cauchy, self, (median, sigma), generator))


def _log_normal_(self, mean=1, std=2, *, generator=None):
    """Fill with exp(N(mean, std**2)) draws (``mean`` and ``std`` are those of the underlying normal)."""
    mean, std = _real(mean, "log_normal_", "mean"), _real(std, "log_normal_", "std")
    if not std > 0:
        raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std:g}")
    if not _isf(self.dtype):
        raise NotImplementedError(f"\"log_normal_cpu\" not implemented for '{short_name(self.dtype)}'")
    return self.copy_(_draw(_s_log_normal, self, (mean, std), generator))


def _bernoulli(self, p=None, *, generator=None):
    return bernoulli(self, p, generator=generator)


def _multinomial_method(self, num_samples, replacement=False, *, generator=None):
    return multinomial(self, num_samples, replacement, generator=generator)


_bernoulli.__doc__, _multinomial_method.__doc__ = bernoulli.__doc__, multinomial.__doc__
Tensor.bernoulli, Tensor.bernoulli_, Tensor.multinomial = _bernoulli, _bernoulli_, _multinomial_method
Tensor.random_, Tensor.exponential_, Tensor.geometric_ = _random_, _exponential_, _geometric_
Tensor.cauchy_, Tensor.log_normal_ = _cauchy_, _log_normal_
for _n in ("bernoulli", "bernoulli_", "multinomial", "random_", "exponential_", "geometric_", "cauchy_", "log_normal_"):
    getattr(Tensor, _n).__name__ = getattr(Tensor, _n).__qualname__ = _n
del _n
