// The library's C entry points (tunekit/backend.h): device discovery (tk_cuda_init), the op table and
// tk_cuda_run, memory, and the process-wide pieces every op shares (lock, workspace, error text).
// Op functions throw std::runtime_error on a CUDA error; every entry point here catches it and returns
// TK_ERROR with the message, so no C++ exception crosses the dlopen boundary.
#include <cstdarg>
#include <cstdio>
#include <atomic>
#include <cstring>
#include <unordered_map>

#include "common.cuh"
#include "tunekit/backend.h"

// The ops this library has a kernel for, each defined in one of cuda/*.cu with the signature TK_OPS
// gives it. An op of TK_OPS missing here has an empty slot: tk_cuda_supports says 0 and tk_cuda_run
// answers "op <name> is not supported on cuda". native/cuda_check.cc compares each listed op with the CPU.
#define TK_CUDA_OPS(X)    \
  X(gemm)                 \
  X(attention_forward)    \
  X(attention_backward)   \
  X(layernorm_forward)    \
  X(layernorm_backward)   \
  X(gelu_forward)         \
  X(gelu_backward)        \
  X(bias_add)             \
  X(bias_backward)        \
  X(add)                  \
  X(scale)                \
  X(dropout)              \
  X(cross_entropy)        \
  X(embedding_forward)    \
  X(embedding_backward)   \
  X(adamw)                \
  X(sum_squares)          \
  X(lora_forward)         \
  X(lora_backward)        \
  X(unary_forward)        \
  X(unary_backward)       \
  X(copy_strided)         \
  X(masked_mean_forward)  \
  X(masked_mean_backward) \
  X(cosine_forward)       \
  X(cosine_backward)      \
  X(l2norm_forward)       \
  X(l2norm_backward)      \
  X(mse_forward)          \
  X(mse_backward)         \
  X(bce_forward)          \
  X(bce_backward)         \
  X(dot_forward)          \
  X(axpby)                \
  X(fill)                 \
  X(convert)              \
  X(rmsnorm_forward)      \
  X(rmsnorm_backward)     \
  X(rope_forward)         \
  X(rope_backward)        \
  X(swiglu_forward)       \
  X(swiglu_backward)      \
  X(attention_decode)

namespace tk {
namespace cuda {

#define TK_DECLARE(name, Args) void name(Args&);
TK_OPS(TK_DECLARE)
#undef TK_DECLARE
double peak_gflops(double);

void fail(const char* op, cudaError_t e) {
  throw std::runtime_error(std::string("cuda ") + op + ": " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")");
}

std::recursive_mutex& op_mutex() {
  static std::recursive_mutex m;
  return m;
}

namespace {

struct Buffer { void* ptr = nullptr; size_t bytes = 0; };
Buffer g_workspace[kSlotCount];
int g_sm_count = 0;

// Independent FMA chains, enough to saturate the pipes; the result is stored so nothing is elided.
__global__ void fma_kernel(float* out, int iters, float x) {
  float a0 = x + threadIdx.x, a1 = a0 + 1.f, a2 = a0 + 2.f, a3 = a0 + 3.f, a4 = a0 + 4.f, a5 = a0 + 5.f, a6 = a0 + 6.f,
        a7 = a0 + 7.f;
  const float m = 0.999999f, c = 1e-7f;
  for (int i = 0; i < iters; i++) {
#pragma unroll
    for (int u = 0; u < 16; u++) {
      a0 = fmaf(a0, m, c); a1 = fmaf(a1, m, c); a2 = fmaf(a2, m, c); a3 = fmaf(a3, m, c);
      a4 = fmaf(a4, m, c); a5 = fmaf(a5, m, c); a6 = fmaf(a6, m, c); a7 = fmaf(a7, m, c);
    }
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

__global__ void probe_kernel(int* out) { *out = 42; }

}  // namespace

void* workspace(Slot slot, size_t bytes) {
  Buffer& b = g_workspace[slot];
  if (bytes <= b.bytes) return b.ptr;
  if (b.ptr) {
    check("workspace", cudaDeviceSynchronize());  // earlier ops may still read the old buffer
    check("workspace", cudaFree(b.ptr));
    b = Buffer{};
  }
  size_t want = bytes < (size_t(1) << 20) ? (size_t(1) << 20) : bytes + bytes / 4;  // grow with headroom
  check("workspace", cudaMalloc(&b.ptr, want));
  b.bytes = want;
  return b.ptr;
}

int sm_count() { return g_sm_count > 0 ? g_sm_count : 1; }

// Sustained FMA rate of the whole device: a fixed launch timed with events, repeated for `seconds`.
double peak_gflops(double seconds) {
  const int blocks = sm_count() * 8, threads = 256, iters = 4096;
  float* out = workspace_of<float>(kSlotReduce, size_t(blocks) * threads);
  cudaEvent_t t0, t1;
  check("peak_gflops", cudaEventCreate(&t0));
  check("peak_gflops", cudaEventCreate(&t1));
  fma_kernel<<<blocks, threads>>>(out, iters, 1.f);  // warm-up: clocks up, module loaded
  check_launch("peak_gflops");
  double flops = 0, ms_total = 0;
  while (ms_total < seconds * 1e3) {
    check("peak_gflops", cudaEventRecord(t0));
    fma_kernel<<<blocks, threads>>>(out, iters, 1.f);
    check_launch("peak_gflops");
    check("peak_gflops", cudaEventRecord(t1));
    check("peak_gflops", cudaEventSynchronize(t1));
    float ms = 0;
    check("peak_gflops", cudaEventElapsedTime(&ms, t0, t1));
    ms_total += ms;
    flops += 2.0 * 8 * 16 * double(iters) * blocks * threads;
  }
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  return flops / (ms_total * 1e-3) / 1e9;
}

}  // namespace cuda
}  // namespace tk

namespace {

void put(char* err, size_t errlen, const char* fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

int report(const char* what, cudaError_t e, char* err, size_t errlen) {
  if (e == cudaSuccess) return TK_OK;
  put(err, errlen, "cuda %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
  return TK_ERROR;
}

// Device work under the op lock; an exception (a CUDA error, a bad_alloc) becomes TK_ERROR + message.
template <class F>
int guarded(const char* what, char* err, size_t errlen, F f) {
  try {
    tk::cuda::OpLock lock(tk::cuda::op_mutex());
    f();
    return TK_OK;
  } catch (const std::exception& e) {
    put(err, errlen, "%s", e.what());
  } catch (...) {
    put(err, errlen, "cuda %s: unknown error", what);
  }
  return TK_ERROR;
}

// The op table, indexed by op id: a slot per op of TK_CUDA_OPS, null for the others.
using Slot = void (*)(void* args);
struct Table {
  Slot ops[TK_OP_COUNT] = {};
  Table() {
#define TK_CUDA_SLOT(name) \
  ops[TK_OP_##name] = [](void* a) { tk::cuda::name(*static_cast<tk::OpArgs<TK_OP_##name>::type*>(a)); };
    TK_CUDA_OPS(TK_CUDA_SLOT)
#undef TK_CUDA_SLOT
  }
};
const Table kTable;

std::once_flag g_init_once;
bool g_ready = false;
char g_init_error[512] = "";

void init_device() {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    put(g_init_error, sizeof g_init_error, "no usable CUDA device: cudaGetDeviceCount failed: %s (%s)%s",
        cudaGetErrorString(e), cudaGetErrorName(e),
        e == cudaErrorInsufficientDriver ? "; is the NVIDIA driver (libcuda.so.1) installed and recent enough?" : "");
    return;
  }
  if (count == 0) {
    put(g_init_error, sizeof g_init_error, "no usable CUDA device: the driver reports 0 devices");
    return;
  }
  int dev = 0, major = 0, minor = 0, sms = 0;
  if (report("cudaGetDevice", cudaGetDevice(&dev), g_init_error, sizeof g_init_error) ||
      report("cudaDeviceGetAttribute", cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev), g_init_error, sizeof g_init_error) ||
      report("cudaDeviceGetAttribute", cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev), g_init_error, sizeof g_init_error) ||
      report("cudaDeviceGetAttribute", cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), g_init_error, sizeof g_init_error))
    return;
  if (major < 8) {
    put(g_init_error, sizeof g_init_error,
        "no usable CUDA device: device %d has compute capability %d.%d; the CUDA backend is built for 8.0 or newer (Ampere+)",
        dev, major, minor);
    return;
  }
  // One launch proves the library holds code this device can run (and creates the context now).
  int* probe = nullptr;
  int value = 0;
  if (report("probe", cudaMalloc(&probe, sizeof(int)), g_init_error, sizeof g_init_error)) return;
  tk::cuda::probe_kernel<<<1, 1>>>(probe);
  e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaMemcpy(&value, probe, sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(probe);
  if (e != cudaSuccess || value != 42) {
    put(g_init_error, sizeof g_init_error, "no usable CUDA device: a test kernel failed on sm_%d%d: %s", major, minor,
        e != cudaSuccess ? cudaGetErrorString(e) : "wrong result");
    return;
  }
  tk::cuda::g_sm_count = sms;
  g_ready = true;
}

}  // namespace

TK_CUDA_API uint32_t tk_cuda_abi(void) { return TK_CUDA_ABI; }

TK_CUDA_API int tk_cuda_init(char* err, size_t errlen) {
  std::call_once(g_init_once, init_device);
  if (g_ready) return TK_OK;
  put(err, errlen, "%s", g_init_error);
  return TK_ERROR;
}

TK_CUDA_API int tk_cuda_device_name(char* out, size_t outlen) {
  if (!g_ready) return TK_ERROR;
  int dev = 0;
  cudaDeviceProp p;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) return TK_ERROR;
  put(out, outlen, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor, double(p.totalGlobalMem) / (1u << 30));
  return TK_OK;
}

TK_CUDA_API int tk_cuda_supports(int op) { return op >= 0 && op < TK_OP_COUNT && kTable.ops[op] != nullptr; }

TK_CUDA_API int tk_cuda_run(int op, void* args, char* err, size_t errlen) {
  if (!tk_cuda_supports(op)) return tk_unsupported(op, "cuda", err, errlen);
  if (!g_ready) {
    put(err, errlen, "cuda %s: no device (tk_cuda_init has not succeeded)", tk_op_name(op));
    return TK_ERROR;
  }
  return guarded(tk_op_name(op), err, errlen, [&] { kTable.ops[op](args); });
}

// Device memory the library handed out (by pointer), and the bytes that crossed each way.
namespace {
std::mutex g_mem_mutex;
std::unordered_map<void*, size_t> g_live;
uint64_t g_in_use = 0;
std::atomic<uint64_t> g_h2d{0}, g_d2h{0};
}  // namespace

void tk::cuda::count_transfer(int kind, size_t bytes) {
  if (kind == TK_COPY_H2D) g_h2d += bytes;
  else if (kind == TK_COPY_D2H) g_d2h += bytes;
}

TK_CUDA_API int tk_cuda_alloc(void** ptr, size_t bytes, char* err, size_t errlen) {
  *ptr = nullptr;
  const size_t n = bytes == 0 ? 1 : bytes;
  cudaError_t e = cudaMalloc(ptr, n);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear it: the process keeps working after an out-of-memory
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    std::lock_guard<std::mutex> lk(g_mem_mutex);
    put(err, errlen, "cuda alloc: out of device memory: %zu bytes requested, %llu in use by tunekit, %zu free of %zu",
        n, static_cast<unsigned long long>(g_in_use), free, total);
    return TK_ERROR;
  }
  if (report("alloc", e, err, errlen) != TK_OK) return TK_ERROR;
  std::lock_guard<std::mutex> lk(g_mem_mutex);
  g_live[*ptr] = n;
  g_in_use += n;
  return TK_OK;
}

TK_CUDA_API int tk_cuda_free(void* ptr, char* err, size_t errlen) {
  {
    std::lock_guard<std::mutex> lk(g_mem_mutex);
    auto it = g_live.find(ptr);
    if (it != g_live.end()) {
      g_in_use -= it->second;
      g_live.erase(it);
    }
  }
  return report("free", cudaFree(ptr), err, errlen);
}

TK_CUDA_API int tk_cuda_memory(uint64_t* in_use, uint64_t* total, uint64_t* h2d, uint64_t* d2h) {
  size_t free = 0, all = 0;
  cudaMemGetInfo(&free, &all);
  std::lock_guard<std::mutex> lk(g_mem_mutex);
  *in_use = g_in_use;
  *total = all;
  *h2d = g_h2d.load();
  *d2h = g_d2h.load();
  return TK_OK;
}

// Host → device copies go through pinned staging slots and return at once (the batch of a step is a
// few small copies): the caller's memory is free to change, the copy runs in stream order before the
// kernels that read it. A slot is reused only after the copy that last read it has finished (its
// event). Copies larger than a slot (weights at load time) are synchronous from pageable memory.
namespace {
constexpr int kSlots = 4;
constexpr size_t kSlotBytes = size_t(4) << 20;
struct Staging {
  void* host[kSlots] = {};
  cudaEvent_t done[kSlots] = {};
  int next = 0;
  bool ready = false;
};
Staging g_staging;

// Copies bytes from src into a pinned slot and queues the device copy; false when it does not fit.
bool staged_h2d(void* dst, const void* src, size_t bytes) {
  if (bytes > kSlotBytes) return false;
  Staging& s = g_staging;
  if (!s.ready) {
    for (int i = 0; i < kSlots; i++) {
      tk::cuda::check("copy", cudaHostAlloc(&s.host[i], kSlotBytes, cudaHostAllocDefault));
      tk::cuda::check("copy", cudaEventCreate(&s.done[i]));
      tk::cuda::check("copy", cudaEventRecord(s.done[i]));
    }
    s.ready = true;
  }
  const int i = s.next;
  s.next = (s.next + 1) % kSlots;
  tk::cuda::check("copy", cudaEventSynchronize(s.done[i]));  // the last copy out of this slot is done
  std::memcpy(s.host[i], src, bytes);
  tk::cuda::check("copy", cudaMemcpyAsync(dst, s.host[i], bytes, cudaMemcpyHostToDevice));
  tk::cuda::check("copy", cudaEventRecord(s.done[i]));
  return true;
}
}  // namespace

TK_CUDA_API int tk_cuda_copy(void* dst, const void* src, size_t bytes, int kind, char* err, size_t errlen) {
  cudaMemcpyKind k;
  switch (kind) {
    case TK_COPY_H2D: k = cudaMemcpyHostToDevice; break;
    case TK_COPY_D2H: k = cudaMemcpyDeviceToHost; break;
    case TK_COPY_D2D: k = cudaMemcpyDeviceToDevice; break;
    default:
      put(err, errlen, "cuda copy: kind %d is none of TK_COPY_H2D (0), TK_COPY_D2H (1), TK_COPY_D2D (2)", kind);
      return TK_ERROR;
  }
  tk::cuda::count_transfer(kind, bytes);
  if (kind == TK_COPY_H2D)
    return guarded("copy", err, errlen, [&] {
      if (!staged_h2d(dst, src, bytes)) tk::cuda::check("copy", cudaMemcpy(dst, src, bytes, k));
    });
  return report("copy", cudaMemcpy(dst, src, bytes, k), err, errlen);
}

TK_CUDA_API int tk_cuda_synchronize(char* err, size_t errlen) {
  return report("synchronize", cudaDeviceSynchronize(), err, errlen);
}

namespace tk {
namespace cuda {
void gemm_half(const tk_cuda_gemm_half_args& a);
void convert_f32(int64_t n, const float* src, void* dst, int dtype);
}  // namespace cuda
}  // namespace tk

TK_CUDA_API int tk_cuda_gemm_half(const struct tk_cuda_gemm_half_args* args, char* err, size_t errlen) {
  if (args->dtype != TK_CUDA_F16 && args->dtype != TK_CUDA_BF16) {
    put(err, errlen, "cuda gemm_half: dtype %d is neither TK_CUDA_F16 (0) nor TK_CUDA_BF16 (1)", args->dtype);
    return TK_ERROR;
  }
  return guarded("gemm_half", err, errlen, [&] { tk::cuda::gemm_half(*args); });
}

TK_CUDA_API int tk_cuda_convert_f32(int64_t n, const float* src, void* dst, int dtype, char* err, size_t errlen) {
  if (dtype != TK_CUDA_F16 && dtype != TK_CUDA_BF16) {
    put(err, errlen, "cuda convert_f32: dtype %d is neither TK_CUDA_F16 (0) nor TK_CUDA_BF16 (1)", dtype);
    return TK_ERROR;
  }
  return guarded("convert_f32", err, errlen, [&] { tk::cuda::convert_f32(n, src, dst, dtype); });
}

TK_CUDA_API int tk_cuda_peak_gflops(double seconds, double* gflops, char* err, size_t errlen) {
  *gflops = 0;
  return guarded("peak_gflops", err, errlen, [&] { *gflops = tk::cuda::peak_gflops(seconds); });
}
