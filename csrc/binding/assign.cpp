// In-place writes into an existing tensor's memory, for what must keep a tensor's identity while
// replacing its values: Module.loadStateDict (an optimizer holds the parameters) and the
// in-place init helpers (lib/nn/init.ts).
//   copyInto(dst, src)      dst = src, equal element counts (a device-to-device copy)
//   uploadInto(dst, data)   dst = data, a Float32Array of dst's element count (host to device)
#include <napi.h>
#include "../common/backend.h"
#include "errors.h"
#include "guarded.h"
#include "registry.h"
#include "storage.h"

namespace ff::binding {
namespace {

Napi::Value CopyInto(const Napi::CallbackInfo& info) {
  Storage& dst = get_storage(info, 0, "target");
  Storage& src = get_storage(info, 1, "source", dst.n);
  if (src.ptr != dst.ptr) backend::copy(dst.ptr, src.ptr, dst.n);
  return info.Env().Undefined();
}

Napi::Value UploadInto(const Napi::CallbackInfo& info) {
  Storage& dst = get_storage(info, 0, "target");
  if (info.Length() < 2 || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw ArgError("data", "expected a Float32Array");
  auto arr = info[1].As<Napi::Float32Array>();
  if (arr.ElementLength() != dst.n)
    throw ArgError("data", "expected " + std::to_string(dst.n) + " values, got " + std::to_string(arr.ElementLength()));
  backend::upload(dst.ptr, arr.Data(), dst.n);
  return info.Env().Undefined();
}

}  // namespace

FF_EXPORTS({"copyInto", guarded<CopyInto>}, {"uploadInto", guarded<UploadInto>});

}  // namespace ff::binding
