// Deterministic column sums for the cuda backend (bias, LayerNorm weight and bias gradients):
//     out_k[c] = sum_r term_k(r, c)   for k < Term::kOutputs
// in a fixed order and without atomics: column_partials_kernel gives each thread one column of
// one chunk of kColumnChunkRows rows (consecutive threads on consecutive columns, so each row
// step is a coalesced read) and writes the chunk's partials; column_finish_kernel adds the
// chunks in order. The chunking depends only on the row count, so the bits repeat on any GPU.
// Term is a struct with `static constexpr int kOutputs` and
//     __device__ void operator()(int r, int c, float* acc) const   (acc[k] += term_k(r, c)).
// Cost: rows*C terms + chunks*C partial reads; scratch of kOutputs*chunks*C floats.
#pragma once
#include "../common/backend.h"
#include "launch.h"

namespace ff::cuda {

constexpr int kColumnChunkRows = 64;  // at least; more above 65535 chunks
constexpr int kColumnThreads = 128;
constexpr int kMaxColumnOutputs = 2;

struct ColumnOutputs {
  float* out[kMaxColumnOutputs];  // null: not wanted
};

template <typename Term>
__global__ void column_partials_kernel(Term term, int rows, int C, int chunk_rows, float* partials) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int chunk = blockIdx.y, chunks = gridDim.y;
  if (c >= C) return;
  float acc[Term::kOutputs] = {};
  const int r0 = chunk * chunk_rows, r1 = min(rows, r0 + chunk_rows);
  for (int r = r0; r < r1; ++r) term(r, c, acc);
  for (int k = 0; k < Term::kOutputs; ++k) partials[(int64_t(k) * chunks + chunk) * C + c] = acc[k];
}

template <int kOutputs>
__global__ void column_finish_kernel(const float* partials, int chunks, int C, ColumnOutputs outs) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  for (int k = 0; k < kOutputs; ++k) {
    if (outs.out[k] == nullptr) continue;
    float s = 0.0f;
    for (int ch = 0; ch < chunks; ++ch) s += partials[(int64_t(k) * chunks + ch) * C + c];
    outs.out[k][c] = s;
  }
}

template <typename Term>
void column_sums(const Term& term, int rows, int C, ColumnOutputs outs) {
  static_assert(Term::kOutputs <= kMaxColumnOutputs, "raise kMaxColumnOutputs");
  // kColumnChunkRows rows per chunk, more when the chunks would overflow gridDim.y
  const int chunk_rows = rows / 65535 + 1 > kColumnChunkRows ? rows / 65535 + 1 : kColumnChunkRows;
  const int chunks = (rows + chunk_rows - 1) / chunk_rows;
  float* partials = static_cast<float*>(backend::alloc(sizeof(float) * Term::kOutputs * chunks * C));
  const unsigned col_blocks = unsigned((C + kColumnThreads - 1) / kColumnThreads);
  try {
    FF_LAUNCH(column_partials_kernel<Term>, dim3(col_blocks, unsigned(chunks)), dim3(kColumnThreads), 0, term, rows, C,
              chunk_rows, partials);
    FF_LAUNCH(column_finish_kernel<Term::kOutputs>, dim3(col_blocks), dim3(kColumnThreads), 0, partials, chunks, C,
              outs);
  } catch (...) {
    backend::release(partials);
    throw;
  }
  backend::release(partials);  // stream-ordered reuse: later work queues after these kernels
}

}  // namespace ff::cuda
