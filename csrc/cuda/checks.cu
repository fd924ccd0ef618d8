// cuda backend: the argument checks of backend_checks.h on the device, reported at the next
// synchronisation (PyTorch's device-side asserts), and the count of host synchronisations.
//
// A check is two kernels queued on the stream, no wait: find_first_kernel (grid-stride,
// atomicMin of the index of a failing element into device scratch: the first one whatever the
// order) and record_kernel (one thread: if that index exists and no failure is recorded yet,
// writes the failure into `Record`, which lives in pinned host memory mapped into the device's
// address space). download() and synchronize() call report_failed_checks() after their stream
// synchronisation: a recorded failure is cleared and thrown as ff::Error. The ops that index
// with ids also skip invalid ones themselves, so nothing reads out of bounds meanwhile.
// Cost per check: 1 read per element, 2 launches, 1 memset of 8 bytes.
#include <algorithm>
#include <atomic>
#include "../common/backend.h"
#include "../common/backend_checks.h"
#include "../common/ids.h"
#include "launch.h"
#include "strided_index.h"

namespace ff::cuda {
namespace {

constexpr unsigned long long kNone = ~0ull;

enum class Kind : int { kFinite = 0, kIds = 1 };

// The first failure since the last report. `failed` is written last (after a system fence), so a
// host that sees it set after a stream synchronisation sees the other fields too.
struct Record {
  int failed;
  Kind kind;
  const char* op;  // string literals of the host, only copied by the device
  const char* arg;
  long long index, limit, allowed;
  int has_allowed;
  float value;
};

Record* record() {
  static Record* r = [] {
    void* p = nullptr;
    check(cudaMallocHost(&p, sizeof(Record)), "allocating the device-side check record");
    auto* rec = static_cast<Record*>(p);
    rec->failed = 0;
    return rec;
  }();
  return r;
}

std::atomic<uint64_t> syncs{0};

__device__ inline bool fails(Kind kind, float x, long long limit, bool has_allowed, long long allowed) {
  return kind == Kind::kFinite ? !(fabsf(x) <= 3.402823466e38f) : !id_is_valid(x, limit, has_allowed, allowed);
}

__global__ void __launch_bounds__(kThreads)
    find_first_kernel(Kind kind, const float* x, int64_t n, long long limit, bool has_allowed, long long allowed,
                      unsigned long long* first) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    if (fails(kind, x[i], limit, has_allowed, allowed)) {
      atomicMin(first, (unsigned long long)i);
      return;  // later elements of this thread are further on
    }
}

__global__ void record_kernel(Kind kind, const float* x, const unsigned long long* first, const char* op,
                              const char* arg, long long limit, bool has_allowed, long long allowed, Record* rec) {
  const unsigned long long i = *first;
  if (i == kNone || rec->failed) return;
  rec->kind = kind;
  rec->op = op;
  rec->arg = arg;
  rec->index = (long long)i;
  rec->value = x[i];
  rec->limit = limit;
  rec->allowed = allowed;
  rec->has_allowed = has_allowed;
  __threadfence_system();
  rec->failed = 1;
}

void queue_check(Kind kind, const float* x, int64_t n, long long limit, bool has_allowed, long long allowed,
                 const char* op, const char* arg) {
  if (n == 0) return;
  Record* rec = record();
  auto* first = static_cast<unsigned long long*>(backend::alloc(sizeof(unsigned long long)));
  try {
    check(cudaMemsetAsync(first, 0xff, sizeof(unsigned long long), stream()), op);
    const unsigned blocks = blocks_for(n);
    FF_LAUNCH(find_first_kernel, dim3(blocks), dim3(kThreads), 0, kind, x, n, limit, has_allowed, allowed, first);
    FF_LAUNCH(record_kernel, dim3(1), dim3(1), 0, kind, x, first, op, arg, limit, has_allowed, allowed, rec);
  } catch (...) {
    backend::release(first);
    throw;
  }
  backend::release(first);  // stream-ordered reuse: later work queues after these kernels
}

}  // namespace

void count_host_sync() { syncs.fetch_add(1, std::memory_order_relaxed); }

void report_failed_checks() {
  Record* rec = record();
  if (!rec->failed) return;
  const Record r = *rec;
  rec->failed = 0;
  const std::string where =
      std::string(" (") + r.op + ", checked on the device and reported at the next synchronisation)";
  if (r.kind == Kind::kFinite) throw Error(backend::not_finite_message(r.arg, r.value) + where);
  throw Error(backend::invalid_id_message(r.arg, r.index, r.value, r.limit, r.has_allowed != 0, r.allowed) + where);
}

}  // namespace ff::cuda

namespace ff::backend {

void check_finite(const float* x, size_t n, const char* op, const char* arg) {
  cuda::queue_check(cuda::Kind::kFinite, x, int64_t(n), 0, false, 0, op, arg);
}

void check_ids(const float* ids, int64_t n, int64_t limit, bool has_allowed, int64_t allowed, const char* op,
               const char* arg) {
  cuda::queue_check(cuda::Kind::kIds, ids, n, limit, has_allowed, allowed, op, arg);
}

uint64_t host_syncs() { return cuda::syncs.load(std::memory_order_relaxed); }

}  // namespace ff::backend
