// cuda backend: the cuBLAS handle and the row-major GEMM every matrix product goes through.
// Cost: whatever cuBLAS picks for 2*batch*M*N*K flops: FP32 (CUBLAS_DEFAULT_MATH) by default, or
// TF32 tensor cores (inputs rounded to 10 mantissa bits, float accumulation) after
// set_matmul_precision(true), as torch.set_float32_matmul_precision('high').
#include <string>
#include "../common/backend.h"
#include "blas.h"

namespace ff::cuda {

void check_blas(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw Error(std::string(backend::name()) + ": " + what + ": " + cublasGetStatusString(status));
}

cublasHandle_t blas() {
  static const cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    check_blas(cublasCreate(&h), "cublasCreate");
    check_blas(cublasSetStream(h, stream()), "cublasSetStream");
    return h;
  }();
  return handle;
}

void gemm_row_major(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda, int64_t sa,
                    const float* B, int ldb, int64_t sb, float beta, float* C, int ldc, int64_t sc, int batch) {
  const float alpha = 1.0f;
  const cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (batch == 1)
    check_blas(cublasSgemm(blas(), tb, ta, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc), "cublasSgemm");
  else
    check_blas(
        cublasSgemmStridedBatched(blas(), tb, ta, N, M, K, &alpha, B, ldb, sb, A, lda, sa, &beta, C, ldc, sc, batch),
        "cublasSgemmStridedBatched");
}

}  // namespace ff::cuda

namespace ff::backend {

void set_matmul_precision(bool tf32) {
  cuda::check_blas(cublasSetMathMode(cuda::blas(), tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                   "cublasSetMathMode");
}

}  // namespace ff::backend
