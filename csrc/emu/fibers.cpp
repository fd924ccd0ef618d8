// Fiber mode (the default executor): each CUDA thread of a block is a Boost.Context fiber
// (fcontext) on one OS thread. A scheduler resumes the runnable fibers in thread order; a fiber
// runs until it reaches a sync point that is not yet complete (then it switches back) or returns.
// The thread that completes a barrier or a warp rendezvous marks the others runnable and goes on.
// When no fiber can run and some have not returned, the block has deadlocked: the scheduler
// records what each waits for, resumes them with the block aborting (each throws Abort from its
// sync point, unwinding its kernel frames), and the launch throws.
//
// Blocks are spread over FF_EMU_WORKERS OS threads (default 2: the caller and one helper; fewer
// where the launching thread set fewer, set_launch_threads), one launch at a time in the process.
// Each worker keeps a pool of fiber stacks (mmap'd, with a guard page), reused across blocks.
// Under AddressSanitizer every switch is announced with __sanitizer_start/finish_switch_fiber
// (Boost 1.74's fcontext fibers do not do it themselves), so ASan knows which stack is live.
#include <sys/mman.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <boost/context/fiber.hpp>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include "../common/asan_poison.h"
#include "block.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

namespace ff::emu::detail {

namespace {

namespace ctx = boost::context;

void asan_start_switch(void** fake_stack, const void* bottom, size_t size) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(fake_stack, bottom, size);
#else
  (void)fake_stack, (void)bottom, (void)size;
#endif
}

void asan_finish_switch(void* fake_stack, const void** bottom, size_t* size) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(fake_stack, bottom, size);
#else
  (void)fake_stack, (void)bottom, (void)size;
#endif
}

#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kStackSize = 1u << 20;
#else
constexpr size_t kStackSize = 256u << 10;
#endif

// Thrown at a sync point of a block that has failed: unwinds the fiber's kernel frames.
struct Abort {};

class StackPool {
 public:
  StackPool() = default;
  StackPool(const StackPool&) = delete;
  // Runs when the OS thread ends (a worker thread, not only the process). Under AddressSanitizer
  // the stacks' shadow may still mark frames of the fibers that ran there; the memory can come
  // back as anything (a thread's stack, V8's heap), so it is unpoisoned before it is unmapped.
  ~StackPool() {
    for (const ctx::stack_context& s : free_) {
      FF_UNPOISON(static_cast<char*>(s.sp) - kStackSize, kStackSize);
      munmap(base(s), kStackSize + page());
    }
  }

  ctx::stack_context get() {
    if (!free_.empty()) {
      const ctx::stack_context s = free_.back();
      free_.pop_back();
      return s;
    }
    void* mem =
        mmap(nullptr, kStackSize + page(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) throw std::bad_alloc();
    mprotect(mem, page(), PROT_NONE);  // a stack overflow faults instead of corrupting memory
    ctx::stack_context s;
    s.size = kStackSize;
    s.sp = static_cast<char*>(mem) + page() + kStackSize;
    return s;
  }
  void put(const ctx::stack_context& s) noexcept { free_.push_back(s); }

 private:
  static size_t page() { return size_t(sysconf(_SC_PAGESIZE)); }
  static void* base(const ctx::stack_context& s) { return static_cast<char*>(s.sp) - kStackSize - page(); }
  std::vector<ctx::stack_context> free_;
};

class BlockRunner;
thread_local BlockRunner* tls_runner = nullptr;  // the block running on this OS thread

class BlockRunner {
 public:
  // Runs one block to completion; throws Error describing the first failure.
  void run(const Launch& l, uint3 block_idx, void* shmem) {
    launch_ = &l;
    error_.clear();
    aborting_ = false;
    const int n = int(l.block.x * l.block.y * l.block.z);
    threads_.resize(n);
    fibers_.clear();
    fibers_.resize(n);
    block_.reset(block_idx, l.block, l.grid, threads_.data(), shmem);
    blockIdx = block_idx;
    blockDim = l.block;
    gridDim = l.grid;
    tls_runner = this;
    schedule();
    tls_runner = nullptr;
    current_ = nullptr;
    if (!error_.empty()) throw Error(error_);
  }

  uint64_t warp_op(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const std::source_location& where) {
    if (aborting_) throw Abort{};
    ThreadState& t = *current_;
    int released = 0;
    if (arrive_warp(block_, t, op, mask, value, arg, width, where, released) == Arrival::waiting) wait_released(t);
    return t.result;
  }

  int barrier(BarrierOp op, int predicate, const std::source_location& where) {
    if (aborting_) throw Abort{};
    ThreadState& t = *current_;
    int released = 0;
    if (arrive_barrier(block_, t, op, predicate, where, released) == Arrival::waiting) wait_released(t);
    return int(t.result);
  }

  void* shmem() const { return block_.shmem; }

 private:
  struct Fiber {
    ctx::fiber self;  // resumed by the scheduler
    ctx::fiber back;  // the scheduler, resumed by the fiber
    const void* stack_bottom = nullptr;
    size_t stack_size = 0;
    void* asan_fake_stack = nullptr;
    bool started = false;
  };

  // Boost.Context's StackAllocator concept, over this runner's pool.
  struct PooledStack {
    BlockRunner* runner;
    Fiber* fiber;
    ctx::stack_context allocate() {
      ctx::stack_context s = runner->stacks_.get();
      fiber->stack_bottom = static_cast<char*>(s.sp) - s.size;
      fiber->stack_size = s.size;
      return s;
    }
    void deallocate(ctx::stack_context& s) noexcept { runner->stacks_.put(s); }
  };

  void schedule() {
    const int n = block_.nthreads;
    for (;;) {
      bool live = false, progress = false;
      for (int i = 0; i < n; ++i) {
        ThreadState& t = threads_[i];
        if (t.wait == Wait::exited) continue;
        live = true;
        if (aborting_ && !fibers_[i].started) {
          t.wait = Wait::exited;
          continue;
        }
        if (t.wait != Wait::running && !aborting_) continue;
        resume(i);
        progress = true;
      }
      if (!live) return;
      if (!progress) fail(describe_stall(block_));
    }
  }

  void resume(int i) {
    current_ = &threads_[i];
    threadIdx = current_->idx;
    Fiber& f = fibers_[i];
    if (!f.started) {
      f.started = true;
      try {
        f.self = make_fiber(i, f);
      } catch (const std::exception& e) {  // no memory for another stack
        fail(std::string("emulator: cannot start thread ") + format_dim(current_->idx) + ": " + e.what());
        thread_exit(block_, *current_, false);
        return;
      }
    }
    asan_start_switch(&sched_fake_stack_, f.stack_bottom, f.stack_size);
    f.self = std::move(f.self).resume();
    asan_finish_switch(sched_fake_stack_, nullptr, nullptr);
  }

  // A fiber for thread i; on its first resume it runs the kernel, then switches back for good.
  ctx::fiber make_fiber(int i, Fiber& f) {
    return ctx::fiber(std::allocator_arg, PooledStack{this, &f}, [this, i](ctx::fiber&& back) {
      Fiber& me = fibers_[i];
      me.back = std::move(back);
      asan_finish_switch(nullptr, &sched_bottom_, &sched_size_);
      thread_main(i);
      asan_start_switch(nullptr, sched_bottom_, sched_size_);
      return std::move(me.back);
    });
  }

  // In a fiber: back to the scheduler until this thread is released (or the block aborts).
  void wait_released(ThreadState& t) {
    Fiber& f = fibers_[t.linear];
    while (t.wait != Wait::running) {
      asan_start_switch(&f.asan_fake_stack, sched_bottom_, sched_size_);
      f.back = std::move(f.back).resume();
      asan_finish_switch(f.asan_fake_stack, &sched_bottom_, &sched_size_);
      if (aborting_) throw Abort{};
    }
  }

  void thread_main(int i) {
    ThreadState& t = threads_[i];
    bool clean = false;
    try {
      launch_->thunk(launch_->closure);
      clean = true;
    } catch (const ctx::detail::forced_unwind&) {
      throw;  // Boost.Context unwinding a fiber's stack: must reach the fiber's entry
    } catch (const Abort&) {
    } catch (const Error& e) {
      fail(e.what());
    } catch (const std::exception& e) {
      fail("thread " + format_dim(t.idx) + " threw: " + e.what());
    } catch (...) {
      fail("thread " + format_dim(t.idx) + " threw an exception");
    }
    try {
      thread_exit(block_, t, clean && !aborting_);
    } catch (const Error& e) {
      fail(e.what());
    }
  }

  void fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    aborting_ = true;
  }

  StackPool stacks_;
  const Launch* launch_ = nullptr;
  BlockState block_;
  std::vector<ThreadState> threads_;
  std::vector<Fiber> fibers_;
  ThreadState* current_ = nullptr;
  std::string error_;
  bool aborting_ = false;
  const void* sched_bottom_ = nullptr;
  size_t sched_size_ = 0;
  void* sched_fake_stack_ = nullptr;
};

BlockRunner& runner() {
  thread_local BlockRunner r;
  return r;
}

BlockRunner& running_block(const char* what) {
  if (!tls_runner) throw Error(std::string(what) + " called outside a kernel");
  return *tls_runner;
}

int worker_count() {
  const char* env = std::getenv("FF_EMU_WORKERS");
  const int n = env ? std::atoi(env) : 2;
  return std::clamp(n, 1, 64);
}

// The OS threads that run blocks: the launching thread plus helpers that sleep between launches.
class Workers {
 public:
  static Workers& get() {
    static Workers* w = new Workers(worker_count());  // never destroyed: helpers outlive main()
    return *w;
  }
  int size() const { return helpers_ + 1; }

  // Runs job on the caller and on `helpers` helper threads; returns when all are done.
  void run(int helpers, const std::function<void()>& job) {
    if (helpers == 0) {
      job();
      return;
    }
    {
      std::lock_guard lk(m_);
      job_ = &job;
      want_ = helpers;
      done_ = 0;
      ++generation_;
    }
    start_.notify_all();
    job();
    std::unique_lock lk(m_);
    finished_.wait(lk, [&] { return done_ == want_; });
    job_ = nullptr;
  }

 private:
  explicit Workers(int n) : helpers_(n - 1) {
    for (int k = 0; k < helpers_; ++k) std::thread([this, k] { loop(k); }).detach();
  }

  void loop(int k) {
    uint64_t seen = 0;
    std::unique_lock lk(m_);
    for (;;) {
      start_.wait(lk, [&] { return generation_ != seen; });
      seen = generation_;
      if (k >= want_) continue;
      const std::function<void()>* job = job_;
      lk.unlock();
      (*job)();
      lk.lock();
      if (++done_ == want_) finished_.notify_all();
    }
  }

  const int helpers_;
  std::mutex m_;
  std::condition_variable start_, finished_;
  uint64_t generation_ = 0;
  const std::function<void()>* job_ = nullptr;
  int want_ = 0, done_ = 0;
};

std::mutex launch_mutex;  // one launch at a time (the workers serve one grid)

thread_local int launch_thread_limit = 0;  // set_launch_threads on this thread; 0: the whole pool

}  // namespace

uint64_t warp_op(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const std::source_location& where) {
  return running_block("a warp intrinsic").warp_op(op, mask, value, arg, width, where);
}

int block_barrier(BarrierOp op, int predicate, const std::source_location& where) {
  return running_block("__syncthreads").barrier(op, predicate, where);
}

void* dynamic_shared_memory() { return running_block("dynamic_shared_memory").shmem(); }

void run_grid(const Launch& l) {
  if (tls_runner) throw Error("a kernel launched a kernel: not supported by the emulator");
  std::lock_guard guard(launch_mutex);
  const uint64_t gx = l.grid.x, gy = l.grid.y, total = gx * gy * l.grid.z;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex error_mutex;
  std::string first_error;
  const std::function<void()> job = [&] {
    try {
      BlockRunner& r = runner();
      SharedBuffer shmem(l.shmem);
      for (uint64_t i; !stop.load(std::memory_order_relaxed) && (i = next.fetch_add(1)) < total;) {
        const uint3 idx{unsigned(i % gx), unsigned(i / gx % gy), unsigned(i / (gx * gy))};
        std::memset(shmem.get(), 0xff, l.shmem);
        try {
          r.run(l, idx, shmem.get());
        } catch (const Error& e) {
          std::lock_guard lk(error_mutex);
          if (first_error.empty())
            first_error = "block " + format_dim(idx) + " of grid " + format_dim(l.grid) + ": " + e.what();
          stop = true;
        }
      }
    } catch (const std::exception& e) {
      std::lock_guard lk(error_mutex);
      if (first_error.empty()) first_error = std::string("emulator: ") + e.what();
      stop = true;
    }
  };
  Workers::get().run(int(std::min<uint64_t>(launch_threads(), total)) - 1, job);
  if (!first_error.empty()) throw Error(first_error);
}

}  // namespace ff::emu::detail

namespace ff::emu {

int launch_threads() {
  const int pool = detail::Workers::get().size();
  return detail::launch_thread_limit > 0 ? std::min(detail::launch_thread_limit, pool) : pool;
}

void set_launch_threads(int n) { detail::launch_thread_limit = std::max(n, 1); }

}  // namespace ff::emu

namespace ff::emu::detail {

std::string executor_description() {
  const int n = Workers::get().size();
  return "fiber mode, " + std::to_string(n) + " worker thread" + (n == 1 ? "" : "s");
}

}  // namespace ff::emu::detail
