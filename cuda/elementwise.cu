// Element-wise ops: GELU (erf and tanh forms) and its backward, bias add and its column-sum backward,
// add, scale, dropout. Grid-stride loops; the formulas are those of native/cpu/elementwise.cc.
#include "colsum.cuh"
#include "common.cuh"
#include "tunekit/philox.h"

namespace tk {
namespace cuda {
namespace {

constexpr float kSqrtHalf = 0.70710678118654752f;     // 1/sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143268f;   // 1/sqrt(2·pi)
constexpr float kSqrt2OverPi = 0.79788456080286536f;  // sqrt(2/pi)
constexpr float kKappa = 0.044715f;

#define TK_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.f + erff(x * kSqrtHalf)); }
__device__ __forceinline__ float gelu_erf_grad(float x) {
  return 0.5f * (1.f + erff(x * kSqrtHalf)) + x * expf(-0.5f * x * x) * kInvSqrt2Pi;
}
__device__ __forceinline__ float gelu_tanh(float x) {
  return 0.5f * x * (1.f + tanhf(kSqrt2OverPi * (x + kKappa * x * x * x)));
}
__device__ __forceinline__ float gelu_tanh_grad(float x) {
  const float x2 = x * x, t = tanhf(kSqrt2OverPi * x * (1.f + kKappa * x2));
  return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * kSqrt2OverPi * (1.f + 3.f * kKappa * x2);
}

__global__ void gelu_forward_kernel(int64_t n, const float* x, float* y, int approx) {
  if (approx == GELU_TANH) {
    TK_GRID_STRIDE(i, n) y[i] = gelu_tanh(x[i]);
  } else {
    TK_GRID_STRIDE(i, n) y[i] = gelu_erf(x[i]);
  }
}

__global__ void gelu_backward_kernel(int64_t n, const float* x, const float* dy, float* dx, int approx) {
  if (approx == GELU_TANH) {
    TK_GRID_STRIDE(i, n) dx[i] = dy[i] * gelu_tanh_grad(x[i]);
  } else {
    TK_GRID_STRIDE(i, n) dx[i] = dy[i] * gelu_erf_grad(x[i]);
  }
}

__global__ void bias_add_kernel(int64_t rows, int64_t C, const float* x, const float* bias, float* y) {
  TK_GRID_STRIDE(i, rows * C) y[i] = x[i] + bias[i % C];
}

__global__ void add_kernel(int64_t n, const float* a, const float* b, float* y) {
  TK_GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

// sp: one float on the device (the upstream gradient), read by every thread; null means 1.
__global__ void scale_kernel(int64_t n, float* x, float s, const float* sp) {
  const float k = sp ? s * sp[0] : s;
  TK_GRID_STRIDE(i, n) x[i] *= k;
}

// One thread per Philox block of 4 counters: element e of the call is counter offset + e, so the
// blocks covering [offset, offset + n) are offset/4 .. (offset + n - 1)/4 and the ends are partial.
__global__ void dropout_kernel(int64_t n, const float* x, float* y, float p, float keep_scale, uint64_t seed,
                               uint64_t offset, bool acc) {
  const uint64_t first = offset >> 2, blocks = ((offset + uint64_t(n) - 1) >> 2) - first + 1;
  for (uint64_t q = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; q < blocks; q += uint64_t(gridDim.x) * blockDim.x) {
    const uint64_t counter = first + q;
    const philox::U4 r = philox::block(counter, seed);
#pragma unroll
    for (int lane = 0; lane < 4; lane++) {
      const uint64_t i = counter * 4 + lane;
      if (i < offset || i - offset >= uint64_t(n)) continue;
      const int64_t e = static_cast<int64_t>(i - offset);
      const float v = philox::to_uniform(r.x[lane]) >= p ? x[e] * keep_scale : 0.f;
      y[e] = acc ? y[e] + v : v;
    }
  }
}

struct BiasGradOp {
  static constexpr int N = 1;
  const float* dy;
  int64_t C;
  __device__ void operator()(int64_t r, int64_t c, float* v) const { v[0] = dy[r * C + c]; }
};

}  // namespace

void gelu_forward(const GeluArgs& a) {
  if (a.n <= 0) return;
  gelu_forward_kernel<<<grid_for(a.n), kBlock>>>(a.n, a.x, a.y, a.approx);
  check_launch("gelu_forward");
}

void gelu_backward(const GeluBackwardArgs& a) {
  if (a.n <= 0) return;
  gelu_backward_kernel<<<grid_for(a.n), kBlock>>>(a.n, a.x, a.dy, a.dx, a.approx);
  check_launch("gelu_backward");
}

void bias_add(const BiasAddArgs& a) {
  if (a.rows <= 0 || a.C <= 0) return;
  bias_add_kernel<<<grid_for(a.rows * a.C), kBlock>>>(a.rows, a.C, a.x, a.bias, a.y);
  check_launch("bias_add");
}

void column_sums(int64_t rows, int64_t C, const float* dy, float* out) {
  ColsumOut<1> o{{out}};
  column_sums_op(BiasGradOp{dy, C}, rows, C, o, "bias_backward");
}

void bias_backward(const BiasBackwardArgs& a) {
  column_sums(a.rows, a.C, a.dy, a.dbias);
}

void add(const AddArgs& a) {
  if (a.n <= 0) return;
  add_kernel<<<grid_for(a.n), kBlock>>>(a.n, a.a, a.b, a.y);
  check_launch("add");
}

void scale(const ScaleArgs& a) {
  if (a.n <= 0) return;
  scale_kernel<<<grid_for(a.n), kBlock>>>(a.n, a.x, a.s, a.sp);
  check_launch("scale");
}

void dropout_apply(int64_t n, const float* src, float* dst, float p, uint64_t seed, uint64_t offset, bool acc) {
  if (n <= 0) return;
  if (p <= 0.f) {  // identity: a copy, or an add
    if (acc) add_kernel<<<grid_for(n), kBlock>>>(n, dst, src, dst);
    else if (dst != src) check("dropout", cudaMemcpyAsync(dst, src, size_t(n) * sizeof(float), cudaMemcpyDeviceToDevice));
  } else {
    const int64_t blocks = int64_t(((offset + uint64_t(n) - 1) >> 2) - (offset >> 2) + 1);
    dropout_kernel<<<grid_for(blocks), kBlock>>>(n, src, dst, p, 1.f / (1.f - p), seed, offset, acc);
  }
  check_launch("dropout");
}

void dropout(const DropoutArgs& a) {
  dropout_apply(a.n, a.x, a.y, a.p, a.seed, a.offset, false);
}

}  // namespace cuda
}  // namespace tk
