// Neural Attention, fused (FlashAttention-2 in fp32 on CUDA cores; CPU twin:
// csrc/cpu/neural_attention.cpp): a small network scores every pair (common/neural_score.h),
//   out_i = sum_j P_ij v_j,  P_ij = softmax_j(s_ij) (causal: j <= i),
//   lse_i = log2 sum_j exp2(x_ij),  x_ij = log2(e) s_ij      (base 2, as dot_attention.cu)
// and its backward: dv_j = sum_i P_ij dout_i, dS_ij = P_ij dout_i . (v_j - out_i), then the
// network's backward per pair (g1 = dL/da_i = dL/dc_j, and its weights' gradients):
//   da_i = sum_j g1_ij,  dc_j = sum_i g1_ij,  dW = sum_ij (the pair's weight gradients).
// x_ij is formed by the same operations in every kernel (the network with explicit fmaf, then
// one __fmul_rn that nvcc cannot contract), so the backward's x_ij - lse_i is the forward's to
// the bit. Nothing of size Nq x Nk (or Nq x Nk x d1) is stored.
//
// Layout and launch (attention_tiles.h): a group of G lanes per row, each lane holding 8 of the
// Dv values (G from Dv); every lane of the group evaluates the whole network for its row's pairs
// (d1, d2 <= 8, padded to the bucket (M1, M2): a and z in registers), so a score takes no shuffle.
// The other side's rows (c or a, at M1 floats) and values (v, or dout and out) stream through
// shared memory in tiles; the network's weights sit in shared memory, read alike by every thread.
//
// Grids are over row blocks; a causal grid may pair row blocks r and nb - 1 - r in one block to
// even out their work (attention_blocks.h).
// neural_attention_forward_kernel: a block per query row block (or pair), a group per query row;
//   streams c, v tiles; an online softmax in log2 units (online_softmax.h). Causal blocks stop
//   after their last row's key; unpaired, the longest blocks are scheduled first.
// Backward, the FlashAttention-2 split (each kernel owns what it writes; no atomics):
//   neural_attention_backward_dkdv_kernel: a block per key row block (or pair), a group per key
//     row; streams a, dout, out tiles and lse; dc, dv and the weights' gradients in registers,
//     the latter summed over the row block's rows (in double) into one partial per row block.
//   neural_attention_backward_dq_kernel: a block per query row block (or pair), a group per
//     query row; streams c, v tiles; da in registers.
//   neural_attention_weights_kernel: a block per weight sums the blocks' partials in order.
//
// Cost per (i, j) pair: forward the network (d1 (2 + d2) + 3 d2 flops) + 2 Dv flops + one exp2;
// backward twice the network, its backward (~3 d1 d2 flops), 2 x (2 Dv + Dv) flops and a log2 G
// butterfly per kernel. Causal halves both. Memory: O(B*H*(Nq + Nk)*(d1 + Dv)) plus the
// weights' partials, B*H*Nk/rows*(d1 d2 + 2 d2 + 1) doubles.
#include <cmath>
#include "../common/backend.h"
#include "../common/neural_score.h"
#include "attention_blocks.h"
#include "online_softmax.h"

namespace ff::backend {
namespace {

using namespace ff::cuda;
using namespace ff::cuda::attention;

constexpr float kLog2e = 1.44269504088896341f;

template <int M1, int M2>
using Weights = NeuralWeights<ScalarOps, M1, M2>;

// The weights as floats, one after another: w2 [M2][M1], b2 [M2], w3 [M2], b3.
template <int M1, int M2>
constexpr int kWeightFloats = M2* M1 + 2 * M2 + 1;

struct Identity {
  FF_HD float operator()(float x) const { return x; }
};

// Shared memory after `end` (floats) for the block's padded weights, filled by thread 0; the
// caller's next __syncthreads() publishes them.
template <int M1, int M2>
__device__ inline Weights<M1, M2>* stage_weights(float* end, const NeuralMlp& p) {
  auto* w = reinterpret_cast<Weights<M1, M2>*>(end);
  if (threadIdx.x == 0) load_neural_weights(p, p.w2, p.b2, p.w3, p.b3, *w, Identity{});
  return w;
}

// f(e, x) for the weights x of g in kWeightFloats' order, e = 0, 1, ... (unrolled: g stays in
// registers).
template <int M1, int M2, class F>
__device__ inline void for_each_weight(const Weights<M1, M2>& g, const F& f) {
#pragma unroll
  for (int n = 0; n < M2; ++n)
#pragma unroll
    for (int m = 0; m < M1; ++m) f(n * M1 + m, g.w2[n][m]);
#pragma unroll
  for (int n = 0; n < M2; ++n) f(M2 * M1 + n, g.b2[n]);
#pragma unroll
  for (int n = 0; n < M2; ++n) f(M2 * M1 + M2 + n, g.w3[n]);
  f(M2 * M1 + 2 * M2, g.b3);
}

// The first M1 floats of a global row of n (n <= M1), zero past n.
template <int M1>
__device__ inline void load_row(const float* row, int n, float (&r)[M1]) {
#pragma unroll
  for (int m = 0; m < M1; ++m) r[m] = m < n ? row[m] : 0.0f;
}

template <int M1>
__device__ inline void load_shared_row(const float* row, float (&r)[M1]) {
#pragma unroll
  for (int m = 0; m < M1; ++m) r[m] = row[m];
}

// x = log2(e) s for the pair (a, c): the forward's and the backward's logit, bit for bit.
template <int M1, int M2>
__device__ inline float logit2(const Weights<M1, M2>& w, const float (&a)[M1], const float (&c)[M1], float (&h)[M1],
                               float (&z)[M2]) {
  return __fmul_rn(neural_score<ScalarOps, M1, M2>(w, a, c, h, z), kLog2e);
}

// Stages keys [j0, j0 + n) of slice bh: c rows (M1 floats) and v rows.
template <int G, int M1>
__device__ inline void load_key_tile(const AttentionShape& s, const float* c, const float* v, int bh, int j0, int n,
                                     float* c_tile, float* v_tile) {
  load_tile<M1>(c_tile, c + (int64_t(bh) * s.Nk + j0) * s.D, n, s.D);
  load_tile<Layout<G>::kWidth>(v_tile, v + (int64_t(bh) * s.Nk + j0) * s.Dv, n, s.Dv);
}

template <int G, int M1, int M2>
__global__ void __launch_bounds__(Layout<G>::kThreads, 1)
    neural_attention_forward_kernel(AttentionShape s, const float* __restrict__ a, const float* __restrict__ c,
                                    const float* __restrict__ v, NeuralMlp p, float* __restrict__ out,
                                    float* __restrict__ lse, bool paired) {
  using L = Layout<G>;
  float* c_tile = dynamic_shared<float>();
  float* v_tile = c_tile + L::kTile * M1;
  const Weights<M1, M2>& w = *stage_weights<M1, M2>(v_tile + L::kTileFloats, p);
  const int bh = blockIdx.y;
  const BlockRows blocks = block_rows(row_blocks(s.Nq, L::kRows), paired, true);
  for (int part = 0; part < blocks.count; ++part) {
    const GroupRow<G> g(blocks[part], bh, s.Nq);
    float ar[M1];
    load_row<M1>(a + g.at * s.D, s.D, ar);
    OnlineSoftmaxRow row;
    for_each_tile<L::kTile>(
        0, key_end(s, g.row0, L::kRows),
        [&](int j0, int n) { load_key_tile<G, M1>(s, c, v, bh, j0, n, c_tile, v_tile); },
        [&](int j0, int n) {
          const int visible = s.causal ? imin(n, g.row - j0 + 1) : n;
          for (int jj = 0; jj < visible; ++jj) {
            float cr[M1], h[M1], z[M2], vd[kLaneDims];
            load_shared_row<M1>(c_tile + jj * M1, cr);
            load8(v_tile + jj * L::kStride + g.slot, vd);
            row.add(logit2<M1, M2>(w, ar, cr, h, z), vd);
          }
        });
    if (g.row < s.Nq) row.store(out + g.at * s.Dv, s.Dv, g.first, lse + g.at);
  }
}

template <int G, int M1, int M2>
__global__ void __launch_bounds__(Layout<G>::kThreads, 1)
    neural_attention_backward_dkdv_kernel(AttentionShape s, const float* __restrict__ a, const float* __restrict__ c,
                                          const float* __restrict__ v, NeuralMlp p, const float* __restrict__ out,
                                          const float* __restrict__ lse, const float* __restrict__ dout,
                                          float* __restrict__ dc, float* __restrict__ dv,
                                          double* __restrict__ w_partial, bool paired) {
  using L = Layout<G>;
  float* a_tile = dynamic_shared<float>();
  float* g_tile = a_tile + L::kTile * M1;   // dout rows
  float* o_tile = g_tile + L::kTileFloats;  // out rows
  float* lse_tile = o_tile + L::kTileFloats;
  const Weights<M1, M2>& w = *stage_weights<M1, M2>(lse_tile + L::kTile, p);
  // The epilogue's warp sums overwrite the tiles, never the weights a second row block reads.
  static_assert((L::kThreads / 32) * kWeightFloats<M1, M2> * sizeof(double) <=
                    (L::kTile * M1 + 2 * L::kTileFloats + L::kTile) * sizeof(float),
                "the warp sums fit before the weights");
  const int bh = blockIdx.y;
  const int nb = row_blocks(s.Nk, L::kRows);
  const BlockRows blocks = block_rows(nb, paired, false);
  for (int part = 0; part < blocks.count; ++part) {
    const GroupRow<G> gr(blocks[part], bh, s.Nk);
    const bool key_valid = gr.row < s.Nk;
    float cr[M1], vd[kLaneDims], dc_acc[M1] = {}, dv_acc[kLaneDims] = {};
    load_row<M1>(c + gr.at * s.D, s.D, cr);
    load_slice(v + gr.at * s.Dv, s.Dv, gr.first, vd);
    Weights<M1, M2> g = {};
    for_each_tile<L::kTile>(
        first_query(s, gr.row0, L::kTile), s.Nq,
        [&](int i0, int n) {
          const int64_t row0 = int64_t(bh) * s.Nq + i0;
          load_tile<M1>(a_tile, a + row0 * s.D, n, s.D);
          load_tile<L::kWidth>(g_tile, dout + row0 * s.Dv, n, s.Dv);
          load_tile<L::kWidth>(o_tile, out + row0 * s.Dv, n, s.Dv);
          for (int ii = threadIdx.x; ii < n; ii += blockDim.x) lse_tile[ii] = lse[row0 + ii];
        },
        [&](int i0, int n) {
          for (int ii = 0; ii < n; ++ii) {
            float ar[M1], h[M1], z[M2], g1[M1], gd[kLaneDims], od[kLaneDims];
            load_shared_row<M1>(a_tile + ii * M1, ar);
            load8(g_tile + ii * L::kStride + gr.slot, gd);
            load8(o_tile + ii * L::kStride + gr.slot, od);
            const float dp = group_dot_diff<G>(gd, vd, od);  // dout_i . v_j - delta_i
            const float x = logit2<M1, M2>(w, ar, cr, h, z);
            const bool visible = key_valid && (!s.causal || gr.row <= i0 + ii);
            const float pr = visible ? exp2f(x - lse_tile[ii]) : 0.0f;
            neural_score_backward<ScalarOps, M1, M2>(w, h, z, pr * dp, g, g1);
#pragma unroll
            for (int m = 0; m < M1; ++m) dc_acc[m] += g1[m];
#pragma unroll
            for (int e = 0; e < kLaneDims; ++e) dv_acc[e] += pr * gd[e];
          }
        });
    if (key_valid) {
      if (gr.first == 0)
#pragma unroll
        for (int m = 0; m < M1; ++m)
          if (m < s.D) dc[gr.at * s.D + m] = dc_acc[m];
      store_slice(dv + gr.at * s.Dv, s.Dv, gr.first, dv_acc, 1.0f);
    }
    // This row block's weight gradients: every lane of a group holds its row's sums, so the
    // first lane of each group contributes; warps sum in double, then the warps in order (after
    // the tiles and weights: the barrier before the next tile's load keeps them apart).
    constexpr int kW = kWeightFloats<M1, M2>;
    __syncthreads();
    double* warp_sums = dynamic_shared<double>() + (threadIdx.x / 32) * kW;  // [warps][kW]
    const int warps = blockDim.x / 32, lane = threadIdx.x % 32;
    for_each_weight<M1, M2>(g, [&](int e, float x) {
      const double t = warp_sum(gr.first == 0 ? double(x) : 0.0);
      if (lane == 0) warp_sums[e] = t;
    });
    __syncthreads();
    warp_sums = dynamic_shared<double>();
    for (int e = threadIdx.x; e < kW; e += blockDim.x) {
      double total = 0.0;
      for (int wi = 0; wi < warps; ++wi) total += warp_sums[wi * kW + e];
      w_partial[(int64_t(bh) * nb + blocks[part]) * kW + e] = total;
    }
  }
}

template <int G, int M1, int M2>
__global__ void __launch_bounds__(Layout<G>::kThreads, 1)
    neural_attention_backward_dq_kernel(AttentionShape s, const float* __restrict__ a, const float* __restrict__ c,
                                        const float* __restrict__ v, NeuralMlp p, const float* __restrict__ out,
                                        const float* __restrict__ lse, const float* __restrict__ dout,
                                        float* __restrict__ da, bool paired) {
  using L = Layout<G>;
  float* c_tile = dynamic_shared<float>();
  float* v_tile = c_tile + L::kTile * M1;
  const Weights<M1, M2>& w = *stage_weights<M1, M2>(v_tile + L::kTileFloats, p);
  const int bh = blockIdx.y;
  const BlockRows blocks = block_rows(row_blocks(s.Nq, L::kRows), paired, true);
  for (int part = 0; part < blocks.count; ++part) {
    const GroupRow<G> g(blocks[part], bh, s.Nq);
    float ar[M1], gd[kLaneDims], od[kLaneDims], da_acc[M1] = {};
    load_row<M1>(a + g.at * s.D, s.D, ar);
    load_slice(dout + g.at * s.Dv, s.Dv, g.first, gd);
    load_slice(out + g.at * s.Dv, s.Dv, g.first, od);
    const float row_lse = lse[g.at];
    Weights<M1, M2> unused = {};  // the weights' gradients are the dkdv kernel's
    for_each_tile<L::kTile>(
        0, key_end(s, g.row0, L::kRows),
        [&](int j0, int n) { load_key_tile<G, M1>(s, c, v, bh, j0, n, c_tile, v_tile); },
        [&](int j0, int n) {
          for (int jj = 0; jj < n; ++jj) {
            float cr[M1], h[M1], z[M2], g1[M1], vd[kLaneDims];
            load_shared_row<M1>(c_tile + jj * M1, cr);
            load8(v_tile + jj * L::kStride + g.slot, vd);
            const float dp = group_dot_diff<G>(gd, vd, od);  // dout_i . v_j - delta_i
            const float x = logit2<M1, M2>(w, ar, cr, h, z);
            const float pr = s.causal && j0 + jj > g.row ? 0.0f : exp2f(x - row_lse);
            neural_score_backward<ScalarOps, M1, M2>(w, h, z, pr * dp, unused, g1);
#pragma unroll
            for (int m = 0; m < M1; ++m) da_acc[m] += g1[m];
          }
        });
    if (g.row >= s.Nq || g.first != 0) continue;
#pragma unroll
    for (int m = 0; m < M1; ++m)
      if (m < s.D) da[g.at * s.D + m] = da_acc[m];
  }
}

// The weights' gradients: output e (dw2 [d2][d1], db2, dw3, db3, unpadded) sums the blocks'
// partials [B*H*key_blocks][kW] of its padded element in block order.
constexpr int kReduceThreads = 256;

template <int M1, int M2>
__global__ void __launch_bounds__(kReduceThreads)
    neural_attention_weights_kernel(NeuralMlp p, int64_t blocks, const double* __restrict__ partial,
                                    float* __restrict__ dw2, float* __restrict__ db2, float* __restrict__ dw3,
                                    float* __restrict__ db3) {
  __shared__ double scratch[32];
  constexpr int kW = kWeightFloats<M1, M2>;
  const int e = blockIdx.x, nw2 = p.d2 * p.d1;
  int padded;
  float* dst;
  if (e < nw2)
    padded = (e / p.d1) * M1 + e % p.d1, dst = dw2 + e;
  else if (e < nw2 + p.d2)
    padded = M2 * M1 + (e - nw2), dst = db2 + (e - nw2);
  else if (e < nw2 + 2 * p.d2)
    padded = M2 * M1 + M2 + (e - nw2 - p.d2), dst = dw3 + (e - nw2 - p.d2);
  else
    padded = kW - 1, dst = db3;
  double sum = 0.0;
  for (int64_t b = threadIdx.x; b < blocks; b += blockDim.x) sum += partial[b * kW + padded];
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) *dst = float(sum);
}

}  // namespace

void neural_attention_forward(const AttentionShape& s, const float* a, const float* c, const float* v,
                              const NeuralMlp& mlp, float* out, float* lse) {
  with_neural_bucket(mlp.d1, mlp.d2, [&](auto m1, auto m2) {
    constexpr int M1 = decltype(m1)::value, M2 = decltype(m2)::value;
    with_group(group_size("neuralAttention", s.D, s.Dv), [&](auto group) {
      constexpr int G = decltype(group)::value;
      using L = Layout<G>;
      const size_t shmem = (L::kTile * M1 + L::kTileFloats + kWeightFloats<M1, M2>)*sizeof(float);
      const bool paired = causal_pairing(neural_attention_forward_kernel<G, M1, M2>, s, RowSide::query, L::kRows,
                                         L::kTile, L::kThreads, shmem);
      FF_LAUNCH((neural_attention_forward_kernel<G, M1, M2>), block_grid(s.Nq, L::kRows, s.B * s.H, paired),
                dim3(L::kThreads), shmem, s, a, c, v, mlp, out, lse, paired);
    });
  });
}

void neural_attention_backward(const AttentionShape& s, const float* a, const float* c, const float* v,
                               const NeuralMlp& mlp, const float* out, const float* lse, const float* dout, float* da,
                               float* dc, float* dv, float* dw2, float* db2, float* dw3, float* db3) {
  with_neural_bucket(mlp.d1, mlp.d2, [&](auto m1, auto m2) {
    constexpr int M1 = decltype(m1)::value, M2 = decltype(m2)::value;
    constexpr int kW = kWeightFloats<M1, M2>;
    with_group(group_size("neuralAttention", s.D, s.Dv), [&](auto group) {
      constexpr int G = decltype(group)::value;
      using L = Layout<G>;
      const int64_t blocks = int64_t(row_blocks(s.Nk, L::kRows)) * s.B * s.H;  // one partial each
      Scratch w_partial(size_t(blocks) * kW * sizeof(double));
      const size_t tiles = (L::kTile * M1 + 2 * L::kTileFloats + L::kTile + kW) * sizeof(float);
      const size_t sums = size_t(L::kThreads / 32) * kW * sizeof(double);
      const size_t dkdv_shmem = tiles > sums ? tiles : sums;
      const bool dkdv_paired = causal_pairing(neural_attention_backward_dkdv_kernel<G, M1, M2>, s, RowSide::key,
                                              L::kRows, L::kTile, L::kThreads, dkdv_shmem);
      FF_LAUNCH((neural_attention_backward_dkdv_kernel<G, M1, M2>), block_grid(s.Nk, L::kRows, s.B * s.H, dkdv_paired),
                dim3(L::kThreads), dkdv_shmem, s, a, c, v, mlp, out, lse, dout, dc, dv,
                static_cast<double*>(w_partial.ptr), dkdv_paired);
      const size_t dq_shmem = (L::kTile * M1 + L::kTileFloats + kW) * sizeof(float);
      const bool dq_paired = causal_pairing(neural_attention_backward_dq_kernel<G, M1, M2>, s, RowSide::query, L::kRows,
                                            L::kTile, L::kThreads, dq_shmem);
      FF_LAUNCH((neural_attention_backward_dq_kernel<G, M1, M2>), block_grid(s.Nq, L::kRows, s.B * s.H, dq_paired),
                dim3(L::kThreads), dq_shmem, s, a, c, v, mlp, out, lse, dout, da, dq_paired);
      FF_LAUNCH((neural_attention_weights_kernel<M1, M2>), dim3(mlp.params()), dim3(kReduceThreads), 0, mlp, blocks,
                static_cast<const double*>(w_partial.ptr), dw2, db2, dw3, db3);
    });
  });
}

}  // namespace ff::backend
