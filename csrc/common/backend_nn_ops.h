// The neural-network kernels of every backend (cpu, cuda, cuda-emu): GEMM (a BLAS library's,
// never hand-written), linear, LayerNorm, softmax, cross-entropy, embedding, dropout. Tensors are
// dense row-major float32; a "row" is the last axis. Integer inputs (ids, class targets) are
// float32 holding integers: the binding checks them with check_ids() (backend_checks.h) before a
// kernel indexes with them. Every reduction sums in a fixed order, so results repeat run after run.
#pragma once
#include <cstdint>

namespace ff::backend {

// C = op(A) op(B) for each of `batch` matrix pairs, op(X) = X or X^T; op(A) is [M, K], op(B)
// [K, N]. A stored [M, K] (or [K, M] when transA), B stored [K, N] (or [N, K] when transB).
// stride_a / stride_b: elements between consecutive batches (0 broadcasts one matrix to all).
// C is [batch, M, N], or [M, N] = sum over the batch when sum_batches (the gradient of a
// broadcast operand). Cost: 2*batch*M*N*K flops (OpenBLAS sgemm on cpu, cuBLAS on cuda).
struct GemmShape {
  int batch = 1, M = 1, N = 1, K = 1;
  bool trans_a = false, trans_b = false;
  int64_t stride_a = 0, stride_b = 0;
  bool sum_batches = false;
};
void gemm(const GemmShape& s, const float* A, const float* B, float* C);

// y [rows, out] = x [rows, in] W^T + b, W [out, in] (PyTorch's layout), b [out] or null.
// Cost: 2*rows*in*out flops + one pass over y for the bias.
void linear_forward(int rows, int in, int out, const float* x, const float* W, const float* b, float* y);
// dx = dy W, dW = dy^T x, db = sum over rows of dy; each output may be null (not wanted).
// Cost: 2*rows*in*out flops per GEMM wanted + rows*out adds for db.
void linear_backward(int rows, int in, int out, const float* x, const float* W, const float* dy, float* dx, float* dW,
                     float* db);

// LayerNorm over rows of C: y = (x - mean) * rstd * gamma + beta, rstd = 1/sqrt(var + eps)
// (biased variance). gamma and beta may be null (1 and 0). Writes mean and rstd [rows] for the
// backward. Cost: 1 read and 1 write of x per element, ~6 flops.
void layernorm_forward(int rows, int C, float eps, const float* x, const float* gamma, const float* beta, float* y,
                       float* mean, float* rstd);
// With xhat = (x - mean) rstd and g = dy * gamma:
//   dx = rstd (g - mean_c(g) - xhat mean_c(g xhat)),  dgamma = sum_rows dy xhat,  dbeta = sum_rows dy.
// dgamma, dbeta are null when gamma, beta were (or are not wanted); dx may be null.
// Cost: 2 reads and 1 write per element, ~10 flops.
void layernorm_backward(int rows, int C, const float* x, const float* gamma, const float* mean, const float* rstd,
                        const float* dy, float* dx, float* dgamma, float* dbeta);

// y = softmax(x) over rows of C, or log_softmax(x) when log. Cost: 2 reads, 1 write, 1 exp per element.
void softmax_forward(int rows, int C, bool log, const float* x, float* y);
// From y (the forward's output) and dy:  softmax: dx = y (dy - sum_c dy y);
// log_softmax: dx = dy - exp(y) sum_c dy. Cost: 2 reads (+1 re-read) and 1 write per element.
void softmax_backward(int rows, int C, bool log, const float* y, const float* dy, float* dx);

// Fused log-softmax + NLL over rows of C. Hard targets: t [rows] class ids (ignore_index rows give
// loss 0 and no gradient); soft targets: t [rows, C] probabilities (mixup). Label smoothing ls
// mixes the target distribution with the uniform one: q = (1 - ls) q + ls / C.
//   row_loss_i = lse_i - sum_c q_ic x_ic,   lse_i = log sum_c exp(x_ic)
// Reduction kNone writes loss [rows]; kSum / kMean write loss [1] (mean: over rows not ignored,
// NaN when there are none, as PyTorch). count [1] receives that divisor (rows not ignored).
// Cost: 1 read (+1 re-read from cache) per element, 1 exp.
enum class Reduction : int { kNone = 0, kSum = 1, kMean = 2 };
struct CrossEntropyShape {
  int rows = 1, C = 1;
  bool soft = false;
  int ignore_index = -100;
  float label_smoothing = 0.0f;
  Reduction reduction = Reduction::kMean;
};
void cross_entropy_forward(const CrossEntropyShape& s, const float* logits, const float* targets, float* loss,
                           float* lse, float* count);
// dlogits_ic = w_i (exp(x_ic - lse_i) - q_ic), w_i = grad_i (kNone), grad_0 (kSum),
// grad_0 / count (kMean), and 0 on ignored rows. Cost: 1 read, 1 write, 1 exp per element.
void cross_entropy_backward(const CrossEntropyShape& s, const float* logits, const float* targets, const float* lse,
                            const float* count, const float* grad, float* dlogits);

// out [n, D] = W[ids[i]] for i < n, W [V, D]; ids checked by check_ids (backend_checks.h): on
// cuda an invalid id (reported at the next synchronisation) gives a row of NaN.
// Cost: 1 read and 1 write per output element.
void embedding_forward(int n, int D, int V, const float* ids, const float* W, float* out);
// dW [V, D] = sum over i with ids[i] = v of dout[i] (rows never named are 0), summed in the
// order of i: deterministic, no atomics; an invalid id (cuda) adds nowhere.
// Cost: V*D writes + n*D adds (+ a sort of n ids on cuda).
void embedding_backward(int n, int D, int V, const float* ids, const float* dout, float* dW);

// y_i = x_i * keep_j / (1 - p) with j = i / group (group 1: dropout; group = elements per sample:
// drop-path), keep_j = u_j >= p, u_j uniform in [0, 1) with 24 bits from Philox4x32-10 (philox.h):
// key = seed, counter = offset + j / 4, word j % 4. The same (seed, offset) gives the same mask on
// every backend, and the backward is this function applied to dy. p = 1 gives zeros.
// Cost: 1 read, 1 write per element + one Philox (10 rounds) per 4 random numbers.
void dropout(int64_t n, int64_t group, float p, uint64_t seed, uint64_t offset, const float* x, float* y);

}  // namespace ff::backend
