// Every exported function runs inside guarded<>: C++ exceptions become JS Errors with the same
// message, so a failing kernel or a bad argument never takes the process down.
#pragma once
#include <napi.h>
#include <new>
#include <string>
#include "../common/backend.h"

namespace ff::binding {

using Fn = Napi::Value (*)(const Napi::CallbackInfo&);

template <Fn F>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), std::string(backend::name()) + ": out of host memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

}  // namespace ff::binding
