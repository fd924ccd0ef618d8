// Planted bugs in the sanitizer builds of the cuda-emu addon (build-native/cuda-emu-asan and
// cuda-emu-tsan; never the release addon). scripts/sanitize-addon.sh calls the addon's
// plantedBug(name) in node with the sanitizer runtime preloaded exactly as for its jest run, and
// expects the sanitizer's report: proof that a bug in a kernel reached the way every op's kernels
// are (node, the N-API binding, backend::alloc's caching allocator, FF_LAUNCH) is reported and
// fails the stage.
#pragma once
#include <string>

namespace ff::planted {

// The names run_planted_bug knows, and what catches each:
//   heap_overflow        a kernel reads one float past the end of a tensor (ASan: the caching
//                        allocator poisons the slack of the tensor's bucket)
//   shared_oob           a static __shared__ array in a template indexed past its end
//                        (-fsanitize=bounds)
//   missing_syncthreads  threads read a neighbour's shared-memory write with no barrier (TSan)
// Throws ff::Error for any other name.
void run_planted_bug(const std::string& name);

}  // namespace ff::planted
