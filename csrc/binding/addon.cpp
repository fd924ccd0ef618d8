// The N-API surface of one backend addon (cpu, cuda or cuda-emu: the same binding sources are
// compiled against each backend). The binding files check every argument, then call
// csrc/common/backend.h. Shapes arrive already validated by lib/, but nothing here trusts them:
// a bad call throws a JS Error naming the argument, it never reaches a kernel.
// Node calls InitAddon once in every environment that requires the addon (the main thread, each
// worker): what belongs to one environment lives in its instance data (environment.h).
#include <napi.h>
#include "../common/backend.h"
#include "environment.h"
#include "registry.h"

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  ff::binding::init_environment(env);
  exports.Set("backend", Napi::String::New(env, ff::backend::name()));
  for (const auto& e : ff::binding::registered_exports()) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
  return exports;
}

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitAddon)
