// Optimizer kernels of every backend (cpu, cuda, cuda-emu). Each call updates a whole list of
// tensors (one parameter group) in one fused pass over memory, as PyTorch's fused optimizers do:
// the cpu backend splits the list into chunks taken by threads, the cuda backend packs up to 32
// tensors per launch into the kernel's arguments (csrc/cuda/multi_tensor.h). Every list is a
// host array whose entries point to backend memory; sizes[t] is tensor t's element count.
// Elementwise updates are deterministic; squared_norm sums in a fixed order.
#pragma once
#include <cstdint>
#include "optim_math.h"

namespace ff::backend {

// A list of n tensors: data[t] holds sizes[t] floats.
struct TensorList {
  int n = 0;
  float* const* data = nullptr;
  const int64_t* sizes = nullptr;
};

// Adam / AdamW, for every element of every tensor (optim_math.h, adam_update):
//   AdamW: p *= 1 - lr wd;  Adam: g += wd p
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= step_size m / (sqrt(v) / sqrt(bc2) + eps)
// grads, exp_avg and exp_avg_sq have params' sizes. Cost: ~12 flops and 20 bytes of traffic per
// element (read p, g, m, v; write p, m, v).
void adam_step(const AdamScalars& c, const TensorList& params, const TensorList& grads, const TensorList& exp_avg,
               const TensorList& exp_avg_sq);

// SGD with momentum, PyTorch's rule (optim_math.h, sgd_update). momentum_buf is an empty list
// when c.momentum == 0. Cost: ~6 flops and up to 16 bytes of traffic per element.
void sgd_step(const SgdScalars& c, const TensorList& params, const TensorList& grads, const TensorList& momentum_buf);

// sum over every element x of every tensor of x^2, accumulated in double in a fixed order (the
// same result run after run). Cost: 1 multiply-add and 4 bytes read per element; one sync.
double squared_norm(const TensorList& tensors);

// Clipping by global norm without waiting for the device: norm[0] (backend memory) = the L2 norm
// of all the tensors (squared_norm's sum), and every element x *= clip_factor(norm, max_norm)
// (optim_math.h). Cost: squared_norm's, and 8 bytes per element where the factor is below 1.
void clip_by_norm(const TensorList& tensors, double max_norm, float* norm);

// x *= factor for every element of every tensor (clipping by global norm). Cost: 8 bytes per element.
void scale_inplace(const TensorList& tensors, float factor);

}  // namespace ff::backend
