#include "faults.h"
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace ff::mpi::faults {
namespace {

constexpr int kTagQuery = 1, kTagReply = 2;

// What a rank says about itself: fixed size, sent as bytes.
struct Status {
  int32_t rank = -1;
  int32_t pid = 0;
  uint64_t entered = 0;  // the collective it entered last (numbered from 1; 0: none yet)
  uint64_t done = 0;     // the last one it finished
  char what[112] = {};   // the collective `entered`
  char marker[96] = {};  // the training loop's position
};

MPI_Comm comm = MPI_COMM_NULL;
const WorldInfo* world = nullptr;
Status self;
std::mutex marker_mutex;  // set_marker runs on the JS thread
std::string marker;

Status query_in;
MPI_Request query_request = MPI_REQUEST_NULL;
// Replies in flight: each keeps its buffer until its send completes (requests freed when sent).
std::vector<Status> reply_ring(64);
std::vector<MPI_Request> reply_requests(64, MPI_REQUEST_NULL);
size_t reply_next = 0;

void copy_text(char* dst, size_t size, const std::string& src) {
  const size_t n = std::min(size - 1, src.size());
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

Status snapshot() {
  Status s = self;
  std::lock_guard<std::mutex> lock(marker_mutex);
  copy_text(s.marker, sizeof(s.marker), marker);
  return s;
}

void post_query_receive() {
  MPI_Irecv(&query_in, sizeof(Status), MPI_BYTE, MPI_ANY_SOURCE, kTagQuery, comm, &query_request);
}

void send_status(int to, int tag) {
  const size_t slot = reply_next++ % reply_ring.size();
  if (reply_requests[slot] != MPI_REQUEST_NULL) MPI_Wait(&reply_requests[slot], MPI_STATUS_IGNORE);
  reply_ring[slot] = snapshot();
  MPI_Isend(&reply_ring[slot], sizeof(Status), MPI_BYTE, to, tag, comm, &reply_requests[slot]);
}

std::string who(int r) {
  if (world == nullptr || r < 0 || r >= world->size) return "rank " + std::to_string(r);
  return "rank " + std::to_string(r) + " (pid " + std::to_string(world->pids[r]) + " on " + world->hosts[r] + ")";
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

void setup(MPI_Comm fault_comm, const WorldInfo& w) {
  comm = fault_comm;
  world = &w;
  self.rank = w.rank;
  self.pid = w.pids[w.rank];
  post_query_receive();
}

void teardown() {
  if (query_request != MPI_REQUEST_NULL) {
    MPI_Cancel(&query_request);
    MPI_Wait(&query_request, MPI_STATUS_IGNORE);
  }
  for (auto& r : reply_requests)
    if (r != MPI_REQUEST_NULL) MPI_Wait(&r, MPI_STATUS_IGNORE);
}

void progress(uint64_t entered, uint64_t done, const std::string& what) {
  self.entered = entered;
  self.done = done;
  copy_text(self.what, sizeof(self.what), what);
}

void set_marker(const std::string& m) {
  std::lock_guard<std::mutex> lock(marker_mutex);
  marker = m;
}

void serve() {
  if (comm == MPI_COMM_NULL) return;
  for (;;) {
    int arrived = 0;
    MPI_Status st;
    if (MPI_Test(&query_request, &arrived, &st) != MPI_SUCCESS || !arrived) return;
    const int from = st.MPI_SOURCE;
    post_query_receive();
    send_status(from, kTagReply);
  }
}

bool report(MPI_Request* pending, const std::string& what, const std::string& why, double waited) {
  const int size = world->size, rank = world->rank;
  // Grace: long enough for idle ranks (polling every 20 ms) and busy hosts to answer.
  const double grace = std::clamp(world->timeout / 4, 2.0, 15.0);
  std::vector<Status> replies(size);
  std::vector<MPI_Request> receives(size, MPI_REQUEST_NULL);
  std::vector<bool> answered(size, false);
  answered[rank] = true;
  replies[rank] = snapshot();
  for (int r = 0; r < size; r++) {
    if (r == rank) continue;
    MPI_Irecv(&replies[r], sizeof(Status), MPI_BYTE, r, kTagReply, comm, &receives[r]);
    send_status(r, kTagQuery);
  }
  const auto start = std::chrono::steady_clock::now();
  bool completed = false;
  while (seconds_since(start) < grace) {
    serve();
    if (pending != nullptr && *pending != MPI_REQUEST_NULL) {
      int done = 0;
      if (MPI_Test(pending, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done) {
        completed = true;
        break;
      }
    }
    bool all = true;
    for (int r = 0; r < size; r++) {
      if (answered[r]) continue;
      int got = 0;
      if (MPI_Test(&receives[r], &got, MPI_STATUS_IGNORE) == MPI_SUCCESS && got)
        answered[r] = true;
      else
        all = false;
    }
    if (all && pending == nullptr) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (int r = 0; r < size; r++) {
    if (receives[r] == MPI_REQUEST_NULL) continue;
    MPI_Cancel(&receives[r]);
    MPI_Request_free(&receives[r]);
  }
  if (completed) {
    std::fprintf(stderr,
                 "fourierformer: %s: %s waited %.0f s (longer than the %.0f s timeout) but completed; going on\n",
                 who(rank).c_str(), what.c_str(), waited + seconds_since(start), world->timeout);
    return true;
  }
  const uint64_t seq = self.entered;
  std::string text =
      "fourierformer: " + who(rank) + ": " + what + " (collective #" + std::to_string(seq) + ") " + why + ".";
  int missing = 0;
  for (int r = 0; r < size; r++) {
    if (r == rank) continue;
    const Status& s = replies[r];
    if (answered[r] && s.entered >= seq && pending != nullptr) continue;  // waiting with us
    missing++;
    text += "\n  " + who(r) + ": ";
    if (!answered[r]) {
      text += "no answer within " + std::to_string(int(grace)) + " s: the process is dead, stopped or unreachable";
    } else if (pending == nullptr) {
      text += "answers";
      if (s.marker[0] != '\0') text += ", its training loop at " + std::string(s.marker);
    } else {
      text += "alive but has not joined it: its last collective is #" + std::to_string(s.entered) + " (" + s.what +
              ", " + (s.done >= s.entered ? "finished" : "waiting") + ")";
      if (s.marker[0] != '\0') text += ", its training loop at " + std::string(s.marker);
    }
  }
  if (missing == 0) text += "\n  every rank joined it; the collective itself failed";
  {
    std::lock_guard<std::mutex> lock(marker_mutex);
    if (!marker.empty()) text += "\n  (this rank's training loop: " + marker + ")";
  }
  text += "\n  aborting the job (MPI_Abort); FOURIERFORMER_DIST_TIMEOUT sets the timeout in seconds\n";
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::_Exit(1);
}

}  // namespace ff::mpi::faults
