// The library's C entry points: device discovery (tk_cuda_kernels), memory, the kernel table, and the
// process-wide pieces every op shares (lock, workspace, error text).
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "common.cuh"
#include "tk_cuda.h"

namespace tk {
namespace cuda {

void gemm(const GemmArgs&);
void attention_forward(const AttentionArgs&);
void attention_backward(const AttentionBackwardArgs&);
void layernorm_forward(const LayerNormArgs&);
void layernorm_backward(const LayerNormBackwardArgs&);
void gelu_forward(int64_t, const float*, float*, int);
void gelu_backward(int64_t, const float*, const float*, float*, int);
void bias_add(int64_t, int64_t, const float*, const float*, float*);
void bias_backward(int64_t, int64_t, const float*, float*);
void add(int64_t, const float*, const float*, float*);
void cross_entropy(CrossEntropyArgs&);
void embedding_forward(int64_t, int64_t, const int32_t*, const float*, float*);
void embedding_backward(int64_t, int64_t, const int32_t*, const float*, float*, int32_t);
void adamw(const AdamWArgs&);
double sum_squares(int64_t, const float*);
void scale(int64_t, float*, float);
void lora_forward(const LoraArgs&);
void lora_backward(const LoraBackwardArgs&);
void dropout(int64_t, const float*, float*, float, uint64_t, uint64_t);
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
  OpLock lock(op_mutex());
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
  if (e == cudaSuccess) return 0;
  put(err, errlen, "cuda %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
  return -1;
}

// Kernel functions throw; the C entry points turn that into a message.
template <class F>
int guarded(const char* what, char* err, size_t errlen, F f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    put(err, errlen, "%s", e.what());
  } catch (...) {
    put(err, errlen, "cuda %s: unknown error", what);
  }
  return -1;
}

const tk::Kernels kTable = {
    "cuda", tk::cuda::gemm, tk::cuda::attention_forward, tk::cuda::attention_backward, tk::cuda::layernorm_forward,
    tk::cuda::layernorm_backward, tk::cuda::gelu_forward, tk::cuda::gelu_backward, tk::cuda::bias_add,
    tk::cuda::bias_backward, tk::cuda::add, tk::cuda::cross_entropy, tk::cuda::embedding_forward,
    tk::cuda::embedding_backward, tk::cuda::adamw, tk::cuda::sum_squares, tk::cuda::scale, tk::cuda::lora_forward,
    tk::cuda::lora_backward, tk::cuda::dropout, tk::cuda::peak_gflops,
};

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

TK_CUDA_API const tk::Kernels* tk_cuda_kernels(char* err, size_t errlen) {
  std::call_once(g_init_once, init_device);
  if (!g_ready) {
    put(err, errlen, "%s", g_init_error);
    return nullptr;
  }
  return &kTable;
}

TK_CUDA_API int tk_cuda_device_name(char* out, size_t outlen) {
  if (!g_ready) return -1;
  int dev = 0;
  cudaDeviceProp p;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) return -1;
  put(out, outlen, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor, double(p.totalGlobalMem) / (1u << 30));
  return 0;
}

TK_CUDA_API int tk_cuda_malloc(void** ptr, size_t bytes, char* err, size_t errlen) {
  *ptr = nullptr;
  return report("malloc", cudaMalloc(ptr, bytes == 0 ? 1 : bytes), err, errlen);
}

TK_CUDA_API int tk_cuda_free(void* ptr, char* err, size_t errlen) { return report("free", cudaFree(ptr), err, errlen); }

TK_CUDA_API int tk_cuda_memcpy_h2d(void* dst, const void* src, size_t bytes, char* err, size_t errlen) {
  return report("memcpy_h2d", cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), err, errlen);
}

TK_CUDA_API int tk_cuda_memcpy_d2h(void* dst, const void* src, size_t bytes, char* err, size_t errlen) {
  return report("memcpy_d2h", cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), err, errlen);
}

TK_CUDA_API int tk_cuda_memcpy_d2d(void* dst, const void* src, size_t bytes, char* err, size_t errlen) {
  return report("memcpy_d2d", cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), err, errlen);
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

TK_CUDA_API int tk_cuda_gemm_bf16(const struct tk_cuda_gemm_half_args* args, char* err, size_t errlen) {
  if (args->dtype != TK_CUDA_F16 && args->dtype != TK_CUDA_BF16) {
    put(err, errlen, "cuda gemm_bf16: dtype %d is neither TK_CUDA_F16 (0) nor TK_CUDA_BF16 (1)", args->dtype);
    return -1;
  }
  return guarded("gemm_bf16", err, errlen, [&] { tk::cuda::gemm_half(*args); });
}

TK_CUDA_API int tk_cuda_convert_f32(int64_t n, const float* src, void* dst, int dtype, char* err, size_t errlen) {
  if (dtype != TK_CUDA_F16 && dtype != TK_CUDA_BF16) {
    put(err, errlen, "cuda convert_f32: dtype %d is neither TK_CUDA_F16 (0) nor TK_CUDA_BF16 (1)", dtype);
    return -1;
  }
  return guarded("convert_f32", err, errlen, [&] { tk::cuda::convert_f32(n, src, dst, dtype); });
}
