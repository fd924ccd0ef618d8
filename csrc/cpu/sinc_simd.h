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
//   general (any finite x = y / c): sin and cos by Cody-Waite reduction to [-pi/4, pi/4] (Cephes
//     polynomials), s = sin/x and s' = (cos - s)/x, and the polynomials above wherever |y| <=
//     the bound (the closed forms cancel near 0). About 3x the bounded cost.
// Accuracy on every float y in [0, kSincBound] against double (scripts/check-sinc-poly.cpp):
//   s:  |error| <= 3.4e-7; relative 1.3e-7 median, 1.3e-6 p99 (x uniform), <= 9.4e-7 for
//       |x - pi| > 0.1 and 5.6e-5 for |x - pi| > 1e-3 (near its zero s is tiny: K ~ s^p);
//   s': |error| <= 3.9e-7.
//   (Horner on the same M is as accurate but a ~32-cycle chain instead of ~17.)
#pragma once
#include <cmath>
#include "../common/sinc_poly.h"
#include "simd.h"

namespace ff::cpu {

// The constants c, P, M and Q~: csrc/common/sinc_poly.h, shared with the cuda kernels.
using ff::kSincScale, ff::kSincInvScale, ff::kSincBound, ff::kSincP, ff::kSincMr, ff::kSincMa1, ff::kSincMb1,
    ff::kSincMa2, ff::kSincMb2, ff::kSincQ5, ff::kSincQr, ff::kSincQa1, ff::kSincQb1, ff::kSincQa2, ff::kSincQb2,
    ff::kSincDScale;

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

// The evaluations are always inlined: in the kernels (simd.h run_avx2 flattens them) they
// are anyway, but where a caller is not flattened (scripts/bench-attention-kernel.cpp) GCC
// would call sinc_and_derivative once per d, with its arrays through memory.
// s = s(x) for N vectors y = c x.
template <class V, bool Bounded, int N>
[[gnu::always_inline]] inline void sinc(const typename V::T* y, typename V::T* s) {
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

// s = s(x) and dh = s'(x) / kSincDScale (= y Q~(v) on the polynomial path) for N vectors y = c x.
template <class V, bool Bounded, int N>
[[gnu::always_inline]] inline void sinc_and_derivative(const typename V::T* y, typename V::T* s, typename V::T* dh) {
  typename V::T v[N];
  for (int n = 0; n < N; ++n) v[n] = V::mul(y[n], y[n]);
  for (int n = 0; n < N; ++n) {
    s[n] = sinc_poly1<V>(v[n]);
    dh[n] = dsinc_poly1<V>(y[n], v[n]);
  }
  if constexpr (!Bounded) {
    for (int n = 0; n < N; ++n) {
      typename V::T sn, cs;
      const typename V::T x = V::mul(y[n], V::set(kSincInvScale));
      sincos_any<V>(x, sn, cs);
      const auto near = V::le(V::abs(y[n]), V::set(kSincBound));
      const typename V::T sg = V::div(sn, x);
      s[n] = V::select(near, s[n], sg);
      dh[n] = V::select(near, dh[n], V::mul(V::div(V::sub(cs, sg), x), V::set(1.0f / kSincDScale)));
    }
  }
}

}  // namespace ff::cpu
