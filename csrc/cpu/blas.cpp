// cpu backend: OpenBLAS sgemm on the addon's OpenMP threads (blas.h). OpenBLAS is set to one
// thread once, on first use; each OpenMP thread then calls it on the blocks of C it takes.
// Cost: 2*M*N*K flops.
#include "blas.h"
#include <algorithm>
#include <cstdint>

namespace ff::cpu {
namespace {

void use_single_threaded_blas() {
  static const bool configured = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)configured;
}

}  // namespace

int gemm_threads(double flops) {
  constexpr double kFlopsPerThread = 4e6;
  return int(std::clamp(flops / kFlopsPerThread, 1.0, double(omp_get_max_threads())));
}

int gemm_blocks(double flops, int threads, int n) {
  constexpr int kBlocksPerThread = 3, kMinBlock = 256;
  constexpr double kBlockFlops = 64e6;
  const int by_flops = int(flops / kBlockFlops), by_size = n / kMinBlock;
  const int per_thread = std::min({kBlocksPerThread, by_flops / threads, by_size / threads});
  return threads * std::max(1, per_thread);  // a multiple of threads: even on an idle machine
}

void sgemm_block(const Sgemm& g, int m0, int m1, int n0, int n1) {
  use_single_threaded_blas();
  const float* A = g.trans_a ? g.A + m0 : g.A + int64_t(m0) * g.lda;
  const float* B = g.trans_b ? g.B + int64_t(n0) * g.ldb : g.B + n0;
  if (m1 - m0 == 1) {
    // One row of C (a token at a time when decoding): sgemv reads op(B) once in place, where
    // OpenBLAS's sgemm first packs all of it (~7x slower for [1, 64] x [64, 4000]).
    cblas_sgemv(CblasRowMajor, g.trans_b ? CblasNoTrans : CblasTrans, g.trans_b ? n1 - n0 : g.K,
                g.trans_b ? g.K : n1 - n0, 1.0f, B, g.ldb, A, g.trans_a ? g.lda : 1, g.beta,
                g.C + int64_t(m0) * g.ldc + n0, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans, g.trans_b ? CblasTrans : CblasNoTrans, m1 - m0,
              n1 - n0, g.K, 1.0f, A, g.lda, B, g.ldb, g.beta, g.C + int64_t(m0) * g.ldc + n0, g.ldc);
}

void sgemm(const Sgemm& g) {
  parallel_blocks(g.M, g.N, 2.0 * g.M * g.N * g.K,
                  [&](int m0, int m1, int n0, int n1) { sgemm_block(g, m0, m1, n0, n1); });
}

}  // namespace ff::cpu
