// The emulator tests' runner: ff_emu_tests [name...]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include "harness.h"

namespace ff::test {

std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

std::string expect_error(const std::function<void()>& fn, const std::string& needle, const char* file, int line) {
  try {
    fn();
  } catch (const Failure&) {
    throw;
  } catch (const std::exception& e) {
    const std::string message = e.what();
    if (message.find(needle) == std::string::npos)
      throw Failure{std::string(file) + ":" + std::to_string(line) + ": expected an error containing '" + needle +
                    "', got: " + message};
    return message;
  }
  throw Failure{std::string(file) + ":" + std::to_string(line) + ": expected an error containing '" + needle +
                "', but nothing was thrown"};
}

}  // namespace ff::test

int main(int argc, char** argv) {
  using namespace ff::test;
  std::vector<const Case*> selected;
  for (int a = 1; a < argc; ++a) {
    const Case* found = nullptr;
    for (const Case& c : registry())
      if (std::strcmp(c.name, argv[a]) == 0) found = &c;
    if (!found) {
      std::fprintf(stderr, "no test named %s\n", argv[a]);
      return 2;
    }
    selected.push_back(found);
  }
  if (selected.empty())
    for (const Case& c : registry())
      if (!c.planted) selected.push_back(&c);

  int passed = 0, failed = 0;
  for (const Case* c : selected) {
    const auto start = std::chrono::steady_clock::now();
    std::string error;
    try {
      c->fn();
    } catch (const Failure& f) {
      error = f.message;
    } catch (const std::exception& e) {
      error = std::string("uncaught exception: ") + e.what();
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (error.empty()) {
      ++passed;
      std::printf("ok    %-44s %8.1f ms\n", c->name, ms);
    } else {
      ++failed;
      std::printf("FAIL  %-44s %8.1f ms\n      %s\n", c->name, ms, error.c_str());
    }
    std::fflush(stdout);
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
