// Bindings of FAVOR+ linear attention (performerAttention): the forward with the rows'
// normalisers, and the backward returning dq, dk and dv (the random projection gets none).
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

// The random features and their options at info[5..7]: M (W is [M, F]), scale, eps.
struct FavorOptions {
  int M;
  float scale, eps;
};

FavorOptions get_favor_options(const Napi::CallbackInfo& info) {
  FavorOptions o{};
  o.M = get_int(info, 5, "features", 1, 1 << 16);
  const double scale = get_number(info, 6, "scale");
  if (!(scale > 0) || !std::isfinite(scale)) throw ArgError("scale", "expected a finite number > 0");
  o.scale = float(scale);
  o.eps = get_eps(info, 7);
  return o;
}

// The projection W at info[3]: [M, F] (F = dims' D).
Storage& get_projection(const Napi::CallbackInfo& info, const AttentionShape& sh, int M) {
  return get_storage(info, 3, "projection", size_t(M) * sh.D);
}

// favorAttentionForward(q, k, v, W, dims, M, scale, eps) -> [out, den]
//   dims = [B, H, Nq, Nk, F, 1, 1, Dv, causal]
Napi::Value FavorAttentionForward(const Napi::CallbackInfo& info) {
  const AttentionShape sh = get_attention_shape(info, 4);
  const FavorOptions o = get_favor_options(info);
  const QkvOperands x = get_qkv(info, sh);
  Storage& W = get_projection(info, sh, o.M);
  Napi::Env env = info.Env();
  Napi::Value out = make_storage(env, size_t(sh.out_elems()));
  Napi::Value den = make_storage(env, size_t(sh.row_elems()));
  backend::favor_attention_forward(sh, o.M, x.q->ptr, x.k->ptr, x.v->ptr, W.ptr, o.scale, o.eps, unwrap(out)->ptr,
                                   unwrap(den)->ptr);
  return pack(env, {out, den});
}

// favorAttentionBackward(q, k, v, W, dims, M, scale, eps, out, den, dout) -> [dq, dk, dv]
Napi::Value FavorAttentionBackward(const Napi::CallbackInfo& info) {
  const AttentionShape sh = get_attention_shape(info, 4);
  const FavorOptions o = get_favor_options(info);
  const QkvOperands x = get_qkv(info, sh);
  Storage& W = get_projection(info, sh, o.M);
  const SavedForward f = get_saved_forward(info, 8, sh, "den");
  Napi::Env env = info.Env();
  const QkvGrads g = make_qkv_grads(env, sh);
  backend::favor_attention_backward(sh, o.M, x.q->ptr, x.k->ptr, x.v->ptr, W.ptr, o.scale, o.eps, f.out->ptr,
                                    f.rows->ptr, f.dout->ptr, unwrap(g.dq)->ptr, unwrap(g.dk)->ptr, unwrap(g.dv)->ptr);
  return pack(env, {g.dq, g.dk, g.dv});
}

}  // namespace

FF_EXPORTS({"favorAttentionForward", guarded<FavorAttentionForward>},
           {"favorAttentionBackward", guarded<FavorAttentionBackward>});

}  // namespace ff::binding
