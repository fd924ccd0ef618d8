// The row blocks of the fused attention kernels (fourier_attention.cu, dot_attention.cu,
// neural_attention.cu): which rows a block owns, and how a causal grid balances them.
//
// Every kernel's grid is over row blocks of Layout<G>::kRows rows (x) and the B*H slices (y):
// query rows in the forward and dq kernels, key rows in the dk/dv kernels. Causal, a row block's
// work is the other side's rows it meets, which differs across a slice's nb row blocks:
//   forward, dq: query row block r streams keys [0, min((r + 1) kRows, N)): ceil((r + 1) kRows /
//     kTile) key tiles, (r + 1) kRows keys, 1 to nb row blocks' worth;
//   dk/dv: key block c streams queries [c kRows rounded down to a tile, N): nb - c row blocks'
//     worth (to within a tile), nb to 1.
// Paired, block x < ceil(nb / 2) of a causal slice runs row blocks nb - 1 - x and x in turn (an
// odd nb's middle block, x = (nb - 1) / 2, runs alone, and last in the slice): every pair meets
// (nb + 1) kRows rows, the middle block about half that. At the paper's LM shapes (the wt103
// presets: B 96 / 56, H 8, N 256 / 384, D 16 / 32):
//   small, G 2: kRows = kTile = 64, nb 4: key tiles per block 4, 3, 2, 1 (longest first);
//     paired 4 + 1 and 3 + 2 = 5 each; 3072 blocks per launch, paired 1536.
//   medium, G 4: kRows 32, kTile 64, nb 12: 6, 6, 5, 5, ..., 1, 1 tiles ((r + 1) 32 keys, 32 to
//     384); paired 7 tiles of 416 keys each (6 + 1, 6 + 1, 5 + 2, ...); 5376 blocks, paired 2688.
// Which grid ends first depends on how many blocks the GPU holds at once: slots = SMs x
// resident blocks per SM. H100: 132 SMs; at 128 threads a block, by registers (ptxas, sm_90),
// the Fourier forward (~110 registers) holds 4 blocks per SM, its dq (~150) 3 and dk/dv (~200)
// 2: 264-528 slots; the dot kernels (62-89) 5-8: 660-1056. Blocks go in grid order to the first
// free slot. With several waves the unpaired grid's last wave mixes long and short blocks and
// the slots go idle unevenly; a paired grid's blocks are alike but half as many, so its last
// wave may be a partial one. Modelled (that greedy dispatch, time per block = rows met), as
// makespan / (total work / slots), unpaired vs paired, at 2 / 3 / 4 / 6 / 8 blocks per SM:
//   small (3072 blocks, 2.9-11.6 waves): 1.10 / 1.13 / 1.17 / 1.24 / 1.38 vs 1.03 (1.38 at 8)
//   medium (5376, 5.1-20 waves): 1.06 / 1.09 / 1.12 / 1.18 / 1.24 vs 1.08 / 1.03 / 1.18 / 1.18
//     / 1.18 (2688 equal blocks: a partial last wave costs up to a block of 7 tiles)
//   B 8 H 8 N 1024 D 16 (1024 blocks): 1.30 / 1.46 / 1.64 / 1.91 / 1.94 vs 1.03 / 1.55 / 1.03
//     / 1.55 / 2.06
//   B 1 H 8 N 16384 D 64 (nb 1024, 8192 blocks): 1.00-1.04 vs 1.03-1.16
//   under one wave (B 8 H 8 N 256 D 16: 256 blocks; evaluation at B 1) a grid ends with its
//     longest block: nb row blocks' worth unpaired, nb + 1 paired: pairing loses.
// Neither wins everywhere, and the balance turns on the slot count.
// So the host runs that model (causal_pairing below) for the launch's shape and the device's
// slots (cudaOccupancyMaxActiveBlocksPerMultiprocessor x SMs) and pairs only where it ends
// sooner; the answer is cached per shape. FF_CUDA_CAUSAL_PAIRING=on|off overrides it (tests run
// both grids on small shapes; a GPU run can time both). Pairing changes no result bit: a row's
// sums run in the same order, and per-row-block partials (dR, the neural weights) keep their
// row block's index.
#pragma once
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <queue>
#include <tuple>
#include <vector>
#include "attention_tiles.h"

namespace ff::cuda::attention {

// The (up to two) row blocks a block of a row-block grid runs, in order.
struct BlockRows {
  int first, second, count;
  __device__ int operator[](int part) const { return part == 0 ? first : second; }
};

// For a grid over nb row blocks: unpaired, block x runs one row block, `reversed` (the forward
// and dq kernels: the last row block, the longest, first) or not (dk/dv: key block 0, the
// longest, first); paired, block x < ceil(nb / 2) runs nb - 1 - x, then x unless that is the
// same block. Uniform over the block, so barriers inside the loop over it are safe.
__device__ inline BlockRows block_rows(int nb, bool paired, bool reversed) {
  const int x = blockIdx.x, mirror = nb - 1 - x;
  if (paired) return {mirror, x, mirror == x ? 1 : 2};
  return {reversed ? mirror : x, 0, 1};
}

// The rows of a group-per-row kernel's row block: the group's row, this lane's features and
// their place in a shared tile row.
template <int G>
struct GroupRow {
  int row0;    // the row block's first row
  int row;     // this group's row (may be past the end: then it computes on clamped data)
  int first;   // this lane's first feature
  int slot;    // tile_col of `first` in a streamed tile's row
  int64_t at;  // the row's index in [B*H][rows], clamped to the slice's last row

  __device__ GroupRow(int row_block, int bh, int rows)
      : row0(row_block * Layout<G>::kRows),
        row(row0 + int(threadIdx.x) / G),
        first(int(threadIdx.x) % G * kLaneDims),
        slot(tile_col(Layout<G>::kWidth, first)),
        at(int64_t(bh) * rows + imin(row, rows - 1)) {}
};

// The keys a query row block [row0, row0 + rows) attends to: [0, key_end).
__device__ inline int key_end(const AttentionShape& s, int row0, int rows) {
  return s.causal ? imin(s.Nk, imin(row0 + rows, s.Nq)) : s.Nk;
}

// The first query a key block [key0, ...) meets: causal, the tile holding query key0 (tiles
// start at multiples of `tile`); else 0.
__device__ inline int first_query(const AttentionShape& s, int key0, int tile) {
  return s.causal ? key0 / tile * tile : 0;
}

// Number of row blocks of `rows_per_block` rows.
__host__ __device__ inline int row_blocks(int rows, int rows_per_block) {
  return (rows + rows_per_block - 1) / rows_per_block;
}

// The grid of a launch over row blocks: (nb, B*H), or (ceil(nb / 2), B*H) paired.
inline dim3 block_grid(int rows, int rows_per_block, int slices, bool paired) {
  dim3 grid = row_grid(rows, rows_per_block, slices);
  if (paired) grid.x = (grid.x + 1) / 2;
  return grid;
}

// Streams the other side's rows [begin, end) through shared memory a tile at a time:
// load(j0, n) stages rows [j0, j0 + n) (all threads), use(j0, n) consumes them. The barriers:
// no thread overwrites a tile another may still read (the one before load), none reads before
// the tile is whole (the one after). All threads of the block call it with the same bounds.
template <int kTile, class Load, class Use>
__device__ inline void for_each_tile(int begin, int end, Load&& load, Use&& use) {
  for (int j0 = begin; j0 < end; j0 += kTile) {
    const int n = imin(kTile, end - j0);
    __syncthreads();
    load(j0, n);
    __syncthreads();
    use(j0, n);
  }
}

// Which side a grid's row blocks are: query rows (forward, dq) or key rows (dk/dv).
enum class RowSide { query, key };

// Whether a launch of `kernel` over nb row blocks of kRows rows per slice (`slices` = B*H, with
// `threads` threads and `shmem` bytes a block) pairs them. Only causal grids of nb >= 2 row
// blocks can pair. Model (see the top): each slot takes the next block in grid order when free;
// a block's time is the number of other-side rows it meets; pair where that ends sooner. Cost:
// O(blocks log slots) the first time a shape is seen, then a map lookup under a lock.
template <typename Kernel>
bool causal_pairing(Kernel kernel, const AttentionShape& s, RowSide side, int rows_per_block, int tile, int threads,
                    size_t shmem) {
  const int n = side == RowSide::query ? s.Nq : s.Nk;
  const int nb = row_blocks(n, rows_per_block);
  if (!s.causal || nb < 2) return false;
  if (const char* force = std::getenv("FF_CUDA_CAUSAL_PAIRING")) {
    if (std::strcmp(force, "on") == 0) return true;
    if (std::strcmp(force, "off") == 0) return false;
  }
  static std::mutex m;
  static std::map<std::tuple<int, int, int, int, int, int>, bool> cache;
  const int slices = s.B * s.H;
  const auto key = std::make_tuple(int(side), s.Nq, s.Nk, rows_per_block, tile, slices);
  std::lock_guard<std::mutex> lock(m);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  static const int64_t slots = [&] {
    int per_sm = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, shmem),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    return int64_t(std::max(per_sm, 1)) * sm_count();
  }();
  // Rows met by row block r.
  auto work = [&](int r) -> int64_t {
    if (side == RowSide::query) return std::min({int64_t(r + 1) * rows_per_block, int64_t(s.Nq), int64_t(s.Nk)});
    return std::max<int64_t>(s.Nq - int64_t(r) * rows_per_block / tile * tile, 0);
  };
  auto makespan = [&](const std::vector<int64_t>& slice_blocks) {
    const int64_t blocks = int64_t(slice_blocks.size()) * slices;
    // Past 64 waves either grid ends within 1/64 of its work: no need to model it.
    if (blocks > 64 * slots) return int64_t(-1);
    std::priority_queue<int64_t, std::vector<int64_t>, std::greater<int64_t>> free_at;
    for (int64_t i = 0; i < std::min(slots, blocks); ++i) free_at.push(0);
    int64_t end = 0;
    for (int sl = 0; sl < slices; ++sl)
      for (int64_t w : slice_blocks) {
        const int64_t t = free_at.top() + w;
        free_at.pop();
        free_at.push(t);
        end = std::max(end, t);
      }
    return end;
  };
  std::vector<int64_t> single, paired;
  for (int x = 0; x < nb; ++x) single.push_back(work(side == RowSide::query ? nb - 1 - x : x));
  for (int x = 0; x < (nb + 1) / 2; ++x) paired.push_back(work(nb - 1 - x) + (nb - 1 - x != x ? work(x) : 0));
  const int64_t t_single = makespan(single), t_paired = makespan(paired);
  const bool pair = t_single < 0 || t_paired < t_single;
  cache.emplace(key, pair);
  return pair;
}

}  // namespace ff::cuda::attention
