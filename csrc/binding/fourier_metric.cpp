// Bindings of fourierMetric: forward, and the fused backward returning dq, dk and dR.
#include <napi.h>
#include "../common/backend.h"
#include "args.h"
#include "guarded.h"
#include "op_args.h"
#include "registry.h"
#include "storage.h"

namespace ff::binding {
namespace {

// fourierMetricForward(q, k, R, dims, power) -> K
Napi::Value FourierMetricForward(const Napi::CallbackInfo& info) {
  const MetricShape sh = get_metric_shape(info, 3);
  Storage& q = get_storage(info, 0, "q", size_t(sh.q_elems()));
  Storage& k = get_storage(info, 1, "k", size_t(sh.k_elems()));
  Storage& R = get_storage(info, 2, "R", size_t(sh.r_elems()));
  const int power = get_int(info, 4, "power", 1, 64);
  check_finite_R(R, "fourierMetric");
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
  check_finite_R(R, "fourierMetric");
  Napi::Env env = info.Env();
  Napi::Value dq = make_storage(env, size_t(sh.q_elems()));
  Napi::Value dk = make_storage(env, size_t(sh.k_elems()));
  Napi::Value dR = make_storage(env, size_t(sh.r_elems()));
  backend::fourier_metric_backward(sh, q.ptr, k.ptr, R.ptr, power, dK.ptr, unwrap(dq)->ptr, unwrap(dk)->ptr,
                                   unwrap(dR)->ptr);
  return pack(env, {dq, dk, dR});
}

}  // namespace

FF_EXPORTS({"fourierMetricForward", guarded<FourierMetricForward>},
           {"fourierMetricBackward", guarded<FourierMetricBackward>});

}  // namespace ff::binding
