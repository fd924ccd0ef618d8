// Scratch: n floats of kernel workspace (a backward's per-unit partials) from the backend's
// caching allocator (memory.cpp), left uninitialised for their users to clear.
// Fresh memory for them every call cost a page fault per 4 KiB (zero-filled by the kernel, and
// faults of two threads serialise on the address space): 5-8% of a Fourier fwd+bwd at the
// DeiT-tiny shape. A cached block is already mapped; 64-byte aligned like every block.
#pragma once
#include <cstddef>
#include "../common/backend.h"

namespace ff::cpu {

class Scratch {
 public:
  explicit Scratch(size_t n) : p_(static_cast<float*>(backend::alloc(n * sizeof(float)))) {}
  ~Scratch() { backend::release(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* get() const { return p_; }

 private:
  float* p_;
};

}  // namespace ff::cpu
