// The index spaces of the tensor ops (csrc/common/strided.h) as kernels read them: 32-bit,
// right-aligned in kMaxDims slots so that every loop over dims unrolls with constant indices
// (no local-memory copy of the parameter struct). Tensors hold fewer than 2^31 elements, so
// every index and offset fits in 32 bits, and a grid-stride index + stride cannot wrap.
#pragma once
#include <cstdint>
#include "../common/strided.h"
#include "launch.h"

namespace ff::cuda {

constexpr int kThreads = 256;
constexpr unsigned kMaxBlocks = 1024;  // grid-stride loops: ~2 waves of 256-thread blocks on an H100

// Whether p may be read and written as float4 (16-byte aligned).
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Blocks for `tasks` grid-stride tasks of one thread each.
inline unsigned blocks_for(int64_t tasks) {
  const int64_t b = (tasks + kThreads - 1) / kThreads;
  return unsigned(b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b));
}

// Dims [first, kMaxDims) are used; slot d has a size and a stride per operand. The outermost
// dim's strides are also kept apart (outer0, outer1): it needs no division, and reading it
// from a slot chosen at run time would copy the struct to local memory.
struct Dims32 {
  int first = kMaxDims - 1;
  unsigned size[kMaxDims] = {1, 1, 1, 1, 1, 1};
  unsigned stride0[kMaxDims] = {};
  unsigned stride1[kMaxDims] = {};
  unsigned outer0 = 0, outer1 = 0;
};

inline Dims32 dims32(const Strided& s) {
  Dims32 d;
  d.first = kMaxDims - s.ndim;
  for (int k = 0; k < s.ndim; ++k) {
    d.size[d.first + k] = unsigned(s.size[k]);
    d.stride0[d.first + k] = unsigned(s.stride[0][k]);
    d.stride1[d.first + k] = unsigned(s.stride[1][k]);
  }
  d.outer0 = d.stride0[d.first];
  d.outer1 = d.stride1[d.first];
  return d;
}

// One operand's dims (size, stride) as Dims32 (n = 0: a single element).
inline Dims32 dims32(const int64_t* size, const int64_t* stride, int n) {
  Strided s;
  s.ndim = n == 0 ? 1 : n;
  for (int k = 0; k < n; ++k) {
    s.size[k] = size[k];
    s.stride[0][k] = stride[k];
    s.stride[1][k] = 0;
  }
  return dims32(s);
}

// The offsets of flat index i in both operands.
__device__ inline void offsets(const Dims32& s, unsigned i, unsigned& o0, unsigned& o1) {
  o0 = 0;
  o1 = 0;
#pragma unroll
  for (int d = kMaxDims - 1; d > 0; --d) {
    if (d > s.first) {
      const unsigned q = i / s.size[d], r = i - q * s.size[d];
      o0 += r * s.stride0[d];
      o1 += r * s.stride1[d];
      i = q;
    }
  }
  o0 += i * s.outer0;
  o1 += i * s.outer1;
}

__device__ inline unsigned offset0(const Dims32& s, unsigned i) {
  unsigned o0, o1;
  offsets(s, i, o0, o1);
  return o0;
}

}  // namespace ff::cuda
