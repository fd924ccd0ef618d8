// What an addon keeps per Node environment. Node loads one addon into every environment that
// requires it (the main thread and each worker_threads Worker, each with its own V8 isolate and
// OS thread), calling its init once per environment. The addon's code and its backend (the
// device, the caching allocator, the emulator) are shared by the process; what JavaScript owns
// belongs to one environment, and lives here as the addon's instance data:
//  - its live storages, so that when the environment shuts down (a worker exits, or is
//    terminated in the middle of an op) its cleanup hook frees them: no native memory outlives
//    the worker that made it. (Node 20 also runs the Externals' finalizers at teardown; the hook
//    makes that the addon's own guarantee, documented by Node-API, not a detail of Node's.)
//  - its live tensors and bytes (memory() reports them, beside the process totals);
//  - what this environment's V8 isolate has been told of native memory.
// Only the environment's own thread touches its EnvState.
#pragma once
#include <napi.h>
#include <atomic>

namespace ff::binding {

struct Storage;

struct EnvState {
  Storage* live = nullptr;  // a doubly-linked list (Storage::prev, next)
  long long tensors = 0, bytes = 0;
  long long reported = 0;  // bytes V8 has heard of (AdjustExternalMemory), a high-water mark
};

// Live tensors and bytes of this addon over every environment of the process.
struct ProcessCounters {
  std::atomic<long long> tensors{0};
  std::atomic<long long> bytes{0};
};
ProcessCounters& process_counters();

// Creates the environment's state and registers the cleanup hook that frees its storages
// (the addon's init calls it first).
void init_environment(Napi::Env env);
EnvState& env_state(Napi::Env env);

}  // namespace ff::binding
