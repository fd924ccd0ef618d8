// The score network of Neural Attention (DiGiugno & Mahmood, 2025), shared by the cpu and cuda
// kernels (csrc/cpu/neural_attention.cpp, csrc/cuda/neural_attention.cu):
//
//   s_ij = b3 + sum_n w3_n relu(z_n),   z_n = b2_n + sum_m W2_nm h_m,   h_m = relu(a_im + c_jm)
//
// the authors' MLP(concat(q_i, k_j)) = Linear(2F -> d1), ReLU, Linear(d1 -> d2), ReLU,
// Linear(d2 -> 1) with its first layer split in two: W1 [q; k] + b1 = (W1q q + b1) + W1k k, so
// a_i = W1q q_i + b1 and c_j = W1k k_j are computed once per row (lib/ops/neural-attention.ts)
// and only h, z and s once per pair. Cost per pair: d1 (2 + d2) + 3 d2 flops forward; about
// twice that again backward (dW2 += g2 h^T, g1 = W2^T g2).
//
// The formulas are written once over an arithmetic policy V (T, M and the static functions
// zero, add, mul, fma, max, lt, keep): the cpu kernels pass their SIMD vectors (csrc/cpu/simd.h,
// T = W pairs at once), the cuda kernels ScalarOps (one pair per thread). The sizes are padded to
// compile-time buckets (M1, M2) with zero weights, which add exact zeros: a padded unit of layer 1
// has h = relu(0) = 0 and no weight out of it; a padded unit of layer 2 has z = 0 and w3 = 0.
#pragma once
#include <cmath>
#include <string>
#include <type_traits>
#include "error.h"
#include "hd.h"

// Full unrolling of the loops over the padded sizes (nvcc's pragma, or GCC's; both are compile-time
// bounds of at most 8).
#if defined(__CUDACC__)
#define FF_UNROLL _Pragma("unroll")
#else
#define FF_UNROLL _Pragma("GCC unroll 8")
#endif

namespace ff {

// The network's weights beyond the first layer, as the backends hold them (row-major,
// torch.nn.Linear's [out, in]): W2 [d2, d1], b2 [d2], w3 [1, d2], b3 [1].
struct NeuralMlp {
  int d1 = 1, d2 = 1;
  const float* w2 = nullptr;
  const float* b2 = nullptr;
  const float* w3 = nullptr;
  const float* b3 = nullptr;
  int params() const { return d2 * d1 + 2 * d2 + 1; }
};

// The largest d1 and d2 the fused kernels take (the default d1 = d_head / 32 reaches 8 at
// d_head 256; each backward thread keeps d2 x d1 weight-gradient sums in registers on cuda).
constexpr int kNeuralMaxHidden = 8;

// Weights (or their gradients) padded to (M1, M2), as values of the policy's V::T.
template <class V, int M1, int M2>
struct NeuralWeights {
  typename V::T w2[M2][M1];
  typename V::T b2[M2];
  typename V::T w3[M2];
  typename V::T b3;
};

// Fills w from the unpadded weights, each value x as make(x) (a broadcast for SIMD, x for float).
template <class V, int M1, int M2, class Make>
FF_HD void load_neural_weights(const NeuralMlp& p, const float* w2, const float* b2, const float* w3, const float* b3,
                               NeuralWeights<V, M1, M2>& w, const Make& make) {
  for (int n = 0; n < M2; ++n) {
    for (int m = 0; m < M1; ++m) w.w2[n][m] = make(n < p.d2 && m < p.d1 ? w2[n * p.d1 + m] : 0.0f);
    w.b2[n] = make(n < p.d2 ? b2[n] : 0.0f);
    w.w3[n] = make(n < p.d2 ? w3[n] : 0.0f);
  }
  w.b3 = make(b3[0]);
}

// Plain float arithmetic with the interface of csrc/cpu/simd.h's vectors (for the cuda kernels).
struct ScalarOps {
  using T = float;
  using M = bool;
  FF_HD static float zero() { return 0.0f; }
  FF_HD static float add(float a, float b) { return a + b; }
  FF_HD static float mul(float a, float b) { return a * b; }
  FF_HD static float fma(float a, float b, float c) { return fmaf(a, b, c); }
  FF_HD static float max(float a, float b) { return a > b ? a : b; }
  FF_HD static bool lt(float a, float b) { return a < b; }
  FF_HD static float keep(bool m, float a) { return m ? a : 0.0f; }
};

// The score s of one pair (of W pairs for SIMD T), given a and c (M1 values each); keeps the
// activations h = relu(a + c) and the pre-activations z of layer 2 for the backward. Every
// product is an explicit fma, so the forward and the backward's recomputation round alike.
template <class V, int M1, int M2>
FF_HD typename V::T neural_score(const NeuralWeights<V, M1, M2>& w, const typename V::T (&a)[M1],
                                 const typename V::T (&c)[M1], typename V::T (&h)[M1], typename V::T (&z)[M2]) {
  using T = typename V::T;
  FF_UNROLL
  for (int m = 0; m < M1; ++m) h[m] = V::max(V::add(a[m], c[m]), V::zero());
  T s = w.b3;
  FF_UNROLL
  for (int n = 0; n < M2; ++n) {
    T t = w.b2[n];
    FF_UNROLL
    for (int m = 0; m < M1; ++m) t = V::fma(w.w2[n][m], h[m], t);
    z[n] = t;
    s = V::fma(w.w3[n], V::max(t, V::zero()), s);
  }
  return s;
}

// Backward of one pair given ds = dL/ds: adds the pair's weight gradients to g and writes
// g1 = dL/da = dL/dc (M1 values). ReLU'(0) = 0, as PyTorch.
template <class V, int M1, int M2>
FF_HD void neural_score_backward(const NeuralWeights<V, M1, M2>& w, const typename V::T (&h)[M1],
                                 const typename V::T (&z)[M2], typename V::T ds, NeuralWeights<V, M1, M2>& g,
                                 typename V::T (&g1)[M1]) {
  using T = typename V::T;
  FF_UNROLL
  for (int m = 0; m < M1; ++m) g1[m] = V::zero();
  g.b3 = V::add(g.b3, ds);
  FF_UNROLL
  for (int n = 0; n < M2; ++n) {
    g.w3[n] = V::fma(ds, V::max(z[n], V::zero()), g.w3[n]);
    const T g2 = V::keep(V::lt(V::zero(), z[n]), V::mul(ds, w.w3[n]));
    g.b2[n] = V::add(g.b2[n], g2);
    FF_UNROLL
    for (int m = 0; m < M1; ++m) {
      g.w2[n][m] = V::fma(g2, h[m], g.w2[n][m]);
      g1[m] = V::fma(g2, w.w2[n][m], g1[m]);
    }
  }
  FF_UNROLL
  for (int m = 0; m < M1; ++m) g1[m] = V::keep(V::lt(V::zero(), h[m]), g1[m]);
}

// Calls f(std::integral_constant<int, M1>{}, std::integral_constant<int, M2>{}) for the smallest
// bucket of (2, 1), (4, 2), (8, 4), (8, 8) holding (d1, d2): the paper's d2 = d1 / 2 for d1 = 2,
// 4, 8 fits its own bucket exactly.
template <class F>
void with_neural_bucket(int d1, int d2, F&& f) {
  if (d1 < 1 || d2 < 1 || d1 > kNeuralMaxHidden || d2 > kNeuralMaxHidden)
    throw Error("params: the score network's hidden sizes must be in [1, " + std::to_string(kNeuralMaxHidden) +
                "], got d1 = " + std::to_string(d1) + " (w1's rows), d2 = " + std::to_string(d2) + " (w2's rows)");
  if (d1 <= 2 && d2 <= 1) return f(std::integral_constant<int, 2>{}, std::integral_constant<int, 1>{});
  if (d1 <= 4 && d2 <= 2) return f(std::integral_constant<int, 4>{}, std::integral_constant<int, 2>{});
  if (d2 <= 4) return f(std::integral_constant<int, 8>{}, std::integral_constant<int, 4>{});
  return f(std::integral_constant<int, 8>{}, std::integral_constant<int, 8>{});
}

}  // namespace ff
