// Loads libtunekit_cuda.so with dlopen (the ggml/sharp pattern): candidates in order, the first that
// opens and has the entry points is asked for a device, and any failure becomes one actionable line.
// The library's C functions become a tk_backend; only plain C crosses (tunekit/backend.h).
#include "cuda_backend.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace tk {
namespace {

const char kLibName[] = "libtunekit_cuda.so";

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

std::string dirname_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : slash == 0 ? std::string("/") : path.substr(0, slash);
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// The folder holding this addon (build/Release, prebuilds/linux-x64, build-cuda/Release, ...).
std::string addon_dir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&cuda_backend), &info) == 0 || !info.dli_fname) return "";
  return dirname_of(info.dli_fname);
}

// The nearest folder at or above `dir` with a package.json: the package root.
std::string package_root(std::string dir) {
  for (int up = 0; up < 6 && !dir.empty(); up++) {
    if (exists(dir + "/package.json")) return dir;
    const std::string parent = dirname_of(dir);
    if (parent == dir) break;
    dir = parent;
  }
  return "";
}

struct Candidate {
  std::string path, label;
};

std::vector<Candidate> candidates() {
  std::vector<Candidate> out;
  auto add = [&](const std::string& path, const std::string& label) {
    for (const Candidate& c : out)
      if (c.path == path) return;
    out.push_back({path, label});
  };
  if (const char* env = std::getenv("TUNEKIT_CUDA_LIB"))
    if (*env) add(env, std::string("TUNEKIT_CUDA_LIB=") + env);
  const std::string addon = addon_dir(), root = addon.empty() ? "" : package_root(addon);
  if (!root.empty()) {
    add(root + "/build-cuda/Release/" + kLibName, "");
    add(root + "/build-cuda/" + kLibName, "");
  }
  if (!addon.empty()) add(addon + "/" + kLibName, "");
  return out;
}

template <class F>
F symbol(void* lib, const char* name) {
  return reinterpret_cast<F>(dlsym(lib, name));
}

struct LoadState {
  CudaBackend backend;
  bool ok = false;
  std::string reason;
};

LoadState load() {
  LoadState st;
  std::string tried;
  bool any_file = false;
  for (const Candidate& c : candidates()) {
    const std::string label = c.label.empty() ? c.path : c.label;
    auto note = [&](const std::string& why) { tried += (tried.empty() ? "" : "; ") + label + ": " + why; };
    if (!exists(c.path)) {
      note("not found");
      continue;
    }
    any_file = true;
    void* lib = dlopen(c.path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* e = dlerror();
      note(one_line(e ? e : "dlopen failed"));
      continue;
    }
    auto abi = symbol<tk_cuda_abi_fn>(lib, "tk_cuda_abi");
    auto init = symbol<tk_cuda_init_fn>(lib, "tk_cuda_init");
    auto name = symbol<tk_cuda_device_name_fn>(lib, "tk_cuda_device_name");
    CudaBackend& be = st.backend;
    tk_backend& b = be.backend;
    b.name = "cuda";
    b.supports = symbol<decltype(b.supports)>(lib, "tk_cuda_supports");
    b.run = symbol<decltype(b.run)>(lib, "tk_cuda_run");
    b.alloc = symbol<decltype(b.alloc)>(lib, "tk_cuda_alloc");
    b.free = symbol<decltype(b.free)>(lib, "tk_cuda_free");
    b.copy = symbol<decltype(b.copy)>(lib, "tk_cuda_copy");
    b.synchronize = symbol<decltype(b.synchronize)>(lib, "tk_cuda_synchronize");
    be.gemm_half = symbol<tk_cuda_gemm_half_fn>(lib, "tk_cuda_gemm_half");
    be.convert_f32 = symbol<tk_cuda_convert_f32_fn>(lib, "tk_cuda_convert_f32");
    be.peak_gflops = symbol<tk_cuda_peak_gflops_fn>(lib, "tk_cuda_peak_gflops");
    be.memory = symbol<tk_cuda_memory_fn>(lib, "tk_cuda_memory");
    if (!abi || !init || !name || !b.supports || !b.run || !b.alloc || !b.free || !b.copy || !b.synchronize ||
        !be.gemm_half || !be.convert_f32 || !be.peak_gflops || !be.memory) {
      note("not a tunekit CUDA library (entry points missing)");
      dlclose(lib);
      continue;
    }
    if (abi() != TK_CUDA_ABI) {
      note("built from a different tunekit version (ABI " + std::to_string(abi()) + ", this addon expects " +
           std::to_string(TK_CUDA_ABI) + ")");
      dlclose(lib);
      continue;
    }
    // The library is good: from here on a failure is about the machine, not the file.
    char err[512] = "";
    if (init(err, sizeof err) != TK_OK) {
      st.reason = "CUDA backend unavailable: " + c.path + " loaded, but " + one_line(err[0] ? err : "tk_cuda_init failed");
      if (!tried.empty()) st.reason += " (tried before it: " + tried + ")";
      return st;  // not dlclose'd: the CUDA runtime inside may have started threads or exit handlers
    }
    char dev[256] = "";
    if (name(dev, sizeof dev) == 0) be.device = dev;
    be.library = c.path;
    st.ok = true;
    return st;  // kept open for the life of the process
  }
  if (tried.empty()) tried = "no candidate path: TUNEKIT_CUDA_LIB unset and the addon's location unknown";
  st.reason = any_file ? "CUDA backend unavailable: no loadable " + std::string(kLibName) + " (tried " + tried +
                             "); rebuild it with npm run build:cuda"
                       : "CUDA backend unavailable: " + std::string(kLibName) + " not found (tried " + tried +
                             "); build it with npm run build:cuda (needs nvcc)";
  return st;
}

}  // namespace

const CudaBackend* cuda_backend(std::string* reason) {
  static std::once_flag once;
  static LoadState state;
  std::call_once(once, [] { state = load(); });
  if (reason) *reason = state.ok ? "" : state.reason;
  return state.ok ? &state.backend : nullptr;
}

}  // namespace tk
