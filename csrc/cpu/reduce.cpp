// cpu backend: out = the sum of x over some of its dims (sum, mean, and the gradients of
// broadcast ops, which sum back to an input's shape).
//
// The reduction arrives as alternating kept and reduced dims (csrc/common/strided.h). Two
// loops, by which kind is innermost:
//   inner reduced (row sums, whole-tensor sums): each output sums contiguous runs in double
//     lanes (4 per AVX2 register).
//   inner kept (column sums: a bias gradient [M, F] -> [F]): each output row accumulates whole
//     input rows into a row of doubles, so the loads stay contiguous and vectorised.
// Threads split the outputs when there are enough of them; otherwise (a whole-tensor sum, a
// bias gradient) they split the reduced range into per-thread partials that are then added in
// thread order, so a result depends only on the thread count. Cost: one add per input element.
#include <algorithm>
#include <vector>
#include "../common/backend_tensor_ops.h"
#include "parallel.h"
#include "strided_walk.h"
#include "vec_math.h"

namespace ff::backend {
namespace {

// Double lanes: as fast as float lanes from memory (~2.7 G floats/s on this machine), ~30%
// slower from cache, and a sum of 2^20 equal values stays exact to float rounding, where 8
// float lanes drift by thousands of ulp.
FF_VECTORIZE double run_sum(const float* x, int64_t n) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

FF_VECTORIZE void accumulate_row(double* acc, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += x[i];
}

// The first `n` of the given dims as a one-operand index space (no dims: one element).
Strided dims_of(const int64_t* size, const int64_t* stride, int n) {
  Strided s;
  if (n == 0) return s;
  s.ndim = n;
  for (int d = 0; d < n; ++d) {
    s.size[d] = size[d];
    s.stride[0][d] = stride[d];
    s.stride[1][d] = 0;
  }
  return s;
}

// Calls f(o, offset) for outputs o in [begin, end) of `kept`, offset = o's input offset.
template <typename F>
void for_outputs(const Strided& kept, int64_t begin, int64_t end, F&& f) {
  const int64_t step = kept.stride[0][kept.ndim - 1];
  cpu::walk_runs(kept, begin, end, [&](int64_t o, int64_t off, int64_t, int64_t len) {
    for (int64_t j = 0; j < len; ++j) f(o + j, off + j * step);
  });
}

// Sum of x + base over reduced indices [begin, end): runs of the innermost (contiguous) dim.
double sum_reduced(const Strided& red, const float* x, int64_t begin, int64_t end) {
  double s = 0.0;
  cpu::walk_runs(red, begin, end, [&](int64_t, int64_t off, int64_t, int64_t len) { s += run_sum(x + off, len); });
  return s;
}

void inner_reduced(const ReduceShape& r, const float* x, float* out) {
  const Strided kept = dims_of(r.kept_size, r.kept_stride, r.nkept);
  const Strided red = dims_of(r.red_size, r.red_stride, r.nred);
  const int64_t O = r.out_numel(), K = r.red_numel();
  const int T = cpu::threads_for(O * K);
  if (O >= T) {
    cpu::parallel_ranges(O, T, [&](int, int, int64_t b, int64_t e) {
      for_outputs(kept, b, e, [&](int64_t o, int64_t off) { out[o] = float(sum_reduced(red, x + off, 0, K)); });
    });
    return;
  }
  std::vector<double> partial(T);
  for_outputs(kept, 0, O, [&](int64_t o, int64_t off) {
    cpu::parallel_ranges(K, T, [&](int t, int, int64_t b, int64_t e) { partial[t] = sum_reduced(red, x + off, b, e); });
    double s = 0.0;
    for (double p : partial) s += p;
    out[o] = float(s);
  });
}

// acc[0:N] += the rows of x + base at reduced indices [begin, end).
void accumulate_reduced(const Strided& red, const float* x, int64_t N, int64_t begin, int64_t end, double* acc) {
  const int64_t step = red.stride[0][red.ndim - 1];
  cpu::walk_runs(red, begin, end, [&](int64_t, int64_t off, int64_t, int64_t len) {
    for (int64_t j = 0; j < len; ++j) accumulate_row(acc, x + off + j * step, N);
  });
}

void inner_kept(const ReduceShape& r, const float* x, float* out) {
  const int64_t N = r.kept_size[r.nkept - 1];
  const Strided rows = dims_of(r.kept_size, r.kept_stride, r.nkept - 1);
  const Strided red = dims_of(r.red_size, r.red_stride, r.nred);
  const int64_t R = r.out_numel() / N, K = r.red_numel();
  const int T = cpu::threads_for(R * N * K);
  if (R >= T) {
    cpu::parallel_ranges(R, T, [&](int, int, int64_t b, int64_t e) {
      std::vector<double> acc(N);
      for_outputs(rows, b, e, [&](int64_t row, int64_t off) {
        std::fill(acc.begin(), acc.end(), 0.0);
        accumulate_reduced(red, x + off, N, 0, K, acc.data());
        for (int64_t c = 0; c < N; ++c) out[row * N + c] = float(acc[c]);
      });
    });
    return;
  }
  std::vector<double> partial(size_t(T) * N);
  for_outputs(rows, 0, R, [&](int64_t row, int64_t off) {
    std::fill(partial.begin(), partial.end(), 0.0);
    cpu::parallel_ranges(K, T, [&](int t, int, int64_t b, int64_t e) {
      accumulate_reduced(red, x + off, N, b, e, partial.data() + size_t(t) * N);
    });
    for (int64_t c = 0; c < N; ++c) {
      double s = 0.0;
      for (int t = 0; t < T; ++t) s += partial[size_t(t) * N + c];
      out[row * N + c] = float(s);
    }
  });
}

}  // namespace

void sum_reduce(const ReduceShape& r, const float* x, float* out) {
  if (r.nkept == 0 || r.inner_reduced)
    inner_reduced(r, x, out);
  else
    inner_kept(r, x, out);
}

}  // namespace ff::backend
