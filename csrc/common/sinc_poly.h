// The bounded sinc polynomials, one definition for every backend: the cpu SIMD kernels
// (csrc/cpu/sinc_simd.h, on vectors) and the scalar forms below (the cuda kernels, the metric).
// They are evaluated on y = c x, c = kSincScale, for |y| <= kSincBound (|x| <= 4.25):
//   s(x)  = (v - P) M(v),        v = y^2, M a monic quintic in Horner's form
//   s'(x) = kSincDScale * dh,    dh = y Q~(v), Q~ a monic quintic in Horner's form
// How c, P, M and Q~ were fitted, and their accuracy against double, is in csrc/cpu/sinc_simd.h
// (s: |error| <= 2.3e-7, s(0) = 1 exactly; s': |error| <= 4.2e-7). No division and no branch:
// 7 operations for s (an add, 4 FMAs, a subtraction and a multiply), 6 for dh.
#pragma once
#include <cmath>
#include "hd.h"

namespace ff {

constexpr float kSincScale = 0.148733974f;          // c
constexpr float kSincInvScale = 1.0f / kSincScale;  // x = y / c on the general path
constexpr float kSincBound = 4.25f * kSincScale;    // |y| bound of the polynomial path
constexpr float kSincP = 0.218333364f;              // P
// M(v) = v^5 + m4 v^4 + m3 v^3 + m2 v^2 + m1 v + m0 (monic; its real root and two complex pairs
// lie off [0, kSincBound^2], so Horner's form keeps its relative accuracy)
constexpr float kSincM0 = -4.58015203f, kSincM1 = 13.5292253f, kSincM2 = -16.0246849f, kSincM3 = 10.5088873f,
                kSincM4 = -4.30746603f;
// Q~(v) = v^5 + q4 v^4 + ... + q0, Q = q5 Q~
constexpr float kSincQ5 = 5.91743183f;
constexpr float kSincQ0 = -1.27319217f, kSincQ1 = 5.75514841f, kSincQ2 = -9.28682423f, kSincQ3 = 7.7353878f,
                kSincQ4 = -3.81146359f;
// s'(x) = kSincDScale * dh
constexpr float kSincDScale = 2.0f * kSincScale * kSincQ5;

// s for v = y^2 (the operations and their order are sinc_simd.h's sinc_poly1: the same bits).
FF_HD float sinc_poly(float v) {
  float m = v + kSincM4;
  m = fmaf(m, v, kSincM3);
  m = fmaf(m, v, kSincM2);
  m = fmaf(m, v, kSincM1);
  m = fmaf(m, v, kSincM0);
  return (v - kSincP) * m;
}

// dh = y Q~(v), so that s'(x) = kSincDScale * dh (sinc_simd.h's dsinc_poly1).
FF_HD float dsinc_poly(float y, float v) {
  float q = v + kSincQ4;
  q = fmaf(q, v, kSincQ3);
  q = fmaf(q, v, kSincQ2);
  q = fmaf(q, v, kSincQ1);
  q = fmaf(q, v, kSincQ0);
  return y * q;
}

}  // namespace ff
