// Data-parallel collectives on this backend's memory (csrc/common/backend_comm.h), and the
// packing of gradients into the flat buckets they reduce (lib/nn/distributed-data-parallel.ts):
//   commAttach(table, ncclLibrary)        binds the backend to the MPI addon's communicator
//   commDescribe()                        what carries the data ("NCCL 2.27.3", "MPI (host memory)")
//   commAllReduce(s, op, what) -> handle  s <- op over every rank's s ('sum' 'avg' 'max' 'min')
//   commBroadcast(s, root, what) -> handle
//   commAllGather(s, what) -> handle      s holds worldSize blocks; block r <- rank r's
//   commWait(handle)
//   packInto(target, parts, offset) -> end    parts (storages, or numbers n for n zeros) copied one
//                                             after the other into target from element offset
//   unpackFrom(source, targets, offset) -> end  the reverse: each target <- its slice of source
#include <napi.h>
#include "../common/backend.h"
#include "../common/backend_comm.h"
#include "args.h"
#include "errors.h"
#include "guarded.h"
#include "registry.h"
#include "storage.h"

namespace ff::binding {
namespace {

const napi_type_tag kCommTag = {kCommApiTag[0], kCommApiTag[1]};
const ff_comm_api* attached = nullptr;

std::string string_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsString()) throw ArgError(what, "expected a string");
  return info[i].As<Napi::String>().Utf8Value();
}

int op_arg(const Napi::CallbackInfo& info, size_t i) {
  const std::string op = string_arg(info, i, "op");
  if (op == "sum") return FF_COMM_SUM;
  if (op == "avg") return FF_COMM_AVG;
  if (op == "max") return FF_COMM_MAX;
  if (op == "min") return FF_COMM_MIN;
  throw ArgError("op", "expected 'sum', 'avg', 'max' or 'min', got '" + op + "'");
}

const ff_comm_api& world(const char* what) {
  if (attached == nullptr)
    throw Error(std::string(what) + ": the " + backend::name() +
                " backend has no communicator (call distributed.init() first)");
  return *attached;
}

Napi::Value CommAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool tagged = false;
  if (info.Length() < 1 || !info[0].IsExternal() ||
      napi_check_object_type_tag(env, info[0], &kCommTag, &tagged) != napi_ok || !tagged)
    throw ArgError("table", "expected the MPI addon's communicator (its commApi())");
  const auto* api = info[0].As<Napi::External<ff_comm_api>>().Data();
  if (api->version != FF_COMM_API_VERSION || api->size < sizeof(ff_comm_api))
    throw ArgError("table", "the MPI addon's communicator has version " + std::to_string(api->version) +
                                ", this addon knows " + std::to_string(FF_COMM_API_VERSION) +
                                "; build both from the same release");
  backend::comm_attach(api, string_arg(info, 1, "ncclLibrary"));
  attached = api;
  return env.Undefined();
}

Napi::Value CommDescribe(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), backend::comm_describe());
}

Napi::Value CommAllReduce(const Napi::CallbackInfo& info) {
  Storage& s = get_storage(info, 0, "tensor");
  const int op = op_arg(info, 1);
  world("allReduce");
  return Napi::Number::New(info.Env(), double(backend::comm_all_reduce(s.ptr, s.n, op, string_arg(info, 2, "what"))));
}

Napi::Value CommBroadcast(const Napi::CallbackInfo& info) {
  Storage& s = get_storage(info, 0, "tensor");
  const ff_comm_api& w = world("broadcast");
  const int root = get_int(info, 1, "root", 0, w.world_size - 1);
  return Napi::Number::New(info.Env(), double(backend::comm_broadcast(s.ptr, s.n, root, string_arg(info, 2, "what"))));
}

Napi::Value CommAllGather(const Napi::CallbackInfo& info) {
  Storage& s = get_storage(info, 0, "tensor");
  const ff_comm_api& w = world("allGather");
  if (s.n % size_t(w.world_size) != 0)
    throw ArgError("tensor",
                   std::to_string(s.n) + " elements are not " + std::to_string(w.world_size) + " equal blocks");
  return Napi::Number::New(info.Env(),
                           double(backend::comm_all_gather(s.ptr, s.n / w.world_size, string_arg(info, 1, "what"))));
}

Napi::Value CommWait(const Napi::CallbackInfo& info) {
  const double h = get_number(info, 0, "handle");
  if (!(h >= 1) || h != double(uint64_t(h))) throw ArgError("handle", "expected a handle from a collective");
  backend::comm_wait(uint64_t(h));
  return info.Env().Undefined();
}

// The storages (or zero counts) of parts[i], checked, with their total length.
struct Part {
  Storage* storage;  // null: `n` zeros
  size_t n;
};

std::vector<Part> parts_arg(const Napi::CallbackInfo& info, size_t i, const char* what, bool zeros_allowed) {
  if (i >= info.Length() || !info[i].IsArray()) throw ArgError(what, "expected an array");
  auto arr = info[i].As<Napi::Array>();
  std::vector<Part> parts;
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr.Get(k);
    const std::string name = std::string(what) + "[" + std::to_string(k) + "]";
    if (zeros_allowed && v.IsNumber()) {
      const double n = v.As<Napi::Number>().DoubleValue();
      if (!(n >= 0) || n != double(size_t(n))) throw ArgError(name, "expected a count of zeros >= 0");
      parts.push_back({nullptr, size_t(n)});
      continue;
    }
    Storage* s = unwrap(v);
    if (s == nullptr)
      throw ArgError(name,
                     zeros_allowed ? "expected a tensor's storage or a count of zeros" : "expected a tensor's storage");
    if (s->freed) throw ArgError(name, "has been disposed");
    parts.push_back({s, s->n});
  }
  return parts;
}

size_t checked_span(const std::vector<Part>& parts, size_t offset, const Storage& flat, const char* what) {
  size_t end = offset;
  for (const Part& p : parts) end += p.n;
  if (end > flat.n)
    throw ArgError(what, "the parts need elements [" + std::to_string(offset) + ", " + std::to_string(end) +
                             ") but it holds " + std::to_string(flat.n));
  return end;
}

Napi::Value PackInto(const Napi::CallbackInfo& info) {
  Storage& target = get_storage(info, 0, "target");
  const auto parts = parts_arg(info, 1, "parts", true);
  size_t at = size_t(get_number(info, 2, "offset"));
  const size_t end = checked_span(parts, at, target, "target");
  for (const Part& p : parts) {
    if (p.storage == nullptr)
      backend::fill(target.ptr + at, 0.0f, p.n);
    else
      backend::copy(target.ptr + at, p.storage->ptr, p.n);
    at += p.n;
  }
  return Napi::Number::New(info.Env(), double(end));
}

Napi::Value UnpackFrom(const Napi::CallbackInfo& info) {
  Storage& source = get_storage(info, 0, "source");
  const auto parts = parts_arg(info, 1, "targets", false);
  size_t at = size_t(get_number(info, 2, "offset"));
  const size_t end = checked_span(parts, at, source, "source");
  for (const Part& p : parts) {
    backend::copy(p.storage->ptr, source.ptr + at, p.n);
    at += p.n;
  }
  return Napi::Number::New(info.Env(), double(end));
}

}  // namespace

FF_EXPORTS({"commAttach", guarded<CommAttach>}, {"commDescribe", guarded<CommDescribe>},
           {"commAllReduce", guarded<CommAllReduce>}, {"commBroadcast", guarded<CommBroadcast>},
           {"commAllGather", guarded<CommAllGather>}, {"commWait", guarded<CommWait>}, {"packInto", guarded<PackInto>},
           {"unpackFrom", guarded<UnpackFrom>});

}  // namespace ff::binding
