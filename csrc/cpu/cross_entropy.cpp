// cpu backend: cross-entropy over the last axis, log-softmax and NLL fused (the log-probabilities
// are never stored), with label smoothing, ignore_index and soft targets; and its backward.
//
// With q the target distribution after smoothing (hard target t: q = (1 - ls) onehot(t) + ls/C;
// soft target row p: q = (1 - ls) p + ls/C) and lse = log sum_c exp(x_c):
//     loss = -sum_c q_c log softmax(x)_c = (sum_c q_c) lse - sum_c q_c x_c
//     dloss/dx_c = (sum_c q_c) softmax(x)_c - q_c
// forward, per row (threads over rows): max; then one sweep for sum exp(x - max), sum x and
// (soft) sum p x, sum p. Row losses are summed in double in row order (sum / mean).
// backward, per row: dx = w (sum_q exp(x - lse) - q), w from the reduction and the upstream grad.
// Cost per element: forward 1 read (+1 from cache) and 1 exp; backward 1 read, 1 write, 1 exp.
#include <cmath>
#include <vector>
#include "../common/backend_nn_ops.h"
#include "parallel.h"
#include "vec_math.h"

namespace ff::backend {
namespace {

struct RowStats {
  float lse, sum_x, sum_px, sum_p;
};

FF_VECTORIZE RowStats row_stats(const float* x, const float* p, int C) {
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int c = 0; c < C; ++c) m = x[c] > m ? x[c] : m;
  float se = 0.0f, sx = 0.0f, spx = 0.0f, sp = 0.0f;
  if (p != nullptr) {
#pragma omp simd reduction(+ : se, sx, spx, sp)
    for (int c = 0; c < C; ++c) {
      se += cpu::exp_f(x[c] - m);
      sx += x[c];
      spx += p[c] * x[c];
      sp += p[c];
    }
  } else {
#pragma omp simd reduction(+ : se, sx)
    for (int c = 0; c < C; ++c) {
      se += cpu::exp_f(x[c] - m);
      sx += x[c];
    }
  }
  return {m + std::log(se), sx, spx, sp};
}

FF_VECTORIZE void backward_row(const float* x, const float* p, int t, int C, float lse, float w,
                               float ls, float* dx) {
  const float u = ls / float(C), keep = 1.0f - ls;
  if (p != nullptr) {
    float sp = 0.0f;
#pragma omp simd reduction(+ : sp)
    for (int c = 0; c < C; ++c) sp += p[c];
    const float sq = keep * sp + ls;
    for (int c = 0; c < C; ++c) dx[c] = w * (sq * cpu::exp_f(x[c] - lse) - (keep * p[c] + u));
  } else {
    for (int c = 0; c < C; ++c) dx[c] = w * (cpu::exp_f(x[c] - lse) - u);
    dx[t] -= w * keep;
  }
}

}  // namespace

void cross_entropy_forward(const CrossEntropyShape& s, const float* logits, const float* targets,
                           float* loss, float* lse, float* count) {
  const int C = s.C;
  const float ls = s.label_smoothing, keep = 1.0f - ls, u = ls / float(C);
  std::vector<float> row_loss(s.rows);
  std::vector<unsigned char> valid(s.rows);
#pragma omp parallel for schedule(static) if (int64_t(s.rows) * C > cpu::kParallelGrain)
  for (int i = 0; i < s.rows; ++i) {
    const float* x = logits + int64_t(i) * C;
    if (s.soft) {
      const RowStats st = row_stats(x, targets + int64_t(i) * C, C);
      const float sum_q = keep * st.sum_p + ls;
      row_loss[i] = sum_q * st.lse - (keep * st.sum_px + u * st.sum_x);
      lse[i] = st.lse;
      valid[i] = 1;
    } else if (int(targets[i]) == s.ignore_index) {
      row_loss[i] = 0.0f;
      lse[i] = 0.0f;
      valid[i] = 0;
    } else {
      const RowStats st = row_stats(x, nullptr, C);
      row_loss[i] = st.lse - keep * x[int(targets[i])] - u * st.sum_x;
      lse[i] = st.lse;
      valid[i] = 1;
    }
  }
  double total = 0.0, n = 0.0;
  for (int i = 0; i < s.rows; ++i) {
    total += row_loss[i];
    n += valid[i];
  }
  count[0] = float(n);
  if (s.reduction == Reduction::kNone)
    for (int i = 0; i < s.rows; ++i) loss[i] = row_loss[i];
  else
    loss[0] = float(s.reduction == Reduction::kMean ? total / n : total);
}

void cross_entropy_backward(const CrossEntropyShape& s, const float* logits, const float* targets,
                            const float* lse, const float* count, const float* grad,
                            float* dlogits) {
  const int C = s.C;
  const float scale = s.reduction == Reduction::kMean ? grad[0] / count[0] : grad[0];
#pragma omp parallel for schedule(static) if (int64_t(s.rows) * C > cpu::kParallelGrain)
  for (int i = 0; i < s.rows; ++i) {
    const int64_t o = int64_t(i) * C;
    const int t = s.soft ? 0 : int(targets[i]);
    if (!s.soft && t == s.ignore_index) {
      for (int c = 0; c < C; ++c) dlogits[o + c] = 0.0f;
      continue;
    }
    const float w = s.reduction == Reduction::kNone ? grad[i] : scale;
    backward_row(logits + o, s.soft ? targets + o : nullptr, t, C, lse[i], w, s.label_smoothing,
                 dlogits + o);
  }
}

}  // namespace ff::backend
