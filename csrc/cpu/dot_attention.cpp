// cpu backend: fused scaled dot-product attention, forward and backward (contract in
// common/backend.h).
//
//   s_ij = scale q_i . k_j,  P_ij = exp(s_ij - lse_i),  lse_i = log sum_j exp(s_ij)  (causal: j <= i)
//   out_i = sum_j P_ij v_j
//
// Layout. Work units are (b, h) slices x row chunks (threads.h). A unit keeps scale*k
// transposed as [D][keys] (one SIMD vector = W keys: 8 AVX2, 16 AVX-512) for the scores, and
// rows of values / of scale*k for the products that run along keys, and visits its keys tile
// by tile (~16 KiB of keys, FlashAttention's outer loop), every row of the unit per tile.
// Nothing of size Nq x Nk is stored: one tile-row of scores (forward), or P and dS for a block of
// 8 rows (backward).
//
// Forward, per tile and row i: scores for 4 key vectors at a time (D FMA each, 4 chains), the
//   tile maximum; the online softmax update of (m_i, l_i, acc_i) (rescaled by exp(m_old - m_new)
//   when the maximum grows); P = exp(s - m_i) (Cody-Waite + degree-6 polynomial, ~12 ops per
//   vector); acc_i += P . V by a GEMV with register accumulators. At the end out = acc/l,
//   lse = m + log l.
//   Cost per (i,j): D + Dv FMA + exp/W.
// Backward (FlashAttention-2's recurrences), per tile and row i, delta_i = dout_i . out_i:
//   recompute s and P = exp(s - lse_i); dp_j = dout_i . v_j; dS = P (dp - delta_i);
//   dq_i += sum_j dS_ij (scale k_j) (GEMV); P and dS kept for 8 rows, then
//   dv_j += sum_i P_ij dout_i and dk_j += sum_i dS_ij (scale q_i) for the 8 rows at once
//   (rank-8 updates, each dk_j / dv_j row loaded and stored once per block). With row chunks,
//   dk and dv are unit partials reduced in unit order.
//   Cost per (i,j): 3 D + 2 Dv FMA + exp/W.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>
#include "../common/backend.h"
#include "attention_tiles.h"
#include "online_softmax.h"
#include "scratch.h"
#include "simd.h"
#include "threads.h"

namespace ff::backend {
namespace {

// One unit's keys: scale*k as [D][keys] in tiles of T keys (attention_tiles.h; padding keys are
// 0), and either v as rows of ldv (forward) or v as [Dv][keys] in tiles plus scale*k as rows of
// ldd (backward). For every key j' of key j's tile, k_tile(j) + j' + d lk.ld addresses scale k_j'd
// and v_tile(j) + j' + e lv.ld addresses v_j'e.
struct DotKeys {
  int D, Dv, n, T, ldd, ldv;
  cpu::TiledLayout lk, lv;
  std::vector<float> kT, kR, vR, vT;

  template <class V>
  DotKeys(std::type_identity<V>, const AttentionShape& sh, int bh, int n_, float scale, bool backward, const float* k,
          const float* v)
      : D(sh.D),
        Dv(sh.Dv),
        n(n_),
        T(cpu::key_tile(sh.D, sh.Dv)),
        ldd((sh.D + 15) / 16 * 16),
        ldv((sh.Dv + 15) / 16 * 16),
        lk(D, T, n_),
        lv(Dv, T, n_),
        kT(lk.size(), 0.0f) {
    const float* ks = k + int64_t(bh) * sh.Nk * D;
    const float* vs = v + int64_t(bh) * sh.Nk * Dv;
    const std::vector<float> scales(D, scale);
    cpu::transpose_into<V, true>(lk, kT.data(), ks, n, n, scales.data());
    if (backward) {
      kR.assign(size_t(n) * ldd, 0.0f);
      vT.assign(lv.size(), 0.0f);
      for (int j = 0; j < n; ++j)
        for (int d = 0; d < D; ++d) kR[size_t(j) * ldd + d] = scale * ks[int64_t(j) * D + d];
      cpu::transpose_into<V, false>(lv, vT.data(), vs, n, n, nullptr);
    } else {
      cpu::assign_padded_rows(vR, vs, n, Dv, ldv);
    }
  }

  const float* k_tile(int j) const { return kT.data() + lk.tile_origin(j); }
  const float* v_tile(int j) const { return vT.data() + lv.tile_origin(j); }
};

struct FwdArgs {
  const AttentionShape* sh;
  const float *q, *k, *v;
  float scale;
  float *out, *lse;
  cpu::RowSplit split;
};

// A unit visits its keys tile by tile, every row of the unit per tile, with the online softmax
// state per row: running maximum m, l = sum exp(s - m), acc = sum exp(s - m) v.
struct ForwardUnit {
  template <class V>
  static void run(const FwdArgs& A, const int& unit) {
    using T = typename V::T;
    constexpr int W = V::W;
    const AttentionShape& sh = *A.sh;
    const int bh = A.split.slice(unit), i0 = A.split.row_begin(unit), i1 = A.split.row_end(unit);
    const DotKeys ks(std::type_identity<V>{}, sh, bh, sh.causal ? i1 : sh.Nk, A.scale, false, A.k, A.v);
    const int tile = ks.T, rows = i1 - i0;
    constexpr float kNone = -std::numeric_limits<float>::infinity();
    std::vector<float> sc(tile), part(ks.ldv), acc(size_t(rows) * ks.ldv, 0.0f), m(rows, kNone), l(rows, 0.0f);
    for (int t0 = 0; t0 < ks.n; t0 += tile) {
      for (int r = 0; r < rows; ++r) {
        const int i = i0 + r;
        const int jend = std::min(t0 + tile, sh.causal ? i + 1 : sh.Nk);
        if (jend <= t0) continue;
        const float* qi = A.q + (int64_t(bh) * sh.Nq + i) * sh.D;
        T vmax = V::set(kNone);
        const float* k0 = ks.k_tile(t0);
        cpu::for_key_vectors<W>(t0, jend, [&](int j0, auto nvec) {
          constexpr int N = decltype(nvec)::value;
          T s[N];
          cpu::dots<V, N>(qi, k0 + j0, ks.lk.ld, ks.D, s);
          for (int n = 0; n < N; ++n) {
            const int j = j0 + n * W;
            if (j + W > jend) s[n] = V::select(V::lanes_below(jend - j), s[n], V::set(kNone));
            vmax = V::max(vmax, s[n]);
            V::store(sc.data() + (j - t0), s[n]);
          }
        });
        cpu::online_softmax_tile<V>(sc.data(), jend - t0, vmax, ks.vR.data() + size_t(t0) * ks.ldv, ks.ldv, m[r], l[r],
                                    acc.data() + size_t(r) * ks.ldv, part.data());
      }
    }
    const int64_t row0 = int64_t(bh) * sh.Nq + i0;
    cpu::finish_online_softmax(rows, acc.data(), ks.ldv, m.data(), l.data(), sh.Dv, A.out + row0 * sh.Dv, A.lse + row0);
  }
};

struct BwdArgs {
  const AttentionShape* sh;
  const float *q, *k, *v;
  float scale;
  const float *out, *lse, *dout;
  float *dq, *dk, *dv;
  cpu::RowSplit split;
  int ldd, ldv;
  float* part;  // per unit: dk as Nk rows of ldd, then dv as Nk rows of ldv
  size_t part_elems() const { return size_t(sh->Nk) * (ldd + ldv); }
};

constexpr int kRowBlock = 8;

// dk, dv of slice bh from its units' partials, in unit order.
void finish_keys(const BwdArgs& A, int bh) {
  const AttentionShape& sh = *A.sh;
  const float* first = A.part + size_t(bh) * A.split.chunks * A.part_elems();
  cpu::finish_key_grads(sh.Nk, sh.D, sh.Dv, first, A.ldd, 1, first + size_t(sh.Nk) * A.ldd, A.ldv, A.part_elems(),
                        A.split.chunks, A.dk + int64_t(bh) * sh.Nk * sh.D, A.dv + int64_t(bh) * sh.Nk * sh.Dv);
}

// A unit visits its keys tile by tile; per tile, its rows in blocks of kRowBlock (whose P and
// dS rows feed one dv and one dk update); dq is accumulated per row across tiles.
struct BackwardUnit {
  template <class V>
  static void run(const BwdArgs& A, const int& unit) {
    using T = typename V::T;
    constexpr int W = V::W;
    const AttentionShape& sh = *A.sh;
    const int D = sh.D, Dv = sh.Dv;
    const int bh = A.split.slice(unit), i0 = A.split.row_begin(unit), i1 = A.split.row_end(unit);
    const DotKeys ks(std::type_identity<V>{}, sh, bh, sh.causal ? i1 : sh.Nk, A.scale, true, A.k, A.v);
    const int tile = ks.T, rows = i1 - i0;
    float* dk = A.part + size_t(unit) * A.part_elems();
    float* dv = dk + size_t(sh.Nk) * A.ldd;
    std::fill(dk, dk + A.part_elems(), 0.0f);
    std::vector<float> P(size_t(kRowBlock) * tile), dS(size_t(kRowBlock) * tile), part(A.ldd);
    std::vector<float> qs(size_t(kRowBlock) * A.ldd, 0.0f), douts(size_t(kRowBlock) * A.ldv, 0.0f);
    std::vector<float> dq(size_t(rows) * A.ldd, 0.0f), delta(rows);
    cpu::row_deltas(A.dout, A.out, int64_t(bh) * sh.Nq + i0, rows, Dv, delta.data());
    for (int t0 = 0; t0 < ks.n; t0 += tile) {
      for (int rb = 0; rb < rows; rb += kRowBlock) {
        const int nr = std::min(kRowBlock, rows - rb);
        const int jmax = std::min(t0 + tile, sh.causal ? i0 + rb + nr : sh.Nk);
        if (jmax <= t0) continue;
        std::fill(P.begin(), P.end(), 0.0f);
        std::fill(dS.begin(), dS.end(), 0.0f);
        for (int r = rb; r < rb + nr; ++r) {
          const int i = i0 + r;
          const int64_t row = int64_t(bh) * sh.Nq + i;
          const float* qi = A.q + row * D;
          const float* dout = A.dout + row * Dv;
          for (int d = 0; d < D; ++d) qs[size_t(r - rb) * A.ldd + d] = A.scale * qi[d];
          std::copy(dout, dout + Dv, douts.begin() + size_t(r - rb) * A.ldv);
          const int jend = std::min(t0 + tile, sh.causal ? i + 1 : sh.Nk);
          if (jend <= t0 || A.lse[row] == -std::numeric_limits<float>::infinity()) continue;
          const T vdelta = V::set(delta[r]), vlse = V::set(A.lse[row]);
          float* prow = P.data() + size_t(r - rb) * tile;
          float* srow = dS.data() + size_t(r - rb) * tile;
          const float *k0 = ks.k_tile(t0), *v0 = ks.v_tile(t0);
          cpu::for_key_vectors<W>(t0, jend, [&](int j0, auto nvec) {
            constexpr int N = decltype(nvec)::value;
            T s[N], dp[N];
            cpu::dots<V, N>(qi, k0 + j0, ks.lk.ld, D, s);
            cpu::dots<V, N>(dout, v0 + j0, ks.lv.ld, Dv, dp);
            for (int n = 0; n < N; ++n) {
              const int j = j0 + n * W;
              T p = cpu::exp_nonpositive<V>(V::sub(s[n], vlse));
              if (j + W > jend) p = V::keep(V::lanes_below(jend - j), p);
              V::store(prow + (j - t0), p);
              V::store(srow + (j - t0), V::mul(p, V::sub(dp[n], vdelta)));
            }
          });
          cpu::gemv<V>(srow, jend - t0, ks.kR.data() + size_t(t0) * A.ldd, A.ldd, part.data());
          for (int d = 0; d < A.ldd; ++d) dq[size_t(r) * A.ldd + d] += part[d];
        }
        cpu::add_outer<V>(dS.data(), tile, nr, qs.data(), A.ldd, jmax - t0, dk + size_t(t0) * A.ldd);
        cpu::add_outer<V>(P.data(), tile, nr, douts.data(), A.ldv, jmax - t0, dv + size_t(t0) * A.ldv);
      }
    }
    for (int r = 0; r < rows; ++r)
      std::copy(dq.begin() + size_t(r) * A.ldd, dq.begin() + size_t(r) * A.ldd + D,
                A.dq + (int64_t(bh) * sh.Nq + i0 + r) * D);
    if (A.split.chunks == 1) finish_keys(A, bh);
  }
};

}  // namespace

void dot_attention_forward(const AttentionShape& sh, const float* q, const float* k, const float* v, float scale,
                           float* out, float* lse) {
  const FwdArgs A{&sh, q, k, v, scale, out, lse, cpu::RowSplit(sh.B * sh.H, sh.Nq)};
  cpu::parallel_units(A.split.units(), cpu::attention_work(sh), [&](int u) { cpu::run_best<ForwardUnit>(A, u); });
}

void dot_attention_backward(const AttentionShape& sh, const float* q, const float* k, const float* v, float scale,
                            const float* out, const float* lse, const float* dout, float* dq, float* dk, float* dv) {
  const int slices = sh.B * sh.H;
  const cpu::RowSplit split(slices, sh.Nq);
  const int ldd = (sh.D + 15) / 16 * 16, ldv = (sh.Dv + 15) / 16 * 16;
  const cpu::Scratch part(size_t(split.units()) * sh.Nk * (ldd + ldv));  // every unit clears its own part
  const BwdArgs A{&sh, q, k, v, scale, out, lse, dout, dq, dk, dv, split, ldd, ldv, part.get()};
  cpu::parallel_units(split.units(), 2 * cpu::attention_work(sh), [&](int u) { cpu::run_best<BackwardUnit>(A, u); });
  if (split.chunks > 1) cpu::parallel_units(slices, cpu::attention_work(sh), [&](int bh) { finish_keys(A, bh); });
}

}  // namespace ff::backend
