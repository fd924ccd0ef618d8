// Math the cpu kernels vectorise without -march or -ffast-math. The addon is built for baseline
// x86-64, so hot loops are compiled twice (FF_VECTORIZE: AVX2+FMA and the baseline, chosen at
// load time), and exp/tanh, which GCC vectorises only under -ffast-math, are branch-free
// polynomials the vectoriser can take (selects, no calls, no floorf).
// Kernels whose loops the vectoriser schedules badly (a long exp chain per element, reductions)
// use f32x8, GCC's generic vector of 8 floats: one AVX2 register in an FF_VECTORIZE clone, two
// SSE registers in the baseline one, the same source for both.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

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
// subnormals), +inf above ln(FLT_MAX) = 88.72284, NaN stays NaN. From x = 88.03 up n is 128,
// whose 2^n is not a float: it is applied as 2^127 * 2.
inline float exp_f(float x) {
  const float c = select(x > 88.72284f, 88.72284f, select(x < -87.0f, -87.0f, x));
  // n = round(c / ln2) by the 1.5 * 2^23 trick (round-to-nearest without a floorf call).
  const float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (c - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const int32_t top = int32_t(n) > 127;
  const float pw = std::bit_cast<float>((int32_t(n) - top + 127) << 23);  // 2^(n - top)
  const float e = (p * r * r + r + 1.0f) * pw * float(1 + top);           // (2^128 is no float)
  const float out = select(x > 88.72284f, __builtin_inff(), select(x < -87.0f, 0.0f, e));
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

typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
#define FF_INLINE inline __attribute__((always_inline))

FF_INLINE f32x8 splat8(float a) { return f32x8{} + a; }
FF_INLINE f32x8 load8(const float* p) {
  f32x8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
FF_INLINE void store8(float* p, f32x8 v) { std::memcpy(p, &v, sizeof v); }
// The n < 8 floats at p in the first lanes, `fill` in the others.
FF_INLINE f32x8 load_part8(const float* p, int n, float fill) {
  f32x8 v = splat8(fill);
  std::memcpy(&v, p, sizeof(float) * size_t(n));
  return v;
}
FF_INLINE void store_part8(float* p, f32x8 v, int n) { std::memcpy(p, &v, sizeof(float) * size_t(n)); }
// Lane-wise max ignoring NaN in a (as `a > b ? a : b`).
FF_INLINE f32x8 max8(f32x8 a, f32x8 b) { return a > b ? a : b; }
FF_INLINE float hmax8(f32x8 v) {
  float m = v[0];
  for (int l = 1; l < 8; ++l) m = v[l] > m ? v[l] : m;
  return m;
}
// Lanes summed pairwise (a fixed order).
FF_INLINE float hsum8(f32x8 v) { return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7])); }

// e^x for x <= 0 (a softmax's x - max or x - logsumexp), ~1 ulp: exp_f's polynomial without
// its range selects. Below -88 the argument is clamped to -88, where 2^n is the bit pattern 0,
// so the result is exactly 0 (and -inf gives 0); NaN stays NaN.
FF_INLINE f32x8 exp_nonpositive8(f32x8 x) {
  const f32x8 c = x < -88.0f ? splat8(-88.0f) : x;
  const f32x8 t = c * 1.44269504088896341f + 12582912.0f;  // round(c / ln2) + 1.5 * 2^23
  const f32x8 n = t - 12582912.0f;
  const f32x8 r = (c - n * 0.693359375f) + n * 2.12194440e-4f;
  f32x8 p = 1.9875691500e-4f * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  i32x8 ti;
  std::memcpy(&ti, &t, sizeof ti);
  const i32x8 bits = (ti - (0x4B400000 - 127)) << 23;  // (n + 127) << 23
  f32x8 scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return (p * (r * r) + r + 1.0f) * scale;
}

}  // namespace ff::cpu
