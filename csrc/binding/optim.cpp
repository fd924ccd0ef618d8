// Bindings of the optimizer kernels (csrc/common/backend_optim.h): each takes arrays of tensor
// storages (a parameter group) and updates them in one fused native call.
//   adamStep(params, grads, expAvg, expAvgSq, lr, beta1, beta2, eps, weightDecay, step, decoupled)
//   sgdStep(params, grads, momentumBuffers, lr, momentum, dampening, weightDecay, nesterov, firstStep)
//   squaredNorm(tensors) -> number;   scaleInplace(tensors, factor)
#include <napi.h>
#include <cmath>
#include <set>
#include <string>
#include <vector>
#include "../common/backend_optim.h"
#include "args.h"
#include "errors.h"
#include "guarded.h"
#include "op_args.h"
#include "registry.h"
#include "storage.h"

namespace ff::binding {
namespace {

// The storages of a JS array, as a TensorList whose arrays this object owns.
struct StorageList {
  std::vector<float*> data;
  std::vector<int64_t> sizes;

  backend::TensorList list() const { return {int(data.size()), data.data(), sizes.data()}; }
};

// info[i] must be an array of live storages; with `like`, of the same length and sizes.
StorageList get_list(const Napi::CallbackInfo& info, size_t i, const char* what, const StorageList* like = nullptr) {
  if (i >= info.Length() || !info[i].IsArray()) throw ArgError(what, "expected an array of tensors");
  auto a = info[i].As<Napi::Array>();
  if (like && a.Length() != like->data.size())
    throw ArgError(what,
                   "expected " + std::to_string(like->data.size()) + " tensors, got " + std::to_string(a.Length()));
  StorageList out;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    const std::string name = std::string(what) + "[" + std::to_string(k) + "]";
    Storage* s = unwrap(a.Get(k));
    if (!s) throw ArgError(name, "expected a tensor storage of the " + std::string(backend::name()) + " backend");
    if (s->freed) throw ArgError(name, "the tensor has been disposed");
    if (like && int64_t(s->n) != like->sizes[k])
      throw ArgError(name, "expected " + std::to_string(like->sizes[k]) + " elements, got " + std::to_string(s->n));
    out.data.push_back(s->ptr);
    out.sizes.push_back(int64_t(s->n));
  }
  return out;
}

// Tensors written by a fused kernel must be distinct (two threads would update one element).
void check_distinct(const std::vector<const StorageList*>& lists, const std::vector<const char*>& names) {
  std::set<const float*> seen;
  for (size_t l = 0; l < lists.size(); ++l)
    for (size_t k = 0; k < lists[l]->data.size(); ++k)
      if (lists[l]->sizes[k] > 0 && !seen.insert(lists[l]->data[k]).second)
        throw ArgError(std::string(names[l]) + "[" + std::to_string(k) + "]",
                       "the same tensor appears twice among the tensors updated in place");
}

double get_finite(const Napi::CallbackInfo& info, size_t i, const char* what, double lo, double hi) {
  const double v = get_number(info, i, what);
  if (!std::isfinite(v) || v < lo || v > hi)
    throw ArgError(what, "expected a finite number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                             std::to_string(v));
  return v;
}

Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  const StorageList params = get_list(info, 0, "params");
  const StorageList grads = get_list(info, 1, "grads", &params);
  const StorageList m = get_list(info, 2, "expAvg", &params);
  const StorageList v = get_list(info, 3, "expAvgSq", &params);
  check_distinct({&params, &m, &v}, {"params", "expAvg", "expAvgSq"});
  const double lr = get_finite(info, 4, "lr", 0, 1e30);
  const double beta1 = get_finite(info, 5, "beta1", 0, 1);
  const double beta2 = get_finite(info, 6, "beta2", 0, 1);
  const double eps = get_finite(info, 7, "eps", 0, 1e30);
  const double wd = get_finite(info, 8, "weightDecay", 0, 1e30);
  const int step = get_int(info, 9, "step", 1, (1LL << 31) - 1);
  if (beta1 >= 1) throw ArgError("beta1", "must be below 1");
  if (beta2 >= 1) throw ArgError("beta2", "must be below 1");
  AdamScalars c;
  c.beta1 = float(beta1);
  c.beta2 = float(beta2);
  c.eps = float(eps);
  c.weight_decay = float(wd);
  c.decoupled = get_bool(info, 10, "decoupled");
  c.decay_factor = float(1.0 - lr * wd);
  c.step_size = float(lr / (1.0 - std::pow(double(c.beta1), step)));
  c.inv_bias2_sqrt = float(1.0 / std::sqrt(1.0 - std::pow(double(c.beta2), step)));
  backend::adam_step(c, params.list(), grads.list(), m.list(), v.list());
  return info.Env().Undefined();
}

Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  const StorageList params = get_list(info, 0, "params");
  const StorageList grads = get_list(info, 1, "grads", &params);
  SgdScalars c;
  c.lr = float(get_finite(info, 3, "lr", 0, 1e30));
  c.momentum = float(get_finite(info, 4, "momentum", 0, 1e30));
  c.dampening = float(get_finite(info, 5, "dampening", -1e30, 1e30));
  c.weight_decay = float(get_finite(info, 6, "weightDecay", 0, 1e30));
  c.nesterov = get_bool(info, 7, "nesterov");
  c.first_step = get_bool(info, 8, "firstStep");
  StorageList buf;
  if (c.momentum != 0.0f) {
    buf = get_list(info, 2, "momentumBuffers", &params);
    check_distinct({&params, &buf}, {"params", "momentumBuffers"});
  } else {
    check_distinct({&params}, {"params"});
  }
  backend::sgd_step(c, params.list(), grads.list(), buf.list());
  return info.Env().Undefined();
}

Napi::Value SquaredNorm(const Napi::CallbackInfo& info) {
  const StorageList t = get_list(info, 0, "tensors");
  return Napi::Number::New(info.Env(), backend::squared_norm(t.list()));
}

Napi::Value ScaleInplace(const Napi::CallbackInfo& info) {
  const StorageList t = get_list(info, 0, "tensors");
  check_distinct({&t}, {"tensors"});
  const double factor = get_number(info, 1, "factor");
  if (!std::isfinite(factor)) throw ArgError("factor", "must be finite");
  backend::scale_inplace(t.list(), float(factor));
  return info.Env().Undefined();
}

// clipByNorm(tensors, maxNorm) -> norm: a one-element storage; the scaling is queued after it.
Napi::Value ClipByNorm(const Napi::CallbackInfo& info) {
  const StorageList t = get_list(info, 0, "tensors");
  check_distinct({&t}, {"tensors"});
  const double max_norm = get_number(info, 1, "maxNorm");
  if (!(max_norm >= 0) || !std::isfinite(max_norm)) throw ArgError("maxNorm", "expected a finite number >= 0");
  Napi::Value norm = make_storage(info.Env(), 1);
  backend::clip_by_norm(t.list(), max_norm, unwrap(norm)->ptr);
  return norm;
}

}  // namespace

FF_EXPORTS({"clipByNorm", guarded<ClipByNorm>}, {"adamStep", guarded<AdamStep>}, {"sgdStep", guarded<SgdStep>},
           {"squaredNorm", guarded<SquaredNorm>}, {"scaleInplace", guarded<ScaleInplace>});

}  // namespace ff::binding
