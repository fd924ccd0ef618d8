#include "environment.h"
#include "storage.h"

namespace ff::binding {

ProcessCounters& process_counters() {
  static ProcessCounters c;
  return c;
}

namespace {

// Runs when the environment shuts down, after its last JavaScript: frees every storage it still
// holds and then the state itself. External finalizers that Node runs at teardown before this
// hook free their storage as usual; those that run after it find the storage freed and only
// delete the record, so none reads the EnvState once it is gone.
void cleanup(EnvState* state) {
  while (state->live) free_storage(*state->live);
  delete state;
}

}  // namespace

void init_environment(Napi::Env env) {
  auto* state = new EnvState();
  const napi_status set = napi_set_instance_data(env, state, nullptr, nullptr);
  if (set != napi_ok) {
    delete state;
    throw Napi::Error::New(env, "cannot set the addon's per-environment data");
  }
  env.AddCleanupHook(cleanup, state);
}

EnvState& env_state(Napi::Env env) {
  void* data = nullptr;
  if (napi_get_instance_data(env, &data) != napi_ok || data == nullptr)
    throw Napi::Error::New(env, "the addon was not initialised in this environment");
  return *static_cast<EnvState*>(data);
}

}  // namespace ff::binding
