// cuda backend: the activations and pointwise functions a transformer needs, forward and
// backward: GELU (tanh approximation and exact erf form), ReLU, exp, log, tanh. The formulas
// are csrc/common/elementwise_math.h's, shared with csrc/cpu/unary.cpp; CudaMath below is this
// backend's math policy (CUDA's accurate expf, erff, tanhf, logf).
//
// Kernels: one grid-stride loop per direction, float4 loads and stores when the pointers are
// 16-byte aligned (a scalar loop otherwise, and for the tail).
// Cost: one expf/erff/tanhf/logf or compare per element; bandwidth-bound past a few ops.
#include "launch.h"  // first: under the emulator it defines the CUDA qualifiers
#include <cstdint>
#include "../common/backend_tensor_ops.h"
#include "../common/elementwise_math.h"
#include "strided_index.h"

namespace ff::backend {
namespace {

using cuda::aligned16;
using cuda::kThreads;
using elementwise::kInvSqrt2;

struct CudaMath {
  FF_HD static float exp(float x) { return expf(x); }
  FF_HD static float log(float x) { return logf(x); }
  FF_HD static float tanh(float x) { return tanhf(x); }
  FF_HD static float normal_cdf(float x, float& gauss) {
    gauss = expf(-0.5f * x * x);
    return 0.5f * (1.0f + erff(x * kInvSqrt2));
  }
};

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
  for (unsigned i = n4 * 4 + blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) dx[i] = Op::df(saved[i], dy[i]);
}

}  // namespace

void unary_forward(UnaryOp op, const float* x, float* y, int64_t n) {
  const bool vec4 = aligned16(x) && aligned16(y);
  elementwise::with_unary_op<CudaMath>(op, [&](auto f) {
    FF_LAUNCH(forward_kernel<decltype(f)>, dim3(cuda::blocks_for(vec4 ? n / 4 + 1 : n)), dim3(kThreads), 0, x, y,
              unsigned(n), vec4);
  });
}

void unary_backward(UnaryOp op, const float* saved, const float* dy, float* dx, int64_t n) {
  const bool vec4 = aligned16(saved) && aligned16(dy) && aligned16(dx);
  elementwise::with_unary_op<CudaMath>(op, [&](auto f) {
    FF_LAUNCH(backward_kernel<decltype(f)>, dim3(cuda::blocks_for(vec4 ? n / 4 + 1 : n)), dim3(kThreads), 0, saved, dy,
              dx, unsigned(n), vec4);
  });
}

}  // namespace ff::backend
