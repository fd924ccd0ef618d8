// cuda backend: embedding lookup (a gather of rows) and its gradient as a deterministic
// scatter-add. The ids were checked on the device (checks.cu), reported at the next
// synchronisation; meanwhile an invalid id reads and writes nothing (NaN rows forward).
//
// embedding_forward_kernel: grid-stride over output elements, out[i, d] = W[ids[i], d].
// backward, with no float atomics (their order would change the bits run to run):
//   1. sort the keys (id << 32 | i) with a bitonic network: bitonic_tile_kernel sorts tiles of
//      kTile keys in shared memory (and, given k, finishes a merge stage inside each tile);
//      bitonic_step_kernel does the compare-exchange steps that cross tiles, in global memory.
//   2. embedding_segment_sum_kernel: a block per sorted position; the first position of each
//      id's run sums the run's dout rows in order of i (threads over D) and writes dW[id].
//   Rows no id names are zeroed first (cudaMemsetAsync).
// Cost: forward 1 read + 1 write per element; backward a sort of n keys (O(n log^2 n)
// compare-exchanges, n padded to a power of two) + n*D reads + V*D writes.
#include <algorithm>
#include <cstdint>
#include "../common/backend.h"
#include "../common/backend_nn_ops.h"
#include "../common/ids.h"
#include "launch.h"
#include "strided_index.h"

namespace ff::backend {
namespace {

constexpr int kTile = 2048;  // keys per shared-memory tile (kTile / 2 threads)
constexpr uint64_t kNoIndex = ~uint64_t(0);

__global__ void embedding_forward_kernel(int64_t total, int D, int V, const float* ids,
                                         const float* W, float* out) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t i = e / D;
    const float id = ids[i];
    out[e] = id_is_valid(id, V, false, 0) ? W[int64_t(id) * D + (e - i * D)] : NAN;
  }
}

// Compare-exchange of the pair (low, low + j) of the bitonic network's stage k: ascending where
// bit k of the (global) index is 0.
__device__ inline void compare_exchange(unsigned long long* keys, int64_t low, int j, int64_t k,
                                        int64_t global_low) {
  const unsigned long long a = keys[low], b = keys[low + j];
  const bool ascending = (global_low & k) == 0;
  if ((a > b) == ascending) {
    keys[low] = b;
    keys[low + j] = a;
  }
}

// Stages k = 2 .. tile (merge_k = 0), or only the steps j < tile of stage merge_k, of each tile.
// The first call also builds the keys: id << 32 | i for i < n, kNoIndex for padding and invalid
// ids (sorted last, summed nowhere).
__global__ void bitonic_tile_kernel(unsigned long long* keys, const float* ids, int n, int V,
                                    int tile, int64_t merge_k) {
  __shared__ unsigned long long s[kTile];
  const int64_t base = int64_t(blockIdx.x) * tile;
  for (int t = threadIdx.x; t < tile; t += blockDim.x) {
    const int64_t i = base + t;
    if (merge_k != 0) s[t] = keys[i];
    else s[t] = i < n && id_is_valid(ids[i], V, false, 0) ? (uint64_t(ids[i]) << 32) | uint64_t(i) : kNoIndex;
  }
  __syncthreads();
  const int64_t k_first = merge_k != 0 ? merge_k : 2, k_last = merge_k != 0 ? merge_k : tile;
  for (int64_t k = k_first; k <= k_last; k <<= 1) {
    for (int j = int(k < tile ? k : tile) >> 1; j > 0; j >>= 1) {
      const int t = threadIdx.x;
      const int low = 2 * t - (t & (j - 1));
      compare_exchange(s, low, j, k, base + low);
      __syncthreads();
    }
  }
  for (int t = threadIdx.x; t < tile; t += blockDim.x) keys[base + t] = s[t];
}

__global__ void bitonic_step_kernel(unsigned long long* keys, int64_t pairs, int j, int64_t k) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < pairs; t += stride) {
    const int64_t low = 2 * t - (t & (j - 1));
    compare_exchange(keys, low, j, k, low);
  }
}

__global__ void embedding_segment_sum_kernel(const unsigned long long* keys, int n, int D,
                                             const float* dout, float* dW) {
  const int s = blockIdx.x;
  const uint64_t id = keys[s] >> 32;
  if (keys[s] == kNoIndex) return;                   // an invalid id
  if (s > 0 && (keys[s - 1] >> 32) == id) return;  // not the first of its id's run
  for (int d = blockIdx.y * blockDim.x + threadIdx.x; d < D; d += gridDim.y * blockDim.x) {
    float acc = 0.0f;
    for (int r = s; r < n && (keys[r] >> 32) == id; ++r)
      acc += dout[int64_t(keys[r] & 0xffffffffu) * D + d];
    dW[int64_t(id) * D + d] = acc;
  }
}

// Sorts the n keys (id << 32 | i) ascending into keys[0, P), P = padded length.
void sort_keys(const float* ids, int n, int V, unsigned long long* keys, int64_t P) {
  const int tile = int(P < kTile ? P : kTile);
  const unsigned tiles = unsigned(P / tile);
  FF_LAUNCH(bitonic_tile_kernel, dim3(tiles), dim3(unsigned(tile / 2)), 0, keys, ids, n, V, tile, int64_t(0));
  for (int64_t k = int64_t(tile) * 2; k <= P; k <<= 1) {
    for (int64_t j = k / 2; j >= tile; j >>= 1)
      FF_LAUNCH(bitonic_step_kernel, dim3(cuda::blocks_for(P / 2)), dim3(cuda::kThreads), 0, keys, P / 2,
                int(j), k);
    FF_LAUNCH(bitonic_tile_kernel, dim3(tiles), dim3(unsigned(tile / 2)), 0, keys, ids, n, V, tile, k);
  }
}

}  // namespace

void embedding_forward(int n, int D, int V, const float* ids, const float* W, float* out) {
  const int64_t total = int64_t(n) * D;
  FF_LAUNCH(embedding_forward_kernel, dim3(cuda::blocks_for(total)), dim3(cuda::kThreads), 0, total,
            D, V, ids, W, out);
}

void embedding_backward(int n, int D, int V, const float* ids, const float* dout, float* dW) {
  int64_t P = 2;
  while (P < n) P <<= 1;
  auto* keys = static_cast<unsigned long long*>(alloc(sizeof(unsigned long long) * P));
  try {
    cuda::check(cudaMemsetAsync(dW, 0, sizeof(float) * int64_t(V) * D, cuda::stream()), "embedding_backward");
    sort_keys(ids, n, V, keys, P);
    const unsigned threads = D >= 128 ? 128u : unsigned((D + 31) / 32 * 32);
    const unsigned col_blocks = unsigned(std::min<int64_t>((D + threads - 1) / threads, 65535));
    FF_LAUNCH(embedding_segment_sum_kernel, dim3(unsigned(n), col_blocks), dim3(threads), 0, keys, n,
              D, dout, dW);
  } catch (...) {
    release(keys);
    throw;
  }
  release(keys);  // stream-ordered reuse: later work queues after these kernels
}

}  // namespace ff::backend
