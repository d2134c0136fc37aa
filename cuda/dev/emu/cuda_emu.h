// A small CUDA emulator for checking the kernels' logic on a CPU (cuda/dev/emu/check.sh): cuda/*.cu is
// compiled as C++ with this header forced in. Each block runs its threads as ucontext fibers;
// __syncthreads and warp collectives (shuffle, ballot, __syncwarp) are barriers of a cooperative
// scheduler; WMMA fragments hold whole tiles in float and check pointer alignment; launches check their
// configuration and the dynamic shared-memory opt-in (at most 99 KB, the sm_86 limit). Only what
// cuda/*.cu uses is here.
#pragma once
#include <ucontext.h>
#include <sys/mman.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <vector>
#include <limits>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __noinline__

struct uint3 { unsigned x, y, z; };
struct dim3 {
  unsigned x, y, z;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) uint4 { unsigned x, y, z, w; };

enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9, cudaErrorInsufficientDriver = 35, cudaErrorNoDevice = 100, cudaErrorLaunchFailure = 719 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice, cudaMemcpyHostToHost };
enum cudaDeviceAttr { cudaDevAttrComputeCapabilityMajor, cudaDevAttrComputeCapabilityMinor, cudaDevAttrMultiProcessorCount };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
struct cudaDeviceProp { char name[256]; int major, minor; size_t totalGlobalMem; };
typedef struct CUevent_st* cudaEvent_t;

namespace tk_emu {
enum Wait { RUN, BLOCK_BAR, WARP_BAR, DONE };
struct Fiber { ucontext_t ctx; char* stack; Wait wait; uint3 tid; int lane, warp; };
struct Block {
  std::vector<Fiber> fibers;
  ucontext_t sched;
  int cur = 0;
  uint64_t slots[32][32];
};
extern Block* g_block;
extern uint3 g_blockIdx;
extern dim3 g_blockDim, g_gridDim;
extern float* g_dyn_smem;
extern cudaError_t g_last_error;
extern std::map<const void*, int> g_smem_attr;
extern std::function<void()>* g_body;
constexpr size_t kStack = 256 * 1024;

inline void yield(Wait w) {
  Fiber& f = g_block->fibers[g_block->cur];
  f.wait = w;
  swapcontext(&f.ctx, &g_block->sched);
}
inline void fiber_entry() {
  (*g_body)();
  g_block->fibers[g_block->cur].wait = DONE;
}
void run_block(unsigned nthreads, std::function<void()> body);

template <class T>
T shfl_xor(T v, int o) {
  static_assert(sizeof(T) <= 8, "");
  Block& b = *g_block;
  Fiber& f = b.fibers[b.cur];
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  b.slots[f.warp][f.lane] = bits;
  yield(WARP_BAR);
  Fiber& f2 = g_block->fibers[g_block->cur];
  T r;
  std::memcpy(&r, &g_block->slots[f2.warp][f2.lane ^ o], sizeof(T));
  yield(WARP_BAR);
  return r;
}
inline unsigned ballot(bool p) {
  Block& b = *g_block;
  Fiber& f = b.fibers[b.cur];
  b.slots[f.warp][f.lane] = p;
  const int w = f.warp;
  yield(WARP_BAR);
  unsigned m = 0;
  for (int l = 0; l < 32; l++) m |= (g_block->slots[w][l] ? 1u : 0u) << l;
  yield(WARP_BAR);
  return m;
}

struct Launch {
  dim3 grid, block;
  size_t smem;
  Launch(dim3 g, dim3 b, size_t s = 0) : grid(g), block(b), smem(s) {}
  template <class K, class... A>
  void operator()(K kernel, A... args) {
    const unsigned nt = block.x * block.y * block.z;
    if (nt == 0 || nt > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535) {
      std::fprintf(stderr, "emu: invalid launch config grid (%u,%u,%u) block (%u,%u,%u)\n", grid.x, grid.y, grid.z, block.x, block.y, block.z);
      g_last_error = cudaErrorInvalidConfiguration;
      return;
    }
    if (smem > 48 * 1024) {
      auto it = g_smem_attr.find(reinterpret_cast<const void*>(kernel));
      if (it == g_smem_attr.end() || size_t(it->second) < smem) {
        std::fprintf(stderr, "emu: %zu bytes of dynamic smem without opt-in\n", smem);
        g_last_error = cudaErrorInvalidValue;
        return;
      }
    }
    std::vector<float> dyn(smem / sizeof(float) + 1, std::numeric_limits<float>::quiet_NaN());
    g_gridDim = grid;
    g_blockDim = block;
    for (unsigned z = 0; z < grid.z; z++)
      for (unsigned y = 0; y < grid.y; y++)
        for (unsigned x = 0; x < grid.x; x++) {
          g_blockIdx = uint3{x, y, z};
          std::fill(dyn.begin(), dyn.end(), std::numeric_limits<float>::quiet_NaN());
          g_dyn_smem = dyn.data();
          run_block(nt, [&] { kernel(args...); });
        }
  }
};
}  // namespace tk_emu

#define threadIdx (tk_emu::g_block->fibers[tk_emu::g_block->cur].tid)
#define blockIdx (tk_emu::g_blockIdx)
#define blockDim (tk_emu::g_blockDim)
#define gridDim (tk_emu::g_gridDim)

inline void __syncthreads() { tk_emu::yield(tk_emu::BLOCK_BAR); }
inline void __syncwarp(unsigned = 0xffffffffu) { tk_emu::yield(tk_emu::WARP_BAR); }
inline float __shfl_xor_sync(unsigned, float v, int o) { return tk_emu::shfl_xor(v, o); }
inline double __shfl_xor_sync(unsigned, double v, int o) { return tk_emu::shfl_xor(v, o); }
inline unsigned __ballot_sync(unsigned, bool p) { return tk_emu::ballot(p); }
inline int __ffs(unsigned x) { return __builtin_ffs(static_cast<int>(x)); }

cudaError_t cudaGetDeviceCount(int*);
cudaError_t cudaGetDevice(int*);
cudaError_t cudaDeviceGetAttribute(int*, cudaDeviceAttr, int);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp*, int);
cudaError_t cudaMalloc(void**, size_t);
template <class T> cudaError_t cudaMalloc(T** p, size_t n) { return cudaMalloc(reinterpret_cast<void**>(p), n); }
cudaError_t cudaFree(void*);
cudaError_t cudaMemGetInfo(size_t*, size_t*);
enum { cudaHostAllocDefault = 0 };
cudaError_t cudaHostAlloc(void**, size_t, unsigned);
cudaError_t cudaFreeHost(void*);
cudaError_t cudaMemcpy(void*, const void*, size_t, cudaMemcpyKind);
cudaError_t cudaMemcpyAsync(void*, const void*, size_t, cudaMemcpyKind, int = 0);
cudaError_t cudaMemsetAsync(void*, int, size_t, int = 0);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
const char* cudaGetErrorString(cudaError_t);
const char* cudaGetErrorName(cudaError_t);
cudaError_t cudaEventCreate(cudaEvent_t*);
cudaError_t cudaEventRecord(cudaEvent_t, int = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t);
cudaError_t cudaEventElapsedTime(float*, cudaEvent_t, cudaEvent_t);
cudaError_t cudaEventDestroy(cudaEvent_t);
cudaError_t cudaFuncSetAttribute_(const void*, cudaFuncAttribute, int);
template <class K> cudaError_t cudaFuncSetAttribute(K k, cudaFuncAttribute a, int v) {
  return cudaFuncSetAttribute_(reinterpret_cast<const void*>(k), a, v);
}

// 16-bit float types (round to nearest even).
struct __half {
  uint16_t bits;
  __half() = default;
  __half(float f) {
    // via float → half conversion of the compiler
    _Float16 h = static_cast<_Float16>(f);
    std::memcpy(&bits, &h, 2);
  }
  operator float() const { _Float16 h; std::memcpy(&h, &bits, 2); return static_cast<float>(h); }
};
struct __nv_bfloat16 {
  uint16_t bits;
  __nv_bfloat16() = default;
  __nv_bfloat16(float f) {
    uint32_t u; std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) { bits = static_cast<uint16_t>((u >> 16) | 0x40u); return; }  // quiet NaN
    u += 0x7FFFu + ((u >> 16) & 1u);
    bits = static_cast<uint16_t>(u >> 16);
  }
  operator float() const { uint32_t u = uint32_t(bits) << 16; float f; std::memcpy(&f, &u, 4); return f; }
};
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 h) { return float(h); }
inline __half __float2half_rn(float f) { return __half(f); }
inline float __half2float(__half h) { return float(h); }

namespace nvcuda { namespace wmma {
struct row_major {}; struct col_major {}; struct matrix_a {}; struct matrix_b {}; struct accumulator {};
enum layout_t { mem_row_major, mem_col_major };
template <class Use, int M, int N, int K, class T, class L = void>
struct fragment { float x[256]; };
template <class F> void fill_fragment(F& f, float v) { for (float& e : f.x) e = v; }
inline void check_ptr(const void* p, unsigned ldm, size_t esize) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0 || (ldm * esize) % 16 != 0) {
    std::fprintf(stderr, "emu: wmma pointer %p / ldm %u misaligned\n", p, ldm);
    std::abort();
  }
}
template <class T, class L>
void load_matrix_sync(fragment<matrix_a, 16, 16, 16, T, L>& f, const T* p, unsigned ldm) {
  check_ptr(p, ldm, sizeof(T));
  for (int i = 0; i < 16; i++)
    for (int k = 0; k < 16; k++) f.x[i * 16 + k] = float(std::is_same<L, row_major>::value ? p[i * ldm + k] : p[i + k * ldm]);
}
template <class T, class L>
void load_matrix_sync(fragment<matrix_b, 16, 16, 16, T, L>& f, const T* p, unsigned ldm) {
  check_ptr(p, ldm, sizeof(T));
  for (int k = 0; k < 16; k++)
    for (int j = 0; j < 16; j++) f.x[k * 16 + j] = float(std::is_same<L, row_major>::value ? p[k * ldm + j] : p[k + j * ldm]);
}
template <class A, class B>
void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const A& a, const B& b, const fragment<accumulator, 16, 16, 16, float>& c) {
  float r[256];
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) {
      float s = c.x[i * 16 + j];
      for (int k = 0; k < 16; k++) s += a.x[i * 16 + k] * b.x[k * 16 + j];
      r[i * 16 + j] = s;
    }
  std::memcpy(d.x, r, sizeof r);
}
inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t l) {
  check_ptr(p, ldm, 4);
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) (l == mem_row_major ? p[i * ldm + j] : p[i + j * ldm]) = f.x[i * 16 + j];
}
}}  // namespace nvcuda::wmma
