// cpu backend: collectives on host memory, run by the MPI addon's communication thread through
// its table (csrc/common/backend_comm.h). A handle is the MPI addon's ticket.
#include "../common/backend_comm.h"
#include "../common/error.h"

namespace ff::backend {
namespace {

const ff_comm_api* api = nullptr;

const ff_comm_api& require(const std::string& what) {
  if (api == nullptr) throw Error(what + ": the cpu backend has no communicator (call distributed.init() first)");
  return *api;
}

uint64_t queued(uint64_t ticket) {
  if (ticket == 0) throw Error(api->wait(0));
  return ticket;
}

}  // namespace

void comm_attach(const ff_comm_api* table, const std::string&) { api = table; }

std::string comm_describe() { return "MPI (host memory)"; }

uint64_t comm_all_reduce(float* data, size_t n, int op, const std::string& what) {
  return queued(require(what).all_reduce(data, n, op, what.c_str()));
}

uint64_t comm_broadcast(float* data, size_t n, int root, const std::string& what) {
  return queued(require(what).broadcast(data, n * sizeof(float), root, what.c_str()));
}

uint64_t comm_all_gather(float* data, size_t n, const std::string& what) {
  return queued(require(what).all_gather(data, n, what.c_str()));
}

void comm_wait(uint64_t handle) {
  const char* error = require("wait").wait(handle);
  if (error != nullptr) throw Error(error);
}

}  // namespace ff::backend
