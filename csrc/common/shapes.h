// Shapes passed from the binding to every backend. Tensors are dense, row-major float32.
#pragma once
#include <cstdint>
#include "hd.h"

namespace ff {

// fourierMetric / fourierAttention operands: q [B,H,Nq,D], k [B,H,Nk,D], R broadcast to [H,D].
// R is stored as [rH, rD] with rH in {1, H} and rD in {1, D}: one radius, per feature, per head,
// or per head and feature. A size-1 dimension is broadcast (and its gradient summed).
struct MetricShape {
  int B = 1, H = 1, Nq = 1, Nk = 1, D = 1;
  int rH = 1, rD = 1;

  int64_t q_elems() const { return int64_t(B) * H * Nq * D; }
  int64_t k_elems() const { return int64_t(B) * H * Nk * D; }
  int64_t K_elems() const { return int64_t(B) * H * Nq * Nk; }
  int r_elems() const { return rH * rD; }
  // Offset of R's row for head h: R_hd = R[r_row(h) + r_col(d)].
  FF_HD int r_row(int h) const { return rH == 1 ? 0 : h * rD; }
  FF_HD int r_col(int d) const { return rD == 1 ? 0 : d; }
};

// fourierAttention / dotProductAttention operands: q [B,H,Nq,D], k [B,H,Nk,D], v [B,H,Nk,Dv],
// out [B,H,Nq,Dv], one statistic per query row [B,H,Nq]. Causal attention has Nq == Nk and
// lets row i see keys j <= i. (R fields are unused by dot-product attention.)
struct AttentionShape : MetricShape {
  int Dv = 1;
  bool causal = false;

  int64_t v_elems() const { return int64_t(B) * H * Nk * Dv; }
  int64_t out_elems() const { return int64_t(B) * H * Nq * Dv; }
  int64_t row_elems() const { return int64_t(B) * H * Nq; }
};

}  // namespace ff
