// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator, so random number j of a stream is a pure function of (key, counter)
// and every backend produces the same bits. Integer arithmetic only: bit-identical on host and
// device. Checked against the Random123 known-answer vectors (lib/reference/nn-ops.ts, tests).
//
// The project's streams: key = seed (64 bits), counter = offset + j / 4 (64 bits, in the low two
// words; the high two are 0), random number j = word j % 4 of the result. Cost: 10 rounds of two
// 32x32->64 multiplies and four xors per 4 numbers.
#pragma once
#include <cstdint>
#include "hd.h"

namespace ff {

struct Philox4 {
  uint32_t v[4];
};

FF_HD Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(kM0) * c0;
    const uint64_t p1 = uint64_t(kM1) * c2;
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kW0;
    k1 += kW1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// The 4 random words at counter `index` of the stream (seed, offset).
FF_HD Philox4 philox_block(uint64_t seed, uint64_t offset, uint64_t index) {
  const uint64_t counter = offset + index;
  return philox4x32_10(uint32_t(counter), uint32_t(counter >> 32), 0u, 0u, uint32_t(seed), uint32_t(seed >> 32));
}

// Word w (0..3) of a block, by selects: no dynamically indexed local array on the GPU.
FF_HD uint32_t philox_word(const Philox4& r, int w) {
  return w == 0 ? r.v[0] : w == 1 ? r.v[1] : w == 2 ? r.v[2] : r.v[3];
}

// A word's top 24 bits as a float in [0, 1) (exact: 24 bits fit a float's mantissa).
FF_HD float philox_uniform(uint32_t word) { return float(word >> 8) * (1.0f / 16777216.0f); }

}  // namespace ff
