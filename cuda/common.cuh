// Shared by every .cu file: error checks that throw (runtime.cu's C entry points catch them and return
// TK_ERROR with the message: no exception leaves the library), the op lock, grown-on-demand device
// workspace, block/warp reductions and launch helpers.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>

#include "tunekit/backend.h"
#include "tunekit/ops.h"

namespace tk {
namespace cuda {

[[noreturn]] void fail(const char* op, cudaError_t e);

// Throws "cuda <op>: <error>" when e is not cudaSuccess.
inline void check(const char* op, cudaError_t e) {
  if (e != cudaSuccess) fail(op, e);
}
// After a launch: configuration errors now, or a sticky error from earlier asynchronous work.
inline void check_launch(const char* op) { check(op, cudaGetLastError()); }

// Every entry point that runs device work (tk_cuda_run, the extras) holds this lock for the whole call,
// so op functions need not take it. All work runs on the legacy default stream, so kernels execute in
// submission order; the lock keeps the workspace (below) from being regrown or shared by two host
// threads (the addon's async ops run on the libuv pool) between launches.
std::recursive_mutex& op_mutex();
using OpLock = std::lock_guard<std::recursive_mutex>;

// Device scratch that only grows; valid until the next call with the same slot. Stream order makes
// reuse by the next op safe.
enum Slot {
  kSlotReduce,    // reduction partials and results (sum_squares, cross-entropy, column sums)
  kSlotRowLoss,   // cross-entropy per-row losses when the caller gives no row_loss
  kSlotAttnDelta, // attention backward: rowsum(dO ∘ O)
  kSlotLoraX,     // LoRA: dropout(x), then dh·A
  kSlotLoraDh,    // LoRA: dh
  kSlotColsum,    // column-sum partials
  kSlotGemmA,     // gemm on tensor cores (GemmArgs::bf16): A rounded to bf16
  kSlotGemmB,     // gemm on tensor cores with a float32 B (bf16 autocast): B rounded to bf16
  kSlotCount
};
void* workspace(Slot slot, size_t bytes);
template <class T>
T* workspace_of(Slot slot, size_t count) { return static_cast<T*>(workspace(slot, count * sizeof(T))); }

int sm_count();

// Bytes that crossed between host and device (tk_cuda_memory reports them): every copy of the library,
// including the scalar results ops read back (a loss, a sum of squares).
void count_transfer(int kind, size_t bytes);
// cudaMemcpy device → host of an op's result, counted.
inline void result_to_host(const char* op, void* dst, const void* src, size_t bytes) {
  check(op, cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
  count_transfer(TK_COPY_D2H, bytes);
}

constexpr int kBlock = 256;

// Blocks for a grid-stride loop over n items: enough to fill the device, never more than needed.
inline unsigned grid_for(int64_t n, int per_block = kBlock) {
  int64_t want = (n + per_block - 1) / per_block, cap = int64_t(sm_count()) * 32;
  if (want < 1) want = 1;
  return static_cast<unsigned>(want < cap ? want : cap);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// A fixed tree, so the same inputs always give the same bits. Two barriers: safe to call in a loop.
template <class T>
__device__ T block_sum(T v) {
  __shared__ T part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // part[] free from an earlier call
  if (lane == 0) part[warp] = v;
  __syncthreads();
  T t = lane < nw ? part[lane] : T(0);
  return warp_sum(t);
}
__device__ inline float block_max(float v) {
  __shared__ float part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  float t = lane < nw ? part[lane] : -INFINITY;
  return warp_max(t);
}

// Used inside the backend (LoRA) and by the gemm op. gemm_f32 always multiplies in float32 (reading a
// bf16 B widened); gemm is the op, which takes the tensor-core path for GemmArgs::bf16 with a bf16 B.
void gemm_f32(const GemmArgs& a);
void gemm(const GemmArgs& a);
// dst (+)= src · keep / (1 - p) per Philox element; ACC adds instead of overwriting.
void dropout_apply(int64_t n, const float* src, float* dst, float p, uint64_t seed, uint64_t offset, bool acc);
// out (C) += column sums of dy (rows, C), deterministic (fixed partition of rows, summed in order).
void column_sums(int64_t rows, int64_t C, const float* dy, float* out);

}  // namespace cuda
}  // namespace tk
