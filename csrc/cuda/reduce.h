// Warp and block reductions built only from *_sync shuffles and shared memory (no cub), so the
// same code runs under nvcc and the emulator. All lanes of the warp (all threads of the block)
// must call them; blockDim.x must be a multiple of 32.
#pragma once
#include "launch.h"

namespace ff::cuda {

constexpr unsigned kFullMask = 0xffffffffu;

// Sum over the 32 lanes of a warp; every lane gets the result. Cost: 5 shuffles.
template <typename T>
__device__ inline T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

template <typename T>
__device__ inline T warp_max(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const T o = __shfl_xor_sync(kFullMask, v, offset);
    v = o > v ? o : v;
  }
  return v;
}

// Sum over the block (1-D, up to 1024 threads); every thread gets the result. `scratch` is a
// __shared__ array of at least 32 elements; it may be reused right after the call returns.
template <typename T>
__device__ inline T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = lane < warps ? scratch[lane] : T(0);
  total = warp_sum(total);
  __syncthreads();  // scratch may be reused by the caller
  return total;
}

}  // namespace ff::cuda
