// gpugrad fused kernels: row reductions over the last dim of a contiguous (rows, n) array.
//
//   gpugrad_softmax_fwd<T>(x, y, rows, n)               y  = exp(x - m) / s
//   gpugrad_softmax_bwd<T>(g, y, gx, rows, n)           gx = y * (g - sum(g * y))
//   gpugrad_log_softmax_fwd<T>(x, y, rows, n)           y  = (x - m) - log(s)
//   gpugrad_log_softmax_bwd<T>(g, y, gx, rows, n)       gx = g - exp(y) * sum(g)
//   gpugrad_logsumexp_fwd<T>(x, out, rows, n)           out[r] = m + log(s)
//   gpugrad_logsumexp_bwd<T>(g, x, lse, gx, rows, n)    gx = g[r] * exp(x - lse[r])
// with m the row max and s = sum(exp(x - m)) from one online pass (common.cuh, MaxSum).
// Launch layout: see row_first()/group_reduce() in common.cuh (a warp per row for short rows,
// a block per row for long ones). Passes over memory: softmax/log_softmax forward read x twice
// (the second read usually hits L2) and write once; logsumexp reads once.
#include "common.cuh"

namespace gg {

// Per-element math (shared with the host harness).
template <class C> GG_FN C softmax_elem(C x, C m, C inv_s) { return exp_(x - m) * inv_s; }
// NOTE: (x - m) - log(s), not x - (m + log(s)): x - m is exact for nearby values, so the
// largest log-probabilities keep their precision even when |x| ~ 1e4.
template <class C> GG_FN C log_softmax_elem(C x, C m, C logs) { return (x - m) - logs; }
template <class C> GG_FN C softmax_bwd_elem(C g, C y, C dot) { return y * (g - dot); }
template <class C> GG_FN C log_softmax_bwd_elem(C g, C y, C gsum) { return g - exp_(y) * gsum; }
template <class C> GG_FN C logsumexp_bwd_elem(C g, C x, C lse) { return g * exp_(x - lse); }
// 1/s, or NaN when the max is infinite (a +inf or an all -inf row: NaN as in PyTorch).
template <class C> GG_FN C softmax_inv(MaxSum<C> a) {
  return abs_(a.m) == inf_<C>() ? nan_<C>() : C(1) / a.s;
}

}  // namespace gg

#if GG_KERNELS

template <class T>
__global__ void gpugrad_softmax_fwd(const T* __restrict__ x, T* __restrict__ y, long long rows,
                                    long long n) {
  typedef typename gg::Io<T>::C C;
  for (long long r = gg::row_first(); r < rows; r += gg::row_stride()) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    const gg::MaxSum<C> a = gg::row_maxsum(xr, n);
    const C inv = gg::softmax_inv(a);
    for (long long c = threadIdx.x; c < n; c += blockDim.x)
      yr[c] = gg::Io<T>::st(gg::softmax_elem(gg::Io<T>::ld(xr[c]), a.m, inv));
  }
}

template <class T>
__global__ void gpugrad_log_softmax_fwd(const T* __restrict__ x, T* __restrict__ y, long long rows,
                                        long long n) {
  typedef typename gg::Io<T>::C C;
  for (long long r = gg::row_first(); r < rows; r += gg::row_stride()) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    const gg::MaxSum<C> a = gg::row_maxsum(xr, n);
    const C logs = gg::ms_logs(a);
    for (long long c = threadIdx.x; c < n; c += blockDim.x)
      yr[c] = gg::Io<T>::st(gg::log_softmax_elem(gg::Io<T>::ld(xr[c]), a.m, logs));
  }
}

template <class T>
__global__ void gpugrad_logsumexp_fwd(const T* __restrict__ x, T* __restrict__ out, long long rows,
                                      long long n) {
  for (long long r = gg::row_first(); r < rows; r += gg::row_stride()) {
    const auto a = gg::row_maxsum(x + r * n, n);
    if (threadIdx.x == 0) out[r] = gg::Io<T>::st(gg::ms_lse(a));
  }
}

template <class T>
__global__ void gpugrad_softmax_bwd(const T* __restrict__ g, const T* __restrict__ y,
                                    T* __restrict__ gx, long long rows, long long n) {
  typedef typename gg::Io<T>::C C;
  for (long long r = gg::row_first(); r < rows; r += gg::row_stride()) {
    const T* gr = g + r * n;
    const T* yr = y + r * n;
    C dot = C(0);
    for (long long c = threadIdx.x; c < n; c += blockDim.x)
      dot += gg::Io<T>::ld(gr[c]) * gg::Io<T>::ld(yr[c]);
    dot = gg::group_sum(dot);
    for (long long c = threadIdx.x; c < n; c += blockDim.x)
      gx[r * n + c] = gg::Io<T>::st(gg::softmax_bwd_elem(gg::Io<T>::ld(gr[c]), gg::Io<T>::ld(yr[c]), dot));
  }
}

template <class T>
__global__ void gpugrad_log_softmax_bwd(const T* __restrict__ g, const T* __restrict__ y,
                                        T* __restrict__ gx, long long rows, long long n) {
  typedef typename gg::Io<T>::C C;
  for (long long r = gg::row_first(); r < rows; r += gg::row_stride()) {
    const T* gr = g + r * n;
    const T* yr = y + r * n;
    C gsum = C(0);
    for (long long c = threadIdx.x; c < n; c += blockDim.x) gsum += gg::Io<T>::ld(gr[c]);
    gsum = gg::group_sum(gsum);
    for (long long c = threadIdx.x; c < n; c += blockDim.x)
      gx[r * n + c] = gg::Io<T>::st(gg::log_softmax_bwd_elem(gg::Io<T>::ld(gr[c]), gg::Io<T>::ld(yr[c]), gsum));
  }
}

template <class T>
__global__ void gpugrad_logsumexp_bwd(const T* __restrict__ g, const T* __restrict__ x,
                                      const T* __restrict__ lse, T* __restrict__ gx, long long rows,
                                      long long n) {
  typedef typename gg::Io<T>::C C;
  for (long long r = gg::row_first(); r < rows; r += gg::row_stride()) {
    const C gr = gg::Io<T>::ld(g[r]), l = gg::Io<T>::ld(lse[r]);
    for (long long c = threadIdx.x; c < n; c += blockDim.x)
      gx[r * n + c] = gg::Io<T>::st(gg::logsumexp_bwd_elem(gr, gg::Io<T>::ld(x[r * n + c]), l));
  }
}

#endif  // GG_KERNELS
