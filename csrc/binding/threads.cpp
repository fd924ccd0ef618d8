// setNumThreads(n) / getNumThreads(): how many host threads this backend's ops use when called
// from the calling JS thread (backend.h num_threads; each thread, main or worker, has its own).
#include <napi.h>
#include "../common/backend.h"
#include "args.h"
#include "guarded.h"
#include "registry.h"

namespace ff::binding {
namespace {

constexpr int kMaxThreads = 1024;

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  backend::set_num_threads(get_int(info, 0, "n", 1, kMaxThreads));
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), backend::num_threads());
}

}  // namespace

FF_EXPORTS({"setNumThreads", guarded<SetNumThreads>}, {"getNumThreads", guarded<GetNumThreads>});

}  // namespace ff::binding
