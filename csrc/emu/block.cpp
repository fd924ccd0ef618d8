// The rules of a block's sync points: who meets whom, what each lane gets back, and what is an
// error. Shuffle semantics follow PTX shfl.sync (segments of `width` lanes; a source outside the
// segment, up- or downwards, gives the lane its own value; xor may read lower segments).
#include "block.h"
#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

namespace ff::emu::detail {

namespace {

constexpr unsigned lane_bit(int lane) { return 1u << lane; }

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::sync: return "__syncwarp";
    case WarpOp::shfl_idx: return "__shfl_sync";
    case WarpOp::shfl_up: return "__shfl_up_sync";
    case WarpOp::shfl_down: return "__shfl_down_sync";
    case WarpOp::shfl_xor: return "__shfl_xor_sync";
    case WarpOp::ballot: return "__ballot_sync";
    case WarpOp::any: return "__any_sync";
    case WarpOp::all: return "__all_sync";
  }
  return "?";
}

const char* barrier_name(BarrierOp op) {
  switch (op) {
    case BarrierOp::sync: return "__syncthreads";
    case BarrierOp::count: return "__syncthreads_count";
    case BarrierOp::all: return "__syncthreads_and";
    case BarrierOp::any: return "__syncthreads_or";
  }
  return "?";
}

bool same_site(const std::source_location& a, const std::source_location& b) {
  return a.line() == b.line() && a.column() == b.column() &&
         (a.file_name() == b.file_name() || std::string_view(a.file_name()) == b.file_name());
}

// "lanes 0-15,20" style.
std::string format_lanes(unsigned mask) {
  std::string s;
  for (int l = 0; l < 32;) {
    if (!(mask & lane_bit(l))) {
      ++l;
      continue;
    }
    int e = l;
    while (e + 1 < 32 && (mask & lane_bit(e + 1))) ++e;
    if (!s.empty()) s += ",";
    s += std::to_string(l);
    if (e > l) s += "-" + std::to_string(e);
    l = e + 1;
  }
  return (__builtin_popcount(mask) == 1 ? "lane " : "lanes ") + s;
}

std::string hex(unsigned mask) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", mask);
  return buf;
}

std::string who(const ThreadState& t) {
  return "thread " + format_dim(t.idx) + " (warp " + std::to_string(t.linear / 32) + " lane " +
         std::to_string(t.linear % 32) + ")";
}

// The source lane of a shuffle per PTX shfl.sync, or -1 for the lane's own value.
int shuffle_source(WarpOp op, int lane, int arg, int width) {
  const int base = lane & ~(width - 1);
  const int last = base + width - 1;
  const int b = arg & 31;
  int j = lane;
  switch (op) {
    case WarpOp::shfl_idx: j = base + (b & (width - 1)); break;
    case WarpOp::shfl_up:
      j = lane - b;
      if (j < base) j = lane;
      break;
    case WarpOp::shfl_down:
      j = lane + b;
      if (j > last) j = lane;
      break;
    case WarpOp::shfl_xor:
      j = lane ^ b;
      if (j > last) j = lane;
      break;
    default: break;
  }
  return j;
}

void complete_warp(BlockState& b, int warp, const Rendezvous& r) {
  ThreadState* lanes = b.threads + warp * 32;
  unsigned votes = 0;
  for (int l = 0; l < 32; ++l)
    if ((r.mask & lane_bit(l)) && lanes[l].value != 0) votes |= lane_bit(l);
  for (int l = 0; l < 32; ++l) {
    if (!(r.mask & lane_bit(l))) continue;
    ThreadState& t = lanes[l];
    switch (r.op) {
      case WarpOp::sync: t.result = 0; break;
      case WarpOp::ballot: t.result = votes; break;
      case WarpOp::any: t.result = votes != 0; break;
      case WarpOp::all: t.result = votes == r.mask; break;
      default: {
        const int src = shuffle_source(r.op, l, t.arg, t.width);
        // Reading a lane outside the mask is undefined in CUDA: all-ones bits (NaN for floats).
        t.result = (r.mask & lane_bit(src)) ? lanes[src].value : ~uint64_t(0);
      }
    }
    t.wait = Wait::running;
  }
}

}  // namespace

std::string format_dim(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

std::string format_site(const std::source_location& w) {
  std::string f = w.file_name();
  const auto slash = f.find_last_of('/');
  if (slash != std::string::npos) f = f.substr(slash + 1);
  return f + ":" + std::to_string(w.line());
}

void BlockState::reset(uint3 block_idx, dim3 block_dim, dim3 grid_dim, ThreadState* states, void* shared) {
  idx = block_idx;
  dim = block_dim;
  grid = grid_dim;
  nthreads = int(block_dim.x * block_dim.y * block_dim.z);
  threads = states;
  shmem = shared;
  barrier = BarrierState{};
  const int nwarps = (nthreads + 31) / 32;
  warps.assign(nwarps, WarpState{});
  for (int w = 0; w < nwarps; ++w) {
    const int lanes = std::min(32, nthreads - w * 32);
    warps[w].present = lanes == 32 ? ~0u : (lane_bit(lanes) - 1);
  }
  for (int i = 0; i < nthreads; ++i) {
    ThreadState& t = threads[i];
    t = ThreadState{};
    t.linear = i;
    t.idx = {unsigned(i) % block_dim.x, (unsigned(i) / block_dim.x) % block_dim.y,
             unsigned(i) / (block_dim.x * block_dim.y)};
  }
}

Arrival arrive_warp(BlockState& b, ThreadState& t, WarpOp op, unsigned mask, uint64_t value, int arg, int width,
                    const std::source_location& where, int& released) {
  const int warp = t.linear / 32, lane = t.linear % 32;
  WarpState& w = b.warps[warp];
  auto at = [&] { return std::string(op_name(op)) + "(mask=" + hex(mask) + ") at " + format_site(where); };
  if (!(mask & lane_bit(lane))) throw Error(who(t) + " calls " + at() + ", whose mask does not name the calling lane");
  if (mask & ~w.present)
    throw Error(who(t) + " calls " + at() + ", whose mask names " + format_lanes(mask & ~w.present) +
                ", which do not exist (the block has " + std::to_string(b.nthreads) + " threads)");
  if (mask & w.exited)
    throw Error(who(t) + " calls " + at() + ", whose mask names " + format_lanes(mask & w.exited) +
                ", which have exited: they can never arrive");
  if (op != WarpOp::sync && op != WarpOp::ballot && op != WarpOp::any && op != WarpOp::all &&
      (width < 1 || width > 32 || (width & (width - 1)) != 0))
    throw Error(who(t) + " calls " + at() + " with width " + std::to_string(width) +
                " (must be a power of two up to 32)");

  auto it = std::find_if(w.pending.begin(), w.pending.end(), [&](const Rendezvous& r) { return r.mask == mask; });
  if (it == w.pending.end()) {
    w.pending.push_back(Rendezvous{mask, 0, op, where});
    it = w.pending.end() - 1;
  } else if (it->op != op) {
    throw Error(who(t) + " calls " + at() + " while " + format_lanes(it->arrived) + " of its warp wait in " +
                op_name(it->op) + " with the same mask at " + format_site(it->where) +
                ": lanes of one mask must call the same intrinsic");
  }
  t.wait = Wait::warp;
  t.where = where;
  t.op = op;
  t.mask = mask;
  t.value = value;
  t.arg = arg;
  t.width = width;
  it->arrived |= lane_bit(lane);
  if (it->arrived != mask) return Arrival::waiting;
  const Rendezvous r = *it;
  w.pending.erase(it);
  complete_warp(b, warp, r);
  released = __builtin_popcount(mask) - 1;
  return Arrival::completed;
}

Arrival arrive_barrier(BlockState& b, ThreadState& t, BarrierOp op, int predicate, const std::source_location& where,
                       int& released) {
  BarrierState& s = b.barrier;
  auto at = [&] { return std::string(barrier_name(op)) + " at " + format_site(where); };
  if (s.exited > 0)
    throw Error(who(t) + " waits at " + at() + ", but " + std::to_string(s.exited) + " of the block's " +
                std::to_string(b.nthreads) + " threads have exited: the barrier can never complete");
  if (s.arrived > 0 && (s.op != op || !same_site(s.where, where)))
    throw Error(who(t) + " waits at " + at() + " while " + std::to_string(s.arrived) + " threads wait at " +
                barrier_name(s.op) + " at " + format_site(s.where) +
                ": all threads of a block must reach the same barrier");
  if (s.arrived == 0) {
    s.op = op;
    s.where = where;
    s.sum = 0;
  }
  t.wait = Wait::barrier;
  t.where = where;
  s.sum += predicate != 0;
  if (++s.arrived < b.nthreads) return Arrival::waiting;
  int result = 0;
  switch (op) {
    case BarrierOp::sync: result = 0; break;
    case BarrierOp::count: result = s.sum; break;
    case BarrierOp::all: result = s.sum == b.nthreads; break;
    case BarrierOp::any: result = s.sum != 0; break;
  }
  for (int i = 0; i < b.nthreads; ++i) {
    b.threads[i].result = uint64_t(result);
    b.threads[i].wait = Wait::running;
  }
  s.arrived = 0;
  released = b.nthreads - 1;
  return Arrival::completed;
}

void thread_exit(BlockState& b, ThreadState& t, bool check) {
  t.wait = Wait::exited;
  b.barrier.exited++;
  const int warp = t.linear / 32, lane = t.linear % 32;
  WarpState& w = b.warps[warp];
  w.exited |= lane_bit(lane);
  if (!check) return;
  if (b.barrier.arrived > 0)
    throw Error(who(t) + " exited while " + std::to_string(b.barrier.arrived) + " threads wait at " +
                barrier_name(b.barrier.op) + " at " + format_site(b.barrier.where) +
                ": the barrier can never complete");
  for (const Rendezvous& r : w.pending)
    if (r.mask & lane_bit(lane))
      throw Error(who(t) + " exited while " + format_lanes(r.arrived) + " of its warp wait for it in " + op_name(r.op) +
                  "(mask=" + hex(r.mask) + ") at " + format_site(r.where));
}

std::string describe_stall(const BlockState& b) {
  // Group the waiting threads by what they wait at.
  std::map<std::string, std::vector<int>> groups;
  for (int i = 0; i < b.nthreads; ++i) {
    const ThreadState& t = b.threads[i];
    std::string key;
    if (t.wait == Wait::barrier)
      key = std::string(barrier_name(b.barrier.op)) + " at " + format_site(t.where);
    else if (t.wait == Wait::warp)
      key = std::string(op_name(t.op)) + "(mask=" + hex(t.mask) + ") at " + format_site(t.where);
    else
      continue;
    groups[key].push_back(i);
  }
  std::ostringstream os;
  os << "deadlock: no thread can continue (" << b.barrier.exited << " of " << b.nthreads << " threads have exited)";
  for (const auto& [key, ids] : groups) {
    os << "; " << ids.size() << " thread" << (ids.size() == 1 ? "" : "s") << " wait in " << key;
    const ThreadState& first = b.threads[ids.front()];
    if (first.wait == Wait::warp) {
      // Name the missing lanes of the first such warp.
      const WarpState& w = b.warps[first.linear / 32];
      for (const Rendezvous& r : w.pending)
        if (r.mask == first.mask)
          os << " (warp " << first.linear / 32 << " waits for " << format_lanes(r.mask & ~r.arrived) << ")";
    }
  }
  return os.str();
}

}  // namespace ff::emu::detail
