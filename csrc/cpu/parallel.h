// How the cpu tensor ops use threads: large work is cut into one contiguous range per hardware
// thread (OpenMP's default team: hardware_concurrency); small work runs on the calling thread,
// since waking a team costs a few microseconds. Boundaries are multiples of 16 elements, so
// every range but the last starts 64-byte aligned in an aligned tensor (when ranges are long).
#pragma once
#include <omp.h>
#include <algorithm>
#include <cstdint>

namespace ff::cpu {

// Below this many elements of streaming work (an add, a copy) one thread is faster.
constexpr int64_t kParallelGrain = 1 << 15;

// The number of threads for `work` elements of work, each thread taking at least `grain`.
inline int threads_for(int64_t work, int64_t grain = kParallelGrain) {
  const int64_t t = work / grain;
  return int(std::max<int64_t>(1, std::min<int64_t>(t, omp_get_max_threads())));
}

// Calls f(thread, threads, begin, end) once per thread over a split of [0, n).
template <typename F>
void parallel_ranges(int64_t n, int threads, F&& f) {
  if (threads <= 1) {
    f(0, 1, int64_t(0), n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    const int64_t mask = n / T >= 1024 ? ~int64_t(15) : ~int64_t(0);
    const int64_t begin = t == 0 ? 0 : (n * t / T) & mask;
    const int64_t end = t == T - 1 ? n : (n * (t + 1) / T) & mask;
    f(t, T, begin, end);
  }
}

// parallel_ranges with threads_for(n, grain).
template <typename F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  parallel_ranges(n, threads_for(n, grain), [&](int, int, int64_t b, int64_t e) { f(b, e); });
}

}  // namespace ff::cpu
