// The Node-API surface of tunekit.node. Each op group registers itself from native/binding/*.cc;
// this file holds the process-wide controls (ISA, threads, error class).
#include "binding/common.h"
#include "cpu/table.h"
#include "cpu/threadpool.h"
#include "cuda_backend.h"
#include "cuda_check.h"

#include <atomic>
#include <stdexcept>
#include <string>

namespace tk {
namespace binding {

void init_heads(Napi::Env env, Napi::Object exports);  // binding/heads.cc

namespace {

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (info.Length() != 1 || !info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass: expected a constructor");
  set_error_class(info.Env(), info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), cpu_table().isa); }

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
  return Napi::Number::New(info.Env(), cpu_table().peak_gflops(s));
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

// ---- the op list and the backends ----------------------------------------------------------------
// The op names of TK_OPS (include/tunekit/ops.h), in op id order.
Napi::Value Ops(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env(), TK_OP_COUNT);
  for (int i = 0; i < TK_OP_COUNT; i++) a.Set(i, Napi::String::New(info.Env(), tk_op_names[i]));
  return a;
}

std::string op_list() {
  std::string s;
  for (int i = 0; i < TK_OP_COUNT; i++) s += (i ? ", " : "") + std::string(tk_op_names[i]);
  return s;
}

// The op id of info[index], or a TunekitError naming the function and the known ops.
int op_arg(const Napi::CallbackInfo& info, size_t index, const char* fn) {
  const std::string name = info.Length() > index && info[index].IsString() ? info[index].As<Napi::String>().Utf8Value() : "";
  const int op = tk_op_from_name(name.c_str());
  if (op < 0) throw_error(info.Env(), std::string(fn) + ": unknown op '" + name + "', expected one of " + op_list());
  return op;
}

// supportsOp(device, op): the device's backend has a kernel for op. False for "cuda" when the CUDA
// backend is not available here (cudaInfo().reason says why).
Napi::Value SupportsOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string device = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (device != "cpu" && device != "cuda")
    throw_error(env, "supportsOp: device '" + device + "' is not one of 'cpu', 'cuda'");
  const int op = op_arg(info, 1, "supportsOp");
  const tk_backend* be = device == "cpu" ? &cpu_backend() : nullptr;
  if (device == "cuda")
    if (const CudaBackend* cuda = cuda_backend(nullptr)) be = &cuda->backend;
  return Napi::Boolean::New(env, be && be->supports(op));
}

// Test hook (test/op_list.test.ts): empties the CPU slot of an op (null restores every slot), so that
// the error of an op a backend lacks can be seen through the real call path without a GPU.
Napi::Value HideCpuOp(const Napi::CallbackInfo& info) {
  cpu_hide_op(info.Length() > 0 && info[0].IsNull() ? -1 : op_arg(info, 0, "_hideCpuOp"));
  return info.Env().Undefined();
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

// deviceMemory(): { inUse, total, h2d, d2h } of the CUDA backend (bytes): memory tunekit holds there,
// the device's total, and the bytes copied each way since it loaded.
Napi::Value DeviceMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string reason;
  const CudaBackend* be = cuda_backend(&reason);
  if (!be) throw_error(env, "deviceMemory: " + reason);
  uint64_t in_use = 0, total = 0, h2d = 0, d2h = 0;
  be->memory(&in_use, &total, &h2d, &d2h);
  Napi::Object o = Napi::Object::New(env);
  o.Set("inUse", Napi::Number::New(env, static_cast<double>(in_use)));
  o.Set("total", Napi::Number::New(env, static_cast<double>(total)));
  o.Set("h2d", Napi::Number::New(env, static_cast<double>(h2d)));
  o.Set("d2h", Napi::Number::New(env, static_cast<double>(d2h)));
  return o;
}

// Every op's cases on the CPU and on the GPU with the same inputs (native/cuda_check.cc):
// [{ op, name, maxAbsDiff, refMaxAbs, tolerance }].
Napi::Value CudaCheckOps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string reason;
  const CudaBackend* be = cuda_backend(&reason);
  if (!be) throw_error(env, "cudaCheckOps: " + reason);
  std::vector<CudaOpCheck> checks;
  try {
    checks = cuda_check_ops(*be);
  } catch (const std::exception& e) {
    throw_error(env, std::string("cudaCheckOps: ") + e.what());
  }
  Napi::Array a = Napi::Array::New(env, checks.size());
  for (size_t i = 0; i < checks.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("op", Napi::String::New(env, checks[i].op));
    o.Set("name", Napi::String::New(env, checks[i].name));
    o.Set("maxAbsDiff", Napi::Number::New(env, checks[i].max_abs_diff));
    o.Set("refMaxAbs", Napi::Number::New(env, checks[i].ref_max_abs));
    o.Set("tolerance", Napi::Number::New(env, checks[i].tolerance));
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
  exports.Set("ops", Napi::Function::New(env, Ops, "ops"));
  exports.Set("supportsOp", Napi::Function::New(env, SupportsOp, "supportsOp"));
  exports.Set("_hideCpuOp", Napi::Function::New(env, HideCpuOp, "_hideCpuOp"));
  // CUDA backend
  exports.Set("cudaAvailable", Napi::Function::New(env, CudaAvailable, "cudaAvailable"));
  exports.Set("cudaInfo", Napi::Function::New(env, CudaInfo, "cudaInfo"));
  exports.Set("cudaCheckOps", Napi::Function::New(env, CudaCheckOps, "cudaCheckOps"));
  exports.Set("deviceMemory", Napi::Function::New(env, DeviceMemory, "deviceMemory"));
  init_memory(env, exports);
  init_gemm(env, exports);
  init_attention(env, exports);
  init_layers(env, exports);
  init_optim(env, exports);
  init_lora(env, exports);
  init_heads(env, exports);
  init_decoder(env, exports);
  init_comm(env, exports);
  return exports;
}

}  // namespace binding
}  // namespace tk

static Napi::Object InitTunekit(Napi::Env env, Napi::Object exports) { return tk::binding::Init(env, exports); }
NODE_API_MODULE(tunekit, InitTunekit)
