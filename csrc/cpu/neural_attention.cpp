// cpu backend: fused Neural Attention, forward and backward (contract in common/backend.h): a
// small network scores every pair (common/neural_score.h), softmax over the keys, times V.
//
//   s_ij = score(a_i, c_j),  P_ij = exp(s_ij - lse_i),  lse_i = log sum_j exp(s_ij)  (causal: j <= i)
//   out_i = sum_j P_ij v_j
//
// The layout and the loops are dot_attention.cpp's, with the network in place of the dot
// product. Work units are (b, h) slices x row chunks (threads.h). A unit keeps c transposed as
// [M1][keys] (one SIMD vector = W keys), visits its keys tile by tile (FlashAttention's outer
// loop), every row of the unit per tile, and stores nothing of size Nq x Nk, let alone
// Nq x Nk x d1: one tile-row of scores (forward), or P for a block of 8 rows (backward).
//
// Forward, per tile and row i: the scores of 4 key vectors at a time, the tile maximum; the
//   online softmax update of (m_i, l_i, acc_i); P = exp(s - m_i); acc_i += P . V (GEMV).
//   Cost per (i, j): the network's d1 (2 + d2) + 3 d2 flops, Dv FMA, exp / W.
// Backward, per tile and row i, delta_i = dout_i . out_i: recompute h, z, s and
//   P = exp(s - lse_i); dp_j = dout_i . v_j; dS = P (dp - delta_i); the network's backward: its
//   weights' gradients (vectors over keys, summed into doubles after each block of 8 rows), and
//   g1 = dL/da = dL/dc, summed over keys into da_i and added to the unit's dc_j; P kept for the 8
//   rows, then dv_j += sum_i P_ij dout_i for the 8 rows at once (a rank-8 update). With row
//   chunks, dc, dv and the weights' gradients are unit partials reduced in unit order (the same
//   bits run after run).
//   Cost per (i, j): about 3x the network's forward, 2 Dv FMA, exp / W.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>
#include "../common/backend.h"
#include "../common/neural_score.h"
#include "attention_tiles.h"
#include "online_softmax.h"
#include "scratch.h"
#include "simd.h"
#include "threads.h"

namespace ff::backend {
namespace {

template <class V, int M1, int M2>
using Weights = NeuralWeights<V, M1, M2>;

template <class V, int M1, int M2>
Weights<V, M1, M2> broadcast_weights(const NeuralMlp& p) {
  Weights<V, M1, M2> w;
  load_neural_weights(p, p.w2, p.b2, p.w3, p.b3, w, [](float x) { return V::set(x); });
  return w;
}

template <class V, int M1, int M2>
void clear(Weights<V, M1, M2>& g) {
  for (int n = 0; n < M2; ++n) {
    for (int m = 0; m < M1; ++m) g.w2[n][m] = V::zero();
    g.b2[n] = V::zero();
    g.w3[n] = V::zero();
  }
  g.b3 = V::zero();
}

// acc (the NeuralMlp::params() gradients: dW2 [d2][d1], db2, dw3, db3) += the lanes of g; g = 0.
template <class V, int M1, int M2>
void flush(const NeuralMlp& p, Weights<V, M1, M2>& g, double* acc) {
  for (int n = 0; n < p.d2; ++n) {
    for (int m = 0; m < p.d1; ++m) acc[n * p.d1 + m] += V::sum(g.w2[n][m]);
    acc[p.d2 * p.d1 + n] += V::sum(g.b2[n]);
    acc[p.d2 * p.d1 + p.d2 + n] += V::sum(g.w3[n]);
  }
  acc[p.d2 * p.d1 + 2 * p.d2] += V::sum(g.b3);
  clear<V, M1, M2>(g);
}

// One unit's keys: c as [M1][keys] in tiles of T keys (attention_tiles.h; rows past d1 and
// padding keys are 0), and v as rows of ldv (forward) or as [Dv][keys] in tiles (backward). For
// every key j' of key j's tile, c_tile(j) + j' + m lc.ld addresses c_j'm and v_tile(j) + j' +
// e lv.ld addresses v_j'e.
struct NeuralKeys {
  int n, T, ldv;
  cpu::TiledLayout lc, lv;
  cpu::Floats cT, vR, vT;

  template <class V>
  NeuralKeys(std::type_identity<V>, const AttentionShape& sh, int M1, int bh, int n_, bool backward, const float* c,
             const float* v)
      : n(n_),
        T(cpu::key_tile(M1, sh.Dv)),
        ldv((sh.Dv + 15) / 16 * 16),
        lc(M1, T, n_),
        lv(sh.Dv, T, n_),
        cT(lc.size(), 0.0f) {
    const float* cs = c + int64_t(bh) * sh.Nk * sh.D;
    const float* vs = v + int64_t(bh) * sh.Nk * sh.Dv;
    for (int j = 0; j < n; ++j)
      for (int m = 0; m < sh.D; ++m) cT[lc.at(m, j)] = cs[int64_t(j) * sh.D + m];
    if (backward) {
      vT.assign(lv.size(), 0.0f);
      cpu::transpose_into<V, false>(lv, vT.data(), vs, n, n, nullptr);
    } else {
      cpu::assign_padded_rows(vR, vs, n, sh.Dv, ldv);
    }
  }

  const float* c_tile(int j) const { return cT.data() + lc.tile_origin(j); }
  const float* v_tile(int j) const { return vT.data() + lv.tile_origin(j); }
};

// Row i's a as M1 broadcast vectors (0 past d1).
template <class V, int M1>
void broadcast_row(const float* ai, int d1, typename V::T (&a)[M1]) {
  for (int m = 0; m < M1; ++m) a[m] = m < d1 ? V::set(ai[m]) : V::zero();
}

// The key vector at c0 (row m at c0 + m ld) as M1 vectors.
template <class V, int M1>
void load_keys(const float* c0, int ld, typename V::T (&c)[M1]) {
  for (int m = 0; m < M1; ++m) c[m] = V::load(c0 + size_t(m) * ld);
}

struct FwdArgs {
  const AttentionShape* sh;
  const float *a, *c, *v;
  const NeuralMlp* mlp;
  float *out, *lse;
  cpu::RowSplit split;
};

// A unit visits its keys tile by tile, every row of the unit per tile, with the online softmax
// state per row: running maximum m, l = sum exp(s - m), acc = sum exp(s - m) v.
template <int M1, int M2>
struct ForwardUnit {
  template <class V>
  static void run(const FwdArgs& A, const int& unit) {
    using T = typename V::T;
    constexpr int W = V::W;
    cpu::FlushSubnormals ftz;
    const AttentionShape& sh = *A.sh;
    const int bh = A.split.slice(unit), i0 = A.split.row_begin(unit), i1 = A.split.row_end(unit);
    const NeuralKeys ks(std::type_identity<V>{}, sh, M1, bh, sh.causal ? i1 : sh.Nk, false, A.c, A.v);
    const Weights<V, M1, M2> w = broadcast_weights<V, M1, M2>(*A.mlp);
    const int tile = ks.T, rows = i1 - i0;
    constexpr float kNone = -std::numeric_limits<float>::infinity();
    std::vector<float> sc(tile), part(ks.ldv), acc(size_t(rows) * ks.ldv, 0.0f), m(rows, kNone), l(rows, 0.0f);
    for (int t0 = 0; t0 < ks.n; t0 += tile) {
      for (int r = 0; r < rows; ++r) {
        const int i = i0 + r;
        const int jend = std::min(t0 + tile, sh.causal ? i + 1 : sh.Nk);
        if (jend <= t0) continue;
        T ai[M1];
        broadcast_row<V, M1>(A.a + (int64_t(bh) * sh.Nq + i) * sh.D, sh.D, ai);
        T vmax = V::set(kNone);
        const float* c0 = ks.c_tile(t0);
        cpu::for_key_vectors<W>(t0, jend, [&](int j0, auto nvec) {
          constexpr int N = decltype(nvec)::value;
          for (int n = 0; n < N; ++n) {
            const int j = j0 + n * W;
            T cj[M1], h[M1], z[M2];
            load_keys<V, M1>(c0 + j, ks.lc.ld, cj);
            T s = neural_score<V, M1, M2>(w, ai, cj, h, z);
            if (j + W > jend) s = V::select(V::lanes_below(jend - j), s, V::set(kNone));
            vmax = V::max(vmax, s);
            V::store(sc.data() + (j - t0), s);
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
  const float *a, *c, *v;
  const NeuralMlp* mlp;
  const float *out, *lse, *dout;
  float *da, *dc, *dv;
  cpu::RowSplit split;
  int M1, ldk, ldv;
  float* part;    // per unit: dc as [M1][ldk] (keys along rows), then dv as Nk rows of ldv
  double* wpart;  // per unit: the weights' gradients, NeuralMlp::params() doubles
  size_t part_elems() const { return size_t(M1) * ldk + size_t(sh->Nk) * ldv; }
};

constexpr int kRowBlock = 8;

// dc, dv of slice bh from its units' partials, in unit order.
void finish_keys(const BwdArgs& A, int bh) {
  const AttentionShape& sh = *A.sh;
  const float* first = A.part + size_t(bh) * A.split.chunks * A.part_elems();
  cpu::finish_key_grads(sh.Nk, sh.D, sh.Dv, first, 1, A.ldk, first + size_t(A.M1) * A.ldk, A.ldv, A.part_elems(),
                        A.split.chunks, A.dc + int64_t(bh) * sh.Nk * sh.D, A.dv + int64_t(bh) * sh.Nk * sh.Dv);
}

// A unit visits its keys tile by tile; per tile, its rows in blocks of kRowBlock (whose P rows
// feed one dv update, and whose weight gradients are flushed to doubles together); da is
// accumulated per row across tiles.
template <int M1, int M2>
struct BackwardUnit {
  template <class V>
  static void run(const BwdArgs& A, const int& unit) {
    using T = typename V::T;
    constexpr int W = V::W;
    cpu::FlushSubnormals ftz;
    const AttentionShape& sh = *A.sh;
    const NeuralMlp& mlp = *A.mlp;
    const int bh = A.split.slice(unit), i0 = A.split.row_begin(unit), i1 = A.split.row_end(unit);
    const NeuralKeys ks(std::type_identity<V>{}, sh, M1, bh, sh.causal ? i1 : sh.Nk, true, A.c, A.v);
    const Weights<V, M1, M2> w = broadcast_weights<V, M1, M2>(mlp);
    Weights<V, M1, M2> gw;
    clear<V, M1, M2>(gw);
    double* gsum = A.wpart + size_t(unit) * mlp.params();
    std::fill(gsum, gsum + mlp.params(), 0.0);
    const int tile = ks.T, rows = i1 - i0;
    float* dcT = A.part + size_t(unit) * A.part_elems();
    float* dv = dcT + size_t(M1) * A.ldk;
    std::fill(dcT, dcT + A.part_elems(), 0.0f);
    std::vector<float> P(size_t(kRowBlock) * tile), douts(size_t(kRowBlock) * A.ldv, 0.0f);
    std::vector<float> da(size_t(rows) * M1, 0.0f), delta(rows);
    cpu::row_deltas(A.dout, A.out, int64_t(bh) * sh.Nq + i0, rows, sh.Dv, delta.data());
    for (int t0 = 0; t0 < ks.n; t0 += tile) {
      for (int rb = 0; rb < rows; rb += kRowBlock) {
        const int nr = std::min(kRowBlock, rows - rb);
        const int jmax = std::min(t0 + tile, sh.causal ? i0 + rb + nr : sh.Nk);
        if (jmax <= t0) continue;
        std::fill(P.begin(), P.end(), 0.0f);
        for (int r = rb; r < rb + nr; ++r) {
          const int i = i0 + r;
          const int64_t row = int64_t(bh) * sh.Nq + i;
          const float* dout = A.dout + row * sh.Dv;
          std::copy(dout, dout + sh.Dv, douts.begin() + size_t(r - rb) * A.ldv);
          const int jend = std::min(t0 + tile, sh.causal ? i + 1 : sh.Nk);
          if (jend <= t0 || A.lse[row] == -std::numeric_limits<float>::infinity()) continue;
          T ai[M1], da_acc[M1];
          broadcast_row<V, M1>(A.a + row * sh.D, sh.D, ai);
          for (int m = 0; m < M1; ++m) da_acc[m] = V::zero();
          const T vdelta = V::set(delta[r]), vlse = V::set(A.lse[row]);
          float* prow = P.data() + size_t(r - rb) * tile;
          const float *c0 = ks.c_tile(t0), *v0 = ks.v_tile(t0);
          cpu::for_key_vectors<W>(t0, jend, [&](int j0, auto nvec) {
            constexpr int N = decltype(nvec)::value;
            T dp[N];
            cpu::dots<V, N>(dout, v0 + j0, ks.lv.ld, sh.Dv, dp);
            for (int n = 0; n < N; ++n) {
              const int j = j0 + n * W;
              T cj[M1], h[M1], z[M2], g1[M1];
              load_keys<V, M1>(c0 + j, ks.lc.ld, cj);
              const T s = neural_score<V, M1, M2>(w, ai, cj, h, z);
              T p = cpu::exp_nonpositive<V>(V::sub(s, vlse));
              if (j + W > jend) p = V::keep(V::lanes_below(jend - j), p);
              V::store(prow + (j - t0), p);
              neural_score_backward<V, M1, M2>(w, h, z, V::mul(p, V::sub(dp[n], vdelta)), gw, g1);
              for (int m = 0; m < M1; ++m) {
                da_acc[m] = V::add(da_acc[m], g1[m]);
                float* d = dcT + size_t(m) * A.ldk + j;
                V::store(d, V::add(V::load(d), g1[m]));
              }
            }
          });
          for (int m = 0; m < M1; ++m) da[size_t(r) * M1 + m] += V::sum(da_acc[m]);
        }
        cpu::add_outer<V>(P.data(), tile, nr, douts.data(), A.ldv, jmax - t0, dv + size_t(t0) * A.ldv);
        flush<V, M1, M2>(mlp, gw, gsum);
      }
    }
    for (int r = 0; r < rows; ++r)
      for (int m = 0; m < sh.D; ++m) A.da[(int64_t(bh) * sh.Nq + i0 + r) * sh.D + m] = da[size_t(r) * M1 + m];
    if (A.split.chunks == 1) finish_keys(A, bh);
  }
};

// The work of a pass for parallel_units (threads.h): per query-key pair, the score network's
// second layer (M1 x M2 multiply-adds, the largest) besides the features and v.
double neural_work(const AttentionShape& sh, int M1, int M2) {
  return cpu::attention_work(sh) + double(sh.B) * sh.H * sh.Nq * sh.Nk * M1 * M2;
}

}  // namespace

void neural_attention_forward(const AttentionShape& sh, const float* a, const float* c, const float* v,
                              const NeuralMlp& mlp, float* out, float* lse) {
  with_neural_bucket(mlp.d1, mlp.d2, [&](auto m1, auto m2) {
    constexpr int M1 = decltype(m1)::value, M2 = decltype(m2)::value;
    const FwdArgs A{&sh, a, c, v, &mlp, out, lse, cpu::RowSplit(sh.B * sh.H, sh.Nq)};
    cpu::parallel_units(A.split.units(), neural_work(sh, M1, M2),
                        [&](int u) { cpu::run_best<ForwardUnit<M1, M2>>(A, u); });
  });
}

void neural_attention_backward(const AttentionShape& sh, const float* a, const float* c, const float* v,
                               const NeuralMlp& mlp, const float* out, const float* lse, const float* dout, float* da,
                               float* dc, float* dv, float* dw2, float* db2, float* dw3, float* db3) {
  with_neural_bucket(mlp.d1, mlp.d2, [&](auto m1, auto m2) {
    constexpr int M1 = decltype(m1)::value, M2 = decltype(m2)::value;
    const int slices = sh.B * sh.H;
    const cpu::RowSplit split(slices, sh.Nq);
    // dc's rows are written a whole vector at a time, up to the last key's vector (16 floats).
    const int ldk = (sh.Nk + 15) / 16 * 16 + 16, ldv = (sh.Dv + 15) / 16 * 16;
    const size_t part_elems = size_t(M1) * ldk + size_t(sh.Nk) * ldv;
    const cpu::Scratch part(size_t(split.units()) * part_elems);  // every unit clears its own part
    std::vector<double> wpart(size_t(split.units()) * mlp.params());
    const BwdArgs A{&sh, a, c, v, &mlp, out, lse, dout, da, dc, dv, split, M1, ldk, ldv, part.get(), wpart.data()};
    cpu::parallel_units(split.units(), 2 * neural_work(sh, M1, M2),
                        [&](int u) { cpu::run_best<BackwardUnit<M1, M2>>(A, u); });
    if (split.chunks > 1) cpu::parallel_units(slices, cpu::attention_work(sh), [&](int bh) { finish_keys(A, bh); });
    // The weights' gradients: the units' partials in unit order.
    std::vector<double> g(mlp.params(), 0.0);
    for (int u = 0; u < split.units(); ++u)
      for (int p = 0; p < mlp.params(); ++p) g[p] += wpart[size_t(u) * mlp.params() + p];
    const int nw2 = mlp.d2 * mlp.d1;
    for (int p = 0; p < nw2; ++p) dw2[p] = float(g[p]);
    for (int n = 0; n < mlp.d2; ++n) db2[n] = float(g[nw2 + n]), dw3[n] = float(g[nw2 + mlp.d2 + n]);
    db3[0] = float(g[nw2 + 2 * mlp.d2]);
  });
}

}  // namespace ff::backend
