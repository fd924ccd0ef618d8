// Bindings of the backend's device-wide state: hostSyncs() (how many times the host waited for
// the device), setMatmulPrecision('highest' | 'high'), peakBytes(reset) (the caching
// allocator's high-water mark), and timerStart() / timerStop() -> ms (CUDA events on cuda).
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

// peakBytes(reset) -> the peak bytes in use since the last reset; reset starts a new peak.
Napi::Value PeakBytes(const Napi::CallbackInfo& info) {
  const double peak = double(backend::peak_bytes());
  if (info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value()) backend::reset_peak_bytes();
  return Napi::Number::New(info.Env(), peak);
}

Napi::Value TimerStart(const Napi::CallbackInfo& info) {
  backend::timer_start();
  return info.Env().Undefined();
}

Napi::Value TimerStop(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), backend::timer_stop()); }

}  // namespace

FF_EXPORTS({"hostSyncs", guarded<HostSyncs>}, {"setMatmulPrecision", guarded<SetMatmulPrecision>},
           {"peakBytes", guarded<PeakBytes>}, {"timerStart", guarded<TimerStart>}, {"timerStop", guarded<TimerStop>});

}  // namespace ff::binding
