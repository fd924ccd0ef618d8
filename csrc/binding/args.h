// Reading plain JS arguments with checks that name the argument.
#pragma once
#include <napi.h>
#include <cmath>
#include <string>
#include "errors.h"

namespace ff::binding {

inline double get_number(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsNumber()) throw ArgError(what, "expected a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

// An integer in [lo, hi].
inline int get_int(const Napi::CallbackInfo& info, size_t i, const char* what, long long lo, long long hi) {
  const double v = get_number(info, i, what);
  if (!std::isfinite(v) || std::floor(v) != v || v < double(lo) || v > double(hi))
    throw ArgError(what, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                             std::to_string(v));
  return int(v);
}

}  // namespace ff::binding
