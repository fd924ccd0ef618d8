// cuda backend: LayerNorm over the last axis, fused, and its backward.
//
// layernorm_forward_kernel: one block per row (row_threads(C): ~4 elements per thread). Three
//   sweeps of the row (the re-reads hit L1/L2): block_sum of x -> mean, block_sum of
//   (x - mean)^2 -> rstd (two passes: no E[x^2] - mean^2 cancellation), then the output.
// layernorm_backward_dx_kernel: one block per row; block_sums of g = dy gamma and g xhat, then
//   dx = rstd (g - mean(g) - xhat mean(g xhat)), g and the sums in double (layernorm_math.h).
// dgamma, dbeta: column sums of dy xhat and dy (column_sum.h: chunk partials in a fixed order,
//   no atomics), xhat recomputed from the saved mean and rstd.
// Cost per element: forward 1 read (+2 cached) and 1 write; backward 2 reads (+ cached
// re-reads) and 1 write for dx, 2 reads for the parameter gradients.
#include "../common/backend_nn_ops.h"
#include "../common/layernorm_math.h"
#include "column_sum.h"
#include "row_reduce.h"

namespace ff::backend {
namespace {

__global__ void __launch_bounds__(cuda::kMaxRowThreads)
    layernorm_forward_kernel(int C, float eps, const float* x, const float* gamma, const float* beta, float* y,
                             float* mean_out, float* rstd_out) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * C;
  float s = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) s += xr[c];
  const float mean = cuda::block_sum(s, scratch) / float(C);
  float sq = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float d = xr[c] - mean;
    sq += d * d;
  }
  const float rstd = rsqrtf(cuda::block_sum(sq, scratch) / float(C) + eps);
  float* yr = y + row * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float v = (xr[c] - mean) * rstd;
    if (gamma != nullptr) v *= gamma[c];
    if (beta != nullptr) v += beta[c];
    yr[c] = v;
  }
  if (threadIdx.x == 0) {
    mean_out[row] = mean;
    rstd_out[row] = rstd;
  }
}

__global__ void __launch_bounds__(cuda::kMaxRowThreads)
    layernorm_backward_dx_kernel(int C, const float* x, const float* gamma, const float* mean, const float* rstd,
                                 const float* dy, float* dx) {
  __shared__ double scratch[32];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * C;
  const float* dyr = dy + row * C;
  const float m = mean[row], r = rstd[row];
  double sg = 0.0, sgx = 0.0;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const double g = layernorm_g(dyr[c], gamma != nullptr ? gamma[c] : 1.0f);
    sg += g;
    sgx += g * double((xr[c] - m) * r);
  }
  const double mg = cuda::block_sum(sg, scratch) / double(C);
  const double mgx = cuda::block_sum(sgx, scratch) / double(C);
  float* dxr = dx + row * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const double g = layernorm_g(dyr[c], gamma != nullptr ? gamma[c] : 1.0f);
    dxr[c] = layernorm_dx(g, (xr[c] - m) * r, mg, mgx, r);
  }
}

struct LayerNormParamGradTerm {
  static constexpr int kOutputs = 2;  // dgamma, dbeta
  const float *x, *dy, *mean, *rstd;
  int C;
  __device__ void operator()(int r, int c, float* acc) const {
    const int64_t i = int64_t(r) * C + c;
    acc[0] += dy[i] * ((x[i] - mean[r]) * rstd[r]);
    acc[1] += dy[i];
  }
};

}  // namespace

void layernorm_forward(int rows, int C, float eps, const float* x, const float* gamma, const float* beta, float* y,
                       float* mean, float* rstd) {
  FF_LAUNCH(layernorm_forward_kernel, dim3(unsigned(rows)), dim3(cuda::row_threads(C)), 0, C, eps, x, gamma, beta, y,
            mean, rstd);
}

void layernorm_backward(int rows, int C, const float* x, const float* gamma, const float* mean, const float* rstd,
                        const float* dy, float* dx, float* dgamma, float* dbeta) {
  if (dx != nullptr)
    FF_LAUNCH(layernorm_backward_dx_kernel, dim3(unsigned(rows)), dim3(cuda::row_threads(C)), 0, C, x, gamma, mean,
              rstd, dy, dx);
  if (dgamma != nullptr || dbeta != nullptr)
    cuda::column_sums(LayerNormParamGradTerm{x, dy, mean, rstd, C}, rows, C, cuda::ColumnOutputs{{dgamma, dbeta}});
}

}  // namespace ff::backend
