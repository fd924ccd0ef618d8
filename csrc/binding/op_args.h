// Argument readers shared by the op bindings: the dims arrays that lib/ops/ sends, the attention
// operands and options, R checks; and the array an op returns its results in.
#pragma once
#include <napi.h>
#include <initializer_list>
#include "../common/shapes.h"
#include "storage.h"

namespace ff::binding {

// dims = [B, H, Nq, Nk, D, rH, rD] at info[i].
MetricShape get_metric_shape(const Napi::CallbackInfo& info, size_t i);
// dims = [B, H, Nq, Nk, D, rH, rD, Dv, causal] at info[i] (causal is 0 or 1; needs Nq == Nk).
AttentionShape get_attention_shape(const Napi::CallbackInfo& info, size_t i);
// R must hold finite values (NaN or inf R would poison every output): checked on the backend
// without waiting for the device (backend_checks.h), a failure naming `op` (a string literal).
void check_finite_R(const Storage& R, const char* op);
// A boolean argument.
bool get_bool(const Napi::CallbackInfo& info, size_t i, const char* what);
// An attention's eps at info[i]: a finite number >= 0.
float get_eps(const Napi::CallbackInfo& info, size_t i);

// q, k, v of an attention at info[0..2], each checked to hold sh's number of elements.
struct QkvOperands {
  Storage *q, *k, *v;
};
QkvOperands get_qkv(const Napi::CallbackInfo& info, const AttentionShape& sh);

// What an attention's backward reads besides its operands, at info[i..i+2]: the forward's out,
// its per-row statistic (named `rows`: the log-sum-exp, Fourier's stats, FAVOR's normaliser) and
// the gradient of out.
struct SavedForward {
  Storage *out, *rows, *dout;
};
SavedForward get_saved_forward(const Napi::CallbackInfo& info, size_t i, const AttentionShape& sh, const char* rows);

// New storages for dq, dk and dv, shaped as q, k and v.
struct QkvGrads {
  Napi::Value dq, dk, dv;
};
QkvGrads make_qkv_grads(Napi::Env env, const AttentionShape& sh);

// The results of an op as one JS array, in order.
Napi::Array pack(Napi::Env env, std::initializer_list<Napi::Value> values);

}  // namespace ff::binding
