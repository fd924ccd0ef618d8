// A minimal test harness for the emulator tests (no test framework is installed on CI machines):
//   FF_TEST(name) { ... FF_CHECK(cond) << "context"; ... }
//   FF_PLANTED(name) { ... }   a planted bug: runs only when named on the command line, and is
//                              expected to be caught by a sanitizer (scripts/emu-sanitize.sh)
// ff_emu_tests [name...] runs the named tests (default: every FF_TEST) and ends with the line
// "N passed, N failed".
#pragma once
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace ff::test {

struct Case {
  const char* name;
  void (*fn)();
  bool planted;
};
std::vector<Case>& registry();

struct Register {
  Register(const char* name, void (*fn)(), bool planted) { registry().push_back({name, fn, planted}); }
};

// Thrown by a failed check; the runner reports it and goes on with the next test.
struct Failure {
  std::string message;
};

class Check {
 public:
  Check(bool ok, const char* expr, const char* file, int line) : ok_(ok) {
    if (!ok_) os_ << file << ":" << line << ": check failed: " << expr;
  }
  Check(const Check&) = delete;
  ~Check() noexcept(false) {
    if (!ok_) throw Failure{os_.str()};
  }
  template <typename T>
  Check& operator<<(const T& v) {
    if (!ok_) os_ << (first_ ? " -- " : "") << v;
    first_ = false;
    return *this;
  }

 private:
  bool ok_;
  bool first_ = true;
  std::ostringstream os_;
};

// |a - b| <= atol + rtol |b|
inline bool close(double a, double b, double rtol, double atol) {
  return std::fabs(a - b) <= atol + rtol * std::fabs(b);
}

// Runs fn, which must throw an exception whose message contains `needle`; returns the message.
std::string expect_error(const std::function<void()>& fn, const std::string& needle, const char* file, int line);

// Tests run in thread mode (ThreadSanitizer) with one OS thread per CUDA thread: keep grids small.
#if defined(FF_EMU_THREADS)
constexpr bool kThreadMode = true;
#else
constexpr bool kThreadMode = false;
#endif

}  // namespace ff::test

#define FF_TEST_CONCAT2(a, b) a##b
#define FF_TEST_CONCAT(a, b) FF_TEST_CONCAT2(a, b)
#define FF_TEST_DEFINE(name, planted)                                                   \
  static void name();                                                                   \
  static ::ff::test::Register FF_TEST_CONCAT(ff_register_, name)(#name, name, planted); \
  static void name()
#define FF_TEST(name) FF_TEST_DEFINE(name, false)
#define FF_PLANTED(name) FF_TEST_DEFINE(name, true)
#define FF_CHECK(cond) ::ff::test::Check((cond), #cond, __FILE__, __LINE__)
#define FF_EXPECT_ERROR(stmt, needle) ::ff::test::expect_error([&] { stmt; }, needle, __FILE__, __LINE__)
