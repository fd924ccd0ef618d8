// cuda backend: batched GEMM, C_b = op(A_b) op(B_b), through cuBLAS (no hand-written GEMM).
//
// One cublasSgemmStridedBatched call (stride 0 broadcasts an operand); sum_batches (the gradient
// of a broadcast operand) is one cublasSgemm per batch entry accumulating with beta = 1 in batch
// order, since a strided batch with C stride 0 would race. Cost: 2*batch*M*N*K flops.
#include "../common/backend_nn_ops.h"
#include "blas.h"

namespace ff::backend {

void gemm(const GemmShape& s, const float* A, const float* B, float* C) {
  const int lda = s.trans_a ? s.M : s.K;
  const int ldb = s.trans_b ? s.K : s.N;
  if (!s.sum_batches) {
    cuda::gemm_row_major(s.trans_a, s.trans_b, s.M, s.N, s.K, A, lda, s.stride_a, B, ldb, s.stride_b, 0.0f, C, s.N,
                         int64_t(s.M) * s.N, s.batch);
    return;
  }
  for (int b = 0; b < s.batch; ++b)
    cuda::gemm_row_major(s.trans_a, s.trans_b, s.M, s.N, s.K, A + b * s.stride_a, lda, 0, B + b * s.stride_b, ldb, 0,
                         b > 0 ? 1.0f : 0.0f, C, s.N, 0, 1);
}

}  // namespace ff::backend
