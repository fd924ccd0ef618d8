// Work splitting for the cpu attention kernels: OpenMP threads over units of (b, h) slice x
// block of query rows. A slice is split into row chunks only when there are too few slices to
// keep every thread busy; the split depends on the thread count, never on scheduling, so
// partial sums reduced in unit order give the same bits run after run.
#pragma once
#include <omp.h>
#include <algorithm>
#include "../common/shapes.h"
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

// Below this much work (query-key pairs times features, summed over the units) the units run
// on the calling thread: a team's fork/join costs a few microseconds on an idle machine and, on a
// loaded one, a wait for a descheduled thread, against ~10-30 us of arithmetic. A decoding step
// (one query row against a few hundred cached keys) is that small; training shapes are not.
constexpr double kUnitsGrain = double(1 << 18);

// f(unit) for units 0..n-1, dynamically scheduled (causal units differ in cost) over the team
// when `work` (as for kUnitsGrain) is large enough. Every unit writes its own outputs, so the
// results are the same bits either way.
template <class F>
void parallel_units(int n, double work, const F& f) {
  if (n <= 1 || work < kUnitsGrain || omp_get_max_threads() <= 1) {
    for (int i = 0; i < n; ++i) f(i);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < n; ++i) f(i);
}

// The work of an attention kernel's pass over sh for parallel_units: query-key pairs x (D + Dv).
inline double attention_work(const AttentionShape& sh) { return double(sh.B) * sh.H * sh.Nq * sh.Nk * (sh.D + sh.Dv); }

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
