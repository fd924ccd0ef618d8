// cpu backend: Adam and AdamW over a whole parameter group in one pass (optim_math.h holds the
// rule, shared with csrc/cuda/adamw.cu). Threads take chunks of 32K elements; each element is
// independent, so the result does not depend on scheduling. The loop over a chunk is vectorised.
// Cost per element: ~12 flops (one sqrt, one division), 16 bytes read and 12 written.
#include "../common/backend_optim.h"
#include "multi_tensor.h"
#include "vec_math.h"

namespace ff::backend {
namespace {

// One chunk, vectorised (the vector sqrt needs -fno-math-errno: binding.gyp).
FF_VECTORIZE void adam_chunk(const AdamScalars& c, int64_t n, float* p, const float* g, float* m, float* v) {
  for (int64_t e = 0; e < n; ++e) adam_update(c, p[e], g[e], m[e], v[e]);
}

}  // namespace

void adam_step(const AdamScalars& c, const TensorList& params, const TensorList& grads, const TensorList& exp_avg,
               const TensorList& exp_avg_sq) {
  const std::vector<Chunk> chunks = chunks_of(params);
  const int n = int(chunks.size());
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; ++i) {
    const Chunk ch = chunks[i];
    const int t = ch.tensor;
    adam_chunk(c, ch.end - ch.begin, params.data[t] + ch.begin, grads.data[t] + ch.begin, exp_avg.data[t] + ch.begin,
               exp_avg_sq.data[t] + ch.begin);
  }
}

}  // namespace ff::backend
