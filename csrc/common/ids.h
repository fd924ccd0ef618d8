// Integer inputs (token ids, class targets) arrive as float32 holding integers (exact below 2^24).
// Every kernel that indexes with them runs only after this check passed for each of them.
#pragma once
#include <cstdint>
#include "hd.h"

namespace ff {

// v is an integer in [0, limit), or (when has_allowed) exactly `allowed` (an ignore_index, which
// the binding keeps within +-2^24 so that float(allowed) is exact). NaN and +-inf fail every
// comparison, so they are invalid.
FF_HD bool id_is_valid(float v, int64_t limit, bool has_allowed, int64_t allowed) {
  const bool in_range = v >= 0.0f && v < float(limit) && float(int64_t(v)) == v;
  return in_range || (has_allowed && v == float(allowed));
}

}  // namespace ff
