// gpugrad fused kernels: losses. Per-row / per-element values only: the reduction
// ('none' | 'mean' | 'sum') and the 'mean' denominators live in gpugrad/fused/loss.py.
//
// Cross-entropy with class-index targets (logits x: (rows, ncls) contiguous, target: int64):
//   gpugrad_cross_entropy_fwd<T>(x, target, w, wsum, loss, lse, err, rows, ncls, ignore_index, eps)
//       loss[r] (compute type) and lse[r] (Wide<T>) only: no softmax matrix is written.
//   gpugrad_cross_entropy_bwd<T>(x, target, w, wsum, lse, g, g_stride, gx, rows, ncls, ignore_index, eps)
//       rebuilds p = exp(x - lse) in the same pass that writes gx.
// Cross-entropy with class-probability targets q (same shape and dtype as x):
//   gpugrad_cross_entropy_prob_fwd<T>(x, q, w, loss, lse, rows, ncls, eps)
//   gpugrad_cross_entropy_prob_bwd<T>(x, q, w, lse, g, g_stride, gx, rows, ncls, eps)
// NLL on log-probabilities:
//   gpugrad_nll_loss_fwd<T>(logp, target, w, loss, err, rows, ncls, ignore_index)
//   gpugrad_nll_loss_bwd<T>(target, w, g, g_stride, gx, rows, ncls, ignore_index)
// Elementwise (x, target same shape):
//   gpugrad_<name>_fwd<T>(x, t, out, n, p0)          name: mse_loss l1_loss huber_loss(delta)
//   gpugrad_<name>_bwd<T>(g, gscalar, x, t, gx, n, p0)      smooth_l1_loss(beta)
//   gpugrad_bce_with_logits_fwd<T>(x, t, w, pw, out, n)
//   gpugrad_bce_with_logits_bwd<T>(g, gscalar, x, t, w, pw, gx, n)
//
// Pointers that may be null: w (no class weights), wsum (only read when eps != 0 and w is set),
// g (elementwise bwd: then the device scalar *gscalar is the upstream gradient of every element).
// g for row losses is in the compute type with g_stride 0 (one scalar: 'mean'/'sum', already
// divided by the denominator) or 1 ('none'); passing it as a device scalar avoids a host sync.
//
// Out-of-range targets (not ignore_index and not in [0, ncls)) set *err = 1 and get loss NaN;
// backward writes zeros for them and never reads out of bounds.
#include "common.cuh"

namespace gg {

// ---- cross-entropy, class-index targets ------------------------------------------------------
// loss = (1 - eps) * w[t] * (lse - x[t]) + eps/C * sum_c w[c] * (lse - x[c])      (PyTorch)
// with lse = m + logs. sw = sum_c w[c] * (x[c] - x0) and W = sum_c w[c].
// NOTE: lse - x[t] is formed as (m - x[t]) + logs, never by subtracting a rounded lse, so a
// confident row with |logits| ~ 1e4 keeps its small loss exact; likewise the smoothing sum is
// shifted by the row's first logit x0 (sum w (x - x0)) to avoid cancelling two ~C*1e4 sums.
template <class C>
GG_FN C ce_row_loss(C m, C logs, C x0, C xt, C wt, C sw, C W, C eps, C ncls) {
  C loss = (C(1) - eps) * wt * ((m - xt) + logs);
  if (eps != C(0)) loss += eps / ncls * (W * ((m - x0) + logs) - sw);
  return loss;
}

// d loss / d x[c] = gs * (a * p[c] - b * w[c] - [c == t] * d), p = softmax(x).
template <class C> struct CeCoef { C a, b, d; };
template <class C> GG_FN CeCoef<C> ce_coef(C gs, C wt, C W, C eps, C ncls) {
  CeCoef<C> k;
  k.a = gs * ((C(1) - eps) * wt + eps / ncls * W);
  k.b = gs * (eps / ncls);
  k.d = gs * (C(1) - eps) * wt;
  return k;
}
template <class C> GG_FN C ce_grad_elem(const CeCoef<C>& k, C p, C wc, bool is_target) {
  return k.a * p - k.b * wc - (is_target ? k.d : C(0));
}

// ---- cross-entropy, probability targets -------------------------------------------------------
// q' = (1 - eps) q + eps/C;  loss = sum_c w[c] q'[c] (lse - x[c]) = S2 * ((m - x0) + logs) - S1
// with S1 = sum w q' (x - x0), S2 = sum w q'.  d/dx[c] = gs * (S2 * p[c] - w[c] q'[c]).
template <class C> GG_FN C ce_smooth(C q, C eps, C ncls) { return (C(1) - eps) * q + eps / ncls; }
template <class C> GG_FN C ce_prob_row_loss(C m, C logs, C x0, C s1, C s2) {
  return s2 * ((m - x0) + logs) - s1;
}
template <class C> GG_FN C ce_prob_grad_elem(C gs, C s2, C p, C wq) { return gs * (s2 * p - wq); }

// ---- binary cross-entropy with logits ---------------------------------------------------------
// loss = w * ((1 - t) x + lw * softplus(-x)),  lw = 1 + (pw - 1) t   (pw = 1 without pos_weight)
// NOTE: softplus(-x) = max(-x, 0) + log1p(exp(-|x|)) (the sign-branched form): finite for any
// finite x, e.g. x = -1e4, t = 0 gives -1e4 + 1e4 = 0 exactly.
template <class C> GG_FN C bce_fwd(C x, C t, C w, C pw) {
  const C lw = C(1) + (pw - C(1)) * t;
  return w * ((C(1) - t) * x + lw * softplus_(-x));
}
// d/dx = w * ((1 - t) - lw * sigmoid(-x))
template <class C> GG_FN C bce_bwd(C x, C t, C w, C pw) {
  const C lw = C(1) + (pw - C(1)) * t;
  return w * ((C(1) - t) - lw * sigmoid_(-x));
}

// ---- elementwise regression losses on d = x - t -----------------------------------------------
template <class C> GG_FN C sign_(C d) {  // NaN stays NaN
  return d > C(0) ? C(1) : (d < C(0) ? C(-1) : d);
}
template <class C> struct MseLoss {
  C p0;
  GG_FN C fwd(C d) const { return d * d; }
  GG_FN C bwd(C d) const { return C(2) * d; }
};
template <class C> struct L1Loss {
  C p0;
  GG_FN C fwd(C d) const { return abs_(d); }
  GG_FN C bwd(C d) const { return sign_(d); }  // 0 at d == 0, as PyTorch's sgn
};
template <class C> struct HuberLoss {  // p0 = delta
  C p0;
  GG_FN C fwd(C d) const {
    const C z = abs_(d);
    return z < p0 ? C(0.5) * d * d : p0 * (z - C(0.5) * p0);
  }
  GG_FN C bwd(C d) const { return d < -p0 ? -p0 : (d > p0 ? p0 : d); }
};
template <class C> struct SmoothL1Loss {  // p0 = beta; beta == 0 is exactly l1 (PyTorch)
  C p0;
  GG_FN C fwd(C d) const {
    const C z = abs_(d);
    return z < p0 ? C(0.5) * d * d / p0 : z - C(0.5) * p0;
  }
  // NOTE: beta == 0 takes sign(d) explicitly: d / beta would be 0/0 = NaN at d == 0.
  GG_FN C bwd(C d) const {
    if (p0 == C(0)) return sign_(d);
    return d < -p0 ? C(-1) : (d > p0 ? C(1) : d / p0);
  }
};

}  // namespace gg

#if GG_KERNELS

namespace gg {
template <class T> GG_DEV typename Io<T>::C ld_or(const T* p, i64 i, typename Io<T>::C dflt) {
  return p ? Io<T>::ld(p[i]) : dflt;
}
}  // namespace gg

template <class T>
__global__ void gpugrad_cross_entropy_fwd(const T* __restrict__ x, const long long* __restrict__ target,
                                          const T* __restrict__ w,
                                          const typename gg::Io<T>::C* __restrict__ wsum,
                                          typename gg::Io<T>::C* __restrict__ loss,
                                          typename gg::Wide<T>::type* __restrict__ lse,
                                          int* __restrict__ err, long long rows, long long ncls,
                                          long long ignore_index, double eps_) {
  typedef typename gg::Io<T>::C C;
  typedef typename gg::Wide<T>::type L;
  const C eps = C(eps_);
  const bool smooth = eps != C(0);  // uniform: guards the extra group reduction
  for (long long r = gg::row_first(); r < rows; r += gg::row_stride()) {
    const T* xr = x + r * ncls;
    const C x0 = gg::Io<T>::ld(xr[0]);
    gg::MaxSum<C> a = gg::ms_init<C>();
    C sw = C(0);
    for (long long c = threadIdx.x; c < ncls; c += blockDim.x) {
      const C xc = gg::Io<T>::ld(xr[c]);
      gg::ms_add(a, xc);
      if (smooth) sw += gg::ld_or(w, c, C(1)) * (xc - x0);
    }
    a = gg::group_maxsum(a);
    if (smooth) sw = gg::group_sum(sw);
    if (threadIdx.x == 0) {
      const long long t = target[r];
      const C logs = gg::ms_logs(a);
      lse[r] = L(a.m) + L(logs);
      if (t == ignore_index) {
        loss[r] = C(0);
      } else if (t < 0 || t >= ncls) {
        // NOTE: a benign race (every writer stores 1); the host reads the flag after the launch.
        *err = 1;
        loss[r] = gg::nan_<C>();
      } else {
        const C W = (smooth && w) ? *wsum : C(ncls);
        loss[r] = gg::ce_row_loss(a.m, logs, x0, gg::Io<T>::ld(xr[t]), gg::ld_or(w, t, C(1)), sw, W,
                                  eps, C(ncls));
      }
    }
  }
}

template <class T>
__global__ void gpugrad_cross_entropy_bwd(const T* __restrict__ x, const long long* __restrict__ target,
                                          const T* __restrict__ w,
                                          const typename gg::Io<T>::C* __restrict__ wsum,
                                          const typename gg::Wide<T>::type* __restrict__ lse,
                                          const typename gg::Io<T>::C* __restrict__ g,
                                          long long g_stride, T* __restrict__ gx, long long rows,
                                          long long ncls, long long ignore_index, double eps_) {
  typedef typename gg::Io<T>::C C;
  typedef typename gg::Wide<T>::type L;
  const C eps = C(eps_);
  const C W = (eps != C(0) && w) ? *wsum : C(ncls);
  for (long long r = gg::row_first(); r < rows; r += gg::row_stride()) {
    const long long t = target[r];
    T* gr = gx + r * ncls;
    if (t == ignore_index || t < 0 || t >= ncls) {
      for (long long c = threadIdx.x; c < ncls; c += blockDim.x) gr[c] = gg::Io<T>::st(C(0));
      continue;
    }
    const gg::CeCoef<C> k = gg::ce_coef(g[r * g_stride], gg::ld_or(w, t, C(1)), W, eps, C(ncls));
    const L l = lse[r];
    const T* xr = x + r * ncls;
    for (long long c = threadIdx.x; c < ncls; c += blockDim.x) {
      // NOTE: the difference is taken in the wide type, then exp in the compute type.
      const C p = gg::exp_(C(L(gg::Io<T>::ld(xr[c])) - l));
      gr[c] = gg::Io<T>::st(gg::ce_grad_elem(k, p, gg::ld_or(w, c, C(1)), c == t));
    }
  }
}

template <class T>
__global__ void gpugrad_cross_entropy_prob_fwd(const T* __restrict__ x, const T* __restrict__ q,
                                               const T* __restrict__ w,
                                               typename gg::Io<T>::C* __restrict__ loss,
                                               typename gg::Wide<T>::type* __restrict__ lse,
                                               long long rows, long long ncls, double eps_) {
  typedef typename gg::Io<T>::C C;
  typedef typename gg::Wide<T>::type L;
  const C eps = C(eps_), nc = C(ncls);
  for (long long r = gg::row_first(); r < rows; r += gg::row_stride()) {
    const T* xr = x + r * ncls;
    const T* qr = q + r * ncls;
    const C x0 = gg::Io<T>::ld(xr[0]);
    gg::MaxSum<C> a = gg::ms_init<C>();
    C s1 = C(0), s2 = C(0);
    for (long long c = threadIdx.x; c < ncls; c += blockDim.x) {
      const C xc = gg::Io<T>::ld(xr[c]);
      const C wq = gg::ld_or(w, c, C(1)) * gg::ce_smooth(gg::Io<T>::ld(qr[c]), eps, nc);
      gg::ms_add(a, xc);
      s1 += wq * (xc - x0);
      s2 += wq;
    }
    a = gg::group_maxsum(a);
    s1 = gg::group_sum(s1);
    s2 = gg::group_sum(s2);
    if (threadIdx.x == 0) {
      const C logs = gg::ms_logs(a);
      lse[r] = L(a.m) + L(logs);
      loss[r] = gg::ce_prob_row_loss(a.m, logs, x0, s1, s2);
    }
  }
}

// NOTE: two passes over the targets (S2 = sum w q' first, then the gradient): keeping S2 from
// the forward would need a second saved (rows,) array for a rarely used mode.
template <class T>
__global__ void gpugrad_cross_entropy_prob_bwd(const T* __restrict__ x, const T* __restrict__ q,
                                               const T* __restrict__ w,
                                               const typename gg::Wide<T>::type* __restrict__ lse,
                                               const typename gg::Io<T>::C* __restrict__ g,
                                               long long g_stride, T* __restrict__ gx,
                                               long long rows, long long ncls, double eps_) {
  typedef typename gg::Io<T>::C C;
  typedef typename gg::Wide<T>::type L;
  const C eps = C(eps_), nc = C(ncls);
  for (long long r = gg::row_first(); r < rows; r += gg::row_stride()) {
    const T* xr = x + r * ncls;
    const T* qr = q + r * ncls;
    C s2 = C(0);
    for (long long c = threadIdx.x; c < ncls; c += blockDim.x)
      s2 += gg::ld_or(w, c, C(1)) * gg::ce_smooth(gg::Io<T>::ld(qr[c]), eps, nc);
    s2 = gg::group_sum(s2);
    const C gs = g[r * g_stride];
    const L l = lse[r];
    for (long long c = threadIdx.x; c < ncls; c += blockDim.x) {
      const C p = gg::exp_(C(L(gg::Io<T>::ld(xr[c])) - l));
      const C wq = gg::ld_or(w, c, C(1)) * gg::ce_smooth(gg::Io<T>::ld(qr[c]), eps, nc);
      gx[r * ncls + c] = gg::Io<T>::st(gg::ce_prob_grad_elem(gs, s2, p, wq));
    }
  }
}

// One thread per row: a gather.
template <class T>
__global__ void gpugrad_nll_loss_fwd(const T* __restrict__ logp, const long long* __restrict__ target,
                                     const T* __restrict__ w, typename gg::Io<T>::C* __restrict__ loss,
                                     int* __restrict__ err, long long rows, long long ncls,
                                     long long ignore_index) {
  typedef typename gg::Io<T>::C C;
  for (long long r = gg::thread_id(); r < rows; r += gg::thread_count()) {
    const long long t = target[r];
    if (t == ignore_index) {
      loss[r] = C(0);
    } else if (t < 0 || t >= ncls) {
      *err = 1;
      loss[r] = gg::nan_<C>();
    } else {
      loss[r] = -gg::ld_or(w, t, C(1)) * gg::Io<T>::ld(logp[r * ncls + t]);
    }
  }
}

// Row-group layout: the dense gradient row is zeros except -w[t] * g at the target.
template <class T>
__global__ void gpugrad_nll_loss_bwd(const long long* __restrict__ target, const T* __restrict__ w,
                                     const typename gg::Io<T>::C* __restrict__ g, long long g_stride,
                                     T* __restrict__ gx, long long rows, long long ncls,
                                     long long ignore_index) {
  typedef typename gg::Io<T>::C C;
  for (long long r = gg::row_first(); r < rows; r += gg::row_stride()) {
    const long long t = target[r];
    const bool valid = t != ignore_index && t >= 0 && t < ncls;
    const T v = gg::Io<T>::st(valid ? -gg::ld_or(w, t, C(1)) * g[r * g_stride] : C(0));
    const T zero = gg::Io<T>::st(C(0));
    for (long long c = threadIdx.x; c < ncls; c += blockDim.x) gx[r * ncls + c] = c == t ? v : zero;
  }
}

#define GG_POINTWISE_LOSS(name, Op)                                                                \
  template <class T>                                                                               \
  __global__ void gpugrad_##name##_fwd(const T* __restrict__ x, const T* __restrict__ t,           \
                                       T* __restrict__ out, long long n, double p0) {              \
    typedef typename gg::Io<T>::C C;                                                               \
    Op<C> op;                                                                                      \
    op.p0 = C(p0);                                                                                 \
    gg::emap(n, out, x, t, (const T*)nullptr, [&](C a, C b, C) { return op.fwd(a - b); });         \
  }                                                                                                \
  template <class T>                                                                               \
  __global__ void gpugrad_##name##_bwd(const T* __restrict__ g,                                    \
                                       const typename gg::Io<T>::C* __restrict__ gscalar,          \
                                       const T* __restrict__ x, const T* __restrict__ t,           \
                                       T* __restrict__ gx, long long n, double p0) {               \
    typedef typename gg::Io<T>::C C;                                                               \
    Op<C> op;                                                                                      \
    op.p0 = C(p0);                                                                                 \
    const bool per_elem = g != nullptr;                                                            \
    const C gs = per_elem ? C(0) : *gscalar;                                                       \
    gg::emap(n, gx, x, t, g,                                                                       \
             [&](C a, C b, C c) { return (per_elem ? c : gs) * op.bwd(a - b); });                  \
  }

GG_POINTWISE_LOSS(mse_loss, gg::MseLoss)
GG_POINTWISE_LOSS(l1_loss, gg::L1Loss)
GG_POINTWISE_LOSS(huber_loss, gg::HuberLoss)
GG_POINTWISE_LOSS(smooth_l1_loss, gg::SmoothL1Loss)

// NOTE: weight / pos_weight arrive materialised to the input's shape (the Python side
// broadcasts them), which keeps this kernel a plain grid-stride loop over n.
template <class T>
__global__ void gpugrad_bce_with_logits_fwd(const T* __restrict__ x, const T* __restrict__ t,
                                            const T* __restrict__ w, const T* __restrict__ pw,
                                            T* __restrict__ out, long long n) {
  typedef typename gg::Io<T>::C C;
  for (long long i = gg::thread_id(); i < n; i += gg::thread_count())
    out[i] = gg::Io<T>::st(gg::bce_fwd(gg::Io<T>::ld(x[i]), gg::Io<T>::ld(t[i]), gg::ld_or(w, i, C(1)),
                                       gg::ld_or(pw, i, C(1))));
}

template <class T>
__global__ void gpugrad_bce_with_logits_bwd(const T* __restrict__ g,
                                            const typename gg::Io<T>::C* __restrict__ gscalar,
                                            const T* __restrict__ x, const T* __restrict__ t,
                                            const T* __restrict__ w, const T* __restrict__ pw,
                                            T* __restrict__ gx, long long n) {
  typedef typename gg::Io<T>::C C;
  const C gs = g ? C(0) : *gscalar;
  for (long long i = gg::thread_id(); i < n; i += gg::thread_count()) {
    const C gi = g ? gg::Io<T>::ld(g[i]) : gs;
    gx[i] = gg::Io<T>::st(gi * gg::bce_bwd(gg::Io<T>::ld(x[i]), gg::Io<T>::ld(t[i]),
                                           gg::ld_or(w, i, C(1)), gg::ld_or(pw, i, C(1))));
  }
}

#endif  // GG_KERNELS
