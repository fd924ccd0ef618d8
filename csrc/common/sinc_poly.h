// The bounded sinc polynomials, one definition for every backend: the cpu SIMD kernels
// (csrc/cpu/sinc_simd.h, on vectors) and the scalar forms below (the cuda kernels, the metric).
// They are evaluated on y = c x, c = kSincScale, for |y| <= kSincBound (|x| <= 4.25):
//   s(x)  = (v - P) M(v),        v = y^2, M(v) = (v - m_r) [(v + ma1) v + mb1] [(v + ma2) v + mb2]
//   s'(x) = kSincDScale * dh,    dh = y Q~(v), Q~(v) = (v - q_r) [(v + qa1) v + qb1] [(v + qa2) v + qb2]
// How c, P, M and Q~ were fitted, and their accuracy against double, is in csrc/cpu/sinc_simd.h
// (s: |error| <= 3.4e-7, s(0) = 1 exactly; s': |error| <= 3.9e-7). No division and no branch:
// 12 flops for s, 8 more for dh.
#pragma once
#include <cmath>
#include "hd.h"

namespace ff {

constexpr float kSincScale = 0.148733974f;          // c
constexpr float kSincInvScale = 1.0f / kSincScale;  // x = y / c on the general path
constexpr float kSincBound = 4.25f * kSincScale;    // |y| bound of the polynomial path
constexpr float kSincP = 0.218333364f;              // P
// M = (v - m_r)(v^2 + ma1 v + mb1)(v^2 + ma2 v + mb2)
constexpr float kSincMr = 0.858513713f, kSincMa1 = -1.12519407f, kSincMb1 = 3.33218288f, kSincMa2 = -2.32376075f,
                kSincMb2 = 1.60104609f;
// Q~ = (v - q_r)(v^2 + qa1 v + qb1)(v^2 + qa2 v + qb2), Q = q5 Q~
constexpr float kSincQ5 = 5.91743183f;
constexpr float kSincQr = 0.446644872f, kSincQa1 = -1.26643252f, kSincQb1 = 2.37460017f, kSincQa2 = -2.09838629f,
                kSincQb2 = 1.20044184f;
// s'(x) = kSincDScale * dh
constexpr float kSincDScale = 2.0f * kSincScale * kSincQ5;

// s for v = y^2 (the operations and their order are sinc_simd.h's sinc_poly1: the same bits).
FF_HD float sinc_poly(float v) {
  const float t = (v - kSincP) * (v - kSincMr);
  const float g1 = fmaf(v + kSincMa1, v, kSincMb1);
  const float g2 = fmaf(v + kSincMa2, v, kSincMb2);
  return t * (g1 * g2);
}

// dh = y Q~(v), so that s'(x) = kSincDScale * dh (sinc_simd.h's dsinc_poly1).
FF_HD float dsinc_poly(float y, float v) {
  const float h1 = fmaf(v + kSincQa1, v, kSincQb1);
  const float h2 = fmaf(v + kSincQa2, v, kSincQb2);
  return (y * (v - kSincQr)) * (h1 * h2);
}

}  // namespace ff
