// Helpers every op binding uses: read and validate arguments, build errors that name the op, the
// argument, what was given and what was expected, and run work synchronously or off the JS thread.
#pragma once
#include <napi.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "../backend.h"

namespace tk {
namespace binding {

// Thrown while validating; turned into a JS TunekitError (class set from JS, see addon.cc).
struct ArgError {
  std::string message;
};

// Typed views of JS arguments.
// `device`: the buffer is a device buffer (its memory is not readable here).
struct F32 { float* data = nullptr; int64_t length = 0; bool device = false; static constexpr int dtype = TK_F32; };
struct I32 { int32_t* data = nullptr; int64_t length = 0; bool device = false; static constexpr int dtype = TK_I32; };
struct U8 { uint8_t* data = nullptr; int64_t length = 0; bool device = false; static constexpr int dtype = TK_U8; };
struct BF16 { uint16_t* data = nullptr; int64_t length = 0; bool device = false; static constexpr int dtype = TK_BF16; };
// A weight operand (gemm's B, lora's W, embeddingForward's table): float32, or bfloat16 as a host
// Uint16Array or a bf16 device buffer. bytes() is what it spans, for the aliasing checks.
struct Weight {
  const void* data = nullptr;
  int64_t length = 0;
  bool device = false;
  int dtype = TK_F32;
  int64_t bytes() const { return length * tk_dtype_bytes(dtype); }
};

// Reads the arguments of one call from a plain JS object: op({ M: 4, A: float32array, ... }).
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op);
  const char* op() const { return op_; }
  Napi::Env env() const { return obj_.Env(); }

  int64_t integer(const char* name, int64_t min, int64_t max);                 // required
  int64_t integer(const char* name, int64_t min, int64_t max, int64_t dflt);   // optional
  double number(const char* name);
  double number(const char* name, double dflt);
  bool flag(const char* name, bool dflt);
  // Typed arrays: required ones must hold at least `need` elements; optional ones may be absent/null.
  F32 f32(const char* name, int64_t need);
  F32 f32_opt(const char* name, int64_t need);
  I32 i32(const char* name, int64_t need);
  I32 i32_opt(const char* name, int64_t need);
  U8 u8_opt(const char* name, int64_t need);
  // A weight: a Float32Array, a Uint16Array (bf16) or an f32 / bf16 device buffer, of at least `need` elements.
  Weight weight(const char* name, int64_t need);
  // JS Arrays (multi-tensor ops): of Float32Arrays (element i is named "name[i]" in errors), of numbers.
  std::vector<F32> f32_list(const char* name);
  std::vector<double> number_list(const char* name);
  // An optional string that must be one of `choices`; returns its index, or dflt when absent.
  int choice(const char* name, std::initializer_list<const char*> choices, int dflt);

  [[noreturn]] void fail(const std::string& what) const;
  // Output `out` must not overlap input `in` (kernels read inputs while writing outputs).
  void no_alias(const char* out_name, const void* out, int64_t out_bytes, const char* in_name, const void* in,
                int64_t in_bytes) const;

  // Keeps every typed array read so far alive (and not freeable) while async work runs.
  std::vector<Napi::Value>& pinned() { return pinned_; }

  // The backend that owns this call's buffers: the CPU for typed arrays, the device of device
  // buffers. Every buffer of one call must be on one device.
  const tk_backend& backend() const;
  bool on_cpu() const { return &backend() == &cpu_backend(); }
  // Records that argument `name` lives on `be` (fails when an earlier one lives elsewhere).
  void on_backend(const tk_backend* be, const char* name);

 private:
  Napi::Value get(const char* name, bool required);
  const tk_backend* backend_ = nullptr;
  std::string backend_arg_;
  const char* op_;
  Napi::Object obj_;
  std::vector<Napi::Value> pinned_;
};

// An op: validates on the JS thread, returns the work to run (sync or on the libuv pool) and a
// function producing the JS result afterwards (undefined when null).
struct Work {
  std::function<void()> run;
  std::function<Napi::Value(Napi::Env)> result;
};
using Parser = Work (*)(Args&);

// Registers exports[name] (sync) and exports[name + "Async"] (returns a Promise).
void define(Napi::Env env, Napi::Object exports, const char* name, Parser parse);
// Registers exports[name] (sync only).
void define_sync(Napi::Env env, Napi::Object exports, const char* name, Parser parse);

// Throws the JS error class registered by setErrorClass (a TunekitError), or Error before that.
[[noreturn]] void throw_error(Napi::Env env, const std::string& message);
Napi::Error make_error(Napi::Env env, const std::string& message);
void set_error_class(Napi::Env env, Napi::Function ctor);

// Pins allocations so free() refuses them while async work uses them (memory.cc).
void pin_allocations(const std::vector<void*>& data, int delta);

// Per-group registration (one file each in native/binding/).
void init_memory(Napi::Env env, Napi::Object exports);
void init_gemm(Napi::Env env, Napi::Object exports);
void init_attention(Napi::Env env, Napi::Object exports);
void init_layers(Napi::Env env, Napi::Object exports);
void init_optim(Napi::Env env, Napi::Object exports);
void init_lora(Napi::Env env, Napi::Object exports);
void init_decoder(Napi::Env env, Napi::Object exports);
void init_comm(Napi::Env env, Napi::Object exports);  // comm.cc: process groups (data-parallel training)

std::string shape_str(std::initializer_list<int64_t> dims);

// Precision of the GEMMs of ops that do not name one (setMatmulPrecision, gemm.cc): 1 = bf16 where
// the CPU can, else fp32. Read on the JS thread when an op is parsed.
int matmul_bf16();
// The "precision" argument of a GEMM-backed op: 0 "fp32", 1 "bf16", 2 "fp16" (devices only), defaulting
// to the requested one where the call's device runs it (read after the buffers).
int precision_arg(Args& a);

}  // namespace binding
}  // namespace tk
