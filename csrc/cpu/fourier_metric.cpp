// cpu backend: the Fourier metric K[b,h,i,j] = prod_d s(R_hd (q_id - k_jd))^p and its fused
// backward (dq, dk, dR from one recomputation of the kernel).
//
// Forward cost: B*H*Nq*Nk*D sinc evaluations. Backward: the same number of sinc-and-derivative
// evaluations plus ~6 flops per (i, j, d) for the division-free gradient
//     dK/dx_d = p * k^(p-1) * (prod_{d' != d} s_d') * s'_d,     k = prod_d s_d,  K = k^p
// whose leave-one-out products come from prefix and suffix products (no division by a
// vanishing s). Threads take (b, h) slices; each keeps its own dR partial sums in double
// (dR sums B*Nq*Nk terms with cancellation) and the partials are added in a fixed order, so
// results do not depend on scheduling.
#include <algorithm>
#include <vector>
#include "../common/backend.h"
#include "../common/fourier_math.h"

namespace ff::backend {
namespace {

// Slice bh = (b, h): its head's row of R and its rows of q and k.
struct Slice {
  int h;
  const float *Rh, *qs, *ks;
  Slice(const MetricShape& sh, int bh, const float* q, const float* k, const float* R)
      : h(bh % sh.H), Rh(R + sh.r_row(h)), qs(q + int64_t(bh) * sh.Nq * sh.D), ks(k + int64_t(bh) * sh.Nk * sh.D) {}
};

}  // namespace

void fourier_metric_forward(const MetricShape& sh, const float* q, const float* k, const float* R, int power,
                            float* K) {
  const int D = sh.D, Nq = sh.Nq, Nk = sh.Nk;
  const int slices = sh.B * sh.H;
#pragma omp parallel for schedule(dynamic, 1)
  for (int bh = 0; bh < slices; ++bh) {
    const Slice sl(sh, bh, q, k, R);
    const float *Rh = sl.Rh, *qs = sl.qs, *ks = sl.ks;
    float* Ks = K + int64_t(bh) * Nq * Nk;
    for (int i = 0; i < Nq; ++i) {
      const float* qi = qs + int64_t(i) * D;
      for (int j = 0; j < Nk; ++j) {
        const float* kj = ks + int64_t(j) * D;
        float prod = 1.0f;
        for (int d = 0; d < D; ++d) prod *= sinc(Rh[sh.r_col(d)] * (qi[d] - kj[d]));
        Ks[int64_t(i) * Nk + j] = ipow(prod, power);
      }
    }
  }
}

void fourier_metric_backward(const MetricShape& sh, const float* q, const float* k, const float* R, int power,
                             const float* dK, float* dq, float* dk, float* dR) {
  const int D = sh.D, Nq = sh.Nq, Nk = sh.Nk;
  const int slices = sh.B * sh.H;
  const int nR = sh.r_elems();
  // dR partials: one row of nR doubles per (b, h) slice, summed in slice order below.
  std::vector<double> dR_part(size_t(slices) * nR, 0.0);
#pragma omp parallel for schedule(dynamic, 1)
  for (int bh = 0; bh < slices; ++bh) {
    const Slice sl(sh, bh, q, k, R);
    const int h = sl.h;
    const float *Rh = sl.Rh, *qs = sl.qs, *ks = sl.ks;
    const float* dKs = dK + int64_t(bh) * Nq * Nk;
    float* dqs = dq + int64_t(bh) * Nq * D;
    float* dks = dk + int64_t(bh) * Nk * D;
    double* dRp = dR_part.data() + size_t(bh) * nR;
    std::fill(dqs, dqs + int64_t(Nq) * D, 0.0f);
    std::fill(dks, dks + int64_t(Nk) * D, 0.0f);
    std::vector<float> s(D), ds(D), suffix(D + 1), r(D), diff(D);
    for (int d = 0; d < D; ++d) r[d] = Rh[sh.r_col(d)];
    for (int i = 0; i < Nq; ++i) {
      const float* qi = qs + int64_t(i) * D;
      float* dqi = dqs + int64_t(i) * D;
      for (int j = 0; j < Nk; ++j) {
        const float g = dKs[int64_t(i) * Nk + j];
        if (g == 0.0f) continue;
        const float* kj = ks + int64_t(j) * D;
        for (int d = 0; d < D; ++d) {
          diff[d] = qi[d] - kj[d];
          sinc_and_derivative(r[d] * diff[d], s[d], ds[d]);
        }
        suffix[D] = 1.0f;
        for (int d = D - 1; d >= 0; --d) suffix[d] = suffix[d + 1] * s[d];
        // coef = g * p * k^(p-1), with k = suffix[0] the plain sinc product
        const float coef = g * float(power) * ipow(suffix[0], power - 1);
        if (coef == 0.0f) continue;
        float* dkj = dks + int64_t(j) * D;
        float prefix = 1.0f;
        for (int d = 0; d < D; ++d) {
          const float t = coef * prefix * suffix[d + 1] * ds[d];  // dL/dx_d
          prefix *= s[d];
          dqi[d] += t * r[d];
          dkj[d] -= t * r[d];
          dRp[sh.r_row(h) + sh.r_col(d)] += double(t) * diff[d];
        }
      }
    }
  }
  // Sum the partials over batch (and over heads when R has one row) in a fixed order.
  std::vector<double> acc(nR, 0.0);
  for (int bh = 0; bh < slices; ++bh) {
    const int h = bh % sh.H;
    const int row = sh.rH == 1 ? 0 : h;
    for (int c = 0; c < sh.rD; ++c) acc[row * sh.rD + c] += dR_part[size_t(bh) * nR + row * sh.rD + c];
  }
  for (int e = 0; e < nR; ++e) dR[e] = float(acc[e]);
}

}  // namespace ff::backend
