// Issue 24's lead, measured for accuracy before any kernel is written: the sinc numerator from
// the angle-difference identity, sin(a - b) = sin a cos b - cos a sin b with a = R q_id and
// b = R k_jd, so that with sin/cos of every R q and R k precomputed a (pair, feature) costs one
// subtraction (x = a - b), one multiply and one FMA (the numerator) and two multiplies (running
// products of numerators and of x), renormalised every 8 features (num / den), against the
// polynomial's 10 operations (csrc/cpu/fourier_attention.cpp's cost model).
// Its error: the identity's float rounding is absolute (~2^-24 |a|), so the factor sin x / x has
// relative error ~2^-24 |a| / |x|, unbounded as x -> 0 (and 0 / 0 at q_id = k_jd). Lanes with
// |x| < delta take sin x from double instead (in a kernel: x - x^3/6, exact in float there).
// Prints, per D, R and delta: the largest |out - out64| of one attention (N = 197 rows, q and k
// uniform in [-0.8, 0.8] as scripts/bench/attention.ts makes them, v in [-1, 1], p = 4, one
// pair of rows with q_i = k_j), the largest relative error of K where K > 1e-30, the share of
// (pair, feature) lanes under delta and of 16-lane vectors (AVX-512) with any lane under it.
//   g++ -O2 -std=c++20 scripts/check-sinc-separable.cpp -o /tmp/sep && /tmp/sep
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace {

struct Result {
  double out_err = 0, k_rel = 0, lanes = 0, vectors = 0;
};

Result measure(int N, int D, float R, float delta) {
  std::mt19937 g(1);
  std::uniform_real_distribution<float> u(-0.8f, 0.8f), uv(-1.0f, 1.0f);
  std::vector<float> q(N * D), k(N * D), v(N);
  for (auto& x : q) x = u(g);
  for (auto& x : k) x = u(g);
  for (auto& x : v) x = uv(g);
  for (int d = 0; d < D; ++d) k[5 * D + d] = q[5 * D + d];
  std::vector<float> a(N * D), b(N * D), sa(N * D), ca(N * D), sb(N * D), cb(N * D);
  for (int i = 0; i < N * D; ++i) {
    a[i] = R * q[i], b[i] = R * k[i];
    sa[i] = float(std::sin(double(a[i]))), ca[i] = float(std::cos(double(a[i])));
    sb[i] = float(std::sin(double(b[i]))), cb[i] = float(std::cos(double(b[i])));
  }
  Result r;
  long lanes = 0, small = 0, vectors = 0, small_vectors = 0;
  for (int i = 0; i < N; ++i) {
    double S = 0, O = 0, Sf = 0, Of = 0;
    std::vector<int> vec_small(D * ((N + 15) / 16), 0);
    for (int j = 0; j < N; ++j) {
      double K = 1;
      float num = 1, den = 1;
      for (int d = 0; d < D; ++d) {
        const double x = double(R) * (double(q[i * D + d]) - double(k[j * D + d]));
        K *= x == 0 ? 1 : std::pow(std::sin(x) / x, 4);
        const float xf = a[i * D + d] - b[j * D + d];
        ++lanes;
        if (std::fabs(xf) < delta) {
          ++small, vec_small[(j / 16) * D + d] = 1;
          if (xf != 0.0f) num *= float(std::sin(double(xf))), den *= xf;
        } else {
          num *= std::fma(sa[i * D + d], cb[j * D + d], -ca[i * D + d] * sb[j * D + d]), den *= xf;
        }
        if (d % 8 == 7) num /= den, den = 1;
      }
      const float s = num / den, s2 = s * s, Kf = s2 * s2;
      if (K > 1e-30) r.k_rel = std::max(r.k_rel, std::fabs(Kf - K) / K);
      S += K, O += K * v[j], Sf += Kf, Of += double(Kf) * v[j];
    }
    for (int x : vec_small) ++vectors, small_vectors += x;
    r.out_err = std::max(r.out_err, std::fabs(O / S - Of / Sf));
  }
  r.lanes = double(small) / lanes, r.vectors = double(small_vectors) / vectors;
  return r;
}

}  // namespace

int main() {
  std::printf("  D      R  delta   max|out err|  max rel err K  lanes<delta  vectors<delta\n");
  for (int D : {16, 64, 128})
    for (float R : {0.5f, 2.0f})
      for (float delta : {0.0f, 0.01f, 0.1f}) {
        const Result r = measure(197, D, R, delta);
        std::printf("%3d %6.2f %6.2f %14.2e %14.2e %11.2f%% %13.2f%%\n", D, R, delta, r.out_err, r.k_rel, 100 * r.lanes,
                    100 * r.vectors);
      }
}
