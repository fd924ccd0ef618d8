// The CUDA runtime API of the emulator: one emulated device (sm_80-like limits, so a launch that
// an A100 would refuse is refused here too), device memory = host memory with a size limit,
// streams and events that are synchronous, per-host-thread last errors, and the launch checks
// of cudaLaunchKernel before the executor runs the grid.
#include <unistd.h>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include "block.h"

struct CUstream_st {
  unsigned flags;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point at;
};

namespace ff::emu {

namespace {

constexpr int kSmCount = 108;
constexpr size_t kSharedDefault = 48 << 10;  // without cudaFuncSetAttribute
constexpr size_t kSharedOptin = 163 << 10;   // sm_80's per-block opt-in maximum
constexpr size_t kSharedPerSm = 164 << 10;
constexpr int kRuntimeVersion = 13000;

thread_local cudaError_t last_error = cudaSuccess;

cudaError_t fail(cudaError_t e) {
  last_error = e;
  return e;
}

size_t physical_memory() { return size_t(sysconf(_SC_PHYS_PAGES)) * size_t(sysconf(_SC_PAGESIZE)); }

struct Memory {
  std::mutex m;
  std::unordered_map<void*, size_t> blocks;
  size_t used = 0;
  size_t limit = physical_memory();
};
Memory& memory() {
  static Memory* mem = new Memory;  // never destroyed: frees may come from static destructors
  return *mem;
}

struct KernelAttributes {
  std::mutex m;
  std::unordered_map<const void*, size_t> max_dynamic_shared;
};
KernelAttributes& kernel_attributes() {
  static KernelAttributes* a = new KernelAttributes;
  return *a;
}

size_t max_dynamic_shared(const void* kernel) {
  KernelAttributes& a = kernel_attributes();
  std::lock_guard lk(a.m);
  auto it = a.max_dynamic_shared.find(kernel);
  return it == a.max_dynamic_shared.end() ? kSharedDefault : it->second;
}

std::string dim_text(dim3 d) { return detail::format_dim(uint3(d)); }

void validate(const detail::Launch& l) {
  const dim3 b = l.block, g = l.grid;
  const uint64_t threads = uint64_t(b.x) * b.y * b.z;
  if (b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 || threads > 1024)
    throw Error("invalid launch configuration: block " + dim_text(b) +
                " (each of x, y at most 1024, z at most 64, at most 1024 threads, none zero)");
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 2147483647u || g.y > 65535 || g.z > 65535)
    throw Error("invalid launch configuration: grid " + dim_text(g) +
                " (x at most 2^31-1, y and z at most 65535, none zero)");
  const size_t limit = max_dynamic_shared(l.kernel);
  if (l.shmem > limit)
    throw Error("invalid launch configuration: " + std::to_string(l.shmem) +
                " bytes of dynamic shared memory, more than the kernel's maximum of " + std::to_string(limit) +
                (limit == kSharedDefault ? " (raise it with cudaFuncSetAttribute)" : ""));
}

}  // namespace

std::string describe() {
  return "the CUDA emulator on the host CPU (" + detail::executor_description() + "; emulated sm_80 device), not a GPU";
}

size_t set_memory_limit(size_t bytes) {
  Memory& mem = memory();
  std::lock_guard lk(mem.m);
  const size_t old = mem.limit;
  mem.limit = bytes;
  return old;
}

namespace detail {
void launch(const Launch& l) {
  validate(l);
  run_grid(l);
}
}  // namespace detail

}  // namespace ff::emu

using ff::emu::fail;
using ff::emu::last_error;

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }

cudaError_t occupancy_blocks(int* blocks, int block_size, size_t shmem) {
  if (blocks == nullptr || block_size <= 0) return cudaErrorInvalidValue;
  const int by_threads = 2048 / block_size;
  const int by_shared = shmem == 0 ? by_threads : int(ff::emu::kSharedPerSm / shmem);
  *blocks = by_threads < by_shared ? by_threads : by_shared;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof *p);
  std::strncpy(p->name, "cuda-emu (emulated sm_80 device)", sizeof p->name - 1);
  {
    ff::emu::Memory& mem = ff::emu::memory();
    std::lock_guard lk(mem.m);
    p->totalGlobalMem = mem.limit;
  }
  p->sharedMemPerBlock = ff::emu::kSharedDefault;
  p->sharedMemPerBlockOptin = ff::emu::kSharedOptin;
  p->sharedMemPerMultiprocessor = ff::emu::kSharedPerSm;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->major = 8;
  p->minor = 0;
  p->multiProcessorCount = ff::emu::kSmCount;
  p->maxThreadsPerMultiProcessor = 2048;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* version) {
  *version = ff::emu::kRuntimeVersion;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = ff::emu::kRuntimeVersion;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  ff::emu::Memory& mem = ff::emu::memory();
  std::lock_guard lk(mem.m);
  *total_bytes = mem.limit;
  *free_bytes = mem.limit > mem.used ? mem.limit - mem.used : 0;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  *ptr = nullptr;
  ff::emu::Memory& mem = ff::emu::memory();
  std::lock_guard lk(mem.m);
  if (bytes > mem.limit - std::min(mem.used, mem.limit)) return fail(cudaErrorMemoryAllocation);
  void* p = nullptr;
  // Exactly `bytes` (AddressSanitizer sees overflows), 256-byte aligned as cudaMalloc's are.
  if (posix_memalign(&p, 256, bytes == 0 ? 1 : bytes) != 0) return fail(cudaErrorMemoryAllocation);
  mem.blocks.emplace(p, bytes);
  mem.used += bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  ff::emu::Memory& mem = ff::emu::memory();
  std::lock_guard lk(mem.m);
  auto it = mem.blocks.find(ptr);
  if (it == mem.blocks.end()) return fail(cudaErrorInvalidValue);
  mem.used -= it->second;
  mem.blocks.erase(it);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  *ptr = std::malloc(bytes == 0 ? 1 : bytes);
  return *ptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (unsigned(kind) > unsigned(cudaMemcpyDefault)) return fail(cudaErrorInvalidValue);
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (bytes) std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t) { return cudaMemset(ptr, value, bytes); }

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  *stream = new CUstream_st{flags};
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamQuery(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new CUevent_st{std::chrono::steady_clock::now()};
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) { return cudaEventCreate(event); }

cudaError_t cudaEventQuery(cudaEvent_t event) { return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle); }

cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t event, unsigned) {
  return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  event->at = std::chrono::steady_clock::now();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!start || !end) return fail(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return last_error; }

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || size_t(value) > ff::emu::kSharedOptin)
    return fail(cudaErrorInvalidValue);
  ff::emu::KernelAttributes& a = ff::emu::kernel_attributes();
  std::lock_guard lk(a.m);
  a.max_dynamic_shared[kernel] = size_t(value);
  return cudaSuccess;
}
