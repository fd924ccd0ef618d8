// cuda backend: Adam and AdamW over a whole parameter group (csrc/cpu/adamw.cpp is the CPU twin;
// both apply optim_math.h's adam_update, PyTorch's rule).
// Multi-tensor launches (multi_tensor.h for_each_element): one block of 512 threads per
// 64K-element chunk, up to 32 tensors and 320 chunks per launch, consecutive threads on
// consecutive elements (coalesced). Memory-bound: 16 bytes read and 12 written per element,
// ~12 flops (one sqrt, one division).
#include "multi_tensor.h"

namespace ff::backend {
namespace {

// t = {p, g, m, v}.
struct AdamOp {
  AdamScalars c;
  __device__ void operator()(float* const* t, int64_t e) const {
    float p = t[0][e], m = t[2][e], v = t[3][e];
    adam_update(c, p, t[1][e], m, v);
    t[0][e] = p;
    t[2][e] = m;
    t[3][e] = v;
  }
};

}  // namespace

void adam_step(const AdamScalars& c, const TensorList& params, const TensorList& grads, const TensorList& exp_avg,
               const TensorList& exp_avg_sq) {
  const TensorList lists[4] = {params, grads, exp_avg, exp_avg_sq};
  cuda::for_each_element<4>("adam_kernel", lists, AdamOp{c});
}

}  // namespace ff::backend
