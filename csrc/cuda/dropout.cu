// cuda backend: dropout and drop-path from Philox4x32-10 (philox.h), bit-identical masks to the
// cpu backend's for the same (seed, offset):
//     y_i = x_i * [u_j >= p] / (1 - p),   j = i / group
// dropout_kernel (group 1): a thread per Philox block, 4 draws for 4 consecutive elements.
// drop_path_kernel (group > 1): a thread per element recomputes its sample's draw (one Philox
//   per element: integer work hidden behind the memory traffic).
// Cost per element: 1 read, 1 write; one Philox (10 rounds) per 4 elements (dropout) or per
// element (drop-path).
#include "../common/backend_nn_ops.h"
#include "../common/philox.h"
#include "launch.h"
#include "strided_index.h"

namespace ff::backend {
namespace {

__global__ void dropout_kernel(int64_t n, float p, float scale, uint64_t seed, uint64_t offset, const float* x,
                               float* y) {
  const int64_t blocks = (n + 3) / 4, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks; b += stride) {
    const Philox4 r = philox_block(seed, offset, uint64_t(b));
    for (int l = 0; l < 4; ++l) {
      const int64_t i = 4 * b + l;
      if (i < n) y[i] = x[i] * (philox_uniform(r.v[l]) >= p ? scale : 0.0f);
    }
  }
}

__global__ void drop_path_kernel(int64_t n, int64_t group, float p, float scale, uint64_t seed, uint64_t offset,
                                 const float* x, float* y) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t j = i / group;
    const Philox4 r = philox_block(seed, offset, uint64_t(j / 4));
    y[i] = x[i] * (philox_uniform(philox_word(r, int(j % 4))) >= p ? scale : 0.0f);
  }
}

}  // namespace

void dropout(int64_t n, int64_t group, float p, uint64_t seed, uint64_t offset, const float* x, float* y) {
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  if (group == 1)
    FF_LAUNCH(dropout_kernel, dim3(cuda::blocks_for((n + 3) / 4)), dim3(cuda::kThreads), 0, n, p, scale, seed, offset,
              x, y);
  else
    FF_LAUNCH(drop_path_kernel, dim3(cuda::blocks_for(n)), dim3(cuda::kThreads), 0, n, group, p, scale, seed, offset, x,
              y);
}

}  // namespace ff::backend
