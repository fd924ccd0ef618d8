// cuda backend: the elementwise ops the autograd itself needs (fill for seeds and zeros,
// in-place add for gradient accumulation). One pass over n floats each: memory-bound, 4 or 8
// bytes moved per element. Grid-stride loops over at most 4 blocks of 256 threads per SM.
#include <algorithm>
#include "../common/backend.h"
#include "launch.h"

namespace ff::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) fill_kernel(float* dst, float value, size_t n) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = value;
}

__global__ void __launch_bounds__(kThreads) add_inplace_kernel(float* dst, const float* src, size_t n) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] += src[i];
}

unsigned grid_for(size_t n) {
  const size_t blocks = (n + kThreads - 1) / kThreads;
  return unsigned(std::min<size_t>(blocks, size_t(sm_count()) * 4));
}

}  // namespace
}  // namespace ff::cuda

namespace ff::backend {

void fill(float* dst, float value, size_t n) {
  FF_LAUNCH(cuda::fill_kernel, dim3(cuda::grid_for(n)), dim3(cuda::kThreads), 0, dst, value, n);
}

void add_inplace(float* dst, const float* src, size_t n) {
  FF_LAUNCH(cuda::add_inplace_kernel, dim3(cuda::grid_for(n)), dim3(cuda::kThreads), 0, dst, src, n);
}

}  // namespace ff::backend
