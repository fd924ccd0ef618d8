// Bindings of the tensor ops (lib/ops/tensor-ops.ts): broadcast arithmetic, affine, unary
// activations, sums over axes, permute, broadcastTo, slice and concat. Shapes arrive as arrays
// of dims and are checked against the storages' sizes here; the index spaces handed to the
// backend are built by csrc/common/strided.h. Empty tensors never reach a kernel.
#include <napi.h>
#include <cmath>
#include <utility>
#include <string>
#include <vector>
#include "../common/backend.h"
#include "../common/backend_tensor_ops.h"
#include "args.h"
#include "errors.h"
#include "guarded.h"
#include "registry.h"
#include "storage.h"

namespace ff::binding {
namespace {

constexpr double kMaxElems = double((1LL << 31) - 1);

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// An array of non-negative integer dims with at most 2^31 - 1 elements in all.
std::vector<int64_t> shape_of(const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) throw ArgError(what, "expected an array of dims");
  auto a = value.As<Napi::Array>();
  std::vector<int64_t> shape(a.Length());
  double total = 1;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value v = a[k];
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= kMaxElems && std::floor(d) == d))
      throw ArgError(what, "dim " + std::to_string(k) + " must be a non-negative integer");
    shape[k] = int64_t(d);
    total *= d;
  }
  if (total > kMaxElems) throw ArgError(what, "more than 2^31 - 1 elements");
  return shape;
}

std::vector<int64_t> get_shape(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length()) throw ArgError(what, "expected an array of dims");
  return shape_of(info[i], what);
}

// The storage at info[i] holding a tensor of `shape`.
Storage& get_tensor(const Napi::CallbackInfo& info, size_t i, const char* what, const std::vector<int64_t>& shape) {
  return get_storage(info, i, what, size_t(numel(shape)));
}

backend::BinaryOp get_binary_op(const Napi::CallbackInfo& info, size_t i) {
  const std::string op = i < info.Length() && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (op == "add") return backend::BinaryOp::add;
  if (op == "sub") return backend::BinaryOp::sub;
  if (op == "mul") return backend::BinaryOp::mul;
  if (op == "div") return backend::BinaryOp::div;
  throw ArgError("op", "expected 'add', 'sub', 'mul' or 'div'");
}

backend::UnaryOp get_unary_op(const Napi::CallbackInfo& info, size_t i) {
  const std::string op = i < info.Length() && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (op == "gelu_tanh") return backend::UnaryOp::gelu_tanh;
  if (op == "gelu_erf") return backend::UnaryOp::gelu_erf;
  if (op == "relu") return backend::UnaryOp::relu;
  if (op == "exp") return backend::UnaryOp::exp;
  if (op == "log") return backend::UnaryOp::log;
  if (op == "tanh") return backend::UnaryOp::tanh;
  throw ArgError("op", "expected 'gelu_tanh', 'gelu_erf', 'relu', 'exp', 'log' or 'tanh'");
}

// An axis index in [0, ndim).
int get_axis(const Napi::CallbackInfo& info, size_t i, const char* what, size_t ndim) {
  if (ndim == 0) throw ArgError(what, "a 0-dimensional tensor has no axis");
  return get_int(info, i, what, 0, (long long)ndim - 1);
}

// binary(op, a, aShape, b, bShape) -> out (the broadcast shape)
Napi::Value Binary(const Napi::CallbackInfo& info) {
  const backend::BinaryOp op = get_binary_op(info, 0);
  const auto a_shape = get_shape(info, 2, "aShape");
  const auto b_shape = get_shape(info, 4, "bShape");
  Storage& a = get_tensor(info, 1, "a", a_shape);
  Storage& b = get_tensor(info, 3, "b", b_shape);
  const auto out_shape = broadcast_shape(a_shape, b_shape);
  const int64_t n = numel(out_shape);
  if (double(n) > kMaxElems) throw ArgError("a, b", "the broadcast result has more than 2^31 - 1 elements");
  Napi::Value out = make_storage(info.Env(), size_t(n));
  if (n > 0) backend::binary(op, broadcast_binary(a_shape, b_shape), a.ptr, b.ptr, unwrap(out)->ptr);
  return out;
}

// affine(x, alpha, beta) -> alpha * x + beta
Napi::Value Affine(const Napi::CallbackInfo& info) {
  Storage& x = get_storage(info, 0, "x");
  const float alpha = float(get_number(info, 1, "alpha"));
  const float beta = float(get_number(info, 2, "beta"));
  Napi::Value out = make_storage(info.Env(), x.n);
  if (x.n > 0) backend::affine(x.ptr, alpha, beta, unwrap(out)->ptr, int64_t(x.n));
  return out;
}

// unary(op, x) -> op(x)
Napi::Value Unary(const Napi::CallbackInfo& info) {
  const backend::UnaryOp op = get_unary_op(info, 0);
  Storage& x = get_storage(info, 1, "x");
  Napi::Value y = make_storage(info.Env(), x.n);
  if (x.n > 0) backend::unary_forward(op, x.ptr, unwrap(y)->ptr, int64_t(x.n));
  return y;
}

// unaryBackward(op, saved, grad) -> grad * op'(x); saved is x (gelu, relu, log) or y (exp, tanh)
Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  const backend::UnaryOp op = get_unary_op(info, 0);
  Storage& saved = get_storage(info, 1, "saved");
  Storage& grad = get_storage(info, 2, "grad", saved.n);
  Napi::Value dx = make_storage(info.Env(), saved.n);
  if (saved.n > 0) backend::unary_backward(op, saved.ptr, grad.ptr, unwrap(dx)->ptr, int64_t(saved.n));
  return dx;
}

// sumAxes(x, shape, axes) -> the sum over axes (distinct, in [0, ndim)), reduced dims removed
Napi::Value SumAxes(const Napi::CallbackInfo& info) {
  const auto shape = get_shape(info, 1, "shape");
  Storage& x = get_tensor(info, 0, "x", shape);
  if (info.Length() < 3 || !info[2].IsArray()) throw ArgError("axes", "expected an array of axes");
  auto axes = info[2].As<Napi::Array>();
  std::vector<bool> reduce(shape.size(), false);
  for (uint32_t k = 0; k < axes.Length(); ++k) {
    Napi::Value v = axes[k];
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d < double(shape.size()) && std::floor(d) == d))
      throw ArgError("axes", "expected integers in [0, " + std::to_string(shape.size()) + ")");
    if (reduce[size_t(d)]) throw ArgError("axes", "axis " + std::to_string(int(d)) + " is repeated");
    reduce[size_t(d)] = true;
  }
  int64_t out_n = 1, red_n = 1;
  for (size_t d = 0; d < shape.size(); ++d) (reduce[d] ? red_n : out_n) *= shape[d];
  Napi::Value out = make_storage(info.Env(), size_t(out_n));
  float* o = unwrap(out)->ptr;
  if (out_n == 0) return out;
  if (red_n == 0) {
    backend::fill(o, 0.0f, size_t(out_n));
    return out;
  }
  const ReduceShape r = reduction(shape, reduce);
  if (r.nred == 0)
    backend::copy(o, x.ptr, size_t(out_n));
  else
    backend::sum_reduce(r, x.ptr, o);
  return out;
}

// permute(x, shape, dims) -> x with out dim d = in dim dims[d]
Napi::Value Permute(const Napi::CallbackInfo& info) {
  const auto shape = get_shape(info, 1, "shape");
  Storage& x = get_tensor(info, 0, "x", shape);
  if (info.Length() < 3 || !info[2].IsArray() || info[2].As<Napi::Array>().Length() != shape.size())
    throw ArgError("dims", "expected a permutation of the " + std::to_string(shape.size()) + " axes");
  auto a = info[2].As<Napi::Array>();
  std::vector<int> perm(shape.size());
  std::vector<bool> seen(shape.size(), false);
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value v = a[k];
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d < double(shape.size()) && std::floor(d) == d) || seen[size_t(d)])
      throw ArgError("dims", "expected a permutation of 0.." + std::to_string(int(shape.size()) - 1));
    seen[size_t(d)] = true;
    perm[k] = int(d);
  }
  Napi::Value out = make_storage(info.Env(), x.n);
  if (x.n > 0) backend::strided_copy(permute(shape, perm), x.ptr, unwrap(out)->ptr);
  return out;
}

// broadcastTo(x, shape, outShape) -> x broadcast (NumPy rules) to outShape
Napi::Value BroadcastTo(const Napi::CallbackInfo& info) {
  const auto shape = get_shape(info, 1, "shape");
  Storage& x = get_tensor(info, 0, "x", shape);
  const auto out_shape = get_shape(info, 2, "outShape");
  bool ok = out_shape.size() >= shape.size();
  for (size_t d = 0; ok && d < shape.size(); ++d) {
    const int64_t in = shape[d], to = out_shape[out_shape.size() - shape.size() + d];
    ok = in == to || in == 1;
  }
  if (!ok) throw ArgError("outShape", "the input's shape does not broadcast to it");
  const int64_t n = numel(out_shape);
  Napi::Value out = make_storage(info.Env(), size_t(n));
  if (n > 0) backend::strided_copy(broadcast_to(shape, out_shape), x.ptr, unwrap(out)->ptr);
  return out;
}

// A tensor of `shape` viewed as [outer, dim, inner] around `axis`.
struct AxisView {
  int64_t outer = 1, dim = 1, inner = 1;
  AxisView(const std::vector<int64_t>& shape, int axis) {
    for (int d = 0; d < axis; ++d) outer *= shape[d];
    dim = shape[axis];
    for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  }
};

// [start, end) on the axis, 0 <= start <= end <= dim, at info[i], info[i + 1].
std::pair<int64_t, int64_t> get_range(const Napi::CallbackInfo& info, size_t i, int64_t dim) {
  const int start = get_int(info, i, "start", 0, dim);
  const int end = get_int(info, i + 1, "end", start, dim);
  return {start, end};
}

// slice(x, shape, axis, start, end) -> x[..., start:end, ...] along axis
Napi::Value Slice(const Napi::CallbackInfo& info) {
  const auto shape = get_shape(info, 1, "shape");
  Storage& x = get_tensor(info, 0, "x", shape);
  const int axis = get_axis(info, 2, "axis", shape.size());
  const AxisView v(shape, axis);
  const auto [start, end] = get_range(info, 3, v.dim);
  const int64_t cols = (end - start) * v.inner;
  Napi::Value out = make_storage(info.Env(), size_t(v.outer * cols));
  if (v.outer * cols > 0)
    backend::copy_rows(x.ptr + start * v.inner, v.dim * v.inner, unwrap(out)->ptr, cols, v.outer, cols);
  return out;
}

// sliceBackward(grad, shape, axis, start, end) -> zeros of `shape` (the input's) with grad
// written at [start, end) along axis
Napi::Value SliceBackward(const Napi::CallbackInfo& info) {
  const auto shape = get_shape(info, 1, "shape");
  const int axis = get_axis(info, 2, "axis", shape.size());
  const AxisView v(shape, axis);
  const auto [start, end] = get_range(info, 3, v.dim);
  const int64_t cols = (end - start) * v.inner;
  Storage& grad = get_storage(info, 0, "grad", size_t(v.outer * cols));
  Napi::Value out = make_storage(info.Env(), size_t(numel(shape)));
  float* o = unwrap(out)->ptr;
  if (numel(shape) == 0) return out;
  backend::fill(o, 0.0f, size_t(numel(shape)));
  if (v.outer * cols > 0) backend::copy_rows(grad.ptr, cols, o + start * v.inner, v.dim * v.inner, v.outer, cols);
  return out;
}

// concat(xs, shapes, axis) -> the tensors joined along axis (shapes equal elsewhere)
Napi::Value Concat(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsArray() ||
      info[0].As<Napi::Array>().Length() != info[1].As<Napi::Array>().Length() ||
      info[0].As<Napi::Array>().Length() == 0)
    throw ArgError("xs", "expected a non-empty array of storages and an array of as many shapes");
  auto xs = info[0].As<Napi::Array>();
  auto shapes_arg = info[1].As<Napi::Array>();
  std::vector<std::vector<int64_t>> shapes;
  std::vector<Storage*> parts;
  for (uint32_t k = 0; k < xs.Length(); ++k) {
    const std::string name = "xs[" + std::to_string(k) + "]";
    const std::vector<int64_t> shape = shape_of(shapes_arg[k], "shapes[" + std::to_string(k) + "]");
    Storage* s = unwrap(xs[k]);
    if (!s) throw ArgError(name, "expected a tensor storage of the " + std::string(backend::name()) + " backend");
    if (s->freed) throw ArgError(name, "the tensor has been disposed");
    if (s->n != size_t(numel(shape)))
      throw ArgError(name, "expected " + std::to_string(numel(shape)) + " elements, got " + std::to_string(s->n));
    if (!shapes.empty() && shape.size() != shapes[0].size())
      throw ArgError(name,
                     "has " + std::to_string(shape.size()) + " dims, xs[0] has " + std::to_string(shapes[0].size()));
    shapes.push_back(shape);
    parts.push_back(s);
  }
  const int axis = get_axis(info, 2, "axis", shapes[0].size());
  std::vector<int64_t> out_shape = shapes[0];
  out_shape[axis] = 0;
  for (size_t k = 0; k < shapes.size(); ++k) {
    for (size_t d = 0; d < out_shape.size(); ++d)
      if (int(d) != axis && shapes[k][d] != shapes[0][d])
        throw ArgError("xs[" + std::to_string(k) + "]", "dim " + std::to_string(d) + " is " +
                                                            std::to_string(shapes[k][d]) + ", xs[0]'s is " +
                                                            std::to_string(shapes[0][d]));
    out_shape[axis] += shapes[k][axis];
  }
  if (double(numel(out_shape)) > kMaxElems) throw ArgError("xs", "the result has more than 2^31 - 1 elements");
  const AxisView ov(out_shape, axis);
  Napi::Value out = make_storage(info.Env(), size_t(numel(out_shape)));
  float* o = unwrap(out)->ptr;
  int64_t offset = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    const int64_t cols = shapes[k][axis] * ov.inner;
    if (ov.outer * cols > 0) backend::copy_rows(parts[k]->ptr, cols, o + offset, ov.dim * ov.inner, ov.outer, cols);
    offset += cols;
  }
  return out;
}

}  // namespace

FF_EXPORTS({"binary", guarded<Binary>}, {"affine", guarded<Affine>}, {"unary", guarded<Unary>},
           {"unaryBackward", guarded<UnaryBackward>}, {"sumAxes", guarded<SumAxes>}, {"permute", guarded<Permute>},
           {"broadcastTo", guarded<BroadcastTo>}, {"slice", guarded<Slice>}, {"sliceBackward", guarded<SliceBackward>},
           {"concat", guarded<Concat>});

}  // namespace ff::binding
