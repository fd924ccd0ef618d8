// Math the cpu kernels vectorise without -march or -ffast-math. The addon is built for baseline
// x86-64, so hot loops are compiled twice (FF_VECTORIZE: AVX2+FMA and the baseline, chosen at
// load time), and exp/tanh, which GCC vectorises only under -ffast-math, are branch-free
// polynomials the vectoriser can take (selects, no calls, no floorf).
#pragma once
#include <bit>
#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FF_VECTORIZE __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FF_VECTORIZE
#endif

namespace ff::cpu {

// m ? a : b, branch-free. Under GCC's default -ftrapping-math a ternary whose arm computes
// floating point is not if-converted (the arm is sunk into a branch, which may not trap
// speculatively), and a loop with a branch does not vectorise: select on bits instead.
inline float select(bool m, float a, float b) {
  const int32_t mask = -int32_t(m);
  return std::bit_cast<float>((std::bit_cast<int32_t>(a) & mask) | (std::bit_cast<int32_t>(b) & ~mask));
}

// e^x, ~2 ulp (Cephes' expf polynomial after x = n ln2 + r, |r| <= ln2/2); 0 below -87 (no
// subnormals), +inf above 88.7, NaN stays NaN.
inline float exp_f(float x) {
  const float c = select(x > 88.7f, 88.7f, select(x < -87.0f, -87.0f, x));
  // n = round(c / ln2) by the 1.5 * 2^23 trick (round-to-nearest without a floorf call).
  const float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (c - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = (p * r * r + r + 1.0f) * std::bit_cast<float>((int32_t(n) + 127) << 23);
  const float out = select(x > 88.7f, __builtin_inff(), select(x < -87.0f, 0.0f, e));
  return select(x != x, x, out);
}

// tanh(x): Cephes' odd polynomial below |x| = 0.625 (no cancellation near 0), else
// 1 - 2 / (e^(2|x|) + 1) with the sign of x; saturates to +-1. A few ulp.
inline float tanh_f(float x) {
  const float a = select(x < 0.0f, -x, x);
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = x + x * z * p;
  const float big = 1.0f - 2.0f / (exp_f(2.0f * select(a > 44.0f, 44.0f, a)) + 1.0f);
  const float out = select(a < 0.625f, small, select(x < 0.0f, -big, big));
  return select(x != x, x, out);
}

}  // namespace ff::cpu
