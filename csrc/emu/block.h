// The emulator's state of one running block and the rules of its sync points, shared by both
// executors (fibers.cpp, threads.cpp). The functions here only update state and decide; the
// executor makes a thread wait (fiber switch or condition variable) and wakes it.
//
// Locking (thread mode): arrive_warp and a lane's exit hold that warp's lock; arrive_barrier and
// every exit hold the barrier lock. Fiber mode runs a block on one OS thread and needs none.
#pragma once
#include <algorithm>
#include <new>
#include <source_location>
#include <string>
#include <vector>
#include "cuda_emu.h"

namespace ff::emu::detail {

enum class Wait : uint8_t { running, barrier, warp, exited };

struct ThreadState {
  uint3 idx{};
  int linear = 0;  // x + y*bx + z*bx*by; warp = linear / 32, lane = linear % 32
  Wait wait = Wait::running;
  std::source_location where;  // of the sync point it waits at
  WarpOp op = WarpOp::sync;    // the warp intrinsic in flight, and its operands
  unsigned mask = 0;
  uint64_t value = 0;
  int arg = 0;
  int width = 32;
  uint64_t result = 0;  // written by whoever completes the sync point
};

// Lanes of one warp meeting at one mask (a warp may have several pending, disjoint masks).
struct Rendezvous {
  unsigned mask;
  unsigned arrived;
  WarpOp op;
  std::source_location where;
};

struct WarpState {
  unsigned present = 0;  // lanes that exist (a block's last warp may be partial)
  unsigned exited = 0;
  std::vector<Rendezvous> pending;
};

struct BarrierState {
  int arrived = 0;
  int sum = 0;  // of the predicates, for __syncthreads_count/and/or
  BarrierOp op = BarrierOp::sync;
  std::source_location where;
  int exited = 0;  // threads of the block that have returned
};

struct BlockState {
  uint3 idx{};
  dim3 dim, grid;
  int nthreads = 0;
  ThreadState* threads = nullptr;  // nthreads of them, by linear index
  std::vector<WarpState> warps;
  BarrierState barrier;
  void* shmem = nullptr;

  // Makes the state of a fresh block (threads must hold nthreads ThreadStates).
  void reset(uint3 block_idx, dim3 block_dim, dim3 grid_dim, ThreadState* states, void* shared);
};

// A block's dynamic shared memory: exactly the launch's size (so AddressSanitizer sees an overflow
// of it), 16-byte aligned.
class SharedBuffer {
 public:
  explicit SharedBuffer(size_t bytes)
      : p_(static_cast<unsigned char*>(::operator new[](std::max<size_t>(bytes, 1), kAlign))) {}
  SharedBuffer(const SharedBuffer&) = delete;
  ~SharedBuffer() { ::operator delete[](p_, kAlign); }
  unsigned char* get() const { return p_; }

 private:
  static constexpr std::align_val_t kAlign{16};
  unsigned char* p_;
};

enum class Arrival { completed, waiting };

// A lane arrives at a warp intrinsic. Throws ff::emu::Error on misuse (mask without the caller,
// naming an exited or absent lane, lanes of one mask in different intrinsics). On completion
// every lane's result is set and its wait is running again; `released` counts the other lanes.
Arrival arrive_warp(BlockState& b, ThreadState& t, WarpOp op, unsigned mask, uint64_t value, int arg, int width,
                    const std::source_location& where, int& released);
// A thread arrives at a __syncthreads. Throws when threads wait at different barriers or some
// have exited (the barrier could never complete).
Arrival arrive_barrier(BlockState& b, ThreadState& t, BarrierOp op, int predicate, const std::source_location& where,
                       int& released);
// A thread returns from the kernel. With `check`, throws when others wait for it (a pending
// barrier or a rendezvous whose mask names it).
void thread_exit(BlockState& b, ThreadState& t, bool check);
// What every waiting thread waits for, when none can run: the deadlock message.
std::string describe_stall(const BlockState& b);

std::string format_dim(uint3 v);
std::string format_site(const std::source_location& w);

}  // namespace ff::emu::detail

namespace ff::emu::detail {

// The executor (fibers.cpp or threads.cpp): runs every block of a validated launch, throws
// ff::emu::Error with the first failing block's message.
void run_grid(const Launch& l);
// "fiber mode, 2 worker threads" or "thread mode (one OS thread per CUDA thread)".
std::string executor_description();

}  // namespace ff::emu::detail
