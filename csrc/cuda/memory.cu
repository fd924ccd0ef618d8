// cuda backend: the device, its one stream, and memory. The same source is the cuda-emu
// backend when compiled by g++ against csrc/emu (FF_EMU): device memory is then host memory.
//
// Memory goes through a caching allocator: sizes are rounded up to a bucket (four per power of
// two, <= 25% slack; 2 MiB steps above 32 MiB), released blocks wait on a free list of their
// bucket and are handed out again without cudaMalloc/cudaFree (which synchronise the device).
// Reuse is safe because all work runs on the one stream, in order. When cudaMalloc runs out,
// the cache is freed and the allocation retried once; then alloc throws "out of memory".
// Under AddressSanitizer (cuda-emu) cached and slack bytes are poisoned, so a kernel that reads
// a released tensor or past the end of one is caught even though the block is still allocated.
// FF_CUDA_NO_CACHING=1 (read once, as PyTorch's PYTORCH_NO_CUDA_MEMORY_CACHING) turns the cache
// off: every tensor is a cudaMalloc of its exact size, cudaFree'd when released, so that
// compute-sanitizer's memcheck on a GPU sees an access past a tensor's end or into a released
// one. It is slow (each release waits for the device, and counts as a host sync).
//
// No CUDA call happens when the addon loads: a machine without a GPU or driver can load it, and
// ensure_available() says why the device cannot be used.
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>
#include "../common/alloc_buckets.h"
#include "../common/asan_poison.h"
#include "../common/backend.h"
#include "launch.h"
#if !defined(FF_EMU)
#include <cublas_v2.h>
#endif

namespace ff::cuda {

void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear the (non-sticky) error so later calls are not blamed for it
  throw Error(std::string(backend::name()) + ": " + what + ": " + cudaGetErrorString(err));
}

cudaStream_t stream() {
  static const cudaStream_t s = [] {
    cudaStream_t created = nullptr;
    check(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking), "creating the stream");
    return created;
  }();
  return s;
}

namespace {

// The kernels launched since the last synchronisation: how many, and the last kLaunchLog names.
constexpr int kLaunchLog = 8;
std::mutex launch_mutex;
const char* launch_names[kLaunchLog];
uint64_t launches_since_sync = 0;

}  // namespace

void note_launch(const char* name) {
  std::lock_guard lk(launch_mutex);
  launch_names[launches_since_sync % kLaunchLog] = name;
  ++launches_since_sync;
}

void check_sync(cudaError_t err, const char* what) {
  std::string kernels;
  uint64_t count = 0;
  {
    std::lock_guard lk(launch_mutex);
    count = launches_since_sync;
    for (uint64_t i = count > kLaunchLog ? count - kLaunchLog : 0; i < count; ++i)
      kernels += (kernels.empty() ? "" : ", ") + std::string(launch_names[i % kLaunchLog]);
    if (err == cudaSuccess) launches_since_sync = 0;
  }
  if (err == cudaSuccess) return;
  cudaGetLastError();
  throw Error(std::string(backend::name()) + ": " + what + ": " + cudaGetErrorString(err) +
              (count == 0 ? std::string()
                          : "; a kernel queued since the last synchronisation faulted: " +
                                (count > kLaunchLog
                                     ? "the last " + std::to_string(kLaunchLog) + " of " + std::to_string(count) + ": "
                                     : std::string()) +
                                kernels + " (CUDA_LAUNCH_BLOCKING=1 names the one)"));
}

int sm_count() {
  static const int count = [] {
    cudaDeviceProp p;
    check(cudaGetDeviceProperties(&p, 0), "cudaGetDeviceProperties");
    return p.multiProcessorCount;
  }();
  return count;
}

namespace {

class CachingAllocator {
 public:
  void* alloc(size_t bytes) {
    const size_t size = no_caching_ ? (bytes > 0 ? bytes : 1) : alloc_bucket_size(bytes);
    std::lock_guard lk(m_);
    void* p = nullptr;
    auto* free_list = no_caching_ ? nullptr : &free_[size];
    if (free_list && !free_list->empty()) {
      p = free_list->back();
      free_list->pop_back();
      cached_ -= size;
    } else {
      cudaError_t err = cudaMalloc(&p, size);
      if (err == cudaErrorMemoryAllocation && cached_ > 0) {
        cudaGetLastError();
        empty_cache_locked();
        err = cudaMalloc(&p, size);
      }
      if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        throw Error(std::string(backend::name()) + ": out of memory allocating " + std::to_string(bytes) + " bytes (" +
                    std::to_string(in_use_) + " bytes in use by tensors)");
      }
      check(err, "cudaMalloc");
    }
    live_.emplace(p, size);
    in_use_ += size;
    if (in_use_ > peak_) peak_ = in_use_;
    FF_UNPOISON(p, bytes);
    FF_POISON(static_cast<char*>(p) + bytes, size - bytes);
    return p;
  }

  void release(void* p) {
    if (!p) return;
    std::lock_guard lk(m_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours: nothing to do (release runs from finalizers)
    const size_t size = it->second;
    live_.erase(it);
    in_use_ -= size;
    if (no_caching_) {
      count_host_sync();  // cudaFree waits for the device
      FF_UNPOISON(p, size);
      cudaFree(p);
      return;
    }
    FF_POISON(p, size);
    free_[size].push_back(p);
    cached_ += size;
  }

  size_t cached() {
    std::lock_guard lk(m_);
    return cached_;
  }

  size_t peak() {
    std::lock_guard lk(m_);
    return peak_;
  }

  void reset_peak() {
    std::lock_guard lk(m_);
    peak_ = in_use_;
  }

  // Gives every cached block back to the device; returns their bytes. (cudaFree waits for the
  // work queued on the device, which may still use a block released after its last launch.)
  size_t empty_cache() {
    std::lock_guard lk(m_);
    const size_t bytes = cached_;
    empty_cache_locked();
    return bytes;
  }

 private:
  void empty_cache_locked() {
    if (cached_ > 0) count_host_sync();  // cudaFree waits for the device
    for (auto& [size, list] : free_) {
      for (void* p : list) {
        FF_UNPOISON(p, size);
        cudaFree(p);
      }
      list.clear();
    }
    cached_ = 0;
  }

  const bool no_caching_ = [] {
    const char* v = std::getenv("FF_CUDA_NO_CACHING");
    return v != nullptr && *v != '\0' && std::string(v) != "0";
  }();
  std::mutex m_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // bucket size -> cached blocks
  std::unordered_map<void*, size_t> live_;               // block -> bucket size
  size_t cached_ = 0, in_use_ = 0, peak_ = 0;
};

CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator;  // never destroyed: frees may come late
  return *a;
}

}  // namespace
}  // namespace ff::cuda

namespace ff::backend {

#if defined(FF_EMU)
const char* name() { return "cuda-emu"; }
#else
const char* name() { return "cuda"; }
#endif

#if !defined(FF_EMU)
namespace {
// The architectures this addon has code for: nvcc's __CUDA_ARCH_LIST__ (e.g. 750,800,...,1200;
// a comma-separated list, hence the variadic stringify).
#define FF_STRINGIFY_(...) #__VA_ARGS__
#define FF_STRINGIFY(...) FF_STRINGIFY_(__VA_ARGS__)
constexpr const char* kBuiltArchs = FF_STRINGIFY(__CUDA_ARCH_LIST__);
__global__ void probe_kernel() {}
}  // namespace
#endif

void ensure_available() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw Error(std::string("no CUDA device found (cudaGetDeviceCount: ") + cudaGetErrorString(err) + ")" +
                (err == cudaErrorInsufficientDriver
                     ? ": no NVIDIA driver, or one older than the CUDA 13 runtime this addon was built with"
                     : ""));
  }
  if (count == 0) throw Error("no CUDA device found (cudaGetDeviceCount: 0 devices)");
#if !defined(FF_EMU)
  // The device is usable when the addon has code it can run: SASS of its architecture (or of an
  // earlier minor of its major), or PTX it can compile. The same test the runtime makes at launch.
  cudaFuncAttributes attr;
  const cudaError_t image = cudaFuncGetAttributes(&attr, probe_kernel);
  if (image != cudaSuccess) {
    cudaGetLastError();
    cudaDeviceProp p;
    cuda::check(cudaGetDeviceProperties(&p, 0), "cudaGetDeviceProperties");
    throw Error(std::string(name()) + ": " + p.name + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) +
                ") cannot run this build: it has code for the architectures " + kBuiltArchs + " (" +
                cudaGetErrorString(image) + "); rebuild with FF_CUDA_ARCHS=" + std::to_string(p.major) +
                std::to_string(p.minor) + " npm run build:cuda");
  }
#endif
}

std::string describe() {
#if defined(FF_EMU)
  return emu::describe();
#else
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    return std::string("no CUDA device (cudaGetDeviceCount: ") +
           (err != cudaSuccess ? cudaGetErrorString(err) : "0 devices") + ")";
  }
  cudaDeviceProp p;
  cuda::check(cudaGetDeviceProperties(&p, 0), "cudaGetDeviceProperties");
  int driver = 0, runtime = 0, blas_major = 0, blas_minor = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  cublasGetProperty(MAJOR_VERSION, &blas_major);
  cublasGetProperty(MINOR_VERSION, &blas_minor);
  auto version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
  return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
         std::to_string(p.multiProcessorCount) + " SMs, " + std::to_string(p.totalGlobalMem >> 20) + " MiB" +
         (count > 1 ? ", device 0 of " + std::to_string(count) : "") + "), driver " + version(driver) + ", runtime " +
         version(runtime) + ", cuBLAS " + std::to_string(blas_major) + "." + std::to_string(blas_minor);
#endif
}

void* alloc(size_t bytes) { return cuda::allocator().alloc(bytes); }
void release(void* ptr) { cuda::allocator().release(ptr); }
size_t cached_bytes() { return cuda::allocator().cached(); }
size_t empty_cache() { return cuda::allocator().empty_cache(); }
size_t peak_bytes() { return cuda::allocator().peak(); }
void reset_peak_bytes() { cuda::allocator().reset_peak(); }

namespace {
cudaEvent_t timer_event(int which) {
  static cudaEvent_t events[2] = {nullptr, nullptr};
  if (events[which] == nullptr) cuda::check(cudaEventCreate(&events[which]), "cudaEventCreate");
  return events[which];
}
}  // namespace

void timer_start() { cuda::check(cudaEventRecord(timer_event(0), cuda::stream()), "timer_start"); }

double timer_stop() {
  cuda::check(cudaEventRecord(timer_event(1), cuda::stream()), "timer_stop");
  cuda::count_host_sync();
  cuda::check_sync(cudaEventSynchronize(timer_event(1)), "timer_stop");
  cuda::report_failed_checks();
  float ms = 0.0f;
  cuda::check(cudaEventElapsedTime(&ms, timer_event(0), timer_event(1)), "cudaEventElapsedTime");
  return ms;
}

void upload(float* dst, const float* host_src, size_t n) {
  if (n == 0) return;
  cuda::check(cudaMemcpyAsync(dst, host_src, n * sizeof(float), cudaMemcpyHostToDevice, cuda::stream()), "upload");
}

void download(float* host_dst, const float* src, size_t n) {
  if (n == 0) return;
  // (a kernel's fault may surface here already: name the kernels then too)
  const cudaError_t err = cudaMemcpyAsync(host_dst, src, n * sizeof(float), cudaMemcpyDeviceToHost, cuda::stream());
  if (err != cudaSuccess) cuda::check_sync(err, "download");
  cuda::count_host_sync();
  cuda::check_sync(cudaStreamSynchronize(cuda::stream()), "download");
  cuda::report_failed_checks();
}

void copy(float* dst, const float* src, size_t n) {
  if (n == 0) return;
  cuda::check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, cuda::stream()), "copy");
}

void synchronize() {
  cuda::count_host_sync();
  cuda::check_sync(cudaStreamSynchronize(cuda::stream()), "synchronize");
  cuda::report_failed_checks();
}

}  // namespace ff::backend
