// cpu backend: linear, y = x W^T + b (W [out, in], PyTorch's layout), and its backward.
//
// forward: y's rows start as b, then one sgemm with beta = 1 adds x W^T (each thread fills and
// multiplies its own block of rows, so the bias rows are still in its cache).
// backward: dx = dy W and dW = dy^T x are one sgemm each (blas.h: blocks of the output over the
// threads); db sums dy's columns, each column by one thread over the rows in order
// (deterministic for any thread count).
// Cost: 2*rows*in*out flops per GEMM; db: rows*out adds.
#include <algorithm>
#include <cstring>
#include "../common/backend_nn_ops.h"
#include "blas.h"
#include "parallel.h"
#include "vec_math.h"

namespace ff::backend {
namespace {

FF_VECTORIZE void add_row(float* acc, const float* row, int n) {
  for (int c = 0; c < n; ++c) acc[c] += row[c];
}

// db[c] = sum_r dy[r, c] for c in [c0, c1), rows in order.
void column_sums(int rows, int cols, const float* dy, float* db) {
  cpu::parallel_ranges(cols, cpu::threads_for(int64_t(rows) * cols), [&](int, int, int64_t c0, int64_t c1) {
    if (c1 <= c0) return;
    std::fill(db + c0, db + c1, 0.0f);
    for (int r = 0; r < rows; ++r) add_row(db + c0, dy + int64_t(r) * cols + c0, int(c1 - c0));
  });
}

}  // namespace

void linear_forward(int rows, int in, int out, const float* x, const float* W, const float* b, float* y) {
  cpu::Sgemm g;  // y [rows, out] = x [rows, in] W^T (+ y holding b)
  g.trans_b = true;
  g.M = rows, g.N = out, g.K = in;
  g.A = x, g.lda = in, g.B = W, g.ldb = in, g.C = y, g.ldc = out;
  g.beta = b != nullptr ? 1.0f : 0.0f;
  cpu::parallel_blocks(rows, out, 2.0 * rows * out * in, [&](int m0, int m1, int n0, int n1) {
    if (b != nullptr)
      for (int r = m0; r < m1; ++r) std::memcpy(y + int64_t(r) * out + n0, b + n0, sizeof(float) * (n1 - n0));
    cpu::sgemm_block(g, m0, m1, n0, n1);
  });
}

void linear_backward(int rows, int in, int out, const float* x, const float* W, const float* dy, float* dx, float* dW,
                     float* db) {
  if (dx != nullptr) {  // dx [rows, in] = dy [rows, out] W [out, in]
    cpu::Sgemm g;
    g.M = rows, g.N = in, g.K = out;
    g.A = dy, g.lda = out, g.B = W, g.ldb = in, g.C = dx, g.ldc = in;
    cpu::sgemm(g);
  }
  if (dW != nullptr) {  // dW [out, in] = dy^T x
    cpu::Sgemm g;
    g.trans_a = true;
    g.M = out, g.N = in, g.K = rows;
    g.A = dy, g.lda = out, g.B = x, g.ldb = in, g.C = dW, g.ldc = in;
    cpu::sgemm(g);
  }
  if (db != nullptr) column_sums(rows, out, dy, db);
}

}  // namespace ff::backend
