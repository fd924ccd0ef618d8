// cpu backend: softmax and log-softmax over the last axis, and their backward.
//
// forward, per row (threads over rows): max; e = exp(x - max) written to y while summing it;
// then y *= 1/sum (softmax) or y = (x - max) - log(sum) (log-softmax). The row stays in cache.
// backward from the output y: softmax dx = y (dy - sum dy y); log-softmax dx = dy - exp(y) sum dy.
// Cost per element: 2 reads + 1 write (the row re-read from cache), 1 exp.
#include <cmath>
#include "../common/backend_nn_ops.h"
#include "parallel.h"
#include "vec_math.h"

namespace ff::backend {
namespace {

FF_VECTORIZE void forward_row(const float* x, int C, bool log, float* y) {
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int c = 0; c < C; ++c) m = x[c] > m ? x[c] : m;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int c = 0; c < C; ++c) {
    const float e = cpu::exp_f(x[c] - m);
    y[c] = e;
    sum += e;
  }
  if (log) {  // (x - max) - log(sum): max + log(sum) would round log(sum) away at |max| > ~2^24
    const float lsum = std::log(sum);
    for (int c = 0; c < C; ++c) y[c] = (x[c] - m) - lsum;
  } else {
    const float inv = 1.0f / sum;
    for (int c = 0; c < C; ++c) y[c] *= inv;
  }
}

FF_VECTORIZE void backward_row(const float* y, const float* dy, int C, bool log, float* dx) {
  float s = 0.0f;
  if (log) {
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < C; ++c) s += dy[c];
    for (int c = 0; c < C; ++c) dx[c] = dy[c] - cpu::exp_f(y[c]) * s;
  } else {
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < C; ++c) s += dy[c] * y[c];
    for (int c = 0; c < C; ++c) dx[c] = y[c] * (dy[c] - s);
  }
}

}  // namespace

void softmax_forward(int rows, int C, bool log, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (int64_t(rows) * C > cpu::kParallelGrain)
  for (int r = 0; r < rows; ++r) forward_row(x + int64_t(r) * C, C, log, y + int64_t(r) * C);
}

void softmax_backward(int rows, int C, bool log, const float* y, const float* dy, float* dx) {
#pragma omp parallel for schedule(static) if (int64_t(rows) * C > cpu::kParallelGrain)
  for (int r = 0; r < rows; ++r) {
    const int64_t o = int64_t(r) * C;
    backward_row(y + o, dy + o, C, log, dx + o);
  }
}

}  // namespace ff::backend
