// Mixed precision: the gradient scaler's inf/NaN check and unscale, fused (gpugrad.amp.GradScaler).
//
// One launch per (device, dtype) handles every gradient of that dtype: a table of pointers and of
// cumulative element offsets, one pass over each gradient (read once, written once), and a
// device-side flag that any non-finite element sets. The host reads the flag once per step.
// The bridge and its NumPy fallback (same semantics) are in gpugrad/fused/amp.py.
//
//   gg::unscale_one<C>(g, inv, bad)    per-element math (host and device)
//   gpugrad_amp_unscale<T>(...)        T = float, double, __half, __nv_bfloat16 (C = float for both)
//
// NOTE: PyTorch's semantics (_amp_foreach_non_finite_check_and_unscale_): the check looks at the
//       gradient as stored (before the multiply, so a finite value that the multiply would push to
//       inf does not count), every gradient is unscaled whether or not an inf was found, and
//       inv_scale == 1 leaves the values untouched. inv_scale is float32 (the scale's dtype) and
//       read from device memory, so the scale never has to visit the host.
#include "common.cuh"

namespace gg {

template <class C> GG_FN C unscale_one(C g, C inv, int& bad) {
  // NOTE: |g| < inf is false for +-inf and for NaN (every comparison with NaN is false)
  if (!(abs_(g) < inf_<C>())) bad = 1;
  return inv == C(1) ? g : g * inv;
}

}  // namespace gg

#if GG_KERNELS

// ptrs[t] is the address of gradient t (T*, contiguous), offsets[t] .. offsets[t + 1] its elements
// in the concatenation; n = offsets[ntensors]. The whole grid strides over each gradient in turn.
template <class T>
__global__ void gpugrad_amp_unscale(const unsigned long long* __restrict__ ptrs,
                                    const long long* __restrict__ offsets, long long ntensors,
                                    const float* __restrict__ inv_scale, float* __restrict__ found_inf,
                                    long long n) {
  typedef typename gg::Io<T>::C C;
  const C inv = C(*inv_scale);
  const gg::i64 tid = gg::thread_id(), nth = gg::thread_count();
  int bad = 0;
  for (long long t = 0; t < ntensors; ++t) {
    T* g = reinterpret_cast<T*>(ptrs[t]);
    const gg::i64 len = offsets[t + 1] - offsets[t];
    for (gg::i64 i = tid; i < len; i += nth) g[i] = gg::Io<T>::st(gg::unscale_one(gg::Io<T>::ld(g[i]), inv, bad));
  }
  // NOTE: a benign race (every writer stores 1.0f); one store per thread, not per element.
  if (bad) *found_inf = 1.0f;
  (void)n;  // the total: it sized the grid (the launcher's convention); the loops use offsets
}

#endif  // GG_KERNELS
