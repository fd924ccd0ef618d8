// s(x) = sin(x)/x and s'(x) = (x cos x - sin x)/x^2 on SIMD vectors, evaluated on y = c x:
// the attention kernel stores its operands scaled by c = kSincScale, so y costs nothing extra.
//
//   bounded (|y| <= kSincBound, i.e. |x| <= 4.25): with v = y^2,
//       s = (v - P) M(v),  M a monic quintic fitted for relative error (P = c^2 pi^2: the zero
//            at x = pi factored out, so s keeps its relative accuracy up to it; an error in s is
//            multiplied by p*D in K), in Horner's form: add + 4 FMA, then sub + mul.
//            c, P and M were fitted together and rounded to float by branch-and-bound (P within
//            ~3e-9 of c^2 pi^2: the zero barely moves); M's coefficients were then searched ulp by
//            ulp for a small maximum absolute and relative error, with s(0) = 1 exactly (mean
//            signed relative error 8e-11 for |x - pi| > 0.1: no bias).
//       s' = 2 c q5 y Q~(v), Q~ = Q/q5 the monic form of a quintic Q ~ dS/dv fitted for absolute
//            error in s' (Lawson-weighted minimax), likewise in Horner's form (add + 4 FMA + mul).
//            The kernels take dh = y Q~(v) and fold 2 c q5 into a per-pair factor (kSincDScale).
//     Horner's form: both polynomials have their roots off [0, kSincBound^2], so it is as
//     accurate as a factored one (M as its real factor times two quadratics: 9 operations, a
//     ~17-cycle chain instead of ~24). Where adds share the multiply pipes (Intel) Horner's
//     fewer operations win, the loops issuing independent evaluations for several keys and
//     features: 5-15% on AVX-512 and 1-9% on AVX2 at the benchmark's shapes on Sapphire Rapids.
//     Where adds have pipes of their own (AMD Zen) both forms take 7 multiply-pipe operations
//     for s and the shorter chain may be worth more: not measured.
//     No division, no branch: the caller checks the bound once per block of keys.
//   general (any x): y reduced by c pi to |u| <= c pi / 2 and the same polynomials on u (below:
//     sinc_reduce), s = (-1)^n u P(u^2) / y and s' from cos r = s(r) + r s'(r), one reciprocal
//     and no division; lanes with |y| <= the bound take the polynomials on y (the bounded bits).
//     About 29 operations per vector forward (2.9x the bounded path's 10; the earlier general
//     path, Cephes sin and cos and two divisions, ~1.5x more). Its error, every ISA
//     (scripts/check-sinc-general.cpp, x to 2^24): |x s - sin x| <= 5.7e-7, |x (s' - ds)| <= 1.8e-6.
// Accuracy on every float y in [0, kSincBound] against double (scripts/check-sinc-poly.cpp):
//   s:  |error| <= 2.3e-7; relative <= 6.9e-7 for |x - pi| > 0.1 and 5.6e-5 for |x - pi| > 1e-3
//       (near its zero s is tiny: K ~ s^p);
//   s': |error| <= 4.2e-7.
#pragma once
#include <cmath>
#include <numbers>
#include "../common/sinc_poly.h"
#include "simd.h"

namespace ff::cpu {

// The constants c, P, M and Q~: csrc/common/sinc_poly.h, shared with the cuda kernels.
using ff::kSincScale, ff::kSincBound, ff::kSincP, ff::kSincM0, ff::kSincM1, ff::kSincM2, ff::kSincM3, ff::kSincM4,
    ff::kSincQ5, ff::kSincQ0, ff::kSincQ1, ff::kSincQ2, ff::kSincQ3, ff::kSincQ4, ff::kSincDScale;

// s = (v - P) M(v) for one vector v = y^2 (common/sinc_poly.h's sinc_poly, the same bits).
template <class V>
[[gnu::always_inline]] inline typename V::T sinc_poly1(typename V::T v) {
  using T = typename V::T;
  T m = V::add(v, V::set(kSincM4));
  m = V::fma(m, v, V::set(kSincM3));
  m = V::fma(m, v, V::set(kSincM2));
  m = V::fma(m, v, V::set(kSincM1));
  m = V::fma(m, v, V::set(kSincM0));
  return V::mul(V::sub(v, V::set(kSincP)), m);
}

// dh = y Q~(v) (s'(x) = kSincDScale dh; common/sinc_poly.h's dsinc_poly).
template <class V>
[[gnu::always_inline]] inline typename V::T dsinc_poly1(typename V::T y, typename V::T v) {
  using T = typename V::T;
  T q = V::add(v, V::set(kSincQ4));
  q = V::fma(q, v, V::set(kSincQ3));
  q = V::fma(q, v, V::set(kSincQ2));
  q = V::fma(q, v, V::set(kSincQ1));
  q = V::fma(q, v, V::set(kSincQ0));
  return V::mul(y, q);
}

// s for N vectors v, one vector after the other: each evaluation is one Horner chain, and the
// core overlaps the N independent chains by itself; issuing all N in lockstep instead needs N
// times the registers and made the compiler spill.
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
