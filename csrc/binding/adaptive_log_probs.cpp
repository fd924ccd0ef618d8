// The adaptive softmax's log-probabilities over the whole vocabulary in one native call, for
// inference (lib/ops/adaptive-softmax.ts, adaptiveLogProbs without grad; the composed ops there
// are the autograd path and the reference):
//
//   adaptiveLogProbs(x, dims, cutoffs, head, headBias, tails) -> out [N, V]
//     x [N, d]; dims = [N, d, V]; cutoffs = [c_0, ..., c_{k-1}] (increasing, c_{k-1} < V);
//     head = [H] with H [c_0 + k, d], or [E_0, K] with E_0 [c_0, d] and K [k, d] (the shortlist
//     tied to the adaptive input's first table); headBias [c_0 + k] or null;
//     tails[i] = [W_i, P_i, b_i, d_i, transposed]: W_i [V_i, d_i] (V_i = c_{i+1} - c_i), P_i the
//     projection d -> d_i ([d_i, d] read as x P^T, or [d, d_i] read as x P when transposed) or
//     null (d_i = d), b_i [V_i] or null.
//   head logits l = x H^T + b, lh = log_softmax(l) [N, c_0 + k];
//   out[:, w] = lh[:, w] for w < c_0;
//   out[:, c_i + j] = lh[:, c_0 + i] + log_softmax(project_i(x) W_i^T + b_i)[:, j].
// The same kernels as the composed ops (linear, gemm, log-softmax, broadcast add), so the results
// agree to float rounding; what it saves is the dozen tensors the ops make and free per call
// (a decoding step reads one row: ~12 calls of ~10-30 us of overhead each against GEMVs of
// ~2.5 MB of weights for the demo's 10000 words).
// Written once against csrc/common/backend*.h (cpu, cuda-emu and cuda). Scratch: one block of the
// backend's caching allocator, N (2 (c_0 + k) + max d_i + 2 max V_i) floats.
// Cost: 2 N d (c_0 + k) + sum_i 2 N (d d_i [projection] + d_i V_i) flops, one exp per output.
#include <napi.h>
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>
#include "../common/backend.h"
#include "../common/backend_nn_ops.h"
#include "../common/backend_tensor_ops.h"
#include "args.h"
#include "errors.h"
#include "guarded.h"
#include "registry.h"
#include "storage.h"

namespace ff::binding {
namespace {

// The storage `v` (named `what`), live and holding n floats.
float* storage_of(const Napi::Value& v, const std::string& what, int64_t n) {
  Storage* s = unwrap(v);
  if (s == nullptr) throw ArgError(what, "expected a storage (tensor memory)");
  if (s->freed) throw ArgError(what, "the storage has been freed");
  if (int64_t(s->n) != n)
    throw ArgError(what, "expected " + std::to_string(n) + " elements, got " + std::to_string(s->n));
  return s->ptr;
}

// A storage of n floats or null.
float* optional_storage(const Napi::Value& v, const std::string& what, int64_t n) {
  return v.IsNull() || v.IsUndefined() ? nullptr : storage_of(v, what, n);
}

// An integer in [lo, hi] read from a JS value.
int64_t int_of(const Napi::Value& v, const std::string& what, int64_t lo, int64_t hi) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= double(lo) && d <= double(hi) && std::floor(d) == d))
    throw ArgError(what, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return int64_t(d);
}

Napi::Array array_of(const Napi::CallbackInfo& info, size_t i, const char* what, const std::string& expected) {
  if (i >= info.Length() || !info[i].IsArray()) throw ArgError(what, "expected " + expected);
  return info[i].As<Napi::Array>();
}

struct Scratch {
  float* p;
  explicit Scratch(size_t n) : p(static_cast<float*>(backend::alloc(n * sizeof(float)))) {}
  ~Scratch() { backend::release(p); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

struct Tail {
  const float* W;
  const float* P;
  const float* b;
  int64_t start, rows, dim;
  bool transposed;
};

Napi::Value AdaptiveLogProbs(const Napi::CallbackInfo& info) {
  constexpr int64_t kMax = int64_t(1) << 30;
  auto dims = array_of(info, 1, "dims", "[N, d, V]");
  if (dims.Length() != 3) throw ArgError("dims", "expected 3 integers [N, d, V]");
  const int64_t N = int_of(dims[0u], "dims.N", 1, kMax), d = int_of(dims[1u], "dims.d", 1, kMax);
  const int64_t V = int_of(dims[2u], "dims.V", 2, kMax);
  auto cut = array_of(info, 2, "cutoffs", "an array of increasing integers");
  const int64_t k = cut.Length();
  if (k < 1) throw ArgError("cutoffs", "expected at least one cutoff");
  std::vector<int64_t> bounds(k + 1);
  for (uint32_t i = 0; i < k; ++i) {
    const int64_t lo = i == 0 ? 1 : bounds[i - 1] + 1;
    bounds[i] = int_of(cut[i], "cutoffs[" + std::to_string(i) + "]", lo, V - 1);
  }
  bounds[k] = V;
  const int64_t c0 = bounds[0], heads = c0 + k;
  const float* x = get_storage(info, 0, "x", size_t(N * d)).ptr;

  auto head = array_of(info, 3, "head", "[H] or [shortlist, clusters]");
  const float* H0 = nullptr;
  const float* H1 = nullptr;  // the clusters' rows when the head comes in two parts
  if (head.Length() == 1) {
    H0 = storage_of(head[0u], "head[0]", heads * d);
  } else if (head.Length() == 2) {
    H0 = storage_of(head[0u], "head[0]", c0 * d);
    H1 = storage_of(head[1u], "head[1]", k * d);
  } else {
    throw ArgError("head", "expected 1 or 2 storages");
  }
  const float* hb = info.Length() > 4 ? optional_storage(info[4], "headBias", heads) : nullptr;

  auto tl = array_of(info, 5, "tails", "one [weight, proj, bias, d_i, transposed] per cluster");
  if (int64_t(tl.Length()) != k)
    throw ArgError("tails", "expected " + std::to_string(k) + " (one per cutoff), got " + std::to_string(tl.Length()));
  std::vector<Tail> tails(k);
  int64_t max_dim = 0, max_rows = 0;
  for (uint32_t i = 0; i < k; ++i) {
    const std::string name = "tails[" + std::to_string(i) + "]";
    Napi::Value tv = tl[i];
    if (!tv.IsArray() || tv.As<Napi::Array>().Length() != 5)
      throw ArgError(name, "expected [weight, proj, bias, d_i, transposed]");
    auto t = tv.As<Napi::Array>();
    Tail& c = tails[i];
    c.start = bounds[i];
    c.rows = bounds[i + 1] - bounds[i];
    c.dim = int_of(t[3u], name + ".d_i", 1, kMax);
    Napi::Value tr = t[4u];
    if (!tr.IsBoolean()) throw ArgError(name + ".transposed", "expected a boolean");
    c.transposed = tr.As<Napi::Boolean>().Value();
    c.W = storage_of(t[0u], name + ".weight", c.rows * c.dim);
    c.P = optional_storage(t[1u], name + ".proj", c.dim * d);
    if (c.P == nullptr && c.dim != d)
      throw ArgError(name + ".d_i", "expected d = " + std::to_string(d) + " without a projection");
    c.b = optional_storage(t[2u], name + ".bias", c.rows);
    max_dim = std::max(max_dim, c.P != nullptr ? c.dim : 0);
    max_rows = std::max(max_rows, c.rows);
  }

  Napi::Value result = make_storage(info.Env(), size_t(N * V));
  float* out = unwrap(result)->ptr;
  // scratch: head logits and log-probs [N, c_0 + k], projected x [N, max d_i], tail [N, max V_i] x 2
  Scratch scratch(size_t(N * (2 * heads + max_dim + 2 * max_rows)));
  float* logits = scratch.p;
  float* lh = logits + N * heads;
  float* px = lh + N * heads;
  float* t1 = px + N * max_dim;
  float* t2 = t1 + N * max_rows;

  if (H1 == nullptr) {
    backend::linear_forward(int(N), int(d), int(heads), x, H0, hb, logits);
  } else {
    // each part's logits [N, rows] (t1), then into its columns of the head's
    backend::linear_forward(int(N), int(d), int(c0), x, H0, hb, t1);
    backend::copy_rows(t1, c0, logits, heads, N, c0);
    backend::linear_forward(int(N), int(d), int(k), x, H1, hb == nullptr ? nullptr : hb + c0, t1);
    backend::copy_rows(t1, k, logits + c0, heads, N, k);
  }
  backend::softmax_forward(int(N), int(heads), true, logits, lh);
  backend::copy_rows(lh, heads, out, V, N, c0);
  for (int64_t i = 0; i < k; ++i) {
    const Tail& c = tails[i];
    const float* xi = x;
    if (c.P != nullptr) {
      if (c.transposed) {
        backend::GemmShape g;
        g.M = int(N);
        g.K = int(d);
        g.N = int(c.dim);
        backend::gemm(g, x, c.P, px);  // x [N, d] P [d, d_i]
      } else {
        backend::linear_forward(int(N), int(d), int(c.dim), x, c.P, nullptr, px);
      }
      xi = px;
    }
    backend::linear_forward(int(N), int(c.dim), int(c.rows), xi, c.W, c.b, t1);
    backend::softmax_forward(int(N), int(c.rows), true, t1, t2);
    // t1 = t2 + lh[:, c_0 + i] broadcast over the cluster's columns (canonical: no size-1 dims)
    Strided s;
    if (N == 1) {
      s.ndim = 1;
      s.size[0] = c.rows;
      s.stride[0][0] = 1;
      s.stride[1][0] = 0;
    } else {
      s.ndim = 2;
      s.size[0] = N;
      s.size[1] = c.rows;
      s.stride[0][0] = c.rows;
      s.stride[0][1] = 1;
      s.stride[1][0] = heads;
      s.stride[1][1] = 0;
    }
    backend::binary(backend::BinaryOp::add, s, t2, lh + c0 + i, t1);
    backend::copy_rows(t1, c.rows, out + c.start, V, N, c.rows);
  }
  return result;
}

}  // namespace

FF_EXPORTS({"adaptiveLogProbs", guarded<AdaptiveLogProbs>});

}  // namespace ff::binding
