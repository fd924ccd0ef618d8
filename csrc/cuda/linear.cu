// cuda backend: linear, y = x W^T + b (W [out, in], PyTorch's layout), and its backward.
//
// forward: bias_rows_kernel writes b into every row of y (grid-stride, one float per thread
// step), then one cuBLAS GEMM adds x W^T with beta = 1.
// backward: dx = dy W and dW = dy^T x are one cuBLAS GEMM each; db = column sums of dy in a
// fixed order (column_sum.h: chunk partials, then the chunks in order; no atomics).
// Cost: 2*rows*in*out flops per GEMM; the bias 1 write per y element; db 1 read per dy element.
#include "../common/backend_nn_ops.h"
#include "blas.h"
#include "column_sum.h"
#include "strided_index.h"

namespace ff::backend {
namespace {

__global__ void bias_rows_kernel(int64_t n, int out, const float* b, float* y) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) y[i] = b[i % out];
}

struct BiasGradTerm {
  static constexpr int kOutputs = 1;
  const float* dy;
  int out;
  __device__ void operator()(int r, int c, float* acc) const { acc[0] += dy[int64_t(r) * out + c]; }
};

}  // namespace

void linear_forward(int rows, int in, int out, const float* x, const float* W, const float* b, float* y) {
  if (b != nullptr) {
    const int64_t n = int64_t(rows) * out;
    FF_LAUNCH(bias_rows_kernel, dim3(cuda::blocks_for(n)), dim3(cuda::kThreads), 0, n, out, b, y);
  }
  // y [rows, out] = x [rows, in] . W^T
  cuda::gemm_row_major(false, true, rows, out, in, x, in, 0, W, in, 0, b != nullptr ? 1.0f : 0.0f, y, out, 0, 1);
}

void linear_backward(int rows, int in, int out, const float* x, const float* W, const float* dy, float* dx, float* dW,
                     float* db) {
  if (dx != nullptr)  // dx [rows, in] = dy [rows, out] . W [out, in]
    cuda::gemm_row_major(false, false, rows, in, out, dy, out, 0, W, in, 0, 0.0f, dx, in, 0, 1);
  if (dW != nullptr)  // dW [out, in] = dy^T . x [rows, in]
    cuda::gemm_row_major(true, false, out, in, rows, dy, out, 0, x, in, 0, 0.0f, dW, in, 0, 1);
  if (db != nullptr) cuda::column_sums(BiasGradTerm{dy, out}, rows, out, cuda::ColumnOutputs{{db, nullptr}});
}

}  // namespace ff::backend
