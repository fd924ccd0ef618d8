// Small dense pieces shared by the cpu attention kernels, generic over the SIMD type V
// (simd.h). Rows of values are padded to a multiple of W floats ("ld").
//
//   Floats                64-byte aligned buffers: whole vectors at multiples of W floats from
//                         the start never straddle a cache line.
//   row_deltas            delta_r = dout_r . out_r in double (FlashAttention's D_i).
//   assign_padded_rows    rows of values padded to ld floats (the GEMVs' operand).
//   sum_partials          a unit partial summed over a slice's row chunks, in unit order.
//   finish_key_grads      a slice's dk (or dc) and dv from its units' partials, by sum_partials.
//   key_tile, TiledLayout a [rows][keys] matrix stored in tiles of T keys (~16 KiB each), the
//                         unit of FlashAttention's outer loop; transpose_into fills one from a
//                         [keys][rows] matrix by 8 x 8 register transposes.
//   exp_nonpositive       exp(x) for x <= 0 (scores minus their row maximum), ~2 ulp.
//   dots, for_key_vectors x . k_j for N key vectors of a transposed layout at once.
//   gemv:      out = sum_{j < n} w_j x_j           (2 key streams x up to 4 vectors of
//                                                   register accumulators)
//   gemm_rows: out_r += sum_{j < n} w_rj x_j for a block of rows: each x vector loaded feeds
//              4 or 6 FMAs, 12 accumulator chains (K . V forward, dout . v backward).
//   add_outer: y_j += sum_{r < rows} P[r][j] x_r   for j < n: the rank-`rows` update that
//              accumulates dv (or dk) from a block of rows at once, so each y_j is loaded and
//              stored once per block instead of once per row.
// Cost: one FMA per (j, W floats of a row), loads of x from L1. What bounds the products is
// FMA latency: two FMA pipes of latency ~5 need ~10 independent accumulator chains in flight,
// hence the register blocks below (12 chains in gemm_rows, 2 to 4 keys at once in add_outer).
#pragma once
#include <algorithm>
#include <cstdint>
#include <new>
#include <type_traits>
#include <vector>
#include "simd.h"

namespace ff::cpu {

// Allocator of 64-byte aligned storage (a cache line, one AVX-512 vector). The kernels' buffers
// are read and written in whole vectors at multiples of W floats from their start, so no vector
// access straddles two cache lines (with std::vector<float>'s 16-byte alignment every other AVX2
// vector would).
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const {
    return true;
  }
};
using Floats = std::vector<float, CacheLineAllocator<float>>;

// delta_r = dout_row . out_row for `rows` rows from `first_row` (rows of Dv floats), summed in
// double: the row term every attention backward subtracts (FlashAttention's D_i). Four partial
// sums, so the adds are four chains instead of one (the add latency bounds a single chain).
inline void row_deltas(const float* dout, const float* out, int64_t first_row, int rows, int Dv, float* delta) {
  for (int r = 0; r < rows; ++r) {
    const float* g = dout + (first_row + r) * Dv;
    const float* o = out + (first_row + r) * Dv;
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    int e = 0;
    for (; e + 4 <= Dv; e += 4)
      for (int c = 0; c < 4; ++c) acc[c] += double(g[e + c]) * o[e + c];
    for (; e < Dv; ++e) acc[0] += double(g[e]) * o[e];
    delta[r] = float((acc[0] + acc[1]) + (acc[2] + acc[3]));
  }
}

// dst = n rows of `cols` floats from src, each padded with zeros to ld floats.
template <class Vec>
void assign_padded_rows(Vec& dst, const float* src, int n, int cols, int ld) {
  dst.assign(size_t(n) * ld, 0.0f);
  for (int j = 0; j < n; ++j)
    std::copy(src + int64_t(j) * cols, src + int64_t(j + 1) * cols, dst.begin() + size_t(j) * ld);
}

// sum_{c < chunks} x[c stride] in float, c ascending: the row chunks' partials of one (b, h)
// slice (dk, dv, ...) reduced in unit order, so the bits do not depend on scheduling.
inline float sum_partials(const float* x, size_t stride, int chunks) {
  float t = 0.0f;
  for (int c = 0; c < chunks; ++c) t += x[c * stride];
  return t;
}

// The key gradients of one slice, [Nk][D] into dk and [Nk][Dv] into dv, from the partials of
// its `chunks` units (each `stride` floats after the last) by sum_partials: the unit's partial
// of dk[j][d] is at keys[j kj + d kd] (the kernel's layout: rows of keys, or columns), that of
// dv[j][e] at values[j ldv + e]. Cost: chunks adds per element.
inline void finish_key_grads(int Nk, int D, int Dv, const float* keys, size_t kj, size_t kd, const float* values,
                             size_t ldv, size_t stride, int chunks, float* dk, float* dv) {
  for (int j = 0; j < Nk; ++j) {
    for (int d = 0; d < D; ++d) dk[size_t(j) * D + d] = sum_partials(keys + j * kj + d * kd, stride, chunks);
    for (int e = 0; e < Dv; ++e) dv[size_t(j) * Dv + e] = sum_partials(values + j * ldv + e, stride, chunks);
  }
}

// Keys per tile: ~16 KiB of one [D][keys] layout, a multiple of 64 in [64, 256]. A unit of
// work visits its keys tile by tile (FlashAttention's outer loop), all its rows per tile.
inline int key_tile(int D, int Dv) { return std::clamp(16384 / (4 * std::max({D, Dv, 1})) / 64, 1, 4) * 64; }

// A [rows][keys] matrix stored tile by tile: tile t holds keys [t T, (t+1) T) as rows of T
// floats, ld = T + 16 apart (not a multiple of 1 KiB, so rows neither share L1 sets nor alias
// another array's rows at 4 KiB). The rows of one tile sit within a few pages instead of a
// whole key range apart. Key vectors never straddle tiles (T is a multiple of every W).
struct TiledLayout {
  int rows = 0, T = 64, ld = 80, tiles = 0;
  TiledLayout(int rows_, int T_, int keys) : rows(rows_), T(T_), ld(T_ + 16), tiles((keys + T_ - 1) / T_) {}
  size_t size() const { return size_t(tiles) * rows * ld; }
  // Offset of (r, j); (r + 1, j) is ld floats further.
  size_t at(int r, int j) const { return (size_t(j / T) * rows + r) * ld + j % T; }
  // Offset of (r, t T): the start of row r of tile t.
  size_t row(int t, int r) const { return (size_t(t) * rows + r) * ld; }
  // Offset o of key j's tile such that o + j' is (0, j') for every key j' of that tile: a row
  // walking its keys adds j' instead of dividing by T for each (o >= 0: rows ld > T).
  size_t tile_origin(int j) const { return at(0, j) - size_t(j); }
};

// dst(r, j) = f(src[min(j, n_src - 1) * rows + r]) for j < keys, f(x) = scale[r] x (Scale) or x:
// the layout l of a [keys][rows] matrix (keys from n_src on repeat its last row). Blocks of 8
// keys x 8 rows go through V::transpose8 (AVX2: in registers), the rest (rows past a multiple
// of 8, keys past the source's last) one element at a time.
template <class V, bool Scale>
void transpose_into(const TiledLayout& l, float* dst, const float* src, int n_src, int keys, const float* scale) {
  for (int t = 0; t * l.T < keys; ++t) {
    const int j0 = t * l.T, j1 = std::min(keys, j0 + l.T), jfull = std::min(j1, n_src);
    float* tile = dst + l.row(t, 0) - j0;  // tile + r ld + j: (r, j)
    int j = j0;
    for (; j + 8 <= jfull; j += 8) {
      int r = 0;
      for (; r + 8 <= l.rows; r += 8)
        V::template transpose8<Scale>(src + int64_t(j) * l.rows + r, l.rows, tile + size_t(r) * l.ld + j, l.ld,
                                      scale + r);
      for (; r < l.rows; ++r)
        for (int jj = j; jj < j + 8; ++jj) {
          const float x = src[int64_t(jj) * l.rows + r];
          tile[size_t(r) * l.ld + jj] = Scale ? scale[r] * x : x;
        }
    }
    for (; j < j1; ++j) {
      const float* s = src + int64_t(std::min(j, n_src - 1)) * l.rows;
      for (int r = 0; r < l.rows; ++r) tile[size_t(r) * l.ld + j] = Scale ? scale[r] * s[r] : s[r];
    }
  }
}

// exp(x) for x <= 0 (scores minus their row maximum or lse): 2^n e^f with n = round(x log2 e)
// and |f| <= ln2/2 (Cody-Waite), Cephes' degree-6 polynomial; ~2 ulp. Below -87.3 the result
// is subnormal (e^f 2^n by V::ldexp, rounded once; 0 where the caller flushes subnormals), as
// expf's: a probability of 1e-40 times a gradient of 1e6 is a normal float that must not be
// lost. x is clamped to -104, where e^x is under half the least subnormal, so -inf gives 0.
template <class V>
typename V::T exp_nonpositive(typename V::T x) {
  using T = typename V::T;
  x = V::max(x, V::set(-104.0f));
  const T n = V::round(V::mul(x, V::set(1.44269504f)));
  T f = V::fnma(n, V::set(0.693359375f), x);
  f = V::fnma(n, V::set(-2.12194440e-4f), f);
  T p = V::fma(f, V::set(1.9875691500e-4f), V::set(1.3981999507e-3f));
  p = V::fma(f, p, V::set(8.3334519073e-3f));
  p = V::fma(f, p, V::set(4.1665795894e-2f));
  p = V::fma(f, p, V::set(1.6666665459e-1f));
  p = V::fma(f, p, V::set(5.0000001201e-1f));
  p = V::fma(V::mul(f, f), p, V::add(f, V::set(1.0f)));
  return V::ldexp(p, n);
}

// s[n] = sum_d x_d c[d ld + n W ..] for N key vectors at c (N chains).
template <class V, int N>
void dots(const float* x, const float* cT, int ld, int D, typename V::T* s) {
  for (int n = 0; n < N; ++n) s[n] = V::zero();
  for (int d = 0; d < D; ++d) {
    const typename V::T xd = V::bcast(x + d);
    for (int n = 0; n < N; ++n) s[n] = V::fma(xd, V::load(cT + size_t(d) * ld + n * V::W), s[n]);
  }
}

// body(j0, std::integral_constant<N>) for groups of 4, then single, key vectors in [jbeg, jend).
template <int W, class Body>
void for_key_vectors(int jbeg, int jend, const Body& body) {
  int j0 = jbeg;
  for (; j0 + 3 * W < jend; j0 += 4 * W) body(j0, std::integral_constant<int, 4>{});
  for (; j0 < jend; j0 += W) body(j0, std::integral_constant<int, 1>{});
}

template <class V, int NC>
void gemv_block(const float* w, int n, const float* x, int ld, float* out) {
  using T = typename V::T;
  T a0[NC], a1[NC];
  for (int c = 0; c < NC; ++c) a0[c] = V::zero(), a1[c] = V::zero();
  int j = 0;
  for (; j + 1 < n; j += 2) {
    const T w0 = V::bcast(w + j), w1 = V::bcast(w + j + 1);
    for (int c = 0; c < NC; ++c) a0[c] = V::fma(w0, V::load(x + size_t(j) * ld + c * V::W), a0[c]);
    for (int c = 0; c < NC; ++c) a1[c] = V::fma(w1, V::load(x + size_t(j + 1) * ld + c * V::W), a1[c]);
  }
  if (j < n) {
    const T w0 = V::bcast(w + j);
    for (int c = 0; c < NC; ++c) a0[c] = V::fma(w0, V::load(x + size_t(j) * ld + c * V::W), a0[c]);
  }
  for (int c = 0; c < NC; ++c) V::store(out + c * V::W, V::add(a0[c], a1[c]));
}

// out[0, ld) = sum_{j < n} w_j x[j * ld + (0, ld)], ld a multiple of W.
template <class V>
void gemv(const float* w, int n, const float* x, int ld, float* out) {
  for (int c0 = 0; c0 < ld; c0 += 4 * V::W) {
    switch (std::min(4, (ld - c0) / V::W)) {
      case 4: gemv_block<V, 4>(w, n, x + c0, ld, out + c0); break;
      case 3: gemv_block<V, 3>(w, n, x + c0, ld, out + c0); break;
      case 2: gemv_block<V, 2>(w, n, x + c0, ld, out + c0); break;
      default: gemv_block<V, 1>(w, n, x + c0, ld, out + c0); break;
    }
  }
}

// out[r * ldo + (0, NC W)] += sum_{j < n} w[r * ldw + j] x[j * ldx + (0, NC W)] for r < NR: NR
// rows of weights against the same x rows, so each x vector loaded from L1 feeds NR FMAs.
// Accumulate = false: out = the sum (out need not be cleared first).
template <class V, int NR, int NC, bool Accumulate>
void gemm_rows_block(const float* w, int ldw, int n, const float* x, int ldx, float* out, int ldo) {
  using T = typename V::T;
  T acc[NR][NC];
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = V::zero();
  for (int j = 0; j < n; ++j) {
    T xv[NC];
    for (int c = 0; c < NC; ++c) xv[c] = V::load(x + size_t(j) * ldx + c * V::W);
    for (int r = 0; r < NR; ++r) {
      const T wr = V::bcast(w + size_t(r) * ldw + j);
      for (int c = 0; c < NC; ++c) acc[r][c] = V::fma(wr, xv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) {
      float* o = out + size_t(r) * ldo + c * V::W;
      V::store(o, Accumulate ? V::add(V::load(o), acc[r][c]) : acc[r][c]);
    }
}

template <class V, int NR, bool Accumulate>
void gemm_rows_cols(const float* w, int ldw, int n, const float* x, int ldx, int cols, float* out, int ldo) {
  int c0 = 0;
  if constexpr (NR == 4) {
    for (; cols - c0 >= 3 * V::W; c0 += 3 * V::W)
      gemm_rows_block<V, NR, 3, Accumulate>(w, ldw, n, x + c0, ldx, out + c0, ldo);
  }
  for (; c0 < cols; c0 += 2 * V::W) {
    if (cols - c0 >= 2 * V::W) {
      gemm_rows_block<V, NR, 2, Accumulate>(w, ldw, n, x + c0, ldx, out + c0, ldo);
    } else {
      gemm_rows_block<V, NR, 1, Accumulate>(w, ldw, n, x + c0, ldx, out + c0, ldo);
    }
  }
}

// out[r * ldo + (0, cols)] += sum_{j < n} w[r * ldw + j] x[j * ldx + (0, cols)] for r < rows,
// cols a multiple of W: register blocks of 4 rows x 3 vectors of columns (12 accumulators; per j
// 3 loads and 4 broadcasts feed 12 FMAs), then 4 x 2 and 4 x 1; for at most 2 vectors of
// columns, 6 rows x 2 (12 accumulators). Each accumulator is a chain of n dependent FMAs, and
// two FMA pipes of latency 5 need 10 chains in flight (8, as 4 x 2, leave the pipes ~35% idle).
// Accumulate = false: out = the product (not cleared first).
template <class V, bool Accumulate = true>
void gemm_rows(const float* w, int ldw, int rows, int n, const float* x, int ldx, int cols, float* out, int ldo) {
  for (int r0 = 0; r0 < rows;) {
    const float* wr = w + size_t(r0) * ldw;
    float* o = out + size_t(r0) * ldo;
    const int nr = rows - r0 >= 6 && cols <= 2 * V::W ? 6 : std::min(4, rows - r0);
    r0 += nr;
    switch (nr) {
      case 6: gemm_rows_cols<V, 6, Accumulate>(wr, ldw, n, x, ldx, cols, o, ldo); break;
      case 4: gemm_rows_cols<V, 4, Accumulate>(wr, ldw, n, x, ldx, cols, o, ldo); break;
      case 3: gemm_rows_cols<V, 3, Accumulate>(wr, ldw, n, x, ldx, cols, o, ldo); break;
      case 2: gemm_rows_cols<V, 2, Accumulate>(wr, ldw, n, x, ldx, cols, o, ldo); break;
      default: gemm_rows_cols<V, 1, Accumulate>(wr, ldw, n, x, ldx, cols, o, ldo); break;
    }
  }
}

// NJ keys at a time: NJ x NC independent accumulators (one key alone is a chain of `rows`
// dependent FMAs, bound by the FMA latency).
template <class V, int NC, int NJ>
void add_outer_block(const float* P, int ldp, int rows, const float* x, int ld, int n, float* y) {
  using T = typename V::T;
  int j = 0;
  for (; j + NJ <= n; j += NJ) {
    T acc[NJ][NC];
    for (int k = 0; k < NJ; ++k)
      for (int c = 0; c < NC; ++c) acc[k][c] = V::load(y + size_t(j + k) * ld + c * V::W);
    for (int r = 0; r < rows; ++r) {
      T xr[NC];
      for (int c = 0; c < NC; ++c) xr[c] = V::load(x + size_t(r) * ld + c * V::W);
      for (int k = 0; k < NJ; ++k) {
        const T pr = V::bcast(P + size_t(r) * ldp + j + k);
        for (int c = 0; c < NC; ++c) acc[k][c] = V::fma(pr, xr[c], acc[k][c]);
      }
    }
    for (int k = 0; k < NJ; ++k)
      for (int c = 0; c < NC; ++c) V::store(y + size_t(j + k) * ld + c * V::W, acc[k][c]);
  }
  if constexpr (NJ > 1) {
    if (j < n) add_outer_block<V, NC, 1>(P + j, ldp, rows, x, ld, n - j, y + size_t(j) * ld);
  }
}

// y[j * ld + (0, ld)] += sum_{r < rows} P[r * ldp + j] x[r * ld + (0, ld)] for j < n.
template <class V>
void add_outer(const float* P, int ldp, int rows, const float* x, int ld, int n, float* y) {
  for (int c0 = 0; c0 < ld; c0 += 4 * V::W) {
    switch (std::min(4, (ld - c0) / V::W)) {
      case 4: add_outer_block<V, 4, 2>(P, ldp, rows, x + c0, ld, n, y + c0); break;
      case 3: add_outer_block<V, 3, 2>(P, ldp, rows, x + c0, ld, n, y + c0); break;
      case 2: add_outer_block<V, 2, 4>(P, ldp, rows, x + c0, ld, n, y + c0); break;
      default: add_outer_block<V, 1, 4>(P, ldp, rows, x + c0, ld, n, y + c0); break;
    }
  }
}

}  // namespace ff::cpu
