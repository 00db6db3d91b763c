// gpugrad fused kernels: scaled dot-product attention, forward and backward, memory-efficient.
//
//   gpugrad_attention_fwd<T>(q, k, v, bias, out, lse, rows = B*H*L, n = S, tail)
//       out[r] = sum_j p_j v_j with p = softmax(s), s_j = scale q_r . k_j + bias[b, h, i, j] (-inf past the
//       diagonal under causal); lse[r] = log sum_j exp(s_j) (Wide<T>: float for __half/__nv_bfloat16, double otherwise)
//   gpugrad_attention_bwd<T>(g, q, k, v, out, lse, bias, dq, dsum, rows = B*H*L, n = S, tail)
//       dsum[r] = g_r . out_r;  dq[r] = scale sum_j p_j (g_r . v_j - dsum[r]) k_j
//   gpugrad_attention_bwd_kv<T>(g, q, k, v, lse, dsum, bias, dk, dv, rows = B*H*S, n = L, tail)
//       dv[j] = sum_i p_ij g_i;  dk[j] = scale sum_i p_ij (g_i . v_j - dsum[i]) q_i
// tail = (L, S, E, Ev, H, bias strides over (b, h, i, j) in elements (0 = broadcast), scale, causal).
// q (B*H, L, E), k (B*H, S, E), v (B*H, S, Ev), g/out (B*H, L, Ev), all contiguous; E, Ev <= ATT_MAXD.
//
// Layout: the rows launcher (common.cuh row_first()/group_reduce()): one row group (a warp, or a whole
// block for long rows) owns one query row (fwd, bwd) or one key row (bwd_kv). The group walks the other
// sequence in tiles of blockDim.x, one key (query) per thread: each thread forms its score with a dot
// product, the tile's max/sum are group reductions, and the tile's probabilities go through shared memory
// to the accumulators, where the threads split the head dim. The online softmax rescales the running sum
// and output accumulator when the max grows, so nothing of size L x S is ever stored; the backward rebuilds
// p = exp(s - lse) from the saved lse. No atomics: dq comes from query rows, dk/dv from key rows, so
// every result is a fixed-order sum (deterministic under any schedule).
// NOTE: correctness first: k/v rows are read by one thread each (uncoalesced); a tiled shared-memory
// version is the next step for speed.
#include "common.cuh"

namespace gg {

// The largest head dim the kernels take (gpugrad.fused.attention.ATT_MAXD): the q/k/v/g rows in shared
// memory and the per-thread accumulators (ATT_MAXD / 32 each) are sized by it.
const int ATT_MAXD = 256;
const int ATT_ACC = ATT_MAXD / 32;

// Per-row precision split of a wide lse: hi + lo = lse to within the wide type, so exp((s - hi) - lo)
// keeps the wide lse's accuracy at compute-type cost (s - hi is exact near the row max).
// NOTE: a fully masked row (lse = -inf) gets hi = +inf, lo = 0: each of its p = exp(s - inf) is 0 (with
// hi = -inf it would be exp(+inf), and lse - hi would be NaN).
template <class C, class W> GG_FN void lse_split(W lse, C& hi, C& lo) {
  if (lse == -inf_<W>()) {
    hi = inf_<C>();
    lo = C(0);
  } else {
    hi = C(lse);
    lo = C(lse - W(hi));
  }
}

// The lse of a finished online-softmax row: -inf for a fully masked row (l = 0), else m + log(l);
// NaN stays NaN.
template <class C, class W> GG_FN W attention_lse(C m, C l) {
  return l == C(0) ? -inf_<W>() : W(m) + log_(W(l));
}

// max that propagates NaN (fmax would drop it and hide a NaN score).
template <class C> GG_FN C max_nan(C a, C b) { return (a != a || a > b) ? a : b; }

// The shift of a tile's exponentials: the running max, or 0 while the row is still all -inf.
// NOTE: exp(-inf - -inf) would be NaN; with shift 0 every exp(-inf) is 0, as it should be.
template <class C> GG_FN C attention_shift(C m) { return m == -inf_<C>() ? C(0) : m; }

}  // namespace gg

#if GG_KERNELS

namespace gg {

struct MaxNanOp {
  template <class C> GG_DEV C operator()(C a, C b) const { return max_nan(a, b); }
};

// A barrier for the calling row group: the warp, or the block when the group is the block
// (blockDim.y == 1, where the row loop is uniform over the block).
GG_DEV void group_sync() {
  if (blockDim.x <= 32)
    __syncwarp();
  else
    __syncthreads();
}

// Dot product of a row in shared memory (compute type) with a row in global memory.
template <class T, class C> GG_DEV C dot_row(const C* a, const T* __restrict__ b, i64 n) {
  C s = C(0);
  for (i64 d = 0; d < n; ++d) s += a[d] * Io<T>::ld(b[d]);
  return s;
}

// Copies row x[0:n] into the group's shared row (compute type).
template <class T, class C> GG_DEV void load_row(C* dst, const T* __restrict__ x, i64 n) {
  for (i64 d = threadIdx.x; d < n; d += blockDim.x) dst[d] = Io<T>::ld(x[d]);
}

// Score of query row i (in shared) against key row j: scale q.k + bias[b, h, i, j].
template <class T, class C>
GG_DEV C att_score(const C* qrow, const T* __restrict__ krow, i64 E, C sc, const T* __restrict__ bias, i64 boff,
                   i64 sl, i64 ss, i64 i, i64 j) {
  C s = dot_row(qrow, krow, E) * sc;
  if (bias) s += Io<T>::ld(bias[boff + i * sl + j * ss]);
  return s;
}

// Shared memory of one block: up to 4 row groups (warp layout) or one (block layout); the tiles hold one
// value per thread (blockDim.x * blockDim.y <= 1024).
template <class C> struct AttShared {
  C a[4][ATT_MAXD];
  C b[4][ATT_MAXD];
  C t0[1024];
  C t1[1024];
};

}  // namespace gg

template <class T>
__global__ void gpugrad_attention_fwd(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                      const T* __restrict__ bias, T* __restrict__ out,
                                      typename gg::Wide<T>::type* __restrict__ lse, long long rows, long long n,
                                      long long L, long long S, long long E, long long Ev, long long H,
                                      long long sb, long long sh, long long sl, long long ss, double scale,
                                      int causal) {
  typedef typename gg::Io<T>::C C;
  typedef typename gg::Wide<T>::type W;
  __shared__ gg::AttShared<C> sm;
  const int tx = threadIdx.x, nx = blockDim.x;
  C* qrow = sm.a[threadIdx.y];
  C* p = sm.t0 + threadIdx.y * nx;
  const C sc = C(scale);
  for (long long r = gg::row_first(); r < rows; r += gg::row_stride()) {
    const long long bh = r / L, i = r % L;
    const long long boff = (bh / H) * sb + (bh % H) * sh;
    const T* kb = k + bh * S * E;
    const T* vb = v + bh * S * Ev;
    gg::group_sync();  // NOTE: the previous row's readers of qrow are done
    gg::load_row(qrow, q + r * E, E);
    gg::group_sync();
    // NOTE: under causal the keys after the diagonal (j > i) are never read
    const long long send = causal ? (i + 1 < S ? i + 1 : S) : S;
    C m = -gg::inf_<C>(), l = C(0);
    C acc[gg::ATT_ACC];
#pragma unroll
    for (int t = 0; t < gg::ATT_ACC; ++t) acc[t] = C(0);
    for (long long j0 = 0; j0 < send; j0 += nx) {
      const long long j = j0 + tx;
      const C s = j < send ? gg::att_score(qrow, kb + j * E, E, sc, bias, boff, sl, ss, i, j) : -gg::inf_<C>();
      const C mn = gg::max_nan(m, gg::group_reduce(s, gg::MaxNanOp()));
      const C shift = gg::attention_shift(mn);
      const C pj = gg::exp_(s - shift);
      const C alpha = gg::exp_(m - shift);
      l = l * alpha + gg::group_sum(pj);
      p[tx] = pj;
      gg::group_sync();
      const long long jn = send - j0 < nx ? send - j0 : nx;
#pragma unroll
      for (int t = 0; t < gg::ATT_ACC; ++t) {
        const long long d = tx + (long long)t * nx;
        if (d < Ev) {
          C a = acc[t] * alpha;
          for (long long jj = 0; jj < jn; ++jj) a += p[jj] * gg::Io<T>::ld(vb[(j0 + jj) * Ev + d]);
          acc[t] = a;
        }
      }
      gg::group_sync();  // NOTE: p is rewritten by the next tile
      m = mn;
    }
    // NOTE: a fully masked row (l = 0) gives 0, as PyTorch's safe softmax; a NaN l stays NaN
    const C inv = l == C(0) ? C(0) : C(1) / l;
#pragma unroll
    for (int t = 0; t < gg::ATT_ACC; ++t) {
      const long long d = tx + (long long)t * nx;
      if (d < Ev) out[r * Ev + d] = gg::Io<T>::st(acc[t] * inv);
    }
    if (tx == 0) lse[r] = gg::attention_lse<C, W>(m, l);
  }
}

template <class T>
__global__ void gpugrad_attention_bwd(const T* __restrict__ g, const T* __restrict__ q, const T* __restrict__ k,
                                      const T* __restrict__ v, const T* __restrict__ out,
                                      const typename gg::Wide<T>::type* __restrict__ lse, const T* __restrict__ bias,
                                      T* __restrict__ dq, typename gg::Io<T>::C* __restrict__ dsum, long long rows,
                                      long long n, long long L, long long S, long long E, long long Ev, long long H,
                                      long long sb, long long sh, long long sl, long long ss, double scale,
                                      int causal) {
  typedef typename gg::Io<T>::C C;
  __shared__ gg::AttShared<C> sm;
  const int tx = threadIdx.x, nx = blockDim.x;
  C* qrow = sm.a[threadIdx.y];
  C* grow = sm.b[threadIdx.y];
  C* p = sm.t0 + threadIdx.y * nx;
  const C sc = C(scale);
  for (long long r = gg::row_first(); r < rows; r += gg::row_stride()) {
    const long long bh = r / L, i = r % L;
    const long long boff = (bh / H) * sb + (bh % H) * sh;
    const T* kb = k + bh * S * E;
    const T* vb = v + bh * S * Ev;
    gg::group_sync();
    gg::load_row(qrow, q + r * E, E);
    gg::load_row(grow, g + r * Ev, Ev);
    C dot = C(0);
    for (long long d = tx; d < Ev; d += nx) dot += gg::Io<T>::ld(g[r * Ev + d]) * gg::Io<T>::ld(out[r * Ev + d]);
    const C D = gg::group_sum(dot);  // NOTE: also the barrier after the row loads when the group is a block
    gg::group_sync();
    if (tx == 0) dsum[r] = D;
    C hi, lo;
    gg::lse_split(lse[r], hi, lo);
    const long long send = causal ? (i + 1 < S ? i + 1 : S) : S;
    C acc[gg::ATT_ACC];
#pragma unroll
    for (int t = 0; t < gg::ATT_ACC; ++t) acc[t] = C(0);
    for (long long j0 = 0; j0 < send; j0 += nx) {
      const long long j = j0 + tx;
      C ds = C(0);
      if (j < send) {
        const C s = gg::att_score(qrow, kb + j * E, E, sc, bias, boff, sl, ss, i, j);
        const C pj = gg::exp_((s - hi) - lo);
        ds = pj * (gg::dot_row(grow, vb + j * Ev, Ev) - D);
      }
      p[tx] = ds;
      gg::group_sync();
      const long long jn = send - j0 < nx ? send - j0 : nx;
#pragma unroll
      for (int t = 0; t < gg::ATT_ACC; ++t) {
        const long long d = tx + (long long)t * nx;
        if (d < E) {
          C a = acc[t];
          for (long long jj = 0; jj < jn; ++jj) a += p[jj] * gg::Io<T>::ld(kb[(j0 + jj) * E + d]);
          acc[t] = a;
        }
      }
      gg::group_sync();
    }
#pragma unroll
    for (int t = 0; t < gg::ATT_ACC; ++t) {
      const long long d = tx + (long long)t * nx;
      if (d < E) dq[r * E + d] = gg::Io<T>::st(acc[t] * sc);
    }
  }
}

template <class T>
__global__ void gpugrad_attention_bwd_kv(const T* __restrict__ g, const T* __restrict__ q, const T* __restrict__ k,
                                         const T* __restrict__ v, const typename gg::Wide<T>::type* __restrict__ lse,
                                         const typename gg::Io<T>::C* __restrict__ dsum, const T* __restrict__ bias,
                                         T* __restrict__ dk, T* __restrict__ dv, long long rows, long long n,
                                         long long L, long long S, long long E, long long Ev, long long H,
                                         long long sb, long long sh, long long sl, long long ss, double scale,
                                         int causal) {
  typedef typename gg::Io<T>::C C;
  __shared__ gg::AttShared<C> sm;
  const int tx = threadIdx.x, nx = blockDim.x;
  C* krow = sm.a[threadIdx.y];
  C* vrow = sm.b[threadIdx.y];
  C* pt = sm.t0 + threadIdx.y * nx;
  C* dst = sm.t1 + threadIdx.y * nx;
  const C sc = C(scale);
  for (long long r = gg::row_first(); r < rows; r += gg::row_stride()) {
    const long long bh = r / S, j = r % S;
    const long long boff = (bh / H) * sb + (bh % H) * sh;
    const T* qb = q + bh * L * E;
    const T* gb = g + bh * L * Ev;
    gg::group_sync();
    gg::load_row(krow, k + r * E, E);
    gg::load_row(vrow, v + r * Ev, Ev);
    gg::group_sync();
    // NOTE: under causal, key j is seen by queries i >= j only: the query blocks before it are never read
    const long long i0 = causal ? j : 0;
    C acck[gg::ATT_ACC], accv[gg::ATT_ACC];
#pragma unroll
    for (int t = 0; t < gg::ATT_ACC; ++t) acck[t] = accv[t] = C(0);
    for (long long ib = i0; ib < L; ib += nx) {
      const long long i = ib + tx;
      C pi = C(0), ds = C(0);
      if (i < L) {
        C hi, lo;
        gg::lse_split(lse[bh * L + i], hi, lo);
        const C s = gg::att_score(krow, qb + i * E, E, sc, bias, boff, sl, ss, i, j);
        pi = gg::exp_((s - hi) - lo);
        ds = pi * (gg::dot_row(vrow, gb + i * Ev, Ev) - dsum[bh * L + i]);
      }
      pt[tx] = pi;
      dst[tx] = ds;
      gg::group_sync();
      const long long in = L - ib < nx ? L - ib : nx;
#pragma unroll
      for (int t = 0; t < gg::ATT_ACC; ++t) {
        const long long d = tx + (long long)t * nx;
        if (d < Ev) {
          C a = accv[t];
          for (long long ii = 0; ii < in; ++ii) a += pt[ii] * gg::Io<T>::ld(gb[(ib + ii) * Ev + d]);
          accv[t] = a;
        }
        if (d < E) {
          C a = acck[t];
          for (long long ii = 0; ii < in; ++ii) a += dst[ii] * gg::Io<T>::ld(qb[(ib + ii) * E + d]);
          acck[t] = a;
        }
      }
      gg::group_sync();
    }
#pragma unroll
    for (int t = 0; t < gg::ATT_ACC; ++t) {
      const long long d = tx + (long long)t * nx;
      if (d < E) dk[r * E + d] = gg::Io<T>::st(acck[t] * sc);
      if (d < Ev) dv[r * Ev + d] = gg::Io<T>::st(accv[t]);
    }
  }
}

#endif  // GG_KERNELS
