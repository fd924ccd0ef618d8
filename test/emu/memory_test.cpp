// Memory as kernels see it: atomics from many blocks (run concurrently on the worker threads),
// static and dynamic shared memory and their limits, and the cuda backend's caching allocator.
#include <cmath>
#include <cstdint>
#include <vector>
#include "common/backend.h"
#include "cuda/launch.h"
#include "harness.h"

namespace {

using ff::test::kThreadMode;

struct Counters {
  int i = 0;
  unsigned u = 0;
  float f = 0;
  double d = 0;
  unsigned long long ull = 0;
  int max = -1;
  int min = 1;
  unsigned cas = 0;
  int exch = -1;
  unsigned bits = 0;
};

__global__ void atomics_kernel(Counters* c, int* histogram) {
  __shared__ int local[8];
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (threadIdx.x < 8) local[threadIdx.x] = 0;
  __syncthreads();
  atomicAdd(&local[t % 8], 1);
  atomicAdd(&c->i, 1);
  atomicAdd(&c->u, 2u);
  atomicAdd(&c->f, 0.5f);
  atomicAdd(&c->d, 0.25);
  atomicAdd(&c->ull, 3ull);
  atomicMax(&c->max, t);
  atomicMin(&c->min, -t);
  unsigned old = atomicAdd(&c->cas, 0u), seen;
  do {
    seen = old;
    old = atomicCAS(&c->cas, seen, seen + 1);
  } while (old != seen);
  atomicExch(&c->exch, 7);
  atomicOr(&c->bits, 1u << (t % 32));
  __syncthreads();
  if (threadIdx.x < 8) atomicAdd(&histogram[threadIdx.x], local[threadIdx.x]);
}

FF_TEST(atomics_from_many_blocks) {
  const int blocks = kThreadMode ? 4 : 200, threads = 128, n = blocks * threads;
  Counters c;
  std::vector<int> histogram(8, 0);
  FF_LAUNCH(atomics_kernel, dim3(blocks), dim3(threads), 0, &c, histogram.data());
  FF_CHECK(c.i == n) << c.i;
  FF_CHECK(c.u == 2u * n);
  FF_CHECK(c.f == 0.5f * n) << c.f;  // exact: every partial sum is a multiple of 0.5 below 2^24
  FF_CHECK(c.d == 0.25 * n);
  FF_CHECK(c.ull == 3ull * n);
  FF_CHECK(c.max == n - 1 && c.min == -(n - 1));
  FF_CHECK(c.cas == unsigned(n));
  FF_CHECK(c.exch == 7);
  FF_CHECK(c.bits == 0xffffffffu);
  for (int b = 0; b < 8; ++b) FF_CHECK(histogram[b] == n / 8) << "bin " << b;
}

// Blocks running at the same time on different worker threads must not share __shared__.
template <int N>
__global__ void static_shared_kernel(int* out) {
  __shared__ int s[N];
  const int t = threadIdx.x;
  s[t] = int(blockIdx.x) * 1000 + t;
  __syncthreads();
  out[blockIdx.x * N + t] = s[N - 1 - t];
}

FF_TEST(static_shared_memory_is_per_block) {
  const int blocks = kThreadMode ? 3 : 300;
  std::vector<int> out(blocks * 128);
  FF_LAUNCH(static_shared_kernel<128>, dim3(blocks), dim3(128), 0, out.data());
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < 128; ++t) FF_CHECK(out[b * 128 + t] == b * 1000 + 127 - t) << b << "," << t;
  std::vector<int> small(blocks * 32);
  FF_LAUNCH(static_shared_kernel<32>, dim3(blocks), dim3(32), 0, small.data());
  for (int b = 0; b < blocks; ++b) FF_CHECK(small[b * 32] == b * 1000 + 31);
}

__global__ void dynamic_shared_kernel(float* out, int n, int* aligned) {
  float* s = ff::cuda::dynamic_shared<float>();
  if (threadIdx.x == 0) {
    out[blockIdx.x * (n + 1) + n] = s[n - 1];  // read before any write: the emulator's NaN fill
    *aligned = (reinterpret_cast<uintptr_t>(s) % 16) == 0;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x) s[i] = float(blockIdx.x + i);
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x) out[blockIdx.x * (n + 1) + i] = s[n - 1 - i];
}

FF_TEST(dynamic_shared_memory) {
  const int blocks = kThreadMode ? 2 : 40, n = 3000;
  std::vector<float> out(blocks * (n + 1));
  int aligned = 0;
  FF_LAUNCH(dynamic_shared_kernel, dim3(blocks), dim3(64), n * sizeof(float), out.data(), n, &aligned);
  FF_CHECK(aligned == 1);
  for (int b = 0; b < blocks; ++b) {
    FF_CHECK(std::isnan(out[b * (n + 1) + n])) << "block " << b << " saw " << out[b * (n + 1) + n];
    for (int i = 0; i < n; ++i) FF_CHECK(out[b * (n + 1) + i] == float(b + n - 1 - i)) << b << "," << i;
  }
}

FF_TEST(dynamic_shared_memory_limits) {
  const int n = 30000;  // 120,000 bytes: more than the default 48 KiB
  std::vector<float> out(n + 1);
  int aligned = 0;
  FF_EXPECT_ERROR(FF_LAUNCH(dynamic_shared_kernel, dim3(1), dim3(64), n * sizeof(float), out.data(), n, &aligned),
                  "more than the kernel's maximum of 49152");
  FF_CHECK(cudaFuncSetAttribute(dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 << 10) ==
           cudaErrorInvalidValue);
  FF_CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  FF_CHECK(cudaFuncSetAttribute(dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                n * sizeof(float)) == cudaSuccess);
  FF_LAUNCH(dynamic_shared_kernel, dim3(1), dim3(64), n * sizeof(float), out.data(), n, &aligned);
  FF_CHECK(out[0] == float(n - 1));
}

FF_TEST(device_queries) {
  int count = 0;
  FF_CHECK(cudaGetDeviceCount(&count) == cudaSuccess && count == 1);
  cudaDeviceProp p;
  FF_CHECK(cudaGetDeviceProperties(&p, 0) == cudaSuccess);
  FF_CHECK(p.major == 8 && p.warpSize == 32 && p.maxThreadsPerBlock == 1024);
  FF_CHECK(cudaGetDeviceProperties(&p, 1) == cudaErrorInvalidDevice);
  FF_CHECK(std::string(cudaGetErrorString(cudaErrorMemoryAllocation)) == "out of memory");
  ff::backend::ensure_available();
  FF_CHECK(std::string(ff::backend::name()) == "cuda-emu");
  FF_CHECK(ff::backend::describe().find("emulator") != std::string::npos) << ff::backend::describe();
}

FF_TEST(caching_allocator_reuses_blocks) {
  void* a = ff::backend::alloc(1000);
  ff::backend::release(a);
  void* b = ff::backend::alloc(900);  // the same 1024-byte bucket
  FF_CHECK(a == b);
  void* c = ff::backend::alloc(900);
  FF_CHECK(c != b);
  ff::backend::release(b);
  ff::backend::release(c);
}

FF_TEST(caching_allocator_out_of_memory) {
  size_t free_bytes = 0, total = 0;
  cudaMemGetInfo(&free_bytes, &total);
  const size_t used = total - free_bytes;
  const size_t old = ff::emu::set_memory_limit(used + (3 << 20));
  // 2 MiB fits; cached after release, it still occupies "device" memory...
  void* a = ff::backend::alloc(2 << 20);
  ff::backend::release(a);
  // ...so a 2.5 MiB block only fits once the cache is emptied, which alloc does by itself.
  void* b = nullptr;
  std::string error;
  try {
    b = ff::backend::alloc(5 << 19);
  } catch (const std::exception& e) {
    error = e.what();
  }
  FF_CHECK(b != nullptr) << error;
  const std::string m =
      FF_EXPECT_ERROR(ff::backend::alloc(4 << 20), "cuda-emu: out of memory allocating 4194304 bytes");
  ff::backend::release(b);
  ff::emu::set_memory_limit(old);
}

FF_TEST(fill_add_copy_upload_download) {
  const size_t n = ff::test::kThreadMode ? 5003 : 100003;
  float* x = static_cast<float*>(ff::backend::alloc(n * sizeof(float)));
  float* y = static_cast<float*>(ff::backend::alloc(n * sizeof(float)));
  std::vector<float> host(n);
  for (size_t i = 0; i < n; ++i) host[i] = float(i % 1000);
  ff::backend::upload(x, host.data(), n);
  ff::backend::fill(y, 0.5f, n);
  ff::backend::add_inplace(y, x, n);
  ff::backend::copy(x, y, n);
  std::vector<float> back(n);
  ff::backend::download(back.data(), x, n);
  for (size_t i = 0; i < n; ++i) FF_CHECK(back[i] == float(i % 1000) + 0.5f) << i;
  ff::backend::release(x);
  ff::backend::release(y);
}

}  // namespace
