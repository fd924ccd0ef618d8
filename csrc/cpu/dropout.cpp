// cpu backend: dropout and drop-path from a counter-based generator (Philox4x32-10, philox.h):
//     y_i = x_i * [u_j >= p] / (1 - p),   j = i / group,   u_j from (seed, offset) alone
// so the mask is recomputed rather than stored, and the backward is this same function on dy.
// group 1 is dropout; group = elements per sample is drop-path (one draw per sample).
//
// Plain dropout, by version:
//   scalar   one Philox block (4 draws) at a time, philox.h as written (any CPU; row tails).
//   AVX2     8 blocks at once, one per 32-bit lane: the rounds' 32x32->64 products by
//            vpmuludq on even and odd lanes; the 4 x 8 words are transposed to element order
//            (32 elements per step). Bit-identical to the scalar version: u_j >= p is the
//            integer test (word >> 8) >= ceil(p 2^24), the same comparison done exactly.
// Threads take ranges of whole Philox blocks; the result does not depend on them.
// Cost per element: 1 read, 1 write; plus one Philox (10 rounds) per 4 draws.
#include <algorithm>
#include <cmath>
#include "../common/backend_nn_ops.h"
#include "../common/philox.h"
#include "parallel.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ff::backend {
namespace {

// Blocks [b0, b1) of plain dropout, elements [4 b0, min(4 b1, n)).
void dropout_blocks(int64_t b0, int64_t b1, int64_t n, float p, float scale, uint64_t seed, uint64_t offset,
                    const float* x, float* y) {
  for (int64_t b = b0; b < b1; ++b) {
    const Philox4 r = philox_block(seed, offset, uint64_t(b));
    const int64_t base = 4 * b;
    const int lanes = int(std::min<int64_t>(4, n - base));
    for (int l = 0; l < lanes; ++l) y[base + l] = x[base + l] * (philox_uniform(r.v[l]) >= p ? scale : 0.0f);
  }
}

#if defined(__x86_64__)
bool has_avx2() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return yes;
}

// hi and lo words of a * m per 32-bit lane.
[[gnu::target("avx2")]] inline void mulhilo(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

// scale where word >> 8 > thr, else 0.
[[gnu::target("avx2")]] inline __m256 keep_scale(__m256i word, __m256i thr, __m256 scale) {
  return _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_srli_epi32(word, 8), thr)), scale);
}

// Blocks [b0, b1) as dropout_blocks; b1 - b0 a multiple of 8 and 4 b1 <= n.
[[gnu::target("avx2")]] void dropout_blocks_avx2(int64_t b0, int64_t b1, float p, float scale, uint64_t seed,
                                                 uint64_t offset, const float* x, float* y) {
  const __m256i thr = _mm256_set1_epi32(int32_t(std::ceil(double(p) * 16777216.0)) - 1);
  const __m256 sv = _mm256_set1_ps(scale);
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_set1_epi32(int32_t(0xD2511F53u)), m1 = _mm256_set1_epi32(int32_t(0xCD9E8D57u));
  for (int64_t b = b0; b < b1; b += 8) {
    const uint64_t start = offset + uint64_t(b);
    if (uint32_t(start) > 0xFFFFFFF8u) {  // the low counter word wraps inside these 8 blocks
      dropout_blocks(b, b + 8, 4 * b1, p, scale, seed, offset, x, y);
      continue;
    }
    __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32(int32_t(uint32_t(start))), iota);
    __m256i c1 = _mm256_set1_epi32(int32_t(uint32_t(start >> 32)));
    __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
    uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      __m256i hi0, lo0, hi1, lo1;
      mulhilo(c0, m0, hi0, lo0);
      mulhilo(c2, m1, hi1, lo1);
      c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(int32_t(k0)));
      c1 = lo1;
      c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(int32_t(k1)));
      c3 = lo0;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    // word j of lane l scales element 4 (b + l) + j: keep-scale per word, then a 4 x 8 transpose.
    const __m256 k0v = keep_scale(c0, thr, sv), k1v = keep_scale(c1, thr, sv);
    const __m256 k2v = keep_scale(c2, thr, sv), k3v = keep_scale(c3, thr, sv);
    const __m256 t0 = _mm256_unpacklo_ps(k0v, k1v), t1 = _mm256_unpackhi_ps(k0v, k1v);
    const __m256 t2 = _mm256_unpacklo_ps(k2v, k3v), t3 = _mm256_unpackhi_ps(k2v, k3v);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 f[4] = {_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u2, u3, 0x20),
                         _mm256_permute2f128_ps(u0, u1, 0x31), _mm256_permute2f128_ps(u2, u3, 0x31)};
    const int64_t e = 4 * b;
    for (int q = 0; q < 4; ++q) _mm256_storeu_ps(y + e + 8 * q, _mm256_mul_ps(_mm256_loadu_ps(x + e + 8 * q), f[q]));
  }
}
#endif

// Plain dropout of the elements of blocks [b0, b1).
void dropout_range(int64_t b0, int64_t b1, int64_t n, float p, float scale, uint64_t seed, uint64_t offset,
                   const float* x, float* y) {
#if defined(__x86_64__)
  if (has_avx2()) {
    const int64_t full = std::max(b0, std::min(b1, n / 4));  // blocks of 4 elements inside n
    const int64_t b8 = b0 + (full - b0) / 8 * 8;
    dropout_blocks_avx2(b0, b8, p, scale, seed, offset, x, y);
    b0 = b8;
  }
#endif
  dropout_blocks(b0, b1, n, p, scale, seed, offset, x, y);
}

}  // namespace

void dropout(int64_t n, int64_t group, float p, uint64_t seed, uint64_t offset, const float* x, float* y) {
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  if (group == 1) {
    const int64_t blocks = (n + 3) / 4;
    cpu::parallel_for(blocks, cpu::kParallelGrain / 16,
                      [&](int64_t b0, int64_t b1) { dropout_range(b0, b1, n, p, scale, seed, offset, x, y); });
    return;
  }
  const int64_t samples = n / group;
  cpu::parallel_for(samples, std::max<int64_t>(1, cpu::kParallelGrain / group), [&](int64_t s0, int64_t s1) {
    for (int64_t j = s0; j < s1; ++j) {
      const float u = philox_uniform(philox_block(seed, offset, uint64_t(j / 4)).v[j % 4]);
      const float f = u >= p ? scale : 0.0f;
      for (int64_t i = j * group; i < (j + 1) * group; ++i) y[i] = x[i] * f;
    }
  });
}

}  // namespace ff::backend
