// The planted bugs' kernels (test/sanitize/planted.h), compiled like csrc/cuda/*.cu.
#include "../../csrc/common/backend.h"
#include "../../csrc/cuda/launch.h"
#include "planted.h"

namespace ff::planted {
namespace {

constexpr int kN = 100;  // 400 bytes in a 512-byte bucket: the read past the end is poisoned slack

__global__ void read_past_end_kernel(const float* x, float* out, int n) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = x[i + 1];  // planted: thread n-1 reads x[n]
}

template <int N>
__device__ float stage_in_shared(int i, float v) {
  __shared__ float s[N];
  s[i] = v;  // planted: thread N writes s[N]
  __syncthreads();
  return s[i % N];
}

__global__ void shared_overflow_kernel(float* out) { out[threadIdx.x] = stage_in_shared<64>(int(threadIdx.x), 1.0f); }

__global__ void missing_barrier_kernel(float* out) {
  __shared__ float s[64];
  const int t = int(threadIdx.x);
  s[t] = float(t);
  out[t] = s[(t + 1) % 64];  // planted: nothing orders thread t+1's write before this read
}

}  // namespace

void run_planted_bug(const std::string& name) {
  if (name != "heap_overflow" && name != "shared_oob" && name != "missing_syncthreads")
    throw Error("plantedBug: unknown name '" + name + "' (heap_overflow, shared_oob, missing_syncthreads)");
  float* x = static_cast<float*>(backend::alloc(kN * sizeof(float)));
  float* out = static_cast<float*>(backend::alloc(kN * sizeof(float)));
  backend::fill(x, 1.0f, kN);
  if (name == "heap_overflow") FF_LAUNCH(read_past_end_kernel, dim3(1), dim3(128), 0, x, out, kN);
  if (name == "shared_oob") FF_LAUNCH(shared_overflow_kernel, dim3(1), dim3(65), 0, out);
  if (name == "missing_syncthreads") FF_LAUNCH(missing_barrier_kernel, dim3(1), dim3(64), 0, out);
  backend::synchronize();
  backend::release(x);
  backend::release(out);
}

}  // namespace ff::planted
