// A transpose in a canonical index space (csrc/common/strided.h), split the way both backends'
// strided_copy tiles it (csrc/cpu/layout.cpp, csrc/cuda/layout.cu): the innermost input stride
// is > 1 and dim j is contiguous in the input, so
//   out[p, a, b] = src[in(p) + a + b in_b], stored at out(p) + a out_a + b,
// for a < A (dim j), b < B (the innermost dim) and p over `others`: the remaining dims, with the
// input's strides as operand 0 and the dense output's as operand 1 (one dim of size 1 when there
// are none). Host code; cost O(ndim).
#pragma once
#include <cstdint>
#include "strided.h"

namespace ff {

struct TransposeSplit {
  Strided others;
  int64_t A = 1, B = 1, in_b = 0, out_a = 0;
};

inline TransposeSplit transpose_split(const Strided& s, int j) {
  const int last = s.ndim - 1;
  int64_t out_stride[kMaxDims];
  out_stride[last] = 1;
  for (int d = last; d > 0; --d) out_stride[d - 1] = out_stride[d] * s.size[d];
  TransposeSplit t;
  Strided& o = t.others;
  o.ndim = 0;
  for (int d = 0; d < last; ++d) {
    if (d == j) continue;
    o.size[o.ndim] = s.size[d];
    o.stride[0][o.ndim] = s.stride[0][d];
    o.stride[1][o.ndim++] = out_stride[d];
  }
  if (o.ndim == 0) {
    o.ndim = 1;
    o.size[0] = 1;
    o.stride[0][0] = o.stride[1][0] = 0;
  }
  t.A = s.size[j];
  t.B = s.size[last];
  t.in_b = s.stride[0][last];
  t.out_a = out_stride[j];
  return t;
}

}  // namespace ff
