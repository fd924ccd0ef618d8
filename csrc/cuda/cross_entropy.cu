// cuda backend: cross-entropy over the last axis, log-softmax and NLL fused (the log-probabilities
// are never stored), with label smoothing, ignore_index and soft targets; and its backward.
// With q the smoothed target distribution and lse = log sum_c exp(x_c) (csrc/cpu/cross_entropy.cpp):
//     loss = (sum_c q_c) lse - sum_c q_c x_c,     dloss/dx_c = (sum_c q_c) softmax(x)_c - q_c
//
// cross_entropy_rows_kernel: one block per row (row_threads(C)); block_max, then block_sums of
//   exp(x - max), x and (soft) p x, p; writes the row's loss and lse. Ignored rows write 0.
// cross_entropy_reduce_kernel: one block sums the row losses (double, a fixed thread-to-row
//   assignment, then block_sum) and counts the rows not ignored: loss [1] and count [1].
// cross_entropy_backward_kernel: one block per row; dx = w (sum_q exp(x - lse) - q).
// Cost per element: forward 1 read (+1 cached), 1 exp; backward 1 read, 1 write, 1 exp.
#include <cmath>
#include "../common/backend.h"
#include "../common/backend_nn_ops.h"
#include "../common/ids.h"
#include "row_reduce.h"

namespace ff::backend {
namespace {

constexpr int kReduceThreads = 256;

__device__ inline bool row_ignored(const CrossEntropyShape& s, const float* targets, int64_t row) {
  return !s.soft && int(targets[row]) == s.ignore_index;
}

__global__ void __launch_bounds__(cuda::kMaxRowThreads)
    cross_entropy_rows_kernel(CrossEntropyShape s, const float* logits, const float* targets, float* row_loss,
                              float* lse) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const int C = s.C;
  if (row_ignored(s, targets, row)) {
    if (threadIdx.x == 0) row_loss[row] = lse[row] = 0.0f;
    return;
  }
  const float* x = logits + row * C;
  const float* p = s.soft ? targets + row * C : nullptr;
  float m = -INFINITY;
  for (int c = threadIdx.x; c < C; c += blockDim.x) m = fmaxf(m, x[c]);
  m = cuda::block_max(m, scratch);
  float se = 0.0f, sx = 0.0f, spx = 0.0f, sp = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    se += expf(x[c] - m);
    sx += x[c];
    if (p != nullptr) {
      spx += p[c] * x[c];
      sp += p[c];
    }
  }
  se = cuda::block_sum(se, scratch);
  sx = cuda::block_sum(sx, scratch);
  if (p != nullptr) {
    spx = cuda::block_sum(spx, scratch);
    sp = cuda::block_sum(sp, scratch);
  }
  if (threadIdx.x != 0) return;
  const float ls = s.label_smoothing, keep = 1.0f - ls, u = ls / float(C);
  const float l = m + logf(se);
  lse[row] = l;
  if (p != nullptr)
    row_loss[row] = (keep * sp + ls) * l - (keep * spx + u * sx);
  else if (!id_is_valid(targets[row], C, false, 0))
    row_loss[row] = NAN;  // reported by checks.cu
  else
    row_loss[row] = l - keep * x[int(targets[row])] - (u != 0.0f ? u * sx : 0.0f);  // -inf logits: no NaN
}

__global__ void cross_entropy_reduce_kernel(CrossEntropyShape s, const float* targets, const float* row_loss,
                                            float* loss, float* count) {
  __shared__ double scratch[32];
  double total = 0.0, n = 0.0;
  for (int64_t i = threadIdx.x; i < s.rows; i += blockDim.x) {
    total += row_loss[i];
    n += row_ignored(s, targets, i) ? 0.0 : 1.0;
  }
  total = cuda::block_sum(total, scratch);
  n = cuda::block_sum(n, scratch);
  if (threadIdx.x != 0) return;
  count[0] = float(n);
  if (s.reduction != Reduction::kNone) loss[0] = float(s.reduction == Reduction::kMean ? total / n : total);
}

__global__ void __launch_bounds__(cuda::kMaxRowThreads)
    cross_entropy_backward_kernel(CrossEntropyShape s, const float* logits, const float* targets, const float* lse,
                                  const float* count, const float* grad, float* dx) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const int C = s.C;
  float* dxr = dx + row * C;
  if (row_ignored(s, targets, row)) {
    for (int c = threadIdx.x; c < C; c += blockDim.x) dxr[c] = 0.0f;
    return;
  }
  const float w = s.reduction == Reduction::kNone   ? grad[row]
                  : s.reduction == Reduction::kMean ? grad[0] / count[0]
                                                    : grad[0];
  const float* x = logits + row * C;
  const float ls = s.label_smoothing, keep = 1.0f - ls, u = ls / float(C), l = lse[row];
  if (s.soft) {
    const float* p = targets + row * C;
    float sp = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) sp += p[c];
    const float sq = keep * cuda::block_sum(sp, scratch) + ls;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dxr[c] = w * (sq * expf(x[c] - l) - (keep * p[c] + u));
  } else {
    const int t = int(targets[row]);
    for (int c = threadIdx.x; c < C; c += blockDim.x) dxr[c] = w * (expf(x[c] - l) - u - (c == t ? keep : 0.0f));
  }
}

}  // namespace

void cross_entropy_forward(const CrossEntropyShape& s, const float* logits, const float* targets, float* loss,
                           float* lse, float* count) {
  const bool per_row = s.reduction == Reduction::kNone;
  float* row_loss = per_row ? loss : static_cast<float*>(alloc(sizeof(float) * s.rows));
  try {
    FF_LAUNCH(cross_entropy_rows_kernel, dim3(unsigned(s.rows)), dim3(cuda::row_threads(s.C)), 0, s, logits, targets,
              row_loss, lse);
    FF_LAUNCH(cross_entropy_reduce_kernel, dim3(1), dim3(kReduceThreads), 0, s, targets, row_loss, loss, count);
  } catch (...) {
    if (!per_row) release(row_loss);
    throw;
  }
  if (!per_row) release(row_loss);  // stream-ordered reuse: later work queues after these kernels
}

void cross_entropy_backward(const CrossEntropyShape& s, const float* logits, const float* targets, const float* lse,
                            const float* count, const float* grad, float* dlogits) {
  FF_LAUNCH(cross_entropy_backward_kernel, dim3(unsigned(s.rows)), dim3(cuda::row_threads(s.C)), 0, s, logits, targets,
            lse, count, grad, dlogits);
}

}  // namespace ff::backend
