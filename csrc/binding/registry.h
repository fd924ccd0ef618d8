// Each binding file registers its own functions at load time, so adding an op touches no shared
// file:   FF_EXPORTS({"fourierMetricForward", guarded<FourierMetricForward>}, ...);
// The addon's init (addon.cpp) then sets every registered function on the exports object. The
// list is the addon's own: its symbols are hidden (csrc/binding/addon.map), so another addon of
// the same binding in the process (cpu beside cuda-emu) has a list of its own.
#pragma once
#include <napi.h>
#include <initializer_list>
#include <vector>

namespace ff::binding {

struct Export {
  const char* name;
  Napi::Function::Callback fn;
};

inline std::vector<Export>& registered_exports() {
  static std::vector<Export> list;
  return list;
}

struct Registrar {
  Registrar(std::initializer_list<Export> list) {
    for (const Export& e : list) registered_exports().push_back(e);
  }
};

}  // namespace ff::binding

#define FF_EXPORT_CONCAT_(a, b) a##b
#define FF_EXPORT_NAME_(line) FF_EXPORT_CONCAT_(ff_registrar_, line)
#define FF_EXPORTS(...) \
  static const ::ff::binding::Registrar FF_EXPORT_NAME_(__LINE__) { __VA_ARGS__ }
