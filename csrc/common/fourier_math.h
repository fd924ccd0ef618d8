// The scalar math of the generalized Fourier integral kernel, shared by host and device code.
//
//   s(x)  = sin(x) / x,            s(0) = 1
//   s'(x) = (x cos x - sin x) / x^2, s'(0) = 0
//
// Near x = 0 both closed forms cancel (s' loses ~eps/x^2 relative), so |x| < 0.5 uses the
// Taylor series, truncated where the next term is below 1e-9 relative. s(0) = 1 exactly, so a
// row of identical q and k gives K = 1 exactly (a relative bias in s would be multiplied by p*D).
#pragma once
#include <cmath>
#include "hd.h"

namespace ff {

constexpr float kSincTaylorBound = 0.5f;

// s(x) and s'(x) together; cost: one sincos outside the Taylor range, ~10 flops inside it.
FF_HD void sinc_and_derivative(float x, float& s, float& ds) {
  if (fabsf(x) < kSincTaylorBound) {
    const float u = x * x;
    // s  = 1 - u/6 + u^2/120 - u^3/5040 + u^4/362880
    s = 1.0f + u * (-1.0f / 6 + u * (1.0f / 120 + u * (-1.0f / 5040 + u * (1.0f / 362880))));
    // s' = x * (-1/3 + u/30 - u^2/840 + u^3/45360 - u^4/3991680)
    ds = x * (-1.0f / 3 + u * (1.0f / 30 + u * (-1.0f / 840 + u * (1.0f / 45360 + u * (-1.0f / 3991680)))));
  } else {
    const float sn = sinf(x), cs = cosf(x);
    const float inv = 1.0f / x;
    s = sn * inv;
    ds = (cs - s) * inv;
  }
}

FF_HD float sinc(float x) {
  if (fabsf(x) < kSincTaylorBound) {
    const float u = x * x;
    return 1.0f + u * (-1.0f / 6 + u * (1.0f / 120 + u * (-1.0f / 5040 + u * (1.0f / 362880))));
  }
  return sinf(x) / x;
}

// z^p for a small positive integer p by repeated squaring; exact for p = 1.
FF_HD float ipow(float z, int p) {
  float r = 1.0f;
  while (p > 0) {
    if (p & 1) r *= z;
    z *= z;
    p >>= 1;
  }
  return r;
}

}  // namespace ff
