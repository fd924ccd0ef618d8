// Bindings of the neural-network kernels (csrc/common/backend_nn_ops.h): GEMM, linear,
// LayerNorm, softmax, cross-entropy, embedding, dropout. Every storage is checked against the
// element count its dims imply, and every integer input (ids, targets) is checked to hold valid
// indices before a kernel reads with it, forward and backward alike.
#include <napi.h>
#include <cmath>
#include <string>
#include <vector>
#include "../common/backend.h"
#include "../common/backend_checks.h"
#include "../common/backend_nn_ops.h"
#include "args.h"
#include "errors.h"
#include "guarded.h"
#include "op_args.h"
#include "registry.h"
#include "storage.h"

namespace ff::binding {
namespace {

constexpr long long kMaxDim = (1LL << 31) - 1;
constexpr long long kMaxIndexLimit = 1LL << 24;  // ids are exact in float32 below 2^24

// The integers of the array at info[i], each in [lo, hi]; names[] name them in errors.
std::vector<long long> get_dims(const Napi::CallbackInfo& info, size_t i, const std::vector<const char*>& names,
                                long long lo = 1, long long hi = kMaxDim) {
  if (i >= info.Length() || !info[i].IsArray())
    throw ArgError("dims", "expected an array of " + std::to_string(names.size()) + " integers");
  auto a = info[i].As<Napi::Array>();
  if (a.Length() != names.size())
    throw ArgError("dims", "expected " + std::to_string(names.size()) + " integers, got " + std::to_string(a.Length()));
  std::vector<long long> v(names.size());
  for (uint32_t k = 0; k < names.size(); ++k) {
    Napi::Value x = a[k];
    const double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : NAN;
    if (!(d >= double(lo) && d <= double(hi) && std::floor(d) == d))
      throw ArgError(std::string("dims.") + names[k],
                     "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    v[k] = (long long)d;
  }
  return v;
}

// A storage, or nullptr when the argument is null or undefined.
float* get_optional(const Napi::CallbackInfo& info, size_t i, const char* what, size_t n) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return nullptr;
  return get_storage(info, i, what, n).ptr;
}

// Elements reachable from a strided batch of matrices: (batch - 1) * stride + rows * cols.
size_t extent(long long batch, long long stride, long long rows, long long cols) {
  return size_t((batch - 1) * stride + rows * cols);
}

// Every id valid (an integer in [0, limit), or the ignore index), checked by the backend without
// waiting for the device (backend_checks.h); a failure names `what` and `op` (string literals).
void check_ids(const Storage& ids, size_t n, const char* op, const char* what, long long limit, bool has_allowed,
               long long allowed) {
  backend::check_ids(ids.ptr, int64_t(n), limit, has_allowed, allowed, op, what);
}

// A new storage of n floats when `wanted`, else null; *ptr receives its pointer (or nullptr).
Napi::Value maybe_storage(Napi::Env env, bool wanted, size_t n, float** ptr) {
  if (!wanted) {
    *ptr = nullptr;
    return env.Null();
  }
  Napi::Value s = make_storage(env, n);
  *ptr = unwrap(s)->ptr;
  return s;
}

// gemm(A, B, dims = [batch, M, N, K, transA, transB, strideA, strideB, sumBatches]) -> C
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  const std::vector<const char*> names = {"batch",  "M",       "N",       "K",         "transA",
                                          "transB", "strideA", "strideB", "sumBatches"};
  const auto d = get_dims(info, 2, names, 0);
  for (int k = 0; k < 4; ++k)
    if (d[k] < 1) throw ArgError(std::string("dims.") + names[k], "must be at least 1");
  for (int k : {4, 5, 8})
    if (d[k] > 1) throw ArgError(std::string("dims.") + names[k], "expected 0 or 1");
  backend::GemmShape s;
  s.batch = int(d[0]);
  s.M = int(d[1]);
  s.N = int(d[2]);
  s.K = int(d[3]);
  s.trans_a = d[4] == 1;
  s.trans_b = d[5] == 1;
  s.stride_a = d[6];
  s.stride_b = d[7];
  s.sum_batches = d[8] == 1;
  Storage& A = get_storage(info, 0, "a");
  Storage& B = get_storage(info, 1, "b");
  if (A.n < extent(s.batch, s.stride_a, s.M, s.K))
    throw ArgError("a", "has " + std::to_string(A.n) + " elements, fewer than its dims and stride reach");
  if (B.n < extent(s.batch, s.stride_b, s.K, s.N))
    throw ArgError("b", "has " + std::to_string(B.n) + " elements, fewer than its dims and stride reach");
  Napi::Value C = make_storage(info.Env(), size_t(s.sum_batches ? 1 : s.batch) * s.M * s.N);
  backend::gemm(s, A.ptr, B.ptr, unwrap(C)->ptr);
  return C;
}

// linearForward(x, W, b | null, dims = [rows, in, out]) -> y
Napi::Value LinearForward(const Napi::CallbackInfo& info) {
  const auto d = get_dims(info, 3, {"rows", "in", "out"});
  const size_t rows = d[0], in = d[1], out = d[2];
  Storage& x = get_storage(info, 0, "x", rows * in);
  Storage& W = get_storage(info, 1, "weight", out * in);
  const float* b = get_optional(info, 2, "bias", out);
  Napi::Value y = make_storage(info.Env(), rows * out);
  backend::linear_forward(int(rows), int(in), int(out), x.ptr, W.ptr, b, unwrap(y)->ptr);
  return y;
}

// linearBackward(x, W, dy, dims = [rows, in, out], wantDx, wantDw, wantDb) -> [dx, dW, db] (null when not wanted)
Napi::Value LinearBackward(const Napi::CallbackInfo& info) {
  const auto d = get_dims(info, 3, {"rows", "in", "out"});
  const size_t rows = d[0], in = d[1], out = d[2];
  Storage& x = get_storage(info, 0, "x", rows * in);
  Storage& W = get_storage(info, 1, "weight", out * in);
  Storage& dy = get_storage(info, 2, "grad", rows * out);
  const bool want_dx = get_bool(info, 4, "wantDx"), want_dw = get_bool(info, 5, "wantDw"),
             want_db = get_bool(info, 6, "wantDb");
  Napi::Env env = info.Env();
  float *dx, *dW, *db;
  Napi::Value dxs = maybe_storage(env, want_dx, rows * in, &dx);
  Napi::Value dWs = maybe_storage(env, want_dw, out * in, &dW);
  Napi::Value dbs = maybe_storage(env, want_db, out, &db);
  backend::linear_backward(int(rows), int(in), int(out), x.ptr, W.ptr, dy.ptr, dx, dW, db);
  return pack(env, {dxs, dWs, dbs});
}

// layerNormForward(x, gamma | null, beta | null, dims = [rows, C], eps) -> [y, mean, rstd]
Napi::Value LayerNormForward(const Napi::CallbackInfo& info) {
  const auto d = get_dims(info, 3, {"rows", "C"});
  const size_t rows = d[0], C = d[1];
  Storage& x = get_storage(info, 0, "x", rows * C);
  const float* gamma = get_optional(info, 1, "weight", C);
  const float* beta = get_optional(info, 2, "bias", C);
  const double eps = get_number(info, 4, "eps");
  if (!(eps >= 0.0 && std::isfinite(eps))) throw ArgError("eps", "expected a finite number >= 0");
  Napi::Env env = info.Env();
  Napi::Value y = make_storage(env, rows * C), mean = make_storage(env, rows), rstd = make_storage(env, rows);
  backend::layernorm_forward(int(rows), int(C), float(eps), x.ptr, gamma, beta, unwrap(y)->ptr, unwrap(mean)->ptr,
                             unwrap(rstd)->ptr);
  return pack(env, {y, mean, rstd});
}

// layerNormBackward(x, gamma | null, mean, rstd, dy, dims = [rows, C], wantDx, wantDgamma, wantDbeta)
//   -> [dx, dgamma, dbeta] (null when not wanted)
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  const auto d = get_dims(info, 5, {"rows", "C"});
  const size_t rows = d[0], C = d[1];
  Storage& x = get_storage(info, 0, "x", rows * C);
  const float* gamma = get_optional(info, 1, "weight", C);
  Storage& mean = get_storage(info, 2, "mean", rows);
  Storage& rstd = get_storage(info, 3, "rstd", rows);
  Storage& dy = get_storage(info, 4, "grad", rows * C);
  const bool want_dx = get_bool(info, 6, "wantDx"), want_dg = get_bool(info, 7, "wantDweight"),
             want_db = get_bool(info, 8, "wantDbias");
  Napi::Env env = info.Env();
  float *dx, *dg, *db;
  Napi::Value dxs = maybe_storage(env, want_dx, rows * C, &dx);
  Napi::Value dgs = maybe_storage(env, want_dg, C, &dg);
  Napi::Value dbs = maybe_storage(env, want_db, C, &db);
  backend::layernorm_backward(int(rows), int(C), x.ptr, gamma, mean.ptr, rstd.ptr, dy.ptr, dx, dg, db);
  return pack(env, {dxs, dgs, dbs});
}

// softmaxForward(x, dims = [rows, C], log) -> y
Napi::Value SoftmaxForward(const Napi::CallbackInfo& info) {
  const auto d = get_dims(info, 1, {"rows", "C"});
  const size_t rows = d[0], C = d[1];
  Storage& x = get_storage(info, 0, "x", rows * C);
  const bool log = get_bool(info, 2, "log");
  Napi::Value y = make_storage(info.Env(), rows * C);
  backend::softmax_forward(int(rows), int(C), log, x.ptr, unwrap(y)->ptr);
  return y;
}

// softmaxBackward(y, dy, dims = [rows, C], log) -> dx
Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  const auto d = get_dims(info, 2, {"rows", "C"});
  const size_t rows = d[0], C = d[1];
  Storage& y = get_storage(info, 0, "output", rows * C);
  Storage& dy = get_storage(info, 1, "grad", rows * C);
  const bool log = get_bool(info, 3, "log");
  Napi::Value dx = make_storage(info.Env(), rows * C);
  backend::softmax_backward(int(rows), int(C), log, y.ptr, dy.ptr, unwrap(dx)->ptr);
  return dx;
}

// The cross-entropy options at info[i..i+4]: dims = [rows, C], soft, ignoreIndex, labelSmoothing, reduction.
backend::CrossEntropyShape get_cross_entropy_shape(const Napi::CallbackInfo& info, size_t i) {
  const auto d = get_dims(info, i, {"rows", "C"}, 1, kMaxIndexLimit);
  backend::CrossEntropyShape s;
  s.rows = int(d[0]);
  s.C = int(d[1]);
  s.soft = get_bool(info, i + 1, "soft");
  s.ignore_index = get_int(info, i + 2, "ignoreIndex", -kMaxIndexLimit, kMaxIndexLimit);
  const double ls = get_number(info, i + 3, "labelSmoothing");
  if (!(ls >= 0.0 && ls <= 1.0)) throw ArgError("labelSmoothing", "expected a number in [0, 1]");
  s.label_smoothing = float(ls);
  s.reduction = backend::Reduction(get_int(info, i + 4, "reduction", 0, 2));
  return s;
}

Storage& get_targets(const Napi::CallbackInfo& info, size_t i, const backend::CrossEntropyShape& s) {
  const size_t n = s.soft ? size_t(s.rows) * s.C : size_t(s.rows);
  Storage& t = get_storage(info, i, "target", n);
  if (!s.soft) check_ids(t, n, "crossEntropy", "target", s.C, true, s.ignore_index);
  return t;
}

// crossEntropyForward(logits, target, dims, soft, ignoreIndex, labelSmoothing, reduction) -> [loss, lse, count]
Napi::Value CrossEntropyForward(const Napi::CallbackInfo& info) {
  const backend::CrossEntropyShape s = get_cross_entropy_shape(info, 2);
  Storage& logits = get_storage(info, 0, "input", size_t(s.rows) * s.C);
  Storage& t = get_targets(info, 1, s);
  Napi::Env env = info.Env();
  Napi::Value loss = make_storage(env, s.reduction == backend::Reduction::kNone ? s.rows : 1);
  Napi::Value lse = make_storage(env, s.rows), count = make_storage(env, 1);
  backend::cross_entropy_forward(s, logits.ptr, t.ptr, unwrap(loss)->ptr, unwrap(lse)->ptr, unwrap(count)->ptr);
  return pack(env, {loss, lse, count});
}

// crossEntropyBackward(logits, target, lse, count, grad, dims, soft, ignoreIndex, labelSmoothing, reduction) -> dlogits
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  const backend::CrossEntropyShape s = get_cross_entropy_shape(info, 5);
  Storage& logits = get_storage(info, 0, "input", size_t(s.rows) * s.C);
  Storage& t = get_targets(info, 1, s);
  Storage& lse = get_storage(info, 2, "lse", s.rows);
  Storage& count = get_storage(info, 3, "count", 1);
  Storage& grad = get_storage(info, 4, "grad", s.reduction == backend::Reduction::kNone ? s.rows : 1);
  Napi::Value dx = make_storage(info.Env(), size_t(s.rows) * s.C);
  backend::cross_entropy_backward(s, logits.ptr, t.ptr, lse.ptr, count.ptr, grad.ptr, unwrap(dx)->ptr);
  return dx;
}

// embeddingForward(ids, weight, dims = [n, D, V]) -> out [n, D]
Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  const auto d = get_dims(info, 2, {"n", "D", "V"}, 1, kMaxIndexLimit);
  const size_t n = d[0], D = d[1], V = d[2];
  Storage& ids = get_storage(info, 0, "ids", n);
  Storage& W = get_storage(info, 1, "weight", V * D);
  check_ids(ids, n, "embedding", "ids", V, false, 0);
  Napi::Value out = make_storage(info.Env(), n * D);
  backend::embedding_forward(int(n), int(D), int(V), ids.ptr, W.ptr, unwrap(out)->ptr);
  return out;
}

// embeddingBackward(ids, dout, dims = [n, D, V]) -> dW [V, D]
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  const auto d = get_dims(info, 2, {"n", "D", "V"}, 1, kMaxIndexLimit);
  const size_t n = d[0], D = d[1], V = d[2];
  Storage& ids = get_storage(info, 0, "ids", n);
  Storage& dout = get_storage(info, 1, "grad", n * D);
  check_ids(ids, n, "embedding", "ids", V, false, 0);
  Napi::Value dW = make_storage(info.Env(), V * D);
  backend::embedding_backward(int(n), int(D), int(V), ids.ptr, dout.ptr, unwrap(dW)->ptr);
  return dW;
}

// An integer in [0, 2^53] (seeds and Philox offsets).
uint64_t get_u53(const Napi::CallbackInfo& info, size_t i, const char* what) {
  const double v = get_number(info, i, what);
  if (!(v >= 0 && v <= 9007199254740992.0 && std::floor(v) == v))
    throw ArgError(what, "expected an integer in [0, 2^53]");
  return uint64_t(v);
}

// dropout(x, dims = [n, group], p, seed, offset) -> y; also the backward, applied to dy.
Napi::Value Dropout(const Napi::CallbackInfo& info) {
  const auto d = get_dims(info, 1, {"n", "group"}, 1, 1LL << 40);
  const size_t n = d[0], group = d[1];
  if (n % group != 0) throw ArgError("dims.group", "must divide n");
  Storage& x = get_storage(info, 0, "x", n);
  const double p = get_number(info, 2, "p");
  if (!(p >= 0.0 && p <= 1.0)) throw ArgError("p", "expected a probability in [0, 1]");
  const uint64_t seed = get_u53(info, 3, "seed"), offset = get_u53(info, 4, "offset");
  Napi::Value y = make_storage(info.Env(), n);
  backend::dropout(int64_t(n), int64_t(group), float(p), seed, offset, x.ptr, unwrap(y)->ptr);
  return y;
}

}  // namespace

FF_EXPORTS({"gemm", guarded<Gemm>}, {"linearForward", guarded<LinearForward>},
           {"linearBackward", guarded<LinearBackward>}, {"layerNormForward", guarded<LayerNormForward>},
           {"layerNormBackward", guarded<LayerNormBackward>}, {"softmaxForward", guarded<SoftmaxForward>},
           {"softmaxBackward", guarded<SoftmaxBackward>}, {"crossEntropyForward", guarded<CrossEntropyForward>},
           {"crossEntropyBackward", guarded<CrossEntropyBackward>}, {"embeddingForward", guarded<EmbeddingForward>},
           {"embeddingBackward", guarded<EmbeddingBackward>}, {"dropout", guarded<Dropout>});

}  // namespace ff::binding
