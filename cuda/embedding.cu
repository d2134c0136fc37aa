// Embedding gather and its scatter-add backward. The backward must be deterministic and race-free with
// repeated ids, without sorting and without knowing the vocabulary size: block g owns every id with
// id % G == g, scans all N ids in order (a warp ballot finds its ids 32 at a time) and adds those rows,
// each thread owning a set of columns. Every table row thus gets its additions in token order.
#include <cuda_bf16.h>

#include "common.cuh"

namespace tk {
namespace cuda {
namespace {

__device__ __forceinline__ float widen(float x) { return x; }
__device__ __forceinline__ float widen(__nv_bfloat16 x) { return __bfloat162float(x); }

// E: the table's element type (float, or __nv_bfloat16 for a bf16 table, widened exactly).
template <class E>
__global__ void embedding_forward_kernel(int64_t N, int64_t C, const int32_t* ids, const E* table, float* out) {
  for (int64_t i = blockIdx.x; i < N; i += gridDim.x) {
    const E* src = table + int64_t(ids[i]) * C;
    float* dst = out + i * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dst[c] = widen(src[c]);
  }
}

constexpr int kIdChunk = 1024;

__global__ void __launch_bounds__(kBlock)
    embedding_backward_kernel(int64_t N, int64_t C, const int32_t* ids, const float* dout, float* dtable, int32_t padding_idx) {
  __shared__ int32_t s_ids[kIdChunk];
  const uint32_t G = gridDim.x, g = blockIdx.x;
  const int lane = threadIdx.x & 31;
  for (int64_t base = 0; base < N; base += kIdChunk) {
    const int n = N - base < kIdChunk ? static_cast<int>(N - base) : kIdChunk;
    __syncthreads();  // the previous chunk is done
    for (int k = threadIdx.x; k < n; k += blockDim.x) s_ids[k] = ids[base + k];
    __syncthreads();
    for (int k0 = 0; k0 < n; k0 += 32) {
      const int k = k0 + lane;
      // Every warp computes the same ballot, so the whole block walks the same matches in order.
      uint32_t mine = __ballot_sync(0xffffffffu, k < n && s_ids[k] != padding_idx && uint32_t(s_ids[k]) % G == g);
      while (mine) {
        const int bit = __ffs(mine) - 1;
        mine &= mine - 1;
        const int64_t i = base + k0 + bit;
        const float* src = dout + i * C;
        float* dst = dtable + int64_t(s_ids[k0 + bit]) * C;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dst[c] += src[c];
      }
    }
  }
}

}  // namespace

void embedding_forward(const EmbeddingArgs& a) {
  const int64_t N = a.N, C = a.C;
  if (N <= 0 || C <= 0) return;
  const int64_t blocks = N < int64_t(sm_count()) * 64 ? N : int64_t(sm_count()) * 64;
  const unsigned threads = C < kBlock ? 128 : kBlock;
  if (a.table_dtype == TK_BF16)
    embedding_forward_kernel<__nv_bfloat16><<<static_cast<unsigned>(blocks), threads>>>(N, C, a.ids, static_cast<const __nv_bfloat16*>(a.table), a.out);
  else
    embedding_forward_kernel<float><<<static_cast<unsigned>(blocks), threads>>>(N, C, a.ids, static_cast<const float*>(a.table), a.out);
  check_launch("embedding_forward");
}

void embedding_backward(const EmbeddingBackwardArgs& a) {
  const int64_t N = a.N, C = a.C;
  if (N <= 0 || C <= 0) return;
  // G residue classes: enough blocks to fill the device, each scanning all N ids (cheap: 4 bytes each).
  const int64_t G = N < int64_t(sm_count()) * 8 ? N : int64_t(sm_count()) * 8;
  embedding_backward_kernel<<<static_cast<unsigned>(G), kBlock>>>(N, C, a.ids, a.dout, a.dtable, a.padding_idx);
  check_launch("embedding_backward");
}

}  // namespace cuda
}  // namespace tk
