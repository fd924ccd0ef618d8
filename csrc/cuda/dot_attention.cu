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
// (256 for G = 16 and 32: D, Dv <= 256); k/v (or q/dout/out) tiles of at most 8 KB stream
// through shared memory.
//
// dot_attention_forward_kernel<G>: grid (Nq / rows, B*H), a group per query row; streams k, v
//   tiles; an online softmax in log2 units (running max, rescaled sum and output). Causal blocks
//   stop after their last row's key; the longest blocks are scheduled first.
// Backward, the FlashAttention-2 split (each kernel owns what it writes; no atomics):
//   dot_attention_backward_dkdv_kernel<G>: grid (Nk / rows, B*H), a group per key row; streams
//     q (scaled by scale log2 e as it is staged), dout, out tiles and lse; dk, dv in registers.
//   dot_attention_backward_dq_kernel<G>: grid (Nq / rows, B*H), a group per query row; streams
//     k, v tiles; dq in registers.
//
// Cost per (i, j) pair: forward 2D + 2Dv flops + one exp2 and a log2 G-shuffle butterfly per
// lane; backward 2 x (2D + 3Dv) + 2D flops, two butterflies per kernel. Causal halves both.
#include <cmath>
#include "../common/backend.h"
#include "attention_tiles.h"

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

template <int G>
__global__ void __launch_bounds__(Layout<G>::kThreads, 1)
    dot_attention_forward_kernel(AttentionShape s, const float* __restrict__ q,
                                 const float* __restrict__ k, const float* __restrict__ v,
                                 float scale, float* __restrict__ out, float* __restrict__ lse) {
  using L = Layout<G>;
  float* k_tile = dynamic_shared<float>();
  float* v_tile = k_tile + L::kTileFloats;
  const int bh = blockIdx.y;
  const int row0 = (gridDim.x - 1 - blockIdx.x) * L::kRows;
  const int i = row0 + threadIdx.x / G;
  const int first = (threadIdx.x % G) * kLaneDims;
  const int key_end = s.causal ? imin(s.Nk, imin(row0 + L::kRows, s.Nq)) : s.Nk;
  const int64_t at = int64_t(bh) * s.Nq + imin(i, s.Nq - 1);

  float qd[kLaneDims], acc[kLaneDims] = {};
  load_slice(q + at * s.D, s.D, first, qd);
#pragma unroll
  for (int e = 0; e < kLaneDims; ++e) qd[e] *= scale * kLog2e;  // logits in log2 units
  float row_max = -INFINITY, sum = 0.0f;

  for (int j0 = 0; j0 < key_end; j0 += L::kTile) {
    const int n = imin(L::kTile, key_end - j0);
    __syncthreads();
    load_tile<L::kWidth>(k_tile, k + (int64_t(bh) * s.Nk + j0) * s.D, n, s.D);
    load_tile<L::kWidth>(v_tile, v + (int64_t(bh) * s.Nk + j0) * s.Dv, n, s.Dv);
    __syncthreads();
    for (int jj = 0; jj < n; ++jj) {
      float kd[kLaneDims], vd[kLaneDims];
      load8(k_tile + jj * L::kWidth + first, kd);
      load8(v_tile + jj * L::kWidth + first, vd);
      const float x = group_dot<G>(qd, kd);
      if (s.causal && j0 + jj > i) continue;
      if (x > row_max) {
        const float rescale = exp2f(row_max - x);
        sum *= rescale;
#pragma unroll
        for (int e = 0; e < kLaneDims; ++e) acc[e] *= rescale;
        row_max = x;
      }
      const float p = exp2f(x - row_max);
      sum += p;
#pragma unroll
      for (int e = 0; e < kLaneDims; ++e) acc[e] += p * vd[e];
    }
  }
  if (i >= s.Nq) return;
  store_slice(out + at * s.Dv, s.Dv, first, acc, sum > 0.0f ? 1.0f / sum : 0.0f);
  if (first == 0) lse[at] = sum > 0.0f ? row_max + log2f(sum) : -INFINITY;
}

template <int G>
__global__ void __launch_bounds__(Layout<G>::kThreads, 1)
    dot_attention_backward_dkdv_kernel(AttentionShape s, const float* __restrict__ q,
                                       const float* __restrict__ k, const float* __restrict__ v,
                                       float scale, const float* __restrict__ out,
                                       const float* __restrict__ lse,
                                       const float* __restrict__ dout, float* __restrict__ dk,
                                       float* __restrict__ dv) {
  using L = Layout<G>;
  float* q_tile = dynamic_shared<float>();
  float* g_tile = q_tile + L::kTileFloats;    // dout rows
  float* o_tile = g_tile + L::kTileFloats;    // out rows
  float* lse_tile = o_tile + L::kTileFloats;
  const int bh = blockIdx.y;
  const int key0 = blockIdx.x * L::kRows;
  const int j = key0 + threadIdx.x / G;
  const int first = (threadIdx.x % G) * kLaneDims;
  const int64_t at = int64_t(bh) * s.Nk + imin(j, s.Nk - 1);

  float kd[kLaneDims], vd[kLaneDims], dk_acc[kLaneDims] = {}, dv_acc[kLaneDims] = {};
  load_slice(k + at * s.D, s.D, first, kd);
  load_slice(v + at * s.Dv, s.Dv, first, vd);
  const float q_scale = scale * kLog2e;  // the forward's factor

  for (int i0 = s.causal ? key0 / L::kTile * L::kTile : 0; i0 < s.Nq; i0 += L::kTile) {
    const int n = imin(L::kTile, s.Nq - i0);
    const int64_t row0 = int64_t(bh) * s.Nq + i0;
    __syncthreads();
    load_tile<L::kWidth>(q_tile, q + row0 * s.D, n, s.D, q_scale);
    load_tile<L::kWidth>(g_tile, dout + row0 * s.Dv, n, s.Dv);
    load_tile<L::kWidth>(o_tile, out + row0 * s.Dv, n, s.Dv);
    for (int ii = threadIdx.x; ii < n; ii += blockDim.x) lse_tile[ii] = lse[row0 + ii];
    __syncthreads();
    for (int ii = 0; ii < n; ++ii) {
      float qd[kLaneDims], gd[kLaneDims], od[kLaneDims];
      load8(q_tile + ii * L::kWidth + first, qd);
      load8(g_tile + ii * L::kWidth + first, gd);
      load8(o_tile + ii * L::kWidth + first, od);
      const float x = group_dot<G>(qd, kd);
      const float dp = group_dot_diff<G>(gd, vd, od);  // dout_i . v_j - delta_i
      const float p = s.causal && j > i0 + ii ? 0.0f : exp2f(x - lse_tile[ii]);
      const float ds = p * dp;
#pragma unroll
      for (int e = 0; e < kLaneDims; ++e) {
        dv_acc[e] += p * gd[e];
        dk_acc[e] += ds * qd[e];
      }
    }
  }
  if (j >= s.Nk) return;
  store_slice(dk + at * s.D, s.D, first, dk_acc, kLn2);  // the tile's q carry scale log2 e
  store_slice(dv + at * s.Dv, s.Dv, first, dv_acc, 1.0f);
}

template <int G>
__global__ void __launch_bounds__(Layout<G>::kThreads, 1)
    dot_attention_backward_dq_kernel(AttentionShape s, const float* __restrict__ q,
                                     const float* __restrict__ k, const float* __restrict__ v,
                                     float scale, const float* __restrict__ out,
                                     const float* __restrict__ lse,
                                     const float* __restrict__ dout, float* __restrict__ dq) {
  using L = Layout<G>;
  float* k_tile = dynamic_shared<float>();
  float* v_tile = k_tile + L::kTileFloats;
  const int bh = blockIdx.y;
  const int row0 = (gridDim.x - 1 - blockIdx.x) * L::kRows;
  const int i = row0 + threadIdx.x / G;
  const int first = (threadIdx.x % G) * kLaneDims;
  const int key_end = s.causal ? imin(s.Nk, imin(row0 + L::kRows, s.Nq)) : s.Nk;
  const int64_t at = int64_t(bh) * s.Nq + imin(i, s.Nq - 1);

  float qd[kLaneDims], gd[kLaneDims], od[kLaneDims], acc[kLaneDims] = {};
  load_slice(q + at * s.D, s.D, first, qd);
  load_slice(dout + at * s.Dv, s.Dv, first, gd);
  load_slice(out + at * s.Dv, s.Dv, first, od);
#pragma unroll
  for (int e = 0; e < kLaneDims; ++e) qd[e] *= scale * kLog2e;
  const float row_lse = lse[at];

  for (int j0 = 0; j0 < key_end; j0 += L::kTile) {
    const int n = imin(L::kTile, key_end - j0);
    __syncthreads();
    load_tile<L::kWidth>(k_tile, k + (int64_t(bh) * s.Nk + j0) * s.D, n, s.D);
    load_tile<L::kWidth>(v_tile, v + (int64_t(bh) * s.Nk + j0) * s.Dv, n, s.Dv);
    __syncthreads();
    for (int jj = 0; jj < n; ++jj) {
      float kd[kLaneDims], vd[kLaneDims];
      load8(k_tile + jj * L::kWidth + first, kd);
      load8(v_tile + jj * L::kWidth + first, vd);
      const float x = group_dot<G>(qd, kd);
      const float dp = group_dot_diff<G>(gd, vd, od);  // dout_i . v_j - delta_i
      const float p = s.causal && j0 + jj > i ? 0.0f : exp2f(x - row_lse);
      const float ds = p * dp;
#pragma unroll
      for (int e = 0; e < kLaneDims; ++e) acc[e] += ds * kd[e];
    }
  }
  if (i >= s.Nq) return;
  store_slice(dq + at * s.D, s.D, first, acc, scale);
}

}  // namespace

void dot_attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v,
                           float scale, float* out, float* lse) {
  with_group(group_size("dotProductAttention", s.D, s.Dv), [&](auto group) {
    constexpr int G = decltype(group)::value;
    using L = Layout<G>;
    FF_LAUNCH(dot_attention_forward_kernel<G>, row_grid(s.Nq, L::kRows, s.B * s.H),
              dim3(L::kThreads), 2 * L::kTileFloats * sizeof(float), s, q, k, v, scale, out, lse);
  });
}

void dot_attention_backward(const AttentionShape& s, const float* q, const float* k,
                            const float* v, float scale, const float* out, const float* lse,
                            const float* dout, float* dq, float* dk, float* dv) {
  with_group(group_size("dotProductAttention", s.D, s.Dv), [&](auto group) {
    constexpr int G = decltype(group)::value;
    using L = Layout<G>;
    FF_LAUNCH(dot_attention_backward_dkdv_kernel<G>, row_grid(s.Nk, L::kRows, s.B * s.H),
              dim3(L::kThreads), (3 * L::kTileFloats + L::kTile) * sizeof(float), s, q, k, v,
              scale, out, lse, dout, dk, dv);
    FF_LAUNCH(dot_attention_backward_dq_kernel<G>, row_grid(s.Nq, L::kRows, s.B * s.H),
              dim3(L::kThreads), 2 * L::kTileFloats * sizeof(float), s, q, k, v, scale, out, lse,
              dout, dq);
  });
}

}  // namespace ff::backend
