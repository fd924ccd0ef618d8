// cpu backend: embedding lookup (a gather of rows) and its gradient (a deterministic
// scatter-add), plus the id check every integer input goes through.
//
// forward: threads over output rows, one row copy each.
// backward: each thread owns a contiguous range of vocabulary rows, zeroes them and walks all n
// ids in order, adding the rows that fall in its range: every dW row is summed in the order of
// i, for any thread count, with no atomics.
// Cost: forward D reads + D writes per id; backward V*D writes + (n ids scanned + D adds per id
// in range) per thread.
#include <algorithm>
#include <cstring>
#include "../common/backend_nn_ops.h"
#include "parallel.h"
#include "vec_math.h"

namespace ff::backend {
namespace {

FF_VECTORIZE void add_row(float* acc, const float* row, int n) {
  for (int c = 0; c < n; ++c) acc[c] += row[c];
}

}  // namespace

void embedding_forward(int n, int D, int V, const float* ids, const float* W, float* out) {
  (void)V;
  cpu::parallel_for(n, std::max<int64_t>(1, cpu::kParallelGrain / D), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) std::memcpy(out + i * D, W + int64_t(ids[i]) * D, sizeof(float) * D);
  });
}

void embedding_backward(int n, int D, int V, const float* ids, const float* dout, float* dW) {
  const int threads = cpu::threads_for(int64_t(V) * D + int64_t(n) * D);
  cpu::parallel_ranges(V, threads, [&](int, int, int64_t v0, int64_t v1) {
    if (v1 <= v0) return;
    std::fill(dW + v0 * D, dW + v1 * D, 0.0f);
    for (int i = 0; i < n; ++i) {
      const int64_t v = int64_t(ids[i]);
      if (v >= v0 && v < v1) add_row(dW + v * D, dout + int64_t(i) * D, D);
    }
  });
}

}  // namespace ff::backend
