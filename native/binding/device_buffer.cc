#include "device_buffer.h"

#include <atomic>
#include <mutex>

#include "../backend.h"

namespace tk {
namespace binding {
namespace {

// Marks the objects this file made, so no other JS object passes for a device buffer.
const napi_type_tag kTag = {0x746b6465766275ULL, 0x66666572763131ULL};
std::atomic<int64_t> g_bytes{0}, g_count{0};
std::mutex g_mutex;

}  // namespace

void DeviceAlloc::release() {
  if (!ptr) return;
  char err[256];
  backend->free(ptr, err, sizeof err);  // a failing free has nothing left to recover
  ptr = nullptr;
  g_bytes -= static_cast<int64_t>(bytes);
  g_count -= 1;
}

DeviceAlloc::~DeviceAlloc() { release(); }

Napi::Object wrap_device(Napi::Env env, DeviceRef ref) {
  Napi::Object o = Napi::Object::New(env);
  static const char* names[] = {"f32", "bf16", "f16", "i32", "u8"};
  o.DefineProperties({
      Napi::PropertyDescriptor::Value("device", Napi::String::New(env, ref.alloc->backend->name), napi_enumerable),
      Napi::PropertyDescriptor::Value("dtype", Napi::String::New(env, names[ref.dtype]), napi_enumerable),
      Napi::PropertyDescriptor::Value("length", Napi::Number::New(env, static_cast<double>(ref.length)), napi_enumerable),
  });
  if (!ref.view && ref.offset == 0) {
    g_bytes += static_cast<int64_t>(ref.alloc->bytes);
    g_count += 1;
  }
  auto* p = new DeviceRef(std::move(ref));
  napi_status s = napi_wrap(env, o, p, [](napi_env, void* d, void*) { delete static_cast<DeviceRef*>(d); }, nullptr, nullptr);
  if (s != napi_ok) {
    delete p;
    throw Napi::Error::New(env, "device buffer: napi_wrap failed");
  }
  napi_type_tag_object(env, o, &kTag);
  return o;
}

DeviceRef* unwrap_device(Napi::Env env, Napi::Value v) {
  if (!v.IsObject() || v.IsTypedArray() || v.IsArray()) return nullptr;
  bool tagged = false;
  if (napi_check_object_type_tag(env, v, &kTag, &tagged) != napi_ok || !tagged) return nullptr;
  void* p = nullptr;
  if (napi_unwrap(env, v, &p) != napi_ok) return nullptr;
  return static_cast<DeviceRef*>(p);
}

std::vector<std::shared_ptr<DeviceAlloc>> device_allocs(Napi::Env env, const std::vector<Napi::Value>& values) {
  std::vector<std::shared_ptr<DeviceAlloc>> out;
  for (const Napi::Value& v : values)
    if (DeviceRef* r = unwrap_device(env, v)) out.push_back(r->alloc);
  return out;
}

void pin_devices(const std::vector<std::shared_ptr<DeviceAlloc>>& allocs, int delta) {
  std::lock_guard<std::mutex> lk(g_mutex);
  for (const auto& a : allocs) a->busy += delta;
}

int64_t device_bytes() { return g_bytes.load(); }
int64_t device_buffers() { return g_count.load(); }

}  // namespace binding
}  // namespace tk
