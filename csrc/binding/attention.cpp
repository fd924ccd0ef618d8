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

// R at info[3] and the options at info[5..7] of both Fourier attention calls.
struct FourierOptions {
  Storage* R;
  int power;
  float eps;
  bool stable;
};

FourierOptions get_fourier_options(const Napi::CallbackInfo& info, const AttentionShape& sh) {
  FourierOptions o{};
  o.R = &get_storage(info, 3, "R", size_t(sh.r_elems()));
  o.power = get_int(info, 5, "power", 1, 64);
  o.eps = get_eps(info, 6);
  o.stable = get_bool(info, 7, "stable");
  if (o.stable && o.power % 2 != 0) throw ArgError("power", "stable: true needs an even power");
  return o;
}

// fourierAttentionForward(q, k, v, R, dims, power, eps, stable) -> [out, stats]
Napi::Value FourierAttentionForward(const Napi::CallbackInfo& info) {
  const AttentionShape sh = get_attention_shape(info, 4);
  const QkvOperands x = get_qkv(info, sh);
  const FourierOptions o = get_fourier_options(info, sh);
  check_finite_R(*o.R, "fourierAttention");
  Napi::Env env = info.Env();
  Napi::Value out = make_storage(env, size_t(sh.out_elems()));
  Napi::Value stats = make_storage(env, size_t(sh.row_elems()));
  backend::fourier_attention_forward(sh, x.q->ptr, x.k->ptr, x.v->ptr, o.R->ptr, o.power, o.eps, o.stable,
                                     unwrap(out)->ptr, unwrap(stats)->ptr);
  return pack(env, {out, stats});
}

// fourierAttentionBackward(q, k, v, R, dims, power, eps, stable, out, stats, dout)
//   -> [dq, dk, dv, dR]
Napi::Value FourierAttentionBackward(const Napi::CallbackInfo& info) {
  const AttentionShape sh = get_attention_shape(info, 4);
  const QkvOperands x = get_qkv(info, sh);
  const FourierOptions o = get_fourier_options(info, sh);
  const SavedForward f = get_saved_forward(info, 8, sh, "stats");
  check_finite_R(*o.R, "fourierAttention");
  Napi::Env env = info.Env();
  const QkvGrads g = make_qkv_grads(env, sh);
  Napi::Value dR = make_storage(env, size_t(sh.r_elems()));
  backend::fourier_attention_backward(sh, x.q->ptr, x.k->ptr, x.v->ptr, o.R->ptr, o.power, o.eps, o.stable, f.out->ptr,
                                      f.rows->ptr, f.dout->ptr, unwrap(g.dq)->ptr, unwrap(g.dk)->ptr, unwrap(g.dv)->ptr,
                                      unwrap(dR)->ptr);
  return pack(env, {g.dq, g.dk, g.dv, dR});
}

float get_scale(const Napi::CallbackInfo& info, size_t i) {
  const double scale = get_number(info, i, "scale");
  if (!std::isfinite(scale)) throw ArgError("scale", "expected a finite number");
  return float(scale);
}

// dotAttentionForward(q, k, v, dims, scale) -> [out, lse]     (dims as for Fourier; R unused)
Napi::Value DotAttentionForward(const Napi::CallbackInfo& info) {
  const AttentionShape sh = get_attention_shape(info, 3);
  const QkvOperands x = get_qkv(info, sh);
  const float scale = get_scale(info, 4);
  Napi::Env env = info.Env();
  Napi::Value out = make_storage(env, size_t(sh.out_elems()));
  Napi::Value lse = make_storage(env, size_t(sh.row_elems()));
  backend::dot_attention_forward(sh, x.q->ptr, x.k->ptr, x.v->ptr, scale, unwrap(out)->ptr, unwrap(lse)->ptr);
  return pack(env, {out, lse});
}

// dotAttentionBackward(q, k, v, dims, scale, out, lse, dout) -> [dq, dk, dv]
Napi::Value DotAttentionBackward(const Napi::CallbackInfo& info) {
  const AttentionShape sh = get_attention_shape(info, 3);
  const QkvOperands x = get_qkv(info, sh);
  const float scale = get_scale(info, 4);
  const SavedForward f = get_saved_forward(info, 5, sh, "lse");
  Napi::Env env = info.Env();
  const QkvGrads g = make_qkv_grads(env, sh);
  backend::dot_attention_backward(sh, x.q->ptr, x.k->ptr, x.v->ptr, scale, f.out->ptr, f.rows->ptr, f.dout->ptr,
                                  unwrap(g.dq)->ptr, unwrap(g.dk)->ptr, unwrap(g.dv)->ptr);
  return pack(env, {g.dq, g.dk, g.dv});
}

}  // namespace

FF_EXPORTS({"fourierAttentionForward", guarded<FourierAttentionForward>},
           {"fourierAttentionBackward", guarded<FourierAttentionBackward>},
           {"dotAttentionForward", guarded<DotAttentionForward>},
           {"dotAttentionBackward", guarded<DotAttentionBackward>});

}  // namespace ff::binding
