// cuda backend: the activations and pointwise functions a transformer needs, forward and
// backward: GELU (tanh approximation and exact erf form), ReLU, exp, log, tanh. The formulas
// are those of csrc/cpu/unary.cpp, with CUDA's accurate expf/erff/tanhf/logf.
//
// Kernels: one grid-stride loop per direction, float4 loads and stores when the pointers are
// 16-byte aligned (a scalar loop otherwise, and for the tail).
// Cost: one expf/erff/tanhf/logf or compare per element; bandwidth-bound past a few ops.
#include "launch.h"  // first: under the emulator it defines the CUDA qualifiers
#include <cstdint>
#include "../common/backend_tensor_ops.h"
#include "strided_index.h"

namespace ff::backend {
namespace {

using cuda::kThreads;

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

struct GeluTanh {
  __device__ static float f(float x) {
    const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
    return x / (1.0f + expf(-2.0f * u));
  }
  __device__ static float df(float x, float dy) {
    const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
    const float s = 1.0f / (1.0f + expf(-2.0f * u));
    const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
    return dy * (s + 2.0f * x * s * (1.0f - s) * du);
  }
};

struct GeluErf {
  __device__ static float f(float x) { return 0.5f * x * (1.0f + erff(x * kInvSqrt2)); }
  __device__ static float df(float x, float dy) {
    const float cdf = 0.5f * (1.0f + erff(x * kInvSqrt2));
    return dy * (cdf + x * kInvSqrt2Pi * expf(-0.5f * x * x));
  }
};

struct Relu {
  __device__ static float f(float x) { return x < 0.0f ? 0.0f : x; }
  __device__ static float df(float x, float dy) { return x > 0.0f ? dy : 0.0f; }
};

struct Exp {
  __device__ static float f(float x) { return expf(x); }
  __device__ static float df(float y, float dy) { return dy * y; }
};

struct Log {
  __device__ static float f(float x) { return logf(x); }
  __device__ static float df(float x, float dy) { return dy / x; }
};

struct Tanh {
  __device__ static float f(float x) { return tanhf(x); }
  __device__ static float df(float y, float dy) { return dy * (1.0f - y * y); }
};

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// vec4: whether the float4 loop runs (all pointers aligned); the scalar loop takes the rest.
template <typename Op>
__global__ void forward_kernel(const float* x, float* y, unsigned n, bool vec4) {
  const unsigned stride = gridDim.x * blockDim.x;
  const unsigned n4 = vec4 ? n / 4 : 0;
  const float4* x4 = reinterpret_cast<const float4*>(x);
  float4* y4 = reinterpret_cast<float4*>(y);
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += stride) {
    const float4 v = x4[i];
    y4[i] = make_float4(Op::f(v.x), Op::f(v.y), Op::f(v.z), Op::f(v.w));
  }
  for (unsigned i = n4 * 4 + blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) y[i] = Op::f(x[i]);
}

template <typename Op>
__global__ void backward_kernel(const float* saved, const float* dy, float* dx, unsigned n, bool vec4) {
  const unsigned stride = gridDim.x * blockDim.x;
  const unsigned n4 = vec4 ? n / 4 : 0;
  const float4* s4 = reinterpret_cast<const float4*>(saved);
  const float4* g4 = reinterpret_cast<const float4*>(dy);
  float4* d4 = reinterpret_cast<float4*>(dx);
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += stride) {
    const float4 s = s4[i], g = g4[i];
    d4[i] = make_float4(Op::df(s.x, g.x), Op::df(s.y, g.y), Op::df(s.z, g.z), Op::df(s.w, g.w));
  }
  for (unsigned i = n4 * 4 + blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    dx[i] = Op::df(saved[i], dy[i]);
}

template <typename Op>
void forward(const float* x, float* y, int64_t n) {
  const bool vec4 = aligned16(x) && aligned16(y);
  FF_LAUNCH(forward_kernel<Op>, dim3(cuda::blocks_for(vec4 ? n / 4 + 1 : n)), dim3(kThreads), 0, x, y,
            unsigned(n), vec4);
}

template <typename Op>
void backward(const float* saved, const float* dy, float* dx, int64_t n) {
  const bool vec4 = aligned16(saved) && aligned16(dy) && aligned16(dx);
  FF_LAUNCH(backward_kernel<Op>, dim3(cuda::blocks_for(vec4 ? n / 4 + 1 : n)), dim3(kThreads), 0, saved, dy,
            dx, unsigned(n), vec4);
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
