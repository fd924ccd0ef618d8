// cpu backend: memory. Tensors live in 64-byte aligned host memory (one cache line, one
// AVX-512 register), so kernels may use aligned vector loads at a tensor's start.
//
// Blocks of 512 bytes and more go through a caching allocator, as the cuda backend's (memory.cu):
// sizes are rounded up to a bucket (four per power of two, <= 25% slack; 2 MiB steps above
// 32 MiB) and a released block waits on its bucket's free list for the next tensor of that
// bucket. A training step allocates and frees the same large tensors every step; without the
// cache each of them came fresh from the kernel, which zero-filled it one 4 KiB page fault at a
// time (about 70 ms for the 80 MB logits of a 10000-word vocabulary here), and munmap on free.
// Blocks of 2 MiB and more are mapped 2 MiB aligned and advised to use transparent huge pages
// (fewer faults and TLB misses in the GEMMs that stream them). The cache keeps at most
// kCacheFraction of physical memory (at most kCacheMax); a block released beyond that is
// returned to the system. When the system runs out, the cache is emptied and the allocation
// tried once more. Smaller blocks use aligned_alloc (glibc's per-thread caches serve them well).
// Mid-size blocks are cached too because glibc makes them dear in a loop of small ops: each of
// its requests of 1 KiB or more, and each free of 64 KiB or more, first merges every small chunk
// freed since (malloc_consolidate), and node's per-tensor bookkeeping frees many; decoding a
// token (~80 tensors of 0.25-64 KiB) spent about a quarter of its time there.
// Under AddressSanitizer cached and slack bytes are poisoned, so reading a released tensor or
// past the end of one is still caught. memory() counts tensors, not this cache (storage.cpp).
#include <chrono>
#include <sys/mman.h>
#include <unistd.h>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
#include "../common/alloc_buckets.h"
#include "../common/asan_poison.h"
#include "../common/backend.h"
#include "../common/error.h"

namespace ff::cpu {
namespace {

constexpr size_t kCacheMin = 512;          // smaller blocks: aligned_alloc / free
constexpr size_t kHuge = size_t(2) << 20;  // mapped blocks: 2 MiB aligned, huge pages
constexpr size_t kCacheMax = size_t(2) << 30;
constexpr size_t kCacheFraction = 8;  // of physical memory

size_t cache_limit() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return kCacheMax / kCacheFraction;
  return std::min(kCacheMax, size_t(pages) * size_t(page) / kCacheFraction);
}

// A fresh block of `size` bytes (a bucket size), or nullptr when the system has no memory.
void* system_alloc(size_t size) {
  if (size < kHuge) return std::aligned_alloc(64, size);
  // Over-map by 2 MiB, then unmap the unaligned head and the tail.
  const size_t span = size + kHuge;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (base + kHuge - 1) / kHuge * kHuge;
  if (aligned > base) munmap(raw, aligned - base);
  if (base + span > aligned + size) munmap(reinterpret_cast<void*>(aligned + size), base + span - aligned - size);
  void* p = reinterpret_cast<void*>(aligned);
  madvise(p, size, MADV_HUGEPAGE);  // advice only: without THP the block still works
  return p;
}

void system_free(void* p, size_t size) {
  if (size < kHuge)
    std::free(p);
  else
    munmap(p, size);
}

class CachingAllocator {
 public:
  void* alloc(size_t bytes) {
    const size_t size = alloc_bucket_size(bytes);
    void* p = nullptr;
    {
      std::lock_guard lk(m_);
      auto& list = free_[size];
      if (!list.empty()) {
        p = list.back();
        list.pop_back();
        cached_ -= size;
      }
    }
    if (!p) p = system_alloc(size);
    if (!p) {
      empty_cache();
      p = system_alloc(size);
    }
    if (!p) throw Error("cpu: out of memory allocating " + std::to_string(bytes) + " bytes");
    {
      std::lock_guard lk(m_);
      live_.emplace(p, size);
    }
    FF_UNPOISON(p, bytes);
    FF_POISON(static_cast<char*>(p) + bytes, size - bytes);
    return p;
  }

  // Whether p was one of this allocator's blocks (then it is cached or returned to the system).
  bool release(void* p) {
    size_t size = 0;
    {
      std::lock_guard lk(m_);
      auto it = live_.find(p);
      if (it == live_.end()) return false;
      size = it->second;
      live_.erase(it);
      if (cached_ + size <= limit_) {
        FF_POISON(p, size);
        free_[size].push_back(p);
        cached_ += size;
        return true;
      }
    }
    FF_UNPOISON(p, size);
    system_free(p, size);
    return true;
  }

  size_t cached() {
    std::lock_guard lk(m_);
    return cached_;
  }

  // Gives every cached block back to the system; returns their bytes.
  size_t empty_cache() {
    std::vector<std::pair<void*, size_t>> blocks;
    size_t bytes = 0;
    {
      std::lock_guard lk(m_);
      for (auto& [size, list] : free_) {
        for (void* p : list) blocks.emplace_back(p, size);
        list.clear();
      }
      bytes = cached_;
      cached_ = 0;
    }
    for (auto [p, size] : blocks) {
      FF_UNPOISON(p, size);
      system_free(p, size);
    }
    return bytes;
  }

 private:
  std::mutex m_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // bucket size -> cached blocks
  std::unordered_map<void*, size_t> live_;               // block in use -> bucket size
  size_t cached_ = 0;
  const size_t limit_ = cache_limit();
};

CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator;  // never destroyed: frees may come late
  return *a;
}

}  // namespace
}  // namespace ff::cpu

namespace ff::backend {

const char* name() { return "cpu"; }

std::string describe() {
  std::string simd = "scalar";
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    simd = "AVX-512";
  else if (__builtin_cpu_supports("avx2"))
    simd = "AVX2";
#endif
  return "host CPU, " + std::to_string(std::thread::hardware_concurrency()) + " threads, " + simd;
}

void ensure_available() {}

void* alloc(size_t bytes) {
  if (bytes >= cpu::kCacheMin) return cpu::allocator().alloc(bytes);
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (!p) throw Error("cpu: out of memory allocating " + std::to_string(bytes) + " bytes");
  return p;
}

void release(void* ptr) {
  if (ptr != nullptr && !cpu::allocator().release(ptr)) std::free(ptr);
}

size_t cached_bytes() { return cpu::allocator().cached(); }
size_t empty_cache() { return cpu::allocator().empty_cache(); }
size_t peak_bytes() { return 0; }
void reset_peak_bytes() {}

namespace {
std::chrono::steady_clock::time_point timer_begin;
}  // namespace

void timer_start() { timer_begin = std::chrono::steady_clock::now(); }
double timer_stop() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - timer_begin).count();
}

void upload(float* dst, const float* src, size_t n) { std::memcpy(dst, src, n * sizeof(float)); }
void download(float* dst, const float* src, size_t n) { std::memcpy(dst, src, n * sizeof(float)); }
void copy(float* dst, const float* src, size_t n) { std::memmove(dst, src, n * sizeof(float)); }
void synchronize() {}

}  // namespace ff::backend
