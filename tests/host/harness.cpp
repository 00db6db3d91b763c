// Host harness for tests/test_kernels_host.py: compiles the __host__ __device__ math of
// kernels/activation.cu, loss.cu and softmax.cu (optim.cu: tests/test_optim.py) with a host C++ compiler (GG_KERNELS == 0: the __global__ kernels drop out) and
// exposes it through extern "C" functions for ctypes. The loops here are serial versions of the
// kernels' loops and call the very same math functions (functors, MaxSum, ce_*, bce_*).
//
// Arrays cross the boundary as double; prec selects the compute type: 0 -> float (inputs are
// first rounded to float, as float32 storage would hold them), 1 -> double.
#include "activation.cu"
#include "loss.cu"
#include "softmax.cu"

#include <cstring>

using gg::i64;

namespace {

template <class C> C in(const double* p, i64 i) { return C(p[i]); }

template <template <class> class Op, class C>
void act(int bwd, const double* a, const double* s, double* out, i64 n, double p0, double p1, int from_y) {
  Op<C> op;
  op.p0 = C(p0);
  op.p1 = C(p1);
  op.from_y = from_y;
  for (i64 i = 0; i < n; ++i) out[i] = bwd ? double(op.bwd(in<C>(a, i), in<C>(s, i))) : double(op.fwd(in<C>(a, i)));
}

template <class C>
int act_dispatch(const char* name, int bwd, const double* a, const double* s, double* out, i64 n, double p0,
                 double p1, int from_y) {
#define GG_CASE(str, Op)                                  \
  if (!std::strcmp(name, str)) {                          \
    act<Op, C>(bwd, a, s, out, n, p0, p1, from_y);        \
    return 0;                                             \
  }
#define GG_X(name, Op) GG_CASE(#name, gg::Op)
  GG_ACTIVATIONS(GG_X)
#undef GG_X
#undef GG_CASE
  return -1;
}

// The kernels' row pattern on the host: LANES "threads" accumulate strided elements, then an
// xor-butterfly merges them exactly as group_reduce's shuffles do (so ms_merge is exercised too).
const int LANES = 4;

template <class V, class Op> V butterfly(V* part, Op op) {
  for (int o = LANES / 2; o > 0; o >>= 1) {
    V next[LANES];
    for (int l = 0; l < LANES; ++l) next[l] = op(part[l], part[l ^ o]);
    for (int l = 0; l < LANES; ++l) part[l] = next[l];
  }
  return part[0];
}

template <class C> gg::MaxSum<C> merge_ms(gg::MaxSum<C> a, gg::MaxSum<C> b) { return gg::ms_merge(a, b); }
template <class C> C add(C a, C b) { return a + b; }

template <class C> gg::MaxSum<C> row_ms(const double* x, i64 n) {
  gg::MaxSum<C> part[LANES];
  for (int l = 0; l < LANES; ++l) {
    part[l] = gg::ms_init<C>();
    for (i64 c = l; c < n; c += LANES) gg::ms_add(part[l], in<C>(x, c));
  }
  return butterfly(part, merge_ms<C>);
}

// a, b, c: op inputs (see the kernels in softmax.cu for their order).
template <class C>
int rows_op(const char* op, const double* a, const double* b, const double* c, double* out, i64 rows, i64 n) {
  for (i64 r = 0; r < rows; ++r) {
    const double* ar = a + r * n;
    if (!std::strcmp(op, "softmax_fwd")) {
      const gg::MaxSum<C> s = row_ms<C>(ar, n);
      const C inv = gg::softmax_inv(s);
      for (i64 j = 0; j < n; ++j) out[r * n + j] = gg::softmax_elem(in<C>(ar, j), s.m, inv);
    } else if (!std::strcmp(op, "log_softmax_fwd")) {
      const gg::MaxSum<C> s = row_ms<C>(ar, n);
      const C logs = gg::ms_logs(s);
      for (i64 j = 0; j < n; ++j) out[r * n + j] = gg::log_softmax_elem(in<C>(ar, j), s.m, logs);
    } else if (!std::strcmp(op, "logsumexp_fwd")) {
      out[r] = gg::ms_lse(row_ms<C>(ar, n));
    } else if (!std::strcmp(op, "softmax_bwd")) {  // a = g, b = y
      C dot = 0;
      for (i64 j = 0; j < n; ++j) dot += in<C>(ar, j) * in<C>(b, r * n + j);
      for (i64 j = 0; j < n; ++j) out[r * n + j] = gg::softmax_bwd_elem(in<C>(ar, j), in<C>(b, r * n + j), dot);
    } else if (!std::strcmp(op, "log_softmax_bwd")) {  // a = g, b = y
      C gsum = 0;
      for (i64 j = 0; j < n; ++j) gsum += in<C>(ar, j);
      for (i64 j = 0; j < n; ++j) out[r * n + j] = gg::log_softmax_bwd_elem(in<C>(ar, j), in<C>(b, r * n + j), gsum);
    } else if (!std::strcmp(op, "logsumexp_bwd")) {  // a = x, b = g (rows), c = lse (rows)
      for (i64 j = 0; j < n; ++j) out[r * n + j] = gg::logsumexp_bwd_elem(in<C>(b, r), in<C>(ar, j), in<C>(c, r));
    } else {
      return -1;
    }
  }
  return 0;
}

// Wide type for the saved lse: float compute -> double (float32 logits), double -> double.
template <class C>
void ce_fwd(const double* x, const long long* t, const double* w, double* loss, double* lse, i64 rows, i64 ncls,
            long long ig, double eps_, int* err) {
  const C eps = C(eps_);
  C W = C(ncls);
  if (w) {
    W = 0;
    for (i64 c = 0; c < ncls; ++c) W += in<C>(w, c);
  }
  for (i64 r = 0; r < rows; ++r) {
    const double* xr = x + r * ncls;
    const C x0 = in<C>(xr, 0);
    gg::MaxSum<C> ap[LANES];
    C swp[LANES];
    for (int l = 0; l < LANES; ++l) {
      ap[l] = gg::ms_init<C>();
      swp[l] = 0;
      for (i64 c = l; c < ncls; c += LANES) {
        const C xc = in<C>(xr, c);
        gg::ms_add(ap[l], xc);
        if (eps != C(0)) swp[l] += (w ? in<C>(w, c) : C(1)) * (xc - x0);
      }
    }
    const gg::MaxSum<C> a = butterfly(ap, merge_ms<C>);
    const C sw = butterfly(swp, add<C>);
    const C logs = gg::ms_logs(a);
    lse[r] = double(a.m) + double(logs);
    const long long tr = t[r];
    if (tr == ig) {
      loss[r] = 0;
    } else if (tr < 0 || tr >= ncls) {
      *err = 1;
      loss[r] = gg::nan_<C>();
    } else {
      loss[r] = gg::ce_row_loss(a.m, logs, x0, in<C>(xr, tr), w ? in<C>(w, tr) : C(1), sw, W, eps, C(ncls));
    }
  }
}

template <class C>
void ce_bwd(const double* x, const long long* t, const double* w, const double* lse, const double* g, double* gx,
            i64 rows, i64 ncls, long long ig, double eps_) {
  const C eps = C(eps_);
  C W = C(ncls);
  if (w && eps != C(0)) {
    W = 0;
    for (i64 c = 0; c < ncls; ++c) W += in<C>(w, c);
  }
  for (i64 r = 0; r < rows; ++r) {
    const long long tr = t[r];
    if (tr == ig || tr < 0 || tr >= ncls) {
      for (i64 c = 0; c < ncls; ++c) gx[r * ncls + c] = 0;
      continue;
    }
    const gg::CeCoef<C> k = gg::ce_coef(C(g[r]), w ? in<C>(w, tr) : C(1), W, eps, C(ncls));
    for (i64 c = 0; c < ncls; ++c) {
      const C p = gg::exp_(C(double(in<C>(x, r * ncls + c)) - lse[r]));
      gx[r * ncls + c] = gg::ce_grad_elem(k, p, w ? in<C>(w, c) : C(1), c == tr);
    }
  }
}

template <class C>
void ce_prob_fwd(const double* x, const double* q, const double* w, double* loss, double* lse, i64 rows, i64 ncls,
                 double eps_) {
  const C eps = C(eps_), nc = C(ncls);
  for (i64 r = 0; r < rows; ++r) {
    const C x0 = in<C>(x, r * ncls);
    gg::MaxSum<C> ap[LANES];
    C s1p[LANES], s2p[LANES];
    for (int l = 0; l < LANES; ++l) {
      ap[l] = gg::ms_init<C>();
      s1p[l] = s2p[l] = 0;
      for (i64 c = l; c < ncls; c += LANES) {
        const C xc = in<C>(x, r * ncls + c);
        const C wq = (w ? in<C>(w, c) : C(1)) * gg::ce_smooth(in<C>(q, r * ncls + c), eps, nc);
        gg::ms_add(ap[l], xc);
        s1p[l] += wq * (xc - x0);
        s2p[l] += wq;
      }
    }
    const gg::MaxSum<C> a = butterfly(ap, merge_ms<C>);
    const C s1 = butterfly(s1p, add<C>), s2 = butterfly(s2p, add<C>);
    const C logs = gg::ms_logs(a);
    lse[r] = double(a.m) + double(logs);
    loss[r] = gg::ce_prob_row_loss(a.m, logs, x0, s1, s2);
  }
}

template <class C>
void ce_prob_bwd(const double* x, const double* q, const double* w, const double* lse, const double* g, double* gx,
                 i64 rows, i64 ncls, double eps_) {
  const C eps = C(eps_), nc = C(ncls);
  for (i64 r = 0; r < rows; ++r) {
    C s2 = 0;
    for (i64 c = 0; c < ncls; ++c) s2 += (w ? in<C>(w, c) : C(1)) * gg::ce_smooth(in<C>(q, r * ncls + c), eps, nc);
    for (i64 c = 0; c < ncls; ++c) {
      const C p = gg::exp_(C(double(in<C>(x, r * ncls + c)) - lse[r]));
      const C wq = (w ? in<C>(w, c) : C(1)) * gg::ce_smooth(in<C>(q, r * ncls + c), eps, nc);
      gx[r * ncls + c] = gg::ce_prob_grad_elem(C(g[r]), s2, p, wq);
    }
  }
}

template <template <class> class Op, class C>
void pointwise(int bwd, const double* x, const double* t, double* out, i64 n, double p0) {
  Op<C> op;
  op.p0 = C(p0);
  for (i64 i = 0; i < n; ++i) {
    const C d = in<C>(x, i) - in<C>(t, i);
    out[i] = bwd ? op.bwd(d) : op.fwd(d);
  }
}

template <class C>
int pointwise_dispatch(const char* name, int bwd, const double* x, const double* t, double* out, i64 n, double p0) {
  if (!std::strcmp(name, "mse_loss")) pointwise<gg::MseLoss, C>(bwd, x, t, out, n, p0);
  else if (!std::strcmp(name, "l1_loss")) pointwise<gg::L1Loss, C>(bwd, x, t, out, n, p0);
  else if (!std::strcmp(name, "huber_loss")) pointwise<gg::HuberLoss, C>(bwd, x, t, out, n, p0);
  else if (!std::strcmp(name, "smooth_l1_loss")) pointwise<gg::SmoothL1Loss, C>(bwd, x, t, out, n, p0);
  else return -1;
  return 0;
}

template <class C>
void bce(int bwd, const double* x, const double* t, const double* w, const double* pw, double* out, i64 n) {
  for (i64 i = 0; i < n; ++i) {
    const C xi = in<C>(x, i), ti = in<C>(t, i), wi = w ? in<C>(w, i) : C(1), pi = pw ? in<C>(pw, i) : C(1);
    out[i] = bwd ? gg::bce_bwd(xi, ti, wi, pi) : gg::bce_fwd(xi, ti, wi, pi);
  }
}

}  // namespace

extern "C" {

int gg_act(const char* name, int bwd, int prec, const double* a, const double* s, double* out, long long n,
           double p0, double p1, int from_y) {
  return prec ? act_dispatch<double>(name, bwd, a, s, out, n, p0, p1, from_y)
              : act_dispatch<float>(name, bwd, a, s, out, n, p0, p1, from_y);
}

int gg_rows(const char* op, int prec, const double* a, const double* b, const double* c, double* out,
            long long rows, long long n) {
  return prec ? rows_op<double>(op, a, b, c, out, rows, n) : rows_op<float>(op, a, b, c, out, rows, n);
}

int gg_ce_fwd(int prec, const double* x, const long long* t, const double* w, double* loss, double* lse,
              long long rows, long long ncls, long long ig, double eps) {
  int err = 0;
  if (prec) ce_fwd<double>(x, t, w, loss, lse, rows, ncls, ig, eps, &err);
  else ce_fwd<float>(x, t, w, loss, lse, rows, ncls, ig, eps, &err);
  return err;
}

void gg_ce_bwd(int prec, const double* x, const long long* t, const double* w, const double* lse, const double* g,
               double* gx, long long rows, long long ncls, long long ig, double eps) {
  if (prec) ce_bwd<double>(x, t, w, lse, g, gx, rows, ncls, ig, eps);
  else ce_bwd<float>(x, t, w, lse, g, gx, rows, ncls, ig, eps);
}

void gg_ce_prob_fwd(int prec, const double* x, const double* q, const double* w, double* loss, double* lse,
                    long long rows, long long ncls, double eps) {
  if (prec) ce_prob_fwd<double>(x, q, w, loss, lse, rows, ncls, eps);
  else ce_prob_fwd<float>(x, q, w, loss, lse, rows, ncls, eps);
}

void gg_ce_prob_bwd(int prec, const double* x, const double* q, const double* w, const double* lse,
                    const double* g, double* gx, long long rows, long long ncls, double eps) {
  if (prec) ce_prob_bwd<double>(x, q, w, lse, g, gx, rows, ncls, eps);
  else ce_prob_bwd<float>(x, q, w, lse, g, gx, rows, ncls, eps);
}

int gg_pointwise(const char* name, int bwd, int prec, const double* x, const double* t, double* out, long long n,
                 double p0) {
  return prec ? pointwise_dispatch<double>(name, bwd, x, t, out, n, p0)
              : pointwise_dispatch<float>(name, bwd, x, t, out, n, p0);
}

void gg_bce(int bwd, int prec, const double* x, const double* t, const double* w, const double* pw, double* out,
            long long n) {
  if (prec) bce<double>(bwd, x, t, w, pw, out, n);
  else bce<float>(bwd, x, t, w, pw, out, n);
}

}  // extern "C"
