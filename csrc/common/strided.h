// Index spaces of the tensor ops (broadcasting, permutes, reductions) in canonical form. The
// binding builds them from user shapes (host code only): size-1 dims are dropped and adjacent
// dims that stay contiguous for every operand are merged, so a backend sees the fewest dims
// (two same-shape tensors: 1 dim; a bias add [..., F] + [F]: 2 dims) and picks its fast path
// from the strides alone. Tensors are dense and row-major; a stride of 0 is a broadcast dim.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "error.h"

namespace ff {

constexpr int kMaxDims = 6;

// An index space of ndim dims (1 <= ndim <= kMaxDims), walked row-major, with the stride (in
// elements) of each dim in up to two operands. The output of an op is dense in this order.
struct Strided {
  int ndim = 1;
  int64_t size[kMaxDims] = {1};
  int64_t stride[2][kMaxDims] = {{0}, {0}};

  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= size[d];
    return n;
  }
};

// A sum over some dims of a dense tensor: out[kept index] = sum over the reduced index of
// in[sum_d kept_idx_d * kept_stride_d + sum_d red_idx_d * red_stride_d]. The kept and reduced
// dims alternate in the input; inner_reduced says which kind is innermost (and contiguous).
struct ReduceShape {
  int nkept = 0, nred = 0;
  int64_t kept_size[kMaxDims] = {}, kept_stride[kMaxDims] = {};
  int64_t red_size[kMaxDims] = {}, red_stride[kMaxDims] = {};
  bool inner_reduced = false;

  int64_t out_numel() const {
    int64_t n = 1;
    for (int d = 0; d < nkept; ++d) n *= kept_size[d];
    return n;
  }
  int64_t red_numel() const {
    int64_t n = 1;
    for (int d = 0; d < nred; ++d) n *= red_size[d];
    return n;
  }
};

namespace strided_detail {

inline std::vector<int64_t> dense_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t acc = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

// Drops size-1 dims, merges contiguous neighbours, checks the dim limit.
inline Strided canonical(const std::vector<int64_t>& size, const std::vector<int64_t> (&stride)[2], const char* what) {
  std::vector<int64_t> sz;
  std::vector<int64_t> st[2];
  for (size_t d = 0; d < size.size(); ++d) {
    if (size[d] == 1) continue;
    const bool merge = !sz.empty() && stride[0][d] * size[d] == st[0].back() && stride[1][d] * size[d] == st[1].back();
    if (merge) {
      sz.back() *= size[d];
      st[0].back() = stride[0][d];
      st[1].back() = stride[1][d];
    } else {
      sz.push_back(size[d]);
      st[0].push_back(stride[0][d]);
      st[1].push_back(stride[1][d]);
    }
  }
  if (int(sz.size()) > kMaxDims)
    throw Error(std::string(what) + ": needs " + std::to_string(sz.size()) +
                " dimensions after merging contiguous ones; at most " + std::to_string(kMaxDims) + " are supported");
  Strided s;
  if (sz.empty()) return s;  // one element
  s.ndim = int(sz.size());
  for (int d = 0; d < s.ndim; ++d) {
    s.size[d] = sz[d];
    s.stride[0][d] = st[0][d];
    s.stride[1][d] = st[1][d];
  }
  return s;
}

// The strides of `shape` (right-aligned in `ndim` dims) over an index space `out`: 0 where
// the operand has size 1 (broadcast) or lacks the dim.
inline std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& shape, size_t ndim) {
  const std::vector<int64_t> dense = dense_strides(shape);
  std::vector<int64_t> s(ndim, 0);
  const size_t lead = ndim - shape.size();
  for (size_t d = 0; d < shape.size(); ++d) s[lead + d] = shape[d] == 1 ? 0 : dense[d];
  return s;
}

}  // namespace strided_detail

// The NumPy broadcast of two shapes; throws naming both when they do not broadcast.
inline std::vector<int64_t> broadcast_shape(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw Error("a, b: shapes do not broadcast (dimension " + std::to_string(i) + ": " + std::to_string(da) + " vs " +
                  std::to_string(db) + ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// out = a op b with broadcasting: stride[0] walks a, stride[1] walks b over the output shape.
inline Strided broadcast_binary(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  const std::vector<int64_t> out = broadcast_shape(a, b);
  const std::vector<int64_t> st[2] = {strided_detail::broadcast_strides(a, out.size()),
                                      strided_detail::broadcast_strides(b, out.size())};
  return strided_detail::canonical(out, st, "a, b");
}

// out = in broadcast to out_shape (in's shape must broadcast to it): stride[0] walks in.
inline Strided broadcast_to(const std::vector<int64_t>& in, const std::vector<int64_t>& out) {
  const std::vector<int64_t> st[2] = {strided_detail::broadcast_strides(in, out.size()),
                                      std::vector<int64_t>(out.size(), 0)};
  return strided_detail::canonical(out, st, "shape");
}

// out = in with its dims permuted (out dim d is in dim perm[d]): stride[0] walks in.
inline Strided permute(const std::vector<int64_t>& in, const std::vector<int>& perm) {
  const std::vector<int64_t> dense = strided_detail::dense_strides(in);
  std::vector<int64_t> size(in.size());
  std::vector<int64_t> st[2] = {std::vector<int64_t>(in.size()), std::vector<int64_t>(in.size(), 0)};
  for (size_t d = 0; d < in.size(); ++d) {
    size[d] = in[perm[d]];
    st[0][d] = dense[perm[d]];
  }
  return strided_detail::canonical(size, st, "dims");
}

// Sum of a dense tensor of `shape` over the dims where reduce[d] is true.
inline ReduceShape reduction(const std::vector<int64_t>& shape, const std::vector<bool>& reduce) {
  const std::vector<int64_t> dense = strided_detail::dense_strides(shape);
  // Merged runs of same-kind dims (size-1 dims dropped): size, innermost stride, kind.
  struct Run {
    int64_t size, stride;
    bool red;
  };
  std::vector<Run> runs;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!runs.empty() && runs.back().red == reduce[d]) {
      runs.back().size *= shape[d];
      runs.back().stride = dense[d];
    } else {
      runs.push_back({shape[d], dense[d], bool(reduce[d])});
    }
  }
  if (int(runs.size()) > kMaxDims)
    throw Error("axes: the reduced and kept dimensions alternate " + std::to_string(runs.size()) + " times; at most " +
                std::to_string(kMaxDims) + " are supported");
  ReduceShape r;
  for (const Run& run : runs) {
    if (run.red) {
      r.red_size[r.nred] = run.size;
      r.red_stride[r.nred++] = run.stride;
    } else {
      r.kept_size[r.nkept] = run.size;
      r.kept_stride[r.nkept++] = run.stride;
    }
  }
  r.inner_reduced = !runs.empty() && runs.back().red;
  return r;
}

}  // namespace ff
