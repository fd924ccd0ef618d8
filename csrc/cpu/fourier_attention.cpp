// cpu backend: fused Fourier attention, forward and backward (contract in common/backend.h).
//
//   x_ijd = R_hd (q_id - k_jd),  K_ij = prod_d s(x_ijd)^p,  S_i = sum_j K_ij (causal: j <= i)
//   out_i = sum_j K_ij v_j / (S_i + eps)           (stable: / S_i, in a scaled log domain)
//
// Layout. Work units are (b, h) slices x row chunks (threads.h). A unit lays its keys out as
// b = c R k transposed to [D][keys], so one SIMD vector holds W keys (8 AVX2, 16 AVX-512, 1
// portable; simd.h) and every operation below handles W pairs (i, j) at once; a_i = c R q_i is
// broadcast per d, and y = a - b = c x is what sinc_simd.h evaluates s on (c its scale). The unit visits its keys tile
// by tile (~16 KiB of b, FlashAttention's outer loop), every row of the unit per tile, so long sequences stay in cache;
// per-row state (S, the output accumulator, dq) persists across tiles. Nothing of size Nq x Nk is stored: one tile-row
// of K (forward), P = K/(S+eps) for a block of 8 rows (backward). s(x) comes from
// sinc_simd.h: the bounded path (polynomials in y^2, |x| <= 4.25) wherever the row's and a
// block of 64 keys' coordinate ranges guarantee the bound, else the general path (range
// reduction by pi, then the same polynomials: ~2.9x the operations), feature by feature
// (Keys::for_blocks_split: a block's features within the bound stay on the bounded path).
//
// Cost model. Per (i, j, d) the forward's sinc products take 3 add/sub + 4 FMA + 3 mul (10
// operations; 7 of them on the multiply/FMA pipes), the backward's 6 add/sub + 8 FMA + 7 mul (21;
// 15 on those pipes); per (i, j) the products with V add Dv FMAs forward and 2 Dv backward.
// Where every vector operation shares the two FMA pipes (Intel; AVX-512 on Sapphire Rapids)
// that bounds a row's W keys per d at 5.5 cycles forward and 11.5 backward, V included.
// Measured there with one thread (3.13 GHz, AVX-512, q and k in (-0.8, 0.8), R in (1.5, 2.5);
// docs/fourier-speed.md has the table, at b487c6a), cycles per (row, 16 keys, d): forward 7.4 /
// 6.2 / 6.6 / 6.3 and backward 17.4 / 17.7 / 20.2 / 15.6 at the small LM (B8 H8 N256 D16 causal),
// medium LM (B4 H8 N384 D32 causal), DeiT-tiny (B8 H3 N197 D64) and N 4096 (D16 causal): the
// forward within 1.1-1.35x of its bound, the backward within 1.35-1.75x, most at short
// sequences, where per-row and per-tile work (the key layouts, bound checks, coefficients, dp
// and dv, the dk/dR finish in double) weighs more. What keeps the loops off the bound:
//   - dependency chains: one sinc evaluation is a ~24-cycle chain (Horner, sinc_simd.h); the N
//     key vectors run in lockstep (kFwdGroup x 2 halves of d, kBwdGroup) and the next features'
//     evaluations are the breadth that hides it, not all of it (pass A on L1-resident data
//     takes 12 cycles against its 8.5);
//   - memory: pass A stores s_d and pre_d s'_d, pass B loads them back and loads and stores
//     Tk_jd, per (i, j, d); interleaving pass B with the next group's pass A did not make the
//     kernel faster (docs/fourier-speed.md), so this is not what binds it;
//   - loads: b and, on AVX2 (16 registers), the polynomials' constants come as memory operands;
//   - inside the kernel, the row stride ld is a runtime value and pass B's coef waits on k.
// Each evaluation is kept division-free on purpose: a division per (i, j, d) would cost more
// than the whole polynomial.
//
// Forward, per row i and pairs of key vectors (both halves of d in lockstep: 4 chains; groups of
//   4 vectors, 8 chains, hold more values than AVX2 has registers):
//   k = prod_{d < D/2} s * prod_{d >= D/2} s, K = k^(p-1) k, S += K; out = (K . V)/(S + eps).
//   Cost per (i,j,d): 3 add/sub + 4 FMA + 3 mul (10 operations); per (i,j): Dv FMA,
//   as one product of 6 rows' K with the tile's V (attention_tiles.h gemm_rows: each V vector
//   loaded feeds 6 FMAs, 12 accumulator chains; one row at a time, loads and broadcasts
//   would outnumber the FMAs, and 4 rows give only 8 chains).
// Forward, stable: k as mantissa * 2^exponent (renormalised after every factor, so no product
//   of sincs can underflow for any D), K = k^p likewise; a second pass
//   over the row scales every K by 2^-(row maximum exponent), exactly, before the GEMV (log K =
//   p sum_d log|s_d| in base 2, as FlashAttention's row maximum). stats = log S (-inf and
//   out = 0 when S = 0). Cost: the default's plus ~8 integer/logic ops per (i,j,d), one key
//   vector at a time.
// Backward, per row i and groups of 4 key vectors (K recomputed; delta_i = dout_i . out_i):
//   pass A (d up): s_d, s'_d, prefix products; keep s_d and pre_d s'_d.
//   dp_j = dout_i . v_j (for the block of 8 rows and the tile's keys at once, gemm_rows);
//   G = (dp - delta_i)/(S_i + eps);  P_ij = K/(S_i + eps) kept for 8 rows,
//     then dv_j += sum_i P_ij dout_i for them at once (register accumulators).
//   pass B (d down): suffix products seeded with coef = G p k^(p-1) kSincDScale give t_d =
//     dL/dx_ijd = coef pre_d suf_d dh_d (s'_d = kSincDScale dh_d): division-free, so s_d = 0 is fine.
//   Tq_id += t_d (per row, across keys), Tk_jd += t_d (per unit, across rows). At the end
//   dq = R Tq, dk = -R Tk, and dR_d = sum_ij t (q_id - k_jd) = sum_i q_id Tq_id - sum_j k_jd Tk_jd
//   in double. With row chunks, Tk and dv are unit partials reduced in unit order.
//   Cost per (i,j,d): pass A 4 add/sub + 8 FMA + 5 mul, pass B 2 mul + 2 add (21 operations);
//   per (i,j): 2 Dv FMA. (The forward multiplies the halves of d separately, the backward in one
//   chain: K differs between them by float rounding only.)
// Backward, stable: one key vector at a time, with mantissa/exponent pairs for the prefix and
//   suffix products, t_d = (pre s' suf) 2^(e_pre + e_suf); K/S_i from stats = log S. delta_i
//   is sum_j P_ij dp_ij / sum_j P_ij from a pass over the row's keys before (stable_deltas:
//   exact where one key dominates a row); it costs the stable forward's kernel products once more.
// Range, default mode. The kernels run with subnormals flushed to zero (threads.h: at D = 32 and
//   64, where the default mode's weights and terms go subnormal routinely, gradual underflow
//   makes its fwd+bwd 2.4x and 4x slower). K itself is carried as K 2^(p a) (scale_root, p a <= 64:
//   exact, so the bits are those of the plain products wherever nothing underflows), so what
//   flushes is only a weight P_ij = K_ij / (S_i + eps), a term dL/dx_ijd, or an output or
//   gradient element below 2^-126 ~ 1.2e-38: outputs and gradients keep float's relative
//   accuracy while the largest element of the tensor is above ~1e-34, and a tensor whose every
//   term is below 2^-126 is 0 (docs/api.md says so). Stable mode does not flush
//   (IEEE gradual underflow: a tiny dp - delta scaled back up by R, p or 1 / S stays exact).
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <numbers>
#include <string>
#include <type_traits>
#include <vector>
#include "../common/backend.h"
#include "../common/error.h"
#include "../common/fourier_math.h"
#include "simd.h"
#include "sinc_simd.h"
#include "threads.h"
#include "attention_tiles.h"
#include "scratch.h"

namespace ff::backend {
namespace {

using cpu::kSincBound;
using cpu::kSincScale;
constexpr int kKeyBlock = 64;     // keys per |x| bound check (a multiple of 4 W for every W)
constexpr int kRowBlock = 8;      // backward: rows whose P rows are kept for one dv update
constexpr int kFwdGroup = 2;      // key vectors computed in lockstep: forward
constexpr int kBwdGroup = 4;      // and backward
constexpr int kFwdRows = 6;       // forward: rows whose K rows feed one product with V
constexpr float kNoMax = -1e30f;  // stable: "-infinity" for exponents (differences stay finite)

// Default mode: k is carried as k 2^a (the forward's products start at 2^a, the backward scales
// pass A's k), so k^(p-1) and K carry exact factors 2^((p-1) a) and 2^(p a) (p a <= 64), undone
// where they meet 1 / (S + eps). A K below float's smallest normal (2^-126: D = 64 at R = 2
// gives K ~ 1e-40, outputs ~ 1e-34) then still reaches the output with float's relative
// accuracy; what is subnormal is only a result below 2^-126 (the header's "Range"). Powers of two scale exactly, so
// wherever nothing underflows the bits are those of the unscaled computation. The forward lowers a where |v| or eps are
// so large that S + eps or the products with V could overflow (n max|v| 2^(p a) and eps 2^(p a) stay below 2^120):
// common/fourier_math.h scale_root, shared with the cuda kernel.

// A block's features in the order its loops take them (Keys::for_blocks_split): the first
// `bounded` within the polynomial's bound, then the others; order is empty (identity) until a
// block needs it.
struct DimSplit {
  int bounded;
  std::vector<int> order;
};

// The feature at position t of a loop: d = t, or order[t].
struct InOrder {
  int operator()(int t) const { return t; }
};
struct Reordered {
  const int* order;
  int operator()(int t) const { return order[t]; }
};

// f(order) with the order a block's loops take its features in: InOrder where they all take one
// path, else sp.order.
template <class F>
[[gnu::always_inline]] inline void with_order(int D, const DimSplit& sp, const F& f) {
  if (sp.bounded == D || sp.bounded == 0) {
    f(InOrder{});
  } else {
    f(Reordered{sp.order.data()});
  }
}

// range(bounded, order, t0, t1) over a block's features, bounded a std::bool_constant: once over
// [0, D) where they all take one path, else the bounded ones [0, sp.bounded) then the others.
template <class Range>
[[gnu::always_inline]] inline void for_feature_ranges(int D, const DimSplit& sp, const Range& range) {
  if (sp.bounded == D) return range(std::true_type{}, InOrder{}, 0, D);
  if (sp.bounded == 0) return range(std::false_type{}, InOrder{}, 0, D);
  const Reordered ord{sp.order.data()};
  range(std::true_type{}, ord, 0, sp.bounded);
  range(std::false_type{}, ord, sp.bounded, D);
}

// One unit's keys: b = R k as [D][keys] and (backward) v as [Dv][keys] in tiles of T keys
// (attention_tiles.h; b's padding repeats the last key, so it stays inside its block's bounds,
// v's is 0), or (forward) v as rows of ldv = Dv rounded up to W (copied only when Dv is not a
// multiple of W); and per block of kKeyBlock keys
// the range [lo, hi] of b_jd per d. b_tile(j) + j' + d lb.ld addresses b_j'd for every key j' of
// key j's tile (a row walking its keys adds j' instead of dividing by T for each).
struct Keys {
  int D, Dv, n, T, ldv;
  cpu::TiledLayout lb, lv;
  std::vector<float> r, rc;  // r = R_h, rc = c R_h (sinc_simd.h scaling)
  cpu::Floats bT, vT, vR;
  const float* vrows = nullptr;  // forward: v as rows of ldv (the input itself when Dv = ldv)
  std::vector<float> lo, hi;

  template <class V>
  Keys(std::type_identity<V>, const AttentionShape& sh, int bh, int n_, bool transposed_v, const float* k,
       const float* v, const float* R)
      : D(sh.D),
        Dv(sh.Dv),
        n(n_),
        T(cpu::key_tile(sh.D, sh.Dv)),
        ldv((sh.Dv + V::W - 1) / V::W * V::W),
        lb(D, T, n_),
        lv(Dv, T, n_),
        r(D),
        rc(D),
        bT(lb.size()) {
    const int h = bh % sh.H;
    for (int d = 0; d < D; ++d) r[d] = R[sh.r_row(h) + sh.r_col(d)], rc[d] = kSincScale * r[d];
    const float* ks = k + int64_t(bh) * sh.Nk * D;
    const float* vs = v + int64_t(bh) * sh.Nk * Dv;
    cpu::transpose_into<V, true>(lb, bT.data(), ks, n, lb.tiles * T, rc.data());
    if (transposed_v) {
      vT.assign(lv.size(), 0.0f);
      cpu::transpose_into<V, false>(lv, vT.data(), vs, n, n, nullptr);
    } else if (ldv == Dv) {
      vrows = vs;  // rows already padded to whole vectors: read in place
    } else {
      cpu::assign_padded_rows(vR, vs, n, Dv, ldv);
      vrows = vR.data();
    }
    const int blocks = (n + kKeyBlock - 1) / kKeyBlock;
    lo.resize(size_t(blocks) * D);
    hi.resize(size_t(blocks) * D);
    // per block and d, a scan of one contiguous row segment (a block never straddles a tile:
    // T is a multiple of kKeyBlock), W keys at a time: whole vectors up to the block's end read
    // only its keys or the padding, which repeats the last key (one key at a time, the scan
    // would be a chain of dependent min/max).
    for (int blk = 0; blk < blocks; ++blk) {
      const int j0 = blk * kKeyBlock, len = std::min(n - j0, kKeyBlock);
      for (int d = 0; d < D; ++d) {
        const float* row = bT.data() + lb.at(d, j0);
        typename V::T l = V::load(row), h = l;
        for (int j = V::W; j < len; j += V::W) {
          const typename V::T x = V::load(row + j);
          l = V::min(l, x), h = V::max(h, x);
        }
        float ls[V::W], hs[V::W];
        V::store(ls, l), V::store(hs, h);
        float lmin = ls[0], hmax = hs[0];
        for (int w = 1; w < V::W; ++w) lmin = std::min(lmin, ls[w]), hmax = std::max(hmax, hs[w]);
        lo[size_t(blk) * D + d] = lmin, hi[size_t(blk) * D + d] = hmax;
      }
    }
  }

  const float* b_tile(int j) const { return bT.data() + lb.tile_origin(j); }
  const float* v_at(int j) const { return vT.data() + lv.at(0, j); }

  // Whether |a_d - b_jd| <= the polynomial bound for every key j of a block whose b_jd lie in
  // [l_d, h_d] (false for NaN).
  static bool in_bound(float a, float l, float h) { return (a - l <= kSincBound) & (h - a <= kSincBound); }

  // in_bound for every d of the block, W features at a time.
  template <class V>
  bool bounded(const float* a, int block) const {
    const float* l = lo.data() + size_t(block) * D;
    const float* h = hi.data() + size_t(block) * D;
    const typename V::T bound = V::set(kSincBound);
    int d = 0;
    for (; d + V::W <= D; d += V::W) {
      const typename V::T ad = V::load(a + d);
      if (!V::all(V::le(V::sub(ad, V::load(l + d)), bound)) || !V::all(V::le(V::sub(V::load(h + d), ad), bound)))
        return false;
    }
    for (; d < D; ++d)
      if (!in_bound(a[d], l[d], h[d])) return false;
    return true;
  }

  // body(jb, jlim, split) for the blocks of keys in [jbeg, jend) (jbeg a multiple of kKeyBlock):
  // split.bounded = D where the whole block is within the polynomial's bound (a vector check),
  // else the features within it for every key of the block, split.order[0, bounded), followed by
  // the others, split.order[bounded, D), each ascending. The loops (both modes) take the bounded
  // path for the first and the general path (~2.9x the operations) for the others only: with
  // q and k of a freshly initialised model, R = 2, 97% of (row, block) pairs hold some feature
  // out of bound, but only 27% of their features are.
  template <class V, class Body>
  void for_blocks_split(const float* a, int jbeg, int jend, const Body& body) const {
    DimSplit split{D, {}};
    for (int jb = jbeg; jb < jend; jb += kKeyBlock) {
      const int jlim = std::min(jb + kKeyBlock, jend), blk = jb / kKeyBlock;
      if (bounded<V>(a, blk)) {
        split.bounded = D;
      } else {
        if (split.order.empty()) split.order.resize(2 * size_t(D));
        const float* l = lo.data() + size_t(blk) * D;
        const float* h = hi.data() + size_t(blk) * D;
        // without branches (whether a feature is in bound varies at random from row to row): each
        // d written to both lists, kept where its list's count advances; the second list (in
        // order's upper half) then moved behind the first
        int* others = split.order.data() + D;
        int in = 0, out = 0;
        for (int d = 0; d < D; ++d) {
          const bool ok = in_bound(a[d], l[d], h[d]);
          split.order[in] = d, others[out] = d;
          in += ok, out += !ok;
        }
        std::copy(others, others + out, split.order.data() + in);
        split.bounded = in;
      }
      body(jb, jlim, split);
    }
  }
};

// m * 2^e with |m| in [1, 2) (or m = 0), e an integer-valued float vector.
template <class V>
void renormalize(typename V::T& m, typename V::T& e) {
  e = V::add(e, V::exponent(m));
  m = V::mantissa(m);
}

// (m 2^e)^p as a renormalised pair, by squaring.
template <class V>
void pow_scaled(typename V::T& m, typename V::T& e, int p) {
  typename V::T rm = V::set(1.0f), re = V::zero();
  while (p > 0) {
    if (p & 1) {
      rm = V::mul(rm, m), re = V::add(re, e);
      renormalize<V>(rm, re);
    }
    p >>= 1;
    if (p) {
      m = V::mul(m, m), e = V::add(e, e);
      renormalize<V>(m, e);
    }
  }
  m = rm, e = re;
}

// K = k^(p-1) * k, and k^(p-1) (the backward needs both; the forward uses the same order).
// p = 4 (the paper's) without ipow's loop over the bits of p: K = (k^2)^2, k^3 = k^2 k.
template <class V>
typename V::T kernel_power(typename V::T k, int p, typename V::T& kp1) {
  if (p == 4) {
    const typename V::T k2 = V::mul(k, k);
    kp1 = V::mul(k2, k);
    return V::mul(k2, k2);
  }
  kp1 = cpu::ipow<V>(k, p - 1);
  return V::mul(kp1, k);
}

// The same for k = m 2^e: K = Km 2^Ke and k^(p-1) = pm 2^pe, renormalised.
template <class V>
void kernel_power_scaled(typename V::T m, typename V::T e, int p, typename V::T& Km, typename V::T& Ke,
                         typename V::T& pm, typename V::T& pe) {
  pm = m, pe = e;
  pow_scaled<V>(pm, pe, p - 1);
  Km = V::mul(pm, m), Ke = V::add(pe, e);
  renormalize<V>(Km, Ke);
}

// x_d = a_d - b_jd for the W keys at b + n W, n < N.
template <class V, int N>
void differences(const float* a, const float* b, int ld, int d, typename V::T* x) {
  const typename V::T ad = V::bcast(a + d);
  for (int n = 0; n < N; ++n) x[n] = V::sub(ad, V::load(b + size_t(d) * ld + n * V::W));
}

// lo *= prod s over the first half of the positions [t0, t1), hi *= prod s over the second half
// (and the odd last one), feature d = ord(t) at position t.
template <class V, bool Bounded, int N, class Order>
void sinc_product_range(const float* a, const float* b, int ld, const Order& ord, int t0, int t1, typename V::T* lo,
                        typename V::T* hi) {
  using T = typename V::T;
  T x[2 * N], s[2 * N];
  const int mid = (t1 - t0) / 2;
  for (int i = 0; i < mid; ++i) {
    differences<V, N>(a, b, ld, ord(t0 + i), x);
    differences<V, N>(a, b, ld, ord(t0 + mid + i), x + N);
    cpu::sinc<V, Bounded, 2 * N>(x, s);
    for (int n = 0; n < N; ++n) lo[n] = V::mul(lo[n], s[n]), hi[n] = V::mul(hi[n], s[N + n]);
  }
  if ((t1 - t0) % 2) {
    differences<V, N>(a, b, ld, ord(t1 - 1), x);
    cpu::sinc<V, Bounded, N>(x, s);
    for (int n = 0; n < N; ++n) hi[n] = V::mul(hi[n], s[n]);
  }
}

// k = one * prod_{t < D/2} s(a_d - b_jd) * prod_{t >= D/2} s(...) (d the feature at position t of
// the block's order, for_feature_ranges: within each path's range, its halves) for N key vectors
// at b (= bT + j0), both halves and all N in lockstep (2N independent chains).
template <class V, int N>
void sinc_products(const float* a, const float* b, int ld, int D, const DimSplit& sp, typename V::T one,
                   typename V::T* k) {
  typename V::T lo[N], hi[N];
  for (int n = 0; n < N; ++n) lo[n] = one, hi[n] = V::set(1.0f);
  for_feature_ranges(D, sp, [&](auto bounded, const auto& ord, int t0, int t1) {
    sinc_product_range<V, decltype(bounded)::value, N>(a, b, ld, ord, t0, t1, lo, hi);
  });
  for (int n = 0; n < N; ++n) k[n] = V::mul(lo[n], hi[n]);
}

// The same product as mantissa m and exponent e (stable mode), renormalised after every
// factor (|m| in [1, 2) times any normal |s| <= 1 stays normal), in the backward's order.
template <class V, bool Bounded, class Order>
void sinc_product_scaled_range(const float* a, const float* b, int ld, const Order& ord, int t0, int t1,
                               typename V::T& m, typename V::T& e) {
  for (int t = t0; t < t1; ++t) {
    typename V::T x, s;
    differences<V, 1>(a, b, ld, ord(t), &x);
    cpu::sinc<V, Bounded, 1>(&x, &s);
    m = V::mul(m, s);
    renormalize<V>(m, e);
  }
}

// The whole product, in the block's order (for_feature_ranges), as the stable backward's pass A
// takes it.
template <class V>
void sinc_product_scaled(const float* a, const float* b, int ld, int D, const DimSplit& sp, typename V::T& m,
                         typename V::T& e) {
  m = V::set(1.0f), e = V::zero();
  for_feature_ranges(D, sp, [&](auto bounded, const auto& ord, int t0, int t1) {
    sinc_product_scaled_range<V, decltype(bounded)::value>(a, b, ld, ord, t0, t1, m, e);
  });
}

// Groups of G key vectors (G = 2, 3 or 4), then (G = 4) one of 3, then 2, then 1, from jb below
// jlim: group(j0, std::integral_constant<N>).
template <int W, int G, class Group>
void for_key_groups(int jb, int jlim, const Group& group) {
  int j0 = jb;
  for (; j0 + (G - 1) * W < jlim; j0 += G * W) group(j0, std::integral_constant<int, G>{});
  if constexpr (G == 4) {
    if (j0 + 2 * W < jlim) group(j0, std::integral_constant<int, 3>{}), j0 += 3 * W;
  }
  for (; j0 + W < jlim; j0 += 2 * W) group(j0, std::integral_constant<int, 2>{});
  for (; j0 < jlim; j0 += W) group(j0, std::integral_constant<int, 1>{});
}

// max |x_i| over n floats, W at a time (0 for n = 0).
template <class V>
float max_abs(const float* x, size_t n) {
  typename V::T m = V::zero();
  size_t i = 0;
  for (; i + V::W <= n; i += V::W) m = V::max(m, V::abs(V::load(x + i)));
  float r = V::max_lane(m);
  for (; i < n; ++i) r = std::max(r, std::fabs(x[i]));
  return r;
}

// What the forward and the backward both take.
struct Inputs {
  const AttentionShape* sh;
  const float *q, *k, *v, *R;
  int power;
  float eps;
  bool stable;
};

struct FwdArgs : Inputs {
  float *out, *stats;
  cpu::RowSplit split;
};

// Row i, keys [j0, jend) of a tile: K 2^(p a) into kb[j - j0] (one = 2^a); returns their sum.
template <class V>
float kernel_row(const Keys& ks, const float* a, int jbeg, int jend, int p, float one, float* kb) {
  using T = typename V::T;
  constexpr int W = V::W;
  T S = V::zero();
  const float* b0 = ks.b_tile(jbeg);
  ks.template for_blocks_split<V>(a, jbeg, jend, [&](int jb, int jlim, const DimSplit& sp) {
    for_key_groups<W, kFwdGroup>(jb, jlim, [&](int j0, auto nvec) {
      constexpr int N = decltype(nvec)::value;
      T k[N];
      sinc_products<V, N>(a, b0 + j0, ks.lb.ld, ks.D, sp, V::set(one), k);
      for (int n = 0; n < N; ++n) {
        T kp1, K = kernel_power<V>(k[n], p, kp1);
        if (j0 + (n + 1) * W > jend) K = V::keep(V::lanes_below(jend - j0 - n * W), K);
        S = V::add(S, K);
        V::store(kb + (j0 - jbeg) + n * W, K);
      }
    });
  });
  return V::sum(S);
}

// body(j0, Km, Ke) for the key vectors [jbeg, jend) of row a, K = Km 2^Ke in stable mode: the
// stable forward's and stable_deltas' weights from the same products in the same order.
template <class V, class Body>
void for_kernels_stable(const Keys& ks, const float* a, int jbeg, int jend, int p, const Body& body) {
  const float* b0 = ks.b_tile(jbeg);
  ks.template for_blocks_split<V>(a, jbeg, jend, [&](int jb, int jlim, const DimSplit& sp) {
    for (int j0 = jb; j0 < jlim; j0 += V::W) {
      typename V::T m, e, Km, Ke, pm, pe;
      sinc_product_scaled<V>(a, b0 + j0, ks.lb.ld, ks.D, sp, m, e);
      kernel_power_scaled<V>(m, e, p, Km, Ke, pm, pe);
      body(j0, Km, Ke);
    }
  });
}

// Stable row i, keys [jbeg, jend): K = Km 2^Ke, scaled by 2^-emax with emax the row's running
// maximum exponent (raising it rescales S and acc by an exact power of two, as FlashAttention's
// online softmax), into kb[j - jbeg]; adds the K to S. ke is scratch.
template <class V>
void kernel_row_stable(const Keys& ks, const float* a, int jbeg, int jend, int p, float* kb, float* ke, float& emax,
                       float& S, float* acc, int ldv) {
  using T = typename V::T;
  constexpr int W = V::W;
  T vmax = V::set(kNoMax);
  for_kernels_stable<V>(ks, a, jbeg, jend, p, [&](int j0, T Km, T Ke) {
    if (j0 + W > jend) Km = V::keep(V::lanes_below(jend - j0), Km);
    Ke = V::select(V::eq(Km, V::zero()), V::set(kNoMax), Ke);
    vmax = V::max(vmax, Ke);
    V::store(kb + (j0 - jbeg), Km);
    V::store(ke + (j0 - jbeg), Ke);
  });
  const float tmax = V::max_lane(vmax);
  if (tmax > emax) {
    const float f = std::ldexp(1.0f, int(std::max(emax - tmax, -200.0f)));
    S *= f;
    for (int c = 0; c < ldv; ++c) acc[c] *= f;
    emax = tmax;
  }
  T St = V::zero();
  for (int j = 0; j < jend - jbeg; j += W) {
    const T K = V::mul(V::load(kb + j), V::pow2(V::sub(V::load(ke + j), V::set(emax))));
    St = V::add(St, K);
    V::store(kb + j, K);
  }
  S += V::sum(St);
}

// A unit visits its keys tile by tile, every row of the unit per tile, keeping per row S, acc
// = sum_j K_ij v_j (and emax when stable).
struct ForwardUnit {
  template <class V>
  static void run(const FwdArgs& A, const int& unit) {
    std::optional<cpu::FlushSubnormals> ftz;  // default mode only (the header's "Range")
    if (!A.stable) ftz.emplace();
    const AttentionShape& sh = *A.sh;
    const int bh = A.split.slice(unit), i0 = A.split.row_begin(unit), i1 = A.split.row_end(unit);
    const Keys ks(std::type_identity<V>{}, sh, bh, sh.causal ? i1 : sh.Nk, false, A.k, A.v, A.R);
    const int tile = ks.T, rows = i1 - i0;
    // default mode: K 2^s with s = p a (scale_root)
    const int root = A.stable ? 0
                              : scale_root(A.power, ks.n,
                                           max_abs<V>(A.v + int64_t(bh) * sh.Nk * sh.Dv, size_t(ks.n) * sh.Dv), A.eps);
    const float one = std::ldexp(1.0f, root), unscale = std::ldexp(1.0f, -A.power * root);
    const float eps_s = std::ldexp(A.eps, A.power * root);
    std::vector<float> a(sh.D), S(rows, 0.0f), emax(rows, kNoMax);
    cpu::Floats kb(size_t(kFwdRows) * tile), ke(A.stable ? tile : 0), acc(size_t(rows) * ks.ldv, 0.0f);
    for (int t0 = 0; t0 < ks.n; t0 += tile) {
      for (int rb = 0; rb < rows; rb += kFwdRows) {
        const int nr = std::min(kFwdRows, rows - rb);
        const int nmax = std::min(t0 + tile, sh.causal ? i0 + rb + nr : sh.Nk) - t0;
        if (nmax <= 0) continue;
        for (int r = rb; r < rb + nr; ++r) {
          const int i = i0 + r;
          const int n = std::min(t0 + tile, sh.causal ? i + 1 : sh.Nk) - t0;
          float* krow = kb.data() + size_t(r - rb) * tile;
          // K past this row's last key (whole vectors) is 0 for the block's product below
          for (int j = std::max(0, (n + V::W - 1) / V::W * V::W); j < nmax; ++j) krow[j] = 0.0f;
          if (n <= 0) continue;
          const int64_t row = int64_t(bh) * sh.Nq + i;
          for (int d = 0; d < sh.D; ++d) a[d] = ks.rc[d] * A.q[row * sh.D + d];
          if (A.stable) {
            float* ar = acc.data() + size_t(r) * ks.ldv;
            kernel_row_stable<V>(ks, a.data(), t0, t0 + n, A.power, krow, ke.data(), emax[r], S[r], ar, ks.ldv);
          } else {
            S[r] += kernel_row<V>(ks, a.data(), t0, t0 + n, A.power, one, krow);
          }
        }
        cpu::gemm_rows<V>(kb.data(), tile, nr, nmax, ks.vrows + size_t(t0) * ks.ldv, ks.ldv, ks.ldv,
                          acc.data() + size_t(rb) * ks.ldv, ks.ldv);
      }
    }
    for (int r = 0; r < rows; ++r) {
      const int64_t row = int64_t(bh) * sh.Nq + i0 + r;
      float inv, stat;
      if (A.stable) {
        inv = S[r] > 0.0f ? 1.0f / S[r] : 0.0f;
        stat = S[r] > 0.0f ? float(std::log(double(S[r])) + double(emax[r]) * std::numbers::ln2)
                           : -std::numeric_limits<float>::infinity();
      } else {
        // S[r] and acc are S and sum_j K v times 2^s: out = acc / (S[r] + eps 2^s), the bits of
        // acc' / (S + eps) unscaled. stat = S is subnormal below 2^-126 (fewer bits, which the
        // backward's P inherits) and 0 below 2^-149; where S + eps is then 0 (eps = 0) the row
        // gives 0, as the backward (which reads stat) does.
        stat = S[r] * unscale;
        inv = stat + A.eps != 0.0f ? 1.0f / (S[r] + eps_s) : 0.0f;
      }
      for (int e = 0; e < sh.Dv; ++e) A.out[row * sh.Dv + e] = acc[size_t(r) * ks.ldv + e] * inv;
      A.stats[row] = stat;
    }
  }
};

// ---- backward ----

struct BwdArgs : Inputs {
  const float *out, *stats, *dout;
  float *dq, *dk, *dv;
  cpu::RowSplit split;
  cpu::TiledLayout lk;  // Tk of a unit: [D][Nk] in key tiles
  int ldv;              // Dv rounded up to 16
  float* part;          // per unit: Tk, then dv as Nk rows of ldv
  double* dR_rows;      // per unit [D]: sum_i q_id Tq_id
  double* dR_keys;      // per slice [D]: sum_j k_jd Tk_jd
  // default mode: k is taken as k 2^a (scale_root): kscale = 2^a, wscale = 2^-(p a) (turns
  // 1 / (S + eps) into the factor of K 2^(p a) that gives P), cscale = p kSincDScale 2^-((p-1) a)
  // (the coefficient's constant, for k^(p-1) 2^((p-1) a))
  float kscale, wscale, cscale;
  size_t part_elems() const { return lk.size() + size_t(sh->Nk) * ldv; }
};

// Scratch for one row: per d, s_d and pre_d s'_d for up to 4 key vectors, Tq_d, and (stable)
// the exponent of pre_d; W lanes each.
struct RowScratch {
  cpu::Floats s, pw, tq, ex;
  RowScratch(int D, int W) : s(size_t(D) * 4 * W), pw(size_t(D) * 4 * W), tq(size_t(D) * W), ex(size_t(D) * W) {}
};

// t_d into Tq_d (this row) and Tk_jd (this unit).
template <class V>
void add_t(typename V::T t, int d, float* tq, float* tk, int ldk) {
  V::store(tq + d * V::W, V::add(V::load(tq + d * V::W), t));
  float* at = tk + size_t(d) * ldk;
  V::store(at, V::add(V::load(at), t));
}

// Positions [t0, t1) of pass A in the order ord: s and pw at position t, pre carried.
template <class V, bool Bounded, int N, class Order>
void pass_a_range(const float* a, const float* b, int ld, const Order& ord, int t0, int t1, RowScratch& rs,
                  typename V::T* pre) {
  using T = typename V::T;
  constexpr int W = V::W;
  T x[N], s[N], ds[N];
  for (int t = t0; t < t1; ++t) {
    differences<V, N>(a, b, ld, ord(t), x);
    cpu::sinc_and_derivative<V, Bounded, N>(x, s, ds);
    for (int n = 0; n < N; ++n) {
      V::store(rs.s.data() + (t * N + n) * W, s[n]);
      V::store(rs.pw.data() + (t * N + n) * W, V::mul(pre[n], ds[n]));
      pre[n] = V::mul(pre[n], s[n]);
    }
  }
}

// Pass A for N key vectors in lockstep: s_d and pre_d s'_d (pre_d the product of the factors
// before d) into rs, in the block's order (for_feature_ranges), whose positions pass B walks back;
// returns the products k.
template <class V, int N>
void pass_a(const float* a, const float* b, int ld, int D, const DimSplit& sp, RowScratch& rs, typename V::T* k) {
  // the products live in a local array: k itself may alias the float stores below (__m256 is
  // a may_alias type), which made the compiler store it back on every step
  typename V::T pre[N];
  for (int n = 0; n < N; ++n) pre[n] = V::set(1.0f);
  for_feature_ranges(D, sp, [&](auto bounded, const auto& ord, int t0, int t1) {
    pass_a_range<V, decltype(bounded)::value, N>(a, b, ld, ord, t0, t1, rs, pre);
  });
  for (int n = 0; n < N; ++n) k[n] = pre[n];
}

// Pass B, d down: the suffix chains seeded with coef give t_d = coef pre_d s'_d suf_d, added to
// Tk (per key vector) and, summed over the N vectors, to Tq (positions D - 1 down to 0 of pass
// A's order ord: Tk and Tq at feature d = ord(t)).
template <class V, int N, class Order = InOrder>
void pass_b(const typename V::T* coef, int D, RowScratch& rs, float* tk, int ldk, const Order& ord = {}) {
  using T = typename V::T;
  constexpr int W = V::W;
  T suf[N];
  for (int n = 0; n < N; ++n) suf[n] = coef[n];
  for (int t = D - 1; t >= 0; --t) {
    const int d = ord(t);
    T tsum = V::zero();
    for (int n = 0; n < N; ++n) {
      // t once, then added (V::unfused): contracted, the compiler would recompute t = pw suf
      // in two FMAs (into Tk and the sum for Tq), a multiply-pipe operation more per (i, j, d)
      const T tv = V::unfused(V::mul(V::load(rs.pw.data() + (t * N + n) * W), suf[n]));
      suf[n] = V::mul(suf[n], V::load(rs.s.data() + (t * N + n) * W));
      float* at = tk + size_t(d) * ldk + n * W;
      V::store(at, V::add(V::load(at), tv));
      tsum = n ? V::add(tsum, tv) : tv;
    }
    V::store(rs.tq.data() + d * W, V::add(V::load(rs.tq.data() + d * W), tsum));
  }
}

// Stable pass A: one prefix chain as mantissa/exponent, renormalised after every factor; the
// exponent of pre_d goes to rs.ex. Returns k = m 2^e.
// (Positions [t0, t1) in the order ord, stored at position t.) The features split as in the
// default mode's pass A (Keys::for_blocks_split), in sinc_product_scaled's order.
template <class V, bool Bounded, class Order>
void pass_a_stable_range(const float* a, const float* b, int ld, const Order& ord, int t0, int t1, RowScratch& rs,
                         typename V::T& m, typename V::T& e) {
  using T = typename V::T;
  constexpr int W = V::W;
  for (int t = t0; t < t1; ++t) {
    T x, s, ds;
    differences<V, 1>(a, b, ld, ord(t), &x);
    cpu::sinc_and_derivative<V, Bounded, 1>(&x, &s, &ds);
    V::store(rs.s.data() + t * W, s);
    V::store(rs.pw.data() + t * W, V::mul(m, ds));
    V::store(rs.ex.data() + t * W, e);
    m = V::mul(m, s);
    renormalize<V>(m, e);
  }
}

template <class V>
void pass_a_stable(const float* a, const float* b, int ld, int D, const DimSplit& sp, RowScratch& rs, typename V::T& m,
                   typename V::T& e) {
  m = V::set(1.0f), e = V::zero();
  for_feature_ranges(D, sp, [&](auto bounded, const auto& ord, int t0, int t1) {
    pass_a_stable_range<V, decltype(bounded)::value>(a, b, ld, ord, t0, t1, rs, m, e);
  });
}

// Stable pass B: the suffix chain seeded with coef = cm 2^ce, renormalised after every factor;
// t_d = pw_d suf_d 2^(e_pre + e_suf).
template <class V, class Order = InOrder>
void pass_b_stable(typename V::T cm, typename V::T ce, int D, RowScratch& rs, float* tk, int ldk,
                   const Order& ord = {}) {
  using T = typename V::T;
  constexpr int W = V::W;
  renormalize<V>(cm, ce);  // from the first step: cm s_d of a small cm could be subnormal
  for (int t = D - 1; t >= 0; --t) {
    // ldexp, not a multiply by pow2: t below 2^-126 stays subnormal (dq = t R with R ~ 1e8 is
    // a normal float again); where t is normal the bits are the same.
    const T tv = V::ldexp(V::mul(V::load(rs.pw.data() + t * W), cm), V::add(V::load(rs.ex.data() + t * W), ce));
    cm = V::mul(cm, V::load(rs.s.data() + t * W));
    renormalize<V>(cm, ce);
    add_t<V>(tv, ord(t), rs.tq.data(), tk, ldk);
  }
}

struct RowInputs {
  const float* a;   // R q_i
  const float* dp;  // dout_i . v_j for the keys of this tile (dp[j - jbeg])
  int jbeg, jend;   // keys of this tile for this row
  float delta;      // dout_i . out_i (stable: delta_i = delta + delta_lo, stable_deltas)
  float delta_lo;
  float stat;  // S_i, or log S_i when stable
};

// Stable mode: S_i = F 2^e from stat = log S_i, F in [1, 2), so P_ij = Km invF 2^(Ke - e) for
// K_ij = Km 2^Ke.
struct StableNorm {
  float invF, e;
  explicit StableNorm(float stat) {
    const double ei = std::floor(double(stat) / std::numbers::ln2);
    invF = float(std::exp(ei * std::numbers::ln2 - double(stat)));
    e = float(ei);
  }
};

// Row i, keys [jbeg, jend): Tq into rs.tq, t into tk, P_ij = K_ij/(S_i + eps) into
// prow[j - jbeg].
template <class V>
void backward_row(const BwdArgs& A, const Keys& ks, const RowInputs& in, RowScratch& rs, float* tk, float* prow) {
  using T = typename V::T;
  constexpr int W = V::W;
  const int p = A.power;
  // den = S + eps below 2^-126 (eps = 0, a subnormal row sum): 1 / den would overflow, so the
  // row takes inv = 1 / (den 2^64) and puts 2^64 back into P's and the coefficient's constants
  // (powers of two, exact: where 1 / den is finite the bits are the same either way).
  const float den0 = in.stat + A.eps;
  const int shift = den0 != 0.0f && std::fabs(den0) < std::numeric_limits<float>::min() ? 64 : 0;
  const float den = std::ldexp(den0, shift);
  const float inv1 = den != 0.0f ? 1.0f / den : 0.0f;
  // k 2^a into kernel_power: K 2^(p a) times inv 2^-(p a) gives P, and k^(p-1) 2^((p-1) a)
  // times the constant's 2^-((p-1) a) the coefficient, both with the bits of the unscaled
  // products wherever those do not underflow
  const T inv = V::set(inv1), inv_p = V::set(inv1 * std::ldexp(A.wscale, shift)), up = V::set(A.kscale),
          cp = V::set(std::ldexp(A.cscale, shift));
  const T delta = V::set(in.delta);
  const float* b0 = ks.b_tile(in.jbeg);
  float* tk0 = tk + A.lk.tile_origin(in.jbeg);
  ks.template for_blocks_split<V>(in.a, in.jbeg, in.jend, [&](int jb, int jlim, const DimSplit& sp) {
    for_key_groups<W, kBwdGroup>(jb, jlim, [&](int j0, auto nvec) {
      constexpr int N = decltype(nvec)::value;
      T k[N], coef[N];
      pass_a<V, N>(in.a, b0 + j0, ks.lb.ld, ks.D, sp, rs, k);
      for (int n = 0; n < N; ++n) {
        const int j = j0 + n * W;
        T kp1;
        const T K = kernel_power<V>(V::mul(k[n], up), p, kp1);
        const T dp = V::load(in.dp + (j - in.jbeg));
        // coef = (dp - delta) (k^(p-1) / den) cp: k^(p-1) / den ~ K / (k S) first, as
        // (dp - delta) / den alone overflows where S is tiny (1e-37 at p = 50) and then
        // meets another key's k^(p-1) = 0 as inf * 0
        T coef_n = V::mul(V::sub(dp, delta), V::mul(cp, V::mul(kp1, inv))), P = V::mul(K, inv_p);
        if (j + W > in.jend) {
          const auto valid = V::lanes_below(in.jend - j);
          coef_n = V::keep(valid, coef_n), P = V::keep(valid, P);
        }
        V::store(prow + (j - in.jbeg), P);
        coef[n] = coef_n;
      }
      with_order(ks.D, sp, [&](const auto& ord) { pass_b<V, N>(coef, ks.D, rs, tk0 + j0, A.lk.ld, ord); });
    });
  });
}

template <class V>
void backward_row_stable(const BwdArgs& A, const Keys& ks, const RowInputs& in, RowScratch& rs, float* tk,
                         float* prow) {
  using T = typename V::T;
  constexpr int W = V::W;
  const int p = A.power;
  const StableNorm nm(in.stat);
  const float invF = nm.invF;
  const T delta = V::set(in.delta), delta_lo = V::set(in.delta_lo), sexp = V::set(nm.e);
  const float* b0 = ks.b_tile(in.jbeg);
  float* tk0 = tk + A.lk.tile_origin(in.jbeg);
  ks.template for_blocks_split<V>(in.a, in.jbeg, in.jend, [&](int jb, int jlim, const DimSplit& sp) {
    for (int j0 = jb; j0 < jlim; j0 += W) {
      T m, e, Km, Ke, pm, pe;
      pass_a_stable<V>(in.a, b0 + j0, ks.lb.ld, ks.D, sp, rs, m, e);
      kernel_power_scaled<V>(m, e, p, Km, Ke, pm, pe);
      const T dp = V::load(in.dp + (j0 - in.jbeg));
      T P = V::ldexp(V::mul(Km, V::set(invF)), V::sub(Ke, sexp));  // subnormal P kept (P dout may be normal)
      // dp - delta_i: dp - delta exactly where they are close, then the low part
      T G = V::sub(V::sub(dp, delta), delta_lo), ce = V::sub(pe, sexp);
      // pass B renormalises the coefficient, and exponent() reads a subnormal as 0: where |G| is
      // below 2^-100 (dout or v tiny, or keys that carry one value) it enters as G 2^64 with
      // 2^-64 in its exponent (exact), so G's bits reach every t_d
      const auto tiny = V::lt(V::abs(G), V::set(0x1p-100f));
      if (V::any(tiny))
        G = V::select(tiny, V::mul(G, V::set(0x1p64f)), G), ce = V::select(tiny, V::sub(ce, V::set(64.0f)), ce);
      T cm = V::mul(V::mul(G, V::set(float(p) * invF * cpu::kSincDScale)), pm);
      if (j0 + W > in.jend) {
        const auto valid = V::lanes_below(in.jend - j0);
        P = V::keep(valid, P), cm = V::keep(valid, cm);
      }
      V::store(prow + (j0 - in.jbeg), P);
      with_order(ks.D, sp, [&](const auto& ord) { pass_b_stable<V>(cm, ce, ks.D, rs, tk0 + j0, A.lk.ld, ord); });
    }
  });
}

// Stable row i, keys [jbeg, jend): P_ij = K_ij / S_i into prow[j - jbeg] (whole vectors), with
// the bits backward_row_stable gives them (the same products in the same order).
template <class V>
void weights_row_stable(const Keys& ks, const float* a, int jbeg, int jend, int p, const StableNorm& nm, float* prow) {
  using T = typename V::T;
  constexpr int W = V::W;
  for_kernels_stable<V>(ks, a, jbeg, jend, p, [&](int j0, T Km, T Ke) {
    T P = V::ldexp(V::mul(Km, V::set(nm.invF)), V::sub(Ke, V::set(nm.e)));
    if (j0 + W > jend) P = V::keep(V::lanes_below(jend - j0), P);
    V::store(prow + (j0 - jbeg), P);
  });
}

// ---- stable: delta_i from the backward's own P and dp ----
//
// G_ij = dp_ij - delta_i, with delta_i = dout_i . out_i = sum_j P_ij dp_ij, cancels where one key
// dominates a row (as at large D): G_i* ~ (1 - P_i*) dp_i*, while dout . out from the float
// output (and dp from a float product) carry errors of ~1e-7 |dp|, which dK/dx = K p s'/s
// multiplies by up to ~1e3 near a zero of s: a row whose true gradient is ~0 got gradients of
// ~1e-3 of the largest (cpu and cuda-emu alike). Here delta_i = sum_j P_ij dp_ij / sum_j P_ij
// in double, from the P and dp the backward itself uses (the same bits): then dp_i* - delta_i =
// sum_j P_ij (dp_i* - dp_ij) / sum_j P_ij up to double rounding, so dp's own error cancels, and
// so does the common relative error of P (stat = log S is a rounded float). Cost: the row's
// kernel once more (the stable forward's products, no derivatives) and the dp products again,
// before the backward's pass over the keys; only in stable mode.
// (dp_block a template argument, not a std::function: its call must stay inside the flattened
// per-ISA entry point, or the vector code it reaches is compiled for the base ISA.)
template <class V, class DpBlock>
void stable_deltas(const BwdArgs& A, const Keys& ks, int bh, int i0, int rows, const DpBlock& dp_block, const float* DP,
                   float* P, float* delta_hi, float* delta_lo) {
  const AttentionShape& sh = *A.sh;
  const int tile = ks.T;
  std::vector<double> rho(rows, 0.0), sigma(rows, 0.0);
  std::vector<float> a(sh.D);
  for (int t0 = 0; t0 < ks.n; t0 += tile) {
    for (int rb = 0; rb < rows; rb += kRowBlock) {
      const int nr = std::min(kRowBlock, rows - rb);
      const int jmax = std::min(t0 + tile, sh.causal ? i0 + rb + nr : sh.Nk);
      if (jmax <= t0) continue;
      dp_block(t0, rb, nr, jmax);
      for (int r = rb; r < rb + nr; ++r) {
        const int i = i0 + r;
        const int64_t row = int64_t(bh) * sh.Nq + i;
        const int jend = std::min(t0 + tile, sh.causal ? i + 1 : sh.Nk);
        const float stat = A.stats[row];
        if (jend <= t0 || stat == -std::numeric_limits<float>::infinity()) continue;
        for (int d = 0; d < sh.D; ++d) a[d] = ks.rc[d] * A.q[row * sh.D + d];
        weights_row_stable<V>(ks, a.data(), t0, jend, A.power, StableNorm(stat), P);
        const float* dp = DP + size_t(r - rb) * tile;
        double rs = 0.0, ss = 0.0;
        for (int j = 0; j < jend - t0; ++j) rs += double(P[j]) * dp[j], ss += P[j];
        rho[r] += rs, sigma[r] += ss;
      }
    }
  }
  for (int r = 0; r < rows; ++r) {
    const double d = sigma[r] > 0.0 ? rho[r] / sigma[r] : 0.0;
    delta_hi[r] = float(d);
    delta_lo[r] = float(d - double(delta_hi[r]));
  }
}

// dk, dv and the keys' part of dR for slice bh, from its units' partials (in unit order).
// Tk is [D][keys] and dk [keys][D]: blocks of 8 keys x 8 features go through V::transpose8
// (AVX2: in registers; with row chunks their partials summed first) into rows of one key, whose
// dk = -R Tk and k Tk (for dR) are then contiguous over d; the rest one element at a time.
// dR's sums keep their order (per d, keys ascending within a tile, tiles ascending), so the
// bits are those of the scalar loop. Cost: one pass over Tk, dk and dv; writing dk and dv out
// is most of it.
struct FinishKeys {
  template <class V>
  static void run(const BwdArgs& A, const int& bh) {
    const AttentionShape& sh = *A.sh;
    const int D = sh.D, Dv = sh.Dv, h = bh % sh.H;
    const int chunks = A.split.chunks;
    const size_t pe = A.part_elems();
    const float* first = A.part + size_t(bh) * chunks * pe;
    double* dRk = A.dR_keys + size_t(bh) * D;
    std::fill(dRk, dRk + D, 0.0);
    std::vector<float> minus_r(D);
    for (int d = 0; d < D; ++d) minus_r[d] = -A.R[sh.r_row(h) + sh.r_col(d)];
    std::vector<double> acc(D);
    cpu::Floats rows(size_t(8) * D), sum(chunks > 1 ? 64 : 0);
    const bool blocks = D % 8 == 0;
    for (int t = 0; t < A.lk.tiles; ++t) {
      const int j0 = t * A.lk.T, j1 = std::min(sh.Nk, j0 + A.lk.T);
      std::fill(acc.begin(), acc.end(), 0.0);
      int j = j0;
      for (; blocks && j + 8 <= j1; j += 8) {
        for (int d0 = 0; d0 < D; d0 += 8) {
          const float* src = first + A.lk.row(t, d0) + (j - j0);
          size_t lds = A.lk.ld;
          if (chunks > 1) {
            for (int r = 0; r < 8; ++r)
              for (int c = 0; c < 8; ++c) {
                float x = 0.0f;
                for (int u = 0; u < chunks; ++u) x += src[u * pe + r * lds + c];
                sum[r * 8 + c] = x;
              }
            src = sum.data(), lds = 8;
          }
          V::template transpose8<false>(src, lds, rows.data() + d0, D, nullptr);
        }
        for (int c = 0; c < 8; ++c) {
          const int64_t at = (int64_t(bh) * sh.Nk + j + c) * D;
          const float* tk = rows.data() + size_t(c) * D;
          for (int d = 0; d < D; ++d) A.dk[at + d] = minus_r[d] * tk[d];
          for (int d = 0; d < D; ++d) acc[d] += double(A.k[at + d]) * tk[d];
        }
      }
      for (; j < j1; ++j)
        for (int d = 0; d < D; ++d) {
          float tk = 0.0f;
          for (int u = 0; u < chunks; ++u) tk += first[u * pe + A.lk.row(t, d) + (j - j0)];
          const int64_t at = (int64_t(bh) * sh.Nk + j) * D + d;
          A.dk[at] = minus_r[d] * tk;
          acc[d] += double(A.k[at]) * tk;
        }
      for (int d = 0; d < D; ++d) dRk[d] += acc[d];
    }
    for (int j = 0; j < sh.Nk; ++j)
      for (int e = 0; e < Dv; ++e) {
        float x = 0.0f;
        for (int u = 0; u < chunks; ++u) x += first[u * pe + A.lk.size() + size_t(j) * A.ldv + e];
        A.dv[(int64_t(bh) * sh.Nk + j) * Dv + e] = x;
      }
  }
};

// A unit visits its keys tile by tile; per tile, its rows in blocks of kRowBlock (the P rows of
// a block feed one dv update); dq is accumulated per row across tiles. The two modes are separate
// kernels, each flattened into its own entry point: with the stable pass in the same function,
// GCC allocates the default loops' registers worse (~11% more instructions).
template <bool kStable>
struct BackwardUnit {
  template <class V>
  static void run(const BwdArgs& A, const int& unit) {
    std::optional<cpu::FlushSubnormals> ftz;  // default mode only (the header's "Range")
    if constexpr (!kStable) ftz.emplace();
    const AttentionShape& sh = *A.sh;
    const int D = sh.D, Dv = sh.Dv;
    const int bh = A.split.slice(unit), i0 = A.split.row_begin(unit), i1 = A.split.row_end(unit);
    const Keys ks(std::type_identity<V>{}, sh, bh, sh.causal ? i1 : sh.Nk, true, A.k, A.v, A.R);
    const int tile = ks.T, rows = i1 - i0;
    float* tk = A.part + size_t(unit) * A.part_elems();
    float* dv = tk + A.lk.size();
    std::fill(tk, tk + A.part_elems(), 0.0f);
    RowScratch rs(D, V::W);
    std::vector<float> a(D), tq(size_t(rows) * D, 0.0f), delta(rows), delta_lo(rows, 0.0f);
    cpu::Floats P(size_t(kRowBlock) * tile), DP(size_t(kRowBlock) * tile),
        douts(Dv != A.ldv ? size_t(kRowBlock) * A.ldv : 0, 0.0f);
    // dp_rj = dout_r . v_j for the rows [rb, rb + nr) of the unit and the keys [t0, jmax), as
    // one small product into DP; returns the block's dout rows, padded to ldv (read in place
    // when Dv = ldv)
    const auto dp_block = [&](int t0, int rb, int nr, int jmax) {
      const int cols = (jmax - t0 + V::W - 1) / V::W * V::W;
      const float* dblock = A.dout + (int64_t(bh) * sh.Nq + i0 + rb) * Dv;
      if (Dv != A.ldv) {
        for (int r = 0; r < nr; ++r)
          std::copy(dblock + r * Dv, dblock + (r + 1) * Dv, douts.begin() + size_t(r) * A.ldv);
        dblock = douts.data();
      }
      cpu::gemm_rows<V, false>(dblock, A.ldv, nr, Dv, ks.v_at(t0), ks.lv.ld, cols, DP.data(), tile);
      return dblock;
    };
    if constexpr (kStable) {
      stable_deltas<V>(A, ks, bh, i0, rows, dp_block, DP.data(), P.data(), delta.data(), delta_lo.data());
    } else {
      cpu::row_deltas(A.dout, A.out, int64_t(bh) * sh.Nq + i0, rows, Dv, delta.data());
    }
    for (int t0 = 0; t0 < ks.n; t0 += tile) {
      for (int rb = 0; rb < rows; rb += kRowBlock) {
        const int nr = std::min(kRowBlock, rows - rb);
        const int jmax = std::min(t0 + tile, sh.causal ? i0 + rb + nr : sh.Nk);
        if (jmax <= t0) continue;
        const int cols = (jmax - t0 + V::W - 1) / V::W * V::W;
        const float* dblock = dp_block(t0, rb, nr, jmax);
        for (int r = rb; r < rb + nr; ++r) {
          const int i = i0 + r;
          const int64_t row = int64_t(bh) * sh.Nq + i;
          const RowInputs in{a.data(),    DP.data() + size_t(r - rb) * tile,
                             t0,          std::min(t0 + tile, sh.causal ? i + 1 : sh.Nk),
                             delta[r],    delta_lo[r],
                             A.stats[row]};
          float* prow = P.data() + size_t(r - rb) * tile;
          // the dv update reads P up to the block's last key: 0 past this row's own (whole
          // vectors of P are written up to its last key)
          const int written = in.jend <= t0 || (kStable && in.stat == -std::numeric_limits<float>::infinity())
                                  ? 0
                                  : (in.jend - t0 + V::W - 1) / V::W * V::W;
          std::fill(prow + written, prow + std::max(written, cols), 0.0f);
          if (written == 0) continue;  // no keys in this tile, or (stable) S_i = 0: out_i = 0
          for (int d = 0; d < D; ++d) a[d] = ks.rc[d] * A.q[row * D + d];
          for (int d = 0; d < D; ++d) V::store(rs.tq.data() + d * V::W, V::zero());
          if constexpr (kStable) {
            backward_row_stable<V>(A, ks, in, rs, tk, prow);
          } else {
            backward_row<V>(A, ks, in, rs, tk, prow);
          }
          V::add_sums(rs.tq.data(), D, tq.data() + size_t(r) * D);
        }
        cpu::add_outer<V>(P.data(), tile, nr, dblock, A.ldv, jmax - t0, dv + size_t(t0) * A.ldv);
      }
    }
    double* dRq = A.dR_rows + size_t(unit) * D;
    std::fill(dRq, dRq + D, 0.0);
    for (int r = 0; r < rows; ++r) {
      const int64_t row = int64_t(bh) * sh.Nq + i0 + r;
      for (int d = 0; d < D; ++d) {
        const float t = tq[size_t(r) * D + d];
        A.dq[row * D + d] = ks.r[d] * t;
        dRq[d] += double(A.q[row * D + d]) * t;
      }
    }
    if (A.split.chunks == 1) FinishKeys::run<V>(A, bh);
  }
};

void check_power(int power, bool stable) {
  if (power < 1) throw Error("power: expected a positive integer, got " + std::to_string(power));
  if (stable && power % 2 != 0) throw Error("power: stable: true needs an even power, got " + std::to_string(power));
}

}  // namespace

void fourier_attention_forward(const AttentionShape& sh, const float* q, const float* k, const float* v, const float* R,
                               int power, float eps, bool stable, float* out, float* stats) {
  check_power(power, stable);
  const FwdArgs A{{&sh, q, k, v, R, power, eps, stable}, out, stats, cpu::RowSplit(sh.B * sh.H, sh.Nq)};
  cpu::parallel_units(A.split.units(), cpu::attention_work(sh), [&](int u) { cpu::run_best<ForwardUnit>(A, u); });
}

void fourier_attention_backward(const AttentionShape& sh, const float* q, const float* k, const float* v,
                                const float* R, int power, float eps, bool stable, const float* out, const float* stats,
                                const float* dout, float* dq, float* dk, float* dv, float* dR) {
  check_power(power, stable);
  const int slices = sh.B * sh.H;
  const cpu::RowSplit split(slices, sh.Nq);
  const cpu::TiledLayout lk(sh.D, cpu::key_tile(sh.D, sh.Dv), sh.Nk);
  const int ldv = (sh.Dv + 15) / 16 * 16;
  // uninitialised: every unit clears its own part
  const cpu::Scratch part(size_t(split.units()) * (lk.size() + size_t(sh.Nk) * ldv));
  std::vector<double> dR_rows(size_t(split.units()) * sh.D), dR_keys(size_t(slices) * sh.D);
  const int a = stable ? 0 : scale_root(power, 0, 0.0f, eps);
  const BwdArgs A{{&sh, q, k, v, R, power, eps, stable},
                  out,
                  stats,
                  dout,
                  dq,
                  dk,
                  dv,
                  split,
                  lk,
                  ldv,
                  part.get(),
                  dR_rows.data(),
                  dR_keys.data(),
                  std::ldexp(1.0f, a),
                  std::ldexp(1.0f, -power * a),
                  std::ldexp(float(power) * cpu::kSincDScale, -(power - 1) * a)};
  cpu::parallel_units(split.units(), 2 * cpu::attention_work(sh), [&](int u) {
    if (stable) {
      cpu::run_best<BackwardUnit<true>>(A, u);
    } else {
      cpu::run_best<BackwardUnit<false>>(A, u);
    }
  });
  if (split.chunks > 1)
    cpu::parallel_units(slices, cpu::attention_work(sh), [&](int bh) { cpu::run_best<FinishKeys>(A, bh); });
  // dR: per slice, its rows' part minus its keys' part; slices summed in order into R's shape.
  std::vector<double> acc(size_t(sh.r_elems()), 0.0);
  for (int bh = 0; bh < slices; ++bh) {
    const int h = bh % sh.H;
    for (int d = 0; d < sh.D; ++d) {
      double rows = 0.0;
      for (int c = 0; c < split.chunks; ++c) rows += dR_rows[(size_t(bh) * split.chunks + c) * sh.D + d];
      acc[sh.r_row(h) + sh.r_col(d)] += rows - dR_keys[size_t(bh) * sh.D + d];
    }
  }
  for (int e = 0; e < sh.r_elems(); ++e) dR[e] = float(acc[e]);
}

}  // namespace ff::backend
