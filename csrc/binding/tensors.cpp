// The tensor functions of every backend addon: device info, allocation, host transfers, fill,
// in-place add (gradient accumulation), copy and synchronisation.
#include <napi.h>
#include "../common/backend.h"
#include "args.h"
#include "environment.h"
#include "guarded.h"
#include "registry.h"
#include "storage.h"

namespace ff::binding {
namespace {

Napi::Value Describe(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), backend::describe()); }

Napi::Value EnsureAvailable(const Napi::CallbackInfo& info) {
  backend::ensure_available();
  return info.Env().Undefined();
}

Napi::Value Alloc(const Napi::CallbackInfo& info) {
  const int n = get_int(info, 0, "size", 0, (1LL << 31) - 1);
  return make_storage(info.Env(), size_t(n));
}

Napi::Value FromArray(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw ArgError("data", "expected a Float32Array");
  auto arr = info[0].As<Napi::Float32Array>();
  Napi::Value out = make_storage(info.Env(), arr.ElementLength());
  backend::upload(unwrap(out)->ptr, arr.Data(), arr.ElementLength());
  return out;
}

Napi::Value ToArray(const Napi::CallbackInfo& info) {
  Storage& s = get_storage(info, 0, "tensor");
  auto arr = Napi::Float32Array::New(info.Env(), s.n);
  backend::download(arr.Data(), s.ptr, s.n);
  return arr;
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  Storage* s = info.Length() > 0 ? unwrap(info[0]) : nullptr;
  if (!s) throw ArgError("tensor", "expected a tensor storage");
  free_storage(*s);
  return info.Env().Undefined();
}

Napi::Value IsFreed(const Napi::CallbackInfo& info) {
  Storage* s = info.Length() > 0 ? unwrap(info[0]) : nullptr;
  if (!s) throw ArgError("tensor", "expected a tensor storage");
  return Napi::Boolean::New(info.Env(), s->freed);
}

// memory() -> { tensors, bytes } live in this environment (the calling JS thread),
// { processTensors, processBytes } live in every environment of the process, and cached: bytes
// the backend's caching allocator holds for reuse (shared by the process).
Napi::Value Memory(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const EnvState& state = env_state(env);
  auto o = Napi::Object::New(env);
  o.Set("tensors", Napi::Number::New(env, double(state.tensors)));
  o.Set("bytes", Napi::Number::New(env, double(state.bytes)));
  o.Set("processTensors", Napi::Number::New(env, double(process_counters().tensors.load())));
  o.Set("processBytes", Napi::Number::New(env, double(process_counters().bytes.load())));
  o.Set("cached", Napi::Number::New(env, double(backend::cached_bytes())));
  return o;
}

// emptyCache() -> bytes the caching allocator gave back to the system
Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(backend::empty_cache()));
}

Napi::Value Fill(const Napi::CallbackInfo& info) {
  Storage& s = get_storage(info, 0, "tensor");
  backend::fill(s.ptr, float(get_number(info, 1, "value")), s.n);
  return info.Env().Undefined();
}

Napi::Value AddInplace(const Napi::CallbackInfo& info) {
  Storage& dst = get_storage(info, 0, "target");
  Storage& src = get_storage(info, 1, "addend", dst.n);
  backend::add_inplace(dst.ptr, src.ptr, dst.n);
  return info.Env().Undefined();
}

Napi::Value Copy(const Napi::CallbackInfo& info) {
  Storage& src = get_storage(info, 0, "tensor");
  Napi::Value out = make_storage(info.Env(), src.n);
  backend::copy(unwrap(out)->ptr, src.ptr, src.n);
  return out;
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  backend::synchronize();
  return info.Env().Undefined();
}

}  // namespace

FF_EXPORTS({"describe", guarded<Describe>}, {"ensureAvailable", guarded<EnsureAvailable>}, {"alloc", guarded<Alloc>},
           {"fromArray", guarded<FromArray>}, {"toArray", guarded<ToArray>}, {"free", guarded<Free>},
           {"isFreed", guarded<IsFreed>}, {"memory", guarded<Memory>}, {"emptyCache", guarded<EmptyCache>},
           {"fill", guarded<Fill>}, {"addInplace", guarded<AddInplace>}, {"copy", guarded<Copy>},
           {"synchronize", guarded<Synchronize>});

}  // namespace ff::binding
