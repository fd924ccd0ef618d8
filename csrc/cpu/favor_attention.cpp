// cpu backend: FAVOR+ linear attention, forward and backward (formulas: common/favor.h; contract:
// common/backend.h). Threads over (b, h) slices; each slice runs on one thread with OpenBLAS
// products (blas.h, single-threaded inside the team) and loops the compiler vectorises
// (vec_math.h).
//
// Per slice, the features live as rows of M + 1 floats ("augmented"):
//   Q row i = [phi_i, eps sigma_i],  K row j = [e_j, 1],  V row j = [v_j, 1]  (Dv + 1 floats)
// so one product gives numerator and denominator together: with a key sum
// A = sum_j [exp(s_j - M) e_j, 1] [v_j, 1]^T ([M+1, Dv+1]), Q_i A = [num_i, den_i]; its last row
// (the plain sum of [v_j, 1]) carries the eps term eps sigma_i sum_j [v_j, 1].
//
// Non-causal: A over every key (M = max_j s_j), then [num, den] = Q A: two GEMMs.
// Causal: chunks of C = favor::kChunk rows in order. For row i of a chunk starting at c0, with
//   Mp = M_{c0-1} (the running maximum before the chunk) and A the sum of earlier keys scaled to
//   Mp:  [num_i, den_i] = [exp(Mp - M_i) phi_i, eps sigma_i] A + sum_{c0 <= j <= i} kappa_ij [v_j, 1],
// the pairs inside the chunk as a masked C x C matrix (kappa from P = Phi E^T), then
//   A <- A rescaled to the chunk's last maximum (rows < M by exp(Mp - M_{c1-1}) <= 1) + the chunk's
//   keys. A is accumulated in double and rounded to float for each product.
//
// Backward, with g~_i = [dout_i, -dout_i . out_i] / den_i (so dL/dkappa_ij = g~_i . [v_j, 1]):
//   dphi_i  = sum_j G_ij (exp(s_j - M_i) e_j + eps 1),  de_j = sum_i G_ij exp(s_j - M_i) phi_i,
//   d[v_j, 1] = sum_i kappa_ij g~_i,  dl = dphi * e (queries: phi - eps), de * e (keys),
//   dx = alpha dl W - scale x sum_m dl_m.
// Non-causal: A as forward; dQ = G~ A^T, U = Q^T G~ ([M+1, Dv+1]), dK = V U^T, dV = K U: GEMMs.
// Causal: a forward scan (dphi from the keys before each row: A again) and a backward scan (de and
// dv from the rows after each key: U, the sum of [exp(R - M_i) phi_i, eps sigma_i] g~_i^T over
// later rows, R the running maximum at the chunk's start), each chunk's own pairs by masked C x C
// products. Every exp factor is of a difference <= 0.
// Cost per slice: see backend.h; memory (Nq + Nk)(M + 1) + Nk (Dv + 1) floats + O(C (M + Dv)).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>
#include "../common/backend.h"
#include "../common/favor.h"
#include "attention_tiles.h"
#include "blas.h"
#include "threads.h"
#include "vec_math.h"

namespace ff::backend {
namespace {

using cpu::Floats;
using favor::kChunk;
constexpr float kNoKey = -std::numeric_limits<float>::infinity();

struct Problem {
  const AttentionShape* sh;
  int M;  // random features
  const float *q, *k, *v, *W;
  float scale, eps;
  int F() const { return sh->D; }
  int Ma() const { return M + 1; }
  int E() const { return sh->Dv + 1; }
};

// C = op(A) op(B) + beta C on the calling thread (row-major, leading dimensions as stored).
void gemm(bool ta, bool tb, int m, int n, int kk, const float* A, int lda, const float* B, int ldb, float beta,
          float* C, int ldc) {
  cpu::Sgemm g;
  g.trans_a = ta, g.trans_b = tb, g.M = m, g.N = n, g.K = kk;
  g.A = A, g.lda = lda, g.B = B, g.ldb = ldb, g.beta = beta, g.C = C, g.ldc = ldc;
  cpu::sgemm_block(g, 0, m, 0, n);
}

// Row of M logits w_m . x (in place) -> exp(l_m - s) with l = favor_logit; returns s = max_m l_m.
FF_VECTORIZE float stabilised_row(float* L, int M, const float* x, int F, float scale) {
  float sq = 0.0f;
  for (int f = 0; f < F; ++f) sq += x[f] * x[f];
  const float half = 0.5f * scale * sq, alpha = std::sqrt(scale);
  float s = kNoKey;
  for (int m = 0; m < M; ++m) {
    L[m] = favor::favor_logit(L[m], half, alpha);
    s = std::max(s, L[m]);
  }
  for (int m = 0; m < M; ++m) L[m] = cpu::exp_f(L[m] - s);
  return s;
}

// A slice's features: Q [Nq, M+1] = [phi, eps sigma], K [Nk, M+1] = [e, 1], the keys' s and the
// running (causal) or overall maximum Mi each query row sees, V [Nk, Dv+1] = [v, 1].
struct Features {
  int Nq, Nk, M, Ma, Dv, E;
  Floats Q, K, V, sk, Mi;

  Features(const Problem& p, int bh)
      : Nq(p.sh->Nq),
        Nk(p.sh->Nk),
        M(p.M),
        Ma(p.Ma()),
        Dv(p.sh->Dv),
        E(p.E()),
        Q(size_t(Nq) * Ma),
        K(size_t(Nk) * Ma),
        V(size_t(Nk) * E),
        sk(Nk),
        Mi(Nq) {
    const int F = p.F();
    const float* q = p.q + int64_t(bh) * Nq * F;
    const float* k = p.k + int64_t(bh) * Nk * F;
    const float* v = p.v + int64_t(bh) * Nk * Dv;
    gemm(false, true, Nq, M, F, q, F, p.W, F, 0.0f, Q.data(), Ma);
    gemm(false, true, Nk, M, F, k, F, p.W, F, 0.0f, K.data(), Ma);
    for (int i = 0; i < Nq; ++i) {
      float* r = Q.data() + size_t(i) * Ma;
      stabilised_row(r, M, q + int64_t(i) * F, F, p.scale);
      float sigma = 0.0f;
      for (int m = 0; m < M; ++m) sigma += (r[m] += p.eps);
      r[M] = p.eps * sigma;
    }
    for (int j = 0; j < Nk; ++j) {
      sk[j] = stabilised_row(K.data() + size_t(j) * Ma, M, k + int64_t(j) * F, F, p.scale);
      K[size_t(j) * Ma + M] = 1.0f;
      std::copy(v + int64_t(j) * Dv, v + int64_t(j + 1) * Dv, V.begin() + size_t(j) * E);
      V[size_t(j) * E + Dv] = 1.0f;
    }
    if (p.sh->causal) {
      float run = kNoKey;
      for (int i = 0; i < Nq; ++i) Mi[i] = run = std::max(run, sk[i]);
    } else {
      const float all = *std::max_element(sk.begin(), sk.end());
      std::fill(Mi.begin(), Mi.end(), all);
    }
  }

  float* q_row(int i) { return Q.data() + size_t(i) * Ma; }
  float* k_row(int j) { return K.data() + size_t(j) * Ma; }
  float* v_row(int j) { return V.data() + size_t(j) * E; }
  // The running maximum before row i (-inf for the first row).
  float before(int i) const { return i > 0 ? Mi[i - 1] : kNoKey; }
};

// dst rows [exp(s_j - ref) e_j, 1] (or [exp(ref - M_i) phi_i, eps sigma_i] with queries: pass
// stabilisers and reference the other way round): the first M columns of each src row scaled.
FF_VECTORIZE void scaled_rows(const float* src, float* dst, int rows, int Ma, const float* num, float ref,
                              bool num_minus_ref) {
  for (int r = 0; r < rows; ++r) {
    const float f = cpu::exp_f(num_minus_ref ? num[r] - ref : ref - num[r]);
    for (int m = 0; m + 1 < Ma; ++m) dst[size_t(r) * Ma + m] = f * src[size_t(r) * Ma + m];
    dst[size_t(r) * Ma + Ma - 1] = src[size_t(r) * Ma + Ma - 1];
  }
}

// The masked pair matrix of a chunk in place: X_ij (j <= i) -> exp(s_j - M_i) X_ij + add_i, 0 for
// j > i; X is [n, n] with rows C apart. rowsum (if given) gets sum_{j <= i} X_ij before scaling.
FF_VECTORIZE void mask_pairs(float* X, int n, const float* s, const float* Mi, const float* add, float* rowsum) {
  for (int r = 0; r < n; ++r) {
    float* x = X + size_t(r) * kChunk;
    float t = 0.0f;
    for (int c = 0; c < n; ++c) {
      const bool on = c <= r;
      t += cpu::select(on, x[c], 0.0f);
      x[c] = cpu::select(on, favor::favor_weight(x[c], cpu::exp_f(s[c] - Mi[r]), add ? add[r] : 0.0f), 0.0f);
    }
    if (rowsum) rowsum[r] = t;
  }
}

// A running sum [M+1, E] in double with its float copy for the products: rescale rows < M, add.
struct RunningSum {
  int Ma, E;
  std::vector<double> acc;
  Floats f, delta;
  bool empty = true;
  RunningSum(int Ma_, int E_)
      : Ma(Ma_), E(E_), acc(size_t(Ma_) * E_, 0.0), f(size_t(Ma_) * E_, 0.0f), delta(size_t(Ma_) * E_) {}
  // acc <- factor * acc (rows < M) + delta
  void update(float factor) {
    for (int m = 0; m < Ma; ++m) {
      const double r = m + 1 < Ma && !empty ? double(factor) : 1.0;
      for (int e = 0; e < E; ++e) {
        double& a = acc[size_t(m) * E + e];
        a = (empty ? 0.0 : a * r) + delta[size_t(m) * E + e];
        f[size_t(m) * E + e] = float(a);
      }
    }
    empty = false;
  }
};

// out = num / den from rows [num, den] of N [n, E].
void finish_rows(const float* N, int n, int Dv, float* out, float* den) {
  for (int i = 0; i < n; ++i) {
    const float* r = N + size_t(i) * (Dv + 1);
    const float d = r[Dv], inv = d > 0.0f ? 1.0f / d : 0.0f;
    for (int e = 0; e < Dv; ++e) out[int64_t(i) * Dv + e] = r[e] * inv;
    den[i] = d;
  }
}

struct ForwardArgs {
  Problem p;
  float *out, *den;
};

void forward_slice(const ForwardArgs& a, int bh) {
  cpu::FlushSubnormals ftz;
  const Problem& p = a.p;
  Features f(p, bh);
  const int Ma = f.Ma, E = f.E, M = f.M;
  Floats N(size_t(f.Nq) * E);
  if (!p.sh->causal) {
    scaled_rows(f.K.data(), f.K.data(), f.Nk, Ma, f.sk.data(), f.Mi[0], true);
    Floats A(size_t(Ma) * E);
    gemm(true, false, Ma, E, f.Nk, f.K.data(), Ma, f.V.data(), E, 0.0f, A.data(), E);
    gemm(false, false, f.Nq, E, Ma, f.Q.data(), Ma, A.data(), E, 0.0f, N.data(), E);
  } else {
    RunningSum A(Ma, E);
    Floats Qs(size_t(kChunk) * Ma), Ks(size_t(kChunk) * Ma), P(size_t(kChunk) * kChunk);
    for (int c0 = 0; c0 < f.Nq; c0 += kChunk) {
      const int n = std::min(kChunk, f.Nq - c0);
      float* Nc = N.data() + size_t(c0) * E;
      if (!A.empty) {
        scaled_rows(f.q_row(c0), Qs.data(), n, Ma, f.Mi.data() + c0, f.before(c0), false);
        gemm(false, false, n, E, Ma, Qs.data(), Ma, A.f.data(), E, 0.0f, Nc, E);
      } else {
        std::fill(Nc, Nc + size_t(n) * E, 0.0f);
      }
      gemm(false, true, n, n, M, f.q_row(c0), Ma, f.k_row(c0), Ma, 0.0f, P.data(), kChunk);
      std::vector<float> eps_sigma(n);
      for (int r = 0; r < n; ++r) eps_sigma[r] = f.q_row(c0 + r)[M];
      mask_pairs(P.data(), n, f.sk.data() + c0, f.Mi.data() + c0, eps_sigma.data(), nullptr);
      gemm(false, false, n, E, n, P.data(), kChunk, f.v_row(c0), E, 1.0f, Nc, E);
      const float last = f.Mi[c0 + n - 1];
      scaled_rows(f.k_row(c0), Ks.data(), n, Ma, f.sk.data() + c0, last, true);
      gemm(true, false, Ma, E, n, Ks.data(), Ma, f.v_row(c0), E, 0.0f, A.delta.data(), E);
      A.update(A.empty ? 1.0f : cpu::exp_f(f.before(c0) - last));
    }
  }
  const int64_t row0 = int64_t(bh) * f.Nq;
  finish_rows(N.data(), f.Nq, f.Dv, a.out + row0 * f.Dv, a.den + row0);
}

struct BackwardArgs {
  Problem p;
  const float *out, *den, *dout;
  float *dq, *dk, *dv;
};

// dx = alpha dL W - scale x sum_m dL_m for n rows; dL [n, M+1] (the first M columns used).
void input_grad(const float* dL, int n, int M, const float* W, int F, const float* x, float scale, float* dx) {
  gemm(false, false, n, F, M, dL, M + 1, W, F, 0.0f, dx, F);
  const float alpha = std::sqrt(scale);
  for (int i = 0; i < n; ++i) {
    const float* d = dL + size_t(i) * (M + 1);
    float t = 0.0f;
    for (int m = 0; m < M; ++m) t += d[m];
    for (int c = 0; c < F; ++c)
      dx[int64_t(i) * F + c] = alpha * dx[int64_t(i) * F + c] - scale * x[int64_t(i) * F + c] * t;
  }
}

void backward_slice(const BackwardArgs& a, int bh) {
  cpu::FlushSubnormals ftz;
  const Problem& p = a.p;
  Features f(p, bh);
  const int Ma = f.Ma, E = f.E, M = f.M, Dv = f.Dv, F = p.F();
  const int64_t qrow0 = int64_t(bh) * f.Nq, krow0 = int64_t(bh) * f.Nk;
  // G~ [Nq, Dv+1]
  Floats G(size_t(f.Nq) * E);
  for (int i = 0; i < f.Nq; ++i) {
    const float* g = a.dout + (qrow0 + i) * Dv;
    const float* o = a.out + (qrow0 + i) * Dv;
    const float d = a.den[qrow0 + i], inv = d > 0.0f ? 1.0f / d : 0.0f;
    double dot = 0.0;
    for (int e = 0; e < Dv; ++e) dot += double(g[e]) * o[e];
    for (int e = 0; e < Dv; ++e) G[size_t(i) * E + e] = g[e] * inv;
    G[size_t(i) * E + Dv] = float(-dot) * inv;
  }
  Floats dQ(size_t(f.Nq) * Ma), dK(size_t(f.Nk) * Ma), dV(size_t(f.Nk) * E);
  if (!p.sh->causal) {
    scaled_rows(f.K.data(), f.K.data(), f.Nk, Ma, f.sk.data(), f.Mi[0], true);  // K' = [w_j e_j, 1]
    Floats A(size_t(Ma) * E), U(size_t(Ma) * E);
    gemm(true, false, Ma, E, f.Nk, f.K.data(), Ma, f.V.data(), E, 0.0f, A.data(), E);
    gemm(false, true, f.Nq, Ma, E, G.data(), E, A.data(), E, 0.0f, dQ.data(), Ma);
    gemm(true, false, Ma, E, f.Nq, f.Q.data(), Ma, G.data(), E, 0.0f, U.data(), E);
    gemm(false, true, f.Nk, Ma, E, f.V.data(), E, U.data(), E, 0.0f, dK.data(), Ma);
    gemm(false, false, f.Nk, E, Ma, f.K.data(), Ma, U.data(), E, 0.0f, dV.data(), E);
    for (int i = 0; i < f.Nq; ++i) {
      float* d = dQ.data() + size_t(i) * Ma;
      const float* q = f.q_row(i);
      const float extra = p.eps * d[M];
      for (int m = 0; m < M; ++m) d[m] = (d[m] + extra) * (q[m] - p.eps);
    }
    for (int j = 0; j < f.Nk; ++j) {  // de_j w_j e_j = dK'_j K'_j
      float* d = dK.data() + size_t(j) * Ma;
      const float* kk = f.k_row(j);
      for (int m = 0; m < M; ++m) d[m] *= kk[m];
    }
  } else {
    Floats Qs(size_t(kChunk) * Ma), Ks(size_t(kChunk) * Ma), T(size_t(kChunk) * Ma);
    Floats P(size_t(kChunk) * kChunk), Gw(size_t(kChunk) * kChunk);
    std::vector<float> eps_sigma(kChunk), rowsum(kChunk);
    const int N = f.Nq;
    // the pairs of chunk [c0, c0 + n): Gw = masked G~ V^T (rowsum: the unscaled row sums), P = kappa
    auto chunk_pairs = [&](int c0, int n, bool with_kappa) {
      gemm(false, true, n, n, E, G.data() + size_t(c0) * E, E, f.v_row(c0), E, 0.0f, Gw.data(), kChunk);
      mask_pairs(Gw.data(), n, f.sk.data() + c0, f.Mi.data() + c0, nullptr, rowsum.data());
      if (!with_kappa) return;
      gemm(false, true, n, n, M, f.q_row(c0), Ma, f.k_row(c0), Ma, 0.0f, P.data(), kChunk);
      for (int r = 0; r < n; ++r) eps_sigma[r] = f.q_row(c0 + r)[M];
      mask_pairs(P.data(), n, f.sk.data() + c0, f.Mi.data() + c0, eps_sigma.data(), nullptr);
    };
    // forward scan: dphi
    RunningSum A(Ma, E);
    for (int c0 = 0; c0 < N; c0 += kChunk) {
      const int n = std::min(kChunk, N - c0);
      chunk_pairs(c0, n, false);
      float* dq = dQ.data() + size_t(c0) * Ma;
      gemm(false, false, n, M, n, Gw.data(), kChunk, f.k_row(c0), Ma, 0.0f, dq, Ma);
      if (!A.empty) gemm(false, true, n, Ma, E, G.data() + size_t(c0) * E, E, A.f.data(), E, 0.0f, T.data(), Ma);
      for (int r = 0; r < n; ++r) {
        const int i = c0 + r;
        float* d = dq + size_t(r) * Ma;
        const float* t = T.data() + size_t(r) * Ma;
        const float* q = f.q_row(i);
        const float inter = A.empty ? 0.0f : cpu::exp_f(f.before(c0) - f.Mi[i]);
        const float extra = p.eps * ((A.empty ? 0.0f : t[M]) + rowsum[r]);
        for (int m = 0; m < M; ++m) d[m] = (d[m] + (A.empty ? 0.0f : inter * t[m]) + extra) * (q[m] - p.eps);
      }
      const float last = f.Mi[c0 + n - 1];
      scaled_rows(f.k_row(c0), Ks.data(), n, Ma, f.sk.data() + c0, last, true);
      gemm(true, false, Ma, E, n, Ks.data(), Ma, f.v_row(c0), E, 0.0f, A.delta.data(), E);
      A.update(A.empty ? 1.0f : cpu::exp_f(f.before(c0) - last));
    }
    // backward scan: de, dv
    RunningSum U(Ma, E);
    const int last_c0 = (N - 1) / kChunk * kChunk;
    for (int c0 = last_c0; c0 >= 0; c0 -= kChunk) {
      const int n = std::min(kChunk, N - c0);
      const float R = f.Mi[c0 + n - 1];
      float* dk = dK.data() + size_t(c0) * Ma;
      float* dv = dV.data() + size_t(c0) * E;
      scaled_rows(f.k_row(c0), Ks.data(), n, Ma, f.sk.data() + c0, R, true);
      if (!U.empty) {
        gemm(false, true, n, Ma, E, f.v_row(c0), E, U.f.data(), E, 0.0f, dk, Ma);
        for (int r = 0; r < n; ++r) {
          const float w = cpu::exp_f(f.sk[c0 + r] - R);
          for (int m = 0; m < M; ++m) dk[size_t(r) * Ma + m] *= w;
        }
        gemm(false, false, n, E, Ma, Ks.data(), Ma, U.f.data(), E, 0.0f, dv, E);
      } else {
        std::fill(dk, dk + size_t(n) * Ma, 0.0f);
        std::fill(dv, dv + size_t(n) * E, 0.0f);
      }
      chunk_pairs(c0, n, true);
      gemm(true, false, n, M, n, Gw.data(), kChunk, f.q_row(c0), Ma, 1.0f, dk, Ma);
      gemm(true, false, n, E, n, P.data(), kChunk, G.data() + size_t(c0) * E, E, 1.0f, dv, E);
      for (int r = 0; r < n; ++r)
        for (int m = 0; m < M; ++m) dk[size_t(r) * Ma + m] *= f.k_row(c0 + r)[m];
      if (c0 == 0) break;
      const float Rp = f.before(c0);
      scaled_rows(f.q_row(c0), Qs.data(), n, Ma, f.Mi.data() + c0, Rp, false);
      gemm(true, false, Ma, E, n, Qs.data(), Ma, G.data() + size_t(c0) * E, E, 0.0f, U.delta.data(), E);
      U.update(U.empty ? 1.0f : cpu::exp_f(Rp - R));
    }
  }
  input_grad(dQ.data(), f.Nq, M, p.W, F, p.q + qrow0 * F, p.scale, a.dq + qrow0 * F);
  input_grad(dK.data(), f.Nk, M, p.W, F, p.k + krow0 * F, p.scale, a.dk + krow0 * F);
  for (int j = 0; j < f.Nk; ++j)
    std::copy(dV.begin() + size_t(j) * E, dV.begin() + size_t(j) * E + Dv, a.dv + (krow0 + j) * Dv);
}

// The work of a pass for parallel_units (threads.h): every query and key row maps to M random
// features and meets D + Dv values per feature (linear in N, no pairs).
double favor_work(const AttentionShape& sh, int M) {
  return double(sh.B) * sh.H * (sh.Nq + sh.Nk) * M * (sh.D + sh.Dv);
}

}  // namespace

void favor_attention_forward(const AttentionShape& sh, int M, const float* q, const float* k, const float* v,
                             const float* W, float scale, float eps, float* out, float* den) {
  const ForwardArgs a{{&sh, M, q, k, v, W, scale, eps}, out, den};
  cpu::parallel_units(sh.B * sh.H, favor_work(sh, M), [&](int bh) { forward_slice(a, bh); });
}

void favor_attention_backward(const AttentionShape& sh, int M, const float* q, const float* k, const float* v,
                              const float* W, float scale, float eps, const float* out, const float* den,
                              const float* dout, float* dq, float* dk, float* dv) {
  const BackwardArgs a{{&sh, M, q, k, v, W, scale, eps}, out, den, dout, dq, dk, dv};
  cpu::parallel_units(sh.B * sh.H, 2 * favor_work(sh, M), [&](int bh) { backward_slice(a, bh); });
}

}  // namespace ff::backend
