// cpu backend: memory. Tensors live in 64-byte aligned host memory (one cache line, one
// AVX-512 register), so kernels may use aligned vector loads at a tensor's start.
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include "../common/backend.h"
#include "../common/error.h"

namespace ff::backend {

const char* name() { return "cpu"; }

std::string describe() {
  std::string simd = "scalar";
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) simd = "AVX-512";
  else if (__builtin_cpu_supports("avx2")) simd = "AVX2";
#endif
  return "host CPU, " + std::to_string(std::thread::hardware_concurrency()) + " threads, " + simd;
}

void ensure_available() {}

void* alloc(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (!p) throw Error("cpu: out of memory allocating " + std::to_string(bytes) + " bytes");
  return p;
}

void release(void* ptr) { std::free(ptr); }
void upload(float* dst, const float* src, size_t n) { std::memcpy(dst, src, n * sizeof(float)); }
void download(float* dst, const float* src, size_t n) { std::memcpy(dst, src, n * sizeof(float)); }
void copy(float* dst, const float* src, size_t n) { std::memmove(dst, src, n * sizeof(float)); }
void synchronize() {}

}  // namespace ff::backend
