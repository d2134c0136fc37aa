// Device buffers: memory a non-CPU backend owns (a GPU's), handed to JS as an opaque object
// { device, dtype, length } that only ops and copies accept. A view shares its allocation. free()
// releases the memory at once; later use of the buffer or any view of it is an error, never a crash.
#pragma once
#include <napi.h>

#include <memory>
#include <vector>

#include "tunekit/backend.h"

namespace tk {
namespace binding {

struct DeviceAlloc {
  const tk_backend* backend = nullptr;
  void* ptr = nullptr;  // null once freed
  size_t bytes = 0;
  int busy = 0;  // async ops in flight that use it
  ~DeviceAlloc();
  void release();
};

struct DeviceRef {
  std::shared_ptr<DeviceAlloc> alloc;
  size_t offset = 0;  // bytes
  int64_t length = 0;
  int dtype = TK_F32;
  bool view = false;
  void* data() const { return static_cast<char*>(alloc->ptr) + offset; }
};

// A new JS device buffer over ref.
Napi::Object wrap_device(Napi::Env env, DeviceRef ref);
// The device buffer behind v, or null when v is not one.
DeviceRef* unwrap_device(Napi::Env env, Napi::Value v);
// The allocations of the device buffers among values (an async op holds them while it runs).
std::vector<std::shared_ptr<DeviceAlloc>> device_allocs(Napi::Env env, const std::vector<Napi::Value>& values);
// busy += delta on each (free() refuses a busy allocation).
void pin_devices(const std::vector<std::shared_ptr<DeviceAlloc>>& allocs, int delta);
// Live device memory, for memoryStats().
int64_t device_bytes();
int64_t device_buffers();

}  // namespace binding
}  // namespace tk
