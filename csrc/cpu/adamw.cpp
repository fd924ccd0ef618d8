// cpu backend: Adam and AdamW over a whole parameter group in one pass (optim_math.h holds the
// rule, shared with csrc/cuda/adamw.cu). Threads take chunks of 32K elements; each element is
// independent, so the result does not depend on scheduling.
// Cost per element: ~12 flops (one sqrt, one division), 16 bytes read and 12 written.
#include "../common/backend_optim.h"
#include "multi_tensor.h"

namespace ff::backend {

void adam_step(const AdamScalars& c, const TensorList& params, const TensorList& grads,
               const TensorList& exp_avg, const TensorList& exp_avg_sq) {
  const std::vector<Chunk> chunks = chunks_of(params);
  const int n = int(chunks.size());
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; ++i) {
    const Chunk ch = chunks[i];
    float* p = params.data[ch.tensor];
    const float* g = grads.data[ch.tensor];
    float* m = exp_avg.data[ch.tensor];
    float* v = exp_avg_sq.data[ch.tensor];
    for (int64_t e = ch.begin; e < ch.end; ++e) adam_update(c, p[e], g[e], m[e], v[e]);
  }
}

}  // namespace ff::backend
