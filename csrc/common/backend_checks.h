// Checks of argument values that live in backend memory (R of the Fourier ops, integer ids and
// targets), and the count of the host's waits for the device.
//   cpu: checked at once; a failure throws ff::Error.
//   cuda, cuda-emu: queued on the stream as kernels, so an op never waits for the device to
//     read its arguments (PyTorch's device-side asserts). The first failure since the last
//     synchronisation is reported by the next download() or synchronize(), which throws
//     ff::Error naming the argument, the element and the op. The kernels that index with ids
//     skip invalid ones (they write NaN or nothing), so a bad id never reads or writes out of
//     bounds before it is reported. `op` and `arg` must outlive the check: string literals.
// Messages (both backends): "<arg>: must be finite, got <value>", "<arg>: element <i> is
// <value>; expected an integer in [0, <limit>)[ or the ignore index <allowed>]", cuda adding
// " (<op>, checked on the device and reported at the next synchronisation)".
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ff::backend {

// Every x[i] finite. Cost: 1 read per element (one kernel on cuda).
void check_finite(const float* x, size_t n, const char* op, const char* arg);
// Every ids[i] an integer in [0, limit), or `allowed` where has_allowed (ids.h, id_is_valid).
// Cost: 1 read per id (one kernel on cuda).
void check_ids(const float* ids, int64_t n, int64_t limit, bool has_allowed, int64_t allowed, const char* op,
               const char* arg);

// Times the host waited for the device since the process started (stream synchronisations,
// read-backs, and frees of device memory, which wait for it); 0 on cpu, which never waits.
uint64_t host_syncs();

// The messages of the checks above, shared by the backends.
inline std::string not_finite_message(const char* arg, float value) {
  return std::string(arg) + ": must be finite, got " + std::to_string(value);
}

inline std::string invalid_id_message(const char* arg, int64_t index, float value, int64_t limit, bool has_allowed,
                                      int64_t allowed) {
  std::string expected = "an integer in [0, " + std::to_string(limit) + ")";
  if (has_allowed) expected += " or the ignore index " + std::to_string(allowed);
  return std::string(arg) + ": element " + std::to_string(index) + " is " + std::to_string(value) + "; expected " +
         expected;
}

}  // namespace ff::backend
