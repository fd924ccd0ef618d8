// csrc/cuda/reduce.h: warp_sum, warp_max and block_sum (float and double) for several block sizes.
#include <cmath>
#include <vector>
#include "cuda/launch.h"
#include "cuda/reduce.h"
#include "harness.h"

namespace {

__global__ void reduce_kernel(const float* x, float* warp_sums, float* warp_maxes, float* block_sums,
                              double* block_sums_double, int* consistent) {
  __shared__ float scratch[32];
  __shared__ double scratch_double[32];
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  const float v = x[t];
  const float ws = ff::cuda::warp_sum(v);
  const float wm = ff::cuda::warp_max(v);
  if (threadIdx.x % 32 == 0) {
    warp_sums[t / 32] = ws;
    warp_maxes[t / 32] = wm;
  }
  const float bs = ff::cuda::block_sum(v, scratch);
  const float again = ff::cuda::block_sum(v, scratch);  // scratch reused right away
  const double bd = ff::cuda::block_sum(double(v), scratch_double);
  if (threadIdx.x == 0) {
    block_sums[blockIdx.x] = bs;
    block_sums_double[blockIdx.x] = bd;
  }
  if (bs != again) atomicExch(consistent, 0);
}

FF_TEST(warp_and_block_reductions) {
  for (int threads : {32, 96, 256, 1024}) {
    const int blocks = ff::test::kThreadMode ? 1 : 5, n = blocks * threads;
    std::vector<float> x(n);
    for (int i = 0; i < n; ++i) x[i] = float((i * 37) % 101) - 50.0f;  // integers: exact sums
    std::vector<float> ws(n / 32), wm(n / 32), bs(blocks);
    std::vector<double> bd(blocks);
    int consistent = 1;
    FF_LAUNCH(reduce_kernel, dim3(blocks), dim3(threads), 0, x.data(), ws.data(), wm.data(), bs.data(), bd.data(),
              &consistent);
    FF_CHECK(consistent == 1) << "threads " << threads;
    for (int w = 0; w < n / 32; ++w) {
      float sum = 0, max = -1e30f;
      for (int l = 0; l < 32; ++l) {
        sum += x[w * 32 + l];
        max = std::fmax(max, x[w * 32 + l]);
      }
      FF_CHECK(ws[w] == sum && wm[w] == max) << "threads " << threads << " warp " << w;
    }
    for (int b = 0; b < blocks; ++b) {
      double sum = 0;
      for (int i = 0; i < threads; ++i) sum += x[b * threads + i];
      FF_CHECK(bs[b] == float(sum) && bd[b] == sum) << "threads " << threads << " block " << b;
    }
  }
}

}  // namespace
