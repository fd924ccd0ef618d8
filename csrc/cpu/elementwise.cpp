// cpu backend: the elementwise ops the autograd itself needs (fill for seeds and zeros,
// in-place add for gradient accumulation). One pass over n floats each.
#include "../common/backend.h"

namespace ff::backend {

void fill(float* dst, float value, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = value;
}

void add_inplace(float* dst, const float* src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] += src[i];
}

}  // namespace ff::backend
