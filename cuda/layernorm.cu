// LayerNorm over the last dim: one warp per row (two passes over the row for a stable variance),
// the backward's dx in the same shape, and dgamma / dbeta as deterministic column sums. With a
// residual the input is x + residual, added wherever x is read (never stored).
#include "colsum.cuh"
#include "common.cuh"

namespace tk {
namespace cuda {
namespace {

constexpr int kRowsPerBlock = kBlock / 32;

// Element c of row r of the input (x, or x + residual).
__device__ __forceinline__ float in_at(const float* x, const float* res, int64_t i) { return res ? x[i] + res[i] : x[i]; }

__global__ void __launch_bounds__(kBlock) layernorm_forward_kernel(LayerNormArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (row >= a.rows) return;
  const float* x = a.x + row * a.C;
  const float* res = a.residual ? a.residual + row * a.C : nullptr;
  float s = 0.f;
  for (int64_t c = lane; c < a.C; c += 32) s += in_at(x, res, c);
  const float mean = warp_sum(s) / float(a.C);
  float v = 0.f;
  for (int64_t c = lane; c < a.C; c += 32) {
    const float d = in_at(x, res, c) - mean;
    v = fmaf(d, d, v);
  }
  const float rstd = 1.f / sqrtf(warp_sum(v) / float(a.C) + a.eps);
  float* y = a.y + row * a.C;
  for (int64_t c = lane; c < a.C; c += 32) {
    const float n = (in_at(x, res, c) - mean) * rstd;
    y[c] = fmaf(n, a.gamma ? a.gamma[c] : 1.f, a.beta ? a.beta[c] : 0.f);
  }
  if (lane == 0) {
    if (a.mean) a.mean[row] = mean;
    if (a.rstd) a.rstd[row] = rstd;
  }
}

// dx = rstd · (g - mean(g) - x̂ · mean(g · x̂)), g = dy · gamma.
__global__ void __launch_bounds__(kBlock) layernorm_dx_kernel(LayerNormBackwardArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (row >= a.rows) return;
  const float* x = a.x + row * a.C;
  const float* res = a.residual ? a.residual + row * a.C : nullptr;
  const float* dy = a.dy + row * a.C;
  const float mean = a.mean[row], rstd = a.rstd[row];
  float sg = 0.f, sgx = 0.f;
  for (int64_t c = lane; c < a.C; c += 32) {
    const float g = dy[c] * (a.gamma ? a.gamma[c] : 1.f), xh = (in_at(x, res, c) - mean) * rstd;
    sg += g;
    sgx = fmaf(g, xh, sgx);
  }
  const float mg = warp_sum(sg) / float(a.C), mgx = warp_sum(sgx) / float(a.C);
  float* dx = a.dx + row * a.C;
  for (int64_t c = lane; c < a.C; c += 32) {
    const float g = dy[c] * (a.gamma ? a.gamma[c] : 1.f), xh = (in_at(x, res, c) - mean) * rstd;
    dx[c] = rstd * (g - mg - xh * mgx);
  }
}

// dgamma += Σ dy · x̂, dbeta += Σ dy.
struct ParamGradOp {
  static constexpr int N = 2;
  const float *x, *res, *dy, *mean, *rstd;
  int64_t C;
  __device__ void operator()(int64_t r, int64_t c, float* v) const {
    const float g = dy[r * C + c];
    v[0] = g * (in_at(x, res, r * C + c) - mean[r]) * rstd[r];
    v[1] = g;
  }
};

}  // namespace

void layernorm_forward(const LayerNormArgs& a) {
  if (a.rows <= 0 || a.C <= 0) return;
  layernorm_forward_kernel<<<static_cast<unsigned>((a.rows + kRowsPerBlock - 1) / kRowsPerBlock), kBlock>>>(a);
  check_launch("layernorm_forward");
}

void layernorm_backward(const LayerNormBackwardArgs& a) {
  if (a.rows <= 0 || a.C <= 0) return;
  if (a.dx) {
    layernorm_dx_kernel<<<static_cast<unsigned>((a.rows + kRowsPerBlock - 1) / kRowsPerBlock), kBlock>>>(a);
    check_launch("layernorm_backward");
  }
  if (a.dgamma || a.dbeta) {
    ColsumOut<2> out{{a.dgamma, a.dbeta}};
    column_sums_op(ParamGradOp{a.x, a.residual, a.dy, a.mean, a.rstd, a.C}, a.rows, a.C, out, "layernorm_backward");
  }
}

}  // namespace cuda
}  // namespace tk
