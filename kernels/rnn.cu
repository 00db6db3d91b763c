// gpugrad fused kernels: the pointwise math of one recurrent cell step (LSTM, GRU, Elman RNN).
//
// The matmuls of a step (h @ W_hh^T, and the input projection batched over all steps) are ordinary
// matmuls; these kernels do everything between them, one launch per step and direction:
//   gpugrad_lstm_cell_fwd<T>(xg, hg, c0, act, c, h, n, H)
//       gates = xg + hg  (B, 4H, PyTorch's order i, f, g, o), act = (sig(i), sig(f), tanh(g), sig(o)),
//       c = f * c0 + i * g,  h = o * tanh(c)
//   gpugrad_lstm_cell_bwd<T>(act, c, c0, dh, dhr, dc, dcr, dgates, dc0, n, H)
//       from the saved act and c; dh + dhr and dc + dcr are the upstream gradients (dhr, dcr may be null)
//   gpugrad_gru_cell_fwd<T>(xg, hg, bhh, h0, saved, h, n, H)
//       r = sig(xr + hr + b_hr), z = sig(xz + hz + b_hz), m = tanh(xn + r * (hn + b_hn)),
//       h = (h0 - m) * z + m; saved = (r, z, m, hn + b_hn)  (B, 4H); bhh may be null
//   gpugrad_gru_cell_bwd<T>(saved, h0, dh, dhr, dxg, dhg, dh0, n, H)
//       dxg, dhg (B, 3H): the gradients of the input and hidden projections; dh0 the direct part only
//   gpugrad_rnn_<tanh|relu>_cell_fwd<T>(xg, hg, h, n)          h = act(xg + hg)
//   gpugrad_rnn_<tanh|relu>_cell_bwd<T>(h, dh, dhr, dpre, n)   dpre = (dh + dhr) * act'(.) from h
// n = B * H elements; row b of a (B, kH) array starts at b * kH. Every array is contiguous.
// The Python side: gpugrad/fused/rnn.py (ROWS, one row per cell, with the NumPy fallback and the composite).
#include "common.cuh"

namespace gg {

// NOTE: the derivatives are PyTorch's, written from the saved activations: sig' = s (1 - s), tanh' = 1 - t^2.
// For a saturated gate 1 - s loses its relative precision (the derivative is then tiny in absolute terms),
// exactly as PyTorch's cells; the activations themselves use the overflow-free forms of common.cuh.
template <class C> struct LstmCell {
  static GG_FN void fwd(const C pre[4], C c0, C a[4], C& c, C& h) {
    a[0] = sigmoid_(pre[0]);
    a[1] = sigmoid_(pre[1]);
    a[2] = tanh_(pre[2]);
    a[3] = sigmoid_(pre[3]);
    c = a[1] * c0 + a[0] * a[2];
    h = a[3] * tanh_(c);
  }
  // NOTE: tanh(c) is recomputed from the saved c rather than saved (one (T, B, H) array less).
  static GG_FN void bwd(const C a[4], C c, C c0, C dh, C dc, C d[4], C& dc0) {
    const C tc = tanh_(c);
    const C dct = dc + dh * a[3] * (C(1) - tc * tc);
    d[0] = dct * a[2] * a[0] * (C(1) - a[0]);
    d[1] = dct * c0 * a[1] * (C(1) - a[1]);
    d[2] = dct * a[0] * (C(1) - a[2] * a[2]);
    d[3] = dh * tc * a[3] * (C(1) - a[3]);
    dc0 = dct * a[1];
  }
};

template <class C> struct GruCell {
  // x[3]: input projection (r, z, n); hb[3]: hidden projection with its bias; s[4]: (r, z, m, hn)
  static GG_FN C fwd(const C x[3], const C hb[3], C h0, C s[4]) {
    s[0] = sigmoid_(x[0] + hb[0]);
    s[1] = sigmoid_(x[1] + hb[1]);
    s[2] = tanh_(x[2] + s[0] * hb[2]);
    s[3] = hb[2];
    // NOTE: PyTorch's form (h0 - m) * z + m, not (1 - z) * m + z * h0: the same value, rounded as PyTorch rounds it
    return (h0 - s[2]) * s[1] + s[2];
  }
  static GG_FN void bwd(const C s[4], C h0, C dh, C dx[3], C dhb[3], C& dh0) {
    const C r = s[0], z = s[1], m = s[2];
    const C dm = dh * (C(1) - z) * (C(1) - m * m);
    dx[0] = dm * s[3] * r * (C(1) - r);
    dx[1] = dh * (h0 - m) * z * (C(1) - z);
    dx[2] = dm;
    dhb[0] = dx[0];
    dhb[1] = dx[1];
    dhb[2] = dm * r;
    dh0 = dh * z;
  }
};

// Elman cells: the activation of xg + hg, and its derivative from the output (tanh' = 1 - h^2; relu: h > 0).
template <class C> struct RnnTanh {
  static GG_FN C fwd(C pre) { return tanh_(pre); }
  static GG_FN C bwd(C g, C h) { return g * (C(1) - h * h); }
};
template <class C> struct RnnRelu {
  static GG_FN C fwd(C pre) { return pre <= C(0) ? C(0) : pre; }  // NaN passes through, as relu
  static GG_FN C bwd(C g, C h) { return h <= C(0) ? C(0) : g; }    // relu'(0) = 0
};

#if GG_KERNELS
template <class T> GG_DEV typename Io<T>::C ld0(const T* p, i64 i) {
  typedef typename Io<T>::C C;
  return p ? Io<T>::ld(p[i]) : C(0);
}
#endif

}  // namespace gg

#if GG_KERNELS
// NOTE: one thread per (b, j) element, reading the k gates of unit j in row b (stride H apart): consecutive
// threads read consecutive addresses of each gate block, so the loads coalesce without vector packs. A step
// moves only B * 4H elements, so these launches are latency bound, not bandwidth bound.
template <class T>
__global__ void gpugrad_lstm_cell_fwd(const T* __restrict__ xg, const T* __restrict__ hg, const T* __restrict__ c0,
                                      T* __restrict__ act, T* __restrict__ c, T* __restrict__ h, long long n,
                                      long long H) {
  typedef gg::Io<T> io;
  typedef typename io::C C;
  for (gg::i64 i = gg::thread_id(); i < n; i += gg::thread_count()) {
    const gg::i64 b = i / H, base = b * 4 * H + (i - b * H);
    C pre[4], a[4], cn, hn;
#pragma unroll
    for (int k = 0; k < 4; ++k) pre[k] = io::ld(xg[base + k * H]) + io::ld(hg[base + k * H]);
    gg::LstmCell<C>::fwd(pre, io::ld(c0[i]), a, cn, hn);
#pragma unroll
    for (int k = 0; k < 4; ++k) act[base + k * H] = io::st(a[k]);
    c[i] = io::st(cn);
    h[i] = io::st(hn);
  }
}

template <class T>
__global__ void gpugrad_lstm_cell_bwd(const T* __restrict__ act, const T* __restrict__ c, const T* __restrict__ c0,
                                      const T* __restrict__ dh, const T* __restrict__ dhr, const T* __restrict__ dc,
                                      const T* __restrict__ dcr, T* __restrict__ dgates, T* __restrict__ dc0,
                                      long long n, long long H) {
  typedef gg::Io<T> io;
  typedef typename io::C C;
  for (gg::i64 i = gg::thread_id(); i < n; i += gg::thread_count()) {
    const gg::i64 b = i / H, base = b * 4 * H + (i - b * H);
    C a[4], d[4], dcp;
#pragma unroll
    for (int k = 0; k < 4; ++k) a[k] = io::ld(act[base + k * H]);
    gg::LstmCell<C>::bwd(a, io::ld(c[i]), io::ld(c0[i]), io::ld(dh[i]) + gg::ld0(dhr, i),
                         io::ld(dc[i]) + gg::ld0(dcr, i), d, dcp);
#pragma unroll
    for (int k = 0; k < 4; ++k) dgates[base + k * H] = io::st(d[k]);
    dc0[i] = io::st(dcp);
  }
}

template <class T>
__global__ void gpugrad_gru_cell_fwd(const T* __restrict__ xg, const T* __restrict__ hg, const T* __restrict__ bhh,
                                     const T* __restrict__ h0, T* __restrict__ saved, T* __restrict__ h, long long n,
                                     long long H) {
  typedef gg::Io<T> io;
  typedef typename io::C C;
  for (gg::i64 i = gg::thread_id(); i < n; i += gg::thread_count()) {
    const gg::i64 b = i / H, j = i - b * H, base = b * 3 * H + j;
    C x[3], hb[3], s[4];
#pragma unroll
    for (int k = 0; k < 3; ++k) {
      x[k] = io::ld(xg[base + k * H]);
      hb[k] = io::ld(hg[base + k * H]) + gg::ld0(bhh, k * H + j);
    }
    const C hn = gg::GruCell<C>::fwd(x, hb, io::ld(h0[i]), s);
    const gg::i64 sb = b * 4 * H + j;
#pragma unroll
    for (int k = 0; k < 4; ++k) saved[sb + k * H] = io::st(s[k]);
    h[i] = io::st(hn);
  }
}

template <class T>
__global__ void gpugrad_gru_cell_bwd(const T* __restrict__ saved, const T* __restrict__ h0, const T* __restrict__ dh,
                                     const T* __restrict__ dhr, T* __restrict__ dxg, T* __restrict__ dhg,
                                     T* __restrict__ dh0, long long n, long long H) {
  typedef gg::Io<T> io;
  typedef typename io::C C;
  for (gg::i64 i = gg::thread_id(); i < n; i += gg::thread_count()) {
    const gg::i64 b = i / H, j = i - b * H, base = b * 3 * H + j, sb = b * 4 * H + j;
    C s[4], dx[3], dhb[3], dhp;
#pragma unroll
    for (int k = 0; k < 4; ++k) s[k] = io::ld(saved[sb + k * H]);
    gg::GruCell<C>::bwd(s, io::ld(h0[i]), io::ld(dh[i]) + gg::ld0(dhr, i), dx, dhb, dhp);
#pragma unroll
    for (int k = 0; k < 3; ++k) {
      dxg[base + k * H] = io::st(dx[k]);
      dhg[base + k * H] = io::st(dhb[k]);
    }
    dh0[i] = io::st(dhp);
  }
}

// NOTE: the Elman cells are plain elementwise maps, so they take emap's 16-byte vector path (and its scalar tail).
template <class T>
__global__ void gpugrad_rnn_tanh_cell_fwd(const T* __restrict__ xg, const T* __restrict__ hg, T* __restrict__ h,
                                          long long n) {
  typedef typename gg::Io<T>::C C;
  gg::emap(n, h, xg, hg, (const T*)nullptr, [](C a, C b, C) { return gg::RnnTanh<C>::fwd(a + b); });
}

template <class T>
__global__ void gpugrad_rnn_tanh_cell_bwd(const T* __restrict__ h, const T* __restrict__ dh,
                                          const T* __restrict__ dhr, T* __restrict__ dpre, long long n) {
  typedef typename gg::Io<T>::C C;
  gg::emap(n, dpre, h, dh, dhr, [](C y, C g, C g2) { return gg::RnnTanh<C>::bwd(g + g2, y); });
}

template <class T>
__global__ void gpugrad_rnn_relu_cell_fwd(const T* __restrict__ xg, const T* __restrict__ hg, T* __restrict__ h,
                                          long long n) {
  typedef typename gg::Io<T>::C C;
  gg::emap(n, h, xg, hg, (const T*)nullptr, [](C a, C b, C) { return gg::RnnRelu<C>::fwd(a + b); });
}

template <class T>
__global__ void gpugrad_rnn_relu_cell_bwd(const T* __restrict__ h, const T* __restrict__ dh,
                                          const T* __restrict__ dhr, T* __restrict__ dpre, long long n) {
  typedef typename gg::Io<T>::C C;
  gg::emap(n, dpre, h, dh, dhr, [](C y, C g, C g2) { return gg::RnnRelu<C>::bwd(g + g2, y); });
}
#endif  // GG_KERNELS
