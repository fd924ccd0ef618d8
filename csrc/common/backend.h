// What every backend (cpu, cuda, cuda-emu) implements. The binding (csrc/binding) checks
// arguments and calls these; they may throw ff::Error. Pointers are to the backend's own
// memory (host memory for cpu and cuda-emu, device memory for cuda). Work may be queued
// asynchronously; download() and synchronize() wait for it.
#pragma once
#include <cstddef>
#include <string>
#include "shapes.h"

namespace ff::backend {

const char* name();
// One line describing the device(s), e.g. "NVIDIA H100 80GB (sm_90), driver 13.0".
std::string describe();
// Throws ff::Error explaining why the device cannot be used (no GPU, no driver).
void ensure_available();

void* alloc(size_t bytes);  // throws ff::Error on out-of-memory
void release(void* ptr);
void upload(float* dst, const float* host_src, size_t n);
void download(float* host_dst, const float* src, size_t n);
void copy(float* dst, const float* src, size_t n);
void fill(float* dst, float value, size_t n);
void add_inplace(float* dst, const float* src, size_t n);  // dst += src
void synchronize();

// K[b,h,i,j] = prod_d s(R_hd (q_bhid - k_bhjd))^power.   Cost: B*H*Nq*Nk*D sinc evaluations.
void fourier_metric_forward(const MetricShape& s, const float* q, const float* k, const float* R,
                            int power, float* K);
// Given dK = dL/dK, writes dq, dk (same shapes as q, k) and dR ([rH, rD]) in one pass that
// recomputes the kernel.   Cost: B*H*Nq*Nk*D sinc-and-derivative evaluations + O(D) products.
void fourier_metric_backward(const MetricShape& s, const float* q, const float* k, const float* R,
                             int power, const float* dK, float* dq, float* dk, float* dR);

}  // namespace ff::backend
