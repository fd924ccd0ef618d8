#include "storage.h"
#include "../common/backend.h"
#include "environment.h"
#include "errors.h"

namespace ff::binding {

namespace {
// Distinguishes our Externals from any other; the value is arbitrary but fixed.
const napi_type_tag kStorageTag = {0x6f75726965726672ULL, 0x73746f7261676531ULL};

// V8 hears of native memory as the high-water mark of the environment's live tensor bytes, not
// of every allocation and free: a training step allocates and frees hundreds of MB of tensors,
// and reporting each made V8 run two or three full mark-compact GCs per step (~300 ms of a
// 900 ms step on 2 cores). Tensors that leak (never disposed) still raise the mark, so the GC
// feels their pressure and their finalizers free them. Each isolate keeps its own count.
void report_live_bytes(Napi::Env env, EnvState& state) {
  if (state.bytes <= state.reported) return;
  Napi::MemoryManagement::AdjustExternalMemory(env, state.bytes - state.reported);
  state.reported = state.bytes;
}

void link(EnvState& state, Storage& s) {
  s.owner = &state;
  s.prev = nullptr;
  s.next = state.live;
  if (state.live) state.live->prev = &s;
  state.live = &s;
}

void unlink(Storage& s) {
  EnvState& state = *s.owner;
  (s.prev ? s.prev->next : state.live) = s.next;
  if (s.next) s.next->prev = s.prev;
  s.owner = nullptr;
  s.prev = s.next = nullptr;
}
}  // namespace

void free_storage(Storage& s) {
  if (s.freed) return;
  backend::release(s.ptr);
  s.freed = true;
  s.ptr = nullptr;
  const long long bytes = (long long)(s.n * sizeof(float));
  s.owner->tensors--;
  s.owner->bytes -= bytes;
  unlink(s);
  process_counters().tensors--;
  process_counters().bytes -= bytes;
}

Napi::Value make_storage(Napi::Env env, size_t n) {
  EnvState& state = env_state(env);
  auto* s = new Storage();
  try {
    s->ptr = static_cast<float*>(backend::alloc(n * sizeof(float)));
  } catch (...) {
    delete s;
    throw;
  }
  s->n = n;
  link(state, *s);
  const long long bytes = (long long)(n * sizeof(float));
  state.tensors++;
  state.bytes += bytes;
  process_counters().tensors++;
  process_counters().bytes += bytes;
  Napi::External<Storage> ext;
  try {
    report_live_bytes(env, state);
    ext = Napi::External<Storage>::New(env, s, [](Napi::Env, Storage* p) {
      free_storage(*p);
      delete p;
    });
  } catch (...) {  // the environment is shutting down (a terminated worker): nothing owns s
    free_storage(*s);
    delete s;
    throw;
  }
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
  if (s.n != n) throw ArgError(what, "expected " + std::to_string(n) + " elements, got " + std::to_string(s.n));
  return s;
}

}  // namespace ff::binding
