// SIMD vectors for the cpu kernels: one interface, three widths, chosen at run time.
//
//   VScalar  (W = 1)   portable C++, any x86-64 (or other) CPU
//   VAvx2    (W = 8)   AVX2 + FMA  (Haswell, Zen and later)
//   VAvx512  (W = 16)  AVX-512F    (Skylake-SP, Zen 4 and later)
//
// A kernel is a template over V, written once with these static functions; an entry point per
// ISA carries [[gnu::target(...), gnu::flatten]] so that the whole kernel, these functions
// included, is compiled for that ISA inside it (the build itself stays baseline x86-64, no
// -march). cpu_isa() picks the widest the CPU and OS support; FOURIERFORMER_CPU_ISA=scalar|avx2
// lowers it (tests use this to cover every path on one machine).
//
// Conventions: fma(a, b, c) = a*b + c; fnma(a, b, c) = c - a*b; a mask M is true per lane;
// select(m, a, b) = m ? a : b; keep(m, a) = m ? a : 0 (bitwise, so inf/NaN in a dropped lanes
// never leak). exponent/mantissa split a float into 2^e * m with |m| in [1, 2), treating zero
// and subnormals as 0 * 2^0; pow2(n) = 2^n for integer-valued n, 0 below 2^-126 and 2^127 above
// (never inf, so 0 * pow2(n) stays 0); ldexp(p, n) = p 2^n rounded once, subnormal results
// included, for integer-valued n <= 127 (0 where p 2^n is under half the least subnormal).
// unfused(a) = a, as a value the compiler cannot see into: GCC contracts a * b + c into an FMA
// even for the intrinsics (they are vector operators), and where a kernel is bound by the
// multiply pipes an FMA in place of an add costs a slot there.
#pragma once
#if defined(__x86_64__) || defined(__i386__)
#define FF_CPU_X86 1
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_*().
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace ff::cpu {

enum class Isa { scalar, avx2, avx512 };

inline Isa cpu_isa() {
  static const Isa isa = [] {
    Isa best = Isa::scalar;
#ifdef FF_CPU_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
    if (best == Isa::avx2 && __builtin_cpu_supports("avx512f")) best = Isa::avx512;
#endif
    const char* want = std::getenv("FOURIERFORMER_CPU_ISA");
    if (want && std::strcmp(want, "scalar") == 0) best = Isa::scalar;
    if (want && std::strcmp(want, "avx2") == 0 && best == Isa::avx512) best = Isa::avx2;
    return best;
  }();
  return isa;
}

inline float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
inline uint32_t float_to_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

struct VScalar {
  static constexpr int W = 1;
  using T = float;
  using M = bool;
  static T zero() { return 0.0f; }
  static T set(float a) { return a; }
  static T load(const float* p) { return *p; }
  static void store(float* p, T a) { *p = a; }
  // dst[c ldd + r] = scale[c] src[r lds + c] for r, c < 8 (scale: only when Scale).
  template <bool Scale>
  static void transpose8(const float* src, size_t lds, float* dst, size_t ldd, const float* scale) {
    for (int c = 0; c < 8; ++c)
      for (int r = 0; r < 8; ++r) dst[c * ldd + r] = Scale ? scale[c] * src[r * lds + c] : src[r * lds + c];
  }
  static T bcast(const float* p) { return *p; }
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T unfused(T a) { return a; }
  static T div(T a, T b) { return a / b; }
  static T recip(T a) { return 1.0f / a; }
  // a with its sign flipped where the integer-valued n is odd ((-1)^n a; n NaN: a).
  static T flip_odd(T a, T n) {
    const float h = n * 0.5f;
    return h != std::floor(h) ? -a : a;
  }
  static T fma(T a, T b, T c) { return a * b + c; }
  static T fnma(T a, T b, T c) { return c - a * b; }
  static T min(T a, T b) { return a < b ? a : b; }
  static T max(T a, T b) { return a > b ? a : b; }
  static T abs(T a) { return std::fabs(a); }
  static T round(T a) { return std::nearbyint(a); }
  static T floor(T a) { return std::floor(a); }
  static M lt(T a, T b) { return a < b; }
  static M le(T a, T b) { return a <= b; }
  static M eq(T a, T b) { return a == b; }
  static M mor(M a, M b) { return a || b; }
  static T select(M m, T a, T b) { return m ? a : b; }
  static T keep(M m, T a) { return m ? a : 0.0f; }
  static M lanes_below(int n) { return 0 < n; }
  static bool any(M m) { return m; }
  static bool all(M m) { return m; }
  static float sum(T a) { return a; }
  // out[i] += sum of the lanes of the vector at x + i W, for i < n.
  static void add_sums(const float* x, int n, float* out) {
    for (int i = 0; i < n; ++i) out[i] += x[i];
  }
  static float max_lane(T a) { return a; }
  static T exponent(T a) {
    const int e = int((float_to_bits(a) >> 23) & 0xff);
    return e == 0 ? 0.0f : float(e - 127);
  }
  static T mantissa(T a) {
    const uint32_t b = float_to_bits(a);
    return ((b >> 23) & 0xff) == 0 ? 0.0f : bits_to_float((b & 0x807fffffu) | 0x3f800000u);
  }
  static T pow2(T n) {
    const int e = int(std::fmin(std::fmax(n, -127.0f), 127.0f));
    return bits_to_float(uint32_t(e + 127) << 23);
  }
  // Below 2^-126 in two steps: p 2^max(n, -100) stays normal, the second factor rounds once.
  static T ldexp(T p, T n) {
    if (n >= -126.0f) return p * pow2(n);
    return p * pow2(-100.0f) * pow2(n + 100.0f);
  }
};

#ifdef FF_CPU_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")
struct VAvx2 {
  static constexpr int W = 8;
  using T = __m256;
  using M = __m256;
  static T zero() { return _mm256_setzero_ps(); }
  static T set(float a) { return _mm256_set1_ps(a); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T a) { _mm256_storeu_ps(p, a); }
  // The 8 x 8 transpose above in registers: 8 row loads, 24 shuffles, 8 row stores.
  template <bool Scale>
  static void transpose8(const float* src, size_t lds, float* dst, size_t ldd, const float* scale) {
    T r[8], t[8], u[8];
    for (int i = 0; i < 8; ++i) r[i] = load(src + i * lds);
    for (int i = 0; i < 8; i += 2)
      t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    for (int i = 0; i < 8; i += 4) {
      u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44), u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
      u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44), u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int c = 0; c < 4; ++c) {
      T lo = _mm256_permute2f128_ps(u[c], u[c + 4], 0x20), hi = _mm256_permute2f128_ps(u[c], u[c + 4], 0x31);
      if constexpr (Scale) lo = mul(lo, set(scale[c])), hi = mul(hi, set(scale[c + 4]));
      store(dst + c * ldd, lo), store(dst + (c + 4) * ldd, hi);
    }
  }
  static T bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T unfused(T a) {
    asm("" : "+x"(a));
    return a;
  }
  static T div(T a, T b) { return _mm256_div_ps(a, b); }
  static T recip(T a) { return _mm256_div_ps(set(1.0f), a); }  // rcp_ps's 12 bits need two Newton steps
  static T flip_odd(T a, T n) {
    return _mm256_xor_ps(a, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtps_epi32(n), 31)));
  }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T fnma(T a, T b, T c) { return _mm256_fnmadd_ps(a, b, c); }
  static T min(T a, T b) { return _mm256_min_ps(a, b); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static T abs(T a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static T round(T a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static T floor(T a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static M lt(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M le(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
  static M eq(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static M mor(M a, M b) { return _mm256_or_ps(a, b); }
  static T select(M m, T a, T b) { return _mm256_blendv_ps(b, a, m); }
  static T keep(M m, T a) { return _mm256_and_ps(m, a); }
  static M lanes_below(int n) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), iota));
  }
  static bool any(M m) { return _mm256_movemask_ps(m) != 0; }
  static bool all(M m) { return _mm256_movemask_ps(m) == 0xff; }
  static float sum(T a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  // out[i] += sum of the lanes of the vector at x + i W, for i < n: 8 vectors at a time as a
  // transpose by horizontal adds (6 horizontal adds, 2 lane permutes and 2 adds for 8 sums,
  // where one sum alone takes 7 operations).
  static void add_sums(const float* x, int n, float* out) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      const T s01 = _mm256_hadd_ps(load(x + i * W), load(x + (i + 1) * W));
      const T s23 = _mm256_hadd_ps(load(x + (i + 2) * W), load(x + (i + 3) * W));
      const T s45 = _mm256_hadd_ps(load(x + (i + 4) * W), load(x + (i + 5) * W));
      const T s67 = _mm256_hadd_ps(load(x + (i + 6) * W), load(x + (i + 7) * W));
      const T s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
      // lane l of s0123: vector (l % 4)'s half (l / 4); s4567 likewise for vectors 4..7
      const T lo = _mm256_permute2f128_ps(s0123, s4567, 0x20), hi = _mm256_permute2f128_ps(s0123, s4567, 0x31);
      store(out + i, _mm256_add_ps(load(out + i), _mm256_add_ps(lo, hi)));
    }
    for (; i < n; ++i) out[i] += sum(load(x + i * W));
  }
  static float max_lane(T a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
  }
  static __m256i biased_exponent(T a) {
    return _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(a), 23), _mm256_set1_epi32(0xff));
  }
  static T exponent(T a) {
    const __m256i e = biased_exponent(a);
    const __m256i zero = _mm256_cmpeq_epi32(e, _mm256_setzero_si256());
    const T ef = _mm256_cvtepi32_ps(_mm256_sub_epi32(e, _mm256_set1_epi32(127)));
    return _mm256_andnot_ps(_mm256_castsi256_ps(zero), ef);
  }
  static T mantissa(T a) {
    const __m256i zero = _mm256_cmpeq_epi32(biased_exponent(a), _mm256_setzero_si256());
    const __m256i m = _mm256_or_si256(_mm256_and_si256(_mm256_castps_si256(a), _mm256_set1_epi32(int(0x807fffff))),
                                      _mm256_set1_epi32(0x3f800000));
    return _mm256_andnot_ps(_mm256_castsi256_ps(zero), _mm256_castsi256_ps(m));
  }
  static T pow2(T n) {
    const __m256i e = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(n, set(-127.0f)), set(127.0f)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
  }
  // As VScalar::ldexp; the two-step form only for a vector with a lane below 2^-126 (rare:
  // scores ~87 below their row's maximum), so the common case costs a compare and a branch.
  static T ldexp(T p, T n) {
    if (_mm256_movemask_ps(_mm256_cmp_ps(n, set(-126.0f), _CMP_LT_OQ)) == 0) return mul(p, pow2(n));
    const T hi = _mm256_max_ps(n, set(-100.0f));
    return mul(mul(p, pow2(hi)), pow2(sub(n, hi)));
  }
};
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
struct VAvx512 {
  static constexpr int W = 16;
  using T = __m512;
  using M = __mmask16;
  static T zero() { return _mm512_setzero_ps(); }
  static T set(float a) { return _mm512_set1_ps(a); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T a) { _mm512_storeu_ps(p, a); }
  template <bool Scale>
  static void transpose8(const float* src, size_t lds, float* dst, size_t ldd, const float* scale) {
    VAvx2::transpose8<Scale>(src, lds, dst, ldd, scale);
  }
  static T bcast(const float* p) { return _mm512_set1_ps(*p); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T unfused(T a) {
    asm("" : "+v"(a));
    return a;
  }
  static T div(T a, T b) { return _mm512_div_ps(a, b); }
  // 1/a from vrcp14ps (relative error < 2^-14) and one Newton step (error ~2^-28 before the
  // step's own rounding: within 1 ulp of the quotient), 3 operations instead of vdivps (latency
  // 17, one per ~10 cycles). a = 0 or inf: not finite.
  static T recip(T a) {
    const T r = _mm512_rcp14_ps(a);
    return _mm512_fmadd_ps(_mm512_fnmadd_ps(a, r, set(1.0f)), r, r);
  }
  static T flip_odd(T a, T n) {
    const __m512i sign = _mm512_slli_epi32(_mm512_cvtps_epi32(n), 31);
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), sign));
  }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T fnma(T a, T b, T c) { return _mm512_fnmadd_ps(a, b, c); }
  static T min(T a, T b) { return _mm512_min_ps(a, b); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }
  static T abs(T a) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)));
  }
  static T round(T a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static T floor(T a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static M lt(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M le(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
  static M eq(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static M mor(M a, M b) { return M(a | b); }
  static T select(M m, T a, T b) { return _mm512_mask_blend_ps(m, b, a); }
  static T keep(M m, T a) { return _mm512_maskz_mov_ps(m, a); }
  static M lanes_below(int n) { return n <= 0 ? M(0) : n >= 16 ? M(0xffff) : M((1u << n) - 1); }
  static bool any(M m) { return m != 0; }
  static bool all(M m) { return m == 0xffff; }
  static float sum(T a) { return _mm512_reduce_add_ps(a); }
  // out[i] += sum of vector i, 16 vectors at a time by a transposing tree: 30 shuffles and 15
  // adds where 16 separate reductions take ~60 shuffles and ~60 adds. Lane l of level 1 pairs
  // vectors 2m, 2m+1 within 128-bit chunks; level 2 gives per chunk the sums of 4 vectors over
  // that chunk; levels 3 and 4 add the chunks, so lane l of the result is vector l's sum.
  static void add_sums(const float* x, int n, float* out) {
    int i = 0;
    for (; i + 16 <= n; i += 16) {
      T t[8], u[4], w[2];
      for (int m = 0; m < 8; ++m) {
        const T a = load(x + (i + 2 * m) * W), b = load(x + (i + 2 * m + 1) * W);
        t[m] = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
      }
      for (int m = 0; m < 4; ++m)
        u[m] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * m], t[2 * m + 1], 0x44),
                             _mm512_shuffle_ps(t[2 * m], t[2 * m + 1], 0xee));
      for (int m = 0; m < 2; ++m)
        w[m] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * m], u[2 * m + 1], 0x88),
                             _mm512_shuffle_f32x4(u[2 * m], u[2 * m + 1], 0xdd));
      const T r = _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88), _mm512_shuffle_f32x4(w[0], w[1], 0xdd));
      store(out + i, _mm512_add_ps(load(out + i), r));
    }
    for (; i < n; ++i) out[i] += sum(load(x + i * W));
  }
  static float max_lane(T a) { return _mm512_reduce_max_ps(a); }
  static __m512i biased_exponent(T a) {
    return _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(a), 23), _mm512_set1_epi32(0xff));
  }
  static T exponent(T a) {
    const __m512i e = biased_exponent(a);
    const M normal = _mm512_cmpneq_epi32_mask(e, _mm512_setzero_si512());
    return _mm512_maskz_cvtepi32_ps(normal, _mm512_sub_epi32(e, _mm512_set1_epi32(127)));
  }
  static T mantissa(T a) {
    const M normal = _mm512_cmpneq_epi32_mask(biased_exponent(a), _mm512_setzero_si512());
    const __m512i m = _mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(int(0x807fffff))),
                                      _mm512_set1_epi32(0x3f800000));
    return _mm512_maskz_mov_ps(normal, _mm512_castsi512_ps(m));
  }
  static T pow2(T n) {
    const __m512i e = _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(n, set(-127.0f)), set(127.0f)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(e, _mm512_set1_epi32(127)), 23));
  }
  // vscalefps: p 2^floor(n), one rounding, subnormal results included.
  static T ldexp(T p, T n) { return _mm512_scalef_ps(p, n); }
};
#pragma GCC pop_options
#endif  // FF_CPU_X86

// Runs Kernel::run<V>(args...) with the widest V this CPU supports. The per-ISA entry points
// are flattened: everything the kernel calls is inlined into them and compiled for that ISA.
#ifdef FF_CPU_X86
template <class Kernel, class... A>
[[gnu::target("avx2,fma"), gnu::flatten]] void run_avx2(const A&... a) {
  Kernel::template run<VAvx2>(a...);
}
template <class Kernel, class... A>
[[gnu::target("avx512f,avx2,fma"), gnu::flatten]] void run_avx512(const A&... a) {
  Kernel::template run<VAvx512>(a...);
}
#endif
template <class Kernel, class... A>
void run_best(const A&... a) {
  switch (cpu_isa()) {
#ifdef FF_CPU_X86
    case Isa::avx512: return run_avx512<Kernel>(a...);
    case Isa::avx2: return run_avx2<Kernel>(a...);
#endif
    default: return Kernel::template run<VScalar>(a...);
  }
}

// x^p for a positive integer p by repeated squaring (p = 4: two multiplies).
template <class V>
typename V::T ipow(typename V::T x, int p) {
  typename V::T r = V::set(1.0f);
  bool first = true;
  while (p > 0) {
    if (p & 1) r = first ? x : V::mul(r, x), first = false;
    p >>= 1;
    if (p) x = V::mul(x, x);
  }
  return r;
}

}  // namespace ff::cpu
