// A block of backend memory owned by the addon and handed to JavaScript as a type-tagged
// External. JS frees it with free() (Tensor.dispose); if JS drops it first, the External's
// finalizer frees it (the safety net); when the environment that made it shuts down (a worker
// that exits or is terminated), the environment's cleanup frees it (environment.cpp). Every
// access checks the tag and the freed flag, so a disposed or foreign object is a JS error, never
// a dangling pointer.
#pragma once
#include <napi.h>
#include <cstddef>
#include <string>

namespace ff::binding {

struct EnvState;

struct Storage {
  float* ptr = nullptr;
  size_t n = 0;  // float32 elements
  bool freed = false;
  // While live: the environment that made it, and its neighbours in that environment's list.
  EnvState* owner = nullptr;
  Storage* prev = nullptr;
  Storage* next = nullptr;
};

Napi::Value make_storage(Napi::Env env, size_t n);  // allocates n floats (uninitialised)
// The live Storage in info[index], checked; `what` names the argument in error messages.
Storage& get_storage(const Napi::CallbackInfo& info, size_t index, const char* what);
// As get_storage, and its element count must equal n.
Storage& get_storage(const Napi::CallbackInfo& info, size_t index, const char* what, size_t n);
Storage* unwrap(const Napi::Value& v);  // nullptr when v is not one of our storages
// Gives the memory back to the backend and takes the storage off its environment's counts
// (nothing when already freed). Runs on the owning environment's thread.
void free_storage(Storage& s);

}  // namespace ff::binding
