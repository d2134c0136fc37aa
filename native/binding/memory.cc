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

Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw_error(env, "alloc: expected a number of floats");
  double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 0) || n != static_cast<double>(static_cast<int64_t>(n)) || n > 4e9)
    throw_error(env, "alloc: number of floats must be an integer in 0..4e9, got " + std::to_string(n));
  int64_t bytes = static_cast<int64_t>(n) * 4;
  // malloc + manual alignment: glibc's memalign fragments badly under alloc/free churn and never
  // reuses the freed blocks (measured: RSS grew by every freed buffer).
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
  return Napi::Float32Array::New(env, static_cast<size_t>(n), ab, 0);
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw_error(env, "free: expected a Float32Array from alloc()");
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
  return o;
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
}

}  // namespace binding
}  // namespace tk
