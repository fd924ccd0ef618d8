// Bindings of fused Neural Attention: the forward with the row log-sum-exp, and the backward
// returning da, dc, dv and the score network's weight gradients (dw2, db2, dw3, db3).
#include <napi.h>
#include "../common/backend.h"
#include "../common/neural_score.h"
#include "args.h"
#include "errors.h"
#include "guarded.h"
#include "op_args.h"
#include "registry.h"
#include "storage.h"

namespace ff::binding {
namespace {

// The operands a, c, v (checked against dims at info[7]) and the weights w2, b2, w3, b3 at
// info[3..6] (checked against d1 = dims' D and d2 at info[8]).
struct Operands {
  AttentionShape sh;
  Storage *a, *c, *v;
  NeuralMlp mlp;
};

Operands get_operands(const Napi::CallbackInfo& info) {
  Operands o;
  o.sh = get_attention_shape(info, 7);
  o.mlp.d1 = o.sh.D;
  o.mlp.d2 = get_int(info, 8, "d2", 1, kNeuralMaxHidden);
  if (o.mlp.d1 > kNeuralMaxHidden)
    throw ArgError("dims.D", "the score network's first layer takes at most " + std::to_string(kNeuralMaxHidden) +
                                 " units, got " + std::to_string(o.mlp.d1));
  o.a = &get_storage(info, 0, "a", size_t(o.sh.q_elems()));
  o.c = &get_storage(info, 1, "c", size_t(o.sh.k_elems()));
  o.v = &get_storage(info, 2, "v", size_t(o.sh.v_elems()));
  o.mlp.w2 = get_storage(info, 3, "w2", size_t(o.mlp.d2) * o.mlp.d1).ptr;
  o.mlp.b2 = get_storage(info, 4, "b2", size_t(o.mlp.d2)).ptr;
  o.mlp.w3 = get_storage(info, 5, "w3", size_t(o.mlp.d2)).ptr;
  o.mlp.b3 = get_storage(info, 6, "b3", 1).ptr;
  return o;
}

// neuralAttentionForward(a, c, v, w2, b2, w3, b3, dims, d2) -> [out, lse]
//   dims = [B, H, Nq, Nk, d1, 1, 1, Dv, causal]
Napi::Value NeuralAttentionForward(const Napi::CallbackInfo& info) {
  const Operands o = get_operands(info);
  Napi::Env env = info.Env();
  Napi::Value out = make_storage(env, size_t(o.sh.out_elems()));
  Napi::Value lse = make_storage(env, size_t(o.sh.row_elems()));
  backend::neural_attention_forward(o.sh, o.a->ptr, o.c->ptr, o.v->ptr, o.mlp, unwrap(out)->ptr, unwrap(lse)->ptr);
  return pack(env, {out, lse});
}

// neuralAttentionBackward(a, c, v, w2, b2, w3, b3, dims, d2, out, lse, dout)
//   -> [da, dc, dv, dw2, db2, dw3, db3]
Napi::Value NeuralAttentionBackward(const Napi::CallbackInfo& info) {
  const Operands o = get_operands(info);
  const SavedForward f = get_saved_forward(info, 9, o.sh, "lse");
  Napi::Env env = info.Env();
  const QkvGrads g = make_qkv_grads(env, o.sh);  // da, dc, dv
  Napi::Value dw2 = make_storage(env, size_t(o.mlp.d2) * o.mlp.d1);
  Napi::Value db2 = make_storage(env, size_t(o.mlp.d2));
  Napi::Value dw3 = make_storage(env, size_t(o.mlp.d2));
  Napi::Value db3 = make_storage(env, 1);
  backend::neural_attention_backward(o.sh, o.a->ptr, o.c->ptr, o.v->ptr, o.mlp, f.out->ptr, f.rows->ptr, f.dout->ptr,
                                     unwrap(g.dq)->ptr, unwrap(g.dk)->ptr, unwrap(g.dv)->ptr, unwrap(dw2)->ptr,
                                     unwrap(db2)->ptr, unwrap(dw3)->ptr, unwrap(db3)->ptr);
  return pack(env, {g.dq, g.dk, g.dv, dw2, db2, dw3, db3});
}

}  // namespace

FF_EXPORTS({"neuralAttentionForward", guarded<NeuralAttentionForward>},
           {"neuralAttentionBackward", guarded<NeuralAttentionBackward>});

}  // namespace ff::binding
