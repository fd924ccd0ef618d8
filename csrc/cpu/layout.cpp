// cpu backend: data movement. strided_copy serves permute/transpose (gather by strides) and
// broadcastTo (stride 0); copy_rows serves slice, its backward and concat (blocks of rows).
//
// strided_copy, by the innermost input stride of the canonical index space:
//   1 (the innermost dim stays innermost, e.g. [B,T,H,D] -> [B,H,T,D]): row copies;
//   0 (broadcast along it): runs of fills;
//   otherwise a transpose: the dim that is contiguous in the input and the output's innermost
//     dim are copied in 32 x 32 tiles, so reads and writes both stay within a few cache lines
//     (the naive gather touches a new line per element); dims with no stride 1: a plain gather.
// Cost: one read and one write per element; threads over ranges (tiles for a transpose).
#include <algorithm>
#include <vector>
#include "../common/backend_tensor_ops.h"
#include "../common/transpose_split.h"
#include "parallel.h"
#include "strided_walk.h"

namespace ff::backend {
namespace {

constexpr int64_t kTile = 32;

// out[a * out_a + b] = src[a + b * in_b] for a < A, b < B (one tile of a transpose).
void copy_tile(const float* src, int64_t in_b, float* out, int64_t out_a, int64_t A, int64_t B) {
  for (int64_t a = 0; a < A; ++a)
    for (int64_t b = 0; b < B; ++b) out[a * out_a + b] = src[a + b * in_b];
}

void transpose_tiles(const Strided& s, int j, const float* src, float* out) {
  const TransposeSplit split = transpose_split(s, j);
  const Strided& others = split.others;
  const int64_t P = others.numel();
  std::vector<int64_t> in_off(P), out_off(P);
  cpu::walk_runs(others, 0, P, [&](int64_t p, int64_t oi, int64_t oo, int64_t len) {
    for (int64_t k = 0; k < len; ++k) {
      in_off[p + k] = oi + k * others.stride[0][others.ndim - 1];
      out_off[p + k] = oo + k * others.stride[1][others.ndim - 1];
    }
  });
  const int64_t A = split.A, B = split.B, in_b = split.in_b, out_a = split.out_a;
  const int64_t tiles_a = (A + kTile - 1) / kTile, tiles_b = (B + kTile - 1) / kTile;
  const int64_t work = P * tiles_a * tiles_b;
  cpu::parallel_ranges(work, cpu::threads_for(s.numel()), [&](int, int, int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w) {
      const int64_t p = w / (tiles_a * tiles_b), ta = w / tiles_b % tiles_a, tb = w % tiles_b;
      const int64_t a0 = ta * kTile, b0 = tb * kTile;
      copy_tile(src + in_off[p] + a0 + b0 * in_b, in_b, out + out_off[p] + a0 * out_a + b0, out_a,
                std::min(kTile, A - a0), std::min(kTile, B - b0));
    }
  });
}

// The innermost dim is contiguous in src: copies it row by row, the rows walked as runs of the
// next dim, so the walk's bookkeeping is paid once per run of rows instead of once per row
// (in a [B, T, H, 16] -> [B, H, T, 16] head split the bookkeeping would outweigh the copy).
void copy_inner_rows(const Strided& s, const float* src, float* out) {
  const int64_t inner = s.size[s.ndim - 1];
  Strided rows = s;
  rows.ndim = s.ndim - 1;
  const int64_t step = rows.stride[0][rows.ndim - 1];
  cpu::parallel_for(rows.numel(), std::max<int64_t>(1, cpu::kParallelGrain / inner), [&](int64_t begin, int64_t end) {
    cpu::walk_runs(rows, begin, end, [&](int64_t r, int64_t off, int64_t, int64_t len) {
      for (int64_t j = 0; j < len; ++j) {
        const float* from = src + off + j * step;
        float* to = out + (r + j) * inner;
        for (int64_t k = 0; k < inner; ++k) to[k] = from[k];
      }
    });
  });
}

}  // namespace

void strided_copy(const Strided& s, const float* src, float* out) {
  const int last = s.ndim - 1;
  const int64_t step = s.stride[0][last];
  if (step > 1) {
    for (int j = 0; j < last; ++j)
      if (s.stride[0][j] == 1) return transpose_tiles(s, j, src, out);
  }
  if (step == 1 && s.ndim >= 2) return copy_inner_rows(s, src, out);
  cpu::parallel_for(s.numel(), cpu::kParallelGrain, [&](int64_t begin, int64_t end) {
    cpu::walk_runs(s, begin, end, [&](int64_t i, int64_t off, int64_t, int64_t len) {
      if (step == 1)
        std::copy(src + off, src + off + len, out + i);
      else if (step == 0)
        std::fill(out + i, out + i + len, src[off]);
      else
        for (int64_t k = 0; k < len; ++k) out[i + k] = src[off + k * step];
    });
  });
}

void copy_rows(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows, int64_t cols) {
  cpu::parallel_for(rows * cols, cpu::kParallelGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end;) {
      const int64_t r = i / cols, c = i % cols, len = std::min(cols - c, end - i);
      std::copy(src + r * src_stride + c, src + r * src_stride + c + len, dst + r * dst_stride + c);
      i += len;
    }
  });
}

}  // namespace ff::backend
