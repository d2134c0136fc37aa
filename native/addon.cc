// The Node-API surface of tunekit.node. Each op group registers itself from native/binding/*.cc;
// this file holds the process-wide controls (ISA, threads, error class).
#include "binding/common.h"
#include "cpu/threadpool.h"
#include "cuda_backend.h"

#include <atomic>
#include <stdexcept>
#include <string>

namespace tk {
namespace binding {
namespace {

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (info.Length() != 1 || !info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass: expected a constructor");
  set_error_class(info.Env(), info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kernels().isa); }

Napi::Value AvailableIsas(const Napi::CallbackInfo& info) {
  int n = 0;
  const char* const* names = available_isas(&n);
  Napi::Array a = Napi::Array::New(info.Env(), n);
  for (int i = 0; i < n; i++) a.Set(i, Napi::String::New(info.Env(), names[i]));
  return a;
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString()) throw_error(env, "setIsa: expected one of 'avx512', 'avx2', 'scalar'");
  std::string name = info[0].As<Napi::String>();
  if (!set_isa(name.c_str())) {
    int n = 0;
    const char* const* names = available_isas(&n);
    std::string list;
    for (int i = 0; i < n; i++) list += (i ? ", " : "") + std::string(names[i]);
    throw_error(env, "setIsa: '" + name + "' is not available on this CPU; available: " + list);
  }
  return env.Undefined();
}

Napi::Value PeakGflops(const Napi::CallbackInfo& info) {
  double s = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0.2;
  if (!(s > 0 && s <= 10)) throw_error(info.Env(), "peakGflops: seconds must be in (0, 10]");
  return Napi::Number::New(info.Env(), kernels().peak_gflops(s));
}

Napi::Value NumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), num_threads()); }

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) throw_error(env, "setNumThreads: expected a positive integer");
  int64_t n = info[0].As<Napi::Number>().Int64Value();
  if (n < 1 || n > 1024) throw_error(env, "setNumThreads: expected 1..1024, got " + std::to_string(n));
  set_num_threads(static_cast<int>(n));
  return env.Undefined();
}

// Test hook (test/isolation.test.ts): a parallel_run over n items whose item `bad` throws from a pool
// thread. The pool must rethrow it here as an error and stay usable for the next call.
Napi::Value PoolThrowTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsNumber() || !info[1].IsNumber()) throw_error(env, "_poolThrowTest: expected (n, bad)");
  const int64_t n = info[0].As<Napi::Number>().Int64Value(), bad = info[1].As<Napi::Number>().Int64Value();
  if (n < 1 || n > (1 << 20)) throw_error(env, "_poolThrowTest: n must be in 1..2^20");
  std::atomic<int64_t> done{0};
  try {
    parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) {
        if (i == bad) throw std::runtime_error("item " + std::to_string(i) + " failed on pool thread " + std::to_string(thread_index()));
        done++;
      }
    });
  } catch (const std::exception& e) {
    throw_error(env, std::string("_poolThrowTest: ") + e.what());
  }
  return Napi::Number::New(env, static_cast<double>(done.load()));
}

// ---- CUDA backend (issue "CUDA backend") ------------------------------------------------------
// libtunekit_cuda.so is opened on the first of these calls, never at addon load (cuda_backend.cc).
Napi::Value CudaAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), cuda_backend(nullptr) != nullptr);
}

Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string reason;
  const CudaBackend* be = cuda_backend(&reason);
  Napi::Object o = Napi::Object::New(env);
  o.Set("available", Napi::Boolean::New(env, be != nullptr));
  o.Set("reason", Napi::String::New(env, reason));
  if (be) {
    o.Set("library", Napi::String::New(env, be->library));
    o.Set("device", Napi::String::New(env, be->device));
  }
  return o;
}

// Every op on the CPU and on the GPU with the same inputs: [{ op, maxAbsDiff, refMaxAbs }].
Napi::Value CudaCheckOps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string reason;
  const CudaBackend* be = cuda_backend(&reason);
  if (!be) throw_error(env, "cudaCheckOps: " + reason);
  std::vector<CudaOpCheck> checks;
  try {
    checks = cuda_compare_with_cpu(*be);
  } catch (const std::exception& e) {
    throw_error(env, std::string("cudaCheckOps: ") + e.what());
  }
  Napi::Array a = Napi::Array::New(env, checks.size());
  for (size_t i = 0; i < checks.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("op", Napi::String::New(env, checks[i].op));
    o.Set("maxAbsDiff", Napi::Number::New(env, checks[i].max_abs_diff));
    o.Set("refMaxAbs", Napi::Number::New(env, checks[i].ref_max_abs));
    a.Set(static_cast<uint32_t>(i), o);
  }
  return a;
}
// ---- end CUDA backend -------------------------------------------------------------------------

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("isa", Napi::Function::New(env, Isa, "isa"));
  exports.Set("availableIsas", Napi::Function::New(env, AvailableIsas, "availableIsas"));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa, "setIsa"));
  exports.Set("peakGflops", Napi::Function::New(env, PeakGflops, "peakGflops"));
  exports.Set("numThreads", Napi::Function::New(env, NumThreads, "numThreads"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("_poolThrowTest", Napi::Function::New(env, PoolThrowTest, "_poolThrowTest"));
  // CUDA backend
  exports.Set("cudaAvailable", Napi::Function::New(env, CudaAvailable, "cudaAvailable"));
  exports.Set("cudaInfo", Napi::Function::New(env, CudaInfo, "cudaInfo"));
  exports.Set("cudaCheckOps", Napi::Function::New(env, CudaCheckOps, "cudaCheckOps"));
  init_memory(env, exports);
  init_gemm(env, exports);
  init_attention(env, exports);
  init_layers(env, exports);
  init_optim(env, exports);
  init_lora(env, exports);
  return exports;
}

}  // namespace binding
}  // namespace tk

static Napi::Object InitTunekit(Napi::Env env, Napi::Object exports) { return tk::binding::Init(env, exports); }
NODE_API_MODULE(tunekit, InitTunekit)
