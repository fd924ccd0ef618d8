// fourierformer_mpi: the one addon that links MPI (lib/distributed/mpi.ts loads it only when a
// launcher started several ranks). It starts MPI on its communication thread (comm_thread.h),
// runs the host collectives JavaScript asks for (numbers, bytes, barriers), and hands the backend
// addons the table through which they reduce their own memory (csrc/common/comm_api.h).
// Built apart from the backends so that the cpu and cuda addons load on machines without MPI,
// and built against the MPI of the machine (Open MPI and MPICH differ in ABI).
#include <dlfcn.h>
#include <mpi.h>
#include <napi.h>
#include <string>
#include "../common/comm_api.h"
#include "../common/error.h"
#include "comm_thread.h"

namespace ff::mpi {
namespace {

const napi_type_tag kTag = {kCommApiTag[0], kCommApiTag[1]};

// --- the table the backends call (plain C: no exception crosses into another addon) ---

thread_local std::string api_error;

uint64_t queue(Job job) {
  try {
    return submit(std::move(job));
  } catch (const std::exception& e) {
    api_error = e.what();
    return 0;
  }
}

uint64_t api_all_reduce(float* data, size_t count, int op, const char* what) {
  Job j{JobKind::AllReduceF32, data, count, op};
  j.what = what;
  return queue(std::move(j));
}

uint64_t api_broadcast(void* data, size_t bytes, int root, const char* what) {
  Job j{JobKind::Broadcast, data, bytes, 0, root};
  j.what = what;
  return queue(std::move(j));
}

uint64_t api_all_gather(float* data, size_t count, const char* what) {
  Job j{JobKind::AllGatherF32, data, count};
  j.what = what;
  return queue(std::move(j));
}

const char* api_wait(uint64_t ticket) {
  if (ticket == 0) return api_error.c_str();  // the submit failed
  api_error = wait(ticket);
  return api_error.empty() ? nullptr : api_error.c_str();
}

void api_fatal(const char* what, const char* why) {
  Job j{JobKind::Fatal};
  j.what = what;
  j.why = why;
  const uint64_t t = queue(std::move(j));
  if (t != 0) wait(t);  // the thread aborts the job
  abort_job(1, std::string("fourierformer: ") + what + " " + why);
}

ff_comm_api api_table() {
  const WorldInfo& w = start(0);  // already started: returns the world
  ff_comm_api api{};
  api.version = FF_COMM_API_VERSION;
  api.size = sizeof(ff_comm_api);
  api.rank = w.rank;
  api.world_size = w.size;
  api.local_rank = w.local_rank;
  api.local_world_size = w.local_size;
  api.timeout_seconds = w.timeout;
  api.all_reduce = api_all_reduce;
  api.broadcast = api_broadcast;
  api.all_gather = api_all_gather;
  api.wait = api_wait;
  api.fatal = api_fatal;
  return api;
}

// --- JavaScript ---

std::string what_arg(const Napi::CallbackInfo& info, size_t i, const char* fallback) {
  return i < info.Length() && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : fallback;
}

int op_arg(const Napi::CallbackInfo& info, size_t i) {
  const std::string op = i < info.Length() && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (op == "sum") return FF_COMM_SUM;
  if (op == "avg") return FF_COMM_AVG;
  if (op == "max") return FF_COMM_MAX;
  if (op == "min") return FF_COMM_MIN;
  throw Error("op: expected 'sum', 'avg', 'max' or 'min', got '" + op + "'");
}

void run_sync(Job job) {
  const std::string error = wait(submit(std::move(job)));
  if (!error.empty()) throw Error(error);
}

// Makes libmpi's symbols global: Open MPI's plugins (dlopened by MPI_Init) link against them,
// and Node loads an addon and its libraries with RTLD_LOCAL.
void promote_libmpi() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&MPI_Init_thread), &info) != 0 && info.dli_fname != nullptr)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Error("timeout: expected a number of seconds");
  const double timeout = info[0].As<Napi::Number>().DoubleValue();
  if (!(timeout > 0)) throw Error("timeout: expected a number of seconds > 0");
  promote_libmpi();
  const WorldInfo& w = start(timeout);
  Napi::Object out = Napi::Object::New(env);
  out.Set("rank", w.rank);
  out.Set("worldSize", w.size);
  out.Set("localRank", w.local_rank);
  out.Set("localWorldSize", w.local_size);
  out.Set("timeout", w.timeout);
  out.Set("library", w.library);
  Napi::Array pids = Napi::Array::New(env, w.size), hosts = Napi::Array::New(env, w.size);
  for (int r = 0; r < w.size; r++) {
    pids.Set(uint32_t(r), w.pids[r]);
    hosts.Set(uint32_t(r), w.hosts[r]);
  }
  out.Set("pids", pids);
  out.Set("hosts", hosts);
  return out;
}

Napi::Value AllReduceF64(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Error("values: expected a Float64Array");
  auto values = info[0].As<Napi::Float64Array>();
  Job j{JobKind::AllReduceF64, values.Data(), values.ElementLength(), op_arg(info, 1)};
  j.what = what_arg(info, 2, "all-reduce of numbers");
  run_sync(std::move(j));
  return info.Env().Undefined();
}

Napi::Uint8Array bytes_arg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Error("data: expected a Uint8Array");
  return info[i].As<Napi::Uint8Array>();
}

Napi::Value BroadcastBytes(const Napi::CallbackInfo& info) {
  auto data = bytes_arg(info, 0);
  if (info.Length() < 2 || !info[1].IsNumber()) throw Error("root: expected a rank");
  Job j{JobKind::Broadcast, data.Data(), data.ByteLength(), 0, info[1].As<Napi::Number>().Int32Value()};
  j.what = what_arg(info, 2, "broadcast");
  run_sync(std::move(j));
  return info.Env().Undefined();
}

Napi::Value AllGatherBytes(const Napi::CallbackInfo& info) {
  auto data = bytes_arg(info, 0);
  const int size = start(0).size;
  if (data.ByteLength() % size != 0) throw Error("data: its length is not a multiple of the world size");
  Job j{JobKind::AllGatherBytes, data.Data(), data.ByteLength() / size};
  j.what = what_arg(info, 1, "all-gather");
  run_sync(std::move(j));
  return info.Env().Undefined();
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Job j{JobKind::Barrier};
  j.what = what_arg(info, 0, "barrier");
  run_sync(std::move(j));
  return info.Env().Undefined();
}

Napi::Value SetMarker(const Napi::CallbackInfo& info) {
  set_marker(what_arg(info, 0, ""));
  return info.Env().Undefined();
}

Napi::Value GetCounters(const Napi::CallbackInfo& info) {
  const bool reset = info.Length() > 0 && info[0].ToBoolean();
  const Counters c = counters(reset);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("busySeconds", c.busy_seconds);
  out.Set("collectives", double(c.collectives));
  out.Set("bytes", c.bytes);
  return out;
}

Napi::Value BenchAllReduce(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) throw Error("benchAllReduce(count, iterations)");
  double seconds = 0;
  Job j{JobKind::Bench, nullptr, size_t(info[0].As<Napi::Number>().Int64Value())};
  j.iterations = info[1].As<Napi::Number>().Int32Value();
  if (j.count < 1 || j.iterations < 1) throw Error("benchAllReduce: count and iterations must be >= 1");
  j.result = &seconds;
  j.what = "osu-style MPI_Allreduce benchmark";
  run_sync(std::move(j));
  return Napi::Number::New(info.Env(), seconds);
}

Napi::Value CommApi(const Napi::CallbackInfo& info) {
  static ff_comm_api table = api_table();
  Napi::External<ff_comm_api> ext = Napi::External<ff_comm_api>::New(info.Env(), &table);
  if (napi_type_tag_object(info.Env(), ext, &kTag) != napi_ok) throw Error("cannot tag the communicator table");
  return ext;
}

Napi::Value Finalize(const Napi::CallbackInfo& info) {
  finalize();
  return info.Env().Undefined();
}

Napi::Value Abort(const Napi::CallbackInfo& info) {
  const int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
  abort_job(code, what_arg(info, 1, ""));
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

// The MPI library this addon links (MPI_Get_library_version works before MPI_Init).
Napi::Value Describe(const Napi::CallbackInfo& info) {
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(version, &len);
  std::string text(version, len);
  return Napi::String::New(info.Env(), text.substr(0, text.find_first_of("\n,")));
}

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  exports.Set("backend", Napi::String::New(env, "mpi"));
  exports.Set("describe", Napi::Function::New(env, guarded<Describe>, "describe"));
  exports.Set("init", Napi::Function::New(env, guarded<Init>, "init"));
  exports.Set("allReduceF64", Napi::Function::New(env, guarded<AllReduceF64>, "allReduceF64"));
  exports.Set("broadcastBytes", Napi::Function::New(env, guarded<BroadcastBytes>, "broadcastBytes"));
  exports.Set("allGatherBytes", Napi::Function::New(env, guarded<AllGatherBytes>, "allGatherBytes"));
  exports.Set("barrier", Napi::Function::New(env, guarded<Barrier>, "barrier"));
  exports.Set("setMarker", Napi::Function::New(env, guarded<SetMarker>, "setMarker"));
  exports.Set("counters", Napi::Function::New(env, guarded<GetCounters>, "counters"));
  exports.Set("benchAllReduce", Napi::Function::New(env, guarded<BenchAllReduce>, "benchAllReduce"));
  exports.Set("commApi", Napi::Function::New(env, guarded<CommApi>, "commApi"));
  exports.Set("finalize", Napi::Function::New(env, guarded<Finalize>, "finalize"));
  exports.Set("abort", Napi::Function::New(env, guarded<Abort>, "abort"));
  return exports;
}

}  // namespace
}  // namespace ff::mpi

static Napi::Object InitMpiAddon(Napi::Env env, Napi::Object exports) { return ff::mpi::InitAddon(env, exports); }

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitMpiAddon)
