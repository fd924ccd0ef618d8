// Loading NCCL at run time (nccl.h): dlopen + dlsym of each function the backend calls.
#include "../common/backend.h"
#include "nccl.h"
#if defined(FF_EMU)
#include "../emu/nccl_emu.h"
#else
#include <dlfcn.h>
#endif

namespace ff::cuda {

#if defined(FF_EMU)

const NcclFunctions& load_nccl(const std::string&, const ff_comm_api* api) {
  static const NcclFunctions f = emu::nccl_functions(api);
  return f;
}

#else

namespace {

void no_label(const char*) {}

NcclFunctions open_nccl(const std::string& library) {
  const std::string file = library.empty() ? "libnccl.so.2" : library;
  void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    throw Error(std::string(backend::name()) + ": cannot load NCCL (" + file + "): " + dlerror() +
                "; install it with `pip install nvidia-nccl-cu13` (or a system libnccl2), or set "
                "FOURIERFORMER_NCCL_DIR to the folder holding libnccl.so.2");
  }
  auto sym = [&](const char* name) {
    void* p = dlsym(handle, name);
    if (p == nullptr)
      throw Error(std::string(backend::name()) + ": " + file + " has no " + name + " (NCCL 2.10 or newer is needed)");
    return p;
  };
  NcclFunctions f{};
  f.GetVersion = reinterpret_cast<decltype(f.GetVersion)>(sym("ncclGetVersion"));
  f.GetUniqueId = reinterpret_cast<decltype(f.GetUniqueId)>(sym("ncclGetUniqueId"));
  f.CommInitRank = reinterpret_cast<decltype(f.CommInitRank)>(sym("ncclCommInitRank"));
  f.CommDestroy = reinterpret_cast<decltype(f.CommDestroy)>(sym("ncclCommDestroy"));
  f.CommAbort = reinterpret_cast<decltype(f.CommAbort)>(sym("ncclCommAbort"));
  f.CommGetAsyncError = reinterpret_cast<decltype(f.CommGetAsyncError)>(sym("ncclCommGetAsyncError"));
  f.GetErrorString = reinterpret_cast<decltype(f.GetErrorString)>(sym("ncclGetErrorString"));
  f.AllReduce = reinterpret_cast<decltype(f.AllReduce)>(sym("ncclAllReduce"));
  f.Broadcast = reinterpret_cast<decltype(f.Broadcast)>(sym("ncclBroadcast"));
  f.AllGather = reinterpret_cast<decltype(f.AllGather)>(sym("ncclAllGather"));
  f.Label = no_label;
  int version = 0;
  f.GetVersion(&version);
  if (version < 21000) {
    throw Error(std::string(backend::name()) + ": " + file + " is NCCL " + std::to_string(version) +
                "; NCCL 2.10 or newer is needed (ncclAvg)");
  }
  // NCCL codes its version as major * 10000 + minor * 100 + patch since 2.9.
  f.describe = "NCCL " + std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." +
               std::to_string(version % 100) + " (" + file + ")";
  return f;
}

}  // namespace

const NcclFunctions& load_nccl(const std::string& library, const ff_comm_api*) {
  static const NcclFunctions f = open_nccl(library);
  return f;
}

#endif

}  // namespace ff::cuda
