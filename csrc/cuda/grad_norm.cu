// cuda backend: the global norm of a list of tensors and scaling them in place (clipping gradients
// by their global norm). csrc/cpu/grad_norm.cpp is the CPU twin.
//   squared_norm, version 1 (this): multi-tensor launches (multi_tensor.h); each block sums the
//   squares of its 64K-element chunk in double (block_sum of reduce.h) and writes one partial per
//   block; one final block adds the partials in a fixed order. No atomics: the same inputs give
//   the same bits. Cost: one multiply-add and 4 bytes read per element, then one 8-byte read-back.
//   scale_inplace: multi-tensor launches, x *= factor; 8 bytes of traffic per element.
#include "multi_tensor.h"
#include "reduce.h"
#include "../common/backend.h"

namespace ff::backend {
namespace {

using cuda::MultiTensorArgs;

__global__ void chunk_squares_kernel(MultiTensorArgs<1> a, double* partial, int64_t first) {
  __shared__ double scratch[32];
  int slot;
  int64_t begin, end;
  cuda::chunk_range(a, slot, begin, end);
  const float* x = a.ptr[0][slot];
  double s = 0;
  for (int64_t e = begin + threadIdx.x; e < end; e += blockDim.x) s += double(x[e]) * double(x[e]);
  s = cuda::block_sum(s, scratch);
  if (threadIdx.x == 0) partial[first + blockIdx.x] = s;
}

// One block: out[0] = sum of partial[0..n), each thread striding in a fixed order.
__global__ void sum_partials_kernel(const double* partial, int64_t n, double* out) {
  __shared__ double scratch[32];
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
  s = cuda::block_sum(s, scratch);
  if (threadIdx.x == 0) out[0] = s;
}

__global__ void scale_kernel(MultiTensorArgs<1> a, float factor) {
  int slot;
  int64_t begin, end;
  cuda::chunk_range(a, slot, begin, end);
  float* x = a.ptr[0][slot];
  for (int64_t e = begin + threadIdx.x; e < end; e += blockDim.x) x[e] *= factor;
}

}  // namespace

double squared_norm(const TensorList& tensors) {
  const int64_t chunks = cuda::total_chunks(tensors);
  if (chunks == 0) return 0.0;
  // partials, then the total, in one device buffer of doubles
  auto* partial = static_cast<double*>(alloc(size_t(chunks + 1) * sizeof(double)));
  double total = 0;
  try {
    cuda::for_each_launch<1>(&tensors, [&](const MultiTensorArgs<1>& a, int blocks, int64_t first) {
      FF_LAUNCH(chunk_squares_kernel, dim3(blocks), dim3(cuda::kMultiTensorThreads), 0, a, partial, first);
    });
    FF_LAUNCH(sum_partials_kernel, dim3(1), dim3(256), 0, partial, chunks, partial + chunks);
    // download() moves floats: the double's 8 bytes travel as two of them.
    download(reinterpret_cast<float*>(&total), reinterpret_cast<const float*>(partial + chunks), 2);
  } catch (...) {
    release(partial);
    throw;
  }
  release(partial);
  return total;
}

void scale_inplace(const TensorList& tensors, float factor) {
  cuda::for_each_launch<1>(&tensors, [&](const MultiTensorArgs<1>& a, int blocks, int64_t) {
    FF_LAUNCH(scale_kernel, dim3(blocks), dim3(cuda::kMultiTensorThreads), 0, a, factor);
  });
}

}  // namespace ff::backend
