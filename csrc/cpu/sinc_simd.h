// s(x) = sin(x)/x and s'(x) = (x cos x - sin x)/x^2 on SIMD vectors, two ways:
//
//   bounded (|x| <= kSincPolyBound = 4.25): polynomials in u = x^2, fitted for relative error
//     (Lawson-weighted minimax, coefficients rounded to float one at a time, each refit after
//     the previous rounding), evaluated by Horner with FMA:
//       s  = (pi^2 - u) * (t0 + t1 u + ... + t5 u^5)   the zero at x = pi factored out, so s
//            keeps its relative accuracy up to it (an error in s is multiplied by p*D in K):
//            |error| <= 2.7e-7, relative 1.4e-7 median / 4.5e-7 p99; s(0) = 1 exactly
//       s' = x * (d0 + d1 u + ... + d5 u^5)            |error| <= 6.8e-7 (|s'| <= 0.44)
//     cost: mul + sub + 5 FMA + mul for s, 5 FMA + mul more for s'. No division, no branch:
//     the caller checks the bound once per tile of keys.
//   general (any finite x): sin and cos by Cody-Waite reduction to [-pi/4, pi/4] (Cephes
//     polynomials), s = sin/x and s' = (cos - s)/x, and the polynomials above wherever
//     |x| <= the bound (the closed forms cancel near 0). About 3x the bounded cost; same error.
// Both take N vectors at once and issue each Horner step for all N before the next: N
// independent FMA chains, which a core with 4-5 cycle FMA latency needs to stay busy.
#pragma once
#include <cmath>
#include "simd.h"

namespace ff::cpu {

constexpr float kSincPolyBound = 4.25f;

constexpr float kT[6] = {0.101321191f, -0.00662084576f, 0.00017347977f, -2.51666165e-06f, 2.28164563e-08f,
                         -1.17131332e-10f};  // 9.86960411f * kT[0] == 1.0f exactly
constexpr float kPi2 = 9.86960411f;
constexpr float kQ[6] = {-0.333332837f, 0.0333319642f, -0.00118979439f, 2.19129888e-05f, -2.38189699e-07f,
                         1.3690119e-09f};

// s = (pi^2 - u) T(u) for N vectors u = x^2.
template <class V, int N>
void sinc_poly(const typename V::T* u, typename V::T* s) {
  typename V::T r[N];
  for (int n = 0; n < N; ++n) r[n] = V::fma(u[n], V::set(kT[5]), V::set(kT[4]));
  for (int c = 3; c >= 0; --c)
    for (int n = 0; n < N; ++n) r[n] = V::fma(u[n], r[n], V::set(kT[c]));
  for (int n = 0; n < N; ++n) s[n] = V::mul(V::sub(V::set(kPi2), u[n]), r[n]);
}

// s as above and ds = x Q(u), the two Horner chains interleaved.
template <class V, int N>
void sinc_dsinc_poly(const typename V::T* x, const typename V::T* u, typename V::T* s, typename V::T* ds) {
  typename V::T r[N], q[N];
  for (int n = 0; n < N; ++n) {
    r[n] = V::fma(u[n], V::set(kT[5]), V::set(kT[4]));
    q[n] = V::fma(u[n], V::set(kQ[5]), V::set(kQ[4]));
  }
  for (int c = 3; c >= 0; --c)
    for (int n = 0; n < N; ++n) {
      r[n] = V::fma(u[n], r[n], V::set(kT[c]));
      q[n] = V::fma(u[n], q[n], V::set(kQ[c]));
    }
  for (int n = 0; n < N; ++n) {
    s[n] = V::mul(V::sub(V::set(kPi2), u[n]), r[n]);
    ds[n] = V::mul(x[n], q[n]);
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

// s = s(x) for N vectors x.
template <class V, bool Bounded, int N>
void sinc(const typename V::T* x, typename V::T* s) {
  typename V::T u[N];
  for (int n = 0; n < N; ++n) u[n] = V::mul(x[n], x[n]);
  sinc_poly<V, N>(u, s);
  if constexpr (!Bounded) {
    for (int n = 0; n < N; ++n) {
      typename V::T sn, cs;
      sincos_any<V>(x[n], sn, cs);
      s[n] = V::select(V::le(V::abs(x[n]), V::set(kSincPolyBound)), s[n], V::div(sn, x[n]));
    }
  }
}

// s = s(x) and ds = s'(x) for N vectors x.
template <class V, bool Bounded, int N>
void sinc_and_derivative(const typename V::T* x, typename V::T* s, typename V::T* ds) {
  typename V::T u[N];
  for (int n = 0; n < N; ++n) u[n] = V::mul(x[n], x[n]);
  sinc_dsinc_poly<V, N>(x, u, s, ds);
  if constexpr (!Bounded) {
    for (int n = 0; n < N; ++n) {
      typename V::T sn, cs;
      sincos_any<V>(x[n], sn, cs);
      const auto near = V::le(V::abs(x[n]), V::set(kSincPolyBound));
      const typename V::T sg = V::div(sn, x[n]);
      s[n] = V::select(near, s[n], sg);
      ds[n] = V::select(near, ds[n], V::div(V::sub(cs, sg), x[n]));
    }
  }
}

}  // namespace ff::cpu
