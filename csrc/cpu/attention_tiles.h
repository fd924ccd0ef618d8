// Small dense pieces shared by the cpu attention kernels, generic over the SIMD type V
// (simd.h). Rows of values are padded to a multiple of W floats ("ld"); key rows of the
// transposed layouts use key_stride().
//
//   gemv:      out = sum_{j < n} w_j x_j           (x_j a padded row; 2 key streams x up to 4
//                                                   vectors of register accumulators)
//   add_outer: y_j += sum_{r < rows} P[r][j] x_r   for j < n: the rank-`rows` update that
//              accumulates dv (or dk) from a block of rows at once, so each y_j is loaded and
//              stored once per block instead of once per row.
// Cost: one FMA per (j, W floats of a row), loads of x from L1.
#pragma once
#include <algorithm>
#include <cstdint>
#include "simd.h"

namespace ff::cpu {

// delta_r = dout_row . out_row for `rows` rows from `first_row` (rows of Dv floats), summed in
// double: the row term every attention backward subtracts (FlashAttention's D_i).
inline void row_deltas(const float* dout, const float* out, int64_t first_row, int rows, int Dv,
                       float* delta) {
  for (int r = 0; r < rows; ++r) {
    const int64_t row = first_row + r;
    double dl = 0.0;
    for (int e = 0; e < Dv; ++e) dl += double(dout[row * Dv + e]) * out[row * Dv + e];
    delta[r] = float(dl);
  }
}

// Row stride for n keys: a multiple of 16 floats, and not of 256 (rows 1 KiB apart would map
// to the same L1 sets).
inline int key_stride(int n) {
  const int ld = (n + 15) / 16 * 16;
  return ld % 256 == 0 ? ld + 16 : ld;
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

template <class V, int NC>
void add_outer_block(const float* P, int ldp, int rows, const float* x, int ld, int n, float* y) {
  using T = typename V::T;
  for (int j = 0; j < n; ++j) {
    T acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = V::load(y + size_t(j) * ld + c * V::W);
    for (int r = 0; r < rows; ++r) {
      const T pr = V::bcast(P + size_t(r) * ldp + j);
      for (int c = 0; c < NC; ++c) acc[c] = V::fma(pr, V::load(x + size_t(r) * ld + c * V::W), acc[c]);
    }
    for (int c = 0; c < NC; ++c) V::store(y + size_t(j) * ld + c * V::W, acc[c]);
  }
}

// y[j * ld + (0, ld)] += sum_{r < rows} P[r * ldp + j] x[r * ld + (0, ld)] for j < n.
template <class V>
void add_outer(const float* P, int ldp, int rows, const float* x, int ld, int n, float* y) {
  for (int c0 = 0; c0 < ld; c0 += 4 * V::W) {
    switch (std::min(4, (ld - c0) / V::W)) {
      case 4: add_outer_block<V, 4>(P, ldp, rows, x + c0, ld, n, y + c0); break;
      case 3: add_outer_block<V, 3>(P, ldp, rows, x + c0, ld, n, y + c0); break;
      case 2: add_outer_block<V, 2>(P, ldp, rows, x + c0, ld, n, y + c0); break;
      default: add_outer_block<V, 1>(P, ldp, rows, x + c0, ld, n, y + c0); break;
    }
  }
}

}  // namespace ff::cpu
