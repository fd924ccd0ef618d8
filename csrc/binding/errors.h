// Errors raised while checking arguments: the message always starts with the argument's name.
#pragma once
#include <string>
#include "../common/error.h"

namespace ff::binding {

inline Error ArgError(const std::string& arg, const std::string& what) { return Error(arg + ": " + what); }

}  // namespace ff::binding
