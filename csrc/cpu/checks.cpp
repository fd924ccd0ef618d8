// cpu backend: the argument checks of backend_checks.h, at once (memory is the host's).
#include <cmath>
#include "../common/backend_checks.h"
#include "../common/error.h"
#include "../common/ids.h"

namespace ff::backend {

void check_finite(const float* x, size_t n, const char* op, const char* arg) {
  (void)op;
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) throw Error(not_finite_message(arg, x[i]));
}

void check_ids(const float* ids, int64_t n, int64_t limit, bool has_allowed, int64_t allowed, const char* op,
               const char* arg) {
  (void)op;
  for (int64_t i = 0; i < n; ++i)
    if (!id_is_valid(ids[i], limit, has_allowed, allowed))
      throw Error(invalid_id_message(arg, i, ids[i], limit, has_allowed, allowed));
}

uint64_t host_syncs() { return 0; }

}  // namespace ff::backend
