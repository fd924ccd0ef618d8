// csrc/cuda/fourier_metric.cu under the emulator against the cpu backend (csrc/cpu/
// fourier_metric.cpp, linked as ff::cpu_reference) on random inputs: the forward, the fused
// backward (dq, dk, dR for every broadcast of R), several D (one lane per pair up to 32 lanes),
// powers, and splits of the key tiles; the backward is deterministic run to run.
#include <cmath>
#include <random>
#include <string>
#include <vector>
#include "common/backend.h"
#include "cuda/launch.h"
#include "harness.h"

namespace ff::cpu_reference {
void fourier_metric_forward(const MetricShape& s, const float* q, const float* k, const float* R, int power, float* K);
void fourier_metric_backward(const MetricShape& s, const float* q, const float* k, const float* R, int power,
                             const float* dK, float* dq, float* dk, float* dR);
}  // namespace ff::cpu_reference

namespace {

using ff::MetricShape;

// A tensor of the cuda-emu backend, filled from host data.
struct DeviceTensor {
  float* p;
  size_t n;
  explicit DeviceTensor(const std::vector<float>& host)
      : p(static_cast<float*>(ff::backend::alloc(host.size() * sizeof(float)))), n(host.size()) {
    ff::backend::upload(p, host.data(), n);
  }
  explicit DeviceTensor(size_t count) : p(static_cast<float*>(ff::backend::alloc(count * sizeof(float)))), n(count) {}
  DeviceTensor(const DeviceTensor&) = delete;
  ~DeviceTensor() { ff::backend::release(p); }
  std::vector<float> host() const {
    std::vector<float> out(n);
    ff::backend::download(out.data(), p, n);
    return out;
  }
};

std::vector<float> uniform(size_t n, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// max |a - b| / (atol + rtol |b|) must be <= 1.
void check_close(const std::vector<float>& got, const std::vector<float>& want, double rtol, double atol,
                 const std::string& what) {
  FF_CHECK(got.size() == want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    FF_CHECK(ff::test::close(got[i], want[i], rtol, atol))
        << what << "[" << i << "]: cuda-emu " << got[i] << ", cpu " << want[i];
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::fmax(m, std::fabs(x));
  return m;
}

struct Case {
  MetricShape s;
  int power;
};

void check_case(const Case& c, std::mt19937& rng) {
  const MetricShape& s = c.s;
  const std::string name = "B" + std::to_string(s.B) + " H" + std::to_string(s.H) + " Nq" + std::to_string(s.Nq) +
                           " Nk" + std::to_string(s.Nk) + " D" + std::to_string(s.D) + " R[" + std::to_string(s.rH) +
                           "," + std::to_string(s.rD) + "] p" + std::to_string(c.power);
  // Inputs in (-0.8, 0.8) as in the design's numerics study, narrower for large D so that K does
  // not underflow to 0 (which would make the gradients trivially 0).
  const float span = std::fmin(0.8f, 1.5f / std::sqrt(float(s.D)));
  const auto q = uniform(s.q_elems(), -span, span, rng), k = uniform(s.k_elems(), -span, span, rng);
  const auto R = uniform(s.r_elems(), 0.5f, 2.5f, rng), dK = uniform(s.K_elems(), -1.0f, 1.0f, rng);

  std::vector<float> K_ref(s.K_elems()), dq_ref(s.q_elems()), dk_ref(s.k_elems()), dR_ref(s.r_elems());
  ff::cpu_reference::fourier_metric_forward(s, q.data(), k.data(), R.data(), c.power, K_ref.data());
  ff::cpu_reference::fourier_metric_backward(s, q.data(), k.data(), R.data(), c.power, dK.data(), dq_ref.data(),
                                             dk_ref.data(), dR_ref.data());

  FF_CHECK(max_abs(K_ref) > 1e-6 && max_abs(dq_ref) > 1e-6 && max_abs(dR_ref) > 1e-6) << name << ": trivial case";

  DeviceTensor dq_in(q), dk_in(k), dR_in(R), dK_in(dK), K(s.K_elems());
  ff::backend::fourier_metric_forward(s, dq_in.p, dk_in.p, dR_in.p, c.power, K.p);
  check_close(K.host(), K_ref, 1e-5, 1e-7 * max_abs(K_ref) + 1e-30, name + " K");

  DeviceTensor dq(s.q_elems()), dk(s.k_elems()), dR(s.r_elems());
  ff::backend::fourier_metric_backward(s, dq_in.p, dk_in.p, dR_in.p, c.power, dK_in.p, dq.p, dk.p, dR.p);
  const auto dq_got = dq.host(), dk_got = dk.host(), dR_got = dR.host();
  // Sums over keys (dq), queries (dk) and everything (dR) in another order than the cpu's.
  check_close(dq_got, dq_ref, 1e-4, 1e-5 * max_abs(dq_ref) + 1e-30, name + " dq");
  check_close(dk_got, dk_ref, 1e-4, 1e-5 * max_abs(dk_ref) + 1e-30, name + " dk");
  check_close(dR_got, dR_ref, 1e-4, 1e-5 * max_abs(dR_ref) + 1e-30, name + " dR");

  DeviceTensor dq2(s.q_elems()), dk2(s.k_elems()), dR2(s.r_elems());
  ff::backend::fourier_metric_backward(s, dq_in.p, dk_in.p, dR_in.p, c.power, dK_in.p, dq2.p, dk2.p, dR2.p);
  FF_CHECK(dq2.host() == dq_got && dk2.host() == dk_got && dR2.host() == dR_got) << name << ": not deterministic";
}

MetricShape shape(int B, int H, int Nq, int Nk, int D, int rH, int rD) {
  MetricShape s;
  s.B = B, s.H = H, s.Nq = Nq, s.Nk = Nk, s.D = D, s.rH = rH, s.rD = rD;
  return s;
}

FF_TEST(fourier_metric_matches_cpu) {
  std::mt19937 rng(1234);
  std::vector<Case> cases = {
      {shape(1, 1, 1, 1, 1, 1, 1), 1},      // one element
      {shape(2, 3, 17, 23, 5, 1, 1), 4},    // one radius; L = 1 lane per pair
      {shape(1, 2, 10, 20, 16, 2, 16), 4},  // per head and feature; L = 2
  };
  if (!ff::test::kThreadMode) {  // an OS thread per CUDA thread: the rest is too slow
    cases.push_back({shape(1, 2, 40, 33, 16, 2, 16), 4});
    cases.push_back({shape(1, 1, 9, 70, 33, 1, 33), 2});    // per feature; L = 8; 5 splits of the keys
    cases.push_back({shape(1, 2, 12, 19, 64, 2, 1), 3});    // per head; L = 8
    cases.push_back({shape(2, 4, 130, 50, 8, 4, 1), 4});    // two query tiles of 128
    cases.push_back({shape(1, 1, 6, 21, 130, 1, 130), 4});  // L = 32
    cases.push_back({shape(1, 1, 5, 17, 256, 1, 1), 5});    // the largest D of the backward
  }
  for (const Case& c : cases) check_case(c, rng);
}

FF_TEST(fourier_metric_backward_rejects_large_D) {
  const MetricShape s = shape(1, 1, 1, 1, 257, 1, 1);
  DeviceTensor q(257), k(257), R(1), dK(1), dq(257), dk(257), dR(1);
  FF_EXPECT_ERROR(ff::backend::fourier_metric_backward(s, q.p, k.p, R.p, 4, dK.p, dq.p, dk.p, dR.p),
                  "cuda-emu: fourierMetric backward supports D <= 256, got D = 257");
}

}  // namespace
