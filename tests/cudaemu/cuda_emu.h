// cudaemu: the CUDA built-ins that kernels/*.cu use, for a host C++ compiler.
//
// Force-included (g++ -include cuda_emu.h) in front of an UNCHANGED .cu file, this makes the
// file compile as NVRTC would see it (__CUDACC__, __CUDACC_RTC__, __CUDA_ARCH__ defined) while
// every CUDA thread runs as a cooperative fiber of tests/cudaemu/runtime.cpp: threadIdx & co.
// read the running fiber, and __syncthreads / warp shuffles / votes are scheduling points
// where the runtime checks that the threads of the block (warp) meet at the same collective.
//
// Layout: (1) system headers, types and the runtime API (also used by runtime.cpp, which
// defines CUDAEMU_NO_KEYWORDS); (2) the CUDA keywords as macros, only for kernel sources.
#pragma once

#include <math.h>
#include <stdio.h>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

// ---------------------------------------------------------------------------------------------
// (1) types
// ---------------------------------------------------------------------------------------------
// Vector types with CUDA's sizes and alignments (2 and 4 components: 2x / min(4x, 16) the
// element's alignment; 3 components: the element's). A misaligned float4 access is a UBSan
// error here, as it is a "misaligned address" fault on the GPU.
#define CUDAEMU_VEC(T, N)                                                                  \
  inline N##1 make_##N##1(T a) { return N##1{a}; }                                        \
  inline N##2 make_##N##2(T a, T b) { return N##2{a, b}; }                                \
  inline N##3 make_##N##3(T a, T b, T c) { return N##3{a, b, c}; }                        \
  inline N##4 make_##N##4(T a, T b, T c, T d) { return N##4{a, b, c, d}; }
#define CUDAEMU_VEC_TYPES(T, N)                                                            \
  struct __attribute__((aligned(sizeof(T)))) N##1 { T x; };                               \
  struct __attribute__((aligned(2 * sizeof(T)))) N##2 { T x, y; };                        \
  struct __attribute__((aligned(sizeof(T)))) N##3 { T x, y, z; };                         \
  struct __attribute__((aligned(4 * sizeof(T) < 16 ? 4 * sizeof(T) : 16))) N##4 { T x, y, z, w; }; \
  CUDAEMU_VEC(T, N)
CUDAEMU_VEC_TYPES(signed char, char)
CUDAEMU_VEC_TYPES(unsigned char, uchar)
CUDAEMU_VEC_TYPES(short, short)
CUDAEMU_VEC_TYPES(unsigned short, ushort)
CUDAEMU_VEC_TYPES(int, int)
CUDAEMU_VEC_TYPES(unsigned int, uint)
CUDAEMU_VEC_TYPES(long long, longlong)
CUDAEMU_VEC_TYPES(unsigned long long, ulonglong)
CUDAEMU_VEC_TYPES(float, float)
CUDAEMU_VEC_TYPES(double, double)
#undef CUDAEMU_VEC_TYPES
#undef CUDAEMU_VEC
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int a = 1, unsigned int b = 1, unsigned int c = 1) : x(a), y(b), z(c) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};


// ---------------------------------------------------------------------------------------------
// float16: storage type and the conversions of cuda_fp16.h (bit-exact, round to nearest even).
// ---------------------------------------------------------------------------------------------
namespace cudaemu {
inline unsigned short float_to_half_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return 0x7fffu;              // NOTE: CUDA's canonical NaN (sign dropped)
  if (ax >= 0x477ff000u) return sign | 0x7c00u;      // >= 65520 rounds to inf (and inf itself)
  if (ax <= 0x33000000u) return sign;                // <= 2^-25: ties to even give 0
  const uint32_t e = ax >> 23;
  uint32_t r, rem, half;
  if (e < 113) {                                     // subnormal result: units of 2^-24
    const uint32_t m = (ax & 0x7fffffu) | 0x800000u, shift = 126 - e;
    r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
  } else {
    r = ((e - 112) << 10) | ((ax >> 13) & 0x3ffu), rem = ax & 0x1fffu, half = 0x1000u;
  }
  if (rem > half || (rem == half && (r & 1u))) ++r;  // a carry into the exponent is right too
  return (unsigned short)(sign | r);
}
inline unsigned short double_to_half_bits(double d) {
  uint64_t x;
  std::memcpy(&x, &d, 8);
  const uint32_t sign = (uint32_t)(x >> 48) & 0x8000u;
  const uint64_t ax = x & 0x7fffffffffffffffull;
  if (ax > 0x7ff0000000000000ull) return 0x7fffu;
  if (ax >= 0x40effe0000000000ull) return sign | 0x7c00u;  // >= 65520
  if (ax <= 0x3e60000000000000ull) return sign;            // <= 2^-25
  const int e = (int)(ax >> 52);
  uint64_t m = (ax & 0xfffffffffffffull) | (1ull << 52), r, rem, half;
  if (e < 1009) {                                          // 1009 = 1023 - 14
    const int shift = 1051 - e;                            // units of 2^-24
    r = m >> shift, rem = m & ((1ull << shift) - 1), half = 1ull << (shift - 1);
  } else {
    r = ((uint64_t)(e - 1008) << 10) | ((ax >> 42) & 0x3ffu), rem = ax & ((1ull << 42) - 1),
    half = 1ull << 41;
  }
  if (rem > half || (rem == half && (r & 1u))) ++r;
  return (unsigned short)(sign | r);
}
inline float half_bits_to_float(unsigned short h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
  if (e == 0x1f) {
    bits = sign | 0x7f800000u | (m << 13);
  } else if (e == 0) {
    if (m == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      e = 113;
      while (!(m & 0x400u)) m <<= 1, --e;
      bits = sign | (e << 23) | ((m & 0x3ffu) << 13);
    }
  } else {
    bits = sign | ((e + 112) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
}  // namespace cudaemu

struct __half_raw { unsigned short x; };
struct __half {
  unsigned short __x;
  __half() = default;
  __half(__half_raw r) : __x(r.x) {}
  __half(float f) : __x(cudaemu::float_to_half_bits(f)) {}
  __half(double d) : __x(cudaemu::double_to_half_bits(d)) {}
  __half(int i) : __half(float(i)) {}
  __half(unsigned int i) : __half(float(i)) {}
  __half(long long i) : __half(double(i)) {}
  __half(unsigned long long i) : __half(double(i)) {}
  __half(short i) : __half(float(i)) {}
  __half(unsigned short i) : __half(float(i)) {}
  operator float() const { return cudaemu::half_bits_to_float(__x); }
  operator __half_raw() const { return __half_raw{__x}; }
};
static_assert(sizeof(__half) == 2 && alignof(__half) == 2, "__half layout");
struct __attribute__((aligned(4))) __half2 { __half x, y; };
typedef __half half;
typedef __half2 half2;

inline float __half2float(__half h) { return float(h); }
inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
inline __half __double2half(double d) { return __half(d); }
inline __half __int2half_rn(int i) { return __half(i); }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short u) { return __half(__half_raw{u}); }
inline short __half_as_short(__half h) { return (short)h.__x; }
inline __half __short_as_half(short s) { return __half(__half_raw{(unsigned short)s}); }
inline bool __hisnan(__half h) { return (h.__x & 0x7fffu) > 0x7c00u; }
inline int __hisinf(__half h) { return h.__x == 0x7c00u ? 1 : (h.__x == 0xfc00u ? -1 : 0); }
inline __half __habs(__half h) { return __half(__half_raw{(unsigned short)(h.__x & 0x7fffu)}); }
inline __half __hneg(__half h) { return __half(__half_raw{(unsigned short)(h.__x ^ 0x8000u)}); }
// NOTE: float holds any sum/product/quotient of two halves exactly enough (24 >= 2*11 + 2 bits)
// that rounding the float result once gives the correctly rounded half result.
inline __half __hadd(__half a, __half b) { return __half(float(a) + float(b)); }
inline __half __hsub(__half a, __half b) { return __half(float(a) - float(b)); }
inline __half __hmul(__half a, __half b) { return __half(float(a) * float(b)); }
inline __half __hdiv(__half a, __half b) { return __half(float(a) / float(b)); }
inline __half __hfma(__half a, __half b, __half c) { return __half(std::fma(double(a), double(b), double(c))); }
inline bool __heq(__half a, __half b) { return float(a) == float(b); }
inline bool __hlt(__half a, __half b) { return float(a) < float(b); }
inline bool __hgt(__half a, __half b) { return float(a) > float(b); }
inline __half operator+(__half a, __half b) { return __hadd(a, b); }
inline __half operator-(__half a, __half b) { return __hsub(a, b); }
inline __half operator*(__half a, __half b) { return __hmul(a, b); }
inline __half operator/(__half a, __half b) { return __hdiv(a, b); }
inline __half operator-(__half a) { return __hneg(a); }
inline bool operator==(__half a, __half b) { return float(a) == float(b); }
inline bool operator!=(__half a, __half b) { return float(a) != float(b); }
inline bool operator<(__half a, __half b) { return float(a) < float(b); }
inline bool operator>(__half a, __half b) { return float(a) > float(b); }
inline bool operator<=(__half a, __half b) { return float(a) <= float(b); }
inline bool operator>=(__half a, __half b) { return float(a) >= float(b); }
inline __half2 __floats2half2_rn(float a, float b) { return __half2{__half(a), __half(b)}; }
inline __half2 __float2half2_rn(float a) { return __half2{__half(a), __half(a)}; }
inline float2 __half22float2(__half2 h) { return float2{float(h.x), float(h.y)}; }
inline float __low2float(__half2 h) { return float(h.x); }
inline float __high2float(__half2 h) { return float(h.y); }

// ---------------------------------------------------------------------------------------------
// bfloat16: storage type and the conversions of cuda_bf16.h (bit-exact, round to nearest even).
// ---------------------------------------------------------------------------------------------
namespace cudaemu {
inline unsigned short float_to_bf16_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;  // NOTE: CUDA's canonical NaN (sign dropped)
  const uint32_t r = x >> 16, rem = x & 0xffffu;       // subnormals and a carry into inf are right too
  return (unsigned short)(r + (rem > 0x8000u || (rem == 0x8000u && (r & 1u))));
}
inline unsigned short double_to_bf16_bits(double d) {
  // NOTE: d -> float rounded to odd, then -> bfloat16 to nearest even is one correct rounding of d
  // (24 >= 8 + 2 bits); as cuda_bf16.hpp's __double2bfloat16 below sm_90
  float f = (float)d;
  if (f != d && d == d) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if (std::fabs((double)f) > std::fabs(d)) --u;
    u |= 1u;
    std::memcpy(&f, &u, 4);
  }
  return float_to_bf16_bits(f);
}
inline float bf16_bits_to_float(unsigned short h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
}  // namespace cudaemu

struct __nv_bfloat16_raw { unsigned short x; };
struct __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  __nv_bfloat16(__nv_bfloat16_raw r) : __x(r.x) {}
  __nv_bfloat16(float f) : __x(cudaemu::float_to_bf16_bits(f)) {}
  __nv_bfloat16(double d) : __x(cudaemu::double_to_bf16_bits(d)) {}
  operator float() const { return cudaemu::bf16_bits_to_float(__x); }
  operator __nv_bfloat16_raw() const { return __nv_bfloat16_raw{__x}; }
};
static_assert(sizeof(__nv_bfloat16) == 2 && alignof(__nv_bfloat16) == 2, "__nv_bfloat16 layout");
typedef __nv_bfloat16 nv_bfloat16;
inline float __bfloat162float(__nv_bfloat16 h) { return float(h); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __double2bfloat16(double d) { return __nv_bfloat16(d); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return __nv_bfloat16(__nv_bfloat16_raw{u}); }

// ---------------------------------------------------------------------------------------------
// Bit casts and math intrinsics. Math goes to the host libm.
// NOTE: the fast approximate intrinsics (__expf, __logf, ...) are the accurate functions here:
// results of code using them match the GPU's only to the intrinsic's documented error.
// ---------------------------------------------------------------------------------------------
namespace cudaemu {
template <class To, class From> inline To bitcast(From v) {
  static_assert(sizeof(To) == sizeof(From), "bitcast size");
  To t;
  std::memcpy(&t, &v, sizeof(To));
  return t;
}
}  // namespace cudaemu
inline float __int_as_float(int i) { return cudaemu::bitcast<float>(i); }
inline int __float_as_int(float f) { return cudaemu::bitcast<int>(f); }
inline float __uint_as_float(unsigned int i) { return cudaemu::bitcast<float>(i); }
inline unsigned int __float_as_uint(float f) { return cudaemu::bitcast<unsigned int>(f); }
inline double __longlong_as_double(long long i) { return cudaemu::bitcast<double>(i); }
inline long long __double_as_longlong(double d) { return cudaemu::bitcast<long long>(d); }
inline int __double2hiint(double d) { return (int)(cudaemu::bitcast<unsigned long long>(d) >> 32); }
inline int __double2loint(double d) { return (int)(cudaemu::bitcast<unsigned long long>(d) & 0xffffffffu); }
inline double __hiloint2double(int hi, int lo) {
  return cudaemu::bitcast<double>(((unsigned long long)(unsigned)hi << 32) | (unsigned)lo);
}
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return powf(10.0f, x); }
inline float exp10f(float x) { return powf(10.0f, x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline void __sincosf(float x, float* s, float* c) { *s = sinf(x), *c = cosf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }  // NaN -> 0
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned int __brev(unsigned int x) {
  unsigned int r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned int __umulhi(unsigned int a, unsigned int b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline int __mul24(int a, int b) { return ((a << 8) >> 8) * ((b << 8) >> 8); }
// CUDA's global min/max overloads (device code calls them unqualified)
#define CUDAEMU_MINMAX(T)                              \
  inline T min(T a, T b) { return b < a ? b : a; }     \
  inline T max(T a, T b) { return a < b ? b : a; }
CUDAEMU_MINMAX(int)
CUDAEMU_MINMAX(unsigned int)
CUDAEMU_MINMAX(long long)
CUDAEMU_MINMAX(unsigned long long)
#undef CUDAEMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

// ---------------------------------------------------------------------------------------------
// The runtime's view of the running CUDA thread, and its collectives (runtime.cpp).
// ---------------------------------------------------------------------------------------------
namespace cudaemu {
struct ThreadCtx { ::uint3 tid; };
extern ThreadCtx* g_cur;                         // the running fiber
extern ::uint3 g_block_idx;
extern ::dim3 g_block_dim, g_grid_dim;

enum WarpKind { W_SHFL, W_SHFL_UP, W_SHFL_DOWN, W_SHFL_XOR, W_BALLOT, W_ANY, W_ALL, W_SYNCWARP };
enum BarKind { B_SYNC, B_COUNT, B_AND, B_OR };
unsigned long long warp_op(int kind, unsigned mask, unsigned long long bits, int param, int width,
                           const char* file, int line);
int block_sync(int kind, int pred, const char* file, int line);
void yield_point(const char* what);              // atomics, fences: a place to interleave
[[noreturn]] void trap(const char* what, const char* file, int line);
unsigned activemask();
void* dynamic_shared();
long long clock_ticks();

template <class T> inline unsigned long long to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value,
                "cudaemu: warp shuffles move values of at most 8 bytes");
  unsigned long long b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T> inline T from_bits(unsigned long long b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}
}  // namespace cudaemu

// NOTE: __builtin_FILE()/__builtin_LINE() as default arguments are evaluated at the call site,
// so error messages name the barrier or shuffle the kernel source called.
template <class T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32, const char* f = __builtin_FILE(),
                     int l = __builtin_LINE()) {
  return cudaemu::from_bits<T>(cudaemu::warp_op(cudaemu::W_SHFL, mask, cudaemu::to_bits(v), src, width, f, l));
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32, const char* f = __builtin_FILE(),
                        int l = __builtin_LINE()) {
  return cudaemu::from_bits<T>(cudaemu::warp_op(cudaemu::W_SHFL_UP, mask, cudaemu::to_bits(v), (int)d, width, f, l));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32, const char* f = __builtin_FILE(),
                          int l = __builtin_LINE()) {
  return cudaemu::from_bits<T>(cudaemu::warp_op(cudaemu::W_SHFL_DOWN, mask, cudaemu::to_bits(v), (int)d, width, f, l));
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32, const char* f = __builtin_FILE(),
                         int l = __builtin_LINE()) {
  return cudaemu::from_bits<T>(cudaemu::warp_op(cudaemu::W_SHFL_XOR, mask, cudaemu::to_bits(v), lane_mask, width, f, l));
}
inline unsigned __ballot_sync(unsigned mask, int p, const char* f = __builtin_FILE(), int l = __builtin_LINE()) {
  return (unsigned)cudaemu::warp_op(cudaemu::W_BALLOT, mask, p != 0, 0, 32, f, l);
}
inline int __any_sync(unsigned mask, int p, const char* f = __builtin_FILE(), int l = __builtin_LINE()) {
  return (int)cudaemu::warp_op(cudaemu::W_ANY, mask, p != 0, 0, 32, f, l);
}
inline int __all_sync(unsigned mask, int p, const char* f = __builtin_FILE(), int l = __builtin_LINE()) {
  return (int)cudaemu::warp_op(cudaemu::W_ALL, mask, p != 0, 0, 32, f, l);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* f = __builtin_FILE(), int l = __builtin_LINE()) {
  cudaemu::warp_op(cudaemu::W_SYNCWARP, mask, 0, 0, 32, f, l);
}
inline unsigned __activemask() { return cudaemu::activemask(); }
inline void __syncthreads(const char* f = __builtin_FILE(), int l = __builtin_LINE()) {
  cudaemu::block_sync(cudaemu::B_SYNC, 0, f, l);
}
inline int __syncthreads_count(int p, const char* f = __builtin_FILE(), int l = __builtin_LINE()) {
  return cudaemu::block_sync(cudaemu::B_COUNT, p != 0, f, l);
}
inline int __syncthreads_and(int p, const char* f = __builtin_FILE(), int l = __builtin_LINE()) {
  return cudaemu::block_sync(cudaemu::B_AND, p != 0, f, l);
}
inline int __syncthreads_or(int p, const char* f = __builtin_FILE(), int l = __builtin_LINE()) {
  return cudaemu::block_sync(cudaemu::B_OR, p != 0, f, l);
}
inline void __threadfence() { cudaemu::yield_point("__threadfence"); }
inline void __threadfence_block() { cudaemu::yield_point("__threadfence_block"); }
inline void __threadfence_system() { cudaemu::yield_point("__threadfence_system"); }
inline void __nanosleep(unsigned) { cudaemu::yield_point("__nanosleep"); }
inline long long clock64() { return cudaemu::clock_ticks(); }
template <class T> inline T __ldg(const T* p) { return *p; }
inline void __trap_at(const char* f = __builtin_FILE(), int l = __builtin_LINE()) { cudaemu::trap("__trap()", f, l); }
#define __trap() __trap_at()

// Atomics: plain read-modify-write (one OS thread runs all fibers), then a scheduling point so
// that the schedules interleave threads around them.
namespace cudaemu {
template <class T, class F> inline T rmw(T* a, F f, const char* what) {
  const T old = *a;
  *a = f(old);
  yield_point(what);
  return old;
}
}  // namespace cudaemu
template <class T> inline T atomicAdd(T* a, T v) { return cudaemu::rmw(a, [&](T o) { return T(o + v); }, "atomicAdd"); }
template <class T> inline T atomicSub(T* a, T v) { return cudaemu::rmw(a, [&](T o) { return T(o - v); }, "atomicSub"); }
template <class T> inline T atomicExch(T* a, T v) { return cudaemu::rmw(a, [&](T) { return v; }, "atomicExch"); }
template <class T> inline T atomicMin(T* a, T v) { return cudaemu::rmw(a, [&](T o) { return v < o ? v : o; }, "atomicMin"); }
template <class T> inline T atomicMax(T* a, T v) { return cudaemu::rmw(a, [&](T o) { return o < v ? v : o; }, "atomicMax"); }
template <class T> inline T atomicAnd(T* a, T v) { return cudaemu::rmw(a, [&](T o) { return T(o & v); }, "atomicAnd"); }
template <class T> inline T atomicOr(T* a, T v) { return cudaemu::rmw(a, [&](T o) { return T(o | v); }, "atomicOr"); }
template <class T> inline T atomicXor(T* a, T v) { return cudaemu::rmw(a, [&](T o) { return T(o ^ v); }, "atomicXor"); }
template <class T> inline T atomicCAS(T* a, T cmp, T v) {
  return cudaemu::rmw(a, [&](T o) { return o == cmp ? v : o; }, "atomicCAS");
}
inline unsigned atomicInc(unsigned* a, unsigned v) {
  return cudaemu::rmw(a, [&](unsigned o) { return o >= v ? 0u : o + 1; }, "atomicInc");
}
inline unsigned atomicDec(unsigned* a, unsigned v) {
  return cudaemu::rmw(a, [&](unsigned o) { return (o == 0 || o > v) ? v : o - 1; }, "atomicDec");
}

// ---------------------------------------------------------------------------------------------
// Launch thunks: one per name expression, generated by build.py. The parameter table comes from
// the function type by template deduction, so the Python side checks each argument against
// the kernel's real C++ parameter types.
// ---------------------------------------------------------------------------------------------
namespace cudaemu {
typedef void (*ThunkFn)(void** args);
struct KernelInfo { const char* name; ThunkFn fn; const char* sig; };

template <class T> inline const char* type_name() {
  if (std::is_same<T, __half>::value) return "f16";
  if (std::is_same<T, __nv_bfloat16>::value) return "bf16";
  if (std::is_same<T, float>::value) return "f32";
  if (std::is_same<T, double>::value) return "f64";
  if (std::is_same<T, bool>::value) return "b8";
  if (std::is_integral<T>::value) {
    static const char* const s[] = {"i8", "i16", "?", "i32", "?", "?", "?", "i64"};
    static const char* const u[] = {"u8", "u16", "?", "u32", "?", "?", "?", "u64"};
    return (std::is_signed<T>::value ? s : u)[sizeof(T) <= 8 ? sizeof(T) - 1 : 2];
  }
  return "?";
}
template <class T> struct SizeOf { static constexpr size_t value = sizeof(T); };
template <> struct SizeOf<void> { static constexpr size_t value = 0; };
template <> struct SizeOf<const void> { static constexpr size_t value = 0; };
// "ptr:f32:4" (pointer to non-const), "cptr:f16:2" (pointer to const), "val:i64:8" (by value)
template <class P> inline std::string param_sig() {
  typedef typename std::remove_cv<P>::type U;
  if (std::is_pointer<U>::value) {
    typedef typename std::remove_pointer<U>::type E;
    return std::string(std::is_const<E>::value ? "cptr:" : "ptr:") +
           type_name<typename std::remove_cv<E>::type>() + ":" + std::to_string(SizeOf<E>::value);
  }
  return std::string("val:") + type_name<U>() + ":" + std::to_string(sizeof(U));
}
template <class... P> inline const char* signature(void (*)(P...)) {
  static const std::string s = [] {
    std::string r;
    for (const std::string& p : {std::string(), param_sig<P>()...}) r += (r.empty() ? "" : ";") + p;
    return r;
  }();
  return s.c_str();
}
template <class F, F f> struct Thunk;
template <class... P, void (*f)(P...)> struct Thunk<void (*)(P...), f> {
  template <size_t... I> static void call(void** a, std::index_sequence<I...>) {
    f(*static_cast<typename std::remove_cv<typename std::remove_reference<P>::type>::type*>(a[I])...);
  }
  static void run(void** a) { call(a, std::index_sequence_for<P...>{}); }
};
}  // namespace cudaemu
#define CUDAEMU_KERNEL(...) \
  { #__VA_ARGS__, &::cudaemu::Thunk<decltype(&__VA_ARGS__), &__VA_ARGS__>::run, ::cudaemu::signature(&__VA_ARGS__) }

// ---------------------------------------------------------------------------------------------
// (2) CUDA keywords, for kernel sources only
// ---------------------------------------------------------------------------------------------
#ifndef CUDAEMU_NO_KEYWORDS
#define threadIdx (static_cast<const ::uint3&>(::cudaemu::g_cur->tid))
#define blockIdx (static_cast<const ::uint3&>(::cudaemu::g_block_idx))
#define blockDim (static_cast<const ::dim3&>(::cudaemu::g_block_dim))
#define gridDim (static_cast<const ::dim3&>(::cudaemu::g_grid_dim))
#define warpSize 32
#ifdef CUDAEMU_SCAN  // build.py's preprocessor pass: markers it parses (never compiled)
#define __global__ __cudaemu_global__
#define __shared__ __cudaemu_shared__
#else
#define __global__
// NOTE: blocks run one after another, so one static instance is the block's shared memory.
// build.py finds these variables in the symbol table and the runtime refills them with
// garbage before every block (CUDA leaves shared memory uninitialised).
#define __shared__ static
#endif
// `extern __shared__ T name[];`, rewritten by build.py. NOTE: a statement expression is valid in
// function bodies only, so a namespace-scope declaration (it would be initialised before any
// launch) fails to compile instead of running wrong.
#define __cudaemu_dynamic_shared__(T, name) T* const name = ({ reinterpret_cast<T*>(::cudaemu::dynamic_shared()); })
#define __device__
#define __host__
#define __constant__ static
#define __managed__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __grid_constant__
#define __align__(n) __attribute__((aligned(n)))
// NOTE: `__shared__ alignas(16) unsigned char buf[N];` is valid CUDA (__shared__ is an
// attribute there) but `static alignas(16)` is not valid C++: alignas becomes the GNU attribute,
// which may sit anywhere among the specifiers. Only the expression form alignas(N) is supported.
#define alignas(...) __attribute__((aligned(__VA_ARGS__)))
// What NVRTC defines while it compiles device code (kernels/common.cuh keys its branches on these).
#define __CUDACC__ 1
#define __CUDACC_RTC__ 1
#define __CUDA_ARCH__ 800
#define CUDART_VERSION 12000
#endif
