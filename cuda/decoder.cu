// Decoder layer ops (Llama / Mistral / Qwen2 / Qwen3): RMSNorm (one warp per row, the grouped row
// layout of ops.h), its weight gradient as deterministic column sums (colsum.cuh), rotary position
// embedding in place (one thread per rotated pair), and the SwiGLU gate. The formulas are those of
// native/cpu/decoder.cc.
#include "colsum.cuh"
#include "common.cuh"

namespace tk {
namespace cuda {
namespace {

constexpr int kRowsPerBlock = kBlock / 32;

#define TK_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// Offset of row r in the grouped layout: group r / G at ld, row r % G inside it.
__device__ __forceinline__ int64_t row_at(int64_t r, int64_t G, int64_t C, int64_t ld) { return (r / G) * ld + (r % G) * C; }

__global__ void __launch_bounds__(kBlock) rmsnorm_forward_kernel(RmsNormArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (row >= a.rows) return;
  const float* x = a.x + row_at(row, a.G, a.C, a.ldx);
  float s = 0.f;
  for (int64_t c = lane; c < a.C; c += 32) s = fmaf(x[c], x[c], s);
  const float rstd = 1.f / sqrtf(warp_sum(s) / float(a.C) + a.eps);
  float* y = a.y + row_at(row, a.G, a.C, a.ldy);
  for (int64_t c = lane; c < a.C; c += 32) y[c] = x[c] * rstd * (a.weight ? a.weight[c] : 1.f);
  if (lane == 0) a.rstd[row] = rstd;
}

// dx = rstd · (g − x̂ · mean(g · x̂)), g = dy · weight.
__global__ void __launch_bounds__(kBlock) rmsnorm_dx_kernel(RmsNormBackwardArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (row >= a.rows) return;
  const float* x = a.x + row_at(row, a.G, a.C, a.ldx);
  const float* dy = a.dy + row_at(row, a.G, a.C, a.lddy);
  const float rstd = a.rstd[row];
  float s = 0.f;
  for (int64_t c = lane; c < a.C; c += 32) s = fmaf(dy[c] * (a.weight ? a.weight[c] : 1.f), x[c] * rstd, s);
  const float m = warp_sum(s) / float(a.C);
  float* dx = a.dx + row_at(row, a.G, a.C, a.lddx);
  for (int64_t c = lane; c < a.C; c += 32) dx[c] = rstd * (dy[c] * (a.weight ? a.weight[c] : 1.f) - x[c] * rstd * m);
}

// dweight += Σ_rows dy · x̂.
struct WeightGradOp {
  static constexpr int N = 1;
  const float *x, *dy, *rstd;
  int64_t G, C, ldx, lddy;
  __device__ void operator()(int64_t r, int64_t c, float* v) const {
    v[0] = dy[row_at(r, G, C, lddy) + c] * (x[row_at(r, G, C, ldx) + c] * rstd[r]);
  }
};

// One thread per (token, head, d < D/2): the pair (d, d + D/2) rotated by ±θ.
template <bool kInverse>
__global__ void rope_kernel(RopeArgs a) {
  const int64_t half = a.D / 2, n = a.B * a.T * a.H * half;
  TK_GRID_STRIDE(i, n) {
    const int64_t d = i % half, th = i / half, t = th / a.H, h = th % a.H;
    const int64_t p = a.pos[t];
    const float c = a.cos[p * half + d], s = kInverse ? -a.sin[p * half + d] : a.sin[p * half + d];
    float* x = a.x + t * a.ld + h * a.D + d;
    const float x1 = x[0], x2 = x[half];
    x[0] = x1 * c - x2 * s;
    x[half] = fmaf(x2, c, x1 * s);
  }
}

__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

__global__ void swiglu_forward_kernel(SwigluArgs a) {
  TK_GRID_STRIDE(i, a.rows * a.C) {
    const int64_t r = i / a.C, c = i - r * a.C;
    const float g = a.gate[r * a.ldg + c];
    a.y[r * a.ldy + c] = g * sigmoid(g) * a.up[r * a.ldu + c];
  }
}

__global__ void swiglu_backward_kernel(SwigluBackwardArgs a) {
  TK_GRID_STRIDE(i, a.rows * a.C) {
    const int64_t r = i / a.C, c = i - r * a.C;
    const float g = a.gate[r * a.ldg + c], dy = a.dy[r * a.lddy + c], s = sigmoid(g);
    if (a.dgate) a.dgate[r * a.lddg + c] = dy * a.up[r * a.ldu + c] * (s * fmaf(g, 1.f - s, 1.f));
    if (a.dup) a.dup[r * a.lddu + c] = dy * (g * s);
  }
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

}  // namespace

void rmsnorm_forward(const RmsNormArgs& a) {
  if (a.rows <= 0 || a.C <= 0) return;
  rmsnorm_forward_kernel<<<row_blocks(a.rows), kBlock>>>(a);
  check_launch("rmsnorm_forward");
}

void rmsnorm_backward(const RmsNormBackwardArgs& a) {
  if (a.rows <= 0 || a.C <= 0) return;
  if (a.dweight) {
    ColsumOut<1> out{{a.dweight}};
    column_sums_op(WeightGradOp{a.x, a.dy, a.rstd, a.G, a.C, a.ldx, a.lddy}, a.rows, a.C, out, "rmsnorm_backward");
  }
  if (a.dx) {
    rmsnorm_dx_kernel<<<row_blocks(a.rows), kBlock>>>(a);
    check_launch("rmsnorm_backward");
  }
}

void rope_forward(const RopeArgs& a) {
  const int64_t n = a.B * a.T * a.H * (a.D / 2);
  if (n <= 0) return;
  rope_kernel<false><<<grid_for(n), kBlock>>>(a);
  check_launch("rope_forward");
}

void rope_backward(const RopeArgs& a) {
  const int64_t n = a.B * a.T * a.H * (a.D / 2);
  if (n <= 0) return;
  rope_kernel<true><<<grid_for(n), kBlock>>>(a);
  check_launch("rope_backward");
}

void swiglu_forward(const SwigluArgs& a) {
  if (a.rows <= 0 || a.C <= 0) return;
  swiglu_forward_kernel<<<grid_for(a.rows * a.C), kBlock>>>(a);
  check_launch("swiglu_forward");
}

void swiglu_backward(const SwigluBackwardArgs& a) {
  if (a.rows <= 0 || a.C <= 0 || (!a.dgate && !a.dup)) return;
  swiglu_backward_kernel<<<grid_for(a.rows * a.C), kBlock>>>(a);
  check_launch("swiglu_backward");
}

}  // namespace cuda
}  // namespace tk
