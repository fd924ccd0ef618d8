// cuda backend: embedding lookup (a gather of rows) and its gradient as a deterministic
// scatter-add. The ids were checked on the device (checks.cu), reported at the next
// synchronisation; meanwhile an invalid id reads and writes nothing (NaN rows forward).
//
// embedding_forward_kernel: grid-stride over output elements, out[i, d] = W[ids[i], d].
// backward, with no float atomics (their order would change the bits run to run):
//   1. sort the keys (id << 32 | i) with a bitonic network: bitonic_tile_kernel sorts tiles of
//      kTile keys in shared memory (and, given k, finishes a merge stage inside each tile);
//      bitonic_step_kernel does the compare-exchange steps that cross tiles, in global memory.
//   2. embedding_chunk_sum_kernel: a block per sorted position; each position at a multiple of
//      kChunk from the start of its id's run sums the next kChunk rows of dout in order of i
//      (threads over D); embedding_run_sum_kernel: the run's first position adds its chunk
//      sums in order and writes dW[id]. Deterministic; a long run is parallel.
//   Rows no id names are zeroed first (cudaMemsetAsync).
// Cost: forward 1 read + 1 write per element; backward a sort of n keys (O(n log^2 n)
// compare-exchanges, n padded to a power of two) + n*D reads + V*D writes; scratch n*D floats
// (chunk sums).
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

__global__ void embedding_forward_kernel(int64_t total, int D, int V, const float* ids, const float* W, float* out) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t i = e / D;
    const float id = ids[i];
    out[e] = id_is_valid(id, V, false, 0) ? W[int64_t(id) * D + (e - i * D)] : NAN;
  }
}

// Compare-exchange of the pair (low, low + j) of the bitonic network's stage k: ascending where
// bit k of the (global) index is 0.
__device__ inline void compare_exchange(unsigned long long* keys, int64_t low, int j, int64_t k, int64_t global_low) {
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
__global__ void __launch_bounds__(kTile / 2)
    bitonic_tile_kernel(unsigned long long* keys, const float* ids, int n, int V, int tile, int64_t merge_k) {
  __shared__ unsigned long long s[kTile];
  const int64_t base = int64_t(blockIdx.x) * tile;
  for (int t = threadIdx.x; t < tile; t += blockDim.x) {
    const int64_t i = base + t;
    if (merge_k != 0)
      s[t] = keys[i];
    else
      s[t] = i < n && id_is_valid(ids[i], V, false, 0) ? (uint64_t(ids[i]) << 32) | uint64_t(i) : kNoIndex;
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

// The sorted keys hold each id's run of positions; a run is summed in chunks of kChunk rows (a
// padding id repeated 10^4 times is 40 parallel chunks, not one serial loop), then the chunk
// sums are added in order: the same bits every run, whatever the scheduling.
constexpr int kChunk = 256;

__device__ inline uint64_t id_of(const unsigned long long* keys, int s) { return keys[s] >> 32; }

// partial[s] (D floats) = the sum of the dout rows of positions [s, s + kChunk) of s's run, for
// every s at a multiple of kChunk from its run's start.
__global__ void embedding_chunk_sum_kernel(const unsigned long long* keys, int n, int D, const float* dout,
                                           float* partial) {
  const int s = blockIdx.x;
  if (keys[s] == kNoIndex) return;  // an invalid id
  const uint64_t id = id_of(keys, s);
  int lo = 0, hi = s;  // the run's start: the first position with this id (keys are sorted)
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (id_of(keys, mid) < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  if ((s - lo) % kChunk != 0) return;
  for (int d = blockIdx.y * blockDim.x + threadIdx.x; d < D; d += gridDim.y * blockDim.x) {
    float acc = 0.0f;
    for (int r = s; r < n && r < s + kChunk && id_of(keys, r) == id; ++r)
      acc += dout[int64_t(keys[r] & 0xffffffffu) * D + d];
    partial[int64_t(s) * D + d] = acc;
  }
}

// dW[id] = the sum of its run's chunk sums, in order (one chunk: that sum itself).
__global__ void embedding_run_sum_kernel(const unsigned long long* keys, int n, int D, const float* partial,
                                         float* dW) {
  const int s = blockIdx.x;
  if (keys[s] == kNoIndex) return;
  const uint64_t id = id_of(keys, s);
  if (s > 0 && id_of(keys, s - 1) == id) return;  // not the first of its id's run
  for (int d = blockIdx.y * blockDim.x + threadIdx.x; d < D; d += gridDim.y * blockDim.x) {
    float acc = 0.0f;
    for (int c = s; c < n && id_of(keys, c) == id; c += kChunk) acc += partial[int64_t(c) * D + d];
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
      FF_LAUNCH(bitonic_step_kernel, dim3(cuda::blocks_for(P / 2)), dim3(cuda::kThreads), 0, keys, P / 2, int(j), k);
    FF_LAUNCH(bitonic_tile_kernel, dim3(tiles), dim3(unsigned(tile / 2)), 0, keys, ids, n, V, tile, k);
  }
}

}  // namespace

void embedding_forward(int n, int D, int V, const float* ids, const float* W, float* out) {
  const int64_t total = int64_t(n) * D;
  FF_LAUNCH(embedding_forward_kernel, dim3(cuda::blocks_for(total)), dim3(cuda::kThreads), 0, total, D, V, ids, W, out);
}

void embedding_backward(int n, int D, int V, const float* ids, const float* dout, float* dW) {
  int64_t P = 2;
  while (P < n) P <<= 1;
  auto* keys = static_cast<unsigned long long*>(alloc(sizeof(unsigned long long) * P));
  float* partial = nullptr;
  try {
    partial = static_cast<float*>(alloc(sizeof(float) * int64_t(n) * D));
    cuda::check(cudaMemsetAsync(dW, 0, sizeof(float) * int64_t(V) * D, cuda::stream()), "embedding_backward");
    sort_keys(ids, n, V, keys, P);
    const unsigned threads = D >= 128 ? 128u : unsigned((D + 31) / 32 * 32);
    const unsigned col_blocks = unsigned(std::min<int64_t>((D + threads - 1) / threads, 65535));
    FF_LAUNCH(embedding_chunk_sum_kernel, dim3(unsigned(n), col_blocks), dim3(threads), 0, keys, n, D, dout, partial);
    FF_LAUNCH(embedding_run_sum_kernel, dim3(unsigned(n), col_blocks), dim3(threads), 0, keys, n, D,
              static_cast<const float*>(partial), dW);
  } catch (...) {
    release(keys);
    release(partial);
    throw;
  }
  release(keys);  // stream-ordered reuse: later work queues after these kernels
  release(partial);
}

}  // namespace ff::backend
