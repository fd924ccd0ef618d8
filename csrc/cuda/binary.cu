// cuda backend: broadcast arithmetic out = a op b (add, sub, mul, div) and affine
// out = alpha x + beta (scale, addScalar, neg); the formulas are csrc/common/elementwise_math.h's,
// shared with csrc/cpu/binary.cpp.
//
// Kernels:
//   binary_vec4    same shapes (the canonical space is one contiguous dim): float4 loads and
//                  stores when the three pointers are 16-byte aligned, grid-stride.
//   binary_strided any broadcast (a bias add [M, F] + [F] is 2 dims: one division per element),
//                  the offsets decoded from the flat output index; writes stay coalesced.
//   affine_kernel  float4 grid-stride when aligned, a scalar loop for the rest.
// Cost: one op per element; bandwidth-bound (12 bytes per element, less when broadcast).
#include "launch.h"  // first: under the emulator it defines the CUDA qualifiers
#include <cstdint>
#include "../common/backend_tensor_ops.h"
#include "../common/elementwise_math.h"
#include "strided_index.h"

namespace ff::backend {
namespace {

using cuda::aligned16;
using cuda::Dims32;
using cuda::kThreads;
using elementwise::affine_f;

template <typename Op>
__global__ void binary_vec4(const float* a, const float* b, float* out, unsigned n) {
  const unsigned n4 = n / 4, stride = gridDim.x * blockDim.x;
  const float4* a4 = reinterpret_cast<const float4*>(a);
  const float4* b4 = reinterpret_cast<const float4*>(b);
  float4* o4 = reinterpret_cast<float4*>(out);
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += stride) {
    const float4 x = a4[i], y = b4[i];
    o4[i] = make_float4(Op::f(x.x, y.x), Op::f(x.y, y.y), Op::f(x.z, y.z), Op::f(x.w, y.w));
  }
  for (unsigned i = n4 * 4 + blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = Op::f(a[i], b[i]);
}

template <typename Op>
__global__ void binary_strided(Dims32 s, const float* a, const float* b, float* out, unsigned n) {
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    unsigned oa, ob;
    cuda::offsets(s, i, oa, ob);
    out[i] = Op::f(a[oa], b[ob]);
  }
}

// vec4: whether the float4 loop runs (both pointers aligned); the scalar loop takes the rest.
__global__ void affine_kernel(const float* x, float alpha, float beta, float* out, unsigned n, bool vec4) {
  const unsigned stride = gridDim.x * blockDim.x;
  const unsigned n4 = vec4 ? n / 4 : 0;
  const float4* x4 = reinterpret_cast<const float4*>(x);
  float4* o4 = reinterpret_cast<float4*>(out);
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += stride) {
    const float4 v = x4[i];
    o4[i] = make_float4(affine_f(v.x, alpha, beta), affine_f(v.y, alpha, beta), affine_f(v.z, alpha, beta),
                        affine_f(v.w, alpha, beta));
  }
  for (unsigned i = n4 * 4 + blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = affine_f(x[i], alpha, beta);
}

template <typename Op>
void binary_op(const Strided& s, const float* a, const float* b, float* out) {
  const unsigned n = unsigned(s.numel());
  const bool same_shape = s.ndim == 1 && s.stride[0][0] == 1 && s.stride[1][0] == 1;
  if (same_shape && aligned16(a) && aligned16(b) && aligned16(out))
    FF_LAUNCH(binary_vec4<Op>, dim3(cuda::blocks_for(n / 4 + 1)), dim3(kThreads), 0, a, b, out, n);
  else
    FF_LAUNCH(binary_strided<Op>, dim3(cuda::blocks_for(n)), dim3(kThreads), 0, cuda::dims32(s), a, b, out, n);
}

}  // namespace

void binary(BinaryOp op, const Strided& s, const float* a, const float* b, float* out) {
  elementwise::with_binary_op(op, [&](auto f) { binary_op<decltype(f)>(s, a, b, out); });
}

void affine(const float* x, float alpha, float beta, float* out, int64_t n) {
  const bool vec4 = aligned16(x) && aligned16(out);
  FF_LAUNCH(affine_kernel, dim3(cuda::blocks_for(vec4 ? n / 4 + 1 : n)), dim3(kThreads), 0, x, alpha, beta, out,
            unsigned(n), vec4);
}

}  // namespace ff::backend
