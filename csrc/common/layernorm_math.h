// The LayerNorm backward's per-element math, shared by the cpu and cuda kernels:
//   g = dy gamma,  dx = rstd (g - mean(g) - xhat mean(g xhat)),  xhat = (x - mean) rstd.
// g, the row means and the bracket are kept in double. In float, dy gamma is subnormal below
// ~1e-38 (dy 1e-10 and gamma 1e-29) and keeps only a few bits, and the bracket cancels to
// ~eps / (var + eps) of g in a row of two distinct values, so those few bits were the result;
// in double dy gamma is exact (48 bits, no underflow above ~1e-90) and the bracket keeps its
// bits until the one rounding to float at the end. Cost: ~7 double operations per element.
#pragma once
#include "hd.h"

namespace ff {

FF_HD double layernorm_g(float dy, float gamma) { return double(dy) * double(gamma); }

// dx from g, xhat (as the kernel computed it in float) and the row means of g and g xhat.
FF_HD float layernorm_dx(double g, float xhat, double mean_g, double mean_gx, float rstd) {
  return float(double(rstd) * (g - mean_g - double(xhat) * mean_gx));
}

}  // namespace ff
