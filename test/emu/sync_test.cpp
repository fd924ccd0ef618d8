// Block-level behaviour: built-in indices, __syncthreads and its reductions, launch checks, and
// the misuse the emulator must report instead of hanging or crashing.
#include <stdexcept>
#include <vector>
#include "cuda/launch.h"
#include "harness.h"

namespace {

using ff::test::kThreadMode;

// Every round each thread publishes a value and takes its right neighbour's: correct only if
// the barriers order the shared-memory writes and reads.
__global__ void rotate_kernel(int* out, int rounds) {
  __shared__ int s[256];
  const int t = threadIdx.x, n = blockDim.x;
  int v = t;
  for (int r = 0; r < rounds; ++r) {
    s[t] = v;
    __syncthreads();
    v = s[(t + 1) % n];
    __syncthreads();
  }
  out[blockIdx.x * n + t] = v;
}

FF_TEST(syncthreads_orders_shared_memory) {
  const int blocks = kThreadMode ? 2 : 64, n = 256, rounds = 5;
  std::vector<int> out(blocks * n, -1);
  FF_LAUNCH(rotate_kernel, dim3(blocks), dim3(n), 0, out.data(), rounds);
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < n; ++t) FF_CHECK(out[b * n + t] == (t + rounds) % n) << "block " << b << " thread " << t;
}

__global__ void index_kernel(int* out) {
  const int nthreads = blockDim.x * blockDim.y * blockDim.z;
  const int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  out[b * nthreads + t] =
      int(threadIdx.x | threadIdx.y << 4 | threadIdx.z << 8 | blockIdx.x << 12 | blockIdx.y << 16 | blockIdx.z << 20);
}

FF_TEST(builtin_indices_in_2d_and_3d) {
  const dim3 grid(3, 2, 2), block(4, 2, 3);
  std::vector<int> out(12 * 24, -1);
  FF_LAUNCH(index_kernel, grid, block, 0, out.data());
  int i = 0;
  for (unsigned bz = 0; bz < 2; ++bz)
    for (unsigned by = 0; by < 2; ++by)
      for (unsigned bx = 0; bx < 3; ++bx)
        for (unsigned z = 0; z < 3; ++z)
          for (unsigned y = 0; y < 2; ++y)
            for (unsigned x = 0; x < 4; ++x, ++i)
              FF_CHECK(out[i] == int(x | y << 4 | z << 8 | bx << 12 | by << 16 | bz << 20)) << "cell " << i;
}

__global__ void barrier_vote_kernel(int* out) {
  const int t = threadIdx.x;
  const int count = __syncthreads_count(t % 3 == 0);
  const int all = __syncthreads_and(t < 1000);
  const int none = __syncthreads_and(t != 17);
  const int any = __syncthreads_or(t == 100);
  const int nobody = __syncthreads_or(0);
  if (t == 0) {
    out[0] = count;
    out[1] = all;
    out[2] = none;
    out[3] = any;
    out[4] = nobody;
  }
}

FF_TEST(syncthreads_count_and_or) {
  std::vector<int> out(5, -1);
  FF_LAUNCH(barrier_vote_kernel, dim3(1), dim3(160), 0, out.data());
  FF_CHECK(out[0] == 54) << out[0];  // 0, 3, ..., 159
  FF_CHECK(out[1] == 1);
  FF_CHECK(out[2] == 0);
  FF_CHECK(out[3] == 1);
  FF_CHECK(out[4] == 0);
}

__global__ void early_exit_kernel(int* out) {
  if (threadIdx.x >= 32) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

FF_TEST(barrier_with_exited_threads_is_reported) {
  std::vector<int> out(64, 0);
  const std::string m =
      FF_EXPECT_ERROR(FF_LAUNCH(early_exit_kernel, dim3(2), dim3(64), 0, out.data()), "can never complete");
  FF_CHECK(m.find("cuda-emu: early_exit_kernel: block (") == 0) << m;
  FF_CHECK(m.find("sync_test.cpp:") != std::string::npos) << m;
}

__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x % 2) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

FF_TEST(divergent_barriers_are_reported) {
  std::vector<int> out(64, 0);
  FF_EXPECT_ERROR(FF_LAUNCH(divergent_barrier_kernel, dim3(1), dim3(64), 0, out.data()), "must reach the same barrier");
}

// Lanes 0-15 of warp 0 wait in a full-warp shuffle; lanes 16-31 and every other warp wait at a
// barrier: neither can complete.
__global__ void deadlock_kernel(float* out) {
  float v = 1.0f;
  if (threadIdx.x < 16) v = __shfl_sync(0xffffffffu, v, 0);
  __syncthreads();
  out[threadIdx.x] = v;
}

FF_TEST(deadlock_is_reported) {
  std::vector<float> out(64);
  const std::string m = FF_EXPECT_ERROR(FF_LAUNCH(deadlock_kernel, dim3(1), dim3(64), 0, out.data()), "deadlock");
  FF_CHECK(m.find("48 threads wait in __syncthreads") != std::string::npos) << m;
  FF_CHECK(m.find("16 threads wait in __shfl_sync(mask=0xffffffff)") != std::string::npos) << m;
  FF_CHECK(m.find("waits for lanes 16-31") != std::string::npos) << m;
}

__global__ void throwing_kernel(int* out) {
  if (threadIdx.x == 5) throw std::runtime_error("boom");
  __syncthreads();
  out[threadIdx.x] = 1;
}

FF_TEST(kernel_exceptions_are_reported) {
  std::vector<int> out(32);
  FF_EXPECT_ERROR(FF_LAUNCH(throwing_kernel, dim3(1), dim3(32), 0, out.data()), "thread (5,0,0) threw: boom");
}

__global__ void noop_kernel(int*) {}

FF_TEST(invalid_launch_configurations) {
  int x = 0;
  FF_EXPECT_ERROR(FF_LAUNCH(noop_kernel, dim3(1), dim3(2048), 0, &x), "invalid launch configuration: block (2048,1,1)");
  FF_EXPECT_ERROR(FF_LAUNCH(noop_kernel, dim3(1), dim3(1, 1, 65), 0, &x), "block (1,1,65)");
  FF_EXPECT_ERROR(FF_LAUNCH(noop_kernel, dim3(1), dim3(64, 32), 0, &x), "at most 1024 threads");
  FF_EXPECT_ERROR(FF_LAUNCH(noop_kernel, dim3(1, 70000), dim3(32), 0, &x), "invalid launch configuration: grid");
  FF_EXPECT_ERROR(ff::emu::launch(noop_kernel, dim3(0), dim3(32), 0, nullptr, &x), "none zero");
  FF_EXPECT_ERROR(FF_LAUNCH(noop_kernel, dim3(1), dim3(32), 64 << 10, &x), "raise it with cudaFuncSetAttribute");
}

FF_TEST(intrinsics_outside_a_kernel_throw) { FF_EXPECT_ERROR(__syncthreads(), "outside a kernel"); }

}  // namespace
