// The cpu Fourier attention kernel without Node: its fwd and bwd at the small-LM shape (B8 H8
// N256 D16 causal, inputs as scripts/bench-attention.ts makes them), and its inner loops on
// L1-resident data in cycles per (row, W keys, d) against their multiply count at two
// multiplies per cycle (the core's clock is measured first, from a chain of dependent FMAs).
// For tuning csrc/cpu/fourier_attention.cpp: the cycle figures in its cost model come from here.
//   g++ -std=c++20 -O3 -mavx2 -mfma -fno-math-errno -fopenmp -Wno-psabi -Icsrc \
//       scripts/bench-attention-kernel.cpp -o /tmp/bench-kernel && OMP_NUM_THREADS=2 /tmp/bench-kernel [runs]
// (It includes the kernel's source to reach its internal loops; AVX2 only. It compiles the whole
// kernel with -mavx2, where the addon compiles it for the base ISA with AVX2 per entry point
// (simd.h run_avx2) and -fPIC -fno-omit-frame-pointer: the two builds' times differ by a few
// percent, and a change measured here moved the addon's by as little as 2/3 as much. Compare
// versions within one build.)
#include "cpu/fourier_attention.cpp"
#include "cpu/memory.cpp"  // the backward's workspace (cpu/scratch.h)

#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace {

using ff::cpu::VAvx2;
using Clock = std::chrono::steady_clock;
using T = VAvx2::T;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// GHz from one chain of dependent FMAs (latency 4-5 cycles: 5 on Zen 1-3, 4 on Intel and Zen 4;
// the printout names the assumption).
double clock_ghz(int latency) {
  T a = _mm256_set1_ps(1.0f);
  const T m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  const long n = 100000000;
  const auto t0 = Clock::now();
  for (long i = 0; i < n; ++i) {
    a = _mm256_fmadd_ps(a, m, c);
    asm volatile("" : "+x"(a));
  }
  const double s = seconds_since(t0);
  float o[8];
  _mm256_storeu_ps(o, a);
  return n * latency / s / 1e9 + o[0] * 1e-30;
}

// Cycles per (row, vector, d) of pass A alone and of pass A + B for groups of N key vectors.
template <int N>
void backward_loops(double ghz) {
  using namespace ff::backend;
  const int D = 16, ld = 272, W = VAvx2::W;
  const DimSplit all_bounded{D, {}};  // every feature on the bounded path
  std::vector<float> a(D), b(size_t(D) * ld), tk(size_t(D) * ld, 0.0f);
  for (int d = 0; d < D; ++d) a[d] = 0.1f * std::sin(float(d));
  for (size_t i = 0; i < b.size(); ++i) b[i] = 0.2f * std::cos(float(i));
  RowScratch rs(D, W);
  std::fill(rs.tq.begin(), rs.tq.end(), 0.0f);
  const long iters = 200000;
  for (int with_b = 0; with_b < 2; ++with_b) {
    T k[N], coef[N], acc = VAvx2::zero();
    const auto t0 = Clock::now();
    for (long it = 0; it < iters; ++it) {
      const int j0 = int(it % 8) * N * W % (256 - N * W);
      pass_a<VAvx2, N>(a.data(), b.data() + j0, ld, D, all_bounded, rs, k);
      if (with_b) {
        for (int n = 0; n < N; ++n) coef[n] = VAvx2::mul(k[n], VAvx2::set(1e-3f));
        pass_b<VAvx2, N>(coef, D, rs, tk.data() + j0, ld);
      } else {
        for (int n = 0; n < N; ++n) acc = VAvx2::add(acc, k[n]);
      }
    }
    const double cycles = seconds_since(t0) * ghz * 1e9 / (double(iters) * N * D) + VAvx2::sum(acc) * 1e-30;
    std::printf("  backward %-9s N=%d: %5.2f cycles (%d multiplies: %.2f at two per cycle)\n",
                with_b ? "pass A+B" : "pass A", N, cycles, with_b ? 15 : 13, (with_b ? 15 : 13) / 2.0);
  }
}

template <int N>
void forward_loop(double ghz) {
  using namespace ff::backend;
  const int D = 16, ld = 272, W = VAvx2::W;
  const DimSplit all_bounded{D, {}};  // every feature on the bounded path
  std::vector<float> a(D), b(size_t(D) * ld);
  for (int d = 0; d < D; ++d) a[d] = 0.1f * std::sin(float(d));
  for (size_t i = 0; i < b.size(); ++i) b[i] = 0.2f * std::cos(float(i));
  const long iters = 400000;
  T k[N], acc = VAvx2::zero();
  const auto t0 = Clock::now();
  for (long it = 0; it < iters; ++it) {
    const int j0 = int(it % 8) * N * W % (256 - N * W);
    sinc_products<VAvx2, N>(a.data(), b.data() + j0, ld, D, all_bounded, VAvx2::set(1.0f), k);
    for (int n = 0; n < N; ++n) acc = VAvx2::add(acc, k[n]);
  }
  const double cycles = seconds_since(t0) * ghz * 1e9 / (double(iters) * N * D) + VAvx2::sum(acc) * 1e-30;
  std::printf("  forward  sinc products N=%d: %5.2f cycles (7 multiplies: 3.50 at two per cycle)\n", N, cycles);
}

void whole_kernel(int runs) {
  ff::AttentionShape sh;
  sh.B = 8, sh.H = 8, sh.Nq = sh.Nk = 256, sh.D = sh.Dv = 16, sh.causal = true, sh.rH = 8, sh.rD = 1;
  std::mt19937 g(1);
  std::uniform_real_distribution<float> u(-0.8f, 0.8f), uv(-1.0f, 1.0f), ur(1.5f, 2.5f);
  std::vector<float> q(sh.q_elems()), k(sh.k_elems()), v(sh.v_elems()), R(8), out(sh.out_elems()), st(sh.row_elems()),
      dout(sh.out_elems(), 1.0f), dq(q.size()), dk(k.size()), dv(v.size()), dR(8);
  for (auto& x : q) x = u(g);
  for (auto& x : k) x = u(g);
  for (auto& x : v) x = uv(g);
  for (auto& x : R) x = ur(g);
  double fwd = 1e9, bwd = 1e9;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = Clock::now();
    ff::backend::fourier_attention_forward(sh, q.data(), k.data(), v.data(), R.data(), 4, 1e-6f, false, out.data(),
                                           st.data());
    const double f = seconds_since(t0);
    const auto t1 = Clock::now();
    ff::backend::fourier_attention_backward(sh, q.data(), k.data(), v.data(), R.data(), 4, 1e-6f, false, out.data(),
                                            st.data(), dout.data(), dq.data(), dk.data(), dv.data(), dR.data());
    bwd = std::min(bwd, seconds_since(t1)), fwd = std::min(fwd, f);
  }
  std::printf("small LM (B8 H8 N256 D16 causal), %d threads, best of %d: fwd %.2f ms, bwd %.2f ms, total %.2f ms\n",
              omp_get_max_threads(), runs, fwd * 1e3, bwd * 1e3, (fwd + bwd) * 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::printf("this benchmark needs AVX2 and FMA\n");
    return 1;
  }
  whole_kernel(argc > 1 ? std::max(1, std::atoi(argv[1])) : 20);
  const double ghz = clock_ghz(5);
  std::printf(
      "inner loops, one thread, data in L1, cycles per (row, 8 keys, d) at %.2f GHz (measured assuming a\n"
      "5-cycle FMA latency, as on Zen 1-3):\n",
      ghz);
  forward_loop<ff::backend::kFwdGroup>(ghz);
  backward_loops<3>(ghz);
  backward_loops<4>(ghz);
  return 0;
}
