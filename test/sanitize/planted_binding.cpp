// plantedBug(name): the sanitizer addons' export that runs a planted bug (test/sanitize/planted.h).
#include <napi.h>
#include <string>
#include "../../csrc/binding/guarded.h"
#include "../../csrc/binding/registry.h"
#include "planted.h"

namespace ff::binding {
namespace {

Napi::Value PlantedBug(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString())
    throw Napi::TypeError::New(info.Env(), "plantedBug: name must be a string");
  planted::run_planted_bug(info[0].As<Napi::String>());
  return info.Env().Undefined();
}

}  // namespace

FF_EXPORTS({"plantedBug", guarded<PlantedBug>});

}  // namespace ff::binding
