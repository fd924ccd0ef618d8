// cuBLAS for the cuda backend (csrc/emu/cublas_emu.h, OpenBLAS underneath, under the emulator):
// one handle bound to the backend's stream, and row-major GEMM on top of column-major cuBLAS.
#pragma once
#include <cstdint>
#include "launch.h"
#if defined(FF_EMU)
#include "../emu/cublas_emu.h"
#else
#include <cublas_v2.h>
#endif

namespace ff::cuda {

// The handle (created on first use), its work queued on stream(). FP32 math unless
// backend::set_matmul_precision chose TF32.
cublasHandle_t blas();

// Throws ff::Error("<backend>: <what>: <cuBLAS's message>") unless status is success.
void check_blas(cublasStatus_t status, const char* what);

// Row-major C_b = op(A_b) op(B_b) + beta C_b for b < batch, op(A_b) [M, K], op(B_b) [K, N], with
// leading dimensions (row lengths) lda, ldb, ldc and batch strides sa, sb, sc. Computed as the
// column-major C^T = op(B)^T op(A)^T, so no transpose is ever materialised.
void gemm_row_major(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda, int64_t sa,
                    const float* B, int ldb, int64_t sb, float beta, float* C, int ldc, int64_t sc, int batch);

}  // namespace ff::cuda
