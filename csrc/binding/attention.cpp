// Bindings of the fused attentions: fourierAttention (forward with per-row statistics, and the
// fused backward returning dq, dk, dv and dR) and dotProductAttention (forward with the row
// log-sum-exp, backward returning dq, dk and dv).
#include <napi.h>
#include <cmath>
#include "../common/backend.h"
#include "args.h"
#include "errors.h"
#include "guarded.h"
#include "op_args.h"
#include "registry.h"
#include "storage.h"

namespace ff::binding {
namespace {

struct Operands {
  Storage *q, *k, *v;
};

Operands get_qkv(const Napi::CallbackInfo& info, const AttentionShape& sh) {
  return {&get_storage(info, 0, "q", size_t(sh.q_elems())), &get_storage(info, 1, "k", size_t(sh.k_elems())),
          &get_storage(info, 2, "v", size_t(sh.v_elems()))};
}

float get_eps(const Napi::CallbackInfo& info, size_t i) {
  const double eps = get_number(info, i, "eps");
  if (!(eps >= 0) || !std::isfinite(eps)) throw ArgError("eps", "expected a finite number >= 0");
  return float(eps);
}

Napi::Array pack(Napi::Env env, std::initializer_list<Napi::Value> values) {
  auto out = Napi::Array::New(env, values.size());
  uint32_t i = 0;
  for (const auto& v : values) out.Set(i++, v);
  return out;
}

// fourierAttentionForward(q, k, v, R, dims, power, eps, stable) -> [out, stats]
Napi::Value FourierAttentionForward(const Napi::CallbackInfo& info) {
  const AttentionShape sh = get_attention_shape(info, 4);
  const Operands x = get_qkv(info, sh);
  Storage& R = get_storage(info, 3, "R", size_t(sh.r_elems()));
  const int power = get_int(info, 5, "power", 1, 64);
  const float eps = get_eps(info, 6);
  const bool stable = get_bool(info, 7, "stable");
  if (stable && power % 2 != 0) throw ArgError("power", "stable: true needs an even power");
  check_finite_R(R, "fourierAttention");
  Napi::Env env = info.Env();
  Napi::Value out = make_storage(env, size_t(sh.out_elems()));
  Napi::Value stats = make_storage(env, size_t(sh.row_elems()));
  backend::fourier_attention_forward(sh, x.q->ptr, x.k->ptr, x.v->ptr, R.ptr, power, eps, stable,
                                     unwrap(out)->ptr, unwrap(stats)->ptr);
  return pack(env, {out, stats});
}

// fourierAttentionBackward(q, k, v, R, dims, power, eps, stable, out, stats, dout)
//   -> [dq, dk, dv, dR]
Napi::Value FourierAttentionBackward(const Napi::CallbackInfo& info) {
  const AttentionShape sh = get_attention_shape(info, 4);
  const Operands x = get_qkv(info, sh);
  Storage& R = get_storage(info, 3, "R", size_t(sh.r_elems()));
  const int power = get_int(info, 5, "power", 1, 64);
  const float eps = get_eps(info, 6);
  const bool stable = get_bool(info, 7, "stable");
  if (stable && power % 2 != 0) throw ArgError("power", "stable: true needs an even power");
  Storage& out = get_storage(info, 8, "out", size_t(sh.out_elems()));
  Storage& stats = get_storage(info, 9, "stats", size_t(sh.row_elems()));
  Storage& dout = get_storage(info, 10, "grad", size_t(sh.out_elems()));
  check_finite_R(R, "fourierAttention");
  Napi::Env env = info.Env();
  Napi::Value dq = make_storage(env, size_t(sh.q_elems()));
  Napi::Value dk = make_storage(env, size_t(sh.k_elems()));
  Napi::Value dv = make_storage(env, size_t(sh.v_elems()));
  Napi::Value dR = make_storage(env, size_t(sh.r_elems()));
  backend::fourier_attention_backward(sh, x.q->ptr, x.k->ptr, x.v->ptr, R.ptr, power, eps, stable,
                                      out.ptr, stats.ptr, dout.ptr, unwrap(dq)->ptr,
                                      unwrap(dk)->ptr, unwrap(dv)->ptr, unwrap(dR)->ptr);
  return pack(env, {dq, dk, dv, dR});
}

float get_scale(const Napi::CallbackInfo& info, size_t i) {
  const double scale = get_number(info, i, "scale");
  if (!std::isfinite(scale)) throw ArgError("scale", "expected a finite number");
  return float(scale);
}

// dotAttentionForward(q, k, v, dims, scale) -> [out, lse]     (dims as for Fourier; R unused)
Napi::Value DotAttentionForward(const Napi::CallbackInfo& info) {
  const AttentionShape sh = get_attention_shape(info, 3);
  const Operands x = get_qkv(info, sh);
  const float scale = get_scale(info, 4);
  Napi::Env env = info.Env();
  Napi::Value out = make_storage(env, size_t(sh.out_elems()));
  Napi::Value lse = make_storage(env, size_t(sh.row_elems()));
  backend::dot_attention_forward(sh, x.q->ptr, x.k->ptr, x.v->ptr, scale, unwrap(out)->ptr,
                                 unwrap(lse)->ptr);
  return pack(env, {out, lse});
}

// dotAttentionBackward(q, k, v, dims, scale, out, lse, dout) -> [dq, dk, dv]
Napi::Value DotAttentionBackward(const Napi::CallbackInfo& info) {
  const AttentionShape sh = get_attention_shape(info, 3);
  const Operands x = get_qkv(info, sh);
  const float scale = get_scale(info, 4);
  Storage& out = get_storage(info, 5, "out", size_t(sh.out_elems()));
  Storage& lse = get_storage(info, 6, "lse", size_t(sh.row_elems()));
  Storage& dout = get_storage(info, 7, "grad", size_t(sh.out_elems()));
  Napi::Env env = info.Env();
  Napi::Value dq = make_storage(env, size_t(sh.q_elems()));
  Napi::Value dk = make_storage(env, size_t(sh.k_elems()));
  Napi::Value dv = make_storage(env, size_t(sh.v_elems()));
  backend::dot_attention_backward(sh, x.q->ptr, x.k->ptr, x.v->ptr, scale, out.ptr, lse.ptr,
                                  dout.ptr, unwrap(dq)->ptr, unwrap(dk)->ptr, unwrap(dv)->ptr);
  return pack(env, {dq, dk, dv});
}

}  // namespace

FF_EXPORTS(
    {"fourierAttentionForward", guarded<FourierAttentionForward>},
    {"fourierAttentionBackward", guarded<FourierAttentionBackward>},
    {"dotAttentionForward", guarded<DotAttentionForward>},
    {"dotAttentionBackward", guarded<DotAttentionBackward>});

}  // namespace ff::binding
