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
  const double eps = get_number(info, 7, "eps");
  if (!(eps >= 0) || !std::isfinite(eps)) throw ArgError("eps", "expected a finite number >= 0");
  o.scale = float(scale);
  o.eps = float(eps);
  return o;
}

struct FavorOperands {
  Storage *q, *k, *v, *W;
};

FavorOperands get_operands(const Napi::CallbackInfo& info, const AttentionShape& sh, int M) {
  return {&get_storage(info, 0, "q", size_t(sh.q_elems())), &get_storage(info, 1, "k", size_t(sh.k_elems())),
          &get_storage(info, 2, "v", size_t(sh.v_elems())), &get_storage(info, 3, "projection", size_t(M) * sh.D)};
}

Napi::Array pack(Napi::Env env, std::initializer_list<Napi::Value> values) {
  auto out = Napi::Array::New(env, values.size());
  uint32_t i = 0;
  for (const auto& v : values) out.Set(i++, v);
  return out;
}

// favorAttentionForward(q, k, v, W, dims, M, scale, eps) -> [out, den]
//   dims = [B, H, Nq, Nk, F, 1, 1, Dv, causal]
Napi::Value FavorAttentionForward(const Napi::CallbackInfo& info) {
  const AttentionShape sh = get_attention_shape(info, 4);
  const FavorOptions o = get_favor_options(info);
  const FavorOperands x = get_operands(info, sh, o.M);
  Napi::Env env = info.Env();
  Napi::Value out = make_storage(env, size_t(sh.out_elems()));
  Napi::Value den = make_storage(env, size_t(sh.row_elems()));
  backend::favor_attention_forward(sh, o.M, x.q->ptr, x.k->ptr, x.v->ptr, x.W->ptr, o.scale, o.eps,
                                   unwrap(out)->ptr, unwrap(den)->ptr);
  return pack(env, {out, den});
}

// favorAttentionBackward(q, k, v, W, dims, M, scale, eps, out, den, dout) -> [dq, dk, dv]
Napi::Value FavorAttentionBackward(const Napi::CallbackInfo& info) {
  const AttentionShape sh = get_attention_shape(info, 4);
  const FavorOptions o = get_favor_options(info);
  const FavorOperands x = get_operands(info, sh, o.M);
  Storage& out = get_storage(info, 8, "out", size_t(sh.out_elems()));
  Storage& den = get_storage(info, 9, "den", size_t(sh.row_elems()));
  Storage& dout = get_storage(info, 10, "grad", size_t(sh.out_elems()));
  Napi::Env env = info.Env();
  Napi::Value dq = make_storage(env, size_t(sh.q_elems()));
  Napi::Value dk = make_storage(env, size_t(sh.k_elems()));
  Napi::Value dv = make_storage(env, size_t(sh.v_elems()));
  backend::favor_attention_backward(sh, o.M, x.q->ptr, x.k->ptr, x.v->ptr, x.W->ptr, o.scale, o.eps, out.ptr,
                                    den.ptr, dout.ptr, unwrap(dq)->ptr, unwrap(dk)->ptr, unwrap(dv)->ptr);
  return pack(env, {dq, dk, dv});
}

}  // namespace

FF_EXPORTS(
    {"favorAttentionForward", guarded<FavorAttentionForward>},
    {"favorAttentionBackward", guarded<FavorAttentionBackward>});

}  // namespace ff::binding
