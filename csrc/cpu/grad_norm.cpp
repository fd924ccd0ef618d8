// cpu backend: the global norm of a list of tensors, and scaling them in place: together, clipping
// gradients by their global norm (torch.nn.utils.clip_grad_norm_).
//   squared_norm: each 32K-element chunk is summed in double by one thread, and the chunk sums are
//                 added in list order, so the result never depends on the thread count.
//   scale_inplace: x *= factor.
//   clip_by_norm: both, with the factor of optim_math.h's clip_factor.
// Cost per element: one multiply-add and 4 bytes read; scaling reads and writes 4 bytes.
#include <vector>
#include <cmath>
#include "../common/backend_optim.h"
#include "../common/optim_math.h"
#include "multi_tensor.h"

namespace ff::backend {

double squared_norm(const TensorList& tensors) {
  const std::vector<Chunk> chunks = chunks_of(tensors);
  const int n = int(chunks.size());
  std::vector<double> partial(chunks.size(), 0.0);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; ++i) {
    const Chunk ch = chunks[i];
    const float* x = tensors.data[ch.tensor];
    double s = 0;
    for (int64_t e = ch.begin; e < ch.end; ++e) s += double(x[e]) * double(x[e]);
    partial[i] = s;
  }
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

void scale_inplace(const TensorList& tensors, float factor) {
  const std::vector<Chunk> chunks = chunks_of(tensors);
  const int n = int(chunks.size());
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; ++i) {
    const Chunk ch = chunks[i];
    float* x = tensors.data[ch.tensor];
    for (int64_t e = ch.begin; e < ch.end; ++e) x[e] *= factor;
  }
}

void clip_by_norm(const TensorList& tensors, double max_norm, float* norm) {
  const double n = std::sqrt(squared_norm(tensors));
  norm[0] = float(n);
  const float factor = clip_factor(n, max_norm);
  if (factor != 1.0f) scale_inplace(tensors, factor);
}

}  // namespace ff::backend
