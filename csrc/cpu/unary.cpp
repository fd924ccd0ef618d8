// cpu backend: the activations and pointwise functions a transformer needs, forward and
// backward: GELU (tanh approximation and exact erf form), ReLU, exp, log, tanh.
//
//   gelu_tanh: y = x sigmoid(2u), u = c (x + 0.044715 x^3), c = sqrt(2/pi)    (= x/2 (1 + tanh u))
//              dy/dx = s + 2 x s (1 - s) c (1 + 3 * 0.044715 x^2),  s = sigmoid(2u)
//   gelu_erf:  y = x Phi(x),  dy/dx = Phi(x) + x phi(x)
//   relu:      y = max(x, 0) (NaN stays NaN), dy/dx = [x > 0]
//   exp, tanh: derivatives from the output: y, 1 - y^2;   log: 1 / x
//
// One pass per element, branch-free, vectorised through vec_math.h (exp and tanh polynomials;
// log stays libm's); exact GELU takes Phi from one exp (normal_cdf below). Threads past kUnaryGrain elements (an exp is ~20 flops: a smaller grain
// than a plain add).
#include <cmath>
#include "../common/backend_tensor_ops.h"
#include "parallel.h"
#include "vec_math.h"

namespace ff::backend {
namespace {

constexpr int64_t kUnaryGrain = 1 << 13;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

struct GeluTanh {
  static float f(float x) {
    const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
    return x / (1.0f + cpu::exp_f(-2.0f * u));
  }
  static float df(float x, float dy) {
    const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
    const float s = 1.0f / (1.0f + cpu::exp_f(-2.0f * u));
    const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
    return dy * (s + 2.0f * x * s * (1.0f - s) * du);
  }
};

// Phi(x) and e^(-x^2/2) from one exp: Abramowitz & Stegun 7.1.26, erfc(z) = p(t) e^(-z^2) with
// t = 1 / (1 + 0.3275911 z), z = |x| / sqrt 2, |error| < 1.5e-7 (PyTorch's vectorised erf); the
// same exponential is phi(x) * sqrt(2 pi), which the backward needs.
inline float normal_cdf(float x, float& gauss) {
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

struct GeluErf {
  static float f(float x) {
    float gauss;
    return x * normal_cdf(x, gauss);
  }
  static float df(float x, float dy) {
    float gauss;
    const float cdf = normal_cdf(x, gauss);
    return dy * (cdf + x * kInvSqrt2Pi * gauss);
  }
};

struct Relu {
  static float f(float x) { return x < 0.0f ? 0.0f : x; }
  static float df(float x, float dy) { return x > 0.0f ? dy : 0.0f; }
};

struct Exp {
  static float f(float x) { return cpu::exp_f(x); }
  static float df(float y, float dy) { return dy * y; }
};

struct Log {
  static float f(float x) { return std::log(x); }
  static float df(float x, float dy) { return dy / x; }
};

struct Tanh {
  static float f(float x) { return cpu::tanh_f(x); }
  static float df(float y, float dy) { return dy * (1.0f - y * y); }
};

template <typename Op>
FF_VECTORIZE void run_forward(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = Op::f(x[i]);
}

template <typename Op>
FF_VECTORIZE void run_backward(const float* saved, const float* dy, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = Op::df(saved[i], dy[i]);
}

template <typename Op>
void forward(const float* x, float* y, int64_t n) {
  cpu::parallel_for(n, kUnaryGrain, [&](int64_t b, int64_t e) { run_forward<Op>(x + b, y + b, e - b); });
}

template <typename Op>
void backward(const float* saved, const float* dy, float* dx, int64_t n) {
  cpu::parallel_for(n, kUnaryGrain, [&](int64_t b, int64_t e) {
    run_backward<Op>(saved + b, dy + b, dx + b, e - b);
  });
}

}  // namespace

void unary_forward(UnaryOp op, const float* x, float* y, int64_t n) {
  switch (op) {
    case UnaryOp::gelu_tanh: return forward<GeluTanh>(x, y, n);
    case UnaryOp::gelu_erf: return forward<GeluErf>(x, y, n);
    case UnaryOp::relu: return forward<Relu>(x, y, n);
    case UnaryOp::exp: return forward<Exp>(x, y, n);
    case UnaryOp::log: return forward<Log>(x, y, n);
    case UnaryOp::tanh: return forward<Tanh>(x, y, n);
  }
}

void unary_backward(UnaryOp op, const float* saved, const float* dy, float* dx, int64_t n) {
  switch (op) {
    case UnaryOp::gelu_tanh: return backward<GeluTanh>(saved, dy, dx, n);
    case UnaryOp::gelu_erf: return backward<GeluErf>(saved, dy, dx, n);
    case UnaryOp::relu: return backward<Relu>(saved, dy, dx, n);
    case UnaryOp::exp: return backward<Exp>(saved, dy, dx, n);
    case UnaryOp::log: return backward<Log>(saved, dy, dx, n);
    case UnaryOp::tanh: return backward<Tanh>(saved, dy, dx, n);
  }
}

}  // namespace ff::backend
