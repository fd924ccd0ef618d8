// cpu backend: LayerNorm over the last axis, fused: y = (x - mean) rstd gamma + beta, and its
// backward (dx, dgamma, dbeta in one pass over x and dy).
//
// forward: threads over rows; per row three vectorised sweeps that stay in cache (sum, squared
// deviations, output), so x is read from memory once. Biased variance, rstd = 1/sqrt(var + eps).
// backward: with xhat = (x - mean) rstd and g = dy gamma,
//     dx = rstd (g - mean(g) - xhat mean(g xhat)),  dgamma = sum_rows dy xhat,  dbeta = sum_rows dy,
// g and its row sums in double (common/layernorm_math.h: dy gamma may be subnormal in float).
// Rows are cut into fixed chunks of kRowsPerChunk; a chunk's thread sums dgamma/dbeta over its
// rows in order into the chunk's own partial row, and the partials are then added in chunk
// order: the same bits for any thread count, no atomics.
// Cost per element: forward 1 read + 1 write, ~6 flops; backward 2 reads + 1 write, ~12 flops
// (7 of them in double).
#include <algorithm>
#include <cmath>
#include <vector>
#include "../common/backend_nn_ops.h"
#include "../common/layernorm_math.h"
#include "parallel.h"
#include "vec_math.h"

namespace ff::backend {
namespace {

constexpr int kRowsPerChunk = 32;

template <bool kGamma, bool kBeta>
FF_VECTORIZE void forward_row(const float* x, const float* gamma, const float* beta, int C, float eps, float* y,
                              float* mean_out, float* rstd_out) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int c = 0; c < C; ++c) sum += x[c];
  const float mean = sum / float(C);
  float sq = 0.0f;
#pragma omp simd reduction(+ : sq)
  for (int c = 0; c < C; ++c) sq += (x[c] - mean) * (x[c] - mean);
  const float rstd = 1.0f / std::sqrt(sq / float(C) + eps);
  for (int c = 0; c < C; ++c) {
    float v = (x[c] - mean) * rstd;
    if constexpr (kGamma) v *= gamma[c];
    if constexpr (kBeta) v += beta[c];
    y[c] = v;
  }
  *mean_out = mean;
  *rstd_out = rstd;
}

// One row: dx (when dx is not null) and, when kParams, dy xhat and dy added into pg and pb
// (null when not wanted) in the same sweep that sums g and g xhat.
template <bool kGamma, bool kParams>
FF_VECTORIZE void backward_row(const float* x, const float* gamma, float mean, float rstd, const float* dy, int C,
                               float* dx, float* pg, float* pb) {
  double sum_g = 0.0, sum_gx = 0.0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
  for (int c = 0; c < C; ++c) {
    const float xhat = (x[c] - mean) * rstd;
    const double g = layernorm_g(dy[c], kGamma ? gamma[c] : 1.0f);
    sum_g += g;
    sum_gx += g * double(xhat);
    if constexpr (kParams) {
      pg[c] += dy[c] * xhat;
      pb[c] += dy[c];
    }
  }
  if (dx == nullptr) return;
  const double mg = sum_g / double(C), mgx = sum_gx / double(C);
  for (int c = 0; c < C; ++c)
    dx[c] = layernorm_dx(layernorm_g(dy[c], kGamma ? gamma[c] : 1.0f), (x[c] - mean) * rstd, mg, mgx, rstd);
}

FF_VECTORIZE void add_row(float* acc, const float* row, int n) {
  for (int c = 0; c < n; ++c) acc[c] += row[c];
}

template <bool kGamma, bool kBeta>
void forward_rows(int rows, int C, float eps, const float* x, const float* gamma, const float* beta, float* y,
                  float* mean, float* rstd) {
#pragma omp parallel for schedule(static) if (int64_t(rows) * C > cpu::kParallelGrain)
  for (int r = 0; r < rows; ++r) {
    const int64_t o = int64_t(r) * C;
    forward_row<kGamma, kBeta>(x + o, gamma, beta, C, eps, y + o, mean + r, rstd + r);
  }
}

template <bool kGamma>
void backward_rows(int rows, int C, const float* x, const float* gamma, const float* mean, const float* rstd,
                   const float* dy, float* dx, float* dgamma, float* dbeta) {
  const int chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  const bool params = dgamma != nullptr || dbeta != nullptr;
  // partials: chunk ch's dgamma row at [2 ch], dbeta row at [2 ch + 1]
  std::vector<float> partial(params ? size_t(chunks) * 2 * C : 0, 0.0f);
#pragma omp parallel for schedule(static) if (int64_t(rows) * C > cpu::kParallelGrain)
  for (int ch = 0; ch < chunks; ++ch) {
    float* pg = params ? partial.data() + size_t(2 * ch) * C : nullptr;
    float* pb = params ? partial.data() + size_t(2 * ch + 1) * C : nullptr;
    const int r1 = std::min(rows, (ch + 1) * kRowsPerChunk);
    for (int r = ch * kRowsPerChunk; r < r1; ++r) {
      const int64_t o = int64_t(r) * C;
      float* dxr = dx ? dx + o : nullptr;
      if (params)
        backward_row<kGamma, true>(x + o, gamma, mean[r], rstd[r], dy + o, C, dxr, pg, pb);
      else
        backward_row<kGamma, false>(x + o, gamma, mean[r], rstd[r], dy + o, C, dxr, pg, pb);
    }
  }
  for (int which = 0; which < 2; ++which) {
    float* out = which == 0 ? dgamma : dbeta;
    if (out == nullptr) continue;
    cpu::parallel_ranges(C, cpu::threads_for(int64_t(chunks) * C), [&](int, int, int64_t c0, int64_t c1) {
      if (c1 <= c0) return;
      std::fill(out + c0, out + c1, 0.0f);
      for (int ch = 0; ch < chunks; ++ch)
        add_row(out + c0, partial.data() + size_t(2 * ch + which) * C + c0, int(c1 - c0));
    });
  }
}

}  // namespace

void layernorm_forward(int rows, int C, float eps, const float* x, const float* gamma, const float* beta, float* y,
                       float* mean, float* rstd) {
  if (gamma && beta)
    forward_rows<true, true>(rows, C, eps, x, gamma, beta, y, mean, rstd);
  else if (gamma)
    forward_rows<true, false>(rows, C, eps, x, gamma, beta, y, mean, rstd);
  else if (beta)
    forward_rows<false, true>(rows, C, eps, x, gamma, beta, y, mean, rstd);
  else
    forward_rows<false, false>(rows, C, eps, x, gamma, beta, y, mean, rstd);
}

void layernorm_backward(int rows, int C, const float* x, const float* gamma, const float* mean, const float* rstd,
                        const float* dy, float* dx, float* dgamma, float* dbeta) {
  if (gamma)
    backward_rows<true>(rows, C, x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
  else
    backward_rows<false>(rows, C, x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
}

}  // namespace ff::backend
