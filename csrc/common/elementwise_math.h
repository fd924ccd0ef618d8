// The formulas of the elementwise tensor ops (csrc/cpu/{unary,binary}.cpp and their cuda twins),
// one definition each for both backends, and the switches from an op's enum to its formula.
//
//   gelu_tanh: y = x sigmoid(2u), u = c (x + 0.044715 x^3), c = sqrt(2/pi)    (= x/2 (1 + tanh u))
//              dy/dx = s + 2 x s (1 - s) c (1 + 3 * 0.044715 x^2),  s = sigmoid(2u)
//   gelu_erf:  y = x Phi(x),  dy/dx = Phi(x) + x phi(x)
//   relu:      y = max(x, 0) (NaN stays NaN), dy/dx = [x > 0]
//   exp, tanh: derivatives from the output: y, 1 - y^2;   log: 1 / x
//   add, sub, mul, div: a op b;   affine: alpha x + beta
//
// The unary formulas take a math policy M, the one place where the backends differ: M::exp,
// M::log, M::tanh and M::normal_cdf(x, gauss) (Phi(x), and gauss = e^(-x^2/2) = phi(x) sqrt(2 pi)
// for the backward). The cpu's evaluates exp and tanh by vectorisable polynomials and Phi by
// Abramowitz & Stegun 7.1.26 from the same exponential (csrc/cpu/unary.cpp); the cuda one is
// CUDA's expf, logf, tanhf and erff (csrc/cuda/unary.cu).
#pragma once
#include "backend_tensor_ops.h"
#include "hd.h"

namespace ff::elementwise {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

// Each unary op: f(x) forward; df(saved, dy) backward, saved = x or y as backend_tensor_ops.h says.
template <class M>
struct GeluTanh {
  FF_HD static float f(float x) {
    const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
    return x / (1.0f + M::exp(-2.0f * u));
  }
  FF_HD static float df(float x, float dy) {
    const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
    const float s = 1.0f / (1.0f + M::exp(-2.0f * u));
    const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
    return dy * (s + 2.0f * x * s * (1.0f - s) * du);
  }
};

template <class M>
struct GeluErf {
  FF_HD static float f(float x) {
    float gauss;
    return x * M::normal_cdf(x, gauss);
  }
  FF_HD static float df(float x, float dy) {
    float gauss;
    const float cdf = M::normal_cdf(x, gauss);
    return dy * (cdf + x * kInvSqrt2Pi * gauss);
  }
};

template <class M>
struct Relu {
  FF_HD static float f(float x) { return x < 0.0f ? 0.0f : x; }
  FF_HD static float df(float x, float dy) { return x > 0.0f ? dy : 0.0f; }
};

template <class M>
struct Exp {
  FF_HD static float f(float x) { return M::exp(x); }
  FF_HD static float df(float y, float dy) { return dy * y; }
};

template <class M>
struct Log {
  FF_HD static float f(float x) { return M::log(x); }
  FF_HD static float df(float x, float dy) { return dy / x; }
};

template <class M>
struct Tanh {
  FF_HD static float f(float x) { return M::tanh(x); }
  FF_HD static float df(float y, float dy) { return dy * (1.0f - y * y); }
};

// run(Op{}) with Op the formula of `op` (host code: the backends instantiate their kernels there).
template <class M, class Run>
void with_unary_op(backend::UnaryOp op, const Run& run) {
  using backend::UnaryOp;
  switch (op) {
    case UnaryOp::gelu_tanh: return run(GeluTanh<M>{});
    case UnaryOp::gelu_erf: return run(GeluErf<M>{});
    case UnaryOp::relu: return run(Relu<M>{});
    case UnaryOp::exp: return run(Exp<M>{});
    case UnaryOp::log: return run(Log<M>{});
    case UnaryOp::tanh: return run(Tanh<M>{});
  }
}

struct Add {
  FF_HD static float f(float a, float b) { return a + b; }
};
struct Sub {
  FF_HD static float f(float a, float b) { return a - b; }
};
struct Mul {
  FF_HD static float f(float a, float b) { return a * b; }
};
struct Div {
  FF_HD static float f(float a, float b) { return a / b; }
};

template <class Run>
void with_binary_op(backend::BinaryOp op, const Run& run) {
  using backend::BinaryOp;
  switch (op) {
    case BinaryOp::add: return run(Add{});
    case BinaryOp::sub: return run(Sub{});
    case BinaryOp::mul: return run(Mul{});
    case BinaryOp::div: return run(Div{});
  }
}

FF_HD float affine_f(float x, float alpha, float beta) { return alpha * x + beta; }

}  // namespace ff::elementwise
