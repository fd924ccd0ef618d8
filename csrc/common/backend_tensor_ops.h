// The tensor ops every backend implements (csrc/cpu/{binary,unary,reduce,layout}.cpp and their
// csrc/cuda/*.cu twins): broadcast arithmetic, activations, sums over axes, and data movement.
// Index spaces arrive in canonical form (csrc/common/strided.h: size-1 dims dropped, contiguous
// dims merged), already checked by the binding; n, numel() and out_numel() are positive.
// Outputs never alias inputs.
#pragma once
#include <cstdint>
#include "strided.h"

namespace ff::backend {

enum class BinaryOp { add, sub, mul, div };

// out[i] = a[.] op b[.] over s (s.stride[0] walks a, s.stride[1] walks b; out is dense).
// Cost: one op per output element, reads each input once when it is not broadcast.
void binary(BinaryOp op, const Strided& s, const float* a, const float* b, float* out);

// out[i] = alpha * x[i] + beta (scale, addScalar, neg).   Cost: one multiply-add per element.
void affine(const float* x, float alpha, float beta, float* out, int64_t n);

enum class UnaryOp {
  gelu_tanh,  // x * sigmoid(2 u), u = sqrt(2/pi) (x + 0.044715 x^3): the tanh approximation
  gelu_erf,   // x * Phi(x) = x/2 (1 + erf(x / sqrt 2)): exact GELU
  relu,       // max(x, 0)
  exp,
  log,
  tanh,
};
// y = op(x).   Cost: one exp (gelu, exp, tanh), log or compare per element.
void unary_forward(UnaryOp op, const float* x, float* y, int64_t n);
// dx = dy * op'(x). `saved` is the forward's input x for gelu, relu and log, and its output y
// for exp and tanh (whose derivatives are y and 1 - y^2).   Cost: as the forward.
void unary_backward(UnaryOp op, const float* saved, const float* dy, float* dx, int64_t n);

// out[kept] = sum over the reduced dims of x (r.nred >= 1; the binding turns an empty sum into a
// fill and a sum over nothing into a copy). Accumulates in double; deterministic for a given
// device and thread count.   Cost: one add per input element.
void sum_reduce(const ReduceShape& r, const float* x, float* out);

// out[i] = src[sum_d idx_d * s.stride[0][d]] over s: permute (a transpose is tiled) and
// broadcast (stride 0).   Cost: one read and one write per output element.
void strided_copy(const Strided& s, const float* src, float* out);

// dst[r * dst_stride + c] = src[r * src_stride + c] for r < rows, c < cols: slice, its
// backward, and concat.   Cost: rows * cols floats moved.
void copy_rows(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows, int64_t cols);

}  // namespace ff::backend
