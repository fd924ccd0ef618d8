#include "comm_thread.h"
#include <mpi.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include "../common/comm_api.h"
#include "../common/error.h"
#include "faults.h"

namespace ff::mpi {
namespace {

using Clock = std::chrono::steady_clock;

struct State {
  std::mutex mutex;
  std::condition_variable jobs_changed, done_changed;
  std::deque<std::pair<uint64_t, Job>> queue;
  uint64_t next_ticket = 1;
  uint64_t done_through = 0;  // tickets finish in order
  std::map<uint64_t, std::string> errors;
  bool starting = false, running = false, stopping = false, finalized = false;
  std::string start_error;
  std::thread thread;
  WorldInfo world;
  Counters counters;
  MPI_Comm work = MPI_COMM_NULL, fault = MPI_COMM_NULL;
};

// Never destroyed: the thread may still be running when static destructors would run.
State& state() {
  static State* s = new State();
  return *s;
}

std::string mpi_error(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, len);
}

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// condition_variable::wait through wait_for: the untimed wait is a GLIBCXX_3.4.30 symbol (GCC 12),
// which would raise the prebuild's libstdc++ baseline above the cpu addon's (GCC 11).
template <typename Predicate>
void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, Predicate ready) {
  while (!ready()) cv.wait_for(lock, std::chrono::seconds(1));
}

MPI_Op mpi_op(int op) {
  switch (op) {
    case FF_COMM_MAX: return MPI_MAX;
    case FF_COMM_MIN: return MPI_MIN;
    default: return MPI_SUM;  // avg: sum, then / size
  }
}

// Polls a request to completion: answers other ranks' questions between polls, sleeps 50 us once
// it has polled a while, and past the timeout hands over to faults::report (which aborts unless
// the request completes during its grace period).
std::string poll(MPI_Request& request, const Job& job) {
  const auto start = Clock::now();
  const double timeout = state().world.timeout;
  for (int polls = 0;; polls++) {
    int done = 0;
    const int rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
      faults::report(nullptr, job.what, "failed: " + mpi_error(rc), since(start));
      return mpi_error(rc);
    }
    if (done) return "";
    faults::serve();
    const double waited = since(start);
    if (waited > timeout) {
      const std::string why =
          "has waited " + std::to_string(int(waited)) + " s (the job's timeout) for every rank to join it";
      if (faults::report(&request, job.what, why, waited)) return "";
    }
    if (polls < 64)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

// osu_allreduce's loop on separate send and receive buffers: each call timed alone, a barrier
// between calls; the mean time per call, averaged over the ranks.
double bench(const Job& job) {
  std::vector<float> send(job.count, 1.0f), recv(job.count);
  MPI_Comm comm = state().work;
  const int warmup = std::max(2, job.iterations / 10);
  double total = 0;
  for (int i = 0; i < warmup + job.iterations; i++) {
    const double t0 = MPI_Wtime();
    MPI_Allreduce(send.data(), recv.data(), int(job.count), MPI_FLOAT, MPI_SUM, comm);
    if (i >= warmup) total += MPI_Wtime() - t0;
    MPI_Barrier(comm);
  }
  double mean = total / job.iterations, sum = 0;
  MPI_Allreduce(&mean, &sum, 1, MPI_DOUBLE, MPI_SUM, comm);
  return sum / state().world.size;
}

std::string run(uint64_t seq, Job& job) {
  State& s = state();
  faults::progress(seq, seq - 1, job.what);
  if (job.kind == JobKind::Fatal) faults::report(nullptr, job.what, job.why, 0);
  if (job.kind == JobKind::Bench) {
    *job.result = bench(job);
    return "";
  }
  if (job.count > size_t(INT_MAX))
    return job.what + ": " + std::to_string(job.count) + " elements are more than one MPI call takes (2^31 - 1)";
  const int n = int(job.count);
  MPI_Request request = MPI_REQUEST_NULL;
  int rc = MPI_SUCCESS;
  switch (job.kind) {
    case JobKind::AllReduceF32:
      rc = MPI_Iallreduce(MPI_IN_PLACE, job.data, n, MPI_FLOAT, mpi_op(job.op), s.work, &request);
      break;
    case JobKind::AllReduceF64:
      rc = MPI_Iallreduce(MPI_IN_PLACE, job.data, n, MPI_DOUBLE, mpi_op(job.op), s.work, &request);
      break;
    case JobKind::Broadcast: rc = MPI_Ibcast(job.data, n, MPI_BYTE, job.root, s.work, &request); break;
    case JobKind::AllGatherF32:
      rc = MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, job.data, n, MPI_FLOAT, s.work, &request);
      break;
    case JobKind::AllGatherBytes:
      rc = MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, job.data, n, MPI_BYTE, s.work, &request);
      break;
    case JobKind::Barrier: rc = MPI_Ibarrier(s.work, &request); break;
    default: return "unknown collective";
  }
  if (rc != MPI_SUCCESS) return job.what + ": " + mpi_error(rc);
  const auto start = Clock::now();
  std::string error = poll(request, job);
  if (!error.empty()) return job.what + ": " + error;
  if (job.op == FF_COMM_AVG) {
    const int size = s.world.size;
    if (job.kind == JobKind::AllReduceF32) {
      const float inv = 1.0f / float(size);
      float* x = static_cast<float*>(job.data);
      for (size_t i = 0; i < job.count; i++) x[i] *= inv;
    } else if (job.kind == JobKind::AllReduceF64) {
      double* x = static_cast<double*>(job.data);
      for (size_t i = 0; i < job.count; i++) x[i] /= size;
    }
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  s.counters.busy_seconds += since(start);
  s.counters.collectives++;
  const size_t width = job.kind == JobKind::AllReduceF64                                        ? 8
                       : job.kind == JobKind::AllReduceF32 || job.kind == JobKind::AllGatherF32 ? 4
                                                                                                : 1;
  s.counters.bytes += double(job.count) * width;
  return "";
}

// Open MPI's nonblocking all-reduce (coll/libnbc, which MPI_Iallreduce runs here) chose a
// binomial tree for our in-place gradient buckets: a reduce to rank 0 and a broadcast back, each
// moving the whole message, at 0.5-0.6 of the blocking MPI_Allreduce's bus bandwidth on 2 ranks
// (1 MiB to 64 MiB). Its ring (reduce-scatter then all-gather, each rank sending 2 (n-1)/n of the
// message: the algorithm of NCCL and Horovod for gradient buckets) measured 1.0-1.8x the blocking
// call there (docs/distributed.md). It also gives every rank the same bits: each block is summed
// by one rank, in one order, then copied. A value the user set (mpirun exports OMPI_MCA_* to
// every rank, which must agree) is kept. Other MPI libraries ignore the variable.
void prefer_ring_allreduce() {
#ifdef OPEN_MPI
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", /*overwrite=*/0);
#endif
}

void start_mpi(double timeout) {
  State& s = state();
  prefer_ring_allreduce();
  int provided = 0;
  int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  if (rc != MPI_SUCCESS) throw Error("MPI_Init_thread failed: " + mpi_error(rc));
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_dup(MPI_COMM_WORLD, &s.work);
  MPI_Comm_dup(MPI_COMM_WORLD, &s.fault);
  MPI_Comm_set_errhandler(s.work, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(s.fault, MPI_ERRORS_RETURN);
  WorldInfo& w = s.world;
  w.timeout = timeout;
  MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &w.size);
  MPI_Comm local = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w.rank, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &w.local_rank);
  MPI_Comm_size(local, &w.local_size);
  MPI_Comm_free(&local);
  struct Who {
    int32_t pid;
    char host[64];
  };
  Who me{int32_t(getpid()), {}};
  gethostname(me.host, sizeof(me.host) - 1);
  std::vector<Who> all(w.size);
  rc = MPI_Allgather(&me, sizeof(Who), MPI_BYTE, all.data(), sizeof(Who), MPI_BYTE, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) throw Error("MPI_Allgather of the ranks' hosts failed: " + mpi_error(rc));
  for (const Who& x : all) {
    w.pids.push_back(x.pid);
    w.hosts.emplace_back(x.host, strnlen(x.host, sizeof(x.host)));
  }
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(version, &len);
  w.library = std::string(version, len);
  w.library = w.library.substr(0, w.library.find_first_of("\n,"));
  faults::setup(s.fault, w);
}

void thread_main(double timeout) {
  State& s = state();
  try {
    start_mpi(timeout);
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.start_error = e.what();
    s.starting = false;
    s.done_changed.notify_all();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.running = true;
    s.starting = false;
    s.done_changed.notify_all();
  }
  for (;;) {
    std::unique_lock<std::mutex> lock(s.mutex);
    // Idle: wake every 20 ms to answer other ranks' fault questions.
    s.jobs_changed.wait_for(lock, std::chrono::milliseconds(20), [&] { return !s.queue.empty() || s.stopping; });
    if (s.queue.empty()) {
      if (s.stopping) break;
      lock.unlock();
      faults::serve();
      continue;
    }
    auto [ticket, job] = std::move(s.queue.front());
    s.queue.pop_front();
    lock.unlock();
    std::string error = run(ticket, job);
    faults::progress(ticket, ticket, job.what);
    lock.lock();
    s.done_through = ticket;
    if (!error.empty()) s.errors[ticket] = error;
    s.done_changed.notify_all();
  }
  faults::teardown();
  MPI_Comm_free(&s.work);
  MPI_Comm_free(&s.fault);
  MPI_Finalize();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.running = false;
  s.finalized = true;
  s.done_changed.notify_all();
}

}  // namespace

const WorldInfo& start(double timeout_seconds) {
  State& s = state();
  std::unique_lock<std::mutex> lock(s.mutex);
  if (s.finalized) throw Error("MPI was finalized in this process; it cannot start again");
  if (!s.running && !s.starting) {
    if (!s.start_error.empty()) throw Error(s.start_error);
    s.starting = true;
    s.thread = std::thread(thread_main, timeout_seconds);
    s.thread.detach();
  }
  wait_until(s.done_changed, lock, [&] { return !s.starting; });
  if (!s.running) throw Error(s.start_error);
  return s.world;
}

bool started() {
  std::lock_guard<std::mutex> lock(state().mutex);
  return state().running;
}

uint64_t submit(Job job) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.running || s.stopping) throw Error(job.what + ": MPI is not running (call distributed.init() first)");
  const uint64_t ticket = s.next_ticket++;
  s.queue.emplace_back(ticket, std::move(job));
  s.jobs_changed.notify_one();
  return ticket;
}

std::string wait(uint64_t ticket) {
  State& s = state();
  std::unique_lock<std::mutex> lock(s.mutex);
  if (ticket == 0 || ticket >= s.next_ticket) return "wait: no collective has ticket " + std::to_string(ticket);
  wait_until(s.done_changed, lock, [&] { return s.done_through >= ticket || !s.running; });
  if (s.done_through < ticket) return "MPI stopped before the collective finished";
  auto it = s.errors.find(ticket);
  if (it == s.errors.end()) return "";
  std::string error = std::move(it->second);
  s.errors.erase(it);
  return error;
}

void set_marker(const std::string& marker) { faults::set_marker(marker); }

Counters counters(bool reset) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  Counters c = s.counters;
  if (reset) s.counters = Counters{};
  return c;
}

void finalize() {
  State& s = state();
  std::unique_lock<std::mutex> lock(s.mutex);
  if (!s.running) return;
  s.stopping = true;
  s.jobs_changed.notify_one();
  wait_until(s.done_changed, lock, [&] { return !s.running; });
}

void abort_job(int code, const std::string& message) {
  if (!message.empty()) {
    std::fputs(message.c_str(), stderr);
    if (message.back() != '\n') std::fputc('\n', stderr);
    std::fflush(stderr);
  }
  // MPI_Abort from this thread: the communication thread may be inside a collective, and
  // MPI_Abort is the one call MPI allows from anywhere when the job must end.
  if (started()) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace ff::mpi
