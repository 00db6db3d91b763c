// Small kernels that exercise the emulator itself (tests/test_kernels_emulated_runtime.py):
// collective semantics, the errors for misused collectives, races, sanitizer catches.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

extern "C" {

// out[t] = shuffle of in[t] across the warp: kind 0 idx, 1 up, 2 down, 3 xor.
__global__ void shfl(const int* __restrict__ in, int* __restrict__ out, int kind, int param, int width) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  const int v = in[t];
  int r = 0;
  if (kind == 0) r = __shfl_sync(0xffffffffu, v, param, width);
  if (kind == 1) r = __shfl_up_sync(0xffffffffu, v, param, width);
  if (kind == 2) r = __shfl_down_sync(0xffffffffu, v, param, width);
  if (kind == 3) r = __shfl_xor_sync(0xffffffffu, v, param, width);
  out[t] = r;
}

// out[3t..3t+2] = ballot, any, all of in[t] != 0 over the warp; out2[t] = the block's
// __syncthreads_count / _and / _or of the same predicate.
__global__ void votes(const int* __restrict__ in, unsigned* __restrict__ out, int* __restrict__ out2) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  const int p = in[t] != 0;
  out[3 * t] = __ballot_sync(0xffffffffu, p);
  out[3 * t + 1] = __any_sync(0xffffffffu, p);
  out[3 * t + 2] = __all_sync(0xffffffffu, p);
  const int c = __syncthreads_count(p), a = __syncthreads_and(p), o = __syncthreads_or(p);
  out2[3 * t] = c, out2[3 * t + 1] = a, out2[3 * t + 2] = o;
}

// Block sum of in (blockDim.x <= 1024) through shared memory; `sync` = 0 drops the barrier
// between the writes and the read, which makes the result depend on the thread schedule.
__global__ void block_sum(const float* __restrict__ in, float* __restrict__ out, int sync) {
  __shared__ float buf[1024];
  buf[threadIdx.x] = in[blockIdx.x * blockDim.x + threadIdx.x];
  if (sync) __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.0f;
    for (unsigned i = 0; i < blockDim.x; ++i) s += buf[i];
    out[blockIdx.x] = s;
  }
}

// Float atomics: the sum's rounding depends on the order of the atomicAdds.
__global__ void atomic_sum(const float* __restrict__ in, float* __restrict__ out, long long n) {
  for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) atomicAdd(out, in[i]);
}

// Misuse, one kernel per error the emulator must report (`which` selects the variant).
__global__ void misuse(int* __restrict__ out, int which) {
  const int t = threadIdx.x;
  int v = t;
  if (which == 0) {                  // barrier divergence: two different barriers
    if (t < 16) __syncthreads();
    else __syncthreads();
  } else if (which == 1) {           // a thread exits while the others wait at a barrier
    if (t == 3) return;
    __syncthreads();
  } else if (which == 2) {           // a shuffle names a lane that has exited
    if (t == 5) return;
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  } else if (which == 3) {           // deadlock: lane 0 in a shuffle, the others at a barrier
    if (t == 0) v = __shfl_xor_sync(0xffffffffu, v, 1);
    else __syncthreads();
  } else if (which == 4) {           // lanes of one warp in different collectives
    if (t & 1) v = __shfl_xor_sync(0xffffffffu, v, 2);
    else v = __shfl_down_sync(0xffffffffu, v, 2);
  } else if (which == 5) {           // the calling lane is not in the mask
    v = __shfl_xor_sync(0xfffffffeu, v, 1);
  } else if (which == 6) {           // a mask naming lanes beyond the block (16 threads)
    v = __shfl_down_sync(0xffffffffu, v, 1);
  } else if (which == 7) {           // __trap()
    if (t == 7) __trap();
  }
  out[t] = v;
}

// float16 conversions: out[i] = __half2float(bits in[i]); back[i] = bits of __float2half_rn(f[i]).
__global__ void half_conv(const unsigned short* __restrict__ in, float* __restrict__ out, const float* __restrict__ f,
                          unsigned short* __restrict__ back, long long n) {
  for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    out[i] = __half2float(__ushort_as_half(in[i]));
    back[i] = __half_as_ushort(__float2half_rn(f[i]));
  }
}

// bfloat16 conversions: out[i] = __bfloat162float(bits in[i]); back[i] / dback[i] = bits of
// __float2bfloat16_rn(f[i]) / __double2bfloat16(d[i]).
__global__ void bf16_conv(const unsigned short* __restrict__ in, float* __restrict__ out, const float* __restrict__ f,
                          unsigned short* __restrict__ back, const double* __restrict__ d,
                          unsigned short* __restrict__ dback, long long n) {
  for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    out[i] = __bfloat162float(__ushort_as_bfloat16(in[i]));
    back[i] = __bfloat16_as_ushort(__float2bfloat16_rn(f[i]));
    dback[i] = __bfloat16_as_ushort(__double2bfloat16(d[i]));
  }
}

// out[i] = in[i] with float4 loads: a misaligned `in` is a misaligned-address fault on the GPU.
__global__ void copy4(const float* __restrict__ in, float* __restrict__ out, long long n4) {
  for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += gridDim.x * blockDim.x)
    reinterpret_cast<float4*>(out)[i] = reinterpret_cast<const float4*>(in)[i];
}

// Writes out[0..n] (one too many) / reads shared memory out of bounds / reads it unwritten.
__global__ void oob(float* __restrict__ out, long long n, int which) {
  __shared__ float s[32];
  const long long i = blockIdx.x * blockDim.x + threadIdx.x;
  if (which == 0 && i <= n) out[i] = 1.0f;
  if (which == 1 && i < n) {
    s[threadIdx.x] = 1.0f;
    __syncthreads();
    out[i] = s[threadIdx.x + 1];
  }
  if (which == 2 && i < n) out[i] = s[threadIdx.x];
}

// Block sums through dynamic shared memory (blockDim.x floats); `past` writes one element beyond.
__global__ void dyn_sum(const float* __restrict__ in, float* __restrict__ out, int past) {
  extern __shared__ float sdata[];
  sdata[threadIdx.x + (past && threadIdx.x == blockDim.x - 1)] = in[blockIdx.x * blockDim.x + threadIdx.x];
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sdata[threadIdx.x] += sdata[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = sdata[0];
}

__global__ void scalars(const double* __restrict__ x, double* __restrict__ y, long long n, int k, float f) {
  for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = x[i] * k + f;
}

}  // extern "C"
