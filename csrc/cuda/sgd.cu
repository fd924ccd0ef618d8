// cuda backend: SGD with momentum over a whole parameter group (csrc/cpu/sgd.cpp is the CPU twin;
// both apply optim_math.h's sgd_update, PyTorch's rule).
// Multi-tensor launches (multi_tensor.h), one block of 512 threads per
//   64K-element chunk, coalesced. Memory-bound: 12 bytes read and 8 written per element with
//   momentum (the buffer list is the parameters again, unused, without it).
#include "multi_tensor.h"

namespace ff::backend {
namespace {

using cuda::MultiTensorArgs;

__global__ void __launch_bounds__(cuda::kMultiTensorThreads)
    sgd_kernel(MultiTensorArgs<3> a, SgdScalars c) {
  int slot;
  int64_t begin, end;
  cuda::chunk_range(a, slot, begin, end);
  float* p = a.ptr[0][slot];
  const float* g = a.ptr[1][slot];
  float* buf = a.ptr[2][slot];
  const bool with_buf = c.momentum != 0.0f;
  for (int64_t e = begin + threadIdx.x; e < end; e += blockDim.x) {
    float pe = p[e];
    sgd_update(c, pe, g[e], with_buf ? buf + e : nullptr);
    p[e] = pe;
  }
}

}  // namespace

void sgd_step(const SgdScalars& c, const TensorList& params, const TensorList& grads,
              const TensorList& momentum_buf) {
  const TensorList lists[3] = {params, grads, c.momentum != 0.0f ? momentum_buf : params};
  cuda::for_each_launch<3>(lists, [&](const MultiTensorArgs<3>& a, int blocks, int64_t) {
    FF_LAUNCH(sgd_kernel, dim3(blocks), dim3(cuda::kMultiTensorThreads), 0, a, c);
  });
}

}  // namespace ff::backend
