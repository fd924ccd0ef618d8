// Fourier attention, fused (CPU twin: csrc/cpu/fourier_attention.cpp): the FlashAttention scheme
// for the generalized Fourier integral kernel, and its backward.
//   K_ij = prod_d s(R_hd (q_id - k_jd))^p,  s(x) = sin(x)/x,  S_i = sum_j K_ij  (causal: j <= i)
//   default: out_i = sum_j K_ij v_j / (S_i + eps),                    stats_i = S_i 2^64
//   stable:  the eps = 0 estimate in the log domain (log2 K = p log2|prod_d s_d|, the product
//            kept as a float mantissa and an int exponent, a running row maximum), stats_i = log S_i
// Default mode: k = prod_d s_d is carried as k 2^a and K as K 2^(p a) (fourier_math.h
// scale_root, p a <= 64, a chosen per row block from max |v| over its keys and eps), so a K
// below float's smallest normal (2^-126: every K of a row ~1e-43 at D = 48) keeps float's
// relative accuracy in S_i and sum_j K_ij v_j, and out_i stays in the hull of the values; stats
// keeps S_i 2^64 (normal down to S ~ 2^-190), which the backward unscales in double, so its
// weights K / S' agree with the forward's S. The scale costs nothing per pair (the group's first
// lane starts its product at 2^a instead of 1) and, per row block, one read of its keys' v.
// A lane multiplies its 8 sincs in plain float; where that product is below 2^-60 (each sinc
// can be as small as ~1/|x|: at R |q - k| ~ 1e5 eight of them underflow) the lane takes them
// factor by factor as mantissa and exponent instead (attention_tiles.h lane_product), and the
// backward keeps its prefix and suffix products that way too (pair_grad_scaled): exact for any
// finite x, at the cost of one compare per pair and lane where the product is not that small.
// The Nq x Nk kernel is never stored; every kernel recomputes its tiles.
//
// Layout and launch (attention_tiles.h): a group of G lanes per row (G = 1..32, the smallest with
// 8G >= max(D, Dv), so D, Dv <= 256), 8 features per lane in registers, butterflies over the
// group; 128 threads (128/G rows) per block, 256 (256/G rows) for G >= 16; the other side streams
// through shared-memory tiles of 64 rows (256/G for G >= 8), at most 9 KB each (rows padded
// against bank conflicts: attention_tiles.h). Spreading D over
// lanes keeps every thread at 8 features whatever D is: the sinc per (i, j, d) dominates, not
// shared-memory traffic.
//
// Grids are over row blocks of 128/G (256/G) rows, (Nq / rows, B*H) or (Nk / rows, B*H); a causal
// grid may pair row blocks r and nb - 1 - r in one block to even out their work
// (attention_blocks.h: the work per block, the cost model, when it pairs).
// fourier_attention_forward_kernel<G, stable>: a block per query row block (or pair);
//   streams k, v tiles. Per pair and lane: 8 sincs, a group product, K = k^p (default) or an
//   online maximum of log2 K (stable), 8 FMAs into the output. Causal blocks stop after their
//   last row's key; unpaired, the longest blocks are scheduled first.
// Backward, the FlashAttention-2 split: each kernel owns what it writes (no atomics).
//   fourier_attention_backward_dkdv_kernel<G>: a block per key row block (or pair), a group per
//     key row; streams q, dout, out tiles; dk, dv in registers; dR in registers (float within a
//     tile, double across tiles), summed over the row block's keys into one double partial per
//     row block.
//   fourier_attention_backward_dq_kernel<G>: a block per query row block (or pair), a group per
//     query row; streams k, v tiles; dq in registers.
//   fourier_attention_dR_kernel: a block per element of R sums the partials (over batch, key
//     blocks, and heads or features where R is broadcast) in a fixed order: deterministic.
//   Per pair and lane, both: 8 sinc-and-derivatives, the leave-one-out products of s from
//   in-lane prefix/suffix products and a group butterfly (no division by a vanishing s),
//       dK_ij/dx_d = p k^(p-1) (prod_{d' != d} s_d') s'_d,
//   G_ij = (dout_i . v_j - delta_i) / S'_i (S' = S + eps, or S when stable) taken as
//   dout_i . (v_j - out_i) / S'_i (a group dot; exact where one key dominates, as at large D),
//   every exponent gathered into one exp2 (int and fraction apart) so nothing underflows.
//
// Cost per (i, j) pair for D features: forward D sincs + ~2D + 2Dv flops; backward 2 x (D
// sinc-and-derivatives + ~8D + 4Dv flops), the split recomputing the kernel for dq and for dk/dv.
// Causal halves both. Memory: O(B*H*(Nq + Nk)*(D + Dv)) plus the dR partials, B*H*Nk/rows*D.
#include <cmath>
#include "../common/backend.h"
#include "../common/fourier_math.h"
#include "attention_blocks.h"
#include "row_reduce.h"

namespace ff::backend {
namespace {

using namespace ff::cuda;
using namespace ff::cuda::attention;

constexpr double kLog2e = 1.4426950408889634, kLn2 = 0.6931471805599453;
// Default mode: stats_i = S_i 2^kStatShift (the header).
constexpr int kStatShift = 64;

// R_hd for a lane's features (0 past D, where q = k = 0 anyway), and c R_hd (c = kSincScale):
// the sinc polynomials take y = (c R) (q - k), the general path x = R (q - k), both exact
// functions of the operands, so a pair gets the same s whichever path its tile takes.
__device__ inline void load_radius(const AttentionShape& s, const float* R, int h, int first, float (&r)[kLaneDims],
                                   float (&cr)[kLaneDims]) {
#pragma unroll
  for (int e = 0; e < kLaneDims; ++e) {
    r[e] = first + e < s.D ? R[s.r_row(h) + s.r_col(first + e)] : 0.0f;
    cr[e] = kSincScale * r[e];
  }
}

// The normaliser S'_i of row i: S_i + eps from stats_i = S_i 2^64 (default), or S_i from
// stats_i = log S_i (stable), as log2 |S'_i| = exp + frac (an exact int part, |frac| <= 1/2, so
// the exponents of K / S' lose nothing at large D) and its sign, 0 when S'_i = 0: such a row
// has no weight and contributes nothing.
struct RowNorm {
  int exp;
  float frac, sign;
};

__device__ inline RowNorm row_norm(float stat, float eps, bool stable) {
  if (stable) {
    if (stat == -INFINITY) return {0, 0.0f, 0.0f};
    const double l = double(stat) * kLog2e;  // log2 S, exact but for stat's own rounding
    const double e = rint(l);
    return {int(e), float(l - e), 1.0f};
  }
  // S + eps 2^64 in double (exact for any float eps), its log2 less the shift.
  const double norm = double(stat) + ldexp(double(eps), kStatShift);
  if (norm == 0.0) return {0, 0.0f, 0.0f};
  const double l = log2(fabs(norm)) - kStatShift, e = rint(l);
  return {int(e), float(l - e), norm < 0.0 ? -1.0f : 1.0f};
}

// A query row's running sums in the forward: acc = sum_j K_ij v_j and sum = S_i, both times
// 2^(p a) (default: the product `prod` already carries 2^a), or
// both scaled by 2^-(row max of log2 K) (stable; the max as max_exp + max_frac, exact int part).
template <int G, bool kStable>
struct ForwardRow {
  float acc[kLaneDims] = {};
  float sum = 0.0f;
  int max_exp = 0;
  float max_frac = 0.0f;
  bool seen = false;

  // One key: its lane's sincs `sv` (product `prod`) and values `vd`.
  __device__ inline void add(float prod, const float (&sv)[kLaneDims], const float (&vd)[kLaneDims], bool visible,
                             int power) {
    float w = 0.0f;
    if constexpr (kStable) {
      const Scaled kk = group_product<G>(lane_product(prod, sv));
      if (visible && kk.m != 0.0f) {
        const int le = power * kk.e;
        const float lf = float(power) * log2f(fabsf(kk.m));
        const float above = float(le - max_exp) + (lf - max_frac);  // log2 K - row max
        if (!seen || above > 0.0f) {
          if (seen) {
            const float scale = exp2f(-above);
            sum *= scale;
#pragma unroll
            for (int e = 0; e < kLaneDims; ++e) acc[e] *= scale;
          }
          max_exp = le, max_frac = lf, seen = true;
          w = 1.0f;
        } else {
          w = exp2f(above);
        }
      }
    } else {
      const float kk = group_product<G>(prod);
      w = visible ? ipow(kk, power) : 0.0f;
    }
    sum += w;
#pragma unroll
    for (int e = 0; e < kLaneDims; ++e) acc[e] += w * vd[e];
  }
};

// The pairs of one key tile (n keys from j0). kBounded: the tile passed tile_within_bound, so
// every sinc is the polynomial (no branch, no division); else each feature picks its path.
// `one` starts the lane's product: 2^a on the group's first lane in the default mode, else 1.
template <bool kBounded, int G, bool kStable>
__device__ inline void forward_tile(ForwardRow<G, kStable>& row, const float* k_tile, const float* v_tile, int n,
                                    int j0, int i, bool causal, int slot, const float (&qd)[kLaneDims],
                                    const float (&r)[kLaneDims], const float (&cr)[kLaneDims], int power, float one) {
  using L = Layout<G>;
  for (int jj = 0; jj < n; ++jj) {
    float kd[kLaneDims], vd[kLaneDims];
    load8(k_tile + jj * L::kStride + slot, kd);
    load8(v_tile + jj * L::kStride + slot, vd);
    float sv[kLaneDims], prod = one;
#pragma unroll
    for (int e = 0; e < kLaneDims; ++e) {
      const float diff = qd[e] - kd[e];
      sv[e] = kBounded ? sinc_bounded(cr[e] * diff) : sinc_any(r[e] * diff, cr[e] * diff);
      prod *= sv[e];
    }
    row.add(prod, sv, vd, !causal || j0 + jj <= i, power);
  }
}

// Stages keys [j0, j0 + n) of slice bh: k rows with their column ranges, v rows.
template <int G>
__device__ inline void load_key_tile(const AttentionShape& s, const float* k, const float* v, int bh, int j0, int n,
                                     float* k_tile, float* v_tile, float* range) {
  using L = Layout<G>;
  load_tile_ranged<L::kWidth, L::kThreads>(k_tile, k + (int64_t(bh) * s.Nk + j0) * s.D, n, s.D, range);
  load_tile<L::kWidth>(v_tile, v + (int64_t(bh) * s.Nk + j0) * s.Dv, n, s.Dv);
}

// f(std::true_type) where the warp's every pair with the staged tile is within the sinc
// polynomials' bound (a: the lane's own row), else f(std::false_type): one uniform branch.
template <int G, class F>
__device__ inline void with_tile_bound(const float* range, int slot, const float (&a)[kLaneDims],
                                       const float (&cr)[kLaneDims], F&& f) {
  using L = Layout<G>;
  if (__all_sync(kFullMask, tile_within_bound<L::kWidth, L::kThreads>(range, slot, a, cr)))
    f(std::true_type{});
  else
    f(std::false_type{});
}

template <int G, bool kStable>
__global__ void __launch_bounds__(Layout<G>::kThreads, 1)
    fourier_attention_forward_kernel(AttentionShape s, const float* __restrict__ q, const float* __restrict__ k,
                                     const float* __restrict__ v, const float* __restrict__ R, int power, float eps,
                                     float* __restrict__ out, float* __restrict__ stats, bool paired) {
  using L = Layout<G>;
  float* k_tile = dynamic_shared<float>();
  float* v_tile = k_tile + L::kTileFloats;
  float* range = v_tile + L::kTileFloats;
  __shared__ float scratch[32];
  const int bh = blockIdx.y, h = bh % s.H;
  const BlockRows blocks = block_rows(row_blocks(s.Nq, L::kRows), paired, true);
  float r[kLaneDims], cr[kLaneDims];
  load_radius(s, R, h, int(threadIdx.x) % G * kLaneDims, r, cr);
  for (int part = 0; part < blocks.count; ++part) {
    const GroupRow<G> g(blocks[part], bh, s.Nq);
    const int keys = key_end(s, g.row0, L::kRows);
    // Default mode: the scale 2^a of k (the header), from max |v| over the block's keys.
    int pa = 0;
    float one = 1.0f;
    if constexpr (!kStable) {
      const float* vs = v + int64_t(bh) * s.Nk * s.Dv;
      float vmax = 0.0f;
      for (int64_t x = threadIdx.x; x < int64_t(keys) * s.Dv; x += blockDim.x) vmax = fmaxf(vmax, fabsf(vs[x]));
      const int a = scale_root(power, keys, block_max(vmax, scratch), eps);
      pa = power * a;
      if (int(threadIdx.x) % G == 0) one = ldexpf(1.0f, a);
    }
    float qd[kLaneDims];
    load_slice(q + g.at * s.D, s.D, g.first, qd);
    ForwardRow<G, kStable> row;
    for_each_tile<L::kTile>(
        0, keys, [&](int j0, int n) { load_key_tile<G>(s, k, v, bh, j0, n, k_tile, v_tile, range); },
        [&](int j0, int n) {
          with_tile_bound<G>(range, g.slot, qd, cr, [&](auto bounded) {
            forward_tile<decltype(bounded)::value>(row, k_tile, v_tile, n, j0, g.row, s.causal, g.slot, qd, r, cr,
                                                   power, one);
          });
        });
    if (g.row >= s.Nq) continue;
    // Default: sum and acc carry 2^(p a), eps is scaled to match (exact, below 2^120).
    float norm = row.sum + ldexpf(eps, pa), stat = ldexpf(row.sum, kStatShift - pa);
    if constexpr (kStable) {
      norm = row.sum;
      stat = row.seen ? float((row.max_exp + double(row.max_frac) + log2(double(row.sum))) * kLn2) : -INFINITY;
    }
    // A quotient, not a product with 1 / norm: with eps = 0 the sum may be subnormal (K of ~1e-41
    // from a sinc near its zero), and its reciprocal overflows where acc / norm is ~1.
#pragma unroll
    for (int e = 0; e < kLaneDims; ++e) row.acc[e] = norm != 0.0f ? row.acc[e] / norm : 0.0f;
    store_slice(out + g.at * s.Dv, s.Dv, g.first, row.acc, 1.0f);
    if (g.first == 0) stats[g.at] = stat;
  }
}

// t_d = c prefix_d suffix_d s'_d of fourier_pair_grad where the lane's product of its factors
// is not plain (attention_tiles.h is_plain): c = g p sign k^(p-1) (other lanes' product) / |S'|
// exceeds a float there (~1 / that product) while prefix_d suffix_d underflows, so every factor
// is kept as m 2^e and the exponents meet in one ldexpf. `c_frac` is c's exponent without the ints
// (its fraction and k's mantissa part), `c_exp` its int part, `c_m` its sign and mantissas.
__device__ inline void pair_grad_scaled(const float (&sv)[kLaneDims], const float (&ds)[kLaneDims], float c_m,
                                        int c_exp, float c_frac, float (&t)[kLaneDims]) {
  Scaled suffix[kLaneDims];  // suffix[e] = prod_{e' > e} s_e'
  suffix[kLaneDims - 1] = Scaled{1.0f, 0};
#pragma unroll
  for (int e = kLaneDims - 1; e > 0; --e) {
    int es, ep;
    const float m = suffix[e].m * frexpf(sv[e], &es);
    suffix[e - 1].m = frexpf(m, &ep);
    suffix[e - 1].e = suffix[e].e + es + ep;
  }
  const float c_scale = c_m * exp2f(c_frac);
  Scaled prefix{1.0f, 0};
#pragma unroll
  for (int e = 0; e < kLaneDims; ++e) {
    int ed, es, ep;
    const float dm = frexpf(ds[e], &ed);
    t[e] = ldexpf(c_scale * prefix.m * suffix[e].m * dm, c_exp + prefix.e + suffix[e].e + ed);
    prefix.m = frexpf(prefix.m * frexpf(sv[e], &es), &ep);
    prefix.e += es + ep;
  }
}

// One (i, j) pair of the backward. In: the lanes' q and k features, R and c R, the row's
// normaliser, `g` = sign(S'_i) dout_i . (v_j - out_i), and whether the pair is visible. Out:
// t_d = dL/dx_d for x_d = R_d (q_d - k_d), diff_d = q_d - k_d; returns K_ij / |S'_i|.
// kBounded: the pair's tile passed tile_within_bound (every sinc is the polynomial, and ds holds
// dh = s' / kSincDScale, the factor folded into c). All lanes of the warp call this together.
template <int G, bool kBounded>
__device__ inline float fourier_pair_grad(const float (&qd)[kLaneDims], const float (&kd)[kLaneDims],
                                          const float (&r)[kLaneDims], const float (&cr)[kLaneDims], int power,
                                          RowNorm norm, float g, bool visible, float (&t)[kLaneDims],
                                          float (&diff)[kLaneDims]) {
  float sv[kLaneDims], ds[kLaneDims], sd[kLaneDims];
#pragma unroll
  for (int e = 0; e < kLaneDims; ++e) {
    diff[e] = qd[e] - kd[e];
    if constexpr (kBounded)
      sinc_and_dh_bounded(cr[e] * diff[e], sv[e], ds[e]);
    else
      sinc_and_derivative_any(r[e] * diff[e], cr[e] * diff[e], sv[e], ds[e]);
  }
  // sd[e] = (prod_{e' > e} s_e') ds_e; `suffix` ends as the lane's product of its s.
  float suffix = 1.0f;
#pragma unroll
  for (int e = kLaneDims - 1; e >= 0; --e) {
    sd[e] = suffix * ds[e];
    suffix *= sv[e];
  }
  const Scaled lane = scaled_normal(suffix);
  const bool plain = is_plain(lane);
  // Lanes whose product is not plain take their factors one by one: a warp vote, so that the
  // common case (no such lane) is one uniform branch.
  const bool rare = __builtin_expect(__any_sync(kFullMask, !plain), 0);
  Scaled all, others;
  group_products<G>(rare && !plain ? scaled_product(sv) : lane, all, others);
  // k = all.m 2^all.e. The exponents of K / S' = k^p / S' and of p k^(p-1) (other lanes' s) / S',
  // int parts and fractions apart (the mantissa's log2 is in [-1, 0), -inf for k = 0).
  const float m_log2 = log2f(fabsf(all.m));
  const bool negative = all.m < 0.0f;
  const float w_exp = float(power * all.e - norm.exp) + (float(power) * m_log2 - norm.frac);
  const int c_int = (power - 1) * all.e + others.e - norm.exp;
  const float c_frac = (power == 1 ? 0.0f : float(power - 1) * m_log2) - norm.frac;
  const float w = visible ? ((power & 1) && negative ? -1.0f : 1.0f) * exp2f(w_exp) : 0.0f;
  const float sign = (power & 1) == 0 && negative ? -1.0f : 1.0f;
  // (A masked pair's K need not be below S', so its exponent may be any size: not evaluated.)
  const float c_m = visible ? g * float(power) * sign * others.m * (kBounded ? kSincDScale : 1.0f) : 0.0f;
  if (rare && !plain) {
    pair_grad_scaled(sv, ds, c_m, visible ? c_int : 0, c_frac, t);
    return w;
  }
  // Here 1 / (the lane's product) < 2^60, so c ~ g p (K / S') / (the lane's product) is finite;
  // `cp` runs through c prefix_e.
  float cp = visible ? c_m * exp2f(float(c_int) + c_frac) : 0.0f;
#pragma unroll
  for (int e = 0; e < kLaneDims; ++e) {
    t[e] = cp * sd[e];
    cp *= sv[e];
  }
  return w;
}

// The dk/dv kernel's running sums for its key row.
struct KeyRow {
  float dk[kLaneDims] = {}, dv[kLaneDims] = {}, dR[kLaneDims] = {};
};

// The pairs of one query tile (n queries from i0) with the block's key rows.
template <bool kBounded, int G>
__device__ inline void dkdv_tile(KeyRow& acc, const float* q_tile, const float* g_tile, const float* o_tile,
                                 const RowNorm* norm_tile, int n, int i0, int j, bool key_valid, bool causal, int slot,
                                 const float (&kd)[kLaneDims], const float (&vd)[kLaneDims],
                                 const float (&r)[kLaneDims], const float (&cr)[kLaneDims], int power) {
  using L = Layout<G>;
  for (int ii = 0; ii < n; ++ii) {
    float qd[kLaneDims], gd[kLaneDims], od[kLaneDims], t[kLaneDims], diff[kLaneDims];
    load8(q_tile + ii * L::kStride + slot, qd);
    load8(g_tile + ii * L::kStride + slot, gd);
    load8(o_tile + ii * L::kStride + slot, od);
    const float dot = group_dot_diff<G>(gd, vd, od);
    const RowNorm rn = norm_tile[ii];
    const bool visible = key_valid && (!causal || j <= i0 + ii);
    const float w = rn.sign * fourier_pair_grad<G, kBounded>(qd, kd, r, cr, power, rn, rn.sign * dot, visible, t, diff);
#pragma unroll
    for (int e = 0; e < kLaneDims; ++e) {
      acc.dk[e] += t[e];
      acc.dR[e] += t[e] * diff[e];
      acc.dv[e] += w * gd[e];
    }
  }
}

template <int G>
__global__ void __launch_bounds__(Layout<G>::kThreads, 1)
    fourier_attention_backward_dkdv_kernel(AttentionShape s, const float* __restrict__ q, const float* __restrict__ k,
                                           const float* __restrict__ v, const float* __restrict__ R, int power,
                                           float eps, bool stable, const float* __restrict__ out,
                                           const float* __restrict__ stats, const float* __restrict__ dout,
                                           float* __restrict__ dk, float* __restrict__ dv,
                                           double* __restrict__ dR_partial, bool paired) {
  using L = Layout<G>;
  float* q_tile = dynamic_shared<float>();
  float* g_tile = q_tile + L::kTileFloats;  // dout rows
  float* o_tile = g_tile + L::kTileFloats;  // out rows
  float* range = o_tile + L::kTileFloats;
  RowNorm* norm_tile = reinterpret_cast<RowNorm*>(range + L::kRangeFloats);
  const int bh = blockIdx.y, h = bh % s.H;
  const int nb = row_blocks(s.Nk, L::kRows);
  const BlockRows blocks = block_rows(nb, paired, false);
  float r[kLaneDims], cr[kLaneDims];
  load_radius(s, R, h, int(threadIdx.x) % G * kLaneDims, r, cr);
  for (int part = 0; part < blocks.count; ++part) {
    const GroupRow<G> g(blocks[part], bh, s.Nk);
    const bool key_valid = g.row < s.Nk;
    float kd[kLaneDims], vd[kLaneDims];
    load_slice(k + g.at * s.D, s.D, g.first, kd);
    load_slice(v + g.at * s.Dv, s.Dv, g.first, vd);
    KeyRow acc;
    double dR_acc[kLaneDims] = {};
    for_each_tile<L::kTile>(
        first_query(s, g.row0, L::kTile), s.Nq,
        [&](int i0, int n) {
          const int64_t row0 = int64_t(bh) * s.Nq + i0;
          load_tile_ranged<L::kWidth, L::kThreads>(q_tile, q + row0 * s.D, n, s.D, range);
          load_tile<L::kWidth>(g_tile, dout + row0 * s.Dv, n, s.Dv);
          load_tile<L::kWidth>(o_tile, out + row0 * s.Dv, n, s.Dv);
          for (int ii = threadIdx.x; ii < n; ii += blockDim.x) norm_tile[ii] = row_norm(stats[row0 + ii], eps, stable);
        },
        [&](int i0, int n) {
          with_tile_bound<G>(range, g.slot, kd, cr, [&](auto bounded) {
            dkdv_tile<decltype(bounded)::value, G>(acc, q_tile, g_tile, o_tile, norm_tile, n, i0, g.row, key_valid,
                                                   s.causal, g.slot, kd, vd, r, cr, power);
          });
      // dR: float within a tile, double across tiles.
#pragma unroll
          for (int e = 0; e < kLaneDims; ++e) dR_acc[e] += acc.dR[e], acc.dR[e] = 0.0f;
        });
    if (key_valid) {
#pragma unroll
      for (int e = 0; e < kLaneDims; ++e) acc.dk[e] *= -r[e];
      store_slice(dk + g.at * s.D, s.D, g.first, acc.dk, 1.0f);
      store_slice(dv + g.at * s.Dv, s.Dv, g.first, acc.dv, 1.0f);
    }
    // This row block's dR, summed in a fixed order: over a warp's rows by a butterfly (the lanes
    // holding the same features are G apart; log2(32 / G) double shuffles per feature), then over
    // the warps in order from one row of kWidth doubles per warp in shared memory (over the
    // tiles: the barrier before the next tile's load keeps them apart). Banks: every lane storing
    // its 8 doubles at 8 lane + e (64-byte stride) would be 8-way conflicted, and the reader
    // would add kRows rows per feature; here only a warp's first G lanes store (up to 8-way, 8
    // stores once per row block) and the reader adds kThreads / 32 rows, consecutive doubles.
#pragma unroll
    for (int e = 0; e < kLaneDims; ++e)
      for (int o = G; o < 32; o <<= 1) dR_acc[e] += __shfl_xor_sync(kFullMask, dR_acc[e], o);
    constexpr int kWarps = L::kThreads / 32;
    double* warp_rows = dynamic_shared<double>();  // [kWarps][kWidth]
    __syncthreads();
    if (int(threadIdx.x) % 32 < G) {
#pragma unroll
      for (int e = 0; e < kLaneDims; ++e) warp_rows[(threadIdx.x / 32) * L::kWidth + g.first + e] = dR_acc[e];
    }
    __syncthreads();
    for (int d = threadIdx.x; d < s.D; d += blockDim.x) {
      double total = 0.0;
      for (int w = 0; w < kWarps; ++w) total += warp_rows[w * L::kWidth + d];
      dR_partial[(int64_t(bh) * nb + blocks[part]) * s.D + d] = total;
    }
  }
}

// The pairs of one key tile (n keys from j0) with the block's query rows, into dq's sums.
template <bool kBounded, int G>
__device__ inline void dq_tile(float (&acc)[kLaneDims], const float* k_tile, const float* v_tile, int n, int j0, int i,
                               bool causal, int slot, RowNorm rn, const float (&qd)[kLaneDims],
                               const float (&gd)[kLaneDims], const float (&od)[kLaneDims], const float (&r)[kLaneDims],
                               const float (&cr)[kLaneDims], int power) {
  using L = Layout<G>;
  for (int jj = 0; jj < n; ++jj) {
    float kd[kLaneDims], vd[kLaneDims], t[kLaneDims], diff[kLaneDims];
    load8(k_tile + jj * L::kStride + slot, kd);
    load8(v_tile + jj * L::kStride + slot, vd);
    const float dot = group_dot_diff<G>(gd, vd, od);
    const bool visible = !causal || j0 + jj <= i;
    fourier_pair_grad<G, kBounded>(qd, kd, r, cr, power, rn, dot, visible, t, diff);
#pragma unroll
    for (int e = 0; e < kLaneDims; ++e) acc[e] += t[e];
  }
}

template <int G>
__global__ void __launch_bounds__(Layout<G>::kThreads, 1)
    fourier_attention_backward_dq_kernel(AttentionShape s, const float* __restrict__ q, const float* __restrict__ k,
                                         const float* __restrict__ v, const float* __restrict__ R, int power, float eps,
                                         bool stable, const float* __restrict__ out, const float* __restrict__ stats,
                                         const float* __restrict__ dout, float* __restrict__ dq, bool paired) {
  using L = Layout<G>;
  float* k_tile = dynamic_shared<float>();
  float* v_tile = k_tile + L::kTileFloats;
  float* range = v_tile + L::kTileFloats;
  const int bh = blockIdx.y, h = bh % s.H;
  const BlockRows blocks = block_rows(row_blocks(s.Nq, L::kRows), paired, true);
  float r[kLaneDims], cr[kLaneDims];
  load_radius(s, R, h, int(threadIdx.x) % G * kLaneDims, r, cr);
  for (int part = 0; part < blocks.count; ++part) {
    const GroupRow<G> g(blocks[part], bh, s.Nq);
    float qd[kLaneDims], gd[kLaneDims], od[kLaneDims], acc[kLaneDims] = {};
    load_slice(q + g.at * s.D, s.D, g.first, qd);
    load_slice(dout + g.at * s.Dv, s.Dv, g.first, gd);
    load_slice(out + g.at * s.Dv, s.Dv, g.first, od);
    RowNorm rn = row_norm(stats[g.at], eps, stable);
    if (g.row >= s.Nq) rn.sign = 0.0f;
#pragma unroll
    for (int e = 0; e < kLaneDims; ++e) gd[e] *= rn.sign;
    for_each_tile<L::kTile>(
        0, key_end(s, g.row0, L::kRows),
        [&](int j0, int n) { load_key_tile<G>(s, k, v, bh, j0, n, k_tile, v_tile, range); },
        [&](int j0, int n) {
          with_tile_bound<G>(range, g.slot, qd, cr, [&](auto bounded) {
            dq_tile<decltype(bounded)::value, G>(acc, k_tile, v_tile, n, j0, g.row, s.causal, g.slot, rn, qd, gd, od, r,
                                                 cr, power);
          });
        });
    if (g.row >= s.Nq) continue;
#pragma unroll
    for (int e = 0; e < kLaneDims; ++e) acc[e] *= r[e];
    store_slice(dq + g.at * s.D, s.D, g.first, acc, 1.0f);
  }
}

// dR[row, col]: the partials [B*H][key_blocks][D] summed over batch and key blocks, and over
// heads (rH = 1) or features (rD = 1) where R is broadcast, in a fixed order.
constexpr int kReduceThreads = 256;

__global__ void __launch_bounds__(kReduceThreads)
    fourier_attention_dR_kernel(AttentionShape s, int key_blocks, const double* __restrict__ partial,
                                float* __restrict__ dR) {
  __shared__ double scratch[32];
  const int row = blockIdx.x / s.rD, col = blockIdx.x % s.rD;
  const int heads = s.rH == 1 ? s.H : 1, feats = s.rD == 1 ? s.D : 1;
  const int64_t terms = int64_t(s.B) * heads * key_blocks * feats;
  double sum = 0.0;
  for (int64_t term = threadIdx.x; term < terms; term += blockDim.x) {
    int64_t rest = term;
    const int f = int(rest % feats);
    rest /= feats;
    const int kb = int(rest % key_blocks);
    rest /= key_blocks;
    const int hh = int(rest % heads);
    const int64_t b = rest / heads;
    const int h = s.rH == 1 ? hh : row, d = s.rD == 1 ? f : col;
    sum += partial[((b * s.H + h) * key_blocks + kb) * s.D + d];
  }
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) dR[blockIdx.x] = float(sum);
}

}  // namespace

void fourier_attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* R,
                               int power, float eps, bool stable, float* out, float* stats) {
  if (stable && power % 2 != 0) throw Error("power: stable fourierAttention needs an even power");
  with_group(group_size("fourierAttention", s.D, s.Dv), [&](auto group) {
    constexpr int G = decltype(group)::value;
    using L = Layout<G>;
    const size_t shmem = (2 * L::kTileFloats + L::kRangeFloats) * sizeof(float);
    auto launch = [&](const char* name, auto kernel) {
      const bool paired = causal_pairing(kernel, s, RowSide::query, L::kRows, L::kTile, L::kThreads, shmem);
      launch_named(name, kernel, block_grid(s.Nq, L::kRows, s.B * s.H, paired), dim3(L::kThreads), shmem, s, q, k, v, R,
                   power, eps, out, stats, paired);
    };
    if (stable)
      launch("fourier_attention_forward_kernel<stable>", fourier_attention_forward_kernel<G, true>);
    else
      launch("fourier_attention_forward_kernel", fourier_attention_forward_kernel<G, false>);
  });
}

void fourier_attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* R,
                                int power, float eps, bool stable, const float* out, const float* stats,
                                const float* dout, float* dq, float* dk, float* dv, float* dR) {
  if (stable && power % 2 != 0) throw Error("power: stable fourierAttention needs an even power");
  with_group(group_size("fourierAttention", s.D, s.Dv), [&](auto group) {
    constexpr int G = decltype(group)::value;
    using L = Layout<G>;
    const int key_blocks = row_blocks(s.Nk, L::kRows);
    Scratch dR_partial(size_t(s.B) * s.H * key_blocks * s.D * sizeof(double));
    const size_t tiles = (3 * L::kTileFloats + L::kRangeFloats) * sizeof(float) + L::kTile * sizeof(RowNorm);
    const size_t warp_rows = size_t(L::kThreads / 32) * L::kWidth * sizeof(double);
    const size_t dkdv_shmem = tiles > warp_rows ? tiles : warp_rows;
    const bool dkdv_paired = causal_pairing(fourier_attention_backward_dkdv_kernel<G>, s, RowSide::key, L::kRows,
                                            L::kTile, L::kThreads, dkdv_shmem);
    FF_LAUNCH(fourier_attention_backward_dkdv_kernel<G>, block_grid(s.Nk, L::kRows, s.B * s.H, dkdv_paired),
              dim3(L::kThreads), dkdv_shmem, s, q, k, v, R, power, eps, stable, out, stats, dout, dk, dv,
              static_cast<double*>(dR_partial.ptr), dkdv_paired);
    const size_t dq_shmem = (2 * L::kTileFloats + L::kRangeFloats) * sizeof(float);
    const bool dq_paired = causal_pairing(fourier_attention_backward_dq_kernel<G>, s, RowSide::query, L::kRows,
                                          L::kTile, L::kThreads, dq_shmem);
    FF_LAUNCH(fourier_attention_backward_dq_kernel<G>, block_grid(s.Nq, L::kRows, s.B * s.H, dq_paired),
              dim3(L::kThreads), dq_shmem, s, q, k, v, R, power, eps, stable, out, stats, dout, dq, dq_paired);
    FF_LAUNCH(fourier_attention_dR_kernel, dim3(s.r_elems()), dim3(kReduceThreads), 0, s, key_blocks,
              static_cast<const double*>(dR_partial.ptr), dR);
  });
}

}  // namespace ff::backend
