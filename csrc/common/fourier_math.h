// The scalar math of the generalized Fourier integral kernel, shared by host and device code.
//
//   s(x)  = sin(x) / x,            s(0) = 1
//   s'(x) = (x cos x - sin x) / x^2, s'(0) = 0
//
// Two paths, chosen on y = c x (c = kSincScale, sinc_poly.h):
//   bounded, |y| <= kSincBound (|x| <= 4.25): the polynomials of sinc_poly.h: no division, no
//     branch, no range reduction; s(0) = 1 exactly (a relative bias in s would be multiplied by
//     p*D in K), and no cancellation near 0 (where the closed forms lose ~eps/x^2 in s').
//   general, any finite x: one sincos (one range reduction), s = sin(x) / x, s' = (cos - s) / x.
// Kernels that check the bound once per tile of pairs call the *_bounded forms in their hot loop
// and these per-element forms elsewhere; y is computed by the caller (as (c R) (q - k), or c x)
// so that both paths see the same y for the same operands.
#pragma once
#include <cmath>
#include "hd.h"
#include "sinc_poly.h"

namespace ff {

// s on the bounded path: ~11 flops.
FF_HD float sinc_bounded(float y) { return sinc_poly(y * y); }

// s and dh (s' = kSincDScale * dh) on the bounded path: ~19 flops.
FF_HD void sinc_and_dh_bounded(float y, float& s, float& dh) {
  const float v = y * y;
  s = sinc_poly(v);
  dh = dsinc_poly(y, v);
}

// s(x) for any x, given y = c x (or the caller's own rounding of it): the polynomial where
// |y| <= kSincBound, else sin(x) / x.
FF_HD float sinc_any(float x, float y) {
  if (fabsf(y) <= kSincBound) return sinc_bounded(y);
  return sinf(x) / x;
}

// s(x) and s'(x) for any x, given y as above.
FF_HD void sinc_and_derivative_any(float x, float y, float& s, float& ds) {
  if (fabsf(y) <= kSincBound) {
    float dh;
    sinc_and_dh_bounded(y, s, dh);
    ds = kSincDScale * dh;
    return;
  }
  float sn, cs;
  sincosf(x, &sn, &cs);
  const float inv = 1.0f / x;
  s = sn * inv;
  ds = (cs - s) * inv;
}

FF_HD float sinc(float x) { return sinc_any(x, kSincScale * x); }

FF_HD void sinc_and_derivative(float x, float& s, float& ds) { sinc_and_derivative_any(x, kSincScale * x, s, ds); }

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

// Default mode: the exponent a of the scale 2^a a kernel may carry k = prod_d s_d with (k 2^a,
// so K = k^p as K 2^(p a), p a <= 64): a K below float's smallest normal (2^-126) then keeps
// float's relative accuracy through S = sum_j K_ij and sum_j K_ij v_j, down to 2^-190. Powers of
// two scale exactly, so wherever nothing underflows the bits are those of the unscaled products.
// a is lowered where n max|v| 2^(p a) or eps 2^(p a) (n keys) would pass 2^120, so neither S + eps
// nor the products with v can overflow.
FF_HD int scale_root(int p, int n, float vmax, float eps) {
  int room = 64;
  const double xs[2] = {double(n) * double(vmax), double(eps)};
  for (const double x : xs) {
    if (!(x > 0)) continue;
    const int fit = x < 1e300 ? 119 - ilogb(x) : 0;
    room = fit < room ? fit : room;
  }
  return (room > 0 ? room : 0) / p;
}

}  // namespace ff
