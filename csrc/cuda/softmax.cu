// cuda backend: softmax and log-softmax over the last axis, and their backward.
//
// softmax_forward_kernel: one block per row (row_threads(C)); block_max, then block_sum of
//   exp(x - max), then the output (re-reads of the row hit L1/L2).
// softmax_backward_kernel: one block per row; block_sum of dy y (softmax) or dy (log-softmax),
//   then dx = y (dy - s) or dy - exp(y) s.
// Cost per element: 1 read (+2 cached) and 1 write, 1-2 exp.
#include <cmath>
#include "../common/backend_nn_ops.h"
#include "row_reduce.h"

namespace ff::backend {
namespace {

__global__ void __launch_bounds__(cuda::kMaxRowThreads)
    softmax_forward_kernel(int C, bool log, const float* x, float* y) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * C;
  float m = -INFINITY;
  for (int c = threadIdx.x; c < C; c += blockDim.x) m = fmaxf(m, xr[c]);
  m = cuda::block_max(m, scratch);
  float s = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) s += expf(xr[c] - m);
  s = cuda::block_sum(s, scratch);
  float* yr = y + row * C;
  if (log) {  // (x - max) - log(sum): max + log(sum) would round log(sum) away at |max| > ~2^24
    const float ls = logf(s);
    for (int c = threadIdx.x; c < C; c += blockDim.x) yr[c] = (xr[c] - m) - ls;
  } else {
    const float inv = 1.0f / s;
    for (int c = threadIdx.x; c < C; c += blockDim.x) yr[c] = expf(xr[c] - m) * inv;
  }
}

__global__ void __launch_bounds__(cuda::kMaxRowThreads)
    softmax_backward_kernel(int C, bool log, const float* y, const float* dy, float* dx) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const float* yr = y + row * C;
  const float* dyr = dy + row * C;
  float s = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) s += log ? dyr[c] : dyr[c] * yr[c];
  s = cuda::block_sum(s, scratch);
  float* dxr = dx + row * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) dxr[c] = log ? dyr[c] - expf(yr[c]) * s : yr[c] * (dyr[c] - s);
}

}  // namespace

void softmax_forward(int rows, int C, bool log, const float* x, float* y) {
  FF_LAUNCH(softmax_forward_kernel, dim3(unsigned(rows)), dim3(cuda::row_threads(C)), 0, C, log, x, y);
}

void softmax_backward(int rows, int C, bool log, const float* y, const float* dy, float* dx) {
  FF_LAUNCH(softmax_backward_kernel, dim3(unsigned(rows)), dim3(cuda::row_threads(C)), 0, C, log, y, dy, dx);
}

}  // namespace ff::backend
