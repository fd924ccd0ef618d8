// What every backend (cpu, cuda, cuda-emu) implements. The binding (csrc/binding) checks
// arguments and calls these; they may throw ff::Error. Pointers are to the backend's own
// memory (host memory for cpu and cuda-emu, device memory for cuda). Work may be queued
// asynchronously; download() and synchronize() wait for it.
#pragma once
#include <cstddef>
#include <string>
#include "shapes.h"

namespace ff {
struct NeuralMlp;  // common/neural_score.h
}

namespace ff::backend {

const char* name();
// One line describing the device(s), e.g. "NVIDIA H100 80GB (sm_90), driver 13.0".
std::string describe();
// Throws ff::Error explaining why the device cannot be used (no GPU, no driver).
void ensure_available();

// The host threads this backend's ops use when called from the calling thread; each thread (a
// Node environment: the main thread or a worker) has its own count. cpu: the OpenMP team of its
// kernels and GEMMs (default OMP_NUM_THREADS, else the cores available); cuda-emu: the
// emulator's block workers (at most FF_EMU_WORKERS, shared by the process, one launch at a
// time); cuda: 1 (the GPU runs the kernels; the calling thread only queues them, and
// set_num_threads changes nothing). n >= 1.
int num_threads();
void set_num_threads(int n);

void* alloc(size_t bytes);  // throws ff::Error on out-of-memory
void release(void* ptr);
// The caching allocator's free blocks: bytes held for reuse, and giving them back to the system
// (returns how many bytes it gave back). Live tensors are untouched.
size_t cached_bytes();
size_t empty_cache();
// The most bytes held by live blocks (tensors and scratch, bucket-rounded) since the last reset:
// the device memory a computation needed, not the host's. 0 on cpu (not tracked there).
size_t peak_bytes();
void reset_peak_bytes();
// Times the work queued between timer_start() and timer_stop() on the device: CUDA events on
// the stream (kernel time, not the host's queueing, while the host keeps the queue filled);
// cpu: the host clock. timer_stop waits for the device and returns milliseconds.
void timer_start();
double timer_stop();
void upload(float* dst, const float* host_src, size_t n);
void download(float* host_dst, const float* src, size_t n);
void copy(float* dst, const float* src, size_t n);
void fill(float* dst, float value, size_t n);
void add_inplace(float* dst, const float* src, size_t n);  // dst += src
void synchronize();
// Float32 matrix products (gemm, linear): exact float (false, the default) or TF32 tensor cores
// where the device has them (true: ~1e-3 relative error, torch's 'high' precision). cpu: ignored.
void set_matmul_precision(bool tf32);

// K[b,h,i,j] = prod_d s(R_hd (q_bhid - k_bhjd))^power.   Cost: B*H*Nq*Nk*D sinc evaluations.
void fourier_metric_forward(const MetricShape& s, const float* q, const float* k, const float* R, int power, float* K);
// Given dK = dL/dK, writes dq, dk (same shapes as q, k) and dR ([rH, rD]) in one pass that
// recomputes the kernel.   Cost: B*H*Nq*Nk*D sinc-and-derivative evaluations + O(D) products.
void fourier_metric_backward(const MetricShape& s, const float* q, const float* k, const float* R, int power,
                             const float* dK, float* dq, float* dk, float* dR);

// Fourier attention, fused: never stores the Nq x Nk kernel (tiles of it are recomputed).
//   K_ij = prod_d s(R_hd (q_id - k_jd))^power,  S_i = sum_j K_ij  (causal: j <= i)
//   default: out_i = sum_j K_ij v_j / (S_i + eps);        stats_i = S_i (cpu), S_i 2^64 (cuda:
//            normal down to S_i ~ 2^-190); only the same backend's backward reads stats
//   stable:  out_i = sum_j K_ij v_j / S_i in the log domain (log K = power * sum_d log|s|, a
//            running row maximum), free of underflow;    stats_i = log S_i (-inf if S_i = 0,
//            and then out_i = 0). stable requires an even power.
// Cost: B*H*Nq*Nk*(D sinc + 2 Dv) flops-ish (halved when causal); memory O(B*H*(Nq+Nk)*(D+Dv)).
void fourier_attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* R,
                               int power, float eps, bool stable, float* out, float* stats);
// dq, dk, dv, dR in one pass that recomputes K tile by tile, given out and stats from the
// forward and dout = dL/dout. With delta_i = dout_i . out_i:
//   default: dL/dK_ij = (dout_i . v_j - delta_i) / (S_i + eps)
//   stable:  dL/dK_ij = (dout_i . v_j - delta_i) / S_i
// then dK/dx through the division-free product form, as in fourier_metric_backward.
void fourier_attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* R,
                                int power, float eps, bool stable, const float* out, const float* stats,
                                const float* dout, float* dq, float* dk, float* dv, float* dR);

// Scaled dot-product attention, fused (online softmax): out_i = softmax_j(scale q_i . k_j) V,
// lse_i = the row's log-sum-exp of the logits, in the units the backend's own backward reads
// (cpu: log sum_j exp(scale q_i . k_j); cuda: the same in base 2, log2 sum_j 2^(scale log2(e)
// q_i . k_j)). Cost: B*H*Nq*Nk*(2D + 2Dv) flops (halved when causal).
void dot_attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, float scale,
                           float* out, float* lse);
void dot_attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v, float scale,
                            const float* out, const float* lse, const float* dout, float* dq, float* dk, float* dv);

// FAVOR+ linear attention (Performer; common/favor.h has the formulas): q [B,H,Nq,F],
// k [B,H,Nk,F], v [B,H,Nk,Dv] (s.D = F), the projection W [M, F] shared by every head; writes
// out [B,H,Nq,Dv] and den [B,H,Nq] (the rows' normalisers). No Nq x Nk matrix is stored:
// non-causal, one sum [M+1, Dv+1] of the keys per head; causal (Nq == Nk), chunks of
// favor::kChunk keys in order with a running sum. Memory O((Nq + Nk)(M + Dv)) per head at work.
// Cost: 2 B H (Nq + Nk) F M flops for the features, then per row ~4 (M+1)(Dv+1) (non-causal)
// or ~2 kChunk (2M + Dv) + 4 M Dv (causal).
void favor_attention_forward(const AttentionShape& s, int M, const float* q, const float* k, const float* v,
                             const float* W, float scale, float eps, float* out, float* den);
// dq, dk, dv given out and den from the forward and dout = dL/dout (the features recomputed;
// the stabilisers constant). Cost: about 2.5x the forward (causal: two scans, forward and back).
void favor_attention_backward(const AttentionShape& s, int M, const float* q, const float* k, const float* v,
                              const float* W, float scale, float eps, const float* out, const float* den,
                              const float* dout, float* dq, float* dk, float* dv);
// Neural Attention, fused (online softmax): out_i = sum_j softmax_j(s_ij) v_j, s_ij the score
// network of common/neural_score.h on a_i [B,H,Nq,d1] and c_j [B,H,Nk,d1] (s.D = d1, the first
// layer's query and key halves) with the weights mlp; lse_i the row's log-sum-exp in the units
// the backend's own backward reads (cpu: natural log; cuda: base 2, as dot_attention_forward).
// Cost: B*H*Nq*Nk*(the network's ~d1 (2 + d2) flops + 2Dv) (halved when causal).
void neural_attention_forward(const AttentionShape& s, const float* a, const float* c, const float* v,
                              const NeuralMlp& mlp, float* out, float* lse);
// da, dc, dv and the network's weight gradients dw2 [d2*d1], db2 [d2], dw3 [d2], db3 [1] (sums
// over every pair, in a fixed order), recomputing the scores as the forward did.
void neural_attention_backward(const AttentionShape& s, const float* a, const float* c, const float* v,
                               const NeuralMlp& mlp, const float* out, const float* lse, const float* dout, float* da,
                               float* dc, float* dv, float* dw2, float* db2, float* dw3, float* db3);

}  // namespace ff::backend
