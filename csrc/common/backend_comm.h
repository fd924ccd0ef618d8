// Collectives on a backend's own memory, for data-parallel training (lib/distributed). The
// communicator comes from the MPI addon as a table of C functions (comm_api.h):
//   cpu       calls the table on its host memory: MPI collectives on the MPI addon's thread;
//   cuda      NCCL (loaded at run time from nccl_library) on a communication stream of its own,
//             its communicator bootstrapped by broadcasting ncclUniqueId over the table (as
//             llm.c does); a collective waits for the work queued before it on the compute
//             stream, and comm_wait() makes later work wait for the collective;
//   cuda-emu  the same CUDA source, with NCCL emulated by the table's MPI collectives on host
//             memory (csrc/emu/nccl_emu.h), as cuBLAS is emulated by OpenBLAS.
// Every rank must call the same collectives in the same order. A collective queued here returns
// a handle; comm_wait(handle) returns when it finished (throws ff::Error on failure). A
// collective that takes longer than the job's timeout ends the job with a report naming the
// ranks that did not join it. Cost: the network's (or NVLink's) time for 2 (n-1)/n of the bytes
// per rank for an all-reduce (ring), (n-1)/n for a broadcast or all-gather.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include "comm_api.h"

namespace ff::backend {

// Binds the backend to the communicator (once per process; later calls with the same table
// return). A collective itself on cuda (NCCL's communicator is created by every rank together).
void comm_attach(const ff_comm_api* api, const std::string& nccl_library);
// What carries the data: "MPI (host memory)", "NCCL 2.27.3", "NCCL emulated over MPI".
std::string comm_describe();

// data[0..n) <- the op (ff_comm_op) over every rank's data, in place.
uint64_t comm_all_reduce(float* data, size_t n, int op, const std::string& what);
// data[0..n) <- rank root's.
uint64_t comm_broadcast(float* data, size_t n, int root, const std::string& what);
// data[r*n .. (r+1)*n) <- rank r's block, in place (data holds world_size * n floats).
uint64_t comm_all_gather(float* data, size_t n, const std::string& what);
void comm_wait(uint64_t handle);

}  // namespace ff::backend
