// The N-API surface of one backend addon (cpu, cuda or cuda-emu: the same binding sources are
// compiled against each backend). The binding files check every argument, then call
// csrc/common/backend.h. Shapes arrive already validated by lib/, but nothing here trusts them:
// a bad call throws a JS Error naming the argument, it never reaches a kernel.
#include <napi.h>
#include "../common/backend.h"
#include "registry.h"

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  exports.Set("backend", Napi::String::New(env, ff::backend::name()));
  for (const auto& e : ff::binding::registered_exports())
    exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
  return exports;
}

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitAddon)
