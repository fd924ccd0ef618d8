// cpu backend: the activations and pointwise functions a transformer needs, forward and
// backward: GELU (tanh approximation and exact erf form), ReLU, exp, log, tanh. The formulas
// are csrc/common/elementwise_math.h's, shared with csrc/cuda/unary.cu; CpuMath below is this
// backend's math policy.
//
// One pass per element, branch-free, vectorised through vec_math.h (exp and tanh polynomials;
// log stays libm's); exact GELU takes Phi from one exp (CpuMath::normal_cdf). Threads past
// kUnaryGrain elements (an exp is ~20 flops: a smaller grain than a plain add).
#include <cmath>
#include "../common/backend_tensor_ops.h"
#include "../common/elementwise_math.h"
#include "parallel.h"
#include "vec_math.h"

namespace ff::backend {
namespace {

using elementwise::kInvSqrt2;

constexpr int64_t kUnaryGrain = 1 << 13;

// The cpu's math policy: polynomials the vectoriser takes (vec_math.h), log from libm.
struct CpuMath {
  static float exp(float x) { return cpu::exp_f(x); }
  static float log(float x) { return std::log(x); }
  static float tanh(float x) { return cpu::tanh_f(x); }
  // Phi(x) and e^(-x^2/2) from one exp: Abramowitz & Stegun 7.1.26, erfc(z) = p(t) e^(-z^2)
  // with t = 1 / (1 + 0.3275911 z), z = |x| / sqrt 2, |error| < 1.5e-7 (PyTorch's vectorised
  // erf); the same exponential is phi(x) * sqrt(2 pi), which the backward needs.
  static float normal_cdf(float x, float& gauss) {
    const float a = cpu::select(x < 0.0f, -x, x) * kInvSqrt2;
    const float t = 1.0f / (1.0f + 0.3275911f * a);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    gauss = cpu::exp_f(-0.5f * x * x);
    const float tail = 0.5f * p * t * gauss;  // Phi(-|x|)
    return cpu::select(x < 0.0f, tail, 1.0f - tail);
  }
};

template <typename Op>
FF_VECTORIZE void run_forward(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = Op::f(x[i]);
}

template <typename Op>
FF_VECTORIZE void run_backward(const float* saved, const float* dy, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = Op::df(saved[i], dy[i]);
}

}  // namespace

void unary_forward(UnaryOp op, const float* x, float* y, int64_t n) {
  elementwise::with_unary_op<CpuMath>(op, [&](auto f) {
    using Op = decltype(f);
    cpu::parallel_for(n, kUnaryGrain, [&](int64_t b, int64_t e) { run_forward<Op>(x + b, y + b, e - b); });
  });
}

void unary_backward(UnaryOp op, const float* saved, const float* dy, float* dx, int64_t n) {
  elementwise::with_unary_op<CpuMath>(op, [&](auto f) {
    using Op = decltype(f);
    cpu::parallel_for(n, kUnaryGrain,
                      [&](int64_t b, int64_t e) { run_backward<Op>(saved + b, dy + b, dx + b, e - b); });
  });
}

}  // namespace ff::backend
