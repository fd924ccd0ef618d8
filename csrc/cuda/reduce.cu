// cuda backend: out = the sum of x over some of its dims (sum, mean, and the gradients of
// broadcast ops, which sum back to an input's shape). The same split as csrc/cpu/reduce.cpp:
//
//   sum_inner_kernel  innermost dim reduced (row sums, whole-tensor sums): a warp per
//                     (output, chunk of the reduced range); lanes read consecutive elements,
//                     accumulate in double, then warp_sum.
//   sum_outer_kernel  innermost dim kept (column sums, a bias gradient [M, F] -> [F]): a thread
//                     per (output, chunk), consecutive threads on consecutive outputs, so each
//                     step of the reduced loop is one coalesced row read.
//   sum_partials_kernel  when there are too few outputs to fill the GPU, the reduced range is cut
//                     into chunks whose double partials this kernel adds in chunk order (a warp
//                     per output): deterministic, no atomics.
// Cost: one add per input element plus a decode of the reduced index (no division when one
// reduced dim remains after merging, the common case).
#include "launch.h"  // first: under the emulator it defines the CUDA qualifiers
#include <cstdint>
#include "../common/backend.h"
#include "../common/backend_tensor_ops.h"
#include "reduce.h"
#include "strided_index.h"

namespace ff::backend {
namespace {

using cuda::Dims32;
using cuda::kThreads;

constexpr unsigned kWarpChunk = 1024;  // reduced elements per warp task, at least
constexpr unsigned kThreadChunk = 32;  // reduced elements per thread task, at least
constexpr unsigned kTargetWarps = cuda::kMaxBlocks * (kThreads / 32);
constexpr unsigned kTargetThreads = cuda::kMaxBlocks * kThreads;

// Task t = chunk * O + output. Writes out[o] directly when there is one chunk.
__global__ void sum_inner_kernel(Dims32 kept, Dims32 red, unsigned O, unsigned K, unsigned chunks, unsigned chunk,
                                 const float* x, double* partial, float* out) {
  const unsigned lane = threadIdx.x & 31;
  const unsigned warps = gridDim.x * blockDim.x / 32;
  for (unsigned t = (blockIdx.x * blockDim.x + threadIdx.x) / 32; t < O * chunks; t += warps) {
    const unsigned o = t % O, begin = t / O * chunk;
    const unsigned end = K - begin < chunk ? K : begin + chunk;
    const float* base = x + cuda::offset0(kept, o);
    double acc = 0.0;
    for (unsigned k = begin + lane; k < end; k += 32) acc += base[cuda::offset0(red, k)];
    acc = cuda::warp_sum(acc);
    if (lane == 0) {
      if (chunks == 1)
        out[o] = float(acc);
      else
        partial[t] = acc;
    }
  }
}

__global__ void sum_outer_kernel(Dims32 kept, Dims32 red, unsigned O, unsigned K, unsigned chunks, unsigned chunk,
                                 const float* x, double* partial, float* out) {
  for (unsigned t = blockIdx.x * blockDim.x + threadIdx.x; t < O * chunks; t += gridDim.x * blockDim.x) {
    const unsigned o = t % O, begin = t / O * chunk;
    const unsigned end = K - begin < chunk ? K : begin + chunk;
    const float* base = x + cuda::offset0(kept, o);
    double acc = 0.0;
    for (unsigned k = begin; k < end; ++k) acc += base[cuda::offset0(red, k)];
    if (chunks == 1)
      out[o] = float(acc);
    else
      partial[t] = acc;
  }
}

__global__ void sum_partials_kernel(const double* partial, unsigned O, unsigned chunks, float* out) {
  const unsigned lane = threadIdx.x & 31;
  const unsigned warps = gridDim.x * blockDim.x / 32;
  for (unsigned o = (blockIdx.x * blockDim.x + threadIdx.x) / 32; o < O; o += warps) {
    double acc = 0.0;
    for (unsigned s = lane; s < chunks; s += 32) acc += partial[size_t(s) * O + o];
    acc = cuda::warp_sum(acc);
    if (lane == 0) out[o] = float(acc);
  }
}

unsigned ceil_div(int64_t a, int64_t b) { return unsigned((a + b - 1) / b); }

// Partial sums in device memory for the duration of one reduction (work on the one stream is
// ordered, so releasing right after queueing the kernels is safe). n = 0: none.
struct Scratch {
  double* ptr;
  explicit Scratch(size_t n) : ptr(n ? static_cast<double*>(alloc(n * sizeof(double))) : nullptr) {}
  ~Scratch() {
    if (ptr) release(ptr);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

}  // namespace

void sum_reduce(const ReduceShape& r, const float* x, float* out) {
  const Dims32 kept = cuda::dims32(r.kept_size, r.kept_stride, r.nkept);
  const Dims32 red = cuda::dims32(r.red_size, r.red_stride, r.nred);
  const unsigned O = unsigned(r.out_numel()), K = unsigned(r.red_numel());
  const bool inner = r.nkept == 0 || r.inner_reduced;
  const unsigned want = inner ? ceil_div(kTargetWarps, O) : ceil_div(kTargetThreads, O);
  const unsigned most = inner ? ceil_div(K, kWarpChunk) : ceil_div(K, kThreadChunk);
  const unsigned chunks = want < most ? want : most;
  const unsigned chunk = ceil_div(K, chunks);
  const int64_t tasks = int64_t(O) * chunks;
  Scratch partial(chunks > 1 ? size_t(tasks) : 0);
  if (inner)
    FF_LAUNCH(sum_inner_kernel, dim3(cuda::blocks_for(tasks * 32)), dim3(kThreads), 0, kept, red, O, K, chunks, chunk,
              x, partial.ptr, out);
  else
    FF_LAUNCH(sum_outer_kernel, dim3(cuda::blocks_for(tasks)), dim3(kThreads), 0, kept, red, O, K, chunks, chunk, x,
              partial.ptr, out);
  if (chunks > 1)
    FF_LAUNCH(sum_partials_kernel, dim3(cuda::blocks_for(int64_t(O) * 32)), dim3(kThreads), 0, partial.ptr, O, chunks,
              out);
}

}  // namespace ff::backend
