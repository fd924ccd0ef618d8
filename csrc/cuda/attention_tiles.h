// The lane-group layout shared by the fused attention kernels (fourier_attention.cu,
// dot_attention.cu, neural_attention.cu), and its helpers.
//
// A row (a query row; in the dk/dv kernels a key row) belongs to a group of G consecutive lanes,
// G = 1, 2, 4, 8, 16 or 32 (a whole warp), the smallest with 8G >= max(D, Dv): D, Dv <= 256.
// Lane g of the group keeps features [8g, 8g + 8) of its row in registers (q or k, dout, the
// accumulators), so no thread holds more than 8 of the D or Dv features and register use does
// not grow with D. A dot product or a sinc product over the row is a butterfly over the group:
// log2 G shuffles, after which every lane holds the same bits. The other operand streams through
// shared-memory tiles whose rows are zero-padded to 8G floats; a lane reads its 8 floats as two
// float4, the same address for every group of the warp (a broadcast). Zero padding is harmless:
// it adds 0 to dot products, and in the Fourier kernels q = k = 0 gives s(0) = 1 and s'(0) = 0.
//
// Shared-memory banks (32 banks of 4 bytes; a 128-bit load is served 8 lanes = 128 bytes per
// wavefront at best). Every group of a warp reads the same tile row, lane g its float4s at
// columns 8g and 8g + 4, so a wavefront's 8 lanes read columns 8g', g' = 0..7 of a 64-column
// span (fewer distinct ones for G < 8). Columns c and c + 32 share banks, so unpadded:
//   G = 1, 2, 4: at most 4 distinct float4s per 8 lanes, columns 0, 8, 16, 24: no conflict;
//   G = 8, 16, 32: lanes g' and g' + 4 (columns 8g' and 8g' + 32) hit the same 4 banks: 2-way,
//   on every one of the 4 (forward, dq) or 6 (dk/dv) LDS.128 a lane issues per pair.
// So a tile row of w >= 64 floats is stored with 4 floats of padding after every 32 columns
// (tile_col: column c at c + 4 floor(c / 32), a row takes tile_stride(w) = 9w/8 floats): the 8
// lanes then start at banks 0, 8, 16, 24, 4, 12, 20, 28 (plus 8 per 64-column span): every
// float4 on its own 4 banks, no conflict; the second float4 (+4 columns, same 32-column run)
// likewise. Stores stay conflict-free: load_tile's warp writes 32 consecutive columns of one run,
// i.e. 32 consecutive floats. Rows of w <= 32 floats keep stride w. The per-row values (lse,
// RowNorm, the neural kernels' w1-projected rows of <= 8 floats, the weights) are read by every
// lane at one address (a broadcast): no conflict, no padding.
//
// Every lane runs every shuffle: loop bounds are uniform over the block, and rows past the end
// compute on clamped data without writing, so the full mask is always the right one.
#pragma once
#include <cstdint>
#include <type_traits>
#include "../common/backend.h"
#include "../common/error.h"
#include "../common/sinc_poly.h"
#include "reduce.h"

namespace ff::cuda::attention {

constexpr int kLaneDims = 8;   // features of a row per lane
constexpr int kMaxGroup = 32;  // lanes per row (a warp): D, Dv <= 256

// A tile row of w floats (w a power of two) in shared memory: tile_stride(w) floats, column c at
// tile_col(w, c) (4 floats of padding after every 32 columns where w >= 64; see the top).
__host__ __device__ constexpr int tile_stride(int w) { return w >= 64 ? w + w / 8 : w; }
__host__ __device__ constexpr int tile_col(int w, int c) { return w >= 64 ? c + ((c >> 5) << 2) : c; }

template <int G>
struct Layout {
  static constexpr int kWidth = kLaneDims * G;         // zero-padded tile row, floats
  static constexpr int kStride = tile_stride(kWidth);  // a tile row in shared memory, floats
  static constexpr int kThreads = G <= 8 ? 128 : 256;  // per block
  static constexpr int kRows = kThreads / G;           // rows a block owns
  static constexpr int kTile = G <= 4 ? 64 : 256 / G;  // rows per streamed tile (<= 9 KB)
  static constexpr int kTileFloats = kTile * kStride;
  // load_tile_ranged's column ranges: a minimum and a maximum row per kWidth-thread span.
  static constexpr int kRangeFloats = 2 * (kThreads / (kWidth > 32 ? kWidth : 32)) * kStride;
};

// Device scratch for a backward pass, released when the call returns (the allocator and all
// work follow the one stream, so the memory is not reused before the kernels using it ran).
struct Scratch {
  void* ptr;
  explicit Scratch(size_t bytes) : ptr(backend::alloc(bytes)) {}
  ~Scratch() { backend::release(ptr); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

// Lanes per row for features D and Dv; throws beyond 256.
inline int group_size(const char* op, int D, int Dv) {
  const int widest = D > Dv ? D : Dv;
  if (widest > kLaneDims * kMaxGroup)
    throw Error(std::string(op) + ": the cuda kernels take D and Dv up to " + std::to_string(kLaneDims * kMaxGroup) +
                ", got D = " + std::to_string(D) + ", Dv = " + std::to_string(Dv));
  int G = 1;
  while (G * kLaneDims < widest) G <<= 1;
  return G;
}

// Calls f(std::integral_constant<int, G>{}) for the runtime group size G.
template <typename F>
void with_group(int G, F&& f) {
  switch (G) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 8: return f(std::integral_constant<int, 8>{});
    case 16: return f(std::integral_constant<int, 16>{});
    default: return f(std::integral_constant<int, 32>{});
  }
}

// Grid of (row blocks, B*H).
inline dim3 row_grid(int rows, int rows_per_block, int slices) {
  if (slices > 65535) throw Error("attention: B*H must be at most 65535 on cuda");
  return dim3((rows + rows_per_block - 1) / rows_per_block, slices);
}

__device__ inline int imin(int a, int b) { return a < b ? a : b; }

template <int G>
__device__ inline float group_sum(float v) {
  for (int o = 1; o < G; o <<= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

template <int G>
__device__ inline float group_product(float v) {
  for (int o = 1; o < G; o <<= 1) v *= __shfl_xor_sync(kFullMask, v, o);
  return v;
}

// A float as mantissa * 2^exponent: products of many sinc values (|s| <= 1) keep their
// exponent in an int, so they never underflow. Mantissas are in [0.5, 1) (or 0); a product of
// up to 32 of them stays above 2^-32 and is normalized again after the butterfly.
struct Scaled {
  float m;
  int e;
};

// x = m 2^e for a normal finite x, from its bits: 5 integer operations, where frexpf also
// handles 0, subnormals, inf and NaN at about 3x the cost. (For 0, a subnormal, inf or NaN it
// gives e = -126 or 129 and a wrong m: see is_plain.)
__device__ inline Scaled scaled_normal(float x) {
  const unsigned b = __float_as_uint(x);
  return {__uint_as_float((b & 0x807fffffu) | 0x3f000000u), int((b >> 23) & 0xffu) - 126};
}

// Whether a lane's plain float product of its factors, split by scaled_normal, is trusted: finite
// and at least 2^-60 (one unsigned compare of e with [-59, 128]). The product of 8 sincs (each
// as small as ~|sin x| / |x|) underflows a float at |x| ~ 1e5, and a leave-one-out product
// divided by it (the backward's k^(p-1) / S) would overflow. At or above 2^-60 no partial
// product was subnormal (|s| <= 1 only shrinks them) and 1 / product stays below 2^60.
__device__ inline bool is_plain(Scaled x) { return unsigned(x.e + 59) <= 187u; }

// x with its mantissa brought back to [0.5, 1), so its log2 is in [-1, 0). x.m is a product of
// at most 32 normalized mantissas (>= 2^-32: normal), or 0 or NaN, which stay as they are.
__device__ inline Scaled normalized(Scaled x) {
  const Scaled n = scaled_normal(x.m);
  return {fabsf(x.m) >= 0x1p-64f ? n.m : x.m, x.e + n.e};
}

// The product of a lane's factors s as m 2^e, each factor split by frexpf and the running
// product renormalized after it: exact for any finite factors, subnormal ones included.
__device__ inline Scaled scaled_product(const float (&s)[kLaneDims]) {
  Scaled p{1.0f, 0};
#pragma unroll
  for (int e = 0; e < kLaneDims; ++e) {
    int es, ep;
    p.m *= frexpf(s[e], &es);  // |p.m| in [0.25, 1), or 0
    p.m = frexpf(p.m, &ep);
    p.e += es + ep;
  }
  return p;
}

// The lane's product of its factors s as m 2^e, given their float product `prod`: from prod's
// bits where that is plain (the common case), else factor by factor. The test is a warp vote,
// so the factor-by-factor path is one branch the warp skips together (all lanes call this).
__device__ inline Scaled lane_product(float prod, const float (&s)[kLaneDims]) {
  const Scaled p = scaled_normal(prod);
  const bool plain = is_plain(p);
  if (__builtin_expect(__any_sync(kFullMask, !plain), 0) && !plain) return scaled_product(s);
  return p;
}

template <int G>
__device__ inline Scaled group_product(Scaled x) {
  for (int o = 1; o < G; o <<= 1) {
    x.m *= __shfl_xor_sync(kFullMask, x.m, o);
    x.e += __shfl_xor_sync(kFullMask, x.e, o);
  }
  return normalized(x);
}

// Over the group's lanes: `all` = product of every lane's x, `others` = product of the other
// lanes' x (the leave-one-out product, no division). Cost: 2 log2 G shuffles.
template <int G>
__device__ inline void group_products(Scaled x, Scaled& all, Scaled& others) {
  all = x;
  others = Scaled{1.0f, 0};
  for (int o = 1; o < G; o <<= 1) {
    const float m = __shfl_xor_sync(kFullMask, all.m, o);
    const int e = __shfl_xor_sync(kFullMask, all.e, o);
    others.m *= m;
    others.e += e;
    all.m *= m;
    all.e += e;
  }
  all = normalized(all);
}

// dout_i . (v_j - out_i) over the group: delta_i = dout_i . out_i taken from dout_i . v_j
// without the cancellation of two O(1) dots when one key carries nearly all the weight
// (v_j ~ out_i, so v_j - out_i is exact).
template <int G>
__device__ inline float group_dot_diff(const float (&dout)[kLaneDims], const float (&v)[kLaneDims],
                                       const float (&out)[kLaneDims]) {
  float sum = 0.0f;
#pragma unroll
  for (int e = 0; e < kLaneDims; ++e) sum += dout[e] * (v[e] - out[e]);
  return group_sum<G>(sum);
}

// 8 floats from 16-byte aligned shared memory.
__device__ inline void load8(const float* p, float (&r)[kLaneDims]) {
  const float4 a = reinterpret_cast<const float4*>(p)[0];
  const float4 b = reinterpret_cast<const float4*>(p)[1];
  r[0] = a.x, r[1] = a.y, r[2] = a.z, r[3] = a.w;
  r[4] = b.x, r[5] = b.y, r[6] = b.z, r[7] = b.w;
}

// A lane's slice [first, first + 8) of a global row of n floats, zero past n.
__device__ inline void load_slice(const float* row, int n, int first, float (&r)[kLaneDims]) {
#pragma unroll
  for (int e = 0; e < kLaneDims; ++e) r[e] = first + e < n ? row[first + e] : 0.0f;
}

__device__ inline void store_slice(float* row, int n, int first, const float (&r)[kLaneDims], float scale) {
#pragma unroll
  for (int e = 0; e < kLaneDims; ++e)
    if (first + e < n) row[first + e] = r[e] * scale;
}

// Copies `rows` consecutive rows of `cols` floats from global memory into a shared tile of
// rows padded with zeros to kWidth (a power of two) and laid out as tile_col says, each value
// times `scale` where one is given. Row r, column c of the tile: tile[r * tile_stride(kWidth) +
// tile_col(kWidth, c)] (a lane's `slot` in the kernels is tile_col of its first column).
// All threads of the block take part; the caller puts __syncthreads() around it.
template <int kWidth>
__device__ inline void load_tile(float* tile, const float* src, int rows, int cols) {
  for (int e = threadIdx.x; e < rows * kWidth; e += blockDim.x) {
    const int r = e / kWidth, c = e % kWidth;
    tile[r * tile_stride(kWidth) + tile_col(kWidth, c)] = c < cols ? src[int64_t(r) * cols + c] : 0.0f;
  }
}

// load_tile, and the range of each column over the tile's rows, for the sinc bound check
// (tile_within_bound): each thread's columns are fixed (kThreads is a multiple of kWidth), its
// running min and max are combined over a warp's lanes of the same column by shuffles, and one
// partial per warp and column (per kWidth-thread span where kWidth > 32) goes to `range`
// (Layout::kRangeFloats of shared memory, rows laid out as tiles are). Cost: 2 compares per
// element, log2(32 / kWidth) shuffles.
template <int kWidth, int kThreads>
__device__ inline void load_tile_ranged(float* tile, const float* src, int rows, int cols, float* range) {
  static_assert(kThreads % kWidth == 0, "a thread keeps one column");
  constexpr int kSpan = kWidth > 32 ? kWidth : 32, kReps = kThreads / kSpan;
  float lo = INFINITY, hi = -INFINITY;
  for (int e = threadIdx.x; e < rows * kWidth; e += kThreads) {
    const int r = e / kWidth, c = e % kWidth;
    const float x = c < cols ? src[int64_t(r) * cols + c] : 0.0f;
    tile[r * tile_stride(kWidth) + tile_col(kWidth, c)] = x;
    lo = fminf(lo, x);
    hi = fmaxf(hi, x);
  }
  for (int o = kWidth; o < 32; o <<= 1) {
    lo = fminf(lo, __shfl_xor_sync(kFullMask, lo, o));
    hi = fmaxf(hi, __shfl_xor_sync(kFullMask, hi, o));
  }
  if (threadIdx.x % kSpan < kWidth) {
    const int at = threadIdx.x / kSpan * tile_stride(kWidth) + tile_col(kWidth, threadIdx.x % kSpan);
    range[at] = lo;
    range[kReps * tile_stride(kWidth) + at] = hi;
  }
}

// Whether |y| = |cr_e (a_e - b_e)| <= kSincBound for this lane's 8 features and every row b of
// the tile whose ranges load_tile_ranged wrote (a: the lane's own row; slot: tile_col of its
// first column): the sinc polynomials then hold for every pair of the tile. Monotone rounding
// makes the test exact for the y the kernels compute. NaN operands may pass (the result is NaN
// either way); infinities fail.
template <int kWidth, int kThreads>
__device__ inline bool tile_within_bound(const float* range, int slot, const float (&a)[kLaneDims],
                                         const float (&cr)[kLaneDims]) {
  constexpr int kSpan = kWidth > 32 ? kWidth : 32, kReps = kThreads / kSpan;
  constexpr int kStride = tile_stride(kWidth);
  float lo[kLaneDims], hi[kLaneDims];
  load8(range + slot, lo);
  load8(range + kReps * kStride + slot, hi);
#pragma unroll
  for (int rep = 1; rep < kReps; ++rep) {
    float l[kLaneDims], h[kLaneDims];
    load8(range + rep * kStride + slot, l);
    load8(range + (kReps + rep) * kStride + slot, h);
#pragma unroll
    for (int e = 0; e < kLaneDims; ++e) lo[e] = fminf(lo[e], l[e]), hi[e] = fmaxf(hi[e], h[e]);
  }
  bool ok = true;
#pragma unroll
  for (int e = 0; e < kLaneDims; ++e) ok &= fabsf(cr[e]) * fmaxf(a[e] - lo[e], hi[e] - a[e]) <= kSincBound;
  return ok;
}

template <int kWidth>
__device__ inline void load_tile(float* tile, const float* src, int rows, int cols, float scale) {
  for (int e = threadIdx.x; e < rows * kWidth; e += blockDim.x) {
    const int r = e / kWidth, c = e % kWidth;
    tile[r * tile_stride(kWidth) + tile_col(kWidth, c)] = c < cols ? src[int64_t(r) * cols + c] * scale : 0.0f;
  }
}

}  // namespace ff::cuda::attention
