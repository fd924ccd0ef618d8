// cpu backend: broadcast arithmetic out = a op b (add, sub, mul, div) and affine
// out = alpha x + beta (scale, addScalar, neg); the formulas are csrc/common/elementwise_math.h's,
// shared with csrc/cuda/binary.cu.
//
// The index space arrives canonical (size-1 dims dropped, contiguous dims merged), so each
// operand's innermost stride is 1 (it has that dim) or 0 (broadcast along it). The walk cuts
// the output into runs of the innermost dim and each run is one of three vectorised loops:
// both operands contiguous (same shapes: a single run; a bias add [M, F] + [F]: M runs of F),
// or one of them a scalar across the run (x * [M, 1], x + c). Cost: one op per element;
// threads split the output into contiguous ranges past kParallelGrain elements.
#include <algorithm>
#include "../common/backend_tensor_ops.h"
#include "../common/elementwise_math.h"
#include "../common/error.h"
#include "parallel.h"
#include "strided_walk.h"
#include "vec_math.h"

namespace ff::backend {
namespace {

template <typename Op>
FF_VECTORIZE void run_both(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = Op::f(a[i], b[i]);
}

template <typename Op>
FF_VECTORIZE void run_scalar_b(const float* a, float b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = Op::f(a[i], b);
}

template <typename Op>
FF_VECTORIZE void run_scalar_a(float a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = Op::f(a, b[i]);
}

template <typename Op>
void binary_op(const Strided& s, const float* a, const float* b, float* out) {
  const int64_t sa = s.stride[0][s.ndim - 1], sb = s.stride[1][s.ndim - 1];
  if ((sa != 0 && sa != 1) || (sb != 0 && sb != 1)) throw Error("binary: innermost strides must be 0 or 1");
  cpu::parallel_for(s.numel(), cpu::kParallelGrain, [&](int64_t begin, int64_t end) {
    cpu::walk_runs(s, begin, end, [&](int64_t i, int64_t oa, int64_t ob, int64_t len) {
      if (sa == 1 && sb == 1)
        run_both<Op>(a + oa, b + ob, out + i, len);
      else if (sa == 1)
        run_scalar_b<Op>(a + oa, b[ob], out + i, len);
      else if (sb == 1)
        run_scalar_a<Op>(a[oa], b + ob, out + i, len);
      else
        std::fill(out + i, out + i + len, Op::f(a[oa], b[ob]));
    });
  });
}

FF_VECTORIZE void run_affine(const float* x, float alpha, float beta, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = elementwise::affine_f(x[i], alpha, beta);
}

}  // namespace

void binary(BinaryOp op, const Strided& s, const float* a, const float* b, float* out) {
  elementwise::with_binary_op(op, [&](auto f) { binary_op<decltype(f)>(s, a, b, out); });
}

void affine(const float* x, float alpha, float beta, float* out, int64_t n) {
  cpu::parallel_for(n, cpu::kParallelGrain,
                    [&](int64_t begin, int64_t end) { run_affine(x + begin, alpha, beta, out + begin, end - begin); });
}

}  // namespace ff::backend
