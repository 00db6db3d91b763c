// gpugrad fused kernels: activations, and bias + activation (the linear-layer epilogue).
//
// Each activation is one functor (math on the compute type C, __host__ __device__) and one line
// GG_ACTIVATION(name, Functor) that instantiates its four kernels:
//   gpugrad_<name>_fwd<T>(x, y, n, p0, p1)                       y  = act(x)
//   gpugrad_<name>_bwd<T>(g, s, gx, n, p0, p1, from_y)           gx = g * act'(.)
//   gpugrad_bias_<name>_fwd<T>(x, b, y, rows, cols, p0, p1)      y  = act(x + b[col])
//   gpugrad_bias_<name>_bwd<T>(g, s, b, gx, part, rows, cols, p0, p1, from_y)
//       gx = g * act'(.), part[blockIdx.y, col] = partial column sums of gx (compute type)
// plus gpugrad_bias_grad_reduce<T>(part, gb, nparts, cols): gb = sum over the partials.
//
// `s` is what the forward saved: the output y when from_y != 0, else the input x (for the bias
// variants the pre-activation is rebuilt as x + b, bit-identical to the forward's).
// Saved tensor per op (the Python side chooses; see gpugrad/kernels/activation.py):
//   output: relu, leaky_relu (slope >= 0), elu (alpha >= 0), selu, sigmoid, tanh, log_sigmoid
//   input : leaky_relu (slope < 0), elu (alpha < 0), gelu, gelu_tanh, silu, mish, softplus
// NOTE: the output is preferred because it is usually kept alive anyway (it is the next layer's
// input), so saving it costs no memory, whereas saving x would pin one more tensor.
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

#undef GG_ACT_FIELDS

#if GG_KERNELS

template <class Op, class T> GG_DEV Op make_op(double p0, double p1, int from_y) {
  typedef typename Io<T>::C C;
  Op op;
  op.p0 = C(p0);
  op.p1 = C(p1);
  op.from_y = from_y;
  return op;
}

// Bias kernels use a 2-D layout: x threads over column packs, y threads (and blockIdx.y) over
// rows. V = elements per thread (the 16-byte vector width when rows start aligned, else 1).
template <int V, class Op, class T>
GG_DEV void bias_fwd_body(const T* __restrict__ x, const T* __restrict__ b, T* __restrict__ y,
                          i64 rows, i64 cols, const Op& op) {
  typedef typename Io<T>::C C;
  const i64 packs = cols / V;
  const i64 r0 = (i64)blockIdx.y * blockDim.y + threadIdx.y, rstep = (i64)gridDim.y * blockDim.y;
  for (i64 j = (i64)blockIdx.x * blockDim.x + threadIdx.x; j < packs; j += (i64)gridDim.x * blockDim.x) {
    const Pack<T, V> pb = ld_pack<T, V>(b, j);
    C bc[V];
#pragma unroll
    for (int k = 0; k < V; ++k) bc[k] = Io<T>::ld(pb.v[k]);
    for (i64 r = r0; r < rows; r += rstep) {
      const Pack<T, V> px = ld_pack<T, V>(x + r * cols, j);
      Pack<T, V> py;
#pragma unroll
      for (int k = 0; k < V; ++k) py.v[k] = Io<T>::st(op.fwd(Io<T>::ld(px.v[k]) + bc[k]));
      st_pack<T, V>(y + r * cols, j, py);
    }
  }
}

// NOTE: grad-bias is a column reduction done without atomics, so it is deterministic: each
// block folds its rows into registers, then across threadIdx.y in shared memory, and writes one
// row of partial sums part[blockIdx.y, :] (compute type); gpugrad_bias_grad_reduce sums the
// gridDim.y partial rows. Costs one extra small pass over (gridDim.y x cols).
template <int V, class Op, class T>
GG_DEV void bias_bwd_body(const T* __restrict__ g, const T* __restrict__ s, const T* __restrict__ b,
                          T* __restrict__ gx, typename Io<T>::C* __restrict__ part, i64 rows,
                          i64 cols, const Op& op) {
  typedef typename Io<T>::C C;
  // 8 KiB: blockDim.x * blockDim.y == 256 threads, V * sizeof(C) <= 32 bytes each.
  __shared__ alignas(16) unsigned char smem_raw[8192];
  C* smem = reinterpret_cast<C*>(smem_raw);
  const i64 packs = cols / V;
  const i64 r0 = (i64)blockIdx.y * blockDim.y + threadIdx.y, rstep = (i64)gridDim.y * blockDim.y;
  const i64 jstep = (i64)gridDim.x * blockDim.x;
  // Loop bound is uniform per block (threadIdx.x only enters through `active`) for the barriers.
  for (i64 jb = (i64)blockIdx.x * blockDim.x; jb < packs; jb += jstep) {
    const i64 j = jb + threadIdx.x;
    const bool active = j < packs;
    C acc[V];
    C bc[V];
#pragma unroll
    for (int k = 0; k < V; ++k) acc[k] = C(0);
    if (active) {
      const Pack<T, V> pb = ld_pack<T, V>(b, j);
#pragma unroll
      for (int k = 0; k < V; ++k) bc[k] = op.from_y ? C(0) : Io<T>::ld(pb.v[k]);
      for (i64 r = r0; r < rows; r += rstep) {
        const Pack<T, V> pg = ld_pack<T, V>(g + r * cols, j);
        const Pack<T, V> ps = ld_pack<T, V>(s + r * cols, j);
        Pack<T, V> po;
#pragma unroll
        for (int k = 0; k < V; ++k) {
          const C v = op.bwd(Io<T>::ld(pg.v[k]), Io<T>::ld(ps.v[k]) + bc[k]);
          po.v[k] = Io<T>::st(v);
          acc[k] += v;  // NOTE: the unrounded value: gb is the sum of exact per-element grads
        }
        st_pack<T, V>(gx + r * cols, j, po);
      }
    }
#pragma unroll
    for (int k = 0; k < V; ++k) smem[(threadIdx.y * blockDim.x + threadIdx.x) * V + k] = acc[k];
    __syncthreads();
    if (threadIdx.y == 0 && active) {
#pragma unroll
      for (int k = 0; k < V; ++k) {
        C t = acc[k];
        for (unsigned yy = 1; yy < blockDim.y; ++yy) t += smem[(yy * blockDim.x + threadIdx.x) * V + k];
        part[(i64)blockIdx.y * cols + j * V + k] = t;
      }
    }
    __syncthreads();
  }
}

template <class T> GG_DEV bool bias_vec_ok(i64 cols, const void* a, const void* b, const void* c,
                                           const void* d) {
  // every row start is 16-byte aligned iff the base is and a row is a whole number of vectors
  return cols % VecWidth<T>::value == 0 && aligned16(a) && aligned16(b) && aligned16(c) &&
         aligned16(d);
}

}  // namespace gg

#define GG_ACTIVATION(name, Op)                                                                    \
  template <class T>                                                                               \
  __global__ void gpugrad_##name##_fwd(const T* __restrict__ x, T* __restrict__ y, long long n,    \
                                       double p0, double p1) {                                     \
    typedef typename gg::Io<T>::C C;                                                               \
    const Op<C> op = gg::make_op<Op<C>, T>(p0, p1, 0);                                             \
    gg::emap(n, y, x, (const T*)nullptr, (const T*)nullptr,                                        \
             [&](C a, C, C) { return op.fwd(a); });                                                \
  }                                                                                                \
  template <class T>                                                                               \
  __global__ void gpugrad_##name##_bwd(const T* __restrict__ g, const T* __restrict__ s,           \
                                       T* __restrict__ gx, long long n, double p0, double p1,      \
                                       int from_y) {                                               \
    typedef typename gg::Io<T>::C C;                                                               \
    const Op<C> op = gg::make_op<Op<C>, T>(p0, p1, from_y);                                        \
    gg::emap(n, gx, g, s, (const T*)nullptr, [&](C a, C b, C) { return op.bwd(a, b); });           \
  }                                                                                                \
  template <class T>                                                                               \
  __global__ void gpugrad_bias_##name##_fwd(const T* __restrict__ x, const T* __restrict__ b,      \
                                            T* __restrict__ y, long long rows, long long cols,     \
                                            double p0, double p1) {                                \
    typedef typename gg::Io<T>::C C;                                                               \
    const Op<C> op = gg::make_op<Op<C>, T>(p0, p1, 0);                                             \
    if (gg::bias_vec_ok<T>(cols, x, b, y, nullptr))                                                \
      gg::bias_fwd_body<gg::VecWidth<T>::value>(x, b, y, rows, cols, op);                          \
    else                                                                                           \
      gg::bias_fwd_body<1>(x, b, y, rows, cols, op);                                               \
  }                                                                                                \
  template <class T>                                                                               \
  __global__ void gpugrad_bias_##name##_bwd(                                                       \
      const T* __restrict__ g, const T* __restrict__ s, const T* __restrict__ b,                   \
      T* __restrict__ gx, typename gg::Io<T>::C* __restrict__ part, long long rows,                \
      long long cols, double p0, double p1, int from_y) {                                          \
    typedef typename gg::Io<T>::C C;                                                               \
    const Op<C> op = gg::make_op<Op<C>, T>(p0, p1, from_y);                                        \
    if (gg::bias_vec_ok<T>(cols, g, s, b, gx))                                                     \
      gg::bias_bwd_body<gg::VecWidth<T>::value>(g, s, b, gx, part, rows, cols, op);                \
    else                                                                                           \
      gg::bias_bwd_body<1>(g, s, b, gx, part, rows, cols, op);                                     \
  }

GG_ACTIVATION(relu, gg::Relu)
GG_ACTIVATION(leaky_relu, gg::LeakyRelu)
GG_ACTIVATION(elu, gg::Elu)
GG_ACTIVATION(selu, gg::Selu)
GG_ACTIVATION(gelu, gg::Gelu)
GG_ACTIVATION(gelu_tanh, gg::GeluTanh)
GG_ACTIVATION(silu, gg::Silu)
GG_ACTIVATION(mish, gg::Mish)
GG_ACTIVATION(sigmoid, gg::Sigmoid)
GG_ACTIVATION(tanh, gg::Tanh)
GG_ACTIVATION(softplus, gg::Softplus)
GG_ACTIVATION(log_sigmoid, gg::LogSigmoid)

// gb[col] = sum_p part[p, col], rounded once to the storage type.
template <class T>
__global__ void gpugrad_bias_grad_reduce(const typename gg::Io<T>::C* __restrict__ part,
                                         T* __restrict__ gb, long long nparts, long long cols) {
  typedef typename gg::Io<T>::C C;
  for (long long c = gg::thread_id(); c < cols; c += gg::thread_count()) {
    C t = C(0);
    for (long long p = 0; p < nparts; ++p) t += part[p * cols + c];
    gb[c] = gg::Io<T>::st(t);
  }
}

#else
}  // namespace gg
#endif  // GG_KERNELS
