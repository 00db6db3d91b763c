// Fused optimizer updates for gpugrad.optim.
//
// One elementwise pass per parameter and step: the parameter, its gradient and the optimizer
// state are each read once and written once. The bridge is gpugrad/fused/optim.py, which also
// holds the NumPy fallback with the same semantics (PyTorch's single-tensor algorithms).
//
//   gg::<opt>_update<C>(...)     per-element math on the compute type C (host and device)
//   gpugrad_<opt>_step<T>(...)   grid-stride kernels: load, update, store (T = float, double, __half, __nv_bfloat16)
//
// NOTE: __half (and __nv_bfloat16) parameters keep float32 state (exp_avg, momentum_buffer, ...) and do float32 math
//       (C = Io<__half>::C = float); the parameter is widened on load and rounded once (RN) on
//       store. There is no float32 master copy, so an update below half an ulp of the parameter
//       is lost, as with any pure-float16 training.
// Hyper-parameters arrive as double (like every gpugrad kernel) and are rounded once to C. Terms
// that depend on the step count (Adam's bias corrections, Adagrad's decayed lr) and the 1 - x
// coefficients are computed on the host in double, so the kernel and the NumPy fallback round
// exactly the same numbers.
// Optional state (momentum buffer, amsgrad max, centered average) is selected by an int flag; when
// the flag is 0 the pointer (loader.NULL) is never touched.
#include "common.cuh"

namespace gg {

GG_FN float sqrt_opt(float x) { return sqrtf(x); }
GG_FN double sqrt_opt(double x) { return sqrt(x); }

// NOTE: a max that propagates NaN from either side (like numpy.maximum / torch.maximum); fmaxf
//       would silently drop a NaN from amsgrad's running maximum.
template <class C> GG_FN C max_nan(C a, C b) { return (a > b || a != a) ? a : b; }

// ---------------------------------------------------------------- per-element math (host+device)

// SGD (PyTorch): g <- (maximize ? -g : g) + wd * p
//                b <- first ? g : momentum * b + (1 - dampening) * g      (only when momentum != 0)
//                g <- nesterov ? g + momentum * b : b
//                p <- p - lr * g
// NOTE: maximize negates the raw gradient before weight decay is added (PyTorch's implementation;
//       its documentation pseudo-code negates at the end, which would also flip the decay).
template <class C>
GG_FN void sgd_update(C& p, C g, C& buf, C lr, C momentum, C one_minus_dampening, C weight_decay,
                      int has_momentum, int first, int nesterov, int maximize) {
  if (maximize) g = -g;
  // NOTE: no decay term when it is zero, so an inf parameter does not turn into 0 * inf = NaN.
  if (weight_decay != C(0)) g += weight_decay * p;
  if (has_momentum) {
    // NOTE: the first step copies the gradient into the buffer (no dampening), as PyTorch does.
    buf = first ? g : momentum * buf + one_minus_dampening * g;
    g = nesterov ? g + momentum * buf : buf;
  }
  p -= lr * g;
}

// Adam / AdamW (PyTorch), one function for both:
//   Adam:  l2 = weight_decay, param_scale = 1            (L2 penalty folded into the gradient)
//   AdamW: l2 = 0,            param_scale = 1 - lr * wd  (decoupled decay, applied to p first)
//   m <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g^2
//   vhat <- amsgrad ? (vmax <- max(vmax, v)) : v
//   p <- p - step_size * m / (sqrt(vhat) / bc2_sqrt + eps)
//   with step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t) from the host.
// NOTE: eps is added after dividing by sqrt(bias correction 2), as in PyTorch (not to sqrt(v)).
template <class C>
GG_FN void adam_update(C& p, C g, C& m, C& v, C& vmax, C param_scale, C l2, C beta1,
                       C one_minus_beta1, C beta2, C one_minus_beta2, C step_size, C bc2_sqrt,
                       C eps, int amsgrad, int maximize) {
  if (maximize) g = -g;
  if (l2 != C(0)) g += l2 * p;
  p *= param_scale;
  m = beta1 * m + one_minus_beta1 * g;
  v = beta2 * v + one_minus_beta2 * (g * g);
  C vhat = v;
  if (amsgrad) {
    vmax = max_nan(vmax, v);
    vhat = vmax;
  }
  const C denom = sqrt_opt(vhat) / bc2_sqrt + eps;
  p -= step_size * (m / denom);
}

// RMSprop (PyTorch): g <- (maximize ? -g : g) + wd * p
//   sq <- alpha * sq + (1 - alpha) * g^2
//   centered: gavg <- alpha * gavg + (1 - alpha) * g;  var <- sq - gavg^2;  else var <- sq
//   avg <- sqrt(var) + eps
//   momentum > 0: buf <- momentum * buf + g / avg; p <- p - lr * buf;  else p <- p - lr * g / avg
template <class C>
GG_FN void rmsprop_update(C& p, C g, C& sq, C& gavg, C& buf, C lr, C alpha, C one_minus_alpha,
                          C eps, C weight_decay, C momentum, int centered, int has_momentum,
                          int maximize) {
  if (maximize) g = -g;
  if (weight_decay != C(0)) g += weight_decay * p;
  sq = alpha * sq + one_minus_alpha * (g * g);
  C var = sq;
  if (centered) {
    gavg = alpha * gavg + one_minus_alpha * g;
    var = sq - gavg * gavg;
    // NOTE: sq >= gavg^2 holds exactly (Cauchy-Schwarz on the EMA weights), but rounding can make
    //       the difference slightly negative once the gradient is nearly constant; clamp at 0 so
    //       sqrt does not return NaN (PyTorch's would). A NaN still propagates (NaN < 0 is false).
    var = var < C(0) ? C(0) : var;
  }
  const C avg = sqrt_opt(var) + eps;
  if (has_momentum) {
    buf = momentum * buf + g / avg;
    p -= lr * buf;
  } else {
    p -= lr * (g / avg);
  }
}

// Adagrad (PyTorch): g <- (maximize ? -g : g) + wd * p;  sum <- sum + g^2
//   p <- p - clr * g / (sqrt(sum) + eps),  clr = lr / (1 + (t - 1) * lr_decay) from the host.
template <class C>
GG_FN void adagrad_update(C& p, C g, C& sum, C clr, C eps, C weight_decay, int maximize) {
  if (maximize) g = -g;
  if (weight_decay != C(0)) g += weight_decay * p;
  sum += g * g;
  p -= clr * (g / (sqrt_opt(sum) + eps));
}

}  // namespace gg

// ---------------------------------------------------------------- kernels
#if GG_KERNELS

// NOTE: scalar (not 16-byte vector) loads: each thread already has 4-6 independent loads in
//       flight, and the state arrays of a float16 parameter are float32, so packs would not line
//       up across the arrays anyway.
template <class T>
__global__ void gpugrad_sgd_step(T* __restrict__ param, const T* __restrict__ grad,
                                 typename gg::Io<T>::C* __restrict__ momentum_buffer, double lr,
                                 double momentum, double one_minus_dampening, double weight_decay,
                                 int has_momentum, int first, int nesterov, int maximize,
                                 long long n) {
  typedef typename gg::Io<T>::C C;
  const C lr_ = C(lr), mom = C(momentum), omd = C(one_minus_dampening), wd = C(weight_decay);
  for (gg::i64 i = gg::thread_id(); i < n; i += gg::thread_count()) {
    C p = gg::Io<T>::ld(param[i]);
    C b = (has_momentum && !first) ? momentum_buffer[i] : C(0);
    gg::sgd_update<C>(p, gg::Io<T>::ld(grad[i]), b, lr_, mom, omd, wd, has_momentum, first,
                      nesterov, maximize);
    param[i] = gg::Io<T>::st(p);
    if (has_momentum) momentum_buffer[i] = b;
  }
}

template <class T>
__global__ void gpugrad_adam_step(T* __restrict__ param, const T* __restrict__ grad,
                                  typename gg::Io<T>::C* __restrict__ exp_avg,
                                  typename gg::Io<T>::C* __restrict__ exp_avg_sq,
                                  typename gg::Io<T>::C* __restrict__ max_exp_avg_sq,
                                  double param_scale, double l2, double beta1,
                                  double one_minus_beta1, double beta2, double one_minus_beta2,
                                  double step_size, double bc2_sqrt, double eps, int amsgrad,
                                  int maximize, long long n) {
  typedef typename gg::Io<T>::C C;
  const C ps = C(param_scale), l2_ = C(l2), b1 = C(beta1), omb1 = C(one_minus_beta1),
          b2 = C(beta2), omb2 = C(one_minus_beta2), ss = C(step_size), bc2s = C(bc2_sqrt),
          eps_ = C(eps);
  for (gg::i64 i = gg::thread_id(); i < n; i += gg::thread_count()) {
    C p = gg::Io<T>::ld(param[i]);
    C m = exp_avg[i], v = exp_avg_sq[i];
    C vmax = amsgrad ? max_exp_avg_sq[i] : C(0);
    gg::adam_update<C>(p, gg::Io<T>::ld(grad[i]), m, v, vmax, ps, l2_, b1, omb1, b2, omb2, ss,
                       bc2s, eps_, amsgrad, maximize);
    param[i] = gg::Io<T>::st(p);
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    if (amsgrad) max_exp_avg_sq[i] = vmax;
  }
}

template <class T>
__global__ void gpugrad_rmsprop_step(T* __restrict__ param, const T* __restrict__ grad,
                                     typename gg::Io<T>::C* __restrict__ square_avg,
                                     typename gg::Io<T>::C* __restrict__ grad_avg,
                                     typename gg::Io<T>::C* __restrict__ momentum_buffer,
                                     double lr, double alpha, double one_minus_alpha, double eps,
                                     double weight_decay, double momentum, int centered,
                                     int has_momentum, int maximize, long long n) {
  typedef typename gg::Io<T>::C C;
  const C lr_ = C(lr), a = C(alpha), oma = C(one_minus_alpha), eps_ = C(eps),
          wd = C(weight_decay), mom = C(momentum);
  for (gg::i64 i = gg::thread_id(); i < n; i += gg::thread_count()) {
    C p = gg::Io<T>::ld(param[i]);
    C sq = square_avg[i];
    C ga = centered ? grad_avg[i] : C(0);
    C b = has_momentum ? momentum_buffer[i] : C(0);
    gg::rmsprop_update<C>(p, gg::Io<T>::ld(grad[i]), sq, ga, b, lr_, a, oma, eps_, wd, mom,
                          centered, has_momentum, maximize);
    param[i] = gg::Io<T>::st(p);
    square_avg[i] = sq;
    if (centered) grad_avg[i] = ga;
    if (has_momentum) momentum_buffer[i] = b;
  }
}

template <class T>
__global__ void gpugrad_adagrad_step(T* __restrict__ param, const T* __restrict__ grad,
                                     typename gg::Io<T>::C* __restrict__ state_sum, double clr,
                                     double eps, double weight_decay, int maximize, long long n) {
  typedef typename gg::Io<T>::C C;
  const C clr_ = C(clr), eps_ = C(eps), wd = C(weight_decay);
  for (gg::i64 i = gg::thread_id(); i < n; i += gg::thread_count()) {
    C p = gg::Io<T>::ld(param[i]);
    C s = state_sum[i];
    gg::adagrad_update<C>(p, gg::Io<T>::ld(grad[i]), s, clr_, eps_, wd, maximize);
    param[i] = gg::Io<T>::st(p);
    state_sum[i] = s;
  }
}

#endif  // GG_KERNELS
