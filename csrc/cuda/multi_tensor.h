// Multi-tensor launches (the pattern of PyTorch's fused optimizers): a list of tensors is cut into
// chunks of kChunkElems elements, one block per chunk, and up to kMaxTensors tensors and
// kMaxBlocks chunks travel in the kernel's arguments (under 4 KB), so a parameter group of any
// size is updated in a few launches without copying pointer tables to the device.
//
//   for_each_launch<Depth>(lists, [&](const MultiTensorArgs<Depth>& a, int blocks, int64_t first) {
//     FF_LAUNCH(kernel, dim3(blocks), dim3(kThreads), 0, a, ...);
//   });
//
// In a kernel, block b handles chunk a.chunk[b] of tensor a.tensor[b]: elements
// [chunk * kChunkElems, min(size, (chunk + 1) * kChunkElems)). `first` is the index of the
// launch's first block over the whole list (for per-block outputs). An update that is the same
// for every element is for_each_element(name, lists, op) instead (one kernel for all of them).
#pragma once
#include <cstdint>
#include "launch.h"  // first: under the emulator it defines __host__ / __device__
#include "../common/backend_optim.h"

namespace ff::cuda {

constexpr int kMaxTensors = 32;
constexpr int kMaxBlocks = 320;
constexpr int64_t kChunkElems = 1 << 16;
constexpr int kMultiTensorThreads = 512;

template <int Depth>
struct MultiTensorArgs {
  float* ptr[Depth][kMaxTensors];
  int64_t size[kMaxTensors];
  unsigned char tensor[kMaxBlocks];
  int chunk[kMaxBlocks];
};

// The number of chunks (blocks) a list needs over all launches.
inline int64_t total_chunks(const backend::TensorList& list) {
  int64_t n = 0;
  for (int t = 0; t < list.n; ++t) n += (list.sizes[t] + kChunkElems - 1) / kChunkElems;
  return n;
}

// lists[0..Depth) have the same sizes (lists[0].sizes is used).
template <int Depth, typename LaunchFn>
void for_each_launch(const backend::TensorList* lists, LaunchFn&& launch_fn) {
  MultiTensorArgs<Depth> a{};
  int tensors = 0, blocks = 0;
  int64_t first = 0;
  const auto flush = [&] {
    if (blocks > 0) launch_fn(a, blocks, first);
    first += blocks;
    tensors = blocks = 0;
  };
  const auto add_tensor = [&](int t) {
    for (int d = 0; d < Depth; ++d) a.ptr[d][tensors] = lists[d].data[t];
    a.size[tensors] = lists[0].sizes[t];
    return tensors++;
  };
  for (int t = 0; t < lists[0].n; ++t) {
    const int64_t size = lists[0].sizes[t];
    if (size == 0) continue;
    if (tensors == kMaxTensors) flush();
    int slot = add_tensor(t);
    const int64_t chunks = (size + kChunkElems - 1) / kChunkElems;
    for (int64_t c = 0; c < chunks; ++c) {
      if (blocks == kMaxBlocks) {
        flush();
        slot = add_tensor(t);
      }
      a.tensor[blocks] = static_cast<unsigned char>(slot);
      a.chunk[blocks] = static_cast<int>(c);
      ++blocks;
    }
  }
  flush();
}

// The element range of this block's chunk.
template <int Depth>
__device__ inline void chunk_range(const MultiTensorArgs<Depth>& a, int& slot, int64_t& begin, int64_t& end) {
  slot = a.tensor[blockIdx.x];
  begin = int64_t(a.chunk[blockIdx.x]) * kChunkElems;
  const int64_t stop = begin + kChunkElems;
  end = stop < a.size[slot] ? stop : a.size[slot];
}

// The per-element kernel of a multi-tensor update: op(t, e) for every element e of every chunk,
// t[d] the block's tensor in list d (Op: a struct of the step's scalars with a __device__
// operator()(float* const* t, int64_t e) const). Consecutive threads take consecutive elements.
template <int Depth, typename Op>
__global__ void __launch_bounds__(kMultiTensorThreads) for_each_element_kernel(MultiTensorArgs<Depth> a, Op op) {
  int slot;
  int64_t begin, end;
  chunk_range(a, slot, begin, end);
  float* t[Depth];
  for (int d = 0; d < Depth; ++d) t[d] = a.ptr[d][slot];
  for (int64_t e = begin + threadIdx.x; e < end; e += blockDim.x) op(t, e);
}

// op over every element of lists[0..Depth) (same sizes), in as few launches as the arguments
// allow; `name` (a string literal) names the kernel in errors.
template <int Depth, typename Op>
void for_each_element(const char* name, const backend::TensorList* lists, const Op& op) {
  for_each_launch<Depth>(lists, [&](const MultiTensorArgs<Depth>& a, int blocks, int64_t) {
    launch_named(name, for_each_element_kernel<Depth, Op>, dim3(blocks), dim3(kMultiTensorThreads), 0, a, op);
  });
}

}  // namespace ff::cuda
