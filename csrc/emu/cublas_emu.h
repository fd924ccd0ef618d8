// The cuBLAS subset the CUDA sources use, for the cuda-emu build: device memory is host memory,
// so each call runs OpenBLAS's cblas_sgemm (column-major, as cuBLAS) on the calling thread and
// returns when the product is written, as every emulated launch does. Arguments are checked as
// cuBLAS checks them (CUBLAS_STATUS_INVALID_VALUE), so a call that would fail on a GPU fails here.
// Pointer mode is host (alpha, beta point to host floats), cuBLAS's default. Math mode TF32
// (cublasSetMathMode) rounds A and B to TF32 (10 mantissa bits, to nearest, ties away from zero,
// as the tensor cores' conversion) before the float product. Link: -lopenblas.
#pragma once
#if !defined(FF_EMU)
#error "cublas_emu.h is the cuda-emu build's cuBLAS: compile with -DFF_EMU"
#endif
#if !__has_include(<cblas.h>)
#error "OpenBLAS not found (cblas.h): install libopenblas-dev, or run scripts/setup.sh"
#endif
#include <cblas.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#include "cuda_emu.h"

typedef enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_INVALID_VALUE = 7,
} cublasStatus_t;

typedef enum {
  CUBLAS_OP_N = 0,
  CUBLAS_OP_T = 1,
} cublasOperation_t;

typedef enum {
  CUBLAS_DEFAULT_MATH = 0,
  CUBLAS_TF32_TENSOR_OP_MATH = 3,
} cublasMath_t;

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};
typedef cublasContext* cublasHandle_t;

inline cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  openblas_set_num_threads(1);  // the products run on the calling thread, not OpenBLAS's pool
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_DEFAULT_MATH && mode != CUBLAS_TF32_TENSOR_OP_MATH) return CUBLAS_STATUS_INVALID_VALUE;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

namespace ff::emu {
// x rounded to TF32: the 13 low mantissa bits dropped, to nearest, ties away from zero.
inline float round_tf32(float x) {
  if (!std::isfinite(x)) return x;
  uint32_t b;
  std::memcpy(&b, &x, 4);
  b = (b + 0x1000u) & 0xffffe000u;
  std::memcpy(&x, &b, 4);
  return x;
}

// A copy of a column-major matrix of `cols` columns (leading dimension ld), rounded to TF32.
inline std::vector<float> tf32_copy(const float* M, int rows, int cols, int ld) {
  std::vector<float> out(cols > 0 ? size_t(cols - 1) * ld + rows : 0);
  for (int c = 0; c < cols; ++c)
    for (int r = 0; r < rows; ++r) out[size_t(c) * ld + r] = round_tf32(M[size_t(c) * ld + r]);
  return out;
}
}  // namespace ff::emu

inline const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
  }
  return "unknown cuBLAS status";
}

// C = alpha op(A) op(B) + beta C for `batch` matrices at the given strides (column-major).
inline cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                                cublasOperation_t transb, int m, int n, int k, const float* alpha,
                                                const float* A, int lda, long long stride_a, const float* B, int ldb,
                                                long long stride_b, const float* beta, float* C, int ldc,
                                                long long stride_c, int batch) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const int rows_a = transa == CUBLAS_OP_N ? m : k;
  const int rows_b = transb == CUBLAS_OP_N ? k : n;
  if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < (rows_a > 1 ? rows_a : 1) || ldb < (rows_b > 1 ? rows_b : 1) ||
      ldc < (m > 1 ? m : 1) || alpha == nullptr || beta == nullptr)
    return CUBLAS_STATUS_INVALID_VALUE;
  const CBLAS_TRANSPOSE ta = transa == CUBLAS_OP_N ? CblasNoTrans : CblasTrans;
  const CBLAS_TRANSPOSE tb = transb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans;
  for (int b = 0; b < batch; ++b) {
    const float* a = A + b * stride_a;
    const float* bb = B + b * stride_b;
    std::vector<float> a32, b32;
    if (handle->math == CUBLAS_TF32_TENSOR_OP_MATH) {
      a32 = ff::emu::tf32_copy(a, rows_a, transa == CUBLAS_OP_N ? k : m, lda);
      b32 = ff::emu::tf32_copy(bb, rows_b, transb == CUBLAS_OP_N ? n : k, ldb);
      a = a32.data(), bb = b32.data();
    }
    cblas_sgemm(CblasColMajor, ta, tb, m, n, k, *alpha, a, lda, bb, ldb, *beta, C + b * stride_c, ldc);
  }
  return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                  int n, int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                                  const float* beta, float* C, int ldc) {
  return cublasSgemmStridedBatched(handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}
