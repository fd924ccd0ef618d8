// Planted bugs that the sanitizer builds must catch (scripts/emu-sanitize.sh runs each by name
// and expects it to fail with the sanitizer's report). They run only when named.
#include <vector>
#include "cuda/launch.h"
#include "harness.h"

namespace {

// A static __shared__ array in a template function: ASan does not see overflows of it (it is
// thread_local under the emulator); -fsanitize=bounds does.
template <int N>
__device__ void stage(float* out, int i, float v) {
  __shared__ float s[N];
  s[i] = v;
  __syncthreads();
  out[i] = s[i];
}

__global__ void shared_overflow_kernel(float* out) { stage<64>(out, threadIdx.x, 1.0f); }

FF_PLANTED(planted_shared_oob) {
  std::vector<float> out(65);
  FF_LAUNCH(shared_overflow_kernel, dim3(1), dim3(65), 0, out.data());  // thread 64 writes s[64]
}

__global__ void dynamic_overflow_kernel(float* out, int n) {
  float* s = ff::cuda::dynamic_shared<float>();
  s[threadIdx.x] = 1.0f;  // n floats were asked for, blockDim.x > n threads write
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x % n];
}

FF_PLANTED(planted_dynamic_shared_oob) {
  std::vector<float> out(40);
  FF_LAUNCH(dynamic_overflow_kernel, dim3(1), dim3(40), 32 * sizeof(float), out.data(), 32);
}

// Each thread reads its neighbour's shared-memory slot without a __syncthreads after the writes.
__global__ void missing_barrier_kernel(int* out) {
  __shared__ int s[64];
  const int t = threadIdx.x;
  s[t] = t;
  out[t] = s[(t + 1) % 64];  // a race: nothing orders thread t+1's write before this read
}

FF_PLANTED(planted_missing_syncthreads) {
  std::vector<int> out(64);
  FF_LAUNCH(missing_barrier_kernel, dim3(1), dim3(64), 0, out.data());
}

}  // namespace
