// Thread mode (FF_EMU_THREADS; the ThreadSanitizer build): one OS thread per CUDA thread, from a
// pool that grows to the largest block seen; one block at a time. Threads synchronise only where
// a GPU's would: a barrier is a mutex and condition variable shared by the block, a warp
// rendezvous one per warp, so ThreadSanitizer reports a missing __syncthreads (or __syncwarp) as
// a data race on the shared memory involved. Deadlocks are detected without timeouts: a relaxed
// counter of running threads (no happens-before edges, so it hides no race) reaching zero while
// some thread has not returned means no thread can ever release another.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include "block.h"

namespace ff::emu::detail {

namespace {

// Thrown at a sync point of a block that has failed: unwinds the thread's kernel frames.
struct Abort {};

constexpr int kMaxWarps = 32;  // 1024 threads

thread_local ThreadState* tls_thread = nullptr;

class ThreadBlockRunner {
 public:
  static ThreadBlockRunner& get() {
    static ThreadBlockRunner* r = new ThreadBlockRunner;  // never destroyed: its threads outlive main()
    return *r;
  }

  // Runs one block to completion; throws Error describing the first failure.
  void run(const Launch& l, uint3 block_idx, void* shmem) {
    const int n = int(l.block.x * l.block.y * l.block.z);
    while (int(pool_size_) < n) {
      const int k = pool_size_++;
      std::thread([this, k] { worker(k); }).detach();
    }
    std::unique_lock lk(m_);
    launch_ = &l;
    threads_.resize(n);
    block_.reset(block_idx, l.block, l.grid, threads_.data(), shmem);
    error_.clear();
    aborting_ = false;
    counters_ = uint64_t(n);
    nthreads_ = n;
    done_ = 0;
    ++generation_;
    start_.notify_all();
    finished_.wait(lk, [&] { return done_ == nthreads_; });
    if (!error_.empty()) throw Error(error_);
  }

  uint64_t warp_op(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const std::source_location& where) {
    ThreadState& t = current();
    WarpSync& ws = warp_sync_[t.linear / 32];
    std::unique_lock lk(ws.m);
    if (aborting_) throw Abort{};
    int released = 0;
    if (arrive_warp(block_, t, op, mask, value, arg, width, where, released) == Arrival::waiting) {
      block_on(lk, ws.cv, t);
    } else if (released > 0) {
      counters_.fetch_add(uint64_t(released), std::memory_order_relaxed);
      ws.cv.notify_all();
    }
    return t.result;
  }

  int barrier(BarrierOp op, int predicate, const std::source_location& where) {
    ThreadState& t = current();
    std::unique_lock lk(barrier_m_);
    if (aborting_) throw Abort{};
    int released = 0;
    if (arrive_barrier(block_, t, op, predicate, where, released) == Arrival::waiting) {
      block_on(lk, barrier_cv_, t);
    } else if (released > 0) {
      counters_.fetch_add(uint64_t(released), std::memory_order_relaxed);
      barrier_cv_.notify_all();
    }
    return int(t.result);
  }

  void* shmem() {
    current();
    return block_.shmem;
  }

 private:
  struct WarpSync {
    std::mutex m;
    std::condition_variable cv;
  };

  static ThreadState& current() {
    if (!tls_thread) throw Error("a sync intrinsic was called outside a kernel");
    return *tls_thread;
  }
  static uint32_t running(uint64_t c) { return uint32_t(c); }
  static uint32_t exited(uint64_t c) { return uint32_t(c >> 32); }

  void worker(int k) {
    uint64_t seen = 0;
    std::unique_lock lk(m_);
    for (;;) {
      start_.wait(lk, [&] { return generation_ != seen; });
      seen = generation_;
      if (k >= nthreads_) continue;
      lk.unlock();
      run_thread(threads_[k]);
      lk.lock();
      if (++done_ == nthreads_) finished_.notify_all();
    }
  }

  void run_thread(ThreadState& t) {
    tls_thread = &t;
    threadIdx = t.idx;
    blockIdx = block_.idx;
    blockDim = block_.dim;
    gridDim = block_.grid;
    pass_start_gate();
    bool clean = false;
    try {
      launch_->thunk(launch_->closure);
      clean = true;
    } catch (const Abort&) {
    } catch (const Error& e) {
      fail(e.what());
    } catch (const std::exception& e) {
      fail("thread " + format_dim(t.idx) + " threw: " + e.what());
    } catch (...) {
      fail("thread " + format_dim(t.idx) + " threw an exception");
    }
    std::string exit_error;
    {
      std::scoped_lock lk(barrier_m_, warp_sync_[t.linear / 32].m);
      try {
        thread_exit(block_, t, clean && !aborting_);
      } catch (const Error& e) {
        exit_error = e.what();
      }
    }
    if (!exit_error.empty()) fail(exit_error);
    const uint64_t before = counters_.fetch_add((uint64_t(1) << 32) - 1, std::memory_order_relaxed);
    if (running(before) == 1 && int(exited(before)) + 1 < nthreads_) stall();
    tls_thread = nullptr;
  }

  // Every thread of the block waits here before running the kernel. Without it a thread could
  // finish its kernel before another has even woken up; that one's wake-up, through the pool's
  // mutex, would then order the two threads' kernel code and hide their races from TSan.
  void pass_start_gate() {
    std::unique_lock lk(gate_m_);
    if (++gate_count_ == nthreads_) {
      gate_count_ = 0;
      ++gate_generation_;
      gate_cv_.notify_all();
      return;
    }
    const uint64_t generation = gate_generation_;
    gate_cv_.wait(lk, [&] { return gate_generation_ != generation; });
  }

  // Waits (holding lk's mutex in between) until t is released or the block aborts.
  void block_on(std::unique_lock<std::mutex>& lk, std::condition_variable& cv, ThreadState& t) {
    const uint64_t before = counters_.fetch_sub(1, std::memory_order_relaxed);
    if (running(before) == 1) {  // nobody is left to release anybody
      lk.unlock();
      stall();
      lk.lock();
    }
    cv.wait(lk, [&] { return t.wait == Wait::running || aborting_.load(std::memory_order_relaxed); });
    if (aborting_.load(std::memory_order_relaxed)) throw Abort{};
  }

  void stall() {
    if (aborting_) return;
    std::string message;
    {
      std::unique_lock b(barrier_m_);
      std::unique_lock<std::mutex> w[kMaxWarps];
      const int nwarps = int(block_.warps.size());
      for (int i = 0; i < nwarps; ++i) w[i] = std::unique_lock(warp_sync_[i].m);
      bool stuck = true;
      for (int i = 0; i < nthreads_; ++i) stuck = stuck && threads_[i].wait != Wait::running;
      if (stuck) message = describe_stall(block_);
    }
    if (!message.empty()) fail(message);
  }

  // Records the block's first error and wakes every waiting thread to abort.
  void fail(const std::string& message) {
    {
      std::lock_guard lk(error_m_);
      if (error_.empty()) error_ = message;
    }
    aborting_ = true;
    { std::lock_guard lk(barrier_m_); }
    barrier_cv_.notify_all();
    for (WarpSync& ws : warp_sync_) {
      { std::lock_guard lk(ws.m); }
      ws.cv.notify_all();
    }
  }

  std::atomic<int> pool_size_{0};
  std::mutex gate_m_;
  std::condition_variable gate_cv_;
  int gate_count_ = 0;
  uint64_t gate_generation_ = 0;
  std::mutex m_;
  std::condition_variable start_, finished_;
  uint64_t generation_ = 0;
  int nthreads_ = 0, done_ = 0;
  const Launch* launch_ = nullptr;
  BlockState block_;
  std::vector<ThreadState> threads_;
  std::atomic<uint64_t> counters_{0};  // low 32 bits: running threads; high 32: exited ones
  std::atomic<bool> aborting_{false};
  std::mutex error_m_;
  std::string error_;
  std::mutex barrier_m_;
  std::condition_variable barrier_cv_;
  WarpSync warp_sync_[kMaxWarps];
};

std::mutex launch_mutex;

}  // namespace

uint64_t warp_op(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const std::source_location& where) {
  return ThreadBlockRunner::get().warp_op(op, mask, value, arg, width, where);
}

int block_barrier(BarrierOp op, int predicate, const std::source_location& where) {
  return ThreadBlockRunner::get().barrier(op, predicate, where);
}

void* dynamic_shared_memory() { return ThreadBlockRunner::get().shmem(); }

void run_grid(const Launch& l) {
  if (tls_thread) throw Error("a kernel launched a kernel: not supported by the emulator");
  std::lock_guard guard(launch_mutex);
  SharedBuffer shmem(l.shmem);
  for (unsigned z = 0; z < l.grid.z; ++z)
    for (unsigned y = 0; y < l.grid.y; ++y)
      for (unsigned x = 0; x < l.grid.x; ++x) {
        const uint3 idx{x, y, z};
        std::memset(shmem.get(), 0xff, l.shmem);
        try {
          ThreadBlockRunner::get().run(l, idx, shmem.get());
        } catch (const Error& e) {
          throw Error("block " + format_dim(idx) + " of grid " + format_dim(l.grid) + ": " + e.what());
        }
      }
}

}  // namespace ff::emu::detail

namespace ff::emu {

int launch_threads() { return 1; }
void set_launch_threads(int) {}

}  // namespace ff::emu

namespace ff::emu::detail {

std::string executor_description() { return "thread mode: one OS thread per CUDA thread, one block at a time"; }

}  // namespace ff::emu::detail
