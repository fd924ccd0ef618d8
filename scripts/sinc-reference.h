// s(x) = sin(x)/x and s'(x) = (x cos x - sin x)/x^2 in double, the reference of the standalone
// sinc accuracy checks (scripts/check-sinc-poly.cpp, scripts/check-sinc-general.cpp): for
// |x| < 0.5 by their series (no cancellation), else from std::sin and std::cos.
#pragma once
#include <cmath>

inline void sinc_reference(double x, double& s, double& ds) {
  if (std::fabs(x) < 0.5) {
    double x2 = x * x, term = 1.0, ss = 1.0, dd = 0.0;
    for (int k = 1; k < 20; ++k) {
      term *= -x2 / ((2.0 * k) * (2.0 * k + 1.0));
      ss += term;
      dd += 2.0 * k * term;
    }
    s = ss, ds = x == 0.0 ? 0.0 : dd / x;
  } else {
    s = std::sin(x) / x;
    ds = (x * std::cos(x) - std::sin(x)) / (x * x);
  }
}
