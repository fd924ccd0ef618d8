// Walking a range [begin, end) of a Strided index space (csrc/common/strided.h) as contiguous
// runs of its innermost dim: f(i, off0, off1, len) is called per run with the output position
// i and each operand's offset at the run's start. The run loop is where the cpu ops vectorise.
#pragma once
#include <algorithm>
#include <cstdint>
#include "../common/strided.h"

namespace ff::cpu {

template <typename F>
void walk_runs(const Strided& s, int64_t begin, int64_t end, F&& f) {
  if (begin >= end) return;
  const int last = s.ndim - 1;
  int64_t idx[kMaxDims];
  int64_t off0 = 0, off1 = 0, rem = begin;
  for (int d = last; d >= 0; --d) {
    idx[d] = rem % s.size[d];
    rem /= s.size[d];
    off0 += idx[d] * s.stride[0][d];
    off1 += idx[d] * s.stride[1][d];
  }
  for (int64_t i = begin; i < end;) {
    const int64_t len = std::min(s.size[last] - idx[last], end - i);
    f(i, off0, off1, len);
    i += len;
    idx[last] += len;
    off0 += len * s.stride[0][last];
    off1 += len * s.stride[1][last];
    for (int d = last; d > 0 && idx[d] == s.size[d]; --d) {
      idx[d] = 0;
      off0 += s.stride[0][d - 1] - s.size[d] * s.stride[0][d];
      off1 += s.stride[1][d - 1] - s.size[d] * s.stride[1][d];
      ++idx[d - 1];
    }
  }
}

}  // namespace ff::cpu
