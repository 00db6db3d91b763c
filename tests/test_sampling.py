"""Random sampling (gpugrad/sampling.py): gg.bernoulli, gg.multinomial, gg.poisson and the in-place fills bernoulli_,
random_, exponential_, geometric_, cauchy_, log_normal_. Distributions are checked with fixed seeds against bounds of a
few standard errors; with torch installed, the dtypes, shapes, errors and autograd behaviour are compared with it."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from conftest import to_np

import gpugrad as gg

N = 100_000


def _draws(device):
    """One call of every sampler, as a list of numpy arrays (for the reproducibility tests)."""
    t = lambda *a, **k: gg.tensor(*a, device=device, **k)  # noqa: E731
    p = t([0.1, 0.5, 0.9])
    return [to_np(x) for x in (
        gg.bernoulli(p), gg.bernoulli(p, 0.3), p.bernoulli(), gg.empty(5, device=device).bernoulli_(0.4),
        gg.multinomial(p, 2), gg.multinomial(t([[1.0, 2.0], [3.0, 0.5]]), 4, True), p.multinomial(3),
        gg.poisson(t([0.5, 3.0, 40.0])), gg.empty(6, device=device).random_(), gg.empty(6, device=device).random_(9),
        gg.empty(6, device=device, dtype=gg.int32).random_(-5, 5), gg.empty(6, device=device).exponential_(),
        gg.empty(6, device=device).geometric_(0.3), gg.empty(6, device=device).cauchy_(),
        gg.empty(6, device=device).log_normal_())]


def _draws_with(g, device):
    t = gg.tensor([0.2, 0.7], device=device)
    e = lambda: gg.empty(5, device=device)  # noqa: E731
    return [to_np(x) for x in (
        gg.bernoulli(t, generator=g), gg.bernoulli(t, 0.5, generator=g), e().bernoulli_(t[:1], generator=g),
        gg.multinomial(t, 2, generator=g), t.multinomial(6, True, generator=g), gg.poisson(t * 9, g),
        e().random_(generator=g), e().random_(3, 7, generator=g), e().exponential_(2.0, generator=g),
        e().geometric_(0.5, generator=g), e().cauchy_(generator=g), e().log_normal_(0.0, 1.0, generator=g))]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_reproducible_under_manual_seed(device):
    gg.manual_seed(7)
    a = _draws(device)
    gg.manual_seed(7)
    b = _draws(device)
    assert _same(a, b)
    assert not _same(a, _draws(device))  # the stream moves on


def test_reproducible_with_a_generator(device):
    g = gg.Generator(device).manual_seed(11)
    a = _draws_with(g, device)
    gg.manual_seed(3)  # the default generator does not matter
    b = _draws_with(gg.Generator(device).manual_seed(11), device)
    assert _same(a, b)
    assert not _same(a, _draws_with(g, device))
    state = g.get_state()
    c = _draws_with(g, device)
    assert _same(c, _draws_with(g.set_state(state), device))


def test_a_generator_of_another_device_type_is_refused():
    g = gg.Generator("cpu")
    if gg.cuda.is_available():
        with pytest.raises(RuntimeError, match="generator"):
            gg.empty(3, device="cuda").exponential_(generator=g)
    with pytest.raises(TypeError, match="generator"):
        gg.empty(3).exponential_(generator=np.float32(1.0))


# -- distributions -----------------------------------------------------------------------------------------------
def _mean_close(x, mean, sd, k=5):
    """The sample mean of x is within k standard errors of mean."""
    assert abs(x.mean() - mean) < k * sd / math.sqrt(x.size), (x.mean(), mean)


def test_bernoulli_statistics(device):
    p = np.array([0.0, 0.05, 0.3, 0.5, 0.95, 1.0])
    x = to_np(gg.bernoulli(gg.tensor(np.tile(p, (N, 1)).astype(np.float32), device=device)))
    assert set(np.unique(x)) <= {0.0, 1.0} and x.dtype == np.float32
    assert x[:, 0].max() == 0 and x[:, -1].min() == 1  # never for p = 0, always for p = 1
    for j in range(1, 5):
        _mean_close(x[:, j], p[j], math.sqrt(p[j] * (1 - p[j])))
    for dt in (gg.float64, gg.float16):
        y = to_np(gg.bernoulli(gg.full((N,), 0.25, dtype=dt, device=device)))
        assert y.dtype == dt
        _mean_close(y.astype(np.float64), 0.25, math.sqrt(0.25 * 0.75))
    _mean_close(to_np(gg.bernoulli(gg.zeros(N, device=device), 0.7)), 0.7, math.sqrt(0.21))
    z = to_np(gg.empty(N, dtype=gg.int64, device=device).bernoulli_())
    assert z.dtype == np.int64 and set(np.unique(z)) == {0, 1}
    _mean_close(z, 0.5, 0.5)
    w = to_np(gg.empty(N // 2, 2, device=device).bernoulli_(gg.tensor([0.1, 0.8], device=device)))
    _mean_close(w[:, 0], 0.1, 0.3)
    _mean_close(w[:, 1], 0.8, 0.4)


def test_multinomial_with_replacement_frequencies(device):
    w = np.array([[1.0, 0.0, 3.0, 6.0], [0.0, 0.0, 0.0, 2.0], [5.0, 5.0, 0.0, 0.0]])
    s = to_np(gg.multinomial(gg.tensor(w, device=device), N, replacement=True))
    assert s.shape == (3, N) and s.dtype == np.int64
    for row, probs in zip(s, w / w.sum(1, keepdims=True)):
        freq = np.bincount(row, minlength=4) / N
        assert np.all(freq[probs == 0] == 0)  # zero-probability categories are never drawn
        se = np.sqrt(probs * (1 - probs) / N)
        assert np.all(np.abs(freq - probs) <= 5 * se + 1e-12), (freq, probs)
    one = to_np(gg.multinomial(gg.tensor([0.0, 2.0, 0.0, 0.0, 1.0], device=device), N, True))
    assert set(np.unique(one)) == {1, 4} and abs((one == 1).mean() - 2 / 3) < 5 * math.sqrt(2 / 9 / N)


def test_multinomial_without_replacement(device):
    w = gg.tensor([[0.5, 0.0, 2.0, 1.0, 0.0, 0.25]] * 2000, device=device)
    s = to_np(gg.multinomial(w, 4))
    assert s.shape == (2000, 4) and s.dtype == np.int64
    assert all(len(set(r)) == 4 for r in s)  # never repeats within a row
    assert not np.isin(s, [1, 4]).any()  # four positive categories: zeros never drawn
    # the first draw follows the weights; a heavy category tends to come early
    first = np.bincount(s[:, 0], minlength=6) / 2000
    assert abs(first[2] - 2 / 3.75) < 5 * math.sqrt((2 / 3.75) * (1 - 2 / 3.75) / 2000)
    assert (s == 2).argmax(1).mean() < (s == 5).argmax(1).mean()
    full = to_np(gg.multinomial(gg.tensor([0.0, 0.0, 1.0, 0.0], device=device), 4))
    assert full[0] == 2 and sorted(full) == [0, 1, 2, 3]  # as PyTorch's CPU kernel: zeros come last
    perm = to_np(gg.multinomial(gg.ones(7, device=device), 7))
    assert sorted(perm) == list(range(7))


def test_poisson_statistics(device):
    for lam in (0.3, 4.0, 250.0):
        x = to_np(gg.poisson(gg.full((N,), lam, device=device)))
        assert x.dtype == np.float32 and np.all(x == np.round(x)) and x.min() >= 0
        _mean_close(x, lam, math.sqrt(lam))
        assert abs(x.var() / lam - 1) < 0.03
    assert np.all(to_np(gg.poisson(gg.zeros(10, device=device))) == 0)


@pytest.mark.parametrize("dt, hi", [(gg.float32, 2 ** 24), (gg.float64, 2 ** 53), (gg.float16, 2 ** 11),
                                    ("bfloat16", 2 ** 8), (gg.int8, 127), (gg.uint8, 255), (gg.int16, 32767),
                                    (gg.int32, 2 ** 31 - 1), (gg.int64, 2 ** 63 - 1), (gg.bool, 1)])
def test_random_default_ranges(dt, hi, device):
    dt = getattr(gg, dt) if isinstance(dt, str) else dt
    x = to_np(gg.empty(N, dtype=dt, device=device).random_())
    assert x.dtype == dt
    v = x.astype(np.float64)
    assert v.min() >= 0 and v.max() <= hi
    assert np.all(v == np.round(v))
    # uniform over [0, hi]: the mean near hi / 2, and the top of the range reached
    assert abs(v.mean() / hi - 0.5) < 0.01 + 1 / hi
    assert v.max() > 0.99 * hi


def test_random_forms(device):
    e = lambda dt=gg.float32: gg.empty(N, dtype=dt, device=device)  # noqa: E731
    x = to_np(e().random_(5))
    assert set(np.unique(x)) == {0, 1, 2, 3, 4}
    y = to_np(e(gg.int64).random_(-3, 4))
    assert set(np.unique(y)) == set(range(-3, 4))
    _mean_close(y.astype(np.float64), 0.0, 2.0)
    assert set(np.unique(to_np(e().random_(**{"from": 2, "to": 5})))) == {2, 3, 4}
    assert set(np.unique(to_np(e().random_(to=3)))) == {0, 1, 2}
    z = to_np(e(gg.float16).random_(-3, None))
    assert z.min() == -3 and z.max() == 2048
    assert to_np(e(gg.int8).random_(120, None)).min() == 120
    big = to_np(e(gg.int64).random_(-2 ** 63, None))
    assert big.min() < -2 ** 62 and big.max() > 2 ** 62
    assert set(np.unique(to_np(e(gg.bool).random_(0, 2)))) == {False, True}
    assert to_np(e().random_(gg.tensor(3))).max() == 2  # a 0-d integer tensor is an int


def test_random_float_precision_warning():
    with pytest.warns(UserWarning, match=r"to - 1 is out of bounds \[-\(2\^24\), 2\^24\]"):
        gg.empty(3).random_(0, 2 ** 24 + 2)
    with pytest.warns(UserWarning, match=r"from is out of bounds \[-\(2\^11\), 2\^11\]"):
        gg.empty(3, dtype=gg.float16).random_(-3000, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gg.empty(3).random_(0, 2 ** 24 + 1)
        gg.empty(3, dtype=gg.float16).random_(-2048, 2049)


def test_exponential_statistics(device):
    for lambd in (1.0, 0.25, 8.0):
        x = to_np(gg.empty(N, device=device).exponential_(lambd))
        assert x.min() >= 0
        _mean_close(x, 1 / lambd, 1 / lambd)
        assert abs(x.var() * lambd ** 2 - 1) < 0.05
    assert np.all(to_np(gg.empty(5, device=device).exponential_(float("inf"))) == 0)
    h = to_np(gg.empty(N, dtype=gg.float16, device=device).exponential_(2.0))
    assert h.dtype == np.float16
    _mean_close(h.astype(np.float64), 0.5, 0.5)


def test_geometric_statistics(device):
    for p in (0.5, 0.1, 0.9):
        x = to_np(gg.empty(N, device=device).geometric_(p))
        assert x.min() == 1 and np.all(x == np.round(x))  # support {1, 2, ...}, as PyTorch
        sd = math.sqrt(1 - p) / p
        _mean_close(x, 1 / p, sd)
        assert abs((x == 1).mean() - p) < 5 * math.sqrt(p * (1 - p) / N)
    i = to_np(gg.empty(N, dtype=gg.int64, device=device).geometric_(0.25))
    assert i.dtype == np.int64 and i.min() == 1
    _mean_close(i.astype(np.float64), 4.0, math.sqrt(0.75) / 0.25)
    u = to_np(gg.empty(1000, dtype=gg.uint8, device=device).geometric_(1e-6))
    assert u.min() >= 1 and u.max() <= 255


def test_cauchy_statistics(device):
    x = to_np(gg.empty(N, dtype=gg.float64, device=device).cauchy_(2.0, 3.0)).astype(np.float64)
    assert np.isfinite(x).all()
    q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75])  # quartiles median -/+ sigma
    # NOTE: the sample median's standard error is pi * sigma / (2 sqrt(N)) (about 0.015 here)
    assert abs(med - 2.0) < 0.08 and abs(q1 - (-1.0)) < 0.15 and abs(q3 - 5.0) < 0.15
    _mean_close((np.abs(x - 2.0) < 3.0).astype(np.float64), 0.5, 0.5)
    d = to_np(gg.empty(N, device=device).cauchy_())
    assert d.dtype == np.float32 and abs(np.median(d)) < 0.03


def test_log_normal_statistics(device):
    x = to_np(gg.empty(N, device=device).log_normal_(0.5, 0.75))
    assert x.min() > 0
    lx = np.log(x.astype(np.float64))
    _mean_close(lx, 0.5, 0.75)
    assert abs(lx.std() / 0.75 - 1) < 0.02
    d = np.log(to_np(gg.empty(N, dtype=gg.float64, device=device).log_normal_()))  # defaults mean=1, std=2
    _mean_close(d, 1.0, 2.0)
    assert abs(d.std() / 2 - 1) < 0.02


# -- errors, dtypes, shapes ----------------------------------------------------------------------------------------
def _f(*shape, dtype=np.float32, fill=0.5):
    return np.full(shape, fill, dtype)


# (call(m, *tensors), input arrays): m is gpugrad or torch. Each row raises an error with PyTorch's type and text.
ERRORS = {
    "bernoulli p > 1": (lambda m, x: m.bernoulli(x), [np.array([1.5], np.float32)], RuntimeError, "p_in >= 0"),
    "bernoulli nan": (lambda m, x: m.bernoulli(x), [np.array([np.nan], np.float32)], RuntimeError, "p_in >= 0"),
    "bernoulli int": (lambda m, x: m.bernoulli(x), [np.array([0, 1])], NotImplementedError, "bernoulli_tensor"),
    "bernoulli float p": (lambda m, x: m.bernoulli(x, 1.5), [_f(2)], RuntimeError, "expects p to be in"),
    "bernoulli tensor p": (lambda m, x: m.bernoulli(x, p=x), [_f(2)], TypeError, "bernoulli"),
    "bernoulli_ p": (lambda m, x: x.bernoulli_(-0.1), [_f(2)], RuntimeError, r"p=-0.1"),
    "bernoulli_ p nan": (lambda m, x: x.bernoulli_(float("nan")), [_f(2)], RuntimeError, r"p=nan"),
    "bernoulli_ int p tensor": (lambda m, x, p: x.bernoulli_(p), [_f(3), np.array([0, 1, 1])], NotImplementedError,
                                "Long"),
    "bernoulli_ p tensor range": (lambda m, x, p: x.bernoulli_(p), [_f(3), np.array([2.0, 0, 0])], RuntimeError,
                                  "p_in"),
    "bernoulli_ p shape": (lambda m, x, p: x.bernoulli_(p), [_f(3), _f(2, 3)], RuntimeError, "expand"),
    "multinomial int": (lambda m, x: m.multinomial(x, 1), [np.array([1, 2])], RuntimeError,
                        "only supports floating-point dtypes for input, got: Long"),
    "multinomial bool": (lambda m, x: m.multinomial(x, 1), [np.array([True])], RuntimeError, "got: Bool"),
    "multinomial 3-D": (lambda m, x: m.multinomial(x, 1), [_f(2, 2, 2)], RuntimeError, "prob_dist must be 1 or 2 dim"),
    "multinomial 0-D": (lambda m, x: m.multinomial(x, 1), [_f()], RuntimeError, "prob_dist must be 1 or 2 dim"),
    "multinomial n 0": (lambda m, x: m.multinomial(x, 0), [_f(3)], RuntimeError, "n_sample <= 0"),
    "multinomial n -1": (lambda m, x: m.multinomial(x, -1, True), [_f(3)], RuntimeError, "n_sample <= 0"),
    "multinomial n > k": (lambda m, x: m.multinomial(x, 4), [_f(3)], RuntimeError,
                          r"cannot sample n_sample > prob_dist.size\(-1\) samples without replacement"),
    "multinomial negative": (lambda m, x: m.multinomial(x, 1), [np.array([1.0, -1.0], np.float32)], RuntimeError,
                             "probability tensor contains either `inf`, `nan` or element < 0"),
    "multinomial inf": (lambda m, x: m.multinomial(x, 1), [np.array([1.0, np.inf])], RuntimeError, "`inf`, `nan`"),
    "multinomial nan": (lambda m, x: m.multinomial(x, 1, True), [np.array([np.nan, 1.0])], RuntimeError, "`nan`"),
    "multinomial zero sum": (lambda m, x: m.multinomial(x, 1), [np.zeros(3)], RuntimeError,
                             r"invalid multinomial distribution \(sum of probabilities <= 0\)"),
    "multinomial zero row": (lambda m, x: m.multinomial(x, 1, True), [np.array([[1.0, 2.0], [0.0, 0.0]])],
                             RuntimeError, "sum of probabilities <= 0"),
    "multinomial no categories": (lambda m, x: m.multinomial(x, 1, True), [np.ones((3, 0))], RuntimeError, "aminmax"),
    "multinomial float n": (lambda m, x: m.multinomial(x, 2.0), [_f(3)], TypeError,
                            r"argument 'num_samples' \(position 2\) must be int, not float"),
    "multinomial bool n": (lambda m, x: m.multinomial(x, True), [_f(3)], TypeError, "must be int, not bool"),
    "poisson negative": (lambda m, x: m.poisson(x), [np.array([-1.0], np.float32)], RuntimeError,
                         "invalid Poisson rate, expected rate to be non-negative"),
    "poisson nan": (lambda m, x: m.poisson(x), [np.array([np.nan], np.float32)], RuntimeError, "invalid Poisson"),
    "poisson int": (lambda m, x: m.poisson(x), [np.array([1, 2])], NotImplementedError, "\"poisson_cpu\" not "
                    "implemented for 'Long'"),
    "random_ from >= to": (lambda m, x: x.random_(5, 5), [_f(3)], RuntimeError,
                           "random_ expects 'from' to be less than 'to', but got from=5 >= to=5"),
    "random_ to 0": (lambda m, x: x.random_(0), [_f(3)], RuntimeError, "from=0 >= to=0"),
    "random_ uint8 from": (lambda m, x: x.random_(-1, 5), [np.zeros(3, np.uint8)], RuntimeError,
                           "from is out of bounds for unsigned char"),
    "random_ uint8 to": (lambda m, x: x.random_(0, 257), [np.zeros(3, np.uint8)], RuntimeError,
                         "to - 1 is out of bounds for unsigned char"),
    "random_ int8 from only": (lambda m, x: x.random_(128, None), [np.zeros(3, np.int8)], RuntimeError,
                               "from is out of bounds for signed char"),
    "random_ int16 to": (lambda m, x: x.random_(2 ** 40), [np.zeros(3, np.int16)], RuntimeError,
                         "to - 1 is out of bounds for short int"),
    "random_ bool to": (lambda m, x: x.random_(3), [np.zeros(3, bool)], RuntimeError, "out of bounds for bool"),
    "random_ half to": (lambda m, x: x.random_(0, 70000), [_f(3, dtype=np.float16)], RuntimeError,
                        "to - 1 is out of bounds for c10::Half"),
    "random_ half from only": (lambda m, x: x.random_(3000, None), [_f(3, dtype=np.float16)], RuntimeError,
                               "but got from=3000 > to_inc=2048"),
    "random_ int64 overflow": (lambda m, x: x.random_(2 ** 63), [np.zeros(3, np.int64)], ValueError,
                               "Overflow when unpacking long long"),
    "random_ float to": (lambda m, x: x.random_(1.5), [_f(3)], TypeError, "random_"),
    "random_ from only kw": (lambda m, x: x.random_(**{"from": 2}), [_f(3)], TypeError, "random_"),
    "exponential_ 0": (lambda m, x: x.exponential_(0.0), [_f(3)], RuntimeError,
                       r"exponential_ expects lambda > 0.0, but found lambda=0"),
    "exponential_ nan": (lambda m, x: x.exponential_(float("nan")), [_f(3)], RuntimeError, "lambda=nan"),
    "exponential_ int": (lambda m, x: x.exponential_(), [np.zeros(3, np.int64)], RuntimeError,
                         "Exponential distribution is a continuous probability distribution. dtype must be a "
                         "floating point but you specified Long"),
    "geometric_ 0": (lambda m, x: x.geometric_(0.0), [_f(3)], RuntimeError,
                     r"geometric_ expects p to be in \(0, 1\), but got p=0"),
    "geometric_ 1": (lambda m, x: x.geometric_(1), [_f(3)], RuntimeError, "but got p=1"),
    "geometric_ bool": (lambda m, x: x.geometric_(0.5), [np.zeros(3, bool)], NotImplementedError, "'Bool'"),
    "cauchy_ sigma": (lambda m, x: x.cauchy_(1.0, -1.0), [_f(3)], RuntimeError,
                      r"cauchy_ expects sigma > 0.0, but found sigma=-1"),
    "cauchy_ int": (lambda m, x: x.cauchy_(), [np.zeros(3, np.int32)], RuntimeError, "you specified int$"),
    "log_normal_ std": (lambda m, x: x.log_normal_(0.0, 0.0), [_f(3)], RuntimeError,
                        r"log_normal_ expects std > 0.0, but found std=0"),
    "log_normal_ int": (lambda m, x: x.log_normal_(), [np.zeros(3, np.int64)], NotImplementedError,
                        "\"log_normal_cpu\" not implemented for 'Long'"),
}


@pytest.mark.parametrize("name", ERRORS)
def test_errors(name):
    call, arrays, exc, pattern = ERRORS[name]
    with pytest.raises(exc, match=pattern):
        call(gg, *[gg.tensor(a) for a in arrays])


@pytest.mark.parametrize("name", ERRORS)
def test_errors_match_torch(name):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    call, arrays, exc, pattern = ERRORS[name]
    with pytest.raises(exc, match=pattern):
        call(torch, *[torch.tensor(a) for a in arrays])


def test_not_a_tensor():
    for f in (gg.bernoulli, gg.poisson, lambda x: gg.multinomial(x, 1)):
        with pytest.raises(TypeError, match=r"must be Tensor, not list"):
            f([0.5])


# (call(m, x), input array): the result's dtype and shape are PyTorch's
SHAPES = {
    "bernoulli f64": (lambda m, x: m.bernoulli(x), _f(2, 3, dtype=np.float64)),
    "bernoulli f16": (lambda m, x: m.bernoulli(x), _f(4, dtype=np.float16)),
    "bernoulli 0-d": (lambda m, x: m.bernoulli(x), _f()),
    "bernoulli empty": (lambda m, x: m.bernoulli(x), _f(0, 2)),
    "bernoulli int p": (lambda m, x: m.bernoulli(x, 0.5), np.zeros((2, 2), np.int32)),
    "bernoulli kw p": (lambda m, x: m.bernoulli(x, p=0.5), _f(3)),
    "bernoulli method": (lambda m, x: x.bernoulli(0.2), _f(3, dtype=np.float64)),
    "bernoulli_ default": (lambda m, x: x.bernoulli_(), _f(2, 2)),
    "bernoulli_ bool": (lambda m, x: x.bernoulli_(0.5), np.zeros(3, bool)),
    "bernoulli_ f64 p": (lambda m, x: x.bernoulli_(m.tensor([0.5, 0.5, 0.5], dtype=m.float64)), _f(2, 3)),
    "bernoulli_ int self": (lambda m, x: x.bernoulli_(m.tensor([0.5, 0.5])), np.zeros(2, np.int32)),
    "multinomial 1-D": (lambda m, x: m.multinomial(x, 2), _f(5)),
    "multinomial 2-D": (lambda m, x: m.multinomial(x, 7, True), _f(3, 4)),
    "multinomial f16": (lambda m, x: m.multinomial(x, 1), _f(3, dtype=np.float16)),
    "multinomial no rows": (lambda m, x: m.multinomial(x, 1), _f(0, 3)),
    "multinomial kw": (lambda m, x: m.multinomial(x, num_samples=2, replacement=True), _f(2, 2)),
    "multinomial method": (lambda m, x: x.multinomial(3), _f(2, 4, dtype=np.float64)),
    "poisson": (lambda m, x: m.poisson(x), _f(2, 3, fill=3.0)),
    "poisson f64": (lambda m, x: m.poisson(x, None), _f(4, dtype=np.float64, fill=1.0)),
    "poisson 0-d": (lambda m, x: m.poisson(x), _f(fill=2.0)),
    "random_ int8": (lambda m, x: x.random_(), np.zeros(3, np.int8)),
    "random_ f16 to": (lambda m, x: x.random_(10), _f(3, dtype=np.float16)),
    "random_ kw": (lambda m, x: x.random_(**{"from": -2, "to": 2}), np.zeros((2, 2), np.int64)),
    "exponential_": (lambda m, x: x.exponential_(lambd=2), _f(3)),
    "exponential_ f16": (lambda m, x: x.exponential_(), _f(3, dtype=np.float16)),
    "geometric_ int": (lambda m, x: x.geometric_(p=0.3), np.zeros(3, np.int64)),
    "geometric_ f64": (lambda m, x: x.geometric_(0.3), _f(3, dtype=np.float64)),
    "cauchy_": (lambda m, x: x.cauchy_(median=1, sigma=2), _f(2, 2)),
    "log_normal_": (lambda m, x: x.log_normal_(mean=0, std=1), _f(3, dtype=np.float64)),
}


@pytest.mark.parametrize("name", SHAPES)
def test_dtypes_and_shapes(name):
    call, a = SHAPES[name]
    x = gg.tensor(a)
    r = call(gg, x)
    if "multinomial" not in name:
        assert tuple(r.shape) == a.shape
    if name.split()[0].endswith("_"):
        assert r is x  # in place: the same tensor, its dtype kept
    torch = pytest.importorskip("torch")
    t = call(torch, torch.tensor(a))
    assert tuple(r.shape) == tuple(t.shape)
    assert str(r.dtype) == str(t.dtype).replace("torch.", "")


def test_in_place_forms_return_self_and_bump_the_version():
    for fill in (lambda t: t.bernoulli_(), lambda t: t.bernoulli_(gg.tensor(0.3)), lambda t: t.random_(),
                 lambda t: t.random_(4), lambda t: t.exponential_(), lambda t: t.geometric_(0.5),
                 lambda t: t.cauchy_(), lambda t: t.log_normal_()):
        x = gg.zeros(4)
        v = x[1:3]
        before = x._version
        assert fill(v) is v
        assert x._version == v._version == before + 1
        assert to_np(x)[0] == 0 and to_np(x)[3] == 0  # only the view's elements are written


# -- autograd --------------------------------------------------------------------------------------------------
def test_bernoulli_of_probabilities_has_zero_gradient():
    p = gg.tensor([0.2, 0.8], requires_grad=True)
    y = gg.bernoulli(p)
    assert y.requires_grad  # as PyTorch: BernoulliBackward0, a zero gradient
    (y * 3).sum().backward()
    assert to_np(p.grad).tolist() == [0.0, 0.0]
    with gg.no_grad():
        assert not gg.bernoulli(p).requires_grad
    r = gg.tensor([1.0, 2.0], requires_grad=True)
    z = gg.poisson(r)
    assert z.requires_grad
    z.sum().backward()
    assert to_np(r.grad).tolist() == [0.0, 0.0]


def test_bernoulli_with_a_float_p_has_no_derivative():
    x = gg.tensor([0.2, 0.8], requires_grad=True)
    for y in (gg.bernoulli(x, 0.5), x.bernoulli(0.5)):
        assert y.requires_grad
        with pytest.raises(RuntimeError, match="derivative for aten::bernoulli is not implemented"):
            y.sum().backward()


def test_in_place_fills_give_zero_gradient_and_refuse_leaves():
    fills = (lambda t: t.bernoulli_(0.3), lambda t: t.random_(0, 3), lambda t: t.exponential_(),
             lambda t: t.geometric_(0.2), lambda t: t.cauchy_(), lambda t: t.log_normal_())
    for fill in fills:
        x = gg.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            fill(x)
        y = x * 2
        fill(y)
        assert y.requires_grad and y.grad_fn is not None
        (y * y).sum().backward()
        assert to_np(x.grad).tolist() == [0.0, 0.0, 0.0]
        with gg.no_grad():
            fill(x)  # allowed outside autograd, as in PyTorch
    x = gg.zeros(3, requires_grad=True)
    q = gg.full((3,), 0.5, requires_grad=True)
    y = x * 2
    y.bernoulli_(q)
    y.sum().backward()
    assert to_np(x.grad).tolist() == [0.0] * 3 and to_np(q.grad).tolist() == [0.0] * 3
    w = gg.tensor([1.0, 2.0], requires_grad=True)
    s = gg.multinomial(w, 1)
    assert s.dtype == gg.int64 and not s.requires_grad


def test_autograd_matches_torch():
    torch = pytest.importorskip("torch")
    for m in (gg, torch):
        p = m.tensor([0.3, 0.6], requires_grad=True)
        assert m.bernoulli(p).requires_grad and m.poisson(p).requires_grad
        assert m.bernoulli(p, 0.5).requires_grad and not m.multinomial(p, 1).requires_grad
        y = p * 1
        y.exponential_()
        y.sum().backward()
        assert p.grad.tolist() == [0.0, 0.0]


def test_compiled_steps_draw_anew():
    @gg.compile
    def step(x):
        return gg.bernoulli(x), gg.empty(64).exponential_(), gg.multinomial(x, 3), gg.poisson(x * 50), \
            gg.bernoulli(x, 0.5), gg.empty(64).random_(1000)

    x = gg.full((64,), 0.5)
    outs = [[to_np(t) for t in step(x)] for _ in range(4)]
    for k in range(6):
        assert not np.array_equal(outs[2][k], outs[3][k])  # the replays (calls 3 and 4) differ
