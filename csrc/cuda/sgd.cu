// cuda backend: SGD with momentum over a whole parameter group (csrc/cpu/sgd.cpp is the CPU twin;
// both apply optim_math.h's sgd_update, PyTorch's rule).
// Multi-tensor launches (multi_tensor.h for_each_element), one block of 512 threads per
// 64K-element chunk, coalesced. Memory-bound: 12 bytes read and 8 written per element with
// momentum (the buffer list is the parameters again, unused, without it).
#include "multi_tensor.h"

namespace ff::backend {
namespace {

// t = {p, g, momentum buffer}.
struct SgdOp {
  SgdScalars c;
  __device__ void operator()(float* const* t, int64_t e) const {
    float p = t[0][e];
    sgd_update(c, p, t[1][e], c.momentum != 0.0f ? t[2] + e : nullptr);
    t[0][e] = p;
  }
};

}  // namespace

void sgd_step(const SgdScalars& c, const TensorList& params, const TensorList& grads, const TensorList& momentum_buf) {
  const TensorList lists[3] = {params, grads, c.momentum != 0.0f ? momentum_buf : params};
  cuda::for_each_element<3>("sgd_kernel", lists, SgdOp{c});
}

}  // namespace ff::backend
