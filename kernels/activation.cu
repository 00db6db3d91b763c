// gpugrad fused kernels: activations.
//
// Each activation is one functor (math on the compute type C, __host__ __device__) and one entry
// X(name, Functor) in GG_ACTIVATIONS below, which instantiates its two kernels:
//   gpugrad_<name>_fwd<T>(x, y, n, p0, p1)                       y  = act(x)
//   gpugrad_<name>_bwd<T>(g, s, gx, n, p0, p1, from_y)           gx = g * act'(.)
// The same list drives the host harness (tests/host/harness.cpp); the Python side has one row per
// entry in gpugrad/fused/activation.py (ACTIVATIONS), checked against this list by the tests.
//
// `s` is what the forward saved: the output y when from_y != 0, else the input x; the row's
// `saves` decides (the output where the derivative can be written in it: relu, leaky_relu with a
// slope >= 0, elu with alpha >= 0, selu, sigmoid, tanh, log_sigmoid).
// Kinks follow PyTorch: relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha; comparisons are
// written the way PyTorch writes them so NaN inputs take the same branch.
#include "common.cuh"

namespace gg {

#define GG_ACT_FIELDS \
  C p0, p1;           \
  int from_y;

template <class C> struct Relu {
  GG_ACT_FIELDS
  GG_FN C fwd(C x) const { return x <= C(0) ? C(0) : x; }  // NaN passes through
  // y > 0 exactly when x > 0, so the same test serves a saved x or y.
  GG_FN C bwd(C g, C s) const { return s <= C(0) ? C(0) : g; }
};

template <class C> struct LeakyRelu {  // p0 = negative_slope
  GG_ACT_FIELDS
  GG_FN C fwd(C x) const { return x > C(0) ? x : x * p0; }
  // NOTE: with slope >= 0, y > 0 iff x > 0, so one formula serves both; a negative slope
  // flips the sign of y for x < 0 and the Python side then saves x.
  GG_FN C bwd(C g, C s) const { return s > C(0) ? g : g * p0; }
};

template <class C> struct Elu {  // p0 = alpha
  GG_ACT_FIELDS
  GG_FN C fwd(C x) const { return x <= C(0) ? p0 * expm1_(x) : x; }
  GG_FN C bwd(C g, C s) const {
    // from y (alpha >= 0): elu'(x) = y + alpha on the negative side, as PyTorch's is_result path.
    if (from_y) return s <= C(0) ? g * (s + p0) : g;
    return s <= C(0) ? g * p0 * exp_(s) : g;
  }
};

template <class C> struct Selu {
  GG_ACT_FIELDS
  static GG_FN C scale() { return C(1.0507009873554804934193349852946); }
  static GG_FN C alpha() { return C(1.6732632423543772848170429916717); }
  GG_FN C fwd(C x) const { return x <= C(0) ? scale() * alpha() * expm1_(x) : scale() * x; }
  GG_FN C bwd(C g, C s) const {  // from y: y <= 0 iff x <= 0 (alpha, scale > 0)
    return s <= C(0) ? g * (s + scale() * alpha()) : g * scale();
  }
};

template <class C> struct Gelu {  // exact: x * Phi(x)
  GG_ACT_FIELDS
  // NOTE: Phi(x) = erfc(-x/sqrt2)/2 rather than PyTorch's (1 + erf(x/sqrt2))/2: same value, but
  // erfc keeps relative precision in the left tail where 1 + erf cancels.
  static GG_FN C cdf(C x) { return C(0.5) * erfc_(-x * C(0.70710678118654752440)); }
  GG_FN C fwd(C x) const { return mul0(x, cdf(x)); }
  GG_FN C bwd(C g, C x) const {
    const C pdf = C(0.39894228040143267794) * exp_(C(-0.5) * x * x);
    return g * (cdf(x) + mul0(x, pdf));
  }
};

template <class C> struct GeluTanh {  // x/2 * (1 + tanh(k0 (x + k1 x^3)))
  GG_ACT_FIELDS
  static GG_FN C inner(C x) {
    return C(0.79788456080286535588) * x * (C(1) + C(0.044715) * x * x);  // sqrt(2/pi) (x + k1 x^3)
  }
  // NOTE: (1 + tanh(u))/2 == sigmoid(2u) and (1 - tanh(u)^2)/2 == 2 sigmoid(2u) sigmoid(-2u):
  // PyTorch's formula without its cancellation for negative x; an overflowing x^3 gives
  // u = +-inf, which sigmoid handles.
  GG_FN C fwd(C x) const { return mul0(x, sigmoid_(C(2) * inner(x))); }
  GG_FN C bwd(C g, C x) const {
    C sp, sn;
    sigmoid2(C(2) * inner(x), sp, sn);
    const C du = C(0.79788456080286535588) * (C(1) + C(3 * 0.044715) * x * x);
    return g * (sp + mul0(C(2) * x * du, sp * sn));
  }
};

template <class C> struct Silu {
  GG_ACT_FIELDS
  GG_FN C fwd(C x) const { return mul0(x, sigmoid_(x)); }
  GG_FN C bwd(C g, C x) const {  // s (1 + x (1 - s)) with 1 - s taken as sigmoid(-x)
    C sp, sn;
    sigmoid2(x, sp, sn);
    return g * (sp + mul0(x, sp * sn));
  }
};

template <class C> struct Mish {  // x * tanh(softplus(x))
  GG_ACT_FIELDS
  GG_FN C fwd(C x) const { return mul0(x, tanh_(softplus_(x))); }
  GG_FN C bwd(C g, C x) const {
    const C t = tanh_(softplus_(x));
    return g * (t + mul0(x, (C(1) - t * t) * sigmoid_(x)));
  }
};

template <class C> struct Sigmoid {
  GG_ACT_FIELDS
  GG_FN C fwd(C x) const { return sigmoid_(x); }
  GG_FN C bwd(C g, C y) const { return g * y * (C(1) - y); }
};

template <class C> struct Tanh {
  GG_ACT_FIELDS
  GG_FN C fwd(C x) const { return tanh_(x); }
  GG_FN C bwd(C g, C y) const { return g * (C(1) - y * y); }
};

template <class C> struct Softplus {  // p0 = beta, p1 = threshold (PyTorch semantics)
  GG_ACT_FIELDS
  // NOTE: linear (y = x, slope 1) when beta*x > threshold, as PyTorch; below it the stable
  // sign-split softplus, so a large threshold cannot overflow exp(beta*x).
  GG_FN C fwd(C x) const {
    const C z = x * p0;
    return z > p1 ? x : softplus_(z) / p0;
  }
  GG_FN C bwd(C g, C x) const {
    const C z = x * p0;
    return z > p1 ? g : g * sigmoid_(z);
  }
};

template <class C> struct LogSigmoid {  // log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))
  GG_ACT_FIELDS
  GG_FN C fwd(C x) const { return (x < C(0) ? x : C(0)) - log1p_(exp_(-abs_(x))); }
  // NOTE: from y: d/dx = 1 - sigmoid(x) = 1 - exp(y) = -expm1(y); expm1 keeps the tiny slope
  // exp(-x) for large x (where y ~ -exp(-x)) and gives 1 for large negative x.
  GG_FN C bwd(C g, C y) const { return g * -expm1_(y); }
};

template <class C> struct Celu {  // p0 = alpha: max(0, x) + min(0, alpha (exp(x / alpha) - 1)), as PyTorch
  GG_ACT_FIELDS
  // NOTE: x * (1/alpha) as PyTorch's elu kernel with input scale 1/alpha; alpha < 0 overflows to
  // -inf for very negative x there too
  GG_FN C fwd(C x) const { return x <= C(0) ? p0 * expm1_(x * (C(1) / p0)) : x; }
  GG_FN C bwd(C g, C x) const { return x <= C(0) ? g * exp_(x * (C(1) / p0)) : g; }
};

template <class C> struct Hardswish {  // x * relu6(x + 3) / 6, PyTorch's formula and branches
  GG_ACT_FIELDS
  GG_FN C fwd(C x) const {
    const C r = x + C(3);
    return x * (r < C(0) ? C(0) : (r > C(6) ? C(6) : r)) / C(6);  // NaN passes; -inf * 0 is NaN, as PyTorch
  }
  // NOTE: PyTorch's branches: 0 for x <= -3 (not g * 0: an infinite g stays finite), g for x >= 3 and NaN
  GG_FN C bwd(C g, C x) const { return x <= C(-3) ? C(0) : (x < C(3) ? g * (x / C(3) + C(0.5)) : g); }
};

#undef GG_ACT_FIELDS

// The activations: one X(name, Functor) each. NOTE: the names are the Python rows' names.
#define GG_ACTIVATIONS(X)     \
  X(relu, Relu)               \
  X(leaky_relu, LeakyRelu)    \
  X(elu, Elu)                 \
  X(selu, Selu)               \
  X(gelu, Gelu)               \
  X(gelu_tanh, GeluTanh)      \
  X(silu, Silu)               \
  X(mish, Mish)               \
  X(sigmoid, Sigmoid)         \
  X(tanh, Tanh)               \
  X(softplus, Softplus)       \
  X(log_sigmoid, LogSigmoid)  \
  X(celu, Celu)               \
  X(hardswish, Hardswish)


#if GG_KERNELS

template <class Op, class T> GG_DEV Op make_op(double p0, double p1, int from_y) {
  typedef typename Io<T>::C C;
  Op op;
  op.p0 = C(p0);
  op.p1 = C(p1);
  op.from_y = from_y;
  return op;
}

}  // namespace gg

#define GG_ACTIVATION(name, Op)                                                                    \
  template <class T>                                                                               \
  __global__ void gpugrad_##name##_fwd(const T* __restrict__ x, T* __restrict__ y, long long n,    \
                                       double p0, double p1) {                                     \
    typedef typename gg::Io<T>::C C;                                                               \
    const gg::Op<C> op = gg::make_op<gg::Op<C>, T>(p0, p1, 0);                                     \
    gg::emap(n, y, x, (const T*)nullptr, (const T*)nullptr,                                        \
             [&](C a, C, C) { return op.fwd(a); });                                                \
  }                                                                                                \
  template <class T>                                                                               \
  __global__ void gpugrad_##name##_bwd(const T* __restrict__ g, const T* __restrict__ s,           \
                                       T* __restrict__ gx, long long n, double p0, double p1,      \
                                       int from_y) {                                               \
    typedef typename gg::Io<T>::C C;                                                               \
    const gg::Op<C> op = gg::make_op<gg::Op<C>, T>(p0, p1, from_y);                                \
    gg::emap(n, gx, g, s, (const T*)nullptr, [&](C a, C b, C) { return op.bwd(a, b); });           \
  }

GG_ACTIVATIONS(GG_ACTIVATION)

#else
}  // namespace gg
#endif  // GG_KERNELS
