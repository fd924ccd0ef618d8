// The per-element update rules of the optimizers, shared by the cpu and cuda backends so that
// both compute the same float operations. The per-step scalars (bias corrections) are computed
// once on the host in double by the binding.
#pragma once
#include <cmath>
#include "hd.h"

namespace ff {

struct AdamScalars {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 0;
  bool decoupled = true;     // AdamW: decay the weights; Adam: add wd * p to the gradient
  float decay_factor = 1;    // 1 - lr * weight_decay (AdamW)
  float step_size = 0;       // lr / (1 - beta1^step)
  float inv_bias2_sqrt = 1;  // 1 / sqrt(1 - beta2^step)
};

// PyTorch's Adam/AdamW step for one element (torch.optim.AdamW, foreach=False).
FF_HD void adam_update(const AdamScalars& c, float& p, float g, float& m, float& v) {
  if (c.decoupled)
    p *= c.decay_factor;
  else
    g += c.weight_decay * p;
  m = c.beta1 * m + (1.0f - c.beta1) * g;
  v = c.beta2 * v + (1.0f - c.beta2) * g * g;
  const float denom = sqrtf(v) * c.inv_bias2_sqrt + c.eps;
  p -= c.step_size * (m / denom);
}

struct SgdScalars {
  float lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
  bool first_step = true;  // the momentum buffer starts as the first gradient
};

// PyTorch's SGD step for one element: g += wd p; b = first ? g : mu b + (1 - dampening) g;
// g = nesterov ? g + mu b : b; p -= lr g. buf is unused when momentum == 0.
FF_HD void sgd_update(const SgdScalars& c, float& p, float g, float* buf) {
  if (c.weight_decay != 0.0f) g += c.weight_decay * p;
  if (c.momentum != 0.0f) {
    const float b = c.first_step ? g : c.momentum * *buf + (1.0f - c.dampening) * g;
    *buf = b;
    g = c.nesterov ? g + c.momentum * b : b;
  }
  p -= c.lr * g;
}

// The factor clipping by global norm scales every gradient by: max_norm / (norm + 1e-6) where that
// is below 1, else 1; 1 for a NaN or infinite norm (the gradients are left as they are). In
// double, as lib/optim/clip-grad.ts computes it.
FF_HD float clip_factor(double norm, double max_norm) {
  if (!(norm <= 1.7976931348623157e308)) return 1.0f;
  const double coef = max_norm / (norm + 1e-6);
  return coef < 1.0 ? float(coef) : 1.0f;
}

}  // namespace ff
