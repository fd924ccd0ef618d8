// Each binding file registers its functions on the addon's exports.
#pragma once
#include <napi.h>

namespace ff::binding {

void register_tensor_functions(Napi::Env env, Napi::Object exports);  // tensors.cpp
void register_fourier_metric(Napi::Env env, Napi::Object exports);    // fourier_metric.cpp
void register_attention(Napi::Env env, Napi::Object exports);         // attention.cpp

}  // namespace ff::binding
