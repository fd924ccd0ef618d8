// The one way kernels are launched and reach shared memory, so that each .cu source serves both
// nvcc (a real GPU) and g++ against the emulator (csrc/emu, FF_EMU defined: the cuda-emu addon).
//
//   FF_LAUNCH(kernel, grid, block, shmem_bytes, args...)   never <<<>>> directly
//   T* p = ff::cuda::dynamic_shared<T>();                   never `extern __shared__`
//
// Every launch goes to the backend's one stream and is checked: a launch failure throws
// ff::Error naming the kernel. Under the emulator the kernel has run when launch returns, and
// its faults (deadlock, bad warp mask, invalid configuration) throw ff::Error the same way. On a
// GPU a kernel's fault (an illegal address, say) surfaces at the next synchronisation: each
// launch is noted (note_launch), and that error names the kernels queued since the last
// synchronisation; with CUDA_LAUNCH_BLOCKING=1 each launch waits, and the check right after it
// names the one kernel that faulted.
#pragma once
#if defined(FF_EMU)
#include "../emu/cuda_emu.h"
#else
#include <cuda_runtime.h>
#endif
#include <string>
#include <utility>
#include "../common/error.h"

namespace ff::cuda {

// The stream all work is queued on (created on first use).
cudaStream_t stream();

// Throws ff::Error("cuda: <what>: <cuda's message>") when err is not cudaSuccess.
void check(cudaError_t err, const char* what);

// The device's multiprocessor count (queried once), for sizing grids.
int sm_count();

// Every wait of the host for the device goes through here (backend::host_syncs counts them).
void count_host_sync();
// Records a launch (its name must be a string literal): check_sync names the kernels queued
// since the last synchronisation when the device reports an error. Cost: a lock and a store.
void note_launch(const char* name);
// check() for the result of a synchronisation: an error names the kernels queued since the last
// one; on success the record of them starts afresh.
void check_sync(cudaError_t err, const char* what);
// Throws the first failure of a device-side argument check (checks.cu) queued since the last
// report, if any; called after each synchronisation.
void report_failed_checks();

template <typename... KernelArgs, typename... Args>
void launch_named(const char* name, void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t shmem_bytes,
                  Args&&... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;  // nothing to do
#if defined(FF_EMU)
  try {
    ::ff::emu::launch(kernel, grid, block, shmem_bytes, stream(), static_cast<KernelArgs>(args)...);
  } catch (const ::ff::emu::Error& e) {
    throw Error(std::string("cuda-emu: ") + name + ": " + e.what());
  }
#else
  note_launch(name);
  kernel<<<grid, block, shmem_bytes, stream()>>>(static_cast<KernelArgs>(args)...);
#endif
  check(cudaGetLastError(), name);
}

#define FF_LAUNCH(kernel, grid, block, shmem, ...) \
  ::ff::cuda::launch_named(#kernel, kernel, grid, block, shmem, __VA_ARGS__)

// The block's dynamic shared memory (the size given at launch), 16-byte aligned.
template <typename T>
__device__ inline T* dynamic_shared() {
#if defined(FF_EMU)
  return reinterpret_cast<T*>(::ff::emu::dynamic_shared_memory());
#else
  extern __shared__ __align__(16) unsigned char ff_dynamic_smem[];
  return reinterpret_cast<T*>(ff_dynamic_smem);
#endif
}

}  // namespace ff::cuda
