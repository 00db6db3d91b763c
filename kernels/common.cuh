// gpugrad fused kernels: shared helpers.
//
// Every file here compiles three ways:
//   * NVRTC through cupy.RawModule (the GPU path; no system headers available),
//   * nvcc (the compile check in tests/test_kernels_host.py),
//   * a plain host C++ compiler (g++) for the host-math check: there GG_KERNELS is 0,
//     the __global__ kernels and device-only helpers drop out and only the
//     __host__ __device__ math remains, which tests/host/harness.cpp exposes via ctypes.
//
// Conventions
//   T  storage dtype (float, double, __half, __nv_bfloat16);  C = Io<T>::C  compute dtype (float, double).
//   NOTE: float16 and bfloat16 are always loaded into float32 for arithmetic and rounded (RN) once on store.
//   Reductions accumulate in C (>= float32); double accumulates in double.
#pragma once

#if defined(__CUDACC_RTC__)
#include <cuda_fp16.h>                // NVRTC: only CUDA headers; math functions are builtin
#include <cuda_bf16.h>
#define GG_KERNELS 1
#elif defined(__CUDACC__)
#include <cmath>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#define GG_KERNELS 1
#else
#include <cmath>
#define GG_KERNELS 0
#endif

#if GG_KERNELS
#define GG_FN __host__ __device__ __forceinline__
#define GG_DEV __device__ __forceinline__
#else
#define GG_FN inline
#endif

namespace gg {

typedef long long i64;

// ---------------------------------------------------------------------------------------------
// Math overloads on the compute type (the same names for float and double).
// NOTE: the accurate library functions (expf, not __expf): kernels are memory bound, so the
// fast intrinsics would buy nothing and lose the host/GPU agreement the tests rely on.
// ---------------------------------------------------------------------------------------------
GG_FN float exp_(float x) { return expf(x); }
GG_FN double exp_(double x) { return exp(x); }
GG_FN float expm1_(float x) { return expm1f(x); }
GG_FN double expm1_(double x) { return expm1(x); }
GG_FN float log_(float x) { return logf(x); }
GG_FN double log_(double x) { return log(x); }
GG_FN float log1p_(float x) { return log1pf(x); }
GG_FN double log1p_(double x) { return log1p(x); }
GG_FN float tanh_(float x) { return tanhf(x); }
GG_FN double tanh_(double x) { return tanh(x); }
GG_FN float erfc_(float x) { return erfcf(x); }
GG_FN double erfc_(double x) { return erfc(x); }
GG_FN float abs_(float x) { return fabsf(x); }
GG_FN double abs_(double x) { return fabs(x); }

template <class C> GG_FN C inf_();
template <class C> GG_FN C nan_();
#if defined(__CUDA_ARCH__) || defined(__CUDACC_RTC__)
template <> GG_FN float inf_<float>() { return __int_as_float(0x7f800000); }
template <> GG_FN double inf_<double>() { return __longlong_as_double(0x7ff0000000000000LL); }
template <> GG_FN float nan_<float>() { return __int_as_float(0x7fffffff); }
template <> GG_FN double nan_<double>() { return __longlong_as_double(0x7fffffffffffffffLL); }
#else
template <> GG_FN float inf_<float>() { return HUGE_VALF; }
template <> GG_FN double inf_<double>() { return HUGE_VAL; }
template <> GG_FN float nan_<float>() { return NAN; }
template <> GG_FN double nan_<double>() { return (double)NAN; }
#endif

// a * b where b vanished: 0, even when a is infinite.
// NOTE: used for "x * gate(x)" forms (silu, gelu, mish and their derivatives): the gate decays
// exponentially, so the limit of the product is 0; plain IEEE would give inf * 0 = NaN at +-inf.
template <class C> GG_FN C mul0(C a, C b) { return b == C(0) ? C(0) : a * b; }

// Logistic sigmoid of x and of -x from a single exp.
// NOTE: exp(-|x|) <= 1 never overflows, so sigmoid(-1e4) is 0 (not inf/inf) and both tails keep
// full relative precision (e/(1+e) instead of 1 - 1/(1+e)).
template <class C> GG_FN void sigmoid2(C x, C& sp, C& sn) {
  const C e = exp_(-abs_(x));
  const C r = C(1) / (C(1) + e);
  const C er = e * r;
  const bool pos = x >= C(0);
  sp = pos ? r : er;
  sn = pos ? er : r;
}
template <class C> GG_FN C sigmoid_(C x) {
  C sp, sn;
  sigmoid2(x, sp, sn);
  return sp;
}

// softplus(x) = log(1 + e^x), written as max(x, 0) + log1p(e^-|x|).
// NOTE: the sign-split form never overflows and is exact (== x) for large x.
template <class C> GG_FN C softplus_(C x) { return (x > C(0) ? x : C(0)) + log1p_(exp_(-abs_(x))); }

// ---------------------------------------------------------------------------------------------
// Online log-sum-exp state: running max m and s = sum(exp(x - m)). One read of the data gives
// the max and the normaliser together (the "online softmax" recurrence).
// ---------------------------------------------------------------------------------------------
template <class C> struct MaxSum { C m, s; };

template <class C> GG_FN MaxSum<C> ms_init() {
  MaxSum<C> r;
  r.m = -inf_<C>();
  r.s = C(0);
  return r;
}

template <class C> GG_FN void ms_add(MaxSum<C>& a, C x) {
  if (x > a.m) {  // new max: rescale what we have (exp(-inf) = 0 when a.m is -inf)
    a.s = a.s * exp_(a.m - x) + C(1);
    a.m = x;
  } else if (abs_(x) != inf_<C>()) {
    // NOTE: infinities are skipped here: -inf adds no mass (and exp(-inf - -inf) would be NaN
    // while the max is still -inf); a repeated +inf only matters through the max. NaN still
    // enters (|NaN| != inf) and poisons s, which is how a NaN reaches every output of its row.
    a.s += exp_(x - a.m);
  }
}

template <class C> GG_FN MaxSum<C> ms_merge(MaxSum<C> a, MaxSum<C> b) {
  MaxSum<C> r;
  r.m = a.m > b.m ? a.m : b.m;
  // NOTE: an empty side (s == 0, max -inf) contributes nothing, and the side holding the max is
  // not rescaled; otherwise exp(-inf - -inf) or exp(inf - inf) would make NaN of a row that is
  // all -inf so far, or of a row whose +inf sits in only one thread's share.
  const C ta = a.s == C(0) ? C(0) : (a.m == r.m ? a.s : a.s * exp_(a.m - r.m));
  const C tb = b.s == C(0) ? C(0) : (b.m == r.m ? b.s : b.s * exp_(b.m - r.m));
  r.s = ta + tb;
  return r;
}

// logsumexp semantics (PyTorch): an infinite max is the result itself (+inf if any +inf,
// -inf for an all -inf row), unless a NaN was seen (then s is NaN).
template <class C> GG_FN C ms_lse(MaxSum<C> a) {
  return (abs_(a.m) == inf_<C>() && a.s == a.s) ? a.m : a.m + log_(a.s);
}

// log of the softmax normaliser relative to the max: log(s), or NaN when the max is infinite.
// NOTE: softmax / log_softmax / cross-entropy of a row containing +inf or only -inf is NaN,
// as in PyTorch (there exp(inf - inf) appears in the formula).
template <class C> GG_FN C ms_logs(MaxSum<C> a) {
  return abs_(a.m) == inf_<C>() ? nan_<C>() : log_(a.s);
}

// ---------------------------------------------------------------------------------------------
// Storage <-> compute conversion.
// ---------------------------------------------------------------------------------------------
template <class T> struct Io {
  typedef T C;
  static GG_FN C ld(T v) { return v; }
  static GG_FN T st(C v) { return v; }
};

// A wider type for per-row log-sum-exp values kept between forward and backward:
// float16/bfloat16 -> float32, float32 -> float64, float64 -> float64.
// NOTE: backward rebuilds softmax as exp(x - lse); with lse rounded to float32 a logit near 1e4
// would carry an absolute error of ~5e-4 into x - lse. A float64 lse for float32 logits keeps
// p = exp(x - lse) accurate to float32 precision for the cost of one double subtract per element.
template <class T> struct Wide { typedef double type; };

#if GG_KERNELS
template <> struct Io<__half> {
  typedef float C;
  static GG_DEV float ld(__half v) { return __half2float(v); }
  static GG_DEV __half st(float v) { return __float2half_rn(v); }
};
template <> struct Wide<__half> { typedef float type; };
// NOTE: bfloat16 as float16: __float2bfloat16_rn rounds to nearest even (NaN -> the canonical 0x7fff);
// float32's exponent range, so only |v| within half a bfloat16 ulp of FLT_MAX rounds to inf.
template <> struct Io<__nv_bfloat16> {
  typedef float C;
  static GG_DEV float ld(__nv_bfloat16 v) { return __bfloat162float(v); }
  static GG_DEV __nv_bfloat16 st(float v) { return __float2bfloat16_rn(v); }
};
template <> struct Wide<__nv_bfloat16> { typedef float type; };

// ---------------------------------------------------------------------------------------------
// Device helpers: vector packs, grid-stride loops, group reductions.
// ---------------------------------------------------------------------------------------------

// V consecutive elements moved with one load/store instruction (V * sizeof(T) <= 16 bytes).
template <class T, int V> struct alignas(sizeof(T) * V) Pack { T v[V]; };

// Elements per 16-byte vector: float 4, double 2, half and bfloat16 8.
template <class T> struct VecWidth { static const int value = 16 / sizeof(T); };

GG_DEV bool aligned16(const void* p) {
  return p == nullptr || (reinterpret_cast<unsigned long long>(p) & 15ull) == 0;
}

GG_DEV i64 thread_id() { return (i64)blockIdx.x * blockDim.x + threadIdx.x; }
GG_DEV i64 thread_count() { return (i64)gridDim.x * blockDim.x; }

template <class T, int V> GG_DEV Pack<T, V> ld_pack(const T* p, i64 j) {
  return reinterpret_cast<const Pack<T, V>*>(p)[j];
}
template <class T, int V> GG_DEV void st_pack(T* p, i64 j, const Pack<T, V>& v) {
  reinterpret_cast<Pack<T, V>*>(p)[j] = v;
}

// out[i] = f(a[i], b[i], c[i]) for i < n, in the compute type. b and c may be null (read as 0).
// NOTE: 16-byte vector loads/stores when every pointer is 16-byte aligned (CuPy allocations are;
// offset views may not be), then a scalar tail; otherwise a plain grid-stride loop.
template <class T, class F>
GG_DEV void emap(i64 n, T* __restrict__ out, const T* __restrict__ a, const T* __restrict__ b,
                 const T* __restrict__ c, F f) {
  typedef typename Io<T>::C C;
  const int W = VecWidth<T>::value;
  const i64 tid = thread_id(), nth = thread_count();
  const bool vec = aligned16(out) && aligned16(a) && aligned16(b) && aligned16(c);
  const i64 nvec = vec ? n / W : 0;
  for (i64 j = tid; j < nvec; j += nth) {
    Pack<T, W> pa = ld_pack<T, W>(a, j), pb, pc, po;
    if (b) pb = ld_pack<T, W>(b, j);
    if (c) pc = ld_pack<T, W>(c, j);
#pragma unroll
    for (int k = 0; k < W; ++k)
      po.v[k] = Io<T>::st(f(Io<T>::ld(pa.v[k]), b ? Io<T>::ld(pb.v[k]) : C(0),
                            c ? Io<T>::ld(pc.v[k]) : C(0)));
    st_pack<T, W>(out, j, po);
  }
  for (i64 i = nvec * W + tid; i < n; i += nth)
    out[i] = Io<T>::st(f(Io<T>::ld(a[i]), b ? Io<T>::ld(b[i]) : C(0), c ? Io<T>::ld(c[i]) : C(0)));
}

// Warp shuffles for the values we reduce.
GG_DEV float shfl_xor(float v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
GG_DEV double shfl_xor(double v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
template <class C> GG_DEV MaxSum<C> shfl_xor(MaxSum<C> v, int o) {
  MaxSum<C> r;
  r.m = shfl_xor(v.m, o);
  r.s = shfl_xor(v.s, o);
  return r;
}

// Row-group layout of the row kernels: blockDim.x threads (32, or a multiple of 32 when
// blockDim.y == 1) share one row; blockDim.y rows per block; rows are grid-strided.
GG_DEV i64 row_first() { return (i64)blockIdx.x * blockDim.y + threadIdx.y; }
GG_DEV i64 row_stride() { return (i64)gridDim.x * blockDim.y; }

// Reduce v over the threads of one row group; every thread of the group gets the result.
// NOTE: deterministic: a fixed shuffle tree, then (for groups wider than a warp) every thread
// folds the per-warp partials from shared memory in the same order. The leading barrier
// protects the buffer from the previous call; it is only reached when blockDim.y == 1, where
// the row loop is uniform over the block.
template <class V, class Op> GG_DEV V group_reduce(V v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, shfl_xor(v, o));
  if (blockDim.x <= 32) return v;
  __shared__ V buf[32];
  const int nw = blockDim.x >> 5;
  __syncthreads();
  if ((threadIdx.x & 31) == 0) buf[threadIdx.x >> 5] = v;
  __syncthreads();
  v = buf[0];
  for (int w = 1; w < nw; ++w) v = op(v, buf[w]);
  return v;
}

struct SumOp {
  template <class V> GG_DEV V operator()(V a, V b) const { return a + b; }
};
struct MaxSumOp {
  template <class C> GG_DEV MaxSum<C> operator()(MaxSum<C> a, MaxSum<C> b) const {
    return ms_merge(a, b);
  }
};
template <class C> GG_DEV C group_sum(C v) { return group_reduce(v, SumOp()); }
template <class C> GG_DEV MaxSum<C> group_maxsum(MaxSum<C> v) { return group_reduce(v, MaxSumOp()); }

// Max-sum state of row `x[0:n]` for the calling group (one read of the row).
template <class T> GG_DEV MaxSum<typename Io<T>::C> row_maxsum(const T* __restrict__ x, i64 n) {
  typedef typename Io<T>::C C;
  MaxSum<C> a = ms_init<C>();
  for (i64 c = threadIdx.x; c < n; c += blockDim.x) ms_add(a, Io<T>::ld(x[c]));
  return group_maxsum(a);
}
#endif  // GG_KERNELS

}  // namespace gg
