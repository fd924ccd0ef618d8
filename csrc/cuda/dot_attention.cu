// Scaled dot-product attention, fused (FlashAttention-2 in fp32 on CUDA cores; CPU twin:
// csrc/cpu/dot_attention.cpp), and its backward:
//   out_i = sum_j P_ij v_j,  P_ij = softmax_j(scale q_i . k_j) (causal: j <= i),
//   lse_i = log2 sum_j exp2(x_ij),  x_ij = (scale log2 e) q_i . k_j   (base 2: see below)
//   dv_j = sum_i P_ij dout_i,  dS_ij = P_ij (dout_i . v_j - delta_i),  delta_i = dout_i . out_i,
//   dq_i = scale sum_j dS_ij k_j,  dk_j = scale sum_i dS_ij q_i,
// the backward recomputing P_ij = exp2(x_ij - lse_i), and taking dout_i . v_j - delta_i
// as dout_i . (v_j - out_i): no cancellation of two O(1) dots when one key takes nearly all the
// weight. The Nq x Nk matrix is never stored. Every kernel forms x_ij with the same float
// operations (q_i scaled by scale log2 e, then the group dot with k_j), and lse stays in base 2,
// so the backward's x_ij - lse_i is the forward's to the bit: at |x| ~ 1e10 a float's spacing
// is 1024, and a logit rounded differently, or lse taken to natural-log units and back, would
// move P_ij by factors of 2^hundreds.
//
// Layout and launch (attention_tiles.h, as fourier_attention.cu): a group of G lanes per row,
// 8 features per lane in registers, dot products as butterflies over the group; 128 threads
// (256 for G = 16 and 32: D, Dv <= 256); k/v (or q/dout/out) tiles of at most 9 KB stream
// through shared memory. Grids are over row blocks; a causal grid may pair row blocks r and
// nb - 1 - r in one block to even out their work (attention_blocks.h).
//
// dot_attention_forward_kernel<G>: a block per query row block (or pair), a group per query row;
//   streams k, v tiles; an online softmax in log2 units (online_softmax.h). Causal blocks stop
//   after their last row's key; unpaired, the longest blocks are scheduled first.
// Backward, the FlashAttention-2 split (each kernel owns what it writes; no atomics):
//   dot_attention_backward_dkdv_kernel<G>: a block per key row block (or pair), a group per key
//     row; streams q (scaled by scale log2 e as it is staged), dout, out tiles and lse; dk, dv
//     in registers.
//   dot_attention_backward_dq_kernel<G>: a block per query row block (or pair), a group per
//     query row; streams k, v tiles; dq in registers.
//
// Cost per (i, j) pair: forward 2D + 2Dv flops + one exp2 and a log2 G-shuffle butterfly per
// lane; backward 2 x (2D + 3Dv) + 2D flops, two butterflies per kernel. Causal halves both.
#include <cmath>
#include "../common/backend.h"
#include "attention_blocks.h"
#include "online_softmax.h"

namespace ff::backend {
namespace {

using namespace ff::cuda;
using namespace ff::cuda::attention;

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2 = 0.693147180559945309f;

template <int G>
__device__ inline float group_dot(const float (&a)[kLaneDims], const float (&b)[kLaneDims]) {
  float sum = 0.0f;
#pragma unroll
  for (int e = 0; e < kLaneDims; ++e) sum += a[e] * b[e];
  return group_sum<G>(sum);
}

// A query row's q in log2 units: q_i scaled by scale log2 e, the factor every kernel applies
// before its group dot with k_j (so the logits agree to the bit).
__device__ inline void load_scaled_query(const float* row, int D, int first, float scale, float (&qd)[kLaneDims]) {
  load_slice(row, D, first, qd);
#pragma unroll
  for (int e = 0; e < kLaneDims; ++e) qd[e] *= scale * kLog2e;
}

// Stages keys [j0, j0 + n) of slice bh: k and v rows.
template <int G>
__device__ inline void load_key_tile(const AttentionShape& s, const float* k, const float* v, int bh, int j0, int n,
                                     float* k_tile, float* v_tile) {
  using L = Layout<G>;
  load_tile<L::kWidth>(k_tile, k + (int64_t(bh) * s.Nk + j0) * s.D, n, s.D);
  load_tile<L::kWidth>(v_tile, v + (int64_t(bh) * s.Nk + j0) * s.Dv, n, s.Dv);
}

template <int G>
__global__ void __launch_bounds__(Layout<G>::kThreads, 1)
    dot_attention_forward_kernel(AttentionShape s, const float* __restrict__ q, const float* __restrict__ k,
                                 const float* __restrict__ v, float scale, float* __restrict__ out,
                                 float* __restrict__ lse, bool paired) {
  using L = Layout<G>;
  float* k_tile = dynamic_shared<float>();
  float* v_tile = k_tile + L::kTileFloats;
  const int bh = blockIdx.y;
  const BlockRows blocks = block_rows(row_blocks(s.Nq, L::kRows), paired, true);
  for (int part = 0; part < blocks.count; ++part) {
    const GroupRow<G> g(blocks[part], bh, s.Nq);
    float qd[kLaneDims];
    load_scaled_query(q + g.at * s.D, s.D, g.first, scale, qd);
    OnlineSoftmaxRow row;
    for_each_tile<L::kTile>(
        0, key_end(s, g.row0, L::kRows), [&](int j0, int n) { load_key_tile<G>(s, k, v, bh, j0, n, k_tile, v_tile); },
        [&](int j0, int n) {
          for (int jj = 0; jj < n; ++jj) {
            float kd[kLaneDims], vd[kLaneDims];
            load8(k_tile + jj * L::kStride + g.slot, kd);
            load8(v_tile + jj * L::kStride + g.slot, vd);
            const float x = group_dot<G>(qd, kd);
            if (!s.causal || j0 + jj <= g.row) row.add(x, vd);
          }
        });
    if (g.row < s.Nq) row.store(out + g.at * s.Dv, s.Dv, g.first, lse + g.at);
  }
}

template <int G>
__global__ void __launch_bounds__(Layout<G>::kThreads, 1)
    dot_attention_backward_dkdv_kernel(AttentionShape s, const float* __restrict__ q, const float* __restrict__ k,
                                       const float* __restrict__ v, float scale, const float* __restrict__ out,
                                       const float* __restrict__ lse, const float* __restrict__ dout,
                                       float* __restrict__ dk, float* __restrict__ dv, bool paired) {
  using L = Layout<G>;
  float* q_tile = dynamic_shared<float>();
  float* g_tile = q_tile + L::kTileFloats;  // dout rows
  float* o_tile = g_tile + L::kTileFloats;  // out rows
  float* lse_tile = o_tile + L::kTileFloats;
  const int bh = blockIdx.y;
  const BlockRows blocks = block_rows(row_blocks(s.Nk, L::kRows), paired, false);
  const float q_scale = scale * kLog2e;  // the forward's factor
  for (int part = 0; part < blocks.count; ++part) {
    const GroupRow<G> g(blocks[part], bh, s.Nk);
    float kd[kLaneDims], vd[kLaneDims], dk_acc[kLaneDims] = {}, dv_acc[kLaneDims] = {};
    load_slice(k + g.at * s.D, s.D, g.first, kd);
    load_slice(v + g.at * s.Dv, s.Dv, g.first, vd);
    for_each_tile<L::kTile>(
        first_query(s, g.row0, L::kTile), s.Nq,
        [&](int i0, int n) {
          const int64_t row0 = int64_t(bh) * s.Nq + i0;
          load_tile<L::kWidth>(q_tile, q + row0 * s.D, n, s.D, q_scale);
          load_tile<L::kWidth>(g_tile, dout + row0 * s.Dv, n, s.Dv);
          load_tile<L::kWidth>(o_tile, out + row0 * s.Dv, n, s.Dv);
          for (int ii = threadIdx.x; ii < n; ii += blockDim.x) lse_tile[ii] = lse[row0 + ii];
        },
        [&](int i0, int n) {
          for (int ii = 0; ii < n; ++ii) {
            float qd[kLaneDims], gd[kLaneDims], od[kLaneDims];
            load8(q_tile + ii * L::kStride + g.slot, qd);
            load8(g_tile + ii * L::kStride + g.slot, gd);
            load8(o_tile + ii * L::kStride + g.slot, od);
            const float x = group_dot<G>(qd, kd);
            const float dp = group_dot_diff<G>(gd, vd, od);  // dout_i . v_j - delta_i
            const float p = s.causal && g.row > i0 + ii ? 0.0f : exp2f(x - lse_tile[ii]);
            const float ds = p * dp;
#pragma unroll
            for (int e = 0; e < kLaneDims; ++e) {
              dv_acc[e] += p * gd[e];
              dk_acc[e] += ds * qd[e];
            }
          }
        });
    if (g.row >= s.Nk) continue;
    store_slice(dk + g.at * s.D, s.D, g.first, dk_acc, kLn2);  // the tile's q carry scale log2 e
    store_slice(dv + g.at * s.Dv, s.Dv, g.first, dv_acc, 1.0f);
  }
}

template <int G>
__global__ void __launch_bounds__(Layout<G>::kThreads, 1)
    dot_attention_backward_dq_kernel(AttentionShape s, const float* __restrict__ q, const float* __restrict__ k,
                                     const float* __restrict__ v, float scale, const float* __restrict__ out,
                                     const float* __restrict__ lse, const float* __restrict__ dout,
                                     float* __restrict__ dq, bool paired) {
  using L = Layout<G>;
  float* k_tile = dynamic_shared<float>();
  float* v_tile = k_tile + L::kTileFloats;
  const int bh = blockIdx.y;
  const BlockRows blocks = block_rows(row_blocks(s.Nq, L::kRows), paired, true);
  for (int part = 0; part < blocks.count; ++part) {
    const GroupRow<G> g(blocks[part], bh, s.Nq);
    float qd[kLaneDims], gd[kLaneDims], od[kLaneDims], acc[kLaneDims] = {};
    load_scaled_query(q + g.at * s.D, s.D, g.first, scale, qd);
    load_slice(dout + g.at * s.Dv, s.Dv, g.first, gd);
    load_slice(out + g.at * s.Dv, s.Dv, g.first, od);
    const float row_lse = lse[g.at];
    for_each_tile<L::kTile>(
        0, key_end(s, g.row0, L::kRows), [&](int j0, int n) { load_key_tile<G>(s, k, v, bh, j0, n, k_tile, v_tile); },
        [&](int j0, int n) {
          for (int jj = 0; jj < n; ++jj) {
            float kd[kLaneDims], vd[kLaneDims];
            load8(k_tile + jj * L::kStride + g.slot, kd);
            load8(v_tile + jj * L::kStride + g.slot, vd);
            const float x = group_dot<G>(qd, kd);
            const float dp = group_dot_diff<G>(gd, vd, od);  // dout_i . v_j - delta_i
            const float p = s.causal && j0 + jj > g.row ? 0.0f : exp2f(x - row_lse);
            const float ds = p * dp;
#pragma unroll
            for (int e = 0; e < kLaneDims; ++e) acc[e] += ds * kd[e];
          }
        });
    if (g.row >= s.Nq) continue;
    store_slice(dq + g.at * s.D, s.D, g.first, acc, scale);
  }
}

}  // namespace

void dot_attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, float scale,
                           float* out, float* lse) {
  with_group(group_size("dotProductAttention", s.D, s.Dv), [&](auto group) {
    constexpr int G = decltype(group)::value;
    using L = Layout<G>;
    const size_t shmem = 2 * L::kTileFloats * sizeof(float);
    const bool paired =
        causal_pairing(dot_attention_forward_kernel<G>, s, RowSide::query, L::kRows, L::kTile, L::kThreads, shmem);
    FF_LAUNCH(dot_attention_forward_kernel<G>, block_grid(s.Nq, L::kRows, s.B * s.H, paired), dim3(L::kThreads), shmem,
              s, q, k, v, scale, out, lse, paired);
  });
}

void dot_attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v, float scale,
                            const float* out, const float* lse, const float* dout, float* dq, float* dk, float* dv) {
  with_group(group_size("dotProductAttention", s.D, s.Dv), [&](auto group) {
    constexpr int G = decltype(group)::value;
    using L = Layout<G>;
    const size_t dkdv_shmem = (3 * L::kTileFloats + L::kTile) * sizeof(float);
    const bool dkdv_paired = causal_pairing(dot_attention_backward_dkdv_kernel<G>, s, RowSide::key, L::kRows, L::kTile,
                                            L::kThreads, dkdv_shmem);
    FF_LAUNCH(dot_attention_backward_dkdv_kernel<G>, block_grid(s.Nk, L::kRows, s.B * s.H, dkdv_paired),
              dim3(L::kThreads), dkdv_shmem, s, q, k, v, scale, out, lse, dout, dk, dv, dkdv_paired);
    const size_t dq_shmem = 2 * L::kTileFloats * sizeof(float);
    const bool dq_paired = causal_pairing(dot_attention_backward_dq_kernel<G>, s, RowSide::query, L::kRows, L::kTile,
                                          L::kThreads, dq_shmem);
    FF_LAUNCH(dot_attention_backward_dq_kernel<G>, block_grid(s.Nq, L::kRows, s.B * s.H, dq_paired), dim3(L::kThreads),
              dq_shmem, s, q, k, v, scale, out, lse, dout, dq, dq_paired);
  });
}

}  // namespace ff::backend
