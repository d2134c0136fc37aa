// Softmax cross-entropy fused with its gradient, one block per row:
//   m = max(x), s = Σ exp(x - m), loss = (m - x[t]) + log(s),
//   dlogits = (exp(x - m)/s - onehot(t)) · grad_scale / divisor.
// The count of rows not ignored is computed on the device first (the mean's divisor), the row losses
// are summed in a fixed tree in double, and only the two totals come back to the host.
#include "common.cuh"

namespace tk {
namespace cuda {
namespace {

struct Totals {
  double loss;
  long long count;
};

__global__ void count_kernel(int64_t N, const int32_t* targets, int32_t ignore, Totals* out) {
  long long c = 0;
  for (int64_t r = threadIdx.x; r < N; r += blockDim.x) c += targets[r] != ignore;
  const double total = block_sum(double(c));  // exact: counts are far below 2^53
  if (threadIdx.x == 0) out->count = static_cast<long long>(total);
}

__global__ void __launch_bounds__(kBlock) row_kernel(CrossEntropyArgs a, float* losses, const Totals* totals) {
  const int64_t r = blockIdx.x;
  const float* x = a.logits + r * a.V;
  float* d = a.dlogits ? a.dlogits + r * a.V : nullptr;
  const int32_t t = a.targets[r];
  if (t == a.ignore_index) {
    if (threadIdx.x == 0) losses[r] = 0.f;
    if (d)
      for (int64_t j = threadIdx.x; j < a.V; j += blockDim.x) d[j] = 0.f;
    return;
  }
  const float xt = x[t];  // read before any write: dlogits may alias logits (the barriers below order it)
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < a.V; j += blockDim.x) m = fmaxf(m, x[j]);
  m = block_max(m);
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < a.V; j += blockDim.x) s += expf(x[j] - m);
  s = block_sum(s);
  if (threadIdx.x == 0) losses[r] = (m - xt) + logf(s);
  if (!d) return;
  // divisor <= 0: the number of rows not ignored (PyTorch's mean); none left gives 0, not NaN.
  const double divisor = a.divisor > 0.f ? double(a.divisor) : double(totals->count);
  const float g = divisor > 0 ? static_cast<float>(a.grad_scale / divisor) : 0.f, k = g / s;
  for (int64_t j = threadIdx.x; j < a.V; j += blockDim.x) {
    float v = expf(x[j] - m) * k;
    if (j == t) v -= g;
    d[j] = v;
  }
}

__global__ void sum_kernel(int64_t N, const float* losses, Totals* out) {
  double s = 0.0;
  for (int64_t r = threadIdx.x; r < N; r += blockDim.x) s += losses[r];
  s = block_sum(s);
  if (threadIdx.x == 0) out->loss = s;
}

// The loss where the caller keeps it (loss_out), without a read-back.
__global__ void finish_kernel(const Totals* t, float divisor, float* out) {
  const double d = divisor > 0.f ? double(divisor) : double(t->count);
  *out = static_cast<float>(d > 0 ? t->loss / d : 0.0);
}

}  // namespace

void cross_entropy(CrossEntropyArgs& a) {
  Totals host{0.0, 0};
  if (a.loss_out) {
    Totals* totals = workspace_of<Totals>(kSlotReduce, 1);
    if (a.N > 0) {
      float* losses = a.row_loss ? a.row_loss : workspace_of<float>(kSlotRowLoss, size_t(a.N));
      count_kernel<<<1, 1024>>>(a.N, a.targets, a.ignore_index, totals);
      check_launch("cross_entropy");
      row_kernel<<<static_cast<unsigned>(a.N), kBlock>>>(a, losses, totals);
      check_launch("cross_entropy");
      sum_kernel<<<1, 1024>>>(a.N, losses, totals);
      check_launch("cross_entropy");
      finish_kernel<<<1, 1>>>(totals, a.divisor, a.loss_out);
    } else {
      check("cross_entropy", cudaMemsetAsync(a.loss_out, 0, sizeof(float)));
    }
    check_launch("cross_entropy");
    return;
  }
  if (a.N > 0) {
    Totals* totals = workspace_of<Totals>(kSlotReduce, 1);
    float* losses = a.row_loss ? a.row_loss : workspace_of<float>(kSlotRowLoss, size_t(a.N));
    count_kernel<<<1, 1024>>>(a.N, a.targets, a.ignore_index, totals);
    check_launch("cross_entropy");
    row_kernel<<<static_cast<unsigned>(a.N), kBlock>>>(a, losses, totals);
    check_launch("cross_entropy");
    sum_kernel<<<1, 1024>>>(a.N, losses, totals);
    check_launch("cross_entropy");
    result_to_host("cross_entropy", &host, totals, sizeof host);
  }
  const double divisor = a.divisor > 0.f ? double(a.divisor) : double(host.count);
  a.loss = divisor > 0 ? host.loss / divisor : 0.0;
  a.count = host.count;
}

}  // namespace cuda
}  // namespace tk
