// Argument readers shared by the op bindings: the dims arrays that lib/ops/ sends, and R checks.
#pragma once
#include <napi.h>
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

}  // namespace ff::binding
