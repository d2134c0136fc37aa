// Scalar losses over n elements and their backward: MSE, BCE with logits, and the weighted sum x·w.
// The sum is a fixed two-pass tree in double: a grid that depends on n only (the same partition on
// every device) writes one partial per block, one block adds the partials and writes the value to the
// one-float output on the device. Nothing comes back to the host; a backward reads its upstream
// gradient dy[0] on the device too. The formulas are those of native/cpu/losses.cc.
#include "common.cuh"

namespace tk {
namespace cuda {
namespace {

constexpr int kSumBlocks = 512;

#define TK_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

struct MseTerm {
  const float *x, *t;
  __device__ double operator()(int64_t i) const {
    const double d = double(x[i]) - t[i];
    return d * d;
  }
};
struct BceTerm {
  const float *x, *t;
  __device__ double operator()(int64_t i) const {
    const double z = x[i];
    return fmax(z, 0.0) - z * t[i] + log1p(exp(-fabs(z)));
  }
};
struct DotTerm {
  const float *x, *w;
  __device__ double operator()(int64_t i) const { return double(x[i]) * w[i]; }
};

template <class Term>
__global__ void __launch_bounds__(kBlock) partial_kernel(int64_t n, Term term, double* partial) {
  double s = 0.0;
  TK_GRID_STRIDE(i, n) s += term(i);
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// out[0] = Σ partial / divisor (0 when there is nothing to divide by: n = 0 with the mean).
__global__ void __launch_bounds__(kBlock) final_kernel(int blocks, const double* partial, double divisor, float* out) {
  double s = 0.0;
  for (int i = threadIdx.x; i < blocks; i += blockDim.x) s += partial[i];
  s = block_sum(s);
  if (threadIdx.x == 0) out[0] = static_cast<float>(divisor > 0 ? s / divisor : 0.0);
}

template <class Term>
void reduce(const char* op, int64_t n, Term term, double divisor, float* out) {
  const int64_t want = (n + kBlock * 16 - 1) / (kBlock * 16);
  const int blocks = static_cast<int>(want < 1 ? 1 : (want < kSumBlocks ? want : kSumBlocks));
  double* partial = workspace_of<double>(kSlotReduce, size_t(blocks));
  partial_kernel<Term><<<blocks, kBlock>>>(n, term, partial);
  check_launch(op);
  final_kernel<<<1, kBlock>>>(blocks, partial, divisor, out);
  check_launch(op);
}

double divisor_of(float divisor, int64_t n) { return divisor > 0.f ? double(divisor) : double(n); }

// dx = (x - t) · float(2·dy[0]/divisor)
__global__ void mse_backward_kernel(LossBackwardArgs a, double divisor) {
  const float k = static_cast<float>(2.0 * a.dy[0] / divisor);
  TK_GRID_STRIDE(i, a.n) a.dx[i] = (a.x[i] - a.target[i]) * k;
}

// dx = (σ(x) - t) · float(dy[0]/divisor)
__global__ void bce_backward_kernel(LossBackwardArgs a, double divisor) {
  const float k = static_cast<float>(a.dy[0] / divisor);
  TK_GRID_STRIDE(i, a.n) a.dx[i] = (1.f / (1.f + expf(-a.x[i])) - a.target[i]) * k;
}

}  // namespace

void mse_forward(const LossArgs& a) {
  reduce("mse_forward", a.n, MseTerm{a.x, a.target}, divisor_of(a.divisor, a.n), a.loss);
}

void mse_backward(const LossBackwardArgs& a) {
  if (a.n <= 0) return;
  mse_backward_kernel<<<grid_for(a.n), kBlock>>>(a, divisor_of(a.divisor, a.n));
  check_launch("mse_backward");
}

void bce_forward(const LossArgs& a) {
  reduce("bce_forward", a.n, BceTerm{a.x, a.target}, divisor_of(a.divisor, a.n), a.loss);
}

void bce_backward(const LossBackwardArgs& a) {
  if (a.n <= 0) return;
  bce_backward_kernel<<<grid_for(a.n), kBlock>>>(a, divisor_of(a.divisor, a.n));
  check_launch("bce_backward");
}

void dot_forward(const DotArgs& a) { reduce("dot_forward", a.n, DotTerm{a.x, a.w}, 1.0, a.y); }

}  // namespace cuda
}  // namespace tk
