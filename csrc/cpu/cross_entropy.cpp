// cpu backend: cross-entropy over the last axis, log-softmax and NLL fused (the log-probabilities
// are never stored), with label smoothing, ignore_index and soft targets; and its backward.
//
// With q the target distribution after smoothing (hard target t: q = (1 - ls) onehot(t) + ls/C;
// soft target row p: q = (1 - ls) p + ls/C) and lse = log sum_c exp(x_c):
//     loss = -sum_c q_c log softmax(x)_c = (sum_c q_c) lse - sum_c q_c x_c
//     dloss/dx_c = (sum_c q_c) softmax(x)_c - q_c
// forward, per row (threads over rows): the max in one sweep, then sum exp(x - max) in a second
// sweep over the row (from cache) with sum x (for smoothing) and (soft) sum p x, sum p. Row losses are summed in double
// in row order (sum / mean). backward, per row: dx = w (sum_q exp(x - lse) - q) in one sweep, w from the reduction and
// the upstream grad. The sweeps run on f32x8 vectors, two per step (vec_math.h: exp_nonpositive8, ~1 ulp, since x - max
// <= 0 and x - lse <= 0), so two exp chains overlap; the tail of a row is one padded vector. Cost per element: forward
// 1 read (+1 from cache) and 1 exp; backward 1 read, 1 write, 1 exp.
#include <algorithm>
#include <cmath>
#include <vector>
#include "../common/backend_nn_ops.h"
#include "parallel.h"
#include "vec_math.h"

namespace ff::backend {
namespace {

using cpu::f32x8;

struct RowStats {
  float lse, sum_x, sum_px, sum_p;
};

FF_VECTORIZE float row_max(const float* x, int C) {
  f32x8 m0 = cpu::splat8(-INFINITY), m1 = m0;
  int c = 0;
  for (; c + 16 <= C; c += 16) {
    m0 = cpu::max8(cpu::load8(x + c), m0);
    m1 = cpu::max8(cpu::load8(x + c + 8), m1);
  }
  for (; c + 8 <= C; c += 8) m0 = cpu::max8(cpu::load8(x + c), m0);
  if (c < C) m1 = cpu::max8(cpu::load_part8(x + c, C - c, -INFINITY), m1);
  return cpu::hmax8(cpu::max8(m0, m1));
}

// sum_c exp(x_c - m) and sum_c x_c.
FF_VECTORIZE void sum_exp(const float* x, int C, float m, float& se, float& sx) {
  const f32x8 mv = cpu::splat8(m);
  f32x8 e0{}, e1{}, s0{}, s1{};
  int c = 0;
  for (; c + 16 <= C; c += 16) {
    const f32x8 a = cpu::load8(x + c), b = cpu::load8(x + c + 8);
    e0 += cpu::exp_nonpositive8(a - mv);
    e1 += cpu::exp_nonpositive8(b - mv);
    s0 += a;
    s1 += b;
  }
  for (; c + 8 <= C; c += 8) {
    const f32x8 a = cpu::load8(x + c);
    e0 += cpu::exp_nonpositive8(a - mv);
    s0 += a;
  }
  if (c < C) {  // padding: exp(-inf) = 0 and 0 add nothing
    e1 += cpu::exp_nonpositive8(cpu::load_part8(x + c, C - c, -INFINITY) - mv);
    s1 += cpu::load_part8(x + c, C - c, 0.0f);
  }
  se = cpu::hsum8(e0 + e1);
  sx = cpu::hsum8(s0 + s1);
}

// Soft targets p: sum exp(x - m), sum x, sum p x, sum p.
FF_VECTORIZE RowStats soft_stats(const float* x, const float* p, int C, float m) {
  const f32x8 mv = cpu::splat8(m);
  f32x8 e{}, sx{}, spx{}, sp{};
  int c = 0;
  for (; c + 8 <= C; c += 8) {
    const f32x8 a = cpu::load8(x + c), q = cpu::load8(p + c);
    e += cpu::exp_nonpositive8(a - mv);
    sx += a;
    spx += q * a;
    sp += q;
  }
  if (c < C) {
    const f32x8 a = cpu::load_part8(x + c, C - c, 0.0f), q = cpu::load_part8(p + c, C - c, 0.0f);
    e += cpu::exp_nonpositive8(cpu::load_part8(x + c, C - c, -INFINITY) - mv);
    sx += a;
    spx += q * a;
    sp += q;
  }
  return {m + std::log(cpu::hsum8(e)), cpu::hsum8(sx), cpu::hsum8(spx), cpu::hsum8(sp)};
}

// Hard target: dx = w (exp(x - lse) - u), then dx[t] -= w keep.
FF_VECTORIZE void hard_backward_row(const float* x, int C, float lse, float w, float u, float* dx) {
  const f32x8 lv = cpu::splat8(lse), wv = cpu::splat8(w), uv = cpu::splat8(u);
  int c = 0;
  for (; c + 16 <= C; c += 16) {
    const f32x8 a = cpu::exp_nonpositive8(cpu::load8(x + c) - lv);
    const f32x8 b = cpu::exp_nonpositive8(cpu::load8(x + c + 8) - lv);
    cpu::store8(dx + c, wv * (a - uv));
    cpu::store8(dx + c + 8, wv * (b - uv));
  }
  for (; c < C; c += 8) {
    const int n = C - c < 8 ? C - c : 8;
    const f32x8 a = cpu::exp_nonpositive8(cpu::load_part8(x + c, n, -INFINITY) - lv);
    cpu::store_part8(dx + c, wv * (a - uv), n);
  }
}

// Soft target p: dx = w (sq exp(x - lse) - (keep p + u)).
FF_VECTORIZE void soft_backward_row(const float* x, const float* p, int C, float lse, float w, float sq, float keep,
                                    float u, float* dx) {
  const f32x8 lv = cpu::splat8(lse), wv = cpu::splat8(w), sqv = cpu::splat8(sq);
  const f32x8 kv = cpu::splat8(keep), uv = cpu::splat8(u);
  for (int c = 0; c < C; c += 8) {
    const int n = C - c < 8 ? C - c : 8;
    const f32x8 a = cpu::exp_nonpositive8(cpu::load_part8(x + c, n, -INFINITY) - lv);
    const f32x8 q = cpu::load_part8(p + c, n, 0.0f);
    cpu::store_part8(dx + c, wv * (sqv * a - (kv * q + uv)), n);
  }
}

float sum_of(const float* p, int C) {
  float s = 0.0f;
  for (int c = 0; c < C; ++c) s += p[c];
  return s;
}

}  // namespace

void cross_entropy_forward(const CrossEntropyShape& s, const float* logits, const float* targets, float* loss,
                           float* lse, float* count) {
  const int C = s.C;
  const float ls = s.label_smoothing, keep = 1.0f - ls, u = ls / float(C);
  std::vector<float> row_loss(s.rows);
  std::vector<unsigned char> valid(s.rows);
#pragma omp parallel for schedule(static) if (int64_t(s.rows) * C > cpu::kParallelGrain)
  for (int i = 0; i < s.rows; ++i) {
    const float* x = logits + int64_t(i) * C;
    if (s.soft) {
      const RowStats st = soft_stats(x, targets + int64_t(i) * C, C, row_max(x, C));
      const float sum_q = keep * st.sum_p + ls;
      row_loss[i] = sum_q * st.lse - (keep * st.sum_px + u * st.sum_x);
      lse[i] = st.lse;
      valid[i] = 1;
    } else if (int(targets[i]) == s.ignore_index) {
      row_loss[i] = 0.0f;
      lse[i] = 0.0f;
      valid[i] = 0;
    } else {
      const float m = row_max(x, C);
      float se, sx;
      sum_exp(x, C, m, se, sx);
      const float row_lse = m + std::log(se);
      // (u = 0 adds nothing, even with a -inf logit in sx)
      row_loss[i] = row_lse - keep * x[int(targets[i])] - (u != 0.0f ? u * sx : 0.0f);
      lse[i] = row_lse;
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

void cross_entropy_backward(const CrossEntropyShape& s, const float* logits, const float* targets, const float* lse,
                            const float* count, const float* grad, float* dlogits) {
  const int C = s.C;
  const float ls = s.label_smoothing, keep = 1.0f - ls, u = ls / float(C);
  const float scale = s.reduction == Reduction::kMean ? grad[0] / count[0] : grad[0];
#pragma omp parallel for schedule(static) if (int64_t(s.rows) * C > cpu::kParallelGrain)
  for (int i = 0; i < s.rows; ++i) {
    const int64_t o = int64_t(i) * C;
    const float w = s.reduction == Reduction::kNone ? grad[i] : scale;
    if (s.soft) {
      const float* p = targets + o;
      soft_backward_row(logits + o, p, C, lse[i], w, keep * sum_of(p, C) + ls, keep, u, dlogits + o);
      continue;
    }
    const int t = int(targets[i]);
    if (t == s.ignore_index) {
      std::fill(dlogits + o, dlogits + o + C, 0.0f);
      continue;
    }
    hard_backward_row(logits + o, C, lse[i], w, u, dlogits + o);
    dlogits[o + t] -= w * keep;
  }
}

}  // namespace ff::backend
