// cuda backend: data-parallel collectives with NCCL (csrc/common/backend_comm.h), as llm.c runs
// them: one communicator per process (one GPU each), made by every rank from rank 0's
// ncclUniqueId broadcast over MPI; collectives on a communication stream of their own, each
// waiting (an event, not a host sync) for the work queued before it on the compute stream, so
// the gradients of one bucket are reduced while the backward of the next runs. comm_wait polls
// the collective's completion event with the job's timeout (NCCL has none of its own), checks
// NCCL's asynchronous errors, and then orders later compute-stream work after it. On time-out
// the communicator is aborted and the MPI addon reports which ranks never joined.
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <vector>
#include "../common/backend.h"
#include "../common/backend_comm.h"
#include "launch.h"
#include "nccl.h"

namespace ff::cuda {
namespace {

struct Pending {
  cudaEvent_t ready;  // recorded on the compute stream before the collective
  cudaEvent_t done;   // recorded on the communication stream after it
  std::string what;
};

struct Communicator {
  const ff_comm_api* api = nullptr;
  const NcclFunctions* nccl = nullptr;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  std::vector<cudaEvent_t> spare;
  std::map<uint64_t, Pending> pending;
  uint64_t next = 1;
};

// Leaked: the process may exit with NCCL still holding the communicator.
Communicator& communicator() {
  static Communicator* c = new Communicator();
  return *c;
}

Communicator& require(const std::string& what) {
  Communicator& c = communicator();
  if (c.comm == nullptr)
    throw Error(what + ": the " + backend::name() + " backend has no communicator (call distributed.init() first)");
  return c;
}

void check_nccl(const Communicator& c, ncclResult_t r, const std::string& what) {
  if (r == ncclSuccess) return;
  throw Error(std::string(backend::name()) + ": " + what + ": " + c.nccl->GetErrorString(r));
}

cudaEvent_t take_event(Communicator& c) {
  if (!c.spare.empty()) {
    cudaEvent_t e = c.spare.back();
    c.spare.pop_back();
    return e;
  }
  cudaEvent_t e = nullptr;
  check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  return e;
}

// Queues one collective: the communication stream waits for the compute stream's work so far,
// then runs `call` (the NCCL call) and records the completion event.
template <typename Call>
uint64_t enqueue(const std::string& what, Call call) {
  Communicator& c = require(what);
  Pending p{take_event(c), take_event(c), what};
  check(cudaEventRecord(p.ready, stream()), "cudaEventRecord");
  check(cudaStreamWaitEvent(c.stream, p.ready, 0), "cudaStreamWaitEvent");
  c.nccl->Label(what.c_str());
  check_nccl(c, call(c), what);
  check(cudaEventRecord(p.done, c.stream), "cudaEventRecord");
  const uint64_t handle = c.next++;
  c.pending.emplace(handle, std::move(p));
  return handle;
}

}  // namespace
}  // namespace ff::cuda

namespace ff::backend {

void comm_attach(const ff_comm_api* api, const std::string& nccl_library) {
  cuda::Communicator& c = cuda::communicator();
  if (c.comm != nullptr) {
    if (c.api != api) throw Error(std::string(name()) + ": the backend is already bound to another communicator");
    return;
  }
  c.nccl = &cuda::load_nccl(nccl_library, api);
  ncclUniqueId id{};
  if (api->rank == 0) cuda::check_nccl(c, c.nccl->GetUniqueId(&id), "ncclGetUniqueId");
  const uint64_t ticket = api->broadcast(&id, sizeof(id), 0, "broadcast of the NCCL unique id");
  if (const char* error = api->wait(ticket)) throw Error(error);
  cuda::check_nccl(c, c.nccl->CommInitRank(&c.comm, api->world_size, id, api->rank), "ncclCommInitRank");
  cuda::check(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking), "creating the communication stream");
  c.api = api;
}

std::string comm_describe() {
  const cuda::Communicator& c = cuda::communicator();
  return c.nccl == nullptr ? "NCCL (not loaded yet)" : c.nccl->describe;
}

static ncclRedOp_t nccl_op(int op) {
  switch (op) {
    case FF_COMM_AVG: return ncclAvg;
    case FF_COMM_MAX: return ncclMax;
    case FF_COMM_MIN: return ncclMin;
    default: return ncclSum;
  }
}

uint64_t comm_all_reduce(float* data, size_t n, int op, const std::string& what) {
  return cuda::enqueue(what, [&](cuda::Communicator& c) {
    return c.nccl->AllReduce(data, data, n, ncclFloat32, nccl_op(op), c.comm, c.stream);
  });
}

uint64_t comm_broadcast(float* data, size_t n, int root, const std::string& what) {
  return cuda::enqueue(what, [&](cuda::Communicator& c) {
    return c.nccl->Broadcast(data, data, n, ncclFloat32, root, c.comm, c.stream);
  });
}

uint64_t comm_all_gather(float* data, size_t n, const std::string& what) {
  return cuda::enqueue(what, [&](cuda::Communicator& c) {
    return c.nccl->AllGather(data + size_t(c.api->rank) * n, data, n, ncclFloat32, c.comm, c.stream);
  });
}

void comm_wait(uint64_t handle) {
  cuda::Communicator& c = cuda::require("wait");
  auto it = c.pending.find(handle);
  if (it == c.pending.end())
    throw Error(std::string(name()) + ": wait: no collective has handle " + std::to_string(handle));
  cuda::Pending p = std::move(it->second);
  c.pending.erase(it);
  const auto start = std::chrono::steady_clock::now();
  for (int polls = 0;; polls++) {
    const cudaError_t e = cudaEventQuery(p.done);
    if (e == cudaSuccess) break;
    if (e != cudaErrorNotReady) cuda::check(e, p.what.c_str());
    ncclResult_t async = ncclSuccess;
    c.nccl->CommGetAsyncError(c.comm, &async);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if ((async != ncclSuccess && async != ncclInProgress) || waited > c.api->timeout_seconds) {
      const std::string why =
          async != ncclSuccess && async != ncclInProgress
              ? std::string("failed on the GPU: ") + c.nccl->GetErrorString(async)
              : "has not finished on the GPU after " + std::to_string(int(waited)) + " s (the job's timeout)";
      c.nccl->CommAbort(c.comm);
      c.api->fatal(p.what.c_str(), why.c_str());
    }
    if (polls < 64)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  cuda::check(cudaStreamWaitEvent(cuda::stream(), p.done, 0), "cudaStreamWaitEvent");
  c.spare.push_back(p.ready);
  c.spare.push_back(p.done);
}

}  // namespace ff::backend
