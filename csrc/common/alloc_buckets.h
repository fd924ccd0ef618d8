// The size classes of the caching allocators (csrc/cpu/memory.cpp, csrc/cuda/memory.cu): a
// request is rounded up to a bucket and a released block waits on its bucket's free list.
// Four buckets per power of two up to 32 MiB (<= 25% slack), 2 MiB steps above; 512 bytes at
// the least. Host code; cost O(1).
#pragma once
#include <cstddef>

namespace ff {

inline size_t alloc_bucket_size(size_t bytes) {
  constexpr size_t kMin = 512, kLarge = size_t(32) << 20, kLargeStep = size_t(2) << 20;
  if (bytes <= kMin) return kMin;
  if (bytes > kLarge) return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
  const int top = 63 - __builtin_clzll(bytes - 1);  // 2^top < bytes <= 2^(top+1)
  const size_t step = size_t(1) << (top - 2);
  return (bytes + step - 1) / step * step;
}

}  // namespace ff
