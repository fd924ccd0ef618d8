#include "storage.h"
#include "../common/backend.h"
#include "errors.h"

namespace ff::binding {

namespace {
// Distinguishes our Externals from any other; the value is arbitrary but fixed.
const napi_type_tag kStorageTag = {0x6f75726965726672ULL, 0x73746f7261676531ULL};
}

MemoryCounters& counters() {
  static MemoryCounters c;
  return c;
}

namespace {
// V8 hears of native memory as the high-water mark of live tensor bytes, not of every allocation
// and free: a training step allocates and frees hundreds of MB of tensors, and reporting each
// made V8 run two or three full mark-compact GCs per step (~300 ms of a 900 ms step on 2 cores).
// Tensors that leak (never disposed) still raise the mark, so the GC feels their pressure and
// their finalizers free them. Called on the JS thread only.
void report_live_bytes(Napi::Env env) {
  static long long reported = 0;
  const long long live = counters().bytes;
  if (live <= reported) return;
  Napi::MemoryManagement::AdjustExternalMemory(env, live - reported);
  reported = live;
}
}  // namespace

void free_storage(Napi::Env env, Storage& s) {
  if (s.freed) return;
  backend::release(s.ptr);
  s.freed = true;
  s.ptr = nullptr;
  counters().tensors--;
  counters().bytes -= (long long)(s.n * sizeof(float));
}

Napi::Value make_storage(Napi::Env env, size_t n) {
  auto* s = new Storage();
  try {
    s->ptr = static_cast<float*>(backend::alloc(n * sizeof(float)));
  } catch (...) {
    delete s;
    throw;
  }
  s->n = n;
  counters().tensors++;
  counters().bytes += (long long)(n * sizeof(float));
  report_live_bytes(env);
  auto ext = Napi::External<Storage>::New(env, s, [](Napi::Env e, Storage* p) {
    free_storage(e, *p);
    delete p;
  });
  ext.TypeTag(&kStorageTag);
  return ext;
}

Storage* unwrap(const Napi::Value& v) {
  if (!v.IsExternal()) return nullptr;
  auto ext = v.As<Napi::External<Storage>>();
  if (!ext.CheckTypeTag(&kStorageTag)) return nullptr;
  return ext.Data();
}

Storage& get_storage(const Napi::CallbackInfo& info, size_t index, const char* what) {
  Storage* s = index < info.Length() ? unwrap(info[index]) : nullptr;
  if (!s) throw ArgError(what, "expected a tensor storage of the " + std::string(backend::name()) + " backend");
  if (s->freed) throw ArgError(what, "the tensor has been disposed");
  return *s;
}

Storage& get_storage(const Napi::CallbackInfo& info, size_t index, const char* what, size_t n) {
  Storage& s = get_storage(info, index, what);
  if (s.n != n)
    throw ArgError(what, "expected " + std::to_string(n) + " elements, got " + std::to_string(s.n));
  return s;
}

}  // namespace ff::binding
