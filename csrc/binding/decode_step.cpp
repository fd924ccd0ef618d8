// One decoding step of a transformer block in one native call, and the key-value cache's row
// writes (incremental decoding, lib/nn/kv-cache.ts and TransformerBlock.decodeStep):
//
//   decodeBlock(x, params, kCache, vCache, dims, attention, norm, activation, lnEps1, lnEps2,
//               power, eps, stable, scale) -> y
//     x [B, C]: one new token per sequence; params = [ln1.weight, ln1.bias, qkv.weight, qkv.bias,
//     proj.weight, proj.bias, R, ln2.weight, ln2.bias, fc1.weight, fc1.bias, fc2.weight,
//     fc2.bias], each a storage or null where the block has none (R: 'fourier' only).
//     kCache, vCache [B, H, capacity, Dh]: rows 0 .. position - 1 hold the tokens before; the
//     step writes the token's k and v into row `position` and attends over position + 1 keys.
//     dims = [B, C, H, FF, capacity, position, rH, rD] (R stored [rH, rD], as the fused op's).
//     The block in eval mode (dropout and drop-path are the identity), C = H * Dh:
//       pre:   h = x + proj(att(ln1(x)));   y = h + fc2(act(fc1(ln2(h))))
//       post:  h = ln1(x + proj(att(x)));   y = ln2(h + fc2(act(fc1(h))))
//     att: the fused 'fourier' or 'dot' forward at Nq = 1 without a mask (the new token sees
//     every cached key and itself), qkv's rows [q | k | v] each H heads of Dh in order.
//   kvCacheWrite(cache, rows, dims) cache[:, :, at .. at + T) = rows [B, H, T, D],
//     dims = [B * H, T, D, capacity, at]: the op-by-op path's append (one strided copy).
//
// The cache is [B, H, capacity, Dh], preallocated, so a step copies only its own row; the
// fused kernels read k [B, H, Nk, D] densely, so with Nk = position + 1 < capacity each (b, h)
// slice is its own call (B = H = 1, R's row of head h), its keys a contiguous [Nk, Dh] run.
// Every pointer handed to a kernel is then at an offset that is a multiple of Dh floats from an
// allocation, as the kernels' own per-(b, h) slices are.
// Written once against csrc/common/backend*.h, so cpu, cuda-emu and cuda run the same code; the
// scratch (B (8 C + 2 FF + H + 2) floats) is one block of the backend's caching allocator.
// Cost per step: the block's GEMVs (2 B C (4 C + 2 FF) flops), B H attention rows against
// position + 1 keys, ~12 + B H kernel calls and one N-API call, against ~30 ops (each a tensor
// made and freed) for the block op by op.
#include <napi.h>
#include <cmath>
#include <string>
#include <vector>
#include "../common/backend.h"
#include "../common/backend_checks.h"
#include "../common/backend_nn_ops.h"
#include "../common/backend_tensor_ops.h"
#include "args.h"
#include "errors.h"
#include "guarded.h"
#include "op_args.h"
#include "registry.h"
#include "storage.h"

namespace ff::binding {
namespace {

enum Param { kLn1W, kLn1B, kQkvW, kQkvB, kProjW, kProjB, kR, kLn2W, kLn2B, kFc1W, kFc1B, kFc2W, kFc2B, kParams };
const char* const kParamNames[kParams] = {
    "params[0] (ln1.weight)",  "params[1] (ln1.bias)",   "params[2] (qkv.weight)", "params[3] (qkv.bias)",
    "params[4] (proj.weight)", "params[5] (proj.bias)",  "params[6] (R)",          "params[7] (ln2.weight)",
    "params[8] (ln2.bias)",    "params[9] (fc1.weight)", "params[10] (fc1.bias)",  "params[11] (fc2.weight)",
    "params[12] (fc2.bias)"};

// The storages of params (null entries stay null), each checked to hold `want[i]` floats;
// `required[i]`: a null entry is an error.
void get_params(const Napi::CallbackInfo& info, size_t index, const int64_t (&want)[kParams],
                const bool (&required)[kParams], float* (&out)[kParams]) {
  if (index >= info.Length() || !info[index].IsArray())
    throw ArgError("params", "expected an array of " + std::to_string(kParams) + " storages or nulls");
  auto a = info[index].As<Napi::Array>();
  if (a.Length() != kParams)
    throw ArgError("params", "expected " + std::to_string(kParams) + " entries, got " + std::to_string(a.Length()));
  for (uint32_t i = 0; i < kParams; ++i) {
    Napi::Value v = a[i];
    if (v.IsNull() || v.IsUndefined()) {
      if (required[i]) throw ArgError(kParamNames[i], "expected a storage, got null");
      out[i] = nullptr;
      continue;
    }
    if (want[i] == 0) throw ArgError(kParamNames[i], "expected null for this block");
    Storage* s = unwrap(v);
    if (s == nullptr) throw ArgError(kParamNames[i], "expected a storage (tensor memory)");
    if (s->freed) throw ArgError(kParamNames[i], "the storage has been freed");
    if (int64_t(s->n) != want[i])
      throw ArgError(kParamNames[i], "expected " + std::to_string(want[i]) + " elements, got " + std::to_string(s->n));
    out[i] = s->ptr;
  }
}

// dims as an array of `names.size()` integers, entry k at least lo[k].
std::vector<int64_t> get_int_array(const Napi::CallbackInfo& info, size_t index, const char* what,
                                   const std::vector<const char*>& names, const std::vector<int>& lo) {
  std::string expected = "[";
  for (size_t k = 0; k < names.size(); ++k) expected += (k ? ", " : "") + std::string(names[k]);
  expected += "]";
  if (index >= info.Length() || !info[index].IsArray()) throw ArgError(what, "expected " + expected);
  auto a = info[index].As<Napi::Array>();
  if (a.Length() != names.size())
    throw ArgError(what, "expected " + std::to_string(names.size()) + " integers " + expected);
  std::vector<int64_t> v(names.size());
  for (uint32_t k = 0; k < names.size(); ++k) {
    Napi::Value x = a[k];
    const double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= lo[k] && d <= double(1 << 30) && std::floor(d) == d))
      throw ArgError(std::string(what) + "." + names[k], "expected an integer >= " + std::to_string(lo[k]) + ", got " +
                                                             (x.IsNumber() ? std::to_string(d) : "a non-number"));
    v[k] = int64_t(d);
  }
  return v;
}

// One of `choices` (a string argument).
int get_choice(const Napi::CallbackInfo& info, size_t i, const char* what, std::initializer_list<const char*> choices) {
  std::string list;
  for (const char* c : choices) list += (list.empty() ? "'" : ", '") + std::string(c) + "'";
  if (i >= info.Length() || !info[i].IsString()) throw ArgError(what, "expected one of " + list);
  const std::string s = info[i].As<Napi::String>().Utf8Value();
  int k = 0;
  for (const char* c : choices) {
    if (s == c) return k;
    ++k;
  }
  throw ArgError(what, "expected one of " + list + ", got '" + s + "'");
}

float get_ln_eps(const Napi::CallbackInfo& info, size_t i, const char* what) {
  const double e = get_number(info, i, what);
  if (!(e >= 0) || !std::isfinite(e)) throw ArgError(what, "expected a finite number >= 0");
  return float(e);
}

// A scratch block of the backend's caching allocator, given back at scope exit.
struct Scratch {
  float* p;
  explicit Scratch(size_t n) : p(static_cast<float*>(backend::alloc(n * sizeof(float)))) {}
  ~Scratch() { backend::release(p); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

enum Kind { kDot = 0, kFourier = 1 };
enum Act { kRelu = 0, kGelu = 1, kGeluTanh = 2 };

Napi::Value DecodeBlock(const Napi::CallbackInfo& info) {
  const auto d = get_int_array(info, 4, "dims", {"B", "C", "H", "FF", "capacity", "position", "rH", "rD"},
                               {1, 1, 1, 1, 1, 0, 1, 1});
  const int64_t B = d[0], C = d[1], H = d[2], FF = d[3], cap = d[4], pos = d[5], rH = d[6], rD = d[7];
  if (C % H != 0)
    throw ArgError("dims.H", "expected a divisor of C = " + std::to_string(C) + ", got " + std::to_string(H));
  const int64_t Dh = C / H;
  if (pos >= cap)
    throw ArgError("dims.position", "the cache of capacity " + std::to_string(cap) + " is full (position " +
                                        std::to_string(pos) + "); expected position < capacity");
  const int kind = get_choice(info, 5, "attention", {"dot", "fourier"});
  const bool pre = get_choice(info, 6, "norm", {"post", "pre"}) == 1;
  const int act = get_choice(info, 7, "activation", {"relu", "gelu", "gelu_tanh"});
  const float ln_eps1 = get_ln_eps(info, 8, "lnEps1");
  const float ln_eps2 = get_ln_eps(info, 9, "lnEps2");
  int power = 0;
  float eps = 0, scale = 0;
  bool stable = false;
  if (kind == kFourier) {
    power = get_int(info, 10, "power", 1, 64);
    eps = get_ln_eps(info, 11, "eps");
    stable = get_bool(info, 12, "stable");
    if (stable && power % 2 != 0) throw ArgError("power", "stable: true needs an even power");
    if (rH != 1 && rH != H) throw ArgError("dims.rH", "expected 1 or H = " + std::to_string(H));
    if (rD != 1 && rD != Dh) throw ArgError("dims.rD", "expected 1 or Dh = " + std::to_string(Dh));
  } else {
    scale = float(get_number(info, 13, "scale"));
    if (!std::isfinite(scale)) throw ArgError("scale", "expected a finite number");
  }
  Storage& x = get_storage(info, 0, "x", size_t(B * C));
  const size_t cache_n = size_t(B * H * cap * Dh);
  Storage& kc = get_storage(info, 2, "kCache", cache_n);
  Storage& vc = get_storage(info, 3, "vCache", cache_n);
  if (kc.ptr == vc.ptr) throw ArgError("vCache", "must not be the same storage as kCache");
  const int64_t want[kParams] = {C, C, 3 * C * C, 3 * C, C * C,  C, kind == kFourier ? rH * rD : 0,
                                 C, C, FF * C,    FF,    C * FF, C};
  const bool required[kParams] = {false, false, true, false, true, false, kind == kFourier,
                                  false, false, true, false, true, false};
  float* p[kParams];
  get_params(info, 1, want, required, p);
  for (int i = 0; i < kParams; ++i)
    if (p[i] != nullptr && (p[i] == kc.ptr || p[i] == vc.ptr))
      throw ArgError(kParamNames[i], "must not be a cache storage");
  if (x.ptr == kc.ptr || x.ptr == vc.ptr) throw ArgError("x", "must not be a cache storage");
  if (kind == kFourier) backend::check_finite(p[kR], size_t(rH * rD), "decodeBlock", "R");

  Napi::Env env = info.Env();
  Napi::Value result = make_storage(env, size_t(B * C));
  float* y = unwrap(result)->ptr;
  // scratch: a [B, C], qkv [B, 3C], att, prj, h, s [B, C], f1, f2 [B, FF], stats [B, H], mean, rstd [B]
  Scratch scratch(size_t(B * (8 * C + 2 * FF + H + 2)));
  float* a = scratch.p;
  float* qkv = a + B * C;
  float* att = qkv + 3 * B * C;
  float* prj = att + B * C;
  float* h = prj + B * C;
  float* s = h + B * C;
  float* f1 = s + B * C;
  float* f2 = f1 + B * FF;
  float* stats = f2 + B * FF;
  float* mean = stats + B * H;
  float* rstd = mean + B;
  const int rows = int(B);

  // attention branch input and the projections q | k | v
  const float* in = x.ptr;
  if (pre) {
    backend::layernorm_forward(rows, int(C), ln_eps1, x.ptr, p[kLn1W], p[kLn1B], a, mean, rstd);
    in = a;
  }
  backend::linear_forward(rows, int(C), int(3 * C), in, p[kQkvW], p[kQkvB], qkv);
  // the token's keys and values: row `pos` of each (b, h) slice of the cache
  for (int64_t b = 0; b < B; ++b) {
    const int64_t at = (b * H * cap + pos) * Dh;
    backend::copy_rows(qkv + b * 3 * C + C, Dh, kc.ptr + at, cap * Dh, H, Dh);
    backend::copy_rows(qkv + b * 3 * C + 2 * C, Dh, vc.ptr + at, cap * Dh, H, Dh);
  }
  // one query row per (b, h) against its pos + 1 keys, written into att [B, H * Dh]
  AttentionShape sh;
  sh.B = 1;
  sh.H = 1;
  sh.Nq = 1;
  sh.Nk = int(pos + 1);
  sh.D = int(Dh);
  sh.Dv = int(Dh);
  sh.rH = 1;
  sh.rD = int(rD);
  sh.causal = false;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t hh = 0; hh < H; ++hh) {
      const float* q = qkv + b * 3 * C + hh * Dh;
      const float* k = kc.ptr + (b * H + hh) * cap * Dh;
      const float* v = vc.ptr + (b * H + hh) * cap * Dh;
      float* o = att + b * C + hh * Dh;
      float* st = stats + b * H + hh;
      if (kind == kFourier)
        backend::fourier_attention_forward(sh, q, k, v, p[kR] + (rH == 1 ? 0 : hh * rD), power, eps, stable, o, st);
      else
        backend::dot_attention_forward(sh, q, k, v, scale, o, st);
    }
  }
  backend::linear_forward(rows, int(C), int(C), att, p[kProjW], p[kProjB], prj);
  const size_t n = size_t(B * C);
  // residual and norm around attention: hid = the block's state after the attention branch
  float* hid = h;
  backend::copy(s, x.ptr, n);
  backend::add_inplace(s, prj, n);  // x + attention
  if (pre)
    hid = s;
  else
    backend::layernorm_forward(rows, int(C), ln_eps1, s, p[kLn1W], p[kLn1B], h, mean, rstd);
  // feed-forward branch
  const float* ff_in = hid;
  if (pre) {
    backend::layernorm_forward(rows, int(C), ln_eps2, hid, p[kLn2W], p[kLn2B], a, mean, rstd);
    ff_in = a;
  }
  backend::linear_forward(rows, int(C), int(FF), ff_in, p[kFc1W], p[kFc1B], f1);
  const backend::UnaryOp op = act == kRelu   ? backend::UnaryOp::relu
                              : act == kGelu ? backend::UnaryOp::gelu_erf
                                             : backend::UnaryOp::gelu_tanh;
  backend::unary_forward(op, f1, f2, B * FF);
  backend::linear_forward(rows, int(FF), int(C), f2, p[kFc2W], p[kFc2B], prj);
  if (pre) {
    backend::copy(y, hid, n);
    backend::add_inplace(y, prj, n);
  } else {
    backend::copy(att, hid, n);
    backend::add_inplace(att, prj, n);
    backend::layernorm_forward(rows, int(C), ln_eps2, att, p[kLn2W], p[kLn2B], y, mean, rstd);
  }
  return result;
}

// kvCacheWrite(cache, rows, dims = [BH, T, D, capacity, at])
Napi::Value KvCacheWrite(const Napi::CallbackInfo& info) {
  const auto d = get_int_array(info, 2, "dims", {"BH", "T", "D", "capacity", "at"}, {1, 1, 1, 1, 0});
  const int64_t BH = d[0], T = d[1], D = d[2], cap = d[3], at = d[4];
  if (at + T > cap)
    throw ArgError("dims.at", "rows " + std::to_string(at) + " .. " + std::to_string(at + T) +
                                  " pass the cache's capacity " + std::to_string(cap));
  Storage& cache = get_storage(info, 0, "cache", size_t(BH * cap * D));
  Storage& rows = get_storage(info, 1, "rows", size_t(BH * T * D));
  if (cache.ptr == rows.ptr) throw ArgError("rows", "must not be the cache's own storage");
  backend::copy_rows(rows.ptr, T * D, cache.ptr + at * D, cap * D, BH, T * D);
  return info.Env().Undefined();
}

}  // namespace

FF_EXPORTS({"decodeBlock", guarded<DecodeBlock>}, {"kvCacheWrite", guarded<KvCacheWrite>});

}  // namespace ff::binding
