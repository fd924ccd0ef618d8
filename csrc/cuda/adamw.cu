// cuda backend: Adam and AdamW over a whole parameter group (csrc/cpu/adamw.cpp is the CPU twin;
// both apply optim_math.h's adam_update, PyTorch's rule).
// Multi-tensor launches (multi_tensor.h): one block of 512 threads per
//   64K-element chunk, up to 32 tensors and 320 chunks per launch, consecutive threads on
//   consecutive elements (coalesced). Memory-bound: 16 bytes read and 12 written per element,
//   ~12 flops (one sqrt, one division).
#include "multi_tensor.h"

namespace ff::backend {
namespace {

using cuda::MultiTensorArgs;

__global__ void __launch_bounds__(cuda::kMultiTensorThreads)
    adam_kernel(MultiTensorArgs<4> a, AdamScalars c) {
  int slot;
  int64_t begin, end;
  cuda::chunk_range(a, slot, begin, end);
  float* p = a.ptr[0][slot];
  const float* g = a.ptr[1][slot];
  float* m = a.ptr[2][slot];
  float* v = a.ptr[3][slot];
  for (int64_t e = begin + threadIdx.x; e < end; e += blockDim.x) {
    float pe = p[e], me = m[e], ve = v[e];
    adam_update(c, pe, g[e], me, ve);
    p[e] = pe;
    m[e] = me;
    v[e] = ve;
  }
}

}  // namespace

void adam_step(const AdamScalars& c, const TensorList& params, const TensorList& grads,
               const TensorList& exp_avg, const TensorList& exp_avg_sq) {
  const TensorList lists[4] = {params, grads, exp_avg, exp_avg_sq};
  cuda::for_each_launch<4>(lists, [&](const MultiTensorArgs<4>& a, int blocks, int64_t) {
    FF_LAUNCH(adam_kernel, dim3(blocks), dim3(cuda::kMultiTensorThreads), 0, a, c);
  });
}

}  // namespace ff::backend
