// Accuracy of the cpu kernels' general-path sinc (csrc/cpu/sinc_simd.h, Bounded = false: the
// range reduction by pi and the polynomials on the remainder), on the SIMD types the build targets,
// against double: x from 2^-30 to 2^24 (every 4th float from 1/2 to 64, 2^20 log-spaced floats
// below and 2^22 above), and the floats nearest to n pi for n up to 10^5 (the zeros of s), each
// with its negative. Prints, per ISA, the largest
// |error| of sin x = x s(x) and of x s'(x) (the factors' errors relative to their scale 1 / x),
// and of s and s' themselves; the bounded path's own figures: scripts/check-sinc-poly.cpp.
//   g++ -std=c++20 -O2 -march=native -Icsrc scripts/check-sinc-general.cpp -o /tmp/check-general && /tmp/check-general
// (-march=native: the AVX2 and AVX-512 types where this CPU has them; the scalar type always).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>
#include "cpu/sinc_simd.h"
#include "sinc-reference.h"

namespace {

using ff::cpu::kSincDScale;
using ff::cpu::kSincScale;

struct Errors {
  double sin_x = 0, xds = 0, s = 0, ds = 0;
};

template <class V>
Errors measure(const std::vector<float>& ys) {
  Errors e;
  float s[V::W], dh[V::W];
  for (size_t i = 0; i + V::W <= ys.size(); i += V::W) {
    typename V::T y = V::load(ys.data() + i), sv, dv;
    ff::cpu::sinc_and_derivative<V, false, 1>(&y, &sv, &dv);
    V::store(s, sv), V::store(dh, dv);
    typename V::T s2;
    ff::cpu::sinc<V, false, 1>(&y, &s2);
    float s_only[V::W];
    V::store(s_only, s2);
    for (int l = 0; l < V::W; ++l) {
      const double x = double(ys[i + l]) / kSincScale;  // the x the kernel's y stands for
      double rs, rds;
      sinc_reference(x, rs, rds);
      const double ds = double(dh[l]) * kSincDScale;
      if (s_only[l] != s[l]) e.s = INFINITY;  // sinc and sinc_and_derivative must agree
      e.s = std::max(e.s, std::fabs(s[l] - rs));
      e.ds = std::max(e.ds, std::fabs(ds - rds));
      e.sin_x = std::max(e.sin_x, std::fabs(s[l] - rs) * std::fabs(x));
      e.xds = std::max(e.xds, std::fabs(ds - rds) * std::fabs(x));
    }
  }
  return e;
}

void print(const char* isa, const Errors& e) {
  std::printf("%-7s |x s - sin x| <= %.2e   |x (s' - ds)| <= %.2e   |s err| <= %.2e   |s' err| <= %.2e\n", isa, e.sin_x,
              e.xds, e.s, e.ds);
}

}  // namespace

int main() {
  std::vector<float> ys;
  const float c = kSincScale;
  ys.push_back(0.0f);
  for (int i = 0; i < (1 << 20); ++i)
    ys.push_back(float(std::ldexp(1.0, -30) * std::pow(2.0, 29.0 * i / (1 << 20))) * c);
  for (float x = 0.5f; x <= 64.0f;
       x = std::nextafter(std::nextafter(std::nextafter(std::nextafter(x, 1e9f), 1e9f), 1e9f), 1e9f))
    ys.push_back(x * c);
  for (int i = 0; i < (1 << 22); ++i) ys.push_back(float(64.0 * std::pow(2.0, 18.0 * i / (1 << 22))) * c);
  for (int n = 1; n <= 100000; ++n) {
    const float y = float(n * 3.14159265358979323846 * c);
    ys.push_back(std::nextafter(y, 0.0f)), ys.push_back(y), ys.push_back(std::nextafter(y, 1e30f));
  }
  const size_t n = ys.size();
  for (size_t i = 0; i < n; ++i) ys.push_back(-ys[i]);
  while (ys.size() % 16) ys.push_back(0.0f);
  std::printf("%zu values of y = c x, x in [-2^24, 2^24]\n", ys.size());
  print("scalar", measure<ff::cpu::VScalar>(ys));
#ifdef FF_CPU_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    print("avx2", [&] {
      return [&]() __attribute__((target("avx2,fma"))) { return measure<ff::cpu::VAvx2>(ys); }
      ();
    }());
  if (__builtin_cpu_supports("avx512f"))
    print("avx512", [&] {
      return [&]() __attribute__((target("avx512f,avx2,fma"))) { return measure<ff::cpu::VAvx512>(ys); }
      ();
    }());
#endif
  return 0;
}
