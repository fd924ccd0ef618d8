// cpu backend: SGD with momentum (PyTorch's rule: optim_math.h, shared with csrc/cuda/sgd.cu)
// over a whole parameter group in one pass. Threads take chunks of 32K elements.
// Cost per element: ~6 flops, 12 bytes read and 8 written (4 and 4 without momentum).
#include "../common/backend_optim.h"
#include "multi_tensor.h"

namespace ff::backend {

void sgd_step(const SgdScalars& c, const TensorList& params, const TensorList& grads, const TensorList& momentum_buf) {
  const std::vector<Chunk> chunks = chunks_of(params);
  const int n = int(chunks.size());
  const bool with_buf = c.momentum != 0.0f;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; ++i) {
    const Chunk ch = chunks[i];
    float* p = params.data[ch.tensor];
    const float* g = grads.data[ch.tensor];
    float* b = with_buf ? momentum_buf.data[ch.tensor] : nullptr;
    for (int64_t e = ch.begin; e < ch.end; ++e) sgd_update(c, p[e], g[e], with_buf ? b + e : nullptr);
  }
}

}  // namespace ff::backend
