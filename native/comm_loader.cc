// Loads a communication backend library with dlopen (as cuda_backend.cc loads the CUDA one): the
// candidates in order, the first that opens, has every entry point and the right ABI wins, and any
// failure becomes one line that says how to get the library.
#include "comm_loader.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

namespace tk {
namespace {

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string dirname_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : slash == 0 ? std::string("/") : path.substr(0, slash);
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

std::vector<std::string> candidates(const std::string& file) {
  std::vector<std::string> out;
  // TUNEKIT_COMM_LIB names the one library to load (a build elsewhere, or a test of the missing case).
  if (const char* env = std::getenv("TUNEKIT_COMM_LIB"))
    if (*env) return {env};
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&comm_backend), &info) != 0 && info.dli_fname) {
    std::string dir = dirname_of(info.dli_fname);
    const std::string addon = dir;
    for (int up = 0; up < 6; up++) {  // the package root: the nearest folder with a package.json
      if (exists(dir + "/package.json")) {
        out.push_back(dir + "/build-comm/" + file);
        break;
      }
      const std::string parent = dirname_of(dir);
      if (parent == dir) break;
      dir = parent;
    }
    out.push_back(addon + "/" + file);
  }
  return out;
}

template <class F>
F symbol(void* lib, const char* name) {
  return reinterpret_cast<F>(dlsym(lib, name));
}

struct LoadState {
  CommBackend backend;
  bool ok = false;
  std::string reason;
};

LoadState load(const std::string& name) {
  LoadState st;
  if (name != "gloo") {
    st.reason = name == "nccl" ? "the NCCL backend (GPUs) is not written yet: distributed training runs on CPUs over Gloo (backend \"gloo\")"
                               : "unknown communication backend '" + name + "' (expected \"gloo\")";
    return st;
  }
  const std::string file = "libtunekit_" + name + ".so";
  std::string tried;
  bool any = false;
  for (const std::string& path : candidates(file)) {
    auto note = [&](const std::string& why) { tried += (tried.empty() ? "" : "; ") + path + ": " + why; };
    if (!exists(path)) {
      note("not found");
      continue;
    }
    any = true;
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* e = dlerror();
      note(one_line(e ? e : "dlopen failed"));
      continue;
    }
    CommBackend& b = st.backend;
    auto abi = symbol<tk_comm_abi_fn>(lib, "tk_comm_abi");
    b.init = symbol<tk_comm_init_fn>(lib, "tk_comm_init");
    b.allreduce = symbol<tk_comm_allreduce_fn>(lib, "tk_comm_allreduce");
    b.allreduce_start = symbol<tk_comm_allreduce_start_fn>(lib, "tk_comm_allreduce_start");
    b.wait = symbol<tk_comm_wait_fn>(lib, "tk_comm_wait");
    b.broadcast = symbol<tk_comm_broadcast_fn>(lib, "tk_comm_broadcast");
    b.allgatherv = symbol<tk_comm_allgatherv_fn>(lib, "tk_comm_allgatherv");
    b.barrier = symbol<tk_comm_barrier_fn>(lib, "tk_comm_barrier");
    b.stats = symbol<tk_comm_stats_fn>(lib, "tk_comm_stats");
    b.abort = symbol<tk_comm_abort_fn>(lib, "tk_comm_abort");
    b.destroy = symbol<tk_comm_destroy_fn>(lib, "tk_comm_destroy");
    if (!abi || !b.init || !b.allreduce || !b.allreduce_start || !b.wait || !b.broadcast || !b.allgatherv || !b.barrier || !b.stats ||
        !b.abort || !b.destroy) {
      note("not a tunekit communication library (entry points missing)");
      dlclose(lib);
      continue;
    }
    if (abi() != TK_COMM_ABI_VERSION) {
      note("built from a different tunekit version (ABI " + std::to_string(abi()) + ", this addon expects " + std::to_string(TK_COMM_ABI_VERSION) +
           "); rebuild it with npm run build:comm");
      dlclose(lib);
      continue;
    }
    b.name = name;
    b.library = path;
    st.ok = true;
    return st;  // kept open for the life of the process
  }
  if (tried.empty()) tried = "no candidate path";
  st.reason = any ? "distributed training unavailable: no loadable " + file + " (tried " + tried + ")"
                  : "distributed training unavailable: " + file + " is not built (tried " + tried +
                        "); build it with `npm run build:comm`, which needs Gloo (Debian/Ubuntu: apt-get install libgloo-dev)";
  return st;
}

}  // namespace

const CommBackend* comm_backend(const std::string& name, std::string* reason) {
  static std::mutex m;
  static std::map<std::string, LoadState> loaded;
  std::lock_guard<std::mutex> lock(m);
  auto it = loaded.find(name);
  if (it == loaded.end()) it = loaded.emplace(name, load(name)).first;
  if (reason) *reason = it->second.ok ? "" : it->second.reason;
  return it->second.ok ? &it->second.backend : nullptr;
}

}  // namespace tk
