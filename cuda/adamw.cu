// Fused AdamW (torch.optim.AdamW semantics, the constants of native/cpu/adamw.cc) and the sum of
// squares behind global-norm clipping: a deterministic two-pass reduction (a grid fixed by n writes
// partials in double, one block adds them in a fixed tree).
#include <cmath>

#include "common.cuh"

namespace tk {
namespace cuda {
namespace {

struct AdamWConsts {
  float b1, nb1, b2, nb2, decay, neg_step, inv_sqrt_bc2, eps, gscale;
};

__global__ void adamw_kernel(int64_t n, float* p, const float* grad, float* m, float* v, AdamWConsts c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = grad[i] * c.gscale;
    const float mi = fmaf(c.b1, m[i], c.nb1 * g);
    const float vi = fmaf(c.b2, v[i], c.nb2 * g * g);
    const float denom = fmaf(sqrtf(vi), c.inv_sqrt_bc2, c.eps);
    p[i] = fmaf(c.neg_step, mi / denom, p[i] * c.decay);
    m[i] = mi;
    v[i] = vi;
  }
}

constexpr int kSumBlocks = 512;

__global__ void __launch_bounds__(kBlock) sum_squares_partial(int64_t n, const float* x, double* partial) {
  double s = 0.0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float xi = x[i];
    s += double(xi * xi);
  }
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void sum_partials(int blocks, double* partial) {
  double s = 0.0;
  for (int i = threadIdx.x; i < blocks; i += blockDim.x) s += partial[i];
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blocks] = s;
}

}  // namespace

void adamw(const AdamWArgs& a) {
  if (a.n <= 0) return;
  const double t = static_cast<double>(a.step);
  const double bc1 = 1.0 - std::pow(static_cast<double>(a.beta1), t);
  const double bc2 = 1.0 - std::pow(static_cast<double>(a.beta2), t);
  AdamWConsts c;
  c.b1 = a.beta1;
  c.nb1 = 1.f - a.beta1;
  c.b2 = a.beta2;
  c.nb2 = 1.f - a.beta2;
  c.decay = static_cast<float>(1.0 - static_cast<double>(a.lr) * a.weight_decay);
  c.neg_step = static_cast<float>(-static_cast<double>(a.lr) / bc1);
  c.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  c.eps = a.eps;
  c.gscale = a.grad_scale;
  adamw_kernel<<<grid_for(a.n), kBlock>>>(a.n, a.param, a.grad, a.m, a.v, c);
  check_launch("adamw");
}

void sum_squares(SumSquaresArgs& a) {
  const int64_t n = a.n;
  a.result = 0.0;
  if (n <= 0) return;
  // The grid depends on n only, so the partition (and the rounding) is the same on every device.
  const int64_t want = (n + kBlock * 16 - 1) / (kBlock * 16);
  const int blocks = static_cast<int>(want < kSumBlocks ? want : kSumBlocks);
  double* partial = workspace_of<double>(kSlotReduce, size_t(blocks) + 1);
  sum_squares_partial<<<blocks, kBlock>>>(n, a.x, partial);
  check_launch("sum_squares");
  sum_partials<<<1, kBlock>>>(blocks, partial);
  check_launch("sum_squares");
  result_to_host("sum_squares", &a.result, partial + blocks, sizeof a.result);
}

}  // namespace cuda
}  // namespace tk
