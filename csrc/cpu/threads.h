// Work splitting for the cpu attention kernels: OpenMP threads over units of (b, h) slice x
// block of query rows. A slice is split into row chunks only when there are too few slices to
// keep every thread busy; the split depends on the thread count, never on scheduling, so
// partial sums reduced in unit order give the same bits run after run.
#pragma once
#include <omp.h>
#include <algorithm>
#ifdef __SSE__
#include <xmmintrin.h>
#endif

namespace ff::cpu {

struct RowSplit {
  int slices = 1, rows = 0, chunks = 1, chunk_rows = 0;

  RowSplit(int slices_, int rows_) : slices(slices_), rows(rows_) {
    const int threads = omp_get_max_threads();
    const int min_rows = 32;
    const int max_chunks = std::max(1, (rows + min_rows - 1) / min_rows);
    chunks = std::clamp((2 * threads + slices - 1) / std::max(slices, 1), 1, max_chunks);
    chunk_rows = (rows + chunks - 1) / chunks;
  }
  int units() const { return slices * chunks; }
  int slice(int unit) const { return unit / chunks; }
  int row_begin(int unit) const { return std::min(rows, (unit % chunks) * chunk_rows); }
  int row_end(int unit) const { return std::min(rows, row_begin(unit) + chunk_rows); }
};

// f(unit) for units 0..n-1, dynamically scheduled (causal units differ in cost).
template <class F>
void parallel_units(int n, const F& f) {
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < n; ++i) f(i);
}

// Flush subnormals to zero while a kernel runs on this thread (results underflow to 0 either
// way; subnormal arithmetic would only make them slower).
struct FlushSubnormals {
#ifdef __SSE__
  unsigned saved = _mm_getcsr();
  FlushSubnormals() { _mm_setcsr(saved | 0x8040); }
  ~FlushSubnormals() { _mm_setcsr(saved); }
#endif
};

}  // namespace ff::cpu
