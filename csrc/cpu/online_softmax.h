// The online softmax of the cpu attention kernels whose weights are exp(score - lse)
// (dot_attention.cpp, neural_attention.cpp): FlashAttention's per-row state over tiles of keys,
//   m = the running maximum score, l = sum_j exp(s_j - m), acc = sum_j exp(s_j - m) v_j,
// rescaled by exp(m_old - m_new) when a tile raises the maximum; at the end out = acc / l and
// lse = m + log l. Cost per (row, key): one exp (exp_nonpositive, ~12 ops per W keys) and Dv
// FMA (the GEMV with the tile's values); per (row, tile): one rescale of acc when m grows.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include "attention_tiles.h"
#include "simd.h"

namespace ff::cpu {

// One row over one tile of n keys: s[0, n) holds the row's scores (a whole vector at a time:
// lanes past n are ignored), vmax their lane-wise maximum (-inf in lanes past n). s becomes
// P = exp(s - m); vrows are the tile's values as rows of ldv floats; part is ldv floats of
// scratch.
template <class V>
void online_softmax_tile(float* s, int n, typename V::T vmax, const float* vrows, int ldv, float& m, float& l,
                         float* acc, float* part) {
  using T = typename V::T;
  constexpr int W = V::W;
  const float mt = std::max(m, V::max_lane(vmax));
  if (mt > m) {
    const float f = std::exp(m - mt);
    l *= f;
    for (int c = 0; c < ldv; ++c) acc[c] *= f;
    m = mt;
  }
  T lt = V::zero();
  for (int j = 0; j < n; j += W) {
    T p = exp_nonpositive<V>(V::sub(V::load(s + j), V::set(mt)));
    if (j + W > n) p = V::keep(V::lanes_below(n - j), p);
    lt = V::add(lt, p);
    V::store(s + j, p);
  }
  l += V::sum(lt);
  gemv<V>(s, n, vrows, ldv, part);
  for (int c = 0; c < ldv; ++c) acc[c] += part[c];
}

// out_r = acc_r / l_r (rows of Dv floats; acc's rows ldv apart) and lse_r = m_r + log l_r for
// r < rows; a row that saw no key (l_r = 0) gets out 0 and lse -inf.
inline void finish_online_softmax(int rows, const float* acc, int ldv, const float* m, const float* l, int Dv,
                                  float* out, float* lse) {
  for (int r = 0; r < rows; ++r) {
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
    for (int e = 0; e < Dv; ++e) out[int64_t(r) * Dv + e] = acc[size_t(r) * ldv + e] * inv;
    lse[r] = l[r] > 0.0f ? m[r] + std::log(l[r]) : -std::numeric_limits<float>::infinity();
  }
}

}  // namespace ff::cpu
