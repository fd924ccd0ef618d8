// FAVOR+ linear attention on CUDA (formulas: common/favor.h; CPU twin: csrc/cpu/favor_attention.cpp,
// which scans the chunks of a slice in order on one thread; here every chunk of every slice is
// one batch entry of cuBLAS's strided-batched GEMM, and the scan over chunks is a short kernel).
//
// Features as rows of M + 1 floats, every slice padded to Np rows (causal: a multiple of
// C = favor::kChunk; the padding rows are 0 and contribute nothing):
//   Q [BH, Np, M+1] = [phi_i, eps sigma_i]     K [BH, Np, M+1] = [e_j, 1]    V~ = [v_j, 1]
//   Mi: the largest key stabiliser row i sees (causal: a running maximum), Mend[c] = Mi at the
//   end of chunk c (non-causal: one chunk, Mend = the slice's maximum).
//   Kp = [exp(s_j - Mend_c) e_j, 1],  Qp = [exp(Mend_{c-1} - M_i) phi_i, eps sigma_i] (non-causal: Q).
// Forward:
//   S_c = Kp_c^T V~_c per chunk (batched GEMM), then favor_scan_kernel makes S_c the sum of the
//   chunks before c, scaled to Mend_{c-1} (rows < M rescaled by exp(Mend_{c-1} - Mend_c) <= 1
//   as the running maximum grows, accumulated in double);
//   [num, den]_c = Qp_c S_c + masked(Phi_c E_c^T) V~_c  (the chunk's own pairs j <= i, kappa by
//   favor_mask_kernel); out = num / den.
// Backward, with G~ = [dout, -dout . out] / den:
//   dphi: T_c = G~_c S_c^T (keys before the chunk), Gw_c = masked(G~_c V~_c^T) (its own pairs),
//         dphi_i = exp(Mend_{c-1} - M_i) T_i + (Gw_c E_c)_i + eps (T_iM + sum_{j <= i} G_ij);
//   de, dv: U_c = Qp_c^T G~_c, then favor_scan_kernel backwards makes U_c the sum of the chunks
//         after c scaled to Mend_c; de_j = exp(s_j - Mend_c) (V~_c U_c^T)_j + (Gw_c^T Phi_c)_j,
//         dv~ = Kp_c U_c + masked(kappa)_c^T G~_c;
//   dl = dphi * (phi - eps), de * e;  dx = alpha dl W - scale x sum_m dl_m.
// Kernels: one warp per row for the row-wise ones (features, gradient rows, input gradients),
// grid-stride elementwise ones, one thread per state element for the scans. Memory per call:
// O(BH Np (M + Dv)) for the rows and O(BH Np C + BH (Np / C) M Dv) for the chunks' pairs and sums.
#include <cmath>
#include "../common/backend.h"
#include "../common/favor.h"
#include "attention_tiles.h"
#include "blas.h"
#include "reduce.h"
#include "strided_index.h"

namespace ff::backend {
namespace {

using namespace ff::cuda;
using favor::kChunk;
using ff::cuda::attention::Scratch;

constexpr int kRowThreads = 128;  // 4 warps: 4 rows per block
constexpr int kRowsPerBlock = kRowThreads / 32;

struct Sizes {
  int BH, Nq, Nk, F, M, Ma, Dv, E;
  bool causal;
  int C, NC, Npq, Npk;  // chunk rows, chunks per slice, padded rows of queries and keys
  float scale, eps;

  Sizes(const AttentionShape& s, int M_, float scale_, float eps_)
      : BH(s.B * s.H),
        Nq(s.Nq),
        Nk(s.Nk),
        F(s.D),
        M(M_),
        Ma(M_ + 1),
        Dv(s.Dv),
        E(s.Dv + 1),
        causal(s.causal),
        scale(scale_),
        eps(eps_) {
    if (causal) {
      C = kChunk;
      NC = (Nq + C - 1) / C;
      Npq = Npk = NC * C;
    } else {
      C = Nk;  // one chunk of every key; the queries are not chunked
      NC = 1;
      Npq = Nq;
      Npk = Nk;
    }
  }
  int64_t q_rows() const { return int64_t(BH) * Npq; }
  int64_t k_rows() const { return int64_t(BH) * Npk; }
};

inline unsigned row_blocks(int64_t rows) { return unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

// Row r of L [rows, Ma] (the slice's padded rows: row % Np < n are real) holds w_m . x; x [BH, n, F].
// Queries: -> [exp(l - s) + eps, eps sigma]; keys: -> [exp(l - s), 1] and s_out = s. Padding rows
// -> 0 (s_out = -inf).
__global__ void __launch_bounds__(kRowThreads)
    favor_features_kernel(float* L, int64_t rows, int Np, int n, int M, const float* x, int F, float scale, float eps,
                          bool query, float* s_out) {
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;  // whole warps leave together
  const int Ma = M + 1;
  float* l = L + r * Ma;
  const int64_t slice = r / Np;
  const int i = int(r % Np);
  if (i >= n) {
    for (int m = lane; m < Ma; m += 32) l[m] = 0.0f;
    if (!query && lane == 0) s_out[r] = -INFINITY;
    return;
  }
  const float* xr = x + (slice * n + i) * F;
  float sq = 0.0f;
  for (int f = lane; f < F; f += 32) sq += xr[f] * xr[f];
  const float half = 0.5f * scale * warp_sum(sq), alpha = sqrtf(scale);
  float s = -INFINITY;
  for (int m = lane; m < M; m += 32) {
    const float v = favor::favor_logit(l[m], half, alpha);
    l[m] = v;
    s = fmaxf(s, v);
  }
  s = warp_max(s);
  float sigma = 0.0f;
  for (int m = lane; m < M; m += 32) {
    const float e = expf(l[m] - s) + (query ? eps : 0.0f);
    l[m] = e;
    sigma += e;
  }
  sigma = warp_sum(sigma);
  if (lane == 0) {
    l[M] = query ? eps * sigma : 1.0f;
    if (!query) s_out[r] = s;
  }
}

// Per slice (one block): Mi [Npq] (causal: the running maximum of sk; else the slice's maximum
// for every row; padding rows repeat the last real one) and Mend [NC] (Mi at each chunk's end).
__global__ void favor_maxima_kernel(const float* sk, int Npk, int n, bool causal, float* Mi, int Npq, float* Mend,
                                    int C, int NC) {
  __shared__ float seg[256];
  __shared__ float scratch[32];
  __shared__ float block_m;
  const int slice = blockIdx.x;
  const float* s = sk + int64_t(slice) * Npk;
  float* mi = Mi + int64_t(slice) * Npq;
  const int T = blockDim.x;
  if (!causal) {
    float m = -INFINITY;
    for (int j = threadIdx.x; j < n; j += T) m = fmaxf(m, s[j]);
    m = warp_max(m);
    if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = m;
    __syncthreads();
    if (threadIdx.x == 0) {
      float t = -INFINITY;
      for (int w = 0; w < T / 32; ++w) t = fmaxf(t, scratch[w]);
      block_m = t;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < Npq; i += T) mi[i] = block_m;
    if (threadIdx.x == 0) Mend[slice] = block_m;
    return;
  }
  // causal: thread t scans rows [t L, (t + 1) L) of the slice; segment maxima scanned by thread 0
  const int L = (n + T - 1) / T;
  const int a = threadIdx.x * L, b = min(n, a + L);
  float run = -INFINITY;
  for (int j = a; j < b; ++j) run = fmaxf(run, s[j]);
  seg[threadIdx.x] = run;
  __syncthreads();
  if (threadIdx.x == 0) {
    float before = -INFINITY;
    for (int t = 0; t < T; ++t) {
      const float m = seg[t];
      seg[t] = before;  // the maximum of every earlier segment
      before = fmaxf(before, m);
    }
  }
  __syncthreads();
  run = seg[threadIdx.x];
  for (int j = a; j < b; ++j) mi[j] = run = fmaxf(run, s[j]);
  __syncthreads();
  for (int i = n + threadIdx.x; i < Npq; i += T) mi[i] = mi[n - 1];
  for (int c = threadIdx.x; c < NC; c += T) Mend[int64_t(slice) * NC + c] = mi[min(n, (c + 1) * C) - 1];
}

// f(e, r, c, slice, i) for every element e = r * cols + c of a [rows, cols] array whose rows are
// slices of `per` rows each (row r is row i = r % per of slice r / per), grid-stride.
template <class F>
__device__ inline void for_each_slice_element(int64_t rows, int cols, int per, F&& f) {
  const int64_t total = rows * cols;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / cols;
    f(e, r, int(e % cols), r / per, int(r % per));
  }
}

// Kp = [exp(s_j - Mend_c) e_j, 1] from K, and (causal) Qp = [exp(Mend_{c-1} - M_i) phi_i, eps sigma_i].
__global__ void favor_scale_kernel(const float* K, const float* sk, float* Kp, const float* Q, const float* Mi,
                                   float* Qp, const float* Mend, int64_t rows, int Np, int C, int NC, int Ma) {
  for_each_slice_element(rows, Ma, Np, [&](int64_t e, int64_t r, int m, int64_t slice, int i) {
    const int c = i / C;
    const float end = Mend[slice * NC + c];
    Kp[e] = m + 1 < Ma ? expf(sk[r] - end) * K[e] : K[e];
    if (Qp != nullptr) {
      const float prev = c > 0 ? Mend[slice * NC + c - 1] : -INFINITY;
      Qp[e] = m + 1 < Ma ? expf(prev - Mi[r]) * Q[e] : Q[e];
    }
  });
}

// V~ [rows, Dv+1] = [v, 1] (padding rows 0).
__global__ void favor_values_kernel(const float* v, float* Vt, int64_t rows, int Np, int n, int Dv) {
  for_each_slice_element(rows, Dv + 1, Np, [&](int64_t e, int64_t, int c, int64_t slice, int i) {
    Vt[e] = i >= n ? 0.0f : (c < Dv ? v[(slice * n + i) * Dv + c] : 1.0f);
  });
}

// The chunk sums S [BH, NC, Ma, E] in place: forward (reverse = false) S_c <- sum_{c' < c} S_c'
// scaled to Mend_{c-1}; reverse S_c <- sum_{c' > c} S_c' scaled to Mend_c. Rows < M of a running
// sum are rescaled by exp(new reference - old) <= 1 at each step; double accumulators.
__global__ void favor_scan_kernel(float* S, const float* Mend, int BH, int NC, int Ma, int E, bool reverse) {
  const int64_t per = int64_t(Ma) * E;
  const int64_t total = int64_t(BH) * per;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t slice = t / per, at = t % per;
    const bool rescaled = at / E < Ma - 1;
    const float* end = Mend + slice * NC;
    float* s = S + slice * NC * per + at;
    double acc = 0.0;
    for (int step = 0; step < NC; ++step) {
      const int c = reverse ? NC - 1 - step : step;
      const double delta = s[int64_t(c) * per];
      s[int64_t(c) * per] = float(acc);
      // forward: the keys' acc moves from reference Mend_{c-1} to Mend_c, a factor
      // exp(Mend_{c-1} - Mend_c); reverse: the queries' acc from Mend_c to Mend_{c-1} (delta, the
      // chunk's own, is referenced to Mend_{c-1}): the same factor. Both <= 1.
      const double f = !rescaled ? 1.0 : (c > 0 ? double(expf(end[c - 1] - end[c])) : 0.0);
      acc = acc * f + delta;
    }
  }
}

// The chunk pair matrices X [BH, NC, C, C] in place: X_ij (j <= i) -> exp(s_j - M_i) X_ij + add_i,
// else 0; add_i = the eps sigma_i of row i of Q (with_add) or 0. rowsum (if given) gets
// sum_{j <= i} X_ij before scaling. One warp per row.
__global__ void __launch_bounds__(kRowThreads)
    favor_mask_kernel(float* X, int64_t rows, int C, const float* sk, const float* Mi, const float* Q, int Ma,
                      float* rowsum) {
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;  // a row of the padded slices
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const int i = int(r % C);
  const int64_t chunk0 = r - i;  // the chunk's first row
  float* x = X + r * C;
  const float m = Mi[r];
  const float add = Q != nullptr ? Q[r * Ma + Ma - 1] : 0.0f;
  float t = 0.0f;
  for (int j = lane; j < C; j += 32) {
    if (j <= i) {
      t += x[j];
      x[j] = favor::favor_weight(x[j], expf(sk[chunk0 + j] - m), add);
    } else {
      x[j] = 0.0f;
    }
  }
  t = warp_sum(t);
  if (rowsum != nullptr && lane == 0) rowsum[r] = t;
}

// out = num / den from N [rows, E] for the real rows; den likewise.
__global__ void favor_finish_kernel(const float* N, int64_t rows, int Np, int n, int Dv, float* out, float* den) {
  for_each_slice_element(rows, Dv + 1, Np, [&](int64_t e, int64_t r, int c, int64_t slice, int i) {
    if (i >= n) return;
    const float d = N[r * (Dv + 1) + Dv];
    const int64_t at = slice * n + i;
    if (c < Dv)
      out[at * Dv + c] = d > 0.0f ? N[e] / d : 0.0f;
    else
      den[at] = d;
  });
}

// G~ [rows, E] = [dout, -dout . out] / den (0 where den = 0 and on padding rows). One warp per row.
__global__ void __launch_bounds__(kRowThreads)
    favor_grad_rows_kernel(const float* dout, const float* out, const float* den, float* G, int64_t rows, int Np, int n,
                           int Dv) {
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const int E = Dv + 1;
  float* g = G + r * E;
  const int64_t slice = r / Np;
  const int i = int(r % Np);
  if (i >= n) {
    for (int c = lane; c < E; c += 32) g[c] = 0.0f;
    return;
  }
  const int64_t at = slice * n + i;
  const float d = den[at], inv = d > 0.0f ? 1.0f / d : 0.0f;
  float dot = 0.0f;
  for (int c = lane; c < Dv; c += 32) {
    dot += dout[at * Dv + c] * out[at * Dv + c];
    g[c] = dout[at * Dv + c] * inv;
  }
  dot = warp_sum(dot);
  if (lane == 0) g[Dv] = -dot * inv;
}

// dl of the queries in place in dQ [rows, Ma] (whose first M columns hold (Gw E)_i, or 0):
// dl_im = (dQ_im + f_i T_im + eps (T_iM + rs_i)) (phi_im - eps), f_i = exp(Mend_{c-1} - M_i)
// (causal) or 1; rs (causal) the rows' sums of G over their chunk, else absent.
__global__ void favor_query_grad_kernel(float* dQ, const float* T, const float* Q, const float* Mi, const float* Mend,
                                        const float* rs, int64_t rows, int Np, int C, int NC, int Ma, float eps,
                                        bool causal) {
  const int M = Ma - 1;
  const int64_t total = rows * M;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / M;
    const int m = int(e % M);
    const int64_t at = r * Ma + m;
    float inter = T[at], extra = T[r * Ma + M];
    if (causal) {
      const int64_t slice = r / Np;
      const int c = int(r % Np) / C;
      inter = c > 0 ? expf(Mend[slice * NC + c - 1] - Mi[r]) * inter : 0.0f;
      extra = (c > 0 ? extra : 0.0f) + rs[r];
    }
    const float intra = causal ? dQ[at] : 0.0f;
    dQ[at] = (intra + inter + eps * extra) * (Q[at] - eps);
  }
}

// dK [rows, Ma] columns < M times exp(s_j - Mend_c).
__global__ void favor_key_rescale_kernel(float* dK, const float* sk, const float* Mend, int64_t rows, int Np, int C,
                                         int NC, int Ma) {
  for_each_slice_element(rows, Ma - 1, Np, [&](int64_t, int64_t r, int m, int64_t slice, int i) {
    dK[r * Ma + m] *= expf(sk[r] - Mend[slice * NC + i / C]);
  });
}

// dK [rows, Ma] columns < M times e (K's first M columns).
__global__ void favor_key_grad_kernel(float* dK, const float* K, int64_t rows, int Ma) {
  const int M = Ma - 1;
  const int64_t total = rows * M;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t at = (e / M) * Ma + e % M;
    dK[at] *= K[at];
  }
}

// dx [BH, n, F] (holding dl W) <- alpha dx - scale x sum_m dl_m; dl rows of padded slices. One warp per row.
__global__ void __launch_bounds__(kRowThreads)
    favor_input_grad_kernel(float* dx, const float* x, const float* dl, int64_t rows, int Np, int n, int F, int Ma,
                            float scale) {
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;  // a real row
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const int64_t slice = r / n;
  const int i = int(r % n);
  const float* d = dl + (slice * Np + i) * Ma;
  float t = 0.0f;
  for (int m = lane; m < Ma - 1; m += 32) t += d[m];
  t = warp_sum(t);
  const float alpha = sqrtf(scale);
  for (int f = lane; f < F; f += 32) dx[r * F + f] = alpha * dx[r * F + f] - scale * x[r * F + f] * t;
}

// dv [BH, n, Dv] from dV~ [rows, E] (the real rows, the first Dv columns).
__global__ void favor_dv_kernel(const float* dVt, float* dv, int64_t rows, int Np, int n, int Dv) {
  for_each_slice_element(rows, Dv, n, [&](int64_t e, int64_t, int c, int64_t slice, int i) {  // real rows
    dv[e] = dVt[(slice * Np + i) * (Dv + 1) + c];
  });
}

float* device_floats(Scratch& s) { return static_cast<float*>(s.ptr); }

// The features of a call: Q, K (with sk), Mi, Mend, Kp, Qp (causal), V~.
struct Features {
  const Sizes& z;
  Scratch Qb, Kb, skb, Mib, Mendb, Kpb, Qpb, Vb;
  float *Q, *K, *sk, *Mi, *Mend, *Kp, *Qp, *V;

  Features(const Sizes& z_, const float* q, const float* k, const float* v, const float* W)
      : z(z_),
        Qb(sizeof(float) * z_.q_rows() * z_.Ma),
        Kb(sizeof(float) * z_.k_rows() * z_.Ma),
        skb(sizeof(float) * z_.k_rows()),
        Mib(sizeof(float) * z_.q_rows()),
        Mendb(sizeof(float) * z_.BH * z_.NC),
        Kpb(sizeof(float) * z_.k_rows() * z_.Ma),
        Qpb(z_.causal ? sizeof(float) * z_.q_rows() * z_.Ma : 1),
        Vb(sizeof(float) * z_.k_rows() * z_.E) {
    Q = device_floats(Qb), K = device_floats(Kb), sk = device_floats(skb), Mi = device_floats(Mib);
    Mend = device_floats(Mendb), Kp = device_floats(Kpb), Qp = z.causal ? device_floats(Qpb) : Q, V = device_floats(Vb);
    // w_m . x for every row (the padding rows are filled by favor_features_kernel)
    gemm_row_major(false, true, z.Nq, z.M, z.F, q, z.F, int64_t(z.Nq) * z.F, W, z.F, 0, 0.0f, Q, z.Ma,
                   int64_t(z.Npq) * z.Ma, z.BH);
    gemm_row_major(false, true, z.Nk, z.M, z.F, k, z.F, int64_t(z.Nk) * z.F, W, z.F, 0, 0.0f, K, z.Ma,
                   int64_t(z.Npk) * z.Ma, z.BH);
    FF_LAUNCH(favor_features_kernel, dim3(row_blocks(z.q_rows())), dim3(kRowThreads), 0, Q, z.q_rows(), z.Npq, z.Nq,
              z.M, q, z.F, z.scale, z.eps, true, static_cast<float*>(nullptr));
    FF_LAUNCH(favor_features_kernel, dim3(row_blocks(z.k_rows())), dim3(kRowThreads), 0, K, z.k_rows(), z.Npk, z.Nk,
              z.M, k, z.F, z.scale, z.eps, false, sk);
    FF_LAUNCH(favor_maxima_kernel, dim3(unsigned(z.BH)), dim3(256), 0, sk, z.Npk, z.Nk, z.causal, Mi, z.Npq, Mend, z.C,
              z.NC);
    FF_LAUNCH(favor_scale_kernel, dim3(blocks_for(z.k_rows() * z.Ma)), dim3(kThreads), 0, K, sk, Kp, Q, Mi,
              z.causal ? Qp : static_cast<float*>(nullptr), Mend, z.k_rows(), z.Npk, z.C, z.NC, z.Ma);
    FF_LAUNCH(favor_values_kernel, dim3(blocks_for(z.k_rows() * z.E)), dim3(kThreads), 0, v, V, z.k_rows(), z.Npk, z.Nk,
              z.Dv);
  }
};

// Batched row-major GEMM over the chunks of every slice (causal) or the slices (non-causal).
struct Chunked {
  const Sizes& z;
  int batch() const { return z.BH * z.NC; }
  // C_b = op(A_b) op(B_b) + beta C_b with per-batch strides.
  void gemm(bool ta, bool tb, int m, int n, int k, const float* A, int lda, int64_t sa, const float* B, int ldb,
            int64_t sb, float beta, float* C, int ldc, int64_t sc) const {
    gemm_row_major(ta, tb, m, n, k, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch());
  }
};

// The key sums S (per chunk, then scanned: the keys before each chunk) [BH, NC, Ma, E].
void key_sums(const Sizes& z, const Features& f, float* S) {
  const Chunked ch{z};
  ch.gemm(true, false, z.Ma, z.E, z.C, f.Kp, z.Ma, int64_t(z.C) * z.Ma, f.V, z.E, int64_t(z.C) * z.E, 0.0f, S, z.E,
          int64_t(z.Ma) * z.E);
  if (z.causal)
    FF_LAUNCH(favor_scan_kernel, dim3(blocks_for(int64_t(z.BH) * z.Ma * z.E)), dim3(kThreads), 0, S, f.Mend, z.BH, z.NC,
              z.Ma, z.E, false);
}

// The chunks' own pairs: P [BH, NC, C, C] = masked Phi E^T (kappa, with eps sigma), or with G~
// given masked G~ V~^T (and its rows' sums into rs).
void chunk_pairs(const Sizes& z, const Features& f, float* P, const float* G, float* rs) {
  const Chunked ch{z};
  const int64_t cm = int64_t(z.C) * z.Ma, ce = int64_t(z.C) * z.E, cc = int64_t(z.C) * z.C;
  if (G == nullptr)
    ch.gemm(false, true, z.C, z.C, z.M, f.Q, z.Ma, cm, f.K, z.Ma, cm, 0.0f, P, z.C, cc);
  else
    ch.gemm(false, true, z.C, z.C, z.E, G, z.E, ce, f.V, z.E, ce, 0.0f, P, z.C, cc);
  FF_LAUNCH(favor_mask_kernel, dim3(row_blocks(z.q_rows())), dim3(kRowThreads), 0, P, z.q_rows(), z.C, f.sk, f.Mi,
            G == nullptr ? f.Q : static_cast<const float*>(nullptr), z.Ma, rs);
}

}  // namespace

void favor_attention_forward(const AttentionShape& s, int M, const float* q, const float* k, const float* v,
                             const float* W, float scale, float eps, float* out, float* den) {
  const Sizes z(s, M, scale, eps);
  const Features f(z, q, k, v, W);
  const Chunked ch{z};
  Scratch Sb(sizeof(float) * z.BH * z.NC * z.Ma * z.E), Nb(sizeof(float) * z.q_rows() * z.E);
  float *S = device_floats(Sb), *N = device_floats(Nb);
  key_sums(z, f, S);
  if (z.causal) {
    const int64_t cm = int64_t(z.C) * z.Ma, ce = int64_t(z.C) * z.E;
    ch.gemm(false, false, z.C, z.E, z.Ma, f.Qp, z.Ma, cm, S, z.E, int64_t(z.Ma) * z.E, 0.0f, N, z.E, ce);
    Scratch Pb(sizeof(float) * z.q_rows() * z.C);
    float* P = device_floats(Pb);
    chunk_pairs(z, f, P, nullptr, nullptr);
    ch.gemm(false, false, z.C, z.E, z.C, P, z.C, int64_t(z.C) * z.C, f.V, z.E, ce, 1.0f, N, z.E, ce);
  } else {
    ch.gemm(false, false, z.Nq, z.E, z.Ma, f.Q, z.Ma, int64_t(z.Nq) * z.Ma, S, z.E, int64_t(z.Ma) * z.E, 0.0f, N, z.E,
            int64_t(z.Nq) * z.E);
  }
  FF_LAUNCH(favor_finish_kernel, dim3(blocks_for(z.q_rows() * z.E)), dim3(kThreads), 0, N, z.q_rows(), z.Npq, z.Nq,
            z.Dv, out, den);
}

void favor_attention_backward(const AttentionShape& s, int M, const float* q, const float* k, const float* v,
                              const float* W, float scale, float eps, const float* out, const float* den,
                              const float* dout, float* dq, float* dk, float* dv) {
  const Sizes z(s, M, scale, eps);
  const Features f(z, q, k, v, W);
  const Chunked ch{z};
  const int64_t state = int64_t(z.Ma) * z.E;
  Scratch Gb(sizeof(float) * z.q_rows() * z.E), Sb(sizeof(float) * z.BH * z.NC * state);
  Scratch dQb(sizeof(float) * z.q_rows() * z.Ma), dKb(sizeof(float) * z.k_rows() * z.Ma);
  Scratch dVb(sizeof(float) * z.k_rows() * z.E);
  float *G = device_floats(Gb), *S = device_floats(Sb), *dQ = device_floats(dQb), *dK = device_floats(dKb);
  float* dVt = device_floats(dVb);
  FF_LAUNCH(favor_grad_rows_kernel, dim3(row_blocks(z.q_rows())), dim3(kRowThreads), 0, dout, out, den, G, z.q_rows(),
            z.Npq, z.Nq, z.Dv);
  // dphi: T = G~ S^T into dK's room (same shape per row when causal; non-causal queries: own buffer)
  key_sums(z, f, S);
  Scratch Tb(sizeof(float) * z.q_rows() * z.Ma);
  float* T = device_floats(Tb);
  const int rows_q = z.causal ? z.C : z.Nq;
  const int64_t qm = int64_t(rows_q) * z.Ma, qe = int64_t(rows_q) * z.E;
  ch.gemm(false, true, rows_q, z.Ma, z.E, G, z.E, qe, S, z.E, state, 0.0f, T, z.Ma, qm);
  Scratch Pb(z.causal ? sizeof(float) * z.q_rows() * z.C : 1), Gwb(z.causal ? sizeof(float) * z.q_rows() * z.C : 1);
  Scratch rsb(z.causal ? sizeof(float) * z.q_rows() : 1);
  float *P = device_floats(Pb), *Gw = device_floats(Gwb), *rs = device_floats(rsb);
  const int64_t cc = int64_t(z.C) * z.C, cm = int64_t(z.C) * z.Ma, ce = int64_t(z.C) * z.E;
  if (z.causal) {
    chunk_pairs(z, f, Gw, G, rs);
    ch.gemm(false, false, z.C, z.M, z.C, Gw, z.C, cc, f.K, z.Ma, cm, 0.0f, dQ, z.Ma, cm);
  }
  FF_LAUNCH(favor_query_grad_kernel, dim3(blocks_for(z.q_rows() * z.M)), dim3(kThreads), 0, dQ, T, f.Q, f.Mi, f.Mend,
            rs, z.q_rows(), z.Npq, z.C, z.NC, z.Ma, z.eps, z.causal);
  // de, dv: U = Qp^T G~ per chunk, scanned backwards (non-causal: all queries, one sum per slice)
  ch.gemm(true, false, z.Ma, z.E, rows_q, f.Qp, z.Ma, qm, G, z.E, qe, 0.0f, S, z.E, state);
  if (z.causal)
    FF_LAUNCH(favor_scan_kernel, dim3(blocks_for(int64_t(z.BH) * state)), dim3(kThreads), 0, S, f.Mend, z.BH, z.NC,
              z.Ma, z.E, true);
  ch.gemm(false, true, z.C, z.Ma, z.E, f.V, z.E, ce, S, z.E, state, 0.0f, dK, z.Ma, cm);
  ch.gemm(false, false, z.C, z.E, z.Ma, f.Kp, z.Ma, cm, S, z.E, state, 0.0f, dVt, z.E, ce);
  FF_LAUNCH(favor_key_rescale_kernel, dim3(blocks_for(z.k_rows() * z.M)), dim3(kThreads), 0, dK, f.sk, f.Mend,
            z.k_rows(), z.Npk, z.C, z.NC, z.Ma);
  if (z.causal) {
    ch.gemm(true, false, z.C, z.M, z.C, Gw, z.C, cc, f.Q, z.Ma, cm, 1.0f, dK, z.Ma, cm);
    chunk_pairs(z, f, P, nullptr, nullptr);
    ch.gemm(true, false, z.C, z.E, z.C, P, z.C, cc, G, z.E, ce, 1.0f, dVt, z.E, ce);
  }
  FF_LAUNCH(favor_key_grad_kernel, dim3(blocks_for(z.k_rows() * z.M)), dim3(kThreads), 0, dK, f.K, z.k_rows(), z.Ma);
  // dx = alpha dl W - scale x sum dl
  gemm_row_major(false, false, z.Nq, z.F, z.M, dQ, z.Ma, int64_t(z.Npq) * z.Ma, W, z.F, 0, 0.0f, dq, z.F,
                 int64_t(z.Nq) * z.F, z.BH);
  gemm_row_major(false, false, z.Nk, z.F, z.M, dK, z.Ma, int64_t(z.Npk) * z.Ma, W, z.F, 0, 0.0f, dk, z.F,
                 int64_t(z.Nk) * z.F, z.BH);
  const int64_t real_q = int64_t(z.BH) * z.Nq, real_k = int64_t(z.BH) * z.Nk;
  FF_LAUNCH(favor_input_grad_kernel, dim3(row_blocks(real_q)), dim3(kRowThreads), 0, dq, q, dQ, real_q, z.Npq, z.Nq,
            z.F, z.Ma, z.scale);
  FF_LAUNCH(favor_input_grad_kernel, dim3(row_blocks(real_k)), dim3(kRowThreads), 0, dk, k, dK, real_k, z.Npk, z.Nk,
            z.F, z.Ma, z.scale);
  FF_LAUNCH(favor_dv_kernel, dim3(blocks_for(real_k * z.Dv)), dim3(kThreads), 0, dVt, dv, real_k, z.Npk, z.Nk, z.Dv);
}

}  // namespace ff::backend
