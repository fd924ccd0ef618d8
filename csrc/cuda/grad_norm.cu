// cuda backend: the global norm of a list of tensors and scaling them in place (clipping gradients
// by their global norm). csrc/cpu/grad_norm.cpp is the CPU twin.
//   squared_norm: multi-tensor launches (multi_tensor.h); each block sums the
//   squares of its 64K-element chunk in double (block_sum of reduce.h) and writes one partial per
//   block; one final block adds the partials in a fixed order. No atomics: the same inputs give
//   the same bits. Cost: one multiply-add and 4 bytes read per element, then one 8-byte read-back.
//   scale_inplace: multi-tensor launches, x *= factor; 8 bytes of traffic per element.
//   clip_by_norm: the same sum, then a scaling launch that reads the norm from device memory:
//   nothing waits for the device.
#include "multi_tensor.h"
#include "reduce.h"
#include "../common/backend.h"
#include "../common/optim_math.h"

namespace ff::backend {
namespace {

using cuda::MultiTensorArgs;

__global__ void __launch_bounds__(cuda::kMultiTensorThreads)
    chunk_squares_kernel(MultiTensorArgs<1> a, double* partial, int64_t first) {
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

// One block: out[0] = sum of partial[0..n), each thread striding in a fixed order; and, given
// `norm`, norm[0] = sqrt(out[0]).
__global__ void sum_partials_kernel(const double* partial, int64_t n, double* out, float* norm) {
  __shared__ double scratch[32];
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
  s = cuda::block_sum(s, scratch);
  if (threadIdx.x == 0) out[0] = s;
  if (threadIdx.x == 0 && norm != nullptr) norm[0] = float(sqrt(s));
}

// x *= max_norm / (norm + 1e-6) where that factor is below 1 and the norm finite (clip_math.h).
__global__ void __launch_bounds__(cuda::kMultiTensorThreads)
    clip_kernel(MultiTensorArgs<1> a, const double* squared, double max_norm) {
  const float factor = clip_factor(sqrt(*squared), max_norm);
  if (factor == 1.0f) return;
  int slot;
  int64_t begin, end;
  cuda::chunk_range(a, slot, begin, end);
  float* x = a.ptr[0][slot];
  for (int64_t e = begin + threadIdx.x; e < end; e += blockDim.x) x[e] *= factor;
}

struct ScaleOp {
  float factor;
  __device__ void operator()(float* const* t, int64_t e) const { t[0][e] *= factor; }
};

// The partial sums of squares and their total (at partial + chunks) into `partial`, and the
// norm into `norm` when given.
void sum_squares(const TensorList& tensors, int64_t chunks, double* partial, float* norm) {
  cuda::for_each_launch<1>(&tensors, [&](const MultiTensorArgs<1>& a, int blocks, int64_t first) {
    FF_LAUNCH(chunk_squares_kernel, dim3(blocks), dim3(cuda::kMultiTensorThreads), 0, a, partial, first);
  });
  FF_LAUNCH(sum_partials_kernel, dim3(1), dim3(256), 0, partial, chunks, partial + chunks, norm);
}

}  // namespace

double squared_norm(const TensorList& tensors) {
  const int64_t chunks = cuda::total_chunks(tensors);
  if (chunks == 0) return 0.0;
  // partials, then the total, in one device buffer of doubles
  auto* partial = static_cast<double*>(alloc(size_t(chunks + 1) * sizeof(double)));
  double total = 0;
  try {
    sum_squares(tensors, chunks, partial, nullptr);
    // download() moves floats: the double's 8 bytes travel as two of them.
    download(reinterpret_cast<float*>(&total), reinterpret_cast<const float*>(partial + chunks), 2);
  } catch (...) {
    release(partial);
    throw;
  }
  release(partial);
  return total;
}

void clip_by_norm(const TensorList& tensors, double max_norm, float* norm) {
  const int64_t chunks = cuda::total_chunks(tensors);
  if (chunks == 0) {
    fill(norm, 0.0f, 1);
    return;
  }
  auto* partial = static_cast<double*>(alloc(size_t(chunks + 1) * sizeof(double)));
  try {
    sum_squares(tensors, chunks, partial, norm);
    cuda::for_each_launch<1>(&tensors, [&](const MultiTensorArgs<1>& a, int blocks, int64_t) {
      FF_LAUNCH(clip_kernel, dim3(blocks), dim3(cuda::kMultiTensorThreads), 0, a, partial + chunks, max_norm);
    });
  } catch (...) {
    release(partial);
    throw;
  }
  release(partial);  // stream-ordered reuse: later work queues after these kernels
}

void scale_inplace(const TensorList& tensors, float factor) {
  cuda::for_each_element<1>("scale_kernel", &tensors, ScaleOp{factor});
}

}  // namespace ff::backend
