// Buffer ops every backend has: fill (zeroing pooled storage) and convert between float dtypes, with
// the rounding of native/cpu/memory.cc (nearest even; NaN stays NaN).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common.cuh"

namespace tk {
namespace cuda {
namespace {

#define TK_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

template <class T>
__global__ void fill_kernel(int64_t n, T* x, T v) {
  TK_GRID_STRIDE(i, n) x[i] = v;
}

__device__ __forceinline__ float load(const void* p, int dtype, int64_t i) {
  if (dtype == TK_BF16) return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  if (dtype == TK_F16) return __half2float(static_cast<const __half*>(p)[i]);
  return static_cast<const float*>(p)[i];
}
__device__ __forceinline__ void store(void* p, int dtype, int64_t i, float v) {
  if (dtype == TK_BF16) static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
  else if (dtype == TK_F16) static_cast<__half*>(p)[i] = __float2half_rn(v);
  else static_cast<float*>(p)[i] = v;
}

__global__ void convert_kernel(int64_t n, const void* src, int src_dtype, void* dst, int dst_dtype) {
  TK_GRID_STRIDE(i, n) store(dst, dst_dtype, i, load(src, src_dtype, i));
}

}  // namespace

void fill(const FillArgs& a) {
  if (a.elem_bytes == 1) fill_kernel<uint8_t><<<grid_for(a.n), kBlock>>>(a.n, static_cast<uint8_t*>(a.x), uint8_t(a.bits));
  else if (a.elem_bytes == 2) fill_kernel<uint16_t><<<grid_for(a.n), kBlock>>>(a.n, static_cast<uint16_t*>(a.x), uint16_t(a.bits));
  else fill_kernel<uint32_t><<<grid_for(a.n), kBlock>>>(a.n, static_cast<uint32_t*>(a.x), a.bits);
  check_launch("fill");
}

void convert(const ConvertArgs& a) {
  convert_kernel<<<grid_for(a.n), kBlock>>>(a.n, a.src, a.src_dtype, a.dst, a.dst_dtype);
  check_launch("convert");
}

}  // namespace cuda
}  // namespace tk
