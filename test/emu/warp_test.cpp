// Warp-level intrinsics: shuffles of every kind and width, full and partial masks, votes,
// __syncwarp, and the masks the emulator must reject (a lane that never arrives, a lane that
// does not exist, a caller outside its own mask, one mask meeting different intrinsics).
#include <cstdint>
#include <vector>
#include "cuda/launch.h"
#include "harness.h"

namespace {

constexpr unsigned kFull = 0xffffffffu;

enum Mode { kIdx, kUp, kDown, kXor };

template <typename T>
__global__ void shuffle_kernel(T* out, int mode, int arg, int width) {
  const T v = T(threadIdx.x);
  T r{};
  switch (mode) {
    case kIdx: r = __shfl_sync(kFull, v, arg, width); break;
    case kUp: r = __shfl_up_sync(kFull, v, unsigned(arg), width); break;
    case kDown: r = __shfl_down_sync(kFull, v, unsigned(arg), width); break;
    case kXor: r = __shfl_xor_sync(kFull, v, arg, width); break;
  }
  out[threadIdx.x] = r;
}

// The source lane per the CUDA programming guide's description of each shuffle.
int expected_source(int mode, int lane, int arg, int width) {
  const int base = lane / width * width;
  int src = lane;
  switch (mode) {
    case kIdx: src = base + arg % width; break;
    case kUp: src = lane - arg >= base ? lane - arg : lane; break;
    case kDown: src = lane + arg < base + width ? lane + arg : lane; break;
    case kXor: src = (lane ^ arg) < base + width ? lane ^ arg : lane; break;
  }
  return src;
}

template <typename T>
void check_shuffles(const std::vector<int>& widths, const std::vector<int>& args) {
  std::vector<T> out(64);
  for (int mode : {kIdx, kUp, kDown, kXor})
    for (int width : widths)
      for (int arg : args) {
        FF_LAUNCH(shuffle_kernel<T>, dim3(1), dim3(64), 0, out.data(), mode, arg, width);
        for (int t = 0; t < 64; ++t) {
          const int want = t / 32 * 32 + expected_source(mode, t % 32, arg, width);
          FF_CHECK(out[t] == T(want)) << "mode " << mode << " width " << width << " arg " << arg << " thread " << t
                                      << ": got " << out[t] << ", want " << want;
        }
      }
}

FF_TEST(shuffles_follow_cuda_semantics) {
  const std::vector<int> widths = {1, 2, 4, 8, 16, 32}, args = {0, 1, 3, 5, 16, 31};
  check_shuffles<float>(widths, args);
  check_shuffles<double>(widths, args);
  if (ff::test::kThreadMode) return;  // an OS thread per CUDA thread: the rest is too slow
  check_shuffles<int>(widths, args);
  check_shuffles<unsigned>(widths, args);
  check_shuffles<long long>(widths, args);
}

// Each half-warp reduces among itself with its own mask.
__global__ void half_warp_kernel(int* out) {
  const int lane = threadIdx.x % 32;
  const unsigned mask = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  int v = lane;
  for (int off = 8; off > 0; off >>= 1) v += __shfl_xor_sync(mask, v, off);
  out[threadIdx.x] = v;
}

FF_TEST(partial_masks_meet_separately) {
  std::vector<int> out(96);
  FF_LAUNCH(half_warp_kernel, dim3(1), dim3(96), 0, out.data());
  for (int t = 0; t < 96; ++t) FF_CHECK(out[t] == (t % 32 < 16 ? 120 : 376)) << "thread " << t << ": " << out[t];
}

// A mask from __ballot_sync before divergence: every third lane takes part.
__global__ void ballot_mask_kernel(int* out, unsigned* masks) {
  const int lane = threadIdx.x % 32;
  const unsigned active = __ballot_sync(kFull, lane % 3 == 0);
  int r = -1;
  if (lane % 3 == 0) r = __shfl_down_sync(active, lane * 10, 3);
  __syncwarp();
  out[threadIdx.x] = r;
  if (lane == 0) masks[threadIdx.x / 32] = active;
}

FF_TEST(ballot_masks_and_divergent_shuffles) {
  std::vector<int> out(64);
  std::vector<unsigned> masks(2);
  FF_LAUNCH(ballot_mask_kernel, dim3(1), dim3(64), 0, out.data(), masks.data());
  unsigned want_mask = 0;
  for (int l = 0; l < 32; l += 3) want_mask |= 1u << l;
  FF_CHECK(masks[0] == want_mask && masks[1] == want_mask) << std::hex << masks[0];
  for (int t = 0; t < 64; ++t) {
    const int lane = t % 32;
    const int want = lane % 3 ? -1 : (lane + 3 < 32 ? (lane + 3) * 10 : lane * 10);
    FF_CHECK(out[t] == want) << "thread " << t << ": " << out[t];
  }
}

__global__ void vote_kernel(int* out) {
  const int lane = threadIdx.x % 32;
  int* o = out + (threadIdx.x / 32) * 6;
  const unsigned even = __ballot_sync(kFull, lane % 2 == 0);
  const int any7 = __any_sync(kFull, lane == 7);
  const int any_none = __any_sync(kFull, 0);
  const int all = __all_sync(kFull, lane < 32);
  const int not_all = __all_sync(kFull, lane != 3);
  const unsigned low = lane < 8 ? __ballot_sync(0xffu, lane > 4) : 0;
  if (lane == 0) {
    o[0] = int(even);
    o[1] = any7;
    o[2] = any_none;
    o[3] = all;
    o[4] = not_all;
    o[5] = int(low);
  }
}

FF_TEST(ballot_any_all) {
  std::vector<int> out(12, -1);
  FF_LAUNCH(vote_kernel, dim3(1), dim3(64), 0, out.data());
  for (int w = 0; w < 2; ++w) {
    const int* o = out.data() + 6 * w;
    FF_CHECK(unsigned(o[0]) == 0x55555555u);
    FF_CHECK(o[1] == 1 && o[2] == 0 && o[3] == 1 && o[4] == 0);
    FF_CHECK(o[5] == 0xe0) << o[5];
  }
}

// __syncwarp orders shared memory among the lanes it names.
__global__ void syncwarp_kernel(int* out) {
  __shared__ int s[64];
  const int t = threadIdx.x, lane = t % 32;
  if (lane < 8) {
    s[t] = t * 2;
    __syncwarp(0xffu);
    out[t] = s[t - lane + (lane + 1) % 8];
  }
}

FF_TEST(syncwarp_with_partial_mask) {
  std::vector<int> out(64, -1);
  FF_LAUNCH(syncwarp_kernel, dim3(1), dim3(64), 0, out.data());
  for (int t = 0; t < 64; ++t) {
    const int lane = t % 32;
    FF_CHECK(out[t] == (lane < 8 ? (t - lane + (lane + 1) % 8) * 2 : -1)) << "thread " << t;
  }
}

// Lanes 16-31 return while lanes 0-15 wait for them in a full-warp shuffle.
__global__ void absent_lane_kernel(float* out) {
  if (threadIdx.x >= 16) return;
  out[threadIdx.x] = __shfl_sync(kFull, 1.0f, 0);
}

FF_TEST(mask_naming_an_exited_lane_is_reported) {
  std::vector<float> out(32);
  const std::string m = FF_EXPECT_ERROR(FF_LAUNCH(absent_lane_kernel, dim3(1), dim3(32), 0, out.data()), "exited");
  FF_CHECK(m.find("__shfl_sync(mask=0xffffffff)") != std::string::npos) << m;
}

// Lanes 16-31 wait for lane 0, which waits in another rendezvous: a deadlock.
__global__ void crossed_masks_kernel(int* out) {
  const int lane = threadIdx.x % 32;
  if (lane < 16)
    __syncwarp(kFull);
  else
    __syncwarp(0xffff0001u);
  out[threadIdx.x] = lane;
}

FF_TEST(crossed_masks_deadlock_is_reported) {
  std::vector<int> out(32);
  const std::string m = FF_EXPECT_ERROR(FF_LAUNCH(crossed_masks_kernel, dim3(1), dim3(32), 0, out.data()), "deadlock");
  FF_CHECK(m.find("__syncwarp(mask=0xffff0001)") != std::string::npos) << m;
}

__global__ void foreign_mask_kernel(int* out) { out[threadIdx.x] = __shfl_sync(0x2u, 1, 1); }

FF_TEST(mask_without_the_caller_is_reported) {
  std::vector<int> out(32);
  FF_EXPECT_ERROR(FF_LAUNCH(foreign_mask_kernel, dim3(1), dim3(32), 0, out.data()), "does not name the calling lane");
}

__global__ void partial_warp_kernel(float* out) { out[threadIdx.x] = __shfl_xor_sync(kFull, float(threadIdx.x), 1); }

FF_TEST(mask_naming_a_missing_lane_is_reported) {
  std::vector<float> out(48);
  FF_EXPECT_ERROR(FF_LAUNCH(partial_warp_kernel, dim3(1), dim3(48), 0, out.data()),
                  "names lanes 16-31, which do not exist (the block has 48 threads)");
}

__global__ void mixed_intrinsics_kernel(int* out) {
  const int lane = threadIdx.x % 32;
  out[threadIdx.x] = lane < 16 ? int(__ballot_sync(kFull, 1)) : __shfl_sync(kFull, lane, 0);
}

FF_TEST(one_mask_in_different_intrinsics_is_reported) {
  std::vector<int> out(32);
  FF_EXPECT_ERROR(FF_LAUNCH(mixed_intrinsics_kernel, dim3(1), dim3(32), 0, out.data()), "must call the same intrinsic");
}

}  // namespace
