// cuda backend: the Fourier metric and its fused backward (CPU twin: csrc/cpu/fourier_metric.cpp).
//
//   K[b,h,i,j] = k_ij^p,   k_ij = prod_d s(x_d),   x_d = R_hd (q_id - k_jd),   s(x) = sin(x)/x
//   dL/dx_d    = G_ij p k^(p-1) (prod_{d' != d} s(x_d')) s'(x_d)          (G = dL/dK, no division)
//   dq_id = R_hd sum_j dL/dx_d,   dk_jd = -R_hd sum_i dL/dx_d,   dR_hd = sum_{b,i,j} dL/dx_d (q_id - k_jd)
//
// Kernels (256 threads each):
// - fourier_metric_forward_kernel: one block per 32x32 tile of K and (b, h). D goes through
//   shared memory in chunks of 32 (the chunk's 32 q rows and 32 k rows, padded against bank
//   conflicts); each thread keeps the running sinc products of its 2x2 outputs in registers.
//   Cost: B*H*Nq*Nk*D sinc; global traffic (Nq*Nk)/16*D reads of q and k + Nq*Nk writes.
// - fourier_metric_backward_kernel: one pass that recomputes s and s'. The D dimensions of a
//   pair (i, j) are spread over L lanes (8 per lane, L = next power of two >= D/8, so D <= 256);
//   the leave-one-out products come from in-register prefix/suffix products within a lane and
//   shuffle scans over the L lanes (2 log2 L + 3 shuffles per pair). A block owns (b, h, split):
//   the key tiles of 16 keys numbered split, split + splits, ... (each warp 2 keys, held in
//   registers with their dk sums), and loops over all queries, in tiles staged in shared memory. dk is complete in the
//   block's registers (summed over query lanes by shuffles once per key tile) and written once; dq of a query tile is
//   summed over the 8 warps in shared memory and added to the split's own copy of dq (no atomics: one block owns a
//   split's copy); dR is summed per thread in double (float within one query tile) and reduced over the block into a
//   per-(b, h, split) partial. Cost: B*H*Nq*Nk*D sinc-and-derivative + ~10 flops per (i, j, d).
// - fourier_metric_dq_sum_kernel: dq = sum of the splits' copies, in split order (only when
//   there are several splits; one split writes dq directly). Cost: splits * |q| reads.
// - fourier_metric_dR_kernel: one block per element of R sums its partials (over b, splits, and
//   over h or d where R broadcasts) in double, in a fixed order. Results are deterministic.
#include <algorithm>
#include <string>
#include "../common/backend.h"
#include "../common/fourier_math.h"
#include "launch.h"
#include "reduce.h"

namespace ff::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

// ---- forward ----
constexpr int kTile = 32;   // K tile: 32 queries x 32 keys
constexpr int kChunk = 32;  // dimensions staged at a time

__global__ void __launch_bounds__(kThreads)
    fourier_metric_forward_kernel(MetricShape sh, const float* q, const float* k, const float* R, int power, float* K) {
  __shared__ float qs[kTile][kChunk + 1];
  __shared__ float ks[kTile][kChunk + 1];
  __shared__ float rs[kChunk];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int D = sh.D, Nq = sh.Nq, Nk = sh.Nk, BH = sh.B * sh.H;
  const int q_tiles = (Nq + kTile - 1) / kTile;
  const int j0 = blockIdx.x * kTile;
  for (int bh = blockIdx.z; bh < BH; bh += gridDim.z) {
    const float* Rh = R + sh.r_row(bh % sh.H);
    for (int tq = blockIdx.y; tq < q_tiles; tq += gridDim.y) {
      const int i0 = tq * kTile;
      const float* qb = q + (int64_t(bh) * Nq + i0) * D;
      const float* kb = k + (int64_t(bh) * Nk + j0) * D;
      float prod[2][2] = {{1.0f, 1.0f}, {1.0f, 1.0f}};
      for (int d0 = 0; d0 < D; d0 += kChunk) {
        for (int e = threadIdx.x; e < kTile * kChunk; e += kThreads) {
          const int row = e / kChunk, c = e % kChunk, d = d0 + c;
          qs[row][c] = (i0 + row < Nq && d < D) ? qb[int64_t(row) * D + d] : 0.0f;
          ks[row][c] = (j0 + row < Nk && d < D) ? kb[int64_t(row) * D + d] : 0.0f;
        }
        if (threadIdx.x < kChunk) {
          const int d = d0 + int(threadIdx.x);
          rs[threadIdx.x] = d < D ? Rh[sh.r_col(d)] : 0.0f;
        }
        __syncthreads();
        const int dn = min(kChunk, D - d0);
        for (int c = 0; c < dn; ++c) {
          const float r = rs[c];
          const float q0 = qs[ty][c], q1 = qs[ty + 16][c], k0 = ks[tx][c], k1 = ks[tx + 16][c];
          prod[0][0] *= sinc(r * (q0 - k0));
          prod[0][1] *= sinc(r * (q0 - k1));
          prod[1][0] *= sinc(r * (q1 - k0));
          prod[1][1] *= sinc(r * (q1 - k1));
        }
        __syncthreads();
      }
      for (int a = 0; a < 2; ++a)
        for (int c = 0; c < 2; ++c) {
          const int i = i0 + ty + 16 * a, j = j0 + tx + 16 * c;
          if (i < Nq && j < Nk) K[(int64_t(bh) * Nq + i) * Nk + j] = ipow(prod[a][c], power);
        }
    }
  }
}

// ---- backward ----
constexpr int kDimsPerLane = 8;                                                 // G
constexpr int kKeysPerWarp = 2;                                                 // keys held in registers per warp
constexpr int kKeyTile = kWarps * kKeysPerWarp;                                 // 16 keys per block and step
constexpr int kMaxBackwardD = 32 * kDimsPerLane;                                // 256
constexpr int kStageFloats = 1024;                                              // query tile: TQ * L * G = 1024 floats
constexpr size_t kBackwardShmem = (1 + kWarps) * kStageFloats * sizeof(float);  // tile + dq partials

// L: lanes per (i, j) pair, a power of two with L * G >= D.
int lanes_per_pair(int D) {
  int L = 1;
  while (L * kDimsPerLane < D) L *= 2;
  return L;
}

// One block per SM (~160 registers: 8 dimensions x 2 keys of state per lane, no spills).
__global__ void __launch_bounds__(kThreads, 1)
    fourier_metric_backward_kernel(MetricShape sh, int L, int splits, const float* q, const float* k, const float* R,
                                   int power, const float* dK, float* dq_part, float* dk, double* dR_part) {
  constexpr int G = kDimsPerLane, KB = kKeysPerWarp;
  const int LG = L * G, TQ = kStageFloats / LG, A = 32 / L;  // A queries per warp step
  float* qs = dynamic_shared<float>();                       // [TQ][LG] the query tile
  float* red = qs + kStageFloats;                            // [warp][TQ][LG] each warp's dq partial of the tile
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane % L, a = lane / L;  // this lane's dimensions g + L*e, and its query slot
  const int D = sh.D, Nq = sh.Nq, Nk = sh.Nk, BH = sh.B * sh.H;
  const int split = blockIdx.x;
  const int key_tiles = (Nk + kKeyTile - 1) / kKeyTile;
  for (int bh = blockIdx.y; bh < BH; bh += gridDim.y) {
    const float* Rh = R + sh.r_row(bh % sh.H);
    const float* qb = q + int64_t(bh) * Nq * D;
    const float* kb = k + int64_t(bh) * Nk * D;
    const float* dKb = dK + int64_t(bh) * Nq * Nk;
    float* dqb = dq_part + (int64_t(split) * BH + bh) * Nq * D;
    float r[G];
    double dR_sum[G];
#pragma unroll
    for (int e = 0; e < G; ++e) {
      const int d = g + L * e;
      r[e] = d < D ? Rh[sh.r_col(d)] : 0.0f;  // padded dimensions: r = q = k = 0, s = 1, s' = 0
      dR_sum[e] = 0.0;
    }
    for (int kt = split; kt < key_tiles; kt += splits) {
      const bool first_tile = kt == split;
      const int jw = kt * kKeyTile + warp * KB;  // this warp's keys: jw, jw + 1
      float kv[KB][G], dk_sum[KB][G];
#pragma unroll
      for (int kk = 0; kk < KB; ++kk)
#pragma unroll
        for (int e = 0; e < G; ++e) {
          const int j = jw + kk, d = g + L * e;
          kv[kk][e] = (j < Nk && d < D) ? kb[int64_t(j) * D + d] : 0.0f;
          dk_sum[kk][e] = 0.0f;
        }
      for (int i0 = 0; i0 < Nq; i0 += TQ) {
        const int rows = min(TQ, Nq - i0);
        for (int x = threadIdx.x; x < kStageFloats; x += kThreads) {
          const int qi = x / LG, d = x % LG;
          qs[x] = (qi < rows && d < D) ? qb[int64_t(i0 + qi) * D + d] : 0.0f;
        }
        __syncthreads();
        float dR_tile[G];
#pragma unroll
        for (int e = 0; e < G; ++e) dR_tile[e] = 0.0f;
        const int steps = (rows + A - 1) / A;
        for (int step = 0; step < steps; ++step) {
          const int qi = step * A + a;
          float qv[G], dq_sum[G];
#pragma unroll
          for (int e = 0; e < G; ++e) {
            qv[e] = qs[qi * LG + g + L * e];
            dq_sum[e] = 0.0f;
          }
#pragma unroll
          for (int kk = 0; kk < KB; ++kk) {
            const int j = jw + kk;
            const float grad = (qi < rows && j < Nk) ? dKb[int64_t(i0 + qi) * Nk + j] : 0.0f;
            float s[G], ds[G], diff[G], suffix[G + 1];
#pragma unroll
            for (int e = 0; e < G; ++e) {
              diff[e] = qv[e] - kv[kk][e];
              sinc_and_derivative(r[e] * diff[e], s[e], ds[e]);
            }
            suffix[G] = 1.0f;
#pragma unroll
            for (int e = G - 1; e >= 0; --e) suffix[e] = suffix[e + 1] * s[e];
            // Products of the other lanes' s: before this lane and after it; the pair's total.
            float before = 1.0f, after = 1.0f, total = suffix[0];
            if (L > 1) {
              float inclusive = suffix[0], inclusive_rev = suffix[0];
              for (int off = 1; off < L; off <<= 1) {
                const float lo = __shfl_up_sync(kFullMask, inclusive, off, L);
                const float hi = __shfl_down_sync(kFullMask, inclusive_rev, off, L);
                if (g >= off) inclusive *= lo;
                if (g + off < L) inclusive_rev *= hi;
              }
              before = __shfl_up_sync(kFullMask, inclusive, 1, L);
              after = __shfl_down_sync(kFullMask, inclusive_rev, 1, L);
              total = __shfl_sync(kFullMask, inclusive, L - 1, L);
              if (g == 0) before = 1.0f;
              if (g == L - 1) after = 1.0f;
            }
            const float coef = grad * float(power) * ipow(total, power - 1);
            float prefix = before;
#pragma unroll
            for (int e = 0; e < G; ++e) {
              const float t = coef * prefix * (suffix[e + 1] * after) * ds[e];  // dL/dx_d
              prefix *= s[e];
              dq_sum[e] += t;
              dk_sum[kk][e] += t;
              dR_tile[e] += t * diff[e];
            }
          }
#pragma unroll
          for (int e = 0; e < G; ++e) red[(warp * TQ + qi) * LG + g + L * e] = dq_sum[e];
        }
        __syncthreads();
        for (int x = threadIdx.x; x < rows * D; x += kThreads) {
          const int qi = x / D, d = x % D;
          float sum = 0.0f;
          for (int w = 0; w < kWarps; ++w) sum += red[(w * TQ + qi) * LG + d];
          float* dst = dqb + int64_t(i0 + qi) * D + d;
          const float v = Rh[sh.r_col(d)] * sum;
          *dst = first_tile ? v : *dst + v;
        }
#pragma unroll
        for (int e = 0; e < G; ++e) dR_sum[e] += double(dR_tile[e]);
        __syncthreads();  // the next tile overwrites qs and red
      }
      // dk: add up the query slots (lanes with the same g), then write -R * sum once.
      for (int off = L; off < 32; off <<= 1)
#pragma unroll
        for (int kk = 0; kk < KB; ++kk)
#pragma unroll
          for (int e = 0; e < G; ++e) dk_sum[kk][e] += __shfl_xor_sync(kFullMask, dk_sum[kk][e], off);
      if (a == 0)
#pragma unroll
        for (int kk = 0; kk < KB; ++kk)
#pragma unroll
          for (int e = 0; e < G; ++e) {
            const int j = jw + kk, d = g + L * e;
            if (j < Nk && d < D) dk[(int64_t(bh) * Nk + j) * D + d] = -r[e] * dk_sum[kk][e];
          }
    }
    // dR partial of (bh, split): every thread's sums for dimension d, in thread order.
    double* dred = reinterpret_cast<double*>(qs);  // [thread][G], 16 KiB of the 36 KiB
#pragma unroll
    for (int e = 0; e < G; ++e) dred[threadIdx.x * G + e] = dR_sum[e];
    __syncthreads();
    for (int d = threadIdx.x; d < LG; d += kThreads) {
      double sum = 0.0;
      for (int t = d % L; t < kThreads; t += L) sum += dred[t * G + d / L];
      dR_part[(int64_t(bh) * splits + split) * LG + d] = sum;
    }
    __syncthreads();
  }
}

__global__ void __launch_bounds__(kThreads)
    fourier_metric_dq_sum_kernel(const float* dq_part, int splits, int64_t n, float* dq) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t x = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; x < n; x += stride) {
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s) sum += dq_part[s * n + x];
    dq[x] = sum;
  }
}

__global__ void __launch_bounds__(kThreads)
    fourier_metric_dR_kernel(MetricShape sh, int LG, int splits, const double* dR_part, float* dR) {
  __shared__ double scratch[32];
  const int row = blockIdx.x / sh.rD, col = blockIdx.x % sh.rD;
  const int heads = sh.rH == 1 ? sh.H : 1;  // heads (or dimensions) summed because R broadcasts
  const int dims = sh.rD == 1 ? sh.D : 1;
  const int64_t terms = int64_t(sh.B) * heads * splits * dims;
  double sum = 0.0;
  for (int64_t t = threadIdx.x; t < terms; t += blockDim.x) {
    int64_t x = t;
    const int d = dims == 1 ? col : int(x % dims);
    x /= dims;
    const int s = int(x % splits);
    x /= splits;
    const int h = heads == 1 ? row : int(x % heads);
    const int b = int(x / heads);
    sum += dR_part[((int64_t(b) * sh.H + h) * splits + s) * LG + d];
  }
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) dR[blockIdx.x] = float(sum);
}

// Blocks of the backward kernel resident per SM (queried once).
int backward_blocks_per_sm() {
  static const int blocks = [] {
    int n = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, fourier_metric_backward_kernel, kThreads, kBackwardShmem),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    return n < 1 ? 1 : n;
  }();
  return blocks;
}

// Scratch from the backend's caching allocator, released when the call returns (later work on
// the same stream may reuse it only after the kernels queued here).
template <typename T>
struct Scratch {
  T* p;
  explicit Scratch(size_t n) : p(static_cast<T*>(backend::alloc(n * sizeof(T)))) {}
  Scratch(const Scratch&) = delete;
  ~Scratch() { backend::release(p); }
};

}  // namespace
}  // namespace ff::cuda

namespace ff::backend {

void fourier_metric_forward(const MetricShape& sh, const float* q, const float* k, const float* R, int power,
                            float* K) {
  using namespace cuda;
  const int BH = sh.B * sh.H;
  const dim3 grid((sh.Nk + kTile - 1) / kTile, std::min((sh.Nq + kTile - 1) / kTile, 65535), std::min(BH, 65535));
  FF_LAUNCH(fourier_metric_forward_kernel, grid, dim3(kThreads), 0, sh, q, k, R, power, K);
}

void fourier_metric_backward(const MetricShape& sh, const float* q, const float* k, const float* R, int power,
                             const float* dK, float* dq, float* dk, float* dR) {
  using namespace cuda;
  if (sh.D > kMaxBackwardD)
    throw Error(std::string(name()) + ": fourierMetric backward supports D <= " + std::to_string(kMaxBackwardD) +
                ", got D = " + std::to_string(sh.D));
  const int L = lanes_per_pair(sh.D), LG = L * kDimsPerLane;
  const int BH = sh.B * sh.H;
  const int key_tiles = (sh.Nk + kKeyTile - 1) / kKeyTile;
  // Splits of the key tiles: enough blocks to fill every SM as far as the kernel's registers and
  // shared memory allow (the occupancy calculator; 1 block of 256 threads at ~160 registers),
  // each split with its own copy of dq (at most 64 MiB of copies).
  const int64_t q_bytes = sh.q_elems() * int64_t(sizeof(float));
  const int64_t by_memory = std::max<int64_t>(1, (int64_t(64) << 20) / q_bytes);
  const int per_sm = backward_blocks_per_sm();
  const int splits = int(std::min<int64_t>({key_tiles, (int64_t(per_sm) * sm_count() + BH - 1) / BH, by_memory}));
  Scratch<double> dR_part(size_t(BH) * splits * LG);
  if (splits == 1) {
    FF_LAUNCH(fourier_metric_backward_kernel, dim3(1, std::min(BH, 65535)), dim3(kThreads), kBackwardShmem, sh, L, 1, q,
              k, R, power, dK, dq, dk, dR_part.p);
  } else {
    Scratch<float> dq_part(size_t(splits) * sh.q_elems());
    FF_LAUNCH(fourier_metric_backward_kernel, dim3(splits, std::min(BH, 65535)), dim3(kThreads), kBackwardShmem, sh, L,
              splits, q, k, R, power, dK, dq_part.p, dk, dR_part.p);
    const int64_t n = sh.q_elems();
    const unsigned blocks = unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, 4 * sm_count()));
    FF_LAUNCH(fourier_metric_dq_sum_kernel, dim3(blocks), dim3(kThreads), 0, dq_part.p, splits, n, dq);
  }
  FF_LAUNCH(fourier_metric_dR_kernel, dim3(sh.r_elems()), dim3(kThreads), 0, sh, LG, splits, dR_part.p, dR);
}

}  // namespace ff::backend
