// FAVOR+ linear attention (Performer, "Rethinking Attention with Performers"): what the cpu and
// cuda kernels (favor_attention.cpp / .cu) compute, in one place. For one head, rows x of q or k
// in R^F, the projection's rows w_m (m < M, orthogonal Gaussian: lib/nn/random-features.ts) and
// scale (1/sqrt(D) for softmax(q.k/sqrt(D))), alpha = sqrt(scale):
//
//   l_m(x)   = alpha (w_m . x) - (scale / 2) |x|^2            (favor_logit)
//   queries: phi_im = exp(l_m(q_i) - s_i) + eps,   s_i = max_m l_m(q_i)
//   keys:    e_jm   = exp(l_m(k_j) - s_j),         s_j = max_m l_m(k_j)
//   M_i      = max of s_j over the keys row i sees (every key; causal: j <= i)
//   kappa_ij = exp(s_j - M_i) phi_i . e_j + eps sigma_i,  sigma_i = sum_m phi_im  (favor_weight)
//   out_i    = sum_j kappa_ij v_j / den_i,  den_i = sum_j kappa_ij   (0 where den_i = 0)
//
// kappa_ij = phi_i . psi_ij with psi_ij = exp(l(k_j) - M_i) + eps: FAVOR+'s positive random
// features of q_i and k_j, each with eps added after its stabiliser (the row's own maximum for a
// query, the largest over the visible keys for a key; both <= 1 before eps), whose 1/sqrt(M)
// factors cancel in out_i. E[exp(l(q) + l(k))] over w ~ N(0, I) is exp(scale q . k): out_i
// estimates softmax attention, unbiased in its numerator and denominator when eps = 0. The
// stabilisers change out_i only through eps; the backward treats them as constants (as
// FlashAttention treats its row maximum), exact for eps = 0 and within O(eps) otherwise.
// Causal M_i is a running maximum over keys j <= i, so no row depends on a later key.
//
// Every exponent the kernels take is <= 0: l - s, s_j - M_i, and the rescaling of a running sum
// when the maximum grows (FlashAttention's online softmax): nothing overflows for any input.
#pragma once
#include "hd.h"

namespace ff::favor {

// Keys per chunk of the causal scan: the pairs inside a chunk are a masked C x C product, the
// keys before it a running [M + 1, Dv + 1] sum (cost per row: ~2 C (M + Dv) + 4 M Dv flops).
constexpr int kChunk = 64;

// l_m(x) from w_m . x and (scale / 2) |x|^2.
FF_HD float favor_logit(float wx, float half_scaled_sq_norm, float alpha) { return alpha * wx - half_scaled_sq_norm; }

// kappa_ij from p = phi_i . e_j, the stabilisers' difference d = s_j - M_i (<= 0), ex = exp(d)
// and eps sigma_i.
FF_HD float favor_weight(float p, float ex, float eps_sigma) { return ex * p + eps_sigma; }

}  // namespace ff::favor
