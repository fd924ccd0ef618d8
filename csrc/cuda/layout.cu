// cuda backend: data movement. strided_copy serves permute/transpose (gather by strides) and
// broadcastTo (stride 0); copy_rows serves slice, its backward and concat.
//
// Kernels:
//   gather_kernel     out[i] = src[offset(i)]: a thread per output element, writes coalesced;
//                     reads coalesced too when the innermost dim stays innermost (or is a
//                     broadcast).
//   transpose_kernel  when the output's innermost dim is strided in the input and another dim j
//                     is contiguous there: 32 x 32 tiles through shared memory (padded to 33
//                     columns: no bank conflicts), so reads along j and writes along the
//                     innermost dim are both coalesced. grid = (tiles of the innermost dim,
//                     tiles of j, the other dims' index), y and z grid-stride.
//   copy_rows_kernel  dst[r * ds + c] = src[r * ss + c], grid-stride over rows * cols.
// Cost: one read and one write per element.
#include "launch.h"  // first: under the emulator it defines the CUDA qualifiers
#include <cstdint>
#include "../common/backend_tensor_ops.h"
#include "../common/transpose_split.h"
#include "strided_index.h"

namespace ff::backend {
namespace {

using cuda::Dims32;
using cuda::kThreads;

constexpr int kTile = 32;
constexpr int kTileRows = 8;            // a 32 x 8 block moves a 32 x 32 tile, 4 elements per thread
constexpr unsigned kMaxGridYZ = 65535;  // grid.y and grid.z limits: loops cover the rest

__global__ void gather_kernel(Dims32 s, const float* src, float* out, unsigned n) {
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    out[i] = src[cuda::offset0(s, i)];
}

// others: the dims other than j and the innermost, stride0 = input, stride1 = output strides.
// out[p, a, b] = src[in(p) + a + b * in_b] at out(p) + a * out_a + b, a < A (dim j), b < B.
__global__ void transpose_kernel(Dims32 others, unsigned P, unsigned A, unsigned B, unsigned in_b, unsigned out_a,
                                 const float* src, float* out) {
  __shared__ float tile[kTile][kTile + 1];
  const unsigned b0 = blockIdx.x * kTile, tiles_a = (A + kTile - 1) / kTile;
  for (unsigned p = blockIdx.z; p < P; p += gridDim.z) {
    unsigned in_off, out_off;
    cuda::offsets(others, p, in_off, out_off);
    for (unsigned ta = blockIdx.y; ta < tiles_a; ta += gridDim.y) {
      const unsigned a0 = ta * kTile, a = a0 + threadIdx.x;
      for (unsigned r = threadIdx.y; r < kTile; r += kTileRows) {
        const unsigned b = b0 + r;
        if (a < A && b < B) tile[r][threadIdx.x] = src[in_off + a + b * in_b];
      }
      __syncthreads();
      const unsigned b = b0 + threadIdx.x;
      for (unsigned r = threadIdx.y; r < kTile; r += kTileRows) {
        const unsigned a2 = a0 + r;
        if (a2 < A && b < B) out[out_off + a2 * out_a + b] = tile[threadIdx.x][r];
      }
      __syncthreads();  // the tile is reused by the next iteration
    }
  }
}

__global__ void copy_rows_kernel(const float* src, unsigned src_stride, float* dst, unsigned dst_stride, unsigned rows,
                                 unsigned cols) {
  const unsigned n = rows * cols;
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const unsigned r = i / cols, c = i - r * cols;
    dst[r * dst_stride + c] = src[r * src_stride + c];
  }
}

void transpose(const Strided& s, int j, const float* src, float* out) {
  const TransposeSplit t = transpose_split(s, j);
  const unsigned P = unsigned(t.others.numel()), A = unsigned(t.A), B = unsigned(t.B);
  const unsigned tiles_a = (A + kTile - 1) / kTile;
  const dim3 grid((B + kTile - 1) / kTile, tiles_a < kMaxGridYZ ? tiles_a : kMaxGridYZ,
                  P < kMaxGridYZ ? P : kMaxGridYZ);
  FF_LAUNCH(transpose_kernel, grid, dim3(kTile, kTileRows), 0, cuda::dims32(t.others), P, A, B, unsigned(t.in_b),
            unsigned(t.out_a), src, out);
}

}  // namespace

void strided_copy(const Strided& s, const float* src, float* out) {
  const int last = s.ndim - 1;
  if (s.stride[0][last] > 1) {
    for (int j = 0; j < last; ++j)
      if (s.stride[0][j] == 1) return transpose(s, j, src, out);
  }
  const int64_t n = s.numel();
  FF_LAUNCH(gather_kernel, dim3(cuda::blocks_for(n)), dim3(kThreads), 0, cuda::dims32(s), src, out, unsigned(n));
}

void copy_rows(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows, int64_t cols) {
  FF_LAUNCH(copy_rows_kernel, dim3(cuda::blocks_for(rows * cols)), dim3(kThreads), 0, src, unsigned(src_stride), dst,
            unsigned(dst_stride), unsigned(rows), unsigned(cols));
}

}  // namespace ff::backend
