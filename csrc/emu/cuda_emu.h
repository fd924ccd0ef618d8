// The CUDA emulator: what a .cu file sees when g++ compiles it as C++20 with -DFF_EMU, for the
// cuda-emu backend and the emulator tests. Like nvcc's cuda_runtime.h it comes before a .cu
// file's first line (cmake/emu.cmake's wrapper sources include it first). Device memory is host
// memory, a launch runs every block to completion before it returns, and kernels are plain C++:
//
//   qualifiers   __global__ __device__ __host__ __forceinline__ __shared__ __align__ ...
//   built-ins    threadIdx blockIdx blockDim gridDim warpSize dim3 uint3 float4 ...
//   block sync   __syncthreads(), __syncthreads_count/and/or
//   warp sync    __syncwarp, __shfl_sync/_up/_down/_xor, __ballot_sync, __any_sync, __all_sync
//   atomics      atomicAdd/Sub/Max/Min/Exch/CAS/And/Or/Xor for the types CUDA has them for
//   math         __expf __logf __sinf __cosf __sincosf __fdividef rsqrtf __fmaf_rn ... (exact here)
//   runtime      cudaMalloc/Free/Memcpy/Memset(Async), streams, events, device queries, errors
//   launch       ff::emu::launch(kernel, grid, block, shmem, stream, args...)
//
// How blocks run (csrc/emu/fibers.cpp, or csrc/emu/threads.cpp with FF_EMU_THREADS):
// - fiber mode (default): a block's threads are user-mode fibers on one OS thread, switched at
//   every sync point; blocks are spread over a small pool of OS threads (FF_EMU_WORKERS, 2).
//   `__shared__` is `static thread_local`: one copy per OS thread, which runs one block at a time.
// - thread mode (FF_EMU_THREADS, for ThreadSanitizer): one OS thread per CUDA thread, one block
//   at a time, so a missing __syncthreads is a data race that TSan reports. `__shared__` is `static`.
// Misuse fails loudly instead of hanging: a warp mask without the calling lane, or naming an
// exited lane or a lane outside the block; threads that wait at different __syncthreads, or at a
// barrier that some threads have exited before; any deadlock. The launch throws ff::emu::Error
// naming the block, the threads and the source lines (ff::cuda::launch turns it into ff::Error).
// (An include guard rather than #pragma once: the build's wrappers include this file by one
// path and launch.h by another.)
#ifndef FF_EMU_CUDA_EMU_H
#define FF_EMU_CUDA_EMU_H
#if !defined(FF_EMU)
#error "cuda_emu.h is the cuda-emu build's CUDA: compile with -DFF_EMU"
#endif

#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers -------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#if defined(FF_EMU_THREADS)
#define __shared__ static
#else
#define __shared__ static thread_local
#endif

// ---- vector types and built-in variables ------------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return {x, y, z}; }
};

#define FF_EMU_VECTOR2(T, name, align) \
  struct alignas(align) name {         \
    T x, y;                            \
  };                                   \
  inline name make_##name(T x, T y) { return name{x, y}; }
#define FF_EMU_VECTOR4(T, name, align) \
  struct alignas(align) name {         \
    T x, y, z, w;                      \
  };                                   \
  inline name make_##name(T x, T y, T z, T w) { return name{x, y, z, w}; }
FF_EMU_VECTOR2(float, float2, 8)
FF_EMU_VECTOR4(float, float4, 16)
FF_EMU_VECTOR2(double, double2, 16)
FF_EMU_VECTOR2(int, int2, 8)
FF_EMU_VECTOR4(int, int4, 16)
FF_EMU_VECTOR2(unsigned, uint2, 8)
FF_EMU_VECTOR4(unsigned, uint4, 16)
#undef FF_EMU_VECTOR2
#undef FF_EMU_VECTOR4

// Per CUDA thread: set by the emulator before a thread runs (fiber mode: at every switch).
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
constexpr int warpSize = 32;

// ---- the runtime API subset -------------------------------------------------------------------
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInsufficientDriver = 35,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorLaunchFailure = 719,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

struct CUstream_st;
typedef CUstream_st* cudaStream_t;
struct CUevent_st;
typedef CUevent_st* cudaEvent_t;
constexpr unsigned cudaStreamDefault = 0x0;
constexpr unsigned cudaStreamNonBlocking = 0x1;

// The fields of CUDA's cudaDeviceProp that the emulator fills (an sm_80-like device).
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  size_t sharedMemPerMultiprocessor;
  int regsPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int major;
  int minor;
  int multiProcessorCount;
  int maxThreadsPerMultiProcessor;
};

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
// Blocks of `block_size` threads and `shmem` dynamic shared bytes that fit an emulated SM by its
// thread and shared-memory limits (registers are not modelled).
cudaError_t occupancy_blocks(int* blocks, int block_size, size_t shmem);
template <typename Kernel>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, Kernel, int block_size, size_t shmem) {
  return occupancy_blocks(blocks, block_size, shmem);
}
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);

cudaError_t cudaMalloc(void** ptr, size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);

constexpr unsigned cudaEventDefault = 0x0;
constexpr unsigned cudaEventDisableTiming = 0x2;
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
// Every emulated launch and copy has finished when it returns: an event is complete once
// recorded, and a stream never waits.
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t err);
const char* cudaGetErrorName(cudaError_t err);

cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attr, int value);
template <typename T>
cudaError_t cudaFuncSetAttribute(T* kernel, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}

// ---- the emulator itself ----------------------------------------------------------------------
namespace ff::emu {

// A kernel fault or an invalid launch: the message names the kernel's block, threads and lines.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One line for backend::describe(): the mode and the worker threads.
std::string describe();
// The emulated device's memory (default: the host's physical memory); returns the old limit.
// cudaMalloc beyond it fails with cudaErrorMemoryAllocation, as a full GPU would.
size_t set_memory_limit(size_t bytes);
// The OS threads that run the blocks of the launches made from the calling thread: at most
// FF_EMU_WORKERS (the process's pool, serving one launch at a time), and at most n once the
// calling thread has set n. Results do not depend on it (blocks are independent). Thread mode
// (the TSan build) runs one block at a time: 1, and the setting changes nothing.
int launch_threads();
void set_launch_threads(int n);

namespace detail {

enum class WarpOp : uint8_t { sync, shfl_idx, shfl_up, shfl_down, shfl_xor, ballot, any, all };
enum class BarrierOp : uint8_t { sync, count, all, any };

// Meets the lanes of `mask` (every lane named must arrive at the same intrinsic with the same
// mask); returns this lane's result as bits. Lanes read from outside the mask get all-ones bits.
uint64_t warp_op(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const std::source_location& where);
// Waits until every thread of the block has arrived; returns the predicate reduction.
int block_barrier(BarrierOp op, int predicate, const std::source_location& where);
void* dynamic_shared_memory();

using KernelThunk = void (*)(const void* closure);
struct Launch {
  const void* kernel;  // identifies the kernel (cudaFuncSetAttribute)
  KernelThunk thunk;   // runs the kernel with its arguments, once per CUDA thread
  const void* closure;
  dim3 grid, block;
  size_t shmem;
};
void launch(const Launch& l);

template <typename T>
constexpr bool kShuffleType = std::is_arithmetic_v<T> && (sizeof(T) == 4 || sizeof(T) == 8);

template <typename T>
uint64_t to_bits(T v) {
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <typename T>
T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

}  // namespace detail

// The block's dynamic shared memory (the launch's shmem bytes, 16-byte aligned; filled with
// 0xff bytes, i.e. NaN floats, at the start of every block so reads before writes show up).
inline void* dynamic_shared_memory() { return detail::dynamic_shared_memory(); }

// Runs kernel(args...) on every thread of every block, then returns; throws ff::emu::Error.
template <typename... KernelArgs, typename... Args>
void launch(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t shmem_bytes,
            cudaStream_t /*stream: work runs at once*/, Args&&... args) {
  static_assert(sizeof...(KernelArgs) == sizeof...(Args), "kernel argument count");
  struct Closure {
    void (*kernel)(KernelArgs...);
    std::tuple<std::decay_t<KernelArgs>...> args;
  };
  const Closure closure{kernel,
                        std::tuple<std::decay_t<KernelArgs>...>(static_cast<KernelArgs>(std::forward<Args>(args))...)};
  detail::Launch l{reinterpret_cast<const void*>(kernel),
                   [](const void* c) {
                     const auto* cl = static_cast<const Closure*>(c);
                     std::apply(cl->kernel, cl->args);
                   },
                   &closure,
                   grid,
                   block,
                   shmem_bytes};
  detail::launch(l);
}

}  // namespace ff::emu

// ---- synchronisation --------------------------------------------------------------------------
inline void __syncthreads(std::source_location where = std::source_location::current()) {
  ff::emu::detail::block_barrier(ff::emu::detail::BarrierOp::sync, 0, where);
}
inline int __syncthreads_count(int pred, std::source_location where = std::source_location::current()) {
  return ff::emu::detail::block_barrier(ff::emu::detail::BarrierOp::count, pred, where);
}
inline int __syncthreads_and(int pred, std::source_location where = std::source_location::current()) {
  return ff::emu::detail::block_barrier(ff::emu::detail::BarrierOp::all, pred, where);
}
inline int __syncthreads_or(int pred, std::source_location where = std::source_location::current()) {
  return ff::emu::detail::block_barrier(ff::emu::detail::BarrierOp::any, pred, where);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, std::source_location where = std::source_location::current()) {
  ff::emu::detail::warp_op(ff::emu::detail::WarpOp::sync, mask, 0, 0, warpSize, where);
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }

#define FF_EMU_SHUFFLE(name, op)                                                       \
  template <typename T, typename = std::enable_if_t<ff::emu::detail::kShuffleType<T>>> \
  T name(unsigned mask, T var, int arg, int width = warpSize,                          \
         std::source_location where = std::source_location::current()) {               \
    using namespace ff::emu::detail;                                                   \
    return from_bits<T>(warp_op(WarpOp::op, mask, to_bits(var), arg, width, where));   \
  }
FF_EMU_SHUFFLE(__shfl_sync, shfl_idx)
FF_EMU_SHUFFLE(__shfl_up_sync, shfl_up)
FF_EMU_SHUFFLE(__shfl_down_sync, shfl_down)
FF_EMU_SHUFFLE(__shfl_xor_sync, shfl_xor)
#undef FF_EMU_SHUFFLE

inline unsigned __ballot_sync(unsigned mask, int pred, std::source_location where = std::source_location::current()) {
  using namespace ff::emu::detail;
  return unsigned(warp_op(WarpOp::ballot, mask, pred != 0, 0, warpSize, where));
}
inline int __any_sync(unsigned mask, int pred, std::source_location where = std::source_location::current()) {
  using namespace ff::emu::detail;
  return int(warp_op(WarpOp::any, mask, pred != 0, 0, warpSize, where));
}
inline int __all_sync(unsigned mask, int pred, std::source_location where = std::source_location::current()) {
  using namespace ff::emu::detail;
  return int(warp_op(WarpOp::all, mask, pred != 0, 0, warpSize, where));
}

// ---- atomics (relaxed, as CUDA's; the same overload set as CUDA) ------------------------------
namespace ff::emu::detail {
template <typename T>
T atomic_add(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_add(v, std::memory_order_relaxed);
}
template <typename T, typename F>
T atomic_update(T* p, F f) {
  std::atomic_ref<T> a(*p);
  T old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, f(old), std::memory_order_relaxed)) {
  }
  return old;
}
}  // namespace ff::emu::detail

#define FF_EMU_ATOMIC_ADD(T)                                                  \
  inline T atomicAdd(T* p, T v) { return ff::emu::detail::atomic_add(p, v); } \
  inline T atomicExch(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v, std::memory_order_relaxed); }
FF_EMU_ATOMIC_ADD(int)
FF_EMU_ATOMIC_ADD(unsigned)
FF_EMU_ATOMIC_ADD(unsigned long long)
FF_EMU_ATOMIC_ADD(float)
#undef FF_EMU_ATOMIC_ADD
inline double atomicAdd(double* p, double v) { return ff::emu::detail::atomic_add(p, v); }

#define FF_EMU_ATOMIC_INT(T)                                                      \
  inline T atomicMax(T* p, T v) {                                                 \
    return ff::emu::detail::atomic_update(p, [v](T o) { return o > v ? o : v; }); \
  }                                                                               \
  inline T atomicMin(T* p, T v) {                                                 \
    return ff::emu::detail::atomic_update(p, [v](T o) { return o < v ? o : v; }); \
  }
FF_EMU_ATOMIC_INT(int)
FF_EMU_ATOMIC_INT(unsigned)
FF_EMU_ATOMIC_INT(long long)
FF_EMU_ATOMIC_INT(unsigned long long)
#undef FF_EMU_ATOMIC_INT

#define FF_EMU_ATOMIC_BITS(T)                                                                              \
  inline T atomicCAS(T* p, T expected, T desired) {                                                        \
    std::atomic_ref<T>(*p).compare_exchange_strong(expected, desired, std::memory_order_relaxed);          \
    return expected;                                                                                       \
  }                                                                                                        \
  inline T atomicAnd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_and(v, std::memory_order_relaxed); } \
  inline T atomicOr(T* p, T v) { return std::atomic_ref<T>(*p).fetch_or(v, std::memory_order_relaxed); }   \
  inline T atomicXor(T* p, T v) { return std::atomic_ref<T>(*p).fetch_xor(v, std::memory_order_relaxed); }
FF_EMU_ATOMIC_BITS(int)
FF_EMU_ATOMIC_BITS(unsigned)
FF_EMU_ATOMIC_BITS(unsigned long long)
#undef FF_EMU_ATOMIC_BITS
inline int atomicSub(int* p, int v) { return std::atomic_ref<int>(*p).fetch_sub(v, std::memory_order_relaxed); }
inline unsigned atomicSub(unsigned* p, unsigned v) {
  return std::atomic_ref<unsigned>(*p).fetch_sub(v, std::memory_order_relaxed);
}

// ---- loads, bit tricks and math intrinsics (exact under the emulator) -------------------------
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i, x >>= 1) r = (r << 1) | (x & 1u);
  return r;
}
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }

inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline void __sincosf(float x, float* s, float* c) { sincosf(x, s, c); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float x, float y, float z) { return fmaf(x, y, z); }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline int __float2int_rn(float x) { return int(nearbyintf(x)); }
inline int __float2int_rz(float x) { return int(x); }

// CUDA's overloaded min/max of device code (its math headers put them in the global namespace).
#define FF_EMU_MINMAX(T)                           \
  inline T min(T a, T b) { return b < a ? b : a; } \
  inline T max(T a, T b) { return a < b ? b : a; }
FF_EMU_MINMAX(int)
FF_EMU_MINMAX(unsigned)
FF_EMU_MINMAX(long long)
FF_EMU_MINMAX(unsigned long long)
FF_EMU_MINMAX(float)
FF_EMU_MINMAX(double)
#undef FF_EMU_MINMAX

#endif  // FF_EMU_CUDA_EMU_H
