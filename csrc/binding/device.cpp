// Bindings of the backend's device-wide state: hostSyncs() (how many times the host waited for
// the device) and setMatmulPrecision('highest' | 'high').
#include <napi.h>
#include <string>
#include "../common/backend.h"
#include "../common/backend_checks.h"
#include "errors.h"
#include "guarded.h"
#include "registry.h"

namespace ff::binding {
namespace {

Napi::Value HostSyncs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(backend::host_syncs()));
}

// setMatmulPrecision(precision): 'highest' (float) or 'high' (TF32 where the device has it).
Napi::Value SetMatmulPrecision(const Napi::CallbackInfo& info) {
  const std::string p = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (p != "highest" && p != "high") throw ArgError("precision", "expected 'highest' or 'high'");
  backend::set_matmul_precision(p == "high");
  return info.Env().Undefined();
}

}  // namespace

FF_EXPORTS({"hostSyncs", guarded<HostSyncs>}, {"setMatmulPrecision", guarded<SetMatmulPrecision>});

}  // namespace ff::binding
