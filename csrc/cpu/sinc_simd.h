// s(x) = sin(x)/x and s'(x) = (x cos x - sin x)/x^2 on SIMD vectors, evaluated on y = c x:
// the attention kernel stores its operands scaled by c = kSincScale, so y costs nothing extra.
//
//   bounded (|y| <= kSincBound, i.e. |x| <= 4.25): with v = y^2 and a MONIC quintic M,
//       s = (v - P) M(v),   M(v) = v^5 + m4 v^4 + ... + m0   (P = c^2 pi^2: the zero at x = pi
//            factored out, so s keeps its relative accuracy up to it; an error in s is
//            multiplied by p*D in K). c is chosen with the coefficients so that the fit's
//            leading coefficient is exactly 1: the first Horner step is an add, not an FMA.
//            Coefficients fitted for relative error allowing for the float evaluation's own
//            rounding, then rounded to float by branch-and-bound (c such that P and m0 are
//            within ~3e-9 of their exact values: the zero at pi barely moves); s(0) = 1 exactly.
//            Cost: mul + add + 4 FMA + sub + mul (one FMA-port op fewer than a general quintic).
//       s' = 2 c y Q(v), Q a quintic fitted to dS/dv for absolute error in s' (Lawson-weighted
//            minimax, rounded to float one coefficient at a time, refitting the rest):
//            5 FMA + mul. The kernels take dh = y Q(v) and fold 2c into a per-row factor.
//            (The derivative of the M fit by simultaneous Horner needs no further constants
//            but is 4x less accurate, 1.5-1.9e-6, and measured slower: its chain is longer.)
//     No division, no branch: the caller checks the bound once per block of keys.
//   general (any finite x = y / c): sin and cos by Cody-Waite reduction to [-pi/4, pi/4] (Cephes
//     polynomials), s = sin/x and s' = (cos - s)/x, and the polynomials above wherever |y| <=
//     the bound (the closed forms cancel near 0). About 3x the bounded cost.
// Accuracy on every float y in [0, kSincBound] against double (scripts/check-sinc-poly.cpp):
//   s:  |error| <= 2.4e-7; relative 1.3e-7 median, 1.3e-6 p99 (x uniform), <= 8.6e-7 for
//       |x - pi| > 0.1 and 5.6e-5 for |x - pi| > 1e-3 (near its zero s is tiny: K ~ s^p);
//   s': |error| <= 4.4e-7.
//   (The previous scheme, a general quintic in x^2 with 13 constants: 2.8e-7, 1.5e-7 median,
//   2.5e-6 p99, 1.4e-6 / 1.2e-4 near pi; s' 6.9e-7.)
// Both take N vectors at once and issue each Horner step for all N before the next: N
// independent FMA chains, which a core with 4-5 cycle FMA latency needs to stay busy.
#pragma once
#include <cmath>
#include "simd.h"

namespace ff::cpu {

constexpr float kSincScale = 0.148733974f;        // c
constexpr float kSincInvScale = 1.0f / kSincScale; // x = y / c on the general path
constexpr float kSincBound = 4.25f * kSincScale;   // |y| bound of the polynomial path
constexpr float kSincP = 0.218333364f;              // P
constexpr float kSincQ[6] = {-7.53402805f, 34.0557022f, -54.954155f, 45.7736244f, -22.5540791f, 5.91743183f};  // q0..q5
constexpr float kSincM[5] = {-4.58015203f, 13.5292196f, -16.0246677f, 10.5088854f, -4.30746841f};  // m0..m4

// s = (v - P) M(v) for N vectors v = y^2.
template <class V, int N>
void sinc_poly(const typename V::T* v, typename V::T* s) {
  typename V::T r[N];
  for (int n = 0; n < N; ++n) r[n] = V::add(v[n], V::set(kSincM[4]));
  for (int c = 3; c >= 0; --c)
    for (int n = 0; n < N; ++n) r[n] = V::fma(r[n], v[n], V::set(kSincM[c]));
  for (int n = 0; n < N; ++n) s[n] = V::mul(V::sub(v[n], V::set(kSincP)), r[n]);
}

// s as above and dS = Q(v) ~ dS/dv (so s'(x) = 2 c y dS), the two Horner chains interleaved.
template <class V, int N>
void sinc_dsinc_poly(const typename V::T* v, typename V::T* s, typename V::T* dS) {
  typename V::T r[N], q[N];
  for (int n = 0; n < N; ++n) {
    r[n] = V::add(v[n], V::set(kSincM[4]));
    q[n] = V::fma(v[n], V::set(kSincQ[5]), V::set(kSincQ[4]));
  }
  for (int c = 3; c >= 0; --c)
    for (int n = 0; n < N; ++n) {
      q[n] = V::fma(q[n], v[n], V::set(kSincQ[c]));
      r[n] = V::fma(r[n], v[n], V::set(kSincM[c]));
    }
  for (int n = 0; n < N; ++n) {
    s[n] = V::mul(V::sub(v[n], V::set(kSincP)), r[n]);
    dS[n] = q[n];
  }
}

// sin(x) and cos(x) for any finite x: Cody-Waite reduction with a 3-part pi/2 (|error| <=
// 1.1e-7 up to |x| = 2^20), and lanes beyond 2^20 (rare) redone one by one in double.
template <class V>
void sincos_any(typename V::T x, typename V::T& sn, typename V::T& cs) {
  using T = typename V::T;
  const T xc = V::min(V::max(x, V::set(-1048576.0f)), V::set(1048576.0f));
  const T n = V::round(V::mul(xc, V::set(0.636619772f)));
  T y = V::fnma(n, V::set(1.5703125f), xc);
  y = V::fnma(n, V::set(4.837512969970703125e-4f), y);
  y = V::fnma(n, V::set(7.54978995489188216e-8f), y);
  const T z = V::mul(y, y);
  T ps = V::fma(z, V::set(-1.9515295891e-4f), V::set(8.3321608736e-3f));
  ps = V::fma(z, ps, V::set(-1.6666654611e-1f));
  const T sy = V::fma(V::mul(y, z), ps, y);
  T pc = V::fma(z, V::set(2.443315711809948e-5f), V::set(-1.388731625493765e-3f));
  pc = V::fma(z, pc, V::set(4.166664568298827e-2f));
  const T cy = V::fma(V::mul(z, z), pc, V::fnma(V::set(0.5f), z, V::set(1.0f)));
  // quadrant q = n mod 4: sin x = (+sy, +cy, -sy, -cy)[q], cos x = (+cy, -sy, -cy, +sy)[q]
  const T q = V::fnma(V::set(4.0f), V::floor(V::mul(n, V::set(0.25f))), n);
  const auto odd = V::mor(V::eq(q, V::set(1.0f)), V::eq(q, V::set(3.0f)));
  const T s0 = V::select(odd, cy, sy), c0 = V::select(odd, sy, cy);
  sn = V::select(V::le(V::set(2.0f), q), V::sub(V::zero(), s0), s0);
  cs = V::select(V::mor(V::eq(q, V::set(1.0f)), V::eq(q, V::set(2.0f))), V::sub(V::zero(), c0), c0);
  if (V::any(V::lt(V::set(1048576.0f), V::abs(x)))) {
    float xs[V::W], ss[V::W], cc[V::W];
    V::store(xs, x), V::store(ss, sn), V::store(cc, cs);
    for (int l = 0; l < V::W; ++l)
      if (std::fabs(xs[l]) > 1048576.0f) ss[l] = float(std::sin(double(xs[l]))), cc[l] = float(std::cos(double(xs[l])));
    sn = V::load(ss), cs = V::load(cc);
  }
}

// s = s(x) for N vectors y = c x.
template <class V, bool Bounded, int N>
void sinc(const typename V::T* y, typename V::T* s) {
  typename V::T v[N];
  for (int n = 0; n < N; ++n) v[n] = V::mul(y[n], y[n]);
  sinc_poly<V, N>(v, s);
  if constexpr (!Bounded) {
    for (int n = 0; n < N; ++n) {
      typename V::T sn, cs;
      const typename V::T x = V::mul(y[n], V::set(kSincInvScale));
      sincos_any<V>(x, sn, cs);
      s[n] = V::select(V::le(V::abs(y[n]), V::set(kSincBound)), s[n], V::div(sn, x));
    }
  }
}

// s = s(x) and dh = s'(x) / (2c) (= y dS/dv on the polynomial path) for N vectors y = c x.
template <class V, bool Bounded, int N>
void sinc_and_derivative(const typename V::T* y, typename V::T* s, typename V::T* dh) {
  typename V::T v[N];
  for (int n = 0; n < N; ++n) v[n] = V::mul(y[n], y[n]);
  sinc_dsinc_poly<V, N>(v, s, dh);
  for (int n = 0; n < N; ++n) dh[n] = V::mul(y[n], dh[n]);
  if constexpr (!Bounded) {
    for (int n = 0; n < N; ++n) {
      typename V::T sn, cs;
      const typename V::T x = V::mul(y[n], V::set(kSincInvScale));
      sincos_any<V>(x, sn, cs);
      const auto near = V::le(V::abs(y[n]), V::set(kSincBound));
      const typename V::T sg = V::div(sn, x);
      s[n] = V::select(near, s[n], sg);
      dh[n] = V::select(near, dh[n], V::mul(V::div(V::sub(cs, sg), x), V::set(0.5f * kSincInvScale)));
    }
  }
}

}  // namespace ff::cpu
