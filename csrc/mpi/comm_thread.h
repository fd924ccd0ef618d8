// The MPI addon's communication thread: the one thread of the process that calls MPI (it calls
// MPI_Init_thread, so MPI_THREAD_FUNNELED is all the library must provide). JavaScript and the
// backend addons queue collectives here (submit) and wait for them (wait); the thread runs them
// one at a time, in the order queued, as nonblocking MPI collectives that it polls, so that while
// it polls it can
//   - notice that a collective has waited longer than the job's timeout, ask every rank where it
//     stands and abort the job naming the ranks that never joined (faults.h);
//   - answer the same question from other ranks, even when it has nothing to do;
//   - sleep between polls (50 us) instead of spinning on a core the ranks' compute threads need.
// Running collectives off the caller's thread is what lets the gradient all-reduce of one bucket
// overlap the backward pass that produces the next (lib/nn/distributed-data-parallel.ts).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ff::mpi {

enum class JobKind { AllReduceF32, AllReduceF64, Broadcast, AllGatherF32, AllGatherBytes, Barrier, Bench, Fatal };

struct Job {
  JobKind kind;
  void* data = nullptr;
  size_t count = 0;  // elements (bytes for Broadcast and AllGatherBytes)
  int op = 0;        // ff_comm_op
  int root = 0;
  int iterations = 0;        // Bench
  std::string what;          // for messages: "all-reduce of gradient bucket 2 of 5"
  std::string why;           // Fatal
  double* result = nullptr;  // Bench: seconds per MPI_Allreduce
};

struct WorldInfo {
  int rank = 0, size = 1, local_rank = 0, local_size = 1;
  std::vector<int> pids;
  std::vector<std::string> hosts;
  std::string library;  // MPI_Get_library_version, first line
  double timeout = 0;
};

// Starts the thread and MPI (once per process; later calls return the same world). Throws
// ff::Error when MPI cannot start.
const WorldInfo& start(double timeout_seconds);
bool started();
// Queues a collective; returns its ticket (> 0).
uint64_t submit(Job job);
// Blocks until the ticket's collective finished: "" when it succeeded, else MPI's message.
std::string wait(uint64_t ticket);
// The training loop's position ("fourier step 7"), reported to other ranks in fault messages.
void set_marker(const std::string& marker);
// Seconds the thread spent inside collectives, and how many it ran, since the last reset.
struct Counters {
  double busy_seconds = 0;
  uint64_t collectives = 0;
  double bytes = 0;
};
Counters counters(bool reset);
// MPI_Finalize on the thread, then stops it (no-op when not started or already finalized).
void finalize();
// MPI_Abort of the whole job with `code`, after printing message (does not return).
[[noreturn]] void abort_job(int code, const std::string& message);

}  // namespace ff::mpi
