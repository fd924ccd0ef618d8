#include "op_args.h"
#include <cmath>
#include <string>
#include <vector>
#include "../common/backend.h"
#include "../common/backend_checks.h"
#include "args.h"
#include "errors.h"

namespace ff::binding {
namespace {

// n positive integers from the array at info[i]; names[] are used in error messages.
std::vector<int> get_dims(const Napi::CallbackInfo& info, size_t i, const std::vector<const char*>& names,
                          size_t optional_zero_from) {
  std::string expected = "[";
  for (size_t k = 0; k < names.size(); ++k) expected += (k ? ", " : "") + std::string(names[k]);
  expected += "]";
  if (i >= info.Length() || !info[i].IsArray()) throw ArgError("dims", "expected " + expected);
  auto a = info[i].As<Napi::Array>();
  if (a.Length() != names.size())
    throw ArgError("dims", "expected " + std::to_string(names.size()) + " integers " + expected);
  std::vector<int> v(names.size());
  for (uint32_t k = 0; k < names.size(); ++k) {
    Napi::Value x = a[k];
    const double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : -1;
    const double lo = k >= optional_zero_from ? 0 : 1;
    if (!(d >= lo && d <= (1 << 30) && std::floor(d) == d))
      throw ArgError(std::string("dims.") + names[k], lo == 0 ? "expected 0 or 1" : "expected a positive integer");
    v[k] = int(d);
  }
  return v;
}

void check_r_dims(const MetricShape& s) {
  if (s.rH != 1 && s.rH != s.H) throw ArgError("R", "rows must be 1 or H");
  if (s.rD != 1 && s.rD != s.D) throw ArgError("R", "columns must be 1 or D");
}

}  // namespace

MetricShape get_metric_shape(const Napi::CallbackInfo& info, size_t i) {
  const auto v = get_dims(info, i, {"B", "H", "Nq", "Nk", "D", "rH", "rD"}, 7);
  MetricShape s{v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
  check_r_dims(s);
  return s;
}

AttentionShape get_attention_shape(const Napi::CallbackInfo& info, size_t i) {
  const auto v = get_dims(info, i, {"B", "H", "Nq", "Nk", "D", "rH", "rD", "Dv", "causal"}, 8);
  if (v[8] > 1) throw ArgError("dims.causal", "expected 0 or 1");
  AttentionShape s;
  s.B = v[0];
  s.H = v[1];
  s.Nq = v[2];
  s.Nk = v[3];
  s.D = v[4];
  s.rH = v[5];
  s.rD = v[6];
  s.Dv = v[7];
  s.causal = v[8] == 1;
  check_r_dims(s);
  if (s.causal && s.Nq != s.Nk) throw ArgError("causal", "needs as many queries as keys (Nq == Nk)");
  return s;
}

void check_finite_R(const Storage& R, const char* op) { backend::check_finite(R.ptr, R.n, op, "R"); }

bool get_bool(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsBoolean()) throw ArgError(what, "expected a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

float get_eps(const Napi::CallbackInfo& info, size_t i) {
  const double eps = get_number(info, i, "eps");
  if (!(eps >= 0) || !std::isfinite(eps)) throw ArgError("eps", "expected a finite number >= 0");
  return float(eps);
}

QkvOperands get_qkv(const Napi::CallbackInfo& info, const AttentionShape& sh) {
  return {&get_storage(info, 0, "q", size_t(sh.q_elems())), &get_storage(info, 1, "k", size_t(sh.k_elems())),
          &get_storage(info, 2, "v", size_t(sh.v_elems()))};
}

SavedForward get_saved_forward(const Napi::CallbackInfo& info, size_t i, const AttentionShape& sh, const char* rows) {
  return {&get_storage(info, i, "out", size_t(sh.out_elems())), &get_storage(info, i + 1, rows, size_t(sh.row_elems())),
          &get_storage(info, i + 2, "grad", size_t(sh.out_elems()))};
}

QkvGrads make_qkv_grads(Napi::Env env, const AttentionShape& sh) {
  return {make_storage(env, size_t(sh.q_elems())), make_storage(env, size_t(sh.k_elems())),
          make_storage(env, size_t(sh.v_elems()))};
}

Napi::Array pack(Napi::Env env, std::initializer_list<Napi::Value> values) {
  auto out = Napi::Array::New(env, values.size());
  uint32_t i = 0;
  for (const auto& v : values) out.Set(i++, v);
  return out;
}

}  // namespace ff::binding
