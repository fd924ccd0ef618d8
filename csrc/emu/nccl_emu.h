// The NCCL subset of csrc/cuda/nccl.h for the cuda-emu build: device memory is host memory, so
// each call runs the MPI addon's collective on it (csrc/common/comm_api.h) and returns when the
// collective finished, as every emulated launch does. This puts the cuda backend's
// data-parallel code (csrc/cuda/comm.cu: the communicator's bootstrap over MPI, its stream and
// events, the reductions) under test on machines without a GPU. Arguments are checked as NCCL
// checks them (ncclInvalidArgument). float32 reductions (sum, avg, max, min) and float32 or
// byte broadcasts and all-gathers: what the backend calls.
#pragma once
#if !defined(FF_EMU)
#error "nccl_emu.h is the cuda-emu build's NCCL: compile with -DFF_EMU"
#endif
#include <cstring>
#include <string>
#include "../common/comm_api.h"
#include "../cuda/nccl.h"

namespace ff::emu {

namespace nccl_detail {

inline const ff_comm_api*& api() {
  static const ff_comm_api* a = nullptr;
  return a;
}

// The label of the next call and the message of the last failure (this thread's).
inline std::string& label() {
  static thread_local std::string s;
  return s;
}
inline std::string& last_error() {
  static thread_local std::string s;
  return s;
}

constexpr char kIdTag[] = "fourierformer-emulated-nccl";

struct Communicator {
  int rank, size;
};

inline ncclResult_t fail(ncclResult_t code, const std::string& why) {
  last_error() = why;
  return code;
}

inline ncclResult_t finish(uint64_t ticket) {
  const char* error = api()->wait(ticket);
  return error == nullptr ? ncclSuccess : fail(ncclSystemError, error);
}

inline std::string what(const char* call) { return label().empty() ? std::string(call) + " (emulated NCCL)" : label(); }

inline ncclResult_t GetVersion(int* version) {
  if (version == nullptr) return fail(ncclInvalidArgument, "ncclGetVersion: version is null");
  *version = 22700;
  return ncclSuccess;
}

inline ncclResult_t GetUniqueId(ncclUniqueId* id) {
  if (id == nullptr) return fail(ncclInvalidArgument, "ncclGetUniqueId: id is null");
  std::memset(id, 0, sizeof(*id));
  std::memcpy(id->internal, kIdTag, sizeof(kIdTag));
  return ncclSuccess;
}

inline ncclResult_t CommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  if (comm == nullptr || api() == nullptr) return fail(ncclInvalidArgument, "ncclCommInitRank: no communicator");
  if (std::memcmp(id.internal, kIdTag, sizeof(kIdTag)) != 0)
    return fail(ncclInvalidArgument, "ncclCommInitRank: the unique id is not rank 0's (was it broadcast?)");
  if (nranks != api()->world_size || rank != api()->rank)
    return fail(ncclInvalidArgument, "ncclCommInitRank: rank " + std::to_string(rank) + " of " +
                                         std::to_string(nranks) + " does not match MPI's rank " +
                                         std::to_string(api()->rank) + " of " + std::to_string(api()->world_size));
  *comm = reinterpret_cast<ncclComm_t>(new Communicator{rank, nranks});
  return ncclSuccess;
}

inline ncclResult_t CommDestroy(ncclComm_t comm) {
  delete reinterpret_cast<Communicator*>(comm);
  return ncclSuccess;
}

inline ncclResult_t CommGetAsyncError(ncclComm_t, ncclResult_t* error) {
  *error = ncclSuccess;
  return ncclSuccess;
}

inline const char* GetErrorString(ncclResult_t result) {
  if (result == ncclSuccess) return "no error";
  return last_error().empty() ? "emulated NCCL error" : last_error().c_str();
}

inline ncclResult_t check(const void* send, void* recv, ncclComm_t comm, const char* call) {
  if (comm == nullptr) return fail(ncclInvalidArgument, std::string(call) + ": comm is null");
  if (send == nullptr || recv == nullptr) return fail(ncclInvalidArgument, std::string(call) + ": a buffer is null");
  return ncclSuccess;
}

inline ncclResult_t AllReduce(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                              ncclComm_t comm, cudaStream_t) {
  if (ncclResult_t r = check(send, recv, comm, "ncclAllReduce"); r != ncclSuccess) return r;
  if (type != ncclFloat32) return fail(ncclInvalidArgument, "ncclAllReduce: only float32 is emulated");
  int mapped;
  switch (op) {
    case ncclSum: mapped = FF_COMM_SUM; break;
    case ncclAvg: mapped = FF_COMM_AVG; break;
    case ncclMax: mapped = FF_COMM_MAX; break;
    case ncclMin: mapped = FF_COMM_MIN; break;
    default: return fail(ncclInvalidArgument, "ncclAllReduce: only sum, avg, max and min are emulated");
  }
  if (send != recv) std::memcpy(recv, send, count * sizeof(float));
  return finish(api()->all_reduce(static_cast<float*>(recv), count, mapped, what("ncclAllReduce").c_str()));
}

inline ncclResult_t Broadcast(const void* send, void* recv, size_t count, ncclDataType_t type, int root,
                              ncclComm_t comm, cudaStream_t) {
  if (ncclResult_t r = check(send, recv, comm, "ncclBroadcast"); r != ncclSuccess) return r;
  const size_t width = type == ncclFloat32 ? 4 : type == ncclUint8 ? 1 : 0;
  if (width == 0) return fail(ncclInvalidArgument, "ncclBroadcast: only float32 and uint8 are emulated");
  if (send != recv && api()->rank == root) std::memcpy(recv, send, count * width);
  return finish(api()->broadcast(recv, count * width, root, what("ncclBroadcast").c_str()));
}

inline ncclResult_t AllGather(const void* send, void* recv, size_t count, ncclDataType_t type, ncclComm_t comm,
                              cudaStream_t) {
  if (ncclResult_t r = check(send, recv, comm, "ncclAllGather"); r != ncclSuccess) return r;
  if (type != ncclFloat32) return fail(ncclInvalidArgument, "ncclAllGather: only float32 is emulated");
  float* out = static_cast<float*>(recv);
  float* mine = out + size_t(api()->rank) * count;
  if (send != mine) std::memmove(mine, send, count * sizeof(float));
  return finish(api()->all_gather(out, count, what("ncclAllGather").c_str()));
}

inline void Label(const char* what) { label() = what == nullptr ? "" : what; }

}  // namespace nccl_detail

inline cuda::NcclFunctions nccl_functions(const ff_comm_api* api) {
  namespace d = nccl_detail;
  d::api() = api;
  cuda::NcclFunctions f{};
  f.GetVersion = d::GetVersion;
  f.GetUniqueId = d::GetUniqueId;
  f.CommInitRank = d::CommInitRank;
  f.CommDestroy = d::CommDestroy;
  f.CommAbort = d::CommDestroy;
  f.CommGetAsyncError = d::CommGetAsyncError;
  f.GetErrorString = d::GetErrorString;
  f.AllReduce = d::AllReduce;
  f.Broadcast = d::Broadcast;
  f.AllGather = d::AllGather;
  f.Label = d::Label;
  f.describe = "NCCL emulated over MPI (host memory)";
  return f;
}

}  // namespace ff::emu
