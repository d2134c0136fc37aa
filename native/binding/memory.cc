// Native buffers: 64-byte aligned float memory handed to JS as an external Float32Array.
// free() releases it at once (the array is detached, so a later use is an error, not a crash);
// otherwise the GC releases it. Buffers in use by async work cannot be freed.
#include <atomic>
#include <cstring>
#include <mutex>
#include <cstdlib>

#include <sys/mman.h>
#include <unordered_map>

#include "common.h"
#include "device_buffer.h"
#include "../cuda_backend.h"

namespace tk {
namespace binding {
namespace {

struct Allocation {
  void* ptr;   // aligned data pointer handed to JS
  void* base;  // what malloc or mmap returned
  int64_t bytes;
  int busy;
  size_t mapped;  // > 0: mmap'd region of this size
};

// Blocks of 2 MB and more are mapped directly with transparent huge pages: a fresh 4 KB page costs a
// fault (measured ~2.5 µs here, so a 12 MB activation took 7 ms to touch); a 2 MB page costs one.
// The kernel hands them out zeroed, so no memset either.
constexpr size_t kHuge = size_t(2) << 20;

void* map_huge(size_t bytes, size_t* mapped, void** base) {
  size_t len = (bytes + kHuge - 1) / kHuge * kHuge + kHuge;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto a = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(uintptr_t(kHuge) - 1);
  madvise(reinterpret_cast<void*>(a), len - (a - reinterpret_cast<uintptr_t>(p)), MADV_HUGEPAGE);
  *mapped = len;
  *base = p;
  return reinterpret_cast<void*>(a);
}

std::mutex g_mutex;
std::unordered_map<void*, Allocation*> g_live;  // by data pointer
std::atomic<int64_t> g_bytes{0}, g_count{0};

void release(Allocation* a) {  // caller holds g_mutex
  if (!a->ptr) return;
  g_live.erase(a->ptr);
  if (a->mapped) munmap(a->base, a->mapped);
  else std::free(a->base);
  g_bytes -= a->bytes;
  g_count -= 1;
  a->ptr = nullptr;
}

void finalize(napi_env, void*, void* hint) {
  auto* a = static_cast<Allocation*>(hint);
  std::lock_guard<std::mutex> lk(g_mutex);
  release(a);
  delete a;
}

const char* const kDtypes[] = {"f32", "bf16", "f16", "i32", "u8"};

// The dtype named by opts.dtype (default f32), or a TunekitError listing the choices.
int dtype_arg(Napi::Env env, const char* fn, Napi::Object opts) {
  Napi::Value v = opts.Get("dtype");
  if (v.IsUndefined() || v.IsNull()) return TK_F32;
  const std::string d = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  for (int i = 0; i < 5; i++)
    if (d == kDtypes[i]) return i;
  throw_error(env, std::string(fn) + ": dtype must be one of f32, bf16, f16, i32, u8, got '" + d + "'");
}

// The backend of opts.device (default the CPU): null for "cpu".
const tk_backend* device_arg(Napi::Env env, const char* fn, Napi::Object opts) {
  Napi::Value v = opts.Get("device");
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  const std::string d = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (d == "cpu") return nullptr;
  if (d != "cuda") throw_error(env, std::string(fn) + ": device must be 'cpu' or 'cuda', got '" + d + "'");
  std::string reason;
  const CudaBackend* be = cuda_backend(&reason);
  if (!be) throw_error(env, std::string(fn) + ": no CUDA device: " + reason);
  return &be->backend;
}

// Host memory: malloc + manual alignment (glibc's memalign fragments badly under alloc/free churn and
// never reuses the freed blocks: measured, RSS grew by every freed buffer), or huge pages from 2 MB.
Napi::Value host_alloc(Napi::Env env, int64_t n, int dtype) {
  const int64_t bytes = n * tk_dtype_bytes(dtype);
  void* base = nullptr;
  void* p = nullptr;
  size_t mapped = 0;
  if (static_cast<size_t>(bytes) >= kHuge) {
    p = map_huge(static_cast<size_t>(bytes), &mapped, &base);
  } else if ((base = std::malloc(static_cast<size_t>(bytes) + 64))) {
    p = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(base) + 64) & ~uintptr_t(63));
    std::memset(p, 0, bytes);
  }
  if (!p) throw_error(env, "alloc: out of memory allocating " + std::to_string(bytes) + " bytes");
  auto* a = new Allocation{p, base, bytes, 0, mapped};
  {
    std::lock_guard<std::mutex> lk(g_mutex);
    g_live[p] = a;
  }
  g_bytes += bytes;
  g_count += 1;
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, p, static_cast<size_t>(bytes), finalize, a);
  const size_t len = static_cast<size_t>(n);
  switch (dtype) {
    case TK_BF16: case TK_F16: return Napi::Uint16Array::New(env, len, ab, 0);
    case TK_I32: return Napi::Int32Array::New(env, len, ab, 0);
    case TK_U8: return Napi::Uint8Array::New(env, len, ab, 0);
    default: return Napi::Float32Array::New(env, len, ab, 0);
  }
}

// alloc(n, { device?: "cpu" | "cuda", dtype?: "f32" | "bf16" | "f16" | "i32" | "u8" }): zeroed memory
// of n elements; on the CPU a typed array (Float32Array, Uint16Array for bf16/f16, Int32Array,
// Uint8Array), 64-byte aligned; on a device an opaque device buffer.
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw_error(env, "alloc: expected a number of elements");
  double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 0) || n != static_cast<double>(static_cast<int64_t>(n)) || n > 4e9)
    throw_error(env, "alloc: number of elements must be an integer in 0..4e9, got " + std::to_string(n));
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  const int dtype = dtype_arg(env, "alloc", opts);
  const tk_backend* be = device_arg(env, "alloc", opts);
  if (!be) return host_alloc(env, static_cast<int64_t>(n), dtype);
  const size_t bytes = static_cast<size_t>(n) * tk_dtype_bytes(dtype);
  auto alloc = std::make_shared<DeviceAlloc>();
  alloc->backend = be;
  alloc->bytes = bytes;
  char err[512];
  if (be->alloc(&alloc->ptr, bytes, err, sizeof err) != TK_OK) {
    alloc->ptr = nullptr;
    throw_error(env, std::string("alloc: ") + err);
  }
  // Zeroed like host memory: a fill op on the device.
  FillArgs f;
  f.n = static_cast<int64_t>(bytes / 4);
  f.x = alloc->ptr;
  f.elem_bytes = 4;
  if (bytes % 4) f.n = static_cast<int64_t>(bytes), f.elem_bytes = 1;
  if (bytes && be->run(TK_OP_fill, &f, err, sizeof err) != TK_OK) throw_error(env, std::string("alloc: ") + err);
  DeviceRef ref;
  ref.alloc = alloc;
  ref.length = static_cast<int64_t>(n);
  ref.dtype = dtype;
  return wrap_device(env, std::move(ref));
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() >= 1)
    if (DeviceRef* r = unwrap_device(env, info[0])) {
      if (r->view) throw_error(env, "free: this device buffer is a view; free the buffer it was made from");
      if (r->alloc->busy > 0) throw_error(env, "free: buffer is in use by an asynchronous operation; await it first");
      r->alloc->release();
      return env.Undefined();
    }
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw_error(env, "free: expected a buffer from alloc()");
  Napi::TypedArray t = info[0].As<Napi::TypedArray>();
  Napi::ArrayBuffer ab = t.ArrayBuffer();
  void* p = ab.Data();
  if (!p || ab.IsDetached()) return env.Undefined();  // already freed: free is idempotent
  {
    std::lock_guard<std::mutex> lk(g_mutex);
    auto it = g_live.find(p);
    if (it == g_live.end()) throw_error(env, "free: this array was not allocated by tunekit's alloc()");
    if (it->second->busy > 0) throw_error(env, "free: buffer is in use by an asynchronous operation; await it first");
    release(it->second);  // the Allocation itself is deleted by the finalizer
  }
  ab.Detach();
  return env.Undefined();
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(g_bytes.load())));
  o.Set("buffers", Napi::Number::New(env, static_cast<double>(g_count.load())));
  o.Set("deviceBytes", Napi::Number::New(env, static_cast<double>(device_bytes())));
  o.Set("deviceBuffers", Napi::Number::New(env, static_cast<double>(device_buffers())));
  return o;
}

// A typed array's or device buffer's identity for copies: pointer, elements, dtype, backend.
struct Raw {
  void* p = nullptr;
  int64_t length = 0;
  int dtype = TK_F32;
  const tk_backend* be = nullptr;  // null: host memory
  DeviceRef* ref = nullptr;
};

Raw raw(Napi::Env env, const char* fn, const char* name, Napi::Value v) {
  Raw r;
  if (DeviceRef* d = unwrap_device(env, v)) {
    if (!d->alloc->ptr) throw_error(env, std::string(fn) + ": argument '" + name + "' is a device buffer that was freed");
    r.p = d->data();
    r.length = d->length;
    r.dtype = d->dtype;
    r.be = d->alloc->backend;
    r.ref = d;
    return r;
  }
  if (!v.IsTypedArray()) throw_error(env, std::string(fn) + ": argument '" + name + "' must be a typed array or a device buffer");
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  switch (t.TypedArrayType()) {
    case napi_float32_array: r.dtype = TK_F32; break;
    case napi_uint16_array: r.dtype = TK_BF16; break;
    case napi_int32_array: r.dtype = TK_I32; break;
    case napi_uint8_array: r.dtype = TK_U8; break;
    default: throw_error(env, std::string(fn) + ": argument '" + name + "' must be a Float32Array, Uint16Array (bf16), Int32Array or Uint8Array");
  }
  r.p = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  r.length = static_cast<int64_t>(t.ElementLength());
  return r;
}

// view(buffer, offset, length): elements [offset, offset + length) sharing the buffer's memory.
Napi::Value View(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[1].IsNumber() || !info[2].IsNumber()) throw_error(env, "view: expected (buffer, offset, length)");
  Raw r = raw(env, "view", "buffer", info[0]);
  const double off = info[1].As<Napi::Number>().DoubleValue(), len = info[2].As<Napi::Number>().DoubleValue();
  if (!(off >= 0 && len >= 0 && off == static_cast<int64_t>(off) && len == static_cast<int64_t>(len) && off + len <= static_cast<double>(r.length)))
    throw_error(env, "view: [" + std::to_string(off) + ", " + std::to_string(off + len) + ") is outside a buffer of " + std::to_string(r.length) + " elements");
  if (!r.ref) return info[0].As<Napi::TypedArray>().Get("subarray").As<Napi::Function>().Call(info[0], {info[1], Napi::Number::New(env, off + len)});
  DeviceRef v = *r.ref;
  v.offset += static_cast<size_t>(off) * tk_dtype_bytes(r.dtype);
  v.length = static_cast<int64_t>(len);
  v.view = true;
  return wrap_device(env, std::move(v));
}

bool is_float(int d) { return d == TK_F32 || d == TK_BF16 || d == TK_F16; }

// copy({ src, dst }): dst = src, same length. Between devices (host ↔ device, device ↔ device) the
// dtypes must match; on one device float dtypes convert (f32 ↔ bf16 / f16) with the convert op.
Napi::Value Copy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) throw_error(env, "copy: expected { src, dst }");
  Napi::Object o = info[0].As<Napi::Object>();
  Raw src = raw(env, "copy", "src", o.Get("src")), dst = raw(env, "copy", "dst", o.Get("dst"));
  if (src.length != dst.length)
    throw_error(env, "copy: 'src' has " + std::to_string(src.length) + " elements, 'dst' " + std::to_string(dst.length) + "; expected equal lengths");
  char err[512];
  if (src.dtype != dst.dtype) {
    if (src.be != dst.be) throw_error(env, std::string("copy: between devices the dtypes must match (") + kDtypes[src.dtype] + " → " + kDtypes[dst.dtype] + ")");
    if (!is_float(src.dtype) || !is_float(dst.dtype)) throw_error(env, std::string("copy: cannot convert ") + kDtypes[src.dtype] + " to " + kDtypes[dst.dtype]);
    ConvertArgs c;
    c.n = src.length;
    c.src = src.p; c.src_dtype = src.dtype;
    c.dst = dst.p; c.dst_dtype = dst.dtype;
    const tk_backend& be = src.be ? *src.be : cpu_backend();
    if (be.run(TK_OP_convert, &c, err, sizeof err) != TK_OK) throw_error(env, std::string("copy: ") + err);
    return env.Undefined();
  }
  const size_t bytes = static_cast<size_t>(src.length) * tk_dtype_bytes(src.dtype);
  if (!bytes) return env.Undefined();
  if (src.be && dst.be && src.be != dst.be) throw_error(env, "copy: between two different devices; copy through the host");
  const tk_backend& be = src.be ? *src.be : dst.be ? *dst.be : cpu_backend();
  const int kind = !src.be && dst.be ? TK_COPY_H2D : src.be && !dst.be ? TK_COPY_D2H : TK_COPY_D2D;
  if (be.copy(dst.p, src.p, bytes, kind, err, sizeof err) != TK_OK) throw_error(env, std::string("copy: ") + err);
  return env.Undefined();
}

// fill({ x, bits }): every element of x set to `bits` (the value encoded in x's dtype by the caller).
Napi::Value Fill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) throw_error(env, "fill: expected { x, bits }");
  Napi::Object o = info[0].As<Napi::Object>();
  Raw x = raw(env, "fill", "x", o.Get("x"));
  Napi::Value b = o.Get("bits");
  if (!b.IsNumber()) throw_error(env, "fill: argument 'bits' must be a number (the value's bit pattern)");
  FillArgs f;
  f.n = x.length;
  f.x = x.p;
  f.elem_bytes = tk_dtype_bytes(x.dtype);
  f.bits = b.As<Napi::Number>().Uint32Value();
  char err[512];
  const tk_backend& be = x.be ? *x.be : cpu_backend();
  if (f.n && be.run(TK_OP_fill, &f, err, sizeof err) != TK_OK) throw_error(env, std::string("fill: ") + err);
  return env.Undefined();
}

}  // namespace

void pin_allocations(const std::vector<void*>& data, int delta) {
  std::lock_guard<std::mutex> lk(g_mutex);
  for (void* p : data) {
    auto it = g_live.find(p);
    if (it != g_live.end()) it->second->busy += delta;
  }
}

void init_memory(Napi::Env env, Napi::Object exports) {
  exports.Set("alloc", Napi::Function::New(env, Alloc, "alloc"));
  exports.Set("free", Napi::Function::New(env, Free, "free"));
  exports.Set("memoryStats", Napi::Function::New(env, Stats, "memoryStats"));
  exports.Set("view", Napi::Function::New(env, View, "view"));
  exports.Set("copy", Napi::Function::New(env, Copy, "copy"));
  exports.Set("fill", Napi::Function::New(env, Fill, "fill"));
}

}  // namespace binding
}  // namespace tk
