// The one exception type backends throw. The binding turns it into a JS Error, so a message
// must name the argument or resource at fault ("R: must be finite", "cuda: out of memory ...").
#pragma once
#include <stdexcept>
#include <string>

namespace ff {
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace ff
