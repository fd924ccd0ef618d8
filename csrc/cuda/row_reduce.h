// What the row kernels (LayerNorm, softmax, cross-entropy: one block per row of C) share: the
// block size for a row length, and the block maximum that reduce.h's block_sum has no twin for.
#pragma once
#include "reduce.h"

namespace ff::cuda {

// Threads for a block that owns one row of C elements: about 4 elements per thread, a whole
// number of warps, 32 to 512.
constexpr unsigned kMaxRowThreads = 512;  // the row kernels' __launch_bounds__
inline unsigned row_threads(int C) {
  const unsigned want = (unsigned(C) + 127u) / 128u * 32u;
  return want < 32u ? 32u : (want > kMaxRowThreads ? kMaxRowThreads : want);
}

// Maximum over the block (1-D, whole warps); every thread gets it. `scratch`: >= 32 shared
// elements, reusable once this returns. Mirrors block_sum.
template <typename T>
__device__ inline T block_max(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T m = lane < warps ? scratch[lane] : scratch[0];
  m = warp_max(m);
  __syncthreads();
  return m;
}

}  // namespace ff::cuda
