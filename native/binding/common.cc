#include "common.h"

#include "device_buffer.h"

#include <exception>
#include <sstream>

namespace tk {
namespace binding {

namespace {
struct AddonData {
  Napi::FunctionReference error_class;
};
AddonData* data(Napi::Env env) {
  AddonData* d = env.GetInstanceData<AddonData>();
  if (!d) {
    d = new AddonData();
    env.SetInstanceData(d);
  }
  return d;
}

const char* type_name(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) return "a number";
  if (v.IsBoolean()) return "a boolean";
  if (v.IsString()) return "a string";
  if (v.IsTypedArray()) {
    switch (v.As<Napi::TypedArray>().TypedArrayType()) {
      case napi_float32_array: return "a Float32Array";
      case napi_float64_array: return "a Float64Array";
      case napi_int32_array: return "an Int32Array";
      case napi_uint8_array: return "a Uint8Array";
      case napi_uint16_array: return "a Uint16Array (bf16)";
      default: return "a TypedArray of another type";
    }
  }
  if (v.IsArray()) return "an Array";
  if (v.IsFunction()) return "a function";
  return "an object";
}
}  // namespace

std::string shape_str(std::initializer_list<int64_t> dims) {
  std::ostringstream s;
  s << "[";
  bool first = true;
  for (int64_t d : dims) {
    if (!first) s << ", ";
    s << d;
    first = false;
  }
  s << "]";
  return s.str();
}

Napi::Error make_error(Napi::Env env, const std::string& message) {
  AddonData* d = data(env);
  if (!d->error_class.IsEmpty()) {
    Napi::Object e = d->error_class.New({Napi::String::New(env, message)});
    return Napi::Error(env, e);
  }
  return Napi::Error::New(env, message);
}

void throw_error(Napi::Env env, const std::string& message) { throw make_error(env, message); }

void set_error_class(Napi::Env env, Napi::Function ctor) { data(env)->error_class = Napi::Persistent(ctor); }

Args::Args(const Napi::CallbackInfo& info, const char* op) : op_(op) {
  if (info.Length() != 1 || !info[0].IsObject() || info[0].IsArray())
    throw ArgError{std::string(op) + ": expected one object of named arguments, got " +
                   (info.Length() ? type_name(info[0]) : "nothing")};
  obj_ = info[0].As<Napi::Object>();
}

void Args::fail(const std::string& what) const { throw ArgError{std::string(op_) + ": " + what}; }

Napi::Value Args::get(const char* name, bool required) {
  Napi::Value v = obj_.Get(name);
  if (required && (v.IsUndefined() || v.IsNull())) fail(std::string("argument '") + name + "' is missing");
  return v;
}

int64_t Args::integer(const char* name, int64_t min, int64_t max) {
  Napi::Value v = get(name, true);
  if (!v.IsNumber()) fail(std::string("argument '") + name + "' must be an integer, got " + type_name(v));
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d)))
    fail(std::string("argument '") + name + "' must be an integer, got " + std::to_string(d));
  int64_t i = static_cast<int64_t>(d);
  if (i < min || i > max)
    fail(std::string("argument '") + name + "' = " + std::to_string(i) + " is out of range, expected " +
         std::to_string(min) + ".." + std::to_string(max));
  return i;
}

int64_t Args::integer(const char* name, int64_t min, int64_t max, int64_t dflt) {
  Napi::Value v = get(name, false);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  return integer(name, min, max);
}

double Args::number(const char* name) {
  Napi::Value v = get(name, true);
  if (!v.IsNumber()) fail(std::string("argument '") + name + "' must be a number, got " + type_name(v));
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != d) fail(std::string("argument '") + name + "' is NaN");
  return d;
}

double Args::number(const char* name, double dflt) {
  Napi::Value v = get(name, false);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  return number(name);
}

bool Args::flag(const char* name, bool dflt) {
  Napi::Value v = get(name, false);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsBoolean()) fail(std::string("argument '") + name + "' must be a boolean, got " + type_name(v));
  return v.As<Napi::Boolean>().Value();
}

const tk_backend& Args::backend() const { return backend_ ? *backend_ : cpu_backend(); }

void Args::on_backend(const tk_backend* be, const char* name) {
  if (!backend_) {
    backend_ = be;
    backend_arg_ = name;
  } else if (backend_ != be) {
    fail(std::string("argument '") + name + "' is on " + be->name + " but '" + backend_arg_ + "' is on " + backend_->name +
         "; expected every buffer of one call on one device");
  }
}

namespace {
const char* kDtypeNames[] = {"f32", "bf16", "f16", "i32", "u8"};

// Only weight operands may be bf16; said where a bf16 buffer reaches any other argument.
const char* kBf16Hint = "; bf16 storage is only accepted for a weight (gemm's 'B', loraForward/loraBackward's 'W', "
                        "embeddingForward's 'table')";

bool is_bf16(Args& a, Napi::Value v) {
  if (DeviceRef* r = unwrap_device(a.env(), v)) return r->dtype == TK_BF16;
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array;
}

template <class View>
View typed(Args& a, Napi::Value v, const char* name, napi_typedarray_type type, const char* type_label,
           int64_t need) {
  if (DeviceRef* r = unwrap_device(a.env(), v)) {
    if (!r->alloc->ptr) a.fail(std::string("argument '") + name + "' is a device buffer that was freed");
    if (r->dtype != View::dtype)
      a.fail(std::string("argument '") + name + "' is a " + kDtypeNames[r->dtype] + " device buffer, expected " + kDtypeNames[View::dtype] +
             (r->dtype == TK_BF16 ? kBf16Hint : ""));
    View out;
    out.length = r->length;
    out.device = true;
    if (out.length < need)
      a.fail(std::string("argument '") + name + "' has " + std::to_string(out.length) + " elements, expected at least " +
             std::to_string(need));
    out.data = static_cast<decltype(out.data)>(r->data());
    a.on_backend(r->alloc->backend, name);
    a.pinned().push_back(v);
    return out;
  }
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    a.fail(std::string("argument '") + name + "' must be " + type_label + " or a device buffer, got " + type_name(v) +
           (View::dtype != TK_BF16 && is_bf16(a, v) ? kBf16Hint : ""));
  a.on_backend(&cpu_backend(), name);
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  View out;
  out.length = static_cast<int64_t>(t.ElementLength());
  if (out.length < need)
    a.fail(std::string("argument '") + name + "' has " + std::to_string(out.length) + " elements, expected at least " +
           std::to_string(need));
  Napi::ArrayBuffer buf = t.ArrayBuffer();
  out.data = reinterpret_cast<decltype(out.data)>(static_cast<uint8_t*>(buf.Data()) + t.ByteOffset());
  a.pinned().push_back(v);
  return out;
}
}  // namespace

F32 Args::f32(const char* name, int64_t need) {
  return typed<F32>(*this, get(name, true), name, napi_float32_array, "a Float32Array", need);
}
F32 Args::f32_opt(const char* name, int64_t need) {
  Napi::Value v = get(name, false);
  if (v.IsUndefined() || v.IsNull()) return F32{};
  return typed<F32>(*this, v, name, napi_float32_array, "a Float32Array", need);
}
I32 Args::i32(const char* name, int64_t need) {
  return typed<I32>(*this, get(name, true), name, napi_int32_array, "an Int32Array", need);
}
I32 Args::i32_opt(const char* name, int64_t need) {
  Napi::Value v = get(name, false);
  if (v.IsUndefined() || v.IsNull()) return I32{};
  return typed<I32>(*this, v, name, napi_int32_array, "an Int32Array", need);
}
U8 Args::u8_opt(const char* name, int64_t need) {
  Napi::Value v = get(name, false);
  if (v.IsUndefined() || v.IsNull()) return U8{};
  return typed<U8>(*this, v, name, napi_uint8_array, "a Uint8Array", need);
}

Weight Args::weight(const char* name, int64_t need) {
  Napi::Value v = get(name, true);
  Weight w;
  if (is_bf16(*this, v)) {
    BF16 b = typed<BF16>(*this, v, name, napi_uint16_array, "a Uint16Array (bf16)", need);
    w.data = b.data; w.length = b.length; w.device = b.device; w.dtype = TK_BF16;
  } else {
    F32 f = typed<F32>(*this, v, name, napi_float32_array, "a Float32Array, a Uint16Array (bf16)", need);
    w.data = f.data; w.length = f.length; w.device = f.device; w.dtype = TK_F32;
  }
  return w;
}

std::vector<F32> Args::f32_list(const char* name) {
  Napi::Value v = get(name, true);
  if (!v.IsArray()) fail(std::string("argument '") + name + "' must be an Array of Float32Arrays, got " + type_name(v));
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<F32> out;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    std::string item = std::string(name) + "[" + std::to_string(i) + "]";
    out.push_back(typed<F32>(*this, arr.Get(i), item.c_str(), napi_float32_array, "a Float32Array", 0));
  }
  return out;
}

std::vector<double> Args::number_list(const char* name) {
  Napi::Value v = get(name, true);
  if (!v.IsArray()) fail(std::string("argument '") + name + "' must be an Array of numbers, got " + type_name(v));
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<double> out;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value x = arr.Get(i);
    if (!x.IsNumber() || x.As<Napi::Number>().DoubleValue() != x.As<Napi::Number>().DoubleValue())
      fail(std::string("argument '") + name + "[" + std::to_string(i) + "]' must be a number, got " +
           (x.IsNumber() ? "NaN" : type_name(x)));
    out.push_back(x.As<Napi::Number>().DoubleValue());
  }
  return out;
}

int Args::choice(const char* name, std::initializer_list<const char*> choices, int dflt) {
  Napi::Value v = get(name, false);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  std::string list;
  for (const char* c : choices) list += std::string(list.empty() ? "" : ", ") + "\"" + c + "\"";
  if (!v.IsString()) fail(std::string("argument '") + name + "' must be one of " + list + ", got " + type_name(v));
  std::string got = v.As<Napi::String>().Utf8Value();
  int i = 0;
  for (const char* c : choices) {
    if (got == c) return i;
    i++;
  }
  fail(std::string("argument '") + name + "' = \"" + got + "\" is not one of " + list);
}

void Args::no_alias(const char* out_name, const void* out, int64_t out_bytes, const char* in_name, const void* in,
                    int64_t in_bytes) const {
  if (!out || !in || out_bytes <= 0 || in_bytes <= 0) return;
  auto o = reinterpret_cast<uintptr_t>(out), i = reinterpret_cast<uintptr_t>(in);
  if (o < i + static_cast<uintptr_t>(in_bytes) && i < o + static_cast<uintptr_t>(out_bytes))
    fail(std::string("output '") + out_name + "' overlaps input '" + in_name + "'; expected separate buffers");
}

namespace {
std::vector<void*> data_pointers(const std::vector<Napi::Value>& values) {
  std::vector<void*> out;
  for (const Napi::Value& v : values)
    if (v.IsTypedArray()) out.push_back(v.As<Napi::TypedArray>().ArrayBuffer().Data());
  return out;
}

// A promise settled through references to its resolve/reject functions rather than a napi_deferred:
// Node-API frees a deferred only when it is resolved or rejected, which is impossible once a
// worker's env is being torn down, so every op in flight at a worker's termination leaked one
// (found by scripts/lsan-check.sh). References are freed whether or not the call succeeds.
Napi::Promise new_promise(Napi::Env env, Napi::FunctionReference* resolve, Napi::FunctionReference* reject) {
  Napi::Function ctor = env.Global().Get("Promise").As<Napi::Function>();
  Napi::Function executor = Napi::Function::New(env, [resolve, reject](const Napi::CallbackInfo& info) {
    *resolve = Napi::Persistent(info[0].As<Napi::Function>());
    *reject = Napi::Persistent(info[1].As<Napi::Function>());
  });
  return ctor.New({executor}).As<Napi::Promise>();
}

class AsyncOp : public Napi::AsyncWorker {
 public:
  AsyncOp(Napi::Env env, Work work, std::vector<Napi::Value> pinned)
      : Napi::AsyncWorker(env, "tunekit"), work_(std::move(work)), data_(data_pointers(pinned)),
        devices_(device_allocs(env, pinned)) {
    promise_ = Napi::Persistent(new_promise(env, &resolve_, &reject_).As<Napi::Object>());
    // Persistent references keep the arrays alive; napi_values themselves die with this call's scope.
    for (auto& v : pinned) refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
    pin_allocations(data_, +1);
    pin_devices(devices_, +1);
  }
  Napi::Promise promise() { return promise_.Value().As<Napi::Promise>(); }
  void Execute() override {
    try {
      work_.run();
    } catch (const std::exception& e) {
      error_ = e.what();
    } catch (...) {
      error_ = "unknown native error";
    }
  }
  // Replaces AsyncWorker's OnOK/OnError path. When a worker_thread is terminated with this op in
  // flight, Node drains the pending work while tearing the worker's env down: JS can no longer run,
  // so settling the promise (or building the TunekitError) fails, node-addon-api throws a C++
  // exception out of a C callback, and std::terminate aborted the whole process. Nobody can await
  // the promise any more then, so the failure is swallowed; the pins are released either way.
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    pin_allocations(data_, -1);
    pin_devices(devices_, -1);
    if (status != napi_cancelled) {
      try {
        Napi::HandleScope scope(env);
        if (error_.empty()) resolve_.Call({work_.result ? work_.result(env) : env.Undefined()});
        else reject_.Call({make_error(env, error_).Value()});
      } catch (...) {
        napi_value ignored;  // leave no exception pending on a dying env
        napi_get_and_clear_last_exception(env, &ignored);
      }
    }
    Destroy();
  }

 private:
  Napi::ObjectReference promise_;
  Napi::FunctionReference resolve_, reject_;
  Work work_;
  std::string error_;
  std::vector<void*> data_;
  std::vector<std::shared_ptr<DeviceAlloc>> devices_;
  std::vector<Napi::ObjectReference> refs_;
};

Napi::Value call(const Napi::CallbackInfo& info, const char* name, Parser parse, bool async) {
  Napi::Env env = info.Env();
  Work w;
  std::vector<Napi::Value> pinned;
  try {
    Args a(info, name);
    w = parse(a);
    pinned = a.pinned();
  } catch (const ArgError& e) {
    if (!async) throw_error(env, e.message);
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(make_error(env, e.message).Value());
    return d.Promise();
  }
  if (async) {
    auto* op = new AsyncOp(env, std::move(w), std::move(pinned));
    Napi::Promise p = op->promise();
    op->Queue();
    return p;
  }
  try {
    w.run();
  } catch (const std::exception& e) {
    throw_error(env, std::string(name) + ": " + e.what());
  }
  return w.result ? w.result(env) : env.Undefined();
}
}  // namespace

void define(Napi::Env env, Napi::Object exports, const char* name, Parser parse) {
  exports.Set(name, Napi::Function::New(env, [name, parse](const Napi::CallbackInfo& info) { return call(info, name, parse, false); }, name));
  std::string an = std::string(name) + "Async";
  exports.Set(an, Napi::Function::New(env, [name, parse](const Napi::CallbackInfo& info) { return call(info, name, parse, true); }, an));
}

void define_sync(Napi::Env env, Napi::Object exports, const char* name, Parser parse) {
  exports.Set(name, Napi::Function::New(env, [name, parse](const Napi::CallbackInfo& info) { return call(info, name, parse, false); }, name));
}

}  // namespace binding
}  // namespace tk
