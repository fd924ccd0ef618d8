// s(x) = sin(x)/x and s'(x) = (x cos x - sin x)/x^2 on SIMD vectors, evaluated on y = c x:
// the attention kernel stores its operands scaled by c = kSincScale, so y costs nothing extra.
//
//   bounded (|y| <= kSincBound, i.e. |x| <= 4.25): with v = y^2,
//       s = (v - P) M(v),  M a monic quintic fitted for relative error (P = c^2 pi^2: the zero
//            at x = pi factored out, so s keeps its relative accuracy up to it; an error in s is
//            multiplied by p*D in K), evaluated in factored form over the reals:
//              M(v) = (v - m_r) [(v + ma1) v + mb1] [(v + ma2) v + mb2]
//            (its real root, outside [0, kSincBound^2], and its two complex pairs). The factors
//            are independent, so the longest dependency chain is ~17 cycles instead of Horner's
//            ~32 (Zen 2: two FMA pipes with latency 5 need ~10 independent operations in flight),
//            for the same multiply count: mul + 4 add + 2 FMA + sub + 3 mul.
//            c, P and M's coefficients were fitted together and rounded to float by branch-and-
//            bound (P within ~3e-9 of c^2 pi^2: the zero barely moves); the factors of M were
//            then rounded and searched ulp by ulp for a small maximum and mean relative error
//            with no bias (mean signed relative error 2e-9 on a grid) and s(0) = 1 exactly.
//       s' = 2 c q5 y Q~(v), Q~ = Q/q5 the monic form of a quintic Q ~ dS/dv fitted for absolute
//            error in s' (Lawson-weighted minimax), likewise factored:
//              Q~(v) = (v - q_r) [(v + qa1) v + qb1] [(v + qa2) v + qb2]
//            (4 add + 2 FMA + 2 mul). The kernels take dh = y Q~(v) and fold 2 c q5 into a
//            per-pair factor (kSincDScale).
//     No division, no branch: the caller checks the bound once per block of keys.
//   general (any x): y reduced by c pi to |u| <= c pi / 2 and the same polynomials on u (below:
//     sinc_reduce), s = (-1)^n u P(u^2) / y and s' from cos r = s(r) + r s'(r), one reciprocal
//     and no division; lanes with |y| <= the bound take the polynomials on y (the bounded bits).
//     About 31 operations per vector forward (2.6x the bounded path's 12; the earlier general
//     path, Cephes sin and cos and two divisions, ~1.5x more). Its error, every ISA
//     (scripts/check-sinc-general.cpp, x to 2^24): |x s - sin x| <= 4.6e-7, |x (s' - ds)| <= 1.4e-6.
// Accuracy on every float y in [0, kSincBound] against double (scripts/check-sinc-poly.cpp):
//   s:  |error| <= 3.4e-7; relative 1.3e-7 median, 1.3e-6 p99 (x uniform), <= 9.4e-7 for
//       |x - pi| > 0.1 and 5.6e-5 for |x - pi| > 1e-3 (near its zero s is tiny: K ~ s^p);
//   s': |error| <= 3.9e-7.
//   (Horner on the same M is as accurate but a ~32-cycle chain instead of ~17.)
#pragma once
#include <cmath>
#include <numbers>
#include "../common/sinc_poly.h"
#include "simd.h"

namespace ff::cpu {

// The constants c, P, M and Q~: csrc/common/sinc_poly.h, shared with the cuda kernels.
using ff::kSincScale, ff::kSincBound, ff::kSincP, ff::kSincMr, ff::kSincMa1, ff::kSincMb1, ff::kSincMa2, ff::kSincMb2,
    ff::kSincQ5, ff::kSincQr, ff::kSincQa1, ff::kSincQb1, ff::kSincQa2, ff::kSincQb2, ff::kSincDScale;

// s = (v - P) M(v) for one vector v = y^2.
template <class V>
[[gnu::always_inline]] inline typename V::T sinc_poly1(typename V::T v) {
  using T = typename V::T;
  const T t = V::mul(V::sub(v, V::set(kSincP)), V::sub(v, V::set(kSincMr)));
  const T g1 = V::fma(V::add(v, V::set(kSincMa1)), v, V::set(kSincMb1));
  const T g2 = V::fma(V::add(v, V::set(kSincMa2)), v, V::set(kSincMb2));
  return V::mul(t, V::mul(g1, g2));
}

// dh = y Q~(v) (s'(x) = kSincDScale dh), associated as (y (v - q_r)) (h1 h2): the last two
// multiplies wait on h1 and h2 only, so dh is ready 6 cycles sooner than from
// y (((v - q_r) h1) h2), for the same 3 multiplies.
template <class V>
[[gnu::always_inline]] inline typename V::T dsinc_poly1(typename V::T y, typename V::T v) {
  using T = typename V::T;
  const T h1 = V::fma(V::add(v, V::set(kSincQa1)), v, V::set(kSincQb1));
  const T h2 = V::fma(V::add(v, V::set(kSincQa2)), v, V::set(kSincQb2));
  return V::mul(V::mul(y, V::sub(v, V::set(kSincQr))), V::mul(h1, h2));
}

// s for N vectors v, one vector after the other: each evaluation is a short tree of
// independent operations, which the core overlaps across vectors by itself; issuing all N in
// lockstep instead needs N times the registers and made the compiler spill.
template <class V, int N>
[[gnu::always_inline]] inline void sinc_poly(const typename V::T* v, typename V::T* s) {
  for (int n = 0; n < N; ++n) s[n] = sinc_poly1<V>(v[n]);
}

// The general path's range reduction, in y = c x: n = round(y / (c pi)) and u = y - n c pi
// (|u| <= c pi / 2, inside the polynomials' bound), c pi as three floats subtracted by FMAs
// (an FMA rounds the exact y - n c pi_k once: u to ~1 ulp for |x| up to 2^20). Then
//   s(x)  = (-1)^n sin(r) / x = (-1)^n u P(u^2) / y                      (r = u / c, P = s on u)
//   s'(x) = (cos x - s(x)) / x, cos x = (-1)^n cos r, cos r = s(r) + r s'(r) = P + 2 q5 u dh(u)
// with one reciprocal of y for both. Lanes with |y| <= the bound take the polynomials on y itself
// (u = y), so they give the bounded path's bits; lanes with |x| > 2^20 (rare) are redone one by
// one in double.
constexpr double kSincCPi = double(kSincScale) * std::numbers::pi;
constexpr float kSincPiY1 = float(kSincCPi);
constexpr float kSincPiY2 = float(kSincCPi - double(kSincPiY1));
constexpr float kSincPiY3 = float(kSincCPi - double(kSincPiY1) - double(kSincPiY2));
constexpr float kSincInvPiY = float(1.0 / kSincCPi);
constexpr float kSincHuge = 1048576.0f * kSincScale;  // |x| = 2^20

template <class V>
struct SincReduced {
  typename V::T u, n, inv_y;
  typename V::M direct;
};

template <class V>
[[gnu::always_inline]] inline SincReduced<V> sinc_reduce(typename V::T y) {
  using T = typename V::T;
  SincReduced<V> r;
  r.direct = V::le(V::abs(y), V::set(kSincBound));
  r.n = V::round(V::mul(y, V::set(kSincInvPiY)));
  T u;
  if constexpr (V::W == 1) {
    u = float(double(y) - double(r.n) * kSincCPi);  // the portable path's fnma is not fused
  } else {
    u = V::fnma(r.n, V::set(kSincPiY1), y);
    u = V::fnma(r.n, V::set(kSincPiY2), u);
    u = V::fnma(r.n, V::set(kSincPiY3), u);
  }
  r.u = V::select(r.direct, y, u);
  r.inv_y = V::recip(y);
  return r;
}

// Lanes with |y| beyond kSincHuge (|x| > 2^20, NaN excluded): s and (dh) from double.
template <class V, bool Derivative>
void sinc_huge_lanes(typename V::T y, typename V::T& s, typename V::T* dh) {
  float ys[V::W], ss[V::W], ds[V::W];
  V::store(ys, y), V::store(ss, s);
  if constexpr (Derivative) V::store(ds, *dh);
  for (int l = 0; l < V::W; ++l) {
    if (!(std::fabs(ys[l]) > kSincHuge)) continue;
    const double x = double(ys[l]) / double(kSincScale), sx = std::sin(x) / x;
    ss[l] = float(sx);
    if constexpr (Derivative) ds[l] = float((std::cos(x) - sx) / x / double(kSincDScale));
  }
  s = V::load(ss);
  if constexpr (Derivative) *dh = V::load(ds);
}

// The evaluations are always inlined: in the kernels (simd.h run_avx2 flattens them) they
// are anyway, but where a caller is not flattened (scripts/bench-attention-kernel.cpp) GCC
// would call sinc_and_derivative once per d, with its arrays through memory.
// s = s(x) for N vectors y = c x.
template <class V, bool Bounded, int N>
[[gnu::always_inline]] inline void sinc(const typename V::T* y, typename V::T* s) {
  using T = typename V::T;
  if constexpr (Bounded) {
    T v[N];
    for (int n = 0; n < N; ++n) v[n] = V::mul(y[n], y[n]);
    sinc_poly<V, N>(v, s);
  } else {
    for (int n = 0; n < N; ++n) {
      const SincReduced<V> r = sinc_reduce<V>(y[n]);
      const T p = sinc_poly1<V>(V::mul(r.u, r.u));
      s[n] = V::select(r.direct, p, V::mul(V::flip_odd(V::mul(r.u, p), r.n), r.inv_y));
      if (V::any(V::lt(V::set(kSincHuge), V::abs(y[n])))) sinc_huge_lanes<V, false>(y[n], s[n], nullptr);
    }
  }
}

// s = s(x) and dh = s'(x) / kSincDScale (= y Q~(v) on the polynomial path) for N vectors y = c x.
template <class V, bool Bounded, int N>
[[gnu::always_inline]] inline void sinc_and_derivative(const typename V::T* y, typename V::T* s, typename V::T* dh) {
  using T = typename V::T;
  if constexpr (Bounded) {
    T v[N];
    for (int n = 0; n < N; ++n) v[n] = V::mul(y[n], y[n]);
    for (int n = 0; n < N; ++n) {
      s[n] = sinc_poly1<V>(v[n]);
      dh[n] = dsinc_poly1<V>(y[n], v[n]);
    }
  } else {
    for (int n = 0; n < N; ++n) {
      const SincReduced<V> r = sinc_reduce<V>(y[n]);
      const T v = V::mul(r.u, r.u), p = sinc_poly1<V>(v), dp = dsinc_poly1<V>(r.u, v);
      const T sg = V::mul(V::flip_odd(V::mul(r.u, p), r.n), r.inv_y);
      const T cos_r = V::fma(V::mul(r.u, V::set(2.0f * kSincQ5)), dp, p);
      const T dg = V::mul(V::sub(V::flip_odd(cos_r, r.n), sg), V::mul(r.inv_y, V::set(kSincScale / kSincDScale)));
      s[n] = V::select(r.direct, p, sg);
      dh[n] = V::select(r.direct, dp, dg);
      if (V::any(V::lt(V::set(kSincHuge), V::abs(y[n])))) sinc_huge_lanes<V, true>(y[n], s[n], &dh[n]);
    }
  }
}

}  // namespace ff::cpu
