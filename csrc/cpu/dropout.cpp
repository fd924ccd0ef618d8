// cpu backend: dropout and drop-path from a counter-based generator (Philox4x32-10, philox.h):
//     y_i = x_i * [u_j >= p] / (1 - p),   j = i / group,   u_j from (seed, offset) alone
// so the mask is recomputed rather than stored, and the backward is this same function on dy.
// group 1 is dropout; group = elements per sample is drop-path (one draw per sample).
// Threads take ranges of whole Philox blocks (4 draws each); the result does not depend on them.
// Cost per element: 1 read, 1 write; plus one Philox (10 rounds) per 4 draws.
#include <algorithm>
#include "../common/backend_nn_ops.h"
#include "../common/philox.h"
#include "parallel.h"
#include "vec_math.h"

namespace ff::backend {
namespace {

// Elements [4 b0, 4 b1) of plain dropout (the last block may be partial: n bounds it).
FF_VECTORIZE void dropout_blocks(int64_t b0, int64_t b1, int64_t n, float p, float scale,
                                 uint64_t seed, uint64_t offset, const float* x, float* y) {
  for (int64_t b = b0; b < b1; ++b) {
    const Philox4 r = philox_block(seed, offset, uint64_t(b));
    const int64_t base = 4 * b;
    const int lanes = int(std::min<int64_t>(4, n - base));
    for (int l = 0; l < lanes; ++l)
      y[base + l] = x[base + l] * (philox_uniform(r.v[l]) >= p ? scale : 0.0f);
  }
}

}  // namespace

void dropout(int64_t n, int64_t group, float p, uint64_t seed, uint64_t offset, const float* x,
             float* y) {
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  if (group == 1) {
    const int64_t blocks = (n + 3) / 4;
    cpu::parallel_for(blocks, cpu::kParallelGrain / 16, [&](int64_t b0, int64_t b1) {
      dropout_blocks(b0, b1, n, p, scale, seed, offset, x, y);
    });
    return;
  }
  const int64_t samples = n / group;
  cpu::parallel_for(samples, std::max<int64_t>(1, cpu::kParallelGrain / group), [&](int64_t s0, int64_t s1) {
    for (int64_t j = s0; j < s1; ++j) {
      const float u = philox_uniform(philox_block(seed, offset, uint64_t(j / 4)).v[j % 4]);
      const float f = u >= p ? scale : 0.0f;
      for (int64_t i = j * group; i < (j + 1) * group; ++i) y[i] = x[i] * f;
    }
  });
}

}  // namespace ff::backend
