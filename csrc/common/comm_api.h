// The communicator a backend addon borrows from the MPI addon (csrc/mpi): a table of C function
// pointers, handed from one addon to the other as a type-tagged Node-API External. Only the MPI
// addon links libmpi; the cpu, cuda and cuda-emu addons call MPI through this table, on their own
// memory, so tensors never cross into JavaScript to be reduced. The table is plain C so that
// addons built apart (a prebuild beside a source build) agree on it; `version` and `size` let a
// backend refuse a table it does not know.
//
// Every collective is queued to the MPI addon's one communication thread and runs there, one at
// a time, in the order queued: each rank must queue the same collectives in the same order (as
// MPI requires). A queued collective returns a ticket; wait() blocks until it finished. Data is
// host memory (the cpu backend's, or the cuda-emu backend's, which is host memory too).
// A collective that does not finish within the job's timeout is a fault: the MPI addon asks every
// rank where it stands, prints which ranks did not join it, and aborts the job (csrc/mpi/faults.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

extern "C" {

#define FF_COMM_API_VERSION 1u

// Reductions. avg is sum / world size (NCCL's ncclAvg).
enum ff_comm_op { FF_COMM_SUM = 0, FF_COMM_AVG = 1, FF_COMM_MAX = 2, FF_COMM_MIN = 3 };

struct ff_comm_api {
  uint32_t version;  // FF_COMM_API_VERSION
  uint32_t size;     // sizeof(ff_comm_api)
  int rank;
  int world_size;
  int local_rank;  // among the ranks of this machine
  int local_world_size;
  double timeout_seconds;  // how long a collective may wait before it is a fault

  // float32 data[0..count) <- the reduction over every rank's data (in place).
  uint64_t (*all_reduce)(float* data, size_t count, int op, const char* what);
  // bytes of data on every rank <- those of rank root.
  uint64_t (*broadcast)(void* data, size_t bytes, int root, const char* what);
  // data[r*count .. (r+1)*count) on every rank <- that block of rank r (in place).
  uint64_t (*all_gather)(float* data, size_t count, const char* what);
  // Waits for a ticket. Returns null when the collective succeeded, else its error message
  // (valid until the next call on this thread).
  const char* (*wait)(uint64_t ticket);
  // Reports a collective run by other means (NCCL on a GPU) that failed or did not finish in
  // time: asks every rank where it stands, prints the ranks that did not join, aborts the job.
  // Does not return.
  void (*fatal)(const char* what, const char* why);
};

}  // extern "C"

namespace ff {
// The type tag of the External that carries a const ff_comm_api*.
inline constexpr uint64_t kCommApiTag[2] = {0x66666d70695f6170ULL, 0x695f7461626c6531ULL};
}  // namespace ff
