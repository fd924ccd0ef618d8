// Accuracy of the cpu kernels' polynomial sinc (csrc/cpu/sinc_simd.h), exhaustively: every float
// y in [0, kSincBound] (x = y / c in [0, 4.25]) through the AVX2 code the attention kernel runs,
// against double precision. Prints the maxima over all floats and the median / p99 of the
// relative error of s for x uniform on [0, 4.25].
//   g++ -std=c++20 -O2 -mavx2 -mfma -Icsrc scripts/check-sinc-poly.cpp -o /tmp/check-sinc && /tmp/check-sinc
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>
#include "cpu/sinc_simd.h"
#include "sinc-reference.h"

using ff::cpu::VAvx2;
using T = VAvx2::T;

int main() {
  const double c = ff::cpu::kSincScale, pi = 3.14159265358979323846;
  uint32_t last;
  std::memcpy(&last, &ff::cpu::kSincBound, 4);
  double abs_s = 0, abs_ds = 0, rel_far = 0, rel_near = 0, at_abs = 0, at_ds = 0;
  std::vector<double> uniform;  // relative error of s at x uniform on [0, 4.25]
  const double step = 4.25 / 2e6;
  double next_x = 0;
  for (uint32_t b0 = 0; b0 <= last; b0 += 8) {
    alignas(32) float y[8], s[8], dh[8];
    for (int l = 0; l < 8; ++l) {
      const uint32_t b = std::min(b0 + l, last);
      std::memcpy(&y[l], &b, 4);
    }
    T yv = VAvx2::load(y), sv, dv;
    ff::cpu::sinc_and_derivative<VAvx2, true, 1>(&yv, &sv, &dv);
    VAvx2::store(s, sv), VAvx2::store(dh, dv);
    for (int l = 0; l < 8; ++l) {
      const double x = double(y[l]) / c;
      double rs, rds;
      sinc_reference(x, rs, rds);
      const double es = std::fabs(s[l] - rs), eds = std::fabs(double(ff::cpu::kSincDScale) * dh[l] - rds);
      if (es > abs_s) abs_s = es, at_abs = x;
      if (eds > abs_ds) abs_ds = eds, at_ds = x;
      const double rel = es / std::fabs(rs);
      if (std::fabs(x - pi) > 1e-3) rel_near = std::max(rel_near, rel);
      if (std::fabs(x - pi) > 0.1) rel_far = std::max(rel_far, rel);
      if (x >= next_x) uniform.push_back(rel), next_x += step;
    }
  }
  std::sort(uniform.begin(), uniform.end());
  std::printf(
      "s  = sin(x)/x : max |error| %.3g (x = %.4f); max relative %.3g (|x - pi| > 1e-3), %.3g (|x - pi| > 0.1)\n",
      abs_s, at_abs, rel_near, rel_far);
  std::printf("                relative, x uniform on [0, 4.25]: median %.3g, p99 %.3g\n", uniform[uniform.size() / 2],
              uniform[uniform.size() * 99 / 100]);
  std::printf("s' = (x cos x - sin x)/x^2 : max |error| %.3g (x = %.4f)\n", abs_ds, at_ds);
  return 0;
}
