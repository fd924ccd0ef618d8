// Splits a list of tensors into chunks of at most kChunk elements, in list order, so that the
// optimizer kernels can hand whole chunks to threads (a parameter group mixes a 1.3M-element
// embedding with 128-element biases).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>
#include "../common/backend_optim.h"

namespace ff::backend {

struct Chunk {
  int tensor;
  int64_t begin, end;
};

constexpr int64_t kChunk = 1 << 15;

inline std::vector<Chunk> chunks_of(const TensorList& list) {
  std::vector<Chunk> out;
  for (int t = 0; t < list.n; ++t)
    for (int64_t b = 0; b < list.sizes[t]; b += kChunk) out.push_back({t, b, std::min(list.sizes[t], b + kChunk)});
  return out;
}

}  // namespace ff::backend
