// The cpu backend's GEMM: OpenBLAS's sgemm (Debian's libopenblas-dev; scripts/setup.sh installs
// it), always run single-threaded inside the addon's own OpenMP team. A product is cut into
// blocks of C (rows, or columns when C is wide), each block one sgemm call. So GEMMs and the
// other kernels share one pool of omp_get_max_threads() threads: OpenBLAS's own pool would spin
// beside OpenMP's after every switch between the two (3+ busy threads on 2 cores).
// A large product has up to kBlocksPerThread blocks per thread, handed out dynamically: on a
// shared machine one of the threads is often slowed by another process, and a thread that
// finishes its block early takes the next instead of waiting for an even half to complete.
// Blocks are fixed by the shape and the thread count, never by the schedule: the same bits.
#pragma once
#if !__has_include(<cblas.h>)
#error "OpenBLAS not found (cblas.h): install libopenblas-dev, or run scripts/setup.sh"
#endif
#include <cblas.h>
#include <omp.h>
#include <cstdint>

namespace ff::cpu {

// Row-major C = op(A) op(B) + beta C; op(A) [M, K], op(B) [K, N]; lda, ldb, ldc are row lengths
// as stored (A is [K, M] when trans_a, B is [N, K] when trans_b).
struct Sgemm {
  bool trans_a = false, trans_b = false;
  int M = 1, N = 1, K = 1;
  const float* A = nullptr;
  int lda = 1;
  const float* B = nullptr;
  int ldb = 1;
  float beta = 0.0f;
  float* C = nullptr;
  int ldc = 1;
};

// The number of threads for a product of `flops` (at least ~4 Mflop per thread).
int gemm_threads(double flops);

// The block C[m0:m1, n0:n1] of the product, on the calling thread (sgemv for a block of one row).
void sgemm_block(const Sgemm& g, int m0, int m1, int n0, int n1);

// The whole product, its blocks spread over the team.
void sgemm(const Sgemm& g);

// The number of blocks a product of `flops` split over `threads` gets along a dimension of n:
// the same number per thread, more than one (up to kBlocksPerThread) when each block still has
// >= kBlockFlops and >= kMinBlock rows or columns (so that repacking the other operand for each
// call stays cheap).
int gemm_blocks(double flops, int threads, int n);

// Calls f(m0, m1, n0, n1) once per block of a split of C [M, N] into blocks of rows (or of
// columns when N > M), the blocks dealt dynamically to the team; one call on the calling thread
// when `flops` is too few for a team.
template <typename F>
void parallel_blocks(int M, int N, double flops, F&& f) {
  const int threads = gemm_threads(flops);
  if (threads <= 1) {
    f(0, M, 0, N);
    return;
  }
  const bool split_rows = M >= N;
  const int n = split_rows ? M : N;
  const int blocks = gemm_blocks(flops, threads, n);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int b = 0; b < blocks; ++b) {
    const int b0 = int(int64_t(n) * b / blocks), b1 = int(int64_t(n) * (b + 1) / blocks);
    if (b1 <= b0) continue;
    if (split_rows)
      f(b0, b1, 0, N);
    else
      f(0, M, b0, b1);
  }
}

}  // namespace ff::cpu
