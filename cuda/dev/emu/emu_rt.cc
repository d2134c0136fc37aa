// The emulator's scheduler and runtime API (see cuda_emu.h): one block at a time, its threads as fibers
// run until they block on a barrier; a barrier opens when every live thread of the block (or warp) is
// waiting at it. A thread left waiting on a different barrier than its peers is a divergence: abort.
#include "cuda_emu.h"

#include <algorithm>

namespace tk_emu {
Block* g_block = nullptr;
uint3 g_blockIdx;
dim3 g_blockDim, g_gridDim;
float* g_dyn_smem = nullptr;
cudaError_t g_last_error = cudaSuccess;
std::map<const void*, int> g_smem_attr;
std::function<void()>* g_body = nullptr;
static std::vector<char*> g_stacks;

void run_block(unsigned nt, std::function<void()> body) {
  Block b;
  b.fibers.resize(nt);
  while (g_stacks.size() < nt) g_stacks.push_back(static_cast<char*>(std::malloc(kStack)));
  Block* prev = g_block;
  g_block = &b;
  g_body = &body;
  for (unsigned t = 0; t < nt; t++) {
    Fiber& f = b.fibers[t];
    f.wait = RUN;
    f.tid = uint3{t % g_blockDim.x, (t / g_blockDim.x) % g_blockDim.y, t / (g_blockDim.x * g_blockDim.y)};
    f.lane = t % 32;
    f.warp = t / 32;
    f.stack = g_stacks[t];
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = kStack;
    f.ctx.uc_link = &b.sched;
    makecontext(&f.ctx, fiber_entry, 0);
  }
  for (;;) {
    bool any_run = false;
    // EMU_ORDER=reverse|shuffle: a missing barrier then changes the result.
    static const char* order = std::getenv("EMU_ORDER");
    static unsigned seed = 12345;
    const bool rev = order && order[0] == 'r', shuf = order && order[0] == 's';
    const unsigned start = shuf ? (seed = seed * 1103515245u + 12345u) % nt : 0;
    for (unsigned i = 0; i < nt; i++) {
      const unsigned t = rev ? nt - 1 - i : (start + i * (shuf ? 7919u : 1u)) % nt;  // 7919: prime, a permutation
      if (b.fibers[t].wait == RUN) {
        any_run = true;
        b.cur = t;
        swapcontext(&b.sched, &b.fibers[t].ctx);
      }
    }
    if (any_run) continue;
    bool all_done = true;
    for (auto& f : b.fibers) all_done &= f.wait == DONE;
    if (all_done) break;
    bool released = false;
    for (unsigned w = 0; w * 32 < nt; w++) {
      bool all = true, some = false;
      for (unsigned t = w * 32; t < std::min(nt, (w + 1) * 32); t++) {
        if (b.fibers[t].wait == DONE) continue;
        some = true;
        all &= b.fibers[t].wait == WARP_BAR;
      }
      if (some && all) {
        for (unsigned t = w * 32; t < std::min(nt, (w + 1) * 32); t++)
          if (b.fibers[t].wait == WARP_BAR) b.fibers[t].wait = RUN;
        released = true;
      }
    }
    if (released) continue;
    bool all_bar = true;
    for (auto& f : b.fibers) all_bar &= f.wait == DONE || f.wait == BLOCK_BAR;
    if (all_bar) {
      for (auto& f : b.fibers)
        if (f.wait == BLOCK_BAR) f.wait = RUN;
      continue;
    }
    std::fprintf(stderr, "emu: deadlock (divergent barrier) in block (%u,%u,%u)\n", g_blockIdx.x, g_blockIdx.y, g_blockIdx.z);
    std::abort();
  }
  g_block = prev;
}
}  // namespace tk_emu

using namespace tk_emu;
cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return cudaSuccess; }
cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int) {
  *v = a == cudaDevAttrComputeCapabilityMajor ? 8 : a == cudaDevAttrComputeCapabilityMinor ? 6 : 4;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  std::snprintf(p->name, sizeof p->name, "emulated GPU");
  p->major = 8; p->minor = 6; p->totalGlobalMem = size_t(1) << 30;
  return cudaSuccess;
}
// The emulated device has 1 GiB (cudaGetDeviceProperties): allocations beyond it fail as a GPU's would.
static std::map<void*, size_t> g_allocs;
static size_t g_used = 0;
static const size_t kDeviceBytes = size_t(1) << 30;
cudaError_t cudaMalloc(void** p, size_t n) {
  *p = nullptr;
  if (g_used + n > kDeviceBytes) return cudaErrorMemoryAllocation;
  *p = std::malloc(n);
  if (!*p) return cudaErrorMemoryAllocation;
  g_allocs[*p] = n;
  g_used += n;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  auto it = g_allocs.find(p);
  if (it != g_allocs.end()) { g_used -= it->second; g_allocs.erase(it); }
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free, size_t* total) { *total = kDeviceBytes; *free = kDeviceBytes - g_used; return cudaSuccess; }
cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) { std::memmove(d, s, n); return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind, int) { std::memmove(d, s, n); return cudaSuccess; }
cudaError_t cudaMemsetAsync(void* d, int v, size_t n, int) { std::memset(d, v, n); return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaGetLastError() { cudaError_t e = g_last_error; g_last_error = cudaSuccess; return e; }
const char* cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated error"; }
const char* cudaGetErrorName(cudaError_t e) { static char b[32]; std::snprintf(b, sizeof b, "cudaError%d", int(e)); return b; }
cudaError_t cudaEventCreate(cudaEvent_t* e) { *e = nullptr; return cudaSuccess; }
cudaError_t cudaHostAlloc(void** p, size_t n, unsigned) { *p = std::malloc(n); return *p ? cudaSuccess : cudaErrorMemoryAllocation; }
cudaError_t cudaFreeHost(void* p) { std::free(p); return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, int) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) { *ms = 1.f; return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaFuncSetAttribute_(const void* k, cudaFuncAttribute, int v) {
  if (v > 101376) { std::fprintf(stderr, "emu: smem attribute %d > 99 KB (sm_86 limit)\n", v); return cudaErrorInvalidValue; }
  g_smem_attr[k] = v;
  return cudaSuccess;
}
