// cpu backend: batched GEMM, C_b = op(A_b) op(B_b), through OpenBLAS's sgemm (blas.h).
//
// Many matrices (batch >= threads): threads over the batch, one single-threaded sgemm each.
// Few matrices: one after the other, each split into blocks of C over the threads.
// sum_batches (the gradient of a broadcast operand): C's blocks over the threads, each thread
// accumulating every batch entry into its block with beta = 1, in batch order (deterministic).
// Cost: 2*batch*M*N*K flops.
#include <omp.h>
#include "../common/backend.h"
#include "../common/backend_nn_ops.h"
#include "blas.h"

namespace ff::backend {

void gemm(const GemmShape& s, const float* A, const float* B, float* C) {
  cpu::Sgemm g;
  g.trans_a = s.trans_a;
  g.trans_b = s.trans_b;
  g.M = s.M;
  g.N = s.N;
  g.K = s.K;
  g.lda = s.trans_a ? s.M : s.K;
  g.ldb = s.trans_b ? s.K : s.N;
  g.ldc = s.N;
  const int64_t stride_c = int64_t(s.M) * s.N;
  auto entry = [&](int b, float beta) {
    cpu::Sgemm e = g;
    e.A = A + b * s.stride_a;
    e.B = B + b * s.stride_b;
    e.C = s.sum_batches ? C : C + b * stride_c;
    e.beta = beta;
    return e;
  };
  const double flops = 2.0 * s.batch * s.M * s.N * s.K;
  if (s.sum_batches) {
    cpu::parallel_blocks(s.M, s.N, flops, [&](int m0, int m1, int n0, int n1) {
      for (int b = 0; b < s.batch; ++b) cpu::sgemm_block(entry(b, b > 0 ? 1.0f : 0.0f), m0, m1, n0, n1);
    });
  } else if (s.batch > 1 && s.batch >= cpu::gemm_threads(flops)) {
#pragma omp parallel for schedule(static) num_threads(cpu::gemm_threads(flops))
    for (int b = 0; b < s.batch; ++b) cpu::sgemm_block(entry(b, 0.0f), 0, s.M, 0, s.N);
  } else {
    for (int b = 0; b < s.batch; ++b) cpu::sgemm(entry(b, 0.0f));
  }
}

// OpenBLAS has no reduced-precision float32 mode: every product is exact float.
void set_matmul_precision(bool tf32) { (void)tf32; }

}  // namespace ff::backend
