// NCCL for the cuda backend, loaded at run time: a machine that never trains on several GPUs
// needs no NCCL, so the addon does not link it. The declarations below are the part of NCCL 2's
// C ABI the backend calls (stable across NCCL 2.x; ncclAvg since 2.10), so the build needs no
// nccl.h either. load_nccl() dlopens the library (the path lib/distributed/nccl.ts found, or
// libnccl.so.2 from the dynamic linker's path) and resolves the functions; under the emulator it
// returns NCCL emulated over the MPI addon's collectives (csrc/emu/nccl_emu.h).
#pragma once
#include <cstddef>
#include <string>
#include "../common/comm_api.h"
#include "launch.h"

typedef struct ncclComm* ncclComm_t;
#define NCCL_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;
typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7,
} ncclResult_t;
typedef enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 } ncclRedOp_t;
typedef enum { ncclUint8 = 1, ncclFloat32 = 7 } ncclDataType_t;

namespace ff::cuda {

struct NcclFunctions {
  ncclResult_t (*GetVersion)(int* version);
  ncclResult_t (*GetUniqueId)(ncclUniqueId* id);
  ncclResult_t (*CommInitRank)(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank);
  ncclResult_t (*CommDestroy)(ncclComm_t comm);
  ncclResult_t (*CommAbort)(ncclComm_t comm);
  ncclResult_t (*CommGetAsyncError)(ncclComm_t comm, ncclResult_t* error);
  const char* (*GetErrorString)(ncclResult_t result);
  ncclResult_t (*AllReduce)(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                            ncclComm_t comm, cudaStream_t stream);
  ncclResult_t (*Broadcast)(const void* send, void* recv, size_t count, ncclDataType_t type, int root, ncclComm_t comm,
                            cudaStream_t stream);
  ncclResult_t (*AllGather)(const void* send, void* recv, size_t count, ncclDataType_t type, ncclComm_t comm,
                            cudaStream_t stream);
  // What the next call is for, in the emulator's fault reports (a no-op with real NCCL).
  void (*Label)(const char* what);
  std::string describe;  // "NCCL 2.27.3 (/path/libnccl.so.2)"
};

// Loads NCCL once (throws ff::Error naming the library and what is missing).
const NcclFunctions& load_nccl(const std::string& library, const ff_comm_api* api);

}  // namespace ff::cuda
