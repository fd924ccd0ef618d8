// A query row's online softmax in log2 units (FlashAttention), as dot_attention.cu and
// neural_attention.cu run it over their keys' logits x_j (log2 units: x = log2(e) score):
//   m = max_j x_j,  sum = sum_j 2^(x_j - m),  acc = sum_j 2^(x_j - m) v_j   (a lane's 8 of Dv)
//   out = acc / sum,  lse = m + log2 sum   (a row that saw no key: out = 0, lse = -inf)
// Cost per key: one exp2, 8 FMAs (and a rescale of the 8 sums where the maximum grows).
#pragma once
#include <cmath>
#include "attention_tiles.h"

namespace ff::cuda::attention {

struct OnlineSoftmaxRow {
  float acc[kLaneDims] = {};
  float row_max = -INFINITY, sum = 0.0f;

  __device__ inline void add(float x, const float (&vd)[kLaneDims]) {
    if (x > row_max) {
      const float rescale = exp2f(row_max - x);
      sum *= rescale;
#pragma unroll
      for (int e = 0; e < kLaneDims; ++e) acc[e] *= rescale;
      row_max = x;
    }
    const float p = exp2f(x - row_max);
    sum += p;
#pragma unroll
    for (int e = 0; e < kLaneDims; ++e) acc[e] += p * vd[e];
  }

  // out_row[first, first + 8) (of Dv) and, from the lane with first == 0, *lse.
  __device__ inline void store(float* out_row, int Dv, int first, float* lse) const {
    store_slice(out_row, Dv, first, acc, sum > 0.0f ? 1.0f / sum : 0.0f);
    if (first == 0) *lse = sum > 0.0f ? row_max + log2f(sum) : -INFINITY;
  }
};

}  // namespace ff::cuda::attention
