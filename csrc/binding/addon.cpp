// The N-API surface of one backend addon (cpu, cuda or cuda-emu: the same source is compiled
// against each backend). It checks every argument, then calls csrc/common/backend.h. Shapes
// arrive already validated by lib/, but nothing here trusts them: a bad call throws a JS Error
// naming the argument, it never reaches a kernel.
#include <napi.h>
#include <vector>
#include "../common/backend.h"
#include "args.h"
#include "storage.h"

namespace ff::binding {
namespace {

using Fn = Napi::Value (*)(const Napi::CallbackInfo&);

// Turns C++ exceptions into JS Errors with the same message.
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

Napi::Value Describe(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), backend::describe());
}

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
  free_storage(info.Env(), *s);
  return info.Env().Undefined();
}

Napi::Value IsFreed(const Napi::CallbackInfo& info) {
  Storage* s = info.Length() > 0 ? unwrap(info[0]) : nullptr;
  if (!s) throw ArgError("tensor", "expected a tensor storage");
  return Napi::Boolean::New(info.Env(), s->freed);
}

Napi::Value Memory(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("tensors", Napi::Number::New(info.Env(), double(counters().tensors.load())));
  o.Set("bytes", Napi::Number::New(info.Env(), double(counters().bytes.load())));
  return o;
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

// dims = [B, H, Nq, Nk, D, rH, rD]
MetricShape get_metric_shape(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) throw ArgError("dims", "expected [B, H, Nq, Nk, D, rH, rD]");
  auto a = info[i].As<Napi::Array>();
  if (a.Length() != 7) throw ArgError("dims", "expected 7 integers [B, H, Nq, Nk, D, rH, rD]");
  int v[7];
  const char* names[7] = {"B", "H", "Nq", "Nk", "D", "rH", "rD"};
  for (uint32_t k = 0; k < 7; ++k) {
    Napi::Value x = a[k];
    const double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 1 && d <= (1 << 30) && std::floor(d) == d))
      throw ArgError(std::string("dims.") + names[k], "expected a positive integer");
    v[k] = int(d);
  }
  MetricShape s{v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
  if (s.rH != 1 && s.rH != s.H) throw ArgError("R", "rows must be 1 or H");
  if (s.rD != 1 && s.rD != s.D) throw ArgError("R", "columns must be 1 or D");
  return s;
}

void check_finite_R(const Storage& R) {
  std::vector<float> host(R.n);
  backend::download(host.data(), R.ptr, R.n);
  for (float r : host)
    if (!std::isfinite(r)) throw ArgError("R", "must be finite, got " + std::to_string(r));
}

// fourierMetricForward(q, k, R, dims, power) -> K
Napi::Value FourierMetricForward(const Napi::CallbackInfo& info) {
  const MetricShape sh = get_metric_shape(info, 3);
  Storage& q = get_storage(info, 0, "q", size_t(sh.q_elems()));
  Storage& k = get_storage(info, 1, "k", size_t(sh.k_elems()));
  Storage& R = get_storage(info, 2, "R", size_t(sh.r_elems()));
  const int power = get_int(info, 4, "power", 1, 64);
  check_finite_R(R);
  Napi::Value K = make_storage(info.Env(), size_t(sh.K_elems()));
  backend::fourier_metric_forward(sh, q.ptr, k.ptr, R.ptr, power, unwrap(K)->ptr);
  return K;
}

// fourierMetricBackward(q, k, R, dims, power, dK) -> [dq, dk, dR]
Napi::Value FourierMetricBackward(const Napi::CallbackInfo& info) {
  const MetricShape sh = get_metric_shape(info, 3);
  Storage& q = get_storage(info, 0, "q", size_t(sh.q_elems()));
  Storage& k = get_storage(info, 1, "k", size_t(sh.k_elems()));
  Storage& R = get_storage(info, 2, "R", size_t(sh.r_elems()));
  const int power = get_int(info, 4, "power", 1, 64);
  Storage& dK = get_storage(info, 5, "grad", size_t(sh.K_elems()));
  check_finite_R(R);
  Napi::Env env = info.Env();
  Napi::Value dq = make_storage(env, size_t(sh.q_elems()));
  Napi::Value dk = make_storage(env, size_t(sh.k_elems()));
  Napi::Value dR = make_storage(env, size_t(sh.r_elems()));
  backend::fourier_metric_backward(sh, q.ptr, k.ptr, R.ptr, power, dK.ptr, unwrap(dq)->ptr,
                                   unwrap(dk)->ptr, unwrap(dR)->ptr);
  auto out = Napi::Array::New(env, 3);
  out.Set(0u, dq);
  out.Set(1u, dk);
  out.Set(2u, dR);
  return out;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("backend", Napi::String::New(env, backend::name()));
  auto def = [&](const char* name, Napi::Function::Callback cb) {
    exports.Set(name, Napi::Function::New(env, cb, name));
  };
  def("describe", guarded<Describe>);
  def("ensureAvailable", guarded<EnsureAvailable>);
  def("alloc", guarded<Alloc>);
  def("fromArray", guarded<FromArray>);
  def("toArray", guarded<ToArray>);
  def("free", guarded<Free>);
  def("isFreed", guarded<IsFreed>);
  def("memory", guarded<Memory>);
  def("fill", guarded<Fill>);
  def("addInplace", guarded<AddInplace>);
  def("copy", guarded<Copy>);
  def("synchronize", guarded<Synchronize>);
  def("fourierMetricForward", guarded<FourierMetricForward>);
  def("fourierMetricBackward", guarded<FourierMetricBackward>);
  return exports;
}

}  // namespace ff::binding

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return ff::binding::Init(env, exports);
}

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitAddon)
